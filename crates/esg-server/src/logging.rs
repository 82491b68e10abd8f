//! Logs: one JSON object per line on stdout (DESIGN §7) or readable text.
//!
//! The JSON layer writes `@timestamp` (UTC, RFC 3339, `Z`), `level`,
//! `logger` (the event's target), `message`, then the fields of every
//! enclosing span (the request span carries `request_id`, `trace_id`,
//! `span_id`, `method`, `path`), then the event's own fields (`status_code`,
//! `duration_ms`, `error_type`, ...). The level comes from `RUST_LOG`
//! (default `info`).

use crate::config::LogFormat;
use serde_json::Value;
use std::fmt;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Fields recorded on a span, kept in its extensions: name and value, in
/// the order first recorded (a later record of the same name replaces the
/// value). Dotted names (`http.route`, `otel.name`) are span attributes for
/// traces, not log fields, and are not kept.
#[derive(Debug, Default, Clone)]
struct SpanFields(Vec<(&'static str, Value)>);

/// Collects fields as (name, value) pairs; a repeated name keeps the last.
struct Visitor<'a>(&'a mut Vec<(&'static str, Value)>);

impl Visitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name.contains('.') {
            return;
        }
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

/// Appends `"key":value` (with a leading comma) to `out`.
fn push_member(out: &mut Vec<u8>, key: &str, value: &Value) {
    out.push(b',');
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    let _ = serde_json::to_writer(&mut *out, value);
}

thread_local! {
    /// The last whole second formatted on this thread and its
    /// `YYYY-MM-DDTHH:MM:SS` text: most log lines fall in the same second
    /// as the previous one, so only the milliseconds are formatted.
    static SECOND: std::cell::Cell<(i64, [u8; 19])> = const { std::cell::Cell::new((i64::MIN, [0; 19])) };
}

/// Appends `t` as RFC 3339 UTC with milliseconds (`2026-11-28T21:55:27.123Z`).
fn push_timestamp(out: &mut Vec<u8>, t: std::time::SystemTime) {
    let (secs, millis) = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(e) => {
            // Before 1970: round down to the whole second below.
            let d = e.duration();
            let ns = d.subsec_nanos();
            let secs = -(d.as_secs() as i64) - i64::from(ns > 0);
            (
                secs,
                if ns > 0 {
                    (1_000_000_000 - ns) / 1_000_000
                } else {
                    0
                },
            )
        }
    };
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
        let s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
        if s.len() == 19 {
            text.copy_from_slice(s.as_bytes());
            SECOND.set((secs, text));
        } else {
            // Years outside 0000..=9999: no cache, whatever chrono says.
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(format!(".{millis:03}Z").as_bytes());
            return;
        }
    }
    out.extend_from_slice(&text);
    out.extend_from_slice(&[
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ]);
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
        // Written straight into one buffer (no intermediate JSON object):
        // this runs twice per request. Precedence when names repeat: the
        // event's own fields, then inner spans over outer ones.
        let meta = event.metadata();
        let mut fields = Vec::with_capacity(8);
        event.record(&mut Visitor(&mut fields));
        let mut line = Vec::with_capacity(512);
        line.extend_from_slice(b"{\"@timestamp\":\"");
        push_timestamp(&mut line, std::time::SystemTime::now());
        line.push(b'"');
        push_member(&mut line, "level", &Value::from(meta.level().as_str()));
        push_member(&mut line, "logger", &Value::from(meta.target()));
        let message = fields
            .iter()
            .position(|(k, _)| *k == "message")
            .map_or_else(|| Value::from(""), |i| fields.swap_remove(i).1);
        push_member(&mut line, "message", &message);
        let mut written: Vec<&'static str> = Vec::with_capacity(16);
        if let Some(scope) = ctx.event_scope(event) {
            // Innermost first, so the first value written for a name wins.
            for span in scope {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    for &(k, ref v) in &f.0 {
                        if matches!(k, "@timestamp" | "level" | "logger" | "message")
                            || written.contains(&k)
                            || fields.iter().any(|(e, _)| *e == k)
                        {
                            continue;
                        }
                        written.push(k);
                        push_member(&mut line, k, v);
                    }
                }
            }
        }
        for (k, v) in &fields {
            if !matches!(*k, "@timestamp" | "level" | "logger") {
                push_member(&mut line, k, v);
            }
        }
        line.extend_from_slice(b"}\n");
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
    // Spans at INFO and above; events only at WARN and above (a warning or
    // an error on a span is worth a span event; the per-request INFO access
    // events are log lines, and as span events they would double the
    // export work of every request).
    let otel = provider.as_ref().map(|p| {
        crate::otel::layer(p).with_filter(
            tracing_subscriber::filter::filter_fn(|meta| {
                if meta.is_event() {
                    *meta.level() <= tracing::Level::WARN
                } else {
                    *meta.level() <= tracing::Level::INFO
                }
            })
            .with_max_level_hint(tracing_subscriber::filter::LevelFilter::INFO),
        )
    });
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
    fn timestamps_match_chrono_rfc3339_millis() {
        use std::time::{Duration, UNIX_EPOCH};
        let now = std::time::SystemTime::now();
        let mut cases = vec![
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_millis(999),
            UNIX_EPOCH + Duration::from_millis(1_000),
            UNIX_EPOCH + Duration::new(951_782_400, 5_000_000), // 2000-02-29
            UNIX_EPOCH + Duration::new(4_102_444_799, 999_999_999), // 2099-12-31T23:59:59.999
            UNIX_EPOCH - Duration::from_millis(1),
            now,
        ];
        // The same second twice (cached), then the next one.
        cases.push(now + Duration::from_millis(1));
        cases.push(now + Duration::from_secs(1));
        for t in cases {
            let mut out = Vec::new();
            push_timestamp(&mut out, t);
            let want = chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{t:?}");
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

    #[test]
    fn event_fields_win_over_inner_spans_over_outer_spans_and_keys_are_unique() {
        let buf = Buf::default();
        let b2 = buf.clone();
        let sub = tracing_subscriber::registry().with(JsonLayer::new(move || b2.clone()));
        tracing::subscriber::with_default(sub, || {
            let outer = tracing::info_span!("request", a = "outer", b = "outer", http.route = "/x");
            let _o = outer.enter();
            let inner = tracing::info_span!("store", b = "inner", c = "inner");
            let _i = inner.enter();
            tracing::warn!(
                c = "event",
                quote = "say \"hi\"\n",
                level = "sneaky",
                "done"
            );
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["a"], "outer");
        assert_eq!(v["b"], "inner");
        assert_eq!(v["c"], "event");
        assert_eq!(v["quote"], "say \"hi\"\n");
        assert_eq!(v["level"], "WARN", "reserved names are not overwritten");
        assert_eq!(v["message"], "done");
        assert!(v.get("http.route").is_none());
        // serde_json keeps the last of duplicate keys: count them in the text.
        for key in ["\"b\":", "\"c\":", "\"level\":", "\"message\":"] {
            assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
        }
    }
}
