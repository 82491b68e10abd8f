//! Ingestion for the ESG Scoring API: format detection by content, page-aware
//! text extraction (PDF, HTML including inline XBRL, plain text), clean-up and
//! chunking into a [`PreparedDocument`] ready to be stored.
//!
//! Extraction of untrusted files runs in a child process with a time and
//! memory bound ([`Sandbox`]), so a hostile file can neither hang nor exhaust
//! the machine, and a crash in a parser is a clean error, not a dead process.

pub mod detect;
pub mod error;
pub mod html;
pub mod keep;
pub mod layout;
pub mod pdf;
pub mod prepare;
pub mod sandbox;
pub mod text;

pub use detect::detect;
pub use error::{ErrorCode, IngestError};
pub use keep::ingest_keeping_source;
pub use prepare::{
    PreparedDocument, Provenance, ingest_bytes, prepare_bytes, prepare_file, read_source,
};
pub use sandbox::{Extracted, Sandbox, extract_in_process};
