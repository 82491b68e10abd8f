//! Fixtures shared by the integration tests: documents built from page
//! strings through the real clean-up and chunking of `esg_core`.

#![allow(dead_code)]

use esg_core::{ChunkParams, RawPage, chunk_pages, clean_pages, sha256_hex};
use esg_score::ScoringChunk;

/// Chunks of one document whose pages are `pages` (1-based in order).
pub fn doc(doc_id: &str, year: i32, pages: &[&str]) -> Vec<ScoringChunk> {
    let raw: Vec<RawPage> = pages
        .iter()
        .enumerate()
        .map(|(i, t)| RawPage {
            number: i as u32 + 1,
            text: (*t).to_string(),
            is_virtual: false,
            layout: None,
        })
        .collect();
    let source = sha256_hex(format!("{doc_id}:{}", pages.join("\u{c}")));
    chunk_pages(&source, &clean_pages(raw), ChunkParams::default())
        .into_iter()
        .map(|chunk| ScoringChunk {
            doc_id: doc_id.to_string(),
            source_sha256: source.clone(),
            year,
            chunk,
        })
        .collect()
}

/// The cleaned text of page `n` of a document built by [`doc`].
pub fn page_text(pages: &[&str], n: u32) -> String {
    let raw: Vec<RawPage> = pages
        .iter()
        .enumerate()
        .map(|(i, t)| RawPage {
            number: i as u32 + 1,
            text: (*t).to_string(),
            is_virtual: false,
            layout: None,
        })
        .collect();
    clean_pages(raw)
        .into_iter()
        .find(|p| p.number == n)
        .map(|p| p.text)
        .unwrap_or_default()
}

/// A report that evidences every theme at several stages, one statement per page.
pub const RICH_REPORT: &[&str] = &[
    "Our climate strategy sets out how we will decarbonise our operations and supply chain.",
    "We aim to reduce Scope 1 and 2 emissions by 50% by 2030 against a 2019 baseline.",
    "Our target to cut Scope 3 emissions by 30% by 2030 was validated by the Science Based Targets initiative (SBTi).",
    "The SBTi approved our near-term targets in 2022, confirming they are aligned with a 1.5°C pathway.",
    "The Board of Directors oversees climate-related risks and reviews progress on our sustainability targets each quarter.",
    "Our Sustainability Committee, chaired by the CEO, meets monthly and reports to the Board on ESG performance.",
    "All manufacturing sites are certified to ISO 14001 and our environmental management system is covered by internal audit.",
    "Our environmental policy defines roles and responsibilities for sustainability at every site.",
    "Environmental data is collected from all sites through our central ESG data platform.",
    "Data quality checks and plausibility checks are performed before the sustainability data is reported.",
    "We report Scope 1, 2 and 3 emissions in accordance with the GHG Protocol.",
    "Our Scope 1, 2 and 3 GHG emissions inventory received limited assurance from an independent third party.",
    "Total GHG emissions were 120,000 tCO2e, of which Scope 3 accounted for 80%.",
    "This report is prepared in accordance with the GRI Standards and includes a SASB index.",
    "We disclose in line with the recommendations of the Task Force on Climate-related Financial Disclosures (TCFD).",
    "Our TCFD report explains our governance of climate-related risks and opportunities.",
    "Total energy consumption was 450,000 MWh, and energy intensity fell by 5%.",
    "Energy efficiency projects such as LED lighting upgrades cut electricity use at 40 sites.",
    "An energy management system certified to ISO 50001 monitors consumption with smart meters in real time.",
    "We identified physical and transition risks and assess them annually in our risk assessment process.",
    "Climate scenario analysis under 1.5°C and 4°C scenarios tested the resilience of our strategy.",
    "Climate-related risks are integrated into our enterprise risk management process.",
    "Sub-metering at every plant feeds our energy monitoring platform with hourly readings.",
    "A 2°C scenario stress test estimated the financial impact of carbon pricing at $50 million by 2030.",
];
