//! PDF text extraction with oxidize-pdf: per page, in reading order.
//!
//! oxidize-pdf was chosen from the measured comparison in
//! `shared/notes/pdf-extraction.md`: best token precision and reading order,
//! rotated pages, AES-256 files with an empty password, clean errors on
//! damaged files and ~13 MB peak memory. Running headers and footers are
//! extracted (`include_artifacts`) and removed later by our own clean-up, so
//! untagged and tagged files are treated alike.
//!
//! Pages are read by one thread per core ([`extract_pdf_with`]), each with
//! its own parser, so memory grows with the threads: the worker's peak RSS
//! on Bayer's 126 pages is 48 MB with one thread and 79 MB with two (GM:
//! 50 and 65 MB; with mimalloc v3, before f1fc30c, 86/129 and 96/121 MB).
//! Side by side on the 781 corpus pages
//! (`bench/ingest_vs_pdftotext.sh --runs 3 --one-thread`), `esg ingest`
//! went from 309 to 413 pages/s, PyMuPDF's 412.
//!
//! Each thread reads all its pages with one `TextExtractor`, which keeps
//! the fonts it parsed by object id: a new extractor per page parsed every
//! font (and inflated its ToUnicode CMap) again on every page. Same stored
//! text, layouts and chunks on all 15 corpus PDFs; side by side
//! (`bench/ingest_vs_pdftotext.sh --runs 3 --esg NEW --base OLD`) 363 →
//! 410 pages/s, and 1.22–1.28× PyMuPDF over three runs.
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
//!
//! Text drawn by annotation appearances is page text too: poppler and every
//! viewer draw it. A report's contents page made of push buttons (CarMax's
//! 2022 report: each entry a `/Widget` whose `/AP` form shows the title)
//! was stored with 5 of its 36 words, as neither oxidize-pdf nor pdfium's
//! text layer reads appearances. So the appearance streams of a page's
//! visible annotations (not `/Link` or `/Popup`, not hidden) are read with
//! lopdf, which decodes their fonts, and appended to the page's text, one
//! line per text object. Only pages that have such an annotation pay for
//! it (lopdf is opened on first use). Measured with
//! `bench/ingest_vs_pdftotext.sh --runs 3`, side by side with the build
//! before: CarMax (widgets on many pages) 365 → 257 pages/s, the 781 corpus
//! pages 287 → 281 pages/s; a document-wide lopdf parse is the cost.

use crate::error::{ErrorCode, IngestError};
use crate::layout::{Run, assemble};
use esg_core::RawPage;
use esg_core::layout::PageLayout;
use oxidize_pdf::parser::{ParseError, ParseOptions, PdfDocument, PdfReader};
use oxidize_pdf::text::{ExtractionOptions, TextExtractor, TextRecoveryAction};
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

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
#[derive(Debug, Clone, Default, PartialEq)]
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

/// Extracts the text layer of a PDF, page by page, with one thread per
/// core (see [`extract_pdf_with`]).
///
/// Errors: damaged beyond recovery, password required, unsupported
/// encryption, or no text layer at all (every page empty).
pub fn extract_pdf(bytes: &[u8]) -> Result<PdfText, IngestError> {
    extract_pdf_with(bytes, 0)
}

/// Fewest pages per extra thread: a short document is read by one thread
/// (each thread parses the document's cross-reference table and loads the
/// objects it needs for itself).
pub const MIN_PAGES_PER_THREAD: u32 = 4;

/// Threads [`extract_pdf_with`] uses for `threads` = 0: one per core the
/// process may run on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// [`extract_pdf`] with at most `threads` threads (0: one per core).
///
/// Pages are handed out one at a time to the threads, each with its own
/// parser over the same bytes (oxidize-pdf's document is not shared between
/// threads), and put back in page order; the text, layouts and warnings do
/// not depend on the number of threads. A thread that cannot be started
/// (the worker's address-space limit, say) leaves its pages to the others.
///
/// Why: reading a page's positioned runs is most of an ingest's time
/// (oxidize-pdf's `preserve_layout` path), and pages are independent (see
/// the module documentation for the measurement).
pub fn extract_pdf_with(bytes: &[u8], threads: usize) -> Result<PdfText, IngestError> {
    let doc = open(bytes)?;
    let count = doc.page_count().map_err(open_error)?;
    if count == 0 {
        return Err(IngestError::new(
            ErrorCode::PdfDamaged,
            "the PDF has no pages",
        ));
    }
    let threads = match threads {
        0 => default_threads(),
        n => n,
    }
    .min((count / MIN_PAGES_PER_THREAD).max(1) as usize);
    let next = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let work =
        |doc: &PdfDocument<EofGuard<'_>>| -> Result<Vec<(u32, PageText)>, (u32, IngestError)> {
            let mut second = SecondReader::new(bytes);
            // One extractor per thread for all its pages: it keeps the fonts
            // it parsed by object id, so a font shared by many pages is
            // parsed once, not once per page.
            let mut extractor = TextExtractor::with_options(extraction_options());
            let mut done = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                match page_text(doc, &mut extractor, &mut second, i) {
                    Ok(p) => done.push((i, p)),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err((i, e));
                    }
                }
            }
            Ok(done)
        };
    let results = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads)
            .map_while(|t| {
                std::thread::Builder::new()
                    .name(format!("pdf-pages-{t}"))
                    .spawn_scoped(s, || match open(bytes) {
                        Ok(doc) => work(&doc),
                        // The document opened once already; a helper that
                        // cannot open it leaves its pages to the others.
                        Err(_) => Ok(Vec::new()),
                    })
                    .ok()
            })
            .collect();
        let mut results = vec![work(&doc)];
        for h in helpers {
            // A panic in a parser reaches the caller as it would have
            // without threads (`extract_in_process` turns it into an error).
            results.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        results
    });
    let mut pages: Vec<(u32, PageText)> = Vec::with_capacity(count as usize);
    let mut fatal: Option<(u32, IngestError)> = None;
    for r in results {
        match r {
            Ok(done) => pages.extend(done),
            Err((i, e)) => {
                if fatal.as_ref().is_none_or(|(j, _)| i < *j) {
                    fatal = Some((i, e));
                }
            }
        }
    }
    if let Some((_, e)) = fatal {
        return Err(e);
    }
    pages.sort_unstable_by_key(|(i, _)| *i);
    debug_assert_eq!(pages.len(), count as usize);
    let mut out = PdfText::default();
    let mut failed = 0u32;
    for (i, p) in pages {
        if p.text.is_none() {
            failed += 1;
        }
        out.warnings.extend(p.warnings);
        out.pages.push(RawPage {
            number: i + 1,
            text: p.text.unwrap_or_default(),
            is_virtual: false,
            layout: p.layout,
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

/// Opens the document (lenient parsing, the empty password tried).
fn open(bytes: &[u8]) -> Result<PdfDocument<EofGuard<'_>>, IngestError> {
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
    Ok(PdfDocument::new(reader))
}

/// How oxidize-pdf reads a page: positioned runs in drawing order (no
/// sorting, no column detection, no hyphen fusion: `crate::layout` builds
/// lines and blocks, and the clean-up joins hyphenated words).
fn extraction_options() -> ExtractionOptions {
    ExtractionOptions {
        include_artifacts: true,
        max_extracted_bytes: Some(MAX_PAGE_TEXT_BYTES),
        preserve_layout: true,
        sort_by_position: false,
        detect_columns: false,
        merge_hyphenated: false,
        ..Default::default()
    }
}

/// What one page gave: its text (`None` when no reader could read it), its
/// layout, and its warnings.
struct PageText {
    text: Option<String>,
    layout: Option<PageLayout>,
    warnings: Vec<String>,
}

/// Reads 0-based page `i`: positioned runs assembled into lines and blocks,
/// the second reader when the primary gets nothing, then the text of the
/// page's annotation appearances. Errors only when the document needs a
/// password after all (every other failure is a warning).
fn page_text(
    doc: &PdfDocument<EofGuard<'_>>,
    extractor: &mut TextExtractor,
    second: &mut SecondReader<'_>,
    i: u32,
) -> Result<PageText, IngestError> {
    let n = i + 1;
    let mut warnings = Vec::new();
    let mut layout = None;
    let mut text = match extractor.extract_from_page_with_recovery(doc, i, MAX_STREAM_BYTES) {
        Ok(r) => {
            for d in &r.diagnostics {
                warnings.push(match &d.action {
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
            if r.text.fragments.is_empty() {
                Some(r.text.text)
            } else {
                let runs: Vec<Run> = r
                    .text
                    .fragments
                    .into_iter()
                    .map(|f| Run {
                        text: f.text,
                        x: f.x,
                        y: f.y,
                        width: f.width,
                        size: f.font_size,
                    })
                    .collect();
                let rotate = doc.get_page(i).map_or(0, |p| p.rotation);
                let (mut t, l) = assemble(&runs, rotate);
                // The runs are bounded; the line breaks between them
                // are not counted in that bound.
                if t.len() > MAX_PAGE_TEXT_BYTES {
                    truncate_at_char(&mut t, MAX_PAGE_TEXT_BYTES);
                }
                layout = Some(l);
                Some(t)
            }
        }
        Err(e @ (ParseError::PdfLocked | ParseError::WrongPassword)) => {
            return Err(open_error(e));
        }
        Err(e) => {
            warnings.push(format!("page {n}: text could not be extracted: {e}"));
            None
        }
    };
    if !text.as_deref().is_some_and(has_words) {
        match second.page_text(n) {
            Some(t) if has_words(&t) => {
                warnings.push(format!(
                    "page {n}: the primary parser got no text; read with the second reader (lopdf)"
                ));
                text = Some(t);
                layout = None;
            }
            // Text operators seen by lopdf, or content the primary
            // could not decode (it may have held text).
            _ if !warnings.is_empty() || second.draws_text(n) => {
                warnings.push(format!(
                    "page {n}: stored empty: no reader got text from it"
                ));
            }
            _ => {}
        }
    }
    if page_has_appearances(doc, i)
        && let Some(extra) = second.appearance_text(n)
        && has_words(&extra)
    {
        let t = text.get_or_insert_with(String::new);
        if !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
        // Text from annotations is not in the layout: a block of its own
        // that no chunk joins to the page's blocks.
        if !t.is_empty() && layout.is_some() {
            t.push('\n');
        }
        t.push_str(&extra);
        if t.len() > MAX_PAGE_TEXT_BYTES {
            truncate_at_char(t, MAX_PAGE_TEXT_BYTES);
        }
    }
    Ok(PageText {
        text,
        layout,
        warnings,
    })
}

fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

fn truncate_at_char(t: &mut String, max: usize) {
    let mut cut = max;
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t.truncate(cut);
}

/// Annotation flags (PDF 32000-1 §12.5.3) that keep an appearance from
/// being drawn: Hidden (2) and NoView (32).
const NOT_DRAWN: i64 = 2 | 32;

/// Whether an annotation's appearance is drawn text a reader sees: it has
/// an `/AP`, is not a link or pop-up, and is not hidden.
fn drawn_appearance(subtype: Option<&[u8]>, flags: i64, has_ap: bool) -> bool {
    has_ap && flags & NOT_DRAWN == 0 && !matches!(subtype, Some(b"Link" | b"Popup"))
}

/// `true` when 0-based page `index` has an annotation whose appearance is
/// drawn (checked with oxidize-pdf, so documents without one never open
/// the second reader).
fn page_has_appearances<R: Read + Seek>(doc: &PdfDocument<R>, index: u32) -> bool {
    let Ok(annots) = doc.get_page_annotations(index) else {
        return false;
    };
    annots.iter().any(|a| {
        let subtype = a
            .get("Subtype")
            .and_then(|o| o.as_name())
            .map(|n| n.as_str().as_bytes());
        let flags = a.get("F").and_then(|o| o.as_integer()).unwrap_or(0);
        drawn_appearance(subtype, flags, a.contains_key("AP"))
    })
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
            truncate_at_char(&mut t, MAX_PAGE_TEXT_BYTES);
        }
        Some(t)
    }

    /// Text drawn by the appearances of 1-based page `n`'s annotations (see
    /// the module documentation), one line per text object; `None` when
    /// the second reader cannot open the document.
    fn appearance_text(&mut self, n: u32) -> Option<String> {
        let doc = self.doc()?;
        let &id = doc.get_pages().get(&n)?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut out = String::new();
            for annot in doc.get_page_annotations(id).ok()? {
                let subtype = annot.get(b"Subtype").and_then(|o| o.as_name()).ok();
                let flags = annot.get(b"F").and_then(|o| o.as_i64()).unwrap_or(0);
                if !drawn_appearance(subtype, flags, annot.has(b"AP")) {
                    continue;
                }
                if let Some(form) = normal_appearance(doc, annot) {
                    form_text(doc, form, &mut out);
                }
                if out.len() > MAX_PAGE_TEXT_BYTES {
                    truncate_at_char(&mut out, MAX_PAGE_TEXT_BYTES);
                    break;
                }
            }
            Some(out)
        }))
        .ok()
        .flatten()
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

/// The form XObject an annotation shows in its normal state: `/AP /N`, or
/// the entry of `/AP /N` that `/AS` names.
fn normal_appearance<'a>(
    doc: &'a lopdf::Document,
    annot: &'a lopdf::Dictionary,
) -> Option<&'a lopdf::Stream> {
    let ap = doc
        .dereference(annot.get(b"AP").ok()?)
        .ok()?
        .1
        .as_dict()
        .ok()?;
    let normal = doc.dereference(ap.get(b"N").ok()?).ok()?.1;
    match normal {
        lopdf::Object::Stream(s) => Some(s),
        lopdf::Object::Dictionary(states) => {
            let state = annot.get(b"AS").and_then(|o| o.as_name()).ok()?;
            doc.dereference(states.get(state).ok()?)
                .ok()?
                .1
                .as_stream()
                .ok()
        }
        _ => None,
    }
}

/// Appends the text that form `form` shows (its own fonts decoded by
/// lopdf), a line per text object. Nested forms are not followed.
fn form_text(doc: &lopdf::Document, form: &lopdf::Stream, out: &mut String) {
    use lopdf::Object;
    let Ok(data) = form.decompressed_content_with_limit(MAX_STREAM_BYTES) else {
        return;
    };
    let Ok(content) = lopdf::content::Content::decode(&data) else {
        return;
    };
    let fonts = form
        .dict
        .get(b"Resources")
        .ok()
        .and_then(|r| doc.dereference(r).ok())
        .and_then(|(_, r)| r.as_dict().ok())
        .and_then(|r| r.get(b"Font").ok())
        .and_then(|f| doc.dereference(f).ok())
        .and_then(|(_, f)| f.as_dict().ok());
    let encoding = |name: &[u8]| {
        let font = doc
            .dereference(fonts?.get(name).ok()?)
            .ok()?
            .1
            .as_dict()
            .ok()?;
        font.get_font_encoding_with_limit(doc, MAX_STREAM_BYTES)
            .ok()
    };
    let mut current = None;
    let mut line = String::new();
    let show = |line: &mut String, enc: &lopdf::Encoding, o: &Object| match o {
        Object::String(bytes, _) => {
            let _ = enc.write_to_string(bytes, line);
        }
        // A gap of more than a tenth of an em in a TJ array is a space.
        Object::Integer(i) if *i < -100 => line.push(' '),
        Object::Real(r) if *r < -100.0 => line.push(' '),
        _ => {}
    };
    for op in &content.operations {
        match op.operator.as_str() {
            "Tf" => {
                current = op
                    .operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .and_then(encoding);
            }
            "Tj" | "'" | "\"" | "TJ" => {
                let Some(enc) = &current else { continue };
                for o in &op.operands {
                    match o {
                        Object::Array(items) => items.iter().for_each(|i| show(&mut line, enc, i)),
                        other => show(&mut line, enc, other),
                    }
                }
            }
            "ET" => {
                let t = line.trim();
                if !t.is_empty() {
                    out.push_str(t);
                    out.push('\n');
                }
                line.clear();
            }
            _ => {}
        }
    }
    let t = line.trim();
    if !t.is_empty() {
        out.push_str(t);
        out.push('\n');
    }
}
