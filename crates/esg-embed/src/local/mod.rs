//! The in-process embedder: sentence-transformers `all-MiniLM-L6-v2` run
//! with candle on the CPU.
//!
//! What it does, step by step, is what sentence-transformers does for this
//! model (`modules.json`: Transformer → Pooling(mean) → Normalize):
//!
//! 1. tokenise with the folder's `tokenizer.json` (BERT WordPiece,
//!    lower-casing), adding `[CLS]` and `[SEP]`, truncating to
//!    [`MINILM_MAX_TOKENS`] tokens in all (the file itself says 128 and pads
//!    to 128; both are overridden: the model card's `max_seq_length` is 256
//!    and padding is ours);
//! 2. sort the texts by token count, cut them into batches of
//!    [`LocalConfig::batch_size`], pad each batch to its longest text and
//!    run the 6-layer BERT with the attention mask (so padding changes
//!    nothing);
//! 3. average the last hidden states over the real tokens (mask-weighted
//!    mean), scale to unit L2 norm, and put the vectors back in input order.
//!
//! The empty string is `[CLS] [SEP]` and gets that sequence's vector, as in
//! sentence-transformers.
//!
//! The BERT encoder is our own (`local/bert.rs`): candle's arithmetic, with each
//! linear layer's weight kept transposed so the gemm crate does not repack
//! it on every product (see that module), the fused softmax, and no mask
//! when nothing is padded.
//!
//! The work runs in a rayon thread pool owned by the embedder
//! ([`LocalConfig::threads`], default: the available parallelism): the
//! batches of one call run in parallel on it. A call of at most
//! `SOLO_MAX_BYTES` of text (a query) runs on a one-thread pool instead.
//! Calls from several threads share those pools. One thing it does not govern: candle runs elementwise ops on
//! large tensors (≥ 64 Ki values) on a global pool of its own sized by the
//! `CANDLE_NUM_THREADS` environment variable (default: all physical cores),
//! read once; and candle splits each matrix product for
//! `RAYON_NUM_THREADS` threads, re-reading `/proc/cpuinfo` on every product
//! when that variable is unset. A process hosting the embedder should set
//! `CANDLE_NUM_THREADS=1` (those ops then run on the embedder's own
//! threads) and `RAYON_NUM_THREADS` to the embedder's thread count before
//! it starts any thread; `examples/embed_bench.rs` does both.
//!
//! # Speed
//!
//! Measured 2026-12-02 on the 2-core machine while other builds ran (load
//! average 3.7–3.9), the old encoder (candle's `BertModel`) and this one
//! alternating, 3 rounds each, 593 TCFD sentences in one call and 200
//! queries of 27.5 tokens one at a time, 2 threads (`embed_bench`):
//! query p50 16.8–21.5 ms → 11.1–14.2 ms, CPU per query 16.3–17.0 →
//! 11.5–13.0 ms, 50.5–53.4 → 57.4–62.5 sentences/s. Side by side with
//! sentence-transformers in one run: `bench/embed_throughput.sh`, README
//! bench notes. A query's time is its matrix products (~75 % of its CPU,
//! ~0.58 GFLOP, run near the kernel's peak when the machine is quiet) and
//! GELU's `erf` (~13 %). Running queries on the 2-thread pool instead gave
//! the same p50 and CPU time (3 alternating rounds, load ~4.8): under load
//! the second thread buys no time here, so queries stay on one thread and
//! leave the other to concurrent calls.
//!
//! # Determinism
//!
//! On one machine, the same text gives a bit-identical vector on every
//! call, from 1- and 2-thread embedders, and in other processes whatever
//! `RAYON_NUM_THREADS` (1 or 2) and [`LocalConfig::threads`] (1 or 2) are
//! (`tests/determinism.rs`): a query's vector does not depend on the
//! process or the thread count. What can change the low bits is padding: a
//! text embedded in a batch with longer texts may differ from the same
//! text alone (cosine > 0.99999, `tests/parity.rs`), so a stored chunk
//! vector depends slightly on which chunks shared its batch. A CPU with
//! other SIMD kernels (AVX2 instead of AVX-512, which gemm picks at run
//! time) may also give other low bits.

mod bert;
mod folder;

use crate::vector::l2_normalize;
use crate::{EmbedError, Embedder};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use std::fmt;
use std::path::PathBuf;
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// The model identifier the local embedder reports.
pub const MINILM_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The dimension of all-MiniLM-L6-v2's vectors.
pub const MINILM_DIM: usize = 384;
/// The longest input in tokens, `[CLS]` and `[SEP]` included
/// (sentence-transformers' `max_seq_length` for this model); longer texts
/// are truncated.
pub const MINILM_MAX_TOKENS: usize = 256;

/// Calls whose texts total at most this many bytes (~128 tokens of
/// English) run on one thread (see `embed`).
const SOLO_MAX_BYTES: usize = 512;

/// Where the model is and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// The model folder: `model.safetensors`, `tokenizer.json`,
    /// `config.json` (as installed by `scripts/fetch-model.sh`).
    pub model_dir: PathBuf,
    /// CPU threads for tokenisation and the forward pass. `None`: the
    /// available parallelism (`std::thread::available_parallelism`). See
    /// the module docs for `CANDLE_NUM_THREADS`.
    pub threads: Option<usize>,
    /// Texts per forward pass (default 32). Texts are sorted by length
    /// first, so a batch pads little.
    pub batch_size: usize,
}

impl LocalConfig {
    /// The default configuration for the model in `model_dir`.
    pub fn new(model_dir: impl Into<PathBuf>) -> LocalConfig {
        LocalConfig {
            model_dir: model_dir.into(),
            threads: None,
            batch_size: 32,
        }
    }
}

/// sentence-transformers `all-MiniLM-L6-v2`, in process.
///
/// Load once ([`LocalEmbedder::load`], ~0.2 s, ~100 MB of weights) and
/// share: [`Embedder::embed`] takes `&self`.
pub struct LocalEmbedder {
    model: bert::Bert,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
    /// One thread, for calls too small to gain from splitting (a query).
    solo: rayon::ThreadPool,
    threads: usize,
    batch_size: usize,
    model_dir: PathBuf,
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_id", &MINILM_MODEL_ID)
            .field("model_dir", &self.model_dir)
            .field("threads", &self.threads)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl LocalEmbedder {
    /// Loads the model folder.
    ///
    /// Errors: `model_file_missing` naming the folder or the first missing
    /// file; `model_file_invalid` naming a file that cannot be read or
    /// parsed (a damaged `model.safetensors`, weights that do not fit the
    /// configuration, a broken `tokenizer.json`); `model_config_mismatch`
    /// when `config.json` is not all-MiniLM-L6-v2's (naming the field and
    /// both values); `invalid_config` for a zero batch size or thread count.
    pub fn load(config: &LocalConfig) -> Result<LocalEmbedder, EmbedError> {
        if config.batch_size == 0 {
            return Err(EmbedError::InvalidConfig(
                "batch_size must be at least 1".into(),
            ));
        }
        let threads = match config.threads {
            Some(0) => {
                return Err(EmbedError::InvalidConfig(
                    "threads must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let files = folder::ModelFiles::locate(&config.model_dir)?;
        let bert_config = folder::read_config(&files.config, MINILM_MAX_TOKENS)?;
        let tokenizer = load_tokenizer(&files.tokenizer)?;

        let weights_invalid = |reason: String| EmbedError::ModelFileInvalid {
            path: files.weights.clone(),
            reason,
        };
        let bytes = std::fs::read(&files.weights).map_err(|e| weights_invalid(e.to_string()))?;
        let model = {
            // The slice-backed builder parses the safetensors header and
            // copies each tensor out as it is loaded: no mmap (no unsafe),
            // and the file's bytes are dropped once the model is built.
            let vb = VarBuilder::from_slice_safetensors(&bytes, DType::F32, &Device::Cpu)
                .map_err(|e| weights_invalid(format!("not a safetensors file: {e}")))?;
            bert::Bert::load(vb, &bert_config)
                .map_err(|e| weights_invalid(format!("weights do not fit config.json: {e}")))?
        };
        drop(bytes);

        let pool = |n: usize, name: &'static str| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(move |i| format!("{name}-{i}"))
                .build()
                .map_err(|e| EmbedError::InvalidConfig(format!("cannot start {n} threads: {e}")))
        };
        let solo = pool(1, "esg-embed-solo")?;
        let pool = pool(threads, "esg-embed")?;
        Ok(LocalEmbedder {
            model,
            tokenizer,
            pool,
            solo,
            threads,
            batch_size: config.batch_size,
            model_dir: config.model_dir.clone(),
        })
    }

    /// The number of CPU threads this embedder runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The number of tokens `text` is embedded as, `[CLS]` and `[SEP]`
    /// included, after truncation (so at most [`MINILM_MAX_TOKENS`]).
    pub fn token_count(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(self.encode(text)?.get_ids().len())
    }

    fn encode(&self, text: &str) -> Result<Encoding, EmbedError> {
        self.tokenizer
            .encode_fast(text, true)
            .map_err(|e| EmbedError::Inference(format!("tokenisation failed: {e}")))
    }

    /// One forward pass over `batch` (already tokenised, any lengths):
    /// pads to the longest, runs BERT with the attention mask, mean-pools
    /// over real tokens and L2-normalises.
    fn forward(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let rows = batch.len();
        let width = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = vec![0_u32; rows * width];
        let mut mask = vec![0_u32; rows * width];
        for (r, enc) in batch.iter().enumerate() {
            let n = enc.get_ids().len();
            ids[r * width..r * width + n].copy_from_slice(enc.get_ids());
            mask[r * width..r * width + n].copy_from_slice(enc.get_attention_mask());
        }
        let padded = mask.contains(&0);
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (rows, width), &Device::Cpu)?;
            let mask = Tensor::from_vec(mask, (rows, width), &Device::Cpu)?;
            // (rows, width, dim); without padding the mask changes nothing.
            let hidden = self.model.forward(&ids, padded.then_some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, width, 1)
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, dim)
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (rows, 1)
            summed.broadcast_div(&counts)?.to_vec2::<f32>()
        };
        let mut vectors = run().map_err(|e| EmbedError::Inference(e.to_string()))?;
        for v in &mut vectors {
            l2_normalize(v);
        }
        Ok(vectors)
    }
}

fn load_tokenizer(path: &std::path::Path) -> Result<Tokenizer, EmbedError> {
    let invalid = |reason: String| EmbedError::ModelFileInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| invalid(e.to_string()))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MINILM_MAX_TOKENS,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| {
            invalid(format!(
                "cannot truncate to {MINILM_MAX_TOKENS} tokens: {e}"
            ))
        })?;
    tokenizer.with_padding(None);
    // A BERT tokenizer turns "" into exactly [CLS] [SEP]; anything else is
    // not the tokenizer this model was trained with.
    let empty = tokenizer
        .encode_fast("", true)
        .map_err(|e| invalid(format!("cannot encode the empty string: {e}")))?;
    if empty.get_tokens() != ["[CLS]", "[SEP]"] {
        return Err(invalid(format!(
            "expected a BERT tokenizer adding [CLS] and [SEP], the empty string encodes as {:?}",
            empty.get_tokens()
        )));
    }
    Ok(tokenizer)
}

impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        MINILM_MODEL_ID
    }

    fn dim(&self) -> usize {
        MINILM_DIM
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // A call of at most SOLO_MAX_BYTES of text (a query: ~27 tokens)
        // runs on one thread: splitting matrix products that small across
        // threads does not lower the latency on 2 shared cores (measured
        // before and after the transposed weights; see the module docs).
        let small = texts.len() <= self.batch_size
            && texts.iter().map(|t| t.len()).sum::<usize>() <= SOLO_MAX_BYTES;
        let pool = if small { &self.solo } else { &self.pool };
        pool.install(|| {
            let encodings = texts
                .par_iter()
                .map(|t| self.encode(t))
                .collect::<Result<Vec<_>, _>>()?;
            // Longest first: similar lengths share a batch (little padding),
            // and the costliest batch starts while the pool is fresh.
            let mut order: Vec<usize> = (0..texts.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
            // Batches run in parallel on the pool's threads (each thread
            // one batch at a time); inside a batch, candle's matrix
            // products split across whatever threads are idle. A single
            // batch (a query) gets all threads for its matrix products.
            let batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();
            let vectors = batches
                .par_iter()
                .map(|chunk| {
                    let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
                    self.forward(&batch)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = vec![Vec::new(); texts.len()];
            for (chunk, vectors) in batches.iter().zip(vectors) {
                for (&i, v) in chunk.iter().zip(vectors) {
                    out[i] = v;
                }
            }
            Ok(out)
        })
    }
}
