//! The HTML / inline-XBRL extractor alone, then clean-up and chunking.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pages) = esg_ingest::html::extract_html(data) {
        common::clean_and_chunk(data, &pages);
    }
});
