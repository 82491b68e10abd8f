//! The `esg` command. Argument parsing lives in [`esg_cli::cli`]; this file
//! only parses and hands over.

use clap::Parser;

/// mimalloc instead of glibc malloc: the server allocates many small,
/// short-lived objects per request (headers, span data, log lines), and
/// glibc's malloc/free were about 12 % of its CPU under load
/// (`bench/http_cpu.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    esg_cli::run(esg_cli::cli::Cli::parse())
}
