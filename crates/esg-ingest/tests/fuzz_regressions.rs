//! Every input the fuzzers found (`fuzz/regressions/<target>/*`, minimised)
//! replayed through the same entry points and invariants as its fuzz target,
//! in the normal test suite: each must end in a clean `Ok` or a coded `Err`,
//! without a panic, and `Ok` results must satisfy the chunk invariants.

#[path = "../../../fuzz/fuzz_targets/common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"))
            .map(|p| {
                let b = std::fs::read(&p).expect("read regression input");
                (p, b)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    eprintln!("{target}: {} regression inputs", out.len());
    out
}

/// Longest a single input may take (the fuzzers ran with `-timeout=10`;
/// this is generous for a debug build on a busy machine).
const PER_INPUT: Duration = Duration::from_secs(60);

/// Runs `f` on every input in a thread of its own, and names the one that
/// panicked or did not finish within [`PER_INPUT`] (a hang is a finding too:
/// the first one the fuzzers found was an endless loop).
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let all = inputs(target);
    for (path, bytes) in &all {
        let (tx, rx) = mpsc::channel();
        let data = bytes.clone();
        std::thread::spawn(move || {
            f(&data);
            let _ = tx.send(());
        });
        match rx.recv_timeout(PER_INPUT) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{target}: {} did not finish within {PER_INPUT:?}",
                    path.display()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{target}: {} panicked", path.display())
            }
        }
    }
    all.len()
}

#[test]
fn detect_extract_regressions() {
    let n = replay("detect_extract", |data| {
        let r = esg_ingest::prepare_bytes(
            data,
            esg_ingest::extract_in_process,
            esg_core::ChunkParams::default(),
        );
        common::check_prepared(data, &r);
    });
    assert!(
        n >= 1,
        "the xref end-of-file loop found by the fuzzer is kept here"
    );
}

#[test]
fn pdf_regressions() {
    let n = replay("pdf", |data| {
        // As in production (extract_in_process): a panic inside oxidize-pdf
        // is caught and becomes extraction_failed.
        if let Ok(t) = common::guarded(|| esg_ingest::pdf::extract_pdf(data)) {
            common::clean_and_chunk(data, &t.pages);
        }
        let r = esg_ingest::prepare_bytes(
            data,
            esg_ingest::extract_in_process,
            esg_core::ChunkParams::default(),
        );
        common::check_prepared(data, &r);
    });
    assert!(
        n >= 1,
        "the xref end-of-file loop found by the fuzzer is kept here"
    );
}

#[test]
fn html_regressions() {
    replay("html", |data| {
        if let Ok(pages) = esg_ingest::html::extract_html(data) {
            common::clean_and_chunk(data, &pages);
        }
    });
}

#[test]
fn text_regressions() {
    replay("text", |data| {
        if let Ok(pages) = esg_ingest::text::extract_text(data) {
            assert!(!pages.is_empty());
            common::clean_and_chunk(data, &pages);
        }
    });
}
