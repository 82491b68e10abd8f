//! `esg serve`: the HTTP API over the same data directory.

use crate::cli::{LogFormatArg, ServeArgs};
use anyhow::Context;
use esg_server::{Extraction, LogFormat, ServerConfig};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Runs the server until SIGTERM/SIGINT, then drains and exits 0. The
/// store is `location` (SQLite in `data_dir`, or PostgreSQL with `pg`); the
/// kept source files are in `files_dir`.
pub fn run(
    data_dir: &Path,
    location: &esg_store::StoreLocation,
    pg: &esg_store::PgOptions,
    files_dir: &Path,
    args: &ServeArgs,
) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()
        .context("cannot locate the esg executable (the extraction worker)")?;
    let mut config = ServerConfig::new(
        data_dir,
        Extraction::Sandbox {
            program: exe,
            args: vec!["__extract-worker".into()],
            timeout: Duration::from_secs(args.extract.timeout_secs),
            memory_limit: args.extract.max_memory_mb << 20,
            threads: args.extract.extract_threads as usize,
        },
    );
    config.store = location.clone();
    config.pg = pg.clone();
    config.files_dir = files_dir.to_path_buf();
    config.listen = args.listen;
    config.rubric_path = args.rubric.clone();
    config.log_format = match args.log_format {
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Text => LogFormat::Text,
    };
    config.limits.drain_timeout = Duration::from_secs(args.drain_timeout_secs);
    config.limits.request_timeout = Duration::from_secs(args.request_timeout_secs);
    config.limits.max_concurrent_requests = usize::try_from(args.max_concurrent_requests)?;
    config.limits.json_body_bytes = usize::try_from(args.max_json_kb << 10)?;
    config.limits.upload_body_bytes = usize::try_from(args.max_upload_mb << 20)?;
    config.limits.upload_idle_timeout = Duration::from_secs(args.upload_idle_timeout_secs);
    config.limits.header_read_timeout = Duration::from_secs(args.header_read_timeout_secs);
    config.cache_bytes = args.cache_mb << 20;
    config.embedder = crate::embed::server_config(&args.embedder, data_dir);
    if matches!(args.embedder.embedder, crate::cli::EmbedderKind::Openai)
        && args.embedder.embedder_url.is_none()
    {
        anyhow::bail!("--embedder openai needs --embedder-url (or ESG_EMBEDDER_URL)");
    }
    config.security = esg_server::config::SecurityConfig {
        api_keys_file: args.api_keys_file.clone(),
        require_auth_for_reads: args.require_auth_for_reads,
        cors_allow_origins: args.cors_allow_origin.clone(),
        rate_limit_per_minute: args.rate_limit_per_minute,
        admin_listen: args.admin_listen,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(esg_server::serve(config));
    // Dropping the runtime would wait for every blocking task, such as an
    // upload's extraction that the drain timeout abandoned (up to
    // `--timeout-secs`, 120 s by default). Give them a short grace instead:
    // SQLite rolls back a transaction the exit interrupts (a document is
    // stored whole or not at all), and an extraction worker still running
    // is killed by the kernel when the thread waiting for it ends
    // (PR_SET_PDEATHSIG, set by esg_ingest's sandbox).
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served?;
    Ok(ExitCode::SUCCESS)
}

/// How long blocking tasks still running after the drain (uploads being
/// extracted or stored) may delay the exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
