//! Bytes -> format detection -> in-process extraction (PDF/HTML/text) ->
//! clean-up -> chunking: the path every uploaded or ingested file takes
//! (minus the sandbox process around it).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: { common::tolerate_dependency_panics(); },
    |data: &[u8]| {
        let r = esg_ingest::prepare_bytes(
            data,
            esg_ingest::extract_in_process,
            esg_core::ChunkParams::default(),
        );
        common::check_prepared(data, &r);
    }
);
