//! `esg store fill-layouts` (issue 12): PDF documents stored before page
//! layouts were kept get them from their kept source files, and their
//! quotes then carry boxes; text, chunks and ids stay as they were, a lost
//! source file is a clear per-document failure, and a second run does only
//! what is left. The store is the real SQLite file; the PostgreSQL side of
//! `fill_page_layouts` is in esg-store's contract tests.

mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

const NORTHWIND: &str = "Northwind Components Ltd";

/// The Northwind sample's ASCII lines (as in score_cli.rs's box test).
fn northwind_lines() -> Vec<String> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples/northwind-2024-sustainability.txt");
    std::fs::read_to_string(sample)
        .unwrap()
        .lines()
        .map(|l| l.trim_matches('\u{c}').trim().to_string())
        .filter(|l| !l.is_empty() && l.is_ascii())
        .take(52)
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ingest(data: &Path, company: &str, pdf: &Path) -> Value {
    let out = esg(
        data,
        &[
            "ingest",
            "--json",
            "--no-embed",
            "--company",
            company,
            "--year",
            "2024",
            pdf.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "ingest failed: {}", stderr(&out));
    json_lines(&out).remove(0)
}

/// Every evidence record of `esg score --format json`.
fn evidence(data: &Path) -> Vec<Value> {
    let out = esg(
        data,
        &[
            "score",
            "--company",
            NORTHWIND,
            "--year",
            "2024",
            "--format",
            "json",
            "--as-of",
            "2025-06",
        ],
    );
    assert!(out.status.success(), "score failed: {}", stderr(&out));
    let card: Value = serde_json::from_slice(&out.stdout).unwrap();
    card["themes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["evidence"].as_array().unwrap().clone())
        .collect()
}

/// A stored page: doc_id, number, text, and whether it has a layout.
type PageRow = (String, i64, String, bool);

/// Every stored page, and the chunk ids.
fn pages_and_chunks(data: &Path) -> (Vec<PageRow>, Vec<String>) {
    let c = db(data);
    let mut stmt = c
        .prepare(
            "SELECT d.doc_id, p.page, p.text, p.layout IS NOT NULL FROM pages p \
             JOIN documents d ON d.id = p.document ORDER BY d.doc_id, p.page",
        )
        .unwrap();
    let pages = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut stmt = c
        .prepare("SELECT chunk_id FROM chunks ORDER BY chunk_id")
        .unwrap();
    let chunks = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    (pages, chunks)
}

fn fill(data: &Path) -> (Option<i32>, Vec<Value>) {
    let out = esg(data, &["store", "fill-layouts", "--json"]);
    (out.status.code(), json_lines(&out))
}

#[test]
fn an_old_store_gets_its_layouts_from_the_kept_files_and_its_quotes_their_boxes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lines = northwind_lines();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let northwind = tmp.path().join("northwind.pdf");
    std::fs::write(
        &northwind,
        text_pdf(&[
            refs[..refs.len() / 2].to_vec(),
            refs[refs.len() / 2..].to_vec(),
        ]),
    )
    .unwrap();
    let other = tmp.path().join("other.pdf");
    std::fs::write(
        &other,
        text_pdf(&[vec!["Other plc cut its Scope 1 emissions by 12 % in 2024."]]),
    )
    .unwrap();
    let nw = ingest(&data, NORTHWIND, &northwind);
    let ot = ingest(&data, "Other plc", &other);
    let (nw_id, ot_id) = (
        nw["doc_id"].as_str().unwrap().to_string(),
        ot["doc_id"].as_str().unwrap().to_string(),
    );
    // Fresh documents are laid out, and their quotes boxed.
    assert!(evidence(&data).iter().all(|e| e.get("bbox").is_some()));

    // Make it a store from before layouts were kept.
    {
        let c = rusqlite::Connection::open(data.join("esg.sqlite3")).unwrap();
        c.execute("UPDATE pages SET layout = NULL", []).unwrap();
    }
    let (pages_before, chunks_before) = pages_and_chunks(&data);
    assert!(pages_before.iter().all(|p| !p.3));
    let old = evidence(&data);
    assert!(!old.is_empty());
    assert!(
        old.iter().all(|e| e.get("bbox").is_none()),
        "no layout, no box"
    );

    // One kept file is lost from the volume.
    let lost = esg_store::FileStore::in_data_dir(&data)
        .path_of(&ot_id)
        .unwrap();
    std::fs::remove_file(&lost).unwrap();

    let (code, reports) = fill(&data);
    assert_eq!(code, Some(2), "a failed document makes the exit status 2");
    assert_eq!(reports.len(), 2, "{reports:?}");
    let by_id = |id: &str| reports.iter().find(|r| r["doc_id"] == id).unwrap().clone();
    let r = by_id(&nw_id);
    assert_eq!(r["status"], "filled", "{r}");
    assert_eq!(r["pages"], 2, "{r}");
    let r = by_id(&ot_id);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error"]["code"], "source_missing", "{r}");

    // Only layouts changed: the same pages, text and chunks.
    let (pages_after, chunks_after) = pages_and_chunks(&data);
    assert_eq!(chunks_after, chunks_before);
    assert_eq!(pages_after.len(), pages_before.len());
    for (a, b) in pages_after.iter().zip(&pages_before) {
        assert_eq!((&a.0, a.1, &a.2), (&b.0, b.1, &b.2));
        assert_eq!(a.3, a.0 == nw_id, "layout of {} page {}", a.0, a.1);
    }
    // The quotes now carry boxes on the page they cite.
    let now = evidence(&data);
    assert!(!now.is_empty());
    for e in &now {
        let b: Vec<f64> = e["bbox"]
            .as_array()
            .unwrap_or_else(|| panic!("no box after the fill: {e}"))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(b[0] < b[2] && b[1] < b[3] && b[3] <= 792.0, "{b:?}");
    }

    // Ingesting the same file again puts it back; the next run does only
    // that document, and the one after has nothing left to do.
    let again = ingest(&data, "Other plc", &other);
    assert_eq!(again["status"], "already_ingested", "{again}");
    let (code, reports) = fill(&data);
    assert_eq!(code, Some(0));
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["doc_id"], ot_id.as_str());
    assert_eq!(reports[0]["status"], "filled");
    let (code, reports) = fill(&data);
    assert_eq!(code, Some(0));
    assert!(reports.is_empty(), "{reports:?}");
}
