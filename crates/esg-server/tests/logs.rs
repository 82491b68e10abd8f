//! Log capture: every line is JSON with the required fields, and the ids
//! match the response headers. Its own test binary, because it installs the
//! global subscriber.

mod common;

use common::*;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::test]
async fn every_line_is_json_with_ids_matching_the_headers() {
    let buf = Buf::default();
    let b2 = buf.clone();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(esg_server::logging::JsonLayer::new(move || b2.clone()))
        .init();
    esg_server::panics::install();
    let s = start_with(
        |_| {},
        axum::Router::new().route(
            "/test/panic",
            axum::routing::get(|| async {
                if true {
                    panic!("boom in a handler");
                }
                ""
            }),
        ),
    )
    .await;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = s
        .client
        .get(s.url("/companies?secret=hunter2"))
        .header("x-request-id", "log-test-1")
        .header("traceparent", tp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let span_id = header(&r, "x-span-id").to_string();
    let r = s.get("/missing").await;
    let rid404 = header(&r, "x-request-id").to_string();
    let trace404 = header(&r, "x-trace-id").to_string();
    let r = s
        .client
        .get(s.url("/test/panic"))
        .header("x-request-id", "panic-1")
        .send()
        .await
        .unwrap();
    let panic_trace = header(&r, "x-trace-id").to_string();
    error_body(r, 500, "internal_error").await;
    assert_eq!(s.get("/health").await.status(), 200, "still serving");
    s.stop().await.unwrap();

    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        !text.contains("hunter2"),
        "query strings must not be logged"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    for v in &lines {
        for f in ["@timestamp", "level", "logger", "message"] {
            assert!(v.get(f).is_some(), "missing {f}: {v}");
        }
        assert!(v["@timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let of =
        |rid: &str| -> Vec<&Value> { lines.iter().filter(|v| v["request_id"] == rid).collect() };
    let mine = of("log-test-1");
    let msgs: Vec<&str> = mine
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["request received", "request sent"], "{mine:?}");
    for v in &mine {
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["span_id"], span_id.as_str());
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/companies");
        assert_eq!(v["logger"], "esg_server::access");
    }
    let sent = mine[1];
    assert_eq!(sent["status_code"], 200);
    assert!(sent["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(sent["level"], "INFO");
    let nf = of(&rid404);
    assert_eq!(nf[1]["status_code"], 404);
    assert_eq!(nf[1]["trace_id"], trace404.as_str());

    // A panic: the hook's one ERROR line, in the request's context, then
    // the access log's "request failed"; no other line mentions it.
    let p = of("panic-1");
    let msgs: Vec<(&str, &str)> = p
        .iter()
        .map(|v| (v["level"].as_str().unwrap(), v["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        msgs,
        [
            ("INFO", "request received"),
            ("ERROR", "panicked"),
            ("ERROR", "request failed")
        ],
        "{p:?}"
    );
    let hook = p[1];
    assert_eq!(hook["logger"], "esg_server::panic");
    assert_eq!(hook["error_type"], "panic");
    assert_eq!(hook["panic"], "boom in a handler");
    assert!(
        hook["location"].as_str().unwrap().contains("logs.rs"),
        "{hook}"
    );
    assert_eq!(hook["trace_id"], panic_trace.as_str());
    assert_eq!(hook["path"], "/test/panic");
    assert_eq!(p[2]["status_code"], 500);
    assert_eq!(
        lines.iter().filter(|v| v["error_type"] == "panic").count(),
        1,
        "one panic line"
    );
}
