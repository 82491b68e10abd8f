//! Schema migrations, versioned in the code.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to version `i + 1`;
//! `PRAGMA user_version` records the version a database is at. Migrations
//! are append-only: never edit one that has shipped, add a new one.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// The ordered migration scripts. Each runs in its own transaction, so a
/// script must not contain `BEGIN`/`COMMIT`.
const MIGRATIONS: &[&str] = &[
    // 1: companies, documents, pages and chunks.
    r#"
CREATE TABLE companies (
    id           INTEGER PRIMARY KEY,
    key          TEXT    NOT NULL UNIQUE CHECK (key <> ''),
    display_name TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
);

CREATE TABLE documents (
    id            INTEGER PRIMARY KEY,
    doc_id        TEXT    NOT NULL UNIQUE CHECK (doc_id <> ''),
    company_id    INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
    year          INTEGER NOT NULL CHECK (year BETWEEN 1900 AND 2200),
    filename      TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    pages         INTEGER NOT NULL CHECK (pages >= 0),
    chunks        INTEGER NOT NULL CHECK (chunks >= 0),
    bytes         INTEGER NOT NULL CHECK (bytes >= 0),
    virtual_pages INTEGER NOT NULL CHECK (virtual_pages IN (0, 1)),
    warnings      TEXT    NOT NULL DEFAULT '[]',
    ingested_at   TEXT    NOT NULL
);
-- Company/year lookups, and the listing order (company, year, filename, doc_id).
CREATE INDEX documents_company_year ON documents(company_id, year, filename, doc_id);

CREATE TABLE pages (
    document   INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page       INTEGER NOT NULL CHECK (page >= 1),
    text       TEXT    NOT NULL,
    is_virtual INTEGER NOT NULL CHECK (is_virtual IN (0, 1)),
    PRIMARY KEY (document, page)
) WITHOUT ROWID;

CREATE TABLE chunks (
    chunk_id   TEXT    PRIMARY KEY,
    document   INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page       INTEGER NOT NULL,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    char_start INTEGER NOT NULL CHECK (char_start >= 0),
    char_end   INTEGER NOT NULL CHECK (char_end >= char_start),
    text       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    words      INTEGER NOT NULL CHECK (words >= 0),
    -- A chunk lies on a page of its own document.
    FOREIGN KEY (document, page) REFERENCES pages(document, page) ON DELETE CASCADE
);
-- Chunk order within a document (and uniqueness of seq).
CREATE UNIQUE INDEX chunks_document_seq ON chunks(document, seq);
-- Child-key index for the (document, page) foreign key.
CREATE INDEX chunks_document_page ON chunks(document, page);
"#,
    // 2: criterion matches that scoring computed, kept so that later
    // processes (and replicas) reuse them instead of matching again. Keyed
    // by the rubric's SHA-256: a changed rubric simply finds none. Derived
    // data: dropping every row loses nothing but time.
    r#"
CREATE TABLE rule_matches (
    rubric_sha256 TEXT NOT NULL CHECK (rubric_sha256 <> ''),
    chunk_id      TEXT NOT NULL REFERENCES chunks(chunk_id) ON DELETE CASCADE,
    theme         TEXT NOT NULL CHECK (theme <> ''),
    data          BLOB NOT NULL,
    PRIMARY KEY (rubric_sha256, chunk_id, theme)
) WITHOUT ROWID;
-- Child-key index for the chunks foreign key.
CREATE INDEX rule_matches_chunk ON rule_matches(chunk_id);
"#,
    // 3: sentence-embedding vectors of chunks (semantic retrieval), one per
    // (model, chunk), computed after the chunk's document is committed.
    // f32 little-endian, `dim` values. Derived data, but costly to remake
    // (tens of chunks per second), so kept like the chunks themselves.
    r#"
CREATE TABLE chunk_vectors (
    model    TEXT    NOT NULL CHECK (model <> ''),
    chunk_id TEXT    NOT NULL REFERENCES chunks(chunk_id) ON DELETE CASCADE,
    dim      INTEGER NOT NULL CHECK (dim > 0),
    vector   BLOB    NOT NULL CHECK (length(vector) = 4 * dim),
    PRIMARY KEY (model, chunk_id)
) WITHOUT ROWID;
-- Child-key index for the chunks foreign key.
CREATE INDEX chunk_vectors_chunk ON chunk_vectors(chunk_id);
"#,
    // 4: the company's sector as given at ingest (optional, free text),
    // kept per document: a company's sector is that of its latest document
    // that names one (screening filters on it).
    r#"
ALTER TABLE documents ADD COLUMN sector TEXT CHECK (sector IS NULL OR sector <> '');
"#,
    // 5: the layout of a page (blocks of lines with their boxes,
    // `esg_core::layout::PageLayout` as JSON), written with the page in
    // the document's transaction; NULL for pages without one (HTML, text,
    // and every page stored before this version).
    r#"
ALTER TABLE pages ADD COLUMN layout TEXT;
"#,
];

/// The schema version this program writes and reads: the number of
/// migrations it knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Reads `PRAGMA user_version`.
pub(crate) fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative schema version {v}")))
}

/// Brings the database up to [`SCHEMA_VERSION`].
///
/// Safe when several processes open a fresh database at once: each step
/// takes the write lock (`BEGIN IMMEDIATE`) and re-reads the version inside
/// the transaction, so a migration another process already applied is
/// skipped, never applied twice. Each migration commits on its own, so an
/// interrupted run resumes where it stopped.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        // Fast path without the write lock: nothing to do, or too new.
        let seen = current_version(conn)?;
        check_not_too_new(seen)?;
        if seen == SCHEMA_VERSION {
            return Ok(());
        }

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = current_version(&tx)?;
        check_not_too_new(version)?;
        if version == SCHEMA_VERSION {
            return Ok(()); // another process finished first; tx rolls back (nothing written)
        }
        tx.execute_batch(MIGRATIONS[version as usize])?;
        // user_version lives in the database header and is part of this transaction.
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

fn check_not_too_new(found: u32) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        })
    } else {
        Ok(())
    }
}
