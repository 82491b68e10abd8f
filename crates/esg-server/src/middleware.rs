//! The two middleware layers of the router, as hand-written tower services:
//!
//! - [`ObserveLayer`] (outermost): request id, server span (continuing the
//!   caller's `traceparent`), the received/sent access log lines, HTTP
//!   metrics, and the response headers (ids and
//!   [`security::set_headers`]).
//! - [`GuardLayer`] (inside CORS): per-client rate limit → 429, API key
//!   check → 401/403, then the concurrency limit → 429 and the request
//!   timeout → 408 (probes and `/metrics` are exempt from the last two);
//!   and a panic in the guard or anything below it → 500.
//!
//! They are services rather than `axum::middleware::from_fn` functions
//! because they run on every request, probes included: `from_fn` boxes the
//! middleware's future and a clone of the rest of the stack per request.
//! Here the request goes straight to the inner service, the response
//! futures are plain structs, and [`crate::http`] applies both (and CORS)
//! as one layer, so axum boxes them once per request instead of three
//! times. On `GET /health`, in-process, that took the router from 3.44 to
//! 2.51 µs and from 41 to 25 allocations per request.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::trace_context::{SPAN_ID_HEADER, SpanIds, TRACE_ID_HEADER};
use crate::{metrics, request_id, security};
use axum::extract::{MatchedPath, Request};
use axum::http::header::HeaderName;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

/// Log target of the request events (the `logger` field).
pub const ACCESS_LOG: &str = "esg_server::access";
/// Route label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

const REQUEST_ID: HeaderName = HeaderName::from_static(request_id::HEADER);
const TRACE_ID: HeaderName = HeaderName::from_static(TRACE_ID_HEADER);
const SPAN_ID: HeaderName = HeaderName::from_static(SPAN_ID_HEADER);

/// The 500 answer to a panic in a handler or layer (`payload` is the
/// panic's). The panic hook ([`crate::panics`]) has already logged it
/// with its location when installed; otherwise it is logged here.
pub fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    if !crate::panics::hook_installed() {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!(error_type = "panic", panic = %msg, "handler panicked");
    }
    ApiError::internal().into_response()
}

// ---------------------------------------------------------------- observe

/// The access layer; see the [module docs](self).
#[derive(Clone)]
pub struct ObserveLayer {
    state: AppState,
}

impl ObserveLayer {
    /// The layer, reading the service name and metrics from `state`.
    pub fn new(state: AppState) -> Self {
        ObserveLayer { state }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service made by [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    state: AppState,
}

/// The server span's ids: from OpenTelemetry when its layer is installed
/// (the span continues the caller's `traceparent`), else from
/// [`SpanIds::from_headers`], which continues it the same way.
fn span_ids(span: &tracing::Span, headers: &HeaderMap) -> SpanIds {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if span.is_disabled() {
        // No subscriber wants the span (logs and export off): no OTel span.
        return SpanIds::from_headers(headers);
    }
    let parent = crate::otel::extract(headers);
    let parent_sc = parent.span().span_context().clone();
    if span.set_parent(parent).is_ok() {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            return SpanIds {
                trace_id: sc.trace_id().to_string(),
                span_id: sc.span_id().to_string(),
                parent_span_id: parent_sc
                    .is_valid()
                    .then(|| parent_sc.span_id().to_string()),
                trace_flags: parent_sc
                    .is_valid()
                    .then(|| format!("{:02x}", parent_sc.trace_flags().to_u8())),
            };
        }
    }
    SpanIds::from_headers(headers)
}

/// Decrements the in-flight gauge however the request ends (answered,
/// dropped on disconnect, or abandoned at shutdown).
struct InFlight(Arc<metrics::Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// What the access layer needs once the response is ready.
struct Finish {
    start: Instant,
    method: Method,
    route: Option<MatchedPath>,
    request_id: Option<HeaderValue>,
    trace_id: String,
    span_id: String,
    in_flight: InFlight,
    state: AppState,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let route_str = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let rid = request_id::from_headers(req.headers());
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("{} {route_str}", method.as_str()),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = method.as_str(),
            http.route = route_str,
            url.path = req.uri().path(),
            http.response.status_code = tracing::field::Empty,
            service.name = self.state.service_name(),
            request_id = rid.as_str(),
        );
        let ids = span_ids(&span, req.headers());
        // Log fields only (the log's `method` and `path` are the span's
        // `http.request.method` and `url.path`): not exported as attributes.
        crate::logging::record_ids(&span, &ids.trace_id, &ids.span_id);
        let metrics = self.state.metrics().clone();
        metrics.request_started();
        let request_id_header = HeaderValue::from_str(&rid).ok();
        // The inner layers' synchronous part (the guard's checks, whose
        // error bodies carry the request id) runs in the request's span
        // and request-id scope too.
        let inner = &mut self.inner;
        let fut = request_id::sync_scope(rid.clone(), || {
            span.in_scope(|| {
                tracing::info!(target: ACCESS_LOG, "request received");
                inner.call(req)
            })
        });
        ObserveFuture {
            fut: request_id::scope_future(rid, fut).instrument(span),
            finish: Some(Finish {
                start,
                method,
                route,
                request_id: request_id_header,
                trace_id: ids.trace_id,
                span_id: ids.span_id,
                in_flight: InFlight(metrics),
                state: self.state.clone(),
            }),
        }
    }
}

pin_project! {
    /// The response future of [`Observe`].
    pub struct ObserveFuture<F> {
        #[pin]
        fut: Instrumented<TaskLocalFuture<String, F>>,
        finish: Option<Finish>,
    }
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Ok(res) = ready!(this.fut.as_mut().poll(cx));
        let finish = this
            .finish
            .take()
            .expect("ObserveFuture polled after completion");
        Poll::Ready(Ok(finish.response(res, this.fut.as_ref().get_ref().span())))
    }
}

impl Finish {
    /// Metrics, span status, the sent (or failed) log line and the response
    /// headers.
    fn response(self, mut res: Response, span: &tracing::Span) -> Response {
        let elapsed = self.start.elapsed();
        let status = res.status().as_u16();
        let route = self
            .route
            .as_ref()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        self.in_flight
            .0
            .request_finished(route, self.method.as_str(), status, elapsed);
        // An int attribute, as the HTTP semantic conventions say
        // (tracing-opentelemetry turns u64 into a string, i64 into an int).
        span.record("http.response.status_code", i64::from(status));
        if status >= 500 {
            span.record("otel.status_code", "error");
        }
        let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
        let code = res.extensions().get::<ErrorCode>().map(|c| c.0);
        if code == Some("store_unavailable") {
            // Any request that met an unreachable store takes the replica
            // out of the load balancer now (/ready 503), not at the next
            // health check; the check brings it back.
            let health = self.state.store_health();
            if health.mark_unavailable("a request met an unreachable store") {
                tracing::error!(
                    error_type = "store_unavailable",
                    "the store cannot be reached (seen by a request); /ready answers 503 until it answers again"
                );
                self.state.metrics().set_store_up(false);
            }
        }
        span.in_scope(|| {
            if status >= 500 {
                tracing::error!(
                    target: ACCESS_LOG,
                    status_code = status,
                    duration_ms,
                    error_type = code.unwrap_or("internal_error"),
                    "request failed"
                );
            } else {
                tracing::info!(target: ACCESS_LOG, status_code = status, duration_ms, "request sent");
            }
        });
        let h = res.headers_mut();
        // Room for the ids and the security headers at once (no rehash growth).
        h.reserve(8);
        if let Some(v) = self.request_id {
            h.insert(REQUEST_ID, v);
        }
        if let Ok(v) = HeaderValue::try_from(self.trace_id) {
            h.insert(TRACE_ID, v);
        }
        if let Ok(v) = HeaderValue::try_from(self.span_id) {
            h.insert(SPAN_ID, v);
        }
        security::set_headers(h);
        res
    }
}

// ---------------------------------------------------------------- guard

/// The admission layer; see the [module docs](self).
#[derive(Clone)]
pub struct GuardLayer {
    state: AppState,
}

impl GuardLayer {
    /// The layer, reading the limits, rate limiter and keys from `state`.
    pub fn new(state: AppState) -> Self {
        GuardLayer { state }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service made by [`GuardLayer`].
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = std::panic::catch_unwind(AssertUnwindSafe(|| self.admit(req))).unwrap_or_else(
            |payload| GuardState::Answered {
                res: Some(panic_response(payload)),
            },
        );
        GuardFuture::new(state)
    }
}

impl<S> Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    /// Rate limit, key check, then the concurrency limit and request
    /// timeout, in that order: the refusal, or the route's call.
    fn admit(&mut self, req: Request) -> GuardState<S::Future> {
        let refused = |res| GuardState::Answered { res: Some(res) };
        let st = &self.state;
        if let Some(res) = security::check_rate(st, &req).or_else(|| security::check_key(st, &req))
        {
            return refused(res);
        }
        // Probes and metrics: never limited by concurrency or timeout.
        if security::is_probe_or_metrics(req.uri().path()) {
            let fut = self.inner.call(req);
            return GuardState::Exempt { fut };
        }
        let Ok(permit) = st.concurrency().clone().try_acquire_owned() else {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "the server is serving its limit of {} requests; retry shortly",
                    st.limits().max_concurrent_requests
                ),
            );
            e.retry_after = Some(1);
            return refused(e.into_response());
        };
        let timeout = st.limits().request_timeout;
        let fut = self.inner.call(req);
        GuardState::Limited {
            fut: tokio::time::timeout(timeout, fut),
            timeout,
            _permit: permit,
        }
    }
}

pin_project! {
    /// The response future of [`Guard`].
    pub struct GuardFuture<F> {
        #[pin]
        state: GuardState<F>,
    }
}

pin_project! {
    #[project = GuardProj]
    enum GuardState<F> {
        // Refused before reaching the route (rate limit, key, capacity);
        // taken when polled.
        Answered { res: Option<Response> },
        // A probe or `/metrics`: no concurrency permit, no timeout.
        Exempt { #[pin] fut: F },
        // Holding a concurrency permit (released on drop) until answered,
        // under the timeout.
        Limited {
            #[pin]
            fut: tokio::time::Timeout<F>,
            timeout: Duration,
            _permit: OwnedSemaphorePermit,
        },
    }
}

impl<F> GuardFuture<F> {
    fn new(state: GuardState<F>) -> Self {
        GuardFuture { state }
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let polled =
            std::panic::catch_unwind(AssertUnwindSafe(|| match state.as_mut().project() {
                GuardProj::Answered { res } => {
                    Poll::Ready(res.take().expect("GuardFuture polled after completion"))
                }
                GuardProj::Exempt { fut } => fut.poll(cx).map(|Ok(res)| res),
                GuardProj::Limited { fut, timeout, .. } => fut.poll(cx).map(|r| match r {
                    Ok(Ok(res)) => res,
                    Err(_) => ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        format!("the request took longer than {} ms", timeout.as_millis()),
                    )
                    .into_response(),
                }),
            }));
        match polled {
            Ok(p) => p.map(Ok),
            Err(payload) => {
                // The route's future is unusable after a panic: drop it now.
                state.set(GuardState::Answered { res: None });
                Poll::Ready(Ok(panic_response(payload)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Extraction, ServerConfig};
    use tower::ServiceExt as _;

    fn guard<S>(inner: S) -> Guard<S> {
        let config = ServerConfig::new("/nonexistent", Extraction::InProcess);
        GuardLayer::new(AppState::new(&config)).layer(inner)
    }

    async fn code_of(res: Response) -> (u16, String) {
        let status = res.status().as_u16();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (
            status,
            v["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    }

    fn get(path: &str) -> Request {
        Request::get(path).body(axum::body::Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_panic_in_the_call_or_in_the_future_becomes_a_500() {
        // Panics while making the future (synchronously, in `call`).
        let sync = tower::service_fn(
            |req: Request| -> std::future::Ready<Result<Response, Infallible>> {
                panic!("sync panic on {}", req.uri())
            },
        );
        let res = guard(sync).oneshot(get("/companies")).await.unwrap();
        assert_eq!(code_of(res).await, (500, "internal_error".to_string()));
        // Panics when polled, on a limited route and on an exempt one.
        let polled = tower::service_fn(|req: Request| async move {
            if req.uri().path() != "/ok" {
                panic!("async panic");
            }
            Ok::<_, Infallible>(StatusCode::NO_CONTENT.into_response())
        });
        let mut svc = guard(polled);
        for path in ["/companies", "/health"] {
            let res = svc.ready().await.unwrap().call(get(path)).await.unwrap();
            assert_eq!(
                code_of(res).await,
                (500, "internal_error".to_string()),
                "{path}"
            );
        }
        // The same service goes on serving, and its permit was released.
        for _ in 0..3 {
            let res = svc.ready().await.unwrap().call(get("/ok")).await.unwrap();
            assert_eq!(res.status(), StatusCode::NO_CONTENT);
        }
        assert_eq!(
            svc.state.concurrency().available_permits(),
            svc.state.limits().max_concurrent_requests
        );
    }
}
