//! The web pages analysts use (issue 16), served by `esg serve` under `/ui/`.
//!
//! Server-rendered HTML from askama templates (`crates/esg-server/templates/`,
//! checked at compile time; every value is HTML-escaped, nothing is marked
//! safe), one self-hosted stylesheet and one small plain script
//! (`static/`, compiled into the binary and served with an ETag). The JSON
//! API stays the contract: the pages read the same structs the API
//! serialises ([`esg_score::Scorecard`], [`esg_store::CompanySummary`]) and
//! score through the same cached path as `/score` (`crate::http`).
//!
//! Pages, one module each:
//! * [`screen`] — `/ui/`: one row per company (latest or chosen year),
//!   sortable and filterable, the view in the URL, the same view as CSV or
//!   JSON (`/ui/companies.csv`, `/ui/companies.json`);
//! * `scorecard` — `/ui/companies/{key}`: grade, stage chart, per theme
//!   the ladder, confidence, quotes with links into the stored PDF,
//!   frameworks, caps, next-stage gaps, staleness; years over time;
//! * `compare` — `/ui/compare?c=a&c=b`: 2–4 companies side by side;
//! * `search` — `/ui/search`: runs `/search` and lists passages;
//! * `upload` — `/ui/upload`: a form that posts to `/documents` with the
//!   key the user pastes (the only page that needs JavaScript).
//!
//! The screen needs one scorecard per company; [`rows`] keeps a small
//! summary row per (company, year) keyed by everything the scorecard
//! depends on, so a warm screen of 1,000 companies is a store listing and
//! hash lookups (`bench/ui_screen.sh` measures it).
//!
//! Every page carries its own `Content-Security-Policy` ([`CSP`]): styles
//! and scripts from this origin only, no inline code, so a report that
//! smuggles markup into a quote can neither style nor script the page.
//! Pages answer with `Server-Timing: app;dur=…` (milliseconds in the
//! handler), which the bench reads.

mod assets;
mod compare;
pub mod rows;
mod scorecard;
pub mod screen;
mod search;
mod svg;
mod upload;

use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::time::Instant;

/// The pages' content security policy: everything from this origin only,
/// no inline scripts or styles, forms and fetches to this origin only.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `/ui` routes, merged into the API router (same layers, same key
/// rules: reads are open unless `--require-auth-for-reads`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(screen::page))
        .route("/ui/companies.csv", get(screen::csv))
        .route("/ui/companies.json", get(screen::json))
        .route("/ui/companies/{key}", get(scorecard::page))
        .route("/ui/compare", get(compare::page))
        .route("/ui/search", get(search::page))
        .route("/ui/upload", get(upload::page))
        .route("/ui/static/{name}", get(assets::file))
        .route("/favicon.ico", get(assets::favicon))
        .route("/ui/{*rest}", get(unknown_page))
}

/// The navigation entry a page belongs to (marked `aria-current`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The screen.
    Screen,
    /// Compare.
    Compare,
    /// Search.
    Search,
    /// Upload.
    Upload,
    /// None of them (a scorecard, an error).
    None,
}

impl Nav {
    /// Whether this is `name` (`screen`, `compare`, `search`, `upload`);
    /// used by the base template.
    pub fn is(&self, name: &str) -> bool {
        matches!(
            (self, name),
            (Nav::Screen, "screen")
                | (Nav::Compare, "compare")
                | (Nav::Search, "search")
                | (Nav::Upload, "upload")
        )
    }
}

/// A rendered page with its status, the pages' CSP and `Server-Timing`.
pub(crate) fn html(status: StatusCode, body: String, started: Instant) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert("server-timing", v);
    }
    res
}

/// Renders `t` (a template failure is a 500 error page).
pub(crate) fn render(t: &impl Template, status: StatusCode, started: Instant) -> Response {
    match t.render() {
        Ok(body) => html(status, body, started),
        Err(e) => {
            tracing::error!(error_type = "template_error", error = %e, "a page did not render");
            UiError::from(ApiError::internal()).into_response()
        }
    }
}

/// An error shown as a page (status, a title and the API's message), not
/// as the API's JSON.
#[derive(Debug)]
pub struct UiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The API's stable error code.
    pub code: &'static str,
    /// What went wrong, in words.
    pub message: String,
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError {
            status: e.status,
            code: e.code,
            message: e.message,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    nav: Nav,
    status: u16,
    code: &'static str,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let heading = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            s if s.is_client_error() => "This request cannot be answered",
            _ => "Something went wrong",
        };
        let page = ErrorPage {
            title: heading.to_string(),
            nav: Nav::None,
            status: self.status.as_u16(),
            code: self.code,
            message: self.message,
        };
        let body = page.render().unwrap_or_else(|_| {
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_string()
        });
        html(self.status, body, Instant::now())
    }
}

/// `/`, `/favicon.ico` and everything under `/ui`: the pages and their files.
pub fn is_ui_path(path: &str) -> bool {
    path == "/" || path == "/favicon.ico" || path == "/ui" || path.starts_with("/ui/")
}

/// The pages' stylesheet, script and icon (fixed files, nothing from a report).
pub fn is_ui_asset(path: &str) -> bool {
    path == "/favicon.ico" || path.starts_with("/ui/static/")
}

/// The page a browser gets when the server requires a key for every read
/// (`--require-auth-for-reads`): links cannot carry a Bearer key, so the
/// pages are not usable there, and the page says so instead of showing the
/// API's JSON 401.
pub fn reads_need_a_key() -> Response {
    let mut res = UiError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthorized",
        message: "This server requires an API key for every read (--require-auth-for-reads), \
                  and a browser following a link cannot send one, so the web pages are \
                  available only on servers that leave reads open. The JSON API answers with \
                  Authorization: Bearer <key>."
            .to_string(),
    }
    .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"esg\""),
    );
    res
}

async fn unknown_page(uri: axum::http::Uri) -> UiError {
    UiError {
        status: StatusCode::NOT_FOUND,
        code: "route_not_found",
        message: format!("there is no page at {}", uri.path()),
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986's
/// unreserved characters).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs, values percent-encoded (`""` for none).
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The link that opens a stored source at a page (the evidence issue's
/// `GET /documents/{doc_id}/file`, with the PDF viewer's `#page=`).
pub fn file_link(doc_id: &str, page: u32) -> String {
    format!("/documents/{}/file#page={page}", enc(doc_id))
}

/// `x` with one decimal.
pub fn one_decimal(x: f64) -> String {
    format!("{x:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_values() {
        assert_eq!(enc("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            query_string(&[("q", "x y".into()), ("s", String::new())]),
            "?q=x%20y"
        );
        assert_eq!(query_string(&[("q", String::new())]), "");
        assert_eq!(file_link("ab12", 7), "/documents/ab12/file#page=7");
    }

    #[test]
    fn nav_names() {
        assert!(Nav::Screen.is("screen"));
        assert!(!Nav::Screen.is("search"));
        assert!(!Nav::None.is("screen"));
    }
}
