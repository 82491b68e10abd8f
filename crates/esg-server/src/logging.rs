//! Logs: one JSON object per line on stdout (DESIGN §7) or readable text.
//!
//! The JSON layer writes `@timestamp` (UTC, RFC 3339, `Z`), `level`,
//! `logger` (the event's target), `message`, then the fields of every
//! enclosing span (the request span carries `request_id`, `trace_id`,
//! `span_id`, `method`, `path`), then the event's own fields (`status_code`,
//! `duration_ms`, `error_type`, ...). The level comes from `RUST_LOG`
//! (default `info`).

use crate::config::LogFormat;
use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The log field name of a span or event field, or `None` when the field is
/// not logged. Dotted names are span attributes for traces (`http.route`,
/// `otel.name`); two of them are the log's `method` and `path`, so the
/// request span carries each value once.
fn log_name(name: &'static str) -> Option<&'static str> {
    match name {
        "http.request.method" => Some("method"),
        "url.path" => Some("path"),
        n if n.contains('.') => None,
        n => Some(n),
    }
}

/// Names the layer writes itself; fields with these names are not copied.
fn reserved(name: &str) -> bool {
    matches!(name, "@timestamp" | "level" | "logger" | "message")
}

/// Fields recorded on a span, kept in its extensions, rendered once as JSON
/// members (`,"name":value`) so that every event in the span only copies
/// them. In the order first recorded; a later record of the same name
/// replaces the value.
#[derive(Debug, Default)]
struct SpanFields {
    /// `,"a":1,"b":"x"`.
    text: String,
    /// (name, start, end) of each member in `text`.
    members: Vec<(&'static str, usize, usize)>,
}

impl SpanFields {
    /// Sets `name` to the rendered JSON `value`.
    fn set(&mut self, name: &'static str, value: &str) {
        if let Some(i) = self.members.iter().position(|m| m.0 == name) {
            // Rare (a field recorded twice): rebuild the text.
            let old = std::mem::take(&mut self.text);
            let members = std::mem::take(&mut self.members);
            for (j, (n, a, b)) in members.into_iter().enumerate() {
                if j == i {
                    self.push(n, value);
                } else {
                    let start = self.text.len();
                    self.text.push_str(&old[a..b]);
                    self.members.push((n, start, self.text.len()));
                }
            }
        } else {
            self.push(name, value);
        }
    }

    fn push(&mut self, name: &'static str, value: &str) {
        let start = self.text.len();
        self.text.push_str(",\"");
        self.text.push_str(name);
        self.text.push_str("\":");
        self.text.push_str(value);
        self.members.push((name, start, self.text.len()));
    }
}

/// Appends `s` as a JSON string (quoted and escaped).
fn push_str_json(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_escaped(out, s);
    out.push(b'"');
}

/// Appends the JSON escape of `s` (no quotes).
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
}

/// `fmt::Write` into a byte buffer, JSON-escaping as it goes (for `Debug`
/// values, which would otherwise be formatted into a temporary `String`).
struct Escaping<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// Appends `value` rendered as JSON.
fn push_value(out: &mut Vec<u8>, value: Rendered<'_>) {
    match value {
        Rendered::Str(s) => push_str_json(out, s),
        Rendered::I64(v) => {
            let _ = serde_json::to_writer(&mut *out, &v);
        }
        Rendered::U64(v) => {
            let _ = serde_json::to_writer(&mut *out, &v);
        }
        Rendered::F64(v) => {
            // Non-finite numbers are not JSON: null, as serde_json writes.
            let _ = serde_json::to_writer(&mut *out, &v);
        }
        Rendered::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
        Rendered::Debug(v) => {
            out.push(b'"');
            let _ = fmt::write(&mut Escaping(out), format_args!("{v:?}"));
            out.push(b'"');
        }
    }
}

/// A field value as the visitor sees it.
enum Rendered<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Debug(&'a dyn fmt::Debug),
}

/// Renders span fields into [`SpanFields`].
struct SpanVisitor<'a>(&'a mut SpanFields, Vec<u8>);

impl SpanVisitor<'_> {
    fn put(&mut self, field: &Field, value: Rendered<'_>) {
        let Some(name) = log_name(field.name()) else {
            return;
        };
        self.1.clear();
        push_value(&mut self.1, value);
        // The rendering is valid UTF-8: JSON text made from &str and numbers.
        let text = String::from_utf8_lossy(&self.1);
        self.0.set(name, &text);
    }
}

/// Renders an event's fields: the message into `message`, the others as
/// members into `members`, their names into `names`.
struct EventVisitor<'a> {
    message: &'a mut Vec<u8>,
    members: &'a mut Vec<u8>,
    names: &'a mut Vec<&'static str>,
}

impl EventVisitor<'_> {
    fn put(&mut self, field: &Field, value: Rendered<'_>) {
        let name = field.name();
        if name == "message" {
            self.message.clear();
            push_value(self.message, value);
            return;
        }
        let Some(name) = log_name(name) else {
            return;
        };
        if reserved(name) || self.names.contains(&name) {
            return;
        }
        self.names.push(name);
        self.members.extend_from_slice(b",\"");
        self.members.extend_from_slice(name.as_bytes());
        self.members.extend_from_slice(b"\":");
        push_value(self.members, value);
    }
}

/// Implements `Visit` by forwarding every kind of value to `put`.
macro_rules! forward_visit {
    ($t:ty) => {
        impl Visit for $t {
            fn record_str(&mut self, field: &Field, value: &str) {
                self.put(field, Rendered::Str(value));
            }
            fn record_i64(&mut self, field: &Field, value: i64) {
                self.put(field, Rendered::I64(value));
            }
            fn record_u64(&mut self, field: &Field, value: u64) {
                self.put(field, Rendered::U64(value));
            }
            fn record_f64(&mut self, field: &Field, value: f64) {
                self.put(field, Rendered::F64(value));
            }
            fn record_bool(&mut self, field: &Field, value: bool) {
                self.put(field, Rendered::Bool(value));
            }
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                self.put(field, Rendered::Debug(value));
            }
        }
    };
}
forward_visit!(SpanVisitor<'_>);
forward_visit!(EventVisitor<'_>);

/// Per-thread buffers reused by every event (no allocation per line once
/// warm).
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    message: Vec<u8>,
    members: Vec<u8>,
    names: Vec<&'static str>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Adds `trace_id` and `span_id` to the log fields of `span` (a request
/// span), without making them span attributes: the exported span has its
/// ids already. Works with the JSON layer and with the text format; does
/// nothing when `span` is disabled or no registry is installed.
pub fn record_ids(span: &tracing::Span, trace_id: &str, span_id: &str) {
    span.with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return;
        };
        let Some(data) = registry.span(id) else {
            return;
        };
        let mut ext = data.extensions_mut();
        if let Some(fields) = ext.get_mut::<SpanFields>() {
            let mut v = Vec::with_capacity(34);
            push_str_json(&mut v, trace_id);
            fields.set("trace_id", &String::from_utf8_lossy(&v));
            v.clear();
            push_str_json(&mut v, span_id);
            fields.set("span_id", &String::from_utf8_lossy(&v));
        }
        if let Some(text) =
            ext.get_mut::<tracing_subscriber::fmt::FormattedFields<
                tracing_subscriber::fmt::format::DefaultFields,
            >>()
        {
            use std::fmt::Write as _;
            let sep = if text.fields.is_empty() { "" } else { " " };
            let _ = write!(text.fields, "{sep}trace_id={trace_id} span_id={span_id}");
        }
    });
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
        // Sized for a request span (request id, method, path, ids) at once.
        let mut fields = SpanFields {
            text: String::with_capacity(256),
            members: Vec::with_capacity(8),
        };
        attrs.record(&mut SpanVisitor(&mut fields, Vec::with_capacity(64)));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanFields>() {
                values.record(&mut SpanVisitor(fields, Vec::new()));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Reentrancy (an event logged while this thread formats one, e.g.
        // from a panic in a Debug impl) gets fresh buffers.
        let mut fresh = None;
        SCRATCH.with(|cell| {
            let mut guard = cell.try_borrow_mut().ok();
            let scratch = match guard.as_deref_mut() {
                Some(s) => s,
                None => fresh.insert(Scratch::default()),
            };
            self.write_event(event, &ctx, scratch);
        });
    }
}

impl<W> JsonLayer<W>
where
    W: for<'a> MakeWriter<'a> + 'static,
{
    /// Formats one line into `scratch.line` and writes it. Precedence when
    /// names repeat: the event's own fields, then inner spans over outer
    /// ones.
    fn write_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, scratch: &mut Scratch)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Scratch {
            line,
            message,
            members,
            names,
        } = scratch;
        line.clear();
        message.clear();
        members.clear();
        names.clear();
        let meta = event.metadata();
        event.record(&mut EventVisitor {
            message,
            members,
            names,
        });
        line.extend_from_slice(b"{\"@timestamp\":\"");
        push_timestamp(line, std::time::SystemTime::now());
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(meta.level().as_str().as_bytes());
        line.extend_from_slice(b"\",\"logger\":");
        push_str_json(line, meta.target());
        line.extend_from_slice(b",\"message\":");
        if message.is_empty() {
            line.extend_from_slice(b"\"\"");
        } else {
            line.extend_from_slice(message);
        }
        if let Some(scope) = ctx.event_scope(event) {
            // Innermost first, so the first value written for a name wins.
            for span in scope {
                let ext = span.extensions();
                let Some(f) = ext.get::<SpanFields>() else {
                    continue;
                };
                for &(k, a, b) in &f.members {
                    if reserved(k) || names.contains(&k) {
                        continue;
                    }
                    names.push(k);
                    line.extend_from_slice(&f.text.as_bytes()[a..b]);
                }
            }
        }
        line.extend_from_slice(members);
        line.extend_from_slice(b"}\n");
        let _ = self.make_writer.make_writer_for(meta).write_all(line);
        if line.capacity() > 64 << 10 {
            // One huge line should not pin its buffer for the thread's life.
            *line = Vec::new();
        }
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
    // Lines go to stdout through the batching writer (one write(2) per
    // batch, not per line); Telemetry::shutdown writes what is left.
    let out = crate::log_writer::BatchWriter::spawn(std::io::stdout())?;
    let installed = match format {
        LogFormat::Json => registry
            .with(JsonLayer::new(out.clone()).with_filter(env_filter()))
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(out.clone())
                    // Colours only on a terminal: escape codes in a log
                    // file or a collector's pipe are noise.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_target(true)
                    .with_filter(env_filter()),
            )
            .try_init(),
    };
    if let Err(e) = installed {
        out.close();
        return Err(e.into());
    }
    Ok(crate::otel::Telemetry {
        provider,
        logs: Some(out),
    })
}

/// `true` when `e` says a global subscriber was already installed.
pub fn is_already_set(e: &anyhow::Error) -> bool {
    e.downcast_ref::<tracing_subscriber::util::TryInitError>()
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
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

    /// The JSON lines `f` logs, through a [`JsonLayer`] on a fresh registry.
    fn capture(f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let b2 = buf.clone();
        let sub = tracing_subscriber::registry().with(JsonLayer::new(move || b2.clone()));
        tracing::subscriber::with_default(sub, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
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
        let text = capture(|| {
            let span = tracing::info_span!("request", request_id = "r1", method = "GET");
            let _g = span.enter();
            tracing::info!(target: "esg_server::access", status_code = 200u64, "request sent");
        });
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
        let text = capture(|| {
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

    #[test]
    fn strings_escape_exactly_as_serde_json() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "quote \" back \\ slash".into(),
            "new\nline\r\ttab".into(),
            "ctl \u{0} \u{1f} \u{7f} end".into(),
            "unicode é ✓ 😀".into(),
        ];
        cases.push((0u8..=127).map(char::from).collect());
        for s in cases {
            let mut mine = Vec::new();
            push_str_json(&mut mine, &s);
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    #[test]
    fn method_and_path_come_from_the_span_attributes_and_ids_from_record_ids() {
        let text = capture(|| {
            let span = tracing::info_span!(
                "request",
                http.request.method = "GET",
                url.path = "/companies/a\"b",
                http.route = "/companies/{id}",
                request_id = "r1",
            );
            record_ids(
                &span,
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "00f067aa0ba902b7",
            );
            let _g = span.enter();
            tracing::info!(target: "esg_server::access", ratio = 0.5, ok = true, "request {}", "sent");
        });
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/companies/a\"b");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["span_id"], "00f067aa0ba902b7");
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["message"], "request sent");
        assert_eq!(v["ratio"], 0.5);
        assert_eq!(v["ok"], true);
        assert!(v.get("http.route").is_none() && v.get("url.path").is_none());
    }

    #[test]
    fn a_field_recorded_twice_keeps_its_place_and_takes_the_new_value() {
        let text = capture(|| {
            let span = tracing::info_span!("s", a = 1, b = tracing::field::Empty, c = 3);
            span.record("a", 10);
            span.record("b", "x");
            span.record("a", 100);
            let _g = span.enter();
            tracing::info!(n = f64::NAN, "m");
        });
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["a"], 100);
        assert_eq!(v["b"], "x");
        assert_eq!(v["c"], 3);
        assert_eq!(v["n"], Value::Null, "non-finite numbers are null");
        let a = text.find("\"a\":").unwrap();
        let c = text.find("\"c\":").unwrap();
        assert!(a < c, "{text}");
    }
}
