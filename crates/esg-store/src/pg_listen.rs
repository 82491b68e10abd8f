//! The company and document listings of a [`crate::PgStore`], kept between
//! calls and invalidated across replicas by `LISTEN`/`NOTIFY`.
//!
//! Every warm `POST /score` asks the store for the company and its
//! documents (the key of the scoring caches). On SQLite that is a read of
//! a local file; on PostgreSQL it is two round trips, and on this 2-core
//! machine they cost five times the rest of the request:
//! `bench/store_backends.sh` measured warm `/score` at 2,005 req/s on
//! PostgreSQL against 11,048 on SQLite (0.18x, 2026-12-03) before this
//! module. So the listings are kept here, tagged with a *data generation*:
//!
//! * triggers on `companies` and `documents` (PostgreSQL migration 5) send
//!   `NOTIFY esg_data` in every transaction that changes them, delivered
//!   when it commits, to every listening replica;
//! * each store keeps one connection of its own (outside the pool) that
//!   `LISTEN`s and adds one to the generation per notification;
//! * a write by this process adds one as soon as it commits, so a replica
//!   reads its own writes at once;
//! * a kept listing is used only while the generation it was read at is
//!   the current one, and only while the listening connection is up: when
//!   it drops nothing is kept (every call asks the database), and when it
//!   is back the generation moves on, so notifications missed meanwhile
//!   cannot leave a stale listing in use.
//!
//! The one window left: a notification travels from the database to the
//! other replicas after the commit, so a request that reaches replica B in
//! the instant between replica A's commit and B receiving the notification
//! (tens of microseconds on one network) may still see the listing before
//! it. Anything later sees the new document.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{CompanySummary, DocumentSummary};

/// The channel the triggers notify.
pub(crate) const CHANNEL: &str = "esg_data";

/// Entries kept per map before it is emptied (a bound, not a working set:
/// a screen of 1,000 companies fits).
const MAX_ENTRIES: usize = 8192;

/// Pause before listening again after the connection was lost.
const RETRY: Duration = Duration::from_millis(500);

/// Listings kept under the data generation they were read at.
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    generation: AtomicU64,
    listening: AtomicBool,
    companies: Mutex<HashMap<String, (u64, Option<CompanySummary>)>>,
    documents: Mutex<DocumentListings>,
}

/// Document listings by company key (`None`: all), with their generation.
type DocumentListings = HashMap<Option<String>, (u64, Vec<DocumentSummary>)>;

impl Lookups {
    /// The current generation, or `None` while no notification can be
    /// trusted to arrive (nothing kept is used then).
    pub(crate) fn current(&self) -> Option<u64> {
        self.listening
            .load(Ordering::SeqCst)
            .then(|| self.generation.load(Ordering::SeqCst))
    }

    /// Something changed (a notification, or this process's own write).
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn set_listening(&self, on: bool) {
        if on {
            // Whatever happened while nobody listened is unknown.
            self.changed();
        }
        self.listening.store(on, Ordering::SeqCst);
    }

    pub(crate) fn company(&self, key: &str) -> Option<Option<CompanySummary>> {
        let now = self.current()?;
        let map = self.companies.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(g, _)| *g == now)
            .map(|(_, c)| c.clone())
    }

    pub(crate) fn keep_company(&self, key: String, at: Option<u64>, c: &Option<CompanySummary>) {
        let Some(at) = at else { return };
        let mut map = self.companies.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (at, c.clone()));
    }

    pub(crate) fn documents(&self, key: &Option<String>) -> Option<Vec<DocumentSummary>> {
        let now = self.current()?;
        let map = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(g, _)| *g == now)
            .map(|(_, d)| d.clone())
    }

    pub(crate) fn keep_documents(
        &self,
        key: Option<String>,
        at: Option<u64>,
        docs: &[DocumentSummary],
    ) {
        let Some(at) = at else { return };
        let mut map = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (at, docs.to_vec()));
    }
}

/// Listens on [`CHANNEL`] for as long as the store lives (the task ends
/// with the store's runtime), reconnecting after [`RETRY`] when the
/// connection is lost.
pub(crate) async fn listen(
    cfg: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    lookups: std::sync::Arc<Lookups>,
) {
    // One connection beyond the pool's bound, named apart in
    // pg_stat_activity.
    let mut cfg = cfg;
    let name = format!(
        "{} (listen)",
        cfg.get_application_name().unwrap_or("esg-scoring-api")
    );
    cfg.application_name(&name);
    loop {
        if let Ok((client, mut connection)) = cfg.connect(tls.clone()).await {
            let l = lookups.clone();
            // Drives the connection: the reply to LISTEN, then notifications,
            // until the connection ends.
            let driver = tokio::spawn(async move {
                while let Some(Ok(m)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    if let AsyncMessage::Notification(_) = m {
                        l.changed();
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                lookups.set_listening(true);
                let _ = driver.await;
                lookups.set_listening(false);
            }
            drop(client);
        }
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_listings_are_used_only_at_their_generation_and_while_listening() {
        let l = Lookups::default();
        let docs: Vec<DocumentSummary> = Vec::new();
        // Not listening: nothing is kept or used.
        l.keep_documents(None, l.current(), &docs);
        assert!(l.documents(&None).is_none());
        l.set_listening(true);
        let at = l.current();
        l.keep_documents(None, at, &docs);
        l.keep_company("acme".into(), at, &None);
        assert_eq!(l.documents(&None), Some(vec![]));
        assert_eq!(l.company("acme"), Some(None));
        // A change (notification or own write) retires them.
        l.changed();
        assert!(l.documents(&None).is_none());
        assert!(l.company("acme").is_none());
        // Read before a change, kept after it: never used.
        let before = l.current();
        l.changed();
        l.keep_company("acme".into(), before, &None);
        assert!(l.company("acme").is_none());
        // Losing the listener retires everything, and so does getting it back.
        let at = l.current();
        l.keep_company("acme".into(), at, &None);
        l.set_listening(false);
        assert!(l.company("acme").is_none());
        l.set_listening(true);
        assert!(l.company("acme").is_none());
    }
}
