//! Text decoding (UTF-8/UTF-16/single-byte), form-feed and virtual pages,
//! then clean-up and chunking.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pages) = esg_ingest::text::extract_text(data) {
        assert!(!pages.is_empty());
        common::clean_and_chunk(data, &pages);
    }
});
