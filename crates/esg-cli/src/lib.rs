//! The `esg` command-line application: each subcommand is a module.

pub mod cli;
pub mod embed;
pub mod fill_layouts;
pub mod healthcheck;
pub mod ingest;
pub mod keys;
pub mod list;
pub mod score;
pub mod search;
pub mod serve;
pub mod store_copy;

use anyhow::Context;
use cli::{Cli, Command};
use esg_store::{PgOptions, StoreLocation};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status when some inputs failed (the rest were still processed).
pub const EXIT_PARTIAL: u8 = 2;

/// Gives SIGPIPE its default action again (Rust's runtime ignores it), so
/// that `esg search ... | head` ends quietly when `head` has read enough,
/// as other command-line tools do, instead of panicking on the failed
/// write to stdout. Only for the commands that just print: `esg serve` must
/// survive a client that hangs up, and `esg ingest` a worker that dies
/// before reading all of its input (a write to that pipe would kill it).
/// Sockets are unaffected either way (std sends with `MSG_NOSIGNAL`).
fn restore_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL installs no handler code; it runs
    // before any thread of ours is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    if matches!(cli.command, Command::ExtractWorker) {
        return ExitCode::from(esg_ingest::sandbox::worker_main() as u8);
    }
    if matches!(
        cli.command,
        Command::Companies(_) | Command::Documents(_) | Command::Search(_) | Command::Score(_)
    ) {
        restore_sigpipe();
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The PostgreSQL settings of the global flags.
pub fn pg_options(cli: &Cli) -> PgOptions {
    PgOptions {
        pool_size: cli.db_pool_size as usize,
        connect_timeout: Duration::from_secs(cli.db_connect_timeout_secs),
        statement_timeout: Duration::from_secs(cli.db_statement_timeout_secs),
        // Only `esg serve` holds a lease (it sets this itself).
        read_lease: false,
    }
}

/// Where the store is: `--database-url` when given, else SQLite in `data_dir`.
pub fn store_location(cli: &Cli, data_dir: &std::path::Path) -> anyhow::Result<StoreLocation> {
    Ok(StoreLocation::from_url_or_dir(
        cli.database_url.as_deref(),
        data_dir,
    )?)
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    let files_dir = cli.files_dir.clone().unwrap_or_else(|| {
        esg_store::FileStore::in_data_dir(&data_dir)
            .root()
            .to_path_buf()
    });
    let location = store_location(&cli, &data_dir)?;
    let opts = pg_options(&cli);
    let open = || {
        esg_store::open(&location, &opts)
            .with_context(|| format!("cannot open the store {}", location.describe()))
    };
    match cli.command {
        Command::Ingest(args) => ingest::run(
            &*open()?,
            &esg_store::FileStore::new(files_dir.clone()),
            &data_dir,
            &args,
        ),
        Command::Companies(args) => list::companies(&*open()?, &args),
        Command::Documents(args) => list::documents(&*open()?, &args),
        Command::Search(args) => search::run(&*open()?, &data_dir, &args),
        Command::Score(args) => score::run(&*open()?, &data_dir, &args),
        Command::Embed(args) => embed::run(&*open()?, &data_dir, &args),
        Command::Serve(args) => serve::run(&data_dir, &location, &opts, &files_dir, &args),
        // Keys live in the database when the store is PostgreSQL, in the
        // key file otherwise.
        Command::Keys(args) => match &location {
            StoreLocation::Postgres { .. } => keys::run(&data_dir, Some(&*open()?), &args),
            StoreLocation::Sqlite { .. } => keys::run(&data_dir, None, &args),
        },
        Command::Store(args) => match &args.command {
            cli::StoreCommand::Copy(copy) => store_copy::run(copy, &opts),
            cli::StoreCommand::FillLayouts(fill) => fill_layouts::run(
                &*open()?,
                &esg_store::FileStore::new(files_dir.clone()),
                fill,
            ),
        },
        Command::Healthcheck(args) => healthcheck::run(&args),
        Command::ExtractWorker => unreachable!("handled in run"),
    }
}

/// `$XDG_DATA_HOME/esg-scoring-api`, else `~/.local/share/esg-scoring-api`,
/// else `./esg-data`.
pub fn default_data_dir() -> PathBuf {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = non_empty("XDG_DATA_HOME") {
        return x.join("esg-scoring-api");
    }
    if let Some(h) = non_empty("HOME") {
        return h.join(".local/share/esg-scoring-api");
    }
    PathBuf::from("esg-data")
}
