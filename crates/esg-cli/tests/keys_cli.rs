//! `esg keys add|list|revoke` and the hardened `esg serve`, end to end with
//! the real binary: keys printed once and stored only as salted hashes
//! (mode 0600), revocation and new keys seen by a running server, uploads
//! through the sandboxed worker (a deflate bomb ends as 422
//! `extraction_memory_limit` under `--max-memory-mb 256`), the admin
//! listener, and no key in any log line.

mod serve_support;
mod support;

use serve_support::Served;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::esg;

fn is_key(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("esg_") else {
        return false;
    };
    let Some((id, secret)) = rest.split_once('_') else {
        return false;
    };
    let hex = |x: &str| {
        x.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    id.len() == 12 && secret.len() == 64 && hex(id) && hex(secret)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn add_key(data: &Path, label: &str) -> String {
    let key = serve_support::add_key(data, label);
    assert!(is_key(&key), "stdout is the key alone: {key:?}");
    key
}

#[test]
fn keys_are_shown_once_stored_hashed_listed_and_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = esg(&data, &["keys", "list"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("esg keys add"), "{}", stdout(&out));

    let out = esg(&data, &["keys", "add", "--label", "ci uploader"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = stdout(&out).trim().to_string();
    assert!(is_key(&key), "{key:?}");
    assert!(stderr(&out).contains("only this once"), "{}", stderr(&out));
    let id = key[4..16].to_string();

    let out = esg(&data, &["keys", "add", "--label", "ops", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let key2 = v["key"].as_str().unwrap().to_string();
    assert!(is_key(&key2));
    assert_eq!(v["label"], "ops");
    assert_ne!(key, key2);

    // The file holds salted hashes, not keys, and only the owner reads it.
    let file = data.join("api-keys.json");
    let text = std::fs::read_to_string(&file).unwrap();
    for k in [&key, &key2] {
        let secret = &k[17..];
        assert!(!text.contains(secret), "a secret is stored in clear");
    }
    assert!(text.contains("\"sha256\"") && text.contains("\"salt\""));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    // Listing: ids and labels, never keys, hashes or salts.
    let out = esg(&data, &["keys", "list"]);
    let table = stdout(&out);
    assert!(
        table.contains(&id) && table.contains("ci uploader") && table.contains("ops"),
        "{table}"
    );
    let out = esg(&data, &["keys", "list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), 2);
    for listing in [table.as_str(), stdout(&out).as_str()] {
        for k in [&key, &key2] {
            assert!(!listing.contains(&k[17..]), "a secret is listed");
        }
        assert!(
            !listing.contains("sha256") && !listing.contains("salt"),
            "{listing}"
        );
        let f: serde_json::Value = serde_json::from_str(&text).unwrap();
        for rec in f["keys"].as_array().unwrap() {
            assert!(!listing.contains(rec["sha256"].as_str().unwrap()));
            assert!(!listing.contains(rec["salt"].as_str().unwrap()));
        }
    }
    assert_eq!(rows[0]["revoked"], false);

    // Revoke: once, again (a no-op), and an unknown id (exit 1).
    let out = esg(&data, &["keys", "revoke", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Revoked"));
    let out = esg(&data, &["keys", "revoke", &id]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("already revoked"));
    let out = esg(&data, &["keys", "revoke", "000000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no API key has the id"),
        "{}",
        stderr(&out)
    );
    let out = esg(&data, &["keys", "list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows[0]["revoked"], true);
    assert!(rows[0]["revoked_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rows[1]["revoked"], false);

    // Bad labels are refused; nothing is added.
    for bad in ["", "   "] {
        let out = esg(&data, &["keys", "add", "--label", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
    }
    let out = esg(&data, &["keys", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&stdout(&out))
            .unwrap()
            .len(),
        2
    );

    // --api-keys-file and its env fallback.
    let other = tmp.path().join("elsewhere/keys.json");
    let out = Command::new(support::esg_bin())
        .args(["--data-dir", data.to_str().unwrap(), "keys", "add"])
        .env("ESG_API_KEYS_FILE", &other)
        .env("ESG_KEY_LABEL", "from env")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("from env")
    );
    let out = esg(
        &data,
        &[
            "keys",
            "--api-keys-file",
            other.to_str().unwrap(),
            "list",
            "--json",
        ],
    );
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&stdout(&out))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn concurrent_key_additions_are_all_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let children: Vec<_> = (0..6)
        .map(|i| {
            Command::new(support::esg_bin())
                .args([
                    "--data-dir",
                    data.to_str().unwrap(),
                    "keys",
                    "add",
                    "--label",
                    &format!("k{i}"),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let keys: Vec<String> = children
        .into_iter()
        .map(|c| {
            String::from_utf8(c.wait_with_output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    assert!(keys.iter().all(|k| is_key(k)), "{keys:?}");
    let out = esg(&data, &["keys", "list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), 6, "a concurrent add was lost: {rows:?}");
}

/// One HTTP/1.1 exchange on a new connection; returns (status, the
/// response head lower-cased, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let r = serve_support::request(addr, method, path, headers, body).expect("request");
    let mut head = format!("http/1.1 {}", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("\r\n{k}: {}", v.to_ascii_lowercase()));
    }
    (r.status, head, r.body)
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .map(|v| v["error"]["code"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn hardened_serve_end_to_end() {
    let mut key = String::new();
    let mut srv = Served::spawn_with(
        |data| key = add_key(data, "uploader"),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--max-memory-mb",
            "256",
            "--max-upload-mb",
            "8",
        ],
        &[("OTEL_TRACES_EXPORTER", "none"), ("RUST_LOG", "debug")],
    );
    let data = srv.data.clone();
    let addr = srv.addr.clone();
    let admin = srv.wait_log_field("admin listening (probes and /metrics)", "admin_listen");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&admin, "GET", "/ready", &[], b"").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sample = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples/northwind-2024-sustainability.txt"),
    )
    .unwrap();
    let up = "/documents?company=Northwind%20Components%20Ltd&year=2024";
    let bearer = format!("Bearer {key}");
    let text = ("Content-Type", "text/plain");

    let (st, head, body) = http(&addr, "POST", up, &[text], &sample);
    assert_eq!((st, code(&body).as_str()), (401, "unauthorized"), "{body}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(!head.contains("\r\nserver:"), "{head}");
    let wrong = format!("Bearer esg_{}_{}", &key[4..16], "0".repeat(64));
    let (st, _, body) = http(
        &addr,
        "POST",
        up,
        &[text, ("Authorization", &wrong)],
        &sample,
    );
    assert_eq!((st, code(&body).as_str()), (403, "forbidden"), "{body}");
    let (st, _, body) = http(
        &addr,
        "POST",
        up,
        &[text, ("Authorization", &bearer)],
        &sample,
    );
    assert_eq!(st, 201, "{body}");

    // Revoked while serving; a new key works without a restart.
    let out = esg(&data, &["keys", "revoke", &key[4..16]]);
    assert!(out.status.success());
    let (st, _, body) = http(
        &addr,
        "POST",
        up,
        &[text, ("Authorization", &bearer)],
        &sample,
    );
    assert_eq!((st, code(&body).as_str()), (403, "forbidden"), "{body}");
    let key2 = add_key(&data, "second");
    let bearer2 = format!("Bearer {key2}");

    // A deflate bomb (1 GiB inflated) through HTTP and the sandboxed worker.
    let bomb = support::deflate_bomb_pdf(1 << 30);
    let started = Instant::now();
    let (st, _, body) = http(
        &addr,
        "POST",
        "/documents?company=Bomb%20Co&year=2024&filename=bomb.pdf",
        &[
            ("Content-Type", "application/pdf"),
            ("Authorization", &bearer2),
        ],
        &bomb,
    );
    eprintln!(
        "deflate bomb ({} bytes): {st} {body} in {:?}",
        bomb.len(),
        started.elapsed()
    );
    assert_eq!(
        (st, code(&body).as_str()),
        (422, "extraction_memory_limit"),
        "{body}"
    );
    // Multipart through the real binary, with a traversal file name.
    let mut mp = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../../etc/shadow\"\r\n\r\n".to_vec();
    mp.extend_from_slice(b"Fabrikam cut Scope 1 emissions by 12% against its 2019 baseline.");
    mp.extend_from_slice(b"\r\n--b0undary--\r\n");
    let (st, _, body) = http(
        &addr,
        "POST",
        "/documents?company=Fabrikam&year=2024",
        &[
            ("Content-Type", "multipart/form-data; boundary=b0undary"),
            ("Authorization", &bearer2),
        ],
        &mp,
    );
    assert_eq!(st, 201, "{body}");
    assert!(body.contains("\"filename\":\"shadow\""), "{body}");
    // Over --max-upload-mb 8 by Content-Length: refused before the body is sent.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {up} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer2}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        (8 << 20) + 1
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("payload_too_large"), "{raw}");
    let left: Vec<_> = std::fs::read_dir(data.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // The admin listener has /metrics; the main one does not.
    let (st, _, m) = http(&admin, "GET", "/metrics", &[], b"");
    assert_eq!(st, 200);
    for line in [
        "esg_auth_requests_total{outcome=\"ok\"} 4",
        "esg_auth_requests_total{outcome=\"missing\"} 1",
        "esg_auth_requests_total{outcome=\"invalid\"} 1",
        "esg_auth_requests_total{outcome=\"revoked\"} 1",
        "esg_ingest_documents_total{format=\"pdf\",outcome=\"extraction_memory_limit\"} 1",
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }
    assert_eq!(http(&addr, "GET", "/metrics", &[], b"").0, 404);
    assert_eq!(http(&addr, "GET", "/ready", &[], b"").0, 200);

    // SIGTERM: both listeners stop, exit 0.
    srv.sigterm();
    let (status, _) = srv
        .wait_exit(Duration::from_secs(30))
        .expect("no exit after SIGTERM");
    assert!(status.success(), "{status:?}");
    srv.join_logs();
    let logs = srv.logs.lock().unwrap();
    assert!(
        logs.iter().any(|l| l.contains("\"request sent\"")),
        "request lines logged"
    );
    for l in logs.iter() {
        for k in [&key, &key2] {
            assert!(!l.contains(&k[17..]), "a key in a log line: {l}");
        }
        assert!(
            !l.contains(&wrong[7 + 17..]),
            "a refused key in a log line: {l}"
        );
    }
}

/// The new `serve` flags work from their `ESG_*` environment fallbacks, and
/// a bad origin is a usage error naming it.
#[test]
fn serve_security_flags_have_env_fallbacks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bad = Command::new(support::esg_bin())
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("ESG_CORS_ALLOW_ORIGIN", "https://ok.example,not-an-origin")
        .env_remove("ESG_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("not-an-origin"), "{}", stderr(&bad));

    let mut srv = Served::start(
        &[],
        &[
            ("OTEL_TRACES_EXPORTER", "none"),
            (
                "ESG_CORS_ALLOW_ORIGIN",
                "https://a.example,https://b.example",
            ),
            ("ESG_RATE_LIMIT_PER_MINUTE", "4"),
            ("ESG_REQUIRE_AUTH_FOR_READS", "true"),
        ],
    );
    let key = srv.add_key("env");
    let addr = srv.addr.clone();
    let bearer = format!("Bearer {key}");
    // Reads need the key (ESG_REQUIRE_AUTH_FOR_READS).
    let (st, _, body) = http(&addr, "GET", "/companies", &[], b"");
    assert_eq!((st, code(&body).as_str()), (401, "unauthorized"));
    // The second origin of the comma list is allowed (ESG_CORS_ALLOW_ORIGIN).
    let (st, head, _) = http(
        &addr,
        "GET",
        "/companies",
        &[("Origin", "https://b.example"), ("Authorization", &bearer)],
        b"",
    );
    assert_eq!(st, 200);
    assert!(
        head.contains("access-control-allow-origin: https://b.example"),
        "{head}"
    );
    // The fifth counted request in a minute is limited (ESG_RATE_LIMIT_PER_MINUTE=4).
    let (st, _, _) = http(
        &addr,
        "GET",
        "/documents",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(st, 200);
    let (st, _, _) = http(
        &addr,
        "GET",
        "/documents",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(st, 200);
    let (st, head, body) = http(
        &addr,
        "GET",
        "/documents",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!((st, code(&body).as_str()), (429, "rate_limited"), "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    assert_eq!(
        http(&addr, "GET", "/health", &[], b"").0,
        200,
        "probes are exempt"
    );
    srv.sigterm();
    let (status, _) = srv.wait_exit(Duration::from_secs(30)).expect("exit");
    assert!(status.success(), "{status:?}");
}
