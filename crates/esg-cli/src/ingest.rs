//! `esg ingest`: files and directories into the store, one transaction per document.

use crate::EXIT_PARTIAL;
use crate::cli::IngestArgs;
use esg_core::ChunkParams;
use esg_ingest::{ErrorCode, IngestError, Provenance, Sandbox, ingest_keeping_source, read_source};
use esg_store::{FileStore, IngestOutcome, Store};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The result for one input file, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The input path as given (or found in a directory).
    pub path: String,
    /// `ingested`, `already_ingested` or `failed`.
    pub status: &'static str,
    /// SHA-256 of the file, when it could be read.
    pub doc_id: Option<String>,
    /// Detected format (`pdf`, `html`, `text`).
    pub media_type: Option<String>,
    /// Pages stored.
    pub pages: Option<u32>,
    /// Chunks stored.
    pub chunks: Option<u32>,
    /// Company the stored document is filed under.
    pub company: Option<String>,
    /// Year the stored document is filed under.
    pub year: Option<i32>,
    /// Non-fatal extraction warnings.
    pub warnings: Vec<String>,
    /// Why the file failed.
    pub error: Option<IngestError>,
}

impl FileReport {
    /// A report for `path` that has not (yet) succeeded.
    fn failed(path: &Path, error: Option<IngestError>) -> Self {
        FileReport {
            path: path.display().to_string(),
            status: "failed",
            doc_id: None,
            media_type: None,
            pages: None,
            chunks: None,
            company: None,
            year: None,
            warnings: Vec::new(),
            error,
        }
    }
}

/// Temporary files of the source-file store older than this were left by a
/// killed writer and are removed at the start of a run.
const STALE_SOURCE_TEMPS: Duration = Duration::from_secs(3600);

/// Runs `esg ingest`: each document's source file is kept in `files`
/// (written before its row is committed; see [`ingest_keeping_source`]),
/// then the embedding vectors of the stored documents' chunks are computed
/// (after the commits, so storing never waits for the model; see
/// `embed_after_ingest`).
pub fn run(
    store: &dyn Store,
    files: &FileStore,
    data_dir: &Path,
    args: &IngestArgs,
) -> anyhow::Result<ExitCode> {
    if esg_core::company_key(&args.company).is_empty() {
        anyhow::bail!("--company must contain at least one letter or digit");
    }
    let sandbox = args.extract.sandbox()?;
    let max_bytes = args.max_file_mb << 20;

    let _ = files.remove_stale_temps(STALE_SOURCE_TEMPS);
    let inputs = expand(&args.paths);
    let bar = progress_bar(inputs.len() as u64, args.json);
    let mut failed = 0usize;
    let mut stored = 0usize;
    let mut doc_ids: Vec<String> = Vec::new();
    for input in &inputs {
        bar.set_message(input.display_name());
        // Parsers run in the sandboxed worker; this guards our own code too,
        // so one bad file can never take the whole run down.
        let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ingest_one(store, files, &sandbox, args, input, max_bytes)
        }))
        .unwrap_or_else(|_| internal_error(input));
        if report.error.is_some() {
            failed += 1;
        } else {
            if report.status == "ingested" {
                stored += 1;
            }
            if let Some(id) = &report.doc_id
                && !doc_ids.contains(id)
            {
                doc_ids.push(id.clone());
            }
        }
        if args.json {
            bar.suspend(|| println!("{}", serde_json::to_string(&report).unwrap_or_default()));
        } else {
            bar.suspend(|| println!("{}", human_line(&report)));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !args.json {
        println!(
            "{} file(s): {stored} ingested, {} already on file, {failed} failed",
            inputs.len(),
            inputs.len() - stored - failed
        );
    }
    if !args.no_embed && !doc_ids.is_empty() {
        embed_after_ingest(store, data_dir, args, &doc_ids);
    }
    Ok(if failed > 0 {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

/// Gives the chunks of the documents just stored (or found already
/// stored) their embedding vectors, with a progress bar on a terminal.
/// Reported on stderr; never fails the run: the documents are stored, and
/// `esg embed` resumes whatever is missing. Silent when the default local
/// model is not installed (and `--model-dir`/`ESG_MODEL_DIR` unset).
fn embed_after_ingest(store: &dyn Store, data_dir: &Path, args: &IngestArgs, doc_ids: &[String]) {
    let embedder = match crate::embed::open_embedder(&args.embedder, data_dir, store) {
        Ok(Some(e)) => e,
        Ok(None) => return,
        // The default local model was never installed: semantic retrieval
        // is simply not set up here (`esg embed` adds vectors later).
        Err(esg_embed::EmbedError::ModelFileMissing { .. })
            if args.embedder.model_dir.is_none()
                && args.embedder.embedder == crate::cli::EmbedderKind::Local =>
        {
            return;
        }
        Err(e) => {
            eprintln!(
                "note: chunks stored without embedding vectors (semantic retrieval needs them): \
                 cannot load the embedder ({}): {e}; once it loads, run `esg embed`",
                e.code()
            );
            return;
        }
    };
    match crate::embed::embed_documents(store, &*embedder, Some(doc_ids), !args.json) {
        Ok(s) if s.embedded > 0 => eprintln!(
            "{} chunk(s) embedded with {} in {:.1} s ({:.1} chunks/s)",
            s.embedded, s.model, s.seconds, s.chunks_per_second
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: {e:#}"),
    }
}

fn ingest_one(
    store: &dyn Store,
    files: &FileStore,
    sandbox: &Sandbox,
    args: &IngestArgs,
    input: &Input,
    max_bytes: u64,
) -> FileReport {
    let mut report = FileReport::failed(&input.path, None);
    if let Some(e) = &input.error {
        report.error = Some(e.clone());
        return report;
    }
    let bytes = match read_source(&input.path, max_bytes) {
        Ok(b) => b,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.doc_id = Some(esg_core::sha256_hex(&bytes));
    let filename = input
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let who = Provenance {
        company: &args.company,
        year: args.year,
        filename: &filename,
        sector: args.sector.as_deref(),
    };
    match ingest_keeping_source(
        store,
        files,
        &bytes,
        who,
        |b| sandbox.extract(b),
        ChunkParams::default(),
    ) {
        Ok(outcome) => {
            report.status = if outcome.is_new() {
                "ingested"
            } else {
                "already_ingested"
            };
            let s = match outcome {
                IngestOutcome::Ingested(s) | IngestOutcome::AlreadyIngested(s) => s,
            };
            report.media_type = Some(s.media_type.short().to_string());
            report.pages = Some(s.pages);
            report.chunks = Some(s.chunks);
            report.company = Some(s.company);
            report.year = Some(s.year);
            report.warnings = s.warnings;
        }
        Err(e) => report.error = Some(e),
    }
    report
}

fn internal_error(input: &Input) -> FileReport {
    FileReport::failed(
        &input.path,
        Some(IngestError::new(
            ErrorCode::ExtractionFailed,
            "internal error while processing this file (nothing was stored); please report it",
        )),
    )
}

fn human_line(r: &FileReport) -> String {
    match (&r.error, r.status) {
        (Some(e), _) => format!(
            "failed            {}: {} ({})",
            r.path,
            e.message,
            e.code.as_str()
        ),
        (None, status) => {
            let mut line = format!(
                "{:<17} {} ({}, {} pages, {} chunks",
                status,
                r.path,
                r.media_type.as_deref().unwrap_or("?"),
                r.pages.unwrap_or(0),
                r.chunks.unwrap_or(0)
            );
            if status == "already_ingested" {
                line.push_str(&format!(
                    ", on file as {} {}",
                    r.company.as_deref().unwrap_or("?"),
                    r.year.unwrap_or(0)
                ));
            }
            if !r.warnings.is_empty() {
                line.push_str(&format!(", {} warning(s)", r.warnings.len()));
            }
            line.push(')');
            line
        }
    }
}

fn progress_bar(len: u64, json: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// One input file, or a path that could not be walked.
#[derive(Debug)]
struct Input {
    path: PathBuf,
    error: Option<IngestError>,
}

impl Input {
    fn display_name(&self) -> String {
        self.path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// Expands directories recursively (sorted by path, hidden entries skipped;
/// symbolic links to directories are not followed).
fn expand(paths: &[PathBuf]) -> Vec<Input> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut out),
            Ok(_) => out.push(Input {
                path: p.clone(),
                error: None,
            }),
            Err(e) => out.push(Input {
                path: p.clone(),
                error: Some(IngestError::new(
                    ErrorCode::UnreadablePath,
                    format!("cannot read {}: {e}", p.display()),
                )),
            }),
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<Input>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.push(Input {
                path: dir.to_path_buf(),
                error: Some(IngestError::new(
                    ErrorCode::UnreadablePath,
                    format!("cannot list {}: {e}", dir.display()),
                )),
            });
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    children.sort();
    for c in children {
        match std::fs::symlink_metadata(&c) {
            Ok(m) if m.is_dir() => walk(&c, out),
            Ok(m) if m.file_type().is_symlink() && c.is_dir() => {}
            _ => out.push(Input {
                path: c,
                error: None,
            }),
        }
    }
}
