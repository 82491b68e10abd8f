//! An OTLP collector that is not there never slows or fails requests, and
//! shutting the exporter down is bounded.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::test]
async fn unreachable_collector_does_not_slow_requests() {
    // SAFETY: set before any thread reads the environment in this binary.
    // OTEL_TRACES_EXPORTER and the protocol are left unset: the defaults
    // (otlp over http/protobuf) must not slow requests either.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
        std::env::remove_var("OTEL_TRACES_EXPORTER");
        std::env::remove_var("OTEL_EXPORTER_OTLP_PROTOCOL");
        std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    }
    let exporter = esg_server::otel::exporter_from_env().unwrap();
    assert_eq!(
        exporter,
        esg_server::otel::Exporter::Otlp(esg_server::otel::Protocol::HttpProtobuf)
    );
    let provider = esg_server::otel::provider(exporter, "esg-test")
        .unwrap()
        .unwrap();
    tracing_subscriber::registry()
        .with(esg_server::otel::layer(&provider))
        .init();
    let s = start().await;
    let started = Instant::now();
    for _ in 0..50 {
        let r = s.get("/health").await;
        assert_eq!(r.status(), 200);
        assert!(is_lower_hex(header(&r, "x-trace-id"), 32));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    s.stop().await.unwrap();
    let started = Instant::now();
    let telemetry = esg_server::otel::Telemetry {
        provider: Some(provider),
        logs: None,
    };
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
}
