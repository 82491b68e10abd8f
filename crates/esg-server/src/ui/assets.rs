//! The stylesheet and the script, compiled into the binary and served from
//! `/ui/static/` with a content ETag (`If-None-Match` → 304) and a short
//! cache lifetime, so a new binary's assets are picked up within minutes
//! without renaming them.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// (name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/ui.css"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/ui.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
];

fn etags() -> &'static Vec<String> {
    static E: OnceLock<Vec<String>> = OnceLock::new();
    E.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, b)| format!("\"{}\"", &esg_core::sha256_hex(b)[..16]))
            .collect()
    })
}

/// `GET /favicon.ico`: the icon browsers ask for on their own (the PDF
/// viewer of an evidence link does), so that it is not a 404.
pub async fn favicon(headers: HeaderMap) -> Response {
    file(Path("favicon.svg".to_string()), headers).await
}

/// `GET /ui/static/{name}`.
pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return super::UiError {
            status: StatusCode::NOT_FOUND,
            code: "route_not_found",
            message: format!("there is no file /ui/static/{name}"),
        }
        .into_response();
    };
    let (_, ctype, bytes) = FILES[i];
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}
