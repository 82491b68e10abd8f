//! BM25 retrieval over chunks, keyed by `chunk_id`.
//!
//! Okapi BM25 with `k1 = 1.2`, `b = 0.75` (DESIGN §4) and the Lucene
//! IDF `ln(1 + (N − df + 0.5) / (df + 0.5))`, which is never negative.
//! The tokenizer lowercases, splits on anything that is not alphanumeric
//! and drops a small English stop-word list; there is no stemming, so the
//! rubric's theme queries list the word forms they want ("target targets").
//! Repeated query terms count once. Results are ordered by score
//! (descending), then by `chunk_id` (ascending); chunks that share no term
//! with the query are never returned. Scores are summed in query-term order
//! over a fixed document order, so the same chunks and query always give
//! bit-identical scores.

use esg_core::Chunk;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Small English stop-word list used by [`tokenize`].
pub const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "has", "have",
    "he", "her", "his", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or", "our", "she",
    "so", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "us", "was", "we", "were", "which", "while", "who", "will", "with", "you",
    "your",
];

/// Lowercased alphanumeric tokens of `text`, stop words removed.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_token(text, |t| out.push(t.to_string()));
    out
}

/// Calls `f` with each token of [`tokenize`], without allocating a string
/// per token (index building runs this over every word of a company's text).
fn each_token(text: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    for t in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
    {
        let token: &str = if t.is_ascii() {
            if t.bytes().any(|b| b.is_ascii_uppercase()) {
                buf.clear();
                buf.push_str(t);
                buf.make_ascii_lowercase();
                &buf
            } else {
                t
            }
        } else {
            buf = t.to_lowercase();
            &buf
        };
        if !is_stopword(token) {
            f(token);
        }
    }
}

/// `true` for a word in [`STOPWORDS`] (a hash set: this runs once per token).
fn is_stopword(t: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
        .contains(t)
}

/// BM25 parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f64,
    /// Length normalisation.
    pub b: f64,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// The chunk's id.
    pub chunk_id: String,
    /// BM25 score (> 0); in hybrid retrieval the fused score
    /// ([`crate::semantic::fuse`]).
    pub score: f64,
    /// Hybrid retrieval only: the lexical score, when the chunk is in the
    /// query's lexical top-k.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical: Option<f64>,
    /// Hybrid retrieval only: the cosine similarity of the chunk's vector
    /// with the query's, when the chunk has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic: Option<f64>,
}

/// An in-memory BM25 index over passages keyed by id.
#[derive(Debug, Clone)]
pub struct Bm25Index {
    params: Bm25Params,
    ids: Vec<String>,
    lengths: Vec<u32>,
    avgdl: f64,
    /// term → index into `postings`.
    vocab: HashMap<String, u32>,
    /// Per term: (document index, term frequency), ascending by document.
    postings: Vec<Vec<(u32, u32)>>,
}

impl Bm25Index {
    /// Builds an index over `(id, text)` pairs. Documents are indexed in
    /// ascending id order whatever the input order; a repeated id keeps its
    /// first text.
    pub fn new<I, S, T>(params: Bm25Params, docs: I) -> Self
    where
        I: IntoIterator<Item = (S, T)>,
        S: Into<String>,
        T: AsRef<str>,
    {
        let mut by_id: BTreeMap<String, T> = BTreeMap::new();
        for (id, text) in docs {
            by_id.entry(id.into()).or_insert(text);
        }
        let mut ids = Vec::with_capacity(by_id.len());
        let mut lengths = Vec::with_capacity(by_id.len());
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut terms: Vec<u32> = Vec::new();
        for (doc, (id, text)) in by_id.into_iter().enumerate() {
            terms.clear();
            each_token(text.as_ref(), |t| {
                let term = match vocab.get(t) {
                    Some(&i) => i,
                    None => {
                        let i = postings.len() as u32;
                        vocab.insert(t.to_string(), i);
                        postings.push(Vec::new());
                        i
                    }
                };
                terms.push(term);
            });
            lengths.push(terms.len() as u32);
            terms.sort_unstable();
            for run in terms.chunk_by(|a, b| a == b) {
                postings[run[0] as usize].push((doc as u32, run.len() as u32));
            }
            ids.push(id);
        }
        let total: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
        let avgdl = if ids.is_empty() {
            0.0
        } else {
            total as f64 / ids.len() as f64
        };
        Bm25Index {
            params,
            ids,
            lengths,
            avgdl,
            vocab,
            postings,
        }
    }

    /// Builds an index over chunks with the default parameters.
    pub fn from_chunks(chunks: &[Chunk]) -> Self {
        Bm25Index::new(
            Bm25Params::default(),
            chunks
                .iter()
                .map(|c| (c.chunk_id.as_str(), c.text.as_str())),
        )
    }

    /// Number of indexed passages.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// `true` when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The top `k` passages for `query`: score descending, then id ascending.
    pub fn search(&self, query: &str, k: usize) -> Vec<SearchHit> {
        if k == 0 || self.ids.is_empty() {
            return Vec::new();
        }
        let n = self.ids.len() as f64;
        let mut scores = vec![0.0f64; self.ids.len()];
        let mut touched = vec![false; self.ids.len()];
        let mut seen = HashSet::new();
        for term in tokenize(query) {
            if !seen.insert(term.clone()) {
                continue;
            }
            let Some(post) = self.vocab.get(&term).map(|&i| &self.postings[i as usize]) else {
                continue;
            };
            let df = post.len() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in post {
                let d = doc as usize;
                let tf = f64::from(tf);
                let norm = if self.avgdl > 0.0 {
                    f64::from(self.lengths[d]) / self.avgdl
                } else {
                    1.0
                };
                let denom = tf + self.params.k1 * (1.0 - self.params.b + self.params.b * norm);
                scores[d] += idf * tf * (self.params.k1 + 1.0) / denom;
                touched[d] = true;
            }
        }
        let mut hits: Vec<(usize, f64)> = (0..self.ids.len())
            .filter(|&d| touched[d] && scores[d] > 0.0)
            .map(|d| (d, scores[d]))
            .collect();
        hits.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| self.ids[a.0].cmp(&self.ids[b.0]))
        });
        hits.truncate(k);
        hits.into_iter()
            .map(|(d, score)| SearchHit {
                chunk_id: self.ids[d].clone(),
                score,
                lexical: None,
                semantic: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_lowercases_and_drops_stopwords() {
        assert_eq!(
            tokenize("The Board oversees Scope 1-2 (CO2e) emissions."),
            vec!["board", "oversees", "scope", "1", "2", "co2e", "emissions"]
        );
        assert!(tokenize("of the and").is_empty());
    }

    #[test]
    fn ranking_is_bm25_and_deterministic() {
        let docs = vec![
            ("c", "energy efficiency projects cut energy use"),
            ("a", "the board oversees climate risk"),
            ("b", "energy consumption was 10 GWh"),
            ("d", "energy consumption was 10 GWh"),
        ];
        let idx = Bm25Index::new(Bm25Params::default(), docs.clone());
        let hits = idx.search("energy consumption", 10);
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        // b and d tie and are ordered by id; "a" shares no term and is absent.
        assert_eq!(ids, vec!["b", "d", "c"]);
        assert_eq!(hits[0].score, hits[1].score);
        // Input order does not matter.
        let mut rev = docs;
        rev.reverse();
        assert_eq!(
            Bm25Index::new(Bm25Params::default(), rev).search("energy consumption", 10),
            hits
        );
        assert_eq!(idx.search("energy consumption", 1).len(), 1);
        assert!(idx.search("", 5).is_empty());
        assert!(idx.search("energy", 0).is_empty());
    }

    #[test]
    fn score_matches_hand_computation() {
        // N = 2, df(energy) = 1, one doc of 2 tokens, avgdl = 2.
        let idx = Bm25Index::new(
            Bm25Params::default(),
            vec![("x", "energy energy"), ("y", "board risk")],
        );
        let hits = idx.search("energy", 5);
        let idf = (1.0f64 + (2.0 - 1.0 + 0.5) / (1.0 + 0.5)).ln();
        let expect = idf * 2.0 * 2.2 / (2.0 + 1.2);
        assert!((hits[0].score - expect).abs() < 1e-12);
    }
}
