//! `esg serve` end to end: the real binary on an ephemeral loopback port,
//! an upload extracted by the real sandboxed worker, and SIGTERM.

mod serve_support;
mod support;

use serve_support::{COMPANY_QS, Served, sample};
use std::time::Duration;

#[test]
fn serve_binds_answers_ingests_through_the_worker_and_stops_on_sigterm() {
    let mut srv = Served::start(&[], &[("OTEL_TRACES_EXPORTER", "none")]);
    let r = srv.get("/health");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["status"], "healthy", "{r:?}");

    // An upload goes through the sandboxed `esg __extract-worker`; it needs
    // an API key (`esg keys add` prints it once; the server picks it up
    // without a restart).
    let upload = format!("/documents?company={COMPANY_QS}&year=2024");
    let text = ("Content-Type", "text/plain");
    let r = srv.send("POST", &upload, &[text], &sample());
    assert_eq!(r.status, 401, "no key: {r:?}");
    let bearer = format!("Bearer {}", srv.add_key("serve-test"));
    let auth = ("Authorization", bearer.as_str());
    let r = srv.send("POST", &upload, &[text, auth], &sample());
    assert_eq!(r.status, 201, "{r:?}");
    let r = srv.send("POST", &upload, &[text, auth], &sample());
    assert_eq!(r.status, 200, "already ingested: {r:?}");
    let r = srv.send(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"company":"northwind components ltd"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json()["fingerprint"].is_string(), "{r:?}");
    assert_eq!(support::counts(&srv.data).1, 1);

    // SIGTERM: drain and exit 0.
    srv.sigterm();
    let (status, _) = srv
        .wait_exit(Duration::from_secs(30))
        .expect("esg serve did not stop after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}
