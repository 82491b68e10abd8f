//! Scores one plain-text report and prints a summary (or the full JSON).
//!
//! ```text
//! cargo run -p esg-score --example score_text -- REPORT.txt YEAR AS_OF_YYYY-MM [--json] [--k N]
//! ```
//!
//! Pages are separated by form feeds; a file without form feeds is split
//! at every `\n\n\n` (two empty lines), the page convention of the
//! corpus's extracted text. The text goes through the same clean-up
//! and chunking as ingestion (`esg_core`), so quotes and spans are those
//! the API would return.

use esg_core::{ChunkParams, RawPage, chunk_pages, clean_pages, sha256_hex};
use esg_score::{Rubric, ScoreParams, ScoringChunk, score};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let k = args
        .iter()
        .position(|a| a == "--k")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let pos: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with("--") && a.parse::<usize>().map_or(true, |_| a.len() == 4))
        .collect();
    let (Some(path), Some(year), Some(as_of)) = (pos.first(), pos.get(1), pos.get(2)) else {
        eprintln!("usage: score_text REPORT.txt YEAR AS_OF_YYYY-MM [--json] [--k N]");
        return ExitCode::from(2);
    };
    let (Ok(year), Some((ay, am))) = (year.parse::<i32>(), as_of.split_once('-')) else {
        eprintln!("error: YEAR must be a number and AS_OF must be YYYY-MM");
        return ExitCode::from(2);
    };
    let (Ok(ay), Ok(am)) = (ay.parse::<i32>(), am.parse::<u32>()) else {
        eprintln!("error: AS_OF must be YYYY-MM");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(path.as_str()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let parts: Vec<String> = if text.contains('\u{c}') {
        text.split('\u{c}').map(str::to_string).collect()
    } else {
        text.split("\n\n\n").map(str::to_string).collect()
    };
    let raw: Vec<RawPage> = parts
        .into_iter()
        .enumerate()
        .map(|(i, t)| RawPage {
            number: i as u32 + 1,
            text: t,
            is_virtual: false,
            layout: None,
        })
        .collect();
    let doc_sha = sha256_hex(&bytes);
    let chunks = chunk_pages(&doc_sha, &clean_pages(raw.clone()), ChunkParams::default());
    let doc_id = doc_sha[..16].to_string();
    let input: Vec<ScoringChunk> = chunks
        .into_iter()
        .map(|chunk| ScoringChunk {
            doc_id: doc_id.clone(),
            source_sha256: doc_sha.clone(),
            year,
            chunk,
        })
        .collect();
    let mut params = ScoreParams::new(year, ay, am);
    params.k = k;
    let card = match score(&Rubric::builtin(), &input, &params) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&card) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "{} pages, {} chunks; overall {} (mean {:.2}); parity {}",
        raw.len(),
        input.len(),
        card.overall.grade,
        card.overall.mean_stage,
        card.parity.parity_ok
    );
    for t in &card.themes {
        let fw: Vec<&str> = t.frameworks.iter().map(|f| f.id.as_str()).collect();
        let caps: Vec<&str> = t.caps.iter().map(|c| c.id.as_str()).collect();
        println!(
            "\n{:<4} stage {} ({}) conf {:.1} {}  frameworks {:?} caps {:?}",
            t.theme, t.stage, t.label, t.confidence, t.confidence_band, fw, caps
        );
        for e in &t.evidence {
            println!(
                "   s{} {:<32} p{:<3} «{}»",
                e.stage, e.criterion, e.page, e.quote
            );
        }
        if let Some(n) = &t.note {
            println!("   note: {n}");
        }
    }
    ExitCode::SUCCESS
}
