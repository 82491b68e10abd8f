//! The `esg` command. Argument parsing lives in [`esg_cli::cli`]; this file
//! only parses and hands over.

use clap::Parser;

/// mimalloc instead of glibc malloc: the server allocates many small,
/// short-lived objects per request (headers, span data, log lines), and
/// glibc's malloc/free were about 12 % of its CPU under load
/// (`bench/http_cpu.sh`).
///
/// mimalloc's v2 line (the `v2` feature), not v3, the crate's default:
/// under v3 the extraction worker grew its heap in fresh arenas that the
/// kernel zeroed a 2 MiB transparent huge page at a time, a third of the
/// CPU of ingesting GM's 74 pages and 130 MB peak RSS (v2: 65 MB). Over the
/// 781 corpus pages, ingest summed 2.73 s with v3 and 2.50 s with v2, and
/// 3.21 s with glibc's malloc (interleaved, best of 3 per document, both
/// builds `-no-pie`; see `build.rs`). Turning off THP for v3
/// (`MIMALLOC_ALLOW_THP=0`) did not close the gap (2.77 s).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    esg_cli::run(esg_cli::cli::Cli::parse())
}
