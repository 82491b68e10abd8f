//! `esg score`: one company-year scored on the rubric, with cited evidence.
//!
//! The chunks of the company's documents for the year are read from the
//! store and indexed ([`esg_score::CompanyIndex`]); the criterion matches an
//! earlier run stored for this rubric are loaded, so the built-in rubric's
//! patterns are compiled only for chunks no run has matched yet (compiling
//! them all costs ~180 ms, more than the rest of the command), and the
//! matches this run computed are stored for the next (best effort: a busy
//! or read-only store only costs the next run the time). The result is
//! exactly [`esg_score::score`](fn@esg_score::score)'s, printed as a readable scorecard or as
//! JSON. The same store, rubric, request and as-of month give
//! byte-identical output.

use crate::cli::{ScoreArgs, ScoreFormat, YearMonth};
use crate::search::{
    YearChoice, filenames, resolve_company, resolve_year, short, truncate_words, wrap,
};
use anyhow::Context;
use esg_score::{
    CompanyIndex, Evidence, Rubric, ScoreParams, Scorecard, ScoringChunk, ThemeResult,
};
use esg_store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

/// What to score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRequest {
    /// Company name (any spelling of its key).
    pub company: String,
    /// Report year; `None` means the latest year on file.
    pub year: Option<i32>,
    /// Chunks retrieved per theme; `None` means the rubric's `default_k`.
    pub k: Option<usize>,
    /// Scoring month (feeds the freshness rule).
    pub as_of: YearMonth,
}

/// A document whose chunks were scored, with its file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Document id (SHA-256 of the source bytes).
    pub doc_id: String,
    /// File name of the source.
    pub filename: String,
}

/// A company's scorecard as printed by `esg score --format json`: the
/// company, every field of the [`Scorecard`] (including `fingerprint` and
/// `parity`), and the file names of the documents used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyScorecard {
    /// Display name of the company.
    pub company: String,
    /// Company key.
    pub company_key: String,
    /// The scoring result.
    #[serde(flatten)]
    pub scorecard: Scorecard,
    /// File names of the documents used, sorted by `doc_id`.
    pub sources: Vec<Source>,
}

/// The scoring month now (UTC).
pub fn current_month() -> YearMonth {
    use chrono::Datelike;
    let now = chrono::Utc::now();
    YearMonth {
        year: now.year(),
        month: now.month(),
    }
}

/// Loads the rubric: the built-in v3.0, or a file (validated; errors name the field).
pub fn load_rubric(path: Option<&std::path::Path>) -> anyhow::Result<Rubric> {
    match path {
        None => Ok(Rubric::builtin()),
        Some(p) => Rubric::from_path(p).with_context(|| format!("invalid rubric {}", p.display())),
    }
}

/// Reads the company's chunks for the year from the store and scores them,
/// with hybrid retrieval when `semantic` gives the embedder (for the
/// theme query vectors; the chunks' vectors are the stored ones) and the
/// fusion.
///
/// # Errors
/// Unknown company or year ([`crate::search::TargetError`]), store errors,
/// embedder errors and scoring errors (e.g. `k` out of range), each with
/// context.
pub fn score_company(
    store: &dyn Store,
    rubric: &Rubric,
    req: &ScoreRequest,
    semantic: Option<(&dyn esg_embed::Embedder, esg_score::Fusion)>,
) -> anyhow::Result<CompanyScorecard> {
    let company = resolve_company(store, &req.company)?;
    let choice = req.year.map_or(YearChoice::Latest, YearChoice::Year);
    let year =
        resolve_year(&company, choice)?.context("a single year is always resolved for scoring")?;
    let chunks: Vec<ScoringChunk> = store
        .chunks(&company.name, Some(year))
        .with_context(|| format!("cannot read the chunks of {} for {year}", company.name))?
        .into_iter()
        .map(|c| ScoringChunk::from_stored(c.doc_id, c.year, c.chunk))
        .collect();
    let mut params = ScoreParams::new(year, req.as_of.year, req.as_of.month);
    params.k = req.k.unwrap_or(rubric.scoring.default_k);
    let index = CompanyIndex::new(rubric, chunks, year)
        .with_context(|| format!("cannot score {} for {year}", company.name))?;
    // Matches are derived data: a store that cannot give or keep them only
    // makes this run slower, never wrong.
    if let Ok(stored) = store.rule_matches(rubric.sha256(), &company.name, year) {
        index.load_matches(rubric, esg_server::score_cache::matches_from_store(stored));
    }
    let hybrid = match semantic {
        None => None,
        Some((embedder, fusion)) => {
            params.fusion = Some(fusion);
            let vectors = crate::embed::company_vectors(store, embedder, &company.name, &[year])?;
            let queries = crate::embed::theme_queries(embedder, rubric.themes.iter())?;
            Some((vectors, queries))
        }
    };
    let input = hybrid
        .as_ref()
        .map(|(vectors, queries)| esg_score::SemanticInput {
            fusion: params.fusion.unwrap_or_default(),
            vectors,
            queries,
        });
    let mut card = index
        .score_with(rubric, &params, input)
        .with_context(|| format!("cannot score {} for {year}", company.name))?;
    place_quotes(store, &mut card)?;
    let new = esg_server::score_cache::new_matches_for_store(&index, rubric);
    let _ = store.put_rule_matches(rubric.sha256(), &new);
    let names = filenames(store, &company)?;
    let sources = card
        .documents
        .iter()
        .map(|d| Source {
            doc_id: d.doc_id.clone(),
            filename: names.get(&d.doc_id).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(CompanyScorecard {
        company: company.name,
        company_key: company.key,
        scorecard: card,
        sources,
    })
}

/// Places every PDF quote on its page: narrowed to the layout block of its
/// match, with its box (as `/score` does).
fn place_quotes(store: &dyn Store, card: &mut esg_score::Scorecard) -> anyhow::Result<()> {
    let mut layouts = std::collections::HashMap::new();
    for e in card.themes.iter().flat_map(|t| t.evidence.iter()) {
        let key = (e.doc_id.clone(), e.page);
        if let std::collections::hash_map::Entry::Vacant(v) = layouts.entry(key) {
            let l = store.page_layout(&e.doc_id, e.page).with_context(|| {
                format!("cannot read the layout of page {} of {}", e.page, e.doc_id)
            })?;
            v.insert(l);
        }
    }
    card.place_quotes(|e| {
        let layout = layouts
            .get(&(e.doc_id.clone(), e.page))
            .and_then(Option::as_ref);
        esg_server::quote_places::place(layout, e)
    });
    Ok(())
}

/// Runs `esg score`.
pub fn run(
    store: &dyn Store,
    data_dir: &std::path::Path,
    args: &ScoreArgs,
) -> anyhow::Result<ExitCode> {
    let rubric = load_rubric(args.rubric.as_deref())?;
    let req = ScoreRequest {
        company: args.company.clone(),
        year: args.year,
        k: args.k,
        as_of: args.as_of.unwrap_or_else(current_month),
    };
    let semantic = crate::embed::semantic(&args.retrieval, data_dir, store)?;
    let card = score_company(
        store,
        &rubric,
        &req,
        semantic.as_ref().map(|(e, f)| (&**e, *f)),
    )?;
    match args.format {
        ScoreFormat::Json => println!("{}", to_json(&card)?),
        ScoreFormat::Table => print!("{}", render_table(&card, &rubric)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The scorecard as pretty-printed JSON (stable: every list is sorted by
/// the scoring engine, fields are in declaration order).
pub fn to_json(card: &CompanyScorecard) -> anyhow::Result<String> {
    serde_json::to_string_pretty(card).context("cannot serialise the scorecard")
}

/// Longest quote shown in the table, in characters (JSON has it whole).
const TABLE_QUOTE_CHARS: usize = 180;

/// The readable scorecard.
pub fn render_table(card: &CompanyScorecard, rubric: &Rubric) -> String {
    let sc = &card.scorecard;
    let files: BTreeMap<&str, &str> = card
        .sources
        .iter()
        .map(|s| (s.doc_id.as_str(), s.filename.as_str()))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} (as of {}, rubric v{}, top {} chunks per theme)",
        card.company, sc.year, sc.as_of, sc.rubric_version, sc.k
    );
    let _ = writeln!(
        out,
        "Grade: {} (mean stage {:.2} over {} themes)\n",
        sc.overall.grade, sc.overall.mean_stage, sc.overall.themes_scored
    );
    let _ = writeln!(
        out,
        "{:<5} {:<34} {:<5} {:<34} CONFIDENCE",
        "THEME", "NAME", "STAGE", "LABEL"
    );
    for t in &sc.themes {
        let max_stage = rubric
            .theme(&t.theme)
            .map_or(4, |th| th.stages.len().saturating_sub(1));
        let _ = writeln!(
            out,
            "{:<5} {:<34} {:<5} {:<34} {:.1} {}",
            t.theme,
            t.name,
            format!("{}/{}", t.stage, max_stage),
            t.label,
            t.confidence,
            t.confidence_band
        );
        for line in theme_details(t, rubric, &files) {
            let _ = writeln!(out, "      {line}");
        }
    }
    let _ = writeln!(
        out,
        "\nOverall: {} (mean stage {:.2})",
        sc.overall.grade, sc.overall.mean_stage
    );
    let _ = writeln!(
        out,
        "Parity: {} ({} evidence chunks, {} retrieved); fingerprint {}",
        if sc.parity.parity_ok { "ok" } else { "BROKEN" },
        sc.parity.evidence_chunk_ids.len(),
        sc.parity.retrieved_chunk_ids.len(),
        short(&sc.fingerprint)
    );
    let _ = writeln!(out, "Every quote with its span: --format json");
    out
}

/// The lines under a theme's row: best quote (or why there is none), then
/// caps and raised minimums.
fn theme_details(t: &ThemeResult, rubric: &Rubric, files: &BTreeMap<&str, &str>) -> Vec<String> {
    let mut lines = Vec::new();
    match best_quote(t, rubric) {
        Some(e) => {
            let quote = truncate_words(&e.quote, TABLE_QUOTE_CHARS);
            let mut wrapped = wrap(&format!("\u{201c}{quote}\u{201d}"), 88);
            let file = files.get(e.doc_id.as_str()).copied().unwrap_or("?");
            wrapped.push(format!("— p. {}, {file}", e.page));
            lines.extend(wrapped);
        }
        None => lines.push(format!(
            "No evidence: no quote supports a stage in the top {} chunks.",
            t.retrieved.len()
        )),
    }
    if let Some(note) = &t.note
        && ((t.stage == 0 && best_quote(t, rubric).is_some()) || note.contains("English-only"))
    {
        lines.extend(wrap(note, 88));
    }
    // How a stage's second quote was found, when not in the top-k.
    for c in t.corroboration.iter().filter(|c| c.chunk_id.is_some()) {
        lines.push(format!(
            "Stage {} corroborated beyond the top {}: {} on p. {} (rank {} of its query).",
            c.stage,
            t.retrieved
                .iter()
                .filter(|r| r.found_by == esg_score::FoundBy::Retrieval)
                .count(),
            c.criteria.join(", "),
            c.page.unwrap_or(0),
            c.query_rank.unwrap_or(0)
        ));
    }
    for c in &t.corroborated {
        let what = match &c.framework {
            Some(f) => format!("Framework {f} (stage {})", c.stage),
            None => format!("Stage {}", c.stage),
        };
        lines.push(format!(
            "{what}: {} stated once, corroborated by {}.",
            c.criterion,
            c.by.join(", ")
        ));
    }
    for f in t.frameworks.iter().filter(|f| f.raised_stage) {
        lines.push(format!(
            "Raised to stage {} by {}.",
            f.min_stage.unwrap_or(0),
            f.name
        ));
    }
    for c in t.caps.iter().filter(|c| c.lowered_stage) {
        lines.extend(wrap(
            &format!("Capped at stage {}: {}.", c.cap, c.description),
            88,
        ));
    }
    lines
}

/// The quote that best supports the awarded stage: a criterion quote (not
/// an override's) of the highest stage at or below the stage reached,
/// from the best-ranked retrieved chunk; ties keep the evidence order.
pub fn best_quote<'a>(t: &'a ThemeResult, rubric: &Rubric) -> Option<&'a Evidence> {
    let rank: BTreeMap<&str, usize> = t
        .retrieved
        .iter()
        .map(|r| (r.chunk_id.as_str(), r.rank))
        .collect();
    let is_override = |e: &Evidence| rubric.overrides.iter().any(|o| o.id == e.criterion);
    let top = t.stage.max(1);
    t.evidence
        .iter()
        .filter(|e| !is_override(e))
        .min_by_key(|e| {
            (
                // Highest stage not above the awarded one first; above it last.
                if e.stage <= top {
                    top - e.stage
                } else {
                    u8::MAX
                },
                rank.get(e.chunk_id.as_str()).copied().unwrap_or(usize::MAX),
            )
        })
}
