//! Scoring rules on small fixtures the tests build themselves.

mod common;

use common::{RICH_REPORT, doc, page_text};
use esg_score::{
    Bm25Index, Bm25Params, Rubric, ScoreError, ScoreParams, Scorecard, ScoringChunk, ThemeResult,
    retrieve, retrieve_theme, score,
};
use std::collections::BTreeSet;

fn run(chunks: &[ScoringChunk]) -> Scorecard {
    score(&Rubric::builtin(), chunks, &ScoreParams::new(2023, 2024, 6)).expect("score")
}

fn theme<'a>(card: &'a Scorecard, code: &str) -> &'a ThemeResult {
    card.themes
        .iter()
        .find(|t| t.theme == code)
        .unwrap_or_else(|| panic!("theme {code} missing"))
}

fn distinct_chunks(t: &ThemeResult) -> usize {
    t.evidence
        .iter()
        .map(|e| e.chunk_id.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn rich_report_reaches_high_stages_with_verifiable_quotes() {
    let chunks = doc("rich", 2023, RICH_REPORT);
    let card = run(&chunks);
    let stages: Vec<(&str, u8)> = card
        .themes
        .iter()
        .map(|t| (t.theme.as_str(), t.stage))
        .collect();
    assert_eq!(card.themes.len(), 7);
    assert_eq!(theme(&card, "TSP").stage, 4, "{stages:?}");
    assert!(theme(&card, "GHG").stage >= 3, "{stages:?}");
    assert!(theme(&card, "OSP").stage >= 3, "{stages:?}");
    assert!(theme(&card, "RMM").stage >= 3, "{stages:?}");
    assert!(theme(&card, "RD").stage >= 2, "{stages:?}");
    assert!(theme(&card, "EI").stage >= 3, "{stages:?}");
    assert!(card.parity.parity_ok);
    for t in &card.themes {
        if t.stage > 0 {
            assert!(distinct_chunks(t) >= 2, "{}", t.theme);
        }
        for e in &t.evidence {
            let c = chunks
                .iter()
                .find(|c| c.chunk.chunk_id == e.chunk_id)
                .expect("evidence chunk exists");
            assert!(c.chunk.text.contains(&e.quote));
            assert!(e.quote.contains(&e.matched));
            assert!(e.quote.split_whitespace().count() <= 30);
            assert_eq!(e.sha256, esg_core::sha256_hex(&e.quote));
            assert_eq!(e.source_sha256, c.source_sha256);
            assert_eq!(e.page, c.chunk.page);
            // The span addresses the quote in the page text.
            let page = page_text(RICH_REPORT, e.page);
            let at: String = page
                .chars()
                .skip(e.span.start as usize)
                .take((e.span.end - e.span.start) as usize)
                .collect();
            assert_eq!(at, e.quote);
            assert_eq!(e.theme, t.theme);
        }
        assert!(t.confidence >= 0.2 && t.confidence <= 1.0);
    }
    assert_eq!(card.rubric_version, "3.0");
    assert_eq!(card.documents.len(), 1);
}

#[test]
fn one_chunk_is_never_enough() {
    let chunks = doc(
        "thin",
        2023,
        &["We aim to reduce Scope 1 and 2 emissions by 50% by 2030 against a 2019 baseline."],
    );
    let card = run(&chunks);
    let tsp = theme(&card, "TSP");
    assert_eq!(tsp.stage, 0);
    assert!(tsp.evidence.is_empty());
    assert!(
        tsp.note
            .as_deref()
            .is_some_and(|n| n.contains("distinct chunks")),
        "{:?}",
        tsp.note
    );
    assert!(tsp.confidence <= 0.4);
}

#[test]
fn the_same_sentence_in_two_chunks_counts_once() {
    // Overlapping chunks repeat whole sentences: two chunks, one passage.
    let s = "We aim to reduce Scope 1 and 2 emissions by 50% by 2030 against a 2019 baseline.";
    let mut chunks = doc("a", 2023, &[s]);
    // An overlapping chunk of the same page that repeats the same sentence.
    let mut dup = chunks[0].clone();
    dup.chunk.chunk_id = format!("{}-overlap", dup.chunk.chunk_id);
    chunks.push(dup);
    assert_eq!(theme(&run(&chunks), "TSP").stage, 0);
    // The same statement in another document is independent evidence.
    chunks.extend(doc("b", 2023, &[s]));
    assert!(theme(&run(&chunks), "TSP").stage >= 1);
}

#[test]
fn ladder_needs_lower_rungs_evidenced_or_implied() {
    let dm = [
        "Our double materiality assessment identified climate change as a material topic.",
        "The double materiality assessment was refreshed in 2023 with investors and employees.",
    ];
    let rd = theme(&run(&doc("d", 2023, &dm)), "RD").stage;
    assert_eq!(
        rd, 0,
        "stage 3 evidence without the rungs below is not credible"
    );
    let mut pages = dm.to_vec();
    pages.push("This sustainability report follows the GRI Standards.");
    pages.push("Our disclosures follow the TCFD recommendations.");
    let card = run(&doc("d", 2023, &pages));
    let rd = theme(&card, "RD");
    assert_eq!(
        rd.stage,
        3,
        "{:?}",
        rd.evidence.iter().map(|e| &e.criterion).collect::<Vec<_>>()
    );

    // Validated SBTi targets imply the rungs below (quantitative targets, science-based).
    let v = [
        "Our emissions target was validated by the Science Based Targets initiative.",
        "In 2022 the SBTi approved our reduction targets.",
    ];
    let tsp = theme(&run(&doc("v", 2023, &v)), "TSP").clone();
    assert_eq!(tsp.stage, 4);
    assert!(
        tsp.frameworks
            .iter()
            .any(|f| f.id == "sbti_validated" && !f.raised_stage)
    );
    assert!(tsp.next_stage_gaps.is_empty());
}

#[test]
fn framework_minimums_need_evidence_and_conditions() {
    // SBTi commitment alone sets TSP to 3.
    let c = [
        "We have committed to set science-based targets with the SBTi.",
        "In 2023 we joined the Science Based Targets initiative.",
    ];
    let tsp = theme(&run(&doc("c", 2023, &c)), "TSP").clone();
    assert_eq!(tsp.stage, 3);
    assert!(tsp.frameworks.iter().any(|f| f.id == "sbti_commitment"));
    assert!(distinct_chunks(&tsp) >= 2);

    // GHG Protocol alone does not set GHG to 3 ...
    let g = [
        "We follow the GHG Protocol for our inventory.",
        "Our inventory follows the GHG Protocol Corporate Standard.",
    ];
    let ghg = theme(&run(&doc("g", 2023, &g)), "GHG").clone();
    assert!(
        ghg.stage < 3,
        "GHG Protocol without Scope 3 and assurance: {}",
        ghg.stage
    );
    assert!(!ghg.frameworks.iter().any(|f| f.id == "ghg_protocol"));
    // ... but with Scope 3 and limited assurance it does.
    let mut pages = g.to_vec();
    pages.push("Scope 3 emissions from purchased goods and services were 40,000 tCO2e.");
    pages.push("Our GHG emissions received limited assurance from an independent verifier.");
    let ghg = theme(&run(&doc("g", 2023, &pages)), "GHG").clone();
    assert!(ghg.stage >= 3, "{}", ghg.stage);
    assert!(ghg.frameworks.iter().any(|f| f.id == "ghg_protocol"));

    // TCFD in one chunk only is a mention, not evidence.
    let one = theme(
        &run(&doc("t", 2023, &["We report in line with the TCFD."])),
        "RD",
    )
    .stage;
    assert_eq!(one, 0);
    let card = run(&doc(
        "t",
        2023,
        &[
            "We report in line with the TCFD.",
            "Our TCFD index is on page 40.",
        ],
    ));
    let two = theme(&card, "RD");
    assert_eq!(two.stage, 2);
    assert!(two.frameworks.iter().any(|f| f.id == "tcfd_issb"));
}

#[test]
fn negative_overrides_cap_the_stage() {
    let mut pages = RICH_REPORT.to_vec();
    pages.push("Basis for qualified conclusion: the auditors identified material misstatements in Scope 3 GHG emissions.");
    let card = run(&doc("q", 2023, &pages));
    let ghg = theme(&card, "GHG");
    assert_eq!(ghg.stage, 2, "contradicted claims cap GHG at 2");
    assert!(
        ghg.caps
            .iter()
            .any(|c| c.id == "override.auditor_contradiction" && c.lowered_stage)
    );
    assert!(
        ghg.evidence
            .iter()
            .any(|e| e.criterion == "override.auditor_contradiction")
    );
    assert_eq!(ghg.confidence_detail.agreement, 0.0);
    assert!(distinct_chunks(ghg) >= 2);

    let mut pages = RICH_REPORT.to_vec();
    pages.push("The verifier issued a disclaimer of conclusion on our GHG emissions statement.");
    let ghg = theme(&run(&doc("f", 2023, &pages)), "GHG").clone();
    assert_eq!(ghg.stage, 1, "failed assurance caps GHG at 1");
}

#[test]
fn stale_evidence_loses_confidence() {
    let chunks = doc("rich", 2023, RICH_REPORT);
    let r = Rubric::builtin();
    let fresh = score(&r, &chunks, &ScoreParams::new(2023, 2024, 6)).unwrap();
    let stale = score(&r, &chunks, &ScoreParams::new(2023, 2026, 6)).unwrap();
    for (f, s) in fresh.themes.iter().zip(&stale.themes) {
        assert_eq!(f.stage, s.stage);
        assert!(!f.confidence_detail.stale);
        if s.stage > 0 {
            assert!(s.confidence_detail.stale, "{}", s.theme);
            assert_eq!(s.confidence_detail.age_months, Some(30));
            let expect = ((f.confidence - 0.1) * 10.0).round() / 10.0;
            assert!(
                (s.confidence - expect.max(0.2)).abs() < 1e-9,
                "{} {} -> {}",
                s.theme,
                f.confidence,
                s.confidence
            );
        }
    }
    // Exactly 24 months is not yet stale; 25 is.
    let at24 = score(&r, &chunks, &ScoreParams::new(2023, 2025, 12)).unwrap();
    assert!(!at24.themes[0].confidence_detail.stale);
    let at25 = score(&r, &chunks, &ScoreParams::new(2023, 2026, 1)).unwrap();
    assert!(at25.themes[0].confidence_detail.stale);
}

#[test]
fn confidence_values_lie_in_the_bands() {
    let card = run(&doc("rich", 2023, RICH_REPORT));
    for t in &card.themes {
        let tenths = (t.confidence * 10.0).round() as i64;
        let band = match tenths {
            2..=4 => "weak",
            5..=7 => "adequate",
            8..=10 => "strong",
            _ => panic!("confidence {} outside the bands", t.confidence),
        };
        assert_eq!(t.confidence_band, band);
    }
}

#[test]
fn gaps_and_notes() {
    let card = run(&doc(
        "e",
        2023,
        &[
            "Total energy consumption was 450,000 MWh in 2023.",
            "Electricity consumption at our plants was 120 GWh.",
        ],
    ));
    let ei = theme(&card, "EI");
    assert_eq!(ei.stage, 1);
    let gaps: Vec<&str> = ei
        .next_stage_gaps
        .iter()
        .map(|g| g.criterion.as_str())
        .collect();
    assert_eq!(gaps, vec!["EI.2.efficiency_projects", "EI.2.energy_kpi"]);
    let dm = theme(&card, "DM");
    assert_eq!(dm.stage, 0);
    assert!(
        dm.note
            .as_deref()
            .is_some_and(|n| n.contains("No evidence"))
    );
    assert!((dm.confidence - 0.2).abs() < 1e-9);
    assert_eq!(dm.confidence_band, "weak");
}

#[test]
fn evidence_differs_between_themes() {
    let card = run(&doc("rich", 2023, RICH_REPORT));
    let sets: Vec<(&str, BTreeSet<(&str, &str)>)> = card
        .themes
        .iter()
        .filter(|t| !t.evidence.is_empty())
        .map(|t| {
            (
                t.theme.as_str(),
                t.evidence
                    .iter()
                    .map(|e| (e.chunk_id.as_str(), e.quote.as_str()))
                    .collect(),
            )
        })
        .collect();
    assert!(sets.len() >= 6);
    for (i, (a, sa)) in sets.iter().enumerate() {
        for (b, sb) in &sets[i + 1..] {
            assert_ne!(sa, sb, "themes {a} and {b} show identical evidence");
        }
    }
    // And retrieval differs too.
    let retrieved: BTreeSet<Vec<&str>> = card
        .themes
        .iter()
        .map(|t| t.retrieved.iter().map(|r| r.chunk_id.as_str()).collect())
        .collect();
    assert!(retrieved.len() > 1);
}

#[test]
fn output_is_deterministic_and_fingerprinted() {
    let mut chunks = doc("rich", 2023, RICH_REPORT);
    chunks.extend(doc(
        "other",
        2023,
        &[
            "Our TCFD index lists climate disclosures.",
            "Energy consumption fell 3%.",
        ],
    ));
    let r = Rubric::builtin();
    let p = ScoreParams::new(2023, 2024, 6);
    let a = serde_json::to_string(&score(&r, &chunks, &p).unwrap()).unwrap();
    let mut rev = chunks.clone();
    rev.reverse();
    let b = serde_json::to_string(&score(&r, &rev, &p).unwrap()).unwrap();
    assert_eq!(a, b, "input order must not matter");
    let fp = |c: &[ScoringChunk], p: &ScoreParams| score(&r, c, p).unwrap().fingerprint;
    let base = fp(&chunks, &p);
    assert_eq!(base.len(), 64);
    assert_ne!(base, fp(&chunks, &ScoreParams::new(2023, 2025, 6)));
    let mut k5 = p.clone();
    k5.k = 5;
    assert_ne!(base, fp(&chunks, &k5));
    let mut changed = chunks.clone();
    for c in changed.iter_mut().filter(|c| c.doc_id == "other") {
        c.source_sha256 = "f".repeat(64);
    }
    assert_ne!(base, fp(&changed, &p));
    // Chunks of other years are ignored (and do not change the fingerprint).
    let mut more = chunks.clone();
    more.extend(doc("old", 2019, RICH_REPORT));
    assert_eq!(base, fp(&more, &p));
}

#[test]
fn retrieval_then_scoring_is_exactly_score() {
    let mut chunks = doc("rich", 2023, RICH_REPORT);
    chunks.extend(doc("old", 2019, RICH_REPORT));
    let r = Rubric::builtin();
    let p = ScoreParams::new(2023, 2024, 6);
    let whole = serde_json::to_string(&score(&r, &chunks, &p).unwrap()).unwrap();
    let phases = retrieve(&r, &chunks, &p).unwrap();
    let year: Vec<&ScoringChunk> = chunks.iter().filter(|c| c.year == 2023).collect();
    assert_eq!(phases.chunks_searched(), year.len());
    // The retrieval phase holds each theme's BM25 top-k, in rubric order.
    let index = Bm25Index::new(
        Bm25Params::default(),
        year.iter()
            .map(|c| (c.chunk.chunk_id.as_str(), c.chunk.text.as_str())),
    );
    let codes: Vec<&str> = phases.theme_hits().map(|(c, _)| c).collect();
    let rubric_codes: Vec<&str> = r.themes.iter().map(|t| t.code.as_str()).collect();
    assert_eq!(codes, rubric_codes);
    // Chunks this short are retrieved by breadth (esg_score::breadth_k).
    let k = esg_score::breadth_k(p.k, year.iter().map(|c| c.chunk.words));
    assert!(k > p.k);
    for ((_, hits), t) in phases.theme_hits().zip(&r.themes) {
        assert_eq!(hits, retrieve_theme(t, &index, k).as_slice());
    }
    let split = serde_json::to_string(&phases.score()).unwrap();
    assert_eq!(
        whole, split,
        "retrieve + score must be byte-identical to score"
    );
    // The phases validate like score does.
    let mut bad = p.clone();
    bad.k = 0;
    assert!(matches!(
        retrieve(&r, &chunks, &bad),
        Err(ScoreError::InvalidParam { .. })
    ));
    assert!(matches!(
        retrieve(&r, &chunks, &ScoreParams::new(2030, 2031, 1)),
        Err(ScoreError::NoChunks { year: 2030 })
    ));
}

#[test]
fn theme_selection_and_parameter_errors() {
    let chunks = doc("rich", 2023, RICH_REPORT);
    let r = Rubric::builtin();
    let mut p = ScoreParams::new(2023, 2024, 6);
    p.themes = Some(vec!["GHG".into(), "TSP".into()]);
    let card = score(&r, &chunks, &p).unwrap();
    let codes: Vec<&str> = card.themes.iter().map(|t| t.theme.as_str()).collect();
    assert_eq!(codes, vec!["TSP", "GHG"], "rubric order");
    assert_eq!(card.overall.themes_scored, 2);

    let err = |p: ScoreParams| score(&r, &chunks, &p).unwrap_err();
    let mut bad = ScoreParams::new(2023, 2024, 6);
    bad.k = 0;
    assert!(matches!(err(bad), ScoreError::InvalidParam { field, .. } if field == "k"));
    assert!(
        matches!(err(ScoreParams::new(2023, 2024, 13)), ScoreError::InvalidParam { field, .. } if field == "as_of_month")
    );
    let mut unknown = ScoreParams::new(2023, 2024, 6);
    unknown.themes = Some(vec!["XYZ".into()]);
    assert!(
        matches!(err(unknown), ScoreError::InvalidParam { field, message } if field == "themes" && message.contains("XYZ"))
    );
    let mut empty = ScoreParams::new(2023, 2024, 6);
    empty.themes = Some(vec![]);
    assert!(matches!(err(empty), ScoreError::InvalidParam { .. }));
    assert_eq!(
        err(ScoreParams::new(2020, 2024, 6)),
        ScoreError::NoChunks { year: 2020 }
    );
}

#[test]
fn overall_grade_follows_the_mean() {
    let card = run(&doc("rich", 2023, RICH_REPORT));
    let sum: u32 = card.themes.iter().map(|t| u32::from(t.stage)).sum();
    let mean = f64::from(sum) / 7.0;
    assert!((card.overall.mean_stage - (mean * 100.0).round() / 100.0).abs() < 1e-9);
    let tenths = (f64::from(sum) * 10.0 / 7.0 + 1e-9).round() as i64;
    let grade = match tenths {
        0..=9 => "Nascent",
        10..=19 => "Emerging",
        20..=29 => "Established",
        30..=35 => "Advanced",
        _ => "Leading",
    };
    assert_eq!(card.overall.grade, grade);
    let empty = run(&doc(
        "none",
        2023,
        &["The canteen menu changes every week."],
    ));
    assert_eq!(empty.overall.grade, "Nascent");
    assert_eq!(empty.overall.mean_stage, 0.0);
}

/// The precomputed path ([`CompanyIndex`]) gives byte-identical JSON to
/// [`score`] for every `k` and theme selection tried, on a fresh index, on
/// one whose memo tables are already full, and on one loaded from the
/// matches another index stored (what `esg score` reads back).
#[test]
fn company_index_scores_exactly_like_score() {
    use esg_score::CompanyIndex;
    let mut chunks = doc("rich", 2023, RICH_REPORT);
    let other: Vec<String> = RICH_REPORT
        .iter()
        .map(|p| p.replace("2030", "2035"))
        .collect();
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    chunks.extend(doc("other", 2023, &other));
    chunks.extend(doc("old", 2019, RICH_REPORT));
    let r = Rubric::builtin();
    let index = CompanyIndex::new(&r, chunks.clone(), 2023).unwrap();
    assert_eq!(
        index.len(),
        chunks.iter().filter(|c| c.year == 2023).count()
    );
    let before = index.heap_bytes();
    let mut requests = Vec::new();
    for k in [1, 3, 10, 20, 100] {
        for themes in [
            None,
            Some(vec!["GHG".to_string()]),
            Some(vec!["RD".into(), "TSP".into()]),
        ] {
            let mut p = ScoreParams::new(2023, 2024, 6);
            p.k = k;
            p.themes = themes;
            requests.push(p);
        }
    }
    let json = |c: &Scorecard| serde_json::to_string(c).unwrap();
    for round in 0..2 {
        for p in &requests {
            let want = json(&score(&r, &chunks, p).unwrap());
            assert_eq!(
                json(&index.score(&r, p).unwrap()),
                want,
                "round {round}, {p:?}"
            );
        }
    }
    assert!(index.heap_bytes() > before, "memo bytes are counted");
    // What was computed can be stored and loaded into a new index.
    let stored = index.take_new_matches(&r);
    assert!(!stored.is_empty());
    assert!(index.take_new_matches(&r).is_empty(), "taken once");
    let loaded = CompanyIndex::new(&r, chunks.clone(), 2023).unwrap();
    assert_eq!(loaded.load_matches(&r, stored.clone()), stored.len());
    for p in &requests {
        assert_eq!(
            json(&loaded.score(&r, p).unwrap()),
            json(&score(&r, &chunks, p).unwrap())
        );
    }
    assert!(
        loaded.take_new_matches(&r).is_empty(),
        "everything came from the store"
    );
    // Damaged stored data is ignored and recomputed, never trusted.
    let mut bad = stored.clone();
    for s in &mut bad {
        s.data.truncate(s.data.len() / 2);
    }
    let fresh = CompanyIndex::new(&r, chunks.clone(), 2023).unwrap();
    assert_eq!(fresh.load_matches(&r, bad), 0);
    let p = &requests[2];
    assert_eq!(
        json(&fresh.score(&r, p).unwrap()),
        json(&score(&r, &chunks, p).unwrap())
    );
    // Errors: the wrong year, a different rubric, bad parameters.
    assert_eq!(
        index
            .score(&r, &ScoreParams::new(2019, 2024, 6))
            .unwrap_err(),
        ScoreError::NoChunks { year: 2019 }
    );
    let other =
        Rubric::from_json_str(&esg_score::BUILTIN_RUBRIC_JSON.replace("\"3.0\"", "\"3.0-x\""))
            .unwrap();
    assert!(matches!(
        index.score(&other, &requests[0]),
        Err(ScoreError::InvalidParam { ref field, .. }) if field == "rubric"
    ));
    assert_ne!(other.sha256(), r.sha256());
    assert_eq!(loaded.load_matches(&other, stored), 0);
    let mut k0 = ScoreParams::new(2023, 2024, 6);
    k0.k = 0;
    assert!(matches!(
        index.score(&r, &k0),
        Err(ScoreError::InvalidParam { .. })
    ));
    assert!(CompanyIndex::new(&r, chunks, 2001).is_err());
}

/// A report whose TSP top-1 chunk has one stage-2 quote and whose second
/// stage-2 quote is on a page the theme query ranks lower.
const CORROBORATION_REPORT: &[&str] = &[
    // Wording of NVIDIA_Corp-CSR_Report-EN.txt (pages 51 and 53): the target
    // stated once in the targets section, the deadline repeated elsewhere.
    "Our targets and goals: we set a target to reduce emissions and reach net zero, and we report progress against our targets and goals each year, with targets for 2025 and 2030.",
    "We will source 100% renewable electricity for our global offices and data centers under our operational control by the end of fiscal year 2025.",
    "Our offices recycle paper, glass and aluminium, and employees volunteer in local communities.",
];

#[test]
fn a_single_stage_quote_is_corroborated_beyond_the_top_k() {
    use esg_score::{CompanyIndex, FoundBy};
    // Each page padded to one chunk of full size with words no query or
    // pattern knows (no full stop in them), so that k = 1 retrieves one
    // chunk (esg_score::breadth_k widens k for short chunks).
    let filler = vec!["lorem ipsum dolor sit amet"; 22].join(" ");
    let pages: Vec<String> = CORROBORATION_REPORT
        .iter()
        .map(|p| format!("{p} {filler}"))
        .collect();
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
    let chunks = doc("corr", 2023, &pages);
    assert_eq!(chunks.len(), pages.len());
    assert_eq!(
        esg_score::breadth_k(1, chunks.iter().map(|c| c.chunk.words)),
        1
    );
    let r = Rubric::builtin();
    let mut p = ScoreParams::new(2023, 2024, 6);
    p.k = 1;
    let card = score(&r, &chunks, &p).unwrap();
    let tsp = theme(&card, "TSP");
    // The top-1 chunk alone gives one stage-2 quote; corroboration finds the
    // second in another chunk, so the two-distinct-quotes rule is met.
    assert_eq!(tsp.retrieved[0].found_by, FoundBy::Retrieval);
    let corr: Vec<_> = tsp
        .retrieved
        .iter()
        .filter(|c| c.found_by == FoundBy::Corroboration)
        .collect();
    assert_eq!(corr.len(), 1, "{:?}", tsp.retrieved);
    assert_eq!(corr[0].rank, 2);
    assert!(tsp.stage >= 2, "stage {}", tsp.stage);
    assert!(distinct_chunks(tsp) >= 2);
    let c2 = tsp
        .corroboration
        .iter()
        .find(|c| c.stage == 2)
        .expect("stage 2 searched");
    assert_eq!(c2.chunk_id.as_deref(), Some(corr[0].chunk_id.as_str()));
    assert!(c2.searched >= 1 && c2.searched <= esg_score::CORROBORATION_DEPTH);
    assert!(!c2.criteria.is_empty() && c2.criteria.iter().all(|c| c.starts_with("TSP.2.")));
    // Every quote says how it was found; the summary counts them.
    let by_corr = tsp
        .evidence
        .iter()
        .filter(|e| e.found_by == FoundBy::Corroboration)
        .count();
    assert!(by_corr >= 1);
    assert_eq!(tsp.found_by.corroboration, by_corr);
    assert_eq!(tsp.found_by.retrieval + by_corr, tsp.evidence.len());
    for e in tsp
        .evidence
        .iter()
        .filter(|e| e.found_by == FoundBy::Corroboration)
    {
        assert_eq!(e.chunk_id, corr[0].chunk_id);
    }
    // Parity still holds: the corroborating chunk is listed as retrieved.
    assert!(card.parity.parity_ok, "{:?}", card.parity);
    // The JSON says it.
    let json = serde_json::to_value(&card).unwrap();
    let t = &json["themes"][0];
    assert_eq!(t["theme"], "TSP");
    assert!(
        t["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["found_by"] == "corroboration")
    );
    assert_eq!(t["retrieved"][1]["found_by"], "corroboration");
    // The company index finds the same chunk through the same memo.
    let index = CompanyIndex::new(&r, chunks.clone(), 2023).unwrap();
    assert_eq!(
        serde_json::to_string(&index.score(&r, &p).unwrap()).unwrap(),
        serde_json::to_string(&card).unwrap()
    );
    // With k large enough the second quote is retrieved, not corroborated.
    p.k = 10;
    let tsp10 = score(&r, &chunks, &p).unwrap().themes[0].clone();
    assert!(tsp10.stage >= 2);
    assert!(
        tsp10
            .evidence
            .iter()
            .all(|e| e.found_by == FoundBy::Retrieval)
    );
}

#[test]
fn corroboration_keeps_the_two_distinct_quotes_rule() {
    use esg_score::FoundBy;
    // The one stage-2 statement, and nothing else anywhere that corroborates
    // it: the search is made (and recorded) but finds nothing.
    let pages = [CORROBORATION_REPORT[1], CORROBORATION_REPORT[2]];
    let chunks = doc("single", 2023, &pages);
    let mut p = ScoreParams::new(2023, 2024, 6);
    p.k = 1;
    let card = score(&Rubric::builtin(), &chunks, &p).unwrap();
    let tsp = theme(&card, "TSP");
    assert!(tsp.stage < 2, "stage {}", tsp.stage);
    assert!(
        tsp.evidence
            .iter()
            .all(|e| e.found_by == FoundBy::Retrieval)
    );
    assert!(
        tsp.corroboration
            .iter()
            .all(|c| c.chunk_id.is_none() && c.criteria.is_empty())
    );
    // The same sentence repeated in an overlapping chunk is not a second quote.
    let mut dup = doc("dup", 2023, &[CORROBORATION_REPORT[1]]);
    let mut copy = dup[0].clone();
    copy.chunk.chunk_id = format!("{}-overlap", copy.chunk.chunk_id);
    dup.push(copy);
    let card = score(&Rubric::builtin(), &dup, &p).unwrap();
    assert!(theme(&card, "TSP").stage < 2);
}

#[test]
fn a_decisive_statement_is_corroborated_by_the_criteria_the_rubric_lists() {
    // GM / Netflix wording: the validation stated once, the SBTi named in
    // another chunk (TSP.4.sbti_validated lists TSP.3.sbti_commitment and
    // TSP.3.science_based in corroborated_by).
    let validated =
        "Our target was validated by the Science Based Targets Initiative in July 2021.";
    let alone = theme(&run(&doc("v", 2023, &[validated])), "TSP").clone();
    assert_eq!(alone.stage, 0, "one chunk is never enough");
    assert!(alone.corroborated.is_empty());
    let pages = [
        validated,
        "In 2020 we joined the Science Based Targets initiative (SBTi) and committed to set targets for Scopes 1, 2 and 3.",
    ];
    let tsp = theme(&run(&doc("v", 2023, &pages)), "TSP").clone();
    assert_eq!(tsp.stage, 4, "{tsp:?}");
    assert!(distinct_chunks(&tsp) >= 2);
    let c = tsp
        .corroborated
        .iter()
        .find(|c| c.criterion == "TSP.4.sbti_validated")
        .expect("recorded");
    assert_eq!(c.stage, 4);
    assert!(c.by.iter().all(|b| b.starts_with("TSP.3.")), "{c:?}");
    let json = serde_json::to_value(&tsp).unwrap();
    assert_eq!(json["corroborated"][0]["criterion"], "TSP.4.sbti_validated");

    // Netflix_Inc-SASB_Report-EN.txt pages 10 and 8: a data collection
    // process corroborated by the audit of the same data (DM.1.data_collection
    // lists DM.2.data_quality and DM.3.data_audit).
    let dm_pages = [
        "To improve our GHG data management, we have implemented a process to collect any business activity data and continue to improve on these methods.",
        "Our internal audit team validates our greenhouse gas accounting methodologies and we engage EY to perform limited assurance over our greenhouse gas emissions.",
    ];
    let dm = theme(&run(&doc("n", 2023, &dm_pages)), "DM").clone();
    assert!(dm.stage >= 1, "{dm:?}");
    assert!(
        dm.corroborated
            .iter()
            .any(|c| c.criterion == "DM.1.data_collection")
    );
}

#[test]
fn criteria_without_corroborated_by_still_need_two_quotes() {
    // RD.2.tcfd_issb has no corroborated_by: "TCFD" in one chunk with a GRI
    // index in another is no TCFD framework signal.
    let card = run(&doc(
        "t",
        2023,
        &["We report in line with the TCFD.", "GRI Content Index"],
    ));
    let rd = theme(&card, "RD");
    assert!(!rd.frameworks.iter().any(|f| f.id == "tcfd_issb"));
    assert!(
        rd.corroborated
            .iter()
            .all(|c| c.criterion != "RD.2.tcfd_issb")
    );
    // A lower-rung quote does not corroborate a criterion that lists none:
    // a TCFD mention plus a qualitative climate risk statement stays below 2.
    let card = run(&doc(
        "t",
        2023,
        &[
            "We report in line with the TCFD.",
            "Climate change poses risks to our operations.",
        ],
    ));
    assert!(theme(&card, "RD").stage < 2);
}

/// A Japanese sustainability report (written for the test): targets,
/// Scope 1/2 figures, TCFD and board oversight, none of which the English
/// patterns can read.
const JAPANESE_REPORT: &[&str] = &[
    "当社は、2030年までにスコープ1および2の温室効果ガス排出量を2019年比で50％削減する目標を設定しています。この目標はSBTiの認定を受けています。",
    "取締役会は気候変動に関するリスクと機会を監督し、サステナビリティ委員会が四半期ごとに進捗を報告しています。",
    "2023年度のスコープ1排出量は12,000トン、スコープ2排出量は30,000トンでした。TCFD提言に沿って情報を開示しています。",
];

#[test]
fn non_english_documents_are_reported_and_lower_confidence() {
    let mut chunks = doc("ja", 2023, JAPANESE_REPORT);
    let card = run(&chunks);
    assert_eq!(card.documents.len(), 1);
    assert_eq!(card.documents[0].language, "ja");
    for t in &card.themes {
        assert_eq!(t.stage, 0, "{}", t.theme);
        // Not a silent stage 0: the note says why, and confidence is the lowest.
        let note = t.note.as_deref().unwrap_or_default();
        assert!(note.contains("English-only"), "{}: {note}", t.theme);
        assert!(note.contains("ja"), "{}: {note}", t.theme);
        assert_eq!(t.confidence, 0.2, "{}", t.theme);
    }
    let json = serde_json::to_value(&card).unwrap();
    assert_eq!(json["documents"][0]["language"], "ja");

    // An English report beside it: detected as such, and a theme whose
    // retrieved chunks are all English carries no language note.
    chunks.extend(doc("en", 2023, RICH_REPORT));
    let card = run(&chunks);
    let langs: Vec<(&str, &str)> = card
        .documents
        .iter()
        .map(|d| (d.doc_id.as_str(), d.language.as_str()))
        .collect();
    assert!(
        langs.contains(&("en", "en")) && langs.contains(&("ja", "ja")),
        "{langs:?}"
    );
    let english_only = card
        .themes
        .iter()
        .find(|t| t.retrieved.iter().all(|r| r.doc_id == "en"))
        .expect("a theme retrieving only English chunks");
    assert!(
        english_only
            .note
            .as_deref()
            .is_none_or(|n| !n.contains("English-only"))
    );
    // The company index reports the same.
    let r = Rubric::builtin();
    let index = esg_score::CompanyIndex::new(&r, chunks.clone(), 2023).unwrap();
    let p = ScoreParams::new(2023, 2024, 6);
    assert_eq!(
        serde_json::to_string(&index.score(&r, &p).unwrap()).unwrap(),
        serde_json::to_string(&score(&r, &chunks, &p).unwrap()).unwrap()
    );
}

/// A deterministic stand-in for an embedding model in these tests: a
/// bag-of-words vector hashed into 64 dimensions, so texts sharing words
/// are similar. (The real model is tested in esg-embed and end to end in
/// esg-cli; here only the arithmetic of fusion is under test.)
fn hashed_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 64];
    for w in esg_score::tokenize(text) {
        let h = esg_core::sha256_hex(&w);
        let i = usize::from_str_radix(&h[..4], 16).unwrap() % 64;
        v[i] += 1.0;
    }
    v
}

fn semantic_setup(
    r: &Rubric,
    chunks: &[ScoringChunk],
    every: usize,
) -> (
    esg_score::ChunkVectors,
    std::collections::HashMap<String, Vec<f32>>,
) {
    let vectors = esg_score::ChunkVectors::new(
        "test/hashed-bow",
        64,
        chunks
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(_, c)| (c.chunk.chunk_id.clone(), hashed_vector(&c.chunk.text))),
    )
    .unwrap();
    let queries = r
        .themes
        .iter()
        .map(|t| {
            (
                t.code.clone(),
                hashed_vector(&esg_score::theme_query_text(t)),
            )
        })
        .collect();
    (vectors, queries)
}

#[test]
fn hybrid_retrieval_is_deterministic_reported_and_alpha_one_is_bm25() {
    use esg_score::{CompanyIndex, Fusion, SemanticInput, score_with};
    let chunks = doc("rich", 2023, RICH_REPORT);
    let r = Rubric::builtin();
    let (vectors, queries) = semantic_setup(&r, &chunks, 1);
    let json = |c: &Scorecard| serde_json::to_value(c).unwrap();
    let bm25 = score(&r, &chunks, &ScoreParams::new(2023, 2024, 6)).unwrap();
    assert_eq!(
        json(&bm25)["retrieval"],
        serde_json::json!({"method": "bm25"})
    );

    let index = CompanyIndex::new(&r, chunks.clone(), 2023).unwrap();
    for fusion in [
        Fusion::Alpha(1.0),
        Fusion::Alpha(0.6),
        Fusion::Alpha(0.0),
        Fusion::Rrf,
    ] {
        let mut p = ScoreParams::new(2023, 2024, 6);
        p.fusion = Some(fusion);
        let input = SemanticInput {
            fusion,
            vectors: &vectors,
            queries: &queries,
        };
        let a = score_with(&r, &chunks, &p, Some(input)).unwrap();
        let b = score_with(&r, &chunks, &p, Some(input)).unwrap();
        let c = index.score_with(&r, &p, Some(input)).unwrap();
        let ja = serde_json::to_string(&a).unwrap();
        assert_eq!(ja, serde_json::to_string(&b).unwrap(), "{fusion:?}");
        assert_eq!(ja, serde_json::to_string(&c).unwrap(), "index {fusion:?}");
        let info = json(&a)["retrieval"].clone();
        assert_eq!(info["method"], "hybrid");
        assert_eq!(info["model"], "test/hashed-bow");
        assert_eq!(info["fusion"], fusion.name());
        assert_eq!(info["semantic_coverage"], 1.0);
        assert_ne!(a.fingerprint, bm25.fingerprint, "{fusion:?}");
        assert!(a.parity.parity_ok);
        for t in &a.themes {
            for h in t
                .retrieved
                .iter()
                .filter(|h| h.found_by == esg_score::FoundBy::Retrieval)
            {
                assert!(h.semantic.is_some(), "every chunk has a vector");
            }
        }
        if fusion == Fusion::Alpha(1.0) {
            // alpha 1 is BM25 only: the same chunks in the same order,
            // hence the same stages and quotes.
            for (h, l) in a.themes.iter().zip(&bm25.themes) {
                let ids = |t: &esg_score::ThemeResult| {
                    t.retrieved
                        .iter()
                        .map(|x| x.chunk_id.clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(ids(h), ids(l), "{}", h.theme);
                assert_eq!(h.stage, l.stage);
                assert_eq!(h.evidence, l.evidence);
            }
        }
    }
    // Alpha is part of the fingerprint.
    let fp = |fusion| {
        let mut p = ScoreParams::new(2023, 2024, 6);
        p.fusion = Some(fusion);
        let input = SemanticInput {
            fusion,
            vectors: &vectors,
            queries: &queries,
        };
        score_with(&r, &chunks, &p, Some(input))
            .unwrap()
            .fingerprint
    };
    assert_ne!(fp(Fusion::Alpha(0.5)), fp(Fusion::Alpha(0.6)));
}

#[test]
fn partial_vectors_are_used_and_reported() {
    use esg_score::{Fusion, SemanticInput, score_with};
    let chunks = doc("rich", 2023, RICH_REPORT);
    let r = Rubric::builtin();
    let (vectors, queries) = semantic_setup(&r, &chunks, 2);
    let mut p = ScoreParams::new(2023, 2024, 6);
    p.fusion = Some(Fusion::Alpha(0.3));
    let card = score_with(
        &r,
        &chunks,
        &p,
        Some(SemanticInput {
            fusion: Fusion::Alpha(0.3),
            vectors: &vectors,
            queries: &queries,
        }),
    )
    .unwrap();
    let n = chunks.len();
    let with = n.div_ceil(2);
    assert_eq!(card.retrieval.chunks, Some(n));
    assert_eq!(card.retrieval.chunks_with_vectors, Some(with));
    let cov = card.retrieval.semantic_coverage.unwrap();
    assert!((cov - with as f64 / n as f64).abs() < 1e-4, "{cov}");
    // A chunk without a vector can only come in by its lexical score.
    for t in &card.themes {
        for h in &t.retrieved {
            if !vectors.contains(&h.chunk_id) && h.found_by == esg_score::FoundBy::Retrieval {
                assert!(h.semantic.is_none() && h.lexical.is_some(), "{h:?}");
            }
        }
    }
}

#[test]
fn hybrid_parameters_must_agree_with_the_input() {
    use esg_score::{Fusion, ScoreError, SemanticInput, score_with};
    let chunks = doc("rich", 2023, RICH_REPORT);
    let r = Rubric::builtin();
    let (vectors, mut queries) = semantic_setup(&r, &chunks, 1);
    let mut p = ScoreParams::new(2023, 2024, 6);
    p.fusion = Some(Fusion::Rrf);
    let field = |e: ScoreError| match e {
        ScoreError::InvalidParam { field, .. } => field,
        other => panic!("{other:?}"),
    };
    // Hybrid asked, no vectors given.
    assert_eq!(field(score(&r, &chunks, &p).unwrap_err()), "semantic");
    // A theme's query vector missing, or of another dimension.
    queries.remove("GHG");
    let input = SemanticInput {
        fusion: Fusion::Rrf,
        vectors: &vectors,
        queries: &queries,
    };
    assert_eq!(
        field(score_with(&r, &chunks, &p, Some(input)).unwrap_err()),
        "semantic"
    );
    queries.insert("GHG".into(), vec![1.0; 3]);
    let input = SemanticInput {
        fusion: Fusion::Rrf,
        vectors: &vectors,
        queries: &queries,
    };
    assert_eq!(
        field(score_with(&r, &chunks, &p, Some(input)).unwrap_err()),
        "semantic"
    );
    // Vectors given, BM25 asked.
    p.fusion = None;
    assert_eq!(
        field(score_with(&r, &chunks, &p, Some(input)).unwrap_err()),
        "semantic"
    );
}

/// Issue 12: placing quotes on their pages narrows a quote to the part its
/// layout says is one block, keeps it a verbatim span of its page that
/// contains the match, and gives span, hash and id that agree with it.
#[test]
fn placed_quotes_stay_verbatim_spans_of_their_page() {
    let chunks = doc("d1", 2023, RICH_REPORT);
    let mut card = run(&chunks);
    let before: usize = card.themes.iter().map(|t| t.evidence.len()).sum();
    // Keep from the match to the end of the quote (a block boundary just
    // before the match), with a box; refuse ranges that lose the match.
    card.place_quotes(|e| {
        let at = e.quote.find(&e.matched).unwrap();
        let start = e.quote[..at].rfind(' ').map_or(0, |i| i + 1);
        esg_score::Placement {
            keep: Some(start..e.quote.len()),
            bbox: Some(esg_core::BBox::new(72.0, 700.0, 300.0, 712.0)),
        }
    });
    let after: usize = card.themes.iter().map(|t| t.evidence.len()).sum();
    assert!(after > 0 && after <= before);
    let mut narrowed = 0;
    for t in &card.themes {
        for w in t.evidence.windows(2) {
            let key = |e: &esg_score::Evidence| {
                (
                    e.stage,
                    e.criterion.clone(),
                    e.doc_id.clone(),
                    e.page,
                    e.span,
                    e.evidence_id.clone(),
                )
            };
            assert!(key(&w[0]) < key(&w[1]), "sorted and without duplicates");
        }
        for e in &t.evidence {
            let page = page_text(RICH_REPORT, e.page);
            let got: String = page
                .chars()
                .skip(e.span.start as usize)
                .take((e.span.end - e.span.start) as usize)
                .collect();
            assert_eq!(got, e.quote, "the span is the quote");
            assert!(e.quote.contains(&e.matched));
            assert_eq!(e.sha256, esg_core::sha256_hex(&e.quote));
            let id = esg_core::sha256_hex(format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
                e.doc_id, e.chunk_id, e.criterion, e.span.start, e.span.end
            ));
            assert_eq!(e.evidence_id, id[..24], "the id follows the span");
            assert_eq!(e.bbox, Some(esg_core::BBox::new(72.0, 700.0, 300.0, 712.0)));
            if !e.quote.starts_with(e.matched.split(' ').next().unwrap()) {
                continue;
            }
            narrowed += 1;
        }
    }
    assert!(narrowed > 0);

    // A range that would lose the match is not applied.
    let mut card = run(&chunks);
    let quotes: Vec<String> = card
        .themes
        .iter()
        .flat_map(|t| t.evidence.iter().map(|e| e.quote.clone()))
        .collect();
    card.place_quotes(|_| esg_score::Placement {
        keep: Some(0..1),
        bbox: None,
    });
    let kept: Vec<String> = card
        .themes
        .iter()
        .flat_map(|t| t.evidence.iter().map(|e| e.quote.clone()))
        .collect();
    assert_eq!(kept, quotes);
}
