//! Crash consistency of `esg ingest`: the real binary is SIGKILLed at random
//! moments of a multi-document ingest into one real SQLite data directory,
//! again and again; after every kill the database must be intact and hold
//! only complete documents, each with its whole source file under
//! `files/` (and no partial file under a final name), and a last
//! uninterrupted run must store the rest, each document exactly once.
//!
//! The same test runs against PostgreSQL (`--database-url`, a fresh
//! database per data directory on the test cluster of `esg-testpg`): the
//! database is checked with the same invariants, and each document must
//! equal the uninterrupted SQLite reference run.
//!
//! The kill delays come from a seeded generator: the seed is printed, and
//! `ESG_CRASH_SEED=<seed>` replays a failing run. `ESG_CRASH_ROUNDS` and
//! `ESG_CRASH_BUDGET_SECS` change the number of rounds (default 32) and the
//! time budget of the kill phase (default 50 s). Each round takes the files
//! in a different (seeded) order, so the kills land in the extraction and
//! write phases of many documents rather than always in the same one.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{esg, esg_bin, json_lines, text_pdf};

/// splitmix64: small, seedable, good enough to spread kill delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Fisher-Yates.
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
    /// Uniform in `lo..=hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

const WORDS: &[&str] = &[
    "emissions",
    "scope",
    "renewable",
    "electricity",
    "board",
    "oversight",
    "climate",
    "risk",
    "target",
    "reduction",
    "water",
    "supplier",
    "audit",
    "assurance",
    "governance",
    "biodiversity",
    "waste",
    "recycled",
    "safety",
    "training",
];

/// A sentence unique to (`doc`, `page`, `line`), so every document hashes differently.
fn sentence(rng: &mut Rng, doc: usize, page: usize, line: usize) -> String {
    let mut s = format!("Document {doc} page {page} line {line}:");
    for _ in 0..9 {
        s.push(' ');
        s.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
    }
    s.push_str(&format!(
        " fell by {}.{} percent.",
        rng.next() % 90,
        rng.next() % 10
    ));
    s
}

/// Writes the ingest set: generated PDFs and form-feed text documents of
/// varying size, one HTML report, and the smallest real corpus PDFs.
fn build_set(dir: &Path) -> Vec<PathBuf> {
    // Fixed content (not the kill seed): the set is the same in every run.
    let mut rng = Rng(0x005e_ed0f_d0c5);
    let mut files = Vec::new();
    let mut doc = 0;
    for pages in [3usize, 12, 40, 90] {
        doc += 1;
        let text: Vec<Vec<String>> = (1..=pages)
            .map(|p| (1..=30).map(|l| sentence(&mut rng, doc, p, l)).collect())
            .collect();
        let refs: Vec<Vec<&str>> = text
            .iter()
            .map(|p| p.iter().map(String::as_str).collect())
            .collect();
        let path = dir.join(format!("{doc:02}-generated-{pages}p.pdf"));
        std::fs::write(&path, text_pdf(&refs)).unwrap();
        files.push(path);
    }
    // Text documents with many pages: large write transactions.
    for pages in [100usize, 300, 700] {
        doc += 1;
        let body: Vec<String> = (1..=pages)
            .map(|p| {
                (1..=12)
                    .map(|l| sentence(&mut rng, doc, p, l))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        let path = dir.join(format!("{doc:02}-generated-{pages}p.txt"));
        std::fs::write(&path, body.join("\n\u{0c}")).unwrap();
        files.push(path);
    }
    doc += 1;
    let mut html = String::from("<!DOCTYPE html><html><head><title>Report</title></head><body>");
    for p in 1..=25 {
        html.push_str("<div style=\"page-break-before: always\">");
        for l in 1..=10 {
            html.push_str(&format!("<p>{}</p>", sentence(&mut rng, doc, p, l)));
        }
        html.push_str("</div>");
    }
    html.push_str("</body></html>");
    let path = dir.join(format!("{doc:02}-generated.html"));
    std::fs::write(&path, html).unwrap();
    files.push(path);

    match support::corpus_dir() {
        Some(corpus) => {
            for name in [
                "Alphabet_Inc-ESG_Index.pdf",
                "Nestle_SA-SASB_Index.pdf",
                "PepsiCo_Inc-SASB_Index.pdf",
            ] {
                let p = corpus.join("reports").join(name);
                assert!(p.is_file(), "corpus file missing: {}", p.display());
                files.push(p);
            }
        }
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the corpus is required under CI (set ESG_CORPUS_DIR)")
        }
        None => eprintln!("(continuing with generated documents only)"),
    }
    files
}

fn ingest_args(files: &[PathBuf]) -> Vec<String> {
    let mut a: Vec<String> = [
        "ingest",
        "--company",
        "Crash Test Corp",
        "--year",
        "2024",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(files.iter().map(|p| p.display().to_string()));
    a
}

/// Where the killed ingests write: a data dir, and a PostgreSQL URL or not.
#[derive(Debug, Clone)]
struct Target {
    data: PathBuf,
    url: Option<String>,
}

impl Target {
    /// `esg --data-dir DATA [--database-url URL]` ready for arguments.
    fn command(&self) -> Command {
        let mut cmd = Command::new(esg_bin());
        cmd.arg("--data-dir").arg(&self.data);
        if let Some(url) = &self.url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env_remove("ESG_DATA_DIR")
            .env_remove("ESG_DATABASE_URL")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, argv: &[&str]) -> std::process::Output {
        self.command().args(argv).output().expect("run esg")
    }

    /// Checks the store and returns the shape of every stored document.
    fn check(&self, context: &str) -> BTreeMap<String, DocShape> {
        match &self.url {
            None => check_db(&self.data, context),
            Some(url) => check_pg(&self.data, url, context),
        }
    }

    /// Whether a killed run left any store to check.
    fn exists(&self) -> bool {
        self.url.is_some() || self.data.join("esg.sqlite3").exists()
    }
}

/// [`check_db`] for a PostgreSQL store (the source files are under `data`).
/// Foreign keys and uniqueness are enforced by the server on every
/// statement; what is checked is that each committed document is whole.
fn check_pg(data: &Path, url: &str, context: &str) -> BTreeMap<String, DocShape> {
    let q =
        |sql: &str| esg_testpg::query_rows(url, sql).unwrap_or_else(|e| panic!("{context}: {e}"));
    let has_schema = q("SELECT to_regclass('documents') IS NOT NULL")[0][0].as_deref() == Some("t");
    if !has_schema {
        eprintln!("{context}: killed before the schema was created");
        return BTreeMap::new();
    }
    let int = |v: &Option<String>| v.as_deref().unwrap().parse::<i64>().unwrap();
    let mut out = BTreeMap::new();
    for row in q("SELECT id, doc_id, pages, chunks FROM documents ORDER BY id") {
        let (id, doc_id, pages, nchunks) = (
            int(&row[0]),
            row[1].clone().unwrap(),
            int(&row[2]),
            int(&row[3]),
        );
        let page_rows = q(&format!(
            "SELECT page, text FROM pages WHERE document = {id} ORDER BY page"
        ));
        let numbers: Vec<i64> = page_rows.iter().map(|r| int(&r[0])).collect();
        assert_eq!(
            numbers,
            (1..=pages).collect::<Vec<_>>(),
            "{context}: document {doc_id} records {pages} pages but has rows {numbers:?}"
        );
        let chunk_rows = q(&format!(
            "SELECT seq, chunk_id, text FROM chunks WHERE document = {id} ORDER BY seq"
        ));
        assert_eq!(
            chunk_rows.len() as i64,
            nchunks,
            "{context}: {doc_id}: chunk count"
        );
        let mut all = String::new();
        for (i, r) in chunk_rows.iter().enumerate() {
            assert_eq!(int(&r[0]), i as i64, "{context}: {doc_id}: chunk seq gap");
            all.push_str(r[1].as_deref().unwrap());
            all.push('\0');
            all.push_str(r[2].as_deref().unwrap());
            all.push('\0');
        }
        let kept = data.join("files").join(&doc_id[..2]).join(&doc_id);
        let bytes = std::fs::read(&kept).unwrap_or_else(|e| {
            panic!("{context}: document {doc_id} committed without its source file: {e}")
        });
        assert_eq!(
            esg_core::sha256_hex(&bytes),
            doc_id,
            "{context}: kept file of {doc_id}"
        );
        out.insert(
            doc_id,
            DocShape {
                pages,
                chunks: nchunks,
                digest: esg_core::sha256_hex(all),
            },
        );
    }
    check_files(data, context);
    out
}

/// What an uninterrupted ingest stores for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DocShape {
    pages: i64,
    chunks: i64,
    /// sha256 of every chunk id and chunk text in order.
    digest: String,
}

fn open(data: &Path) -> rusqlite::Connection {
    // Read-write, as the next `esg` process would open it: a hot WAL left by
    // the killed process is recovered by this connection.
    let c = rusqlite::Connection::open(data.join("esg.sqlite3")).expect("open db");
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Checks the whole database and returns the shape of every stored document.
/// Panics (with `context`) on any inconsistency.
fn check_db(data: &Path, context: &str) -> BTreeMap<String, DocShape> {
    let c = open(data);
    let ic: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ic, ["ok"], "{context}: integrity_check");
    // Killed before the schema migration committed: the file exists but is
    // at version 0 with no tables at all (the migration is one
    // transaction), and the next process migrates it. Nothing is stored.
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    if version == 0 {
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "{context}: a partial schema at version 0");
        eprintln!("{context}: killed before the schema was created");
        return BTreeMap::new();
    }
    let fk: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0, "{context}: foreign key violations");
    let dups: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT doc_id FROM documents GROUP BY doc_id HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dups, 0, "{context}: a document stored twice");
    let (chunks, distinct): (i64, i64) = c
        .query_row(
            "SELECT count(*), count(DISTINCT chunk_id) FROM chunks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(chunks, distinct, "{context}: duplicate chunk ids");
    let orphans: i64 = c
        .query_row(
            "SELECT (SELECT count(*) FROM pages WHERE document NOT IN (SELECT id FROM documents)) \
                  + (SELECT count(*) FROM chunks WHERE document NOT IN (SELECT id FROM documents))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "{context}: pages or chunks without a document");

    let docs: Vec<(i64, String, i64, i64)> = c
        .prepare("SELECT id, doc_id, pages, chunks FROM documents ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for (id, doc_id, pages, nchunks) in docs {
        let page_rows: Vec<(i64, String)> = c
            .prepare("SELECT page, text FROM pages WHERE document = ?1 ORDER BY page")
            .unwrap()
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let numbers: Vec<i64> = page_rows.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            numbers,
            (1..=pages).collect::<Vec<_>>(),
            "{context}: document {doc_id} records {pages} pages but has rows {numbers:?}"
        );
        let chunk_rows: Vec<(i64, i64, String, String)> = c
            .prepare(
                "SELECT seq, page, chunk_id, text FROM chunks WHERE document = ?1 ORDER BY seq",
            )
            .unwrap()
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            chunk_rows.len() as i64,
            nchunks,
            "{context}: document {doc_id} records {nchunks} chunks but has {}",
            chunk_rows.len()
        );
        for (i, (seq, ..)) in chunk_rows.iter().enumerate() {
            assert_eq!(*seq, i as i64, "{context}: {doc_id}: chunk seq gap");
        }
        let chunked: BTreeSet<i64> = chunk_rows.iter().map(|r| r.1).collect();
        for (n, text) in &page_rows {
            if !text.trim().is_empty() {
                assert!(
                    chunked.contains(n),
                    "{context}: {doc_id}: page {n} has text but no chunk"
                );
            }
        }
        let mut all = String::new();
        for (_, _, id, text) in &chunk_rows {
            all.push_str(id);
            all.push('\0');
            all.push_str(text);
            all.push('\0');
        }
        // The source file was written before the row was committed.
        let kept = data.join("files").join(&doc_id[..2]).join(&doc_id);
        let bytes = std::fs::read(&kept).unwrap_or_else(|e| {
            panic!(
                "{context}: document {doc_id} committed without its source file {}: {e}",
                kept.display()
            )
        });
        assert_eq!(
            esg_core::sha256_hex(&bytes),
            doc_id,
            "{context}: the kept source file of {doc_id} is not its bytes"
        );
        out.insert(
            doc_id,
            DocShape {
                pages,
                chunks: nchunks,
                digest: esg_core::sha256_hex(all),
            },
        );
    }
    check_files(data, context);
    out
}

/// Every file under `<data>/files` is either whole under its own SHA-256
/// (a file whose document a kill kept from committing may exist: the next
/// ingest reuses it) or a temporary `.tmp-` file of a killed writer; never a
/// partial file under a final name.
fn check_files(data: &Path, context: &str) {
    let Ok(shards) = std::fs::read_dir(data.join("files")) else {
        return;
    };
    for shard in shards.flatten() {
        for e in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(esg_store::files::TMP_PREFIX) {
                continue;
            }
            let bytes = std::fs::read(e.path()).unwrap();
            assert_eq!(
                esg_core::sha256_hex(&bytes),
                name,
                "{context}: a partial or wrong file under a final name: {}",
                e.path().display()
            );
        }
    }
}

#[test]
fn sigkill_during_ingest_leaves_only_complete_documents() {
    crash_test(false);
}

#[test]
fn sigkill_during_ingest_into_postgres_leaves_only_complete_documents() {
    if esg_testpg::fresh_db().is_none() {
        return; // SKIP printed (a failure under CI=true)
    }
    crash_test(true);
}

/// A new place to ingest into: data dir `n`, with a fresh database on PostgreSQL.
fn target(tmp: &Path, n: usize, pg: bool) -> Target {
    Target {
        data: tmp.join(format!("data-{n}")),
        url: pg.then(|| esg_testpg::fresh_db().expect("PostgreSQL").url),
    }
}

fn crash_test(pg: bool) {
    let seed = std::env::var("ESG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds: usize = std::env::var("ESG_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let budget = Duration::from_secs(
        std::env::var("ESG_CRASH_BUDGET_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(50),
    );
    eprintln!("crash consistency: seed {seed} (replay with ESG_CRASH_SEED={seed})");
    let mut rng = Rng(seed);

    let tmp = tempfile::tempdir().unwrap();
    let set_dir = tmp.path().join("set");
    std::fs::create_dir(&set_dir).unwrap();
    let files = build_set(&set_dir);
    let expected: BTreeSet<String> = files
        .iter()
        .map(|p| esg_core::sha256_hex(std::fs::read(p).unwrap()))
        .collect();
    assert_eq!(
        expected.len(),
        files.len(),
        "the set has distinct documents"
    );
    let args = ingest_args(&files);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();

    // Reference: one uninterrupted ingest, timed, into its own directory.
    let reference_dir = tmp.path().join("reference");
    let started = Instant::now();
    let out = esg(&reference_dir, &argv);
    let full = started.elapsed();
    assert!(
        out.status.success(),
        "reference ingest failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        json_lines(&out).iter().all(|l| l["status"] == "ingested"),
        "reference ingest: every document ingested"
    );
    let reference = check_db(&reference_dir, "reference run");
    assert_eq!(
        reference.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "reference run stores every document"
    );
    eprintln!(
        "{} documents, uninterrupted ingest {:.2} s",
        files.len(),
        full.as_secs_f64()
    );

    // Kill phase: delays up to 60% of the full run (at least 300 ms), halved
    // whenever a run finishes before its kill (the reference run may have met
    // a busier machine). When every document of a data directory is stored,
    // that directory is resumed and checked, and a fresh one is started, so
    // every round has work left to interrupt.
    let mut max_delay = (full.as_millis() as u64 * 6 / 10).max(300);
    let phase = Instant::now();
    let mut epoch = 1;
    let mut data = target(tmp.path(), 1, pg);
    let mut stored_before: BTreeSet<String> = BTreeSet::new();
    let (mut killed, mut finished) = (0, 0);
    for round in 1..=rounds {
        if phase.elapsed() >= budget {
            eprintln!("time budget reached after {} rounds", round - 1);
            break;
        }
        if stored_before.len() == expected.len() {
            resume_and_check(&data, &argv, &stored_before, &reference);
            epoch += 1;
            data = target(tmp.path(), epoch, pg);
            stored_before.clear();
        }
        let delay = rng.millis(0, max_delay);
        let mut order = files.clone();
        rng.shuffle(&mut order);
        let mut child = data
            .command()
            .args(ingest_args(&order))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start esg ingest");
        std::thread::sleep(delay);
        let outcome = match child.try_wait().unwrap() {
            Some(st) => {
                finished += 1;
                max_delay = (max_delay / 2).max(50);
                format!("finished first ({st})")
            }
            None => {
                child.kill().expect("SIGKILL"); // SIGKILL on Unix
                child.wait().unwrap();
                killed += 1;
                "killed".to_string()
            }
        };
        // The worker of a killed ingest may outlive it for a moment (its own
        // process group); it only reads stdin and writes stdout, never the DB.
        let context =
            format!("round {round} (seed {seed}, data dir {epoch}, delay {delay:?}, {outcome})");
        if !data.exists() {
            eprintln!("{context}: no database yet");
            continue;
        }
        let stored = data.check(&context);
        for (doc_id, shape) in &stored {
            assert!(
                expected.contains(doc_id),
                "{context}: unknown document {doc_id}"
            );
            assert_eq!(
                shape, &reference[doc_id],
                "{context}: document {doc_id} differs from the uninterrupted ingest"
            );
        }
        let now: BTreeSet<String> = stored.keys().cloned().collect();
        assert!(
            now.is_superset(&stored_before),
            "{context}: a committed document disappeared"
        );
        eprintln!(
            "{context}: {} of {} documents stored",
            now.len(),
            expected.len()
        );
        stored_before = now;
    }
    eprintln!(
        "{killed} kills, {finished} runs finished before their kill, {epoch} data dir(s), in {:.1} s",
        phase.elapsed().as_secs_f64()
    );
    assert!(killed >= 8, "too few kills to mean anything: {killed}");
    resume_and_check(&data, &argv, &stored_before, &reference);
}

/// Resumes the ingest in `data` to completion and checks that it stored the
/// rest, each document exactly once, and that the store now equals one
/// uninterrupted ingest (`reference`).
fn resume_and_check(
    data: &Target,
    argv: &[&str],
    stored_before: &BTreeSet<String>,
    reference: &BTreeMap<String, DocShape>,
) {
    let out = data.run(argv);
    assert!(
        out.status.success(),
        "resumed ingest failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), reference.len());
    let newly = lines.iter().filter(|l| l["status"] == "ingested").count();
    let already = lines
        .iter()
        .filter(|l| l["status"] == "already_ingested")
        .count();
    assert_eq!(newly + already, reference.len(), "statuses: {lines:?}");
    assert_eq!(
        already,
        stored_before.len(),
        "documents stored before the resume are reported already ingested"
    );
    let final_state = data.check("after the resumed ingest");
    assert_eq!(
        &final_state, reference,
        "after resuming, the store equals one uninterrupted ingest"
    );
    assert_eq!(
        final_state.len(),
        reference.len(),
        "each document exactly once"
    );
}
