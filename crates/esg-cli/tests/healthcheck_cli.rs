//! `esg healthcheck` against the real `esg serve` on an ephemeral loopback
//! port (healthy, ready, not ready, not a probe), a closed port and a
//! listener that never answers; plus the `esg_ready` gauge it mirrors.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `esg serve`, stopped (SIGKILL) when dropped.
struct Server {
    child: Child,
    addr: String,
    _tmp: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `esg serve --listen 127.0.0.1:0 extra...` and reads the bound
/// address from its `listening` log line.
fn start(extra: &[&str]) -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = Command::new(support::esg_bin())
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("OTEL_TRACES_EXPORTER", "none")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("ESG_HEALTHCHECK_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start esg serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
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
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let addr = addr.expect("a 'listening' log line with the address");
    Server {
        child,
        addr,
        _tmp: tmp,
    }
}

/// Raw GET, independent of the code under test; returns (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
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

/// Waits until every readiness check has run (ok or failed): `/ready`
/// names no check as still pending.
fn wait_loaded(addr: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(addr, "/ready");
        if status == 200 || (status == 503 && body.contains("failed")) {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "never loaded: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(support::esg_bin());
    c.arg("healthcheck")
        .args(args)
        .env_remove("ESG_HEALTHCHECK_URL")
        .env_remove("ESG_HEALTHCHECK_TIMEOUT_MS")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run esg healthcheck")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn metric(addr: &str, name: &str) -> f64 {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn healthy_server_passes_on_health_ready_and_live_by_flag_and_env() {
    let srv = start(&[]);
    let (status, body) = wait_loaded(&srv.addr);
    assert_eq!(status, 200, "{body}");
    assert_eq!(metric(&srv.addr, "esg_ready"), 1.0);

    for path in ["/health", "/ready", "/live"] {
        let url = format!("http://{}{path}", srv.addr);
        let o = healthcheck(&["--url", &url], &[]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{path}: {out} {err}");
        assert!(out.starts_with("healthy: "), "{out}");
        assert!(out.contains("answered 200"), "{out}");
    }
    let url = format!("http://{}/health", srv.addr);
    let o = healthcheck(&[], &[("ESG_HEALTHCHECK_URL", &url)]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains(&url),
        "the env URL was used: {:?}",
        text(&o)
    );

    // 200 that is not a probe answer, and a 404: both unhealthy, both say why.
    let o = healthcheck(
        &["--url", &format!("http://{}/openapi.json", srv.addr)],
        &[],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("does not say healthy"), "{err}");
    let o = healthcheck(
        &["--url", &format!("http://{}/companies/nope", srv.addr)],
        &[],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("answered 404"), "{err}");
}

#[test]
fn not_ready_server_fails_the_ready_check_and_exports_esg_ready_0() {
    // A rubric that cannot be loaded: the process serves, /health is 200,
    // /ready is 503 naming the rubric check.
    let srv = start(&["--rubric", "/nonexistent/rubric.json"]);
    let (status, body) = wait_loaded(&srv.addr);
    assert_eq!(status, 503, "{body}");
    assert_eq!(metric(&srv.addr, "esg_ready"), 0.0);

    let o = healthcheck(&["--url", &format!("http://{}/ready", srv.addr)], &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("answered 503"), "{err}");
    assert!(err.contains("rubric"), "the failing check is named: {err}");

    let o = healthcheck(&["--url", &format!("http://{}/health", srv.addr)], &[]);
    assert!(
        o.status.success(),
        "liveness is not readiness: {:?}",
        text(&o)
    );
}

#[test]
fn closed_port_fails_fast_with_a_clear_message() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again here
    let started = Instant::now();
    let o = healthcheck(&["--url", &format!("http://127.0.0.1:{port}/health")], &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(err.contains("cannot connect to 127.0.0.1:"), "{err}");
    assert!(err.contains("unhealthy"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn silent_listener_times_out_and_bad_urls_are_refused() {
    // Accepts the connection, never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let started = Instant::now();
    let o = healthcheck(
        &[
            "--url",
            &format!("http://{addr}/health"),
            "--timeout-ms",
            "400",
        ],
        &[],
    );
    let took = started.elapsed();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no complete answer within 400 ms"), "{err}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    held.join().unwrap();

    let o = healthcheck(&["--url", "https://127.0.0.1/health"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not an http:// URL"), "{:?}", text(&o));
}
