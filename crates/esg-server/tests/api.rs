//! End-to-end tests of the HTTP API over a real socket.

mod common;

use axum::Router;
use axum::routing::get;
use common::*;
use esg_server::AppState;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn probes_answer_with_ids_on_every_response() {
    let s = start().await;
    let r = s.get("/health").await;
    assert_eq!(r.status(), 200);
    assert!(is_lower_hex(header(&r, "x-trace-id"), 32));
    assert!(is_lower_hex(header(&r, "x-span-id"), 16));
    assert!(uuid_v4(header(&r, "x-request-id")));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["service"], "esg-test");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));

    let v: Value = s.get("/live").await.json().await.unwrap();
    assert_eq!(v, json!({ "live": true }));

    let r = s.get("/ready").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["checks"]["store"], "ok");
    assert_eq!(v["checks"]["migrations"], "ok");
    assert_eq!(v["checks"]["rubric"], "ok");

    // A sane request id is kept; an insane one is replaced by a UUID v4.
    let r = s
        .client
        .get(s.url("/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-request-id"), "abc-123");
    let long = "a".repeat(129);
    let r = s
        .client
        .get(s.url("/live"))
        .header("x-request-id", long)
        .send()
        .await
        .unwrap();
    assert!(uuid_v4(header(&r, "x-request-id")));
    s.stop().await.unwrap();
}

fn uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4)
}

#[tokio::test]
async fn traceparent_is_continued_and_malformed_starts_a_new_trace() {
    let s = start().await;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = s
        .client
        .get(s.url("/health"))
        .header("traceparent", tp)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-trace-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(is_lower_hex(header(&r, "x-span-id"), 16));
    assert_ne!(header(&r, "x-span-id"), "00f067aa0ba902b7");
    let r = s
        .client
        .get(s.url("/health"))
        .header("traceparent", "00-zz-yy-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(is_lower_hex(header(&r, "x-trace-id"), 32));
    assert_ne!(header(&r, "x-trace-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    // Error responses carry the ids too.
    let r = s
        .client
        .get(s.url("/nope"))
        .header("traceparent", tp)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-trace-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    error_body(r, 404, "not_found").await;
    s.stop().await.unwrap();
}

#[tokio::test]
async fn upload_list_search_score_and_trace() {
    let s = start().await;
    let r = s.upload_sample().await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ingested");
    assert_eq!(v["document"]["filename"], "northwind-2024.txt");
    assert_eq!(v["document"]["media_type"], "text");
    let doc_id = v["document"]["doc_id"].as_str().unwrap().to_string();

    let r = s.upload_sample().await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "already_ingested");
    assert_eq!(v["document"]["doc_id"], doc_id.as_str());

    let v: Value = s.get("/companies").await.json().await.unwrap();
    assert_eq!(v["companies"][0]["name"], COMPANY);
    assert_eq!(v["companies"][0]["years"], json!([2024]));

    let v: Value = s
        .get("/companies/northwind%20components%20ltd.")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["company"]["name"], COMPANY);
    assert_eq!(v["company"]["documents"], 1);
    assert_eq!(v["documents"][0]["doc_id"], doc_id.as_str());

    let v: Value = s
        .get("/documents?company=Northwind%20Components%20Ltd")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["documents"].as_array().unwrap().len(), 1);

    let r = s
        .get("/search?company=Northwind%20Components%20Ltd&q=scope%203%20emissions&k=3")
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["year"], 2024);
    let passages = v["passages"].as_array().unwrap();
    assert!(!passages.is_empty() && passages.len() <= 3);
    assert!(
        passages[0]["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("scope")
    );
    assert!(passages[0]["page"].as_u64().unwrap() >= 1);

    let r = s
        .client
        .post(s.url("/score?k=10"))
        .json(&json!({ "company": COMPANY }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let card: Value = r.json().await.unwrap();
    assert_eq!(card["company"], COMPANY);
    assert_eq!(card["year"], 2024);
    assert_eq!(card["themes"].as_array().unwrap().len(), 7);
    assert_eq!(card["sources"][0]["filename"], "northwind-2024.txt");
    assert!(card["fingerprint"].as_str().unwrap().len() == 64);
    // Same request, same bytes (as_of only changes at a month boundary).
    let again: Value = s
        .client
        .post(s.url("/score?k=10"))
        .json(&json!({ "company": COMPANY }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(card, again);

    let r = s
        .client
        .post(s.url("/score"))
        .json(&json!({ "company": COMPANY, "themes": ["GHG"] }))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["themes"].as_array().unwrap().len(), 1);

    let r = s
        .get("/trace?company=Northwind%20Components%20Ltd&year=2024")
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["documents"][0]["doc_id"], doc_id.as_str());
    assert!(
        t["documents"][0]["ingested_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(matches!(
        t["parity"]["verdict"].as_str(),
        Some("PASS" | "FAIL")
    ));
    for q in t["quotes"].as_array().unwrap() {
        assert_eq!(q["source_sha256"], doc_id.as_str());
        assert!(q["page"].as_u64().unwrap() >= 1);
    }
    assert_eq!(t["fingerprint"], card["fingerprint"]);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn errors_have_one_shape() {
    let s = start_with(
        |c| {
            c.limits.upload_body_bytes = 64 * 1024;
            c.limits.json_body_bytes = 1024;
        },
        Router::new(),
    )
    .await;
    error_body(s.get("/no/such/route").await, 404, "not_found").await;
    error_body(
        s.client.delete(s.url("/companies")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    error_body(
        s.client.get(s.url("/score")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;

    let r = s
        .client
        .post(s.url("/score"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    error_body(r, 400, "malformed_json").await;
    let r = s
        .client
        .post(s.url("/score"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    error_body(r, 415, "unsupported_media_type").await;
    let r = s
        .client
        .post(s.url("/score"))
        .json(&json!({ "company": "x".repeat(2000) }))
        .send()
        .await
        .unwrap();
    error_body(r, 413, "payload_too_large").await;

    // Validation: one detail per bad field.
    let r = s
        .client
        .post(s.url("/score?k=0&alpha=2&semantic=2"))
        .json(&json!({ "company": "", "year": 1999 }))
        .send()
        .await
        .unwrap();
    let v = error_body(r, 422, "validation_failed").await;
    let mut fields: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alpha", "company", "k", "semantic", "year"], "{v}");
    let r = s
        .client
        .post(s.url("/score?k=abc"))
        .json(&json!({ "year": "2024" }))
        .send()
        .await
        .unwrap();
    let v = error_body(r, 422, "validation_failed").await;
    assert_eq!(v["error"]["details"].as_array().unwrap().len(), 3, "{v}");
    let r = s
        .client
        .post(s.url("/score?semantic=1"))
        .json(&json!({ "company": COMPANY }))
        .send()
        .await
        .unwrap();
    // This server has no embedder: 503, saying why and what works instead.
    let v = error_body(r, 503, "embedder_unavailable").await;
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("no embedder is configured"), "{v}");
    assert!(message.contains("semantic=0"), "{v}");
    let v = error_body(
        s.get(&format!("/search?company={COMPANY}&q=climate&semantic=1"))
            .await,
        503,
        "embedder_unavailable",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no embedder")
    );
    // Bad fusion parameters are validation errors first.
    for (query, field) in [
        ("semantic=1&alpha=-0.1", "alpha"),
        ("semantic=1&fusion=rrf&alpha=0.5", "alpha"),
        ("semantic=1&fusion=max", "fusion"),
    ] {
        let r = s
            .client
            .post(s.url(&format!("/score?{query}")))
            .json(&json!({ "company": COMPANY }))
            .send()
            .await
            .unwrap();
        let v = error_body(r, 422, "validation_failed").await;
        let fields: Vec<&str> = v["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{query}: {v}");
    }
    // /ready reports the embedder without being held back by it.
    let ready: serde_json::Value = s.get("/ready").await.json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["checks"]["embedder"], "off", "{ready}");
    let v = error_body(
        s.get("/search?company=&k=101").await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(v["error"]["details"].as_array().unwrap().len(), 3, "{v}");

    // Unknown company / year.
    let r = s
        .client
        .post(s.url("/score"))
        .json(&json!({ "company": "Acme" }))
        .send()
        .await
        .unwrap();
    error_body(r, 404, "company_not_found").await;
    error_body(s.get("/companies/acme").await, 404, "company_not_found").await;
    s.upload_sample().await;
    let r = s
        .client
        .post(s.url("/score"))
        .json(&json!({ "company": COMPANY, "year": 2019 }))
        .send()
        .await
        .unwrap();
    let v = error_body(r, 404, "no_documents_for_year").await;
    assert_eq!(v["error"]["details"][0]["years_on_file"], json!([2024]));
    // A misspelt company: the 404 names the close match.
    let r = s
        .client
        .post(s.url("/score"))
        .json(&json!({ "company": "Nortwind Components" }))
        .send()
        .await
        .unwrap();
    let v = error_body(r, 404, "company_not_found").await;
    assert_eq!(v["error"]["details"][0]["close_matches"], json!([COMPANY]));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("did you mean {COMPANY:?}?")),
        "{v}"
    );
    let r = s
        .client
        .post(s.url("/score"))
        .json(&json!({ "company": COMPANY, "themes": ["XYZ"] }))
        .send()
        .await
        .unwrap();
    error_body(r, 422, "validation_failed").await;

    // Uploads.
    let up = |q: &str| s.url(&format!("/documents?{q}"));
    let r = s
        .client
        .post(up("company=A&year=2024"))
        .header("content-type", "image/png")
        .body("x")
        .send()
        .await
        .unwrap();
    error_body(r, 415, "unsupported_media_type").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let r = s
        .client
        .post(up("company=A&year=2024"))
        .header("content-type", "application/octet-stream")
        .body(png)
        .send()
        .await
        .unwrap();
    error_body(r, 415, "unsupported_format").await;
    let r = s
        .client
        .post(up("company=A&year=2024"))
        .header("content-type", "text/plain")
        .body("   ")
        .send()
        .await
        .unwrap();
    error_body(r, 422, "empty_file").await;
    let r = s
        .client
        .post(up("company=A&year=2024"))
        .header("content-type", "text/plain")
        .body(vec![b'a'; 100 * 1024])
        .send()
        .await
        .unwrap();
    error_body(r, 413, "payload_too_large").await;
    let r = s
        .client
        .post(up("year=3000"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    let v = error_body(r, 422, "validation_failed").await;
    assert_eq!(v["error"]["details"].as_array().unwrap().len(), 2, "{v}");
    s.stop().await.unwrap();
}

async fn boom() -> String {
    panic!("boom")
}

fn extra_routes() -> Router<AppState> {
    Router::new().route("/test/panic", get(boom)).route(
        "/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "done"
        }),
    )
}

#[tokio::test]
async fn panic_becomes_500_and_the_server_keeps_serving() {
    let s = start_with(|_| {}, extra_routes()).await;
    let r = s.get("/test/panic").await;
    assert!(is_lower_hex(header(&r, "x-trace-id"), 32));
    error_body(r, 500, "internal_error").await;
    assert_eq!(s.get("/health").await.status(), 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn concurrency_limit_answers_429_with_retry_after_and_spares_probes() {
    let s = start_with(|c| c.limits.max_concurrent_requests = 1, extra_routes()).await;
    let slow = tokio::spawn(s.client.get(s.url("/test/slow")).send());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = s.get("/companies").await;
    assert_eq!(header(&r, "retry-after"), "1");
    error_body(r, 429, "too_many_requests").await;
    assert_eq!(s.get("/ready").await.status(), 200);
    assert_eq!(s.get("/metrics").await.status(), 200);
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(s.get("/companies").await.status(), 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn request_timeout_answers_408() {
    let s = start_with(
        |c| c.limits.request_timeout = Duration::from_millis(100),
        extra_routes(),
    )
    .await;
    error_body(s.get("/test/slow").await, 408, "request_timeout").await;
    assert_eq!(s.get("/health").await.status(), 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut s = start_with(|_| {}, extra_routes()).await;
    let slow = tokio::spawn(s.client.get(s.url("/test/slow")).send());
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(s.state.is_shutting_down());
    assert!(!s.state.readiness().ready);
    let r = slow.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "done");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn drain_timeout_cuts_off_a_request_that_outlasts_it() {
    let mut s = start_with(
        |c| c.limits.drain_timeout = Duration::from_millis(100),
        extra_routes(),
    )
    .await;
    let slow = tokio::spawn(s.client.get(s.url("/test/slow")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.begin_shutdown();
    let started = std::time::Instant::now();
    s.stop().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    let _ = slow.await;
}

#[tokio::test]
async fn ready_is_503_with_the_failing_check_before_load_and_during_shutdown() {
    // A state that never loads: store and rubric missing.
    let dir = tempfile::tempdir().unwrap();
    let cfg = esg_server::ServerConfig::new(dir.path(), esg_server::Extraction::InProcess);
    let state = AppState::new(&cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(esg_server::run(
        listener,
        esg_server::router(state.clone()),
        state.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let r = reqwest::get(format!("{base}/ready")).await.unwrap();
    let v = error_body(r, 503, "not_ready").await;
    assert_eq!(v["ready"], false);
    assert_eq!(v["checks"]["store"], "not open yet");
    let failing: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["check"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["migrations", "rubric", "store"]);
    // Store-backed routes say not ready; probes still answer.
    error_body(
        reqwest::get(format!("{base}/companies")).await.unwrap(),
        503,
        "not_ready",
    )
    .await;
    assert_eq!(
        reqwest::get(format!("{base}/live")).await.unwrap().status(),
        200
    );

    esg_server::load(state.clone(), cfg.clone()).await;
    assert_eq!(
        reqwest::get(format!("{base}/ready"))
            .await
            .unwrap()
            .status(),
        200
    );
    state.begin_shutdown();
    let v = error_body(
        reqwest::get(format!("{base}/ready")).await.unwrap(),
        503,
        "not_ready",
    )
    .await;
    assert_eq!(v["checks"]["shutdown"], "shutting down");
    tx.send(()).unwrap();
    h.await.unwrap().unwrap();
}

#[tokio::test]
async fn metrics_move_with_the_code_paths_they_describe() {
    let s = start_with(|_| {}, extra_routes()).await;
    let before = s.get("/metrics").await.text().await.unwrap();
    assert!(before.contains("esg_companies 0"));
    assert!(before.contains("esg_build_info{version=\""));
    assert!(before.contains("rubric_version=\"3.0\""));
    s.upload_sample().await;
    s.upload_sample().await;
    s.client
        .post(s.url("/documents?company=A&year=2024"))
        .header("content-type", "application/octet-stream")
        .body(b"\x89PNG\r\n\x1a\n\0\0".to_vec())
        .send()
        .await
        .unwrap();
    s.get("/companies/northwind").await;
    s.get("/search?company=Northwind%20Components%20Ltd&q=energy")
        .await;
    s.client
        .post(s.url("/score"))
        .json(&json!({ "company": COMPANY }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.get("/trace?company=Northwind%20Components%20Ltd")
            .await
            .status(),
        200
    );
    s.get("/test/panic").await;
    let r = s.get("/metrics").await;
    assert_eq!(
        header(&r, "content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = r.text().await.unwrap();
    let has = |needle: &str| assert!(m.contains(needle), "missing {needle}\n{m}");
    has("esg_http_requests_total{route=\"/companies/{id}\",method=\"GET\",status=\"404\"} 1");
    has("esg_http_requests_total{route=\"/documents\",method=\"POST\",status=\"201\"} 1");
    has("esg_http_requests_total{route=\"/test/panic\",method=\"GET\",status=\"500\"} 1");
    has(
        "esg_http_request_duration_seconds_count{route=\"/score\",method=\"POST\",status=\"200\"} 1",
    );
    has("esg_http_requests_in_flight 1"); // the scrape itself
    has("esg_ingest_documents_total{format=\"text\",outcome=\"ingested\"} 1");
    has("esg_ingest_documents_total{format=\"text\",outcome=\"already_ingested\"} 1");
    has("esg_ingest_documents_total{format=\"unknown\",outcome=\"unsupported_format\"} 1");
    has("esg_ingest_chunks_total{format=\"text\",outcome=\"ingested\"} ");
    has("esg_companies 1");
    // /score and /trace each score once, retrieval included.
    has("esg_score_duration_seconds_count 2");
    has("esg_retrieval_duration_seconds_count{operation=\"search\"} 1");
    has("esg_retrieval_duration_seconds_count{operation=\"score\"} 2");
    let sample = |name: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name}\n{m}"))
    };
    let retrieval_sum = sample("esg_retrieval_duration_seconds_sum{operation=\"score\"}");
    let score_sum = sample("esg_score_duration_seconds_sum");
    assert!(
        retrieval_sum > 0.0 && retrieval_sum <= score_sum,
        "retrieval {retrieval_sum} s is part of scoring {score_sum} s"
    );
    has("esg_parity_breaks_total 0");
    has("process_resident_memory_bytes ");
    has("process_cpu_seconds_total ");
    has("process_open_fds ");
    has("process_start_time_seconds ");
    assert!(!m.contains("route=\"/companies/northwind\""));
    // Every sample line is `name{labels} value` or `name value`, value numeric.
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample {line}");
    }
    s.stop().await.unwrap();
}

/// A small JSON-schema check: `$ref`, `type`, `required`, `properties`,
/// `items`, `enum`, `nullable`.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    // OpenAPI 3.0's `nullable: true` admits null besides the type.
    if v.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        assert!(ok, "{at}: expected {t}, found {v}");
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        assert!(e.contains(v), "{at}: {v} not in {e:?}");
    }
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let k = req.as_str().unwrap();
        assert!(v.get(k).is_some(), "{at}: missing required {k} in {v}");
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for (k, s) in props {
            if let Some(x) = obj.get(k) {
                check(doc, s, x, &format!("{at}.{k}"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"));
        }
    }
}

#[tokio::test]
async fn openapi_describes_every_route_and_the_real_responses() {
    let s = start().await;
    let doc: Value = s.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/health",
        "/live",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/companies",
        "/companies/{id}",
        "/documents",
        "/search",
        "/score",
        "/trace",
    ] {
        assert!(paths.contains_key(p), "{p} undocumented");
    }
    s.upload_sample().await; // 201 checked below via the 200 path
    let cases: Vec<(&str, &str, reqwest::RequestBuilder)> = vec![
        ("/health", "get", s.client.get(s.url("/health"))),
        ("/live", "get", s.client.get(s.url("/live"))),
        ("/ready", "get", s.client.get(s.url("/ready"))),
        ("/companies", "get", s.client.get(s.url("/companies"))),
        (
            "/companies/{id}",
            "get",
            s.client
                .get(s.url("/companies/northwind%20components%20ltd")),
        ),
        (
            "/companies/{id}",
            "get",
            s.client.get(s.url("/companies/acme")),
        ),
        ("/documents", "get", s.client.get(s.url("/documents"))),
        (
            "/documents",
            "post",
            s.client
                .post(s.url("/documents?company=Northwind%20Components%20Ltd&year=2024"))
                .header("content-type", "text/plain")
                .body(SAMPLE),
        ),
        (
            "/documents",
            "post",
            s.client
                .post(s.url("/documents?company=B&year=2024"))
                .header("content-type", "text/plain")
                .body("A different small report about Scope 1 emissions."),
        ),
        (
            "/documents",
            "post",
            s.client
                .post(s.url("/documents?year=1"))
                .header("content-type", "text/plain")
                .body("x"),
        ),
        (
            "/search",
            "get",
            s.client
                .get(s.url("/search?company=Northwind%20Components%20Ltd&q=board%20oversight")),
        ),
        (
            "/search",
            "get",
            s.client
                .get(s.url("/search?company=Northwind%20Components%20Ltd")),
        ),
        (
            "/score",
            "post",
            s.client
                .post(s.url("/score"))
                .json(&json!({ "company": COMPANY })),
        ),
        (
            "/score",
            "post",
            s.client
                .post(s.url("/score"))
                .header("content-type", "application/json")
                .body("{"),
        ),
        (
            "/score",
            "post",
            s.client
                .post(s.url("/score?k=500"))
                .json(&json!({ "company": COMPANY })),
        ),
        (
            "/trace",
            "get",
            s.client
                .get(s.url("/trace?company=Northwind%20Components%20Ltd")),
        ),
    ];
    for (path, method, req) in cases {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16().to_string();
        let resp = &doc["paths"][path][method]["responses"][&status];
        assert!(resp.is_object(), "{method} {path} {status} undocumented");
        let v: Value = r.json().await.unwrap();
        let schema = &resp["content"]["application/json"]["schema"];
        check(&doc, schema, &v, &format!("{method} {path} {status}"));
    }
    s.stop().await.unwrap();
}
