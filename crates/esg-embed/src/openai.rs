//! A client for any server speaking the OpenAI embeddings protocol
//! (`POST /v1/embeddings`): text-embeddings-inference, Ollama, vLLM,
//! OpenAI itself.
//!
//! Texts are sent in batches of [`OpenAiConfig::batch_size`] as
//! `{"model": ..., "input": [...]}`; each answer is checked (one vector per
//! text, indices `0..n` each once, numbers only, one dimension throughout,
//! [`OpenAiConfig::expected_dim`] when given) and put back in input order
//! by `index`.
//!
//! A request that times out ([`OpenAiConfig::timeout`]), cannot connect, or
//! is answered 429 or 5xx is retried up to [`OpenAiConfig::max_retries`]
//! times, waiting [`OpenAiConfig::backoff`] then twice as long each time
//! (at most 30 s; a `Retry-After` of up to 30 s is honoured). Other 4xx
//! answers are the caller's mistake and fail at once.
//!
//! The API key (the caller reads it from `ESG_EMBEDDER_API_KEY`) is sent as
//! `Authorization: Bearer <key>` and appears nowhere else: `Debug` prints
//! `[redacted]`, and any text copied from a server's answer into an error
//! has the key replaced by `[redacted]`.
//!
//! The client is reqwest's blocking one: call it from a plain thread (in an
//! async server, from `spawn_blocking`), never from inside an async task.
//! This build has no TLS, so the URL must be `http://` (a server on the
//! host or a private network, or a TLS-terminating proxy); an `https://` URL
//! is refused with `invalid_config`.

use crate::{EmbedError, Embedder};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How much of an error answer's body goes into [`EmbedError::HttpStatus`].
const BODY_EXCERPT_CHARS: usize = 300;

/// How to reach the embedding server.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// The server: a base URL (`http://127.0.0.1:8080`, to which
    /// `/v1/embeddings` is added), a URL ending in `/v1` (`/embeddings` is
    /// added) or the full endpoint ending in `/embeddings`.
    pub url: String,
    /// The `model` field of each request, also reported as
    /// [`Embedder::model_id`].
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set. Never printed.
    pub api_key: Option<String>,
    /// Texts per request (default 64).
    pub batch_size: usize,
    /// Timeout of one request, connection included (default 30 s).
    pub timeout: Duration,
    /// Retries after the first attempt on timeouts, connection errors, 429
    /// and 5xx (default 3).
    pub max_retries: u32,
    /// Wait before the first retry, doubled for each next one (default
    /// 500 ms).
    pub backoff: Duration,
    /// The dimension the vectors must have; `None` accepts the dimension of
    /// the first answer and holds later ones to it.
    pub expected_dim: Option<usize>,
}

impl OpenAiConfig {
    /// A configuration with the defaults above.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            url: url.into(),
            model: model.into(),
            api_key: None,
            batch_size: 64,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff: Duration::from_millis(500),
            expected_dim: None,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("expected_dim", &self.expected_dim)
            .finish()
    }
}

/// An [`Embedder`] backed by an OpenAI-compatible `/v1/embeddings` server.
pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    endpoint: String,
    auth: Option<HeaderValue>,
    client: reqwest::blocking::Client,
    /// `expected_dim`, or the dimension of the first valid answer; 0 until
    /// known.
    dim: AtomicUsize,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One `data` item of the answer.
#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: serde_json::Value,
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

/// Why one attempt failed, and whether trying again may help.
enum Failure {
    Retryable(AttemptError),
    Fatal(EmbedError),
}

enum AttemptError {
    Timeout,
    Transport(String),
    Status(u16, String, Option<Duration>),
}

impl OpenAiEmbedder {
    /// Checks the configuration and builds the HTTP client (no request is
    /// sent).
    ///
    /// Errors (`invalid_config`): an empty model name, a zero batch size or
    /// timeout, a URL that is not `http://`, an API key that cannot be a
    /// header value.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiEmbedder, EmbedError> {
        let bad = |m: &str| Err(EmbedError::InvalidConfig(m.to_string()));
        if config.model.trim().is_empty() {
            return bad("the model name is empty");
        }
        if config.batch_size == 0 {
            return bad("batch_size must be at least 1");
        }
        if config.timeout.is_zero() {
            return bad("timeout must be longer than zero");
        }
        if config.expected_dim == Some(0) {
            return bad("expected_dim must be at least 1");
        }
        let url = config.url.trim().trim_end_matches('/');
        if url.starts_with("https://") {
            return bad(
                "https URLs need TLS, which this build does not include: use an http:// URL (e.g. a TLS-terminating proxy on the host)",
            );
        }
        if !url.starts_with("http://") || url.len() <= "http://".len() {
            return Err(EmbedError::InvalidConfig(format!(
                "the embedding server URL must start with http://, got {:?}",
                config.url
            )));
        }
        let endpoint = if url.ends_with("/embeddings") {
            url.to_string()
        } else if url.ends_with("/v1") {
            format!("{url}/embeddings")
        } else {
            format!("{url}/v1/embeddings")
        };
        let auth = match &config.api_key {
            None => None,
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    EmbedError::InvalidConfig(
                        "the API key holds characters that cannot be sent in a header".into(),
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| EmbedError::InvalidConfig(format!("cannot build the HTTP client: {e}")))?;
        Ok(OpenAiEmbedder {
            dim: AtomicUsize::new(config.expected_dim.unwrap_or(0)),
            endpoint,
            auth,
            client,
            config,
        })
    }

    /// The full endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Replaces the API key in text copied from an answer.
    fn redact(&self, text: &str) -> String {
        match &self.config.api_key {
            Some(key) if !key.is_empty() => text.replace(key.as_str(), "[redacted]"),
            _ => text.to_string(),
        }
    }

    /// Sends one batch, with retries, and returns its validated vectors in
    /// input order.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = serde_json::json!({ "model": self.config.model, "input": texts });
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(&body) {
                Ok(bytes) => return self.validate(&bytes, texts.len()),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retryable(e)) => e,
            };
            if attempts > self.config.max_retries {
                return Err(self.give_up(failure, attempts));
            }
            let backoff = self
                .config
                .backoff
                .saturating_mul(1 << (attempts - 1).min(16))
                .min(MAX_BACKOFF);
            let wait = match &failure {
                AttemptError::Status(_, _, Some(after)) => (*after).min(MAX_BACKOFF),
                _ => backoff,
            };
            std::thread::sleep(wait);
        }
    }

    fn attempt(&self, body: &serde_json::Value) -> Result<Vec<u8>, Failure> {
        let mut request = self.client.post(&self.endpoint).json(body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                Failure::Retryable(AttemptError::Timeout)
            } else {
                // Without the URL: the endpoint is in the final error once.
                Failure::Retryable(AttemptError::Transport(
                    self.redact(&error_chain(&e.without_url())),
                ))
            }
        };
        let response = request.send().map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Reading the body is bounded by the same per-request timeout.
        let bytes = response.bytes().map_err(transport)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let excerpt: String = String::from_utf8_lossy(&bytes)
            .chars()
            .take(BODY_EXCERPT_CHARS)
            .collect();
        let excerpt = self.redact(excerpt.trim());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(Failure::Retryable(AttemptError::Status(
                status.as_u16(),
                excerpt,
                retry_after,
            )))
        } else {
            Err(Failure::Fatal(EmbedError::HttpStatus {
                url: self.endpoint.clone(),
                status: status.as_u16(),
                attempts: 1,
                body: excerpt,
            }))
        }
    }

    fn give_up(&self, failure: AttemptError, attempts: u32) -> EmbedError {
        let url = self.endpoint.clone();
        match failure {
            AttemptError::Timeout => EmbedError::Timeout {
                url,
                attempts,
                timeout: self.config.timeout,
            },
            AttemptError::Transport(reason) => EmbedError::Request {
                url,
                attempts,
                reason,
            },
            AttemptError::Status(status, body, _) => EmbedError::HttpStatus {
                url,
                status,
                attempts,
                body,
            },
        }
    }

    fn validate(&self, bytes: &[u8], sent: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let invalid = |reason: String| EmbedError::InvalidResponse {
            url: self.endpoint.clone(),
            reason: self.redact(&reason),
        };
        let answer: Answer = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not an embeddings list ({e})")))?;
        if answer.data.len() != sent {
            return Err(EmbedError::CountMismatch {
                url: self.endpoint.clone(),
                expected: sent,
                found: answer.data.len(),
            });
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; sent];
        for item in answer.data {
            if item.index >= sent {
                return Err(invalid(format!(
                    "index {} out of range for {sent} inputs",
                    item.index
                )));
            }
            if out[item.index].is_some() {
                return Err(invalid(format!("index {} appears twice", item.index)));
            }
            let vector = match item.embedding {
                serde_json::Value::Array(values) => values
                    .iter()
                    .map(|v| v.as_f64().map(|x| x as f32))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| {
                        invalid(format!("embedding {} holds a non-number", item.index))
                    })?,
                serde_json::Value::String(_) => {
                    return Err(invalid(format!(
                        "embedding {} is a string (base64?); floats expected",
                        item.index
                    )));
                }
                _ => return Err(invalid(format!("embedding {} is not an array", item.index))),
            };
            if vector.is_empty() {
                return Err(invalid(format!("embedding {} is empty", item.index)));
            }
            self.check_dim(vector.len())?;
            out[item.index] = Some(vector);
        }
        // Every index is in range and none repeats, so all are filled.
        Ok(out.into_iter().flatten().collect())
    }

    /// Holds `found` to the expected (or first seen) dimension.
    fn check_dim(&self, found: usize) -> Result<(), EmbedError> {
        let expected = match self
            .dim
            .compare_exchange(0, found, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return Ok(()),
            Err(known) => known,
        };
        if expected == found {
            Ok(())
        } else {
            Err(EmbedError::DimensionMismatch { expected, found })
        }
    }
}

/// An error and its sources on one line ("a: b: c").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    /// `expected_dim`, or the dimension of the first answer; 0 before the
    /// first answer when no dimension was configured.
    fn dim(&self) -> usize {
        self.dim.load(Ordering::SeqCst)
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }
}
