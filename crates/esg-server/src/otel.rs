//! OpenTelemetry traces: exporter selection from the standard `OTEL_*`
//! variables, the tracer provider, and W3C context extraction.
//!
//! * `OTEL_TRACES_EXPORTER` = `otlp` | `console` | `none`; unset or empty
//!   means `otlp`, as the specification says. Any other value (a list
//!   included) is a startup error naming the accepted values.
//! * `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`:
//!   read by the OTLP exporter itself; unset, the standard local collector
//!   (`http://localhost:4318/v1/traces` for HTTP, `http://localhost:4317`
//!   for gRPC). Nothing listening there costs nothing but dropped batches.
//! * `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`) = `grpc` |
//!   `http/protobuf` (default `http/protobuf`, as the specification says).
//! * `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: read by the SDK
//!   (`parentbased_always_on` by default).
//! * `OTEL_SERVICE_NAME`: the `service.name` resource attribute.
//!
//! Spans are exported in batches from a background thread, so a collector
//! that is down or slow never delays a request; [`Telemetry::shutdown`]
//! flushes them.

use anyhow::{Context as _, bail};
use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::io::Write as _;

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317 by default).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318 by default).
    HttpProtobuf,
}

/// Where spans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// An OTLP collector.
    Otlp(Protocol),
    /// One JSON line per span on stderr (development).
    Console,
    /// Nowhere (ids are still made and propagated).
    None,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The exporter chosen by the `OTEL_*` variables.
///
/// # Errors
/// For an unknown exporter or protocol name.
pub fn exporter_from_env() -> anyhow::Result<Exporter> {
    let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
    {
        None | Some("http/protobuf") => Protocol::HttpProtobuf,
        Some("grpc") => Protocol::Grpc,
        Some(other) => bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported; use grpc or http/protobuf"
        ),
    };
    Ok(
        match var("OTEL_TRACES_EXPORTER")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("otlp") => Exporter::Otlp(protocol),
            Some("none") => Exporter::None,
            Some("console") => Exporter::Console,
            Some(other) => {
                bail!("OTEL_TRACES_EXPORTER={other:?} is not supported; use otlp, console or none")
            }
        },
    )
}

/// Prints finished spans as JSON lines on stderr.
#[derive(Debug, Default)]
pub struct ConsoleExporter;

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut out = Vec::new();
        for s in batch {
            let attrs: serde_json::Map<String, serde_json::Value> = s
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string().into()))
                .collect();
            let line = serde_json::json!({
                "name": s.name,
                "trace_id": s.span_context.trace_id().to_string(),
                "span_id": s.span_context.span_id().to_string(),
                "parent_span_id": s.parent_span_id.to_string(),
                "kind": format!("{:?}", s.span_kind),
                "status": format!("{:?}", s.status),
                "attributes": attrs,
            });
            let _ = serde_json::to_writer(&mut out, &line);
            out.push(b'\n');
        }
        let _ = std::io::stderr().lock().write_all(&out);
        Ok(())
    }
}

/// A tracer provider for `exporter` with `service.name` = `service_name`;
/// `None` for [`Exporter::None`]. Must be called inside a Tokio runtime
/// (the gRPC client needs one).
///
/// # Errors
/// When the OTLP exporter cannot be built (e.g. an invalid endpoint).
pub fn provider(
    exporter: Exporter,
    service_name: &str,
) -> anyhow::Result<Option<SdkTracerProvider>> {
    let resource = Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = match exporter {
        Exporter::None => return Ok(None),
        Exporter::Console => builder.with_batch_exporter(ConsoleExporter),
        Exporter::Otlp(Protocol::Grpc) => builder.with_batch_exporter(
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .context("cannot build the OTLP/gRPC exporter")?,
        ),
        Exporter::Otlp(Protocol::HttpProtobuf) => builder.with_batch_exporter(
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build()
                .context("cannot build the OTLP/HTTP exporter")?,
        ),
    };
    Ok(Some(builder.build()))
}

/// The `tracing` layer feeding `provider`'s spans.
///
/// Spans carry the attributes the server records (the HTTP semantic
/// conventions, `service.name`, `request_id`, and the child spans' own
/// fields) and nothing else: tracing-opentelemetry's default extras are off,
/// since they cost time on every span and every poll and say little here:
/// source location (`code.*`), thread name and id, the `target` module
/// path, busy/idle times (two clock reads per poll), and activating the
/// OpenTelemetry context on every poll (nothing here reads it; parents come
/// from the `tracing` span tree).
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_tracer(provider.tracer("esg-server"))
}

/// Installed telemetry; keep it alive while serving and call
/// [`Telemetry::shutdown`] at the end to flush spans.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// The tracer provider, when spans are exported.
    pub provider: Option<SdkTracerProvider>,
    /// The log writer, closed (its lines written) last.
    pub logs: Option<crate::log_writer::BatchWriter>,
}

impl Telemetry {
    /// Flushes and stops the exporter (bounded by the SDK's timeout), then
    /// writes the buffered log lines.
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "trace exporter shutdown failed");
        }
        if let Some(logs) = &self.logs {
            logs.close();
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's context from `traceparent`/`tracestate` (empty when
/// missing or malformed).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}
