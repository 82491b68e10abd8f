//! Core records: media types, pages as extracted, and chunks as stored.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The format of a document, detected from its content (never its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// A PDF file (`%PDF-` header).
    Pdf,
    /// An HTML or XHTML document, including inline-XBRL reports.
    Html,
    /// Plain text or Markdown.
    Text,
}

impl MediaType {
    /// The IANA media type string, as stored and reported.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::Html => "text/html",
            MediaType::Text => "text/plain",
        }
    }

    /// Parses the string produced by [`MediaType::mime`].
    pub fn from_mime(s: &str) -> Option<Self> {
        match s {
            "application/pdf" => Some(MediaType::Pdf),
            "text/html" => Some(MediaType::Html),
            "text/plain" => Some(MediaType::Text),
            _ => None,
        }
    }

    /// A short lowercase name (`pdf`, `html`, `text`), used as a metric label.
    pub fn short(self) -> &'static str {
        match self {
            MediaType::Pdf => "pdf",
            MediaType::Html => "html",
            MediaType::Text => "text",
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

/// One page of text as an extractor produced it, before clean-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawPage {
    /// 1-based page number in the source document.
    pub number: u32,
    /// Text in reading order, lines separated by `\n`, blank lines between blocks.
    pub text: String,
    /// `true` when the page is a fixed-size slice of a source that has no pages
    /// of its own (plain text without form feeds, HTML without page breaks).
    pub is_virtual: bool,
    /// Blocks and lines with their boxes (PDF pages the primary parser
    /// read); `None` for HTML and text, and for PDF text without positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<crate::layout::PageLayout>,
}

/// A retrievable passage: a contiguous span of one cleaned page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Deterministic id derived from the document hash, page and span.
    pub chunk_id: String,
    /// 1-based page number the chunk lies on.
    pub page: u32,
    /// Position of the chunk within the document (0-based, in reading order).
    pub seq: u32,
    /// Start of the span in the page text, in characters (Unicode scalar values).
    pub char_start: u32,
    /// End (exclusive) of the span in the page text, in characters.
    pub char_end: u32,
    /// The chunk's text: exactly the page text between `char_start` and `char_end`.
    pub text: String,
    /// SHA-256 of `text`.
    pub sha256: String,
    /// Number of words in `text`.
    pub words: u32,
}
