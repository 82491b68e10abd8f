//! `esg serve` end to end: the real binary on an ephemeral loopback port,
//! an upload extracted by the real sandboxed worker, and SIGTERM.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 request; returns (status, body).
fn http(addr: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    http_with_key(addr, method, path, content_type, body, None)
}

/// [`http`] with `Authorization: Bearer <key>` when a key is given.
fn http_with_key(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    key: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = key.map_or_else(String::new, |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_binds_answers_ingests_through_the_worker_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Uploads need an API key (`esg keys add` prints it once).
    let out = support::esg(&data, &["keys", "add", "--label", "serve-test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut child = Command::new(support::esg_bin())
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("OTEL_TRACES_EXPORTER", "none")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start esg serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The first JSON log lines include the bound address.
    let mut addr = None;
    for line in lines.by_ref().take(20) {
        let line = line.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        if v["message"] == "listening" {
            addr = v["listen"].as_str().map(str::to_string);
            break;
        }
    }
    let addr = addr.expect("a 'listening' log line with the address");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = http(&addr, "GET", "/ready", "text/plain", b"");
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready (last status {status})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = http(&addr, "GET", "/health", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"healthy\""), "{body}");

    // An upload goes through the sandboxed `esg __extract-worker`.
    let sample = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples/northwind-2024-sustainability.txt"),
    )
    .unwrap();
    let (status, body) = http(
        &addr,
        "POST",
        "/documents?company=Northwind%20Components%20Ltd&year=2024",
        "text/plain",
        &sample,
    );
    assert_eq!(status, 401, "no key: {body}");
    let (status, body) = http_with_key(
        &addr,
        "POST",
        "/documents?company=Northwind%20Components%20Ltd&year=2024",
        "text/plain",
        &sample,
        Some(&key),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http_with_key(
        &addr,
        "POST",
        "/documents?company=Northwind%20Components%20Ltd&year=2024",
        "text/plain",
        &sample,
        Some(&key),
    );
    assert_eq!(status, 200, "already ingested: {body}");
    let (status, body) = http(
        &addr,
        "POST",
        "/score",
        "application/json",
        br#"{"company":"northwind components ltd"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"fingerprint\""), "{body}");
    assert_eq!(support::counts(&data).1, 1);

    // SIGTERM: drain and exit 0.
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc_kill(child.id() as i32, 15) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "esg serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
