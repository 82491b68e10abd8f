//! The embedded backend: one SQLite database file in WAL mode.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use crate::migrations;
use crate::{
    Chunk, ChunkVector, CompanySummary, DocumentSummary, IngestOutcome, MediaType, NewDocument,
    PageLayout, PendingChunk, RuleMatches, Store, StoreCounts, StoreError, StoredChunk,
    VectorCounts, VectorStore, layout_json, parse_layout, validate,
};

/// Name of the database file that [`SqliteStore::open_in_dir`] uses.
pub const DB_FILE_NAME: &str = "esg.sqlite3";

/// How long a statement waits for another connection's lock before failing.
/// Writes are short (one document per transaction), so this is generous:
/// several `esg` processes sharing a data dir queue up instead of failing
/// with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a write of derived data ([`Store::put_rule_matches`]) waits for
/// another connection's write lock before giving up.
const DERIVED_BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The embedded [`Store`]: one SQLite database file.
///
/// Opened in WAL mode with foreign keys enforced and a busy timeout, so
/// several processes (and several `SqliteStore`s in one process) can share
/// the file: readers never block, writers queue. One connection is held
/// behind a mutex, so a single `SqliteStore` may be shared between threads.
/// Reads use a second connection: a writer waiting for another process's
/// write lock (up to the busy timeout) must not hold up searches and scoring,
/// which WAL lets read the last committed state meanwhile.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The text column `sql` selects for page `page` of `doc_id` (bound as
    /// `?1`, `?2`); `None` when the page is not stored or the value is NULL.
    fn page_column(
        &self,
        sql: &str,
        doc_id: &str,
        page: u32,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(sql)?;
        let value: Option<Option<String>> = stmt
            .query_row(params![doc_id, page], |r| r.get(0))
            .optional()?;
        Ok(value.flatten())
    }

    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to [`crate::SCHEMA_VERSION`].
    ///
    /// Fails with [`StoreError::SchemaTooNew`] if the database was written by
    /// a newer program, with [`StoreError::Corrupt`] if the file is not a
    /// SQLite database, and with [`StoreError::Unsupported`] if the file
    /// cannot be put in WAL mode.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_inner(path).map_err(|e| match e {
            StoreError::Sqlite(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
                ) =>
            {
                StoreError::Corrupt(format!("{}: {e}", path.display()))
            }
            other => other,
        })
    }

    fn open_inner(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Some lock waits (switching a fresh file to WAL, WAL recovery) can
        // report SQLITE_BUSY without consulting the busy handler; retry
        // those within the same overall budget.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        retry_busy(deadline, || configure(&conn))?;
        retry_busy(deadline, || migrations::migrate(&mut conn))?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        retry_busy(deadline, || configure(&reader))?;
        reader.pragma_update(None, "query_only", true)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            reader: Mutex::new(reader),
        })
    }

    /// Opens the store in a data directory, creating the directory if needed;
    /// the database file is [`DB_FILE_NAME`] inside it.
    pub fn open_in_dir(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create data directory {}: {e}", data_dir.display()),
            )
        })?;
        Self::open(&data_dir.join(DB_FILE_NAME))
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the database (`PRAGMA user_version`).
    /// Equal to [`crate::SCHEMA_VERSION`] once [`SqliteStore::open`] succeeded,
    /// unless a newer program has since migrated the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrations::current_version(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a transaction open:
        // rusqlite rolls back when the `Transaction` is dropped on unwind.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The read-only connection (see the type's documentation).
    fn read(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The transaction of [`Store::put_rule_matches`].
fn put_rule_matches(
    conn: &mut Connection,
    rubric_sha256: &str,
    matches: &[RuleMatches],
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut added = 0;

    {
        let mut exists = tx.prepare_cached("SELECT 1 FROM chunks WHERE chunk_id = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO rule_matches (rubric_sha256, chunk_id, theme, data) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for m in matches {
            if !exists.exists([&m.chunk_id])? {
                return Err(StoreError::Invalid(format!(
                    "rule matches for chunk {}, which is not stored",
                    m.chunk_id
                )));
            }
            added += insert.execute(params![rubric_sha256, m.chunk_id, m.theme, m.data])?;
        }
    }
    tx.commit()?;
    Ok(added)
}

/// Per-connection settings.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "foreign_keys", true)?;
    let fk: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    if !fk {
        return Err(StoreError::Unsupported(
            "SQLite was built without foreign key support".into(),
        ));
    }
    // WAL: readers do not block the writer and vice versa, which is what lets
    // several processes share one data dir. The mode is stored in the file.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unsupported(format!(
            "journal_mode is {mode:?}, WAL is required (is the file on a network file system?)"
        )));
    }
    // synchronous=NORMAL: in WAL mode this never corrupts the database; a
    // power loss (not a process crash) may only roll back the last few
    // commits. That is the right trade for ingest, which is idempotent and
    // can be re-run, and it avoids an fsync on every commit.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Retries `f` while SQLite reports busy/locked, until `deadline`.
fn retry_busy<T>(
    deadline: Instant,
    mut f: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Err(StoreError::Sqlite(e)) if is_busy(&e) && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn corrupt(what: &str, value: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} has impossible value {value}"))
}

fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

fn to_i32(v: i64, what: &str) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| corrupt(what, v))
}

fn saturating_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// Columns of a document summary, in the order [`RawDoc::from_row`] reads them.
const DOC_SELECT: &str = "SELECT d.doc_id, c.display_name, c.key, d.year, d.filename, d.media_type, \
     d.pages, d.chunks, d.bytes, d.virtual_pages, d.warnings, d.ingested_at, d.sector \
     FROM documents d JOIN companies c ON c.id = d.company_id";

/// A document row as SQLite types, before checking.
struct RawDoc {
    doc_id: String,
    company: String,
    company_key: String,
    year: i64,
    filename: String,
    media_type: String,
    pages: i64,
    chunks: i64,
    bytes: i64,
    virtual_pages: i64,
    warnings: String,
    ingested_at: String,
    sector: Option<String>,
}

impl RawDoc {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawDoc {
            doc_id: r.get(0)?,
            company: r.get(1)?,
            company_key: r.get(2)?,
            year: r.get(3)?,
            filename: r.get(4)?,
            media_type: r.get(5)?,
            pages: r.get(6)?,
            chunks: r.get(7)?,
            bytes: r.get(8)?,
            virtual_pages: r.get(9)?,
            warnings: r.get(10)?,
            ingested_at: r.get(11)?,
            sector: r.get(12)?,
        })
    }

    fn into_summary(self) -> Result<DocumentSummary, StoreError> {
        let media_type = MediaType::from_mime(&self.media_type)
            .ok_or_else(|| corrupt("documents.media_type", &self.media_type))?;
        let warnings: Vec<String> = serde_json::from_str(&self.warnings).map_err(|e| {
            StoreError::Corrupt(format!(
                "documents.warnings of {} is not a JSON array of strings: {e}",
                self.doc_id
            ))
        })?;
        Ok(DocumentSummary {
            sha256: self.doc_id.clone(),
            doc_id: self.doc_id,
            company: self.company,
            company_key: self.company_key,
            year: to_i32(self.year, "documents.year")?,
            filename: self.filename,
            media_type,
            pages: to_u32(self.pages, "documents.pages")?,
            chunks: to_u32(self.chunks, "documents.chunks")?,
            bytes: u64::try_from(self.bytes).map_err(|_| corrupt("documents.bytes", self.bytes))?,
            virtual_pages: self.virtual_pages != 0,
            warnings,
            ingested_at: self.ingested_at,
            sector: self.sector,
        })
    }
}

fn query_document(conn: &Connection, doc_id: &str) -> Result<Option<DocumentSummary>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{DOC_SELECT} WHERE d.doc_id = ?1"))?;
    let raw = stmt.query_row([doc_id], RawDoc::from_row).optional()?;
    raw.map(RawDoc::into_summary).transpose()
}

/// Totals per company; `key = None` lists all companies.
fn query_companies(
    conn: &Connection,
    key: Option<&str>,
) -> Result<Vec<CompanySummary>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.key, c.display_name, COUNT(d.id), COALESCE(SUM(d.pages), 0), \
                COALESCE(SUM(d.chunks), 0), COALESCE(GROUP_CONCAT(DISTINCT d.year), ''), \
                (SELECT s.sector FROM documents s \
                 WHERE s.company_id = c.id AND s.sector IS NOT NULL \
                 ORDER BY s.year DESC, s.ingested_at DESC, s.id DESC LIMIT 1) \
         FROM companies c LEFT JOIN documents d ON d.company_id = c.id \
         WHERE ?1 IS NULL OR c.key = ?1 \
         GROUP BY c.id ORDER BY c.key",
    )?;
    let rows = stmt.query_map([key], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (key, name, documents, pages, chunks, years, sector) = row?;
        let mut years = years
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<i32>().map_err(|_| corrupt("documents.year", s)))
            .collect::<Result<Vec<_>, _>>()?;
        years.sort_unstable();
        years.dedup();
        out.push(CompanySummary {
            key,
            name,
            years,
            documents: saturating_u32(documents),
            pages: saturating_u32(pages),
            chunks: saturating_u32(chunks),
            sector,
        });
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn put_document(&self, doc: &NewDocument) -> Result<IngestOutcome, StoreError> {
        let key = validate(doc)?;
        let layouts = doc
            .pages
            .iter()
            .map(layout_json)
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = self.lock();
        // IMMEDIATE takes the write lock up front: the existence check and
        // the inserts see the same state, so two writers of the same
        // document serialise into one Ingested and one AlreadyIngested.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(existing) = query_document(&tx, &doc.doc_id)? {
            return Ok(IngestOutcome::AlreadyIngested(existing)); // tx rolls back: nothing written
        }

        let now = now_rfc3339();
        tx.prepare_cached(
            "INSERT INTO companies (key, display_name, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO NOTHING",
        )?
        .execute(params![key, doc.company.trim(), now])?;
        let company_id: i64 = tx
            .prepare_cached("SELECT id FROM companies WHERE key = ?1")?
            .query_row([&key], |r| r.get(0))?;

        tx.prepare_cached(
            "INSERT INTO documents (doc_id, company_id, year, filename, media_type, pages, \
                 chunks, bytes, virtual_pages, warnings, ingested_at, sector) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            doc.doc_id,
            company_id,
            doc.year,
            doc.filename,
            doc.media_type.mime(),
            doc.pages.len() as i64,
            doc.chunks.len() as i64,
            doc.byte_len as i64, // validated to fit
            doc.pages.iter().any(|p| p.is_virtual),
            serde_json::to_string(&doc.warnings)
                .map_err(|e| StoreError::Invalid(format!("warnings: {e}")))?,
            now,
            doc.sector,
        ])?;
        let document = tx.last_insert_rowid();

        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO pages (document, page, text, is_virtual, layout) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (p, layout) in doc.pages.iter().zip(&layouts) {
                stmt.execute(params![document, p.number, p.text, p.is_virtual, layout])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO chunks (chunk_id, document, page, seq, char_start, char_end, text, \
                     sha256, words) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for c in &doc.chunks {
                stmt.execute(params![
                    c.chunk_id,
                    document,
                    c.page,
                    c.seq,
                    c.char_start,
                    c.char_end,
                    c.text,
                    c.sha256,
                    c.words
                ])?;
            }
        }

        let summary = query_document(&tx, &doc.doc_id)?.ok_or_else(|| {
            StoreError::Corrupt(format!("document {} not readable after insert", doc.doc_id))
        })?;
        tx.commit()?;
        Ok(IngestOutcome::Ingested(summary))
    }

    fn document(&self, doc_id: &str) -> Result<Option<DocumentSummary>, StoreError> {
        query_document(&self.read(), doc_id)
    }

    fn companies(&self) -> Result<Vec<CompanySummary>, StoreError> {
        query_companies(&self.read(), None)
    }

    fn company(&self, name: &str) -> Result<Option<CompanySummary>, StoreError> {
        let key = esg_core::company_key(name);
        if key.is_empty() {
            return Ok(None);
        }
        Ok(query_companies(&self.read(), Some(&key))?
            .into_iter()
            .next())
    }

    fn documents(&self, company: Option<&str>) -> Result<Vec<DocumentSummary>, StoreError> {
        let key = company.map(esg_core::company_key);
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "{DOC_SELECT} WHERE ?1 IS NULL OR c.key = ?1 \
             ORDER BY c.key, d.year, d.filename, d.doc_id"
        ))?;
        let rows = stmt.query_map([key], RawDoc::from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_summary()?);
        }
        Ok(out)
    }

    fn chunks(&self, company: &str, year: Option<i32>) -> Result<Vec<StoredChunk>, StoreError> {
        let key = esg_core::company_key(company);
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT d.doc_id, d.year, ch.chunk_id, ch.page, ch.seq, ch.char_start, ch.char_end, \
                    ch.text, ch.sha256, ch.words \
             FROM chunks ch \
             JOIN documents d ON d.id = ch.document \
             JOIN companies c ON c.id = d.company_id \
             WHERE c.key = ?1 AND (?2 IS NULL OR d.year = ?2) \
             ORDER BY d.doc_id, ch.seq",
        )?;
        let rows = stmt.query_map(params![key, year], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (doc_id, year, chunk_id, page, seq, char_start, char_end, text, sha256, words) =
                row?;
            out.push(StoredChunk {
                doc_id,
                year: to_i32(year, "documents.year")?,
                chunk: Chunk {
                    chunk_id,
                    page: to_u32(page, "chunks.page")?,
                    seq: to_u32(seq, "chunks.seq")?,
                    char_start: to_u32(char_start, "chunks.char_start")?,
                    char_end: to_u32(char_end, "chunks.char_end")?,
                    text,
                    sha256,
                    words: to_u32(words, "chunks.words")?,
                },
            });
        }
        Ok(out)
    }

    fn page_text(&self, doc_id: &str, page: u32) -> Result<Option<String>, StoreError> {
        self.page_column(
            "SELECT p.text FROM pages p JOIN documents d ON d.id = p.document \
             WHERE d.doc_id = ?1 AND p.page = ?2",
            doc_id,
            page,
        )
    }

    fn page_layout(&self, doc_id: &str, page: u32) -> Result<Option<PageLayout>, StoreError> {
        let json = self.page_column(
            "SELECT p.layout FROM pages p JOIN documents d ON d.id = p.document \
             WHERE d.doc_id = ?1 AND p.page = ?2",
            doc_id,
            page,
        )?;
        parse_layout(json.as_deref(), doc_id, page)
    }

    fn documents_without_layouts(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(crate::DOCUMENTS_WITHOUT_LAYOUTS)?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    fn fill_page_layouts(
        &self,
        doc_id: &str,
        layouts: &[(u32, PageLayout)],
    ) -> Result<usize, StoreError> {
        let json = crate::fill_layout_json(doc_id, layouts)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let document: Option<i64> = tx
            .query_row(
                "SELECT id FROM documents WHERE doc_id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(document) = document else {
            return Err(StoreError::Invalid(format!(
                "no document {doc_id} to give layouts to"
            )));
        };
        let mut filled = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE pages SET layout = ?3 WHERE document = ?1 AND page = ?2 AND layout IS NULL",
            )?;
            for (page, j) in &json {
                filled += stmt.execute(params![document, page, j])?;
            }
        }
        tx.commit()?;
        Ok(filled)
    }

    fn rule_matches(
        &self,
        rubric_sha256: &str,
        company: &str,
        year: i32,
    ) -> Result<Vec<RuleMatches>, StoreError> {
        let key = esg_core::company_key(company);
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            // CROSS JOIN fixes the join order: from the company's chunks
            // to their matches by primary key. Left to itself the planner
            // scanned every match of the rubric (all companies) first.
            "SELECT m.chunk_id, m.theme, m.data \
             FROM companies c \
             CROSS JOIN documents d ON d.company_id = c.id \
             CROSS JOIN chunks ch ON ch.document = d.id \
             CROSS JOIN rule_matches m ON m.rubric_sha256 = ?1 AND m.chunk_id = ch.chunk_id \
             WHERE c.key = ?2 AND d.year = ?3 \
             ORDER BY m.chunk_id, m.theme",
        )?;
        let rows = stmt.query_map(params![rubric_sha256, key, year], |r| {
            Ok(RuleMatches {
                chunk_id: r.get(0)?,
                theme: r.get(1)?,
                data: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn put_rule_matches(
        &self,
        rubric_sha256: &str,
        matches: &[RuleMatches],
    ) -> Result<usize, StoreError> {
        crate::check_rule_matches(rubric_sha256, matches)?;
        if matches.is_empty() {
            return Ok(0);
        }
        let mut conn = self.lock();
        // Derived data: wait briefly for another writer, never the full
        // busy timeout (a scoring run should not stall on a cache write).
        conn.busy_timeout(DERIVED_BUSY_TIMEOUT)?;
        let result = put_rule_matches(&mut conn, rubric_sha256, matches);
        conn.busy_timeout(BUSY_TIMEOUT)?;
        result
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.read().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn key_table(&self) -> Option<&dyn crate::KeyTable> {
        None
    }

    fn counts(&self) -> Result<StoreCounts, StoreError> {
        let conn = self.read();
        let (companies, documents, pages, chunks) = conn.query_row(
            "SELECT (SELECT COUNT(*) FROM companies), (SELECT COUNT(*) FROM documents), \
                    (SELECT COUNT(*) FROM pages), (SELECT COUNT(*) FROM chunks)",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )?;
        let n = |v: i64| u64::try_from(v).map_err(|_| corrupt("a row count", v));
        Ok(StoreCounts {
            companies: n(companies)?,
            documents: n(documents)?,
            pages: n(pages)?,
            chunks: n(chunks)?,
        })
    }
}

/// The transaction of [`VectorStore::put_vectors`].
fn put_vectors(
    conn: &mut Connection,
    model: &str,
    dim: usize,
    vectors: &[ChunkVector],
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Checked inside the write transaction, so two writers with different
    // dimensions cannot both pass.
    if let Some(found) = query_vector_dim(&tx, model)?
        && found != dim
    {
        return Err(StoreError::Invalid(format!(
            "model {model} has {found}-dimensional vectors stored; refusing {dim}-dimensional ones \
             (a different model under the same name?)"
        )));
    }
    let mut added = 0;
    {
        let mut exists = tx.prepare_cached("SELECT 1 FROM chunks WHERE chunk_id = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO chunk_vectors (model, chunk_id, dim, vector) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for v in vectors {
            if !exists.exists([&v.chunk_id])? {
                return Err(StoreError::Invalid(format!(
                    "vector for chunk {}, which is not stored",
                    v.chunk_id
                )));
            }
            added += insert.execute(params![model, v.chunk_id, dim as i64, v.vector])?;
        }
    }
    tx.commit()?;
    Ok(added)
}

fn query_vector_dim(conn: &Connection, model: &str) -> Result<Option<usize>, StoreError> {
    let dim: Option<i64> = conn
        .prepare_cached("SELECT dim FROM chunk_vectors WHERE model = ?1 LIMIT 1")?
        .query_row([model], |r| r.get(0))
        .optional()?;
    dim.map(|d| usize::try_from(d).map_err(|_| corrupt("chunk_vectors.dim", d)))
        .transpose()
}

impl VectorStore for SqliteStore {
    fn chunks_without_vectors(
        &self,
        model: &str,
        doc_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PendingChunk>, StoreError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT ch.chunk_id, d.doc_id, ch.text \
             FROM documents d \
             CROSS JOIN chunks ch ON ch.document = d.id \
             WHERE (?2 IS NULL OR d.doc_id = ?2) \
               AND NOT EXISTS (SELECT 1 FROM chunk_vectors v \
                               WHERE v.model = ?1 AND v.chunk_id = ch.chunk_id) \
             ORDER BY d.id, ch.seq \
             LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![model, doc_id, limit], |r| {
            Ok(PendingChunk {
                chunk_id: r.get(0)?,
                doc_id: r.get(1)?,
                text: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn put_vectors(
        &self,
        model: &str,
        dim: usize,
        vectors: &[ChunkVector],
    ) -> Result<usize, StoreError> {
        crate::check_vectors(model, dim, vectors)?;
        if vectors.is_empty() {
            return Ok(0);
        }
        let mut conn = self.lock();
        put_vectors(&mut conn, model, dim, vectors)
    }

    fn vectors(
        &self,
        model: &str,
        company: &str,
        year: i32,
    ) -> Result<Vec<ChunkVector>, StoreError> {
        let key = esg_core::company_key(company);
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            // As in `rule_matches`: from the company's chunks to their
            // vectors by primary key.
            "SELECT v.chunk_id, v.vector \
             FROM companies c \
             CROSS JOIN documents d ON d.company_id = c.id \
             CROSS JOIN chunks ch ON ch.document = d.id \
             CROSS JOIN chunk_vectors v ON v.model = ?1 AND v.chunk_id = ch.chunk_id \
             WHERE c.key = ?2 AND d.year = ?3 \
             ORDER BY v.chunk_id",
        )?;
        let rows = stmt.query_map(params![model, key, year], |r| {
            Ok(ChunkVector {
                chunk_id: r.get(0)?,
                vector: r.get(1)?,
            })
        })?;
        let mut out = rows.collect::<Result<Vec<_>, _>>()?;
        // The same chunk may belong to two documents of the year.
        out.dedup_by(|b, a| a.chunk_id == b.chunk_id);
        Ok(out)
    }

    fn vector_dim(&self, model: &str) -> Result<Option<usize>, StoreError> {
        query_vector_dim(&self.read(), model)
    }

    fn vector_counts(
        &self,
        model: &str,
        scope: Option<(&str, i32)>,
    ) -> Result<VectorCounts, StoreError> {
        let conn = self.read();
        let (chunks, embedded): (i64, i64) = match scope {
            None => conn.query_row(
                "SELECT (SELECT COUNT(*) FROM chunks), \
                        (SELECT COUNT(*) FROM chunk_vectors WHERE model = ?1)",
                [model],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
            Some((company, year)) => conn
                .prepare_cached(
                    "SELECT COUNT(*), COUNT(v.chunk_id) \
                     FROM companies c \
                     CROSS JOIN documents d ON d.company_id = c.id \
                     CROSS JOIN chunks ch ON ch.document = d.id \
                     LEFT JOIN chunk_vectors v ON v.model = ?1 AND v.chunk_id = ch.chunk_id \
                     WHERE c.key = ?2 AND d.year = ?3",
                )?
                .query_row(params![model, esg_core::company_key(company), year], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
        };
        let n = |v: i64| u64::try_from(v).map_err(|_| corrupt("a row count", v));
        Ok(VectorCounts {
            chunks: n(chunks)?,
            embedded: n(embedded)?,
        })
    }
}

impl crate::copy::CopySource for SqliteStore {
    fn doc_ids(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.read();
        let mut stmt = conn.prepare("SELECT doc_id FROM documents ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn export_document(
        &self,
        doc_id: &str,
    ) -> Result<Option<crate::copy::DocumentExport>, StoreError> {
        let mut conn = self.read();
        // One read transaction: a consistent snapshot of the document.
        let tx = conn.transaction()?;
        let Some(summary) = query_document(&tx, doc_id)? else {
            return Ok(None);
        };
        let (id, company_created_at): (i64, String) = tx.query_row(
            "SELECT d.id, c.created_at FROM documents d JOIN companies c ON c.id = d.company_id \
             WHERE d.doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut pages = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT page, text, is_virtual, layout FROM pages WHERE document = ?1 \
                 ORDER BY page",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                let number = to_u32(r.get(0)?, "pages.page")?;
                let layout: Option<String> = r.get(3)?;
                pages.push(crate::CleanedPage {
                    number,
                    text: r.get(1)?,
                    is_virtual: r.get(2)?,
                    layout: parse_layout(layout.as_deref(), doc_id, number)?,
                });
            }
        }
        let mut chunks = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT chunk_id, page, seq, char_start, char_end, text, sha256, words \
                 FROM chunks WHERE document = ?1 ORDER BY seq",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                chunks.push(Chunk {
                    chunk_id: r.get(0)?,
                    page: to_u32(r.get(1)?, "chunks.page")?,
                    seq: to_u32(r.get(2)?, "chunks.seq")?,
                    char_start: to_u32(r.get(3)?, "chunks.char_start")?,
                    char_end: to_u32(r.get(4)?, "chunks.char_end")?,
                    text: r.get(5)?,
                    sha256: r.get(6)?,
                    words: to_u32(r.get(7)?, "chunks.words")?,
                });
            }
        }
        let mut rule_matches = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT m.rubric_sha256, m.chunk_id, m.theme, m.data \
                 FROM chunks ch JOIN rule_matches m ON m.chunk_id = ch.chunk_id \
                 WHERE ch.document = ?1 ORDER BY m.rubric_sha256, m.chunk_id, m.theme",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                rule_matches.push((
                    r.get(0)?,
                    RuleMatches {
                        chunk_id: r.get(1)?,
                        theme: r.get(2)?,
                        data: r.get(3)?,
                    },
                ));
            }
        }
        let mut vectors = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT v.model, v.dim, v.chunk_id, v.vector \
                 FROM chunks ch JOIN chunk_vectors v ON v.chunk_id = ch.chunk_id \
                 WHERE ch.document = ?1 ORDER BY v.model, v.chunk_id",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                let dim: i64 = r.get(1)?;
                vectors.push((
                    r.get(0)?,
                    usize::try_from(dim).map_err(|_| corrupt("chunk_vectors.dim", dim))?,
                    ChunkVector {
                        chunk_id: r.get(2)?,
                        vector: r.get(3)?,
                    },
                ));
            }
        }
        Ok(Some(crate::copy::DocumentExport {
            summary,
            company_created_at,
            pages,
            chunks,
            rule_matches,
            vectors,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_is_send_sync_and_object_safe() {
        assert_send_sync::<SqliteStore>();
        let _: Option<&dyn Store> = None;
    }

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2025-01-01T00:00:00Z".len(), "{t}");
        assert!(t.ends_with('Z'), "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(&t).is_ok(), "{t}");
    }
}
