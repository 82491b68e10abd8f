//! Server configuration: where to listen, where the data lives, how to
//! extract uploads, and the limits that protect the process.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default listen address (`ESG_LISTEN`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
/// Default OpenTelemetry `service.name`.
pub const DEFAULT_SERVICE_NAME: &str = "esg-scoring-api";

/// How uploaded documents are extracted.
#[derive(Debug, Clone)]
pub enum Extraction {
    /// In a bounded child process: `program args...` must run
    /// [`esg_ingest::sandbox::worker_main`] (the `esg` binary with its hidden
    /// `__extract-worker` subcommand).
    Sandbox {
        /// Path of the worker program (normally the running `esg` binary).
        program: PathBuf,
        /// Arguments that make `program` act as the extraction worker.
        args: Vec<OsString>,
        /// Wall-clock limit per document.
        timeout: Duration,
        /// Address-space limit per document, in bytes.
        memory_limit: u64,
        /// Threads that read one PDF's pages (0: one per core).
        threads: usize,
    },
    /// In this process, without time or memory bounds. For tests and trusted
    /// input only.
    InProcess,
}

impl Extraction {
    /// The sandbox running `program __extract-worker` with the default limits.
    pub fn esg_worker(program: impl Into<PathBuf>) -> Self {
        Extraction::Sandbox {
            program: program.into(),
            args: vec!["__extract-worker".into()],
            timeout: esg_ingest::sandbox::DEFAULT_TIMEOUT,
            memory_limit: esg_ingest::sandbox::DEFAULT_MEMORY_LIMIT,
            threads: 0,
        }
    }
}

/// Format of the log lines on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line (DESIGN §7).
    #[default]
    Json,
    /// Human-readable text.
    Text,
}

/// Limits that answer with the JSON error shape when crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest JSON request body, in bytes (413 `payload_too_large`).
    pub json_body_bytes: usize,
    /// Largest uploaded document, in bytes (413 `payload_too_large`).
    pub upload_body_bytes: usize,
    /// Longest wait for the next bytes of an upload body (408
    /// `request_timeout`): a client trickling its upload does not hold a
    /// request slot until the request timeout.
    pub upload_idle_timeout: Duration,
    /// Longest time a request may take (408 `request_timeout`). Probes and
    /// `/metrics` are exempt.
    pub request_timeout: Duration,
    /// Requests served at once (429 `too_many_requests` with `Retry-After`
    /// beyond it). Probes and `/metrics` are exempt.
    pub max_concurrent_requests: usize,
    /// How long in-flight requests may run after shutdown begins.
    pub drain_timeout: Duration,
    /// Longest time a client may take to send a request's head, and
    /// longest idle time of a kept-alive connection; the connection is
    /// closed beyond it (slow-header clients cannot hold connections open).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            json_body_bytes: 1 << 20,
            upload_body_bytes: 256 << 20,
            upload_idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(300),
            max_concurrent_requests: 64,
            drain_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Authentication, CORS, rate limiting and the admin listener (issue 6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// The API key file; `None` is `<data-dir>/api-keys.json`.
    pub api_keys_file: Option<PathBuf>,
    /// Also require a key for read-only endpoints (probes, `/metrics` and
    /// `/openapi.json` stay open).
    pub require_auth_for_reads: bool,
    /// Origins allowed by CORS (`*` allows any); empty turns CORS off.
    pub cors_allow_origins: Vec<String>,
    /// Requests per minute per client IP (token bucket, burst of one
    /// minute's worth); 0 turns rate limiting off.
    pub rate_limit_per_minute: u32,
    /// Serve `/health`, `/live`, `/ready` and `/metrics` on this address too;
    /// `/metrics` then leaves the main listener.
    pub admin_listen: Option<SocketAddr>,
}

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: the SQLite database (unless [`ServerConfig::store`]
    /// names PostgreSQL), the upload spool, the default key file.
    pub data_dir: PathBuf,
    /// Where the store is: SQLite in `data_dir` (the default) or a
    /// PostgreSQL database shared by several replicas.
    pub store: esg_store::StoreLocation,
    /// Pool size and timeouts of a PostgreSQL store.
    pub pg: esg_store::PgOptions,
    /// The kept source files (content-addressed); `<data-dir>/files` by
    /// default, a shared volume when several replicas serve one database.
    pub files_dir: PathBuf,
    /// Rubric file; `None` uses the built-in rubric v3.0.
    pub rubric_path: Option<PathBuf>,
    /// How uploads are extracted.
    pub extraction: Extraction,
    /// Request limits and drain timeout.
    pub limits: Limits,
    /// Log line format.
    pub log_format: LogFormat,
    /// `service.name` reported by `/health` and in traces.
    pub service_name: String,
    /// API keys, CORS, rate limiting, admin listener.
    pub security: SecurityConfig,
    /// Bound of the company-year index cache in bytes (`--cache-mb`); 0
    /// turns it off (see [`crate::score_cache`]).
    pub cache_bytes: u64,
    /// The embedder for semantic retrieval and background embedding.
    pub embedder: EmbedderConfig,
}

/// Which embedder the server loads (see [`crate::embedding`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EmbedderConfig {
    /// None: `semantic=1` answers 503 `embedder_unavailable`.
    #[default]
    Off,
    /// all-MiniLM-L6-v2 in process from a model folder.
    Local(esg_embed::LocalConfig),
    /// An OpenAI-compatible `/v1/embeddings` server.
    OpenAi(esg_embed::OpenAiConfig),
}

/// Default bound of the company-year index cache: 256 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

impl ServerConfig {
    /// A configuration with the defaults: listen on [`DEFAULT_LISTEN`],
    /// built-in rubric, default limits, JSON logs, service name from
    /// `OTEL_SERVICE_NAME` or [`DEFAULT_SERVICE_NAME`].
    pub fn new(data_dir: impl Into<PathBuf>, extraction: Extraction) -> Self {
        let data_dir: PathBuf = data_dir.into();
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            store: esg_store::StoreLocation::Sqlite {
                data_dir: data_dir.clone(),
            },
            pg: esg_store::PgOptions::default(),
            files_dir: esg_store::FileStore::in_data_dir(&data_dir)
                .root()
                .to_path_buf(),
            data_dir,
            rubric_path: None,
            extraction,
            limits: Limits::default(),
            log_format: LogFormat::Json,
            service_name: service_name_from_env(),
            security: SecurityConfig::default(),
            cache_bytes: DEFAULT_CACHE_BYTES,
            embedder: EmbedderConfig::Off,
        }
    }

    /// The API key file: `security.api_keys_file`, else
    /// `<data-dir>/api-keys.json`.
    pub fn api_keys_path(&self) -> PathBuf {
        self.security
            .api_keys_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(crate::auth::DEFAULT_FILE_NAME))
    }

    /// Where uploads are spooled before extraction: `<data-dir>/tmp`.
    pub fn upload_tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }
}

/// `OTEL_SERVICE_NAME` when set and not blank, else [`DEFAULT_SERVICE_NAME`].
pub fn service_name_from_env() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string())
}
