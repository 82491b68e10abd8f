//! Command-line arguments. Every flag has an `ESG_*` environment fallback.

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
    /// Print one JSON object per input file instead of text.
    #[arg(long, env = "ESG_JSON")]
    pub json: bool,
    /// Wall-clock limit for extracting one document, in seconds.
    #[arg(long, env = "ESG_EXTRACT_TIMEOUT_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
    /// Memory (address-space) limit for extracting one document, in MiB.
    #[arg(long, env = "ESG_EXTRACT_MEMORY_MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(64..=65536))]
    pub max_memory_mb: u64,
    /// Largest accepted file, in MiB.
    #[arg(long, env = "ESG_MAX_FILE_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_file_mb: u64,
    /// Files or directories (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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
