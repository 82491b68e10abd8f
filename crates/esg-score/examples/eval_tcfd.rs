//! Measures the rubric's criteria against TCFD-labelled sentences.
//!
//! ```text
//! cargo run -p esg-score --example eval_tcfd -- ../shared/corpus/labels/tcfd_disclosures.csv [rubric.json]
//! ```
//!
//! Reads a CSV with a header containing `text` and `label` columns, maps
//! each label to rubric themes ([`esg_score::tcfd_label_themes`]) and prints
//! per-theme precision/recall/F1 of the rubric and of the keyword-count
//! baseline, for all rows and for the even-indexed ("dev", used while
//! writing the patterns) and odd-indexed ("held-out") halves.
//!
//! `--misses THEME` also lists the dev rows the rubric gets wrong for that
//! theme (missed gold rows, and false alarms with the criteria that hit).

use esg_score::{Rubric, evaluate_labels, evaluate_labels_with, parse_csv, tcfd_label_themes};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut misses: Option<String> = None;
    let mut positional = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(a) = argv.next() {
        if a == "--misses" {
            misses = argv.next();
        } else {
            positional.push(a);
        }
    }
    let mut args = positional.into_iter();
    let Some(csv_path) = args.next() else {
        eprintln!("usage: eval_tcfd <tcfd_disclosures.csv> [rubric.json] [--misses THEME]");
        return ExitCode::from(2);
    };
    let rubric = match args.next() {
        Some(p) => match Rubric::from_path(&p) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Rubric::builtin(),
    };
    let text = match std::fs::read_to_string(&csv_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {csv_path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let records = match parse_csv(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {csv_path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some((header, body)) = records.split_first() else {
        eprintln!("error: {csv_path} is empty");
        return ExitCode::FAILURE;
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(ti), Some(li)) = (col("text"), col("label")) else {
        eprintln!("error: {csv_path} needs `text` and `label` columns");
        return ExitCode::FAILURE;
    };
    let rows: Vec<(String, String)> = body
        .iter()
        .filter(|r| r.len() > ti.max(li))
        .map(|r| (r[ti].clone(), r[li].clone()))
        .collect();
    let dev: Vec<(String, String)> = rows.iter().step_by(2).cloned().collect();
    let held: Vec<(String, String)> = rows.iter().skip(1).step_by(2).cloned().collect();
    println!(
        "rubric {} (sha256 {})",
        rubric.version,
        &rubric.sha256()[..12]
    );
    for (name, part) in [
        ("all rows", &rows),
        ("dev (even rows)", &dev),
        ("held-out (odd rows)", &held),
    ] {
        println!("\n== {name} ==");
        print!("{}", evaluate_labels(&rubric, part).to_table());
    }
    // The fair held-out comparison: baseline thresholds fixed on the dev rows.
    let dev_thresholds: std::collections::BTreeMap<String, usize> = evaluate_labels(&rubric, &dev)
        .themes
        .iter()
        .map(|t| (t.theme.clone(), t.baseline_threshold))
        .collect();
    println!("\n== held-out (odd rows), baseline thresholds chosen on dev ==");
    print!(
        "{}",
        evaluate_labels_with(&rubric, &held, Some(&dev_thresholds)).to_table()
    );
    if let Some(theme) = misses {
        println!("\n== dev rows wrong for {theme} ==");
        for (text, label) in &dev {
            let gold = tcfd_label_themes(label).contains(&theme.as_str());
            let hits: Vec<String> = rubric
                .match_text(text)
                .into_iter()
                .filter(|h| h.theme == theme)
                .map(|h| format!("{} «{}»", h.criterion, &text[h.span]))
                .collect();
            match (gold, hits.is_empty()) {
                (true, true) => println!("MISS [{label}] {text}"),
                (false, false) => println!("FALSE [{label}] {text}\n      -> {}", hits.join("; ")),
                _ => {}
            }
        }
    }
    ExitCode::SUCCESS
}
