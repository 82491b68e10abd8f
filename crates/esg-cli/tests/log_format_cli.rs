//! `esg serve --log-format text` and the `RUST_LOG` level, end to end: the
//! real binary on a loopback port, its whole stdout read after SIGTERM.
//! (The `Served` harness learns the address from the JSON `listening`
//! line, which these configurations do not print, so the port is chosen
//! here.)

mod serve_support;

use serve_support::{Resp, request, serve_command};
use std::io::Read;
use std::time::{Duration, Instant};

/// Runs `esg serve` with `args` and `env` on a free port, calls `f` with its
/// address once `/live` answers, then stops it with SIGTERM and returns its
/// stdout (every line, written by then).
fn serve_and_collect(args: &[&str], env: &[(&str, &str)], f: impl FnOnce(&str)) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let tmp = tempfile::tempdir().expect("tempdir");
    // Exporter off unless `env` says otherwise.
    let env: Vec<(&str, &str)> = std::iter::once(("OTEL_TRACES_EXPORTER", "none"))
        .chain(env.iter().copied())
        .collect();
    let mut cmd = serve_command(&tmp.path().join("data"), &addr, args, &env);
    let mut child = cmd.spawn().expect("start esg serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !request(&addr, "GET", "/live", &[], b"").is_ok_and(|r| r.status == 200) {
        assert!(Instant::now() < deadline, "esg serve never answered /live");
        std::thread::sleep(Duration::from_millis(50));
    }
    f(&addr);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
    out
}

fn get(addr: &str, path: &str, request_id: &str) -> Resp {
    let r = request(addr, "GET", path, &[("X-Request-Id", request_id)], b"").expect("GET");
    assert_eq!(r.status, 200, "{r:?}");
    r
}

#[test]
fn text_logs_are_readable_lines_with_the_request_and_trace_ids() {
    let mut trace_id = String::new();
    let out = serve_and_collect(&["--log-format", "text"], &[], |addr| {
        trace_id = get(addr, "/live", "text-log-1")
            .header("x-trace-id")
            .to_string();
    });
    assert_eq!(trace_id.len(), 32, "{trace_id:?}");
    assert!(
        out.lines().all(|l| !l.trim_start().starts_with('{')),
        "text format printed JSON: {out}"
    );
    assert!(
        !out.contains('\x1b'),
        "colour escape codes in logs written to a pipe: {out:?}"
    );
    let sent = out
        .lines()
        .find(|l| l.contains("request sent") && l.contains("request_id=\"text-log-1\""))
        .unwrap_or_else(|| panic!("no 'request sent' line for text-log-1 in:\n{out}"));
    assert!(sent.contains("INFO"), "{sent}");
    assert!(sent.contains(&format!("trace_id={trace_id}")), "{sent}");
    assert!(sent.contains("status_code=200"), "{sent}");
    assert!(out.contains("server stopped"), "{out}");
}

#[test]
fn rust_log_sets_the_level_of_the_json_logs() {
    let out = serve_and_collect(&[], &[("RUST_LOG", "warn")], |addr| {
        get(addr, "/live", "quiet-1");
        get(addr, "/health", "quiet-2");
    });
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            matches!(v["level"].as_str(), Some("WARN" | "ERROR")),
            "RUST_LOG=warn printed {line}"
        );
    }
    // The same requests at the default level (info) are logged.
    let out = serve_and_collect(&[], &[], |addr| {
        get(addr, "/live", "loud-1");
    });
    assert!(
        out.lines().any(|l| l.contains("\"request_id\":\"loud-1\"")),
        "no line for loud-1 at the default level:\n{out}"
    );
}
