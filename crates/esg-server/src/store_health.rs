//! Whether the store can be reached, for `/ready`, the metrics and the
//! logs: a background task asks the store for a round trip
//! ([`esg_store::Store::ping`]) every [`INTERVAL`] (every [`INTERVAL_FAILING`]
//! while it fails) and records the answer.
//!
//! With SQLite the store is a file in this process and the check only
//! proves the file is still readable. With PostgreSQL it is what takes a
//! replica out of the load balancer while the database is unreachable:
//! `/ready` answers 503 naming the `store` check, requests that need the
//! store answer 503 `store_unavailable` (see [`crate::error`]), and both
//! recover by themselves when the database answers again (the pool drops
//! broken connections and opens new ones; nothing is restarted).
//!
//! Any request answered 503 `store_unavailable` marks the store unhealthy
//! at once ([`StoreHealth::mark_unavailable`], from the access layer in
//! [`crate::middleware`]), so `/ready` does not wait for the next check to
//! say so; `bench/load_faults_replicas.py` counts the 503s a replica
//! answers while its `/ready` still says 200.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::state::AppState;

/// Time between checks while the store answers.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Time between checks while it does not.
pub const INTERVAL_FAILING: Duration = Duration::from_millis(500);
/// A check that takes longer than this counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Inner {
    /// `Some(why)` while the store cannot be reached.
    failing: Option<String>,
    /// When it started failing.
    since: Option<Instant>,
}

/// The last known reachability of the store.
#[derive(Debug, Default)]
pub struct StoreHealth(Mutex<Inner>);

impl StoreHealth {
    /// `None` when the store answered the last check, else why not.
    pub fn failing(&self) -> Option<String> {
        self.lock().failing.clone()
    }

    /// Records a successful round trip. Returns how long the outage lasted
    /// when this ends one (the caller logs it).
    pub fn mark_ok(&self) -> Option<Duration> {
        let mut g = self.lock();
        let ended = g
            .failing
            .take()
            .map(|_| g.since.map_or(Duration::ZERO, |s| s.elapsed()));
        g.since = None;
        ended
    }

    /// Records a failed round trip or a request that met
    /// [`esg_store::StoreError::Unavailable`]. Returns `true` when this
    /// starts an outage.
    pub fn mark_unavailable(&self, why: impl Into<String>) -> bool {
        let mut g = self.lock();
        let started = g.failing.is_none();
        g.failing = Some(why.into());
        if started {
            g.since = Some(Instant::now());
        }
        started
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks the store until shutdown begins. Spawned once the store is open.
pub async fn monitor(st: AppState) {
    loop {
        let Ok(store) = st.store() else { return };
        let check = tokio::task::spawn_blocking(move || {
            crate::http::store_op("store.ping", || store.ping())
        });
        let outcome = match tokio::time::timeout(TIMEOUT, check).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(_)) => Err("the check panicked".to_string()),
            Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
        };
        let health = st.store_health();
        match outcome {
            Ok(()) => {
                if let Some(down) = health.mark_ok() {
                    tracing::warn!(
                        outage_ms = down.as_millis() as u64,
                        "the store answers again"
                    );
                }
            }
            Err(why) => {
                if health.mark_unavailable(why.clone()) {
                    tracing::error!(error_type = "store_unavailable", error = %why, "the store cannot be reached");
                }
            }
        }
        st.metrics().set_store_up(health.failing().is_none());
        st.record_pool_metrics();
        if st.is_shutting_down() {
            return;
        }
        let pause = if health.failing().is_some() {
            INTERVAL_FAILING
        } else {
            INTERVAL
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_starts_once_and_ends_with_its_length() {
        let h = StoreHealth::default();
        assert_eq!(h.failing(), None);
        assert_eq!(h.mark_ok(), None, "no outage to end");
        assert!(h.mark_unavailable("connection refused"));
        assert!(!h.mark_unavailable("still refused"), "one outage, not two");
        assert_eq!(h.failing().as_deref(), Some("still refused"));
        std::thread::sleep(Duration::from_millis(5));
        let down = h.mark_ok().expect("the outage ends");
        assert!(down >= Duration::from_millis(5));
        assert_eq!(h.failing(), None);
    }
}
