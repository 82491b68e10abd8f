//! PDF text extraction with oxidize-pdf: per page, in reading order.
//!
//! oxidize-pdf was chosen from the measured comparison in
//! `shared/notes/pdf-extraction.md`: best token precision and reading order,
//! rotated pages, AES-256 files with an empty password, clean errors on
//! damaged files and ~13 MB peak memory. Running headers and footers are
//! extracted (`include_artifacts`) and removed later by our own clean-up, so
//! untagged and tagged files are treated alike.
//!
//! No page is lost silently (issue 12). Content streams are decoded with
//! oxidize-pdf's explicit Flate recovery: a zlib stream cut short, or ending
//! without its Adler-32 checksum, gives the bytes before the damage, as
//! poppler and pdfium do (held-back reports had 26 pages of hundreds of
//! words stored empty with "FlateDecode incomplete or truncated zlib
//! stream"). Each recovery is a warning naming the page. A page from which
//! oxidize-pdf still gets no text is read again by a second parser, lopdf
//! (its own object parser and decoders, so a different failure profile; it
//! reads pages at 507/s in `shared/notes/pdf-extraction.md`), and the
//! warning says so; a page that draws text (`Tj`/`TJ`/`'`/`"` operators)
//! but from which neither gets any is kept empty with a warning. Pages
//! without text operators (images, blank pages) are empty without a warning.

use crate::error::{ErrorCode, IngestError};
use esg_core::RawPage;
use oxidize_pdf::parser::{ParseError, ParseOptions, PdfDocument, PdfReader};
use oxidize_pdf::text::{ExtractionOptions, TextExtractor, TextRecoveryAction};
use std::io::{Cursor, Read, Seek, SeekFrom};

/// Upper bound on text kept from one page (a hostile content stream can
/// repeat text without end).
pub const MAX_PAGE_TEXT_BYTES: usize = 1 << 20;

/// Upper bound on the decoded bytes of one content stream or form read with
/// Flate recovery (the parser's own cap for strict decoding is 256 MiB; the
/// worker's memory bound applies as well).
pub const MAX_STREAM_BYTES: usize = 64 << 20;

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
    let mut second = SecondReader::new(bytes);
    for i in 0..count {
        let n = i + 1;
        let mut extractor = TextExtractor::with_options(options.clone());
        let warned = out.warnings.len();
        let mut text = match extractor.extract_from_page_with_recovery(&doc, i, MAX_STREAM_BYTES) {
            Ok(r) => {
                for d in &r.diagnostics {
                    out.warnings.push(match &d.action {
                        TextRecoveryAction::Recovered(f) => format!(
                            "page {n}: a damaged content stream was decoded up to the damage ({:?}: {})",
                            f.kind, f.error
                        ),
                        TextRecoveryAction::Omitted { error } => {
                            format!("page {n}: an undecodable content stream was skipped ({error})")
                        }
                        other => format!("page {n}: content stream recovery: {other:?}"),
                    });
                }
                Some(r.text.text)
            }
            Err(e @ (ParseError::PdfLocked | ParseError::WrongPassword)) => {
                return Err(open_error(e));
            }
            Err(e) => {
                out.warnings
                    .push(format!("page {n}: text could not be extracted: {e}"));
                None
            }
        };
        if !text.as_deref().is_some_and(has_words) {
            match second.page_text(n) {
                Some(t) if has_words(&t) => {
                    out.warnings.push(format!(
                        "page {n}: the primary parser got no text; read with the second reader (lopdf)"
                    ));
                    text = Some(t);
                }
                // Text operators seen by lopdf, or content the primary
                // could not decode (it may have held text).
                _ if out.warnings.len() > warned || second.draws_text(n) => {
                    out.warnings.push(format!(
                        "page {n}: stored empty: no reader got text from it"
                    ));
                }
                _ => {}
            }
        }
        if text.is_none() {
            failed += 1;
        }
        out.pages.push(RawPage {
            number: n,
            text: text.unwrap_or_default(),
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
                    out.warnings.first().map_or("", String::as_str)
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

fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// lopdf, opened on first use (most documents never need it).
struct SecondReader<'a> {
    bytes: &'a [u8],
    doc: Option<Option<lopdf::Document>>,
}

impl<'a> SecondReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        SecondReader { bytes, doc: None }
    }

    fn doc(&mut self) -> Option<&lopdf::Document> {
        let bytes = self.bytes;
        self.doc
            .get_or_insert_with(|| {
                // lopdf may panic on hostile input; a panic here must not
                // cost the pages the primary parser did read.
                std::panic::catch_unwind(|| lopdf::Document::load_mem(bytes).ok())
                    .ok()
                    .flatten()
            })
            .as_ref()
    }

    /// Text of 1-based page `n`, bounded like the primary's.
    fn page_text(&mut self, n: u32) -> Option<String> {
        let doc = self.doc()?;
        let mut t =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.extract_text(&[n]).ok()))
                .ok()
                .flatten()?;
        if t.len() > MAX_PAGE_TEXT_BYTES {
            let mut cut = MAX_PAGE_TEXT_BYTES;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.truncate(cut);
        }
        Some(t)
    }

    /// `true` when page `n`'s content shows text (a text-showing operator).
    fn draws_text(&mut self, n: u32) -> bool {
        let Some(doc) = self.doc() else {
            return false;
        };
        let Some(&id) = doc.get_pages().get(&n) else {
            return false;
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lopdf::content::Content::decode(&doc.get_page_content(id))
                .ok()
                .is_some_and(|c| {
                    c.operations
                        .iter()
                        .any(|op| matches!(op.operator.as_str(), "Tj" | "TJ" | "'" | "\""))
                })
        }))
        .unwrap_or(false)
    }
}
