//! Hardening middleware (issue 6): API key checks, per-client rate
//! limiting, CORS, security headers, the admin listener's split, and the
//! metrics that count them.
//!
//! Which requests need a key:
//! * probes (`/health`, `/live`, `/ready`), `/metrics` and `/openapi.json`:
//!   never;
//! * read-only requests (`GET`, `HEAD`, `OPTIONS`, and `POST /score`, which
//!   computes and writes nothing): only with
//!   [`SecurityConfig::require_auth_for_reads`];
//! * everything else (`POST /documents` and any future write or admin
//!   route, known or not): always. No key → 401 `unauthorized` with
//!   `WWW-Authenticate: Bearer`; a wrong or revoked key → 403 `forbidden`.
//!
//! Rate limiting is a token bucket per client IP address (the TCP peer;
//! `X-Forwarded-For` is not trusted; IPv6 by /64) holding one minute's worth of requests;
//! probes and `/metrics` are exempt. It runs before the key check, so
//! guessing keys is rate limited too.

use crate::auth::{KeyStore, Loaded, Verdict};
use crate::config::{SecurityConfig, ServerConfig};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Paths that never need a key and are never rate limited.
pub fn is_probe_or_metrics(path: &str) -> bool {
    matches!(path, "/health" | "/live" | "/ready" | "/metrics")
}

/// Paths that never need a key: probes, `/metrics`, `/openapi.json`.
pub fn is_open_path(path: &str) -> bool {
    is_probe_or_metrics(path) || path == "/openapi.json"
}

/// Read-only requests: `GET`, `HEAD`, `OPTIONS`, and `POST /score`.
/// Anything else is a write and needs a key.
pub fn is_read(method: &Method, path: &str) -> bool {
    method == Method::GET
        || method == Method::HEAD
        || method == Method::OPTIONS
        || (method == Method::POST && path == "/score")
}

/// How a key check ended (the `outcome` label of `esg_auth_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A current key.
    Ok,
    /// No `Authorization: Bearer` credentials.
    Missing,
    /// Credentials that are not a key on file.
    Invalid,
    /// A revoked key.
    Revoked,
    /// The key file exists but cannot be used (unreadable or damaged).
    Error,
}

impl AuthOutcome {
    const ALL: [AuthOutcome; 5] = [
        AuthOutcome::Ok,
        AuthOutcome::Missing,
        AuthOutcome::Invalid,
        AuthOutcome::Revoked,
        AuthOutcome::Error,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Ok => "ok",
            AuthOutcome::Missing => "missing",
            AuthOutcome::Invalid => "invalid",
            AuthOutcome::Revoked => "revoked",
            AuthOutcome::Error => "error",
        }
    }
}

/// A token bucket per client IP address.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Buckets kept before idle full ones are dropped.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    /// `per_minute` requests per minute per address, bursts of up to
    /// `per_minute` at once.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket of an address: IPv4 (IPv4-mapped IPv6 included) by
    /// address, IPv6 by its /64 (one host usually holds a whole /64).
    pub fn client_key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
            v4 => v4,
        }
    }

    /// Takes one token for `ip`'s bucket ([`Self::client_key`]) at `now`;
    /// `Err(seconds)` says when the next token will be there (at least 1).
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let ip = Self::client_key(ip);
        let cap = f64::from(self.per_minute);
        let per_sec = cap / 60.0;
        let mut g = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() >= MAX_BUCKETS {
            g.retain(|_, (tokens, last)| {
                *tokens + now.saturating_duration_since(*last).as_secs_f64() * per_sec < cap
            });
        }
        let (tokens, last) = g.entry(ip).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * per_sec).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - *tokens) / per_sec).ceil() as u64).max(1))
        }
    }
}

/// The server's security settings and counters (part of [`AppState`]).
#[derive(Debug)]
pub struct Security {
    keys: KeyStore,
    require_auth_for_reads: bool,
    rate: Option<RateLimiter>,
    cors_allow_origins: Vec<String>,
    admin_separate: bool,
    tmp_dir: PathBuf,
    auth_counts: [AtomicU64; 5],
    rate_limited: AtomicU64,
}

impl Security {
    /// From the server configuration (reads the key file once).
    pub fn new(config: &ServerConfig) -> Self {
        let SecurityConfig {
            require_auth_for_reads,
            cors_allow_origins,
            rate_limit_per_minute,
            admin_listen,
            ..
        } = &config.security;
        Security {
            keys: if matches!(config.store, esg_store::StoreLocation::Postgres { .. }) {
                KeyStore::in_database()
            } else {
                KeyStore::new(config.api_keys_path())
            },
            require_auth_for_reads: *require_auth_for_reads,
            rate: (*rate_limit_per_minute > 0).then(|| RateLimiter::new(*rate_limit_per_minute)),
            cors_allow_origins: cors_allow_origins.clone(),
            admin_separate: admin_listen.is_some(),
            tmp_dir: config.upload_tmp_dir(),
            auth_counts: Default::default(),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// `true` when `/metrics` is served by the admin listener only.
    pub fn admin_separate(&self) -> bool {
        self.admin_separate
    }

    /// Where uploads are spooled (`<data-dir>/tmp`).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// The key file.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The CORS layer, or `None` when no origin is allowed (CORS off).
    pub fn cors_layer(&self) -> Option<CorsLayer> {
        if self.cors_allow_origins.is_empty() {
            return None;
        }
        let origin = if self.cors_allow_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                self.cors_allow_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        let h = HeaderName::from_static;
        Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::CONTENT_DISPOSITION,
                    h("x-request-id"),
                    h("traceparent"),
                    h("tracestate"),
                ])
                .expose_headers([
                    h("x-request-id"),
                    h("x-trace-id"),
                    h("x-span-id"),
                    header::RETRY_AFTER,
                ])
                .max_age(Duration::from_secs(600)),
        )
    }

    fn count(&self, o: AuthOutcome) {
        let i = AuthOutcome::ALL.iter().position(|x| *x == o).unwrap_or(0);
        self.auth_counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Checks the request's `Authorization: Bearer` key; the key id when it
    /// is current, else the 401/403/500 response. Counted by outcome.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, headers: &HeaderMap) -> Result<String, Response> {
        let keys = match self.keys.current() {
            Loaded::Keys(k) => k,
            Loaded::Unusable(_) => {
                self.count(AuthOutcome::Error);
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "auth_unavailable",
                    "the server's API key file cannot be used; the server log says why",
                )
                .into_response());
            }
            Loaded::Unreachable(why) => {
                self.count(AuthOutcome::Error);
                tracing::error!(error_type = "store_unavailable", error = %why, "cannot check the API key: the database cannot be reached");
                return Err(ApiError::store_unavailable().into_response());
            }
        };
        let none_configured = keys.active() == 0;
        let hint = " No API key is configured on this server: create one with `esg keys add --label NAME` (same data directory or --api-keys-file); it takes effect without a restart.";
        let Some(token) = bearer(headers) else {
            self.count(AuthOutcome::Missing);
            let mut msg =
                "this endpoint needs an API key: send Authorization: Bearer <key>.".to_string();
            if none_configured {
                msg.push_str(hint);
            }
            let mut res =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg).into_response();
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"esg\""),
            );
            return Err(res);
        };
        match keys.verify(token) {
            Verdict::Valid(id) => {
                self.count(AuthOutcome::Ok);
                Ok(id)
            }
            Verdict::Invalid => {
                self.count(AuthOutcome::Invalid);
                let mut msg = "the API key is not valid.".to_string();
                if none_configured {
                    msg.push_str(hint);
                }
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg).into_response())
            }
            Verdict::Revoked(_) => {
                self.count(AuthOutcome::Revoked);
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the API key has been revoked",
                )
                .into_response())
            }
        }
    }

    /// Appends this module's metric families to a Prometheus exposition.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP esg_auth_requests_total API key checks, by outcome (never by key)."
        );
        let _ = writeln!(out, "# TYPE esg_auth_requests_total counter");
        for (o, c) in AuthOutcome::ALL.iter().zip(&self.auth_counts) {
            let _ = writeln!(
                out,
                "esg_auth_requests_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP esg_rate_limited_total Requests answered 429 rate_limited by the per-client rate limit."
        );
        let _ = writeln!(out, "# TYPE esg_rate_limited_total counter");
        let _ = writeln!(
            out,
            "esg_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
    }
}

/// The token of `Authorization: Bearer <token>`; `None` when the header is
/// absent, not Bearer, or empty.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Checks an origin for `--cors-allow-origin`: `*`, or
/// `scheme://host[:port]` without a path.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s == "*" {
        return Ok(s.to_string());
    }
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not an origin like https://app.example.com"))?;
    if !matches!(scheme, "http" | "https") {
        return Err(format!("{s:?}: the scheme must be http or https"));
    }
    if rest.is_empty()
        || rest.contains(['/', '?', '#', '@', ' '])
        || HeaderValue::from_str(s).is_err()
    {
        return Err(format!(
            "{s:?} is not an origin (scheme://host[:port], no path)"
        ));
    }
    Ok(s.to_string())
}

// ---------------------------------------------------------------- middleware

/// Requires a key for writes (and for reads when configured): the
/// 401/403/500 answer to send instead of serving the request, if any.
/// Called by [`crate::middleware::Guard`], after [`check_rate`].
pub fn check_key(st: &AppState, req: &Request) -> Option<Response> {
    let sec = st.security();
    let path = req.uri().path();
    if is_open_path(path) || (is_read(req.method(), path) && !sec.require_auth_for_reads) {
        return None;
    }
    if is_read(req.method(), path) && crate::ui::is_ui_path(path) {
        // A browser following a link cannot send a Bearer key: the pages'
        // own files stay open (nothing report-derived is in them) and a
        // page answers 401 as a page saying why, not as the API's JSON.
        if crate::ui::is_ui_asset(path) {
            return None;
        }
        return sec
            .check(req.headers())
            .err()
            .map(|_| crate::ui::reads_need_a_key());
    }
    sec.check(req.headers()).err()
}

/// Per-client rate limiting: the 429 `rate_limited` answer (with
/// `Retry-After`) to send instead of serving the request, if any.
pub fn check_rate(st: &AppState, req: &Request) -> Option<Response> {
    let sec = st.security();
    let rl = sec.rate.as_ref()?;
    if is_probe_or_metrics(req.uri().path()) {
        return None;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    rl.take(ip, Instant::now()).err().map(|secs| {
        sec.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {} requests per minute from this address; retry in {secs} s",
                rl.per_minute
            ),
        );
        e.retry_after = Some(secs);
        e.into_response()
    })
}

/// Sets the headers every response carries: `X-Content-Type-Options:
/// nosniff`, `Referrer-Policy: no-referrer`; `X-Frame-Options: DENY`, a
/// `Content-Security-Policy` that loads nothing and `Cache-Control:
/// no-store` unless the handler set its own; and removes any `Server` banner. Called by the access layer
/// ([`crate::middleware::Observe`]) on every response.
pub fn set_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A handler may set its own framing and content policy (the PDF of
    // `GET /documents/{doc_id}/file`, see `crate::source_file`).
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.remove(header::SERVER);
}

/// At start: logs the key file's state and removes stale spooled uploads.
pub fn on_load(st: &AppState) {
    let sec = st.security();
    if !sec.keys.is_in_database() {
        log_keys(st);
    }
    match crate::upload::remove_stale(&sec.tmp_dir, crate::upload::STALE_AFTER) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed stale spooled uploads"),
        Err(e) => {
            tracing::warn!(error = %e, dir = %sec.tmp_dir.display(), "cannot clean the upload directory")
        }
    }
}

/// Logs where the keys are and how many are active (at start; for keys in
/// the database, once the store is open).
pub fn log_keys(st: &AppState) {
    let sec = st.security();
    match sec.keys.current() {
        Loaded::Keys(k) if k.active() == 0 => tracing::warn!(
            api_keys = %sec.keys.describe(),
            "no API key is configured: uploads answer 401 until one is made with `esg keys add`"
        ),
        Loaded::Keys(k) => tracing::info!(
            api_keys = %sec.keys.describe(),
            active_keys = k.active(),
            require_auth_for_reads = sec.require_auth_for_reads,
            "API keys loaded"
        ),
        Loaded::Unusable(e) => tracing::error!(
            error_type = "auth_config",
            error = %e,
            "the API key file cannot be used: protected routes answer 500 until it is fixed"
        ),
        Loaded::Unreachable(e) => tracing::error!(
            error_type = "store_unavailable",
            error = %e,
            "the API keys cannot be read from the database: protected routes answer 503 until it answers"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_the_rate_and_says_when() {
        let rl = RateLimiter::new(60);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..60 {
            assert_eq!(rl.take(ip, t0), Ok(()));
        }
        assert_eq!(rl.take(ip, t0), Err(1));
        assert_eq!(rl.take(other, t0), Ok(()), "buckets are per address");
        assert_eq!(rl.take(ip, t0 + Duration::from_millis(1100)), Ok(()));
        let rl = RateLimiter::new(2);
        assert_eq!(rl.take(ip, t0), Ok(()));
        assert_eq!(rl.take(ip, t0), Ok(()));
        assert_eq!(rl.take(ip, t0), Err(30));
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let k = |s: &str| RateLimiter::client_key(s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:bbbb::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.7"), k("192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
        let rl = RateLimiter::new(1);
        let t0 = Instant::now();
        assert!(rl.take("2001:db8::1".parse().unwrap(), t0).is_ok());
        assert!(rl.take("2001:db8::2".parse().unwrap(), t0).is_err());
    }

    #[test]
    fn bearer_and_origin_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer x"));
        assert_eq!(bearer(&h), Some("x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
        assert!(parse_origin("https://app.example.com").is_ok());
        assert!(parse_origin("http://localhost:3000").is_ok());
        assert!(parse_origin("*").is_ok());
        assert!(parse_origin("https://a.com/path").is_err());
        assert!(parse_origin("app.example.com").is_err());
        assert!(parse_origin("ftp://a.com").is_err());
    }

    #[test]
    fn writes_need_keys_reads_do_not() {
        assert!(is_read(&Method::GET, "/documents"));
        assert!(is_read(&Method::POST, "/score"));
        assert!(!is_read(&Method::POST, "/documents"));
        assert!(!is_read(&Method::DELETE, "/documents"));
        assert!(!is_read(&Method::PUT, "/anything"));
        assert!(is_open_path("/metrics") && is_open_path("/ready"));
        assert!(!is_open_path("/documents"));
    }
}
