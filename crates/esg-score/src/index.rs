//! Work done once per company-year, reused by every scoring request.
//!
//! A profile of `POST /score` (Headlam Group, 159 chunks, k 20) showed
//! where a request's time went: matching the rubric's criteria on the
//! retrieved chunks (~45 %), splitting those chunks into sentences again for
//! every criterion (~14 %), allocation, and the BM25 index rebuilt per
//! request. None of that depends on the request: only on the company-year's
//! chunks and the rubric. A [`CompanyIndex`] holds it:
//!
//! * the year's chunks, de-duplicated by `chunk_id` and sorted (the pool
//!   [`crate::retrieve`](fn@crate::retrieve) builds), the documents they come from, and their
//!   BM25 index (statistics and postings), built once;
//! * each theme's top-k for a given `k`, memoised (at most one entry per
//!   theme and `k`, so at most 7 × 100), and the BM25 results that
//!   corroboration looks through beyond the top-k;
//! * for each (chunk, theme), the hits of every rule of the theme on the
//!   chunk and the quote each gives (`ThemeMatches`), matched rule by
//!   rule the first time scoring asks (sentences split once; a rule whose
//!   quota of quotes is filled by higher-ranked chunks is never run on the
//!   lower ones), or
//!   loaded from what an earlier process stored ([`CompanyIndex::load_matches`];
//!   the store keeps them keyed by the rubric's SHA-256, so `esg score`
//!   need not compile a single regex when they are there).
//!
//! What is left per request is what depends on the request: picking the
//! memoised top-k, the two-quote rule, ladder, frameworks, caps,
//! confidence, parity and fingerprint, then serialisation.
//!
//! An index is immutable data plus memo tables that only ever fill in, so
//! it is shared between threads (`Arc<CompanyIndex>`) without locks on the
//! hot path (the memo cells are `OnceLock`s; the top-k table takes a mutex
//! for a map lookup). Keeping it fresh is the caller's job: it must be
//! rebuilt when the company-year's documents change (the server keys its
//! cache by the set of document ids, see `esg-server`'s `score_cache`).
//!
//! [`CompanyIndex::score`] gives exactly the [`Scorecard`] of
//! [`crate::score`](fn@crate::score) over the same chunks (checked by this crate's tests and
//! over the whole corpus by `esg-cli`'s).

use crate::error::ScoreError;
use crate::retrieve::{Bm25Index, Bm25Params};
use crate::rubric::Rubric;
use crate::score::{
    DocumentUsed, IndexRef, MatchSource, Pool, RankedHits, Retrieval, ScoreParams, Scorecard,
    ScoringChunk, ThemeMatches, check_params, check_semantic, documents_of, hybrid_theme,
    order_pool, retrieval_info, retrieve_theme,
};
use crate::semantic::SemanticInput;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The matches of one theme's rules on one chunk, as stored between
/// processes: opaque bytes for the store, keyed by rubric, chunk and theme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMatches {
    /// The chunk.
    pub chunk_id: String,
    /// The theme code.
    pub theme: String,
    /// Hit ranges of every rule of the theme (see [`CompanyIndex::load_matches`]).
    pub data: Vec<u8>,
}

/// BM25 results shared between requests.
type SharedHits = Arc<Vec<crate::SearchHit>>;

/// The precomputed, reusable part of scoring one company-year (see the
/// module documentation).
#[derive(Debug)]
pub struct CompanyIndex {
    id: u64,
    rubric_sha256: String,
    year: i32,
    pool: Vec<ScoringChunk>,
    documents: Vec<DocumentUsed>,
    bm25: Bm25Index,
    /// Mean words of the pool's chunks, for [`crate::breadth_k`] (the pool
    /// never changes, so it is worked out once).
    mean_words: Option<f64>,
    themes: usize,
    /// `pool.len() × themes` cells, row-major by chunk.
    matches: Vec<OnceLock<Arc<ThemeMatches>>>,
    /// (theme index, k) → top-k.
    top_k: Mutex<HashMap<(usize, usize), Arc<RankedHits>>>,
    /// (query, n) → BM25 top n, for corroboration (the rubric's theme and
    /// stage queries, n = k + depth: at most a few thousand entries).
    searches: Mutex<HashMap<(String, usize), SharedHits>>,
    /// Cells made here (not loaded), for [`CompanyIndex::take_new_matches`].
    fresh: Mutex<Vec<usize>>,
    base_bytes: usize,
    memo_bytes: Arc<AtomicUsize>,
}

impl CompanyIndex {
    /// Indexes the chunks of `year` among `chunks` for `rubric`.
    ///
    /// # Errors
    /// [`ScoreError::NoChunks`] when no chunk has that year.
    pub fn new(rubric: &Rubric, chunks: Vec<ScoringChunk>, year: i32) -> Result<Self, ScoreError> {
        let mut pool: Vec<ScoringChunk> = chunks.into_iter().filter(|c| c.year == year).collect();
        if pool.is_empty() {
            return Err(ScoreError::NoChunks { year });
        }
        // The same order and de-duplication as `retrieve`.
        order_pool(&mut pool);
        let bm25 = Bm25Index::new(
            Bm25Params::default(),
            pool.iter()
                .map(|c| (c.chunk.chunk_id.as_str(), c.chunk.text.as_str())),
        );
        let documents = documents_of(pool.iter());
        let mean_words = crate::score::mean_words(pool.iter().map(|c| c.chunk.words));
        let themes = rubric.themes.len();
        let matches = (0..pool.len() * themes).map(|_| OnceLock::new()).collect();
        // Text twice (chunk and postings are about its size), ids, cells.
        let base_bytes = pool
            .iter()
            .map(|c| {
                2 * c.chunk.text.len()
                    + c.chunk.chunk_id.len()
                    + c.chunk.sha256.len()
                    + c.doc_id.len()
                    + c.source_sha256.len()
                    + std::mem::size_of::<ScoringChunk>()
                    + 64
            })
            .sum::<usize>()
            + pool.len() * themes * std::mem::size_of::<OnceLock<Arc<ThemeMatches>>>();
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        Ok(CompanyIndex {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed) as u64,
            rubric_sha256: rubric.sha256().to_string(),
            year,
            pool,
            documents,
            bm25,
            mean_words,
            themes,
            matches,
            top_k: Mutex::new(HashMap::new()),
            searches: Mutex::new(HashMap::new()),
            fresh: Mutex::new(Vec::new()),
            base_bytes,
            memo_bytes: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// A number no other index of this process has: answers kept for an
    /// index are keyed by it, so they go stale with it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The reporting year indexed.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// SHA-256 of the rubric the index was built for.
    pub fn rubric_sha256(&self) -> &str {
        &self.rubric_sha256
    }

    /// Number of distinct chunks indexed.
    pub fn len(&self) -> usize {
        self.pool.len()
    }

    /// `true` when nothing is indexed (never: [`CompanyIndex::new`] refuses).
    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// The documents whose chunks are indexed, sorted by id.
    pub fn documents(&self) -> &[DocumentUsed] {
        &self.documents
    }

    /// Approximate heap bytes held, memo tables included (for cache bounds).
    pub fn heap_bytes(&self) -> usize {
        self.base_bytes + self.memo_bytes.load(Ordering::Relaxed)
    }

    /// The top `k` chunks for a free-text `query` by BM25 over the indexed
    /// chunks: exactly [`Bm25Index::search`] over them, with each hit's chunk.
    pub fn search(&self, query: &str, k: usize) -> Vec<(crate::SearchHit, &ScoringChunk)> {
        self.bm25
            .search(query, k)
            .into_iter()
            .filter_map(|h| {
                let i = self
                    .pool
                    .binary_search_by(|c| c.chunk.chunk_id.as_str().cmp(&h.chunk_id))
                    .ok()?;
                Some((h, &self.pool[i]))
            })
            .collect()
    }

    /// The retrieval phase of [`CompanyIndex::score`], as [`crate::retrieve`](fn@crate::retrieve)
    /// for the same chunks, from the memoised index and top-k.
    ///
    /// # Errors
    /// As [`crate::score`](fn@crate::score); [`ScoreError::NoChunks`] when `params.year` is
    /// not the indexed year, and [`ScoreError::InvalidParam`] (field
    /// `rubric`) when `rubric` is not the one the index was built for.
    pub fn retrieve<'a>(
        &'a self,
        rubric: &'a Rubric,
        params: &ScoreParams,
    ) -> Result<Retrieval<'a>, ScoreError> {
        self.retrieve_with(rubric, params, None)
    }

    /// [`CompanyIndex::retrieve`] with hybrid retrieval when `params.fusion`
    /// is set: as [`crate::retrieve_with`] for the same chunks. The lexical
    /// top-k is the memoised one; the fusion is computed per call (it
    /// depends on the vectors, which fill in as chunks are embedded).
    ///
    /// # Errors
    /// As [`CompanyIndex::retrieve`] and [`crate::score_with`].
    pub fn retrieve_with<'a>(
        &'a self,
        rubric: &'a Rubric,
        params: &ScoreParams,
        semantic: Option<SemanticInput<'_>>,
    ) -> Result<Retrieval<'a>, ScoreError> {
        if rubric.sha256() != self.rubric_sha256 {
            return Err(ScoreError::InvalidParam {
                field: "rubric".into(),
                message: format!(
                    "the index was built for rubric {}, not {}",
                    self.rubric_sha256,
                    rubric.sha256()
                ),
            });
        }
        let themes = check_params(rubric, params)?;
        let semantic = check_semantic(params, semantic, &themes)?;
        if params.year != self.year {
            return Err(ScoreError::NoChunks { year: params.year });
        }
        let ids = |i: usize| self.pool[i].chunk.chunk_id.as_str();
        let k = crate::score::breadth_for_mean(params.k, self.mean_words);
        let hits = themes
            .iter()
            .map(|&(ti, t)| {
                let lexical = self.lexical_top_k(ti, t, k);
                Ok(match &semantic {
                    None => lexical,
                    Some(s) => Arc::new(RankedHits::locate(
                        hybrid_theme(s, t, lexical.hits.clone(), (0..self.pool.len()).map(ids), k)?,
                        ids,
                        self.pool.len(),
                    )),
                })
            })
            .collect::<Result<_, ScoreError>>()?;
        let info = retrieval_info(semantic.as_ref(), (0..self.pool.len()).map(ids));
        Ok(Retrieval {
            rubric,
            params: params.clone(),
            themes,
            pool: Pool::Owned(&self.pool),
            hits,
            documents: Cow::Borrowed(&self.documents),
            matches: self,
            bm25: IndexRef::Borrowed(&self.bm25),
            info,
        })
    }

    /// Theme `ti`'s BM25 top-k, memoised.
    fn lexical_top_k(&self, ti: usize, theme: &crate::Theme, k: usize) -> Arc<RankedHits> {
        let key = (ti, k);
        if let Some(h) = self.lock_top_k().get(&key) {
            return Arc::clone(h);
        }
        let h = Arc::new(RankedHits::locate(
            retrieve_theme(theme, &self.bm25, k),
            |i| self.pool[i].chunk.chunk_id.as_str(),
            self.pool.len(),
        ));
        self.lock_top_k().insert(key, Arc::clone(&h));
        h
    }

    /// [`CompanyIndex::score`] with hybrid retrieval when `params.fusion` is
    /// set: the same [`Scorecard`] as [`crate::score_with`].
    ///
    /// # Errors
    /// As [`CompanyIndex::retrieve_with`].
    pub fn score_with(
        &self,
        rubric: &Rubric,
        params: &ScoreParams,
        semantic: Option<SemanticInput<'_>>,
    ) -> Result<Scorecard, ScoreError> {
        Ok(self.retrieve_with(rubric, params, semantic)?.score())
    }

    /// The indexed chunk with id `chunk_id`.
    pub fn chunk(&self, chunk_id: &str) -> Option<&ScoringChunk> {
        let i = self
            .pool
            .binary_search_by(|c| c.chunk.chunk_id.as_str().cmp(chunk_id))
            .ok()?;
        Some(&self.pool[i])
    }

    /// The ids of the indexed chunks, sorted (the pool order).
    pub fn chunk_ids(&self) -> impl Iterator<Item = &str> {
        self.pool.iter().map(|c| c.chunk.chunk_id.as_str())
    }

    /// Scores the indexed company-year: the same [`Scorecard`] as
    /// [`crate::score`](fn@crate::score) over the same chunks, rubric and parameters.
    ///
    /// # Errors
    /// As [`CompanyIndex::retrieve`].
    pub fn score(&self, rubric: &Rubric, params: &ScoreParams) -> Result<Scorecard, ScoreError> {
        Ok(self.retrieve(rubric, params)?.score())
    }

    fn lock_top_k(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, usize), Arc<RankedHits>>> {
        self.top_k.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cell(&self, pool_idx: usize, theme_idx: usize) -> usize {
        pool_idx * self.themes + theme_idx
    }

    /// Fills the memo from matches an earlier process stored for this
    /// rubric. Entries for unknown chunks or themes, or whose data do not
    /// decode to this rubric's rules on this chunk's text, are ignored (they
    /// are computed again when needed). Returns how many were taken.
    ///
    /// `data` is, little-endian: the number of rules `u32`, then per rule
    /// the number of hits `u32` and each hit's byte range `u32 start, u32
    /// end` in the chunk text.
    pub fn load_matches(
        &self,
        rubric: &Rubric,
        stored: impl IntoIterator<Item = StoredMatches>,
    ) -> usize {
        if rubric.sha256() != self.rubric_sha256 {
            return 0;
        }
        let mut taken = 0;
        for s in stored {
            let Some(ti) = rubric.themes.iter().position(|t| t.code == s.theme) else {
                continue;
            };
            let Ok(pi) = self
                .pool
                .binary_search_by(|c| c.chunk.chunk_id.as_str().cmp(&s.chunk_id))
            else {
                continue;
            };
            let theme = &rubric.themes[ti];
            let sc = &self.pool[pi];
            let slots = crate::score::theme_slots(rubric, theme).len();
            let Some(ranges) = decode(&s.data, slots, &sc.chunk.text) else {
                continue;
            };
            let m = Arc::new(ThemeMatches::from_ranges(rubric, theme, sc, ranges));
            let bytes = m.heap_bytes();
            if self.matches[self.cell(pi, ti)].set(m).is_ok() {
                self.memo_bytes.fetch_add(bytes, Ordering::Relaxed);
                taken += 1;
            }
        }
        taken
    }

    /// The matches of the (chunk, theme) cells this index matched since the
    /// last call (not those loaded), encoded for the store, in (chunk,
    /// theme) order. Scoring matches a cell's rules one at a time as it
    /// needs them; the rules not matched yet are matched here first, so
    /// call this off the request path (the server does, in the background).
    pub fn take_new_matches(&self, rubric: &Rubric) -> Vec<StoredMatches> {
        let mut cells = std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|e| e.into_inner()));
        cells.sort_unstable();
        cells
            .into_iter()
            .filter_map(|cell| {
                let m = self.matches[cell].get()?;
                let (pi, ti) = (cell / self.themes, cell % self.themes);
                let theme = rubric.themes.get(ti)?;
                let sc = &self.pool[pi];
                Some(StoredMatches {
                    chunk_id: sc.chunk.chunk_id.clone(),
                    theme: theme.code.clone(),
                    data: encode(&m.complete(rubric, theme, sc)),
                })
            })
            .collect()
    }
}

impl MatchSource for CompanyIndex {
    fn search(&self, bm25: &Bm25Index, query: &str, n: usize) -> Arc<Vec<crate::SearchHit>> {
        let lock = || self.searches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = lock().get(&(query.to_string(), n)) {
            return Arc::clone(h);
        }
        let h = Arc::new(bm25.search(query, n));
        lock().insert((query.to_string(), n), Arc::clone(&h));
        h
    }

    fn theme_matches(
        &self,
        rubric: &Rubric,
        theme_idx: usize,
        pool_idx: usize,
        _chunk: &ScoringChunk,
    ) -> Arc<ThemeMatches> {
        let cell = self.cell(pool_idx, theme_idx);
        let mut made = false;
        let m = self.matches[cell].get_or_init(|| {
            made = true;
            let slots = crate::score::theme_slots(rubric, &rubric.themes[theme_idx]).len();
            Arc::new(ThemeMatches::new(slots, Some(Arc::clone(&self.memo_bytes))))
        });
        if made {
            self.fresh
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cell);
        }
        Arc::clone(m)
    }
}

/// Encodes hit ranges as [`CompanyIndex::load_matches`] reads them.
fn encode(ranges: &[Vec<Range<usize>>]) -> Vec<u8> {
    let n: usize = ranges.iter().map(|r| 4 + 8 * r.len()).sum();
    let mut out = Vec::with_capacity(4 + n);
    let mut put = |v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
    put(ranges.len());
    for r in ranges {
        put(r.len());
        for h in r {
            put(h.start);
            put(h.end);
        }
    }
    out
}

/// Decodes hit ranges for `slots` rules on `text`; `None` unless every
/// range is non-empty, ascending, inside `text` and on character boundaries.
fn decode(data: &[u8], slots: usize, text: &str) -> Option<Vec<Vec<Range<usize>>>> {
    let mut words = data
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if !data.len().is_multiple_of(4) || words.next()? != slots {
        return None;
    }
    let mut out = Vec::with_capacity(slots);
    for _ in 0..slots {
        let n = words.next()?;
        if n > text.len() {
            return None;
        }
        let mut hits = Vec::with_capacity(n);
        let mut last_end = 0;
        for _ in 0..n {
            let (start, end) = (words.next()?, words.next()?);
            let ok = start < end
                && start >= last_end
                && end <= text.len()
                && text.is_char_boundary(start)
                && text.is_char_boundary(end);
            if !ok {
                return None;
            }
            last_end = end;
            hits.push(start..end);
        }
        out.push(hits);
    }
    words.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_bad_data() {
        let text = "We set targets. Scope 3 emissions fell.";
        let ranges = vec![vec![3..14], vec![], vec![16..23, 24..33]];
        let data = encode(&ranges);
        assert_eq!(decode(&data, 3, text), Some(ranges.clone()));
        // Wrong rule count, truncated, trailing bytes, out of range, unsorted.
        assert_eq!(decode(&data, 2, text), None);
        assert_eq!(decode(&data[..data.len() - 4], 3, text), None);
        let mut long = data.clone();
        long.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode(&long, 3, text), None);
        let out_of_range = vec![std::iter::once(3..400).collect::<Vec<_>>()];
        assert_eq!(decode(&encode(&out_of_range), 1, text), None);
        assert_eq!(decode(&encode(&[vec![16..23, 3..14]]), 1, text), None);
        // Not on a character boundary.
        let inside_char = vec![std::iter::once(1..2).collect::<Vec<_>>()];
        assert_eq!(decode(&encode(&inside_char), 1, "é"), None);
        assert_eq!(decode(&[1, 2, 3], 1, text), None);
    }
}
