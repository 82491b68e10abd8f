//! The kept source files on the real server (issue 12): an upload's bytes
//! are kept under `<data-dir>/files/` and served back byte-identical by
//! `GET /documents/{doc_id}/file` with their content type, file name, the
//! sha256 ETag, conditional requests, byte ranges and HEAD; reads follow the
//! key rules of other reads; a document without its file (ingested before
//! files were kept, or removed, or damaged) is 404 `source_missing` until
//! the same bytes are ingested again.
//!
//! The PDF and the inline-XBRL report come from the shared corpus
//! (`ESG_CORPUS_DIR`, default `../shared/corpus`); without it those tests
//! print SKIP (and fail under `CI=true`).

mod common;

use common::*;
use esg_store::Store as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn corpus_file(name: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("ESG_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    let p = dir.join("reports").join(name);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the corpus is required under CI: {}: {e}", p.display())
        }
        Err(_) => {
            eprintln!("SKIP: {} not found (set ESG_CORPUS_DIR)", p.display());
            None
        }
    }
}

const PDF: &str = "Alphabet_Inc-ESG_Index.pdf";

/// Uploads `bytes` raw; returns (status, body).
async fn upload(
    s: &TestServer,
    company: &str,
    filename: &str,
    ct: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let r = s
        .client
        .post(s.url(&format!(
            "/documents?company={}&year=2023&filename={}",
            pct(company),
            pct(filename)
        )))
        .header("content-type", ct)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Percent-encodes a query value.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn kept_path(s: &TestServer, sha: &str) -> PathBuf {
    s.data_dir.join("files").join(&sha[..2]).join(sha)
}

async fn get_with(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = s.client.get(s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn an_uploaded_corpus_pdf_is_kept_and_served_back_byte_identical() {
    let Some(pdf) = corpus_file(PDF) else { return };
    let s = start().await;
    let sha = esg_core::sha256_hex(&pdf);
    let name = "Alphabet ESG Index \u{2014} 2023 \"final\".pdf";
    let (status, v) = upload(&s, "Alphabet Inc.", name, "application/pdf", &pdf).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["document"]["doc_id"], sha.as_str());
    let url = format!("/documents/{sha}/file");
    assert_eq!(v["file_url"], url.as_str());
    // On the data volume, content-addressed, nothing else but the file.
    let kept = kept_path(&s, &sha);
    assert_eq!(std::fs::read(&kept).unwrap(), pdf);

    let r = get_with(&s, &url, &[("accept-encoding", "gzip, br, zstd")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/pdf");
    assert_eq!(header(&r, "etag"), format!("\"{sha}\""));
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert_eq!(header(&r, "content-length"), pdf.len().to_string());
    assert_eq!(header(&r, "content-encoding"), "", "never recompressed");
    assert_eq!(header(&r, "cache-control"), "private, no-cache");
    assert_eq!(
        header(&r, "content-disposition"),
        "inline; filename=\"Alphabet ESG Index _ 2023 _final_.pdf\"; \
         filename*=UTF-8''Alphabet%20ESG%20Index%20%E2%80%94%202023%20%22final%22.pdf"
    );
    // The PDF viewer may run (and be framed by same-origin pages); nothing else.
    assert!(header(&r, "content-security-policy").contains("object-src 'self'"));
    assert_eq!(header(&r, "x-frame-options"), "SAMEORIGIN");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert!(!header(&r, "x-request-id").is_empty());
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), pdf.len());
    assert!(body == pdf, "served bytes differ from the upload");

    // The document JSON says where the file is.
    let d: Value = s
        .get(&format!("/documents/{sha}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["file_url"], url.as_str());
    assert_eq!(d["source_available"], true);
    assert_eq!(d["document"]["filename"], name);

    // The same bytes again: already ingested, the kept file untouched.
    let before = std::fs::metadata(&kept).unwrap();
    let (status, v) = upload(&s, "Alphabet Inc.", "again.pdf", "application/pdf", &pdf).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "already_ingested");
    let after = std::fs::metadata(&kept).unwrap();
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    {
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(before.ino(), after.ino(), "not rewritten");
    }
    let shard: Vec<_> = std::fs::read_dir(kept.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(shard.len(), 1, "no temporary file left: {shard:?}");

    // Requests and errors are counted under the route template.
    let m = s.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("esg_http_requests_total{route=\"/documents/{doc_id}/file\",method=\"GET\",status=\"200\"} 1"),
        "{m}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn byte_ranges_conditional_requests_and_head() {
    let Some(pdf) = corpus_file(PDF) else { return };
    let s = start().await;
    let sha = esg_core::sha256_hex(&pdf);
    assert_eq!(
        upload(&s, "Alphabet Inc.", PDF, "application/pdf", &pdf)
            .await
            .0,
        201
    );
    let url = format!("/documents/{sha}/file");
    let etag = format!("\"{sha}\"");
    let len = pdf.len();

    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len - 1),
        ("bytes=-500", len - 500, len - 1),
        ("bytes=100-99999999", 100, len - 1),
        ("bytes=0-0", 0, 0),
    ] {
        let r = get_with(&s, &url, &[("range", range)]).await;
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {start}-{end}/{len}"),
            "{range}"
        );
        assert_eq!(header(&r, "content-length"), (end - start + 1).to_string());
        assert_eq!(header(&r, "etag"), etag);
        assert_eq!(header(&r, "content-type"), "application/pdf");
        let body = r.bytes().await.unwrap();
        assert!(body[..] == pdf[start..=end], "{range}: wrong bytes");
    }

    // Unsatisfiable: 416 in the error shape, with the length.
    for range in [format!("bytes={len}-"), "bytes=-0".to_string()] {
        let r = get_with(&s, &url, &[("range", &range)]).await;
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes */{len}"),
            "{range}"
        );
        error_body(r, 416, "range_not_satisfiable").await;
    }

    // Several ranges, another unit or a malformed range: the whole file.
    for range in ["bytes=0-1,5-9", "items=0-5", "bytes=9-1", "bytes=x-"] {
        let r = get_with(&s, &url, &[("range", range)]).await;
        assert_eq!(r.status(), 200, "{range}");
        assert_eq!(header(&r, "content-range"), "");
        assert_eq!(r.bytes().await.unwrap().len(), len, "{range}");
    }

    // If-Range: the range only while the ETag still matches.
    let r = get_with(&s, &url, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(r.status(), 206);
    let r = get_with(
        &s,
        &url,
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), len);

    // If-None-Match: 304 without a body, for the ETag (weak or strong), a
    // list holding it, or *; a different ETag gets the file.
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".into(),
    ] {
        let r = get_with(&s, &url, &[("if-none-match", &inm)]).await;
        assert_eq!(r.status(), 304, "{inm}");
        assert_eq!(header(&r, "etag"), etag);
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let r = get_with(&s, &url, &[("if-none-match", "\"stale\"")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), len);

    // If-Match: 412 unless it names the ETag.
    let r = get_with(&s, &url, &[("if-match", "\"stale\"")]).await;
    error_body(r, 412, "precondition_failed").await;
    let r = get_with(&s, &url, &[("if-match", &etag)]).await;
    assert_eq!(r.status(), 200);

    // HEAD: the same headers, no body.
    let r = s.client.head(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), len.to_string());
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "content-type"), "application/pdf");
    assert!(r.bytes().await.unwrap().is_empty());
    let r = s
        .client
        .head(s.url(&url))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), format!("bytes 10-19/{len}"));
    assert_eq!(header(&r, "content-length"), "10");
    assert!(r.bytes().await.unwrap().is_empty());
    s.stop().await.unwrap();
}

/// With `--require-auth-for-reads`, the file and the document need a key
/// (401 without, 403 wrong); without it they are open, like `GET /documents`.
#[tokio::test]
async fn reads_of_the_file_follow_the_key_rules_of_other_reads() {
    let s = start_with(
        |c| c.security.require_auth_for_reads = true,
        axum::Router::new(),
    )
    .await;
    let r = s.upload_sample().await;
    assert_eq!(r.status(), 201);
    let sha = esg_core::sha256_hex(SAMPLE.as_bytes());
    let url = format!("/documents/{sha}/file");
    let anon = reqwest::Client::new();
    for path in [url.clone(), format!("/documents/{sha}")] {
        let r = anon.get(s.url(&path)).send().await.unwrap();
        assert!(header(&r, "www-authenticate").starts_with("Bearer"));
        error_body(r, 401, "unauthorized").await;
        let r = anon
            .get(s.url(&path))
            .bearer_auth("esg_nope_nope")
            .send()
            .await
            .unwrap();
        error_body(r, 403, "forbidden").await;
    }
    let r = anon.head(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.get(&url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), SAMPLE);
    s.stop().await.unwrap();

    // Without --require-auth-for-reads, no key is needed (like GET /documents).
    let s = start().await;
    assert_eq!(s.upload_sample().await.status(), 201);
    let r = reqwest::Client::new()
        .get(s.url(&url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        header(&r, "content-security-policy"),
        "sandbox; default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    assert_eq!(r.text().await.unwrap(), SAMPLE);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_document_without_its_file_is_source_missing_until_ingested_again() {
    let s = start().await;
    // A document stored the way it was before files were kept: through the
    // store alone, by another process sharing the data directory.
    let legacy = "Legacy report. Our board oversees climate risk and Scope 1 emissions fell 4 percent in 2023.".repeat(20);
    let sha = esg_core::sha256_hex(legacy.as_bytes());
    {
        let store = esg_store::SqliteStore::open_in_dir(&s.data_dir).unwrap();
        let who = esg_ingest::Provenance {
            company: "Legacy Corp",
            year: 2023,
            filename: "legacy.txt",
            sector: None,
        };
        let o = esg_ingest::ingest_bytes(
            &store,
            legacy.as_bytes(),
            who,
            esg_ingest::extract_in_process,
            esg_core::ChunkParams::default(),
        )
        .unwrap();
        assert!(o.is_new());
        assert!(store.document(&sha).unwrap().is_some());
    }
    assert!(!kept_path(&s, &sha).exists());
    let url = format!("/documents/{sha}/file");
    let v = error_body(s.get(&url).await, 404, "source_missing").await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("ingest the same file again"), "{msg}");
    assert!(msg.contains("legacy.txt"), "{msg}");
    assert_eq!(v["error"]["details"][0]["doc_id"], sha.as_str());
    let r = s.client.head(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let d: Value = s
        .get(&format!("/documents/{sha}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["source_available"], false);

    // Ingesting the same bytes again restores the file (nothing else is written).
    let (status, v) = upload(
        &s,
        "Legacy Corp",
        "legacy.txt",
        "text/plain",
        legacy.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "already_ingested");
    let r = s.get(&url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), legacy);

    // Removed from the volume: 404 again, never a 500.
    std::fs::remove_file(kept_path(&s, &sha)).unwrap();
    error_body(s.get(&url).await, 404, "source_missing").await;
    // Damaged (wrong length): not served as if it were the document.
    std::fs::write(kept_path(&s, &sha), &legacy.as_bytes()[..100]).unwrap();
    let v = error_body(s.get(&url).await, 404, "source_missing").await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("damaged"),
        "{v}"
    );
    let (status, _) = upload(
        &s,
        "Legacy Corp",
        "legacy.txt",
        "text/plain",
        legacy.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.get(&url).await.text().await.unwrap(), legacy);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_and_invalid_ids() {
    let s = start().await;
    let unknown = "0".repeat(64);
    for path in [
        format!("/documents/{unknown}/file"),
        format!("/documents/{unknown}"),
    ] {
        let v = error_body(s.get(&path).await, 404, "document_not_found").await;
        assert!(v["error"]["message"].as_str().unwrap().contains(&unknown));
    }
    for bad in [
        "xyz",
        &"A".repeat(64),
        &"0".repeat(63),
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        for path in [
            format!("/documents/{bad}/file"),
            format!("/documents/{bad}"),
        ] {
            let v = error_body(s.get(&path).await, 422, "validation_failed").await;
            assert_eq!(v["error"]["details"][0]["field"], "doc_id", "{path}");
        }
    }
    error_body(s.get("/documents/%de/file").await, 400, "malformed_path").await;
    // Not a write route: POST is 405 (with a key) in the one error shape.
    let r = s
        .client
        .post(s.url(&format!("/documents/{unknown}/file")))
        .send()
        .await
        .unwrap();
    error_body(r, 405, "method_not_allowed").await;
    s.stop().await.unwrap();
}

#[tokio::test]
async fn an_inline_xbrl_report_is_served_as_xhtml_and_sandboxed() {
    let Some(html) = corpus_file("Apple_Inc-2023_Form_10-K.html") else {
        return;
    };
    let s = start().await;
    let (status, v) = upload(&s, "Apple Inc.", "aapl-20230930.htm", "text/html", &html).await;
    assert_eq!(status, 201, "{v}");
    let sha = esg_core::sha256_hex(&html);
    let r = s.get(&format!("/documents/{sha}/file")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/xhtml+xml");
    assert_eq!(
        header(&r, "content-security-policy"),
        "sandbox; default-src 'none'; frame-ancestors 'none'"
    );
    assert!(r.bytes().await.unwrap() == html);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_upload_keeps_no_file() {
    let s = start().await;
    // Unsupported (a PNG), and a document with no text at all.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let (status, v) = upload(&s, "Acme", "x.png", "application/octet-stream", &png).await;
    assert_eq!(status, 415, "{v}");
    let html = b"<!DOCTYPE html><html><head><title>t</title></head><body><script>x()</script></body></html>".to_vec();
    let (status, v) = upload(&s, "Acme", "empty.html", "text/html", &html).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "no_text");
    let files = s.data_dir.join("files");
    let kept: Vec<_> = walk(&files);
    assert!(kept.is_empty(), "files kept for failed uploads: {kept:?}");
    s.stop().await.unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn openapi_describes_the_file_routes_and_their_real_answers() {
    let s = start().await;
    let doc: Value = s.get("/openapi.json").await.json().await.unwrap();
    let file = &doc["paths"]["/documents/{doc_id}/file"];
    assert_eq!(file["get"]["security"], json!([{}, { "apiKey": [] }]));
    assert_eq!(file["head"]["security"], json!([{}, { "apiKey": [] }]));
    assert_eq!(
        doc["paths"]["/documents/{doc_id}"]["get"]["security"],
        json!([{}, { "apiKey": [] }])
    );
    assert_eq!(s.upload_sample().await.status(), 201);
    let sha = esg_core::sha256_hex(SAMPLE.as_bytes());
    let url = format!("/documents/{sha}/file");
    let etag = format!("\"{sha}\"");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (url.as_str(), vec![]),
        (url.as_str(), vec![("range", "bytes=0-9")]),
        (url.as_str(), vec![("range", "bytes=999999-")]),
        (url.as_str(), vec![("if-none-match", etag.as_str())]),
        (url.as_str(), vec![("if-match", "\"x\"")]),
        ("/documents/abc/file", vec![]),
        (
            "/documents/0000000000000000000000000000000000000000000000000000000000000000/file",
            vec![],
        ),
    ];
    for (path, headers) in cases {
        let r = get_with(&s, path, &headers).await;
        let status = r.status().as_u16().to_string();
        assert!(
            file["get"]["responses"][&status].is_object(),
            "GET {path} {headers:?} answered {status}, undocumented"
        );
        assert!(file["head"]["responses"][&status].is_object());
    }
    assert!(
        doc["components"]["schemas"]["UploadResult"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("file_url"))
    );
    s.stop().await.unwrap();
}
