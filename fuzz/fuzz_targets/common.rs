//! Shared by the fuzz targets: the dependency-panic filter and the invariants
//! every extraction result must satisfy.

#![allow(dead_code)]

use esg_core::{ChunkParams, CleanedPage, sha256_hex};
use esg_ingest::{ErrorCode, IngestError, PreparedDocument};
use std::collections::HashSet;
use std::sync::Mutex;

static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// libfuzzer-sys aborts on every panic. A panic raised *inside oxidize-pdf*
/// is caught in production by the `catch_unwind` in
/// `esg_ingest::extract_in_process` (and the worker runs in its own process
/// anyway), so it is a dependency bug we survive, not ours: print each such
/// location once and let the unwind reach that `catch_unwind`. Any other
/// panic (our code, std, html5gum, ...) still aborts and is a finding.
pub fn tolerate_dependency_panics() {
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(loc) = info.location()
            && loc.file().contains("oxidize-pdf")
        {
            let key = format!("{}:{}", loc.file(), loc.line());
            let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get_or_insert_with(HashSet::new).insert(key) {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                eprintln!("DEPENDENCY PANIC (caught by extract_in_process): {loc}: {msg}");
            }
            return;
        }
        abort_hook(info);
    }));
}

/// Runs `f`, turning a (tolerated) dependency panic into `ExtractionFailed`,
/// as `extract_in_process` does.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, IngestError>) -> Result<T, IngestError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(IngestError::new(
            ErrorCode::ExtractionFailed,
            "dependency panic",
        )),
    }
}

/// Invariants of cleaned pages and their chunks (what the store relies on).
pub fn check_pages_and_chunks(doc_id: &str, pages: &[CleanedPage], chunks: &[esg_core::Chunk]) {
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(
            p.number as usize,
            i + 1,
            "pages are numbered 1..=n in order"
        );
    }
    let mut ids = HashSet::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.seq as usize, i, "chunk seq is its position");
        assert!(
            ids.insert(c.chunk_id.clone()),
            "duplicate chunk id {}",
            c.chunk_id
        );
        assert_eq!(c.chunk_id.len(), 32);
        let page = pages
            .get((c.page as usize).wrapping_sub(1))
            .unwrap_or_else(|| panic!("chunk on page {} of {}", c.page, pages.len()));
        assert!(c.char_start < c.char_end, "empty chunk span");
        let span: String = page
            .text
            .chars()
            .skip(c.char_start as usize)
            .take((c.char_end - c.char_start) as usize)
            .collect();
        assert_eq!(span, c.text, "chunk text is its span of the page text");
        assert_eq!(c.sha256, sha256_hex(&c.text));
        assert_eq!(c.words as usize, c.text.split_whitespace().count());
        assert!(c.words > 0, "a chunk without words");
        let _ = doc_id;
    }
    for p in pages {
        if p.text.chars().any(|ch| !ch.is_whitespace()) {
            assert!(
                chunks.iter().any(|c| c.page == p.number),
                "page {} has text but no chunk: {:?}",
                p.number,
                p.text.chars().take(200).collect::<String>()
            );
        }
    }
}

/// Checks an `Ok` prepared document, or that an error is a clean, coded one.
pub fn check_prepared(bytes: &[u8], r: &Result<PreparedDocument, IngestError>) {
    match r {
        Ok(d) => {
            assert_eq!(d.doc_id, sha256_hex(bytes));
            assert_eq!(d.byte_len as usize, bytes.len());
            assert!(!d.chunks.is_empty(), "Ok without chunks");
            check_pages_and_chunks(&d.doc_id, &d.pages, &d.chunks);
        }
        Err(e) => assert!(!e.message.is_empty(), "an error without a message"),
    }
}

/// Clean-up and chunking of raw pages, as `prepare_bytes` does it.
pub fn clean_and_chunk(bytes: &[u8], pages: &[esg_core::RawPage]) {
    let doc_id = sha256_hex(bytes);
    let cleaned = esg_core::clean_pages(pages.to_vec());
    assert_eq!(cleaned.len(), pages.len(), "clean-up keeps every page");
    let chunks = esg_core::chunk_pages(&doc_id, &cleaned, ChunkParams::default());
    check_pages_and_chunks(&doc_id, &cleaned, &chunks);
}
