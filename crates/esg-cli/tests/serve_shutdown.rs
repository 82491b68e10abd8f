//! SIGTERM with a request in flight, through the real `esg serve` binary.
//!
//! The slow request is a real one: `POST /score` whose JSON body the client
//! sends in two parts over a raw `TcpStream`, so the server is inside the
//! handler (reading the body) when the signal arrives.
//!
//! * Drained: `/ready` on a new connection is refused or 503 at once, the
//!   in-flight request then completes with its normal 200 scorecard, and the
//!   process exits 0 within the drain timeout.
//! * Cut off: a request that outlives `--drain-timeout-secs` is abandoned
//!   (its connection closed without a response); the process still exits
//!   with status 0 shortly after the drain timeout and logs a WARN line
//!   "drain timeout reached; abandoning in-flight requests".

mod serve_support;

use serve_support::*;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BODY: &[u8] = br#"{"company":"Northwind Components Ltd","year":2024}"#;

/// Opens a connection, sends the head and the first half of a /score body,
/// and waits until the server is in the handler waiting for the rest: the
/// `/metrics` scrape itself is one in-flight request, the slow one the other.
fn start_slow_score(s: &Served) -> TcpStream {
    let addr = s.addr.as_str();
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write_head(
        &mut c,
        addr,
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        BODY.len(),
    );
    c.write_all(&BODY[..BODY.len() / 2]).unwrap();
    c.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while in_flight(s) < 2.0 {
        assert!(Instant::now() < deadline, "the slow request never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    c
}

/// Polls `/ready` on new connections until it is refused or not 200;
/// returns what it saw.
fn ready_after_sigterm(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match request(addr, "GET", "/ready", &[], b"") {
            // Refused, or reset: accepted by the kernel as the listener closed.
            Err(e) => return format!("refused: {e}"),
            Ok(r) if r.status == 200 => {
                assert!(Instant::now() < deadline, "/ready stayed 200 after SIGTERM");
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(r) => {
                assert_eq!(r.status, 503, "{r:?}");
                assert_eq!(r.json()["error"]["code"], "not_ready", "{r:?}");
                return "503".into();
            }
        }
    }
}

fn in_flight(s: &Served) -> f64 {
    // /metrics stays reachable only before shutdown; read it first.
    let r = s.get("/metrics");
    r.body
        .lines()
        .find_map(|l| l.strip_prefix("esg_http_requests_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .expect("esg_http_requests_in_flight")
}

#[test]
fn sigterm_drains_an_in_flight_request_then_exits_0() {
    let mut s = Served::start_ingested(
        &["--drain-timeout-secs", "20"],
        &[("OTEL_TRACES_EXPORTER", "none")],
    );
    let mut c = start_slow_score(&s);

    let signalled = Instant::now();
    s.sigterm();
    let seen = ready_after_sigterm(&s.addr);
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the process must wait for the in-flight request"
    );

    // Finish the request: it gets its normal answer.
    c.write_all(&BODY[BODY.len() / 2..]).unwrap();
    let r = read_response(&mut c);
    assert_eq!(r.status, 200, "{r:?}");
    let card = r.json();
    assert_eq!(card["company"], "Northwind Components Ltd", "{card}");
    assert!(card["fingerprint"].as_str().is_some_and(|f| f.len() == 64));

    let (status, _) = s
        .wait_exit(Duration::from_secs(20))
        .expect("exits once drained");
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");

    // The logs tell the story in order; /ready was {seen} meanwhile.
    let logs = s.json_logs();
    let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| logs.iter().position(pred);
    let begun = pos(&|v| v["message"] == "shutdown begun: draining in-flight requests")
        .expect("shutdown begun line");
    let sent = pos(&|v| {
        v["message"] == "request sent" && v["path"] == "/score" && v["status_code"] == 200
    })
    .expect("the /score request was logged as sent");
    let stopped = pos(&|v| v["message"] == "server stopped").expect("server stopped line");
    assert!(
        begun < sent && sent < stopped,
        "order: {begun} {sent} {stopped} (ready: {seen})"
    );
    assert!(
        !logs.iter().any(|v| v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("drain timeout"))),
        "no request was cut off"
    );
}

#[test]
fn a_request_outliving_the_drain_timeout_is_cut_off_and_the_process_exits_0() {
    let mut s = Served::start_ingested(
        &["--drain-timeout-secs", "1"],
        &[("OTEL_TRACES_EXPORTER", "none")],
    );
    let mut c = start_slow_score(&s);
    let signalled = Instant::now();
    s.sigterm();
    ready_after_sigterm(&s.addr);
    // The rest of the body never comes.
    let (status, _) = s
        .wait_exit(Duration::from_secs(15))
        .expect("esg serve must exit after the drain timeout");
    let took = signalled.elapsed();
    assert!(status.success(), "documented exit status 0, got {status:?}");
    assert!(
        took >= Duration::from_millis(900),
        "exited before the drain timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The abandoned connection is closed without a response.
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"),
        "the cut-off request must not be answered 200"
    );
    let logs = s.json_logs();
    let warn = logs
        .iter()
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("drain timeout reached"))
        })
        .expect("a WARN line about the drain timeout");
    assert_eq!(warn["level"], "WARN");
    assert_eq!(warn["drain_timeout_ms"], 1000);
}

/// Pids of `esg __extract-worker` processes whose parent is `parent`.
fn extract_workers(parent: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains("__extract-worker") {
            continue;
        }
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// `true` while `pid` exists and is not a zombie (an orphan's exit may be
/// reaped late by whichever process adopted it).
fn is_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// A large plain-text report (~40 MB): extracting, chunking and storing it
/// takes tens of seconds in a debug build, far longer than the drain
/// timeout plus the exit grace.
fn large_report() -> Vec<u8> {
    let words = [
        "emissions",
        "scope",
        "energy",
        "climate",
        "governance",
        "board",
        "water",
        "waste",
        "target",
        "carbon",
        "supplier",
        "risk",
        "the",
        "of",
        "and",
        "we",
    ];
    let mut out = Vec::with_capacity(41 << 20);
    let mut x: u32 = 7;
    for _ in 0..560_000 {
        for w in 0..12 {
            // A small LCG: varied but reproducible sentences.
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            if w > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
        }
        out.extend_from_slice(b".\n");
    }
    out
}

#[test]
fn an_upload_still_extracting_after_the_drain_timeout_does_not_hold_the_exit() {
    let mut key = String::new();
    let mut s = Served::spawn_with(
        |data| key = add_key(data, "shutdown-test"),
        &["--drain-timeout-secs", "1"],
        &[("OTEL_TRACES_EXPORTER", "none")],
    );
    s.wait_ready();
    let body = large_report();
    let bearer = format!("Bearer {key}");
    let mut c = TcpStream::connect(&s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write_head(
        &mut c,
        &s.addr,
        "POST",
        "/documents?company=Big%20Report%20Co&year=2024",
        &[
            ("Content-Type", "text/plain"),
            ("Authorization", bearer.as_str()),
        ],
        body.len(),
    );
    c.write_all(&body).unwrap();
    c.flush().unwrap();
    // The whole body is sent; wait until the server runs the extraction
    // worker for it (a blocking task of the runtime).
    let pid = s.child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let workers = loop {
        let w = extract_workers(pid);
        if !w.is_empty() {
            break w;
        }
        assert!(
            Instant::now() < deadline,
            "no extraction worker started; logs: {:?}",
            s.logs.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    let signalled = Instant::now();
    s.sigterm();
    let exited = s.wait_exit(Duration::from_secs(60));
    let took = signalled.elapsed();
    // The worker dies with the server (PR_SET_PDEATHSIG), not at its own
    // CPU limit minutes later.
    // Measured: without it the worker ran on ~3.9 s after the exit (until
    // its extraction ended); with it, it is gone within one 20 ms poll.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut alive: Vec<i32> = workers.clone();
    while !alive.is_empty() && Instant::now() < deadline {
        alive.retain(|w| is_running(*w));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Do not leave an orphaned worker burning CPU after the test.
    for w in &alive {
        // SAFETY: kill(2) on a pid this test found; ESRCH when it is gone.
        unsafe { libc::kill(*w, libc::SIGKILL) };
    }
    assert!(
        alive.is_empty(),
        "extraction workers {alive:?} outlived the server by 1 s"
    );
    let (status, _) = exited.expect("esg serve must exit");
    assert!(status.success(), "documented exit status 0, got {status:?}");
    // Drain timeout (1 s) + exit grace (1 s) + slack; without the grace
    // bound the runtime waits for the extraction to finish.
    assert!(
        took < Duration::from_secs(6),
        "exit took {took:?}: the abandoned upload held the runtime"
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 201"),
        "the cut-off upload must not be answered 201"
    );
    // The upload was really abandoned mid-way: nothing of it is stored,
    // and the database is intact.
    let db = rusqlite::Connection::open(s.data.join("esg.sqlite3")).expect("open db");
    let docs: i64 = db
        .query_row("SELECT COUNT(*) FROM documents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        docs, 0,
        "the upload finished before the exit: test too weak"
    );
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let logs = s.json_logs();
    assert!(
        logs.iter().any(|v| v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("drain timeout reached"))),
        "the upload was cut off by the drain timeout"
    );
}

#[test]
fn a_connection_opened_before_sigterm_gets_its_first_request_answered() {
    // A load balancer's probe connection that is open but has not sent its
    // request when shutdown begins: the request is answered (`/ready` 503,
    // then the connection closes), not dropped unanswered.
    let mut s = Served::start_ingested(&[], &[("OTEL_TRACES_EXPORTER", "none")]);
    let mut c = TcpStream::connect(&s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Make sure the server has accepted it (a request on another
    // connection is answered after this one was queued).
    assert_eq!(s.get("/live").status, 200);
    s.sigterm();
    s.wait_log_field("shutdown begun: draining in-flight requests", "level");
    // Past the moment connections are told to finish.
    std::thread::sleep(Duration::from_millis(50));
    write_head(&mut c, &s.addr, "GET", "/ready", &[], 0);
    let r = read_response(&mut c);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "not_ready", "{r:?}");
    let (status, _) = s
        .wait_exit(Duration::from_secs(20))
        .expect("exits once drained");
    assert!(status.success(), "exit status {status:?}");
}
