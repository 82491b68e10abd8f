//! Scoring latency of one company, in process, over many repetitions.
//!
//! ```text
//! cargo run --release -p esg-cli --example score_bench -- \
//!     --data-dir DIR --company NAME [--year YYYY] [--reps 200] [--as-of YYYY-MM]
//! ```
//!
//! Prints p50/p99/max (ms) of each step, measured separately:
//!
//! * `rubric load`: parse, validate and compile the built-in rubric (one-off
//!   per process; `esg score` pays it once, a server once at start-up);
//! * `store: chunks`: read the company-year's chunks from SQLite;
//! * `score()`: BM25 index, theme retrieval, criteria, ladder, frameworks,
//!   caps, confidence, parity and fingerprint;
//! * `score_company`: what `esg score` does after loading the rubric —
//!   company lookup, chunks, `score()` and the documents' file names;
//! * `to_json`: serialising the scorecard;
//! * `bm25 index`: building the BM25 index alone (part of `score()`).
//!
//! Wall-clock columns are affected by other load on the machine;
//! `cpu_p50_ms` is this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`),
//! which is much less so.

use esg_cli::cli::YearMonth;
use esg_cli::score::{ScoreRequest, score_company, to_json};
use esg_score::{BUILTIN_RUBRIC_JSON, Bm25Index, Rubric, ScoreParams, ScoringChunk, score};
use esg_store::{SqliteStore, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// Wall-clock and thread CPU milliseconds of each repetition of one step.
#[derive(Default)]
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

impl Samples {
    fn push(&mut self, (wall, cpu): (f64, f64)) {
        self.wall.push(wall);
        self.cpu.push(cpu);
    }
}

fn row(name: &str, mut s: Samples) {
    s.wall.sort_by(f64::total_cmp);
    s.cpu.sort_by(f64::total_cmp);
    let n = s.wall.len();
    let mean = s.wall.iter().sum::<f64>() / n as f64;
    println!(
        "{name:<16} {n:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11.2}",
        pct(&s.wall, 0.5),
        pct(&s.wall, 0.99),
        s.wall[n - 1],
        mean,
        pct(&s.cpu, 0.5),
    );
}

/// This thread's CPU time in milliseconds.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Runs `f`, returning its value and (wall ms, CPU ms).
fn time<T>(f: impl FnOnce() -> T) -> (T, (f64, f64)) {
    let c = thread_cpu_ms();
    let t = Instant::now();
    let v = f();
    (v, (t.elapsed().as_secs_f64() * 1e3, thread_cpu_ms() - c))
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = PathBuf::from(
        arg(&args, "--data-dir").ok_or_else(|| anyhow::anyhow!("--data-dir is required"))?,
    );
    let company =
        arg(&args, "--company").ok_or_else(|| anyhow::anyhow!("--company is required"))?;
    let reps: usize = arg(&args, "--reps").map_or(Ok(200), |s| s.parse())?;
    let as_of: YearMonth = arg(&args, "--as-of")
        .unwrap_or_else(|| "2025-06".into())
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let store = SqliteStore::open_in_dir(&data)?;
    let summary = store
        .company(&company)?
        .ok_or_else(|| anyhow::anyhow!("no company {company:?} in {}", data.display()))?;
    let year = match arg(&args, "--year") {
        Some(y) => y.parse()?,
        None => *summary
            .years
            .last()
            .ok_or_else(|| anyhow::anyhow!("no years"))?,
    };
    let docs = store.documents(Some(&company))?;
    let pages: u32 = docs
        .iter()
        .filter(|d| d.year == year)
        .map(|d| d.pages)
        .sum();

    let mut rubric_ms = Samples::default();
    let mut chunks_ms = Samples::default();
    let mut score_ms = Samples::default();
    let mut e2e_ms = Samples::default();
    let mut json_ms = Samples::default();
    let mut bm25_ms = Samples::default();
    let rubric = Rubric::builtin();
    let req = ScoreRequest {
        company: company.clone(),
        year: Some(year),
        k: None,
        as_of,
    };
    let mut chunk_count = 0;
    let mut first_json: Option<String> = None;
    // One warm-up round (page cache, allocator), not counted.
    for i in 0..=reps {
        let (r, t_rubric) = time(|| Rubric::from_json_str(BUILTIN_RUBRIC_JSON));
        r?;
        let (chunks, t_chunks) = time(|| store.chunks(&company, Some(year)));
        let chunks: Vec<ScoringChunk> = chunks?
            .into_iter()
            .map(|c| ScoringChunk::from_stored(c.doc_id, c.year, c.chunk))
            .collect();
        chunk_count = chunks.len();
        let params = ScoreParams::new(year, as_of.year, as_of.month);
        let (card, t_score) = time(|| score(&rubric, &chunks, &params));
        card?;
        let (full, t_e2e) = time(|| score_company(&store, &rubric, &req, None));
        let full = full?;
        let (json, t_json) = time(|| to_json(&full));
        let json = json?;
        let (index, t_bm25) = time(|| {
            Bm25Index::new(
                Default::default(),
                chunks
                    .iter()
                    .map(|c| (c.chunk.chunk_id.as_str(), c.chunk.text.as_str())),
            )
        });
        anyhow::ensure!(index.len() == chunk_count, "index size");
        match &first_json {
            None => first_json = Some(json),
            Some(f) => anyhow::ensure!(*f == json, "output changed between repetitions"),
        }
        if i > 0 {
            rubric_ms.push(t_rubric);
            chunks_ms.push(t_chunks);
            score_ms.push(t_score);
            e2e_ms.push(t_e2e);
            json_ms.push(t_json);
            bm25_ms.push(t_bm25);
        }
    }
    println!(
        "{} {year}: {} document(s), {pages} pages, {chunk_count} chunks; {reps} repetitions; output identical every time",
        summary.name,
        docs.iter().filter(|d| d.year == year).count()
    );
    println!(
        "{:<16} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "step", "n", "p50_ms", "p99_ms", "max_ms", "mean_ms", "cpu_p50_ms"
    );
    row("rubric load", rubric_ms);
    row("store: chunks", chunks_ms);
    row("score()", score_ms);
    row("score_company", e2e_ms);
    row("to_json", json_ms);
    row("bm25 index", bm25_ms);
    Ok(())
}
