//! Property tests: quotes, stage evidence and determinism on generated reports.

mod common;

use common::doc;
use esg_score::quote::quote_range;
use esg_score::{Rubric, ScoreParams, score};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Statements that evidence criteria of every theme, plus negated ones.
const STATEMENTS: &[&str] = &[
    "We aim to reduce Scope 1 and 2 emissions by 50% by 2030 against a 2019 baseline.",
    "Our target was validated by the Science Based Targets initiative.",
    "We have committed to set science-based targets with the SBTi.",
    "The Board of Directors oversees climate-related risks.",
    "Our Sustainability Committee meets monthly.",
    "All sites are certified to ISO 14001.",
    "Environmental data is collected through our central ESG data platform.",
    "Data quality checks are performed before reporting.",
    "We report Scope 1, 2 and 3 emissions in accordance with the GHG Protocol.",
    "Our GHG inventory received limited assurance from an independent third party.",
    "Our GHG inventory received reasonable assurance from KPMG.",
    "This report follows the GRI Standards and the TCFD recommendations.",
    "Our double materiality assessment follows the ESRS.",
    "Total energy consumption was 450,000 MWh.",
    "An energy management system certified to ISO 50001 uses smart meters.",
    "We identified physical and transition risks in our annual risk assessment.",
    "Climate scenario analysis tested the resilience of our strategy.",
    "Climate-related risks are integrated into our enterprise risk management.",
    "We have not yet set targets.",
    "No assurance was obtained.",
    "Basis for qualified conclusion: emissions were materially misstated.",
];

fn filler() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z]{1,9}", 0..45).prop_map(|w| w.join(" "))
}

/// A page: a few statements and filler sentences in random order.
fn page() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            (0..STATEMENTS.len()).prop_map(|i| STATEMENTS[i].to_string()),
            filler().prop_map(|f| if f.is_empty() {
                "Intro.".to_string()
            } else {
                format!("{f}.")
            }),
        ],
        1..8,
    )
    .prop_map(|s| s.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn scorecards_keep_their_invariants(pages in proptest::collection::vec(page(), 1..10), k in 1usize..20, month in 1u32..=12) {
        let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
        let chunks = doc("p", 2022, &refs);
        let rubric = Rubric::builtin();
        let mut params = ScoreParams::new(2022, 2024, month);
        params.k = k;
        let card = score(&rubric, &chunks, &params).unwrap();
        prop_assert!(card.parity.parity_ok);
        for t in &card.themes {
            prop_assert!(t.stage <= 4);
            // The top-k, then at most one chunk per stage searched for corroboration.
            let by_retrieval = t.retrieved.iter().filter(|r| r.found_by == esg_score::FoundBy::Retrieval).count();
            prop_assert!(by_retrieval <= esg_score::breadth_k(k, chunks.iter().map(|c| c.chunk.words)));
            prop_assert!(t.retrieved.len() - by_retrieval <= t.corroboration.len());
            prop_assert!(t.retrieved[..by_retrieval].iter().all(|r| r.found_by == esg_score::FoundBy::Retrieval));
            prop_assert!(t.corroboration.iter().all(|c| c.searched <= 4 * esg_score::CORROBORATION_DEPTH));
            let retrieved: BTreeSet<&str> = t.retrieved.iter().map(|r| r.chunk_id.as_str()).collect();
            for e in &t.evidence {
                let c = chunks.iter().find(|c| c.chunk.chunk_id == e.chunk_id).unwrap();
                prop_assert!(c.chunk.text.contains(&e.quote), "quote not in chunk");
                prop_assert!(e.quote.contains(&e.matched));
                prop_assert!(e.quote.split_whitespace().count() <= 30);
                prop_assert!(!e.quote.starts_with(char::is_whitespace) && !e.quote.ends_with(char::is_whitespace));
                prop_assert!(retrieved.contains(e.chunk_id.as_str()));
                prop_assert_eq!(e.span.end - e.span.start, e.quote.chars().count() as u32);
            }
            if t.stage > 0 {
                // At least two quotes that differ in chunk and in location.
                let ev = &t.evidence;
                let ok = ev.iter().enumerate().any(|(i, a)| ev[i + 1..].iter().any(|b| a.chunk_id != b.chunk_id && (a.page, a.span) != (b.page, b.span)));
                prop_assert!(ok, "stage {} of {} lacks two distinct quotes", t.stage, t.theme);
            } else {
                prop_assert!(t.note.is_some());
            }
            prop_assert!((0.2..=1.0).contains(&t.confidence));
        }
        // Determinism: the same input (in any order) gives byte-identical JSON.
        let a = serde_json::to_string(&card).unwrap();
        let mut rev = chunks.clone();
        rev.reverse();
        let b = serde_json::to_string(&score(&rubric, &rev, &params).unwrap()).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn quotes_are_bounded_substrings_containing_the_hit(words in proptest::collection::vec("[A-Za-z0-9é’,.]{1,8}", 1..120), a in 0usize..1000, len in 1usize..60, max in 5usize..40) {
        let text = words.join(" ");
        let start = a % text.len();
        let start = (start..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap();
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap();
        prop_assume!(start < end);
        prop_assume!(!text[start..end].starts_with(' ') && !text[start..end].ends_with(' '));
        if let Some(q) = quote_range(&text, start..end, max) {
            prop_assert!(q.start <= start && end <= q.end);
            prop_assert!(text[q.clone()].split_whitespace().count() <= max);
            prop_assert!(!text[q.clone()].starts_with(' ') && !text[q.clone()].ends_with(' '));
            // Cut at word boundaries.
            prop_assert!(q.start == 0 || text[..q.start].ends_with(char::is_whitespace));
            prop_assert!(q.end == text.len() || text[q.end..].starts_with(char::is_whitespace));
        } else {
            // Refused only when the hit itself spans more than `max` words.
            let mut pos = 0;
            let mut touched = 0;
            for w in text.split(' ') {
                let (ws, we) = (pos, pos + w.len());
                if ws < end && start < we {
                    touched += 1;
                }
                pos = we + 1;
            }
            prop_assert!(touched > max, "refused a quotable hit ({touched} words, max {max})");
        }
    }
}
