//! Embedding chunks after their document is committed, and the embedder
//! behind `semantic=1` (DESIGN §4, issue 13).
//!
//! * [`backfill`] gives every chunk without a vector of the embedder's
//!   model its vector, in batches: read up to a batch of pending chunks,
//!   embed them, store them in one short transaction, repeat. Ingestion
//!   never waits for it and never holds the write lock while a model runs;
//!   a batch is the most a kill can lose, and the next run resumes with
//!   what is still missing. `esg ingest`, `esg embed` and the server's
//!   queue all use it.
//! * [`EmbedQueue`] is the server's bounded background queue: one worker
//!   thread (embedding is CPU-bound and blocking) that embeds uploaded
//!   documents after `POST /documents` has answered, and at start-up
//!   everything already stored without vectors. A full queue drops the
//!   job and marks a rescan, so nothing is lost: the worker's next scan of
//!   the store finds those chunks. `esg_embedding_queue_depth` counts the
//!   chunks waiting, `esg_chunks_embedded_total` those done.
//! * [`SemanticState`] is what `/score`, `/search` and `/trace` need for
//!   `semantic=1`: the embedder (or why there is none, for `/ready` and
//!   the 503 `embedder_unavailable`), the themes' query vectors (embedded
//!   once per process) and the company-years' stored vectors, kept while
//!   they are complete.

use crate::metrics::Metrics;
use esg_embed::{EmbedError, Embedder};
use esg_score::ChunkVectors;
use esg_store::{ChunkVector, StoreError, VectorStore};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Chunks per batch of [`backfill`]: one forward pass of the local model
/// (its default batch) and one short write transaction.
pub const BACKFILL_BATCH: usize = 32;

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The embedder failed (model, or embedding server).
    #[error("embedding failed ({code}): {0}", code = .0.code())]
    Embed(#[from] EmbedError),
    /// The store failed (or refused vectors of another dimension).
    #[error("storing vectors failed: {0}")]
    Store(#[from] StoreError),
}

/// Embeds every chunk without a vector of `embedder`'s model, of one
/// document or of the whole store, `batch` at a time, calling `progress`
/// with the number of chunks stored after each batch. Returns how many
/// chunks got a vector here.
///
/// # Errors
/// The first failing batch's error; the batches before it stay stored.
pub fn backfill(
    store: &dyn VectorStore,
    embedder: &dyn Embedder,
    doc_id: Option<&str>,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, BackfillError> {
    let model = embedder.model_id().to_string();
    let batch = batch.max(1);
    let mut done = 0;
    loop {
        let pending = store.chunks_without_vectors(&model, doc_id, batch)?;
        if pending.is_empty() {
            return Ok(done);
        }
        let texts: Vec<&str> = pending.iter().map(|p| p.text.as_str()).collect();
        let vectors = tracing::info_span!("embedding", chunks = texts.len(), model = %model)
            .in_scope(|| embedder.embed(&texts))?;
        let dim = vectors.first().map_or(embedder.dim(), Vec::len);
        let rows: Vec<ChunkVector> = pending
            .iter()
            .zip(&vectors)
            .map(|(p, v)| ChunkVector {
                chunk_id: p.chunk_id.clone(),
                vector: esg_embed::vector_to_le_bytes(v),
            })
            .collect();
        store.put_vectors(&model, dim, &rows)?;
        // Counted as processed even when another process stored some of
        // them first (insert-or-ignore): they no longer wait.
        done += rows.len();
        progress(rows.len());
    }
}

/// What the queue's worker does next.
#[derive(Debug)]
enum Job {
    /// Embed one document's chunks (`chunks` of them were counted in the
    /// queue depth when it was queued).
    Document { doc_id: String, chunks: u64 },
    /// Embed whatever in the store has no vector.
    Scan,
}

/// The server's bounded background embedding queue (see the module docs).
#[derive(Debug, Clone)]
pub struct EmbedQueue {
    tx: SyncSender<Job>,
    rescan: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl EmbedQueue {
    /// Starts the worker thread with room for `capacity` queued documents,
    /// and queues a scan of the store (documents stored before this
    /// process, or by another one, without vectors).
    pub fn start(
        store: Arc<dyn VectorStore>,
        embedder: Arc<dyn Embedder>,
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> std::io::Result<EmbedQueue> {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        let rescan = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            store,
            embedder,
            metrics: Arc::clone(&metrics),
            rescan: Arc::clone(&rescan),
        };
        std::thread::Builder::new()
            .name("esg-embed-queue".into())
            .spawn(move || worker.run(rx))?;
        let queue = EmbedQueue {
            tx,
            rescan,
            metrics,
        };
        queue.send(Job::Scan);
        Ok(queue)
    }

    /// Queues the chunks of a document just stored.
    pub fn enqueue(&self, doc_id: &str, chunks: u64) {
        self.metrics
            .embedding_queue_add(i64::try_from(chunks).unwrap_or(i64::MAX));
        self.send(Job::Document {
            doc_id: doc_id.to_string(),
            chunks,
        });
    }

    fn send(&self, job: Job) {
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // Nothing is lost: the chunks are in the store without a
                // vector, and the worker scans for those next.
                self.rescan.store(true, Ordering::SeqCst);
                tracing::warn!(
                    "embedding queue full; the document will be embedded by the next scan"
                );
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!(
                    "embedding worker has stopped; documents are stored without vectors (run `esg embed`)"
                );
            }
        }
    }
}

struct Worker {
    store: Arc<dyn VectorStore>,
    embedder: Arc<dyn Embedder>,
    metrics: Arc<Metrics>,
    rescan: Arc<AtomicBool>,
}

impl Worker {
    fn run(self, rx: Receiver<Job>) {
        // Ends when every sender (the server's state) is gone.
        while let Ok(job) = rx.recv() {
            self.job(job);
            if self.rescan.swap(false, Ordering::SeqCst) {
                self.job(Job::Scan);
            }
        }
    }

    fn job(&self, job: Job) {
        let model = self.embedder.model_id().to_string();
        let (doc_id, counted) = match &job {
            Job::Document { doc_id, chunks } => (Some(doc_id.as_str()), *chunks),
            Job::Scan => {
                match self.store.vector_counts(&model, None) {
                    Ok(c) => self
                        .metrics
                        .set_embedding_queue_depth(c.chunks.saturating_sub(c.embedded)),
                    Err(e) => tracing::warn!(error = %e, "cannot count chunks without vectors"),
                }
                (None, 0)
            }
        };
        let span =
            tracing::info_span!(parent: None, "embedding_backfill", doc_id = doc_id.unwrap_or("*"));
        let metrics = &self.metrics;
        let mut progress = |n: usize| {
            metrics.chunks_embedded(n as u64);
            metrics.embedding_queue_add(-(n as i64));
        };
        let result = span.in_scope(|| {
            backfill(
                &*self.store,
                &*self.embedder,
                doc_id,
                BACKFILL_BATCH,
                &mut progress,
            )
        });
        match result {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(chunks = n, model = %model, doc_id = doc_id.unwrap_or("*"), "chunks embedded");
                }
                // A document whose chunks another process embedded first.
                if let Job::Document { .. } = job {
                    let left = counted.saturating_sub(n as u64);
                    metrics.embedding_queue_add(-(left as i64));
                }
            }
            Err(e) => {
                metrics.embedding_error();
                tracing::error!(error = %e, doc_id = doc_id.unwrap_or("*"), "embedding failed; the chunks stay without vectors until the next scan or `esg embed`");
            }
        }
    }
}

/// Why `semantic=1` cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedderStatus {
    /// An embedder is loaded.
    Ready,
    /// None was configured (`/ready`: `off`).
    Off,
    /// The configured one could not be loaded (a missing model file, a bad
    /// URL, ...): the message says what (`/ready`: `missing: ...`).
    Missing(String),
}

/// The embedder and the semantic data kept between requests.
pub struct SemanticState {
    embedder: Option<Arc<dyn Embedder>>,
    status: EmbedderStatus,
    queue: Option<EmbedQueue>,
    /// Query text → vector (theme queries and recent free-text queries).
    queries: Mutex<HashMap<String, Arc<Vec<f32>>>>,
    /// (company key, year) → (index id, vectors), kept only when every
    /// chunk of the index had a vector (vectors never change once stored).
    vectors: Mutex<HashMap<(String, i32), KeptVectors>>,
}

/// Bytes of company-year vectors kept (about 1.6 KB per chunk with
/// all-MiniLM-L6-v2: ~80,000 chunks); beyond it the kept sets are dropped
/// and read again from the store as needed.
const VECTOR_CACHE_BYTES: usize = 128 << 20;

/// Vectors kept for a company-year: the index id they were checked
/// against, and the vectors.
type KeptVectors = (u64, Arc<ChunkVectors>);

/// Free-text query vectors kept (theme queries are few and always kept).
const QUERY_CACHE_ENTRIES: usize = 1024;

impl std::fmt::Debug for SemanticState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticState")
            .field("model", &self.embedder.as_ref().map(|e| e.model_id()))
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl SemanticState {
    /// No embedder.
    pub fn off() -> Self {
        Self::with(None, EmbedderStatus::Off, None)
    }

    /// An embedder that could not be loaded.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::with(None, EmbedderStatus::Missing(message.into()), None)
    }

    /// A loaded embedder, with the background queue when given.
    pub fn ready(embedder: Arc<dyn Embedder>, queue: Option<EmbedQueue>) -> Self {
        Self::with(Some(embedder), EmbedderStatus::Ready, queue)
    }

    fn with(
        embedder: Option<Arc<dyn Embedder>>,
        status: EmbedderStatus,
        queue: Option<EmbedQueue>,
    ) -> Self {
        SemanticState {
            embedder,
            status,
            queue,
            queries: Mutex::new(HashMap::new()),
            vectors: Mutex::new(HashMap::new()),
        }
    }

    /// The embedder, when one is loaded.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// Whether an embedder is loaded, and why not.
    pub fn status(&self) -> &EmbedderStatus {
        &self.status
    }

    /// The background queue, when running.
    pub fn queue(&self) -> Option<&EmbedQueue> {
        self.queue.as_ref()
    }

    /// The vector of `text` (computed once per process, then kept).
    ///
    /// # Errors
    /// The embedder's error; [`EmbedError::InvalidConfig`] when there is no
    /// embedder.
    pub fn query_vector(&self, text: &str) -> Result<Arc<Vec<f32>>, EmbedError> {
        if let Some(v) = lock(&self.queries).get(text) {
            return Ok(Arc::clone(v));
        }
        let embedder = self
            .embedder
            .as_ref()
            .ok_or_else(|| EmbedError::InvalidConfig("no embedder is loaded".into()))?;
        let v = tracing::info_span!("embedding", texts = 1, model = %embedder.model_id())
            .in_scope(|| embedder.embed(&[text]))?
            .pop()
            .ok_or_else(|| EmbedError::Inference("no vector returned".into()))?;
        let v = Arc::new(v);
        let mut q = lock(&self.queries);
        if q.len() >= QUERY_CACHE_ENTRIES {
            q.clear();
        }
        q.insert(text.to_string(), Arc::clone(&v));
        Ok(v)
    }

    /// The stored vectors of a company-year whose index (`index_id`) has
    /// `chunk_ids`: kept from an earlier request when that one found every
    /// chunk embedded, else read from the store (and kept if complete now).
    ///
    /// # Errors
    /// The store's error, or vectors that do not decode.
    pub fn chunk_vectors<'c>(
        &self,
        store: &dyn VectorStore,
        company: &str,
        company_key: &str,
        year: i32,
        index_id: u64,
        chunk_ids: impl Iterator<Item = &'c str>,
    ) -> Result<Arc<ChunkVectors>, String> {
        let Some(embedder) = &self.embedder else {
            return Err("no embedder is loaded".into());
        };
        let key = (company_key.to_string(), year);
        if let Some((id, v)) = lock(&self.vectors).get(&key)
            && *id == index_id
        {
            return Ok(Arc::clone(v));
        }
        let vectors = Arc::new(load_vectors(store, &**embedder, company, &[year])?);
        let complete = chunk_ids.into_iter().all(|id| vectors.contains(id));
        if complete {
            let mut kept = lock(&self.vectors);
            let held: usize = kept.values().map(|(_, v)| v.heap_bytes()).sum();
            if held + vectors.heap_bytes() > VECTOR_CACHE_BYTES {
                kept.clear();
            }
            kept.insert(key, (index_id, Arc::clone(&vectors)));
        }
        Ok(vectors)
    }
}

/// The stored vectors of `embedder`'s model on a company's chunks of
/// `years`, decoded (f32 little-endian) for hybrid retrieval.
///
/// # Errors
/// A store error, or a stored vector that does not decode, as a message.
pub fn load_vectors(
    store: &dyn VectorStore,
    embedder: &dyn Embedder,
    company: &str,
    years: &[i32],
) -> Result<ChunkVectors, String> {
    let model = embedder.model_id();
    let unreadable = |e: StoreError| format!("cannot read the stored vectors: {e}");
    let mut decoded = Vec::new();
    for &year in years {
        for r in store.vectors(model, company, year).map_err(unreadable)? {
            let v = esg_embed::vector_from_le_bytes(&r.vector)
                .map_err(|e| format!("stored vector of chunk {}: {e}", r.chunk_id))?;
            decoded.push((r.chunk_id, v));
        }
    }
    let dim = store
        .vector_dim(model)
        .map_err(unreadable)?
        .unwrap_or(embedder.dim().max(1));
    ChunkVectors::new(model, dim, decoded).map_err(|e| format!("stored vectors: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
