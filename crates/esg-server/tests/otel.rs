//! OpenTelemetry spans, captured in memory: the server span continues the
//! caller's trace, is named after the route template, carries the HTTP
//! attributes and the ids of the response headers, and has child spans.
//! Its own test binary, because it installs the global subscriber.

mod common;

use common::*;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn server_spans_continue_the_caller_and_carry_http_attributes() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let logs = Buf::default();
    let logs2 = logs.clone();
    tracing_subscriber::registry()
        .with(esg_server::otel::layer(&provider))
        .with(esg_server::logging::JsonLayer::new(move || logs2.clone()))
        .init();

    let s = start().await;
    s.upload_sample().await;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = s
        .client
        .get(s.url("/search?company=Northwind%20Components%20Ltd&q=energy"))
        .header("traceparent", tp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-trace-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    let span_id = header(&r, "x-span-id").to_string();
    assert!(is_lower_hex(&span_id, 16));

    let r = s.get("/companies/acme").await;
    assert_eq!(r.status(), 404);
    let fresh_trace = header(&r, "x-trace-id").to_string();
    let r = s
        .client
        .get(s.url("/live"))
        .header("traceparent", "00-bad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(header(&r, "x-trace-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    s.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Log lines of the request carry the OTel ids of the response headers.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let sent: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["span_id"] == span_id.as_str())
        .collect();
    assert_eq!(sent.len(), 2, "{text}");
    for v in &sent {
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            v.get("http.route").is_none(),
            "span attributes stay out of logs"
        );
    }

    let spans = exporter.get_finished_spans().unwrap();
    let server = spans
        .iter()
        .find(|s| s.span_context.span_id().to_string() == span_id)
        .expect("the server span was exported with the X-Span-Id");
    assert_eq!(server.name, "GET /search");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(
        server.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(attr(server, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attr(server, "http.route").as_deref(), Some("/search"));
    assert_eq!(attr(server, "url.path").as_deref(), Some("/search"));
    assert_eq!(
        attr(server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(server, "service.name").as_deref(), Some("esg-test"));
    // Child spans for store access and retrieval.
    for child in ["store.chunks", "retrieval"] {
        let c = spans
            .iter()
            .find(|s| s.name == child)
            .unwrap_or_else(|| panic!("no {child} span"));
        assert_eq!(c.parent_span_id, server.span_context.span_id(), "{child}");
        assert_eq!(c.span_context.trace_id(), server.span_context.trace_id());
    }
    let nf = spans
        .iter()
        .find(|s| {
            s.span_context.trace_id().to_string() == fresh_trace && s.span_kind == SpanKind::Server
        })
        .expect("404 span");
    // The lookup and the "closest names" listing are store child spans.
    let mut store_children: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == nf.span_context.span_id())
        .map(|s| s.name.as_ref())
        .collect();
    store_children.sort_unstable();
    assert_eq!(store_children, ["store.companies", "store.company"]);
    let lookup = spans.iter().find(|s| s.name == "store.company").unwrap();
    assert_eq!(attr(lookup, "db.system.name").as_deref(), Some("sqlite"));
    assert_eq!(
        attr(lookup, "db.operation.name").as_deref(),
        Some("company")
    );
    assert_eq!(nf.name, "GET /companies/{id}");
    assert_eq!(attr(nf, "url.path").as_deref(), Some("/companies/acme"));
    assert_eq!(
        attr(nf, "http.response.status_code").as_deref(),
        Some("404")
    );
    assert!(!matches!(nf.status, Status::Error { .. }));
}
