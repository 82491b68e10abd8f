//! Read leases: a serving replica that may trust the change stamps it holds
//! without asking the database, because every writer waits for it.
//!
//! [`crate::pg_fresh`] keeps read-after-write across replicas by asking the
//! database on every request whether anything changed. That costs a round
//! trip per request; on two busy cores it held warm `POST /score` at 0.74×
//! the SQLite store. A lease removes the round trip and keeps the guarantee
//! by moving the wait to the (rare) writes:
//!
//! * **The replica** (`esg serve`) registers a row in `replica_leases` and
//!   holds one connection that `LISTEN`s on `esg_changes`. Every
//!   [`RENEW_EVERY`], and at once when a notification arrives, it
//!   *refreshes*: (1) extends its row's `expires` to the database's
//!   `now() + LEASE`, (2) reads the stamps (`data_generation.stamp`,
//!   `.seq`, the key generation), (3) installs them, trusted until its own
//!   clock reads *(instant before step 1) + LEASE − [`MARGIN`]*, and (4)
//!   records `seen = seq` in its row.
//! * **A writer** (any process: a replica's upload, `esg ingest`,
//!   `esg keys revoke`) commits (migration 7's triggers move `seq` and
//!   `NOTIFY esg_changes` at commit), then reads `seq` = *g* and waits until
//!   every row has `expires <= now()` or `seen >= g`, or [`LEASE`] has
//!   passed since it began waiting, before it answers.
//!
//! # Why an acknowledged write is always seen
//!
//! Take a write with sequence *g*, acknowledged after the writer's check,
//! and replica R.
//!
//! * R's row had `seen >= g` at the check: R installed stamps with
//!   `seq >= g` before recording them (step 3 before 4), and installs only
//!   newer ones after.
//! * R's row had expired at the check: R's own deadline, counted from
//!   before the step 1 that set that expiry, passed earlier still, so R
//!   asks the database per request ([`crate::pg_fresh`]) until it installs
//!   stamps again — read in a step 2 that follows a step 1 committed after
//!   the check, so after the write: `seq >= g`.
//!
//! * The writer stopped waiting after [`LEASE`]: a lease that could hold
//!   stamps from before the commit was extended (step 1) before the
//!   commit, and R's own deadline counts from before that step, so it has
//!   passed (this case needs only that clocks run at the same rate, not
//!   the database's clock).
//!
//! Nothing here trusts a notification to arrive in time (they are what
//! makes the wait short, not what makes it correct): a replica that misses
//! one still records a newer `seen` at its next renewal, and a replica that
//! died or lost its connection holds writers up for at most [`LEASE`].
//! What it trusts: the database's clock and the replica's monotonic clock
//! run at the same rate over a few seconds (a step of the database host's
//! wall clock during a lease could shorten the wait; [`MARGIN`] absorbs
//! small ones).
//!
//! `seq` is `greatest(seq + 1, microseconds since the epoch)`, so a
//! database restored from an older dump still moves forward past every
//! `seen` a replica recorded before the restore.
//!
//! # Measured
//!
//! `ESG_BIN=<release esg> RUNS=1 WRK_RUNS=3 DURATION=8 bench/store_backends.sh`
//! (warm `POST /score`, wrk at 8 connections, 2 cores shared by wrk, the
//! server and PostgreSQL 15 on loopback), best of 3, side by side in one
//! run: SQLite 17,970 req/s, PostgreSQL with the lease 25,988 req/s (1.45×;
//! with a fresh read per request it was 0.74×, see [`crate::pg_fresh`]).
//! Ingest in the same run: PostgreSQL 139 pages/s, SQLite 135 (1.03×).
//!
//! # Costs
//!
//! A write with serving replicas waits for a notification round trip
//! (about a millisecond on one host), or for [`LEASE`] when a replica died
//! without removing its row. A replica makes three small statements per
//! refresh. While the database is unreachable a replica's lease lapses
//! within [`LEASE`] and its requests get `store_unavailable` as before.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;
use crate::pg_fresh::Stamps;
use crate::postgres::pg_error;

/// How long a refresh lets a replica trust its stamps.
pub(crate) const LEASE: Duration = Duration::from_secs(2);
/// How often a replica refreshes without being notified.
pub(crate) const RENEW_EVERY: Duration = Duration::from_millis(500);
/// Taken off a lease on the replica's side, for clock steps and the time
/// between the database's `now()` and the replica's instant.
pub(crate) const MARGIN: Duration = Duration::from_millis(250);
/// Longest wait between two attempts to reconnect the listening connection.
const RECONNECT_MAX: Duration = Duration::from_secs(1);
/// Rows of replicas gone longer than this are removed by the next replica
/// that registers.
const FORGET_AFTER: &str = "1 hour";

/// The stamps a replica holds and until when it may trust them.
#[derive(Debug)]
struct Held {
    stamps: Arc<Stamps>,
    until: Instant,
}

/// A replica's lease (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Lease {
    held: Mutex<Option<Held>>,
    /// The row's key once registered, for removing it when the store closes.
    replica: Mutex<Option<String>>,
}

impl Lease {
    /// The stamps, when the lease holds; `None` means ask the database.
    pub(crate) fn current(&self) -> Option<Arc<Stamps>> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match &*held {
            Some(h) if Instant::now() < h.until => Some(Arc::clone(&h.stamps)),
            _ => None,
        }
    }

    fn install(&self, stamps: Stamps, until: Instant) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Held {
            stamps: Arc::new(stamps),
            until,
        });
    }

    fn void(&self) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The registered row's key, if any.
    pub(crate) fn replica(&self) -> Option<String> {
        self.replica
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts holding a lease on `rt`: registers, listens and refreshes
    /// until the runtime shuts down.
    pub(crate) fn start(
        rt: &tokio::runtime::Handle,
        cfg: tokio_postgres::Config,
        tls: MakeRustlsConnect,
        connect_timeout: Duration,
    ) -> Arc<Lease> {
        let lease = Arc::new(Lease::default());
        rt.spawn(hold(Arc::clone(&lease), cfg, tls, connect_timeout));
        lease
    }
}

/// The stamps, as [`crate::pg_fresh`] reads them.
pub(crate) const STAMPS_SQL: &str =
    "SELECT d.stamp, k.generation, d.seq FROM data_generation d, api_keys_generation k";

/// [`Stamps`] from a row of [`STAMPS_SQL`].
pub(crate) fn stamps_from_row(row: &tokio_postgres::Row) -> Stamps {
    Stamps {
        data: row.get(0),
        keys: row.get(1),
        seq: row.get(2),
    }
}

/// The listening connection, registered and holding a first lease.
struct Listening {
    client: tokio_postgres::Client,
    notified: mpsc::UnboundedReceiver<()>,
    replica: String,
    read: tokio_postgres::Statement,
}

/// Holds the lease: (re)connects, listens, refreshes; voids the lease
/// whenever the connection is lost.
async fn hold(
    lease: Arc<Lease>,
    cfg: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    connect_timeout: Duration,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Ok(Ok(mut l)) =
            tokio::time::timeout(connect_timeout, listen(&lease, &cfg, tls.clone())).await
        {
            backoff = Duration::from_millis(50);
            keep(&lease, &mut l).await;
        }
        lease.void();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// Connects, `LISTEN`s, registers and refreshes once.
async fn listen(
    lease: &Lease,
    cfg: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
) -> Result<Listening, StoreError> {
    let (client, mut connection) = cfg.connect(tls).await.map_err(pg_error)?;
    let (notified_tx, notified) = mpsc::unbounded_channel::<()>();
    // Drives the connection and forwards notifications; when it ends (the
    // connection failed) the channel closes and `keep` returns.
    tokio::spawn(async move {
        while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(_) = message
                && notified_tx.send(()).is_err()
            {
                break;
            }
        }
    });
    client
        .batch_execute("LISTEN esg_changes")
        .await
        .map_err(pg_error)?;
    let read = client.prepare(STAMPS_SQL).await.map_err(pg_error)?;
    let replica = register(lease, &client).await?;
    let l = Listening {
        client,
        notified,
        replica,
        read,
    };
    refresh(lease, &l).await?;
    Ok(l)
}

/// Refreshes on every notification and every [`RENEW_EVERY`] until the
/// connection fails or a refresh takes longer than [`LEASE`].
async fn keep(lease: &Lease, l: &mut Listening) {
    loop {
        tokio::select! {
            n = l.notified.recv() => {
                if n.is_none() {
                    return;
                }
                // Several notifications at once need one refresh.
                while l.notified.try_recv().is_ok() {}
            }
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
        if !matches!(
            tokio::time::timeout(LEASE, refresh(lease, l)).await,
            Ok(Ok(()))
        ) {
            return;
        }
    }
}

/// Inserts this replica's row (or takes up the one it had before a
/// reconnect) and removes rows of replicas long gone.
async fn register(lease: &Lease, c: &tokio_postgres::Client) -> Result<String, StoreError> {
    let known = lease.replica();
    let row = c
        .query_one(
            "INSERT INTO replica_leases (replica, expires, seen) \
             VALUES (COALESCE($1, gen_random_uuid()::TEXT), now(), 0) \
             ON CONFLICT (replica) DO UPDATE SET replica = EXCLUDED.replica \
             RETURNING replica",
            &[&known],
        )
        .await
        .map_err(pg_error)?;
    let replica: String = row.get(0);
    c.execute(
        &format!("DELETE FROM replica_leases WHERE expires < now() - interval '{FORGET_AFTER}'"),
        &[],
    )
    .await
    .map_err(pg_error)?;
    *lease.replica.lock().unwrap_or_else(|p| p.into_inner()) = Some(replica.clone());
    Ok(replica)
}

/// Steps 1–4 of the module documentation. Each statement commits on its
/// own, in this order.
async fn refresh(lease: &Lease, l: &Listening) -> Result<(), StoreError> {
    let (c, replica) = (&l.client, &l.replica);
    let before = Instant::now();
    let extended = c
        .execute(
            "UPDATE replica_leases SET expires = now() + make_interval(secs => $2) \
             WHERE replica = $1",
            &[&replica, &LEASE.as_secs_f64()],
        )
        .await
        .map_err(pg_error)?;
    if extended == 0 {
        // Removed as long gone (this replica was cut off for an hour):
        // hold nothing until registered again.
        lease.void();
        return Err(StoreError::Unavailable(
            "this replica's lease row was removed".into(),
        ));
    }
    let stamps = stamps_from_row(&c.query_one(&l.read, &[]).await.map_err(pg_error)?);
    let seq = stamps.seq;
    lease.install(stamps, before + LEASE - MARGIN);
    c.execute(
        "UPDATE replica_leases SET seen = $2 WHERE replica = $1",
        &[&replica, &seq],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

/// Removes a replica's row, so writers stop waiting for it (when a store
/// closes cleanly).
pub(crate) async fn forget(c: &impl GenericClient, replica: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM replica_leases WHERE replica = $1", &[&replica])
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// After a commit: waits until every replica holding a lease has seen it,
/// or its lease expired (see the module documentation). Never fails: the
/// write has committed. When the database cannot be asked, it waits out
/// [`LEASE`] (every lease granted before the commit has expired by then).
pub(crate) async fn await_replicas(c: &impl GenericClient) {
    let started = Instant::now();
    // Any lease that could still hold stamps read before the commit was
    // extended (step 1) before the commit, so it ends before this.
    let give_up = started + LEASE;
    let first = c
        .query_one(
            "SELECT d.seq, (SELECT count(*) FROM replica_leases r \
                            WHERE r.expires > now() AND r.seen < d.seq) \
             FROM data_generation d",
            &[],
        )
        .await;
    let g: i64 = match first {
        Ok(row) if row.get::<_, i64>(1) == 0 => return,
        Ok(row) => row.get(0),
        Err(_) => return wait_out(started).await,
    };
    let mut pause = Duration::from_micros(500);
    while Instant::now() < give_up {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
        let behind = c
            .query_one(
                "SELECT count(*) FROM replica_leases WHERE expires > now() AND seen < $1",
                &[&g],
            )
            .await;
        match behind {
            Ok(row) if row.get::<_, i64>(0) == 0 => return,
            Ok(_) => {}
            Err(_) => return wait_out(started).await,
        }
    }
}

async fn wait_out(started: Instant) {
    tokio::time::sleep_until((started + LEASE).into()).await;
}
