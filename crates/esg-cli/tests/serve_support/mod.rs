//! Runs the real `esg serve` binary on 127.0.0.1:0 and talks plain HTTP/1.1
//! to it over std `TcpStream`s (no HTTP client library between the test and
//! the server). stdout is drained by a thread into [`Served::logs`] so the
//! server never blocks on a full pipe.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The sample report shipped with the repository.
pub fn sample() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples/northwind-2024-sustainability.txt"),
    )
    .expect("samples/northwind-2024-sustainability.txt")
}

/// Company of [`sample`].
pub const COMPANY_QS: &str = "Northwind%20Components%20Ltd";

/// Every `OTEL_*` variable the server reads; removed from the child's
/// environment before a test sets its own.
pub const OTEL_VARS: &[&str] = &[
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
];

/// Runs `esg --data-dir DATA keys add --label LABEL` and returns the key
/// it printed on stdout.
pub fn add_key(data: &Path, label: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_esg"))
        .arg("--data-dir")
        .arg(data)
        .args(["keys", "add", "--label", label])
        .env_remove("ESG_DATA_DIR")
        .env_remove("ESG_API_KEYS_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("run esg keys add");
    assert!(
        out.status.success(),
        "esg keys add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 key")
        .trim()
        .to_string()
}

/// `esg --data-dir DATA serve --listen LISTEN EXTRA_ARGS` with the
/// caller's `ESG_DATA_DIR`, `RUST_LOG` and OpenTelemetry variables removed,
/// then `env` set; stdin null, stdout piped, stderr null.
pub fn serve_command(
    data: &Path,
    listen: &str,
    extra_args: &[&str],
    env: &[(&str, &str)],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esg"));
    cmd.arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", listen])
        .args(extra_args)
        .env_remove("ESG_DATA_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for v in OTEL_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running `esg serve`.
pub struct Served {
    pub child: Child,
    pub addr: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    /// stderr lines (drained by a thread too).
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub data: PathBuf,
    stdout_reader: Option<std::thread::JoinHandle<()>>,
    _tmp: tempfile::TempDir,
}

/// An HTTP response: status, lower-cased header names, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// The first header named `name` (lower case), or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Writes a request head (with `Connection: close`).
pub fn write_head(
    s: &mut TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_length: usize,
) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {content_length}\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write request head");
}

/// Reads a whole `Connection: close` response.
pub fn read_response(s: &mut TcpStream) -> Resp {
    try_read_response(s).expect("read response")
}

/// [`read_response`], with I/O errors (a reset connection) returned.
pub fn try_read_response(s: &mut TcpStream) -> std::io::Result<Resp> {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(parse_response(&raw))
}

/// Parses a raw HTTP/1.1 response (no chunked bodies: the server sends
/// Content-Length for its JSON and text answers).
pub fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// One request on a new connection.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write_head(&mut s, addr, method, path, headers, body.len());
    s.write_all(body)?;
    try_read_response(&mut s)
}

impl Served {
    /// Starts `esg --data-dir TMP serve --listen 127.0.0.1:0 extra_args...`
    /// with the `OTEL_*` variables cleared and then `env` set, waits for the
    /// `listening` log line and for `/ready` to answer 200.
    pub fn start(extra_args: &[&str], env: &[(&str, &str)]) -> Served {
        let s = Self::spawn_with(|_| {}, extra_args, env);
        s.wait_ready();
        s
    }

    /// Like [`Served::start`], but runs `setup` on the (not yet existing)
    /// data directory first, e.g. to add API keys, and returns as soon as
    /// the `listening` line is logged, without waiting for `/ready`.
    pub fn spawn_with(
        setup: impl FnOnce(&Path),
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Served {
        let tmp = tempfile::tempdir().expect("tempdir");
        setup(&tmp.path().join("data"));
        Self::spawn_in(tmp, extra_args, env)
    }

    /// [`Served::start`] on a data directory where `esg ingest` has stored
    /// the sample report (company "Northwind Components Ltd", 2024).
    pub fn start_ingested(extra_args: &[&str], env: &[(&str, &str)]) -> Served {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sample = tmp.path().join("northwind-2024.txt");
        std::fs::write(&sample, self::sample()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_esg"))
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .args([
                "ingest",
                "--company",
                "Northwind Components Ltd",
                "--year",
                "2024",
            ])
            .arg(&sample)
            .env_remove("ESG_DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .expect("run esg ingest");
        assert!(
            out.status.success(),
            "esg ingest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = Self::spawn_in(tmp, extra_args, env);
        s.wait_ready();
        s
    }

    fn spawn_in(tmp: tempfile::TempDir, extra_args: &[&str], env: &[(&str, &str)]) -> Served {
        let data = tmp.path().join("data");
        let mut cmd = serve_command(&data, "127.0.0.1:0", extra_args, env);
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start esg serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("stderr");
        let stderr2 = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                stderr2.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().expect("stdout");
        let logs2 = logs.clone();
        let stdout_reader = std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !sent
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "listening"
                    && let Some(a) = v["listen"].as_str()
                {
                    let _ = tx.send(a.to_string());
                    sent = true;
                }
                logs2.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no 'listening' log line; stdout so far: {:?}; stderr: {:?}",
                    logs.lock().unwrap(),
                    stderr.lock().unwrap()
                );
            }
        };
        Served {
            child,
            addr,
            logs,
            stderr,
            data,
            stdout_reader: Some(stdout_reader),
            _tmp: tmp,
        }
    }

    /// Waits (up to 30 s) until `/ready` answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.get("/ready");
            if r.status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "never ready: {r:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 30 s) for a JSON log line whose `message` is `message`
    /// and returns its string field `field`.
    pub fn wait_log_field(&self, message: &str, field: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.logs.lock().unwrap().iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == message).then(|| v[field].as_str().map(str::to_string))?
            });
            if let Some(f) = found {
                return f;
            }
            assert!(
                Instant::now() < deadline,
                "no {message:?} log line with {field:?}: {:?}",
                self.logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `esg keys add --label LABEL` on this server's data directory
    /// and returns the key it printed (the server picks new keys up
    /// without a restart).
    pub fn add_key(&self, label: &str) -> String {
        add_key(&self.data, label)
    }

    /// GET `path` on a new connection.
    pub fn get(&self, path: &str) -> Resp {
        request(&self.addr, "GET", path, &[], b"").expect("GET")
    }

    /// Any request on a new connection.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(&self.addr, method, path, headers, body).expect("request")
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc_kill(self.child.id() as i32, 15) };
        assert_eq!(rc, 0, "kill(SIGTERM)");
    }

    /// Waits up to `limit` for the process to exit; `None` if it did not.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some((st, started.elapsed()));
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the process has exited: waits until every stdout line it wrote
    /// is in [`Served::logs`].
    pub fn join_logs(&mut self) {
        if let Some(h) = self.stdout_reader.take() {
            h.join().expect("stdout reader");
        }
    }

    /// The stdout lines so far, parsed as JSON (every line must be JSON).
    pub fn json_logs(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
