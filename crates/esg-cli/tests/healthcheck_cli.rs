//! `esg healthcheck` against the real `esg serve` on an ephemeral loopback
//! port (healthy, ready, not ready, not a probe), a closed port and a
//! listener that never answers; plus the `esg_ready` gauge it mirrors.

mod serve_support;
mod support;

use serve_support::Served;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Starts `esg serve --listen 127.0.0.1:0 extra...` without waiting for
/// `/ready` (some tests want a server that never gets ready).
fn start(extra: &[&str]) -> Served {
    Served::spawn_with(|_| {}, extra, &[("OTEL_TRACES_EXPORTER", "none")])
}

/// GET on a new connection; returns (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let r = serve_support::request(addr, "GET", path, &[], b"").expect("GET");
    (r.status, r.body)
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
