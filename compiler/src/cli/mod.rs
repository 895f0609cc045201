//! The `kiln` command line: argument parsing and dispatch. Every failure prints one `error: …` line
//! on stderr and exits with status 1; `--help` and `--version` exit 0.

mod bench;
mod compile;
mod debug;
mod model;
mod run;

use clap::{Parser, Subcommand};
use kiln::codegen::conv::ConvScheme;
use kiln::codegen::jit::Capture;
use kiln::engine::{self, Engine, Options};
use kiln::passes::{OptLevel, PassManager};
use kiln::Result;
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
    /// The memory budget for everything the model makes Kiln allocate (import, weights, inputs,
    /// interpreter or JIT), in bytes; `K`, `M`, `G`, `T` suffixes (powers of 1024) are accepted.
    #[arg(long, value_name = "BYTES", default_value = "4G", value_parser = parse_bytes)]
    memory_limit: u64,
}

/// Parses `4294967296`, `512M`, `4G` (binary multiples).
fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        Some(b'T' | b't') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a byte count such as 1048576 or 4G, got `{s}`"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is more than 2^64 bytes"))
}

/// Options choosing and observing the optimizer's passes.
#[derive(Debug, clap::Args)]
pub(crate) struct OptArgs {
    /// Optimization level: -O0 (none), -O1 (dce, BatchNorm folding, activation fusion), -O2 (all).
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = parse_level)]
    opt_level: OptLevel,
    /// Runs exactly these passes, in this order, instead of the level's pipeline.
    #[arg(long, value_name = "a,b,c")]
    passes: Option<String>,
    /// Prints the IR after every pass (to stderr).
    #[arg(long)]
    print_after_all: bool,
    /// Prints the IR after the named pass (to stderr); repeatable.
    #[arg(long, value_name = "PASS")]
    print_after: Vec<String>,
    /// Runs the verifier after every pass (always on in debug builds).
    #[arg(long)]
    verify_each: bool,
    /// Prints each pass's run time (to stderr).
    #[arg(long)]
    time_passes: bool,
}

impl OptArgs {
    /// The pass manager these options describe.
    pub(crate) fn pass_manager(&self) -> Result<PassManager> {
        let mut pm = match &self.passes {
            Some(list) => PassManager::from_list(list)?,
            None => PassManager::new(self.opt_level),
        };
        pm = pm
            .verify_each(self.verify_each)
            .print_after_all(self.print_after_all)
            .time_passes(self.time_passes);
        for name in &self.print_after {
            pm = pm.print_after(name)?;
        }
        Ok(pm)
    }
}

fn parse_level(s: &str) -> std::result::Result<OptLevel, String> {
    s.parse().map_err(|e: kiln::Error| e.to_string())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a model on inputs read from `.npy` files and writes its outputs as `.npy` files.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
        /// An input: `X.npy` (inputs in order) or `NAME=X.npy`. Repeat for several inputs.
        #[arg(long, value_name = "[NAME=]X.npy", required = true)]
        input: Vec<String>,
        /// Where to write an output, one per model output, in order.
        #[arg(long, value_name = "Y.npy", required = true)]
        output: Vec<PathBuf>,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Compiles a model and measures it on random inputs: latency (median, min, max), GFLOP/s,
    /// compile time, and the share of the f32x4 FMA peak measured in the same run.
    Bench {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// Batch size: the first dimension of every input (a symbolic ONNX batch, or a static
        /// one re-specialised).
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
        /// Adds a per-step table (op + epilogue, shape, time, share, GFLOP/s).
        #[arg(long)]
        profile: bool,
        /// Prints one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Compiles a model and prints it in the requested form.
    Compile {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
        /// What to print.
        #[arg(long, value_enum, default_value = "ir")]
        emit: Emit,
        /// Lists every rewrite and every refused fusion or in-place candidate with its reason.
        #[arg(long)]
        explain: bool,
    },
    /// Debugging tools.
    #[command(subcommand)]
    Debug(DebugCommand),
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// Runs the interpreter before and after every pass and names the first pass whose outputs
    /// diverge from the unoptimized graph's. Exits 1 if one does.
    Bisect {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        opt: OptArgs,
        /// An input: `X.npy` (inputs in order) or `NAME=X.npy`.
        #[arg(long, value_name = "[NAME=]X.npy", required = true)]
        input: Vec<String>,
    },
}

/// Options choosing how a model runs.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// The back end.
    #[arg(long, value_enum, default_value = "jit")]
    backend: Backend,
    /// Threads running each layer (default: all cores). Results are identical for any count.
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    threads: usize,
    /// How the JIT computes convolutions: chosen per layer, or one scheme forced on every conv
    /// it applies to (for comparisons; results agree within rounding).
    #[arg(long, value_enum, default_value = "auto")]
    conv_kernel: ConvKernel,
}

/// The JIT's convolution kernels (`--conv-kernel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConvKernel {
    /// Chosen per layer.
    Auto,
    /// Direct: channels × vectors of one output row.
    Rows,
    /// Direct: up to 12 output pixels × 4 channels.
    Pixels,
    /// Winograd F(2×2, 3×3) on every 3×3 stride-1 conv, the direct default elsewhere.
    Winograd,
}

impl ExecArgs {
    /// An engine running models as these options say (`capture` keeps CLIF or assembly text).
    pub(crate) fn engine(&self, capture: Capture, memory_limit: u64) -> Result<Engine> {
        Engine::new(Options {
            memory_limit,
            backend: match self.backend {
                Backend::Jit => engine::Backend::Jit,
                Backend::Interp => engine::Backend::Interpreter,
            },
            threads: self.threads,
            capture,
            conv_scheme: match self.conv_kernel {
                ConvKernel::Auto => None,
                ConvKernel::Rows => Some(ConvScheme::Rows),
                ConvKernel::Pixels => Some(ConvScheme::Pixels),
                ConvKernel::Winograd => Some(ConvScheme::Winograd),
            },
            ..Options::default()
        })
    }
}

/// The back ends a model can run on.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Backend {
    /// Native code from Cranelift (shape-specialised, SIMD, multi-threaded).
    Jit,
    /// The reference interpreter (the oracle; slow).
    Interp,
}

/// What `kiln compile` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Emit {
    /// The optimized graph in the text IR, refusals as trailing comments.
    Ir,
    /// The lowered plan: steps, buffers, offsets, in-place marks, memory figures.
    Plan,
    /// Counts of ops, fusions and in-place steps, and memory figures, as one JSON object.
    Stats,
    /// The optimized graph in Graphviz form.
    Dot,
    /// The Cranelift IR of every generated function.
    Clif,
    /// The machine code of every generated function, disassembled.
    Asm,
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
            opt,
            input,
            output,
            exec,
        } => run::run(&model, &opt, &input, &output, &exec),
        Command::Bench {
            model,
            opt,
            exec,
            batch,
            profile,
            json,
        } => bench::bench(&model, &opt, &exec, batch, profile, json),
        Command::Compile {
            model,
            opt,
            emit,
            explain,
        } => compile::compile(&model, &opt, emit, explain),
        Command::Debug(DebugCommand::Bisect { model, opt, input }) => {
            debug::bisect(&model, &opt, &input)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
