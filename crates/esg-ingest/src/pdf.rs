//! PDF text extraction with oxidize-pdf: per page, in reading order.
//!
//! oxidize-pdf was chosen from the measured comparison in
//! `shared/notes/pdf-extraction.md`: best token precision and reading order,
//! rotated pages, AES-256 files with an empty password, clean errors on
//! damaged files and ~13 MB peak memory. Running headers and footers are
//! extracted (`include_artifacts`) and removed later by our own clean-up, so
//! untagged and tagged files are treated alike.

use crate::error::{ErrorCode, IngestError};
use esg_core::RawPage;
use oxidize_pdf::parser::{ParseError, ParseOptions, PdfDocument, PdfReader};
use oxidize_pdf::text::ExtractionOptions;
use std::io::{Cursor, Read, Seek, SeekFrom};

/// Upper bound on text kept from one page (a hostile content stream can
/// repeat text without end).
pub const MAX_PAGE_TEXT_BYTES: usize = 1 << 20;

/// Reads past the end of the input allowed in a row, without a seek that
/// moves, before reading fails.
const MAX_EOF_READS: u32 = 1024;

/// The document's bytes as oxidize-pdf reads them, with one guard: a parser
/// that keeps reading at the end of the input without seeking elsewhere gets
/// an I/O error instead of more zero-length reads. oxidize-pdf 5.5.6 loops
/// for ever in `parse_traditional_xref` when an xref table runs into the end
/// of the file without a `trailer` (found by `cargo fuzz`; the inputs are in
/// `fuzz/regressions/`); the worker's timeout would end it, but only after
/// burning a core for the whole timeout.
struct EofGuard<'a> {
    inner: Cursor<&'a [u8]>,
    eof_reads: u32,
}

impl Read for EofGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 || buf.is_empty() {
            self.eof_reads = 0;
        } else {
            self.eof_reads += 1;
            if self.eof_reads > MAX_EOF_READS {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the parser kept reading past the end of the file",
                ));
            }
        }
        Ok(n)
    }
}

impl Seek for EofGuard<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let before = self.inner.position();
        let after = self.inner.seek(pos)?;
        // `stream_position()` is a seek that does not move: not progress.
        if after != before {
            self.eof_reads = 0;
        }
        Ok(after)
    }
}

/// Text of every page, and per-page warnings for pages that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdfText {
    /// One entry per page of the document, 1-based numbers.
    pub pages: Vec<RawPage>,
    /// Pages whose text could not be read, with the reason.
    pub warnings: Vec<String>,
}

fn open_error(e: ParseError) -> IngestError {
    match e {
        ParseError::EncryptionNotSupported => IngestError::new(
            ErrorCode::PdfUnsupportedEncryption,
            "the PDF is encrypted with a scheme that is not supported",
        ),
        ParseError::WrongPassword | ParseError::PdfLocked => IngestError::new(
            ErrorCode::PdfPasswordRequired,
            "the PDF is encrypted and needs a password to open; supply an unprotected copy",
        ),
        ParseError::EmptyFile => IngestError::new(ErrorCode::EmptyFile, "the file is empty"),
        other => IngestError::new(
            ErrorCode::PdfDamaged,
            format!("the PDF is damaged or truncated and cannot be read: {other}"),
        ),
    }
}

/// Extracts the text layer of a PDF, page by page.
///
/// Errors: damaged beyond recovery, password required, unsupported
/// encryption, or no text layer at all (every page empty).
pub fn extract_pdf(bytes: &[u8]) -> Result<PdfText, IngestError> {
    let input = EofGuard {
        inner: Cursor::new(bytes),
        eof_reads: 0,
    };
    let reader = PdfReader::new_with_options(input, ParseOptions::lenient()).map_err(open_error)?;
    if reader.is_encrypted() && !reader.is_unlocked() {
        return Err(IngestError::new(
            ErrorCode::PdfPasswordRequired,
            "the PDF is encrypted and the empty password does not open it; supply an unprotected copy",
        ));
    }
    let doc = PdfDocument::new(reader);
    let count = doc.page_count().map_err(open_error)?;
    if count == 0 {
        return Err(IngestError::new(
            ErrorCode::PdfDamaged,
            "the PDF has no pages",
        ));
    }
    let options = ExtractionOptions {
        include_artifacts: true,
        max_extracted_bytes: Some(MAX_PAGE_TEXT_BYTES),
        ..Default::default()
    };
    let mut out = PdfText::default();
    let mut failed = 0u32;
    for i in 0..count {
        let text = match doc.extract_text_from_page_with_options(i, options.clone()) {
            Ok(t) => t.text,
            Err(e @ (ParseError::PdfLocked | ParseError::WrongPassword)) => {
                return Err(open_error(e));
            }
            Err(e) => {
                failed += 1;
                out.warnings
                    .push(format!("page {}: text could not be extracted: {e}", i + 1));
                String::new()
            }
        };
        out.pages.push(RawPage {
            number: i + 1,
            text,
            is_virtual: false,
        });
    }
    let chars: usize = out
        .pages
        .iter()
        .map(|p| p.text.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    if chars == 0 {
        return Err(if failed == count {
            IngestError::new(
                ErrorCode::PdfDamaged,
                format!(
                    "no page of the PDF could be read ({count} pages; first error: {})",
                    out.warnings[0]
                ),
            )
        } else {
            IngestError::new(
                ErrorCode::PdfNoTextLayer,
                format!(
                    "the PDF has {count} page(s) but no text layer (scanned images?); run OCR first"
                ),
            )
        });
    }
    Ok(out)
}
