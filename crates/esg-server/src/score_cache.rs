//! The in-memory cache of [`CompanyIndex`]es behind `/score`, `/trace` and
//! `/search`.
//!
//! A [`CompanyIndex`] holds everything about a company-year that does not
//! depend on the request (the BM25 index, each theme's top-k, every rule's
//! matches on every retrieved chunk; see `esg_score::index`), so a request
//! that finds one pays only for what it asks: picking the top-k, the stage
//! logic and the response. Measured with `bench/score_throughput.sh`.
//!
//! **Keys and freshness.** An entry is keyed by (company key, year) and
//! remembers the ids of the documents it was built from and the rubric's
//! SHA-256. Stored documents never change (a document is its bytes'
//! SHA-256, and nothing is ever updated or deleted), so a company-year's
//! chunks are exactly determined by that set of ids. Every request reads
//! the company's documents from the store (one indexed query, which it
//! needs anyway for the file names) and uses the entry only when the ids
//! and the rubric are the same; otherwise it rebuilds the index from the
//! store. So a new ingest, by this process, another `esg` process or
//! another replica sharing the database, is seen by the next request, and
//! a score is never served from stale chunks.
//!
//! **Answers.** A `/score` body is a function of the index (documents and
//! rubric) and of the request (`k`, themes, scoring month, view), so the
//! serialised body is kept too, keyed by [`CompanyIndex::id`] and those
//! ([`ResponseKey`]): a repeated request costs the store lookups that prove
//! the index current, and no scoring or serialisation (which a profile
//! showed to be most of a warm request: building the sorted JSON tree of
//! an 80 KB body). A replaced index's answers are never found again.
//! `esg_cache_hits_total{cache="score_response"}` counts them.
//!
//! **Bounds.** Entries are weighed by [`CompanyIndex::heap_bytes`] and kept
//! within `--cache-mb` (three quarters for indexes, a quarter for answers) by quick_cache (S3-FIFO eviction, a maintained crate
//! made for exactly this: concurrent, weight-bounded). An index's memo
//! tables fill in as requests retrieve new chunks, so an entry is
//! re-inserted with its new weight once it has grown by an eighth
//! ([`ScoreCache::reweigh`]); the weight a cache holds is at most that far
//! behind. `--cache-mb 0` turns the cache off: every request builds its
//! index (the same answers, slower). `esg_cache_bytes`,
//! `esg_cache_hits_total` and `esg_cache_misses_total` show it at work.

use esg_score::CompanyIndex;
use std::sync::Arc;

type Key = (String, i32);

/// One cached index and what it was built from.
#[derive(Debug)]
struct Entry {
    doc_ids: Vec<String>,
    rubric_sha256: String,
    index: Arc<CompanyIndex>,
    /// The weight the cache holds for this entry (fixed while it is in).
    weight: u64,
}

#[derive(Debug, Clone)]
struct ByWeight;

impl quick_cache::Weighter<Key, Arc<Entry>> for ByWeight {
    fn weight(&self, _key: &Key, val: &Arc<Entry>) -> u64 {
        val.weight
    }
}

/// What a `/score` body depends on besides the index: the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseKey {
    /// [`CompanyIndex::id`] of the index it was scored on.
    pub index: u64,
    /// Chunks retrieved per theme.
    pub k: usize,
    /// Themes asked for (`None`: all).
    pub themes: Option<Vec<String>>,
    /// Scoring month (year, month).
    pub as_of: (i32, u32),
    /// `view=summary`.
    pub summary: bool,
    /// Hybrid retrieval: the [`esg_score::ChunkVectors::id`] of the
    /// vectors used, the fusion's name and the bits of its alpha
    /// (`u64::MAX` for none); `None` for BM25.
    pub retrieval: Option<(u64, &'static str, u64)>,
}

#[derive(Debug, Clone)]
struct ByLen;

impl quick_cache::Weighter<ResponseKey, bytes::Bytes> for ByLen {
    fn weight(&self, _key: &ResponseKey, val: &bytes::Bytes) -> u64 {
        val.len() as u64 + 128
    }
}

/// Company-year indexes kept between requests (see the module documentation).
pub struct ScoreCache {
    cache: Option<quick_cache::sync::Cache<Key, Arc<Entry>, ByWeight>>,
    responses: Option<quick_cache::sync::Cache<ResponseKey, bytes::Bytes, ByLen>>,
    capacity: u64,
}

impl std::fmt::Debug for ScoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreCache")
            .field("capacity", &self.capacity)
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// Whether [`ScoreCache::get_or_build`] found the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Cached and built from the same documents and rubric.
    Hit,
    /// Built for this request (absent, stale, or the cache is off).
    Miss,
}

impl ScoreCache {
    /// A cache holding at most `capacity_bytes` of indexes; 0 turns it off.
    pub fn new(capacity_bytes: u64) -> Self {
        // Three quarters for indexes, a quarter for serialised answers.
        let for_indexes = capacity_bytes - capacity_bytes / 4;
        let cache = (capacity_bytes > 0).then(|| {
            // ~1 MiB per typical company-year.
            let items = (for_indexes / (1 << 20)).clamp(16, 100_000) as usize;
            quick_cache::sync::Cache::with_weighter(items, for_indexes, ByWeight)
        });
        let responses = (capacity_bytes / 4 > 0).then(|| {
            // ~80 KB per answer.
            let items = (capacity_bytes / 4 / 80_000).clamp(16, 100_000) as usize;
            quick_cache::sync::Cache::with_weighter(items, capacity_bytes / 4, ByLen)
        });
        ScoreCache {
            cache,
            responses,
            capacity: capacity_bytes,
        }
    }

    /// The index of `company_key`'s `year` built from exactly `doc_ids`
    /// (sorted) with the rubric `rubric_sha256`: the cached one, or a new
    /// one from `build`, which is then cached.
    ///
    /// # Errors
    /// Whatever `build` returns; nothing is cached then.
    pub fn get_or_build<E>(
        &self,
        company_key: &str,
        year: i32,
        doc_ids: &[String],
        rubric_sha256: &str,
        build: impl FnOnce() -> Result<CompanyIndex, E>,
    ) -> Result<(Arc<CompanyIndex>, Lookup), E> {
        let key = (company_key.to_string(), year);
        if let Some(cache) = &self.cache
            && let Some(e) = cache.get(&key)
            && e.doc_ids == doc_ids
            && e.rubric_sha256 == rubric_sha256
        {
            return Ok((Arc::clone(&e.index), Lookup::Hit));
        }
        let index = Arc::new(build()?);
        if let Some(cache) = &self.cache {
            cache.insert(
                key,
                Arc::new(Entry {
                    doc_ids: doc_ids.to_vec(),
                    rubric_sha256: rubric_sha256.to_string(),
                    weight: index.heap_bytes() as u64,
                    index: Arc::clone(&index),
                }),
            );
        }
        Ok((index, Lookup::Miss))
    }

    /// Re-weighs the entry of `company_key`'s `year` when it still holds
    /// `index` and its memo tables have grown by more than an eighth since
    /// it was weighed (a request filled them in).
    pub fn reweigh(&self, company_key: &str, year: i32, index: &Arc<CompanyIndex>) {
        let Some(cache) = &self.cache else { return };
        let key = (company_key.to_string(), year);
        let Some(e) = cache.peek(&key) else { return };
        let now = index.heap_bytes() as u64;
        if !Arc::ptr_eq(&e.index, index) || now <= e.weight + e.weight / 8 {
            return;
        }
        cache.insert(
            key,
            Arc::new(Entry {
                doc_ids: e.doc_ids.clone(),
                rubric_sha256: e.rubric_sha256.clone(),
                index: Arc::clone(index),
                weight: now,
            }),
        );
    }

    /// The `/score` body kept for `key`, if any.
    pub fn response(&self, key: &ResponseKey) -> Option<bytes::Bytes> {
        self.responses.as_ref()?.get(key)
    }

    /// Keeps a `/score` body for `key` (an index's answers are never looked
    /// up once the index is replaced, and age out by weight).
    pub fn keep_response(&self, key: ResponseKey, body: bytes::Bytes) {
        if let Some(r) = &self.responses {
            r.insert(key, body);
        }
    }

    /// Bytes the cached entries weigh (indexes and answers).
    pub fn bytes(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
            + self.responses.as_ref().map_or(0, |c| c.weight())
    }

    /// The bound given at start (`--cache-mb`), in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    /// `true` when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Criterion matches as the store returns them, for
/// [`CompanyIndex::load_matches`](esg_score::CompanyIndex::load_matches)
/// (the two crates do not know each other's types).
pub fn matches_from_store(
    rows: Vec<esg_store::RuleMatches>,
) -> impl Iterator<Item = esg_score::StoredMatches> {
    rows.into_iter().map(|m| esg_score::StoredMatches {
        chunk_id: m.chunk_id,
        theme: m.theme,
        data: m.data,
    })
}

/// The matches an index computed since the last call
/// ([`CompanyIndex::take_new_matches`](esg_score::CompanyIndex::take_new_matches)),
/// as the store keeps them.
pub fn new_matches_for_store(
    index: &esg_score::CompanyIndex,
    rubric: &esg_score::Rubric,
) -> Vec<esg_store::RuleMatches> {
    index
        .take_new_matches(rubric)
        .into_iter()
        .map(|m| esg_store::RuleMatches {
            chunk_id: m.chunk_id,
            theme: m.theme,
            data: m.data,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use esg_score::{Rubric, ScoringChunk};

    fn index(rubric: &Rubric, text: &str) -> CompanyIndex {
        let chunk = esg_core::Chunk {
            chunk_id: esg_core::sha256_hex(text),
            page: 1,
            seq: 0,
            char_start: 0,
            char_end: text.chars().count() as u32,
            text: text.into(),
            sha256: esg_core::sha256_hex(text),
            words: text.split_whitespace().count() as u32,
        };
        CompanyIndex::new(
            rubric,
            vec![ScoringChunk::from_stored("d".into(), 2023, chunk)],
            2023,
        )
        .unwrap()
    }

    #[test]
    fn hits_only_for_the_same_documents_and_rubric() {
        let r = Rubric::builtin();
        let cache = ScoreCache::new(64 << 20);
        let ids = vec!["a".to_string()];
        let build = || Ok::<_, ()>(index(&r, "We report Scope 1 emissions."));
        let (first, l1) = cache.get_or_build("acme", 2023, &ids, "r", build).unwrap();
        assert_eq!(l1, Lookup::Miss);
        let (again, l2) = cache.get_or_build("acme", 2023, &ids, "r", build).unwrap();
        assert_eq!(l2, Lookup::Hit);
        assert!(Arc::ptr_eq(&first, &again));
        assert!(cache.bytes() >= first.heap_bytes() as u64);
        // Another document set, rubric, year or company is a miss.
        let more = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            cache
                .get_or_build("acme", 2023, &more, "r", build)
                .unwrap()
                .1,
            Lookup::Miss
        );
        assert_eq!(
            cache
                .get_or_build("acme", 2023, &more, "r2", build)
                .unwrap()
                .1,
            Lookup::Miss
        );
        assert_eq!(
            cache
                .get_or_build("acme", 2022, &ids, "r", build)
                .unwrap()
                .1,
            Lookup::Miss
        );
        assert_eq!(
            cache
                .get_or_build("other", 2023, &ids, "r", build)
                .unwrap()
                .1,
            Lookup::Miss
        );
        // The replaced entry is gone: the old set misses again.
        assert_eq!(
            cache
                .get_or_build("acme", 2023, &ids, "r", build)
                .unwrap()
                .1,
            Lookup::Miss
        );
        // A failed build caches nothing.
        let failed = cache.get_or_build("bad", 2023, &ids, "r", || Err::<CompanyIndex, _>("no"));
        assert_eq!(failed.unwrap_err(), "no");
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn off_when_zero_and_bounded_otherwise() {
        let r = Rubric::builtin();
        let off = ScoreCache::new(0);
        let ids = vec!["a".to_string()];
        let build = || Ok::<_, ()>(index(&r, "We report Scope 1 emissions."));
        for _ in 0..2 {
            assert_eq!(
                off.get_or_build("acme", 2023, &ids, "r", build).unwrap().1,
                Lookup::Miss
            );
        }
        assert_eq!((off.bytes(), off.len()), (0, 0));
        // A small cache never holds more than its bound.
        let one = index(&r, "x").heap_bytes() as u64;
        let small = ScoreCache::new(one * 4);
        for i in 0..50 {
            let text = format!("company {i} reports Scope 1 emissions");
            small
                .get_or_build(&format!("c{i}"), 2023, &ids, "r", || {
                    Ok::<_, ()>(index(&r, &text))
                })
                .unwrap();
            assert!(small.bytes() <= small.capacity(), "{}", small.bytes());
        }
        assert!(small.len() < 50);
    }

    #[test]
    fn reweigh_follows_the_memo() {
        let r = Rubric::builtin();
        let cache = ScoreCache::new(64 << 20);
        let ids = vec!["a".to_string()];
        let text = "We set targets to cut Scope 1 and 2 emissions 50% by 2030 from a 2019 baseline. \
                    The board oversees climate risk.";
        let (idx, _) = cache
            .get_or_build("acme", 2023, &ids, r.sha256(), || {
                Ok::<_, ()>(index(&r, text))
            })
            .unwrap();
        let before = cache.bytes();
        idx.score(&r, &esg_score::ScoreParams::new(2023, 2024, 1))
            .unwrap();
        assert!(idx.heap_bytes() as u64 > before);
        cache.reweigh("acme", 2023, &idx);
        assert_eq!(cache.bytes(), idx.heap_bytes() as u64);
    }
}
