//! One summary row per (company, year) for the screen, kept between
//! requests.
//!
//! A row is what the screen shows of a scorecard: grade, mean stage, the
//! seven stages, confidence, staleness. A scorecard is a function of the
//! company-year's documents (their ids are the SHA-256 of their bytes and
//! never change), the rubric, `k` and the scoring month, so a row is kept
//! under the company key and year and used only while those are the same:
//! an ingest (by this process or any other sharing the store) changes the
//! document ids and the row is recomputed on the next view, a new month
//! re-scores (staleness moves). Because the key names the documents'
//! content, not a store, one table serves every store of the process.
//!
//! The screen then costs two store listings (companies, documents) and a
//! lookup per company; the rows it lacks are scored once, in parallel over
//! the available cores, through the same cached path as `/score`.

use crate::error::ApiError;
use crate::http::{DEFAULT_K, ScoreRequest, prepare_scoring, run_scoring};
use crate::state::AppState;
use esg_score::{Rubric, Scorecard};
use esg_store::{CompanySummary, DocumentSummary, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// What the screen shows of one company-year's scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Grade band of the mean stage.
    pub grade: String,
    /// Mean stage over the themes.
    pub mean_stage: f64,
    /// Stage per theme, in the rubric's order.
    pub stages: Vec<u8>,
    /// Mean of the themes' confidences.
    pub confidence: f64,
    /// Band of that mean (rubric bands; `none` below the lowest).
    pub confidence_band: String,
    /// Any theme's evidence older than the freshness rule allows.
    pub stale: bool,
}

/// One row of the screen: a company, its year and the [`Summary`].
#[derive(Debug, Clone)]
pub struct Row {
    /// Company key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Sector (of the latest document naming one).
    pub sector: Option<String>,
    /// Report year the row scores.
    pub year: i32,
    /// Documents of that year.
    pub documents: usize,
    /// The scorecard's summary.
    pub summary: Arc<Summary>,
}

/// What a summary depends on besides company and year.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Basis {
    doc_ids: Vec<String>,
    rubric_sha256: String,
    as_of: (i32, u32),
}

type Table = HashMap<(String, i32), (Basis, Arc<Summary>)>;

/// A row scored for the screen: (slot, year, documents, summary or `None`
/// when the company could not be scored).
type Scored = (usize, i32, usize, Option<Arc<Summary>>);

/// Most rows kept; past it the table starts again (rows are cheap to
/// recompute from cached indexes, and 100,000 is far above any screen).
const MAX_ROWS: usize = 100_000;

fn table() -> &'static Mutex<Table> {
    static T: OnceLock<Mutex<Table>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The scoring month now, as `/score` uses it.
pub fn as_of_now() -> (i32, u32) {
    use chrono::Datelike;
    let now = chrono::Utc::now();
    (now.year(), now.month())
}

/// The summary of a scorecard.
pub fn summarize(rubric: &Rubric, card: &Scorecard) -> Summary {
    let stages = rubric
        .themes
        .iter()
        .map(|t| {
            card.themes
                .iter()
                .find(|r| r.theme == t.code)
                .map_or(0, |r| r.stage)
        })
        .collect();
    let n = card.themes.len().max(1) as f64;
    let confidence = card.themes.iter().map(|t| t.confidence).sum::<f64>() / n;
    let tenths = (confidence * 10.0).round() as i64;
    let confidence_band = rubric
        .scoring
        .confidence_bands
        .iter()
        .find(|b| ((b.min * 10.0).round() as i64..=(b.max * 10.0).round() as i64).contains(&tenths))
        .map_or_else(|| "none".to_string(), |b| b.name.clone());
    Summary {
        grade: card.overall.grade.clone(),
        mean_stage: card.overall.mean_stage,
        stages,
        confidence: (confidence * 100.0).round() / 100.0,
        confidence_band,
        stale: card.themes.iter().any(|t| t.confidence_detail.stale),
    }
}

/// Document ids per (company key, year), sorted.
pub fn doc_ids_by_company_year(docs: &[DocumentSummary]) -> HashMap<(String, i32), Vec<String>> {
    let mut m: HashMap<(String, i32), Vec<String>> = HashMap::new();
    for d in docs {
        m.entry((d.company_key.clone(), d.year))
            .or_default()
            .push(d.doc_id.clone());
    }
    for v in m.values_mut() {
        v.sort_unstable();
    }
    m
}

/// Remembers the summary of a scorecard just computed (the scorecard page
/// calls it, so the screen does not score that company again).
pub fn remember(key: &str, year: i32, doc_ids: Vec<String>, rubric: &Rubric, card: &Scorecard) {
    let basis = Basis {
        doc_ids,
        rubric_sha256: rubric.sha256().to_string(),
        as_of: as_of_now(),
    };
    let s = Arc::new(summarize(rubric, card));
    let mut t = table().lock().unwrap_or_else(|p| p.into_inner());
    if t.len() >= MAX_ROWS {
        t.clear();
    }
    t.insert((key.to_string(), year), (basis, s));
}

/// Scores `company`'s `year` through the `/score` path (default `k`, all
/// themes, BM25), returning the scorecard and the file names of the
/// company's documents.
pub fn score_card(
    st: &AppState,
    store: &Arc<dyn Store>,
    company: &str,
    year: Option<i32>,
) -> Result<(Scorecard, std::collections::BTreeMap<String, String>), ApiError> {
    let req = ScoreRequest {
        company: company.to_string(),
        year,
        themes: None,
        k: DEFAULT_K as usize,
        fusion: None,
    };
    let prep = prepare_scoring(st, store, &req)?;
    let card = run_scoring(st, store, &prep)?;
    Ok((card, prep.names))
}

/// Rows for `companies` at `year` (each company's latest year when
/// `None`; companies without that year are left out). Rows not kept are
/// scored now, in parallel; a company that cannot be scored (no chunks)
/// is left out and counted in the second value.
pub fn rows(
    st: &AppState,
    store: &Arc<dyn Store>,
    rubric: &Rubric,
    companies: &[CompanySummary],
    docs: &[DocumentSummary],
    year: Option<i32>,
) -> (Vec<Row>, usize) {
    let ids = doc_ids_by_company_year(docs);
    let as_of = as_of_now();
    let sha = rubric.sha256();
    let mut out: Vec<Option<Row>> = Vec::with_capacity(companies.len());
    let mut missing: Vec<(usize, i32, Vec<String>)> = Vec::new();
    {
        let t = table().lock().unwrap_or_else(|p| p.into_inner());
        for c in companies {
            let Some(y) = c.year_on_file(year) else {
                continue;
            };
            let doc_ids = ids.get(&(c.key.clone(), y)).cloned().unwrap_or_default();
            let hit = t.get(&(c.key.clone(), y)).filter(|(b, _)| {
                b.doc_ids == doc_ids && b.rubric_sha256 == sha && b.as_of == as_of
            });
            let row = |summary: Arc<Summary>| Row {
                key: c.key.clone(),
                name: c.name.clone(),
                sector: c.sector.clone(),
                year: y,
                documents: doc_ids.len(),
                summary,
            };
            match hit {
                Some((_, s)) => out.push(Some(row(Arc::clone(s)))),
                None => {
                    missing.push((out.len(), y, doc_ids.clone()));
                    out.push(None);
                }
            }
        }
    }
    let mut failed = 0;
    if !missing.is_empty() {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(missing.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done: Mutex<Vec<Scored>> = Mutex::new(Vec::new());
        // Each company in `out` order; `out[i]` is None for the missing ones.
        let by_slot: Vec<&CompanySummary> = {
            let mut v = Vec::new();
            for c in companies {
                if c.year_on_file(year).is_some() {
                    v.push(c);
                }
            }
            v
        };
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((slot, y, doc_ids)) = missing.get(i) else {
                            break;
                        };
                        let c = by_slot[*slot];
                        let summary = match score_card(st, store, &c.name, Some(*y)) {
                            Ok((card, _)) => {
                                remember(&c.key, *y, doc_ids.clone(), rubric, &card);
                                Some(Arc::new(summarize(rubric, &card)))
                            }
                            Err(e) => {
                                tracing::debug!(company = %c.key, year = y, code = e.code, "not scored for the screen");
                                None
                            }
                        };
                        done.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((*slot, *y, doc_ids.len(), summary));
                    }
                });
            }
        });
        for (slot, y, documents, summary) in done.into_inner().unwrap_or_else(|p| p.into_inner()) {
            match summary {
                Some(summary) => {
                    let c = by_slot[slot];
                    out[slot] = Some(Row {
                        key: c.key.clone(),
                        name: c.name.clone(),
                        sector: c.sector.clone(),
                        year: y,
                        documents,
                        summary,
                    });
                }
                None => failed += 1,
            }
        }
    }
    (out.into_iter().flatten().collect(), failed)
}
