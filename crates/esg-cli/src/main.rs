//! The `esg` command. Argument parsing lives in [`esg_cli::cli`]; this file
//! only parses and hands over.

use clap::Parser;

fn main() -> std::process::ExitCode {
    esg_cli::run(esg_cli::cli::Cli::parse())
}
