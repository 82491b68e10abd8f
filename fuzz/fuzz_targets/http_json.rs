//! The HTTP request bodies and query strings, through the real axum router
//! (every layer: request ids, limits, JSON/query extractors, validation,
//! handlers) in process with `tower::ServiceExt::oneshot`, against a real
//! SQLite store in a temporary directory holding the shipped sample report.
//!
//! Input: byte 0 picks the route, then the query string up to the first NUL,
//! then the body. A 5xx answer, a body that is not JSON, or an error body not
//! in the `{"error":{"code","message",...}}` shape is a finding.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

static WORLD: OnceLock<World> = OnceLock::new();

const SAMPLE: &[u8] = include_bytes!("../../samples/northwind-2024-sustainability.txt");

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = esg_store::SqliteStore::open_in_dir(dir.path()).expect("store");
        esg_ingest::ingest_bytes(
            &store,
            SAMPLE,
            esg_ingest::Provenance {
                company: "Northwind Traders",
                year: 2024,
                filename: "northwind-2024-sustainability.txt",
            },
            esg_ingest::extract_in_process,
            esg_core::ChunkParams::default(),
        )
        .expect("sample ingested");
        let config = esg_server::ServerConfig::new(dir.path(), esg_server::Extraction::InProcess);
        let state = esg_server::AppState::new(&config);
        state.set_store(Arc::new(store), true);
        state.set_rubric(esg_score::Rubric::builtin());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        World {
            rt,
            app: esg_server::router(state),
            _dir: dir,
        }
    })
}

fuzz_target!(
    init: { world(); },
    |data: &[u8]| {
        let Some((&sel, rest)) = data.split_first() else { return };
        let (query, body) = match rest.iter().position(|&b| b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let Ok(query) = std::str::from_utf8(query) else { return };
        let (method, path, ctype) = match sel % 8 {
            0 | 1 | 2 => (Method::POST, "/score".to_string(), Some("application/json")),
            3 => (Method::POST, "/score".to_string(), Some("application/json; charset=utf-8")),
            4 => (Method::GET, "/search".to_string(), None),
            5 => (Method::GET, "/trace".to_string(), None),
            6 => (Method::GET, "/documents".to_string(), None),
            _ => {
                // The company id is a path segment: take it from the body.
                let Ok(id) = std::str::from_utf8(body) else { return };
                (Method::GET, format!("/companies/{id}"), None)
            }
        };
        let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
        let mut req = Request::builder().method(method).uri(uri.as_str());
        if let Some(ct) = ctype {
            req = req.header("content-type", ct);
        }
        // An URI hyper would refuse never reaches the router.
        let Ok(req) = req.body(Body::from(body.to_vec())) else { return };
        let w = world();
        let (status, bytes) = w.rt.block_on(async {
            let res = w.app.clone().oneshot(req).await.expect("infallible");
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .expect("body");
            (status, bytes)
        });
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} for {uri}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {:?}", String::from_utf8_lossy(&bytes)));
        if !status.is_success() {
            let err = &v["error"];
            assert!(err["code"].as_str().is_some_and(|c| !c.is_empty()), "error without code: {v}");
            assert!(err["message"].is_string(), "error without message: {v}");
        }
    }
);
