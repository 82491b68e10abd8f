//! Ingestion errors: a stable snake_case `code` and a specific message.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable machine-readable reasons a document could not be ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The path does not exist, is not a regular file, or cannot be read.
    UnreadablePath,
    /// The file has no bytes (or only white space).
    EmptyFile,
    /// The file is larger than the configured limit.
    FileTooLarge,
    /// The content is not PDF, HTML or text (e.g. an image or an Office file).
    UnsupportedFormat,
    /// The PDF is truncated or damaged beyond what the parser can recover.
    PdfDamaged,
    /// The PDF is encrypted and the empty user password does not open it.
    PdfPasswordRequired,
    /// The PDF uses an encryption scheme the parser does not support.
    PdfUnsupportedEncryption,
    /// The PDF has pages but no text layer (a scan without OCR).
    PdfNoTextLayer,
    /// The HTML is an error page (e.g. "500 error") with no report content.
    HtmlErrorPage,
    /// The document parsed but contains no usable text.
    NoText,
    /// Extraction exceeded its time bound.
    ExtractionTimeout,
    /// Extraction exceeded its memory bound.
    ExtractionMemoryLimit,
    /// The extraction process failed unexpectedly (crash, panic, bad output).
    ExtractionFailed,
    /// The store refused or failed the write.
    StorageError,
    /// The store could not be reached (a database that is down or
    /// restarting); nothing was stored, and the same request can be sent
    /// again later.
    StoreUnavailable,
}

impl ErrorCode {
    /// The snake_case code, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnreadablePath => "unreadable_path",
            ErrorCode::EmptyFile => "empty_file",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::UnsupportedFormat => "unsupported_format",
            ErrorCode::PdfDamaged => "pdf_damaged",
            ErrorCode::PdfPasswordRequired => "pdf_password_required",
            ErrorCode::PdfUnsupportedEncryption => "pdf_unsupported_encryption",
            ErrorCode::PdfNoTextLayer => "pdf_no_text_layer",
            ErrorCode::HtmlErrorPage => "html_error_page",
            ErrorCode::NoText => "no_text",
            ErrorCode::ExtractionTimeout => "extraction_timeout",
            ErrorCode::ExtractionMemoryLimit => "extraction_memory_limit",
            ErrorCode::ExtractionFailed => "extraction_failed",
            ErrorCode::StorageError => "storage_error",
            ErrorCode::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Why one document was not ingested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct IngestError {
    /// Stable reason code.
    pub code: ErrorCode,
    /// Human-readable, specific explanation.
    pub message: String,
}

impl IngestError {
    /// Builds an error from a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        IngestError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}
