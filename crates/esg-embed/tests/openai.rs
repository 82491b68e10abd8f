//! The OpenAI-compatible backend against real HTTP servers on 127.0.0.1,
//! started inside each test (a small HTTP/1.1 server on std's TcpListener
//! whose answers each test scripts).

mod common;

use esg_embed::{Embedder, LocalConfig, LocalEmbedder, OpenAiConfig, OpenAiEmbedder, cosine};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: serde_json::Value,
}

/// What the server answers: status, extra headers, body, delay before it.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
}

type Handler = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A scripted server; `handler(n, request)` answers the n-th request (0-based).
struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(handler: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        // Serves until the test process ends (each test has its own port).
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (handler, log) = (handler.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        Server { url, seen }
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Seen>>) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => authorization = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let seen = Seen {
        path,
        authorization,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    };
    let n = {
        let mut log = log.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    let reply = handler(n, &seen);
    std::thread::sleep(reply.delay);
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // The client may have timed out and gone: ignore write errors.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
}

/// The texts of a request.
fn inputs(seen: &Seen) -> Vec<String> {
    seen.body["input"]
        .as_array()
        .expect("input is an array")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// An OpenAI embeddings answer for `vectors`, items in reverse order (the
/// client must put them back by `index`).
fn answer(vectors: &[Vec<f32>]) -> serde_json::Value {
    let data: Vec<serde_json::Value> = vectors
        .iter()
        .enumerate()
        .rev()
        .map(|(i, v)| serde_json::json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    serde_json::json!({"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}})
}

/// A deterministic vector for a text (used when the model is absent).
fn fake_vector(text: &str, dim: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    (0..dim)
        .map(|i| {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407 + i as u64);
            ((h >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// A server answering `dim`-dimensional fake vectors for every input.
fn fake_server(dim: usize) -> Server {
    Server::start(move |_, seen| {
        let vectors: Vec<Vec<f32>> = inputs(seen).iter().map(|t| fake_vector(t, dim)).collect();
        Reply::json(200, answer(&vectors))
    })
}

fn config(server: &Server) -> OpenAiConfig {
    OpenAiConfig {
        timeout: Duration::from_secs(5),
        backoff: Duration::from_millis(20),
        ..OpenAiConfig::new(&server.url, "all-minilm")
    }
}

const TEXTS: [&str; 7] = [
    "We report Scope 1 and Scope 2 emissions using the GHG Protocol.",
    "The Board oversees climate-related risks.",
    "",
    "Physical risks include flooding of two distribution centres.",
    "climate risk",
    "Our transition plan is aligned with a 1.5°C pathway.",
    "We report Scope 1 and Scope 2 emissions using the GHG Protocol.",
];

/// A server backed by the real local embedder (when the model is
/// installed; deterministic vectors otherwise): the client returns the
/// same vectors as calling the embedder directly, in input order, across
/// batches.
#[test]
fn returns_the_servers_vectors_in_input_order_across_batches() {
    let local = common::model_dir()
        .map(|dir| Arc::new(LocalEmbedder::load(&LocalConfig::new(dir)).expect("the model loads")));
    let backend = local.clone();
    let server = Server::start(move |_, seen| {
        let texts = inputs(seen);
        let vectors = match &backend {
            Some(local) => {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                local.embed(&refs).unwrap()
            }
            None => texts.iter().map(|t| fake_vector(t, 384)).collect(),
        };
        Reply::json(200, answer(&vectors))
    });
    let client = OpenAiEmbedder::new(OpenAiConfig {
        batch_size: 3,
        ..config(&server)
    })
    .unwrap();
    assert_eq!(client.endpoint(), format!("{}/v1/embeddings", server.url));
    assert_eq!(client.dim(), 0, "unknown before the first answer");
    let got = client.embed(&TEXTS).unwrap();
    let want: Vec<Vec<f32>> = match &local {
        Some(local) => local.embed(&TEXTS).unwrap(),
        None => TEXTS.iter().map(|t| fake_vector(t, 384)).collect(),
    };
    assert_eq!(got.len(), TEXTS.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), 384);
        assert!(cosine(g, w) > 0.999999, "text {i}: {}", cosine(g, w));
    }
    assert_eq!(got[0], got[6]);
    assert_eq!(client.dim(), 384);
    assert_eq!(client.model_id(), "all-minilm");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "7 texts in batches of 3");
    assert_eq!(requests[0].path, "/v1/embeddings");
    assert_eq!(requests[0].body["model"], "all-minilm");
    assert_eq!(inputs(&requests[2]), vec![TEXTS[6].to_string()]);
    assert!(requests.iter().all(|r| r.authorization.is_none()));
    assert!(client.embed(&[]).unwrap().is_empty());
    assert_eq!(server.requests().len(), 3, "no request for no texts");
    println!(
        "openai round trip against {} vectors",
        if local.is_some() {
            "the local model's"
        } else {
            "deterministic"
        }
    );
}

#[test]
fn endpoint_is_built_from_base_v1_or_full_url() {
    for (url, endpoint) in [
        ("http://127.0.0.1:9", "http://127.0.0.1:9/v1/embeddings"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9/v1/embeddings"),
        ("http://h:8080/v1", "http://h:8080/v1/embeddings"),
        ("http://h/api/v1/embeddings", "http://h/api/v1/embeddings"),
    ] {
        let client = OpenAiEmbedder::new(OpenAiConfig::new(url, "m")).unwrap();
        assert_eq!(client.endpoint(), endpoint);
    }
}

#[test]
fn bad_configuration_is_invalid_config() {
    for (what, config) in [
        (
            "https",
            OpenAiConfig::new("https://api.example.invalid/v1", "m"),
        ),
        ("no scheme", OpenAiConfig::new("127.0.0.1:8080", "m")),
        ("empty model", OpenAiConfig::new("http://127.0.0.1:1", " ")),
        (
            "zero batch",
            OpenAiConfig {
                batch_size: 0,
                ..OpenAiConfig::new("http://127.0.0.1:1", "m")
            },
        ),
        (
            "zero timeout",
            OpenAiConfig {
                timeout: Duration::ZERO,
                ..OpenAiConfig::new("http://127.0.0.1:1", "m")
            },
        ),
    ] {
        let err = OpenAiEmbedder::new(config).unwrap_err();
        assert_eq!(err.code(), "invalid_config", "{what}: {err}");
    }
}

const SECRET: &str = "sk-test-5ecret-Key-0123456789";

/// The key goes out as a bearer token, and nowhere else: not in Debug
/// output, not in errors, even when the server echoes it back.
#[test]
fn api_key_is_sent_and_never_leaked() {
    let server = Server::start(|n, seen| {
        if n == 0 {
            let vectors: Vec<Vec<f32>> = inputs(seen).iter().map(|t| fake_vector(t, 8)).collect();
            Reply::json(200, answer(&vectors))
        } else {
            // A server that echoes the credentials it was given.
            Reply::json(
                401,
                serde_json::json!({"error": {"message": format!("invalid key {:?}", seen.authorization)}}),
            )
        }
    });
    let config = OpenAiConfig {
        api_key: Some(SECRET.to_string()),
        ..config(&server)
    };
    assert!(!format!("{config:?}").contains(SECRET));
    assert!(format!("{config:?}").contains("[redacted]"));
    let client = OpenAiEmbedder::new(config).unwrap();
    assert!(!format!("{client:?}").contains(SECRET));

    client.embed(&["first"]).unwrap();
    let err = client.embed(&["second"]).unwrap_err();
    assert_eq!(err.code(), "http_status", "{err}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("401"), "{shown}");
    assert!(
        shown.contains("[redacted]"),
        "the echo is redacted: {shown}"
    );
    assert!(!shown.contains(SECRET), "{shown}");

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "a 401 is not retried");
    for r in &requests {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {SECRET}").as_str())
        );
    }
}

/// A server slower than the timeout: every attempt times out, the client
/// retries, then gives a `request_timeout` naming the attempts.
#[test]
fn slow_server_times_out_retries_then_fails_clearly() {
    let server = Server::start(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..Reply::json(200, answer(&[vec![1.0; 8]]))
    });
    let client = OpenAiEmbedder::new(OpenAiConfig {
        timeout: Duration::from_millis(300),
        max_retries: 2,
        ..config(&server)
    })
    .unwrap();
    let started = Instant::now();
    let err = client.embed(&["slow"]).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), "request_timeout", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("3 attempt"), "{msg}");
    assert!(msg.contains(&server.url), "{msg}");
    assert_eq!(server.requests().len(), 3, "first attempt + 2 retries");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(
        took < Duration::from_secs(3),
        "no attempt waited for the answer: {took:?}"
    );
}

/// Slow once, then fast: the retry succeeds.
#[test]
fn timeout_then_success_is_retried() {
    let server = Server::start(|n, seen| {
        let vectors: Vec<Vec<f32>> = inputs(seen).iter().map(|t| fake_vector(t, 8)).collect();
        Reply {
            delay: if n == 0 {
                Duration::from_secs(2)
            } else {
                Duration::ZERO
            },
            ..Reply::json(200, answer(&vectors))
        }
    });
    let client = OpenAiEmbedder::new(OpenAiConfig {
        timeout: Duration::from_millis(300),
        ..config(&server)
    })
    .unwrap();
    let got = client.embed(&["a", "b"]).unwrap();
    assert_eq!(got, vec![fake_vector("a", 8), fake_vector("b", 8)]);
    assert_eq!(server.requests().len(), 2);
}

/// 500, then 429 (with Retry-After: 0), then success: both retried.
#[test]
fn server_errors_and_429_are_retried() {
    let server = Server::start(|n, seen| match n {
        0 => Reply::json(500, serde_json::json!({"error": "overloaded"})),
        1 => Reply {
            headers: vec![("retry-after", "0".into())],
            ..Reply::json(429, serde_json::json!({"error": "slow down"}))
        },
        _ => {
            let vectors: Vec<Vec<f32>> = inputs(seen).iter().map(|t| fake_vector(t, 8)).collect();
            Reply::json(200, answer(&vectors))
        }
    });
    let client = OpenAiEmbedder::new(config(&server)).unwrap();
    let got = client.embed(&["x"]).unwrap();
    assert_eq!(got, vec![fake_vector("x", 8)]);
    assert_eq!(server.requests().len(), 3);
}

/// A server that keeps failing: retried max_retries times, then the last
/// status and the start of its body.
#[test]
fn persistent_5xx_gives_up_after_the_retries() {
    let server =
        Server::start(|_, _| Reply::json(503, serde_json::json!({"error": "model loading"})));
    let client = OpenAiEmbedder::new(OpenAiConfig {
        max_retries: 2,
        ..config(&server)
    })
    .unwrap();
    let err = client.embed(&["x"]).unwrap_err();
    assert_eq!(err.code(), "http_status", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("503") && msg.contains("model loading") && msg.contains("3 attempt"),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 3);
}

/// 400 is the caller's mistake: not retried.
#[test]
fn client_errors_are_not_retried() {
    let server = Server::start(|_, _| {
        Reply::json(
            400,
            serde_json::json!({"error": {"message": "input must not be empty"}}),
        )
    });
    let client = OpenAiEmbedder::new(config(&server)).unwrap();
    let err = client.embed(&[""]).unwrap_err();
    assert_eq!(err.code(), "http_status", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("400") && msg.contains("input must not be empty"),
        "{msg}"
    );
    assert!(msg.contains("1 attempt"), "{msg}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn wrong_dimension_names_both_numbers() {
    let server = fake_server(8);
    let client = OpenAiEmbedder::new(OpenAiConfig {
        expected_dim: Some(384),
        ..config(&server)
    })
    .unwrap();
    assert_eq!(client.dim(), 384);
    let err = client.embed(&["a"]).unwrap_err();
    assert_eq!(err.code(), "dimension_mismatch", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("384") && msg.contains('8'), "{msg}");
    assert_eq!(server.requests().len(), 1, "a bad answer is not retried");
}

/// Without expected_dim, the first answer sets the dimension; vectors of
/// another size later (in the same answer or a later one) are refused.
#[test]
fn inconsistent_dimensions_are_refused() {
    let server = Server::start(|n, seen| {
        let dim = if n == 0 { 4 } else { 6 };
        let mut vectors: Vec<Vec<f32>> = inputs(seen).iter().map(|t| fake_vector(t, dim)).collect();
        if n == 2 {
            vectors[1].push(0.5);
        }
        Reply::json(200, answer(&vectors))
    });
    let client = OpenAiEmbedder::new(config(&server)).unwrap();
    assert_eq!(client.embed(&["a"]).unwrap()[0].len(), 4);
    let err = client.embed(&["b"]).unwrap_err();
    assert_eq!(err.code(), "dimension_mismatch", "{err}");
    assert!(
        err.to_string().contains("expected 4") && err.to_string().contains("got 6"),
        "{err}"
    );

    let fresh = OpenAiEmbedder::new(config(&server)).unwrap();
    let err = fresh.embed(&["c", "d"]).unwrap_err();
    assert_eq!(err.code(), "dimension_mismatch", "{err}");
}

#[test]
fn wrong_count_is_refused() {
    let server = Server::start(|_, seen| {
        let mut vectors: Vec<Vec<f32>> = inputs(seen).iter().map(|t| fake_vector(t, 8)).collect();
        vectors.pop();
        Reply::json(200, answer(&vectors))
    });
    let client = OpenAiEmbedder::new(config(&server)).unwrap();
    let err = client.embed(&["a", "b", "c"]).unwrap_err();
    assert_eq!(err.code(), "count_mismatch", "{err}");
    assert!(err.to_string().contains("2 vectors for 3 texts"), "{err}");
}

#[test]
fn malformed_answers_are_invalid_response() {
    let server = Server::start(|n, _| match n {
        0 => Reply::json(
            200,
            serde_json::json!({"data": [
            {"index": 0, "embedding": [1.0, 2.0]}, {"index": 0, "embedding": [1.0, 2.0]}]}),
        ),
        1 => Reply::json(
            200,
            serde_json::json!({"data": [
            {"index": 0, "embedding": [1.0, 2.0]}, {"index": 5, "embedding": [1.0, 2.0]}]}),
        ),
        2 => Reply::json(
            200,
            serde_json::json!({"data": [
            {"index": 0, "embedding": "AACAPwAAAEA="}, {"index": 1, "embedding": "AACAPwAAAEA="}]}),
        ),
        3 => Reply::json(
            200,
            serde_json::json!({"data": [
            {"index": 0, "embedding": [1.0, "x"]}, {"index": 1, "embedding": [1.0, 2.0]}]}),
        ),
        _ => Reply {
            body: "<html>not json</html>".into(),
            ..Reply::json(200, serde_json::Value::Null)
        },
    });
    let client = OpenAiEmbedder::new(config(&server)).unwrap();
    for expect in [
        "appears twice",
        "out of range",
        "base64",
        "non-number",
        "not an embeddings list",
    ] {
        let err = client.embed(&["a", "b"]).unwrap_err();
        assert_eq!(err.code(), "invalid_response", "{expect}: {err}");
        assert!(err.to_string().contains(expect), "{expect}: {err}");
    }
}

/// Nothing listens: connection refused, retried, then `request_failed`.
#[test]
fn unreachable_server_is_request_failed_after_retries() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = OpenAiEmbedder::new(OpenAiConfig {
        max_retries: 1,
        backoff: Duration::from_millis(10),
        api_key: Some(SECRET.into()),
        ..OpenAiConfig::new(format!("http://127.0.0.1:{port}"), "m")
    })
    .unwrap();
    let err = client.embed(&["a"]).unwrap_err();
    assert_eq!(err.code(), "request_failed", "{err}");
    let msg = format!("{err} {err:?}");
    assert!(
        msg.contains("2 attempt") && msg.contains(&port.to_string()),
        "{msg}"
    );
    assert!(!msg.contains(SECRET));
}
