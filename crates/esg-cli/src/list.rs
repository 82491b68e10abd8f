//! `esg companies` and `esg documents`.

use crate::cli::{DocumentsArgs, ListArgs};
use anyhow::Context;
use esg_store::Store;
use std::process::ExitCode;

/// Lists companies with their years and totals.
pub fn companies(store: &dyn Store, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let companies = store.companies().context("cannot list companies")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&companies)?);
        return Ok(ExitCode::SUCCESS);
    }
    if companies.is_empty() {
        println!(
            "No companies on file. Add reports with `esg ingest --company NAME --year YYYY FILE...`."
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36} {:<20} {:>5} {:>6} {:>7}",
        "COMPANY", "YEARS", "DOCS", "PAGES", "CHUNKS"
    );
    for c in companies {
        let years: Vec<String> = c.years.iter().map(i32::to_string).collect();
        println!(
            "{:<36} {:<20} {:>5} {:>6} {:>7}",
            c.name,
            years.join(","),
            c.documents,
            c.pages,
            c.chunks
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists documents, optionally of one company.
pub fn documents(store: &dyn Store, args: &DocumentsArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.company
        && store.company(name)?.is_none()
    {
        anyhow::bail!("no company named {name:?} is on file (see `esg companies`)");
    }
    let docs = store
        .documents(args.company.as_deref())
        .context("cannot list documents")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if docs.is_empty() {
        println!("No documents on file.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:>4} {:<5} {:>5} {:>6}  {:<16} {:<20} FILE",
        "COMPANY", "YEAR", "TYPE", "PAGES", "CHUNKS", "SHA256", "INGESTED_AT"
    );
    for d in docs {
        println!(
            "{:<28} {:>4} {:<5} {:>5} {:>6}  {:<16} {:<20} {}",
            truncate(&d.company, 28),
            d.year,
            d.media_type.short(),
            d.pages,
            d.chunks,
            &d.sha256[..16],
            d.ingested_at,
            d.filename
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
