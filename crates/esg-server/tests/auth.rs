//! API keys on the real server: every auth outcome (ok, missing, invalid,
//! revoked), the JSON error shape, `WWW-Authenticate`, the metric by
//! outcome, keys added and revoked while the server runs, the no-key-file
//! hint, `--require-auth-for-reads`, and keys never echoed or logged.

mod common;

use common::*;
use serde_json::{Value, json};

fn anon() -> reqwest::Client {
    reqwest::Client::new()
}

fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name_and_labels} not in metrics:\n{text}"))
}

async fn auth_counts(s: &TestServer) -> [u64; 4] {
    let t = s.get("/metrics").await.text().await.unwrap();
    ["ok", "missing", "invalid", "revoked"]
        .map(|o| metric(&t, &format!("esg_auth_requests_total{{outcome=\"{o}\"}}")))
}

fn upload(
    c: &reqwest::Client,
    s: &TestServer,
    key: Option<&str>,
    body: &str,
) -> reqwest::RequestBuilder {
    let mut r = c
        .post(s.url("/documents?company=Northwind%20Components%20Ltd&year=2024"))
        .header("content-type", "text/plain")
        .body(body.to_string());
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r
}

#[tokio::test]
async fn every_outcome_of_a_write_in_the_error_shape_and_counted() {
    let s = start().await;
    assert_eq!(auth_counts(&s).await, [0, 0, 0, 0]);

    // No key: 401 with a Bearer challenge.
    let r = upload(&anon(), &s, None, SAMPLE).send().await.unwrap();
    assert!(
        header(&r, "www-authenticate").starts_with("Bearer"),
        "{:?}",
        r.headers()
    );
    let v = error_body(r, 401, "unauthorized").await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{v}"
    );
    // Another scheme is no Bearer key either.
    let r = upload(&anon(), &s, None, SAMPLE)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    error_body(r, 401, "unauthorized").await;

    // A wrong key: garbage, and a well-formed key with the right id but another secret.
    let id = esg_server::auth::parse_key_id(&s.api_key)
        .unwrap()
        .to_string();
    let forged = format!("esg_{id}_{}", "ab".repeat(32));
    for bad in ["not-a-key", forged.as_str()] {
        let r = upload(&anon(), &s, Some(bad), SAMPLE).send().await.unwrap();
        let text = r.text().await.unwrap();
        assert!(!text.contains(bad), "the presented key is echoed: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "forbidden", "{v}");
    }
    assert_eq!(
        upload(&anon(), &s, Some(&forged), SAMPLE)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        s.get("/documents").await.json::<Value>().await.unwrap()["documents"],
        json!([])
    );

    // The right key.
    let r = upload(&anon(), &s, Some(&s.api_key), SAMPLE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(auth_counts(&s).await, [1, 2, 3, 0]);

    // Reads stay open by default, POST /score included; probes and metrics too.
    for path in [
        "/companies",
        "/documents",
        "/health",
        "/live",
        "/ready",
        "/metrics",
        "/openapi.json",
    ] {
        assert_eq!(
            anon().get(s.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    let r = anon()
        .post(s.url("/score"))
        .json(&json!({ "company": COMPANY }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(auth_counts(&s).await, [1, 2, 3, 0], "reads are not checked");

    // Unknown write routes fail closed: 401 before 404/405.
    let r = anon().delete(s.url("/documents")).send().await.unwrap();
    error_body(r, 401, "unauthorized").await;
    let r = anon().post(s.url("/admin/anything")).send().await.unwrap();
    error_body(r, 401, "unauthorized").await;
    let r = s.client.delete(s.url("/documents")).send().await.unwrap();
    error_body(r, 405, "method_not_allowed").await;

    // Revoked while the server runs: 403 from the next request on.
    esg_server::auth::update(&s.data_dir.join("api-keys.json"), |f| f.revoke(&id)).unwrap();
    let r = upload(
        &anon(),
        &s,
        Some(&s.api_key),
        "Another report on Scope 2 emissions.",
    )
    .send()
    .await
    .unwrap();
    let v = error_body(r, 403, "forbidden").await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("revoked"),
        "{v}"
    );
    // A key added while the server runs works at once.
    let (_, fresh) =
        esg_server::auth::update(&s.data_dir.join("api-keys.json"), |f| f.add("second")).unwrap();
    let r = upload(
        &anon(),
        &s,
        Some(fresh.expose()),
        "Another report on Scope 2 emissions.",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let [ok, missing, invalid, revoked] = auth_counts(&s).await;
    assert_eq!((ok, missing, invalid, revoked), (3, 4, 3, 1));
    // Never labelled by key.
    let t = s.get("/metrics").await.text().await.unwrap();
    assert!(!t.contains(&id) && !t.contains(&s.api_key));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_key_file_the_401_says_how_to_make_a_key() {
    let s = start().await;
    std::fs::remove_file(s.data_dir.join("api-keys.json")).unwrap();
    let r = upload(&anon(), &s, None, SAMPLE).send().await.unwrap();
    let v = error_body(r, 401, "unauthorized").await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("esg keys add"),
        "{v}"
    );
    // The old key is gone with the file.
    let r = upload(&anon(), &s, Some(&s.api_key), SAMPLE)
        .send()
        .await
        .unwrap();
    let v = error_body(r, 403, "forbidden").await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("esg keys add"),
        "{v}"
    );
    // A damaged key file refuses every write (fails closed) and says so.
    std::fs::write(s.data_dir.join("api-keys.json"), "{ not json").unwrap();
    let r = upload(&anon(), &s, Some(&s.api_key), SAMPLE)
        .send()
        .await
        .unwrap();
    error_body(r, 500, "auth_unavailable").await;
    let t = s.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&t, "esg_auth_requests_total{outcome=\"error\"}"), 1);
    assert_eq!(
        s.get("/documents").await.json::<Value>().await.unwrap()["documents"],
        json!([])
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn reads_can_require_a_key_while_probes_and_metrics_stay_open() {
    let s = start_with(
        |c| c.security.require_auth_for_reads = true,
        axum::Router::new(),
    )
    .await;
    assert_eq!(
        upload(&s.client, &s, None, SAMPLE)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    for path in [
        "/companies",
        "/documents",
        "/companies/northwind%20components%20ltd",
        "/search?company=Northwind%20Components%20Ltd&q=energy",
        "/trace?company=Northwind%20Components%20Ltd",
    ] {
        let r = anon().get(s.url(path)).send().await.unwrap();
        error_body(r, 401, "unauthorized").await;
        assert_eq!(s.get(path).await.status(), 200, "{path} with the key");
    }
    let r = anon()
        .post(s.url("/score"))
        .json(&json!({ "company": COMPANY }))
        .send()
        .await
        .unwrap();
    error_body(r, 401, "unauthorized").await;
    for path in ["/health", "/live", "/ready", "/metrics", "/openapi.json"] {
        assert_eq!(
            anon().get(s.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    // The web pages: a page saying why (a browser cannot send the key), not
    // the API's JSON; the pages' own files stay open; with the key they work.
    for path in ["/ui/", "/ui/companies/northwind%20components%20ltd"] {
        let r = anon().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let body = r.text().await.unwrap();
        assert!(body.contains("--require-auth-for-reads"), "{body}");
        assert_eq!(s.get(path).await.status(), 200, "{path} with the key");
    }
    for path in ["/ui/static/ui.css", "/favicon.ico"] {
        assert_eq!(
            anon().get(s.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    s.stop().await.unwrap();
}

/// The request log lines of accepted and refused keys name neither key.
/// (A current-thread runtime: the thread-local subscriber sees the
/// server's request events.)
#[tokio::test(flavor = "current_thread")]
async fn keys_never_reach_the_log_lines() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let buf = Buf::default();
    let b2 = buf.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("debug"))
        .with(esg_server::logging::JsonLayer::new(move || b2.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = start().await;
    let wrong = "esg_000000000000_".to_string() + &"1".repeat(64);
    assert_eq!(
        upload(&anon(), &s, Some(&s.api_key), SAMPLE)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        upload(&anon(), &s, Some(&wrong), SAMPLE)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        upload(&anon(), &s, None, SAMPLE)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let key = s.api_key.clone();
    s.stop().await.unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let sent = text.matches("\"request sent\"").count();
    assert!(sent >= 3, "the request log was captured:\n{text}");
    for k in [key.as_str(), wrong.as_str()] {
        let secret = k.rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "a key was logged:\n{text}");
    }
    assert!(!text.to_ascii_lowercase().contains("bearer"), "{text}");
}

/// The OpenAPI document describes the key scheme, multipart uploads and
/// every auth/limit status the server really answers.
#[tokio::test]
async fn openapi_describes_the_key_scheme_and_the_real_auth_answers() {
    let s = start_with(
        |c| c.security.rate_limit_per_minute = 12,
        axum::Router::new(),
    )
    .await;
    let doc: Value = s.get("/openapi.json").await.json().await.unwrap();
    let scheme = &doc["components"]["securitySchemes"]["apiKey"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let post = &doc["paths"]["/documents"]["post"];
    assert_eq!(post["security"], json!([{ "apiKey": [] }]));
    let mp = &post["requestBody"]["content"]["multipart/form-data"]["schema"];
    assert_eq!(mp["properties"]["file"]["format"], "binary");
    for (path, method) in [
        ("/companies", "get"),
        ("/score", "post"),
        ("/search", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(
            op["security"],
            json!([{}, { "apiKey": [] }]),
            "{method} {path}"
        );
    }
    // Every status below is documented for its operation, with the Error schema.
    let body = "--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nx\r\n--B--\r\n";
    let cases = [
        ("post", upload(&anon(), &s, None, SAMPLE)),
        ("post", upload(&anon(), &s, Some("esg_nope"), SAMPLE)),
        (
            "post",
            s.client
                .post(s.url("/documents?company=A&year=2024"))
                .header("content-type", "multipart/form-data; boundary=B")
                .body(body),
        ),
    ];
    for (method, req) in cases {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16().to_string();
        let resp = &doc["paths"]["/documents"][method]["responses"][&status];
        assert_eq!(
            resp["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
            "{method} /documents {status} undocumented"
        );
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["code"].is_string() && v["request_id"].is_string());
    }
    // Exhaust the rate limit: 429 is documented on every operation.
    let mut last = 0;
    for _ in 0..20 {
        last = s.get("/companies").await.status().as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    assert!(doc["paths"]["/companies"]["get"]["responses"]["429"].is_object());
    assert!(doc["paths"]["/documents"]["post"]["responses"]["429"].is_object());
    s.stop().await.unwrap();
}
