//! Sentence embeddings for the ESG Scoring API's semantic retrieval
//! (DESIGN §4): one vector per chunk or query, compared by cosine.
//!
//! Two backends implement the [`Embedder`] trait:
//!
//! * [`local`] — [`LocalEmbedder`]: sentence-transformers
//!   `all-MiniLM-L6-v2` (BERT, 6 layers, 384 dimensions) run in process
//!   with candle from a local model folder (`model.safetensors`,
//!   `tokenizer.json`, `config.json`; `scripts/fetch-model.sh` installs
//!   it). Mean pooling over the attention mask, L2 normalisation, inputs
//!   truncated to 256 tokens including `[CLS]` and `[SEP]`: the same
//!   vectors as sentence-transformers (cosine ≥ 0.999, `tests/parity.rs`).
//! * [`openai`] — [`OpenAiEmbedder`]: any server speaking the
//!   OpenAI `/v1/embeddings` protocol (text-embeddings-inference, Ollama,
//!   vLLM, OpenAI), with batching, a per-request timeout, bounded retries
//!   and response validation.
//!
//! Helpers: [`vector_to_le_bytes`] / [`vector_from_le_bytes`] (f32
//! little-endian, the form the store keeps) and [`cosine`].
//!
//! Errors are one [`EmbedError`] with a stable snake_case
//! [`code`](EmbedError::code).
//!
//! This crate knows nothing of the store or the scorer; they use it.

#![deny(missing_docs)]

pub mod error;
pub mod local;
pub mod openai;
pub mod vector;

pub use error::EmbedError;
pub use local::{LocalConfig, LocalEmbedder, MINILM_DIM, MINILM_MAX_TOKENS, MINILM_MODEL_ID};
pub use openai::{OpenAiConfig, OpenAiEmbedder};
pub use vector::{cosine, vector_from_le_bytes, vector_to_le_bytes};

/// Turns texts into fixed-size vectors.
///
/// Implementations are shareable across threads. `embed` returns one vector
/// per input text, in input order, each of length [`dim`](Embedder::dim);
/// an empty input gives an empty output without doing any work.
pub trait Embedder: Send + Sync {
    /// The model's identifier, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    /// Stored next to each vector so vectors of different models are never
    /// compared.
    fn model_id(&self) -> &str;

    /// The length of every vector this embedder returns.
    fn dim(&self) -> usize;

    /// Embeds `texts`, one vector per text, in the same order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}
