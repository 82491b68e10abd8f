//! Evidence a reader can find (issue 12), on the real corpus: runs
//! `bench/evidence_check.sh` (a throw-away venv with pypdfium2 from PyPI, and
//! poppler's pdftotext) with the `esg` binary under test, which ingests every
//! corpus PDF, scores every company-year and looks every quote up on its
//! cited page.
//!
//! Asserted, so that a regression fails CI: the share of quotes found by both
//! pdftotext and pdfium is at least [`FLOOR_BOTH`] %, no page keeps < 20 %
//! of pdftotext's words, and every
//! document's token recall against pdftotext is at least [`MIN_RECALL`].
//! The quote floor is issue 12's goal: table cells keep apart the lines
//! poppler may read apart (`esg_core::layout::PageLayout::break_may_part`)
//! and each quote is narrowed to the block of its match
//! (`esg_core::layout::PageLayout::place`). The misses left are mostly
//! poppler's own reading of running prose (Sligro's loosely set columns,
//! read line by line across both) and glyph placement (J&J's `•C hronic`).
//! No lost page is the goal itself: CarMax p2, a contents page drawn as
//! push-button widget appearances, was the last one, and is now read from
//! those appearances.
//!
//! Without the corpus it prints SKIP and passes, except under `CI=true`,
//! where a missing corpus, pdftotext or python3 fails.

mod support;

use std::path::Path;
use std::process::Command;
use support::*;

/// Quotes found on their cited page by both pdftotext and pdfium, % (98.3
/// with spaces drawn as runs of their own kept, 98.1 with table-cell lines
/// poppler may part kept apart, 95.7 with chunks that
/// never join two table cells, 78.7 before layout blocks; goal 98).
const FLOOR_BOTH: f64 = 98.0;
/// Lowest per-document token recall against pdftotext's cleaned text (0.985 at c959721; goal 0.98).
const MIN_RECALL: f64 = 0.98;

#[test]
fn quotes_are_found_on_their_cited_page_and_no_page_is_lost() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Some(corpus) = corpus_dir() else {
        assert!(!ci, "the corpus is required under CI");
        return;
    };
    if !require("pdftotext", "poppler-utils") || !require("python3", "python3 python3-venv") {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let report = work.path().join("evidence.json");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join("bench/evidence_check.sh"))
        .arg("--esg")
        .arg(esg_bin())
        .arg("--json")
        .arg(&report)
        .arg("--show-misses")
        .arg("20")
        .env("ESG_CORPUS_DIR", &corpus)
        .env("TMPDIR", work.path())
        .output()
        .expect("run bench/evidence_check.sh");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "evidence_check failed: {:?}",
        out.status
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("JSON report");
    let quotes = r["quotes"].as_u64().expect("quotes");
    assert!(quotes >= 300, "too few quotes to judge: {quotes}");
    let both = r["share"]["both"].as_f64().expect("share.both");
    assert!(
        both >= FLOOR_BOTH,
        "{both:.1} % of {quotes} quotes found by both pdftotext and pdfium, below the floor of {FLOOR_BOTH} %"
    );
    let lost = r["lost_pages"].as_array().expect("lost_pages");
    assert!(
        lost.is_empty(),
        "{} pages keep < 20 % of pdftotext's words: {lost:?}",
        lost.len()
    );
    for (file, v) in r["recall"].as_object().expect("recall") {
        let rec = v["recall"].as_f64().expect("recall");
        assert!(
            rec >= MIN_RECALL,
            "{file}: token recall {rec:.3} < {MIN_RECALL}"
        );
    }
}
