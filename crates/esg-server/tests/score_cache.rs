//! `/score` served from the company-year index cache: the same bytes with
//! the cache on (cold and warm) and off, a new document (uploaded, or
//! stored by another process) seen by the next request, the cache metrics
//! moving, `view=summary`, and compressed responses that decode to the
//! same JSON.

mod common;

use common::{COMPANY, SAMPLE, error_body, header, start, start_with};
use esg_store::{SqliteStore, Store};
use serde_json::Value;
use std::io::Read;

async fn score_bytes(s: &common::TestServer, query: &str) -> Vec<u8> {
    let r = s
        .client
        .post(s.url(&format!("/score{query}")))
        .json(&serde_json::json!({ "company": COMPANY, "year": 2024 }))
        .send()
        .await
        .expect("score");
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-encoding"),
        "",
        "no encoding unless asked"
    );
    r.bytes().await.expect("body").to_vec()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

async fn metrics(s: &common::TestServer) -> String {
    s.get("/metrics").await.text().await.expect("metrics")
}

#[tokio::test]
async fn cached_and_uncached_scores_are_byte_identical() {
    let on = start().await;
    let off = start_with(|c| c.cache_bytes = 0, axum::Router::new()).await;
    for s in [&on, &off] {
        assert_eq!(s.upload_sample().await.status(), 201);
    }
    let cold = score_bytes(&on, "?k=20").await;
    let warm = score_bytes(&on, "?k=20").await;
    assert_eq!(cold, warm, "cold and warm answers differ");
    let m = metrics(&on).await;
    assert_eq!(
        metric(&m, "esg_cache_misses_total{cache=\"company_index\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "esg_cache_hits_total{cache=\"company_index\"}"),
        1.0
    );
    assert!(metric(&m, "esg_cache_bytes{cache=\"company_index\"}") > 0.0);
    // The second, identical request was answered with the kept body.
    assert_eq!(
        metric(&m, "esg_cache_misses_total{cache=\"score_response\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "esg_cache_hits_total{cache=\"score_response\"}"),
        1.0
    );
    // The cache off: built every time, same bytes.
    for _ in 0..2 {
        assert_eq!(score_bytes(&off, "?k=20").await, cold);
    }
    let m = metrics(&off).await;
    assert_eq!(
        metric(&m, "esg_cache_hits_total{cache=\"company_index\"}"),
        0.0
    );
    assert_eq!(
        metric(&m, "esg_cache_misses_total{cache=\"company_index\"}"),
        2.0
    );
    assert_eq!(metric(&m, "esg_cache_bytes{cache=\"company_index\"}"), 0.0);
    assert_eq!(
        metric(&m, "esg_cache_hits_total{cache=\"score_response\"}"),
        0.0
    );
    // Another k, the same index: a hit, and the same answer as uncached.
    assert_eq!(
        score_bytes(&on, "?k=5").await,
        score_bytes(&off, "?k=5").await
    );
    // /search and /trace share the index.
    let r = on
        .get("/search?company=Northwind%20Components%20Ltd&q=scope%203%20emissions&k=3")
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["passages"].as_array().unwrap().len(), 3);
    let m = metrics(&on).await;
    assert_eq!(
        metric(&m, "esg_cache_misses_total{cache=\"company_index\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "esg_cache_hits_total{cache=\"company_index\"}"),
        3.0
    );
    on.stop().await.unwrap();
    off.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_document_is_seen_by_the_next_request() {
    let s = start().await;
    assert_eq!(s.upload_sample().await.status(), 201);
    let first: Value = serde_json::from_slice(&score_bytes(&s, "").await).unwrap();
    assert_eq!(first["documents"].as_array().unwrap().len(), 1);
    // A second report of the same company and year, uploaded through the API.
    let more =
        format!("{SAMPLE}\nAddendum: we obtained limited assurance over Scope 3 emissions.\n");
    let r =
        s.client
            .post(s.url(
                "/documents?company=Northwind%20Components%20Ltd&year=2024&filename=addendum.txt",
            ))
            .header("content-type", "text/plain")
            .body(more)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 201);
    let second: Value = serde_json::from_slice(&score_bytes(&s, "").await).unwrap();
    assert_eq!(second["documents"].as_array().unwrap().len(), 2);
    assert_ne!(second["fingerprint"], first["fingerprint"]);
    // A third stored by another process on the same database (as `esg
    // ingest` or another replica would): the server's cache is not told,
    // and still the next request sees it.
    let other = SqliteStore::open_in_dir(&s.data_dir).unwrap();
    let text = format!("{SAMPLE}\nThird report: the board's ESG committee meets quarterly.\n");
    let pages = esg_core::clean_pages(vec![esg_core::RawPage {
        number: 1,
        text: text.clone(),
        is_virtual: false,
        layout: None,
    }]);
    let doc_id = esg_core::sha256_hex(&text);
    let chunks = esg_core::chunk_pages(&doc_id, &pages, esg_core::ChunkParams::default());
    other
        .put_document(&esg_store::NewDocument {
            doc_id: doc_id.clone(),
            company: COMPANY.into(),
            year: 2024,
            filename: "third.txt".into(),
            media_type: esg_store::MediaType::Text,
            byte_len: text.len() as u64,
            pages,
            chunks,
            warnings: vec![],
            sector: None,
        })
        .unwrap();
    let third: Value = serde_json::from_slice(&score_bytes(&s, "").await).unwrap();
    let docs: Vec<&str> = third["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert!(docs.contains(&doc_id.as_str()));
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, "esg_cache_misses_total{cache=\"company_index\"}"),
        3.0
    );
    // The matches computed for this company were kept for other processes.
    let rubric = esg_score::Rubric::builtin();
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = other.rule_matches(rubric.sha256(), COMPANY, 2024).unwrap();
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!stored.is_empty(), "no criterion matches were stored");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn summary_view_keeps_the_card_and_drops_the_retrieved_lists() {
    let s = start().await;
    assert_eq!(s.upload_sample().await.status(), 201);
    let full: Value = serde_json::from_slice(&score_bytes(&s, "").await).unwrap();
    let sum_bytes = score_bytes(&s, "?view=summary").await;
    let sum: Value = serde_json::from_slice(&sum_bytes).unwrap();
    assert_eq!(sum["view"], "summary");
    assert_eq!(sum["fingerprint"], full["fingerprint"]);
    assert_eq!(sum["overall"], full["overall"]);
    for (a, b) in sum["themes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(full["themes"].as_array().unwrap())
    {
        assert!(a.get("retrieved").is_none());
        assert!(!b["retrieved"].as_array().unwrap().is_empty() || b["stage"] == 0);
        for key in [
            "stage",
            "confidence",
            "evidence",
            "frameworks",
            "caps",
            "next_stage_gaps",
        ] {
            assert_eq!(a[key], b[key], "{key}");
        }
    }
    assert!(sum["parity"].get("retrieved_chunk_ids").is_none());
    assert_eq!(sum["parity"]["parity_ok"], full["parity"]["parity_ok"]);
    assert!(sum_bytes.len() < serde_json::to_vec(&full).unwrap().len());
    let r = s
        .client
        .post(s.url("/score?view=cards"))
        .json(&serde_json::json!({ "company": COMPANY }))
        .send()
        .await
        .unwrap();
    let v = error_body(r, 422, "validation_failed").await;
    assert_eq!(v["error"]["details"][0]["field"], "view", "{v}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn json_is_compressed_as_the_client_asks() {
    let s = start().await;
    assert_eq!(s.upload_sample().await.status(), 201);
    let plain = score_bytes(&s, "").await;
    for enc in ["gzip", "br", "zstd"] {
        let r = s
            .client
            .post(s.url("/score"))
            .header("accept-encoding", enc)
            .json(&serde_json::json!({ "company": COMPANY, "year": 2024 }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-encoding"), enc);
        assert!(
            header(&r, "vary")
                .to_ascii_lowercase()
                .contains("accept-encoding")
        );
        let body = r.bytes().await.unwrap().to_vec();
        assert!(body.len() < plain.len() / 2, "{enc}: {} bytes", body.len());
        let mut out = Vec::new();
        match enc {
            "gzip" => {
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            "br" => {
                brotli::Decompressor::new(&body[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            _ => out = zstd::stream::decode_all(&body[..]).unwrap(),
        }
        assert_eq!(out, plain, "{enc} decodes to the same JSON");
    }
    // Small responses stay plain.
    let r = s
        .client
        .get(s.url("/live"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-encoding"), "");
    s.stop().await.unwrap();
}
