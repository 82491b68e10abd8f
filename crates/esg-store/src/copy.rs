//! Whole documents out of one store and into another (`esg store copy`).
//!
//! [`DocumentExport`] is everything a store keeps about one document: its
//! row (identity, year, file name, warnings, sector, `ingested_at`), its
//! company's display name and creation time, its pages (with their
//! layouts) and chunks, and the derived data hung on its chunks (criterion
//! matches, embedding vectors). Both backends export ([`CopySource`]);
//! PostgreSQL imports
//! ([`PgStore::import_document`](crate::PgStore::import_document)), one
//! document per transaction, so an interrupted copy resumes with the
//! documents it had not committed. [`DocumentExport::digest`] hashes the
//! lot, so a copy can be verified document by document.

use esg_core::{Chunk, CleanedPage};
use serde::Serialize;

use crate::{ChunkVector, DocumentSummary, RuleMatches, StoreError};

/// One document with everything stored about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentExport {
    /// The document row, as listed.
    pub summary: DocumentSummary,
    /// When the company was first stored.
    pub company_created_at: String,
    /// Pages, by number, each with its layout if it has one.
    pub pages: Vec<CleanedPage>,
    /// Chunks, by seq.
    pub chunks: Vec<Chunk>,
    /// Criterion matches on the chunks: (rubric sha256, matches), sorted by
    /// rubric, chunk id and theme.
    pub rule_matches: Vec<(String, RuleMatches)>,
    /// Embedding vectors on the chunks: (model, dim, vector), sorted by
    /// model and chunk id.
    pub vectors: Vec<(String, usize, ChunkVector)>,
}

/// Counts and a hash of one document, to compare a copy with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentDigest {
    /// Pages stored.
    pub pages: u64,
    /// Chunks stored.
    pub chunks: u64,
    /// Criterion-match rows.
    pub rule_matches: u64,
    /// Vectors.
    pub vectors: u64,
    /// SHA-256 over every field of the export (hex).
    pub sha256: String,
}

impl DocumentExport {
    /// Counts and the SHA-256 of a canonical serialisation of every field.
    pub fn digest(&self) -> DocumentDigest {
        use std::fmt::Write;
        let mut s = String::new();
        let d = &self.summary;
        // Length-prefixed fields: no two exports serialise alike.
        let mut field = |v: &str| {
            let _ = write!(s, "{}:{v};", v.len());
        };
        field(&d.doc_id);
        field(&d.company);
        field(&d.company_key);
        field(&d.year.to_string());
        field(&d.filename);
        field(d.media_type.mime());
        field(&d.pages.to_string());
        field(&d.chunks.to_string());
        field(&d.bytes.to_string());
        field(&d.virtual_pages.to_string());
        field(&serde_json::to_string(&d.warnings).unwrap_or_default());
        field(d.sector.as_deref().unwrap_or("\u{0}none"));
        field(&d.ingested_at);
        field(&self.company_created_at);
        for p in &self.pages {
            field(&p.number.to_string());
            field(&p.is_virtual.to_string());
            field(&p.text);
            match &p.layout {
                Some(l) => field(&serde_json::to_string(l).unwrap_or_default()),
                None => field("\u{0}none"),
            }
        }
        for c in &self.chunks {
            for v in [
                c.chunk_id.as_str(),
                &c.page.to_string(),
                &c.seq.to_string(),
                &c.char_start.to_string(),
                &c.char_end.to_string(),
                &c.words.to_string(),
                &c.sha256,
                &c.text,
            ] {
                field(v);
            }
        }
        for (rubric, m) in &self.rule_matches {
            field(rubric);
            field(&m.chunk_id);
            field(&m.theme);
            field(&hex(&m.data));
        }
        for (model, dim, v) in &self.vectors {
            field(model);
            field(&dim.to_string());
            field(&v.chunk_id);
            field(&hex(&v.vector));
        }
        DocumentDigest {
            pages: self.pages.len() as u64,
            chunks: self.chunks.len() as u64,
            rule_matches: self.rule_matches.len() as u64,
            vectors: self.vectors.len() as u64,
            sha256: esg_core::sha256_hex(s.as_bytes()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A store whose documents can be exported whole.
pub trait CopySource: Send + Sync {
    /// Every `doc_id`, in storage order (oldest first).
    fn doc_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Everything stored about one document, `None` if absent.
    fn export_document(&self, doc_id: &str) -> Result<Option<DocumentExport>, StoreError>;
}

/// What [`PgStore::import_document`](crate::PgStore::import_document) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The document was not in the target; it is now, whole.
    Copied,
    /// The document was already in the target: only criterion matches and
    /// vectors it lacked were added.
    AlreadyPresent,
}
