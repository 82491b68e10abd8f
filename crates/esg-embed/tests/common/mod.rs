//! Where the integration tests find the model folder and the shared corpus.
//!
//! * Model: `ESG_MODEL_DIR`, else the folder `scripts/fetch-model.sh`
//!   installs by default, `${ESG_DATA_DIR:-$HOME/.local/share/esg-scoring-api}/models/all-MiniLM-L6-v2`.
//! * Corpus: `ESG_CORPUS_DIR`, else `../shared/corpus` beside the checkout.
//!
//! When one is absent the test prints `SKIP ...` and passes, except under
//! `CI=true`, where a missing model or corpus fails the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// True under CI (`CI=true`), where missing test material is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Prints a SKIP notice and returns None, or panics under CI.
fn absent(what: &str, path: &Path, hint: &str) -> Option<PathBuf> {
    if under_ci() {
        panic!(
            "{what} not found at {} under CI=true ({hint})",
            path.display()
        );
    }
    eprintln!("SKIP: {what} not found at {} ({hint})", path.display());
    None
}

/// The all-MiniLM-L6-v2 folder, if installed.
pub fn model_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("ESG_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let data = std::env::var_os("ESG_DATA_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".local/share/esg-scoring-api"))
                })
                .unwrap_or_else(|| PathBuf::from(".esg-data"));
            data.join("models/all-MiniLM-L6-v2")
        }
    };
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        absent(
            "the all-MiniLM-L6-v2 model",
            &dir,
            "run scripts/fetch-model.sh [DIR] and set ESG_MODEL_DIR=DIR",
        )
    }
}

/// The shared corpus folder, if present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ESG_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    if dir.join("embeddings").is_dir() {
        Some(dir)
    } else {
        absent("the corpus", &dir, "set ESG_CORPUS_DIR")
    }
}

/// A BERT WordPiece `tokenizer.json` with a ten-word vocabulary: loads
/// like the real one, for the error tests that need a valid tokenizer but
/// no model.
pub const TINY_TOKENIZER: &str = r###"{
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [
    {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {
    "type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
    "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
    "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
  },
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
    "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "climate": 4, "risk": 5, "scope": 6, "emissions": 7, "##s": 8, "the": 9}}
}"###;

/// all-MiniLM-L6-v2's `config.json`, as shipped.
pub const MINILM_CONFIG: &str = r#"{
  "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
  "architectures": ["BertModel"],
  "attention_probs_dropout_prob": 0.1,
  "gradient_checkpointing": false,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 384,
  "initializer_range": 0.02,
  "intermediate_size": 1536,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 6,
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "transformers_version": "4.8.2",
  "type_vocab_size": 2,
  "use_cache": true,
  "vocab_size": 30522
}"#;
