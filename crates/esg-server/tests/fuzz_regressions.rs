//! Inputs the `http_json` fuzz target found (`fuzz/regressions/http_json/*`),
//! replayed through the real router exactly as the target builds them: byte
//! 0 picks the route, then the query string up to the first NUL, then the
//! body. No 5xx, the body is JSON, and errors are in the
//! `{"error":{"code","message"}}` shape.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

const SAMPLE: &[u8] = include_bytes!("../../../samples/northwind-2024-sustainability.txt");

/// (method, uri, content type) for one input, or `None` when the fuzz target
/// would skip it (not UTF-8, or not a URI).
fn request_for(data: &[u8]) -> Option<Request<Body>> {
    let (&sel, rest) = data.split_first()?;
    let (query, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let query = std::str::from_utf8(query).ok()?;
    let (method, path, ctype) = match sel % 8 {
        0..=2 => (Method::POST, "/score".to_string(), Some("application/json")),
        3 => (
            Method::POST,
            "/score".to_string(),
            Some("application/json; charset=utf-8"),
        ),
        4 => (Method::GET, "/search".to_string(), None),
        5 => (Method::GET, "/trace".to_string(), None),
        6 => (Method::GET, "/documents".to_string(), None),
        _ => (
            Method::GET,
            format!("/companies/{}", std::str::from_utf8(body).ok()?),
            None,
        ),
    };
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let mut req = Request::builder().method(method).uri(uri.as_str());
    if let Some(ct) = ctype {
        req = req.header("content-type", ct);
    }
    req.body(Body::from(body.to_vec())).ok()
}

#[tokio::test]
async fn http_json_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let store = esg_store::SqliteStore::open_in_dir(dir.path()).unwrap();
    esg_ingest::ingest_bytes(
        &store,
        SAMPLE,
        esg_ingest::Provenance {
            company: "Northwind Traders",
            year: 2024,
            filename: "northwind-2024-sustainability.txt",
            sector: None,
        },
        esg_ingest::extract_in_process,
        esg_core::ChunkParams::default(),
    )
    .unwrap();
    let config = esg_server::ServerConfig::new(dir.path(), esg_server::Extraction::InProcess);
    let state = esg_server::AppState::new(&config);
    state.set_store(Arc::new(store), true);
    state.set_rubric(esg_score::Rubric::builtin());
    let app = esg_server::router(state);

    let regressions =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/http_json");
    let mut files: Vec<_> = std::fs::read_dir(&regressions)
        .expect("fuzz/regressions/http_json")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the malformed-path input is kept here");
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let Some(req) = request_for(&data) else {
            continue;
        };
        let uri = req.uri().to_string();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{}: {status} for {uri}: {text}",
            path.display()
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{}: {status} for {uri}: body is not JSON ({e}): {text}",
                path.display()
            )
        });
        if !status.is_success() {
            assert!(
                v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()),
                "{}: error without code: {v}",
                path.display()
            );
            assert!(v["error"]["message"].is_string(), "{}: {v}", path.display());
        }
    }
}
