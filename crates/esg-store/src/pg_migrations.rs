//! PostgreSQL schema migrations, versioned in the code.
//!
//! The same schema as the SQLite migrations (`migrations.rs`), written for
//! PostgreSQL: versions 1–4 are SQLite 1–4 and version 8 (page layout) is
//! SQLite 5; the API key table (5), the data stamp (6) and the read leases
//! (7) are PostgreSQL only. `MIGRATIONS[i]` takes the schema from version
//! `i` to `i + 1`; the table `schema_migrations` holds one row per applied
//! version. Append-only, like the SQLite list.
//!
//! Text columns that are sorted or compared (`key`, `doc_id`, `filename`,
//! `chunk_id`, ...) use `COLLATE "C"`: byte order of the UTF-8, which is
//! what SQLite's `BINARY` collation does, so listings come out in the same
//! order on both backends whatever the database's locale.

use deadpool_postgres::GenericClient;

use crate::StoreError;
use crate::postgres::pg_error;

/// The ordered migration scripts. Each runs in its own transaction.
const MIGRATIONS: &[&str] = &[
    // 1: companies, documents, pages and chunks (SQLite 1).
    r#"
CREATE TABLE companies (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          TEXT COLLATE "C" NOT NULL UNIQUE CHECK (key <> ''),
    display_name TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE TABLE documents (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id        TEXT COLLATE "C" NOT NULL UNIQUE CHECK (doc_id <> ''),
    company_id    BIGINT  NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
    year          INTEGER NOT NULL CHECK (year BETWEEN 1900 AND 2200),
    filename      TEXT COLLATE "C" NOT NULL,
    media_type    TEXT    NOT NULL,
    pages         BIGINT  NOT NULL CHECK (pages >= 0),
    chunks        BIGINT  NOT NULL CHECK (chunks >= 0),
    bytes         BIGINT  NOT NULL CHECK (bytes >= 0),
    virtual_pages BOOLEAN NOT NULL,
    warnings      TEXT    NOT NULL DEFAULT '[]',
    ingested_at   TEXT    NOT NULL
);
CREATE INDEX documents_company_year ON documents(company_id, year, filename, doc_id);
CREATE TABLE pages (
    document   BIGINT  NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page       BIGINT  NOT NULL CHECK (page >= 1),
    text       TEXT    NOT NULL,
    is_virtual BOOLEAN NOT NULL,
    PRIMARY KEY (document, page)
);
CREATE TABLE chunks (
    chunk_id   TEXT COLLATE "C" PRIMARY KEY,
    document   BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page       BIGINT NOT NULL,
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    char_start BIGINT NOT NULL CHECK (char_start >= 0),
    char_end   BIGINT NOT NULL CHECK (char_end >= char_start),
    text       TEXT   NOT NULL,
    sha256     TEXT   NOT NULL,
    words      BIGINT NOT NULL CHECK (words >= 0),
    FOREIGN KEY (document, page) REFERENCES pages(document, page) ON DELETE CASCADE
);
CREATE UNIQUE INDEX chunks_document_seq ON chunks(document, seq);
CREATE INDEX chunks_document_page ON chunks(document, page);
"#,
    // 2: criterion matches computed by scoring (SQLite 2).
    r#"
CREATE TABLE rule_matches (
    rubric_sha256 TEXT COLLATE "C" NOT NULL CHECK (rubric_sha256 <> ''),
    chunk_id      TEXT COLLATE "C" NOT NULL REFERENCES chunks(chunk_id) ON DELETE CASCADE,
    theme         TEXT COLLATE "C" NOT NULL CHECK (theme <> ''),
    data          BYTEA NOT NULL,
    PRIMARY KEY (rubric_sha256, chunk_id, theme)
);
CREATE INDEX rule_matches_chunk ON rule_matches(chunk_id);
"#,
    // 3: sentence-embedding vectors of chunks (SQLite 3).
    r#"
CREATE TABLE chunk_vectors (
    model    TEXT COLLATE "C" NOT NULL CHECK (model <> ''),
    chunk_id TEXT COLLATE "C" NOT NULL REFERENCES chunks(chunk_id) ON DELETE CASCADE,
    dim      BIGINT NOT NULL CHECK (dim > 0),
    vector   BYTEA  NOT NULL CHECK (octet_length(vector) = 4 * dim),
    PRIMARY KEY (model, chunk_id)
);
CREATE INDEX chunk_vectors_chunk ON chunk_vectors(chunk_id);
"#,
    // 4: the sector per document (SQLite 4).
    r#"
ALTER TABLE documents ADD COLUMN sector TEXT CHECK (sector IS NULL OR sector <> '');
"#,
    // 5: API keys, shared by every replica (PostgreSQL only: an embedded
    // SQLite store keeps its keys in the key file of the data directory).
    // `api_keys_generation` is one counter row bumped by every change, so a
    // replica can tell cheaply whether to re-read the keys.
    r#"
CREATE TABLE api_keys (
    id         TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    label      TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    salt       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE api_keys_generation (
    one        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    generation BIGINT  NOT NULL
);
INSERT INTO api_keys_generation (one, generation) VALUES (TRUE, 0);
"#,
    // 6: a stamp that every transaction changing companies or documents
    // replaces when it commits, so a replica can tell with one trivial read
    // whether the listings it keeps are still current (crate::pg_fresh).
    // Random rather than a counter: a database restored from a dump cannot
    // bring back a stamp a replica kept. The triggers are deferred to
    // commit, so the row is locked only for the instant before commit and
    // concurrent ingests do not queue behind each other's page inserts.
    r#"
CREATE TABLE data_generation (
    one   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    stamp TEXT    NOT NULL
);
INSERT INTO data_generation (one, stamp) VALUES (TRUE, gen_random_uuid()::TEXT);
CREATE FUNCTION esg_new_data_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_generation SET stamp = gen_random_uuid()::TEXT;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER companies_stamp AFTER INSERT OR UPDATE OR DELETE ON companies
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION esg_new_data_stamp();
CREATE CONSTRAINT TRIGGER documents_stamp AFTER INSERT OR UPDATE OR DELETE ON documents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION esg_new_data_stamp();
CREATE TRIGGER companies_stamp_truncate AFTER TRUNCATE ON companies
    FOR EACH STATEMENT EXECUTE FUNCTION esg_new_data_stamp();
CREATE TRIGGER documents_stamp_truncate AFTER TRUNCATE ON documents
    FOR EACH STATEMENT EXECUTE FUNCTION esg_new_data_stamp();
"#,
    // 7: read leases (crate::pg_lease). `seq` moves forward in commit order
    // with every change of companies, documents or keys (the row lock
    // orders the updates); never backwards, even after a restore from an
    // older dump, since it is at least the commit's microsecond clock. The
    // same changes notify `esg_changes` at commit. `replica_leases` holds
    // one row per serving replica: until when it may trust its stamps
    // without asking, and the `seq` it has seen.
    r#"
ALTER TABLE data_generation ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE FUNCTION esg_next_seq(previous BIGINT) RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT greatest(previous + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT)
$$;
UPDATE data_generation SET seq = esg_next_seq(seq);
CREATE OR REPLACE FUNCTION esg_new_data_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_generation SET stamp = gen_random_uuid()::TEXT, seq = esg_next_seq(seq);
    PERFORM pg_notify('esg_changes', '');
    RETURN NULL;
END
$$;
CREATE FUNCTION esg_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_generation SET seq = esg_next_seq(seq);
    PERFORM pg_notify('esg_changes', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_generation_seq AFTER UPDATE ON api_keys_generation
    FOR EACH ROW EXECUTE FUNCTION esg_keys_changed();
CREATE TABLE replica_leases (
    replica TEXT        PRIMARY KEY,
    expires TIMESTAMPTZ NOT NULL,
    seen    BIGINT      NOT NULL
);
"#,
    // 8: the layout of a page, JSON of `esg_core::layout::PageLayout`;
    // NULL for pages without one (SQLite 5).
    r#"
ALTER TABLE pages ADD COLUMN layout TEXT;
"#,
];

/// The schema version this program writes and reads on PostgreSQL.
pub const PG_SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Advisory lock key taken (transaction-scoped) around each migration step:
/// `'esg-scoring-api migrations'` hashed once, a fixed 64-bit number.
const MIGRATION_LOCK: i64 = 0x4553_475f_4d49_4752; // "ESG_MIGR"

/// The version recorded in the database; 0 when it has no schema yet.
pub(crate) async fn current_version(c: &impl GenericClient) -> Result<u32, StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: i32 = c
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative schema version {v}")))
}

/// Brings the database up to [`PG_SCHEMA_VERSION`].
///
/// Safe when several replicas start at once: each step runs in a
/// transaction that first takes a transaction-scoped advisory lock
/// (`pg_advisory_xact_lock`) and re-reads the version under it, so a step
/// another replica already applied is skipped, never applied twice; DDL is
/// transactional in PostgreSQL, so an interrupted step leaves nothing.
pub(crate) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    loop {
        let seen = current_version(&*client).await?;
        check_not_too_new(seen)?;
        if seen == PG_SCHEMA_VERSION {
            return Ok(());
        }
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version    INTEGER PRIMARY KEY CHECK (version >= 1), \
                 applied_at TEXT    NOT NULL)",
        )
        .await
        .map_err(pg_error)?;
        let version = current_version(&tx).await?;
        check_not_too_new(version)?;
        if version == PG_SCHEMA_VERSION {
            tx.rollback().await.map_err(pg_error)?;
            return Ok(());
        }
        tx.batch_execute(MIGRATIONS[version as usize])
            .await
            .map_err(pg_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&((version + 1) as i32), &crate::postgres::now_rfc3339()],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
    }
}

fn check_not_too_new(found: u32) -> Result<(), StoreError> {
    if found > PG_SCHEMA_VERSION {
        Err(StoreError::SchemaTooNew {
            found,
            supported: PG_SCHEMA_VERSION,
        })
    } else {
        Ok(())
    }
}
