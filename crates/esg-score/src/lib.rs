//! Rubric v3.0, BM25 retrieval and explainable stage scoring for the ESG
//! Scoring API. Pure: no file or network I/O except an explicit
//! [`Rubric::from_path`].
//!
//! * [`rubric`] — the rubric as data (`rubric/v3.0.json`), validated with
//!   field-path errors, compiled into matchers.
//! * [`matcher`] — word-boundary patterns, proximity rules, negation guards.
//! * [`retrieve`](mod@retrieve) — BM25 over chunks keyed by `chunk_id`.
//! * [`index`] — the work that depends only on a company-year's chunks and
//!   the rubric (BM25 index, top-k, criterion matches), done once and
//!   reused by every request: [`CompanyIndex`].
//! * [`quote`] — verbatim quotes of at most N words around a match.
//! * [`mod@score`] — per-theme stage, confidence and evidence, the [`Scorecard`];
//!   [`score`](fn@score) is [`retrieve`](fn@retrieve) (BM25 top-k per theme) then [`Retrieval::score`],
//!   so callers can time the two phases apart.
//! * [`eval`] — precision/recall of the criteria on TCFD-labelled sentences.
//!
//! ```
//! use esg_score::{Rubric, ScoreParams, ScoringChunk, score};
//! let rubric = Rubric::builtin();
//! let text = "We report Scope 1 and Scope 2 emissions using the GHG Protocol.";
//! let chunk = esg_core::Chunk {
//!     chunk_id: "c1".into(), page: 1, seq: 0, char_start: 0,
//!     char_end: text.chars().count() as u32, text: text.into(),
//!     sha256: esg_core::sha256_hex(text), words: 12,
//! };
//! let chunks = vec![ScoringChunk { doc_id: "d1".into(), source_sha256: "00".into(), year: 2023, chunk }];
//! let card = score(&rubric, &chunks, &ScoreParams::new(2023, 2024, 6)).unwrap();
//! assert_eq!(card.themes.len(), 7);
//! // One chunk can never reach a stage: two distinct chunks are required.
//! assert!(card.themes.iter().all(|t| t.stage == 0));
//! ```

#![deny(missing_docs)]

pub mod error;
pub mod eval;
pub mod index;
pub mod matcher;
pub mod quote;
pub mod retrieve;
pub mod rubric;
pub mod score;
pub mod semantic;
mod text;

pub use error::{CsvError, RubricError, ScoreError};
pub use eval::{
    EvalReport, Prf, ThemeEval, evaluate_labels, evaluate_labels_with, parse_csv, tcfd_label_themes,
};
pub use index::{CompanyIndex, StoredMatches};
pub use matcher::{LazyRegex, MatchRule, NegationGuard, Proximity};
pub use retrieve::{Bm25Index, Bm25Params, SearchHit, tokenize};
pub use rubric::{
    BUILTIN_RUBRIC_JSON, Band, CoreRule, Criterion, Framework, Override, Rubric, Stage, Theme,
};
pub use score::{
    CORROBORATION_DEPTH, CapApplied, ConfidenceDetail, Corroborated, Corroboration, DEFAULT_K,
    DocumentUsed, Evidence, FoundBy, FoundBySummary, FrameworkSignal, Gap, Overall, PASSAGE_WORDS,
    Parity, Placement, Retrieval, RetrievedChunk, ScoreParams, Scorecard, ScoringChunk, Span,
    ThemeResult, breadth_k, retrieve, retrieve_theme, retrieve_with, score, score_with,
};
pub use semantic::{
    ChunkVectors, DEFAULT_ALPHA, Fusion, RetrievalInfo, SemanticInput, fuse, theme_query_text,
};
