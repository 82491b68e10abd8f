//! A missing or broken model folder is a clear error naming the file.
//!
//! These tests build their folders in a temporary directory from fixtures
//! (a ten-word BERT tokenizer, all-MiniLM-L6-v2's config.json, hand-written
//! safetensors files), so they run without the real model; the last one
//! also cuts the real weights short when the model is installed.

mod common;

use esg_embed::{EmbedError, LocalConfig, LocalEmbedder};
use std::path::Path;

fn load(dir: &Path) -> EmbedError {
    LocalEmbedder::load(&LocalConfig::new(dir)).expect_err("the folder must not load")
}

/// A safetensors file: 8-byte little-endian header length, JSON header,
/// tensor bytes.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A folder with config.json and tokenizer.json (valid) and `weights` as
/// model.safetensors.
fn folder_with_weights(weights: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), common::MINILM_CONFIG).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), common::TINY_TOKENIZER).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), weights).unwrap();
    dir
}

#[test]
fn missing_folder_names_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("no-such-model");
    let err = load(&gone);
    assert_eq!(err.code(), "model_file_missing");
    assert!(
        err.to_string().contains(&gone.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("fetch-model.sh"), "{err}");
}

#[test]
fn each_missing_file_is_named() {
    for missing in ["config.json", "tokenizer.json", "model.safetensors"] {
        let dir = folder_with_weights(b"unused");
        std::fs::remove_file(dir.path().join(missing)).unwrap();
        let err = load(dir.path());
        assert_eq!(err.code(), "model_file_missing", "{missing}: {err}");
        let named = dir.path().join(missing).display().to_string();
        assert!(err.to_string().contains(&named), "{missing}: {err}");
    }
}

#[test]
fn corrupt_safetensors_is_a_clear_error() {
    for (what, bytes) in [
        ("garbage", b"this is not a safetensors file at all".to_vec()),
        ("empty", Vec::new()),
        ("bad header", safetensors("{not json", b"")),
        (
            "data shorter than the header says",
            safetensors(
                r#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[30522,384],"data_offsets":[0,46881792]}}"#,
                &[0; 64],
            ),
        ),
    ] {
        let dir = folder_with_weights(&bytes);
        let err = load(dir.path());
        assert_eq!(err.code(), "model_file_invalid", "{what}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.path().join("model.safetensors").display().to_string()),
            "{what}: {msg}"
        );
        assert!(msg.contains("not a safetensors file"), "{what}: {msg}");
    }
}

#[test]
fn weights_of_another_model_are_a_clear_error() {
    // A well-formed safetensors file without BERT's tensors.
    let bytes = safetensors(
        r#"{"classifier.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
        &[0; 16],
    );
    let dir = folder_with_weights(&bytes);
    let err = load(dir.path());
    assert_eq!(err.code(), "model_file_invalid", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("model.safetensors"), "{msg}");
    assert!(msg.contains("do not fit config.json"), "{msg}");
}

#[test]
fn config_with_wrong_hidden_size_is_a_mismatch_naming_both_sizes() {
    let dir = folder_with_weights(b"unused");
    let config = common::MINILM_CONFIG.replace(r#""hidden_size": 384"#, r#""hidden_size": 768"#);
    assert_ne!(config, common::MINILM_CONFIG);
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let err = load(dir.path());
    assert_eq!(err.code(), "model_config_mismatch", "{err}");
    let msg = err.to_string();
    for part in ["config.json", "hidden_size", "768", "384"] {
        assert!(msg.contains(part), "{part} in {msg}");
    }
}

#[test]
fn config_that_is_not_bert_or_not_json_is_rejected() {
    let dir = folder_with_weights(b"unused");
    let config =
        common::MINILM_CONFIG.replace(r#""model_type": "bert""#, r#""model_type": "gpt2""#);
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let err = load(dir.path());
    assert_eq!(err.code(), "model_config_mismatch", "{err}");
    assert!(err.to_string().contains("gpt2"), "{err}");

    std::fs::write(dir.path().join("config.json"), "{ truncated").unwrap();
    let err = load(dir.path());
    assert_eq!(err.code(), "model_file_invalid", "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn broken_tokenizer_is_named() {
    let dir = folder_with_weights(b"unused");
    std::fs::write(
        dir.path().join("tokenizer.json"),
        r#"{"version": "1.0", "model": 5}"#,
    )
    .unwrap();
    let err = load(dir.path());
    assert_eq!(err.code(), "model_file_invalid", "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn zero_batch_size_or_threads_is_invalid_config() {
    let dir = folder_with_weights(b"unused");
    for config in [
        LocalConfig {
            batch_size: 0,
            ..LocalConfig::new(dir.path())
        },
        LocalConfig {
            threads: Some(0),
            ..LocalConfig::new(dir.path())
        },
    ] {
        let err = LocalEmbedder::load(&config).unwrap_err();
        assert_eq!(err.code(), "invalid_config", "{err}");
    }
}

/// The real weights cut short (a partial download) are refused with the
/// file's name; needs the model.
#[test]
fn truncated_real_weights_are_refused() {
    let Some(model) = common::model_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model.join(f), dir.path().join(f)).unwrap();
    }
    let full = std::fs::read(model.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        &full[..full.len() / 2],
    )
    .unwrap();
    let err = load(dir.path());
    assert_eq!(err.code(), "model_file_invalid", "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}
