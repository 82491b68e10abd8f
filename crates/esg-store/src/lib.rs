//! Storage for the ESG Scoring API.
//!
//! The [`Store`] trait is everything scoring and HTTP need from storage.
//! Two backends implement it with the same guarantees and the same contract
//! tests: the embedded default [`SqliteStore`], one SQLite database in WAL
//! mode in a data directory, and [`PgStore`], a PostgreSQL database shared by
//! several replicas. Each has its schema migrations versioned in the code
//! ([`SCHEMA_VERSION`], [`PG_SCHEMA_VERSION`]). [`StoreLocation`] says which
//! one a command line asks for (`--database-url` or `--data-dir`), and
//! [`open`] opens it.
//!
//! A document is stored whole or not at all: [`Store::put_document`] writes
//! the company, document, pages (with their layouts) and chunks in one
//! transaction, and storing the same bytes again (same `doc_id`) is a no-op
//! that says so ([`IngestOutcome::AlreadyIngested`]).

#![warn(missing_docs)]

pub mod copy;
pub mod files;
mod migrations;
mod pg_fresh;
mod pg_lease;
mod pg_migrations;
pub mod pg_tls;
pub mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

pub use copy::{CopySource, DocumentDigest, DocumentExport, ImportOutcome};
pub use esg_core::layout::PageLayout;
pub use esg_core::{Chunk, CleanedPage, MediaType};
pub use files::{FileStore, FileStoreError};
pub use migrations::SCHEMA_VERSION;
pub use postgres::{PG_SCHEMA_VERSION, PgOptions, PgStore, PoolStatus, redact_url};
pub use sqlite::{DB_FILE_NAME, SqliteStore};

/// Earliest report year accepted by [`Store::put_document`].
pub const MIN_YEAR: i32 = 1900;
/// Latest report year accepted by [`Store::put_document`].
pub const MAX_YEAR: i32 = 2200;

/// Errors from a [`Store`]. Absent records are not errors: lookups return
/// `Ok(None)` or an empty list.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database engine reported an error (including constraint
    /// violations and a lock wait that outlasted the busy timeout).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer version of this program; it is
    /// left untouched.
    #[error(
        "database schema version {found} is newer than the newest this program supports ({supported}); upgrade the program"
    )]
    SchemaTooNew {
        /// Schema version recorded in the database.
        found: u32,
        /// Newest schema version this program knows ([`SCHEMA_VERSION`]).
        supported: u32,
    },
    /// Stored data cannot be read back as the model says it should be.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The document offered to [`Store::put_document`] is invalid; nothing
    /// was written.
    #[error("invalid document: {0}")]
    Invalid(String),
    /// The database file or its directory could not be prepared.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The database cannot provide a guarantee the store relies on (for
    /// example WAL journaling on a file system without shared memory).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The database cannot be reached: connection refused or timed out, no
    /// pooled connection free within the timeout, connection lost
    /// mid-query, server shutting down (SQLSTATE class 08, 57P01–57P03,
    /// 53300). Nothing was written; retrying later may succeed (the server
    /// answers 503 `store_unavailable`).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// PostgreSQL refused a statement (any error other than
    /// [`StoreError::Unavailable`]); the message is the server's, with its
    /// SQLSTATE.
    #[error("postgresql: {0}")]
    Postgres(String),
    /// The store's configuration cannot be used (a database URL that does
    /// not parse, an unknown `sslmode`, a missing `sslrootcert` file);
    /// nothing was opened.
    #[error("configuration: {0}")]
    Config(String),
}

/// The checks of [`Store::put_vectors`] shared by every backend: a model
/// id, a dimension that fits the database, and `4 * dim` bytes per vector.
pub(crate) fn check_vectors(
    model: &str,
    dim: usize,
    vectors: &[ChunkVector],
) -> Result<(), StoreError> {
    if model.is_empty() {
        return Err(StoreError::Invalid("model id is empty".into()));
    }
    if dim == 0 || i64::try_from(dim).is_err() {
        return Err(StoreError::Invalid(format!("vector dimension {dim}")));
    }
    if let Some(v) = vectors.iter().find(|v| v.vector.len() != 4 * dim) {
        return Err(StoreError::Invalid(format!(
            "vector for chunk {} has {} bytes, expected {} ({dim} f32 values)",
            v.chunk_id,
            v.vector.len(),
            4 * dim
        )));
    }
    Ok(())
}

/// The checks of [`Store::put_rule_matches`] shared by every backend: a
/// rubric hash and a theme on every record.
pub(crate) fn check_rule_matches(
    rubric_sha256: &str,
    matches: &[RuleMatches],
) -> Result<(), StoreError> {
    if rubric_sha256.is_empty() {
        return Err(StoreError::Invalid("rubric_sha256 is empty".into()));
    }
    if let Some(m) = matches.iter().find(|m| m.theme.is_empty()) {
        return Err(StoreError::Invalid(format!(
            "rule matches of chunk {} have an empty theme",
            m.chunk_id
        )));
    }
    Ok(())
}

/// A page's layout as the `pages.layout` column of both backends holds it:
/// JSON of [`PageLayout`], `None` (SQL NULL) for a page without one.
pub(crate) fn layout_json(page: &CleanedPage) -> Result<Option<String>, StoreError> {
    page.layout
        .as_ref()
        .map(|l| {
            serde_json::to_string(l)
                .map_err(|e| StoreError::Invalid(format!("layout of page {}: {e}", page.number)))
        })
        .transpose()
}

/// Reads back a `pages.layout` column ([`layout_json`]); a value that does
/// not parse is [`StoreError::Corrupt`].
pub(crate) fn parse_layout(
    json: Option<&str>,
    doc_id: &str,
    page: u32,
) -> Result<Option<PageLayout>, StoreError> {
    json.map(|j| {
        serde_json::from_str(j).map_err(|e| {
            StoreError::Corrupt(format!(
                "pages.layout of {doc_id} page {page} is not a page layout: {e}"
            ))
        })
    })
    .transpose()
}

/// [`Store::documents_without_layouts`], the same SQL on both backends.
pub(crate) const DOCUMENTS_WITHOUT_LAYOUTS: &str = "SELECT d.doc_id FROM documents d \
     WHERE d.media_type = 'application/pdf' AND NOT EXISTS \
     (SELECT 1 FROM pages p WHERE p.document = d.id AND p.layout IS NOT NULL) \
     ORDER BY d.doc_id";

/// The JSON of layouts given to [`Store::fill_page_layouts`], checked as
/// [`validate`] checks a new document's.
pub(crate) fn fill_layout_json(
    doc_id: &str,
    layouts: &[(u32, PageLayout)],
) -> Result<Vec<(u32, String)>, StoreError> {
    layouts
        .iter()
        .map(|(page, l)| {
            if !layout_is_finite(l) {
                return Err(StoreError::Invalid(format!(
                    "layout of {doc_id} page {page} has a box with a coordinate that is not finite"
                )));
            }
            serde_json::to_string(l)
                .map(|j| (*page, j))
                .map_err(|e| StoreError::Invalid(format!("layout of {doc_id} page {page}: {e}")))
        })
        .collect()
}

/// `true` when every box of the layout has finite coordinates (JSON has no
/// NaN or infinity: such a box would not read back).
fn layout_is_finite(layout: &PageLayout) -> bool {
    layout
        .blocks
        .iter()
        .all(|b| b.bbox.is_finite() && b.lines.iter().all(|l| l.bbox.is_finite()))
}

/// A document ready to be stored: identity, provenance, cleaned pages and
/// chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// SHA-256 (lowercase hex) of the source file's bytes; the document's identity.
    pub doc_id: String,
    /// Company display name as given by the user.
    pub company: String,
    /// Report year.
    pub year: i32,
    /// File name only (no directories).
    pub filename: String,
    /// Format detected from the content.
    pub media_type: MediaType,
    /// Size of the source file in bytes.
    pub byte_len: u64,
    /// Cleaned pages (1-based numbers, unique), each with its layout if it
    /// has one (every box finite).
    pub pages: Vec<CleanedPage>,
    /// Chunks; each lies on one of `pages`.
    pub chunks: Vec<Chunk>,
    /// Extraction warnings worth keeping with the document.
    pub warnings: Vec<String>,
    /// The company's sector as the user gave it (free text, for example
    /// "Utilities"), if any; checked by [`normalize_sector`].
    pub sector: Option<String>,
}

/// A stored document, as listed and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentSummary {
    /// The document's identity: SHA-256 of the source bytes.
    pub doc_id: String,
    /// SHA-256 of the source bytes (equal to `doc_id`).
    pub sha256: String,
    /// Company display name (the first name the company was stored under).
    pub company: String,
    /// Company key ([`esg_core::company_key`]).
    pub company_key: String,
    /// Report year.
    pub year: i32,
    /// File name of the source.
    pub filename: String,
    /// Format of the source.
    pub media_type: MediaType,
    /// Number of pages stored.
    pub pages: u32,
    /// Number of chunks stored.
    pub chunks: u32,
    /// Size of the source file in bytes.
    pub bytes: u64,
    /// `true` when any page is virtual (a fixed-size slice of a page-less source).
    pub virtual_pages: bool,
    /// Extraction warnings.
    pub warnings: Vec<String>,
    /// The company's sector as given with this document, if any.
    pub sector: Option<String>,
    /// When the document was stored: RFC 3339, UTC, seconds precision, `Z`.
    pub ingested_at: String,
}

/// What [`Store::put_document`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// The document was new and is now stored.
    Ingested(DocumentSummary),
    /// A document with the same `doc_id` was already stored; nothing was
    /// written. Carries the stored document, which may name a different
    /// company, year or file name than the one offered.
    AlreadyIngested(DocumentSummary),
}

impl IngestOutcome {
    /// The stored document, whichever way it got there.
    pub fn summary(&self) -> &DocumentSummary {
        match self {
            IngestOutcome::Ingested(s) | IngestOutcome::AlreadyIngested(s) => s,
        }
    }

    /// Consumes the outcome, returning the stored document.
    pub fn into_summary(self) -> DocumentSummary {
        match self {
            IngestOutcome::Ingested(s) | IngestOutcome::AlreadyIngested(s) => s,
        }
    }

    /// `true` when this call stored the document.
    pub fn is_new(&self) -> bool {
        matches!(self, IngestOutcome::Ingested(_))
    }
}

/// A company on file with totals over its documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanySummary {
    /// Company key ([`esg_core::company_key`]).
    pub key: String,
    /// Display name (the first name the company was stored under).
    pub name: String,
    /// Distinct report years on file, ascending.
    pub years: Vec<i32>,
    /// Number of documents.
    pub documents: u32,
    /// Pages over all documents.
    pub pages: u32,
    /// Chunks over all documents.
    pub chunks: u32,
    /// Sector of the company's latest document (by year, then ingestion
    /// time) that names one; `None` when none does.
    pub sector: Option<String>,
}

impl CompanySummary {
    /// The report year to use for this company: `year` when documents for
    /// it are on file, the latest year on file when `year` is `None`, and
    /// `None` when there is no such year (or no document at all).
    pub fn year_on_file(&self, year: Option<i32>) -> Option<i32> {
        match year {
            None => self.years.last().copied(),
            Some(y) => self.years.contains(&y).then_some(y),
        }
    }
}

/// A chunk with the document it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredChunk {
    /// The document the chunk belongs to.
    pub doc_id: String,
    /// Report year of that document.
    pub year: i32,
    /// The chunk itself.
    #[serde(flatten)]
    pub chunk: Chunk,
}

/// Criterion matches of one theme's rules on one chunk, as scoring computed
/// them for one rubric (opaque to the store; see `esg_score::CompanyIndex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatches {
    /// The chunk matched.
    pub chunk_id: String,
    /// The theme code.
    pub theme: String,
    /// The encoded matches.
    pub data: Vec<u8>,
}

/// A chunk waiting for its vector of some model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChunk {
    /// The chunk.
    pub chunk_id: String,
    /// The document it belongs to.
    pub doc_id: String,
    /// Its text (what is embedded).
    pub text: String,
}

/// One chunk's sentence-embedding vector: `dim` f32 values, little-endian
/// (opaque to the store beyond its length; see `esg_embed::vector_to_le_bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkVector {
    /// The chunk.
    pub chunk_id: String,
    /// `4 × dim` bytes.
    pub vector: Vec<u8>,
}

/// How many chunks have a vector of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct VectorCounts {
    /// Chunks in scope.
    pub chunks: u64,
    /// Of those, chunks with a vector of the model.
    pub embedded: u64,
}

/// Totals over the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StoreCounts {
    /// Companies on file.
    pub companies: u64,
    /// Documents on file.
    pub documents: u64,
    /// Pages over all documents.
    pub pages: u64,
    /// Chunks over all documents.
    pub chunks: u64,
}

/// Everything the rest of the product needs from storage.
///
/// Companies are always addressed by name and matched by
/// [`esg_core::company_key`], so any spelling that normalises to the same key
/// finds the same company. Every list is sorted by a stable key. Every store
/// also keeps the chunks' embedding vectors ([`VectorStore`]).
pub trait Store: VectorStore + Send + Sync {
    /// Stores a document whole, or not at all.
    ///
    /// Returns [`IngestOutcome::AlreadyIngested`] without writing anything if
    /// a document with the same `doc_id` exists. The company is created on
    /// first use (the first display name wins). Invalid input gives
    /// [`StoreError::Invalid`] before anything is written; any failure leaves
    /// the store exactly as it was.
    fn put_document(&self, doc: &NewDocument) -> Result<IngestOutcome, StoreError>;

    /// The document with this `doc_id`, if stored.
    fn document(&self, doc_id: &str) -> Result<Option<DocumentSummary>, StoreError>;

    /// All companies, sorted by key.
    fn companies(&self) -> Result<Vec<CompanySummary>, StoreError>;

    /// The company whose key equals the key of `name`, if any.
    fn company(&self, name: &str) -> Result<Option<CompanySummary>, StoreError>;

    /// Documents, of one company (matched by key) or of all, sorted by
    /// company key, year, file name and `doc_id`.
    fn documents(&self, company: Option<&str>) -> Result<Vec<DocumentSummary>, StoreError>;

    /// The company whose key equals the key of `name` with its documents,
    /// as [`Store::company`] and [`Store::documents`] give them, reflecting
    /// every write committed before the call: what each scoring request
    /// needs first. PostgreSQL answers from listings it keeps while a
    /// change stamp, read by one trivial query shared by concurrent
    /// callers, proves them current.
    fn company_documents(
        &self,
        name: &str,
    ) -> Result<Option<(CompanySummary, Vec<DocumentSummary>)>, StoreError> {
        let Some(company) = self.company(name)? else {
            return Ok(None);
        };
        let documents = self.documents(Some(name))?;
        Ok(Some((company, documents)))
    }

    /// Chunks of one company (matched by key), of one year or of all years,
    /// sorted by `doc_id` then `seq`. Empty if the company is unknown.
    fn chunks(&self, company: &str, year: Option<i32>) -> Result<Vec<StoredChunk>, StoreError>;

    /// Cleaned text of one page (1-based) of one document, if stored.
    fn page_text(&self, doc_id: &str, page: u32) -> Result<Option<String>, StoreError>;

    /// Layout of one page (1-based) of one document: its blocks of lines
    /// with their boxes, as stored with the page. `None` when the document
    /// or the page is not stored, or the page has no layout (HTML and text
    /// sources, and pages stored before layouts were kept). A stored layout
    /// that does not parse is [`StoreError::Corrupt`].
    fn page_layout(&self, doc_id: &str, page: u32) -> Result<Option<PageLayout>, StoreError>;

    /// The `doc_id`s of PDF documents none of whose pages has a layout,
    /// sorted: documents stored before layouts were kept (SQLite migration
    /// 5, PostgreSQL migration 8), whose quotes get no box until
    /// [`Store::fill_page_layouts`] gives them one (`esg store
    /// fill-layouts`).
    fn documents_without_layouts(&self) -> Result<Vec<String>, StoreError>;

    /// Stores `layouts` (page number, layout) for the pages of document
    /// `doc_id` that have no layout yet, in one transaction, and returns
    /// how many pages got one. A page that has a layout, or is not stored,
    /// is left as it is; text, chunks and ids never change. An unknown
    /// document is [`StoreError::Invalid`], as is a layout with a
    /// coordinate that is not finite.
    fn fill_page_layouts(
        &self,
        doc_id: &str,
        layouts: &[(u32, PageLayout)],
    ) -> Result<usize, StoreError>;

    /// Totals over the whole store.
    fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// The criterion matches stored for rubric `rubric_sha256` on the chunks
    /// of one company (matched by key) and year, sorted by chunk id and
    /// theme. Empty when none are stored.
    fn rule_matches(
        &self,
        rubric_sha256: &str,
        company: &str,
        year: i32,
    ) -> Result<Vec<RuleMatches>, StoreError>;

    /// Stores criterion matches for rubric `rubric_sha256` in one
    /// transaction; matches already stored for the same rubric, chunk and
    /// theme are kept as they are. Returns how many were new. Every chunk
    /// must be stored ([`StoreError::Invalid`] otherwise, nothing written).
    fn put_rule_matches(
        &self,
        rubric_sha256: &str,
        matches: &[RuleMatches],
    ) -> Result<usize, StoreError>;

    /// The database system, as OpenTelemetry's `db.system.name` spells it:
    /// `"sqlite"` or `"postgresql"`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip to the database (readiness probes):
    /// [`StoreError::Unavailable`] when it cannot be reached.
    fn ping(&self) -> Result<(), StoreError>;

    /// The API keys kept in the database, shared by every replica: `Some`
    /// on PostgreSQL; `None` on SQLite, whose keys stay in the key file of
    /// the data directory.
    fn key_table(&self) -> Option<&dyn KeyTable>;
}

/// An API key as stored in the database (only its salted digest; the
/// secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's public id.
    pub id: String,
    /// A label for humans.
    pub label: String,
    /// When it was created: RFC 3339, UTC, seconds, `Z`.
    pub created_at: String,
    /// Salt, hex.
    pub salt: String,
    /// SHA-256 of salt and secret, hex.
    pub sha256: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// API keys in the database (see [`Store::key_table`]).
pub trait KeyTable: Send + Sync {
    /// All keys, revoked ones included, sorted by creation time then id.
    fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Adds a key; [`StoreError::Invalid`] when one with the same id exists.
    fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// Marks a key revoked at `at`; `false` when no key has this id. A key
    /// revoked before keeps its first revocation time.
    fn revoke_key(&self, id: &str, at: &str) -> Result<bool, StoreError>;
    /// A number that changes whenever a key is added or revoked, so a
    /// replica can tell cheaply whether to re-read the keys.
    fn keys_generation(&self) -> Result<i64, StoreError>;
}

/// Where the store lives, from `--database-url` and `--data-dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded SQLite database in a data directory.
    Sqlite {
        /// The data directory ([`DB_FILE_NAME`] inside it).
        data_dir: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// `postgres://` or `postgresql://` URL (may hold a password:
        /// show [`StoreLocation::describe`] instead).
        url: String,
    },
}

impl StoreLocation {
    /// `url` when given and not empty (`postgres://…`, `postgresql://…`, or
    /// `sqlite:DIR`), else SQLite in `data_dir`. Any other URL is
    /// [`StoreError::Config`].
    pub fn from_url_or_dir(url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(StoreLocation::Sqlite {
                data_dir: data_dir.to_path_buf(),
            });
        };
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres {
                url: url.to_string(),
            });
        }
        if let Some(dir) = url.strip_prefix("sqlite:") {
            let dir = dir.strip_prefix("//").unwrap_or(dir);
            if dir.is_empty() {
                return Err(StoreError::Config(
                    "database URL sqlite: names no directory (sqlite:DIR)".into(),
                ));
            }
            return Ok(StoreLocation::Sqlite {
                data_dir: PathBuf::from(dir),
            });
        }
        Err(StoreError::Config(format!(
            "database URL {} is neither postgres://… nor sqlite:DIR",
            redact_url(url)
        )))
    }

    /// For messages and logs: the URL with its password hidden, or the
    /// SQLite file's path.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sqlite { data_dir } => {
                format!("sqlite:{}", data_dir.join(DB_FILE_NAME).display())
            }
            StoreLocation::Postgres { url } => redact_url(url),
        }
    }
}

/// Opens the store at `loc` (creating and migrating it as needed); `opts`
/// apply to PostgreSQL only.
pub fn open(loc: &StoreLocation, opts: &PgOptions) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match loc {
        StoreLocation::Sqlite { data_dir } => Arc::new(SqliteStore::open_in_dir(data_dir)?),
        StoreLocation::Postgres { url } => Arc::new(PgStore::connect(url, opts)?),
    })
}

/// The sentence-embedding vectors of chunks (semantic retrieval, DESIGN §4).
///
/// Vectors are keyed by model id and chunk: vectors of different models
/// are never mixed, and all vectors of one model have one dimension. They
/// are written after their document is committed (ingestion never waits
/// for a model), in small transactions, so an interrupted backfill resumes
/// where it stopped. A supertrait of [`Store`]: code that only reads and
/// writes vectors (the embedding backfill) asks for no more than this.
pub trait VectorStore: Send + Sync {
    /// Up to `limit` chunks with no vector of `model`, of one document or of
    /// all, in (document, seq) order.
    fn chunks_without_vectors(
        &self,
        model: &str,
        doc_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PendingChunk>, StoreError>;

    /// Stores vectors of `model` with `dim` values each, in one transaction;
    /// a chunk that already has a vector of `model` keeps it. Returns how
    /// many were new. [`StoreError::Invalid`], with nothing written, when a
    /// chunk is not stored, a vector is not `4 × dim` bytes, or `model`
    /// already has vectors of another dimension
    /// ([`VectorStore::vector_dim`]).
    fn put_vectors(
        &self,
        model: &str,
        dim: usize,
        vectors: &[ChunkVector],
    ) -> Result<usize, StoreError>;

    /// The vectors of `model` on the chunks of one company (matched by key)
    /// and year, sorted by chunk id. Chunks without one are absent.
    fn vectors(
        &self,
        model: &str,
        company: &str,
        year: i32,
    ) -> Result<Vec<ChunkVector>, StoreError>;

    /// The dimension of the stored vectors of `model`, `None` when it has
    /// none.
    fn vector_dim(&self, model: &str) -> Result<Option<usize>, StoreError>;

    /// Chunks with and without a vector of `model`: of one company-year when
    /// `scope` is given, else of the whole store.
    fn vector_counts(
        &self,
        model: &str,
        scope: Option<(&str, i32)>,
    ) -> Result<VectorCounts, StoreError>;
}

/// Longest sector accepted, in characters.
pub const MAX_SECTOR_CHARS: usize = 100;

/// Checks and tidies a sector name as given by a user: surrounding and
/// repeated whitespace removed; `Ok(None)` when nothing is left; an error
/// message when it is longer than [`MAX_SECTOR_CHARS`] or holds control
/// characters.
pub fn normalize_sector(raw: &str) -> Result<Option<String>, String> {
    if raw.chars().any(char::is_control) {
        return Err("sector contains control characters".into());
    }
    let tidy = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if tidy.is_empty() {
        return Ok(None);
    }
    if tidy.chars().count() > MAX_SECTOR_CHARS {
        return Err(format!(
            "sector is longer than {MAX_SECTOR_CHARS} characters"
        ));
    }
    Ok(Some(tidy))
}

/// Checks a document before anything is written. Returns the company key.
pub(crate) fn validate(doc: &NewDocument) -> Result<String, StoreError> {
    use std::collections::HashSet;
    let invalid = |m: String| Err(StoreError::Invalid(m));

    if doc.doc_id.trim().is_empty() {
        return invalid("doc_id is empty".into());
    }
    let key = esg_core::company_key(&doc.company);
    if key.is_empty() {
        return invalid(format!(
            "company name {:?} has no letters or digits",
            doc.company
        ));
    }
    if !(MIN_YEAR..=MAX_YEAR).contains(&doc.year) {
        return invalid(format!(
            "year {} is outside {MIN_YEAR}..={MAX_YEAR}",
            doc.year
        ));
    }
    if let Some(sector) = &doc.sector {
        match normalize_sector(sector) {
            Ok(Some(tidy)) if &tidy == sector => {}
            Ok(_) => {
                return invalid(format!(
                    "sector {sector:?} is not normalised (see normalize_sector)"
                ));
            }
            Err(m) => return invalid(m),
        }
    }
    if i64::try_from(doc.byte_len).is_err() {
        return invalid(format!("byte_len {} is too large", doc.byte_len));
    }
    if u32::try_from(doc.pages.len()).is_err() || u32::try_from(doc.chunks.len()).is_err() {
        return invalid("too many pages or chunks".into());
    }

    let mut pages = HashSet::with_capacity(doc.pages.len());
    for p in &doc.pages {
        if p.number == 0 {
            return invalid("page number 0 (pages are 1-based)".into());
        }
        if !pages.insert(p.number) {
            return invalid(format!("page {} appears more than once", p.number));
        }
        if p.layout.as_ref().is_some_and(|l| !layout_is_finite(l)) {
            return invalid(format!(
                "page {} has a layout box with a coordinate that is not finite",
                p.number
            ));
        }
    }

    let mut ids = HashSet::with_capacity(doc.chunks.len());
    let mut seqs = HashSet::with_capacity(doc.chunks.len());
    for c in &doc.chunks {
        if c.chunk_id.is_empty() {
            return invalid(format!("chunk seq {} has an empty chunk_id", c.seq));
        }
        if !pages.contains(&c.page) {
            return invalid(format!(
                "chunk {} lies on page {}, which is not among the document's pages",
                c.chunk_id, c.page
            ));
        }
        if c.char_start > c.char_end {
            return invalid(format!(
                "chunk {} has char_start {} after char_end {}",
                c.chunk_id, c.char_start, c.char_end
            ));
        }
        if !ids.insert(c.chunk_id.as_str()) {
            return invalid(format!("chunk_id {} appears more than once", c.chunk_id));
        }
        if !seqs.insert(c.seq) {
            return invalid(format!("chunk seq {} appears more than once", c.seq));
        }
    }
    Ok(key)
}
