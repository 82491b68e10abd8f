//! Explainable stage scoring of one company-year over its chunks.
//!
//! For each theme (rubric order):
//!
//! 1. **Retrieve** the top-k chunks with the theme's BM25 query, fused
//!    with the stages' own queries when the rubric gives them
//!    ([`retrieve_theme`]).
//! 2. **Evaluate** every criterion (and override) of the theme on those
//!    chunks, in rank order; each chunk gives at most one quote per
//!    criterion, and at most `max_quotes_per_criterion` quotes are kept.
//!
//!    **Corroboration**: a stage whose criteria have exactly one distinct
//!    quote in the top-k looks for a second one beyond it: the stage's query
//!    over the company-year's chunks, at most [`CORROBORATION_DEPTH`] chunks
//!    not in the top-k, then the queries of the stages of the criteria the
//!    rubric lists in `corroborated_by`. The chunk found is
//!    appended to the theme's `retrieved` list and its quotes are marked
//!    `found_by: corroboration`, so parity holds and the result says how
//!    every quote was found.
//! 3. **Ladder**: a criterion is *satisfied* when it has a quote or is
//!    implied (transitively) by a criterion that has one. Stage `s > 0` is
//!    *met* when its criteria have at least `min_quotes_per_stage` quotes
//!    that are distinct in chunk *and* in location (the same sentence seen
//!    through two overlapping chunks counts once) and its core criteria are
//!    satisfied (any/all per `core_rule`); it is awarded when, in addition,
//!    the core criteria of every stage below are satisfied. The highest such
//!    stage wins, else 0. A stage one quote short may take its second quote
//!    from a criterion the rubric lists in the `corroborated_by` of the
//!    stage's quoted criterion (still two quotes distinct in chunk and
//!    location); frameworks likewise. The result lists it in `corroborated`.
//! 4. **Framework minimums**: a framework whose every `requires` group has
//!    an evidenced criterion, with quotes from at least
//!    `min_quotes_per_stage` distinct chunks in total, raises the stage to
//!    its `min_stage` (evidence is still required: mentions alone in one
//!    chunk do not count).
//! 5. **Negative caps**: an override with at least `min_quotes` quotes caps
//!    the stage (caps win over minimums).
//! 6. **Confidence** from the number of distinct supporting chunks, their
//!    specificity (figures, years, framework criteria), agreement (ladder
//!    rungs evidenced directly, several criteria concurring, no
//!    contradiction) and freshness, mapped onto the rubric's bands in steps
//!    of 0.1. Evidence older than the freshness limit loses the penalty.
//!
//! The evidence of a theme is every quote of criteria at or below the
//! stage reached before caps, plus the quotes of applied frameworks and of
//! detected overrides, so a stage above 0 always shows quotes from at
//! least two distinct chunks.
//!
//! Output is deterministic: chunks are de-duplicated and indexed by
//! `chunk_id`, every list is sorted by a stable key, floats are rounded,
//! and the `fingerprint` hashes the canonical request, the rubric and the
//! documents used.

use crate::error::ScoreError;
use crate::matcher::MatchRule;
use crate::quote::quote_range;
use crate::retrieve::{Bm25Index, Bm25Params, SearchHit};
use crate::rubric::{Band, CoreRule, Rubric, Theme, tenths};
use crate::semantic::{Fusion, RetrievalInfo, SemanticInput};
use esg_core::{Chunk, sha256_hex};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Default number of chunks retrieved per theme.
pub const DEFAULT_K: usize = 10;
/// Largest `k` accepted.
pub const MAX_K: usize = 100;

/// A chunk with the identity of the document it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoringChunk {
    /// Id of the stored document.
    pub doc_id: String,
    /// SHA-256 of the source file's bytes.
    pub source_sha256: String,
    /// Reporting year of the document.
    pub year: i32,
    /// The chunk itself.
    pub chunk: Chunk,
}

impl ScoringChunk {
    /// A chunk of a stored document whose id is the SHA-256 of its source
    /// bytes (as the store keys documents), so `source_sha256 == doc_id`.
    pub fn from_stored(doc_id: String, year: i32, chunk: Chunk) -> Self {
        ScoringChunk {
            source_sha256: doc_id.clone(),
            doc_id,
            year,
            chunk,
        }
    }
}

/// What to score and as of when.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreParams {
    /// Retrieval breadth per theme (1..=100): `k` chunks, or more when the
    /// company's chunks are short ([`breadth_k`]).
    pub k: usize,
    /// Reporting year scored; only chunks of this year are used.
    pub year: i32,
    /// Scoring date (year), explicit so output is reproducible.
    pub as_of_year: i32,
    /// Scoring date (month, 1–12).
    pub as_of_month: u32,
    /// Theme codes to score; `None` scores all, in rubric order.
    pub themes: Option<Vec<String>>,
    /// `None`: BM25 retrieval. `Some`: hybrid retrieval fused this way,
    /// which needs the vectors ([`score_with`]).
    pub fusion: Option<Fusion>,
}

impl ScoreParams {
    /// Parameters with `k = 10` and all themes.
    pub fn new(year: i32, as_of_year: i32, as_of_month: u32) -> Self {
        ScoreParams {
            k: DEFAULT_K,
            year,
            as_of_year,
            as_of_month,
            themes: None,
            fusion: None,
        }
    }
}

/// Character offsets of a quote in its page's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Span {
    /// First character (inclusive).
    pub start: u32,
    /// Last character (exclusive).
    pub end: u32,
}

/// One verbatim, page-cited quote (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Deterministic id (hash of document, chunk, criterion and span).
    pub evidence_id: String,
    /// Document the quote comes from.
    pub doc_id: String,
    /// Chunk the quote comes from.
    pub chunk_id: String,
    /// 1-based page of the source document.
    pub page: u32,
    /// The quote: a verbatim substring of the chunk text, ≤ `quote_max_words` words.
    pub quote: String,
    /// SHA-256 of `quote`.
    pub sha256: String,
    /// SHA-256 of the source file.
    pub source_sha256: String,
    /// Character offsets of the quote in the page text.
    pub span: Span,
    /// Box of the quote on its PDF page (the union of the boxes of the lines
    /// it comes from, in the page's default user space, points, origin at
    /// the lower left; see `esg_core::layout`), so a viewer can highlight
    /// it. Absent for HTML and text documents (their `span` locates the
    /// quote) and for PDF text read without positions. Set by
    /// [`Scorecard::place_quotes`] from the stored page layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox: Option<esg_core::BBox>,
    /// The text that matched the criterion (contained in `quote`).
    pub matched: String,
    /// Criterion (or override) id the quote supports.
    pub criterion: String,
    /// Theme code.
    pub theme: String,
    /// Stage of the criterion (for an override: its cap).
    pub stage: u8,
    /// Reporting year of the document.
    pub year: i32,
    /// How the chunk the quote comes from was found: `retrieval` (the
    /// theme's top-k) or `corroboration` (searched for a second quote of a
    /// stage that had one, see [`CORROBORATION_DEPTH`]).
    pub found_by: FoundBy,
}

/// How a chunk (and the quotes taken from it) was found for a theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FoundBy {
    /// Among the theme's top-k retrieved chunks.
    Retrieval,
    /// Searched for a corroborating quote of a stage that had exactly one
    /// distinct quote in the top-k.
    Corroboration,
}

/// A corroborating quote looked for beyond the theme's top-k.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Corroboration {
    /// The stage that had exactly one distinct quote in the top-k.
    pub stage: u8,
    /// The query that found the chunk (the last one searched when none did):
    /// the stage's query, or the theme's when the stage has none, or the
    /// query of a `corroborated_by` criterion's stage.
    pub query: String,
    /// Chunks of the company-year examined (not in the top-k): at most
    /// [`CORROBORATION_DEPTH`] per query searched (the stage's, then those of
    /// the stages of its `corroborated_by` criteria).
    pub searched: usize,
    /// The chunk the corroborating quote comes from, when one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_id: Option<String>,
    /// Its page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Its 1-based rank among the query's results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_rank: Option<usize>,
    /// Criteria the chunk gave a corroborating quote for, sorted.
    pub criteria: Vec<String>,
}

/// A framework signal as seen in one theme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrameworkSignal {
    /// Framework id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Minimum stage it sets, if any.
    pub min_stage: Option<u8>,
    /// Stages it supports without a minimum.
    pub supports: Vec<u8>,
    /// `true` when it raised the stage.
    pub raised_stage: bool,
}

/// A negative override detected in one theme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapApplied {
    /// Override id.
    pub id: String,
    /// What it detects.
    pub description: String,
    /// Highest stage it allows.
    pub cap: u8,
    /// `true` when it lowered the stage.
    pub lowered_stage: bool,
}

/// A criterion of the next stage with no evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Criterion id.
    pub criterion: String,
    /// What it looks for.
    pub description: String,
}

/// A chunk retrieved for a theme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievedChunk {
    /// 1-based rank.
    pub rank: usize,
    /// Chunk id.
    pub chunk_id: String,
    /// Document id.
    pub doc_id: String,
    /// Page of the chunk.
    pub page: u32,
    /// Retrieval score, rounded to 6 decimals: BM25 of the theme query, or the
    /// reciprocal-rank-fusion score when the theme has stage queries; in
    /// hybrid retrieval the fused score ([`crate::semantic`]); for a
    /// chunk found by corroboration, BM25 of the query searched.
    pub score: f64,
    /// Hybrid retrieval only: the lexical score (as `score` is in BM25
    /// retrieval), when the chunk is in the theme's lexical top-k; 6 decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical: Option<f64>,
    /// Hybrid retrieval only: cosine similarity of the chunk's vector with
    /// the theme's query vector, when the chunk has one; 6 decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic: Option<f64>,
    /// `retrieval` for the top-k (ranks 1..=k), `corroboration` for a chunk
    /// added after them because it corroborates a stage's single quote.
    pub found_by: FoundBy,
}

/// The factors behind a confidence value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfidenceDetail {
    /// Supporting quotes that are distinct in both chunk and location.
    pub distinct_quotes: usize,
    /// Share of supporting quotes that are specific (figures, years, framework criteria), 2 decimals.
    pub specificity: f64,
    /// Agreement of the evidence (ladder evidenced directly, criteria concurring, no contradiction), 2 decimals.
    pub agreement: f64,
    /// Evidence older than the freshness limit.
    pub stale: bool,
    /// Age of the newest supporting evidence in months at scoring time.
    pub age_months: Option<i64>,
}

/// The result for one theme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThemeResult {
    /// Theme code.
    pub theme: String,
    /// Theme name.
    pub name: String,
    /// Awarded stage, 0–4.
    pub stage: u8,
    /// Label of the awarded stage.
    pub label: String,
    /// Descriptor of the awarded stage.
    pub stage_descriptor: String,
    /// Confidence, one of the rubric's band values (0.2–1.0 in steps of 0.1).
    pub confidence: f64,
    /// Name of the confidence band.
    pub confidence_band: String,
    /// How the confidence was reached.
    pub confidence_detail: ConfidenceDetail,
    /// Quotes, sorted by (stage, criterion, doc_id, page, span, evidence_id).
    pub evidence: Vec<Evidence>,
    /// Frameworks detected with evidence, sorted by id.
    pub frameworks: Vec<FrameworkSignal>,
    /// Negative overrides detected, sorted by id.
    pub caps: Vec<CapApplied>,
    /// Criteria of the next stage with no evidence, sorted by id.
    pub next_stage_gaps: Vec<Gap>,
    /// The chunks retrieved for the theme, by rank: the top-k, then the
    /// chunks found by corroboration.
    pub retrieved: Vec<RetrievedChunk>,
    /// How the evidence was found: the number of quotes shown that come from
    /// the top-k and from corroboration.
    pub found_by: FoundBySummary,
    /// The corroboration searches made, by stage (a stage is searched when
    /// it has exactly one distinct quote in the top-k).
    pub corroboration: Vec<Corroboration>,
    /// Stages and frameworks whose second quote comes from a criterion the
    /// rubric lists in the decisive criterion's `corroborated_by`.
    pub corroborated: Vec<Corroborated>,
    /// Explanation when the stage is 0, and (any stage) when retrieved
    /// chunks are in a language the rubric's patterns are not written in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A stage (or framework) whose second distinct quote comes from a
/// criterion listed in the decisive criterion's `corroborated_by`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Corroborated {
    /// The stage awarded with it (for a framework: its minimum stage).
    pub stage: u8,
    /// The framework, when it is a framework's quotes that were corroborated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The decisive criterion that had a single quote.
    pub criterion: String,
    /// The criteria whose quotes corroborated it, sorted.
    pub by: Vec<String>,
}

/// Per theme, how many of the quotes shown were found each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FoundBySummary {
    /// Quotes from the theme's top-k.
    pub retrieval: usize,
    /// Quotes from chunks found by corroboration.
    pub corroboration: usize,
}

/// Mean stage and grade over the scored themes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overall {
    /// Mean stage, 2 decimals.
    pub mean_stage: f64,
    /// Grade band of the mean (rounded to one decimal).
    pub grade: String,
    /// Number of themes scored.
    pub themes_scored: usize,
}

/// A document whose chunks were used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DocumentUsed {
    /// Document id.
    pub doc_id: String,
    /// SHA-256 of the source file.
    pub source_sha256: String,
    /// Reporting year.
    pub year: i32,
    /// Detected language of the document's text (ISO 639-1, or `und`), see
    /// [`esg_core::detect_language`]. The rubric's patterns are English: a
    /// theme whose retrieved chunks come from a document in another language
    /// says so in its note and loses confidence.
    pub language: String,
}

/// The language the rubric's patterns are written in.
pub const RUBRIC_LANGUAGE: &str = "en";

/// Parity check: every quote comes from a retrieved chunk (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parity {
    /// `evidence_chunk_ids ⊆ retrieved_chunk_ids`.
    pub parity_ok: bool,
    /// Union of retrieved chunk ids over all themes, sorted.
    pub retrieved_chunk_ids: Vec<String>,
    /// Chunk ids that evidence quotes come from, sorted.
    pub evidence_chunk_ids: Vec<String>,
    /// Evidence chunk ids that were not retrieved (empty when parity holds).
    pub missing_chunk_ids: Vec<String>,
}

/// The full, deterministic scoring result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    /// Rubric version.
    pub rubric_version: String,
    /// SHA-256 of the rubric text.
    pub rubric_sha256: String,
    /// Reporting year scored.
    pub year: i32,
    /// Scoring date, `YYYY-MM`.
    pub as_of: String,
    /// Chunks retrieved per theme.
    pub k: usize,
    /// Which retrieval ran: BM25, or hybrid with its model, fusion and the
    /// share of chunks that have a vector.
    pub retrieval: RetrievalInfo,
    /// Per-theme results, in rubric order.
    pub themes: Vec<ThemeResult>,
    /// Mean stage and grade.
    pub overall: Overall,
    /// Documents used, sorted by id.
    pub documents: Vec<DocumentUsed>,
    /// SHA-256 over the canonical request, rubric and documents.
    pub fingerprint: String,
    /// Evidence/retrieval parity.
    pub parity: Parity,
}

/// The order of a theme's quotes: (stage, criterion, doc_id, page, span,
/// evidence_id).
fn evidence_order(a: &Evidence, b: &Evidence) -> std::cmp::Ordering {
    (
        a.stage,
        &a.criterion,
        &a.doc_id,
        a.page,
        a.span,
        &a.evidence_id,
    )
        .cmp(&(
            b.stage,
            &b.criterion,
            &b.doc_id,
            b.page,
            b.span,
            &b.evidence_id,
        ))
}

/// Where a quote lies on its PDF page, as the page's layout tells
/// ([`Scorecard::place_quotes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The byte range of the quote to keep (the part inside one layout
    /// block), or `None` to keep it whole.
    pub keep: Option<std::ops::Range<usize>>,
    /// The box of the kept quote.
    pub bbox: Option<esg_core::BBox>,
}

impl Scorecard {
    /// Places every quote on its page: `place` gives, from the page's
    /// stored layout (normally `PageLayout::place`), the part of the quote
    /// inside the layout block of its match and that part's box. A quote is
    /// narrowed only when the kept part still contains the matched text; its
    /// span, hash and id follow, and the evidence is sorted and
    /// de-duplicated again. Quotes stay verbatim substrings of the page text.
    /// The fingerprint does not change: it covers the inputs, not the quotes.
    pub fn place_quotes(&mut self, mut place: impl FnMut(&Evidence) -> Placement) {
        for t in &mut self.themes {
            for e in &mut t.evidence {
                let p = place(e);
                e.bbox = p.bbox;
                let Some(r) = p.keep else { continue };
                if r == (0..e.quote.len())
                    || r.start > r.end
                    || r.end > e.quote.len()
                    || !e.quote.is_char_boundary(r.start)
                    || !e.quote.is_char_boundary(r.end)
                    || !e.quote[r.clone()].contains(e.matched.as_str())
                {
                    continue;
                }
                let start = e.span.start + e.quote[..r.start].chars().count() as u32;
                let quote = e.quote[r].to_string();
                let end = start + quote.chars().count() as u32;
                e.evidence_id = evidence_id(&e.doc_id, &e.chunk_id, &e.criterion, start, end);
                e.sha256 = sha256_hex(&quote);
                e.quote = quote;
                e.span = Span { start, end };
            }
            let mut seen = BTreeSet::new();
            t.evidence.retain(|e| seen.insert(e.evidence_id.clone()));
            t.evidence.sort_by(evidence_order);
        }
    }
}

/// Scores the chunks of one company for `params.year`: [`retrieve`]
/// followed by [`Retrieval::score`].
///
/// # Errors
/// [`ScoreError::InvalidParam`] for `k` outside 1..=100, a month outside
/// 1..=12, unknown/empty theme codes, or `params.fusion` set (hybrid
/// retrieval needs vectors: [`score_with`]); [`ScoreError::NoChunks`]
/// when no chunk has the requested year.
pub fn score(
    rubric: &Rubric,
    chunks: &[ScoringChunk],
    params: &ScoreParams,
) -> Result<Scorecard, ScoreError> {
    Ok(retrieve(rubric, chunks, params)?.score())
}

/// [`score`] with hybrid retrieval when `params.fusion` is set: `semantic`
/// gives the vectors and theme query vectors (see [`crate::semantic`]).
///
/// # Errors
/// As [`score`]; [`ScoreError::InvalidParam`] (field `semantic`) when
/// `params.fusion` and `semantic` disagree or a theme's query vector is
/// missing or of another dimension.
pub fn score_with(
    rubric: &Rubric,
    chunks: &[ScoringChunk],
    params: &ScoreParams,
    semantic: Option<SemanticInput<'_>>,
) -> Result<Scorecard, ScoreError> {
    Ok(retrieve_with(rubric, chunks, params, semantic)?.score())
}

/// The retrieval phase of [`score`]: the year's chunks (de-duplicated by
/// chunk id), their BM25 index and every selected theme's top-k
/// ([`retrieve_theme`]). [`Retrieval::score`] is the scoring phase; the two
/// phases together are exactly [`score`], so a caller can time (or trace)
/// retrieval and scoring separately without changing the result.
///
/// A [`crate::CompanyIndex`] makes the same two phases
/// ([`crate::CompanyIndex::retrieve`]) from work done once per company-year.
#[derive(Debug)]
pub struct Retrieval<'a> {
    pub(crate) rubric: &'a Rubric,
    pub(crate) params: ScoreParams,
    /// Selected themes with their index in `rubric.themes`.
    pub(crate) themes: Vec<(usize, &'a Theme)>,
    /// The year's chunks, de-duplicated, in `chunk_id` order.
    pub(crate) pool: Pool<'a>,
    /// Per selected theme: its top-k.
    pub(crate) hits: Vec<std::sync::Arc<RankedHits>>,
    /// Documents of the pool, sorted.
    pub(crate) documents: std::borrow::Cow<'a, [DocumentUsed]>,
    /// Where the quotes of a retrieved chunk come from.
    pub(crate) matches: &'a dyn MatchSource,
    /// The BM25 index of the pool, searched again for corroborating quotes.
    pub(crate) bm25: IndexRef<'a>,
    /// Which retrieval ran.
    pub(crate) info: RetrievalInfo,
}

/// The pool's BM25 index: built by [`retrieve`] or borrowed from a
/// [`crate::CompanyIndex`].
#[derive(Debug)]
pub(crate) enum IndexRef<'a> {
    Owned(Box<Bm25Index>),
    Borrowed(&'a Bm25Index),
}

impl IndexRef<'_> {
    fn get(&self) -> &Bm25Index {
        match self {
            IndexRef::Owned(b) => b,
            IndexRef::Borrowed(b) => b,
        }
    }
}

/// Chunks of the company-year examined, beyond a theme's top-k, for a
/// corroborating quote of a stage that has exactly one distinct quote in
/// the top-k: the first `CORROBORATION_DEPTH` results of the stage's query
/// (BM25 over all the year's chunks) that are not in the top-k. This bounds
/// the extra matching to 20 chunks per stage searched.
pub const CORROBORATION_DEPTH: usize = 20;

/// What a theme needs to look for corroborating quotes beyond its top-k.
struct Corroborator<'x> {
    rubric: &'x Rubric,
    theme_idx: usize,
    pool: &'x Pool<'x>,
    bm25: &'x Bm25Index,
    matches: &'x dyn MatchSource,
}

impl<'x> Corroborator<'x> {
    /// The stage query's results not in `exclude`, at most
    /// [`CORROBORATION_DEPTH`], each with its 1-based rank in the query,
    /// its chunk and the chunk's matches for the theme.
    fn candidates<'e>(
        &'e self,
        query: &str,
        exclude: &'e BTreeSet<&str>,
    ) -> impl Iterator<Item = (usize, SearchHit, Ranked<'x>)> + 'e {
        let n = self.pool.len();
        let hits = self
            .matches
            .search(self.bm25, query, exclude.len() + CORROBORATION_DEPTH);
        (*hits)
            .clone()
            .into_iter()
            .enumerate()
            .filter(move |(_, h)| !exclude.contains(h.chunk_id.as_str()))
            .take(CORROBORATION_DEPTH)
            .filter_map(move |(rank, h)| {
                let at = RankedHits::locate(
                    vec![h.clone()],
                    |i| self.pool.get(i).chunk.chunk_id.as_str(),
                    n,
                );
                let i = *at.pool_idx.first()?;
                let c = self.pool.get(i);
                let m = self
                    .matches
                    .theme_matches(self.rubric, self.theme_idx, i, c);
                Some((rank + 1, h, (c, m)))
            })
    }
}

/// The searched chunks: borrowed one by one ([`retrieve`]) or as the
/// slice a [`crate::CompanyIndex`] owns.
#[derive(Debug)]
pub(crate) enum Pool<'a> {
    Refs(Vec<&'a ScoringChunk>),
    Owned(&'a [ScoringChunk]),
}

impl Pool<'_> {
    fn len(&self) -> usize {
        match self {
            Pool::Refs(v) => v.len(),
            Pool::Owned(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> &ScoringChunk {
        match self {
            Pool::Refs(v) => v[i],
            Pool::Owned(v) => &v[i],
        }
    }
}

/// A theme's top-k: the hits and, for each, its position in the pool.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RankedHits {
    pub(crate) hits: Vec<SearchHit>,
    pub(crate) pool_idx: Vec<usize>,
}

impl RankedHits {
    /// Places `hits` in a pool sorted by `chunk_id` (every hit comes from it).
    pub(crate) fn locate<'p>(
        hits: Vec<SearchHit>,
        id_at: impl Fn(usize) -> &'p str,
        n: usize,
    ) -> Self {
        let pool_idx = hits
            .iter()
            .filter_map(|h| {
                let (mut lo, mut hi) = (0, n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if id_at(mid) < h.chunk_id.as_str() {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                (lo < n && id_at(lo) == h.chunk_id).then_some(lo)
            })
            .collect();
        RankedHits { hits, pool_idx }
    }
}

/// The quotes every rule of a theme gives on one chunk.
pub(crate) trait MatchSource: std::fmt::Debug + Sync {
    /// The candidates of chunk `pool_idx` (of `chunk`) for theme
    /// `theme_idx` of the rubric.
    fn theme_matches(
        &self,
        rubric: &Rubric,
        theme_idx: usize,
        pool_idx: usize,
        chunk: &ScoringChunk,
    ) -> std::sync::Arc<ThemeMatches>;

    /// The top `n` of `query` over the pool's BM25 index `bm25` (a
    /// [`crate::CompanyIndex`] keeps them: they depend on nothing else).
    fn search(&self, bm25: &Bm25Index, query: &str, n: usize) -> std::sync::Arc<Vec<SearchHit>> {
        std::sync::Arc::new(bm25.search(query, n))
    }
}

/// Matches computed afresh on every call (what [`score`] does).
#[derive(Debug)]
pub(crate) struct Fresh;

impl MatchSource for Fresh {
    fn theme_matches(
        &self,
        rubric: &Rubric,
        theme_idx: usize,
        _pool_idx: usize,
        _chunk: &ScoringChunk,
    ) -> std::sync::Arc<ThemeMatches> {
        std::sync::Arc::new(ThemeMatches::new(
            theme_slots(rubric, &rubric.themes[theme_idx]).len(),
            None,
        ))
    }
}

impl Retrieval<'_> {
    /// Number of distinct chunks of the year that were searched.
    pub fn chunks_searched(&self) -> usize {
        self.pool.len()
    }

    /// Each selected theme's code with its retrieved hits, in rubric order.
    pub fn theme_hits(&self) -> impl Iterator<Item = (&str, &[SearchHit])> {
        self.themes
            .iter()
            .zip(&self.hits)
            .map(|((_, t), h)| (t.code.as_str(), h.hits.as_slice()))
    }

    /// The scoring phase: evaluates the criteria of every theme on its
    /// retrieved chunks and builds the [`Scorecard`].
    pub fn score(self) -> Scorecard {
        let Retrieval {
            rubric,
            params,
            themes,
            pool,
            hits,
            documents,
            matches,
            bm25,
            info,
        } = self;
        let params = &params;
        let languages: BTreeMap<&str, &str> = documents
            .iter()
            .map(|d| (d.doc_id.as_str(), d.language.as_str()))
            .collect();

        let results: Vec<ThemeResult> = themes
            .iter()
            .zip(&hits)
            .map(|(&(ti, t), h)| {
                let ranked: Vec<(&ScoringChunk, std::sync::Arc<ThemeMatches>)> = h
                    .pool_idx
                    .iter()
                    .map(|&i| {
                        let c = pool.get(i);
                        (c, matches.theme_matches(rubric, ti, i, c))
                    })
                    .collect();
                let corroborator = Corroborator {
                    rubric,
                    theme_idx: ti,
                    pool: &pool,
                    bm25: bm25.get(),
                    matches,
                };
                score_theme(
                    rubric,
                    t,
                    &h.hits,
                    &ranked,
                    params,
                    &corroborator,
                    &languages,
                )
            })
            .collect();
        let documents = documents.into_owned();

        let retrieved: BTreeSet<String> = results
            .iter()
            .flat_map(|r| r.retrieved.iter().map(|x| x.chunk_id.clone()))
            .collect();
        let evidence: BTreeSet<String> = results
            .iter()
            .flat_map(|r| r.evidence.iter().map(|e| e.chunk_id.clone()))
            .collect();
        let missing: Vec<String> = evidence.difference(&retrieved).cloned().collect();
        let parity = Parity {
            parity_ok: missing.is_empty(),
            retrieved_chunk_ids: retrieved.into_iter().collect(),
            evidence_chunk_ids: evidence.into_iter().collect(),
            missing_chunk_ids: missing,
        };

        let overall = overall(rubric, &results);
        let as_of = format!("{:04}-{:02}", params.as_of_year, params.as_of_month);
        let theme_refs: Vec<&Theme> = themes.iter().map(|(_, t)| *t).collect();
        let fingerprint = fingerprint(rubric, params, &theme_refs, &documents, &info);
        Scorecard {
            rubric_version: rubric.version.clone(),
            rubric_sha256: rubric.sha256().to_string(),
            year: params.year,
            as_of,
            k: params.k,
            retrieval: info,
            themes: results,
            overall,
            documents,
            fingerprint,
            parity,
        }
    }
}

/// The documents of a pool, sorted and de-duplicated, each with the
/// language detected on its chunks' text (in pool order, at most
/// [`esg_core::lang::MAX_CHARS`] characters).
pub(crate) fn documents_of<'c>(pool: impl Iterator<Item = &'c ScoringChunk>) -> Vec<DocumentUsed> {
    let mut docs: BTreeMap<(&str, &str, i32), String> = BTreeMap::new();
    for c in pool {
        let sample = docs
            .entry((c.doc_id.as_str(), c.source_sha256.as_str(), c.year))
            .or_default();
        if sample.len() < esg_core::lang::MAX_CHARS {
            sample.push_str(&c.chunk.text);
            sample.push('\n');
        }
    }
    docs.into_iter()
        .map(|((doc_id, source_sha256, year), sample)| DocumentUsed {
            doc_id: doc_id.to_string(),
            source_sha256: source_sha256.to_string(),
            year,
            language: esg_core::detect_language(&sample).to_string(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Sorts a year's chunks by `chunk_id` (then `doc_id`) and keeps the first
/// of each id: the pool order both [`retrieve`] and
/// [`crate::CompanyIndex`] search in.
pub(crate) fn order_pool<C: std::borrow::Borrow<ScoringChunk>>(pool: &mut Vec<C>) {
    pool.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        a.chunk
            .chunk_id
            .cmp(&b.chunk.chunk_id)
            .then_with(|| a.doc_id.cmp(&b.doc_id))
    });
    pool.dedup_by(|b, a| a.borrow().chunk.chunk_id == b.borrow().chunk.chunk_id);
}

/// Checks `k`, the month and the themes of a request.
pub(crate) fn check_params<'r>(
    rubric: &'r Rubric,
    params: &ScoreParams,
) -> Result<Vec<(usize, &'r Theme)>, ScoreError> {
    if !(1..=MAX_K).contains(&params.k) {
        return Err(invalid(
            "k",
            format!("must be between 1 and {MAX_K}, found {}", params.k),
        ));
    }
    if !(1..=12).contains(&params.as_of_month) {
        return Err(invalid(
            "as_of_month",
            format!("must be between 1 and 12, found {}", params.as_of_month),
        ));
    }
    select_themes(rubric, params.themes.as_deref())
}

/// The retrieval phase of [`score`] (see [`Retrieval`]): validates the
/// parameters, builds the BM25 index over the year's chunks and retrieves
/// every selected theme's top-k.
///
/// # Errors
/// As [`score`].
pub fn retrieve<'a>(
    rubric: &'a Rubric,
    chunks: &'a [ScoringChunk],
    params: &ScoreParams,
) -> Result<Retrieval<'a>, ScoreError> {
    retrieve_with(rubric, chunks, params, None)
}

/// [`retrieve`] with hybrid retrieval when `params.fusion` is set (see
/// [`score_with`]).
///
/// # Errors
/// As [`score_with`].
pub fn retrieve_with<'a>(
    rubric: &'a Rubric,
    chunks: &'a [ScoringChunk],
    params: &ScoreParams,
    semantic: Option<SemanticInput<'_>>,
) -> Result<Retrieval<'a>, ScoreError> {
    let themes = check_params(rubric, params)?;
    let semantic = check_semantic(params, semantic, &themes)?;

    // The year's chunks, de-duplicated by chunk id, in id order.
    let mut pool: Vec<&ScoringChunk> = chunks.iter().filter(|c| c.year == params.year).collect();
    if pool.is_empty() {
        return Err(ScoreError::NoChunks { year: params.year });
    }
    order_pool(&mut pool);
    let index = Bm25Index::new(
        Bm25Params::default(),
        pool.iter()
            .map(|c| (c.chunk.chunk_id.as_str(), c.chunk.text.as_str())),
    );
    let ids = |i: usize| pool[i].chunk.chunk_id.as_str();
    let k = breadth_k(params.k, pool.iter().map(|c| c.chunk.words));
    let hits = themes
        .iter()
        .map(|(_, t)| {
            let lexical = retrieve_theme(t, &index, k);
            let hits = match &semantic {
                None => lexical,
                Some(s) => hybrid_theme(s, t, lexical, (0..pool.len()).map(ids), k)?,
            };
            Ok(std::sync::Arc::new(RankedHits::locate(
                hits,
                ids,
                pool.len(),
            )))
        })
        .collect::<Result<_, ScoreError>>()?;
    let info = retrieval_info(semantic.as_ref(), (0..pool.len()).map(ids));
    let documents = std::borrow::Cow::Owned(documents_of(pool.iter().copied()));
    Ok(Retrieval {
        rubric,
        params: params.clone(),
        themes,
        pool: Pool::Refs(pool),
        hits,
        documents,
        matches: &Fresh,
        bm25: IndexRef::Owned(Box::new(index)),
        info,
    })
}

/// Checks that `params.fusion` and `semantic` agree and that every selected
/// theme has a query vector of the vectors' dimension.
pub(crate) fn check_semantic<'s>(
    params: &ScoreParams,
    semantic: Option<SemanticInput<'s>>,
    themes: &[(usize, &Theme)],
) -> Result<Option<SemanticInput<'s>>, ScoreError> {
    match (params.fusion, semantic) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid(
            "semantic",
            "vectors given, but the parameters ask for BM25 retrieval (fusion unset)",
        )),
        (Some(_), None) => Err(invalid(
            "semantic",
            "hybrid retrieval needs the chunks' vectors and the themes' query vectors",
        )),
        (Some(fusion), Some(s)) => {
            let dim = s.vectors.dim();
            for (_, t) in themes {
                match s.queries.get(&t.code) {
                    None => {
                        return Err(invalid(
                            "semantic",
                            format!("no query vector for theme {}", t.code),
                        ));
                    }
                    Some(q) if q.len() != dim => {
                        return Err(invalid(
                            "semantic",
                            format!(
                                "the query vector of theme {} has {} values, the chunks' {dim}",
                                t.code,
                                q.len()
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            Ok(Some(SemanticInput { fusion, ..s }))
        }
    }
}

/// A theme's hybrid top-k: its lexical top-k fused with the similarities of
/// the pool's chunks to its query vector.
pub(crate) fn hybrid_theme<'p>(
    s: &SemanticInput<'_>,
    theme: &Theme,
    lexical: Vec<SearchHit>,
    pool_ids: impl Iterator<Item = &'p str>,
    k: usize,
) -> Result<Vec<SearchHit>, ScoreError> {
    let query = s.queries.get(&theme.code).ok_or_else(|| {
        invalid(
            "semantic",
            format!("no query vector for theme {}", theme.code),
        )
    })?;
    let semantic = s.vectors.similarities(query, pool_ids)?;
    Ok(crate::semantic::fuse(&lexical, &semantic, s.fusion, k))
}

/// What [`Scorecard::retrieval`] says for a pool of `pool_ids`.
pub(crate) fn retrieval_info<'p>(
    semantic: Option<&SemanticInput<'_>>,
    pool_ids: impl Iterator<Item = &'p str>,
) -> RetrievalInfo {
    match semantic {
        None => RetrievalInfo::bm25(),
        Some(s) => {
            let (mut n, mut with) = (0, 0);
            for id in pool_ids {
                n += 1;
                with += usize::from(s.vectors.contains(id));
            }
            RetrievalInfo::hybrid(s.vectors.model_id(), s.fusion, n, with)
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ScoreError {
    ScoreError::InvalidParam {
        field: field.to_string(),
        message: message.into(),
    }
}

fn select_themes<'r>(
    rubric: &'r Rubric,
    wanted: Option<&[String]>,
) -> Result<Vec<(usize, &'r Theme)>, ScoreError> {
    let Some(wanted) = wanted else {
        return Ok(rubric.themes.iter().enumerate().collect());
    };
    if wanted.is_empty() {
        return Err(invalid(
            "themes",
            "must not be empty (omit it to score all themes)",
        ));
    }
    for w in wanted {
        if rubric.theme(w).is_none() {
            return Err(invalid(
                "themes",
                format!(
                    "unknown theme \"{w}\"; expected one of {}",
                    rubric.theme_codes().join(", ")
                ),
            ));
        }
    }
    Ok(rubric
        .themes
        .iter()
        .enumerate()
        .filter(|(_, t)| wanted.contains(&t.code))
        .collect())
}

/// SHA-256 over the canonical request (resolved themes in rubric order),
/// the rubric version and hash, and the documents used.
fn fingerprint(
    rubric: &Rubric,
    params: &ScoreParams,
    themes: &[&Theme],
    docs: &[DocumentUsed],
    retrieval: &RetrievalInfo,
) -> String {
    #[derive(Serialize)]
    struct Canonical<'a> {
        request: CanonicalRequest<'a>,
        rubric_version: &'a str,
        rubric_sha256: &'a str,
        documents: Vec<(&'a str, &'a str)>,
        /// Absent for BM25, so BM25 fingerprints are those of before
        /// hybrid retrieval existed.
        #[serde(skip_serializing_if = "Option::is_none")]
        retrieval: Option<&'a RetrievalInfo>,
    }
    #[derive(Serialize)]
    struct CanonicalRequest<'a> {
        year: i32,
        k: usize,
        as_of_year: i32,
        as_of_month: u32,
        themes: Vec<&'a str>,
    }
    let c = Canonical {
        request: CanonicalRequest {
            year: params.year,
            k: params.k,
            as_of_year: params.as_of_year,
            as_of_month: params.as_of_month,
            themes: themes.iter().map(|t| t.code.as_str()).collect(),
        },
        rubric_version: &rubric.version,
        rubric_sha256: rubric.sha256(),
        documents: docs
            .iter()
            .map(|d| (d.doc_id.as_str(), d.source_sha256.as_str()))
            .collect(),
        retrieval: (retrieval.method != "bm25").then_some(retrieval),
    };
    sha256_hex(serde_json::to_string(&c).unwrap_or_default())
}

fn overall(rubric: &Rubric, results: &[ThemeResult]) -> Overall {
    let n = results.len();
    let sum: usize = results.iter().map(|r| usize::from(r.stage)).sum();
    let mean = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
    // Mean in tenths, rounded half up, with integer arithmetic.
    let t = if n == 0 {
        0
    } else {
        ((sum * 20 + n) / (2 * n)) as i64
    };
    let grade = band_of(&rubric.scoring.grade_bands, t)
        .map(|b| b.name.clone())
        .unwrap_or_default();
    Overall {
        mean_stage: round_to(mean, 2),
        grade,
        themes_scored: n,
    }
}

fn band_of(bands: &[Band], t: i64) -> Option<&Band> {
    bands
        .iter()
        .find(|b| b.min_tenths() <= t && t <= b.max_tenths())
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// Reciprocal-rank-fusion constant.
const RRF_K: f64 = 60.0;

/// Words of text one of the k retrieved passages stands for: a chunk of
/// full size ([`esg_core::ChunkParams`]'s `target_words`).
pub const PASSAGE_WORDS: f64 = 120.0;

/// The number of chunks a theme retrieves for `k`: `k` when the company's
/// chunks average at least [`PASSAGE_WORDS`] words, otherwise as many as
/// cover `k` such passages (at most [`MAX_K`]), so that a report whose
/// tables are cut into one chunk per cell is searched as broadly as one of
/// prose. Measured on the validity set (`esg-cli/tests/validity.rs`) with
/// chunks that end at table cells: `k` chunks 91/102 hold; `k` passages of
/// 80 words 96/102; of 120 words 97/102, as with paragraph chunks and `k`
/// chunks before.
pub fn breadth_k(k: usize, words: impl Iterator<Item = u32>) -> usize {
    breadth_for_mean(k, mean_words(words))
}

/// The mean of `words`; `None` when there are none or all are 0.
pub(crate) fn mean_words(words: impl Iterator<Item = u32>) -> Option<f64> {
    let (n, total) = words.fold((0u64, 0u64), |(n, t), w| (n + 1, t + u64::from(w)));
    (n > 0 && total > 0).then(|| total as f64 / n as f64)
}

/// [`breadth_k`] for chunks of `mean` words on average ([`mean_words`]),
/// for callers that keep the mean of a fixed set of chunks.
pub(crate) fn breadth_for_mean(k: usize, mean: Option<f64>) -> usize {
    match mean {
        Some(mean) if mean < PASSAGE_WORDS => {
            ((k as f64 * PASSAGE_WORDS / mean).ceil() as usize).clamp(k, MAX_K.max(k))
        }
        _ => k,
    }
}

/// The theme's top-k chunks: the theme query and every stage query are run
/// through BM25 (top k each) and fused by reciprocal rank
/// (`Σ 1 / (60 + rank)`), ties broken by chunk id. With no stage queries
/// this is exactly the theme query's BM25 top k.
pub fn retrieve_theme(theme: &Theme, index: &Bm25Index, k: usize) -> Vec<SearchHit> {
    let queries: Vec<&str> = std::iter::once(theme.query.as_str())
        .chain(theme.stages.iter().filter_map(|s| s.query.as_deref()))
        .collect();
    if queries.len() == 1 {
        return index.search(queries[0], k);
    }
    let mut fused: BTreeMap<String, f64> = BTreeMap::new();
    for q in queries {
        for (rank, h) in index.search(q, k).into_iter().enumerate() {
            *fused.entry(h.chunk_id).or_insert(0.0) += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut out: Vec<SearchHit> = fused
        .into_iter()
        .map(|(chunk_id, score)| SearchHit {
            chunk_id,
            score,
            lexical: None,
            semantic: None,
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    out.truncate(k);
    out
}

/// Quotes found for one criterion or override, in retrieval-rank order.
type Found = BTreeMap<String, Vec<Evidence>>;

/// A retrieved chunk with the (lazily filled) matches of the theme's rules on it.
type Ranked<'c> = (&'c ScoringChunk, std::sync::Arc<ThemeMatches>);

/// The quotes of rule `slot` over the ranked chunks: per chunk, its first
/// candidate that does not repeat a quote already taken (the same passage
/// seen through an overlapping chunk is not a new quote), at most `limit`.
/// Chunks after the limit is reached are not matched at all.
fn collect(
    rubric: &Rubric,
    theme: &Theme,
    slots: &[Slot<'_>],
    ranked: &[Ranked<'_>],
    slot: usize,
    limit: usize,
) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for (sc, m) in ranked {
        if out.len() >= limit {
            break;
        }
        let repeats = |c: &Evidence| {
            out.iter().any(|e| {
                e.doc_id == sc.doc_id
                    && e.page == sc.chunk.page
                    && e.span.start < c.span.end
                    && c.span.start < e.span.end
            })
        };
        let candidates = &m.slot(rubric, theme, slots, slot, sc).evidence;
        if let Some(c) = candidates.iter().find(|c| !repeats(c)) {
            out.push(c.clone()); // one quote per chunk and criterion
        }
    }
    out
}

/// One rule of a theme, in slot order: the theme's criteria by stage, then
/// the overrides that apply to the theme, in rubric order.
pub(crate) struct Slot<'r> {
    pub(crate) id: &'r str,
    /// The criterion's stage, or the override's cap.
    pub(crate) stage: u8,
    pub(crate) rule: &'r MatchRule,
}

/// The rules of `theme` in slot order.
pub(crate) fn theme_slots<'r>(rubric: &'r Rubric, theme: &'r Theme) -> Vec<Slot<'r>> {
    let criteria = theme.stages.iter().flat_map(|s| {
        s.criteria.iter().map(move |c| Slot {
            id: &c.id,
            stage: s.stage,
            rule: &c.rule,
        })
    });
    let overrides = rubric
        .overrides
        .iter()
        .filter(|o| o.themes.contains(&theme.code))
        .map(|o| Slot {
            id: &o.id,
            stage: o.cap,
            rule: &o.rule,
        });
    criteria.chain(overrides).collect()
}

/// The rules of one theme matched on one chunk, rule by rule as scoring
/// asks for them: per slot, the byte ranges where the rule hits and the
/// quote each gives (hits whose quote cannot be cut are dropped), in text
/// order. Depends only on the chunk and the rubric, so it can be kept and
/// shared ([`crate::CompanyIndex`]). The chunk's sentences are split once,
/// the first time a rule is matched.
#[derive(Debug)]
pub(crate) struct ThemeMatches {
    sentences: std::sync::OnceLock<Vec<std::ops::Range<usize>>>,
    slots: Box<[std::sync::OnceLock<SlotMatches>]>,
    /// Where to count the bytes of slots matched here (an index's memo).
    bytes: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
}

/// One rule's matches on one chunk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotMatches {
    pub(crate) ranges: Vec<std::ops::Range<usize>>,
    pub(crate) evidence: Vec<Evidence>,
}

impl SlotMatches {
    fn new(
        rubric: &Rubric,
        theme: &Theme,
        slot: &Slot<'_>,
        sc: &ScoringChunk,
        ranges: Vec<std::ops::Range<usize>>,
    ) -> Self {
        let text = sc.chunk.text.as_str();
        let max_words = rubric.scoring.quote_max_words;
        let evidence = ranges
            .iter()
            .filter_map(|hit| {
                let q = quote_range(text, hit.clone(), max_words)?;
                Some(evidence(sc, &theme.code, slot, q, hit.clone()))
            })
            .collect();
        SlotMatches { ranges, evidence }
    }

    /// Approximate heap bytes held.
    fn heap_bytes(&self) -> usize {
        let ev: usize = self
            .evidence
            .iter()
            .map(|e| {
                std::mem::size_of::<Evidence>()
                    + e.evidence_id.len()
                    + e.doc_id.len()
                    + e.chunk_id.len()
                    + e.quote.len()
                    + e.sha256.len()
                    + e.source_sha256.len()
                    + e.matched.len()
                    + e.criterion.len()
                    + e.theme.len()
            })
            .sum();
        64 + self.ranges.len() * 16 + ev
    }
}

impl ThemeMatches {
    /// Nothing matched yet, for `slots` rules.
    pub(crate) fn new(
        slots: usize,
        bytes: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    ) -> Self {
        ThemeMatches {
            sentences: std::sync::OnceLock::new(),
            slots: (0..slots).map(|_| std::sync::OnceLock::new()).collect(),
            bytes,
        }
    }

    /// Known hit ranges of every rule (as [`ThemeMatches::complete`] gives them).
    pub(crate) fn from_ranges(
        rubric: &Rubric,
        theme: &Theme,
        sc: &ScoringChunk,
        ranges: Vec<Vec<std::ops::Range<usize>>>,
    ) -> Self {
        let slots = theme_slots(rubric, theme);
        ThemeMatches {
            sentences: std::sync::OnceLock::new(),
            slots: slots
                .iter()
                .zip(ranges)
                .map(|(slot, r)| {
                    std::sync::OnceLock::from(SlotMatches::new(rubric, theme, slot, sc, r))
                })
                .collect(),
            bytes: None,
        }
    }

    /// The matches of rule `i` (of `slots`, the theme's rules), matched now
    /// if no one has yet.
    pub(crate) fn slot(
        &self,
        rubric: &Rubric,
        theme: &Theme,
        slots: &[Slot<'_>],
        i: usize,
        sc: &ScoringChunk,
    ) -> &SlotMatches {
        self.slots[i].get_or_init(|| {
            let text = sc.chunk.text.as_str();
            let sentences = self
                .sentences
                .get_or_init(|| crate::text::sentence_spans(text));
            let ranges = slots[i]
                .rule
                .find_in_sentences(text, sentences, &rubric.negation_guard);
            let m = SlotMatches::new(rubric, theme, &slots[i], sc, ranges);
            if let Some(b) = &self.bytes {
                b.fetch_add(m.heap_bytes(), std::sync::atomic::Ordering::Relaxed);
            }
            m
        })
    }

    /// Matches every rule not matched yet and returns all hit ranges, by slot.
    pub(crate) fn complete(
        &self,
        rubric: &Rubric,
        theme: &Theme,
        sc: &ScoringChunk,
    ) -> Vec<Vec<std::ops::Range<usize>>> {
        let slots = theme_slots(rubric, theme);
        (0..slots.len())
            .map(|i| self.slot(rubric, theme, &slots, i, sc).ranges.clone())
            .collect()
    }

    /// Approximate heap bytes held by the slots matched so far.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.get())
            .map(SlotMatches::heap_bytes)
            .sum::<usize>()
            + self.slots.len() * 32
    }
}

/// The id of the quote at characters `start..end` of a page, from chunk
/// `chunk_id` of `doc_id`, for criterion `criterion`.
fn evidence_id(doc_id: &str, chunk_id: &str, criterion: &str, start: u32, end: u32) -> String {
    sha256_hex(format!(
        "{doc_id}\u{1f}{chunk_id}\u{1f}{criterion}\u{1f}{start}\u{1f}{end}"
    ))[..24]
        .to_string()
}

/// The evidence record of quote `q` (byte range in the chunk text) for the
/// hit `hit` of rule `slot`.
fn evidence(
    sc: &ScoringChunk,
    theme: &str,
    slot: &Slot<'_>,
    q: std::ops::Range<usize>,
    hit: std::ops::Range<usize>,
) -> Evidence {
    let text = sc.chunk.text.as_str();
    let quote = &text[q.clone()];
    let start = sc.chunk.char_start + text[..q.start].chars().count() as u32;
    let end = start + quote.chars().count() as u32;
    Evidence {
        evidence_id: evidence_id(&sc.doc_id, &sc.chunk.chunk_id, slot.id, start, end),
        doc_id: sc.doc_id.clone(),
        chunk_id: sc.chunk.chunk_id.clone(),
        page: sc.chunk.page,
        quote: quote.to_string(),
        sha256: sha256_hex(quote),
        source_sha256: sc.source_sha256.clone(),
        span: Span { start, end },
        bbox: None,
        matched: text[hit].to_string(),
        criterion: slot.id.to_string(),
        theme: theme.to_string(),
        stage: slot.stage,
        year: sc.year,
        found_by: FoundBy::Retrieval,
    }
}

/// The largest number of quotes that are pairwise distinct both in chunk
/// and in location (document, page, span): a maximum bipartite matching
/// between chunks and locations. The same sentence seen in two overlapping
/// chunks therefore counts once, and so do two sentences of one chunk.
fn distinct_support<'a>(quotes: impl IntoIterator<Item = &'a Evidence>) -> usize {
    let mut chunks: BTreeMap<&str, usize> = BTreeMap::new();
    let mut locs: BTreeMap<(&str, u32, Span), usize> = BTreeMap::new();
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    for e in quotes {
        let n = chunks.len();
        let c = *chunks.entry(e.chunk_id.as_str()).or_insert(n);
        let n = locs.len();
        let l = *locs.entry((e.doc_id.as_str(), e.page, e.span)).or_insert(n);
        edges.insert((c, l));
    }
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); chunks.len()];
    for (c, l) in edges {
        adj[c].push(l);
    }
    let mut owner: Vec<Option<usize>> = vec![None; locs.len()];
    fn augment(
        c: usize,
        adj: &[Vec<usize>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for &l in &adj[c] {
            if seen[l] {
                continue;
            }
            seen[l] = true;
            if owner[l].is_none_or(|o| augment(o, adj, owner, seen)) {
                owner[l] = Some(c);
                return true;
            }
        }
        false
    }
    (0..adj.len())
        .filter(|&c| {
            let mut seen = vec![false; owner.len()];
            augment(c, &adj, &mut owner, &mut seen)
        })
        .count()
}

fn core_ok(rule: CoreRule, cores: &[&str], ok: impl Fn(&str) -> bool) -> bool {
    match rule {
        CoreRule::Any => cores.iter().any(|c| ok(c)),
        CoreRule::All => !cores.is_empty() && cores.iter().all(|c| ok(c)),
    }
}

fn score_theme(
    rubric: &Rubric,
    theme: &Theme,
    hits: &[SearchHit],
    ranked: &[Ranked<'_>],
    params: &ScoreParams,
    corroborator: &Corroborator<'_>,
    languages: &BTreeMap<&str, &str>,
) -> ThemeResult {
    let rules = &rubric.scoring;
    let rule_slots = theme_slots(rubric, theme);
    let mut retrieved: Vec<RetrievedChunk> = hits
        .iter()
        .zip(ranked)
        .enumerate()
        .map(|(i, (h, (c, _)))| RetrievedChunk {
            rank: i + 1,
            chunk_id: h.chunk_id.clone(),
            doc_id: c.doc_id.clone(),
            page: c.chunk.page,
            score: round_to(h.score, 6),
            lexical: h.lexical.map(|x| round_to(x, 6)),
            semantic: h.semantic.map(|x| round_to(x, 6)),
            found_by: FoundBy::Retrieval,
        })
        .collect();

    // Quotes per criterion (slots 0.. are the criteria, in stage order).
    let mut found: Found = BTreeMap::new();
    let mut slot = 0;
    let mut stage_slots: Vec<Vec<(usize, &str)>> = Vec::new();
    for stage in &theme.stages {
        let mut slots = Vec::new();
        for c in &stage.criteria {
            let q = collect(
                rubric,
                theme,
                &rule_slots,
                ranked,
                slot,
                rules.max_quotes_per_criterion,
            );
            slots.push((slot, c.id.as_str()));
            slot += 1;
            if !q.is_empty() {
                found.insert(c.id.clone(), q);
            }
        }
        stage_slots.push(slots);
    }

    // Corroboration: a stage with exactly one distinct quote in the top-k
    // looks for a second one where it is, beyond the top-k.
    let corroboration = corroborate(
        theme,
        hits,
        &stage_slots,
        &mut found,
        &mut retrieved,
        rules.max_quotes_per_criterion,
        corroborator,
    );
    let evidenced: BTreeSet<String> = found.keys().cloned().collect();
    let satisfied = rubric.implied_closure(evidenced.iter().map(String::as_str));

    // Ladder.
    let cores = |s: u8| -> Vec<&str> {
        theme.stages[usize::from(s)]
            .criteria
            .iter()
            .filter(|c| c.core)
            .map(|c| c.id.as_str())
            .collect()
    };
    let rung_ok = |s: u8| {
        core_ok(theme.stages[usize::from(s)].core_rule, &cores(s), |id| {
            satisfied.contains(id)
        })
    };
    let stage_quotes = |s: u8| -> Vec<&Evidence> {
        theme.stages[usize::from(s)]
            .criteria
            .iter()
            .filter_map(|c| found.get(&c.id))
            .flatten()
            .collect()
    };
    let mut ladder_stage = 0u8;
    let mut corroborated: Vec<Corroborated> = Vec::new();
    let mut corroborating_quotes: Vec<&Evidence> = Vec::new();
    for s in (1..theme.stages.len() as u8).rev() {
        if !(1..=s).all(rung_ok) {
            continue;
        }
        let own = stage_quotes(s);
        if distinct_support(own.iter().copied()) >= rules.min_quotes_per_stage {
            ladder_stage = s;
            break;
        }
        let ids = theme.stages[usize::from(s)]
            .criteria
            .iter()
            .map(|c| c.id.as_str());
        if let Some((extra, c)) =
            second_quote_by_corroboration(theme, ids, &own, &found, rules.min_quotes_per_stage)
        {
            ladder_stage = s;
            corroborated.push(Corroborated {
                stage: s,
                framework: None,
                ..c
            });
            corroborating_quotes.extend(extra);
            break;
        }
    }

    // Framework minimums.
    let mut stage = ladder_stage;
    let mut frameworks = Vec::new();
    let mut framework_quotes: Vec<&Evidence> = Vec::new();
    let mut info_quotes: Vec<&Evidence> = Vec::new();
    for f in rubric.frameworks.iter().filter(|f| f.theme == theme.code) {
        let groups_ok = f
            .requires
            .iter()
            .all(|g| g.iter().any(|id| evidenced.contains(id)));
        let mut quotes: Vec<&Evidence> = f
            .requires
            .iter()
            .flatten()
            .filter_map(|id| found.get(id))
            .flatten()
            .collect();
        if !groups_ok {
            continue;
        }
        if distinct_support(quotes.iter().copied()) < rules.min_quotes_per_stage {
            let ids = f.requires.iter().flatten().map(String::as_str);
            let Some((extra, c)) = second_quote_by_corroboration(
                theme,
                ids,
                &quotes,
                &found,
                rules.min_quotes_per_stage,
            ) else {
                continue;
            };
            quotes.extend(extra);
            corroborated.push(Corroborated {
                stage: f.min_stage.unwrap_or(0),
                framework: Some(f.id.clone()),
                ..c
            });
        }
        let raised = f.min_stage.is_some_and(|m| m > stage);
        if let Some(m) = f.min_stage {
            stage = stage.max(m);
            framework_quotes.extend(quotes);
        } else {
            info_quotes.extend(quotes);
        }
        frameworks.push(FrameworkSignal {
            id: f.id.clone(),
            name: f.name.clone(),
            min_stage: f.min_stage,
            supports: f.supports.clone(),
            raised_stage: raised,
        });
    }
    let pre_cap = stage;

    // Negative caps.
    let mut caps = Vec::new();
    let mut cap_quotes: Vec<Evidence> = Vec::new();
    // Then the overrides that apply to the theme, in rubric order.
    for o in rubric
        .overrides
        .iter()
        .filter(|o| o.themes.contains(&theme.code))
    {
        let q = collect(
            rubric,
            theme,
            &rule_slots,
            ranked,
            slot,
            rules.max_quotes_per_criterion,
        );
        slot += 1;
        if q.len() < o.min_quotes {
            continue;
        }
        let lowered = stage > o.cap;
        stage = stage.min(o.cap);
        caps.push(CapApplied {
            id: o.id.clone(),
            description: o.description.clone(),
            cap: o.cap,
            lowered_stage: lowered,
        });
        cap_quotes.extend(q);
    }

    // Evidence shown: criteria at or below the pre-cap stage and frameworks
    // with a minimum (these support the stage), then informational
    // frameworks and overrides.
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut seen_ids = BTreeSet::new();
    let supporting: Vec<&Evidence> = theme
        .stages
        .iter()
        .filter(|s| s.stage >= 1 && s.stage <= pre_cap)
        .flat_map(|s| s.criteria.iter())
        .filter_map(|c| found.get(&c.id))
        .flatten()
        .chain(framework_quotes.iter().copied())
        .chain(corroborating_quotes.iter().copied())
        .collect();
    let supporting: Vec<&Evidence> = {
        let mut ids = BTreeSet::new();
        supporting
            .into_iter()
            .filter(|e| ids.insert(e.evidence_id.as_str()))
            .collect()
    };
    for e in supporting
        .iter()
        .copied()
        .chain(info_quotes.iter().copied())
        .chain(cap_quotes.iter())
    {
        if seen_ids.insert(e.evidence_id.clone()) {
            evidence.push(e.clone());
        }
    }
    evidence.sort_by(evidence_order);

    // Confidence.
    let framework_criteria: BTreeSet<&str> = rubric
        .frameworks
        .iter()
        .flat_map(|f| f.requires.iter().flatten())
        .map(String::as_str)
        .collect();
    let n_chunks = distinct_support(supporting.iter().copied());
    let specific = supporting
        .iter()
        .filter(|e| {
            e.quote.chars().any(|c| c.is_ascii_digit())
                || framework_criteria.contains(e.criterion.as_str())
        })
        .count();
    let specificity = if supporting.is_empty() {
        0.0
    } else {
        specific as f64 / supporting.len() as f64
    };
    let direct_rungs = (1..=pre_cap)
        .filter(|&s| {
            core_ok(theme.stages[usize::from(s)].core_rule, &cores(s), |id| {
                evidenced.contains(id)
            })
        })
        .count();
    let ladder_share = if pre_cap == 0 {
        0.0
    } else {
        direct_rungs as f64 / f64::from(pre_cap)
    };
    let criteria_count = supporting
        .iter()
        .map(|e| e.criterion.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    let concurrence = (criteria_count.saturating_sub(1)).min(2) as f64 / 2.0;
    let agreement = if caps.is_empty() {
        0.5 * ladder_share + 0.5 * concurrence
    } else {
        0.0
    };
    let newest_year = supporting.iter().map(|e| e.year).max();
    let age_months = newest_year.map(|y| {
        (i64::from(params.as_of_year) * 12 + i64::from(params.as_of_month))
            - (i64::from(y) * 12 + i64::from(rules.freshness.assumed_publication_month))
    });
    let stale = age_months.is_some_and(|a| a > i64::from(rules.freshness.max_age_months));
    let bands = &rules.confidence_bands;
    let (lo, hi) = (bands[0].min_tenths(), bands[bands.len() - 1].max_tenths());
    let mut conf_t = if pre_cap == 0 {
        // Stage 0: weak, a notch higher when some (insufficient) evidence exists.
        (lo + i64::from(!found.is_empty())).min(bands[0].max_tenths())
    } else {
        let count = (n_chunks.min(6)) as f64 / 6.0;
        let quality = 0.4 * count + 0.3 * specificity + 0.3 * agreement;
        let raw = (lo as f64 / 10.0) + quality * ((hi - lo) as f64 / 10.0);
        tenths(raw)
    };
    if stale && pre_cap > 0 {
        conf_t -= tenths(rules.freshness.confidence_penalty);
    }
    // Retrieved chunks in a language the rubric's patterns are not written
    // in: the patterns could not apply to them, so the result is less
    // certain (stage 0: the lowest value; else one step lower).
    // With nothing retrieved (a query in English finds no words of the
    // text), the documents themselves are counted.
    let other_language: BTreeMap<&str, usize> = {
        let mut m = BTreeMap::new();
        let langs: Vec<&str> = if retrieved.is_empty() {
            languages.values().copied().collect()
        } else {
            retrieved
                .iter()
                .map(|r| languages.get(r.doc_id.as_str()).copied().unwrap_or("und"))
                .collect()
        };
        for lang in langs {
            if lang != RUBRIC_LANGUAGE && lang != esg_core::lang::UNDETERMINED {
                *m.entry(lang).or_insert(0) += 1;
            }
        }
        m
    };
    if !other_language.is_empty() {
        conf_t = if pre_cap == 0 { lo } else { conf_t - 1 };
    }
    conf_t = conf_t.clamp(lo, hi);
    // Snap into a band (down to the top of the band below when between bands).
    if band_of(bands, conf_t).is_none() {
        conf_t = bands
            .iter()
            .rev()
            .find(|b| b.max_tenths() < conf_t)
            .map_or(lo, |b| b.max_tenths());
    }
    let confidence_band = band_of(bands, conf_t)
        .map(|b| b.name.clone())
        .unwrap_or_default();

    // Gaps of the next stage.
    let next_stage_gaps: Vec<Gap> = theme
        .stages
        .get(usize::from(stage) + 1)
        .map(|s| {
            let mut g: Vec<Gap> = s
                .criteria
                .iter()
                .filter(|c| !evidenced.contains(&c.id))
                .map(|c| Gap {
                    criterion: c.id.clone(),
                    description: c.description.clone(),
                })
                .collect();
            g.sort_by(|a, b| a.criterion.cmp(&b.criterion));
            g
        })
        .unwrap_or_default();

    let language_note = (!other_language.is_empty()).then(|| {
        let n: usize = other_language.values().sum();
        let langs: Vec<String> = other_language
            .iter()
            .map(|(l, c)| format!("{c} in {l}"))
            .collect();
        if retrieved.is_empty() {
            format!(
                "No chunk was retrieved for {}: {n} of the {} documents are not in English ({}); the rubric's patterns are English-only and could not apply, so confidence is lowered.",
                theme.code,
                languages.len(),
                langs.join(", ")
            )
        } else {
            format!(
                "{n} of the {} chunks retrieved for {} are not in English ({}): the rubric's patterns are English-only and could not apply to them, so confidence is lowered.",
                retrieved.len(),
                theme.code,
                langs.join(", ")
            )
        }
    });
    let note = if stage > 0 {
        None
    } else if found.is_empty() && caps.is_empty() {
        Some(format!(
            "No evidence for {} in the top {} retrieved chunks: stage 0 with low confidence.",
            theme.code, params.k
        ))
    } else if pre_cap > 0 {
        Some(format!(
            "Capped at stage 0 by a negative override (stage {pre_cap} before the cap)."
        ))
    } else {
        Some(format!(
            "Evidence found for {} but no stage has quotes from {} distinct chunks with its ladder satisfied: stage 0 with low confidence.",
            evidenced.iter().cloned().collect::<Vec<_>>().join(", "),
            rules.min_quotes_per_stage
        ))
    };

    let note = match (note, language_note) {
        (Some(n), Some(l)) => Some(format!("{n} {l}")),
        (n, l) => n.or(l),
    };
    frameworks.sort_by(|a, b| a.id.cmp(&b.id));
    caps.sort_by(|a, b| a.id.cmp(&b.id));
    let st = &theme.stages[usize::from(stage)];
    let from_corroboration = evidence
        .iter()
        .filter(|e| e.found_by == FoundBy::Corroboration)
        .count();
    let found_by = FoundBySummary {
        retrieval: evidence.len() - from_corroboration,
        corroboration: from_corroboration,
    };
    ThemeResult {
        theme: theme.code.clone(),
        name: theme.name.clone(),
        stage,
        label: st.label.clone(),
        stage_descriptor: st.descriptor.clone(),
        confidence: conf_t as f64 / 10.0,
        confidence_band,
        confidence_detail: ConfidenceDetail {
            distinct_quotes: n_chunks,
            specificity: round_to(specificity, 2),
            agreement: round_to(agreement, 2),
            stale,
            age_months,
        },
        evidence,
        frameworks,
        caps,
        next_stage_gaps,
        retrieved,
        found_by,
        corroboration,
        corroborated,
        note,
    }
}

/// The rubric's `corroborated_by` rule (family b): when `own` (the quotes
/// of a stage, or of a framework's criteria) lacks exactly one distinct
/// quote of `min`, and one of `ids` that has a quote lists criteria in
/// `corroborated_by`, the quotes of those criteria are added; if that
/// reaches `min` distinct quotes (chunk and location), they are returned
/// with the record of which criterion was corroborated by which. A
/// criterion without `corroborated_by` is never corroborated this way.
fn second_quote_by_corroboration<'f, 'i>(
    theme: &Theme,
    ids: impl Iterator<Item = &'i str>,
    own: &[&'f Evidence],
    found: &'f Found,
    min: usize,
) -> Option<(Vec<&'f Evidence>, Corroborated)> {
    if distinct_support(own.iter().copied()) + 1 != min {
        return None;
    }
    for id in ids {
        if !found.contains_key(id) {
            continue;
        }
        let Some(c) = theme
            .stages
            .iter()
            .flat_map(|s| s.criteria.iter())
            .find(|c| c.id == id)
        else {
            continue;
        };
        let extra: Vec<&Evidence> = c
            .corroborated_by
            .iter()
            .filter_map(|b| found.get(b))
            .flatten()
            .collect();
        if distinct_support(own.iter().chain(&extra).copied()) >= min {
            let mut by: Vec<String> = extra.iter().map(|e| e.criterion.clone()).collect();
            by.sort();
            by.dedup();
            return Some((
                extra,
                Corroborated {
                    stage: 0,
                    framework: None,
                    criterion: id.to_string(),
                    by,
                },
            ));
        }
    }
    None
}

/// For every stage above 0 whose criteria have exactly one distinct quote
/// (chunk and location) in the top-k: searches the stage's query (the
/// theme's when it has none) over the company-year's chunks, examines the
/// first [`CORROBORATION_DEPTH`] results that are not in the top-k, in rank
/// order, and takes from the first chunk that has one the quotes of the
/// stage's criteria that are distinct from the existing quote (one per
/// criterion, within `max_quotes`). The criteria the rubric lists in
/// `corroborated_by` of the stage's quoted criteria are looked for too, and
/// when the stage's query finds nothing, the queries of their stages are
/// searched the same way (at most [`CORROBORATION_DEPTH`] chunks each). Those quotes are marked
/// [`FoundBy::Corroboration`] and the chunk is appended to `retrieved`
/// (so every quote still comes from a listed chunk). The two-distinct-quotes
/// rule is unchanged: corroboration only looks further for the second quote.
fn corroborate(
    theme: &Theme,
    hits: &[SearchHit],
    stage_slots: &[Vec<(usize, &str)>],
    found: &mut Found,
    retrieved: &mut Vec<RetrievedChunk>,
    max_quotes: usize,
    corroborator: &Corroborator<'_>,
) -> Vec<Corroboration> {
    let top_k: BTreeSet<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
    let rule_slots = theme_slots(corroborator.rubric, theme);
    let mut out = Vec::new();
    for (si, st) in theme.stages.iter().enumerate().skip(1) {
        let quotes: Vec<Evidence> = stage_slots[si]
            .iter()
            .filter_map(|(_, id)| found.get(*id))
            .flatten()
            .cloned()
            .collect();
        if distinct_support(&quotes) != 1 {
            continue;
        }
        // What may corroborate: the stage's own criteria, then the
        // `corroborated_by` criteria of its criteria that have the quote.
        let mut targets: Vec<(usize, &str)> = stage_slots[si].clone();
        let mut queries: Vec<&str> = vec![st.query.as_deref().unwrap_or(&theme.query)];
        for c in st.criteria.iter().filter(|c| found.contains_key(&c.id)) {
            for b in &c.corroborated_by {
                for (bi, slots) in stage_slots.iter().enumerate() {
                    if let Some(&t) = slots.iter().find(|(_, id)| id == b) {
                        if !targets.contains(&t) {
                            targets.push(t);
                        }
                        let q = theme.stages[bi].query.as_deref().unwrap_or(&theme.query);
                        if !queries.contains(&q) {
                            queries.push(q);
                        }
                    }
                }
            }
        }
        let mut searched = 0;
        let mut query = queries[0];
        let mut taken: Option<(usize, SearchHit, &ScoringChunk, Vec<Evidence>)> = None;
        for (rank, hit, q, (chunk, m)) in queries.iter().flat_map(|&q| {
            corroborator
                .candidates(q, &top_k)
                .map(move |(r, h, c)| (r, h, q, c))
        }) {
            searched += 1;
            query = q;
            let mut take: Vec<Evidence> = Vec::new();
            for &(slot, id) in &targets {
                if found.get(id).is_some_and(|q| q.len() >= max_quotes) {
                    continue;
                }
                let distinct = m
                    .slot(corroborator.rubric, theme, &rule_slots, slot, chunk)
                    .evidence
                    .iter()
                    .find(|e| distinct_support(quotes.iter().chain(std::iter::once(*e))) == 2);
                if let Some(e) = distinct {
                    let mut e = e.clone();
                    e.found_by = FoundBy::Corroboration;
                    take.push(e);
                }
            }
            if !take.is_empty() {
                taken = Some((rank, hit, chunk, take));
                break;
            }
        }
        let mut record = Corroboration {
            stage: st.stage,
            query: query.to_string(),
            searched,
            chunk_id: None,
            page: None,
            query_rank: None,
            criteria: Vec::new(),
        };
        if let Some((rank, hit, chunk, take)) = taken {
            record.chunk_id = Some(chunk.chunk.chunk_id.clone());
            record.page = Some(chunk.chunk.page);
            record.query_rank = Some(rank);
            if !retrieved.iter().any(|r| r.chunk_id == chunk.chunk.chunk_id) {
                retrieved.push(RetrievedChunk {
                    rank: retrieved.len() + 1,
                    chunk_id: chunk.chunk.chunk_id.clone(),
                    doc_id: chunk.doc_id.clone(),
                    page: chunk.chunk.page,
                    score: round_to(hit.score, 6),
                    lexical: None,
                    semantic: None,
                    found_by: FoundBy::Corroboration,
                });
            }
            for e in take {
                record.criteria.push(e.criterion.clone());
                found.entry(e.criterion.clone()).or_default().push(e);
            }
            record.criteria.sort();
        }
        out.push(record);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breadth_k_widens_only_for_short_chunks() {
        // Chunks of full size, or longer: k itself.
        assert_eq!(breadth_k(10, [120, 120, 200].into_iter()), 10);
        // No chunks: k.
        assert_eq!(breadth_k(10, std::iter::empty()), 10);
        // Half-size chunks on average: twice as many.
        assert_eq!(breadth_k(10, [60, 60].into_iter()), 20);
        // A table cut into cells of 12 words: ten times as many, at most MAX_K.
        assert_eq!(breadth_k(5, [12; 40].into_iter()), 50);
        assert_eq!(breadth_k(20, [12; 40].into_iter()), MAX_K);
        // Never fewer than asked, even past MAX_K's cap.
        assert_eq!(breadth_k(MAX_K, [1; 3].into_iter()), MAX_K);
    }

    #[test]
    fn the_passage_is_a_chunk_of_full_size() {
        assert_eq!(
            PASSAGE_WORDS,
            esg_core::ChunkParams::default().target_words as f64
        );
    }
}
