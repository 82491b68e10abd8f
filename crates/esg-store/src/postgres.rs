//! The shared backend: a PostgreSQL database, for several replicas.
//!
//! # Client
//!
//! `tokio-postgres` (the rust-postgres project's client: pipelining,
//! prepared statements, binary protocol, arrays) behind `deadpool-postgres`,
//! a bounded pool with wait, create and recycle timeouts and a cheap
//! [`PoolStatus`] for metrics. sqlx was the other candidate; it brings its
//! own macros, query checking and many more crates for nothing this store
//! needs, and the synchronous `postgres` crate + r2d2 would start one
//! runtime per connection and give no wait statistics.
//!
//! # Sync facade over an async client
//!
//! The [`Store`] trait is synchronous (the server calls it from
//! `spawn_blocking` threads, the CLI from plain threads). A [`PgStore`]
//! therefore owns a small multi-thread tokio runtime (two workers, which
//! drive the connections) and every method `block_on`s one async block on
//! it. Calling from a `spawn_blocking` thread of another runtime is fine
//! (tested); calling from inside an async task is not (tokio panics: "Cannot
//! start a runtime from within a runtime") — wrap the call in
//! `spawn_blocking`. Dropping a `PgStore` anywhere is fine: the runtime is
//! shut down in the background.
//!
//! # Guarantees, as on SQLite
//!
//! * One transaction per document ([`Store::put_document`]); pages and
//!   chunks are sent as arrays (`INSERT ... SELECT FROM unnest(...)`), one
//!   statement each, so ingest does not pay a round trip per row.
//! * Idempotent by `doc_id` even when two replicas store the same bytes at
//!   the same moment: the document row is inserted with `ON CONFLICT
//!   (doc_id) DO NOTHING`, which waits for the other transaction; the loser
//!   rolls back and answers [`IngestOutcome::AlreadyIngested`].
//! * Migrations under an advisory lock (see `pg_migrations.rs`); a database
//!   migrated by a newer program is refused ([`StoreError::SchemaTooNew`]).
//! * Readers are never blocked by a writer (MVCC).
//!
//! # Errors
//!
//! Losing the database (connection refused or timed out, pool wait timed
//! out, connection closed mid-query, server shutting down: SQLSTATE class
//! 08, 57P01–57P03, 53300) is [`StoreError::Unavailable`], which the server
//! answers with 503; anything else is [`StoreError::Postgres`]. A query that
//! fails because its pooled connection turned out to be dead (the server
//! restarted) is retried once on a fresh connection.
//!
//! # TLS
//!
//! As libpq: the URL's `sslmode` (`disable`, `prefer` — the default —,
//! `require`, `verify-ca`, `verify-full`) and `sslrootcert`; see
//! [`crate::pg_tls`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::types::ToSql;

use crate::copy::{DocumentExport, ImportOutcome};
use crate::pg_fresh::{FreshStamps, Stamps};
use crate::pg_lease::{self, Lease};
use crate::pg_migrations;
use crate::{
    Chunk, ChunkVector, CompanySummary, DocumentSummary, IngestOutcome, KeyTable, MediaType,
    NewDocument, PageLayout, PendingChunk, RuleMatches, Store, StoreCounts, StoreError,
    StoredChunk, StoredKey, VectorCounts, VectorStore, layout_json, parse_layout, validate,
};

pub use crate::pg_migrations::PG_SCHEMA_VERSION;

/// Connection settings of a [`PgStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections open at once (the pool's bound). Default 16.
    pub pool_size: usize,
    /// Longest wait for a new connection, and for a free one from the
    /// pool. Default 5 s.
    pub connect_timeout: Duration,
    /// Longest any statement may run (`statement_timeout`). Default 30 s.
    pub statement_timeout: Duration,
    /// Hold a read lease (`pg_lease.rs`): trust the change stamps without
    /// a round trip per request, every writer waiting for this store to
    /// see its commits. For long-lived serving processes (`esg serve`);
    /// default off.
    pub read_lease: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            read_lease: false,
        }
    }
}

/// The pool's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    /// The pool's bound ([`PgOptions::pool_size`]).
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Connections checked out by a query right now.
    pub in_use: usize,
    /// Connections open and free.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// The PostgreSQL [`Store`] (see the module documentation).
pub struct PgStore {
    /// `Some` until dropped (taken in `Drop` to shut it down in the background).
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    described: String,
    stamps: FreshStamps,
    /// `Some` when [`PgOptions::read_lease`] asked for one.
    lease: Option<Arc<Lease>>,
    listings: Mutex<Listings>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.described)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Outside async code, remove the lease row so writers stop waiting
        // for this store at once (else they wait out its lease).
        if let (Some(rt), Some(replica)) = (&self.rt, self.lease.as_ref().and_then(|l| l.replica()))
            && tokio::runtime::Handle::try_current().is_err()
        {
            let pool = self.pool.clone();
            let _ = rt.block_on(async move {
                let forget =
                    with_pool_client(&pool, async |c| pg_lease::forget(&*c, &replica).await);
                tokio::time::timeout(Duration::from_secs(1), forget).await
            });
        }
        self.pool.close();
        if let Some(rt) = self.rt.take() {
            // Never blocks, so a PgStore may be dropped inside async code.
            rt.shutdown_background();
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also
/// hides a `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `true` when the error means the database cannot be reached (or is going
/// away), as opposed to a query the database refused.
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300");
    }
    let text = e.to_string();
    text.starts_with("error communicating with the server")
        || text.starts_with("error connecting to server")
        || text.starts_with("timeout waiting for server")
        || text.starts_with("error performing TLS handshake")
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// Converts a client error, keeping the server's message.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let msg = match (e.as_db_error(), std::error::Error::source(&e)) {
        (Some(db), _) => format!("{db} (SQLSTATE {})", db.code().code()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    };
    if is_unavailable(&e) {
        StoreError::Unavailable(msg)
    } else {
        StoreError::Postgres(msg)
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        PoolError::Timeout(t) => {
            StoreError::Unavailable(format!("no database connection within the timeout ({t:?})"))
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        other => StoreError::Postgres(other.to_string()),
    }
}

fn corrupt(what: &str, value: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} has impossible value {value}"))
}

fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

fn saturating_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn count(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt("a row count", v))
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL or a libpq
    /// key/value string), checks that it answers, and brings its schema up
    /// to [`PG_SCHEMA_VERSION`] under an advisory lock.
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached within
    /// the connect timeout, [`StoreError::SchemaTooNew`] when a newer
    /// program migrated the database, [`StoreError::Config`] for a URL
    /// that does not parse or names an unusable TLS setting.
    pub fn connect(url: &str, opts: &PgOptions) -> Result<PgStore, StoreError> {
        let described = redact_url(url);
        let in_url = |e: StoreError| match e {
            StoreError::Config(m) => StoreError::Config(format!("database URL {described}: {m}")),
            other => StoreError::Config(format!("database URL {described}: {other}")),
        };
        let tls = crate::pg_tls::parse(url).map_err(in_url)?;
        let mut cfg = tokio_postgres::Config::from_str(&tls.cleaned)
            .map_err(|e| in_url(StoreError::Config(e.to_string())))?;
        let connector = crate::pg_tls::connector(&tls).map_err(in_url)?;
        let statement_ms = opts.statement_timeout.as_millis().max(1);
        let options = match cfg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c statement_timeout={statement_ms}"),
            _ => format!("-c statement_timeout={statement_ms}"),
        };
        cfg.options(options);
        if cfg.get_application_name().is_none() {
            cfg.application_name("esg-scoring-api");
        }
        cfg.connect_timeout(opts.connect_timeout);

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("esg-store-pg")
            .enable_all()
            .build()?;
        let listener = opts.read_lease.then(|| (cfg.clone(), connector.clone()));
        let manager = Manager::from_config(
            cfg,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .wait_timeout(Some(opts.connect_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Postgres(format!("connection pool: {e}")))?;
        let mut store = PgStore {
            rt: Some(rt),
            stamps: FreshStamps::new(pool.clone(), opts.connect_timeout + opts.statement_timeout),
            lease: None,
            pool,
            described,
            listings: Mutex::default(),
        };
        store.with_client(async |c| pg_migrations::migrate(c).await)?;
        if let (Some((cfg, tls)), Some(rt)) = (listener, &store.rt) {
            store.lease = Some(Lease::start(rt.handle(), cfg, tls, opts.connect_timeout));
        }
        Ok(store)
    }

    /// The URL connected to, password hidden.
    pub fn describe(&self) -> &str {
        &self.described
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.with_client(async |c| pg_migrations::current_version(&*c).await)
    }

    /// The pool's state right now, for metrics.
    pub fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max_size: s.max_size,
            size: s.size,
            in_use: s.size.saturating_sub(s.available),
            idle: s.available,
            waiting: s.waiting,
        }
    }

    /// Whether the read lease holds right now (`None` when this store
    /// keeps none, [`PgOptions::read_lease`]).
    pub fn read_lease_held(&self) -> Option<bool> {
        self.lease.as_ref().map(|l| l.current().is_some())
    }

    /// The text column `sql` selects for page `page` of `doc_id` (bound as
    /// `$1`, `$2`); `None` when the page is not stored or the value is NULL.
    fn page_column(
        &self,
        sql: &str,
        doc_id: &str,
        page: u32,
    ) -> Result<Option<String>, StoreError> {
        let page = i64::from(page);
        self.with_client(async |c| {
            let stmt = c.prepare_cached(sql).await.map_err(pg_error)?;
            let row = c
                .query_opt(&stmt, &[&doc_id, &page])
                .await
                .map_err(pg_error)?;
            Ok(row.and_then(|r| r.get(0)))
        })
    }

    /// Runs `f` with a pooled connection on the store's runtime. A failure
    /// on a connection that turns out to be closed (the server restarted
    /// since it was pooled) is retried once on a fresh connection; every
    /// caller's work is one transaction, so a retry repeats all or nothing.
    fn with_client<T>(
        &self,
        f: impl AsyncFn(&mut deadpool_postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.block_on(with_pool_client(&self.pool, f))
    }

    /// The change stamps: the lease's when it holds, else read by a query
    /// that started after this call (`pg_fresh.rs`).
    fn current_stamps(&self) -> Result<Arc<Stamps>, StoreError> {
        if let Some(held) = self.lease.as_ref().and_then(|l| l.current()) {
            return Ok(held);
        }
        self.block_on(self.stamps.get())
    }

    fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt
            .as_ref()
            .expect("runtime present until drop")
            .block_on(f)
    }
}

/// Runs `f` with a connection of `pool`, retrying once on a fresh
/// connection when it fails on one that turns out to be closed (see
/// [`PgStore::with_client`]).
pub(crate) async fn with_pool_client<T>(
    pool: &Pool,
    f: impl AsyncFn(&mut deadpool_postgres::Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut retried = false;
    loop {
        let mut client = pool.get().await.map_err(pool_error)?;
        match f(&mut client).await {
            Err(StoreError::Unavailable(_)) if !retried && client.is_closed() => {
                retried = true;
                drop(deadpool_postgres::Object::take(client));
            }
            other => return other,
        }
    }
}

/// Company and document listings a [`PgStore`] keeps, valid while the data
/// stamp they were read under is current (see `pg_fresh.rs`).
#[derive(Debug, Default)]
struct Listings {
    /// The data stamp read before every listing kept here.
    stamp: String,
    by_key: HashMap<String, Option<(CompanySummary, Vec<DocumentSummary>)>>,
}

/// Most companies whose listings are kept; past it they are dropped and
/// read again (a listing is a few hundred bytes per document).
const LISTINGS_KEPT: usize = 10_000;

/// Columns of a document summary, in the order [`doc_from_row`] reads them.
const DOC_SELECT: &str = "SELECT d.doc_id, c.display_name, c.key, d.year, d.filename, \
     d.media_type, d.pages, d.chunks, d.bytes, d.virtual_pages, d.warnings, d.ingested_at, \
     d.sector FROM documents d JOIN companies c ON c.id = d.company_id";

fn doc_from_row(r: &tokio_postgres::Row) -> Result<DocumentSummary, StoreError> {
    let doc_id: String = r.get(0);
    let media: String = r.get(5);
    let media_type =
        MediaType::from_mime(&media).ok_or_else(|| corrupt("documents.media_type", &media))?;
    let warnings: String = r.get(10);
    let warnings: Vec<String> = serde_json::from_str(&warnings).map_err(|e| {
        StoreError::Corrupt(format!(
            "documents.warnings of {doc_id} is not a JSON array of strings: {e}"
        ))
    })?;
    let bytes: i64 = r.get(8);
    Ok(DocumentSummary {
        sha256: doc_id.clone(),
        doc_id,
        company: r.get(1),
        company_key: r.get(2),
        year: r.get(3),
        filename: r.get(4),
        media_type,
        pages: to_u32(r.get(6), "documents.pages")?,
        chunks: to_u32(r.get(7), "documents.chunks")?,
        bytes: u64::try_from(bytes).map_err(|_| corrupt("documents.bytes", bytes))?,
        virtual_pages: r.get(9),
        warnings,
        ingested_at: r.get(11),
        sector: r.get(12),
    })
}

async fn query_document(
    c: &impl GenericClient,
    doc_id: &str,
) -> Result<Option<DocumentSummary>, StoreError> {
    let stmt = c
        .prepare_cached(&format!("{DOC_SELECT} WHERE d.doc_id = $1"))
        .await
        .map_err(pg_error)?;
    let row = c.query_opt(&stmt, &[&doc_id]).await.map_err(pg_error)?;
    row.as_ref().map(doc_from_row).transpose()
}

async fn query_documents(
    c: &impl GenericClient,
    key: Option<&str>,
) -> Result<Vec<DocumentSummary>, StoreError> {
    let stmt = c
        .prepare_cached(&format!(
            "{DOC_SELECT} WHERE $1::TEXT IS NULL OR c.key = $1::TEXT \
             ORDER BY c.key, d.year, d.filename, d.doc_id"
        ))
        .await
        .map_err(pg_error)?;
    let rows = c.query(&stmt, &[&key]).await.map_err(pg_error)?;
    rows.iter().map(doc_from_row).collect()
}

async fn query_companies(
    c: &impl GenericClient,
    key: Option<&str>,
) -> Result<Vec<CompanySummary>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT c.key, c.display_name, COUNT(d.id), COALESCE(SUM(d.pages), 0)::BIGINT, \
                    COALESCE(SUM(d.chunks), 0)::BIGINT, \
                    COALESCE(array_agg(DISTINCT d.year) FILTER (WHERE d.year IS NOT NULL), \
                             '{}'::INTEGER[]), \
                    (SELECT s.sector FROM documents s \
                     WHERE s.company_id = c.id AND s.sector IS NOT NULL \
                     ORDER BY s.year DESC, s.ingested_at DESC, s.id DESC LIMIT 1) \
             FROM companies c LEFT JOIN documents d ON d.company_id = c.id \
             WHERE $1::TEXT IS NULL OR c.key = $1::TEXT \
             GROUP BY c.id ORDER BY c.key",
        )
        .await
        .map_err(pg_error)?;
    let rows = c.query(&stmt, &[&key]).await.map_err(pg_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut years: Vec<i32> = r.get(5);
        years.sort_unstable();
        years.dedup();
        out.push(CompanySummary {
            key: r.get(0),
            name: r.get(1),
            years,
            documents: saturating_u32(r.get(2)),
            pages: saturating_u32(r.get(3)),
            chunks: saturating_u32(r.get(4)),
            sector: r.get(6),
        });
    }
    Ok(out)
}

/// The transaction of [`Store::put_document`]; `Ok(None)` when another
/// transaction stored the same document first (this one rolled back).
async fn insert_document(
    c: &mut deadpool_postgres::Client,
    doc: &NewDocument,
    key: &str,
    ingested_at: &str,
) -> Result<Result<DocumentSummary, DocumentSummary>, StoreError> {
    let tx = c.transaction().await.map_err(pg_error)?;
    if let Some(existing) = query_document(&tx, &doc.doc_id).await? {
        tx.rollback().await.map_err(pg_error)?;
        return Ok(Err(existing));
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO companies (key, display_name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
        )
        .await
        .map_err(pg_error)?;
    tx.execute(&stmt, &[&key, &doc.company.trim(), &ingested_at])
        .await
        .map_err(pg_error)?;
    let stmt = tx
        .prepare_cached("SELECT id FROM companies WHERE key = $1")
        .await
        .map_err(pg_error)?;
    let company_id: i64 = tx.query_one(&stmt, &[&key]).await.map_err(pg_error)?.get(0);

    let warnings = serde_json::to_string(&doc.warnings)
        .map_err(|e| StoreError::Invalid(format!("warnings: {e}")))?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO documents (doc_id, company_id, year, filename, media_type, pages, \
                 chunks, bytes, virtual_pages, warnings, ingested_at, sector) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (doc_id) DO NOTHING RETURNING id",
        )
        .await
        .map_err(pg_error)?;
    let params: [&(dyn ToSql + Sync); 12] = [
        &doc.doc_id,
        &company_id,
        &doc.year,
        &doc.filename,
        &doc.media_type.mime(),
        &(doc.pages.len() as i64),
        &(doc.chunks.len() as i64),
        &(doc.byte_len as i64), // validated to fit
        &doc.pages.iter().any(|p| p.is_virtual),
        &warnings,
        &ingested_at,
        &doc.sector,
    ];
    let Some(row) = tx.query_opt(&stmt, &params).await.map_err(pg_error)? else {
        // Another transaction committed this doc_id while we were here
        // (ON CONFLICT waited for it): nothing of ours is kept.
        tx.rollback().await.map_err(pg_error)?;
        let existing = query_document(&*c, &doc.doc_id).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("document {} conflicted but is absent", doc.doc_id))
        })?;
        return Ok(Err(existing));
    };
    let document: i64 = row.get(0);

    insert_pages_and_chunks(&tx, document, doc).await?;

    let summary = query_document(&tx, &doc.doc_id).await?.ok_or_else(|| {
        StoreError::Corrupt(format!("document {} not readable after insert", doc.doc_id))
    })?;
    tx.commit().await.map_err(pg_error)?;
    Ok(Ok(summary))
}

/// Pages and chunks of a new document row, one `unnest` INSERT each.
async fn insert_pages_and_chunks(
    tx: &impl GenericClient,
    document: i64,
    doc: &NewDocument,
) -> Result<(), StoreError> {
    let numbers: Vec<i64> = doc.pages.iter().map(|p| i64::from(p.number)).collect();
    let texts: Vec<&str> = doc.pages.iter().map(|p| p.text.as_str()).collect();
    let virt: Vec<bool> = doc.pages.iter().map(|p| p.is_virtual).collect();
    let layouts = doc
        .pages
        .iter()
        .map(layout_json)
        .collect::<Result<Vec<_>, _>>()?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO pages (document, page, text, is_virtual, layout) \
             SELECT $1::BIGINT, u.page, u.text, u.is_virtual, u.layout \
             FROM unnest($2::BIGINT[], $3::TEXT[], $4::BOOLEAN[], $5::TEXT[]) \
                  AS u(page, text, is_virtual, layout)",
        )
        .await
        .map_err(pg_error)?;
    tx.execute(&stmt, &[&document, &numbers, &texts, &virt, &layouts])
        .await
        .map_err(pg_error)?;

    let ch = &doc.chunks;
    let ids: Vec<&str> = ch.iter().map(|c| c.chunk_id.as_str()).collect();
    let pages: Vec<i64> = ch.iter().map(|c| i64::from(c.page)).collect();
    let seqs: Vec<i64> = ch.iter().map(|c| i64::from(c.seq)).collect();
    let starts: Vec<i64> = ch.iter().map(|c| i64::from(c.char_start)).collect();
    let ends: Vec<i64> = ch.iter().map(|c| i64::from(c.char_end)).collect();
    let texts: Vec<&str> = ch.iter().map(|c| c.text.as_str()).collect();
    let shas: Vec<&str> = ch.iter().map(|c| c.sha256.as_str()).collect();
    let words: Vec<i64> = ch.iter().map(|c| i64::from(c.words)).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO chunks (chunk_id, document, page, seq, char_start, char_end, text, \
                 sha256, words) \
             SELECT u.chunk_id, $1::BIGINT, u.page, u.seq, u.char_start, u.char_end, u.text, \
                    u.sha256, u.words \
             FROM unnest($2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], \
                         $7::TEXT[], $8::TEXT[], $9::BIGINT[]) \
                  AS u(chunk_id, page, seq, char_start, char_end, text, sha256, words)",
        )
        .await
        .map_err(pg_error)?;
    tx.execute(
        &stmt,
        &[
            &document, &ids, &pages, &seqs, &starts, &ends, &texts, &shas, &words,
        ],
    )
    .await
    .map_err(pg_error)?;

    Ok(())
}

/// `true` for a unique violation (SQLSTATE 23505).
fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres(m) if m.contains("(SQLSTATE 23505)"))
}

impl Store for PgStore {
    fn put_document(&self, doc: &NewDocument) -> Result<IngestOutcome, StoreError> {
        let key = validate(doc)?;
        if let Some(m) = nul_in_document(doc) {
            return Err(StoreError::Invalid(m));
        }
        let now = now_rfc3339();
        self.with_client(async |c| {
            // A unique violation can only come from a race this statement
            // order does not absorb (the same chunk id stored concurrently
            // by another document); one retry answers it with the stored
            // state: AlreadyIngested if it was this document, else the
            // violation again.
            let mut attempt = 0;
            let outcome = loop {
                match insert_document(c, doc, &key, &now).await {
                    Ok(Ok(summary)) => break IngestOutcome::Ingested(summary),
                    Ok(Err(existing)) => break IngestOutcome::AlreadyIngested(existing),
                    Err(e) if attempt == 0 && is_unique_violation(&e) => attempt += 1,
                    Err(e) => return Err(e),
                }
            };
            // Also when it was already stored: the replica that stored it
            // may not have finished waiting, and this answer is an
            // acknowledgement too.
            pg_lease::await_replicas(&*c).await;
            Ok(outcome)
        })
    }

    fn document(&self, doc_id: &str) -> Result<Option<DocumentSummary>, StoreError> {
        self.with_client(async |c| query_document(&*c, doc_id).await)
    }

    fn companies(&self) -> Result<Vec<CompanySummary>, StoreError> {
        self.with_client(async |c| query_companies(&*c, None).await)
    }

    fn company(&self, name: &str) -> Result<Option<CompanySummary>, StoreError> {
        let key = esg_core::company_key(name);
        if key.is_empty() {
            return Ok(None);
        }
        let all = self.with_client(async |c| query_companies(&*c, Some(&key)).await)?;
        Ok(all.into_iter().next())
    }

    fn documents(&self, company: Option<&str>) -> Result<Vec<DocumentSummary>, StoreError> {
        let key = company.map(esg_core::company_key);
        self.with_client(async |c| query_documents(&*c, key.as_deref()).await)
    }

    /// One trivial read (shared with concurrent callers, `pg_fresh.rs`)
    /// when the listing kept for this company is still current; else both
    /// listings in one round trip (pipelined), kept under the stamp read
    /// before them.
    fn company_documents(
        &self,
        name: &str,
    ) -> Result<Option<(CompanySummary, Vec<DocumentSummary>)>, StoreError> {
        let key = esg_core::company_key(name);
        if key.is_empty() {
            return Ok(None);
        }
        let stamps = self.current_stamps()?;
        {
            let kept = self.listings.lock().unwrap_or_else(|p| p.into_inner());
            if kept.stamp == stamps.data
                && let Some(hit) = kept.by_key.get(&key)
            {
                return Ok(hit.clone());
            }
        }
        let listing = self.with_client(async |c| {
            let (companies, docs) = tokio::try_join!(
                query_companies(&*c, Some(&key)),
                query_documents(&*c, Some(&key)),
            )?;
            Ok(companies.into_iter().next().map(|c| (c, docs)))
        })?;
        let mut kept = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        if kept.stamp != stamps.data || kept.by_key.len() >= LISTINGS_KEPT {
            // Another stamp (newer, or older from a slower caller: either
            // way what is kept cannot be proved current any more).
            kept.stamp.clone_from(&stamps.data);
            kept.by_key.clear();
        }
        kept.by_key.insert(key, listing.clone());
        Ok(listing)
    }

    fn chunks(&self, company: &str, year: Option<i32>) -> Result<Vec<StoredChunk>, StoreError> {
        let key = esg_core::company_key(company);
        self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT d.doc_id, d.year, ch.chunk_id, ch.page, ch.seq, ch.char_start, \
                            ch.char_end, ch.text, ch.sha256, ch.words \
                     FROM chunks ch \
                     JOIN documents d ON d.id = ch.document \
                     JOIN companies c ON c.id = d.company_id \
                     WHERE c.key = $1 AND ($2::INTEGER IS NULL OR d.year = $2::INTEGER) \
                     ORDER BY d.doc_id, ch.seq",
                )
                .await
                .map_err(pg_error)?;
            let rows = c.query(&stmt, &[&key, &year]).await.map_err(pg_error)?;
            rows.iter()
                .map(|r| {
                    Ok(StoredChunk {
                        doc_id: r.get(0),
                        year: r.get(1),
                        chunk: Chunk {
                            chunk_id: r.get(2),
                            page: to_u32(r.get(3), "chunks.page")?,
                            seq: to_u32(r.get(4), "chunks.seq")?,
                            char_start: to_u32(r.get(5), "chunks.char_start")?,
                            char_end: to_u32(r.get(6), "chunks.char_end")?,
                            text: r.get(7),
                            sha256: r.get(8),
                            words: to_u32(r.get(9), "chunks.words")?,
                        },
                    })
                })
                .collect()
        })
    }

    fn page_text(&self, doc_id: &str, page: u32) -> Result<Option<String>, StoreError> {
        self.page_column(
            "SELECT p.text FROM pages p JOIN documents d ON d.id = p.document \
             WHERE d.doc_id = $1 AND p.page = $2",
            doc_id,
            page,
        )
    }

    fn page_layout(&self, doc_id: &str, page: u32) -> Result<Option<PageLayout>, StoreError> {
        let json = self.page_column(
            "SELECT p.layout FROM pages p JOIN documents d ON d.id = p.document \
             WHERE d.doc_id = $1 AND p.page = $2",
            doc_id,
            page,
        )?;
        parse_layout(json.as_deref(), doc_id, page)
    }

    fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.with_client(async |c| {
            let r = c
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM companies), (SELECT COUNT(*) FROM documents), \
                            (SELECT COUNT(*) FROM pages), (SELECT COUNT(*) FROM chunks)",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(StoreCounts {
                companies: count(r.get(0))?,
                documents: count(r.get(1))?,
                pages: count(r.get(2))?,
                chunks: count(r.get(3))?,
            })
        })
    }

    fn rule_matches(
        &self,
        rubric_sha256: &str,
        company: &str,
        year: i32,
    ) -> Result<Vec<RuleMatches>, StoreError> {
        let key = esg_core::company_key(company);
        self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT m.chunk_id, m.theme, m.data \
                     FROM companies c \
                     JOIN documents d ON d.company_id = c.id \
                     JOIN chunks ch ON ch.document = d.id \
                     JOIN rule_matches m ON m.rubric_sha256 = $1 AND m.chunk_id = ch.chunk_id \
                     WHERE c.key = $2 AND d.year = $3 \
                     ORDER BY m.chunk_id, m.theme",
                )
                .await
                .map_err(pg_error)?;
            let rows = c
                .query(&stmt, &[&rubric_sha256, &key, &year])
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| RuleMatches {
                    chunk_id: r.get(0),
                    theme: r.get(1),
                    data: r.get(2),
                })
                .collect())
        })
    }

    fn documents_without_layouts(&self) -> Result<Vec<String>, StoreError> {
        self.with_client(async |c| {
            let rows = c
                .query(crate::DOCUMENTS_WITHOUT_LAYOUTS, &[])
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn fill_page_layouts(
        &self,
        doc_id: &str,
        layouts: &[(u32, PageLayout)],
    ) -> Result<usize, StoreError> {
        let json = crate::fill_layout_json(doc_id, layouts)?;
        let numbers: Vec<i64> = json.iter().map(|(p, _)| i64::from(*p)).collect();
        let texts: Vec<&str> = json.iter().map(|(_, j)| j.as_str()).collect();
        self.with_client(async |c| {
            let tx = c.transaction().await.map_err(pg_error)?;
            let document: Option<i64> = tx
                .query_opt("SELECT id FROM documents WHERE doc_id = $1", &[&doc_id])
                .await
                .map_err(pg_error)?
                .map(|r| r.get(0));
            let Some(document) = document else {
                return Err(StoreError::Invalid(format!(
                    "no document {doc_id} to give layouts to"
                )));
            };
            let filled = tx
                .execute(
                    "UPDATE pages p SET layout = u.layout \
                     FROM unnest($2::BIGINT[], $3::TEXT[]) AS u(page, layout) \
                     WHERE p.document = $1 AND p.page = u.page AND p.layout IS NULL",
                    &[&document, &numbers, &texts],
                )
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(filled as usize)
        })
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
        let ids: Vec<&str> = matches.iter().map(|m| m.chunk_id.as_str()).collect();
        let themes: Vec<&str> = matches.iter().map(|m| m.theme.as_str()).collect();
        let data: Vec<&[u8]> = matches.iter().map(|m| m.data.as_slice()).collect();
        self.with_client(async |c| {
            let tx = c.transaction().await.map_err(pg_error)?;
            // Derived data: wait briefly for a conflicting writer, never the
            // full statement timeout (as SQLite's short busy timeout).
            tx.batch_execute("SET LOCAL lock_timeout = '250ms'")
                .await
                .map_err(pg_error)?;
            check_chunks_exist(&tx, &ids, "rule matches").await?;
            let added = tx
                .execute(
                    "INSERT INTO rule_matches (rubric_sha256, chunk_id, theme, data) \
                     SELECT $1, u.chunk_id, u.theme, u.data \
                     FROM unnest($2::TEXT[], $3::TEXT[], $4::BYTEA[]) AS u(chunk_id, theme, data) \
                     ON CONFLICT DO NOTHING",
                    &[&rubric_sha256, &ids, &themes, &data],
                )
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(added as usize)
        })
    }

    fn backend(&self) -> &'static str {
        "postgresql"
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.simple_query("SELECT 1").await.map_err(pg_error)?;
            Ok(())
        })
    }

    fn key_table(&self) -> Option<&dyn KeyTable> {
        Some(self)
    }
}

/// A NUL character cannot be stored in PostgreSQL text (SQLite keeps it).
fn nul_in_document(doc: &NewDocument) -> Option<String> {
    let has = |s: &str| s.contains('\0');
    if has(&doc.company) || has(&doc.filename) || doc.warnings.iter().any(|w| has(w)) {
        return Some("a NUL character in the company, file name or warnings".into());
    }
    if let Some(p) = doc.pages.iter().find(|p| has(&p.text)) {
        return Some(format!("page {} contains a NUL character", p.number));
    }
    if let Some(c) = doc.chunks.iter().find(|c| has(&c.text)) {
        return Some(format!("chunk {} contains a NUL character", c.chunk_id));
    }
    None
}

/// [`StoreError::Invalid`] naming the first of `ids` that is not a stored chunk.
async fn check_chunks_exist(
    tx: &impl GenericClient,
    ids: &[&str],
    what: &str,
) -> Result<(), StoreError> {
    let missing = tx
        .query_opt(
            "SELECT u.id FROM unnest($1::TEXT[]) AS u(id) \
             WHERE NOT EXISTS (SELECT 1 FROM chunks ch WHERE ch.chunk_id = u.id) LIMIT 1",
            &[&ids],
        )
        .await
        .map_err(pg_error)?;
    match missing {
        Some(r) => Err(StoreError::Invalid(format!(
            "{what} for chunk {}, which is not stored",
            r.get::<_, String>(0)
        ))),
        None => Ok(()),
    }
}

async fn query_vector_dim(
    c: &impl GenericClient,
    model: &str,
) -> Result<Option<usize>, StoreError> {
    let row = c
        .query_opt(
            "SELECT dim FROM chunk_vectors WHERE model = $1 LIMIT 1",
            &[&model],
        )
        .await
        .map_err(pg_error)?;
    row.map(|r| {
        let d: i64 = r.get(0);
        usize::try_from(d).map_err(|_| corrupt("chunk_vectors.dim", d))
    })
    .transpose()
}

impl VectorStore for PgStore {
    fn chunks_without_vectors(
        &self,
        model: &str,
        doc_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PendingChunk>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT ch.chunk_id, d.doc_id, ch.text \
                     FROM documents d JOIN chunks ch ON ch.document = d.id \
                     WHERE ($2::TEXT IS NULL OR d.doc_id = $2::TEXT) \
                       AND NOT EXISTS (SELECT 1 FROM chunk_vectors v \
                                       WHERE v.model = $1 AND v.chunk_id = ch.chunk_id) \
                     ORDER BY d.id, ch.seq LIMIT $3",
                )
                .await
                .map_err(pg_error)?;
            let rows = c
                .query(&stmt, &[&model, &doc_id, &limit])
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| PendingChunk {
                    chunk_id: r.get(0),
                    doc_id: r.get(1),
                    text: r.get(2),
                })
                .collect())
        })
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
        let ids: Vec<&str> = vectors.iter().map(|v| v.chunk_id.as_str()).collect();
        let data: Vec<&[u8]> = vectors.iter().map(|v| v.vector.as_slice()).collect();
        let dim_i = dim as i64;
        self.with_client(async |c| {
            let tx = c.transaction().await.map_err(pg_error)?;
            // One writer per model at a time, so two writers with different
            // dimensions cannot both pass the check below.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('esg.vectors:' || $1, 0))",
                &[&model],
            )
            .await
            .map_err(pg_error)?;
            if let Some(found) = query_vector_dim(&tx, model).await?
                && found != dim
            {
                return Err(StoreError::Invalid(format!(
                    "model {model} has {found}-dimensional vectors stored; refusing \
                     {dim}-dimensional ones (a different model under the same name?)"
                )));
            }
            check_chunks_exist(&tx, &ids, "vector").await?;
            let added = tx
                .execute(
                    "INSERT INTO chunk_vectors (model, chunk_id, dim, vector) \
                     SELECT $1, u.chunk_id, $2, u.vector \
                     FROM unnest($3::TEXT[], $4::BYTEA[]) AS u(chunk_id, vector) \
                     ON CONFLICT DO NOTHING",
                    &[&model, &dim_i, &ids, &data],
                )
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(added as usize)
        })
    }

    fn vectors(
        &self,
        model: &str,
        company: &str,
        year: i32,
    ) -> Result<Vec<ChunkVector>, StoreError> {
        let key = esg_core::company_key(company);
        let mut out = self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT v.chunk_id, v.vector \
                     FROM companies c \
                     JOIN documents d ON d.company_id = c.id \
                     JOIN chunks ch ON ch.document = d.id \
                     JOIN chunk_vectors v ON v.model = $1 AND v.chunk_id = ch.chunk_id \
                     WHERE c.key = $2 AND d.year = $3 \
                     ORDER BY v.chunk_id",
                )
                .await
                .map_err(pg_error)?;
            let rows = c
                .query(&stmt, &[&model, &key, &year])
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| ChunkVector {
                    chunk_id: r.get(0),
                    vector: r.get(1),
                })
                .collect::<Vec<_>>())
        })?;
        out.dedup_by(|b, a| a.chunk_id == b.chunk_id);
        Ok(out)
    }

    fn vector_dim(&self, model: &str) -> Result<Option<usize>, StoreError> {
        self.with_client(async |c| query_vector_dim(&*c, model).await)
    }

    fn vector_counts(
        &self,
        model: &str,
        scope: Option<(&str, i32)>,
    ) -> Result<VectorCounts, StoreError> {
        self.with_client(async |c| {
            let r = match scope {
                None => c
                    .query_one(
                        "SELECT (SELECT COUNT(*) FROM chunks), \
                                (SELECT COUNT(*) FROM chunk_vectors WHERE model = $1)",
                        &[&model],
                    )
                    .await
                    .map_err(pg_error)?,
                Some((company, year)) => c
                    .query_one(
                        "SELECT COUNT(*), COUNT(v.chunk_id) \
                         FROM companies c \
                         JOIN documents d ON d.company_id = c.id \
                         JOIN chunks ch ON ch.document = d.id \
                         LEFT JOIN chunk_vectors v ON v.model = $1 AND v.chunk_id = ch.chunk_id \
                         WHERE c.key = $2 AND d.year = $3",
                        &[&model, &esg_core::company_key(company), &year],
                    )
                    .await
                    .map_err(pg_error)?,
            };
            Ok(VectorCounts {
                chunks: count(r.get(0))?,
                embedded: count(r.get(1))?,
            })
        })
    }
}

async fn bump_generation(tx: &impl GenericClient) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE api_keys_generation SET generation = generation + 1",
        &[],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

impl KeyTable for PgStore {
    fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.with_client(async |c| {
            let rows = c
                .query(
                    "SELECT id, label, created_at, salt, sha256, revoked_at FROM api_keys \
                     ORDER BY created_at, id",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| StoredKey {
                    id: r.get(0),
                    label: r.get(1),
                    created_at: r.get(2),
                    salt: r.get(3),
                    sha256: r.get(4),
                    revoked_at: r.get(5),
                })
                .collect())
        })
    }

    fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        if key.id.is_empty() {
            return Err(StoreError::Invalid("key id is empty".into()));
        }
        self.with_client(async |c| {
            let tx = c.transaction().await.map_err(pg_error)?;
            let n = tx
                .execute(
                    "INSERT INTO api_keys (id, label, created_at, salt, sha256, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                    &[
                        &key.id,
                        &key.label,
                        &key.created_at,
                        &key.salt,
                        &key.sha256,
                        &key.revoked_at,
                    ],
                )
                .await
                .map_err(pg_error)?;
            if n == 0 {
                tx.rollback().await.map_err(pg_error)?;
                return Err(StoreError::Invalid(format!(
                    "an API key with id {} exists",
                    key.id
                )));
            }
            bump_generation(&tx).await?;
            tx.commit().await.map_err(pg_error)?;
            pg_lease::await_replicas(&*c).await;
            Ok(())
        })
    }

    fn revoke_key(&self, id: &str, at: &str) -> Result<bool, StoreError> {
        self.with_client(async |c| {
            let tx = c.transaction().await.map_err(pg_error)?;
            let n = tx
                .execute(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&id, &at],
                )
                .await
                .map_err(pg_error)?;
            if n == 1 {
                bump_generation(&tx).await?;
                tx.commit().await.map_err(pg_error)?;
                pg_lease::await_replicas(&*c).await;
                return Ok(true);
            }
            let known = tx
                .query_opt("SELECT 1 FROM api_keys WHERE id = $1", &[&id])
                .await
                .map_err(pg_error)?
                .is_some();
            tx.rollback().await.map_err(pg_error)?;
            if known {
                // Revoked by someone else, who may still be waiting for
                // the replicas; this answer says "revoked" too.
                pg_lease::await_replicas(&*c).await;
            }
            Ok(known)
        })
    }

    /// Read by a query that started after this call, shared with
    /// concurrent callers (`pg_fresh.rs`).
    fn keys_generation(&self) -> Result<i64, StoreError> {
        Ok(self.current_stamps()?.keys)
    }
}

impl crate::copy::CopySource for PgStore {
    fn doc_ids(&self) -> Result<Vec<String>, StoreError> {
        self.with_client(async |c| {
            let rows = c
                .query("SELECT doc_id FROM documents ORDER BY id", &[])
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn export_document(&self, doc_id: &str) -> Result<Option<DocumentExport>, StoreError> {
        self.with_client(async |c| {
            // REPEATABLE READ: one snapshot for all the reads below.
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(pg_error)?;
            let Some(summary) = query_document(&tx, doc_id).await? else {
                return Ok(None);
            };
            let r = tx
                .query_one(
                    "SELECT d.id, c.created_at FROM documents d \
                     JOIN companies c ON c.id = d.company_id WHERE d.doc_id = $1",
                    &[&doc_id],
                )
                .await
                .map_err(pg_error)?;
            let id: i64 = r.get(0);
            let company_created_at: String = r.get(1);
            let pages = tx
                .query(
                    "SELECT page, text, is_virtual, layout FROM pages WHERE document = $1 \
                     ORDER BY page",
                    &[&id],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| {
                    let number = to_u32(r.get(0), "pages.page")?;
                    Ok(crate::CleanedPage {
                        number,
                        text: r.get(1),
                        is_virtual: r.get(2),
                        layout: parse_layout(r.get(3), doc_id, number)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let chunks = tx
                .query(
                    "SELECT chunk_id, page, seq, char_start, char_end, text, sha256, words \
                     FROM chunks WHERE document = $1 ORDER BY seq",
                    &[&id],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| {
                    Ok(Chunk {
                        chunk_id: r.get(0),
                        page: to_u32(r.get(1), "chunks.page")?,
                        seq: to_u32(r.get(2), "chunks.seq")?,
                        char_start: to_u32(r.get(3), "chunks.char_start")?,
                        char_end: to_u32(r.get(4), "chunks.char_end")?,
                        text: r.get(5),
                        sha256: r.get(6),
                        words: to_u32(r.get(7), "chunks.words")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let rule_matches = tx
                .query(
                    "SELECT m.rubric_sha256, m.chunk_id, m.theme, m.data \
                     FROM chunks ch JOIN rule_matches m ON m.chunk_id = ch.chunk_id \
                     WHERE ch.document = $1 ORDER BY m.rubric_sha256, m.chunk_id, m.theme",
                    &[&id],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        RuleMatches {
                            chunk_id: r.get(1),
                            theme: r.get(2),
                            data: r.get(3),
                        },
                    )
                })
                .collect();
            let vectors = tx
                .query(
                    "SELECT v.model, v.dim, v.chunk_id, v.vector \
                     FROM chunks ch JOIN chunk_vectors v ON v.chunk_id = ch.chunk_id \
                     WHERE ch.document = $1 ORDER BY v.model, v.chunk_id",
                    &[&id],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| {
                    let dim: i64 = r.get(1);
                    Ok((
                        r.get(0),
                        usize::try_from(dim).map_err(|_| corrupt("chunk_vectors.dim", dim))?,
                        ChunkVector {
                            chunk_id: r.get(2),
                            vector: r.get(3),
                        },
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            tx.rollback().await.map_err(pg_error)?;
            Ok(Some(DocumentExport {
                summary,
                company_created_at,
                pages,
                chunks,
                rule_matches,
                vectors,
            }))
        })
    }
}

impl PgStore {
    /// Stores an exported document as it was, `ingested_at` and the
    /// company's creation time included, in one transaction; when the
    /// document is already here, adds only the criterion matches and
    /// vectors it lacks. For `esg store copy`.
    pub fn import_document(&self, doc: &DocumentExport) -> Result<ImportOutcome, StoreError> {
        let s = &doc.summary;
        let new = crate::NewDocument {
            doc_id: s.doc_id.clone(),
            company: s.company.clone(),
            year: s.year,
            filename: s.filename.clone(),
            media_type: s.media_type,
            byte_len: s.bytes,
            pages: doc.pages.clone(),
            chunks: doc.chunks.clone(),
            warnings: s.warnings.clone(),
            sector: s.sector.clone(),
        };
        let key = validate(&new)?;
        if key != s.company_key {
            return Err(StoreError::Invalid(format!(
                "document {}: company key {:?} does not match its name {:?}",
                s.doc_id, s.company_key, s.company
            )));
        }
        if let Some(m) = nul_in_document(&new) {
            return Err(StoreError::Invalid(m));
        }
        self.with_client(async |c| {
            let tx = c.transaction().await.map_err(pg_error)?;
            tx.execute(
                "INSERT INTO companies (key, display_name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO NOTHING",
                &[&key, &s.company, &doc.company_created_at],
            )
            .await
            .map_err(pg_error)?;
            let company_id: i64 = tx
                .query_one("SELECT id FROM companies WHERE key = $1", &[&key])
                .await
                .map_err(pg_error)?
                .get(0);
            let warnings = serde_json::to_string(&s.warnings)
                .map_err(|e| StoreError::Invalid(format!("warnings: {e}")))?;
            let params: [&(dyn ToSql + Sync); 12] = [
                &s.doc_id,
                &company_id,
                &s.year,
                &s.filename,
                &s.media_type.mime(),
                &(doc.pages.len() as i64),
                &(doc.chunks.len() as i64),
                &(s.bytes as i64),
                &s.virtual_pages,
                &warnings,
                &s.ingested_at,
                &s.sector,
            ];
            let inserted = tx
                .query_opt(
                    "INSERT INTO documents (doc_id, company_id, year, filename, media_type, \
                         pages, chunks, bytes, virtual_pages, warnings, ingested_at, sector) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (doc_id) DO NOTHING RETURNING id",
                    &params,
                )
                .await
                .map_err(pg_error)?;
            let outcome = match inserted {
                Some(row) => {
                    let document: i64 = row.get(0);
                    insert_pages_and_chunks(&tx, document, &new).await?;
                    ImportOutcome::Copied
                }
                None => ImportOutcome::AlreadyPresent,
            };
            if !doc.rule_matches.is_empty() {
                let rubrics: Vec<&str> = doc.rule_matches.iter().map(|(r, _)| r.as_str()).collect();
                let ids: Vec<&str> = doc
                    .rule_matches
                    .iter()
                    .map(|(_, m)| m.chunk_id.as_str())
                    .collect();
                let themes: Vec<&str> = doc
                    .rule_matches
                    .iter()
                    .map(|(_, m)| m.theme.as_str())
                    .collect();
                let data: Vec<&[u8]> = doc
                    .rule_matches
                    .iter()
                    .map(|(_, m)| m.data.as_slice())
                    .collect();
                tx.execute(
                    "INSERT INTO rule_matches (rubric_sha256, chunk_id, theme, data) \
                     SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[]) \
                     ON CONFLICT DO NOTHING",
                    &[&rubrics, &ids, &themes, &data],
                )
                .await
                .map_err(pg_error)?;
            }
            if !doc.vectors.is_empty() {
                let models: Vec<&str> = doc.vectors.iter().map(|(m, _, _)| m.as_str()).collect();
                let dims: Vec<i64> = doc.vectors.iter().map(|(_, d, _)| *d as i64).collect();
                let ids: Vec<&str> = doc
                    .vectors
                    .iter()
                    .map(|(_, _, v)| v.chunk_id.as_str())
                    .collect();
                let data: Vec<&[u8]> = doc
                    .vectors
                    .iter()
                    .map(|(_, _, v)| v.vector.as_slice())
                    .collect();
                tx.execute(
                    "INSERT INTO chunk_vectors (model, dim, chunk_id, vector) \
                     SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[]) \
                     ON CONFLICT DO NOTHING",
                    &[&models, &dims, &ids, &data],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)?;
            pg_lease::await_replicas(&*c).await;
            Ok(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://esg:s3cr%40t@db.example:5432/esg?sslmode=disable"),
            "postgres://esg:***@db.example:5432/esg?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgresql://esg@db/esg?password=hunter2&application_name=x"),
            "postgresql://esg@db/esg?password=***&application_name=x"
        );
        assert_eq!(redact_url("postgres://db/esg"), "postgres://db/esg");
    }

    #[test]
    fn store_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PgStore>();
    }
}
