//! Behaviour of the SQLite store on real database files.

//! The backend-independent behaviour is in `store_contract.rs`, which runs
//! each test body on SQLite and on PostgreSQL; what is here is SQLite's own:
//! WAL mode, the file and its schema version, file corruption.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{counts, make_doc, two_block_layout, zero};
use esg_store::{SCHEMA_VERSION, SqliteStore, Store, StoreError};
use rusqlite::Connection;
use tempfile::TempDir;

fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("raw open");
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn
}

fn assert_sound(path: &Path) {
    let conn = raw(path);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk_violations: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_violations, 0);
}

fn new_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).expect("open");
    (dir, store)
}

#[test]
fn fresh_store_is_migrated_in_wal_mode() {
    let (dir, store) = new_store();
    assert_eq!(store.path(), dir.path().join("esg.sqlite3"));
    const { assert!(SCHEMA_VERSION >= 1) };
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(counts(&store), zero());
    assert_sound(store.path());
    let conn = raw(store.path());
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "chunk_vectors",
            "chunks",
            "companies",
            "documents",
            "pages",
            "rule_matches"
        ]
    );
}

#[test]
fn schema_too_new_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esg.sqlite3");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .put_document(&make_doc("kept", "Acme", 2024, 1))
            .unwrap();
    }
    let newer = SCHEMA_VERSION + 3;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .unwrap();

    match SqliteStore::open(&path) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let err = SqliteStore::open_in_dir(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&newer.to_string()) && msg.contains(&SCHEMA_VERSION.to_string()),
        "{msg}"
    );
    let conn = raw(&path);
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, newer);
    let docs: i64 = conn
        .query_row("SELECT COUNT(*) FROM documents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(docs, 1);
}

/// A database written before page layouts were kept (schema 4) gains the
/// column; its pages read back without a layout, and new pages keep theirs.
#[test]
fn an_older_schema_gains_page_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esg.sqlite3");
    let old = make_doc("before-layouts", "Old plc", 2023, 1);
    {
        let store = SqliteStore::open(&path).unwrap();
        store.put_document(&old).unwrap();
    }
    // Back to the schema before the layout migration (the last one).
    let conn = raw(&path);
    conn.execute_batch("ALTER TABLE pages DROP COLUMN layout")
        .unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
        .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.page_layout(&old.doc_id, 1).unwrap(), None);
    assert!(store.page_text(&old.doc_id, 1).unwrap().is_some());
    let mut new = make_doc("after-layouts", "Old plc", 2024, 1);
    new.pages[0].layout = Some(two_block_layout());
    store.put_document(&new).unwrap();
    assert_eq!(
        store.page_layout(&new.doc_id, 1).unwrap(),
        Some(two_block_layout())
    );
    assert_sound(store.path());
}

#[test]
fn a_file_that_is_not_a_database_is_reported_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esg.sqlite3");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("esg.sqlite3"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn open_in_dir_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    match SqliteStore::open_in_dir(&file.join("data")) {
        Err(StoreError::Io(e)) => assert!(e.to_string().contains("not-a-dir"), "{e}"),
        other => panic!("expected Io, got {other:?}"),
    }
}
