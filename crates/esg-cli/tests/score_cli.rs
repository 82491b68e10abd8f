//! `esg score` and `esg search` end to end: the real binary on real SQLite
//! data directories, with the shipped sample report
//! (`samples/northwind-2024-sustainability.txt`, fictional, six pages
//! separated by form feeds) and, when present, the shared corpus.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use support::*;

const NORTHWIND: &str = "Northwind Components Ltd";
/// A fixed scoring month, so expectations do not depend on today's date.
const AS_OF: &str = "2025-06";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/northwind-2024-sustainability.txt")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A data directory with the Northwind sample ingested for 2024.
fn northwind_data() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            NORTHWIND,
            "--year",
            "2024",
            "--json",
            sample().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "ingest failed: {}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(r["status"], "ingested", "{r}");
    assert_eq!(r["pages"], 6, "{r}");
    (tmp, data)
}

/// `esg score --format json` for a company (as of [`AS_OF`] unless `extra`
/// says otherwise); panics unless it succeeds.
fn score_json(data: &Path, company: &str, extra: &[&str]) -> (String, Value) {
    let mut args = vec!["score", "--company", company, "--format", "json"];
    if !extra.contains(&"--as-of") {
        args.extend(["--as-of", AS_OF]);
    }
    args.extend_from_slice(extra);
    let out = esg(data, &args);
    assert!(
        out.status.success(),
        "esg score {company} failed: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON: {e}"));
    (text, v)
}

fn theme<'a>(card: &'a Value, code: &str) -> &'a Value {
    card["themes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["theme"] == code)
        .unwrap_or_else(|| panic!("no theme {code}"))
}

fn stage(card: &Value, code: &str) -> u64 {
    theme(card, code)["stage"].as_u64().unwrap()
}

/// Criteria with a quote on `page` in the theme's evidence.
fn criteria_on_page(card: &Value, code: &str, page: u64) -> BTreeSet<String> {
    theme(card, code)["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["page"] == page)
        .map(|e| e["criterion"].as_str().unwrap().to_string())
        .collect()
}

/// Stored text of one page, read straight from the SQLite file.
fn page_text(db: &rusqlite::Connection, doc_id: &str, page: u64) -> String {
    db.query_row(
        "SELECT p.text FROM pages p JOIN documents d ON d.id = p.document \
         WHERE d.doc_id = ?1 AND p.page = ?2",
        rusqlite::params![doc_id, page as i64],
        |r| r.get(0),
    )
    .unwrap_or_else(|e| panic!("page {page} of {doc_id}: {e}"))
}

/// The invariants every scorecard must satisfy, checked against the store:
/// quotes are the stored page text at their span, at most 30 words, contain
/// the matched text and lie inside their chunk; hashes are right; a stage
/// above 0 has quotes from at least two distinct chunks; parity holds and
/// every evidence chunk was retrieved; documents and sources agree.
fn check_invariants(data: &Path, card: &Value, label: &str) {
    let db = db(data);
    assert_eq!(card["parity"]["parity_ok"], true, "{label}: parity");
    assert_eq!(
        card["parity"]["missing_chunk_ids"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "{label}"
    );
    let fp = card["fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 64, "{label}: fingerprint {fp}");
    assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()), "{label}");
    assert_eq!(card["themes"].as_array().unwrap().len(), 7, "{label}");
    let docs: BTreeSet<&str> = card["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            // The source hash is the document id (the SHA-256 of its bytes).
            assert_eq!(d["doc_id"], d["source_sha256"], "{label}");
            d["doc_id"].as_str().unwrap()
        })
        .collect();
    let sources: BTreeSet<&str> = card["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(!s["filename"].as_str().unwrap().is_empty(), "{label}");
            s["doc_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(docs, sources, "{label}: sources name every document used");
    let retrieved: BTreeSet<&str> = card["parity"]["retrieved_chunk_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut pages: BTreeMap<(String, u64), String> = BTreeMap::new();
    for t in card["themes"].as_array().unwrap() {
        let code = t["theme"].as_str().unwrap();
        let evidence = t["evidence"].as_array().unwrap();
        let theme_retrieved: BTreeSet<&str> = t["retrieved"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["chunk_id"].as_str().unwrap())
            .collect();
        for e in evidence {
            let doc_id = e["doc_id"].as_str().unwrap();
            let page = e["page"].as_u64().unwrap();
            let quote = e["quote"].as_str().unwrap();
            let chunk_id = e["chunk_id"].as_str().unwrap();
            let (start, end) = (
                e["span"]["start"].as_u64().unwrap() as usize,
                e["span"]["end"].as_u64().unwrap() as usize,
            );
            let text = pages
                .entry((doc_id.to_string(), page))
                .or_insert_with(|| page_text(&db, doc_id, page));
            let at: String = text.chars().skip(start).take(end - start).collect();
            assert_eq!(
                at, quote,
                "{label} {code}: quote is not the stored text at its span"
            );
            assert!(
                quote.split_whitespace().count() <= 30,
                "{label} {code}: quote over 30 words: {quote}"
            );
            assert!(
                quote.contains(e["matched"].as_str().unwrap()),
                "{label} {code}: quote lacks the matched text"
            );
            assert_eq!(
                e["sha256"].as_str().unwrap(),
                esg_core::sha256_hex(quote),
                "{label}"
            );
            assert!(docs.contains(doc_id), "{label}: quote from an unused doc");
            // The quote lies inside its stored chunk, on the same page.
            let (c_page, c_start, c_end): (i64, i64, i64) = db
                .query_row(
                    "SELECT ch.page, ch.char_start, ch.char_end FROM chunks ch \
                     JOIN documents d ON d.id = ch.document \
                     WHERE ch.chunk_id = ?1 AND d.doc_id = ?2",
                    [chunk_id, doc_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap_or_else(|err| panic!("{label}: chunk {chunk_id}: {err}"));
            assert_eq!(c_page as u64, page, "{label}");
            assert!(
                c_start as usize <= start && end <= c_end as usize,
                "{label} {code}: quote outside its chunk"
            );
            assert!(retrieved.contains(chunk_id), "{label}: parity");
            assert!(
                theme_retrieved.contains(chunk_id),
                "{label} {code}: evidence chunk not retrieved for this theme"
            );
        }
        if t["stage"].as_u64().unwrap() > 0 {
            let chunks: BTreeSet<&str> = evidence
                .iter()
                .map(|e| e["chunk_id"].as_str().unwrap())
                .collect();
            assert!(
                chunks.len() >= 2,
                "{label} {code}: stage {} with quotes from {} chunk(s)",
                t["stage"],
                chunks.len()
            );
        }
    }
}

#[test]
fn northwind_scores_defensible_stages_with_verbatim_evidence() {
    let (_tmp, data) = northwind_data();
    let (_, card) = score_json(&data, NORTHWIND, &[]);
    check_invariants(&data, &card, "northwind");
    assert_eq!(card["company"], NORTHWIND);
    assert_eq!(card["year"], 2024);
    assert_eq!(card["as_of"], AS_OF);
    assert_eq!(card["k"], 10);
    assert_eq!(card["rubric_version"], "3.0");
    let sha = esg_core::sha256_hex(std::fs::read(sample()).unwrap());
    assert_eq!(card["documents"][0]["source_sha256"], sha.as_str());
    assert_eq!(
        card["sources"][0]["filename"],
        "northwind-2024-sustainability.txt"
    );

    // TSP 4: page 3 "Our near-term targets were validated by the SBTi in
    // March 2024" (validated SBTi → TSP 4) and the transition plan linking
    // targets to CAPEX.
    assert_eq!(stage(&card, "TSP"), 4);
    assert!(criteria_on_page(&card, "TSP", 3).contains("TSP.4.sbti_validated"));
    // GHG exactly 3: page 4 reports Scope 1, 2 and all relevant Scope 3
    // categories under the GHG Protocol with *limited* assurance (ISAE
    // 3410); nothing claims reasonable assurance, so not 4.
    assert_eq!(stage(&card, "GHG"), 3);
    let ghg_p4 = criteria_on_page(&card, "GHG", 4);
    for c in [
        "GHG.3.limited_assurance",
        "GHG.3.full_scope3",
        "GHG.3.ghg_protocol",
    ] {
        assert!(
            ghg_p4.contains(c),
            "{c} not evidenced on page 4: {ghg_p4:?}"
        );
    }
    // OSP ≥ 3: page 2 — Board Sustainability Committee oversight, a
    // cross-functional ESG Steering Committee, KPIs in the executive bonus.
    assert!(stage(&card, "OSP") >= 3);
    // RD 2–3: page 1 "aligned with the recommendations of the TCFD" (RD ≥ 2);
    // page 6 says the first CSRD report is still in preparation and nothing
    // mentions assurance of the report or digital tagging, so not 4.
    let rd = stage(&card, "RD");
    assert!((2..=3).contains(&rd), "RD {rd}");
    assert!(criteria_on_page(&card, "RD", 1).contains("RD.2.tcfd_issb"));
    // RMM ≥ 3: page 6 quantifies two risks (EUR 4 million flood losses, EUR
    // 2.1 million from a carbon price) and page 3 runs 1.5°C/3°C scenarios.
    assert!(stage(&card, "RMM") >= 3);
    assert!(criteria_on_page(&card, "RMM", 6).contains("RMM.3.quantified_risk"));
    // DM ≥ 3: page 5 — a central ESG data platform and supplier data
    // exchanged through the CDP supply chain programme.
    assert!(stage(&card, "DM") >= 3);
    // EI ≥ 1: page 5 reports energy consumption (96 GWh). (The engine stops
    // at 1 because no "energy KPI" core criterion of stage 2 matches.)
    assert!(stage(&card, "EI") >= 1);

    // Overall: the grade follows the mean of the stages.
    let stages: Vec<u64> = card["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_u64().unwrap())
        .collect();
    let mean = stages.iter().sum::<u64>() as f64 / 7.0;
    assert!((card["overall"]["mean_stage"].as_f64().unwrap() - mean).abs() < 0.006);
    let grade = card["overall"]["grade"].as_str().unwrap();
    assert!(
        matches!(grade, "Established" | "Advanced"),
        "grade {grade} for mean {mean}"
    );
    // Scored in 2025-06, a 2024 report is fresh.
    for t in card["themes"].as_array().unwrap() {
        assert_eq!(t["confidence_detail"]["stale"], false);
        let c = t["confidence"].as_f64().unwrap();
        assert!((0.2..=1.0).contains(&c));
    }
}

#[test]
fn score_output_is_byte_identical_across_runs() {
    let (_tmp, data) = northwind_data();
    let (a, card) = score_json(&data, NORTHWIND, &[]);
    let (b, _) = score_json(&data, NORTHWIND, &[]);
    assert_eq!(a, b, "JSON differs between runs");
    // Any spelling of the company gives the same bytes.
    let (c, _) = score_json(&data, "northwind components ltd.", &["--year", "2024"]);
    assert_eq!(a, c);
    let table = |data: &Path| {
        let out = esg(data, &["score", "--company", NORTHWIND, "--as-of", AS_OF]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(table(&data), table(&data));
    // A second, independent store with the same bytes gives the same JSON
    // (ingestion time is not part of the scorecard).
    let (_tmp2, data2) = northwind_data();
    let (d, _) = score_json(&data2, NORTHWIND, &[]);
    assert_eq!(a, d, "same document, different store");
    // The as-of month is part of the request: it changes the fingerprint
    // and, 30 months later, freshness (confidence), not the stages.
    let (_, later) = score_json(&data, NORTHWIND, &["--as-of", "2027-06"]);
    assert_ne!(later["fingerprint"], card["fingerprint"]);
    for t in later["themes"].as_array().unwrap() {
        let code = t["theme"].as_str().unwrap();
        assert_eq!(t["stage"], theme(&card, code)["stage"], "{code}");
        if t["stage"].as_u64().unwrap() > 0 {
            assert_eq!(t["confidence_detail"]["stale"], true, "{code}");
            assert!(
                t["confidence"].as_f64().unwrap()
                    < theme(&card, code)["confidence"].as_f64().unwrap(),
                "{code}: stale evidence must lower confidence"
            );
        }
    }
    // --k is part of the request too.
    let (_, k5) = score_json(&data, NORTHWIND, &["--k", "5"]);
    assert_eq!(k5["k"], 5);
    assert_ne!(k5["fingerprint"], card["fingerprint"]);
    check_invariants(&data, &k5, "northwind k=5");
}

#[test]
fn score_table_shows_themes_stages_confidence_and_cited_quotes() {
    let (_tmp, data) = northwind_data();
    let (_, card) = score_json(&data, NORTHWIND, &[]);
    let out = esg(
        &data,
        &[
            "score",
            "--company",
            "NORTHWIND components LTD",
            "--as-of",
            AS_OF,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let grade = card["overall"]["grade"].as_str().unwrap();
    assert!(table.starts_with("Northwind Components Ltd — 2024 (as of 2025-06"));
    assert!(table.contains(&format!("Grade: {grade} (mean stage")));
    assert!(table.contains(&format!("Overall: {grade}")));
    assert!(table.contains("Parity: ok"));
    for t in card["themes"].as_array().unwrap() {
        let row = format!(
            "{:<5} {:<34} {:<5} {:<34} {:.1} {}",
            t["theme"].as_str().unwrap(),
            t["name"].as_str().unwrap(),
            format!("{}/4", t["stage"]),
            t["label"].as_str().unwrap(),
            t["confidence"].as_f64().unwrap(),
            t["confidence_band"].as_str().unwrap()
        );
        assert!(table.contains(&row), "missing row {row:?} in\n{table}");
    }
    // One cited quote per theme with a stage: page and file name.
    let cites = table
        .lines()
        .filter(|l| l.trim_start().starts_with("— p. "))
        .count();
    let staged = card["themes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["stage"].as_u64().unwrap() > 0)
        .count();
    assert_eq!(cites, staged, "{table}");
    assert!(table.contains("— p. 3, northwind-2024-sustainability.txt"));
    assert!(table.contains("validated by the SBTi"), "{table}");
}

#[test]
fn a_theme_without_evidence_says_so() {
    // A one-page report about nothing the rubric looks for.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let report = tmp.path().join("bakery.txt");
    std::fs::write(
        &report,
        "Crumb & Co Annual Review 2023\n\nOur bakery sold bread, cakes and pastries in three towns.\n\nCustomers liked the new rye loaf. The shop on Mill Street was repainted.\n",
    )
    .unwrap();
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "Crumb & Co",
            "--year",
            "2023",
            report.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, card) = score_json(&data, "crumb and co", &[]);
    check_invariants(&data, &card, "bakery");
    assert!(
        card["themes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["stage"] == 0)
    );
    assert_eq!(card["overall"]["grade"], "Nascent");
    let out = esg(
        &data,
        &["score", "--company", "Crumb & Co", "--as-of", AS_OF],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert_eq!(
        table.matches("No evidence:").count(),
        7,
        "each theme says it has no evidence:\n{table}"
    );
}

#[test]
fn unknown_company_lists_close_matches() {
    let (_tmp, data) = northwind_data();
    for cmd in [
        vec!["score", "--company", "Nortwind"],
        vec!["search", "--company", "Nortwind", "scope 3"],
        vec!["score", "--company", "Northwind Components"],
    ] {
        let out = esg(&data, &cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = stderr(&out);
        assert!(
            err.contains("no company named")
                && err.contains("did you mean \"Northwind Components Ltd\"?"),
            "{cmd:?}: {err}"
        );
        assert!(stdout(&out).is_empty());
    }
    // Nothing close: the companies on file are listed instead.
    let out = esg(&data, &["score", "--company", "Globex"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("none is close; companies on file: \"Northwind Components Ltd\""),
        "{err}"
    );
    // An empty store says how to add reports.
    let empty = tempfile::tempdir().unwrap();
    let out = esg(&empty.path().join("data"), &["score", "--company", "Acme"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("esg ingest"), "{}", stderr(&out));
}

#[test]
fn year_without_documents_lists_the_years_on_file() {
    let (_tmp, data) = northwind_data();
    for cmd in [
        vec!["score", "--company", NORTHWIND, "--year", "2019"],
        vec![
            "search",
            "--company",
            NORTHWIND,
            "--year",
            "2019",
            "targets",
        ],
    ] {
        let out = esg(&data, &cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = stderr(&out);
        assert!(
            err.contains("Northwind Components Ltd has no documents for 2019; years on file: 2024"),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn invalid_rubric_file_is_refused_naming_the_field() {
    let (tmp, data) = northwind_data();
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rubric/v3.0.json");
    let mut rubric: Value =
        serde_json::from_str(&std::fs::read_to_string(&builtin).unwrap()).unwrap();
    // Same rubric from a file: same scores (the rubric hash is in the fingerprint).
    let ok = tmp.path().join("ok.json");
    std::fs::write(&ok, serde_json::to_string_pretty(&rubric).unwrap()).unwrap();
    let (_, from_file) = score_json(&data, NORTHWIND, &["--rubric", ok.to_str().unwrap()]);
    let (_, builtin_card) = score_json(&data, NORTHWIND, &[]);
    for t in builtin_card["themes"].as_array().unwrap() {
        let code = t["theme"].as_str().unwrap();
        assert_eq!(theme(&from_file, code)["stage"], t["stage"], "{code}");
    }
    // A theme without its query.
    rubric["themes"][2]
        .as_object_mut()
        .unwrap()
        .remove("query")
        .unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_string_pretty(&rubric).unwrap()).unwrap();
    let out = esg(
        &data,
        &[
            "score",
            "--company",
            NORTHWIND,
            "--rubric",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("invalid rubric") && err.contains("themes[2].query: is required"),
        "{err}"
    );
    // A field of the wrong type.
    let mut rubric: Value =
        serde_json::from_str(&std::fs::read_to_string(&builtin).unwrap()).unwrap();
    rubric["scoring"]["min_quotes_per_stage"] = Value::from("two");
    std::fs::write(&bad, rubric.to_string()).unwrap();
    let out = esg(
        &data,
        &[
            "score",
            "--company",
            NORTHWIND,
            "--rubric",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("scoring.min_quotes_per_stage"),
        "{}",
        stderr(&out)
    );
    // Not JSON, and no file at all.
    std::fs::write(&bad, "{ not json").unwrap();
    let out = esg(
        &data,
        &[
            "score",
            "--company",
            NORTHWIND,
            "--rubric",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
    let out = esg(
        &data,
        &[
            "score",
            "--company",
            NORTHWIND,
            "--rubric",
            "/nonexistent/rubric.json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read rubric file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_flags_are_refused() {
    let (_tmp, data) = northwind_data();
    for (args, needle) in [
        (
            vec!["score", "--company", NORTHWIND, "--k", "0"],
            "between 1 and 100",
        ),
        (
            vec!["score", "--company", NORTHWIND, "--k", "101"],
            "between 1 and 100",
        ),
        (
            vec!["search", "--company", NORTHWIND, "--k", "500", "x"],
            "between 1 and 100",
        ),
        (
            vec!["score", "--company", NORTHWIND, "--as-of", "2025-13"],
            "month 13",
        ),
        (
            vec!["score", "--company", NORTHWIND, "--as-of", "June"],
            "YYYY-MM",
        ),
        (
            vec!["score", "--company", NORTHWIND, "--format", "xml"],
            "table",
        ),
        (
            vec![
                "search",
                "--company",
                NORTHWIND,
                "--year",
                "2024",
                "--all-years",
                "x",
            ],
            "cannot be used with",
        ),
    ] {
        let out = esg(&data, &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // Flags fall back to ESG_* variables.
    let out = std::process::Command::new(esg_bin())
        .args(["score", "--format", "json"])
        .env("ESG_DATA_DIR", &data)
        .env("ESG_COMPANY", NORTHWIND)
        .env("ESG_AS_OF", AS_OF)
        .env("ESG_K", "7")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["k"], 7);
    assert_eq!(v["as_of"], AS_OF);
}

#[test]
fn search_returns_cited_passages_deterministically() {
    let (_tmp, data) = northwind_data();
    let run = |args: &[&str]| {
        let out = esg(&data, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let args = [
        "search",
        "--company",
        "northwind components ltd",
        "--json",
        "--k",
        "3",
        "limited assurance of Scope 3 emissions",
    ];
    let a = run(&args);
    assert_eq!(a, run(&args), "search output differs between runs");
    let v: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["company"], NORTHWIND);
    assert_eq!(v["years"], serde_json::json!([2024]));
    assert_eq!(v["retrieval"], "bm25");
    let passages = v["passages"].as_array().unwrap();
    assert_eq!(passages.len(), 3);
    // The assurance statement is on page 4.
    assert_eq!(passages[0]["page"], 4);
    assert!(
        passages[0]["text"]
            .as_str()
            .unwrap()
            .contains("limited assurance"),
        "{}",
        passages[0]
    );
    let db = db(&data);
    let mut last = f64::INFINITY;
    for (i, p) in passages.iter().enumerate() {
        assert_eq!(p["rank"], i + 1);
        assert_eq!(p["filename"], "northwind-2024-sustainability.txt");
        assert_eq!(p["year"], 2024);
        let score = p["score"].as_f64().unwrap();
        assert!(score > 0.0 && score <= last, "scores descend");
        assert_eq!((score * 1e4).round() / 1e4, score, "4 decimals");
        last = score;
        // The passage is the stored chunk, on its page.
        let (page, text): (i64, String) = db
            .query_row(
                "SELECT page, text FROM chunks WHERE chunk_id = ?1",
                [p["chunk_id"].as_str().unwrap()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(page as u64, p["page"].as_u64().unwrap());
        assert_eq!(text, p["text"].as_str().unwrap());
        let page_text = page_text(&db, p["doc_id"].as_str().unwrap(), page as u64);
        assert!(page_text.contains(&text));
    }
    // Text output names file and page; the question may be unquoted words.
    let text = run(&[
        "search",
        "--company",
        NORTHWIND,
        "--all-years",
        "SBTi",
        "validated",
        "targets",
    ]);
    assert!(
        text.contains("passage(s) for \"SBTi validated targets\""),
        "{text}"
    );
    assert!(
        text.contains("northwind-2024-sustainability.txt  p. 3"),
        "{text}"
    );
    // No matching word: an empty list, not an error.
    let none = run(&["search", "--company", NORTHWIND, "--json", "zeppelin"]);
    let v: Value = serde_json::from_str(&none).unwrap();
    assert_eq!(v["passages"].as_array().unwrap().len(), 0);
    // Only stop words: refused with a reason.
    let out = esg(&data, &["search", "--company", NORTHWIND, "the of and"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no searchable words"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn semantic_search_without_an_embedder_fails_clearly() {
    let (_tmp, data) = northwind_data();
    let out = esg(
        &data,
        &[
            "search",
            "--company",
            NORTHWIND,
            "--semantic",
            "climate risk",
        ],
    );
    // The default embedder is the local model, which this data directory
    // does not have: the error names the missing folder and the fix.
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("model_file_missing"), "{err}");
    assert!(err.contains("models/all-MiniLM-L6-v2"), "{err}");
    assert!(err.contains("scripts/fetch-model.sh"), "{err}");
    assert!(stdout(&out).is_empty());
    // With no embedder at all, that is what it says.
    let out = esg(
        &data,
        &[
            "search",
            "--company",
            NORTHWIND,
            "--semantic",
            "--embedder",
            "none",
            "climate risk",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("semantic search needs an embedder and none is configured"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// The shared corpus (third-party reports, never copied into the repository).

#[test]
fn every_ingested_corpus_company_scores_with_verifiable_evidence() {
    let Some(dir) = corpus_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut companies: BTreeMap<String, String> = BTreeMap::new(); // company → year
    for row in manifest(&dir) {
        let (file, company, year) = (row.file, row.company, row.year);
        let out = esg(
            &data,
            &[
                "ingest",
                "--company",
                &company,
                "--year",
                &year,
                "--json",
                dir.join(&file).to_str().unwrap(),
            ],
        );
        let r = &json_lines(&out)[0];
        if r["status"] == "ingested" {
            companies.insert(company, year);
        } else {
            // The Tesco "PDF" is an HTML error page: refused at ingestion.
            eprintln!("not scored (ingestion {}): {file}", r["status"]);
        }
    }
    assert!(companies.len() >= 18, "ingested: {companies:?}");
    let mut cards: BTreeMap<String, Value> = BTreeMap::new();
    let mut summary = Vec::new();
    for (company, year) in &companies {
        let (a, card) = score_json(&data, company, &[]);
        let (b, _) = score_json(&data, company, &[]);
        assert_eq!(a, b, "{company}: JSON differs between runs");
        assert_eq!(card["year"].to_string(), *year, "{company}: latest year");
        check_invariants(&data, &card, company);
        summary.push(format!(
            "{company:<30} {year} {:<12} {}",
            card["overall"]["grade"].as_str().unwrap(),
            card["themes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| format!("{}{}", t["theme"].as_str().unwrap(), t["stage"]))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        cards.insert(company.clone(), card);
    }
    eprintln!("{}", summary.join("\n"));

    // Face validity, checked against the stored page text of the PDFs.
    //
    // Bayer_AG-2021_Sustainability_Report.pdf, page 84: "The Science Based
    // Targets initiative (SBTi) has validated our target"; page 86: "This
    // target was validated and acknowledged by the Science Based Targets
    // initiative (SBTi)." Validated SBTi targets → TSP 4.
    let bayer = &cards["Bayer AG"];
    assert_eq!(stage(bayer, "TSP"), 4);
    let tsp4_pages: BTreeSet<u64> = theme(bayer, "TSP")["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["criterion"] == "TSP.4.sbti_validated")
        .map(|e| e["page"].as_u64().unwrap())
        .collect();
    assert!(
        tsp4_pages.contains(&84) || tsp4_pages.contains(&86),
        "Bayer SBTi quotes on pages {tsp4_pages:?}"
    );
    // Same report, page 114: the independent auditor's report on a *limited*
    // assurance engagement ("less in extent than for a reasonable assurance
    // engagement"); pages 90-91 report Scope 3 under the GHG Protocol.
    // Full inventory with limited assurance → GHG 3, not 4.
    assert_eq!(stage(bayer, "GHG"), 3);
    assert!(criteria_on_page(bayer, "GHG", 114).contains("GHG.3.limited_assurance"));

    // Netflix_Inc-SASB_Report.pdf, page 4: "Our target was validated by the
    // Science Based Targets Initiative in July 2021." → TSP 4; page 8: EY
    // performs limited assurance of Scope 1, 2 and 3 emissions → GHG ≥ 3.
    let netflix = &cards["Netflix Inc."];
    assert_eq!(stage(netflix, "TSP"), 4);
    assert!(criteria_on_page(netflix, "TSP", 4).contains("TSP.4.sbti_validated"));
    assert!(stage(netflix, "GHG") >= 3);

    // Sligro_Food_Group_NV-2015_Corporate_Social_Responsibility_Report.pdf is
    // a 2015 report scored as of 2025-06: every theme it evidences is stale.
    let sligro = &cards["Sligro Food Group NV"];
    let staged: Vec<&Value> = sligro["themes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["stage"].as_u64().unwrap() > 0)
        .collect();
    assert!(!staged.is_empty());
    assert!(
        staged
            .iter()
            .all(|t| t["confidence_detail"]["stale"] == true)
    );
}

#[test]
fn output_cut_short_by_the_reader_ends_quietly() {
    // `esg score | head -1`: the reader closes the pipe after one line; the
    // process ends by SIGPIPE like other tools, with no panic message.
    use std::io::Read as _;
    use std::os::unix::process::ExitStatusExt as _;
    let (_tmp, data) = northwind_data();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_esg"))
        .arg("--data-dir")
        .arg(&data)
        .args(["score", "--company", NORTHWIND, "--format", "json"])
        .env_remove("ESG_DATA_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
}

/// Issue 12: every quote from a PDF carries the box of the line it was
/// drawn on (page space, points), and quotes from text files carry none.
/// The Northwind sample's ASCII lines are drawn as a PDF, one line per
/// paragraph, in Helvetica 11 pt with 14 pt leading from y = 760, so line
/// `i`'s baseline is at `760 - 14 i`.
#[test]
fn pdf_quotes_carry_the_box_of_the_line_they_were_drawn_on() {
    let text = std::fs::read_to_string(sample()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_matches('\u{c}').trim())
        .filter(|l| !l.is_empty() && l.is_ascii())
        .take(52)
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pdf = tmp.path().join("northwind.pdf");
    std::fs::write(&pdf, text_pdf(std::slice::from_ref(&lines))).unwrap();
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            NORTHWIND,
            "--year",
            "2024",
            pdf.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "ingest failed: {}", stderr(&out));
    let (_, card) = score_json(&data, NORTHWIND, &[]);
    let mut checked = 0;
    for t in card["themes"].as_array().unwrap() {
        for e in t["evidence"].as_array().unwrap() {
            let quote = e["quote"].as_str().unwrap();
            let b = e["bbox"]
                .as_array()
                .unwrap_or_else(|| panic!("a PDF quote without a box: {e}"));
            let b: Vec<f64> = b.iter().map(|v| v.as_f64().unwrap()).collect();
            assert!(b[0] < b[2] && b[1] < b[3], "{b:?}");
            let Some(i) = lines.iter().position(|l| l.contains(quote)) else {
                continue; // a quote over two drawn lines
            };
            let base = 760.0 - 14.0 * i as f64;
            let want = [72.0, base - 0.25 * 11.0, base + 0.85 * 11.0];
            for (got, want) in [b[0], b[1], b[3]].iter().zip(want) {
                assert!(
                    (got - want).abs() <= 1.0,
                    "quote {quote:?} on line {i}: box {b:?}, want x0/y0/y1 {want}"
                );
            }
            assert!(b[2] > b[0] + 20.0, "{b:?}");
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} quotes lie on one drawn line");

    // The text sample's quotes have no box (their span locates them).
    let (_tmp2, data2) = northwind_data();
    let (_, card) = score_json(&data2, NORTHWIND, &[]);
    let quotes: Vec<&Value> = card["themes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["evidence"].as_array().unwrap())
        .collect();
    assert!(!quotes.is_empty());
    assert!(quotes.iter().all(|e| e.get("bbox").is_none()));
}
