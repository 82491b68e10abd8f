//! `esg embed`, and the embedder the other commands use for semantic
//! retrieval (`esg ingest` after storing, `esg search --semantic`,
//! `esg score --semantic`, `esg serve`).
//!
//! The embedder comes from [`EmbedderArgs`]: the local all-MiniLM-L6-v2
//! (default; model folder `--model-dir`, else
//! `<data-dir>/models/all-MiniLM-L6-v2`), an OpenAI-compatible server
//! (`--embedder openai --embedder-url URL`, key from
//! `ESG_EMBEDDER_API_KEY`, never printed), or none. The batching and
//! storing of vectors is [`esg_server::embedding::backfill`], shared with
//! the server's background queue.

use crate::cli::{EmbedArgs, EmbedderArgs, EmbedderKind, FusionArg};
use anyhow::Context;
use esg_embed::{EmbedError, Embedder, LocalConfig, LocalEmbedder, OpenAiConfig, OpenAiEmbedder};
use esg_server::config::EmbedderConfig;
use esg_server::embedding::{BACKFILL_BATCH, backfill};
use esg_store::Store;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Folder of the local model under the data directory.
pub const MODEL_SUBDIR: &str = "models/all-MiniLM-L6-v2";

/// The environment variable holding the embedding server's API key.
pub const API_KEY_ENV: &str = "ESG_EMBEDDER_API_KEY";

/// The model folder `args` point at.
pub fn model_dir(args: &EmbedderArgs, data_dir: &Path) -> PathBuf {
    args.model_dir
        .clone()
        .unwrap_or_else(|| data_dir.join(MODEL_SUBDIR))
}

/// The server's embedder configuration from `args` (nothing is loaded).
pub fn server_config(args: &EmbedderArgs, data_dir: &Path) -> EmbedderConfig {
    match args.embedder {
        EmbedderKind::None => EmbedderConfig::Off,
        EmbedderKind::Local => EmbedderConfig::Local(local_config(args, data_dir)),
        EmbedderKind::Openai => EmbedderConfig::OpenAi(openai_config(args)),
    }
}

fn local_config(args: &EmbedderArgs, data_dir: &Path) -> LocalConfig {
    let mut c = LocalConfig::new(model_dir(args, data_dir));
    c.threads = args.embed_threads.map(|t| t as usize);
    c
}

fn openai_config(args: &EmbedderArgs) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(
        args.embedder_url.clone().unwrap_or_default(),
        args.embedder_model.clone(),
    );
    c.api_key = std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty());
    c.timeout = std::time::Duration::from_secs(args.embedder_timeout_secs);
    c.max_retries = args.embedder_retries;
    c
}

/// Loads the embedder `args` name; `None` for `--embedder none`.
///
/// The OpenAI-compatible backend is held to the dimension of the vectors
/// `store` already has for its model, so a server answering with another
/// dimension is refused before anything is stored.
///
/// # Errors
/// The embedder's error (a missing model file named, a bad URL, ...).
pub fn open_embedder(
    args: &EmbedderArgs,
    data_dir: &Path,
    store: &dyn Store,
) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
    Ok(match args.embedder {
        EmbedderKind::None => None,
        EmbedderKind::Local => Some(Arc::new(LocalEmbedder::load(&local_config(
            args, data_dir,
        ))?)),
        EmbedderKind::Openai => {
            if args.embedder_url.is_none() {
                return Err(EmbedError::InvalidConfig(
                    "--embedder openai needs --embedder-url (or ESG_EMBEDDER_URL)".into(),
                ));
            }
            let mut c = openai_config(args);
            c.expected_dim = store.vector_dim(&c.model).ok().flatten();
            Some(Arc::new(OpenAiEmbedder::new(c)?))
        }
    })
}

/// The embedder for `--semantic`, or an error saying why there is none.
pub fn require_embedder(
    args: &EmbedderArgs,
    data_dir: &Path,
    store: &dyn Store,
) -> anyhow::Result<Arc<dyn Embedder>> {
    match open_embedder(args, data_dir, store) {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(crate::search::TargetError::NoEmbedder.into()),
        Err(e) => Err(anyhow::anyhow!(
            "semantic retrieval needs the embedder, which could not be loaded ({}): {e}",
            e.code()
        )),
    }
}

/// The embedder and fusion of `--semantic` (`None` for BM25).
///
/// # Errors
/// A bad `--fusion`/`--alpha`, or an embedder that cannot be loaded.
pub fn semantic(
    args: &crate::cli::RetrievalArgs,
    data_dir: &Path,
    store: &dyn Store,
) -> anyhow::Result<Option<(Arc<dyn Embedder>, esg_score::Fusion)>> {
    let fusion = fusion(args.fusion, args.alpha)?;
    if !args.semantic {
        return Ok(None);
    }
    Ok(Some((
        require_embedder(&args.embedder, data_dir, store)?,
        fusion,
    )))
}

/// The fusion of `--fusion` and `--alpha`.
pub fn fusion(fusion: FusionArg, alpha: Option<f64>) -> anyhow::Result<esg_score::Fusion> {
    let name = match fusion {
        FusionArg::Alpha => "alpha",
        FusionArg::Rrf => "rrf",
    };
    esg_score::Fusion::from_params(Some(name), alpha).map_err(|e| match e {
        esg_score::ScoreError::InvalidParam { field, message } => {
            anyhow::anyhow!("--{field} {message}")
        }
        other => anyhow::anyhow!("{other}"),
    })
}

/// The stored vectors of `embedder`'s model on a company's chunks of
/// `years`, for hybrid retrieval.
pub fn company_vectors(
    store: &dyn Store,
    embedder: &dyn Embedder,
    company: &str,
    years: &[i32],
) -> anyhow::Result<esg_score::ChunkVectors> {
    esg_server::embedding::load_vectors(store, embedder, company, years).map_err(anyhow::Error::msg)
}

/// The query vectors of `themes` (theme code → vector), one call.
pub fn theme_queries<'t>(
    embedder: &dyn Embedder,
    themes: impl Iterator<Item = &'t esg_score::Theme>,
) -> anyhow::Result<HashMap<String, Vec<f32>>> {
    let themes: Vec<&esg_score::Theme> = themes.collect();
    let texts: Vec<String> = themes
        .iter()
        .map(|t| esg_score::theme_query_text(t))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs).with_context(|| {
        format!(
            "cannot embed the theme queries with {}",
            embedder.model_id()
        )
    })?;
    Ok(themes.iter().map(|t| t.code.clone()).zip(vectors).collect())
}

/// What `esg embed --json` prints.
#[derive(Debug, Serialize)]
pub struct EmbedSummary {
    /// The model the vectors are of.
    pub model: String,
    /// Their dimension.
    pub dim: usize,
    /// Chunks given a vector by this run.
    pub embedded: usize,
    /// Chunks in scope (the store, or the company's documents).
    pub chunks: u64,
    /// Of those, chunks with a vector now.
    pub with_vectors: u64,
    /// Wall-clock seconds, 2 decimals.
    pub seconds: f64,
    /// Chunks per second, 1 decimal.
    pub chunks_per_second: f64,
}

/// Runs `esg embed`.
pub fn run(store: &dyn Store, data_dir: &Path, args: &EmbedArgs) -> anyhow::Result<ExitCode> {
    let embedder = match open_embedder(&args.embedder, data_dir, store) {
        Ok(Some(e)) => e,
        Ok(None) => anyhow::bail!("--embedder none: nothing to embed with"),
        Err(e) => {
            return Err(anyhow::anyhow!(e)).with_context(|| "cannot load the embedder".to_string());
        }
    };
    if let Some(text) = &args.text {
        let v = embedder
            .embed(&[text.as_str()])
            .context("cannot embed the text")?
            .pop()
            .unwrap_or_default();
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "model": embedder.model_id(), "dim": v.len(), "vector": v })
            );
        } else {
            let line: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            println!("{}", line.join(" "));
        }
        return Ok(ExitCode::SUCCESS);
    }

    let docs: Option<Vec<String>> = match &args.company {
        None => None,
        Some(name) => {
            let c = crate::search::resolve_company(store, name)?;
            Some(
                store
                    .documents(Some(&c.name))
                    .context("cannot list the company's documents")?
                    .into_iter()
                    .map(|d| d.doc_id)
                    .collect(),
            )
        }
    };
    let summary = embed_documents(store, &*embedder, docs.as_deref(), !args.json)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "{} chunk(s) embedded with {} in {:.1} s ({:.1} chunks/s); {} of {} chunk(s) have a vector",
            summary.embedded,
            summary.model,
            summary.seconds,
            summary.chunks_per_second,
            summary.with_vectors,
            summary.chunks
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Embeds the chunks without a vector of `docs` (or of the whole store),
/// with a progress bar on a terminal when `show_progress`.
///
/// # Errors
/// The first failing batch (the batches before it stay stored).
pub fn embed_documents(
    store: &dyn Store,
    embedder: &dyn Embedder,
    docs: Option<&[String]>,
    show_progress: bool,
) -> anyhow::Result<EmbedSummary> {
    let model = embedder.model_id().to_string();
    let started = Instant::now();
    let (scope_chunks, pending) = match docs {
        None => {
            let c = store.vector_counts(&model, None)?;
            (c.chunks, c.chunks.saturating_sub(c.embedded))
        }
        Some(ids) => {
            let mut total = 0u64;
            for id in ids {
                if let Some(d) = store.document(id)? {
                    total += u64::from(d.chunks);
                }
            }
            // Pending is counted as the batches go; the bar's length is
            // the document chunks (an upper bound).
            (total, total)
        }
    };
    let bar = progress_bar(pending, show_progress);
    let mut progress = |n: usize| bar.inc(n as u64);
    let mut embedded = 0;
    let result = match docs {
        None => {
            backfill(store, embedder, None, BACKFILL_BATCH, &mut progress).map(|n| embedded += n)
        }
        Some(ids) => ids.iter().try_for_each(|id| {
            backfill(store, embedder, Some(id), BACKFILL_BATCH, &mut progress)
                .map(|n| embedded += n)
        }),
    };
    bar.finish_and_clear();
    result.with_context(|| {
        format!("embedding stopped after {embedded} chunk(s); run `esg embed` again to resume")
    })?;
    let with_vectors = match docs {
        None => store.vector_counts(&model, None)?.embedded,
        Some(ids) => {
            let mut missing = 0u64;
            for id in ids {
                missing += store
                    .chunks_without_vectors(&model, Some(id), usize::MAX)?
                    .len() as u64;
            }
            scope_chunks.saturating_sub(missing)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(EmbedSummary {
        dim: store.vector_dim(&model)?.unwrap_or(embedder.dim()),
        model,
        embedded,
        chunks: scope_chunks,
        with_vectors,
        seconds: (seconds * 100.0).round() / 100.0,
        chunks_per_second: if seconds > 0.0 {
            (embedded as f64 / seconds * 10.0).round() / 10.0
        } else {
            0.0
        },
    })
}

fn progress_bar(len: u64, show: bool) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "embedding {bar:30} {pos}/{len} chunks ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
