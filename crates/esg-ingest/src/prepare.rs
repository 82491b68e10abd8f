//! From source bytes to a [`PreparedDocument`]: extract, clean, chunk.

use crate::error::{ErrorCode, IngestError};
use crate::sandbox::Extracted;
use esg_core::{Chunk, ChunkParams, CleanedPage, MediaType, chunk_pages, clean_pages, sha256_hex};
use std::io::Read;
use std::path::Path;

/// A document ready to be stored: identity, cleaned pages and chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedDocument {
    /// SHA-256 of the source bytes.
    pub doc_id: String,
    /// Detected format.
    pub media_type: MediaType,
    /// Size of the source in bytes.
    pub byte_len: u64,
    /// Every page of the source, cleaned (pages without text are kept, empty).
    pub pages: Vec<CleanedPage>,
    /// Chunks in reading order.
    pub chunks: Vec<Chunk>,
    /// Non-fatal problems met while extracting.
    pub warnings: Vec<String>,
}

/// Reads a source file, refusing directories, unreadable paths and files
/// larger than `max_bytes`.
pub fn read_source(path: &Path, max_bytes: u64) -> Result<Vec<u8>, IngestError> {
    let unreadable = |e: std::io::Error| {
        IngestError::new(
            ErrorCode::UnreadablePath,
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(IngestError::new(
            ErrorCode::UnreadablePath,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if meta.len() > max_bytes {
        return Err(too_large(meta.len(), max_bytes));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64, max_bytes));
    }
    Ok(bytes)
}

fn too_large(len: u64, max: u64) -> IngestError {
    IngestError::new(
        ErrorCode::FileTooLarge,
        format!("the file has {len} bytes, more than the limit of {max} bytes"),
    )
}

/// Extracts `bytes` with `extract` (a [`crate::Sandbox`] or
/// [`crate::extract_in_process`]), then cleans and chunks the pages.
pub fn prepare_bytes(
    bytes: &[u8],
    extract: impl FnOnce(&[u8]) -> Result<Extracted, IngestError>,
    params: ChunkParams,
) -> Result<PreparedDocument, IngestError> {
    prepare_hashed(bytes, sha256_hex(bytes), extract, params)
}

/// [`prepare_bytes`] for bytes whose SHA-256 (`doc_id`) the caller has
/// computed already: hashing a report takes ~1 ms per MB, and an ingest
/// used to hash the same bytes four times.
fn prepare_hashed(
    bytes: &[u8],
    doc_id: String,
    extract: impl FnOnce(&[u8]) -> Result<Extracted, IngestError>,
    params: ChunkParams,
) -> Result<PreparedDocument, IngestError> {
    debug_assert_eq!(doc_id, sha256_hex(bytes));
    let Extracted {
        media_type,
        pages,
        warnings,
    } = extract(bytes)?;
    let pages = clean_pages(pages);
    let chunks = chunk_pages(&doc_id, &pages, params);
    if chunks.is_empty() {
        return Err(match media_type {
            MediaType::Pdf => IngestError::new(
                ErrorCode::PdfNoTextLayer,
                "the PDF has no usable text layer (scanned images?)",
            ),
            _ => IngestError::new(
                ErrorCode::NoText,
                format!("the {} document contains no text", media_type.short()),
            ),
        });
    }
    Ok(PreparedDocument {
        doc_id,
        media_type,
        byte_len: bytes.len() as u64,
        pages,
        chunks,
        warnings,
    })
}

/// [`read_source`] then [`prepare_bytes`].
pub fn prepare_file(
    path: &Path,
    max_bytes: u64,
    extract: impl FnOnce(&[u8]) -> Result<Extracted, IngestError>,
    params: ChunkParams,
) -> Result<PreparedDocument, IngestError> {
    let bytes = read_source(path, max_bytes)?;
    prepare_bytes(&bytes, extract, params)
}

/// Where a document comes from and whom it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    /// Company display name.
    pub company: &'a str,
    /// Report year.
    pub year: i32,
    /// Source file name (no directories).
    pub filename: &'a str,
    /// The company's sector, if given, as [`esg_store::normalize_sector`]
    /// returns it (the store refuses any other spelling).
    pub sector: Option<&'a str>,
}

/// Ingests `bytes`: an already stored document is reported without being
/// extracted again; otherwise extract, clean, chunk and store in one
/// transaction.
pub fn ingest_bytes(
    store: &dyn esg_store::Store,
    bytes: &[u8],
    who: Provenance<'_>,
    extract: impl FnOnce(&[u8]) -> Result<Extracted, IngestError>,
    params: ChunkParams,
) -> Result<esg_store::IngestOutcome, IngestError> {
    ingest_hashed(store, bytes, sha256_hex(bytes), who, extract, params)
}

/// [`ingest_bytes`] for bytes whose SHA-256 (`doc_id`) the caller has
/// computed already.
pub(crate) fn ingest_hashed(
    store: &dyn esg_store::Store,
    bytes: &[u8],
    doc_id: String,
    who: Provenance<'_>,
    extract: impl FnOnce(&[u8]) -> Result<Extracted, IngestError>,
    params: ChunkParams,
) -> Result<esg_store::IngestOutcome, IngestError> {
    let storage = |e: esg_store::StoreError| {
        let code = match e {
            esg_store::StoreError::Unavailable(_) => ErrorCode::StoreUnavailable,
            _ => ErrorCode::StorageError,
        };
        IngestError::new(code, e.to_string())
    };
    if let Some(existing) = store.document(&doc_id).map_err(storage)? {
        return Ok(esg_store::IngestOutcome::AlreadyIngested(existing));
    }
    let prepared = prepare_hashed(bytes, doc_id, extract, params)?;
    let doc = esg_store::NewDocument {
        doc_id: prepared.doc_id,
        company: who.company.to_string(),
        year: who.year,
        filename: who.filename.to_string(),
        media_type: prepared.media_type,
        byte_len: prepared.byte_len,
        pages: prepared.pages,
        chunks: prepared.chunks,
        warnings: prepared.warnings,
        sector: who.sector.map(str::to_string),
    };
    store.put_document(&doc).map_err(storage)
}
