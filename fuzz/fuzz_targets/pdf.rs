//! The PDF extractor alone (oxidize-pdf behind `esg_ingest::pdf`), then
//! clean-up and chunking of whatever pages it returns.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: { common::tolerate_dependency_panics(); },
    |data: &[u8]| {
        if let Ok(t) = common::guarded(|| esg_ingest::pdf::extract_pdf(data)) {
            assert!(!t.pages.is_empty());
            for p in &t.pages {
                assert!(p.text.len() <= esg_ingest::pdf::MAX_PAGE_TEXT_BYTES * 2);
            }
            common::clean_and_chunk(data, &t.pages);
        }
    }
);
