//! `esg store copy --from sqlite:DIR --to postgres://…`: moving a store up.
//!
//! Every document of the source is exported whole (row, company, pages,
//! chunks, criterion matches, vectors; see `esg_store::copy`) and imported
//! into the PostgreSQL target in its own transaction, keeping its `doc_id`,
//! year, file name, warnings, sector and `ingested_at`. A document already
//! in the target is skipped (only matches and vectors it lacks are added),
//! so a copy that was interrupted, or stopped by `--limit`, resumes where it
//! stopped when run again.
//!
//! At the end every source document present in the target is exported
//! from both sides and compared by [`esg_store::DocumentDigest`]: page,
//! chunk, match and vector counts and a SHA-256 over every field. Any
//! difference (or a source document still missing after a full run) is an
//! error: exit status 1 with the documents named.
//!
//! Source files are not copied: they stay in the files directory of the
//! data dir (content-addressed, immutable), which the operator copies (or
//! mounts) where the PostgreSQL-backed replicas' `--files-dir` points.

use std::process::ExitCode;

use anyhow::{Context, bail};
use esg_store::{CopySource, ImportOutcome, PgOptions, PgStore, SqliteStore, StoreLocation};
use serde::Serialize;

use crate::cli::StoreCopyArgs;

/// What a run did, as `--json` prints it.
#[derive(Debug, Default, Serialize)]
pub struct CopyReport {
    /// The source, password hidden.
    pub from: String,
    /// The target, password hidden.
    pub to: String,
    /// Documents in the source.
    pub source_documents: u64,
    /// Documents copied by this run.
    pub copied: u64,
    /// Documents that were already in the target.
    pub skipped: u64,
    /// Source documents not copied because of `--limit`.
    pub remaining: u64,
    /// Documents verified equal in source and target.
    pub verified: u64,
    /// Pages, chunks, criterion matches and vectors of the verified documents.
    pub pages: u64,
    /// See `pages`.
    pub chunks: u64,
    /// See `pages`.
    pub rule_matches: u64,
    /// See `pages`.
    pub vectors: u64,
    /// Documents whose copy differs from the source: `doc_id: what differs`.
    pub mismatches: Vec<String>,
    /// `true` when every source document is in the target and verified.
    pub complete: bool,
}

fn open_source(url: &str, opts: &PgOptions) -> anyhow::Result<Box<dyn CopySource>> {
    let loc = StoreLocation::from_url_or_dir(Some(url), std::path::Path::new(""))?;
    Ok(match &loc {
        StoreLocation::Sqlite { data_dir } => {
            let db = data_dir.join(esg_store::DB_FILE_NAME);
            if !db.is_file() {
                bail!("no store to copy from: {} does not exist", db.display());
            }
            Box::new(
                SqliteStore::open(&db)
                    .with_context(|| format!("cannot open the source {}", loc.describe()))?,
            )
        }
        StoreLocation::Postgres { url } => Box::new(
            PgStore::connect(url, opts)
                .with_context(|| format!("cannot open the source {}", loc.describe()))?,
        ),
    })
}

/// Runs `esg store copy`.
pub fn run(args: &StoreCopyArgs, opts: &PgOptions) -> anyhow::Result<ExitCode> {
    let report = copy(args, opts)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} → {}: {} documents in the source; {} copied, {} already there, {} left for the next run",
            report.from,
            report.to,
            report.source_documents,
            report.copied,
            report.skipped,
            report.remaining
        );
        println!(
            "verified {} documents ({} pages, {} chunks, {} criterion matches, {} vectors): {}",
            report.verified,
            report.pages,
            report.chunks,
            report.rule_matches,
            report.vectors,
            if report.mismatches.is_empty() {
                "identical"
            } else {
                "MISMATCHES"
            }
        );
        println!(
            "source files are not copied: copy DIR/files to the directory the replicas' \
             --files-dir names (or point --files-dir at it)"
        );
    }
    if !report.mismatches.is_empty() {
        for m in &report.mismatches {
            eprintln!("error: copy differs from the source: {m}");
        }
        bail!(
            "{} document(s) differ between {} and {}",
            report.mismatches.len(),
            report.from,
            report.to
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies and verifies; mismatches are in the report, not an error.
pub fn copy(args: &StoreCopyArgs, opts: &PgOptions) -> anyhow::Result<CopyReport> {
    let to_loc = StoreLocation::from_url_or_dir(Some(&args.to), std::path::Path::new(""))?;
    let StoreLocation::Postgres { url: to_url } = &to_loc else {
        bail!("--to must be a postgres:// URL (got {})", to_loc.describe());
    };
    let from_desc =
        StoreLocation::from_url_or_dir(Some(&args.from), std::path::Path::new(""))?.describe();
    if from_desc == to_loc.describe() {
        bail!("--from and --to are the same store");
    }
    let source = open_source(&args.from, opts)?;
    let target = PgStore::connect(to_url, opts)
        .with_context(|| format!("cannot open the target {}", to_loc.describe()))?;

    let mut report = CopyReport {
        from: from_desc,
        to: to_loc.describe(),
        ..CopyReport::default()
    };
    let ids = source.doc_ids().context("listing the source's documents")?;
    report.source_documents = ids.len() as u64;
    let limit = args.limit.unwrap_or(u64::MAX);
    for doc_id in &ids {
        if report.copied >= limit {
            report.remaining += 1;
            continue;
        }
        let Some(doc) = source
            .export_document(doc_id)
            .with_context(|| format!("reading document {doc_id} from the source"))?
        else {
            continue; // removed from the source meanwhile
        };
        match target
            .import_document(&doc)
            .with_context(|| format!("copying document {doc_id}"))?
        {
            ImportOutcome::Copied => report.copied += 1,
            ImportOutcome::AlreadyPresent => report.skipped += 1,
        }
    }

    for doc_id in &ids {
        let Some(src) = source.export_document(doc_id)? else {
            continue;
        };
        let Some(dst) = target.export_document(doc_id)? else {
            if report.remaining == 0 {
                report
                    .mismatches
                    .push(format!("{doc_id}: missing from the target"));
            }
            continue;
        };
        let (a, b) = (src.digest(), dst.digest());
        if a == b {
            report.verified += 1;
            report.pages += a.pages;
            report.chunks += a.chunks;
            report.rule_matches += a.rule_matches;
            report.vectors += a.vectors;
        } else {
            report.mismatches.push(format!(
                "{doc_id} ({} {}): source has {} pages, {} chunks, {} matches, {} vectors, \
                 sha256 {}; target has {} pages, {} chunks, {} matches, {} vectors, sha256 {}",
                src.summary.company,
                src.summary.year,
                a.pages,
                a.chunks,
                a.rule_matches,
                a.vectors,
                a.sha256,
                b.pages,
                b.chunks,
                b.rule_matches,
                b.vectors,
                b.sha256
            ));
        }
    }
    report.complete = report.remaining == 0 && report.mismatches.is_empty();
    Ok(report)
}
