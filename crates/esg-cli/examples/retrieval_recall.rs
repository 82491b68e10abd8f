//! Retrieval quality of BM25, semantic and hybrid retrieval on the
//! TCFD-labelled sentences, for `bench/retrieval_recall.sh` (issue 13).
//!
//! ```text
//! cargo run --release -p esg-cli --example retrieval_recall -- \
//!     --labels ../shared/corpus/labels/tcfd_disclosures.csv --model DIR \
//!     [--threads N] [--alpha-steps N]
//! ```
//!
//! Corpus: every row of the CSV (`question,text,label`) is one passage, id
//! `s0000`.. in file order (593 rows; 56 rows repeat an earlier text, 50
//! texts carry more than one label: each row is kept, so a repeated text is
//! two passages). Queries: the distinct questions (11), each asked as
//! written, to BM25 and to the embedder alike. Relevant to a question: the
//! passages whose label is that question's label (34–77 of them).
//!
//! Every ranking comes from the product's own functions: BM25 is
//! [`Bm25Index::search`] (k1 1.2, b 0.75); semantic is the real
//! [`LocalEmbedder`] (all-MiniLM-L6-v2) with [`ChunkVectors::similarities`]
//! over all passages; hybrid is [`esg_score::fuse`] of the BM25 top-k with
//! those similarities, exactly as `esg_score::score_with` calls it, for
//! `Fusion::Alpha(0.0..=1.0)` in steps of 0.1 (`--alpha-steps 20`: 0.05;
//! [`DEFAULT_ALPHA`] is always one of them) and `Fusion::Rrf`.
//!
//! Measures, per query, then averaged over the queries (all in the table):
//!
//! * `recall@10`: relevant passages among the top 10, divided by
//!   `min(10, relevant count)`. Every question here has ≥ 34 relevant
//!   passages, so this is also precision@10; plain recall (divided by the
//!   relevant count) would be at most 10/34 and says nothing more.
//! * `hit@10`: queries with at least one relevant passage in the top 10
//!   (the measure of `../shared/notes/retrieval-and-evidence.md`).
//! * `R-precision`: relevant passages among the top R, divided by R, where
//!   R is the query's relevant count (fusion run with k = R): how the
//!   ranking does well past the first 10.
//!
//! Prints markdown tables on stdout (summary, then recall@10 per query).

use esg_embed::{Embedder, LocalConfig, LocalEmbedder};
use esg_score::{Bm25Index, Bm25Params, ChunkVectors, DEFAULT_ALPHA, Fusion, SearchHit, fuse};
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

const K: usize = 10;

/// A method: query, query vector and k in, its top k out.
type Ranker<'a> = dyn Fn(&Query, &[f32], usize) -> Vec<SearchHit> + 'a;

fn main() {
    // As in the `esg` binary and esg-embed's embed_bench: candle's own
    // elementwise pool off, matrix products split for the embedder's
    // thread count (see esg_embed::local).
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: first statement of main, no other thread exists yet.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    if let Err(e) = run() {
        eprintln!("retrieval_recall: {e}");
        std::process::exit(1);
    }
}

struct Query {
    label: String,
    question: String,
    relevant: HashSet<String>,
}

/// Per-query measures of one ranking method.
#[derive(Default, Clone)]
struct Scores {
    recall10: Vec<f64>,
    hit10: Vec<bool>,
    r_precision: Vec<f64>,
}

impl Scores {
    fn push(&mut self, q: &Query, top_k: &[SearchHit], top_r: &[SearchHit]) {
        let rel = |hits: &[SearchHit], n: usize| {
            hits.iter()
                .take(n)
                .filter(|h| q.relevant.contains(&h.chunk_id))
                .count()
        };
        let r = q.relevant.len();
        let found = rel(top_k, K);
        self.recall10.push(found as f64 / K.min(r) as f64);
        self.hit10.push(found > 0);
        self.r_precision.push(rel(top_r, r) as f64 / r as f64);
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut labels, mut model, mut threads) = (None, None, None);
    let mut steps = 10_u32;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--labels" => labels = Some(value()?),
            "--model" => model = Some(value()?),
            "--threads" => {
                threads = Some(
                    value()?
                        .parse::<usize>()
                        .map_err(|e| format!("--threads: {e}"))?,
                )
            }
            "--alpha-steps" => {
                steps = value()?
                    .parse::<u32>()
                    .map_err(|e| format!("--alpha-steps: {e}"))?
                    .max(1)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n =
            threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        // SAFETY: still single-threaded: no thread has been started yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    let labels = labels.ok_or("--labels CSV is required")?;
    let model = model.ok_or("--model DIR is required")?;

    // The corpus and the queries.
    let text = std::fs::read_to_string(&labels).map_err(|e| format!("{labels}: {e}"))?;
    let records = esg_score::parse_csv(&text).map_err(|e| format!("{labels}: {e}"))?;
    let header = records.first().ok_or("empty CSV")?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(format!("{labels}: no column {name}"))
    };
    let (qc, tc, lc) = (col("question")?, col("text")?, col("label")?);
    let mut passages: Vec<(String, String)> = Vec::new();
    let mut queries: BTreeMap<String, Query> = BTreeMap::new();
    for (i, r) in records[1..].iter().enumerate() {
        let id = format!("s{i:04}");
        let (question, label) = (r[qc].clone(), r[lc].clone());
        passages.push((id.clone(), r[tc].clone()));
        let q = queries.entry(label.clone()).or_insert_with(|| Query {
            label,
            question: question.clone(),
            relevant: HashSet::new(),
        });
        if q.question != question {
            return Err(format!("label {} has two questions", q.label));
        }
        q.relevant.insert(id);
    }
    let queries: Vec<Query> = queries.into_values().collect();
    let distinct_texts = passages.iter().map(|p| &p.1).collect::<HashSet<_>>().len();
    eprintln!(
        "corpus: {} passages ({} distinct texts), {} queries, relevant per query {}..{}",
        passages.len(),
        distinct_texts,
        queries.len(),
        queries.iter().map(|q| q.relevant.len()).min().unwrap_or(0),
        queries.iter().map(|q| q.relevant.len()).max().unwrap_or(0),
    );

    // Embeddings: the real model.
    let started = Instant::now();
    let embedder = LocalEmbedder::load(&LocalConfig {
        threads,
        ..LocalConfig::new(&model)
    })
    .map_err(|e| e.to_string())?;
    let texts: Vec<&str> = passages.iter().map(|p| p.1.as_str()).collect();
    let vectors = embedder.embed(&texts).map_err(|e| e.to_string())?;
    let qtexts: Vec<&str> = queries.iter().map(|q| q.question.as_str()).collect();
    let qvectors = embedder.embed(&qtexts).map_err(|e| e.to_string())?;
    eprintln!(
        "embedded {} passages and {} queries with {} ({} threads) in {:.1} s",
        texts.len(),
        qtexts.len(),
        embedder.model_id(),
        embedder.threads(),
        started.elapsed().as_secs_f64()
    );
    let chunk_vectors = ChunkVectors::new(
        embedder.model_id(),
        embedder.dim(),
        passages.iter().map(|p| p.0.clone()).zip(vectors),
    )
    .map_err(|e| e.to_string())?;
    let bm25 = Bm25Index::new(
        Bm25Params::default(),
        passages.iter().map(|(id, t)| (id.as_str(), t.as_str())),
    );

    // Every method's ranking of every query.
    let mut methods: Vec<(String, Scores)> = Vec::new();
    let mut add = |name: String, f: &Ranker| {
        let mut s = Scores::default();
        for (q, qv) in queries.iter().zip(&qvectors) {
            s.push(q, &f(q, qv, K), &f(q, qv, q.relevant.len()));
        }
        methods.push((name, s));
    };
    let semantic = |qv: &[f32]| {
        chunk_vectors
            .similarities(qv, passages.iter().map(|p| p.0.as_str()))
            .expect("query vector of the model's dimension")
    };
    add("BM25 alone (`Bm25Index::search`)".into(), &|q, _, k| {
        bm25.search(&q.question, k)
    });
    add(
        "semantic alone (cosine, `ChunkVectors::similarities`)".into(),
        &|_, qv, k| {
            let mut s = semantic(qv);
            s.truncate(k);
            s
        },
    );
    let mut alphas: Vec<f64> = (0..=steps)
        .map(|i| f64::from(i) / f64::from(steps))
        .collect();
    if !alphas.iter().any(|a| (a - DEFAULT_ALPHA).abs() < 1e-9) {
        alphas.push(DEFAULT_ALPHA);
        alphas.sort_by(f64::total_cmp);
    }
    for alpha in alphas {
        let marker = if (alpha - DEFAULT_ALPHA).abs() < 1e-9 {
            " (DEFAULT_ALPHA)"
        } else {
            ""
        };
        add(
            format!("hybrid `fuse` alpha {alpha:.2}{marker}"),
            &|q, qv, k| {
                fuse(
                    &bm25.search(&q.question, k),
                    &semantic(qv),
                    Fusion::Alpha(alpha),
                    k,
                )
            },
        );
    }
    add("hybrid `fuse` RRF (k = 60)".into(), &|q, qv, k| {
        fuse(&bm25.search(&q.question, k), &semantic(qv), Fusion::Rrf, k)
    });

    println!(
        "| method | recall@10 (mean of {n}) | hit@10 | R-precision (mean) |",
        n = queries.len()
    );
    println!("|---|---:|---:|---:|");
    for (name, s) in &methods {
        println!(
            "| {name} | {:.3} | {}/{} | {:.3} |",
            Scores::mean(&s.recall10),
            s.hit10.iter().filter(|h| **h).count(),
            s.hit10.len(),
            Scores::mean(&s.r_precision),
        );
    }

    // Per query: recall@10 of BM25, semantic, the default and RRF.
    let pick = |prefix: &str| {
        methods
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(_, s)| s.clone())
            .expect("method present")
    };
    let default = methods
        .iter()
        .find(|(n, _)| n.contains("DEFAULT_ALPHA"))
        .map(|(_, s)| s.clone())
        .expect("default alpha present");
    let (b, s, r) = (pick("BM25"), pick("semantic"), pick("hybrid `fuse` RRF"));
    println!(
        "\n| label | relevant | BM25 | semantic | hybrid alpha {DEFAULT_ALPHA:.1} | RRF |\n|---|---:|---:|---:|---:|---:|"
    );
    for (i, q) in queries.iter().enumerate() {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            q.label,
            q.relevant.len(),
            b.recall10[i],
            s.recall10[i],
            default.recall10[i],
            r.recall10[i]
        );
    }
    Ok(())
}
