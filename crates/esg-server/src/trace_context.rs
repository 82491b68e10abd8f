//! W3C Trace Context for the server span: an incoming `traceparent` is
//! continued (same trace id, the caller's span id as parent); a missing or
//! malformed header starts a new trace. Every response carries the server
//! span's ids as `X-Trace-Id` (32 lowercase hex) and `X-Span-Id` (16
//! lowercase hex).
//!
//! When the OpenTelemetry layer is installed the ids come from the OTel
//! span (see [`crate::otel`]); this module is the fallback that keeps the
//! same contract when it is not (no global subscriber, or the request span
//! disabled by the level filter).

use axum::http::HeaderMap;

/// Response header carrying the trace id.
pub const TRACE_ID_HEADER: &str = "x-trace-id";
/// Response header carrying the server span id.
pub const SPAN_ID_HEADER: &str = "x-span-id";

/// The ids of one server span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanIds {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub span_id: String,
    /// The caller's span id when the trace was continued.
    pub parent_span_id: Option<String>,
    /// The caller's trace flags (`01` sampled) when continued.
    pub trace_flags: Option<String>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a `traceparent` value (version `00`; future versions are read by
/// their first four fields). Returns `(trace_id, parent_span_id, flags)`.
pub fn parse_traceparent(value: &str) -> Option<(String, String, String)> {
    let value = value.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    if !is_hex(version, 2) || version == "ff" {
        return None;
    }
    if version == "00" && rest.is_some() {
        return None;
    }
    if !is_hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if !is_hex(span_id, 16) || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if !is_hex(flags, 2) {
        return None;
    }
    Some((trace_id.into(), span_id.into(), flags.into()))
}

fn random_nonzero_u64() -> u64 {
    loop {
        let v = uuid::Uuid::new_v4().as_u64_pair().1;
        if v != 0 {
            return v;
        }
    }
}

/// The low `digits` (at most 32) hex digits of `v`, lowercase and
/// zero-padded (what `format!("{v:0digits$x}")` gives, without the
/// formatting machinery: this runs on every request).
fn lower_hex(v: u128, digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    for (i, b) in buf[..digits].iter_mut().enumerate() {
        *b = HEX[((v >> (4 * (digits - 1 - i))) & 0xf) as usize];
    }
    String::from_utf8(buf[..digits].to_vec()).expect("hex digits are ASCII")
}

impl SpanIds {
    /// Continues the caller's trace from `traceparent`, or starts a new one.
    pub fn from_headers(headers: &HeaderMap) -> SpanIds {
        let span_id = lower_hex(u128::from(random_nonzero_u64()), 16);
        let incoming = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        match incoming {
            Some((trace_id, parent, flags)) => SpanIds {
                trace_id,
                span_id,
                parent_span_id: Some(parent),
                trace_flags: Some(flags),
            },
            None => SpanIds {
                trace_id: lower_hex(uuid::Uuid::new_v4().as_u128(), 32),
                span_id,
                parent_span_id: None,
                trace_flags: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_hex_is_format_x_zero_padded() {
        for v in [
            0u128,
            1,
            0xabc,
            u128::from(u64::MAX),
            u128::MAX,
            0x0123_4567_89ab_cdef << 17,
        ] {
            assert_eq!(lower_hex(v, 32), format!("{v:032x}"));
            assert_eq!(
                lower_hex(v & u128::from(u64::MAX), 16),
                format!("{:016x}", v & u128::from(u64::MAX))
            );
        }
        let ids = SpanIds::from_headers(&HeaderMap::new());
        assert!(
            is_hex(&ids.trace_id, 32) && is_hex(&ids.span_id, 16),
            "{ids:?}"
        );
        assert_ne!(
            SpanIds::from_headers(&HeaderMap::new()).trace_id,
            ids.trace_id
        );
    }

    #[test]
    fn traceparent_is_continued_or_replaced() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert("traceparent", tp.parse().unwrap());
        let ids = SpanIds::from_headers(&h);
        assert_eq!(ids.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ids.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(ids.span_id, "00f067aa0ba902b7");
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        h.insert("traceparent", "garbage".parse().unwrap());
        let ids = SpanIds::from_headers(&h);
        assert!(is_hex(&ids.trace_id, 32) && is_hex(&ids.span_id, 16));
        assert_eq!(ids.parent_span_id, None);
    }
}
