//! The `kiln` command-line tool: compile, run and inspect models. See `kiln --help`.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main(std::env::args_os())
}
