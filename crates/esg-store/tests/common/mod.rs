//! Shared by the store test files: documents to store, and the fixture
//! that runs one test body against either backend.
#![allow(dead_code)] // each test file uses part of it

use std::path::PathBuf;
use std::sync::Arc;

use esg_core::layout::{BBox, Block, Line, PageLayout};
use esg_core::sha256_hex;
use esg_store::{
    Chunk, CleanedPage, MediaType, NewDocument, PgOptions, Store, StoreCounts, StoreLocation,
};
use tempfile::TempDir;

/// A document with `n_pages` pages and two chunks per page, all derived from
/// `seed` so that different seeds give different ids.
pub fn make_doc(seed: &str, company: &str, year: i32, n_pages: u32) -> NewDocument {
    let doc_id = sha256_hex(format!("source bytes of {seed}"));
    let mut pages = Vec::new();
    let mut chunks = Vec::new();
    for n in 1..=n_pages {
        let first = format!("Page {n} of {seed}: our Scope 1 and 2 emissions fell 12%.");
        let second = "Naïve “quotes” — and ünïcode stay exact; SBTi validated our targets.";
        let text = format!("{first}\n{second}");
        let spans = [
            (0, first.chars().count()),
            (first.chars().count() + 1, text.chars().count()),
        ];
        for (start, end) in spans {
            let chunk_text: String = text.chars().skip(start).take(end - start).collect();
            let seq = chunks.len() as u32;
            chunks.push(Chunk {
                chunk_id: sha256_hex(format!("{doc_id}:{n}:{start}:{end}"))[..32].to_string(),
                page: n,
                seq,
                char_start: start as u32,
                char_end: end as u32,
                sha256: sha256_hex(&chunk_text),
                words: chunk_text.split_whitespace().count() as u32,
                text: chunk_text,
            });
        }
        pages.push(CleanedPage {
            number: n,
            text,
            is_virtual: false,
            layout: None,
        });
    }
    NewDocument {
        doc_id,
        company: company.to_string(),
        year,
        filename: format!("{seed}.pdf"),
        media_type: MediaType::Pdf,
        byte_len: 1000 + u64::from(n_pages),
        pages,
        chunks,
        warnings: vec![
            "page 3: \"odd\" glyphs\tignored".to_string(),
            "ünïcode \\ path".to_string(),
        ],
        sector: Some("Utilities".to_string()),
    }
}

/// A page layout with two blocks (a two-line paragraph and a one-line
/// heading), boxes off the 1-point grid as PDF pages have them.
pub fn two_block_layout() -> PageLayout {
    let line = |x0: f32, y0: f32, x1: f32, y1: f32, text: &str| Line {
        bbox: BBox::new(x0, y0, x1, y1),
        text: text.to_string(),
    };
    let para = vec![
        line(72.5, 700.2, 523.8, 712.7, "Our Scope 1 and 2 emis-"),
        line(
            72.5,
            686.1,
            301.3,
            698.6,
            "sions fell 12% — “naïve” ünïcode.",
        ),
    ];
    let heading = vec![line(320.4, 640.9, 540.1, 661.3, "Water & Biodiversity")];
    PageLayout {
        blocks: vec![
            Block {
                bbox: para[0].bbox.union(para[1].bbox),
                kind: esg_core::layout::BlockKind::Paragraph,
                lines: para,
            },
            Block {
                bbox: heading[0].bbox,
                kind: esg_core::layout::BlockKind::Paragraph,
                lines: heading,
            },
        ],
    }
}

pub fn counts(store: &dyn Store) -> StoreCounts {
    store.counts().expect("counts")
}

pub fn zero() -> StoreCounts {
    StoreCounts::default()
}

/// A `dim`-value vector whose values are derived from `seed`, as bytes.
pub fn vector(seed: usize, dim: usize) -> Vec<u8> {
    (0..dim)
        .flat_map(|i| ((seed * 31 + i) as f32 / 7.0).to_le_bytes())
        .collect()
}

/// One store under test: a SQLite data directory, or a fresh PostgreSQL
/// database; [`Fx::open`] opens another handle on the same data.
pub enum Fx {
    /// SQLite in a temporary data directory.
    Sqlite(TempDir),
    /// A database of its own on the test PostgreSQL.
    Pg(esg_testpg::TestDb),
}

impl Fx {
    pub fn sqlite() -> Fx {
        Fx::Sqlite(tempfile::tempdir().unwrap())
    }

    /// `None` (test skipped) when there is no PostgreSQL outside CI.
    pub fn pg() -> Option<Fx> {
        esg_testpg::fresh_db().map(Fx::Pg)
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, Fx::Pg(_))
    }

    /// Where the store lives, as `--database-url` takes it.
    pub fn url(&self) -> String {
        match self {
            Fx::Sqlite(dir) => format!("sqlite:{}", dir.path().display()),
            Fx::Pg(db) => db.url.clone(),
        }
    }

    pub fn location(&self) -> StoreLocation {
        StoreLocation::from_url_or_dir(Some(&self.url()), &PathBuf::from("unused")).unwrap()
    }

    /// A new store handle (connection) on this fixture's data.
    pub fn open(&self) -> Arc<dyn Store> {
        esg_store::open(&self.location(), &PgOptions::default()).expect("open store")
    }

    /// Runs raw SQL beside the store: `sqlite` on SQLite, `pg` on PostgreSQL.
    pub fn exec(&self, sqlite: &str, pg: &str) {
        match self {
            Fx::Sqlite(dir) => {
                let conn =
                    rusqlite::Connection::open(dir.path().join(esg_store::DB_FILE_NAME)).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(30))
                    .unwrap();
                conn.execute_batch(sqlite).unwrap();
            }
            Fx::Pg(db) => esg_testpg::execute(&db.url, pg).unwrap(),
        }
    }

    /// Database-level soundness: SQLite's integrity and foreign key checks
    /// (PostgreSQL enforces foreign keys on every statement).
    pub fn assert_sound(&self) {
        if let Fx::Sqlite(dir) = self {
            let conn =
                rusqlite::Connection::open(dir.path().join(esg_store::DB_FILE_NAME)).unwrap();
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok");
            let fk: i64 = conn
                .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(fk, 0);
        }
    }
}

/// The message of a database error (either backend), `None` for other errors.
pub fn db_error(e: &esg_store::StoreError) -> Option<String> {
    match e {
        esg_store::StoreError::Sqlite(e) => Some(e.to_string()),
        esg_store::StoreError::Postgres(m) => Some(m.clone()),
        _ => None,
    }
}
