//! Command-line arguments. Every flag has an `ESG_*` environment fallback.
//!
//! The arguments' doc comments are also their `--help` text, where
//! `[default: <data-dir>/…]` is what a user should read; rustdoc would take
//! `<data-dir>` for an HTML tag and the brackets for a link.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// ESG Scoring API: ingest sustainability reports and score ESG maturity with cited evidence.
#[derive(Debug, Parser)]
#[command(name = "esg", version, about, long_about = None)]
pub struct Cli {
    /// Data directory holding the SQLite store
    /// [default: $XDG_DATA_HOME/esg-scoring-api, else ~/.local/share/esg-scoring-api]
    #[arg(long, global = true, env = "ESG_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Directory of the kept source files (content-addressed by SHA-256); share it between
    /// replicas that serve one PostgreSQL database [default: <data-dir>/files]
    #[arg(long, global = true, env = "ESG_FILES_DIR", value_name = "DIR")]
    pub files_dir: Option<PathBuf>,

    /// PostgreSQL store instead of SQLite under --data-dir: postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=MODE&sslrootcert=FILE]
    /// (sslmode as libpq: disable, prefer, require, verify-ca, verify-full)
    /// (source files stay under --files-dir)
    #[arg(
        long,
        global = true,
        env = "ESG_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Most PostgreSQL connections this process opens (the pool's bound).
    #[arg(long, global = true, env = "ESG_DB_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024), value_name = "N")]
    pub db_pool_size: u32,

    /// Longest wait for a PostgreSQL connection (new, or free in the pool), in seconds.
    #[arg(long, global = true, env = "ESG_DB_CONNECT_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600), value_name = "SECS")]
    pub db_connect_timeout_secs: u64,

    /// Longest a PostgreSQL statement may run (statement_timeout), in seconds.
    #[arg(long, global = true, env = "ESG_DB_STATEMENT_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400), value_name = "SECS")]
    pub db_statement_timeout_secs: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest report files (PDF, HTML, text) or directories of them.
    Ingest(IngestArgs),
    /// List the companies on file.
    Companies(ListArgs),
    /// List the documents on file.
    Documents(DocumentsArgs),
    /// Search one company's passages (BM25 over its chunks) for a question.
    Search(SearchArgs),
    /// Score one company's ESG maturity on the rubric, with cited evidence.
    Score(ScoreArgs),
    /// Compute the embedding vectors of chunks that have none (semantic retrieval), or print one text's vector.
    Embed(EmbedArgs),
    /// Serve the HTTP API (probes, metrics, traces, JSON logs) until SIGTERM/SIGINT.
    Serve(ServeArgs),
    /// Manage the API keys the server requires for uploads (add, list, revoke).
    Keys(KeysArgs),
    /// Manage the store itself: copy a SQLite store into PostgreSQL.
    Store(StoreArgs),
    /// Ask a running server whether it is healthy (exit 0) or not (exit 1); for container health checks.
    Healthcheck(HealthcheckArgs),
    /// Internal: extraction worker (reads a document on stdin, writes JSON).
    #[command(name = "__extract-worker", hide = true)]
    ExtractWorker,
}

/// `esg ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Company the reports belong to (any spelling; matched case- and punctuation-insensitively).
    #[arg(long, env = "ESG_COMPANY")]
    pub company: String,
    /// Report year.
    #[arg(long, env = "ESG_YEAR", value_parser = clap::value_parser!(i32).range(1900..=2200))]
    pub year: i32,
    /// The company's sector (free text, e.g. "Utilities"; at most 100 characters), used to filter screens.
    #[arg(long, env = "ESG_SECTOR", value_parser = parse_sector)]
    pub sector: Option<String>,
    /// Print one JSON object per input file instead of text.
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
    /// Bounds of the sandboxed extraction worker.
    #[command(flatten)]
    pub extract: ExtractArgs,
    /// Largest accepted file, in MiB.
    #[arg(long, env = "ESG_MAX_FILE_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_file_mb: u64,
    /// Do not compute embedding vectors after storing (run `esg embed` later).
    #[arg(long, env = "ESG_NO_EMBED")]
    pub no_embed: bool,
    /// The embedder run after storing.
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    /// Files or directories (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Embedding backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbedderKind {
    /// sentence-transformers all-MiniLM-L6-v2, in process, from --model-dir.
    Local,
    /// An OpenAI-compatible /v1/embeddings server at --embedder-url (key: ESG_EMBEDDER_API_KEY).
    Openai,
    /// No embedder: semantic retrieval off, nothing embedded.
    None,
}

/// Which embedder computes chunk and query vectors (semantic retrieval).
#[derive(Debug, Clone, Args)]
pub struct EmbedderArgs {
    /// Embedding backend.
    #[arg(long, env = "ESG_EMBEDDER", value_enum, default_value_t = EmbedderKind::Local)]
    pub embedder: EmbedderKind,
    /// Model folder of the local embedder (model.safetensors, tokenizer.json, config.json;
    /// scripts/fetch-model.sh installs it) [default: <data-dir>/models/all-MiniLM-L6-v2].
    #[arg(long, env = "ESG_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// CPU threads of the local embedder [default: all available].
    #[arg(long, env = "ESG_EMBED_THREADS", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub embed_threads: Option<u32>,
    /// URL of the OpenAI-compatible embedding server (http://HOST:PORT, .../v1 or
    /// .../v1/embeddings); the API key, if any, is read from ESG_EMBEDDER_API_KEY.
    #[arg(long, env = "ESG_EMBEDDER_URL", value_name = "URL")]
    pub embedder_url: Option<String>,
    /// Model name sent to the embedding server (and stored with the vectors).
    #[arg(
        long,
        env = "ESG_EMBEDDER_MODEL",
        value_name = "NAME",
        default_value = "sentence-transformers/all-MiniLM-L6-v2"
    )]
    pub embedder_model: String,
    /// Timeout of one request to the embedding server, in seconds.
    #[arg(long, env = "ESG_EMBEDDER_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub embedder_timeout_secs: u64,
    /// Retries of a failed request to the embedding server (timeouts, connection errors, 429, 5xx).
    #[arg(long, env = "ESG_EMBEDDER_RETRIES", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub embedder_retries: u32,
}

/// `esg embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Print the vector of TEXT instead of embedding stored chunks.
    #[arg(long, env = "ESG_EMBED_TEXT", value_name = "TEXT")]
    pub text: Option<String>,
    /// Only this company's documents (all years).
    #[arg(long, env = "ESG_COMPANY", conflicts_with = "text")]
    pub company: Option<String>,
    /// Print a JSON summary (or, with --text, the vector as JSON).
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
    /// The embedder.
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// `esg companies`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
}

/// `esg documents`.
#[derive(Debug, Args)]
pub struct DocumentsArgs {
    /// Only this company's documents.
    #[arg(long, env = "ESG_COMPANY")]
    pub company: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
}

/// Largest `--k` accepted by `search` and `score`.
pub const MAX_K: usize = 100;

/// `esg search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Company to search (any spelling; matched case- and punctuation-insensitively).
    #[arg(long, env = "ESG_COMPANY")]
    pub company: String,
    /// Report year to search [default: the latest year on file for the company].
    #[arg(long, env = "ESG_YEAR", value_parser = clap::value_parser!(i32).range(1900..=2200))]
    pub year: Option<i32>,
    /// Search every year on file instead of one.
    #[arg(long, env = "ESG_ALL_YEARS", conflicts_with = "year")]
    pub all_years: bool,
    /// Number of passages to return (1–100).
    #[arg(long, env = "ESG_K", default_value_t = 10, value_parser = parse_k)]
    pub k: usize,
    /// Print JSON instead of text.
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
    /// BM25 or hybrid retrieval.
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// The question (several words may be given unquoted).
    #[arg(required = true, value_name = "QUESTION")]
    pub query: Vec<String>,
}

/// Output format of `esg score`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScoreFormat {
    /// A readable scorecard.
    Table,
    /// The full scorecard as JSON (fingerprint, parity, every quote).
    Json,
}

/// `esg score`.
#[derive(Debug, Args)]
#[command(
    after_help = "Output is byte-identical for the same store, rubric, request and --as-of month."
)]
pub struct ScoreArgs {
    /// Company to score (any spelling; matched case- and punctuation-insensitively).
    #[arg(long, env = "ESG_COMPANY")]
    pub company: String,
    /// Report year to score [default: the latest year on file for the company].
    #[arg(long, env = "ESG_YEAR", value_parser = clap::value_parser!(i32).range(1900..=2200))]
    pub year: Option<i32>,
    /// Output format.
    #[arg(long, env = "ESG_FORMAT", value_enum, default_value_t = ScoreFormat::Table)]
    pub format: ScoreFormat,
    /// Rubric file (JSON) to score with [default: the built-in rubric v3.0].
    #[arg(long, env = "ESG_RUBRIC", value_name = "FILE")]
    pub rubric: Option<PathBuf>,
    /// Retrieval breadth per theme (1–100): k chunks, or more when the company's chunks average under 120 words (tables cut into cells), to cover as much text [default: the rubric's default_k, 10 in v3.0].
    #[arg(long, env = "ESG_K", value_parser = parse_k)]
    pub k: Option<usize>,
    /// Scoring month, YYYY-MM: evidence older than the rubric's freshness limit at this
    /// date loses confidence [default: the current UTC month]. Output is byte-identical
    /// for the same store, rubric, request and as-of month.
    #[arg(long, env = "ESG_AS_OF", value_name = "YYYY-MM")]
    pub as_of: Option<YearMonth>,
    /// BM25 or hybrid retrieval.
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
}

/// `--semantic`, `--alpha`, `--fusion` and the embedder, of `esg search`
/// and `esg score`.
#[derive(Debug, Clone, Args)]
pub struct RetrievalArgs {
    /// Semantic (embedding) retrieval fused with BM25 (hybrid); needs the embedder and the
    /// chunks' vectors (`esg embed`).
    #[arg(long, env = "ESG_SEMANTIC")]
    pub semantic: bool,
    /// Hybrid only: weight of BM25 in the fusion, 0–1 (1 = BM25 only, 0 = semantic only)
    /// [default: 0.2, from bench/retrieval_recall.sh].
    #[arg(long, env = "ESG_ALPHA", value_parser = parse_alpha, requires = "semantic")]
    pub alpha: Option<f64>,
    /// Hybrid only: how to fuse (alpha: weighted normalised scores; rrf: reciprocal rank).
    #[arg(long, env = "ESG_FUSION", value_enum, default_value_t = FusionArg::Alpha)]
    pub fusion: FusionArg,
    /// The embedder (with --semantic).
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// `--fusion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FusionArg {
    /// alpha·BM25 + (1−alpha)·semantic over per-query normalised scores.
    Alpha,
    /// Reciprocal-rank fusion of the two top-k lists.
    Rrf,
}

fn parse_alpha(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!("must be a number between 0 and 1, found {s:?}")),
    }
}

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct YearMonth {
    /// Year (1900–2200).
    pub year: i32,
    /// Month (1–12).
    pub month: u32,
}

impl std::str::FromStr for YearMonth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected YYYY-MM (e.g. 2025-06), found {s:?}");
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1900..=2200).contains(&year) {
            return Err(format!("year {year} is outside 1900-2200"));
        }
        if !(1..=12).contains(&month) {
            return Err(format!("month {month} is outside 01-12"));
        }
        Ok(YearMonth { year, month })
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

fn parse_k(s: &str) -> Result<usize, String> {
    let k: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number, found {s:?}"))?;
    if (1..=MAX_K).contains(&k) {
        Ok(k)
    } else {
        Err(format!("must be between 1 and {MAX_K}, found {k}"))
    }
}

/// `esg serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "ESG_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: std::net::SocketAddr,
    /// Rubric file [default: the built-in rubric v3.0].
    #[arg(long, env = "ESG_RUBRIC", value_name = "FILE")]
    pub rubric: Option<PathBuf>,
    /// Log line format on stdout.
    #[arg(long, env = "ESG_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormatArg,
    /// Seconds in-flight requests may run after shutdown begins.
    #[arg(long, env = "ESG_DRAIN_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_timeout_secs: u64,
    /// Longest time a request may take, in seconds (408 beyond it).
    #[arg(long, env = "ESG_REQUEST_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// Requests served at once (429 with Retry-After beyond it).
    #[arg(long, env = "ESG_MAX_CONCURRENT_REQUESTS", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100000))]
    pub max_concurrent_requests: u64,
    /// Largest JSON request body, in KiB (413 beyond it).
    #[arg(long, env = "ESG_MAX_JSON_KB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1048576))]
    pub max_json_kb: u64,
    /// Largest uploaded document, in MiB (413 beyond it, enforced while the body streams to disk).
    #[arg(long, env = "ESG_MAX_UPLOAD_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_upload_mb: u64,
    /// Longest time to receive a request's head, and longest idle keep-alive, in seconds
    /// (the connection is closed beyond it; stops slow-header clients).
    #[arg(long, env = "ESG_HEADER_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Longest wait for the next bytes of an upload body, in seconds (408 beyond it).
    #[arg(long, env = "ESG_UPLOAD_IDLE_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upload_idle_timeout_secs: u64,
    /// Bounds of the sandboxed extraction worker, per uploaded document.
    #[command(flatten)]
    pub extract: ExtractArgs,
    /// API key file; uploads (and every write) need `Authorization: Bearer <key>` from it
    /// [default: <data-dir>/api-keys.json; manage it with `esg keys`].
    #[arg(long, env = "ESG_API_KEYS_FILE", value_name = "FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Also require an API key for read-only endpoints (probes, /metrics and /openapi.json stay open).
    #[arg(long, env = "ESG_REQUIRE_AUTH_FOR_READS")]
    pub require_auth_for_reads: bool,
    /// Allow cross-origin requests from ORIGIN (repeatable, or comma-separated; `*` allows any) [default: CORS off].
    #[arg(long, env = "ESG_CORS_ALLOW_ORIGIN", value_name = "ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allow_origin: Vec<String>,
    /// Requests per minute per client IP address (429 with Retry-After beyond it); 0 turns it off.
    #[arg(long, env = "ESG_RATE_LIMIT_PER_MINUTE", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub rate_limit_per_minute: u32,
    /// Memory for the cache of company-year indexes behind /score, /trace and /search, in MiB
    /// (0 turns it off: every request indexes the company-year again).
    #[arg(long, env = "ESG_CACHE_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub cache_mb: u64,
    /// Also serve /health, /live, /ready and /metrics on ADDR; /metrics then leaves the main listener
    /// (probes stay there too).
    #[arg(long, env = "ESG_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// The embedder for semantic=1 and for embedding uploads in the background (a missing
    /// model is logged and shown by /ready; BM25 keeps working).
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

fn parse_origin(s: &str) -> Result<String, String> {
    esg_server::security::parse_origin(s)
}

/// `esg keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// API key file [default: <data-dir>/api-keys.json].
    #[arg(long, global = true, env = "ESG_API_KEYS_FILE", value_name = "FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// What to do with the keys.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// `esg keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it once on stdout (only its salted hash is stored).
    Add {
        /// What the key is for (shown by `esg keys list`).
        #[arg(long, alias = "name", env = "ESG_KEY_LABEL")]
        label: String,
        /// Print a JSON object (id, label, created_at, key) instead of the bare key.
        #[arg(long, env = "ESG_JSON")]
        json: bool,
    },
    /// List the keys: id, label, created, revoked (never the keys or their hashes).
    List {
        /// Print JSON instead of a table.
        #[arg(long, env = "ESG_JSON")]
        json: bool,
    },
    /// Revoke a key by its id; a running server refuses it from its next request.
    Revoke {
        /// The key's id (see `esg keys list`).
        #[arg(env = "ESG_KEY_ID")]
        id: String,
    },
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// `esg store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// What to do with the store.
    #[command(subcommand)]
    pub command: StoreCommand,
}

/// `esg store` subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every document (pages, chunks, criterion matches, vectors) from one store into a PostgreSQL store;
    /// resumable, verified at the end. Source files stay in the files directory.
    Copy(StoreCopyArgs),
    /// Give PDF documents stored before page layouts were kept their layouts (and their quotes boxes):
    /// each is extracted again from its kept source file; text, chunks and scores do not change.
    /// Restart running servers afterwards (they keep quote placements in memory).
    FillLayouts(FillLayoutsArgs),
}

/// Bounds of the sandboxed extraction worker, for `esg ingest`, `esg
/// serve` (per uploaded document) and `esg store fill-layouts`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Wall-clock limit for extracting one document, in seconds.
    #[arg(long, env = "ESG_EXTRACT_TIMEOUT_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
    /// Memory (address-space) limit for extracting one document, in MiB.
    #[arg(long, env = "ESG_EXTRACT_MEMORY_MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(64..=65536))]
    pub max_memory_mb: u64,
    /// Threads that read one PDF's pages [default: 0, one per core].
    #[arg(long, env = "ESG_EXTRACT_THREADS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub extract_threads: u64,
}

impl ExtractArgs {
    /// The sandbox that runs this `esg` binary's hidden `__extract-worker`
    /// within these bounds.
    pub fn sandbox(&self) -> anyhow::Result<esg_ingest::Sandbox> {
        let exe = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot locate the esg executable: {e}"))?;
        let mut sandbox = esg_ingest::Sandbox::new(exe, ["__extract-worker"]);
        sandbox.timeout = std::time::Duration::from_secs(self.timeout_secs);
        sandbox.memory_limit = self.max_memory_mb << 20;
        sandbox.threads = self.extract_threads as usize;
        Ok(sandbox)
    }
}

/// `esg store fill-layouts`.
#[derive(Debug, Args)]
pub struct FillLayoutsArgs {
    /// Print one JSON object per document instead of text.
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
    /// Bounds of the sandboxed extraction worker.
    #[command(flatten)]
    pub extract: ExtractArgs,
}

/// `esg store copy`.
#[derive(Debug, Args)]
pub struct StoreCopyArgs {
    /// The store to copy from: sqlite:DIR (a data directory) or postgres://…
    #[arg(
        long,
        env = "ESG_COPY_FROM",
        value_name = "URL",
        hide_env_values = true
    )]
    pub from: String,
    /// The PostgreSQL store to copy into: postgres://… (migrated if new).
    #[arg(long, env = "ESG_COPY_TO", value_name = "URL", hide_env_values = true)]
    pub to: String,
    /// Copy at most this many new documents in this run (the rest on the next run); verification then
    /// covers the documents present in the target.
    #[arg(long, env = "ESG_COPY_LIMIT", value_name = "N")]
    pub limit: Option<u64>,
    /// Print one JSON object with the counts instead of text.
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
}

/// `esg healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// URL to GET (plain http://); healthy = 200 with `"status":"healthy"`, `"ready":true` or `"live":true`.
    #[arg(
        long,
        env = "ESG_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:8000/health"
    )]
    pub url: String,
    /// Time limit for the whole exchange (connect, send, answer), in milliseconds.
    #[arg(long, env = "ESG_HEALTHCHECK_TIMEOUT_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
}

/// `--sector`: tidied by [`esg_store::normalize_sector`]; blank is refused.
fn parse_sector(raw: &str) -> Result<String, String> {
    esg_store::normalize_sector(raw)?.ok_or_else(|| "sector is blank".to_string())
}
