//! Throughput and latency of the local embedder, for
//! `bench/embed_throughput.sh` (which runs sentence-transformers on the
//! same texts beside it).
//!
//! ```text
//! cargo run --release -p esg-embed --example embed_bench -- \
//!     --model DIR --chunks chunks.txt --queries queries.txt [--threads N] [--batch N]
//! ```
//!
//! `chunks.txt` and `queries.txt` hold one text per line. The chunks are
//! embedded in one `embed` call (the embedder batches them); each query is
//! embedded alone, as a search request would be. Prints one JSON object:
//! chunks per second, query latency p50/p95 in milliseconds, mean token
//! counts.

use esg_embed::{Embedder, LocalConfig, LocalEmbedder};
use std::time::Instant;

/// The `esg` binary's allocator (crates/esg-cli/src/main.rs), so the bench
/// measures the embedder as it will run there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // candle runs elementwise ops over large tensors on a global pool of
    // its own, sized by CANDLE_NUM_THREADS (default: all physical cores),
    // outside the embedder's thread pool: on 2 cores that is a third busy
    // thread spin-waiting beside the embedder's two. Set to 1 (ops run
    // inline on the calling embedder thread) so `--threads` is the whole
    // thread budget; a host binary should do the same at startup.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: the first statement of main: no other thread exists yet,
        // so nothing reads the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    if let Err(e) = run() {
        eprintln!("embed_bench: {e}");
        std::process::exit(1);
    }
}

fn lines(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text.lines().map(str::to_string).collect())
}

/// CPU seconds used so far by this process, all threads (user + system,
/// from /proc/self/stat): on a shared machine this moves much less with
/// other processes' load than wall time does.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that closes the command name: utime is the 12th,
    // stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut model, mut chunks, mut queries) = (None, None, None);
    let mut config_threads = None;
    let mut batch = 32;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => model = Some(value()?),
            "--chunks" => chunks = Some(value()?),
            "--queries" => queries = Some(value()?),
            "--threads" => {
                config_threads = Some(value()?.parse().map_err(|e| format!("--threads: {e}"))?)
            }
            "--batch" => batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    // candle sizes each matrix product's split from RAYON_NUM_THREADS and,
    // when it is unset, re-reads the physical core count from
    // /proc/cpuinfo on every product (seen in perf). Pin it to the
    // embedder's thread count.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = config_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        // SAFETY: still single-threaded: no thread has been started yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    let model = model.ok_or("--model DIR is required")?;
    let chunks = lines(&chunks.ok_or("--chunks FILE is required")?)?;
    let queries = lines(&queries.ok_or("--queries FILE is required")?)?;

    let started = Instant::now();
    let embedder = LocalEmbedder::load(&LocalConfig {
        threads: config_threads,
        batch_size: batch,
        ..LocalConfig::new(&model)
    })
    .map_err(|e| e.to_string())?;
    let load_s = started.elapsed().as_secs_f64();

    let tokens = |texts: &[String]| -> Result<f64, String> {
        let mut sum = 0;
        for t in texts {
            sum += embedder.token_count(t).map_err(|e| e.to_string())?;
        }
        Ok(sum as f64 / texts.len().max(1) as f64)
    };
    let chunk_tokens = tokens(&chunks)?;
    let query_tokens = tokens(&queries)?;

    // Warm-up: one batch of chunks, ten queries.
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    embedder
        .embed(&refs[..refs.len().min(batch)])
        .map_err(|e| e.to_string())?;
    for q in queries.iter().take(10) {
        embedder.embed(&[q]).map_err(|e| e.to_string())?;
    }

    let (started, cpu_started) = (Instant::now(), cpu_seconds());
    let vectors = embedder.embed(&refs).map_err(|e| e.to_string())?;
    let chunk_s = started.elapsed().as_secs_f64();
    let chunk_cpu_s = cpu_seconds() - cpu_started;
    assert_eq!(vectors.len(), refs.len());

    let cpu_started = cpu_seconds();
    let mut latencies = Vec::with_capacity(queries.len());
    for q in &queries {
        let started = Instant::now();
        let v = embedder.embed(&[q]).map_err(|e| e.to_string())?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(v[0].len(), embedder.dim());
    }
    let query_cpu_ms = (cpu_seconds() - cpu_started) * 1000.0 / queries.len().max(1) as f64;
    latencies.sort_by(f64::total_cmp);

    println!(
        "{}",
        serde_json::json!({
            "system": "esg-embed (candle)",
            "threads": embedder.threads(),
            "batch": batch,
            "candle_num_threads": std::env::var("CANDLE_NUM_THREADS").unwrap_or_default(),
            "load_s": load_s,
            "chunks": chunks.len(),
            "chunk_tokens_mean": chunk_tokens,
            "chunk_seconds": chunk_s,
            "chunks_per_s": chunks.len() as f64 / chunk_s,
            "chunk_cpu_ms_mean": chunk_cpu_s * 1000.0 / chunks.len().max(1) as f64,
            "query_cpu_ms_mean": query_cpu_ms,
            "queries": queries.len(),
            "query_tokens_mean": query_tokens,
            "query_p50_ms": percentile(&latencies, 50.0),
            "query_p95_ms": percentile(&latencies, 95.0),
        })
    );
    Ok(())
}
