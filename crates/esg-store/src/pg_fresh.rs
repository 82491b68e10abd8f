//! Fresh reads of the change stamps, shared by callers that ask at the same
//! moment.
//!
//! Every request that scores first needs the company and its documents
//! (they key the server's scoring caches), and every request with an API key
//! needs to know whether the keys changed. A [`PgStore`](crate::PgStore)
//! keeps those listings in memory, so what each such request must learn
//! from the database is only whether anything changed: the stamp row that
//! migration 6 replaces whenever a transaction changing companies or
//! documents commits, and the key generation of migration 5.
//!
//! A store that holds a read lease (`esg serve`, see [`crate::pg_lease`])
//! reads them here only while its lease has lapsed; the rule below is then
//! kept by the writers' wait instead.
//!
//! # The rule that keeps read-after-write across replicas
//!
//! A caller is answered only by a read that **started after it asked**. An
//! upload acknowledged by replica A has committed before the client sends
//! its next request to replica B, so B's answer is read after that commit
//! and sees the new stamp. (Invalidation by `LISTEN`/`NOTIFY` alone was
//! tried and reverted: a notification can reach B after the request does;
//! [`crate::pg_lease`] adds what makes it safe, the writers' wait.)
//!
//! # Sharing
//!
//! A caller that finds fewer than two reads in flight starts one at once.
//! Callers that ask while two run wait for the next, which starts the
//! moment one of them ends, and that single read answers all of them. Under
//! load, then, a replica makes a trivial query or two per round trip rather
//! than one per request; alone, a caller waits for exactly one round trip.
//!
//! # Measured
//!
//! `ESG_BIN=<release esg> RUNS=1 WRK_RUNS=3 DURATION=8 bench/store_backends.sh`
//! (warm `POST /score`, wrk at 8 connections, 2 cores shared by wrk, the
//! server and PostgreSQL 15 on loopback), best of 3 runs, side by side:
//!
//! | PostgreSQL store | SQLite req/s | PostgreSQL req/s | ratio |
//! |---|---|---|---|
//! | company and documents read per request (before) | 11,048 | 2,005 | 0.18 |
//! | kept listings, one read in flight | 17,314 | 12,506 | 0.72 |
//! | kept listings, two reads in flight (this) | 16,525 | 12,305 | 0.74 |
//!
//! | read lease, no read per request ([`crate::pg_lease`]) | 17,970 | 25,988 | 1.45 |
//!
//! The two fresh-read variants are equal within the noise (another run of
//! two in flight: 17,730 vs 13,394, 0.76); two stay because a lone caller
//! that arrives just after a read started does not wait for it. What
//! remained was the round trip itself on two busy cores, which the lease
//! removes for `esg serve`; other processes (the CLI) still read here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;

use crate::StoreError;
use crate::pg_lease::{STAMPS_SQL, stamps_from_row};
use crate::postgres::{pg_error, with_pool_client};

/// The stamps, as one read saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamps {
    /// Replaced by every commit that changes companies or documents.
    pub data: String,
    /// Moved by every key added or revoked.
    pub keys: i64,
    /// Moves forward with every such commit and every key change
    /// (migration 7; what a replica's lease records as seen, `pg_lease.rs`).
    pub seq: i64,
}

/// A read's failure, kept so every caller it answers gets the same error.
#[derive(Debug, Clone)]
enum Failure {
    Unavailable(String),
    Other(String),
}

impl From<&Failure> for StoreError {
    fn from(f: &Failure) -> StoreError {
        match f {
            Failure::Unavailable(m) => StoreError::Unavailable(m.clone()),
            Failure::Other(m) => StoreError::Postgres(m.clone()),
        }
    }
}

/// One finished read: its round number and what it gave.
type Round = Option<(u64, Result<Arc<Stamps>, Failure>)>;

/// Reads in flight at once. Two, so a caller that arrives while one runs
/// starts its own at once instead of waiting for it to end (measured: see
/// `postgres.rs`), while a burst of callers still shares reads.
const MAX_IN_FLIGHT: u32 = 2;

#[derive(Debug, Default)]
struct State {
    /// Rounds started so far (the number of the latest one).
    started: u64,
    /// Rounds in flight.
    in_flight: u32,
    /// Someone asked while [`MAX_IN_FLIGHT`] rounds ran: start another as
    /// soon as one ends.
    wanted: bool,
    /// The latest round published (rounds may end out of order; an older
    /// one is not published after a newer one).
    published: u64,
}

/// Shared fresh reads of [`Stamps`] (see the module documentation).
#[derive(Debug)]
pub(crate) struct FreshStamps {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    /// Longest a read may take before its callers get
    /// [`StoreError::Unavailable`] (a database that stopped answering
    /// without closing the connection).
    timeout: Duration,
    state: Mutex<State>,
    done: watch::Sender<Round>,
}

impl FreshStamps {
    pub(crate) fn new(pool: Pool, timeout: Duration) -> FreshStamps {
        FreshStamps {
            inner: Arc::new(Inner {
                pool,
                timeout,
                state: Mutex::default(),
                done: watch::Sender::new(None),
            }),
        }
    }

    /// Stamps read by a query that started after this call. Must run on
    /// the store's runtime (it spawns the read there).
    pub(crate) async fn get(&self) -> Result<Arc<Stamps>, StoreError> {
        // Subscribe first: a round that ends between the lock and the wait
        // is still seen (a watch keeps its latest value).
        let mut rx = self.inner.done.subscribe();
        let need = {
            let mut s = self.inner.lock();
            if s.in_flight < MAX_IN_FLIGHT {
                s.started += 1;
                s.in_flight += 1;
                tokio::spawn(round(Arc::clone(&self.inner), s.started));
                s.started
            } else {
                s.wanted = true;
                s.started + 1
            }
        };
        let seen = rx
            .wait_for(|r| r.as_ref().is_some_and(|(n, _)| *n >= need))
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        match &seen.as_ref().expect("waited for Some").1 {
            Ok(stamps) => Ok(Arc::clone(stamps)),
            Err(f) => Err(f.into()),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes round `n` (unless a newer one was) and starts the round
    /// callers are waiting for, if any. Under the lock, so a caller either
    /// sees a slot free and starts a round itself, or is served by the
    /// next one started here.
    fn finish(self: &Arc<Self>, n: u64, read: Result<Arc<Stamps>, Failure>) {
        let mut s = self.lock();
        if n > s.published {
            s.published = n;
            self.done.send_replace(Some((n, read)));
        }
        s.in_flight -= 1;
        if s.wanted {
            s.wanted = false;
            s.started += 1;
            s.in_flight += 1;
            tokio::spawn(round(Arc::clone(self), s.started));
        }
    }
}

/// Reads the stamps once, as round `n`.
async fn round(inner: Arc<Inner>, n: u64) {
    // Should this task die without finishing (a panic in the client), the
    // callers waiting get an error instead of waiting forever.
    let guard = FinishOnDrop { inner: &inner, n };
    let timeout = inner.timeout;
    let read = match tokio::time::timeout(timeout, read_stamps(&inner.pool)).await {
        Ok(Ok(s)) => Ok(Arc::new(s)),
        Ok(Err(StoreError::Unavailable(m))) => Err(Failure::Unavailable(m)),
        Ok(Err(e)) => Err(Failure::Other(e.to_string())),
        Err(_) => Err(Failure::Unavailable(format!(
            "the database did not answer within {timeout:?}"
        ))),
    };
    std::mem::forget(guard);
    inner.finish(n, read);
}

struct FinishOnDrop<'a> {
    inner: &'a Arc<Inner>,
    n: u64,
}

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        let failure = Failure::Other("reading the change stamps failed".into());
        self.inner.finish(self.n, Err(failure));
    }
}

async fn read_stamps(pool: &Pool) -> Result<Stamps, StoreError> {
    with_pool_client(pool, async |c| {
        let stmt = c.prepare_cached(STAMPS_SQL).await.map_err(pg_error)?;
        let row = c.query_one(&stmt, &[]).await.map_err(pg_error)?;
        Ok(stamps_from_row(&row))
    })
    .await
}
