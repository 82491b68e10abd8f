//! The HTTP API of the ESG Scoring API (DESIGN §6–8).
//!
//! One module per concern:
//! * [`http`] — routes, handlers, extractors and the middleware stack;
//! * [`error`] — typed API errors with stable snake_case codes, in one JSON shape;
//! * [`request_id`] — `X-Request-Id` kept when sane, else UUID v4;
//! * [`trace_context`] — `X-Trace-Id`/`X-Span-Id`, and W3C `traceparent`
//!   continuation when no OpenTelemetry layer is installed;
//! * [`logging`] — JSON lines (or text) on stdout;
//! * [`log_writer`] — the batching stdout writer behind them;
//! * [`metrics`] — Prometheus text exposition;
//! * [`otel`] — OpenTelemetry exporter selection (`OTEL_*`), provider, W3C extraction;
//! * [`shutdown`] — SIGTERM/SIGINT;
//! * [`panics`] — the panic hook that logs a panic as one ERROR line;
//! * [`state`] — store, rubric, readiness, limits;
//! * [`config`] — [`ServerConfig`];
//! * [`openapi`] — the `/openapi.json` document;
//! * [`auth`] — the API key file and the check of a Bearer key;
//! * [`security`] — key checks, rate limiting, CORS, security headers;
//! * [`upload`] — uploads streamed to a temporary file under a size limit.
//! * [`ui`] — the analysts' web pages under `/ui/` (server-rendered HTML).
//! * [`embedding`] — the embedder behind `semantic=1`, and the background
//!   queue that embeds uploads after they are stored.
//!
//! The CLI calls [`serve`]; tests call [`run`] on their own listener.

#![warn(missing_docs)]
#![recursion_limit = "512"]

pub mod auth;
pub mod config;
pub mod connections;
pub mod embedding;
pub mod error;
pub mod http;
pub mod log_writer;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod otel;
pub mod panics;
pub mod quote_places;
pub mod request_id;
pub mod score_cache;
pub mod security;
pub mod shutdown;
pub mod source_file;
pub mod state;
pub mod store_health;
pub mod trace_context;
pub mod ui;
pub mod upload;

use anyhow::Context as _;
use std::future::Future;
use std::sync::Arc;

pub use config::{Extraction, Limits, LogFormat, ServerConfig};
pub use error::{ApiError, FieldError};
pub use http::{router, router_with};
pub use state::AppState;

/// Opens the store (migrating it) and loads the rubric, then marks the state
/// ready. Failures are logged and shown by `/ready`.
pub async fn load(state: AppState, config: ServerConfig) {
    security::on_load(&state);
    source_file::on_load(&state);
    let st = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        if let Some(store) = open_store(&config, &st) {
            metrics::set_store_backend(store.backend());
            if let Ok(c) = store.counts() {
                st.metrics().set_on_file(c.companies, c.chunks);
            }
            if store.key_table().is_some() {
                st.security().keys().set_database(Arc::clone(&store));
                security::log_keys(&st);
            }
            st.set_store(Arc::clone(&store), true);
            tracing::info!(store = %config.store.describe(), backend = store.backend(), "store open");
            st.set_semantic(load_embedder(&config.embedder, &store, &st));
            tokio::runtime::Handle::current().spawn(store_health::monitor(st.clone()));
        }
        let rubric = match &config.rubric_path {
            None => Ok(esg_score::Rubric::builtin()),
            Some(p) => esg_score::Rubric::from_path(p).map_err(|e| format!("{}: {e}", p.display())),
        };
        match rubric {
            Ok(r) => {
                // The built-in rubric compiles its patterns on first use;
                // compile them now so that no request pays for it.
                r.compile_all();
                tracing::info!(rubric_version = %r.version, "rubric loaded");
                st.set_rubric(r);
            }
            Err(e) => {
                tracing::error!(error_type = "rubric_error", error = %e, "cannot load the rubric");
                st.set_rubric_error(e);
            }
        }
    })
    .await;
    if result.is_err() {
        state.set_store_error("the loader panicked");
    }
}

/// Pause between attempts to open a store that cannot be reached.
const OPEN_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens (and migrates) the configured store. A database that cannot be
/// reached ([`esg_store::StoreError::Unavailable`]: not up yet, restarting,
/// a network problem) is tried again every [`OPEN_RETRY`] until it answers
/// or shutdown begins, with `/ready` naming the failure meanwhile; any other
/// failure (a bad URL, a schema newer than this program, a corrupt file) is
/// final: logged, shown by `/ready`, `None`.
fn open_store(config: &ServerConfig, st: &AppState) -> Option<Arc<dyn esg_store::Store>> {
    use esg_store::{StoreError, StoreLocation};
    let mut attempt = 0u32;
    loop {
        let opened: Result<Arc<dyn esg_store::Store>, StoreError> = match &config.store {
            StoreLocation::Sqlite { data_dir } => esg_store::SqliteStore::open_in_dir(data_dir)
                .map(|s| Arc::new(s) as Arc<dyn esg_store::Store>),
            StoreLocation::Postgres { url } => {
                // A serving replica holds a read lease: its requests trust
                // the change stamps without a round trip, every writer
                // waiting for it to see their commits (esg_store's
                // pg_lease.rs).
                let opts = esg_store::PgOptions {
                    read_lease: true,
                    ..config.pg.clone()
                };
                esg_store::PgStore::connect(url, &opts).map(|pg| {
                    let pg = Arc::new(pg);
                    st.set_pg(Arc::clone(&pg));
                    pg as Arc<dyn esg_store::Store>
                })
            }
        };
        match opened {
            Ok(store) => return Some(store),
            Err(StoreError::Unavailable(why)) if !st.is_shutting_down() => {
                attempt += 1;
                // Every attempt while it is new, then one line a minute.
                if attempt <= 3 || attempt.is_multiple_of(30) {
                    tracing::error!(error_type = "store_unavailable", error = %why, attempt, store = %config.store.describe(), "cannot reach the store; trying again");
                }
                st.set_store_error(format!("unavailable: {why}"));
                std::thread::sleep(OPEN_RETRY);
            }
            Err(e) => {
                tracing::error!(error_type = "storage_error", error = %e, store = %config.store.describe(), "cannot open the store");
                st.set_store_error(e.to_string());
                return None;
            }
        }
    }
}

/// Loads the configured embedder and starts the background embedding queue.
/// A failure is logged (naming the missing file or the bad setting) and
/// leaves BM25 working: `/ready` shows `embedder: missing: ...` and
/// `semantic=1` answers 503 `embedder_unavailable`.
fn load_embedder(
    config: &config::EmbedderConfig,
    store: &Arc<dyn esg_store::Store>,
    st: &AppState,
) -> embedding::SemanticState {
    use config::EmbedderConfig;
    let loaded: Result<Arc<dyn esg_embed::Embedder>, esg_embed::EmbedError> = match config {
        EmbedderConfig::Off => {
            tracing::info!("no embedder configured: semantic retrieval is off");
            return embedding::SemanticState::off();
        }
        EmbedderConfig::Local(c) => {
            esg_embed::LocalEmbedder::load(c).map(|e| Arc::new(e) as Arc<dyn esg_embed::Embedder>)
        }
        EmbedderConfig::OpenAi(c) => {
            let mut c = c.clone();
            // Vectors already stored for this model fix the dimension the
            // server must answer with.
            if c.expected_dim.is_none() {
                c.expected_dim = store.vector_dim(&c.model).ok().flatten();
            }
            esg_embed::OpenAiEmbedder::new(c).map(|e| Arc::new(e) as Arc<dyn esg_embed::Embedder>)
        }
    };
    match loaded {
        Ok(embedder) => {
            tracing::info!(model = %embedder.model_id(), "embedder loaded");
            let vectors: Arc<dyn esg_store::VectorStore> = store.clone();
            let queue = embedding::EmbedQueue::start(
                vectors,
                Arc::clone(&embedder),
                Arc::clone(st.metrics()),
                EMBED_QUEUE_DOCUMENTS,
            )
            .map_err(|e| tracing::error!(error = %e, "cannot start the embedding worker; uploads are stored without vectors"))
            .ok();
            embedding::SemanticState::ready(embedder, queue)
        }
        Err(e) => {
            tracing::error!(error_type = "embedder_error", code = e.code(), error = %e, "cannot load the embedder; semantic retrieval is unavailable, BM25 works");
            embedding::SemanticState::missing(e.to_string())
        }
    }
}

/// Uploaded documents queued for background embedding; beyond it a
/// document waits for the worker's next scan of the store.
const EMBED_QUEUE_DOCUMENTS: usize = 256;

/// Serves `app` on `listener` until `shutdown` completes; then `/ready`
/// turns 503, no new connections are accepted, and in-flight requests get
/// the drain timeout to finish.
///
/// # Errors
/// When the server fails (not when the drain timeout cuts requests off,
/// which is logged).
pub async fn run(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let begun = Arc::new(tokio::sync::Notify::new());
    let begun2 = begun.clone();
    let st = state.clone();
    let graceful = async move {
        shutdown.await;
        st.begin_shutdown();
        tracing::info!("shutdown begun: draining in-flight requests");
        begun2.notify_one();
    };
    let drain = state.limits().drain_timeout;
    let server =
        connections::serve_connections(listener, app, state.limits().header_read_timeout, graceful);
    tokio::select! {
        r = server => r.context("the HTTP server failed")?,
        () = async { begun.notified().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(drain_timeout_ms = drain.as_millis() as u64, "drain timeout reached; abandoning in-flight requests");
        }
    }
    tracing::info!("server stopped");
    Ok(())
}

/// Builds the state, starts [`load`] in the background and [`run`]s the
/// router on `listener` until `shutdown`.
///
/// # Errors
/// As [`run`].
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_on_with_admin(listener, None, config, shutdown).await
}

/// [`serve_on`], plus the admin listener (probes and `/metrics`, see
/// [`http::admin_router`]) on `admin` when given. The admin listener keeps
/// answering while the main one drains (so `/ready` shows 503 there), and
/// stops with it.
///
/// # Errors
/// As [`run`].
pub async fn serve_on_with_admin(
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&config);
    tokio::spawn(load(state.clone(), config));
    let admin = admin.map(|l| {
        let app = http::admin_router(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let header_timeout = state.limits().header_read_timeout;
        let task = tokio::spawn(connections::serve_connections(
            l,
            app,
            header_timeout,
            async move {
                let _ = stopped.await;
            },
        ));
        (stop, task)
    });
    let result = run(listener, router(state.clone()), state, shutdown).await;
    if let Some((stop, mut task)) = admin {
        let _ = stop.send(());
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
    result
}

/// `esg serve`: installs logging (unless a subscriber is already set), binds
/// `config.listen`, serves until SIGTERM/SIGINT and drains.
///
/// # Errors
/// When the address cannot be bound or the server fails.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let telemetry = match logging::try_init(config.log_format, &config.service_name) {
        Ok(t) => t,
        Err(e) => {
            // A subscriber installed by the caller is fine; bad OTEL_* is not.
            if logging::is_already_set(&e) {
                otel::Telemetry::default()
            } else {
                return Err(e);
            }
        }
    };
    panics::install();
    let result = serve_bound(config).await;
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .ok();
    result
}

async fn serve_bound(config: ServerConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, service = %config.service_name, "listening");
    let admin = match config.security.admin_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--admin-listen)"))?;
            tracing::info!(admin_listen = %l.local_addr()?, "admin listening (probes and /metrics)");
            Some(l)
        }
        None => None,
    };
    serve_on_with_admin(listener, admin, config, shutdown::signal()).await
}
