//! Logs: one JSON object per line on stdout (DESIGN §7) or readable text.
//!
//! The JSON layer writes `@timestamp` (UTC, RFC 3339, `Z`), `level`,
//! `logger` (the event's target), `message`, then the fields of every
//! enclosing span (the request span carries `request_id`, `trace_id`,
//! `span_id`, `method`, `path`), then the event's own fields (`status_code`,
//! `duration_ms`, `error_type`, ...). The level comes from `RUST_LOG`
//! (default `info`).

use crate::config::LogFormat;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Fields recorded on a span, kept in its extensions.
#[derive(Debug, Default, Clone)]
struct SpanFields(Map<String, Value>);

struct Visitor<'a>(&'a mut Map<String, Value>);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// The JSON lines layer, writing to `W`.
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W> {
    /// A layer writing one JSON object per event to `make_writer`.
    pub fn new(make_writer: W) -> Self {
        JsonLayer { make_writer }
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields::default();
        attrs.record(&mut Visitor(&mut fields.0));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanFields>() {
                values.record(&mut Visitor(&mut fields.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut obj = Map::new();
        obj.insert(
            "@timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        obj.insert("level".into(), meta.level().as_str().into());
        obj.insert("logger".into(), meta.target().into());
        obj.insert("message".into(), "".into());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    // Dotted names (`http.route`, `otel.name`) are span
                    // attributes for traces, not log fields.
                    for (k, v) in f.0.iter().filter(|(k, _)| !k.contains('.')) {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let mut fields = Map::new();
        event.record(&mut Visitor(&mut fields));
        for (k, v) in fields {
            obj.insert(k, v);
        }
        let mut line = serde_json::to_vec(&Value::Object(obj)).unwrap_or_default();
        line.push(b'\n');
        let _ = self.make_writer.make_writer().write_all(&line);
    }
}

/// The level filter: `RUST_LOG`, else `info`.
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber: logs on stdout in `format` (level from
/// `RUST_LOG`), and spans to the exporter chosen by the `OTEL_*` variables
/// ([`crate::otel`]) at INFO whatever `RUST_LOG` says. Call inside a Tokio
/// runtime.
///
/// # Errors
/// When a global subscriber is already installed, or the `OTEL_*`
/// variables are invalid.
pub fn try_init(format: LogFormat, service_name: &str) -> anyhow::Result<crate::otel::Telemetry> {
    use tracing_subscriber::Layer as _;
    let exporter = crate::otel::exporter_from_env()?;
    let provider = crate::otel::provider(exporter, service_name)?;
    let otel = provider
        .as_ref()
        .map(|p| crate::otel::layer(p).with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    let registry = tracing_subscriber::registry().with(otel);
    match format {
        LogFormat::Json => registry
            .with(JsonLayer::new(std::io::stdout).with_filter(env_filter()))
            .try_init()?,
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(true)
                    .with_filter(env_filter()),
            )
            .try_init()?,
    }
    Ok(crate::otel::Telemetry { provider })
}

/// `true` when `e` says a global subscriber was already installed.
pub fn is_already_set(e: &anyhow::Error) -> bool {
    e.downcast_ref::<tracing_subscriber::util::TryInitError>()
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_span_and_event_fields() {
        let buf = Buf::default();
        let b2 = buf.clone();
        let sub = tracing_subscriber::registry().with(JsonLayer::new(move || b2.clone()));
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("request", request_id = "r1", method = "GET");
            let _g = span.enter();
            tracing::info!(target: "esg_server::access", status_code = 200u64, "request sent");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["message"], "request sent");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["logger"], "esg_server::access");
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["status_code"], 200);
        assert!(v["@timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
