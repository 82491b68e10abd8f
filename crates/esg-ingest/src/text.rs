//! Plain text and Markdown: decoding, form-feed pages, virtual pages.

use crate::error::{ErrorCode, IngestError};
use esg_core::RawPage;

/// Plain text without form feeds is cut into virtual pages of about this many
/// characters (at a blank line when one is near), roughly one printed page.
pub const VIRTUAL_PAGE_CHARS: usize = 3500;

/// Decodes text bytes: UTF-8 (BOM allowed), UTF-16 with a BOM, or a
/// single-byte encoding (Windows-1252). Returns `None` for binary content
/// (NUL bytes or more than 1% other control characters).
pub fn decode(bytes: &[u8]) -> Option<String> {
    let text = if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        String::from_utf8_lossy(rest).into_owned()
    } else if bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff") {
        let le = bytes[0] == 0xff;
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|p| {
                if le {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => bytes.iter().map(|&b| windows_1252(b)).collect(),
        }
    };
    let mut control = 0usize;
    let mut total = 0usize;
    for c in text.chars() {
        total += 1;
        if c == '\0' {
            return None;
        }
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{0c}') {
            control += 1;
        }
    }
    (control * 100 <= total).then_some(text)
}

fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Splits decoded text into pages: at form feeds when there are any,
/// otherwise one page, or virtual pages of about [`VIRTUAL_PAGE_CHARS`].
pub fn extract_text(bytes: &[u8]) -> Result<Vec<RawPage>, IngestError> {
    let text = decode(bytes)
        .ok_or_else(|| IngestError::new(ErrorCode::UnsupportedFormat, "binary content"))?;
    let text = text.replace("\r\n", "\n");
    if text.contains('\u{0c}') {
        return Ok(text
            .split('\u{0c}')
            .enumerate()
            .map(|(i, t)| RawPage {
                number: i as u32 + 1,
                text: t.to_string(),
                is_virtual: false,
                layout: None,
            })
            .collect());
    }
    if text.chars().count() <= VIRTUAL_PAGE_CHARS * 3 / 2 {
        return Ok(vec![RawPage {
            number: 1,
            text,
            is_virtual: false,
            layout: None,
        }]);
    }
    Ok(virtual_pages(&text, VIRTUAL_PAGE_CHARS))
}

/// Cuts `text` into pages of about `size` characters, preferring a blank
/// line, then a line end, within the last third of each page.
pub fn virtual_pages(text: &str, size: usize) -> Vec<RawPage> {
    let mut pages = Vec::new();
    let mut rest = text;
    // Counted once and decremented per page: counting `rest` on every page
    // made long texts quadratic (20 MB took 29 s, 60 MB 252 s).
    let mut rest_chars = rest.chars().count();
    while !rest.is_empty() {
        let cut = if rest_chars <= size * 3 / 2 {
            rest.len()
        } else {
            let hard = rest.char_indices().nth(size).map_or(rest.len(), |(i, _)| i);
            let soft = rest.char_indices().nth(size * 2 / 3).map_or(0, |(i, _)| i);
            let window = &rest[soft..hard];
            window
                .rfind("\n\n")
                .map(|i| soft + i + 2)
                .or_else(|| window.rfind('\n').map(|i| soft + i + 1))
                .or_else(|| window.rfind(' ').map(|i| soft + i + 1))
                .unwrap_or(hard)
        };
        let page = &rest[..cut];
        rest_chars -= page.chars().count();
        pages.push(RawPage {
            number: pages.len() as u32 + 1,
            text: page.to_string(),
            is_virtual: true,
            layout: None,
        });
        rest = &rest[cut..];
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_feeds_are_pages() {
        let p = extract_text(b"one\x0ctwo\x0cthree").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[2].number, p[2].text.as_str(), p[2].is_virtual),
            (3, "three", false)
        );
    }

    #[test]
    fn long_text_gets_virtual_pages_at_paragraphs() {
        let para = "Word ".repeat(100) + "\n\n";
        let text = para.repeat(40);
        let pages = extract_text(text.as_bytes()).unwrap();
        assert!(pages.len() > 3);
        assert!(pages.iter().all(|p| p.is_virtual));
        assert_eq!(
            pages.iter().map(|p| p.text.as_str()).collect::<String>(),
            text
        );
        assert!(
            pages[..pages.len() - 1]
                .iter()
                .all(|p| p.text.ends_with("\n\n"))
        );
    }

    #[test]
    fn decodes_legacy_and_utf16() {
        assert_eq!(decode(b"caf\xe9 \x93quoted\x94").unwrap(), "café “quoted”");
        assert_eq!(decode(b"\xff\xfeh\x00i\x00").unwrap(), "hi");
        assert!(decode(b"a\x00b").is_none());
    }
}
