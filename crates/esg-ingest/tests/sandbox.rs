//! The sandbox's bounds and failure reporting, with real child processes.

use esg_ingest::{ErrorCode, Sandbox};
use std::time::{Duration, Instant};

fn sh(script: &str) -> Sandbox {
    Sandbox::new("sh", ["-c", script])
}

#[test]
fn a_worker_that_hangs_is_stopped_at_the_timeout() {
    let mut s = sh("sleep 30");
    s.timeout = Duration::from_millis(300);
    let t = Instant::now();
    let err = s.extract(b"%PDF-1.4").unwrap_err();
    assert_eq!(err.code, ErrorCode::ExtractionTimeout);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_worker_that_crashes_is_a_clean_error() {
    let err = sh("cat >/dev/null; echo 'boom: parser exploded' >&2; kill -SEGV $$")
        .extract(b"x")
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ExtractionFailed);
    assert!(err.message.contains("signal 11"), "{}", err.message);
    assert!(err.message.contains("parser exploded"), "{}", err.message);
}

#[test]
fn a_worker_that_prints_garbage_is_a_clean_error() {
    let err = sh("cat >/dev/null; echo not-json")
        .extract(b"x")
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ExtractionFailed);
    assert!(err.message.contains("unreadable"), "{}", err.message);
}

#[test]
fn an_allocation_failure_is_reported_as_the_memory_bound() {
    let err = sh(
        "cat >/dev/null; echo 'memory allocation of 1073741824 bytes failed' >&2; kill -ABRT $$",
    )
    .extract(b"x")
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ExtractionMemoryLimit);
}

#[test]
fn a_worker_that_exits_early_does_not_block_the_writer() {
    // 8 MiB of input into a worker that never reads: the pipe write must not hang.
    let big = vec![b'a'; 8 << 20];
    let err = sh("exit 7").extract(&big).unwrap_err();
    assert_eq!(err.code, ErrorCode::ExtractionFailed);
    assert!(err.message.contains("status 7"), "{}", err.message);
}

#[test]
fn a_missing_worker_program_is_reported() {
    let err = Sandbox::new("/nonexistent/esg", Vec::<String>::new())
        .extract(b"x")
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ExtractionFailed);
    assert!(err.message.contains("cannot start"), "{}", err.message);
}

#[test]
fn the_worker_is_told_its_threads_and_gets_cpu_time_for_each() {
    // The worker reports what it was given as an error message: the
    // thread count in ESG_EXTRACT_THREADS and its CPU-time limit.
    let report = r#"cat >/dev/null; printf '{"Err":{"code":"no_text","message":"threads=%s cpu=%s"}}' "$ESG_EXTRACT_THREADS" "$(ulimit -t)""#;
    let mut s = sh(report);
    s.timeout = Duration::from_secs(10);
    s.threads = 3;
    let err = s.extract(b"x").unwrap_err();
    assert_eq!(err.code, ErrorCode::NoText);
    assert_eq!(err.message, "threads=3 cpu=36", "(10 s + 2 s) x 3 threads");
    // 0: one per core, as the worker will count them.
    s.threads = 0;
    let n = esg_ingest::pdf::default_threads();
    let err = s.extract(b"x").unwrap_err();
    assert_eq!(err.message, format!("threads={n} cpu={}", 12 * n));
}
