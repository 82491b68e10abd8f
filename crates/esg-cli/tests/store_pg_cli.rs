//! The `esg` binary on a PostgreSQL store (`--database-url`): real corpus
//! reports ingested and scored on PostgreSQL give the scorecard they give on
//! SQLite, and `esg store copy` moves a SQLite store into PostgreSQL,
//! resumably, and verifies it (a tampered copy is caught), and `esg store
//! fill-layouts` restores page layouts on PostgreSQL. Skips without
//! PostgreSQL or the corpus, fails under `CI=true`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{esg, esg_bin, json_lines};

const AS_OF: &str = "2025-06";

/// (file, company, year) of three small corpus reports.
const REPORTS: [(&str, &str, &str); 3] = [
    ("Alphabet_Inc-ESG_Index.pdf", "Alphabet Inc.", "2022"),
    ("PepsiCo_Inc-SASB_Index.pdf", "PepsiCo Inc.", "2021"),
    ("Nestle_SA-SASB_Index.pdf", "Nestle SA", "2021"),
];

fn corpus() -> Option<PathBuf> {
    let dir = support::corpus_dir();
    if dir.is_none() && esg_testpg::required() {
        panic!("the corpus is required under CI (set ESG_CORPUS_DIR)");
    }
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `esg --data-dir DATA [--database-url URL] args...`.
fn esg_on(data: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(esg_bin());
    cmd.arg("--data-dir").arg(data);
    if let Some(url) = url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.args(args)
        .env_remove("ESG_DATA_DIR")
        .env_remove("ESG_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run esg")
}

fn ingest_reports(corpus: &Path, data: &Path, url: Option<&str>) {
    for (file, company, year) in REPORTS {
        let path = corpus.join("reports").join(file);
        let out = esg_on(
            data,
            url,
            &[
                "ingest",
                "--company",
                company,
                "--year",
                year,
                "--no-embed",
                "--json",
                path.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "ingest {file}: {}", text(&out));
        assert_eq!(json_lines(&out)[0]["status"], "ingested", "{}", text(&out));
    }
}

fn score(data: &Path, url: Option<&str>, company: &str) -> Value {
    let out = esg_on(
        data,
        url,
        &[
            "score",
            "--company",
            company,
            "--format",
            "json",
            "--as-of",
            AS_OF,
        ],
    );
    assert!(out.status.success(), "score {company}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn documents(data: &Path, url: Option<&str>) -> Value {
    let out = esg_on(data, url, &["documents", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ingest_and_score_on_postgres_give_the_sqlite_scorecard() {
    let Some(corpus) = corpus() else { return };
    let Some(db) = esg_testpg::fresh_db() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let lite = tmp.path().join("lite");
    let pg_files = tmp.path().join("pg-files");
    ingest_reports(&corpus, &lite, None);
    ingest_reports(&corpus, &pg_files, Some(&db.url));
    // Nothing went to a SQLite file beside the source files.
    assert!(!pg_files.join("esg.sqlite3").exists());
    assert!(pg_files.join("files").is_dir(), "source files kept");

    for (_, company, _) in REPORTS {
        let a = score(&lite, None, company);
        let b = score(&pg_files, Some(&db.url), company);
        assert_eq!(a["fingerprint"], b["fingerprint"], "{company}");
        assert_eq!(a["themes"], b["themes"], "{company}: themes and evidence");
    }
    // Listings agree except for ingestion times.
    let strip = |mut v: Value| {
        for d in v.as_array_mut().unwrap() {
            d.as_object_mut().unwrap().remove("ingested_at");
        }
        v
    };
    assert_eq!(
        strip(documents(&lite, None)),
        strip(documents(&pg_files, Some(&db.url)))
    );
    // Re-ingesting on PostgreSQL is a no-op that says so.
    let path = corpus.join("reports").join(REPORTS[0].0);
    let out = esg_on(
        &pg_files,
        Some(&db.url),
        &[
            "ingest",
            "--company",
            REPORTS[0].1,
            "--year",
            REPORTS[0].2,
            "--no-embed",
            "--json",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        json_lines(&out)[0]["status"],
        "already_ingested",
        "{}",
        text(&out)
    );
}

#[test]
fn an_unreachable_database_fails_with_the_url_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let out = esg_on(
        tmp.path(),
        Some("postgres://esg:hunter2@127.0.0.1:1/esg"),
        &["--db-connect-timeout-secs", "2", "companies"],
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("database unavailable"), "{t}");
    assert!(t.contains("postgres://esg:***@127.0.0.1:1/esg"), "{t}");
    assert!(!t.contains("hunter2"), "{t}");
}

fn copy(data: &Path, from: &str, to: &str, extra: &[&str]) -> Output {
    let mut args = vec!["store", "copy", "--from", from, "--to", to, "--json"];
    args.extend_from_slice(extra);
    esg(data, &args)
}

#[test]
fn store_copy_moves_a_sqlite_store_resumably_and_verifies_it() {
    let Some(corpus) = corpus() else { return };
    let Some(db) = esg_testpg::fresh_db() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let lite = tmp.path().join("lite");
    ingest_reports(&corpus, &lite, None);
    let from = format!("sqlite:{}", lite.display());

    // A first run stopped after one document (as an interrupted copy).
    let out = copy(&lite, &from, &db.url, &["--limit", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["source_documents"], 3, "{r}");
    assert_eq!(r["copied"], 1, "{r}");
    assert_eq!(r["remaining"], 2, "{r}");
    assert_eq!(r["verified"], 1, "{r}");
    assert_eq!(r["complete"], false, "{r}");

    // Killed mid-run: whatever it committed is whole.
    let mut child = Command::new(esg_bin())
        .args(["store", "copy", "--from", &from, "--to", &db.url, "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();

    // Resumed: the rest copied, nothing twice, everything verified.
    let out = copy(&lite, &from, &db.url, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let copied = r["copied"].as_u64().unwrap();
    let skipped = r["skipped"].as_u64().unwrap();
    assert_eq!(copied + skipped, 3, "{r}");
    assert!(skipped >= 1, "{r}");
    assert_eq!(r["verified"], 3, "{r}");
    assert_eq!(r["complete"], true, "{r}");
    assert!(r["chunks"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["mismatches"].as_array().unwrap().len(), 0, "{r}");

    // The PostgreSQL store lists the same documents, ingestion times included.
    assert_eq!(documents(&lite, None), documents(&lite, Some(&db.url)));
    for (_, company, _) in REPORTS {
        assert_eq!(
            score(&lite, None, company)["fingerprint"],
            score(&lite, Some(&db.url), company)["fingerprint"],
            "{company}"
        );
    }

    // Running again copies nothing and still verifies.
    let out = copy(&lite, &from, &db.url, &[]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r["copied"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(3))
    );

    // A tampered copy is caught: one chunk's text changed in the target.
    esg_testpg::execute(
        &db.url,
        "UPDATE chunks SET text = text || ' (edited)' \
         WHERE chunk_id = (SELECT chunk_id FROM chunks ORDER BY chunk_id LIMIT 1)",
    )
    .unwrap();
    let out = copy(&lite, &from, &db.url, &[]);
    assert!(
        !out.status.success(),
        "tampering not detected: {}",
        text(&out)
    );
    let t = text(&out);
    assert!(t.contains("differ"), "{t}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["mismatches"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["verified"], 2, "{r}");

    // Not a PostgreSQL target: refused before anything happens.
    let out = copy(
        &lite,
        &from,
        &format!("sqlite:{}", tmp.path().display()),
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--to must be a postgres://"),
        "{}",
        text(&out)
    );
}

/// `esg store fill-layouts` on PostgreSQL: corpus reports whose layouts are
/// gone (as if stored before PostgreSQL migration 8) get back exactly the
/// layouts ingest stored, and their quotes the same boxes.
#[test]
fn fill_layouts_on_postgres_restores_the_layouts_ingest_stored() {
    let Some(corpus) = corpus() else { return };
    let Some(db) = esg_testpg::fresh_db() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("pg-files");
    ingest_reports(&corpus, &files, Some(&db.url));
    let layouts = || {
        esg_testpg::query_rows(
            &db.url,
            "SELECT d.doc_id, p.page::TEXT, p.layout FROM pages p \
             JOIN documents d ON d.id = p.document ORDER BY 1, 2",
        )
        .unwrap()
    };
    let stored = layouts();
    assert!(
        stored.iter().all(|r| r[2].is_some()),
        "ingest stores layouts"
    );
    let company = REPORTS[0].1;
    let boxed = score(&files, Some(&db.url), company);

    esg_testpg::execute(&db.url, "UPDATE pages SET layout = NULL").unwrap();
    let bare = score(&files, Some(&db.url), company);
    let quotes = |card: &Value| -> Vec<Value> {
        card["themes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["evidence"].as_array().unwrap().clone())
            .collect()
    };
    assert!(quotes(&bare).iter().all(|e| e.get("bbox").is_none()));

    let out = esg_on(&files, Some(&db.url), &["store", "fill-layouts", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), REPORTS.len(), "{}", text(&out));
    assert!(
        reports.iter().all(|r| r["status"] == "filled"),
        "{}",
        text(&out)
    );
    assert_eq!(layouts(), stored, "the same layouts, byte for byte");
    let refilled = score(&files, Some(&db.url), company);
    assert!(!quotes(&refilled).is_empty());
    assert_eq!(
        quotes(&refilled),
        quotes(&boxed),
        "the same quotes and boxes"
    );
    // Nothing is left to do.
    let out = esg_on(&files, Some(&db.url), &["store", "fill-layouts", "--json"]);
    assert!(
        out.status.success() && json_lines(&out).is_empty(),
        "{}",
        text(&out)
    );
}
