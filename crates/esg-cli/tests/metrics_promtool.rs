//! `/metrics` of the real `esg serve`, after real traffic (successes, a
//! validation error, malformed JSON, unknown routes, a wrong method, a
//! scoring), passes `promtool check metrics` with no error and no lint
//! line. The server runs with the default OpenTelemetry settings (no
//! `OTEL_*` variable: OTLP to the standard local endpoint, where nothing
//! needs to listen).

mod serve_support;
mod support;

use serve_support::*;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `promtool check metrics` on `text`; returns (exit code, stdout+stderr).
fn promtool_check(text: &str) -> (Option<i32>, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), msg)
}

fn sample_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn live_metrics_pass_promtool_check_metrics() {
    if !support::require("promtool", "prometheus") {
        return;
    }
    // The checker itself: a lint problem makes it fail, so a pass below means something.
    let (code, msg) =
        promtool_check("# HELP x_requests R.\n# TYPE x_requests counter\nx_requests 1\n");
    assert_ne!(
        code,
        Some(0),
        "promtool accepted a counter without _total: {msg}"
    );

    let mut s = Served::start_ingested(&[], &[]);
    let json = [("Content-Type", "application/json")];
    let company = br#"{"company":"Northwind Components Ltd"}"#;
    assert_eq!(s.get("/health").status, 200);
    assert_eq!(s.get("/live").status, 200);
    assert_eq!(s.get("/companies").status, 200);
    assert_eq!(s.get("/companies/northwind-components-ltd").status, 200);
    assert_eq!(s.get("/companies/nobody").status, 404);
    assert_eq!(
        s.get(&format!(
            "/search?company={COMPANY_QS}&q=energy%20efficiency"
        ))
        .status,
        200
    );
    assert_eq!(
        s.get(&format!("/search?company={COMPANY_QS}&k=0")).status,
        422
    );
    assert_eq!(s.send("POST", "/score", &json, company).status, 200);
    assert_eq!(s.send("POST", "/score", &json, b"{not json").status, 400);
    assert_eq!(s.get(&format!("/trace?company={COMPANY_QS}")).status, 200);
    assert_eq!(s.send("POST", "/health", &[], b"").status, 405);
    assert_eq!(s.get("/no/such/route").status, 404);

    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        r.header("content-type")
    );
    let (code, msg) = promtool_check(&r.body);
    assert_eq!(
        code,
        Some(0),
        "promtool check metrics failed:\n{msg}\n{}",
        r.body
    );
    assert!(msg.trim().is_empty(), "promtool reported:\n{msg}");

    // The traffic above is in the scrape, by route template.
    let text = &r.body;
    for (series, want) in [
        (
            r#"esg_http_requests_total{route="/score",method="POST",status="200"}"#,
            1.0,
        ),
        (
            r#"esg_http_requests_total{route="/score",method="POST",status="400"}"#,
            1.0,
        ),
        (
            r#"esg_http_requests_total{route="/companies/{id}",method="GET",status="404"}"#,
            1.0,
        ),
        (
            r#"esg_http_requests_total{route="/companies/{id}",method="GET",status="200"}"#,
            1.0,
        ),
        (
            r#"esg_http_requests_total{route="unmatched",method="GET",status="404"}"#,
            1.0,
        ),
        (
            r#"esg_http_requests_total{route="/search",method="GET",status="422"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample_value(text, series), Some(want), "{series}\n{text}");
    }
    assert!(
        sample_value(text, "esg_score_duration_seconds_count").unwrap() >= 2.0,
        "score and trace"
    );
    assert!(
        !text.contains("route=\"/companies/nobody\""),
        "raw paths never become labels"
    );

    s.sigterm();
    let (status, took) = s
        .wait_exit(Duration::from_secs(30))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(15),
        "shutdown with an absent collector took {took:?}"
    );
}
