//! `esg store fill-layouts`: page layouts (and so quote boxes) for PDF
//! documents stored before layouts were kept.
//!
//! A document is content-addressed, so ingesting the same bytes again
//! changes nothing; its kept source file is read instead, extracted again
//! in the sandboxed worker and cleaned as at ingest (running headers marked
//! in the layout), and each page's layout is stored where the page has none
//! ([`esg_store::Store::fill_page_layouts`], one transaction per document).
//! The stored text, chunks, evidence ids and scores do not change; quotes
//! are then narrowed to their block and boxed (`esg score`, and `/score`
//! on a server started after the fill: servers keep placements in memory).
//! Running it again does only what is left: documents that have a layout
//! on any page are not read.

use crate::EXIT_PARTIAL;
use crate::cli::FillLayoutsArgs;
use esg_core::{MediaType, PageLayout};
use esg_ingest::Sandbox;
use esg_store::{FileStore, Store};
use serde::Serialize;
use std::io::Read;
use std::process::ExitCode;

/// The result for one document, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct FillReport {
    /// The document's SHA-256.
    pub doc_id: String,
    /// `filled` or `failed`.
    pub status: &'static str,
    /// Pages that got a layout.
    pub pages: usize,
    /// Why it failed.
    pub error: Option<FillError>,
}

/// Why one document got no layouts: `source_missing` (the kept file is not
/// there), `source_mismatch` (it does not hash to the document's id, or is
/// not a PDF), `storage_error`, or the extraction error's own code
/// (`extraction_timeout`, `pdf_damaged`, …).
#[derive(Debug, Serialize)]
pub struct FillError {
    /// Stable snake_case code.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

impl FillError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        FillError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Runs `esg store fill-layouts`.
pub fn run(
    store: &dyn Store,
    files: &FileStore,
    args: &FillLayoutsArgs,
) -> anyhow::Result<ExitCode> {
    let sandbox = args.extract.sandbox()?;
    let ids = store
        .documents_without_layouts()
        .map_err(|e| anyhow::anyhow!("cannot list the documents without layouts: {e}"))?;
    let (mut filled, mut failed) = (0usize, 0usize);
    for id in &ids {
        let report = match fill_one(store, files, &sandbox, id) {
            Ok(pages) => {
                filled += 1;
                FillReport {
                    doc_id: id.clone(),
                    status: "filled",
                    pages,
                    error: None,
                }
            }
            Err(e) => {
                failed += 1;
                FillReport {
                    doc_id: id.clone(),
                    status: "failed",
                    pages: 0,
                    error: Some(e),
                }
            }
        };
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            match &report.error {
                None => println!(
                    "filled  {}  {} page(s) laid out",
                    report.doc_id, report.pages
                ),
                Some(e) => println!("FAILED  {}  {}: {}", report.doc_id, e.code, e.message),
            }
        }
    }
    if !args.json {
        println!(
            "{} PDF document(s) without layouts: {filled} filled, {failed} failed",
            ids.len()
        );
    }
    Ok(if failed > 0 {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

/// Extracts document `id` again from its kept file and fills its layouts;
/// returns how many pages got one.
fn fill_one(
    store: &dyn Store,
    files: &FileStore,
    sandbox: &Sandbox,
    id: &str,
) -> Result<usize, FillError> {
    let storage = |e: &dyn std::fmt::Display| FillError::new("storage_error", e.to_string());
    let Some(mut src) = files.open(id).map_err(|e| storage(&e))? else {
        return Err(FillError::new(
            "source_missing",
            format!(
                "the source file is not in {}; ingest the same file again to put it back, then run this again",
                files.root().display()
            ),
        ));
    };
    let mut bytes = Vec::with_capacity(src.len as usize);
    src.file
        .read_to_end(&mut bytes)
        .map_err(|e| storage(&format!("cannot read {}: {e}", src.path.display())))?;
    if esg_core::sha256_hex(&bytes) != id {
        return Err(FillError::new(
            "source_mismatch",
            format!(
                "{} does not hash to the document's id (damaged on the volume); ingest the original file again",
                src.path.display()
            ),
        ));
    }
    let extracted = sandbox
        .extract(&bytes)
        .map_err(|e| FillError::new(e.code.as_str(), e.message))?;
    if extracted.media_type != MediaType::Pdf {
        return Err(FillError::new(
            "source_mismatch",
            format!(
                "the kept file reads as {}, not as a PDF",
                extracted.media_type.short()
            ),
        ));
    }
    let layouts: Vec<(u32, PageLayout)> = esg_core::clean_pages(extracted.pages)
        .into_iter()
        .filter_map(|p| p.layout.map(|l| (p.number, l)))
        .collect();
    store
        .fill_page_layouts(id, &layouts)
        .map_err(|e| storage(&e))
}
