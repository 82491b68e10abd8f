//! The model folder: which files must be there, and checking `config.json`
//! against the architecture this embedder implements.

use crate::EmbedError;
use candle_transformers::models::bert;
use std::path::{Path, PathBuf};

/// The weights file.
pub(crate) const WEIGHTS: &str = "model.safetensors";
/// The tokenizer (Hugging Face `tokenizers` JSON).
pub(crate) const TOKENIZER: &str = "tokenizer.json";
/// The BERT configuration.
pub(crate) const CONFIG: &str = "config.json";

/// Paths of the three files the local embedder reads.
#[derive(Debug, Clone)]
pub(crate) struct ModelFiles {
    pub(crate) weights: PathBuf,
    pub(crate) tokenizer: PathBuf,
    pub(crate) config: PathBuf,
}

impl ModelFiles {
    /// Checks that `dir` is a folder holding the three files; the error
    /// names the first missing path (the folder itself when it is absent).
    pub(crate) fn locate(dir: &Path) -> Result<ModelFiles, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::ModelFileMissing {
                path: dir.to_path_buf(),
            });
        }
        let files = ModelFiles {
            weights: dir.join(WEIGHTS),
            tokenizer: dir.join(TOKENIZER),
            config: dir.join(CONFIG),
        };
        for path in [&files.config, &files.tokenizer, &files.weights] {
            if !path.is_file() {
                return Err(EmbedError::ModelFileMissing { path: path.clone() });
            }
        }
        Ok(files)
    }
}

/// What `config.json` must say for the model to be all-MiniLM-L6-v2:
/// (field, expected value).
const EXPECTED: &[(&str, usize)] = &[
    ("hidden_size", 384),
    ("num_hidden_layers", 6),
    ("num_attention_heads", 12),
    ("intermediate_size", 1536),
    ("vocab_size", 30522),
];

/// Reads `config.json`, checks it describes all-MiniLM-L6-v2 (a BERT with
/// the sizes in [`EXPECTED`], positions for at least `max_tokens` tokens)
/// and returns candle's BERT configuration.
pub(crate) fn read_config(path: &Path, max_tokens: usize) -> Result<bert::Config, EmbedError> {
    let invalid = |reason: String| EmbedError::ModelFileInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if let Some(model_type) = value.get("model_type").and_then(|v| v.as_str())
        && model_type != "bert"
    {
        return Err(EmbedError::ConfigMismatch {
            path: path.to_path_buf(),
            field: "model_type",
            expected: "\"bert\"".into(),
            found: format!("{model_type:?}"),
        });
    }
    for (field, expected) in EXPECTED {
        let found = value.get(*field);
        if found.and_then(|v| v.as_u64()) != Some(*expected as u64) {
            return Err(EmbedError::ConfigMismatch {
                path: path.to_path_buf(),
                field,
                expected: expected.to_string(),
                found: found.map_or_else(|| "absent".to_string(), |v| v.to_string()),
            });
        }
    }
    let config: bert::Config =
        serde_json::from_value(value).map_err(|e| invalid(format!("not a BERT config: {e}")))?;
    if config.max_position_embeddings < max_tokens {
        return Err(EmbedError::ConfigMismatch {
            path: path.to_path_buf(),
            field: "max_position_embeddings",
            expected: format!(">= {max_tokens}"),
            found: config.max_position_embeddings.to_string(),
        });
    }
    Ok(config)
}
