//! Shared application state: the store and rubric (loaded after the
//! listener is up, so probes answer at once), readiness, metrics, limits.

use crate::config::{Extraction, Limits, ServerConfig};
use crate::error::ApiError;
use crate::metrics::Metrics;
use esg_score::Rubric;
use esg_store::Store;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Semaphore;

/// The state every handler sees. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: OnceLock<Arc<dyn Store>>,
    store_error: Mutex<Option<String>>,
    migrated: AtomicBool,
    rubric: OnceLock<Arc<Rubric>>,
    rubric_error: Mutex<Option<String>>,
    shutting_down: AtomicBool,
    metrics: Arc<Metrics>,
    extraction: Extraction,
    limits: Limits,
    service_name: String,
    concurrency: Arc<Semaphore>,
    security: crate::security::Security,
    score_cache: crate::score_cache::ScoreCache,
    quote_places: crate::quote_places::QuotePlaces,
    semantic: OnceLock<crate::embedding::SemanticState>,
    files: esg_store::FileStore,
    store_health: crate::store_health::StoreHealth,
    /// The PostgreSQL store, for its pool metrics (unset on SQLite).
    pg: OnceLock<Arc<esg_store::PgStore>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("service_name", &self.0.service_name)
            .field("limits", &self.0.limits)
            .finish_non_exhaustive()
    }
}

/// The outcome of the readiness checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `true` when every check passes.
    pub ready: bool,
    /// Check name → `ok` or what is wrong.
    pub checks: BTreeMap<&'static str, String>,
}

const OK: &str = "ok";

impl AppState {
    /// A state with nothing loaded yet (not ready).
    pub fn new(config: &ServerConfig) -> Self {
        AppState(Arc::new(Inner {
            store: OnceLock::new(),
            store_error: Mutex::new(None),
            migrated: AtomicBool::new(false),
            rubric: OnceLock::new(),
            rubric_error: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            metrics: Arc::new(Metrics::new()),
            extraction: config.extraction.clone(),
            limits: config.limits,
            service_name: config.service_name.clone(),
            concurrency: Arc::new(Semaphore::new(config.limits.max_concurrent_requests.max(1))),
            security: crate::security::Security::new(config),
            score_cache: crate::score_cache::ScoreCache::new(config.cache_bytes),
            quote_places: crate::quote_places::QuotePlaces::default(),
            semantic: OnceLock::new(),
            files: esg_store::FileStore::new(config.files_dir.clone()),
            store_health: crate::store_health::StoreHealth::default(),
            pg: OnceLock::new(),
        }))
    }

    /// Installs the opened store; `migrated` says its schema is current.
    pub fn set_store(&self, store: Arc<dyn Store>, migrated: bool) {
        self.0.migrated.store(migrated, Ordering::SeqCst);
        let _ = self.0.store.set(store);
    }

    /// Records why the store could not be opened.
    pub fn set_store_error(&self, message: impl Into<String>) {
        *self.0.store_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.into());
    }

    /// Installs the loaded rubric.
    pub fn set_rubric(&self, rubric: Rubric) {
        self.0.metrics.set_rubric_version(&rubric.version);
        let _ = self.0.rubric.set(Arc::new(rubric));
    }

    /// Records why the rubric could not be loaded.
    pub fn set_rubric_error(&self, message: impl Into<String>) {
        *self
            .0
            .rubric_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(message.into());
    }

    /// Shutdown has begun: `/ready` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    /// `true` once shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }

    /// The store, or 503 `not_ready`.
    pub fn store(&self) -> Result<Arc<dyn Store>, ApiError> {
        self.0
            .store
            .get()
            .cloned()
            .ok_or_else(|| ApiError::not_ready("the store is not open yet"))
    }

    /// The rubric, or 503 `not_ready`.
    pub fn rubric(&self) -> Result<Arc<Rubric>, ApiError> {
        self.0
            .rubric
            .get()
            .cloned()
            .ok_or_else(|| ApiError::not_ready("the rubric is not loaded yet"))
    }

    /// Whether the store answered its last check ([`crate::store_health`]).
    pub fn store_health(&self) -> &crate::store_health::StoreHealth {
        &self.0.store_health
    }

    /// Remembers the PostgreSQL store so its pool shows in the metrics.
    pub fn set_pg(&self, pg: Arc<esg_store::PgStore>) {
        let _ = self.0.pg.set(pg);
    }

    /// Copies the PostgreSQL pool's state into the metrics (nothing on SQLite).
    pub fn record_pool_metrics(&self) {
        if let Some(pg) = self.0.pg.get() {
            self.0.metrics.set_pool(pg.pool_status());
            self.0.metrics.set_read_lease(pg.read_lease_held());
        }
    }

    /// The kept source files (`<data-dir>/files`, see [`crate::source_file`]).
    pub fn files(&self) -> &esg_store::FileStore {
        &self.0.files
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// How uploads are extracted.
    pub fn extraction(&self) -> &Extraction {
        &self.0.extraction
    }

    /// Request limits.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// `service.name`.
    pub fn service_name(&self) -> &str {
        &self.0.service_name
    }

    /// API keys, rate limiting, CORS and the upload directory.
    pub fn security(&self) -> &crate::security::Security {
        &self.0.security
    }

    /// The company-year index cache behind `/score`, `/trace` and `/search`.
    pub fn score_cache(&self) -> &crate::score_cache::ScoreCache {
        &self.0.score_cache
    }

    /// Placements of quotes on their pages, kept across requests.
    pub fn quote_places(&self) -> &crate::quote_places::QuotePlaces {
        &self.0.quote_places
    }

    /// Permits for concurrently served (non-probe) requests.
    pub fn concurrency(&self) -> &Arc<Semaphore> {
        &self.0.concurrency
    }

    /// Installs the embedder state (once; later calls are ignored).
    pub fn set_semantic(&self, semantic: crate::embedding::SemanticState) {
        let _ = self.0.semantic.set(semantic);
    }

    /// The embedder state, once loading has decided it.
    pub fn semantic(&self) -> Option<&crate::embedding::SemanticState> {
        self.0.semantic.get()
    }

    /// The readiness checks; cheap (no store access). The `embedder` check
    /// is reported but does not make the server unready: without it BM25
    /// retrieval works, and `semantic=1` answers 503 `embedder_unavailable`.
    pub fn readiness(&self) -> Readiness {
        let mut checks = BTreeMap::new();
        let store = if self.0.store.get().is_some() {
            match self.0.store_health.failing() {
                None => OK.to_string(),
                Some(why) => format!("unavailable: {why}"),
            }
        } else {
            self.0
                .store_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map_or_else(|| "not open yet".to_string(), |e| format!("failed: {e}"))
        };
        checks.insert("store", store);
        let migrations = if self.0.store.get().is_some() && self.0.migrated.load(Ordering::SeqCst) {
            OK.to_string()
        } else {
            "pending".to_string()
        };
        checks.insert("migrations", migrations);
        let rubric = if self.0.rubric.get().is_some() {
            OK.to_string()
        } else {
            self.0
                .rubric_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map_or_else(|| "not loaded yet".to_string(), |e| format!("failed: {e}"))
        };
        checks.insert("rubric", rubric);
        checks.insert(
            "shutdown",
            if self.is_shutting_down() {
                "shutting down".to_string()
            } else {
                OK.to_string()
            },
        );
        let ready = checks.values().all(|v| v == OK);
        use crate::embedding::EmbedderStatus;
        checks.insert(
            "embedder",
            match self.semantic().map(|s| s.status()) {
                None => "not loaded yet".to_string(),
                Some(EmbedderStatus::Ready) => OK.to_string(),
                Some(EmbedderStatus::Off) => "off".to_string(),
                Some(EmbedderStatus::Missing(m)) => format!("missing: {m}"),
            },
        );
        Readiness { ready, checks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_the_failing_checks() {
        let cfg = ServerConfig::new("/nonexistent", Extraction::InProcess);
        let st = AppState::new(&cfg);
        let r = st.readiness();
        assert!(!r.ready);
        assert_eq!(r.checks["store"], "not open yet");
        assert_eq!(r.checks["migrations"], "pending");
        assert_eq!(r.checks["rubric"], "not loaded yet");
        assert_eq!(r.checks["shutdown"], "ok");
        st.set_rubric(Rubric::builtin());
        st.set_store_error("disk full");
        let r = st.readiness();
        assert_eq!(r.checks["rubric"], "ok");
        assert_eq!(r.checks["store"], "failed: disk full");
        st.begin_shutdown();
        assert_eq!(st.readiness().checks["shutdown"], "shutting down");
    }
}
