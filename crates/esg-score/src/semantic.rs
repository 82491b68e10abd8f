//! Hybrid retrieval: BM25 fused with sentence-embedding similarity
//! (DESIGN §4).
//!
//! This crate computes no embeddings: the caller (the CLI or the server,
//! through `esg-embed`) gives the chunks' stored vectors as
//! [`ChunkVectors`] and one query vector per theme, embedded from
//! [`theme_query_text`]. What is done here is deterministic arithmetic on
//! those vectors.
//!
//! **Similarity** is the cosine, accumulated in `f64` in dimension order,
//! so the same vectors always give bit-identical scores.
//!
//! **Linear fusion** (`fusion=alpha`, the default) scores each candidate
//! `alpha · lexical + (1 − alpha) · semantic` over per-query normalised
//! scores:
//!
//! * lexical: the query's lexical top-k (for a theme, exactly what
//!   `semantic=0` retrieves: [`crate::retrieve_theme`]); a score is divided
//!   by the top score. That is min-max normalisation with the minimum fixed
//!   at 0, the score of a chunk the query does not match, which every
//!   chunk outside the top-k gets;
//! * semantic: the cosine of every chunk that has a vector, min-max
//!   normalised over all of them (`(s − min) / (max − min)`; 1 when all
//!   are equal); 0 for a chunk without a vector;
//! * candidates: the lexical top-k and the semantic top-k; a candidate
//!   whose fused score is 0 is dropped; ties go to the smaller chunk id.
//!
//! So `alpha = 1` returns exactly the lexical top-k, in its order, and
//! `alpha = 0` the semantic top-k.
//!
//! **The default, [`DEFAULT_ALPHA`] = 0.2**, is measured, not assumed
//! (issue 13 suggested 0.6): `bench/retrieval_recall.sh` ranks the 593
//! TCFD-labelled sentences of the shared corpus for their 11 questions with
//! BM25, all-MiniLM-L6-v2 and this `fuse`, and counts same-label sentences
//! in the top 10 (recall@10 = relevant in the top 10 / min(10, relevant),
//! mean over the questions; 2026-12-02, README bench notes). BM25 alone
//! 0.218, semantic alone 0.236; fused, every alpha from 0.05 to 0.25 is
//! above both (0.236–0.255, and a relevant sentence in the top 10 for all
//! 11 questions, against 10 for BM25), while every alpha from 0.3 up gives
//! BM25's 0.218 or less. 0.2 sits inside that plateau (its ±0.05
//! neighbours are 0.236 and 0.245) rather than on its single best point
//! (0.255 at 0.1), and ranks best of the plateau past the top 10
//! (R-precision 0.170; BM25 alone 0.179, semantic 0.163, alpha 0.6 0.182).
//! The lexical side weighs less than its share suggests because it is
//! divided by its top score (its best chunk is always 1) while the cosine
//! is spread over all chunks. On the expert page-labelled questions of
//! `../shared/notes/retrieval-and-evidence.md` dense retrieval also beat
//! BM25 (top-10 page hits 23 vs 18 of 26) and a lexical-heavier mix lost
//! some of that. Eleven queries are a small sample (one sentence moves
//! recall@10 by 0.009): re-run the bench when the corpus grows.
//! Reciprocal-rank fusion scored better still on the same bench (recall@10
//! 0.264, R-precision 0.181).
//!
//! **Reciprocal-rank fusion** (`fusion=rrf`) scores a candidate
//! `Σ 1 / (60 + rank)` over the two top-k lists it appears in, and ignores
//! `alpha`.

use crate::error::ScoreError;
use crate::retrieve::SearchHit;
use crate::rubric::Theme;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// Weight of the lexical side in linear fusion when the request gives none:
/// 0.2, inside the range (0.05–0.25) where fusion beat both BM25 and semantic
/// retrieval alone in `bench/retrieval_recall.sh` (see the module
/// documentation for the figures).
pub const DEFAULT_ALPHA: f64 = 0.2;

/// Reciprocal-rank-fusion constant.
const RRF_K: f64 = 60.0;

/// How lexical and semantic results are combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// `alpha · lexical + (1 − alpha) · semantic` over normalised scores,
    /// `alpha` in 0..=1.
    Alpha(f64),
    /// Reciprocal-rank fusion of the two top-k lists.
    Rrf,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Alpha(DEFAULT_ALPHA)
    }
}

impl Fusion {
    /// `alpha` or `rrf`, as requests and results name it.
    pub fn name(&self) -> &'static str {
        match self {
            Fusion::Alpha(_) => "alpha",
            Fusion::Rrf => "rrf",
        }
    }

    /// The weight of the lexical side, for linear fusion.
    pub fn alpha(&self) -> Option<f64> {
        match self {
            Fusion::Alpha(a) => Some(*a),
            Fusion::Rrf => None,
        }
    }

    /// A fusion from request parameters: `fusion` (`alpha`, the default, or
    /// `rrf`) and `alpha` (0..=1, default [`DEFAULT_ALPHA`]; refused with
    /// `rrf`, which has no weight).
    ///
    /// # Errors
    /// [`ScoreError::InvalidParam`] naming `fusion` or `alpha`.
    pub fn from_params(fusion: Option<&str>, alpha: Option<f64>) -> Result<Fusion, ScoreError> {
        match fusion.unwrap_or("alpha") {
            "alpha" | "linear" => {
                let a = alpha.unwrap_or(DEFAULT_ALPHA);
                if !(0.0..=1.0).contains(&a) {
                    return Err(invalid(
                        "alpha",
                        format!("must be between 0 and 1, found {a}"),
                    ));
                }
                Ok(Fusion::Alpha(a))
            }
            "rrf" => match alpha {
                Some(_) => Err(invalid(
                    "alpha",
                    "applies to fusion=alpha only; reciprocal-rank fusion has no weight",
                )),
                None => Ok(Fusion::Rrf),
            },
            other => Err(invalid(
                "fusion",
                format!("unknown fusion \"{other}\"; expected alpha or rrf"),
            )),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ScoreError {
    ScoreError::InvalidParam {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The text a theme's semantic query vector is embedded from: its name and
/// description ("Transition Plan: ..."), natural language rather than the
/// BM25 query's word list.
pub fn theme_query_text(theme: &Theme) -> String {
    format!("{}: {}", theme.name, theme.description)
}

/// Stored vectors of one model, by chunk id.
#[derive(Debug)]
pub struct ChunkVectors {
    id: u64,
    model_id: String,
    dim: usize,
    /// chunk id → (vector, its Euclidean norm).
    by_id: HashMap<String, (Box<[f32]>, f64)>,
}

impl ChunkVectors {
    /// Vectors of `model_id`, each of length `dim`.
    ///
    /// # Errors
    /// [`ScoreError::InvalidParam`] (field `vectors`) when a vector's length
    /// is not `dim` or `dim` is 0.
    pub fn new(
        model_id: impl Into<String>,
        dim: usize,
        vectors: impl IntoIterator<Item = (String, Vec<f32>)>,
    ) -> Result<ChunkVectors, ScoreError> {
        if dim == 0 {
            return Err(invalid("vectors", "dimension 0"));
        }
        let mut by_id = HashMap::new();
        for (id, v) in vectors {
            if v.len() != dim {
                return Err(invalid(
                    "vectors",
                    format!(
                        "chunk {id} has a {}-dimensional vector, expected {dim}",
                        v.len()
                    ),
                ));
            }
            let norm = norm(&v);
            by_id.insert(id, (v.into_boxed_slice(), norm));
        }
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(ChunkVectors {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            model_id: model_id.into(),
            dim,
            by_id,
        })
    }

    /// A number no other set of this process has (for keying answers).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The model the vectors come from.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Their dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of chunks with a vector.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// `true` when no chunk has a vector.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// `true` when `chunk_id` has a vector.
    pub fn contains(&self, chunk_id: &str) -> bool {
        self.by_id.contains_key(chunk_id)
    }

    /// Approximate heap bytes held (for cache bounds).
    pub fn heap_bytes(&self) -> usize {
        self.by_id.keys().map(|k| k.len() + 4 * self.dim + 64).sum()
    }

    /// The cosine similarity of `query` with every chunk of `chunk_ids`
    /// that has a vector: score descending, then chunk id ascending.
    ///
    /// # Errors
    /// [`ScoreError::InvalidParam`] (field `query_vector`) when `query`
    /// does not have the vectors' dimension.
    pub fn similarities<'c>(
        &self,
        query: &[f32],
        chunk_ids: impl IntoIterator<Item = &'c str>,
    ) -> Result<Vec<SearchHit>, ScoreError> {
        if query.len() != self.dim {
            return Err(invalid(
                "query_vector",
                format!(
                    "has {} values; the stored vectors of {} have {}",
                    query.len(),
                    self.model_id,
                    self.dim
                ),
            ));
        }
        let qn = norm(query);
        let mut out: Vec<SearchHit> = chunk_ids
            .into_iter()
            .filter_map(|id| {
                let (v, vn) = self.by_id.get(id)?;
                let dot: f64 = query
                    .iter()
                    .zip(v.iter())
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                let cos = if qn > 0.0 && *vn > 0.0 {
                    dot / (qn * vn)
                } else {
                    0.0
                };
                Some(SearchHit {
                    chunk_id: id.to_string(),
                    score: cos,
                    lexical: None,
                    semantic: Some(cos),
                })
            })
            .collect();
        sort_hits(&mut out);
        Ok(out)
    }
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
}

fn sort_hits(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
}

/// Fuses a query's lexical top-k (`lexical`, best first, scores > 0) with
/// the similarities of every chunk that has a vector (`semantic`, as
/// [`ChunkVectors::similarities`] gives them) into the top `k` (see the
/// module documentation). Each hit's `score` is the fused score; `lexical`
/// is its lexical score when it is in the lexical top-k and `semantic` its
/// cosine when it has a vector.
pub fn fuse(
    lexical: &[SearchHit],
    semantic: &[SearchHit],
    fusion: Fusion,
    k: usize,
) -> Vec<SearchHit> {
    // chunk id → (lexical rank and score, semantic rank and cosine).
    type Sides = (Option<(usize, f64)>, Option<(usize, f64)>);
    let mut sides: BTreeMap<&str, Sides> = BTreeMap::new();
    for (rank, h) in lexical.iter().take(k).enumerate() {
        sides.entry(&h.chunk_id).or_default().0 = Some((rank, h.score));
    }
    for (rank, h) in semantic.iter().enumerate() {
        if rank < k {
            sides.entry(&h.chunk_id).or_default().1 = Some((rank, h.score));
        } else if let Some(s) = sides.get_mut(h.chunk_id.as_str()) {
            // A lexical candidate's cosine, below the semantic top-k.
            s.1 = Some((rank, h.score));
        }
    }
    let lex_max = lexical
        .iter()
        .take(k)
        .map(|h| h.score)
        .fold(0.0_f64, f64::max);
    let (sem_min, sem_max) = semantic
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), h| {
            (lo.min(h.score), hi.max(h.score))
        });
    let mut out: Vec<SearchHit> = sides
        .into_iter()
        .filter_map(|(id, (lex, sem))| {
            let score = match fusion {
                Fusion::Alpha(alpha) => {
                    let l = match lex {
                        Some((_, s)) if lex_max > 0.0 => s / lex_max,
                        _ => 0.0,
                    };
                    let s = match sem {
                        Some((_, c)) if sem_max > sem_min => (c - sem_min) / (sem_max - sem_min),
                        Some(_) => 1.0,
                        None => 0.0,
                    };
                    alpha * l + (1.0 - alpha) * s
                }
                Fusion::Rrf => {
                    let rr = |side: Option<(usize, f64)>| match side {
                        Some((rank, _)) if rank < k => 1.0 / (RRF_K + rank as f64 + 1.0),
                        _ => 0.0,
                    };
                    rr(lex) + rr(sem)
                }
            };
            (score > 0.0).then(|| SearchHit {
                chunk_id: id.to_string(),
                score,
                lexical: lex.map(|(_, s)| s),
                semantic: sem.map(|(_, c)| c),
            })
        })
        .collect();
    sort_hits(&mut out);
    out.truncate(k);
    out
}

/// What a semantic or hybrid scoring run needs besides the chunks: the
/// fusion, the chunks' vectors and each theme's query vector (by theme
/// code, embedded from [`theme_query_text`] with the vectors' model).
#[derive(Debug, Clone, Copy)]
pub struct SemanticInput<'a> {
    /// How to fuse.
    pub fusion: Fusion,
    /// The company-year's stored vectors.
    pub vectors: &'a ChunkVectors,
    /// Theme code → query vector.
    pub queries: &'a HashMap<String, Vec<f32>>,
}

/// Which retrieval ran, as results report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalInfo {
    /// `bm25` or `hybrid`.
    pub method: &'static str,
    /// The embedding model (hybrid only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `alpha` or `rrf` (hybrid only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<&'static str>,
    /// The lexical weight (linear fusion only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Chunks of the year searched (hybrid only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<usize>,
    /// Of those, chunks with a vector (hybrid only): the others are found
    /// by their lexical score alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks_with_vectors: Option<usize>,
    /// `chunks_with_vectors / chunks`, 4 decimals (hybrid only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_coverage: Option<f64>,
}

impl RetrievalInfo {
    /// BM25 only.
    pub fn bm25() -> Self {
        RetrievalInfo {
            method: "bm25",
            model: None,
            fusion: None,
            alpha: None,
            chunks: None,
            chunks_with_vectors: None,
            semantic_coverage: None,
        }
    }

    /// Hybrid retrieval over `chunks` chunks, `with_vectors` of which have one.
    pub fn hybrid(model: &str, fusion: Fusion, chunks: usize, with_vectors: usize) -> Self {
        let coverage = if chunks == 0 {
            0.0
        } else {
            (with_vectors as f64 / chunks as f64 * 10_000.0).round() / 10_000.0
        };
        RetrievalInfo {
            method: "hybrid",
            model: Some(model.to_string()),
            fusion: Some(fusion.name()),
            alpha: fusion.alpha(),
            chunks: Some(chunks),
            chunks_with_vectors: Some(with_vectors),
            semantic_coverage: Some(coverage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, score: f64) -> SearchHit {
        SearchHit {
            chunk_id: id.into(),
            score,
            lexical: None,
            semantic: None,
        }
    }

    fn ids(h: &[SearchHit]) -> Vec<&str> {
        h.iter().map(|h| h.chunk_id.as_str()).collect()
    }

    fn vectors() -> ChunkVectors {
        ChunkVectors::new(
            "m",
            2,
            [
                ("a".to_string(), vec![1.0, 0.0]),
                ("b".to_string(), vec![0.0, 1.0]),
                ("c".to_string(), vec![0.6, 0.8]),
                ("d".to_string(), vec![-1.0, 0.0]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn similarities_are_cosines_sorted_with_ties_by_id() {
        let v = vectors();
        // Not normalised: the cosine divides by both norms.
        let s = v
            .similarities(&[0.0, 2.0], ["a", "b", "c", "d", "x"])
            .unwrap();
        assert_eq!(ids(&s), ["b", "c", "a", "d"]);
        assert!((s[0].score - 1.0).abs() < 1e-12);
        assert!((s[1].score - 0.8).abs() < 1e-7);
        assert_eq!(s[2].score, 0.0);
        assert_eq!(s[3].score, 0.0);
        assert!(v.similarities(&[1.0], ["a"]).is_err());
        assert!(ChunkVectors::new("m", 2, [("a".to_string(), vec![1.0])]).is_err());
    }

    #[test]
    fn alpha_one_is_the_lexical_top_k_and_zero_the_semantic_one() {
        let lexical = [hit("d", 9.0), hit("a", 3.0), hit("x", 1.0)];
        // Cosines: b 0.995, c 0.856, a 0.0995, d −0.0995 (the minimum, which
        // normalises to 0 and so is never a candidate at alpha 0).
        let semantic = vectors()
            .similarities(&[0.1, 1.0], ["a", "b", "c", "d", "x"])
            .unwrap();
        let lex = fuse(&lexical, &semantic, Fusion::Alpha(1.0), 3);
        assert_eq!(ids(&lex), ["d", "a", "x"]);
        assert_eq!(lex[0].lexical, Some(9.0));
        let sem = fuse(&lexical, &semantic, Fusion::Alpha(0.0), 3);
        assert_eq!(ids(&sem), ["b", "c", "a"]);
        // Every candidate's cosine is reported, in the window or not.
        assert!(
            lex.iter()
                .filter(|h| h.chunk_id != "x")
                .all(|h| h.semantic.is_some())
        );
        assert_eq!(
            lex.iter().find(|h| h.chunk_id == "x").unwrap().semantic,
            None
        );
    }

    #[test]
    fn linear_fusion_follows_the_documented_normalisation() {
        // lexical: d 4 → 1.0, a 2 → 0.5; semantic (query b): b 1, c 0.8, a 0,
        // d 0 → min 0, max 1.
        let lexical = [hit("d", 4.0), hit("a", 2.0)];
        let semantic = vectors()
            .similarities(&[0.0, 1.0], ["a", "b", "c", "d"])
            .unwrap();
        let f = fuse(&lexical, &semantic, Fusion::Alpha(0.6), 4);
        let got: Vec<(&str, f64)> = f.iter().map(|h| (h.chunk_id.as_str(), h.score)).collect();
        let want: [(&str, f64); 4] = [("d", 0.6), ("c", 0.4 * 0.8), ("a", 0.3), ("b", 0.4)];
        let mut want = want.to_vec();
        want.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
        assert_eq!(got.len(), want.len());
        for ((gi, gs), (wi, ws)) in got.iter().zip(&want) {
            assert_eq!(gi, wi);
            assert!((gs - ws).abs() < 1e-6, "{gi}: {gs} vs {ws}");
        }
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_of_both_lists() {
        let lexical = [hit("a", 5.0), hit("b", 4.0)];
        let semantic = [hit("b", 0.9), hit("c", 0.5), hit("a", 0.1)];
        let f = fuse(&lexical, &semantic, Fusion::Rrf, 2);
        // b: 1/62 + 1/61; a: 1/61 (its semantic rank 3 is outside k = 2); c: 1/62.
        assert_eq!(ids(&f), ["b", "a"]);
        assert!((f[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
    }

    #[test]
    fn fusion_parameters_are_checked() {
        assert_eq!(
            Fusion::from_params(None, None).unwrap(),
            Fusion::Alpha(DEFAULT_ALPHA)
        );
        assert_eq!(Fusion::from_params(Some("rrf"), None).unwrap(), Fusion::Rrf);
        assert_eq!(
            Fusion::from_params(None, Some(0.0)).unwrap(),
            Fusion::Alpha(0.0)
        );
        for (f, a, field) in [
            (None, Some(1.5), "alpha"),
            (None, Some(f64::NAN), "alpha"),
            (Some("rrf"), Some(0.5), "alpha"),
            (Some("max"), None, "fusion"),
        ] {
            match Fusion::from_params(f, a) {
                Err(ScoreError::InvalidParam { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{f:?} {a:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn coverage_is_rounded_to_four_decimals() {
        let r = RetrievalInfo::hybrid("m", Fusion::Rrf, 3, 2);
        assert_eq!(r.semantic_coverage, Some(0.6667));
        assert_eq!(r.alpha, None);
        assert_eq!(RetrievalInfo::bm25().method, "bm25");
    }
}
