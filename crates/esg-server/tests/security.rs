//! Security headers, CORS, per-client rate limiting and the admin listener
//! on the real server.

mod common;

use common::*;
use esg_server::{Extraction, ServerConfig};
use std::time::{Duration, Instant};

fn anon() -> reqwest::Client {
    reqwest::Client::new()
}

fn assert_hardened(r: &reqwest::Response, what: &str) {
    assert_eq!(
        header(r, "x-content-type-options"),
        "nosniff",
        "{what}: {:?}",
        r.headers()
    );
    assert_eq!(header(r, "x-frame-options"), "DENY", "{what}");
    assert!(
        r.headers().get("server").is_none(),
        "{what}: a Server banner"
    );
    assert!(
        header(r, "content-security-policy").contains("default-src 'none'"),
        "{what}"
    );
}

#[tokio::test]
async fn every_response_has_nosniff_and_no_server_banner() {
    let s = start_with(|c| c.limits.upload_body_bytes = 1024, axum::Router::new()).await;
    for path in [
        "/health",
        "/live",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/companies",
        "/no/such/route",
    ] {
        let r = s.get(path).await;
        assert_hardened(&r, path);
    }
    let cases = [
        ("405", s.client.delete(s.url("/companies"))),
        ("401", anon().post(s.url("/documents?company=A&year=2024"))),
        (
            "413",
            s.client
                .post(s.url("/documents?company=A&year=2024"))
                .header("content-type", "text/plain")
                .body(vec![b'a'; 2048]),
        ),
        ("422", s.client.get(s.url("/search?company=A"))),
    ];
    for (status, req) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_str(), status);
        assert_hardened(&r, status);
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let s = start().await;
    let r = s
        .client
        .get(s.url("/companies"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = anon()
        .request(reqwest::Method::OPTIONS, s.url("/documents"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_hardened(&r, "preflight without CORS");
    error_body(r, 405, "method_not_allowed").await;
    s.stop().await.unwrap();
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = "https://app.example.com";
    let s = start_with(
        |c| c.security.cors_allow_origins = vec![app.into(), "http://localhost:3000".into()],
        axum::Router::new(),
    )
    .await;
    let preflight = |origin: &str| {
        anon()
            .request(
                reqwest::Method::OPTIONS,
                s.url("/documents?company=A&year=2024"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    // A preflight carries no key and is answered before the key check.
    let r = preflight(app).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), app);
    assert!(header(&r, "access-control-allow-methods").contains("POST"));
    assert!(
        header(&r, "access-control-allow-headers")
            .to_ascii_lowercase()
            .contains("authorization")
    );
    assert_hardened(&r, "preflight");
    let r = preflight("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Simple requests: the origin is allowed and the ids are readable by it.
    let r = anon()
        .get(s.url("/companies"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "http://localhost:3000"
    );
    assert!(header(&r, "access-control-expose-headers").contains("x-request-id"));
    let r = anon()
        .get(s.url("/companies"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // CORS does not replace the key: a cross-origin upload without one is 401.
    let r = anon()
        .post(s.url("/documents?company=A&year=2024"))
        .header("origin", app)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), app);
    error_body(r, 401, "unauthorized").await;
    s.stop().await.unwrap();
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_per_client() {
    let s = start_with(
        |c| c.security.rate_limit_per_minute = 3,
        axum::Router::new(),
    )
    .await;
    for i in 0..3 {
        assert_eq!(s.get("/companies").await.status(), 200, "request {i}");
    }
    let r = s.get("/openapi.json").await;
    let retry: u64 = header(&r, "retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    assert_hardened(&r, "429");
    let v = error_body(r, 429, "rate_limited").await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 requests per minute")
    );
    // A write is limited before its key is looked at (no key guessing).
    let r = anon()
        .post(s.url("/documents?company=A&year=2024"))
        .send()
        .await
        .unwrap();
    error_body(r, 429, "rate_limited").await;
    // Probes and metrics are never limited.
    for _ in 0..5 {
        for p in ["/health", "/live", "/ready"] {
            assert_eq!(s.get(p).await.status(), 200, "{p}");
        }
    }
    let t = s.get("/metrics").await.text().await.unwrap();
    assert!(t.contains("esg_rate_limited_total 2"), "{t}");
    assert!(
        t.contains("esg_http_requests_total{route=\"/companies\",method=\"GET\",status=\"200\"} 3")
    );
    s.stop().await.unwrap();

    // Off by default.
    let s = start().await;
    for _ in 0..20 {
        assert_eq!(s.get("/companies").await.status(), 200);
    }
    assert!(
        s.get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains("esg_rate_limited_total 0")
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn the_admin_listener_serves_probes_and_takes_metrics_off_the_main_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::new(dir.path().join("data"), Extraction::InProcess);
    cfg.service_name = "esg-test".into();
    cfg.security.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (main_url, admin_url) = (
        format!("http://{}", main.local_addr().unwrap()),
        format!("http://{}", admin.local_addr().unwrap()),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(esg_server::serve_on_with_admin(
        main,
        Some(admin),
        cfg,
        async move {
            let _ = rx.await;
        },
    ));
    let c = anon();
    let get = |base: &str, path: &str| c.get(format!("{base}{path}")).send();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&admin_url, "/ready")
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "admin /ready never 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in ["/health", "/live", "/ready", "/metrics"] {
        let r = get(&admin_url, p).await.unwrap();
        assert_eq!(r.status(), 200, "admin {p}");
        assert_hardened(&r, p);
    }
    let m = get(&admin_url, "/metrics")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("esg_http_requests_total{route=\"/ready\""),
        "{m}"
    );
    assert!(m.contains("esg_auth_requests_total{outcome=\"ok\"}"));
    // The main listener keeps the probes, not /metrics.
    for p in ["/health", "/live", "/ready", "/companies"] {
        assert_eq!(get(&main_url, p).await.unwrap().status(), 200, "main {p}");
    }
    error_body(get(&main_url, "/metrics").await.unwrap(), 404, "not_found").await;
    // The admin listener serves nothing else.
    error_body(
        get(&admin_url, "/companies").await.unwrap(),
        404,
        "not_found",
    )
    .await;
    // Both stop with the server.
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        get(&admin_url, "/health").await.is_err(),
        "admin still answering"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_disconnected_but_slow_bodies_are_not() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = start_with(
        |c| c.limits.header_read_timeout = Duration::from_millis(300),
        axum::Router::new(),
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    // A head that never ends: closed after the timeout.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "the connection was held open");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // An idle kept-alive connection is closed too.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    c.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "an idle keep-alive connection was held open");
    // A body that arrives slowly (longer than the header timeout in all) is fine.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = SAMPLE.as_bytes();
    c.write_all(
        format!(
            "POST /documents?company=Northwind%20Components%20Ltd&year=2024 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            s.api_key,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    for part in body.chunks(body.len() / 5 + 1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.write_all(part).await.unwrap();
    }
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    // Ordinary requests are unaffected.
    assert_eq!(s.get("/health").await.status(), 200);
    s.stop().await.unwrap();
}
