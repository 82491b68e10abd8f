//! `esg ingest` end to end: the real binary, real fixture files it is given,
//! and the real SQLite file it writes.

mod support;

use std::path::Path;
use std::process::Command;
use support::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p.to_string_lossy().into_owned()
}

fn page_text(data: &Path, filename: &str, page: u32) -> String {
    db(data)
        .query_row(
            "SELECT p.text FROM pages p JOIN documents d ON d.id = p.document WHERE d.filename = ?1 AND p.page = ?2",
            rusqlite::params![filename, page],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("page {page} of {filename}: {e}"))
}

fn report_pdf() -> Vec<u8> {
    let body = [
        vec![
            "ACME Corp Sustainability Report 2023",
            "Our Climate Targets",
            "We have set a science-based target to reduce absolute Scope 1 and 2",
            "emissions by 42% by 2030 from a 2020 base year, and we are improving the sustain-",
            "ability of our supply chain.",
            "1",
        ],
        vec![
            "ACME Corp Sustainability Report 2023",
            "Governance",
            "The Board Sustainability Committee oversees climate-related risks and opportunities.",
            "It meets four times a year.",
            "2",
        ],
        vec![
            "ACME Corp Sustainability Report 2023",
            "Energy",
            "Energy consumption fell by 8% through LED retrofits and metering at all sites.",
            "3",
        ],
    ];
    text_pdf(&body)
}

#[test]
fn pdf_is_ingested_with_pages_clean_text_and_json_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pdf = write(tmp.path(), "acme.pdf", &report_pdf());
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "ACME Corp",
            "--year",
            "2023",
            "--json",
            &pdf,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["status"], "ingested");
    assert_eq!(r["media_type"], "pdf");
    assert_eq!(r["pages"], 3);
    assert!(r["chunks"].as_u64().unwrap() >= 3);
    assert_eq!(r["doc_id"], esg_core::sha256_hex(report_pdf()));
    assert!(r["error"].is_null());
    for key in [
        "path",
        "status",
        "doc_id",
        "media_type",
        "pages",
        "chunks",
        "error",
    ] {
        assert!(r.get(key).is_some(), "missing {key}");
    }
    let p1 = page_text(&data, "acme.pdf", 1);
    assert!(
        p1.contains("sustainability of our supply chain"),
        "de-hyphenation: {p1}"
    );
    assert!(
        !p1.contains("ACME Corp Sustainability Report 2023"),
        "running header kept: {p1}"
    );
    assert!(
        !p1.lines().any(|l| l.trim() == "1"),
        "page number kept: {p1}"
    );
    assert!(
        p1.starts_with("Our Climate Targets\n"),
        "heading apart from paragraph: {p1}"
    );
    let p3 = page_text(&data, "acme.pdf", 3);
    assert!(p3.contains("LED retrofits"), "{p3}");

    // Page numbers agree with pdfinfo.
    if require("pdfinfo", "poppler-utils") {
        let info = Command::new("pdfinfo").arg(&pdf).output().unwrap();
        let s = String::from_utf8_lossy(&info.stdout);
        let pages: u32 = s
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pages, 3);
    }

    // Chunk rows: spans index the stored page text exactly; ids are stable.
    let c = db(&data);
    let mut stmt = c.prepare("SELECT c.page, c.char_start, c.char_end, c.text, c.sha256 FROM chunks c ORDER BY c.seq").unwrap();
    let rows: Vec<(u32, usize, usize, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (page, s, e, text, sha) in rows {
        let pt = page_text(&data, "acme.pdf", page);
        let span: String = pt.chars().skip(s).take(e - s).collect();
        assert_eq!(span, text);
        assert_eq!(sha, esg_core::sha256_hex(&text));
    }
}

#[test]
fn same_bytes_give_same_chunk_ids_and_reingest_is_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = write(tmp.path(), "acme.pdf", &report_pdf());
    let ids = |data: &Path| -> Vec<String> {
        let c = db(data);
        let mut s = c
            .prepare("SELECT chunk_id FROM chunks ORDER BY seq")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    assert!(
        esg(&a, &["ingest", "--company", "ACME", "--year", "2023", &pdf])
            .status
            .success()
    );
    assert!(
        esg(&b, &["ingest", "--company", "Acme", "--year", "2023", &pdf])
            .status
            .success()
    );
    assert_eq!(ids(&a), ids(&b));
    assert!(!ids(&a).is_empty());

    let before = counts(&a);
    let again = esg(
        &a,
        &[
            "ingest",
            "--company",
            "acme",
            "--year",
            "2023",
            "--json",
            &pdf,
        ],
    );
    assert!(again.status.success());
    let rows = json_lines(&again);
    assert_eq!(rows[0]["status"], "already_ingested");
    assert_eq!(rows[0]["pages"], 3);
    assert_eq!(counts(&a), before);
}

#[test]
fn encrypted_with_empty_password_is_read_and_with_a_password_is_refused() {
    if !require("qpdf", "qpdf") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let plain = write(tmp.path(), "plain.pdf", &report_pdf());
    let data = tmp.path().join("data");
    let mut paths = Vec::new();
    for (name, args) in [
        (
            "rc4.pdf",
            vec![
                "--allow-weak-crypto",
                "--encrypt",
                "",
                "owner",
                "128",
                "--use-aes=n",
                "--",
            ],
        ),
        (
            "aes128.pdf",
            vec!["--encrypt", "", "owner", "128", "--use-aes=y", "--"],
        ),
        ("aes256.pdf", vec!["--encrypt", "", "owner", "256", "--"]),
    ] {
        let out = tmp.path().join(name);
        let st = Command::new("qpdf")
            .args(&args)
            .arg(&plain)
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success(), "qpdf {name}");
        paths.push(out.to_string_lossy().into_owned());
    }
    let locked = tmp.path().join("locked.pdf");
    assert!(
        Command::new("qpdf")
            .args(["--encrypt", "secret", "owner", "256", "--"])
            .arg(&plain)
            .arg(&locked)
            .status()
            .unwrap()
            .success()
    );
    let mut args = vec!["ingest", "--company", "ACME", "--year", "2023", "--json"];
    args.extend(paths.iter().map(String::as_str));
    let locked_s = locked.to_string_lossy().into_owned();
    args.push(&locked_s);
    let out = esg(&data, &args);
    assert_eq!(out.status.code(), Some(2), "a failed file makes exit 2");
    let rows = json_lines(&out);
    for r in &rows[..3] {
        assert_eq!(r["status"], "ingested", "{r}");
        assert_eq!(r["pages"], 3);
    }
    assert_eq!(rows[3]["status"], "failed");
    assert_eq!(rows[3]["error"]["code"], "pdf_password_required");
    for name in ["rc4.pdf", "aes128.pdf", "aes256.pdf"] {
        assert!(
            page_text(&data, name, 2).contains("Board Sustainability Committee"),
            "{name}"
        );
    }
    assert_eq!(counts(&data).1, 3, "the locked file stored nothing");
}

#[test]
fn incremental_update_pages_are_all_read() {
    let tmp = tempfile::tempdir().unwrap();
    let base = text_pdf(&[
        vec!["First page text about water."],
        vec!["Second page text about waste."],
    ]);
    let updated =
        append_page_incrementally(&base, 2, &["Third page added by an incremental update."]);
    let pdf = write(tmp.path(), "updated.pdf", &updated);
    if require("pdfinfo", "poppler-utils") {
        let info =
            String::from_utf8_lossy(&Command::new("pdfinfo").arg(&pdf).output().unwrap().stdout)
                .into_owned();
        assert!(info.contains("Pages:           3"), "{info}");
    }
    let data = tmp.path().join("data");
    let out = esg(
        &data,
        &["ingest", "--company", "X", "--year", "2022", "--json", &pdf],
    );
    assert!(out.status.success());
    assert_eq!(json_lines(&out)[0]["pages"], 3);
    assert!(page_text(&data, "updated.pdf", 3).contains("incremental update"));
}

#[test]
fn bad_inputs_fail_clearly_and_the_rest_is_still_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let good = write(
        d,
        "good.txt",
        b"We publish a TCFD report every year.\n\nOur Scope 3 inventory is assured.",
    );
    let empty = write(d, "empty.pdf", b"");
    let png = write(
        d,
        "chart.pdf",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR rest of image",
    );
    let scan = write(d, "scan.pdf", &image_only_pdf());
    let full = report_pdf();
    let truncated = write(d, "truncated.pdf", &full[..full.len() / 3]);
    let garbage = write(
        d,
        "garbage.pdf",
        b"%PDF-1.7\n this is not a pdf body at all \x00\x01\x02",
    );
    let missing = d.join("missing.pdf").to_string_lossy().into_owned();
    let data = d.join("data");
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "ACME",
            "--year",
            "2023",
            "--json",
            &empty,
            &png,
            &scan,
            &truncated,
            &garbage,
            &missing,
            &good,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let rows = json_lines(&out);
    let code = |i: usize| rows[i]["error"]["code"].as_str().unwrap_or("-").to_string();
    assert_eq!(code(0), "empty_file");
    assert_eq!(code(1), "unsupported_format");
    assert!(
        rows[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PNG")
    );
    assert_eq!(code(2), "pdf_no_text_layer");
    assert!(
        matches!(code(3).as_str(), "pdf_damaged" | "pdf_no_text_layer"),
        "truncated: {}",
        rows[3]
    );
    assert_eq!(code(4), "pdf_damaged");
    assert_eq!(code(5), "unreadable_path");
    assert_eq!(rows[6]["status"], "ingested");
    for r in &rows[..6] {
        assert_eq!(r["status"], "failed");
        assert!(
            r["error"]["message"].as_str().unwrap().len() > 10,
            "message too thin: {r}"
        );
    }
    assert_eq!(counts(&data), (1, 1, 1, 1));
    // Human output names the reason too.
    let human = esg(
        &data,
        &["ingest", "--company", "ACME", "--year", "2023", &scan],
    );
    assert_eq!(human.status.code(), Some(2));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("no text layer") && text.contains("pdf_no_text_layer"),
        "{text}"
    );
}

#[test]
fn html_is_detected_by_content_and_error_pages_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sasb = write(
        d,
        "index.pdf",
        br#"<!DOCTYPE html><html><head><title>SASB index</title><script>track()</script></head>
<body><h2>Greenhouse gas emissions</h2><p>Gross global Scope 1 emissions were 1.2 million tCO2e.</p></body></html>"#,
    );
    let error = write(
        d,
        "databook.pdf",
        b"<!DOCTYPE html><html><head><title>500 error - Example plc</title></head><body><p>Sorry, something went wrong.</p></body></html>",
    );
    let ixbrl = write(
        d,
        "10k.htm",
        br#"<?xml version='1.0' encoding='ASCII'?><html xmlns="http://www.w3.org/1999/xhtml" xmlns:ix="http://www.xbrl.org/2013/inlineXBRL"><body>
<div style="display:none"><ix:header><ix:hidden><ix:nonNumeric name="dei:EntityCentralIndexKey">0000320193</ix:nonNumeric></ix:hidden></ix:header></div>
<div><p>Item 1A. Risk Factors</p><p>Climate change may affect our supply chain.</p></div>
<hr style="page-break-after:always"/><div><p>Item 2. Properties</p></div></body></html>"#,
    );
    let data = d.join("data");
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "Example plc",
            "--year",
            "2022",
            "--json",
            &sasb,
            &error,
            &ixbrl,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let rows = json_lines(&out);
    assert_eq!(rows[0]["status"], "ingested");
    assert_eq!(rows[0]["media_type"], "html");
    assert_eq!(rows[1]["error"]["code"], "html_error_page");
    assert!(
        rows[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("500 error")
    );
    assert_eq!(rows[2]["media_type"], "html");
    assert_eq!(rows[2]["pages"], 2);
    let t = page_text(&data, "index.pdf", 1);
    assert_eq!(
        t,
        "Greenhouse gas emissions\nGross global Scope 1 emissions were 1.2 million tCO2e."
    );
    let k1 = page_text(&data, "10k.htm", 1);
    assert!(
        !k1.contains("0000320193"),
        "hidden ix:header fact leaked: {k1}"
    );
    assert!(k1.contains("Climate change may affect our supply chain."));
}

#[test]
fn text_pages_from_form_feeds_or_virtual_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ff = write(
        d,
        "ff.txt",
        b"Page one about water.\x0cPage two about energy.\x0cPage three about waste.",
    );
    let long_text = "We reduced energy use across our sites this year. ".repeat(400);
    let long = write(d, "long.md", long_text.as_bytes());
    let data = d.join("data");
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "T",
            "--year",
            "2021",
            "--json",
            &ff,
            &long,
        ],
    );
    assert!(out.status.success());
    let rows = json_lines(&out);
    assert_eq!(rows[0]["pages"], 3);
    assert!(rows[1]["pages"].as_u64().unwrap() >= 5);
    assert_eq!(page_text(&data, "ff.txt", 2), "Page two about energy.");
    let docs = esg(&data, &["documents", "--json"]);
    let docs: serde_json::Value = serde_json::from_slice(&docs.stdout).unwrap();
    let by_name = |n: &str| {
        docs.as_array()
            .unwrap()
            .iter()
            .find(|x| x["filename"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("ff.txt")["virtual_pages"], false);
    assert_eq!(by_name("long.md")["virtual_pages"], true);
}

#[test]
fn a_transaction_failing_midway_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pdf = write(tmp.path(), "acme.pdf", &report_pdf());
    assert!(
        esg(&data, &["companies"]).status.success(),
        "creates the store"
    );
    {
        let c = rusqlite::Connection::open(data.join("esg.sqlite3")).unwrap();
        c.execute_batch(
            "CREATE TRIGGER fail_midway BEFORE INSERT ON chunks WHEN NEW.seq = 2 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    }
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "ACME",
            "--year",
            "2023",
            "--json",
            &pdf,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let rows = json_lines(&out);
    assert_eq!(rows[0]["error"]["code"], "storage_error");
    assert!(
        rows[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("injected failure")
    );
    assert_eq!(counts(&data), (0, 0, 0, 0), "nothing half-stored");
    {
        let c = rusqlite::Connection::open(data.join("esg.sqlite3")).unwrap();
        c.execute_batch("DROP TRIGGER fail_midway;").unwrap();
    }
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "ACME",
            "--year",
            "2023",
            "--json",
            &pdf,
        ],
    );
    assert!(out.status.success());
    assert_eq!(json_lines(&out)[0]["status"], "ingested");
}

#[test]
fn concurrent_processes_share_one_data_dir_safely() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let files: Vec<String> = (0..6)
        .map(|i| {
            let lines = [
                format!("Report number {i} on water stewardship and energy."),
                format!("Scope 1 emissions were {i}00 tonnes."),
            ];
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            write(
                tmp.path(),
                &format!("r{i}.pdf"),
                &text_pdf(&[refs.clone(), refs]),
            )
        })
        .collect();
    let children: Vec<_> = (0..4)
        .map(|k| {
            // Every process ingests all files, in a different order.
            let mut order = files.clone();
            order.rotate_left(k);
            Command::new(esg_bin())
                .arg("--data-dir")
                .arg(&data)
                .args([
                    "ingest",
                    "--company",
                    "Concurrent Co",
                    "--year",
                    "2022",
                    "--json",
                ])
                .args(&order)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ingested = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        for r in json_lines(&out) {
            assert!(
                r["status"] == "ingested" || r["status"] == "already_ingested",
                "{r}"
            );
            ingested += usize::from(r["status"] == "ingested");
        }
    }
    assert_eq!(ingested, 6, "each document ingested exactly once");
    assert_eq!(counts(&data).0, 1);
    assert_eq!(counts(&data).1, 6);
    assert_eq!(counts(&data).2, 12);
    let ok: String = db(&data)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn deflate_bomb_is_stopped_by_the_memory_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = write(tmp.path(), "bomb.pdf", &deflate_bomb_pdf(1 << 30));
    let data = tmp.path().join("data");
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "B",
            "--year",
            "2022",
            "--json",
            "--max-memory-mb",
            "256",
            &bomb,
        ],
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1);
    // 1 GiB of inflated content under a 256 MiB bound: the worker is stopped,
    // the error says why, and nothing is stored.
    eprintln!("deflate bomb outcome: {}", rows[0]);
    assert_eq!(out.status.code(), Some(2), "{}", rows[0]);
    let code = rows[0]["error"]["code"].as_str().unwrap();
    assert_eq!(code, "extraction_memory_limit", "{}", rows[0]);
    assert_eq!(counts(&data).1, 0);
}

#[test]
fn cli_lists_companies_and_documents_and_matches_names_loosely() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let a = write(
        tmp.path(),
        "a.txt",
        b"Headlam reduced waste to landfill by 20%.",
    );
    let b = write(
        tmp.path(),
        "b.txt",
        b"Headlam installed solar panels at two sites.",
    );
    assert!(
        esg(
            &data,
            &[
                "ingest",
                "--company",
                "Headlam Group PLC",
                "--year",
                "2024",
                &a
            ]
        )
        .status
        .success()
    );
    assert!(
        esg(
            &data,
            &[
                "ingest",
                "--company",
                "headlam group plc.",
                "--year",
                "2025",
                &b
            ]
        )
        .status
        .success()
    );
    let out = esg(&data, &["companies", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "Headlam Group PLC");
    assert_eq!(v[0]["years"], serde_json::json!([2024, 2025]));
    let docs = esg(
        &data,
        &["documents", "--company", "HEADLAM GROUP Plc", "--json"],
    );
    let d: serde_json::Value = serde_json::from_slice(&docs.stdout).unwrap();
    assert_eq!(d.as_array().unwrap().len(), 2);
    for doc in d.as_array().unwrap() {
        for key in [
            "company",
            "year",
            "sha256",
            "pages",
            "chunks",
            "media_type",
            "ingested_at",
        ] {
            assert!(!doc[key].is_null(), "{key}");
        }
        assert!(doc["ingested_at"].as_str().unwrap().ends_with('Z'));
    }
    let table = esg(&data, &["companies"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("Headlam Group PLC"));
    let unknown = esg(&data, &["documents", "--company", "Nobody"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no company named"));
    // Non-terminal stderr: no progress bar drawing.
    let quiet = esg(
        &data,
        &[
            "ingest",
            "--company",
            "Headlam Group PLC",
            "--year",
            "2024",
            &a,
        ],
    );
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}

#[test]
fn env_fallbacks_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("envdata");
    let f = write(tmp.path(), "a.txt", b"Some report text about governance.");
    let out = Command::new(esg_bin())
        .args(["ingest", &f])
        .env("ESG_DATA_DIR", &data)
        .env("ESG_COMPANY", "Env Co")
        .env("ESG_YEAR", "2020")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counts(&data).1, 1);
    let bad_year = esg(&data, &["ingest", "--company", "X", "--year", "1800", &f]);
    assert_eq!(bad_year.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_year.stderr).contains("1800"));
    let no_name = esg(
        &data,
        &["ingest", "--company", "  ...  ", "--year", "2020", &f],
    );
    assert!(!no_name.status.success());
    assert!(String::from_utf8_lossy(&no_name.stderr).contains("--company"));
}
