//! What only the PostgreSQL store does, or does differently: replicas
//! racing on the same document and on migrations, a schema newer than the
//! program, reads during a long write, losing and regaining the server, API
//! keys in the database, and calls from another tokio runtime. Each test
//! skips without PostgreSQL (fails under `CI=true`).

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{make_doc, two_block_layout, vector};
use esg_store::{
    ChunkVector, CopySource, ImportOutcome, KeyTable, PG_SCHEMA_VERSION, PgOptions, PgStore,
    SqliteStore, Store, StoreError, StoredKey, VectorStore,
};

fn db() -> Option<esg_testpg::TestDb> {
    esg_testpg::fresh_db()
}

/// A key row with made-up hashes (the store does not check them).
fn test_key(id: &str) -> StoredKey {
    StoredKey {
        id: id.into(),
        label: "test".into(),
        created_at: "2026-12-07T00:00:00Z".into(),
        salt: "00".into(),
        sha256: "11".into(),
        revoked_at: None,
    }
}

/// Whether exactly one unexpired lease row shows up within `timeout`.
fn one_lease_held_within(url: &str, timeout: Duration) -> bool {
    esg_testpg::wait_until(timeout, || {
        esg_testpg::query_text(
            url,
            "SELECT count(*) FROM replica_leases WHERE expires > now()",
        )
        .unwrap()
        .as_deref()
            == Some("1")
    })
}

fn connect(url: &str) -> PgStore {
    PgStore::connect(url, &PgOptions::default()).expect("connect")
}

#[test]
fn two_replicas_storing_the_same_bytes_at_once_store_it_once() {
    let Some(db) = db() else { return };
    // Several rounds: each round a new document, raced by 4 stores (4
    // replicas), released together by a barrier.
    const REPLICAS: usize = 4;
    let stores: Vec<_> = (0..REPLICAS).map(|_| Arc::new(connect(&db.url))).collect();
    for round in 0..10 {
        let doc = Arc::new(make_doc(&format!("race-{round}"), "Race plc", 2024, 5));
        let barrier = Arc::new(Barrier::new(REPLICAS));
        let handles: Vec<_> = stores
            .iter()
            .map(|s| {
                let (s, doc, barrier) = (Arc::clone(s), Arc::clone(&doc), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    s.put_document(&doc).expect("every replica answers success")
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            outcomes.iter().filter(|o| o.is_new()).count(),
            1,
            "round {round}: {outcomes:?}"
        );
        let first = outcomes[0].summary().clone();
        assert!(outcomes.iter().all(|o| o.summary() == &first));
    }
    let counts = stores[0].counts().unwrap();
    assert_eq!((counts.companies, counts.documents), (1, 10));
    assert_eq!(counts.pages, 50);
    assert_eq!(counts.chunks, 100);
}

#[test]
fn replicas_starting_together_migrate_once() {
    let Some(db) = db() else { return };
    const REPLICAS: usize = 8;
    let barrier = Arc::new(Barrier::new(REPLICAS));
    let handles: Vec<_> = (0..REPLICAS)
        .map(|_| {
            let (url, barrier) = (db.url.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                let s = connect(&url);
                s.schema_version().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), PG_SCHEMA_VERSION);
    }
    // One row per version: each migration was applied exactly once.
    let rows = esg_testpg::query_text(
        &db.url,
        "SELECT COUNT(*)::TEXT || '/' || COUNT(DISTINCT version)::TEXT || '/' || MAX(version)::TEXT \
         FROM schema_migrations",
    )
    .unwrap()
    .unwrap();
    let n = PG_SCHEMA_VERSION;
    assert_eq!(rows, format!("{n}/{n}/{n}"));
}

#[test]
fn a_schema_newer_than_the_program_is_refused_and_left_alone() {
    let Some(db) = db() else { return };
    let s = connect(&db.url);
    s.put_document(&make_doc("kept", "Acme", 2024, 1)).unwrap();
    drop(s);
    let newer = PG_SCHEMA_VERSION + 2;
    esg_testpg::execute(
        &db.url,
        &format!("INSERT INTO schema_migrations VALUES ({newer}, '2030-01-01T00:00:00Z')"),
    )
    .unwrap();
    match PgStore::connect(&db.url, &PgOptions::default()) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, PG_SCHEMA_VERSION))
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(
        esg_testpg::query_text(&db.url, "SELECT COUNT(*) FROM documents").unwrap(),
        Some("1".into())
    );
}

#[test]
fn reads_are_not_blocked_by_a_long_write_transaction() {
    let Some(db) = db() else { return };
    let s = connect(&db.url);
    let doc = make_doc("read-me", "Acme", 2024, 2);
    s.put_document(&doc).unwrap();
    // Another session holds row and table locks in an open transaction
    // (documents and chunks written, not committed) for 3 s.
    let url = db.url.clone();
    let started = Arc::new(Barrier::new(2));
    let writer = {
        let started = Arc::clone(&started);
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let tx = client.transaction().await.unwrap();
                tx.batch_execute(
                    "UPDATE documents SET filename = 'locked.pdf'; \
                     LOCK TABLE chunks IN ROW EXCLUSIVE MODE; \
                     UPDATE chunks SET words = words + 1;",
                )
                .await
                .unwrap();
                started.wait();
                tokio::time::sleep(Duration::from_secs(3)).await;
                tx.rollback().await.unwrap();
            });
        })
    };
    started.wait();
    let t = Instant::now();
    assert_eq!(
        s.document(&doc.doc_id).unwrap().unwrap().filename,
        "read-me.pdf"
    );
    assert_eq!(s.chunks("Acme", Some(2024)).unwrap().len(), 4);
    assert_eq!(s.documents(None).unwrap().len(), 1);
    assert_eq!(s.counts().unwrap().chunks, 4);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "reads waited {:?} for the writer",
        t.elapsed()
    );
    writer.join().unwrap();
}

#[test]
fn an_unreachable_server_is_unavailable() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = PgOptions {
        connect_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    };
    let t = Instant::now();
    match PgStore::connect(&format!("postgres://esg@127.0.0.1:{port}/esg"), &opts) {
        Err(StoreError::Unavailable(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // An sslmode libpq does not know: refused by name, password hidden.
    match PgStore::connect("postgres://esg:pw@127.0.0.1:1/esg?sslmode=verify", &opts) {
        Err(StoreError::Config(msg)) => {
            assert!(
                msg.contains("sslmode=verify is not one of") && !msg.contains("pw@"),
                "{msg}"
            )
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[test]
fn tls_connections_follow_sslmode_as_libpq_does() {
    // A cluster of its own that refuses plain TCP (hostnossl reject) and
    // presents a certificate for the name `localhost` only (not the address
    // 127.0.0.1), signed by `ca`.
    let (cluster, ca) = match esg_testpg::Cluster::start_tls(&["localhost"]) {
        Ok(c) => c,
        Err(e) if esg_testpg::required() => panic!("PostgreSQL is required under CI=true: {e}"),
        Err(e) => {
            eprintln!("SKIP: {e}");
            return;
        }
    };
    let opts = PgOptions {
        pool_size: 2,
        connect_timeout: Duration::from_secs(3),
        ..PgOptions::default()
    };
    let base = cluster.url("postgres");
    let with = |q: &str| format!("{base}?{q}");
    let by_name = |q: &str| format!("{base}?{q}").replace("@127.0.0.1:", "@localhost:");

    // Encrypted, and the store works through it: write, read back.
    for q in [
        "sslmode=require".to_string(),
        "sslmode=prefer".to_string(),
        format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
        format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ] {
        let s = PgStore::connect(&by_name(&q), &opts).unwrap_or_else(|e| panic!("{q}: {e}"));
        let doc = make_doc(&format!("tls {q}"), "Acme", 2024, 2);
        s.put_document(&doc).unwrap();
        assert_eq!(
            s.document(&doc.doc_id).unwrap().unwrap().doc_id,
            doc.doc_id,
            "{q}"
        );
    }
    // Without TLS the server refuses (so the connections above were TLS).
    match PgStore::connect(&with("sslmode=disable"), &opts) {
        Err(StoreError::Unavailable(m) | StoreError::Postgres(m)) => {
            assert!(m.contains("no encryption") || m.contains("pg_hba"), "{m}")
        }
        other => panic!("sslmode=disable against a TLS-only server: got {other:?}"),
    }
    // The address in the URL is not on the certificate: verify-full
    // refuses, verify-ca (chain only) accepts.
    let full = with(&format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    match PgStore::connect(&full, &opts) {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("not valid for name"), "{m}"),
        other => panic!("verify-full to an address not on the certificate: got {other:?}"),
    }
    let chain_only = with(&format!("sslmode=verify-ca&sslrootcert={}", ca.display()));
    assert!(PgStore::connect(&chain_only, &opts).is_ok());
    // A certificate signed by another CA: refused by every verifying mode,
    // accepted by require (libpq: encryption without authentication).
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("other-ca.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-days",
            "1",
            "-subj",
            "/CN=someone else",
            "-newkey",
            "ec",
        ])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
        ])
        .arg(dir.path().join("k.pem"))
        .arg("-out")
        .arg(&stranger)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for mode in ["verify-ca", "verify-full", "require"] {
        let url = with(&format!(
            "sslmode={mode}&sslrootcert={}",
            stranger.display()
        ));
        match PgStore::connect(&url, &opts) {
            Err(StoreError::Unavailable(m)) => assert!(
                m.contains("UnknownIssuer") || m.contains("certificate"),
                "{mode}: {m}"
            ),
            other => {
                panic!("{mode} with a stranger's CA: expected a refused handshake, got {other:?}")
            }
        }
    }
    // A root file that is not there: refused before connecting, named.
    let url = with("sslmode=verify-full&sslrootcert=/nonexistent/root.crt");
    match PgStore::connect(&url, &opts) {
        Err(StoreError::Config(m)) => assert!(m.contains("/nonexistent/root.crt"), "{m}"),
        other => panic!("missing root file: got {other:?}"),
    }
}

#[test]
fn losing_the_server_is_unavailable_and_the_store_recovers_when_it_returns() {
    // A cluster of this test's own: it is stopped and started again.
    let Some(cluster) = esg_testpg::own_cluster() else {
        return;
    };
    let db = cluster.fresh_db().unwrap();
    let opts = PgOptions {
        pool_size: 4,
        connect_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    };
    let s = PgStore::connect(&db.url, &opts).unwrap();
    let doc = make_doc("before", "Acme", 2024, 2);
    s.put_document(&doc).unwrap();
    s.ping().unwrap();
    assert!(s.pool_status().size >= 1);

    cluster.stop();
    match s.ping() {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("ping with the server stopped: expected Unavailable, got {other:?}"),
    }
    match s.put_document(&make_doc("during", "Acme", 2024, 1)) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("put with the server stopped: expected Unavailable, got {other:?}"),
    }
    match s.document(&doc.doc_id) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("read with the server stopped: expected Unavailable, got {other:?}"),
    }

    cluster.restart().unwrap();
    // The same store, no reconnect by the caller: dead pooled connections
    // are replaced.
    assert!(
        esg_testpg::wait_until(Duration::from_secs(20), || s.ping().is_ok()),
        "store did not recover"
    );
    assert_eq!(s.document(&doc.doc_id).unwrap().unwrap().doc_id, doc.doc_id);
    assert!(
        s.put_document(&make_doc("after", "Acme", 2024, 1))
            .unwrap()
            .is_new()
    );
    assert_eq!(
        s.counts().unwrap().documents,
        2,
        "nothing of the failed put"
    );
}

#[test]
fn api_keys_round_trip_and_bump_the_generation() {
    let Some(db) = db() else { return };
    let a = connect(&db.url);
    let b = connect(&db.url); // another replica
    let keys: &dyn KeyTable = a.key_table().expect("PostgreSQL keeps keys");
    let g0 = keys.keys_generation().unwrap();
    assert!(keys.list_keys().unwrap().is_empty());
    let key = |id: &str, at: &str| StoredKey {
        id: id.into(),
        label: format!("label of {id}"),
        created_at: at.into(),
        salt: "00ff".into(),
        sha256: "ab".repeat(32),
        revoked_at: None,
    };
    keys.insert_key(&key("k2", "2026-01-02T00:00:00Z")).unwrap();
    keys.insert_key(&key("k1", "2026-01-02T00:00:00Z")).unwrap();
    keys.insert_key(&key("k0", "2026-01-03T00:00:00Z")).unwrap();
    match keys.insert_key(&key("k1", "2026-02-01T00:00:00Z")) {
        Err(StoreError::Invalid(m)) => assert!(m.contains("k1"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let g1 = b.keys_generation().unwrap();
    assert!(g1 > g0);
    let ids: Vec<_> = b.list_keys().unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, ["k1", "k2", "k0"], "by created_at, then id");

    assert!(b.revoke_key("k1", "2026-03-01T00:00:00Z").unwrap());
    let g2 = a.keys_generation().unwrap();
    assert!(g2 > g1);
    assert!(b.revoke_key("k1", "2026-04-01T00:00:00Z").unwrap(), "known");
    assert!(!b.revoke_key("nope", "2026-04-01T00:00:00Z").unwrap());
    let k1 = a
        .list_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.id == "k1")
        .unwrap();
    assert_eq!(
        k1.revoked_at.as_deref(),
        Some("2026-03-01T00:00:00Z"),
        "first kept"
    );
    assert_eq!(k1.sha256, "ab".repeat(32));
    assert_eq!(a.keys_generation().unwrap(), g2, "no change, no bump");
}

#[test]
fn callable_from_spawn_blocking_of_another_runtime_and_droppable_in_async_code() {
    let Some(db) = db() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(
            tokio::task::spawn_blocking(move || connect(&db.url))
                .await
                .unwrap(),
        );
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::task::spawn_blocking(move || {
                    let d = make_doc(&format!("sb-{i}"), "Async plc", 2024, 2);
                    store.put_document(&d).unwrap();
                    store.chunks("Async plc", None).unwrap().len()
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap() >= 4);
        }
        assert_eq!(
            tokio::task::spawn_blocking({
                let s = Arc::clone(&store);
                move || s.counts().unwrap().documents
            })
            .await
            .unwrap(),
            8
        );
        // The last reference dropped inside an async task: must not panic.
        drop(store);
    });
}

#[test]
fn pool_is_bounded_and_reports_its_state() {
    let Some(db) = db() else { return };
    let opts = PgOptions {
        pool_size: 2,
        ..PgOptions::default()
    };
    let s = Arc::new(PgStore::connect(&db.url, &opts).unwrap());
    s.put_document(&make_doc("p", "Pool plc", 2024, 3)).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                for _ in 0..20 {
                    assert_eq!(s.chunks("Pool plc", None).unwrap().len(), 6);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let st = s.pool_status();
    assert_eq!(st.max_size, 2);
    assert!(st.size <= 2 && st.size >= 1, "{st:?}");
    assert_eq!(st.in_use, 0, "{st:?}");
    assert_eq!(st.waiting, 0, "{st:?}");
    let connections = esg_testpg::query_text(
        &db.url,
        &format!(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND application_name = 'esg-scoring-api'",
            db.name
        ),
    )
    .unwrap()
    .unwrap();
    assert!(connections.parse::<u32>().unwrap() <= 2, "{connections}");
}

#[test]
fn statement_timeout_applies() {
    let Some(db) = db() else { return };
    let opts = PgOptions {
        statement_timeout: Duration::from_secs(1),
        ..PgOptions::default()
    };
    let s = PgStore::connect(&db.url, &opts).unwrap();
    s.put_document(&make_doc("st", "Slow plc", 2024, 1))
        .unwrap();
    // A lock held elsewhere makes the write wait; the timeout ends it.
    let url = db.url.clone();
    let gate = Arc::new(Barrier::new(2));
    let holder = {
        let gate = Arc::clone(&gate);
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let tx = client.transaction().await.unwrap();
                tx.batch_execute("LOCK TABLE companies IN ACCESS EXCLUSIVE MODE")
                    .await
                    .unwrap();
                gate.wait();
                tokio::time::sleep(Duration::from_secs(4)).await;
                tx.rollback().await.unwrap();
            });
        })
    };
    gate.wait();
    let t = Instant::now();
    match s.put_document(&make_doc("blocked", "Slow plc", 2024, 1)) {
        Err(StoreError::Postgres(m)) => assert!(m.contains("57014"), "{m}"),
        other => panic!("expected a statement timeout, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    holder.join().unwrap();
}

#[test]
fn export_and_import_keep_everything() {
    let Some(db) = db() else { return };
    let Some(db2) = esg_testpg::fresh_db() else {
        return;
    };
    let src = connect(&db.url);
    let dst = connect(&db2.url);
    let mut doc = make_doc("exp", "Export plc", 2023, 3);
    doc.pages[1].layout = Some(two_block_layout());
    src.put_document(&doc).unwrap();
    src.put_vectors(
        "m",
        4,
        &[ChunkVector {
            chunk_id: doc.chunks[1].chunk_id.clone(),
            vector: vector(1, 4),
        }],
    )
    .unwrap();
    let exported = src.export_document(&doc.doc_id).unwrap().unwrap();
    assert_eq!(
        dst.import_document(&exported).unwrap(),
        ImportOutcome::Copied
    );
    assert_eq!(
        dst.import_document(&exported).unwrap(),
        ImportOutcome::AlreadyPresent
    );
    let back = dst.export_document(&doc.doc_id).unwrap().unwrap();
    assert_eq!(back, exported);
    assert_eq!(back.digest(), exported.digest());
    assert_eq!(back.digest().vectors, 1);
    assert_eq!(dst.vector_dim("m").unwrap(), Some(4));
    assert_eq!(dst.doc_ids().unwrap(), vec![doc.doc_id.clone()]);
    assert_eq!(exported.pages[1].layout, Some(two_block_layout()));
    assert_eq!(
        dst.page_layout(&doc.doc_id, 2).unwrap(),
        Some(two_block_layout())
    );
    assert_eq!(dst.page_layout(&doc.doc_id, 1).unwrap(), None);
}

/// What `esg store copy` does: a SQLite export imported into PostgreSQL
/// comes back out equal, page layouts included, and the digest (which
/// covers the layouts) tells a changed layout apart.
#[test]
fn a_sqlite_export_imports_with_its_page_layouts() {
    let Some(db) = db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = SqliteStore::open_in_dir(dir.path()).unwrap();
    let dst = connect(&db.url);
    let mut doc = make_doc("copy-layout", "Copy plc", 2024, 2);
    doc.pages[0].layout = Some(two_block_layout());
    src.put_document(&doc).unwrap();
    let exported = src.export_document(&doc.doc_id).unwrap().unwrap();
    assert_eq!(exported.pages[0].layout, Some(two_block_layout()));
    assert_eq!(exported.pages[1].layout, None);
    assert_eq!(
        dst.import_document(&exported).unwrap(),
        ImportOutcome::Copied
    );
    let back = dst.export_document(&doc.doc_id).unwrap().unwrap();
    assert_eq!(back, exported);
    assert_eq!(back.digest(), exported.digest());
    assert_eq!(
        dst.page_layout(&doc.doc_id, 1).unwrap(),
        Some(two_block_layout())
    );
    assert_eq!(dst.page_layout(&doc.doc_id, 2).unwrap(), None);

    let mut moved = exported.clone();
    moved.pages[0].layout.as_mut().unwrap().blocks[1].bbox.x0 += 1.0;
    assert_ne!(moved.digest().sha256, exported.digest().sha256);
    let mut dropped = exported.clone();
    dropped.pages[0].layout = None;
    assert_ne!(dropped.digest().sha256, exported.digest().sha256);
}

/// A database migrated before page layouts were kept gains the column;
/// its pages read back without a layout, and new pages keep theirs.
#[test]
fn an_older_schema_gains_page_layouts() {
    let Some(db) = db() else { return };
    let old = make_doc("before-layouts", "Old plc", 2023, 1);
    {
        let s = connect(&db.url);
        s.put_document(&old).unwrap();
    }
    // Back to the schema before the layout migration (the last one).
    esg_testpg::execute(
        &db.url,
        &format!(
            "ALTER TABLE pages DROP COLUMN layout; \
             DELETE FROM schema_migrations WHERE version = {PG_SCHEMA_VERSION};"
        ),
    )
    .unwrap();
    let s = connect(&db.url);
    assert_eq!(s.schema_version().unwrap(), PG_SCHEMA_VERSION);
    assert_eq!(s.page_layout(&old.doc_id, 1).unwrap(), None);
    assert!(s.page_text(&old.doc_id, 1).unwrap().is_some());
    let mut new = make_doc("after-layouts", "Old plc", 2024, 1);
    new.pages[0].layout = Some(two_block_layout());
    s.put_document(&new).unwrap();
    assert_eq!(
        s.page_layout(&new.doc_id, 1).unwrap(),
        Some(two_block_layout())
    );
}

/// The listings a replica keeps (`company_documents`) never hide a write
/// committed before the call, by another replica, by itself or by plain SQL,
/// even while other threads keep the shared stamp read busy: a call is only
/// answered by a read that started after it.
#[test]
fn kept_listings_show_every_write_committed_before_the_call() {
    kept_listings_are_current(false);
}

/// The same with B holding a read lease (as `esg serve` does): B answers
/// without asking the database, so it is the writers' wait that keeps the
/// guarantee.
#[test]
fn a_leased_store_shows_every_write_acknowledged_before_the_call() {
    kept_listings_are_current(true);
}

fn kept_listings_are_current(b_leased: bool) {
    let Some(db) = db() else { return };
    let a = Arc::new(connect(&db.url));
    let b = Arc::new(
        PgStore::connect(
            &db.url,
            &PgOptions {
                read_lease: b_leased,
                ..PgOptions::default()
            },
        )
        .expect("connect"),
    );
    assert_eq!(b.company_documents("Acme").unwrap(), None);
    assert_eq!(b.company_documents("").unwrap(), None);

    // Readers on B all the time, so most calls below find a read in flight.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (b, stop) = (Arc::clone(&b), Arc::clone(&stop));
            thread::spawn(move || {
                let mut calls = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    b.company_documents("Acme").unwrap();
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    for round in 0..30 {
        let writer = if round % 2 == 0 { &a } else { &b };
        let doc = make_doc(&format!("kept {round}"), "Acme", 2020 + round % 5, 1);
        writer.put_document(&doc).unwrap();
        // No waiting: the very next call on B must include it.
        let (company, docs) = b.company_documents("ACME").unwrap().expect("company");
        assert!(
            docs.iter().any(|d| d.doc_id == doc.doc_id),
            "round {round}: B's listing misses the document just stored"
        );
        assert_eq!(
            company.documents as usize,
            round as usize + 1,
            "round {round}"
        );
        assert_eq!(docs.len(), round as usize + 1, "round {round}");
        // The same as the uncached reads give.
        assert_eq!(Some(company), b.company("Acme").unwrap());
        assert_eq!(docs, b.documents(Some("Acme")).unwrap());
        // Keys too: added or revoked through A, B's very next answer moves.
        let before = b.keys_generation().unwrap();
        let key = test_key(&format!("k{round}"));
        if round % 2 == 0 {
            a.insert_key(&key).unwrap();
        } else {
            a.insert_key(&key).unwrap();
            let mid = b.keys_generation().unwrap();
            assert_ne!(mid, before, "round {round}: B missed the key added on A");
            assert!(a.revoke_key(&key.id, "2026-12-07T00:00:01Z").unwrap());
            assert_ne!(
                b.keys_generation().unwrap(),
                mid,
                "round {round}: revocation"
            );
            continue;
        }
        assert_ne!(b.keys_generation().unwrap(), before, "round {round}: keys");
    }
    // A write by a third party (plain SQL, no esg code) is seen at once
    // without a lease; with one, within a renewal (no writer waits for it).
    esg_testpg::execute(
        &db.url,
        "UPDATE documents SET filename = 'renamed.pdf' \
         WHERE doc_id = (SELECT min(doc_id) FROM documents)",
    )
    .unwrap();
    let renamed = || {
        let (_, docs) = b.company_documents("Acme").unwrap().unwrap();
        docs.iter().any(|d| d.filename == "renamed.pdf")
    };
    if b_leased {
        assert!(esg_testpg::wait_until(Duration::from_secs(3), renamed));
    } else {
        assert!(renamed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls: u32 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(calls > 0);
}

/// A stopped database answers the stamp read with `Unavailable` (every
/// caller waiting on it), and the store serves fresh listings again once the
/// database is back.
#[test]
fn kept_listings_are_not_served_while_the_database_is_down() {
    let Some(cluster) = esg_testpg::own_cluster() else {
        return;
    };
    let db = cluster.fresh_db().unwrap();
    let opts = PgOptions {
        connect_timeout: Duration::from_secs(1),
        ..PgOptions::default()
    };
    let s = PgStore::connect(&db.url, &opts).unwrap();
    s.put_document(&make_doc("down 1", "Acme", 2024, 1))
        .unwrap();
    assert_eq!(s.company_documents("Acme").unwrap().unwrap().1.len(), 1);
    cluster.stop();
    match s.company_documents("Acme") {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    cluster.restart().unwrap();
    assert!(esg_testpg::wait_until(Duration::from_secs(10), || s
        .company_documents("Acme")
        .is_ok()));
    let other = PgStore::connect(&db.url, &opts).unwrap();
    other
        .put_document(&make_doc("down 2", "Acme", 2024, 1))
        .unwrap();
    assert_eq!(s.company_documents("Acme").unwrap().unwrap().1.len(), 2);
}

/// A writer does not answer before every replica holding a lease has seen
/// its commit or lost its lease: a replica that never confirms (a row no
/// process renews) holds the write up until its lease has expired, and a
/// live leased store has recorded the commit as seen when the write returns.
#[test]
fn a_write_waits_for_every_leased_replica() {
    let Some(db) = db() else { return };
    let leased = PgStore::connect(
        &db.url,
        &PgOptions {
            read_lease: true,
            ..PgOptions::default()
        },
    )
    .unwrap();
    let writer = connect(&db.url);
    // The leased store registers in the background: wait for its row.
    assert!(one_lease_held_within(&db.url, Duration::from_secs(5)));
    writer
        .put_document(&make_doc("lease 1", "Acme", 2024, 1))
        .unwrap();
    let confirmed =
        "SELECT bool_and(r.seen >= d.seq)::TEXT FROM replica_leases r, data_generation d";
    assert_eq!(
        esg_testpg::query_text(&db.url, confirmed)
            .unwrap()
            .as_deref(),
        Some("true"),
        "the write returned before the leased store recorded it as seen"
    );
    assert_eq!(
        leased.company_documents("Acme").unwrap().unwrap().1.len(),
        1
    );

    // A replica that stopped renewing (its process is gone) with 1.5 s of
    // lease left, before each kind of write.
    let stuck = |sql: &str| esg_testpg::execute(&db.url, sql).unwrap();
    let stuck_expired = || {
        esg_testpg::query_text(
            &db.url,
            "SELECT (expires <= now())::TEXT FROM replica_leases WHERE replica = 'stuck'",
        )
        .unwrap()
    };
    stuck(
        "INSERT INTO replica_leases (replica, expires, seen) \
         VALUES ('stuck', now() + interval '1.5 seconds', 0)",
    );
    writer
        .put_document(&make_doc("lease 2", "Acme", 2024, 1))
        .unwrap();
    assert_eq!(
        stuck_expired().as_deref(),
        Some("true"),
        "the write returned while a replica that had not seen it still held a lease"
    );
    stuck(
        "UPDATE replica_leases SET expires = now() + interval '1.5 seconds' WHERE replica = 'stuck'",
    );
    writer.insert_key(&test_key("k-lease")).unwrap();
    assert_eq!(
        stuck_expired().as_deref(),
        Some("true"),
        "a key change returned before a stuck replica's lease expired"
    );
    // A store closed cleanly removes its row, so writers stop waiting for it.
    drop(leased);
    assert_eq!(
        esg_testpg::query_text(
            &db.url,
            "SELECT count(*) FROM replica_leases WHERE replica <> 'stuck'"
        )
        .unwrap()
        .as_deref(),
        Some("0")
    );
}

/// A leased store whose database stops answers `Unavailable` once its lease
/// lapses (it cannot renew), and holds a lease again, with current stamps,
/// once the database is back.
#[test]
fn a_lease_lapses_while_the_database_is_down_and_returns_with_it() {
    let Some(cluster) = esg_testpg::own_cluster() else {
        return;
    };
    let db = cluster.fresh_db().unwrap();
    let opts = PgOptions {
        connect_timeout: Duration::from_secs(1),
        read_lease: true,
        ..PgOptions::default()
    };
    let s = PgStore::connect(&db.url, &opts).unwrap();
    s.put_document(&make_doc("lapse 1", "Acme", 2024, 1))
        .unwrap();
    assert_eq!(s.company_documents("Acme").unwrap().unwrap().1.len(), 1);
    cluster.stop();
    assert!(
        esg_testpg::wait_until(Duration::from_secs(5), || matches!(
            s.company_documents("Acme"),
            Err(StoreError::Unavailable(_))
        )),
        "a leased store kept answering with the database down"
    );
    cluster.restart().unwrap();
    assert!(esg_testpg::wait_until(Duration::from_secs(10), || s
        .company_documents("Acme")
        .is_ok()));
    // Its lease is back (its row renewed) ...
    assert!(one_lease_held_within(&db.url, Duration::from_secs(5)));
    // ... and a write elsewhere is in its very next answer.
    let other = PgStore::connect(&db.url, &opts).unwrap();
    other
        .put_document(&make_doc("lapse 2", "Acme", 2024, 1))
        .unwrap();
    assert_eq!(s.company_documents("Acme").unwrap().unwrap().1.len(), 2);
}
