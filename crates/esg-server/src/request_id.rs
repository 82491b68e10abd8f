//! Request ids: `X-Request-Id` from the client is kept when it is sane
//! (1..=128 visible ASCII characters), otherwise a UUID v4 is made. The id
//! of the request being served is available to error rendering through a
//! task-local.

use axum::http::HeaderMap;

/// The request id header.
pub const HEADER: &str = "x-request-id";
/// Longest client-supplied request id kept.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: String;
}

/// `true` when `id` is 1..=128 visible ASCII characters (`!`..=`~`).
pub fn is_sane(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The client's sane `X-Request-Id`, or a new UUID v4.
pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_sane(s))
        .map_or_else(new_id, str::to_string)
}

/// A new UUID v4, hyphenated, lowercase.
fn new_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// `fut` with `id` as the current request id while it is polled.
pub fn scope_future<F: std::future::Future>(
    id: String,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<String, F> {
    CURRENT.scope(id, fut)
}

/// Runs `f` with `id` as the current request id.
pub fn sync_scope<R>(id: String, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(id, f)
}

/// The id of the request being served by this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_others_replaced() {
        assert!(is_sane("abc-123_XYZ.~"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane("tab\t"));
        assert!(!is_sane("é"));
        assert!(is_sane(&"a".repeat(128)));
        assert!(!is_sane(&"a".repeat(129)));
        let mut h = HeaderMap::new();
        h.insert(HEADER, "client-id-1".parse().unwrap());
        assert_eq!(from_headers(&h), "client-id-1");
        h.insert(HEADER, "bad id".parse().unwrap());
        let made = from_headers(&h);
        assert_eq!(uuid::Uuid::parse_str(&made).unwrap().get_version_num(), 4);
        assert_eq!(made.len(), 36);
        assert_eq!(made, made.to_lowercase());
        assert_ne!(from_headers(&h), made);
    }
}
