//! `esg healthcheck`: asks a running server whether it is healthy, for a
//! container `HEALTHCHECK` or an orchestrator probe in an image without curl.
//!
//! A plain HTTP/1.1 `GET` over [`std::net::TcpStream`] with a time limit on
//! every step (connect, write, read). Healthy means status 200 and a JSON
//! body that says so: `"status": "healthy"` (`/health`), `"ready": true`
//! (`/ready`) or `"live": true` (`/live`). Anything else is an error with a
//! message that says what was seen; the process then exits 1.

use crate::cli::HealthcheckArgs;
use anyhow::{Context, anyhow, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Largest response read (probe bodies are a few hundred bytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The parts of an `http://` URL the check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 when the URL has none).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path]`. `https` is refused: the check
    /// talks to the server inside its own container or pod.
    ///
    /// # Errors
    /// When the URL is not a plain `http://` URL with a host.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .trim()
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url:?} is not an http:// URL (https is not supported)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            bail!("{url:?}: user information in the URL is not supported");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| anyhow!("{url:?}: unclosed '[' in the host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            bail!("{url:?} has no host");
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| anyhow!("{url:?}: port {p:?} is not a number in 1-65535"))?,
        };
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Response body (de-chunked).
    pub body: String,
}

/// Runs the check and prints one line; exit 0 when healthy.
///
/// # Errors
/// When the server cannot be reached in time or does not say it is healthy.
pub fn run(args: &HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let answer = check(args)?;
    println!(
        "healthy: {} answered {} in {} ms",
        args.url,
        answer.status,
        started.elapsed().as_millis()
    );
    Ok(ExitCode::SUCCESS)
}

/// Fetches `args.url` and checks that the answer says healthy.
///
/// # Errors
/// As [`run`].
pub fn check(args: &HealthcheckArgs) -> anyhow::Result<Answer> {
    let url = HttpUrl::parse(&args.url)?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let answer = get(&url, timeout).with_context(|| format!("unhealthy: GET {}", args.url))?;
    let json: Option<serde_json::Value> = serde_json::from_str(&answer.body).ok();
    let says_healthy = json
        .as_ref()
        .is_some_and(|v| v["status"] == "healthy" || v["ready"] == true || v["live"] == true);
    if answer.status != 200 {
        bail!(
            "unhealthy: GET {} answered {}: {}",
            args.url,
            answer.status,
            snippet(&answer.body)
        );
    }
    if !says_healthy {
        bail!(
            "unhealthy: GET {} answered 200 but the body does not say healthy \
             (expected \"status\":\"healthy\", \"ready\":true or \"live\":true): {}",
            args.url,
            snippet(&answer.body)
        );
    }
    Ok(answer)
}

fn snippet(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".to_string();
    }
    let mut s: String = one_line.chars().take(300).collect();
    if s.len() < one_line.len() {
        s.push('…');
    }
    s
}

/// One `GET` with `Connection: close`; the whole exchange must finish
/// within `timeout`.
///
/// # Errors
/// On resolution, connection, I/O or protocol failures, and on timeout.
pub fn get(url: &HttpUrl, timeout: Duration) -> anyhow::Result<Answer> {
    let deadline = Instant::now() + timeout;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow!("no complete answer within {} ms", timeout.as_millis()))
    };
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", url.host))?
        .collect();
    if addrs.is_empty() {
        bail!("{} resolves to no address", url.host);
    }
    let mut last_err = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, remaining()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(anyhow!("cannot connect to {a}: {e}")),
        }
    }
    let mut stream = match stream {
        Some(s) => s,
        None => return Err(last_err.unwrap_or_else(|| anyhow!("no address to connect to"))),
    };
    stream.set_write_timeout(Some(remaining()?))?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: esg-healthcheck/{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    )
    .context("cannot send the request")?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        stream.set_read_timeout(Some(remaining()?))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_RESPONSE_BYTES {
                    bail!("response larger than {MAX_RESPONSE_BYTES} bytes");
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!("no complete answer within {} ms", timeout.as_millis())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!(e).context("cannot read the answer")),
        }
    }
    parse_response(&raw)
}

/// Parses a whole HTTP/1.x response (status line, headers, body with
/// `Content-Length`, chunked encoding, or up to the end of the stream).
///
/// # Errors
/// When the bytes are not an HTTP/1.x response.
pub fn parse_response(raw: &[u8]) -> anyhow::Result<Answer> {
    if raw.is_empty() {
        bail!("the connection closed without an answer");
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("incomplete HTTP response (no end of headers)"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x response: {:?}", snippet(status_line));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = Some(
                    v.parse::<usize>()
                        .map_err(|_| anyhow!("bad Content-Length {v:?}"))?,
                );
            }
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        if body.len() < n {
            bail!(
                "truncated body: {} of {n} bytes (Content-Length)",
                body.len()
            );
        }
        body[..n].to_vec()
    } else {
        body.to_vec()
    };
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| anyhow!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("truncated chunked body");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_and_without_port_and_path() {
        let u = HttpUrl::parse("http://127.0.0.1:8000/health").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8000, "/health")
        );
        let u = HttpUrl::parse("http://api").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("api", 80, "/"));
        assert_eq!(u.host_header(), "api");
        let u = HttpUrl::parse("http://[::1]:9/ready?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9, "/ready?x=1")
        );
        assert_eq!(u.host_header(), "[::1]:9");
        for bad in [
            "https://x/health",
            "ftp://x",
            "http://:80/",
            "http://x:0/",
            "http://x:99999/",
            "http://u@x/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_parse_by_length_chunks_or_close() {
        let a = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!((a.status, a.body.as_str()), (200, "{}"));
        let a = parse_response(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((a.status, a.body.as_str()), (503, "abcde"));
        let a = parse_response(b"HTTP/1.0 200 OK\r\n\r\nto the end").unwrap();
        assert_eq!(a.body, "to the end");
        assert!(parse_response(b"").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length").is_err());
    }
}
