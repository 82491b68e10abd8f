//! The one error type of this crate, with stable snake_case codes.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while loading an embedder or embedding text.
///
/// Each variant has a stable snake_case [`code`](EmbedError::code) that
/// callers may match on or put in an API error body; the `Display` text is
/// for people and may change. No variant ever holds an API key: the
/// OpenAI-compatible backend redacts it from anything it copies out of a
/// server's answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The model folder, or a file the embedder needs in it, does not exist.
    #[error("model file missing: {path} (fetch the model with scripts/fetch-model.sh)")]
    ModelFileMissing {
        /// The missing folder or file.
        path: PathBuf,
    },
    /// A model file exists but cannot be read or parsed.
    #[error("model file invalid: {path}: {reason}")]
    ModelFileInvalid {
        /// The unreadable or damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `config.json` describes a different model than the one this
    /// embedder implements.
    #[error("model config mismatch: {path}: {field} is {found}, expected {expected}")]
    ConfigMismatch {
        /// The `config.json` that disagrees.
        path: PathBuf,
        /// The field that disagrees.
        field: &'static str,
        /// The value this embedder needs.
        expected: String,
        /// The value in the file.
        found: String,
    },
    /// The caller's configuration is unusable (zero batch size, a URL the
    /// client cannot reach, ...).
    #[error("invalid embedder configuration: {0}")]
    InvalidConfig(String),
    /// Tokenisation or the forward pass failed.
    #[error("inference failed: {0}")]
    Inference(String),
    /// A stored vector's bytes are not a whole number of f32 values.
    #[error("invalid vector bytes: {len} bytes is not a multiple of 4")]
    InvalidVectorBytes {
        /// The length of the byte string.
        len: usize,
    },
    /// The embedding server could not be reached (connection refused,
    /// reset, DNS, ...), after all retries.
    #[error("embedding request to {url} failed after {attempts} attempt(s): {reason}")]
    Request {
        /// The endpoint.
        url: String,
        /// How many requests were sent.
        attempts: u32,
        /// The transport error of the last attempt.
        reason: String,
    },
    /// The embedding server did not answer within the per-request timeout,
    /// after all retries.
    #[error("embedding request to {url} timed out after {attempts} attempt(s) of {timeout:?} each")]
    Timeout {
        /// The endpoint.
        url: String,
        /// How many requests were sent.
        attempts: u32,
        /// The per-request timeout.
        timeout: Duration,
    },
    /// The embedding server answered with an error status (a 4xx at once,
    /// a 429/5xx after all retries).
    #[error("embedding server {url} answered HTTP {status} after {attempts} attempt(s): {body}")]
    HttpStatus {
        /// The endpoint.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// How many requests were sent.
        attempts: u32,
        /// The start of the response body (at most 300 characters, API key
        /// redacted).
        body: String,
    },
    /// The server's answer is not a valid embeddings response.
    #[error("invalid embeddings response from {url}: {reason}")]
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// The server returned a different number of vectors than texts sent.
    #[error("embeddings response from {url} has {found} vectors for {expected} texts")]
    CountMismatch {
        /// The endpoint.
        url: String,
        /// How many texts were sent.
        expected: usize,
        /// How many vectors came back.
        found: usize,
    },
    /// Vectors have a different dimension than expected (or than each other).
    #[error("dimension mismatch: expected {expected}-dimensional vectors, got {found}")]
    DimensionMismatch {
        /// The expected dimension.
        expected: usize,
        /// The dimension found.
        found: usize,
    },
}

impl EmbedError {
    /// The stable snake_case code of this error.
    ///
    /// `model_file_missing`, `model_file_invalid`, `model_config_mismatch`,
    /// `invalid_config`, `inference_failed`, `invalid_vector_bytes`,
    /// `request_failed`, `request_timeout`, `http_status`,
    /// `invalid_response`, `count_mismatch`, `dimension_mismatch`.
    pub fn code(&self) -> &'static str {
        match self {
            EmbedError::ModelFileMissing { .. } => "model_file_missing",
            EmbedError::ModelFileInvalid { .. } => "model_file_invalid",
            EmbedError::ConfigMismatch { .. } => "model_config_mismatch",
            EmbedError::InvalidConfig(_) => "invalid_config",
            EmbedError::Inference(_) => "inference_failed",
            EmbedError::InvalidVectorBytes { .. } => "invalid_vector_bytes",
            EmbedError::Request { .. } => "request_failed",
            EmbedError::Timeout { .. } => "request_timeout",
            EmbedError::HttpStatus { .. } => "http_status",
            EmbedError::InvalidResponse { .. } => "invalid_response",
            EmbedError::CountMismatch { .. } => "count_mismatch",
            EmbedError::DimensionMismatch { .. } => "dimension_mismatch",
        }
    }
}
