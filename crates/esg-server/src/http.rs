//! Routes, handlers and the layer stack.
//!
//! Layers, outermost first, applied as one composite layer (see
//! [`crate::middleware`]): `Observe` (request id, trace ids, access log,
//! HTTP metrics, response headers including the security headers:
//! `nosniff`, no `Server` banner), CORS (when origins are configured),
//! `Guard` (per-client rate limit → 429, API key check → 401/403, see
//! [`crate::security`]; then concurrency → 429 and request timeout → 408,
//! probes and `/metrics` exempt; panics → 500).
//! Every error, including unknown routes (404) and wrong methods (405), is
//! an [`ApiError`] in the one JSON shape.

use crate::config::Extraction;
use crate::error::{ApiError, FieldError};
use crate::middleware::{GuardLayer, ObserveLayer, panic_response};
use crate::score_cache::Lookup;
use crate::state::AppState;
use crate::{metrics, openapi, source_file, upload};
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use esg_score::{
    ChunkVectors, CompanyIndex, Fusion, Rubric, ScoreError, ScoreParams, Scorecard, ScoringChunk,
    SemanticInput, tokenize,
};
use esg_store::{CompanySummary, DocumentSummary, Store};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Responses smaller than this are sent uncompressed (compressing them
/// saves less than the `Content-Encoding` costs).
pub const COMPRESS_MIN_BYTES: u64 = 1024;

pub use crate::middleware::{ACCESS_LOG, UNMATCHED_ROUTE};
/// Earliest year accepted by the API.
pub const MIN_YEAR: i64 = 2000;
/// Latest year accepted by the API.
pub const MAX_YEAR: i64 = 2100;
/// Default `k` of `/search` and `/score`.
pub const DEFAULT_K: i64 = 10;
/// Default `alpha` of `/score` and `/search` with `semantic=1`.
pub const DEFAULT_ALPHA: f64 = esg_score::DEFAULT_ALPHA;

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes, which get the same layers (tests use it
/// for handlers that panic or sleep).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let json_limit = state.limits().json_body_bytes;
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/live", get(live))
        .route("/ready", get(ready));
    // With an admin listener, /metrics is served there only.
    if !state.security().admin_separate() {
        app = app.route("/metrics", get(metrics_text));
    }
    app.route("/openapi.json", get(openapi_json))
        .route("/companies", get(companies))
        .route("/companies/{id}", get(company))
        // The upload body is streamed to disk under its own limit
        // (`upload::spool`), not buffered by an extractor.
        .route("/documents", get(documents).post(upload))
        .route("/documents/{doc_id}", get(source_file::document))
        .route("/documents/{doc_id}/file", get(source_file::file))
        .route("/search", get(search))
        .route(
            "/score",
            axum::routing::post(score).layer(DefaultBodyLimit::max(json_limit)),
        )
        .route("/trace", get(trace))
        // The analysts' pages (issue 16): `/` redirects to `/ui/`.
        .merge(crate::ui::routes())
        .merge(extra)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // gzip, br or zstd as the client's Accept-Encoding prefers, for
        // responses of at least 1 KiB, at the fastest level: a /score body
        // (~80 KB) then costs well under a millisecond to compress
        // (bench/score_throughput.sh measures it).
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Fastest)
                .compress_when(
                    SizeAbove::new(COMPRESS_MIN_BYTES)
                        .and(NotForContentType::GRPC)
                        .and(NotForContentType::IMAGES)
                        .and(NotForContentType::SSE)
                        .and(source_file::not_byte_served),
                ),
        )
        // One composite layer, not three: axum boxes every layer of every
        // route separately and clones that box on each request.
        .layer(
            tower::ServiceBuilder::new()
                .layer(ObserveLayer::new(state.clone()))
                .option_layer(state.security().cors_layer())
                // Also catches panics (→ 500).
                .layer(GuardLayer::new(state.clone())),
        )
        .with_state(state)
}

/// The admin listener's router (`--admin-listen`): `/health`, `/live`,
/// `/ready` and `/metrics`, with the same access log, metrics and headers;
/// never a key.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(ObserveLayer::new(state.clone()))
        .with_state(state)
}

// ---------------------------------------------------------------- fallbacks

async fn not_found(uri: Uri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see /openapi.json",
            uri.path()
        ),
    )
}

// ---------------------------------------------------------------- extractors

/// A JSON body whose rejections are [`ApiError`]s: 400 `malformed_json`,
/// 415 `unsupported_media_type`, 413 `payload_too_large`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            e.body_text(),
        ),
        JsonRejection::BytesRejection(e) => bytes_rejection(e),
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
    }
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this endpoint accepts",
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "body_read_failed", e.body_text())
    }
}

/// A raw body whose rejections are [`ApiError`]s (413 `payload_too_large`).
#[derive(Debug)]
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(bytes_rejection)
    }
}

/// Query parameters as pairs; a malformed query string is 400 `malformed_query`.
#[derive(Debug)]
pub struct ApiQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_query", e.body_text())
            })
    }
}

/// Validates query parameters, collecting one [`FieldError`] per bad field.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl Params {
    /// Wraps the pairs of a query string.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params {
            pairs,
            errors: Vec::new(),
        }
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Records a problem with `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// An integer in `lo..=hi`; `default` when absent.
    pub fn int(&mut self, name: &str, lo: i64, hi: i64, default: Option<i64>) -> Option<i64> {
        let Some(raw) = self.get(name).map(str::to_string) else {
            if default.is_none() {
                self.error(name, "is required");
            }
            return default;
        };
        match raw.trim().parse::<i64>() {
            Ok(v) if (lo..=hi).contains(&v) => Some(v),
            Ok(v) => {
                self.error(name, format!("must be between {lo} and {hi}, found {v}"));
                None
            }
            Err(_) => {
                self.error(
                    name,
                    format!("must be an integer between {lo} and {hi}, found {raw:?}"),
                );
                None
            }
        }
    }

    /// An optional integer in `lo..=hi`.
    pub fn opt_int(&mut self, name: &str, lo: i64, hi: i64) -> Option<i64> {
        self.get(name)?;
        self.int(name, lo, hi, None)
    }

    /// A number in `lo..=hi`; `default` when absent.
    pub fn float(&mut self, name: &str, lo: f64, hi: f64, default: f64) -> f64 {
        let Some(raw) = self.get(name).map(str::to_string) else {
            return default;
        };
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => v,
            _ => {
                self.error(
                    name,
                    format!("must be a number between {lo} and {hi}, found {raw:?}"),
                );
                default
            }
        }
    }

    /// The retrieval asked for: `None` for BM25 (`semantic` absent or 0),
    /// else the fusion of `fusion` (`alpha`, the default, or `rrf`) and
    /// `alpha` (0..=1, default [`esg_score::DEFAULT_ALPHA`]). With
    /// `semantic=0`, `alpha` and `fusion` are checked and ignored.
    pub fn retrieval(&mut self) -> Option<Fusion> {
        let semantic = self.flag("semantic");
        let alpha = self
            .get("alpha")
            .is_some()
            .then(|| self.float("alpha", 0.0, 1.0, DEFAULT_ALPHA));
        let fusion = self.get("fusion").map(str::to_string);
        match Fusion::from_params(fusion.as_deref(), alpha) {
            Ok(f) => semantic.then_some(f),
            Err(ScoreError::InvalidParam { field, message }) => {
                if !self.errors.iter().any(|e| e.field == field) {
                    self.error(&field, message);
                }
                None
            }
            Err(e) => {
                self.error("semantic", e.to_string());
                None
            }
        }
    }

    /// `0` or `1`; `false` when absent.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.get(name) {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                let m = format!("must be 0 or 1, found {other:?}");
                self.error(name, m);
                false
            }
        }
    }

    /// A non-blank string; required or not.
    pub fn text(&mut self, name: &str, required: bool) -> Option<String> {
        match self.get(name).map(str::trim) {
            Some(v) if !v.is_empty() => Some(v.to_string()),
            Some(_) => {
                self.error(name, "must not be empty");
                None
            }
            None if required => {
                self.error(name, "is required");
                None
            }
            None => None,
        }
    }

    /// `Ok` when no field was bad, else 422 with every problem.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

// ---------------------------------------------------------------- helpers

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| {
            if e.is_panic() && !crate::panics::hook_installed() {
                tracing::error!(error_type = "panic", "a blocking task panicked");
            }
            ApiError::internal()
        })?
}

/// Runs one store access inside a child span named `name` (`store.chunks`,
/// `store.company`, ...) with the database semantic-convention attributes
/// (`db.system.name` is `sqlite` or `postgresql`), and records its duration
/// and outcome in `esg_store_operation_duration_seconds`.
pub fn store_op<T, E>(name: &'static str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let started = std::time::Instant::now();
    let out = tracing::info_span!(
        "store",
        otel.name = name,
        otel.kind = "internal",
        db.system.name = crate::metrics::store_backend(),
        db.operation.name = name.trim_start_matches("store."),
    )
    .in_scope(f);
    crate::metrics::observe_store_op(name, out.is_ok(), started.elapsed());
    out
}

fn company_not_found(store: &dyn Store, name: &str) -> ApiError {
    let all = store_op("store.companies", || store.companies()).unwrap_or_default();
    let close: Vec<&str> = esg_core::company::closest(name, &all, |c| &c.key, 5)
        .into_iter()
        .map(|c| c.name.as_str())
        .collect();
    let on_file: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    let message = match close.as_slice() {
        [] => format!("no company named {name:?} is on file"),
        [one, ..] => format!("no company named {name:?} is on file; did you mean {one:?}?"),
    };
    ApiError::new(StatusCode::NOT_FOUND, "company_not_found", message).with_details(vec![
        json!({ "close_matches": close, "companies_on_file": on_file }),
    ])
}

pub(crate) fn resolve_company(store: &dyn Store, name: &str) -> Result<CompanySummary, ApiError> {
    match store_op("store.company", || store.company(name))? {
        Some(c) => Ok(c),
        None => Err(company_not_found(store, name)),
    }
}

/// The company named `name` with its documents (one store call, which
/// PostgreSQL answers from listings it proves current: the scoring paths'
/// first step), or 404 `company_not_found`.
pub(crate) fn resolve_company_documents(
    store: &dyn Store,
    name: &str,
) -> Result<(CompanySummary, Vec<DocumentSummary>), ApiError> {
    match store_op("store.company_documents", || store.company_documents(name))? {
        Some(found) => Ok(found),
        None => Err(company_not_found(store, name)),
    }
}

pub(crate) fn resolve_year(company: &CompanySummary, year: Option<i32>) -> Result<i32, ApiError> {
    company.year_on_file(year).ok_or_else(|| {
        let msg = match year {
            Some(y) => format!("{} has no documents for {y}", company.name),
            None => format!("{} has no documents on file", company.name),
        };
        ApiError::new(StatusCode::NOT_FOUND, "no_documents_for_year", msg)
            .with_details(vec![json!({ "years_on_file": company.years })])
    })
}

// ---------------------------------------------------------------- probes

async fn health(State(st): State<AppState>) -> Response {
    // The body changes once a second (its timestamp): made once per second
    // and thread, not per request (probes are hit hard by load balancers).
    thread_local! {
        static BODY: std::cell::RefCell<(i64, String, axum::body::Bytes)> =
            const { std::cell::RefCell::new((i64::MIN, String::new(), axum::body::Bytes::new())) };
    }
    let now = chrono::Utc::now();
    let body = BODY.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.0 != now.timestamp() || c.1 != st.service_name() {
            let v = json!({
                "status": "healthy",
                "service": st.service_name(),
                "version": env!("CARGO_PKG_VERSION"),
                "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            *c = (
                now.timestamp(),
                st.service_name().to_string(),
                axum::body::Bytes::from(v.to_string()),
            );
        }
        c.2.clone()
    });
    let mut res = Response::new(axum::body::Body::from(body));
    let h = res.headers_mut();
    // One allocation for every header the response will carry (its own,
    // content-length, then the ids and security headers of the observe
    // layer) instead of growing the map on the way out.
    h.reserve(RESPONSE_HEADERS);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Headers on a probe's response: content type and length, three ids,
/// five security headers, plus room.
const RESPONSE_HEADERS: usize = 12;

async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

async fn ready(State(st): State<AppState>) -> Response {
    let r = st.readiness();
    st.metrics().set_ready(r.ready);
    if r.ready {
        return Json(json!({ "ready": true, "checks": r.checks })).into_response();
    }
    let failing: Vec<Value> = r
        .checks
        .iter()
        .filter(|(k, v)| v.as_str() != "ok" && **k != "embedder")
        .map(|(k, v)| json!({ "check": k, "message": v }))
        .collect();
    let names: Vec<&str> = r
        .checks
        .iter()
        .filter(|(k, v)| v.as_str() != "ok" && **k != "embedder")
        .map(|(k, _)| *k)
        .collect();
    let mut e =
        ApiError::not_ready(format!("not ready: {}", names.join(", "))).with_details(failing);
    let mut extra = serde_json::Map::new();
    extra.insert("ready".into(), false.into());
    extra.insert("checks".into(), json!(r.checks));
    e.extra = Some(extra);
    e.into_response()
}

async fn metrics_text(State(st): State<AppState>) -> Response {
    st.metrics().set_ready(st.readiness().ready);
    // Cheap (no query): the pool's counters and the lease as of this scrape.
    st.record_pool_metrics();
    let mut text = st.metrics().render();
    st.security().render_metrics(&mut text);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}

// ---------------------------------------------------------------- companies & documents

async fn companies(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store()?;
    let list = blocking(move || Ok(store_op("store.companies", || store.companies())?)).await?;
    Ok(Json(json!({ "companies": list })))
}

async fn company(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    // A path segment that does not decode (e.g. `%de` alone is not UTF-8)
    // is answered in the JSON error shape, not axum's plain-text 400
    // (found by the http_json fuzz target).
    let Path(id) =
        id.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_path", e.body_text()))?;
    let store = st.store()?;
    blocking(move || {
        let c = resolve_company(&*store, &id)?;
        let docs = store_op("store.documents", || store.documents(Some(&c.name)))?;
        Ok(Json(json!({ "company": c, "documents": docs })))
    })
    .await
}

async fn documents(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let mut p = Params::new(q);
    let company = p.text("company", false);
    p.finish()?;
    let store = st.store()?;
    blocking(move || {
        if let Some(name) = &company {
            resolve_company(&*store, name)?;
        }
        let docs = store_op("store.documents", || store.documents(company.as_deref()))?;
        Ok(Json(json!({ "documents": docs })))
    })
    .await
}

/// Content types accepted for an upload (the format is detected from the
/// bytes, never from this header).
pub const UPLOAD_TYPES: &[&str] = &[
    "application/pdf",
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "application/octet-stream",
];

/// The `filename` of `Content-Disposition`, sanitised.
fn disposition_filename(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .find_map(|part| part.trim().strip_prefix("filename="))
        })
        .and_then(|s| upload::sanitize_filename(s.trim_matches('"')))
}

async fn upload(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q);
    let company = p.text("company", true);
    if let Some(c) = &company
        && esg_core::company_key(c).is_empty()
    {
        p.error("company", "must contain at least one letter or digit");
    }
    let year = p.int("year", MIN_YEAR, MAX_YEAR, None);
    let query_filename = p.get("filename").and_then(upload::sanitize_filename);
    let sector = match p.get("sector").map(esg_store::normalize_sector) {
        Some(Ok(s)) => s,
        Some(Err(m)) => {
            p.error("sector", &m);
            None
        }
        None => None,
    };
    p.finish()?;
    let (Some(company), Some(year)) = (company, year) else {
        return Err(ApiError::internal());
    };
    let ctype = upload::media_type(&headers);
    if let Some(ct) = &ctype
        && !UPLOAD_TYPES.contains(&ct.as_str())
        && ct != "multipart/form-data"
    {
        let mut e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {ct} is not accepted; send the report's bytes as one of {}, or as one file part of multipart/form-data",
                UPLOAD_TYPES.join(", ")
            ),
        );
        e.details = vec![json!({ "accepted": UPLOAD_TYPES })];
        return Err(e);
    }
    let store = st.store()?;
    // Streamed to <data-dir>/tmp under the limit; removed when `spooled`
    // is dropped (in the blocking task below, or here on any error or
    // client disconnect).
    let limit = st.limits().upload_body_bytes as u64;
    let idle = st.limits().upload_idle_timeout;
    let spooled = upload::spool(&headers, body, st.security().tmp_dir(), limit, idle).await?;
    let filename = query_filename
        .or_else(|| spooled.filename.clone())
        .or_else(|| disposition_filename(&headers))
        .unwrap_or_else(|| "upload".to_string());
    let extraction = st.extraction().clone();
    let metrics = st.metrics().clone();
    let files = st.files().clone();
    let (outcome, format) = blocking(move || {
        let bytes = std::fs::read(spooled.file.path()).map_err(|e| {
            tracing::error!(error_type = "spool_error", error = %e, "cannot read the spooled upload");
            ApiError::internal()
        })?;
        drop(spooled);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            let e = esg_ingest::IngestError::new(
                esg_ingest::ErrorCode::EmptyFile,
                "the body is empty",
            );
            return Ok((Err(e), "unknown"));
        }
        let format = esg_ingest::detect(&bytes).map_or("unknown", |m| m.short());
        let extract = |b: &[u8]| match &extraction {
            Extraction::Sandbox {
                program,
                args,
                timeout,
                memory_limit,
                threads,
            } => {
                let mut sb = esg_ingest::Sandbox::new(program.clone(), args.clone());
                sb.timeout = *timeout;
                sb.memory_limit = *memory_limit;
                sb.threads = *threads;
                sb.extract(b)
            }
            Extraction::InProcess => esg_ingest::extract_in_process(b),
        };
        let who = esg_ingest::Provenance {
            company: &company,
            year: year as i32,
            filename: &filename,
            sector: sector.as_deref(),
        };
        let span = tracing::info_span!("ingest", format);
        let out = span.in_scope(|| {
            esg_ingest::ingest_keeping_source(
                &*store,
                &files,
                &bytes,
                who,
                extract,
                esg_core::ChunkParams::default(),
            )
        });
        if let Ok(counts) = store.counts() {
            metrics.set_on_file(counts.companies, counts.chunks);
        }
        Ok((out, format))
    })
    .await?;
    match outcome {
        Ok(o) => {
            let (status, label) = if o.is_new() {
                (StatusCode::CREATED, "ingested")
            } else {
                (StatusCode::OK, "already_ingested")
            };
            let s = o.into_summary();
            // Vectors are computed after the answer, in the background.
            if let Some(queue) = st.semantic().and_then(|sem| sem.queue())
                && label == "ingested"
            {
                queue.enqueue(&s.doc_id, u64::from(s.chunks));
            }
            st.metrics().observe_ingest(
                s.media_type.short(),
                label,
                u64::from(s.pages),
                u64::from(s.chunks),
            );
            let file_url = source_file::file_url(&s.doc_id);
            Ok((
                status,
                Json(json!({ "status": label, "document": s, "file_url": file_url })),
            )
                .into_response())
        }
        Err(e) => {
            st.metrics().observe_ingest(format, e.code.as_str(), 0, 0);
            match e.code {
                esg_ingest::ErrorCode::StorageError => {
                    tracing::error!(error_type = "storage_error", error = %e.message, "upload not stored");
                }
                esg_ingest::ErrorCode::StoreUnavailable => {
                    tracing::error!(error_type = "store_unavailable", error = %e.message, "upload not stored: the store cannot be reached");
                    st.store_health().mark_unavailable(e.message.clone());
                }
                _ => {}
            }
            Err(e.into())
        }
    }
}

// ---------------------------------------------------------------- search

pub(crate) async fn search(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let mut p = Params::new(q);
    let company = p.text("company", true);
    let year = p.opt_int("year", MIN_YEAR, MAX_YEAR);
    let query = p.text("q", true);
    let k = p.int("k", 1, 100, Some(DEFAULT_K));
    let fusion = p.retrieval();
    if let Some(q) = &query
        && fusion.is_none()
        && tokenize(q).is_empty()
    {
        p.error(
            "q",
            "has no searchable words (only stop words or punctuation)",
        );
    }
    p.finish()?;
    let (Some(company), Some(query), Some(k)) = (company, query, k) else {
        return Err(ApiError::internal());
    };
    if fusion.is_some() {
        semantic_ready(&st)?;
    }
    let store = st.store()?;
    let rubric = st.rubric()?;
    let st2 = st.clone();
    blocking(move || {
        let (c, docs) = resolve_company_documents(&*store, &company)?;
        let year = resolve_year(&c, year.map(|y| y as i32))?;
        let started = Instant::now();
        let (index, names) = company_index(&st2, &*store, &rubric, &c, docs, year)?;
        let k = k as usize;
        let mut semantic_info = None;
        let hits: Vec<(esg_score::SearchHit, &ScoringChunk)> = match fusion {
            None => tracing::info_span!("retrieval", k).in_scope(|| index.search(&query, k)),
            Some(fusion) => {
                let sem = semantic_ready(&st2)?;
                let vectors = company_vectors(sem, &*store, &c, year, &index)?;
                let qv = sem.query_vector(&query).map_err(embedder_failed)?;
                let span = tracing::info_span!("retrieval", k, semantic = true);
                let _g = span.enter();
                let lexical: Vec<esg_score::SearchHit> = index
                    .search(&query, k)
                    .into_iter()
                    .map(|(h, _)| h)
                    .collect();
                let similar = vectors.similarities(&qv, index.chunk_ids()).map_err(|e| {
                    embedder_failed(esg_embed::EmbedError::Inference(e.to_string()))
                })?;
                let info = esg_score::RetrievalInfo::hybrid(
                    vectors.model_id(),
                    fusion,
                    index.len(),
                    index.chunk_ids().filter(|id| vectors.contains(id)).count(),
                );
                semantic_info = Some(info);
                esg_score::fuse(&lexical, &similar, fusion, k)
                    .into_iter()
                    .filter_map(|h| {
                        let c = index.chunk(&h.chunk_id)?;
                        Some((h, c))
                    })
                    .collect()
            }
        };
        st2.metrics().observe_retrieval("search", started.elapsed());
        let round4 = |x: f64| (x * 1e4).round() / 1e4;
        let passages: Vec<Value> = hits
            .iter()
            .enumerate()
            .map(|(i, (h, c))| {
                let mut v = json!({
                    "rank": i + 1,
                    "score": round4(h.score),
                    "doc_id": c.doc_id,
                    "filename": names.get(&c.doc_id).cloned().unwrap_or_default(),
                    "year": c.year,
                    "page": c.chunk.page,
                    "chunk_id": c.chunk.chunk_id,
                    "char_start": c.chunk.char_start,
                    "char_end": c.chunk.char_end,
                    "text": c.chunk.text,
                });
                if semantic_info.is_some() {
                    v["lexical"] = json!(h.lexical.map(round4));
                    v["semantic"] = json!(h.semantic.map(round4));
                }
                v
            })
            .collect();
        let chunks_searched = index.len();
        let mut out = json!({
            "company": c.name,
            "company_key": c.key,
            "year": year,
            "query": query,
            "k": k,
            "retrieval": if semantic_info.is_some() { "hybrid" } else { "bm25" },
            "chunks_searched": chunks_searched,
            "passages": passages,
        });
        if let Some(info) = semantic_info {
            out["semantic"] = json!(info);
        }
        Ok(Json(out))
    })
    .await
}

// ---------------------------------------------------------------- score & trace

/// A validated scoring request.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRequest {
    /// Company name (any spelling of its key).
    pub company: String,
    /// Year; `None` is the latest on file.
    pub year: Option<i32>,
    /// Theme codes; `None` is all.
    pub themes: Option<Vec<String>>,
    /// Chunks retrieved per theme.
    pub k: usize,
    /// `None`: BM25; else hybrid retrieval fused this way.
    pub fusion: Option<Fusion>,
}

/// Validates the `POST /score` body, one detail per bad field.
pub fn parse_score_body(
    body: &Value,
    p: &mut Params,
) -> Option<(String, Option<i32>, Option<Vec<String>>)> {
    let Some(obj) = body.as_object() else {
        p.error("body", "must be a JSON object");
        return None;
    };
    let company = match obj.get("company") {
        Some(Value::String(s)) if esg_core::company_key(s).is_empty() => {
            p.error("company", "must contain at least one letter or digit");
            None
        }
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            p.error("company", "must be a string");
            None
        }
        None => {
            p.error("company", "is required");
            None
        }
    };
    let year = match obj.get("year") {
        None | Some(Value::Null) => Some(None),
        Some(v) => match v.as_i64() {
            Some(y) if (MIN_YEAR..=MAX_YEAR).contains(&y) => Some(Some(y as i32)),
            _ => {
                p.error(
                    "year",
                    format!("must be an integer between {MIN_YEAR} and {MAX_YEAR}, found {v}"),
                );
                None
            }
        },
    };
    match obj.get("query") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => p.error("query", "must be a string"),
    }
    let themes = match obj.get("themes") {
        None | Some(Value::Null) => Some(None),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) && !a.is_empty() => Some(Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )),
        Some(_) => {
            p.error("themes", "must be a non-empty array of theme codes");
            None
        }
    };
    Some((company?, year?, themes?))
}

/// The company-year's [`CompanyIndex`] (from the cache when it was built
/// from the same documents and rubric, else built from the store and
/// cached), and the file names of the company's documents `docs`.
pub(crate) fn company_index(
    st: &AppState,
    store: &dyn Store,
    rubric: &Rubric,
    c: &CompanySummary,
    docs: Vec<DocumentSummary>,
    year: i32,
) -> Result<(Arc<CompanyIndex>, BTreeMap<String, String>), ApiError> {
    let mut doc_ids: Vec<String> = docs
        .iter()
        .filter(|d| d.year == year)
        .map(|d| d.doc_id.clone())
        .collect();
    doc_ids.sort_unstable();
    let names = docs.into_iter().map(|d| (d.doc_id, d.filename)).collect();
    let cache = st.score_cache();
    let (index, lookup) = cache.get_or_build(&c.key, year, &doc_ids, rubric.sha256(), || {
        let chunks: Vec<ScoringChunk> =
            store_op("store.chunks", || store.chunks(&c.name, Some(year)))?
                .into_iter()
                .map(|c| ScoringChunk::from_stored(c.doc_id, c.year, c.chunk))
                .collect();
        let build = tracing::info_span!("index_build", year, chunks = chunks.len());
        let index = build
            .in_scope(|| CompanyIndex::new(rubric, chunks, year))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no_documents_for_year",
                    format!("{} has no chunks on file for {year}", c.name),
                )
            })?;
        // Matches an earlier process stored: derived data, so a store
        // that cannot give them only costs time.
        if let Ok(stored) = store_op("store.rule_matches", || {
            store.rule_matches(rubric.sha256(), &c.name, year)
        }) {
            index.load_matches(rubric, crate::score_cache::matches_from_store(stored));
        }
        Ok::<_, ApiError>(index)
    })?;
    st.metrics()
        .cache_lookup(lookup == Lookup::Hit, cache.bytes());
    Ok((index, names))
}

/// After a request used `index`: re-weigh its cache entry, and store the
/// matches it computed (for other processes, replicas and restarts) off
/// the request path, best effort.
fn after_scoring(
    st: &AppState,
    store: &Arc<dyn Store>,
    rubric: &Rubric,
    c: &CompanySummary,
    index: &Arc<CompanyIndex>,
) {
    st.score_cache().reweigh(&c.key, index.year(), index);
    st.metrics().set_cache_bytes(st.score_cache().bytes());
    let new = crate::score_cache::new_matches_for_store(index, rubric);
    if new.is_empty() {
        return;
    }
    let store = Arc::clone(store);
    let sha = rubric.sha256().to_string();
    // Its own trace root (linked to the request): it may end after the
    // response, so it must not be a child of the request's span.
    let span = tracing::info_span!(parent: None, "rule_matches_write_back", matches = new.len());
    span.follows_from(tracing::Span::current());
    let handle = tokio::runtime::Handle::try_current();
    let write = move || {
        span.in_scope(|| {
            if let Err(e) = store_op("store.put_rule_matches", || {
                store.put_rule_matches(&sha, &new)
            }) {
                tracing::debug!(error = %e, "criterion matches not stored (derived data)");
            }
        })
    };
    match handle {
        Ok(h) => drop(h.spawn_blocking(write)),
        Err(_) => write(),
    }
}

/// A scoring request resolved to its company-year index, before scoring.
pub(crate) struct Prepared {
    pub(crate) rubric: Arc<Rubric>,
    pub(crate) company: CompanySummary,
    pub(crate) params: ScoreParams,
    pub(crate) index: Arc<CompanyIndex>,
    pub(crate) names: BTreeMap<String, String>,
    started: Instant,
    /// Hybrid retrieval: the company-year's vectors and the themes' query vectors.
    semantic: Option<Hybrid>,
}

/// What hybrid retrieval of one request uses: the company-year's vectors
/// and each selected theme's query vector.
type Hybrid = (Arc<ChunkVectors>, HashMap<String, Vec<f32>>);

/// The embedder state when `semantic=1` can be served, else 503
/// `embedder_unavailable` saying why.
fn semantic_ready(st: &AppState) -> Result<&crate::embedding::SemanticState, ApiError> {
    use crate::embedding::EmbedderStatus;
    let why = match st.semantic() {
        Some(s) if s.embedder().is_some() => return Ok(s),
        None => "the embedder is still loading".to_string(),
        Some(s) => match s.status() {
            EmbedderStatus::Off => "no embedder is configured (start the server with --embedder local and a model folder, or --embedder openai --embedder-url URL)".to_string(),
            EmbedderStatus::Missing(m) => format!("the embedder could not be loaded: {m}"),
            EmbedderStatus::Ready => "the embedder is not loaded".to_string(),
        },
    };
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "embedder_unavailable",
        format!("semantic retrieval is unavailable: {why}; use semantic=0 for BM25 retrieval"),
    ))
}

/// 503 `embedder_unavailable` for an embedder that failed on a query (an
/// embedding server down or slow, ...).
fn embedder_failed(e: esg_embed::EmbedError) -> ApiError {
    tracing::error!(error_type = "embedder_error", code = e.code(), error = %e, "query embedding failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "embedder_unavailable",
        format!(
            "the query could not be embedded ({}): {e}; use semantic=0 for BM25 retrieval",
            e.code()
        ),
    )
}

/// The stored vectors of the indexed company-year.
fn company_vectors(
    sem: &crate::embedding::SemanticState,
    store: &dyn Store,
    c: &CompanySummary,
    year: i32,
    index: &CompanyIndex,
) -> Result<Arc<ChunkVectors>, ApiError> {
    sem.chunk_vectors(store, &c.name, &c.key, year, index.id(), index.chunk_ids())
        .map_err(|m| {
            tracing::error!(error_type = "storage_error", error = %m, "cannot read vectors");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", m)
        })
}

/// Resolves the company and year and finds (or builds) the index.
pub(crate) fn prepare_scoring(
    st: &AppState,
    store: &Arc<dyn Store>,
    req: &ScoreRequest,
) -> Result<Prepared, ApiError> {
    let rubric = st.rubric()?;
    let (c, docs) = resolve_company_documents(&**store, &req.company)?;
    let year = resolve_year(&c, req.year)?;
    use chrono::Datelike;
    let now = chrono::Utc::now();
    let mut params = ScoreParams::new(year, now.year(), now.month());
    params.k = req.k;
    params.themes = req.themes.clone();
    params.fusion = req.fusion;
    // Two phases, each in its own child span of the request: retrieval
    // (the company-year's index, cached or built, and every theme's
    // top-k), then scoring. `esg_score_duration_seconds` covers both.
    // The index's store reads are `store.*` children of the request span,
    // like every store access; building it (on a cache miss) is an
    // `index_build` span.
    let started = Instant::now();
    let (index, names) = company_index(st, &**store, &rubric, &c, docs, year)?;
    let semantic = match req.fusion {
        None => None,
        Some(_) => {
            let sem = semantic_ready(st)?;
            let vectors = company_vectors(sem, &**store, &c, year, &index)?;
            let mut queries = HashMap::new();
            for t in &rubric.themes {
                let selected = params.themes.as_ref().is_none_or(|w| w.contains(&t.code));
                if selected {
                    let v = sem
                        .query_vector(&esg_score::theme_query_text(t))
                        .map_err(embedder_failed)?;
                    queries.insert(t.code.clone(), (*v).clone());
                }
            }
            Some((vectors, queries))
        }
    };
    Ok(Prepared {
        rubric,
        company: c,
        params,
        index,
        names,
        started,
        semantic,
    })
}

/// Retrieval and scoring of a prepared request.
pub(crate) fn run_scoring(
    st: &AppState,
    store: &Arc<dyn Store>,
    p: &Prepared,
) -> Result<Scorecard, ApiError> {
    let (year, k) = (p.params.year, p.params.k);
    let span = tracing::info_span!("retrieval", year, k, semantic = p.semantic.is_some());
    let semantic = p.semantic.as_ref().map(|(vectors, queries)| SemanticInput {
        fusion: p.params.fusion.unwrap_or_default(),
        vectors,
        queries,
    });
    let retrieved = span
        .in_scope(|| p.index.retrieve_with(&p.rubric, &p.params, semantic))
        .map_err(|e| match e {
            ScoreError::InvalidParam { field, message } => {
                ApiError::validation(vec![FieldError::new(field, message)])
            }
            ScoreError::NoChunks { year } => ApiError::new(
                StatusCode::NOT_FOUND,
                "no_documents_for_year",
                format!("{} has no chunks on file for {year}", p.company.name),
            ),
        })?;
    drop(span);
    st.metrics().observe_retrieval("score", p.started.elapsed());
    let mut card = tracing::info_span!("scoring", year, k).in_scope(|| retrieved.score());
    st.quote_places().place(&**store, &mut card);
    st.metrics().observe_score(p.started.elapsed());
    if !card.parity.parity_ok {
        st.metrics().parity_break();
        tracing::warn!(missing = ?card.parity.missing_chunk_ids, "evidence/retrieval parity broken");
    }
    after_scoring(st, store, &p.rubric, &p.company, &p.index);
    Ok(card)
}

async fn score(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q);
    let fusion = p.retrieval();
    let k = p.int("k", 1, 100, Some(DEFAULT_K));
    let summary = match p.get("view") {
        None | Some("full") => false,
        Some("summary") => true,
        Some(other) => {
            p.error(
                "view",
                format!("must be \"full\" or \"summary\", found {other:?}"),
            );
            false
        }
    };
    let parsed = parse_score_body(&body, &mut p);
    p.finish()?;
    let (Some((company, year, themes)), Some(k)) = (parsed, k) else {
        return Err(ApiError::internal());
    };
    if fusion.is_some() {
        semantic_ready(&st)?;
    }
    let req = ScoreRequest {
        company,
        year,
        themes,
        k: k as usize,
        fusion,
    };
    let store = st.store()?;
    let st2 = st.clone();
    blocking(move || {
        let prep = prepare_scoring(&st2, &store, &req)?;
        // The body depends only on the index (the company-year's documents
        // and the rubric) and on the request: kept with the index.
        let key = crate::score_cache::ResponseKey {
            index: prep.index.id(),
            k: prep.params.k,
            themes: prep.params.themes.clone(),
            as_of: (prep.params.as_of_year, prep.params.as_of_month),
            summary,
            retrieval: prep.semantic.as_ref().map(|(vectors, _)| {
                let fusion = prep.params.fusion.unwrap_or_default();
                (
                    vectors.id(),
                    fusion.name(),
                    fusion.alpha().map_or(u64::MAX, f64::to_bits),
                )
            }),
        };
        let cache = st2.score_cache();
        if let Some(body) = cache.response(&key) {
            st2.metrics().response_lookup(true);
            st2.metrics().observe_score(prep.started.elapsed());
            return Ok(json_response(body));
        }
        st2.metrics().response_lookup(false);
        let mut card = run_scoring(&st2, &store, &prep)?;
        let (c, names) = (&prep.company, &prep.names);
        if summary {
            // The card without what only an audit needs: the retrieved
            // lists (per theme and in the parity record) go, the stages,
            // quotes, verdicts and fingerprint stay.
            for t in &mut card.themes {
                t.retrieved = Vec::new();
            }
            card.parity.retrieved_chunk_ids = Vec::new();
            card.parity.evidence_chunk_ids = Vec::new();
        }
        let sources: Vec<Value> = card
            .documents
            .iter()
            .map(|d| json!({ "doc_id": d.doc_id, "filename": names.get(&d.doc_id).cloned().unwrap_or_default() }))
            .collect();
        let mut v = json!({ "company": c.name, "company_key": c.key });
        if let (Some(obj), Ok(Value::Object(mut card))) = (v.as_object_mut(), serde_json::to_value(&card)) {
            if summary {
                card.insert("view".into(), json!("summary"));
                if let Some(Value::Array(themes)) = card.get_mut("themes") {
                    for t in themes.iter_mut().filter_map(Value::as_object_mut) {
                        t.remove("retrieved");
                    }
                }
                if let Some(Value::Object(parity)) = card.get_mut("parity") {
                    parity.remove("retrieved_chunk_ids");
                    parity.remove("evidence_chunk_ids");
                }
            }
            obj.extend(card);
            obj.insert("sources".into(), Value::Array(sources));
        }
        let body = bytes::Bytes::from(serde_json::to_vec(&v).map_err(|_| ApiError::internal())?);
        cache.keep_response(key, body.clone());
        st2.metrics().set_cache_bytes(cache.bytes());
        Ok(json_response(body))
    })
    .await
}

/// A 200 JSON response with a body already serialised.
fn json_response(body: bytes::Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn trace(State(st): State<AppState>, ApiQuery(q): ApiQuery) -> Result<Json<Value>, ApiError> {
    let mut p = Params::new(q);
    let company = p.text("company", true);
    let year = p.opt_int("year", MIN_YEAR, MAX_YEAR);
    let k = p.int("k", 1, 100, Some(DEFAULT_K));
    let fusion = p.retrieval();
    p.finish()?;
    let (Some(company), Some(k)) = (company, k) else {
        return Err(ApiError::internal());
    };
    if fusion.is_some() {
        semantic_ready(&st)?;
    }
    let req = ScoreRequest {
        company,
        year: year.map(|y| y as i32),
        themes: None,
        k: k as usize,
        fusion,
    };
    let store = st.store()?;
    let st2 = st.clone();
    blocking(move || {
        let prep = prepare_scoring(&st2, &store, &req)?;
        let card = run_scoring(&st2, &store, &prep)?;
        let c = &prep.company;
        let mut documents = Vec::new();
        for d in &card.documents {
            if let Some(s) = store_op("store.document", || store.document(&d.doc_id))? {
                documents.push(json!({
                    "doc_id": s.doc_id, "sha256": s.sha256, "filename": s.filename,
                    "pages": s.pages, "ingested_at": s.ingested_at,
                }));
            }
        }
        let quotes: Vec<Value> = card
            .themes
            .iter()
            .flat_map(|t| t.evidence.iter())
            .map(|e| {
                json!({
                    "evidence_id": e.evidence_id, "theme": e.theme, "stage": e.stage,
                    "criterion": e.criterion, "text": e.quote, "page": e.page,
                    "chunk_id": e.chunk_id, "doc_id": e.doc_id, "source_sha256": e.source_sha256,
                    "sha256": e.sha256, "bbox": e.bbox,
                })
            })
            .collect();
        Ok(Json(json!({
            "company": c.name,
            "company_key": c.key,
            "year": card.year,
            "rubric_version": card.rubric_version,
            "fingerprint": card.fingerprint,
            "retrieval": card.retrieval,
            "documents": documents,
            "quotes": quotes,
            "parity": {
                "verdict": if card.parity.parity_ok { "PASS" } else { "FAIL" },
                "retrieved_chunks": card.parity.retrieved_chunk_ids.len(),
                "evidence_chunks": card.parity.evidence_chunk_ids.len(),
                "missing_chunk_ids": card.parity.missing_chunk_ids,
            },
        })))
    })
    .await
}
