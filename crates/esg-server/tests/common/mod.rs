//! Starts the real server on 127.0.0.1:0 with a SQLite store in a tempdir.
#![allow(dead_code)]

use axum::Router;
use esg_server::{AppState, Extraction, ServerConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

pub const SAMPLE: &str = include_str!("../../../../samples/northwind-2024-sustainability.txt");
pub const COMPANY: &str = "Northwind Components Ltd";

pub struct TestServer {
    pub base: String,
    /// Sends `Authorization: Bearer <api_key>` on every request (uploads need it).
    pub client: reqwest::Client,
    /// A current key from the server's key file (`<data>/api-keys.json`).
    pub api_key: String,
    /// The data directory.
    pub data_dir: std::path::PathBuf,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Begins shutdown; the server's `run` completes after draining.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        let h = self.handle.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), h).await??
    }

    /// Uploads the sample report.
    pub async fn upload_sample(&self) -> reqwest::Response {
        self.client
            .post(self.url("/documents?company=Northwind%20Components%20Ltd&year=2024&filename=northwind-2024.txt"))
            .header("content-type", "text/plain")
            .body(SAMPLE)
            .send()
            .await
            .expect("upload")
    }
}

pub async fn start_with(
    configure: impl FnOnce(&mut ServerConfig),
    extra: Router<AppState>,
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = ServerConfig::new(dir.path().join("data"), Extraction::InProcess);
    cfg.service_name = "esg-test".into();
    configure(&mut cfg);
    let api_key = esg_server::auth::update(&cfg.api_keys_path(), |f| f.add("tests"))
        .expect("api key")
        .1
        .expose()
        .to_string();
    let state = AppState::new(&cfg);
    esg_server::load(state.clone(), cfg.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = esg_server::router_with(state.clone(), extra);
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(esg_server::run(listener, app, state.clone(), async move {
        let _ = rx.await;
    }));
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {api_key}").parse().expect("header"),
    );
    TestServer {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .default_headers(auth)
            .build()
            .expect("client"),
        api_key,
        data_dir: cfg.data_dir.clone(),
        state,
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: dir,
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}, Router::new()).await
}

pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Asserts the one error shape and returns the body.
pub async fn error_body(r: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(r.status().as_u16(), status, "status");
    assert!(header(&r, "content-type").starts_with("application/json"));
    let rid = header(&r, "x-request-id").to_string();
    let v: serde_json::Value = r.json().await.expect("json error body");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v["error"]["details"].is_array(), "{v}");
    assert_eq!(v["request_id"], rid.as_str(), "{v}");
    v
}

/// An in-memory log sink for `esg_server::logging::JsonLayer` (or any
/// `MakeWriter`): clones share one buffer.
#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
