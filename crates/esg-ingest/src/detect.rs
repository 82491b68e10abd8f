//! Format detection from content: magic bytes and markup, never file names.

use crate::error::{ErrorCode, IngestError};
use esg_core::MediaType;

/// Known binary signatures we refuse by name.
const BINARY_MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (
        b"PK\x03\x04",
        "a ZIP archive (e.g. DOCX/XLSX); export it to PDF first",
    ),
    (
        b"\xd0\xcf\x11\xe0",
        "a legacy Office file (DOC/XLS); export it to PDF first",
    ),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "an executable"),
];

/// Detects the format of `bytes`.
///
/// PDF: `%PDF-` within the first 1024 bytes (as readers accept). HTML: after
/// an optional BOM, white space, comments and an XML declaration, the first
/// tag is a doctype or `<html>`/`<head>`/`<body>`, or the opening kilobytes
/// contain an `<html` tag. Text: valid UTF-8 (or UTF-16 with BOM, or
/// single-byte text) with almost no control characters.
pub fn detect(bytes: &[u8]) -> Result<MediaType, IngestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::new(ErrorCode::EmptyFile, "the file is empty"));
    }
    let head = &bytes[..bytes.len().min(1024)];
    if memfind(head, b"%PDF-").is_some() {
        return Ok(MediaType::Pdf);
    }
    for (magic, what) in BINARY_MAGIC {
        if bytes.starts_with(magic) {
            return Err(IngestError::new(
                ErrorCode::UnsupportedFormat,
                format!("not a supported format (PDF, HTML or text): the content is {what}"),
            ));
        }
    }
    if looks_like_headless_pdf(bytes) {
        return Err(IngestError::new(
            ErrorCode::PdfDamaged,
            "the file has PDF objects but no %PDF- header: it is a damaged PDF and cannot be read",
        ));
    }
    let text = crate::text::decode(bytes).ok_or_else(|| {
        IngestError::new(
            ErrorCode::UnsupportedFormat,
            "not a supported format (PDF, HTML or text): binary content with no known signature",
        )
    })?;
    if looks_like_html(&text) {
        Ok(MediaType::Html)
    } else {
        Ok(MediaType::Text)
    }
}

/// PDF syntax (`obj` with `xref`/`trailer`/`endobj`) in a file without a header.
fn looks_like_headless_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    memfind(head, b" obj").is_some()
        && [&b"endobj"[..], b"xref", b"trailer", b"startxref"]
            .iter()
            .any(|k| memfind(head, k).is_some())
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `true` when decoded text is an HTML/XHTML document.
pub fn looks_like_html(text: &str) -> bool {
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    // Skip an XML declaration and comments.
    loop {
        if rest.starts_with("<?xml") {
            match rest.find("?>") {
                Some(i) => rest = rest[i + 2..].trim_start(),
                None => return false,
            }
        } else if rest.starts_with("<!--") {
            match rest.find("-->") {
                Some(i) => rest = rest[i + 3..].trim_start(),
                None => return false,
            }
        } else {
            break;
        }
    }
    let lower: String = rest
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    if ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    let window: String = rest
        .chars()
        .take(4096)
        .collect::<String>()
        .to_ascii_lowercase();
    rest.starts_with('<') && window.contains("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content() {
        assert_eq!(detect(b"%PDF-1.7\n...").unwrap(), MediaType::Pdf);
        assert_eq!(
            detect(b"\n\n  %PDF-1.4 junk before header").unwrap(),
            MediaType::Pdf
        );
        assert_eq!(
            detect(b"<!DOCTYPE html><html><body>x</body></html>").unwrap(),
            MediaType::Html
        );
        assert_eq!(
            detect(b"<?xml version='1.0' encoding='ASCII'?>\n<!--c-->\n<html xmlns=\"x\"><body>x</body></html>").unwrap(),
            MediaType::Html
        );
        assert_eq!(
            detect("\u{feff}<html><p>x</p></html>".as_bytes()).unwrap(),
            MediaType::Html
        );
        assert_eq!(
            detect(b"Annual report\nWe cut emissions <by> 5%.").unwrap(),
            MediaType::Text
        );
        assert_eq!(
            detect(b"# Heading\n\nMarkdown *text*.").unwrap(),
            MediaType::Text
        );
    }

    #[test]
    fn refuses_empty_and_binary() {
        assert_eq!(detect(b"").unwrap_err().code, ErrorCode::EmptyFile);
        assert_eq!(detect(b" \n\t ").unwrap_err().code, ErrorCode::EmptyFile);
        let png = detect(b"\x89PNG\r\n\x1a\n....").unwrap_err();
        assert_eq!(png.code, ErrorCode::UnsupportedFormat);
        assert!(png.message.contains("PNG"));
        assert_eq!(
            detect(b"PK\x03\x04rest").unwrap_err().code,
            ErrorCode::UnsupportedFormat
        );
        assert_eq!(
            detect(&[0u8, 1, 2, 3, 0, 0, 5, 6, 7, 0]).unwrap_err().code,
            ErrorCode::UnsupportedFormat
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = detect(&bytes);
        }
    }
}
