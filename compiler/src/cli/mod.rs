//! The `kiln` command line: argument parsing and dispatch. Every failure prints one `error: …` line
//! on stderr and exits with status 1; `--help` and `--version` exit 0.

mod compile;
mod model;
mod run;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Kiln: compile convolutional networks with PyTorch semantics, optimize them and run them.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that loads a model.
#[derive(Debug, clap::Args)]
pub(crate) struct ModelArgs {
    /// The model: a `.kiln` text IR file or an `.onnx` file.
    model: PathBuf,
    /// Weights for the model's parameters (`.safetensors`, PyTorch `state_dict` names).
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    /// Fixes an input's shape, e.g. `--shape x=1x3x224x224` (for symbolic ONNX dimensions).
    #[arg(long, value_name = "NAME=DIMS")]
    shape: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a model on inputs read from `.npy` files and writes its outputs as `.npy` files.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        /// An input: `X.npy` (inputs in order) or `NAME=X.npy`. Repeat for several inputs.
        #[arg(long, value_name = "[NAME=]X.npy", required = true)]
        input: Vec<String>,
        /// Where to write an output, one per model output, in order.
        #[arg(long, value_name = "Y.npy", required = true)]
        output: Vec<PathBuf>,
        /// The back end.
        #[arg(long, value_enum, default_value = "interp")]
        backend: Backend,
    },
    /// Compiles a model and prints it in the requested form.
    Compile {
        #[command(flatten)]
        model: ModelArgs,
        /// What to print.
        #[arg(long, value_enum, default_value = "ir")]
        emit: Emit,
    },
}

/// The back ends `kiln run` can use.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Backend {
    /// The reference interpreter.
    Interp,
}

/// What `kiln compile` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Emit {
    /// The graph in the text IR.
    Ir,
}

/// Parses `args` and runs the command; returns the process exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let help = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            // clap's own message already starts with `error: `.
            let _ = e.print();
            return if help {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    let result = match cli.command {
        Command::Run {
            model,
            input,
            output,
            backend,
        } => run::run(&model, &input, &output, backend),
        Command::Compile { model, emit } => compile::compile(&model, emit),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
