//! Parity with sentence-transformers: the local embedder, with the real
//! all-MiniLM-L6-v2 weights, against the 57 reference vectors in
//! `$ESG_CORPUS_DIR/embeddings/all-MiniLM-L6-v2.reference.jsonl` (computed
//! by sentence-transformers 6.3.0 on CPU from the same model files).
//!
//! Needs the model (`ESG_MODEL_DIR`, see tests/common) and the corpus;
//! prints `SKIP` and passes without them, except under `CI=true`.

mod common;

use esg_embed::{Embedder, LocalConfig, LocalEmbedder, MINILM_DIM, MINILM_MAX_TOKENS, cosine};

struct Reference {
    text: String,
    embedding: Vec<f32>,
}

fn references() -> Option<Vec<Reference>> {
    let corpus = common::corpus_dir()?;
    let path = corpus.join("embeddings/all-MiniLM-L6-v2.reference.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let refs: Vec<Reference> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            Reference {
                text: v["text"].as_str().expect("text").to_string(),
                embedding: v["embedding"]
                    .as_array()
                    .expect("embedding")
                    .iter()
                    .map(|x| x.as_f64().expect("a number") as f32)
                    .collect(),
            }
        })
        .collect();
    assert_eq!(refs.len(), 57, "the reference file has 57 texts");
    Some(refs)
}

fn embedder() -> Option<LocalEmbedder> {
    let dir = common::model_dir()?;
    Some(LocalEmbedder::load(&LocalConfig::new(dir)).expect("the model folder loads"))
}

/// Every reference text, batched in one call and one at a time, gives a
/// vector with cosine >= 0.999 to sentence-transformers'.
#[test]
fn matches_sentence_transformers_batched_and_one_at_a_time() {
    let (Some(refs), Some(embedder)) = (references(), embedder()) else {
        return;
    };
    assert_eq!(
        embedder.model_id(),
        "sentence-transformers/all-MiniLM-L6-v2"
    );
    assert_eq!(embedder.dim(), MINILM_DIM);
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    // The edge cases the reference file promises are really in it.
    assert!(texts.contains(&""), "the empty string is a reference text");
    assert!(
        texts
            .iter()
            .any(|t| embedder.token_count(t).unwrap() == MINILM_MAX_TOKENS),
        "a text is truncated to {MINILM_MAX_TOKENS} tokens"
    );

    let batched = embedder.embed(&texts).expect("batched embedding");
    assert_eq!(batched.len(), texts.len());
    let mut worst = (f32::MAX, String::new(), "");
    let mut max_abs_diff = 0.0_f32;
    for (how, vectors) in [
        ("batched", batched),
        (
            "single",
            texts
                .iter()
                .map(|t| embedder.embed(&[t]).expect("single embedding").remove(0))
                .collect(),
        ),
    ] {
        for (r, v) in refs.iter().zip(&vectors) {
            assert_eq!(v.len(), MINILM_DIM);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                (norm - 1.0).abs() < 1e-4,
                "{how}: norm {norm} for {:?}",
                r.text
            );
            let c = cosine(v, &r.embedding);
            for (a, b) in v.iter().zip(&r.embedding) {
                max_abs_diff = max_abs_diff.max((a - b).abs());
            }
            assert!(
                c >= 0.999,
                "{how}: cosine {c} < 0.999 for {:?}",
                r.text.chars().take(80).collect::<String>()
            );
            if c < worst.0 {
                worst = (c, r.text.chars().take(60).collect(), how);
            }
        }
    }
    println!(
        "parity: {} texts x (batched, single), min cosine {:.7} (1 - min = {:.1e}; {} {:?}), max |component difference| {:.1e}",
        refs.len(),
        worst.0,
        1.0 - worst.0,
        worst.2,
        worst.1,
        max_abs_diff
    );
}

/// Batching sorts by length and pads; the answer must not depend on it:
/// input order is restored, duplicates agree, and each vector equals the
/// one computed alone.
#[test]
fn batching_restores_order_and_does_not_change_vectors() {
    let Some(embedder) = embedder() else {
        return;
    };
    let long = "Scope 3 emissions from purchased goods and services are estimated with spend-based factors. "
        .repeat(40);
    let texts = [
        "climate risk",
        long.as_str(),
        "",
        "The Board oversees climate-related risks and opportunities.",
        "climate risk",
        "Réduction des émissions de gaz à effet de serre de 42 % d’ici 2030.",
    ];
    let together = embedder.embed(&texts).unwrap();
    assert_eq!(together.len(), texts.len());
    assert_eq!(together[0], together[4], "the same text twice");
    for (t, v) in texts.iter().zip(&together) {
        let alone = embedder.embed(&[t]).unwrap().remove(0);
        let c = cosine(v, &alone);
        assert!(c > 0.99999, "batched vs alone cosine {c} for {t:?}");
    }
    // Different texts really are different vectors (order restored, not
    // one vector copied around).
    assert!(cosine(&together[0], &together[3]) < 0.95);
    // Small batches give the same vectors as one large batch.
    let small = LocalEmbedder::load(&LocalConfig {
        batch_size: 2,
        threads: Some(1),
        ..LocalConfig::new(common::model_dir().unwrap())
    })
    .unwrap();
    assert_eq!(small.threads(), 1);
    for (a, b) in small.embed(&texts).unwrap().iter().zip(&together) {
        assert!(cosine(a, b) > 0.99999);
    }
    assert!(embedder.embed(&[]).unwrap().is_empty());
}
