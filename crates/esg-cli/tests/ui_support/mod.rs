//! The data the UI tests run on: a real `esg serve` whose data directory
//! `esg ingest` filled with the sample report for two years (2023 without
//! its SBTi paragraph, so a stage changes), a synthetic report whose
//! company name, sector and text carry markup to prove escaping, and, when
//! the corpus is there, three small corpus PDFs with their sectors.
#![allow(dead_code)]

use crate::serve_support::{self, Served};
use crate::support;
use std::path::Path;
use std::process::{Command, Stdio};

/// The synthetic company's name: markup that must render as text.
pub const EVIL: &str = "Evil <script>alert(1)</script> \"><img src=x onerror=alert(1)> Corp";
/// Its sector: a spreadsheet formula and markup.
pub const EVIL_SECTOR: &str = "=HYPERLINK(\"http://x\")\"><img src=x onerror=alert(2)>";

/// Small corpus PDFs: (file, company, year, sector).
pub const CORPUS: &[(&str, &str, i32, &str)] = &[
    (
        "reports/Alphabet_Inc-ESG_Index.pdf",
        "Alphabet Inc.",
        2022,
        "technology",
    ),
    (
        "reports/PepsiCo_Inc-SASB_Index.pdf",
        "PepsiCo Inc.",
        2021,
        "food & beverage",
    ),
    (
        "reports/Nestle_SA-SASB_Index.pdf",
        "Nestle SA",
        2021,
        "food",
    ),
];

fn ingest(data: &Path, company: &str, year: i32, sector: &str, file: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_esg"))
        .arg("--data-dir")
        .arg(data)
        .args([
            "ingest",
            "--company",
            company,
            "--year",
            &year.to_string(),
            "--sector",
            sector,
        ])
        .arg(file)
        .env_remove("ESG_DATA_DIR")
        .env_remove("ESG_SECTOR")
        .stdin(Stdio::null())
        .output()
        .expect("run esg ingest");
    assert!(
        out.status.success(),
        "esg ingest {company}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The synthetic report's text: sentences the rubric recognises, with
/// markup inside them so that quotes carry it.
pub fn evil_report() -> String {
    format!(
        "{EVIL}\nSustainability Report 2024\n\n\
         Greenhouse gas emissions <script>alert(1)</script>\n\n\
         We report our emissions in accordance with the GHG Protocol Corporate Standard \"><img src=x onerror=alert(1)> using the operational control approach. \
         In 2024 our Scope 1 emissions were 8,420 tCO2e <script>alert(1)</script> and our market-based Scope 2 emissions were 5,130 tCO2e. \
         We report all relevant Scope 3 categories; purchased goods and services account for 71% of Scope 3 emissions.\n\n\
         The Board of Directors has overall responsibility for our sustainability strategy \"><img src=x onerror=alert(1)>. \
         The Board Sustainability Committee oversees climate-related risks and opportunities and meets four times a year.\n"
    )
}

/// Starts the server on the fixture data; `corpus` says whether the
/// corpus PDFs were ingested too.
pub fn start(extra_args: &[&str]) -> (Served, bool) {
    let (s, corpus, _) = start_with_key(extra_args);
    (s, corpus)
}

/// [`start`], with an API key made by `esg keys add` (returned).
pub fn start_with_key(extra_args: &[&str]) -> (Served, bool, String) {
    let mut key = String::new();
    let corpus = support::corpus_dir();
    let has_corpus = corpus.is_some();
    let s = Served::spawn_with(
        |data| {
            let dir = data.parent().unwrap().join("inputs");
            std::fs::create_dir_all(&dir).unwrap();
            let sample = String::from_utf8(serve_support::sample()).unwrap();
            let f24 = dir.join("northwind-2024.txt");
            std::fs::write(&f24, &sample).unwrap();
            ingest(
                data,
                "Northwind Components Ltd",
                2024,
                "Industrial components",
                &f24,
            );
            // 2023: the same report without its targets paragraph.
            let older: String = sample
                .split("\n\n")
                .filter(|p| !p.contains("Science Based Targets initiative"))
                .collect::<Vec<_>>()
                .join("\n\n")
                .replace("2024", "2023");
            let f23 = dir.join("northwind-2023.txt");
            std::fs::write(&f23, older).unwrap();
            ingest(
                data,
                "Northwind Components Ltd",
                2023,
                "Industrial components",
                &f23,
            );
            let fe = dir.join("evil.txt");
            std::fs::write(&fe, evil_report()).unwrap();
            ingest(data, EVIL, 2024, EVIL_SECTOR, &fe);
            if let Some(c) = &corpus {
                for (file, company, year, sector) in CORPUS {
                    ingest(data, company, *year, sector, &c.join(file));
                }
            }
            key = serve_support::add_key(data, "ui-test");
        },
        extra_args,
        &[],
    );
    s.wait_ready();
    (s, has_corpus, key)
}

/// The company key of a name (as the store computes it).
pub fn key(name: &str) -> String {
    esg_core::company_key(name)
}

/// [`key`] as it appears in a URL path or query (spaces as `%20`).
pub fn key_url(name: &str) -> String {
    key(name).replace(' ', "%20")
}
