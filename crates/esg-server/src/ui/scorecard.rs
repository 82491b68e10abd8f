//! `/ui/companies/{key}?year=`: one company's scorecard, rendered from the
//! same [`esg_score::Scorecard`] `/score` serialises: the grade, a stage
//! chart, per theme the ladder 0–4 with the reached stage and its
//! descriptor, confidence and band, every quote with its document, page and
//! a link that opens the stored file at that page, frameworks, caps and the
//! next-stage gaps; staleness when the freshness rule lowered confidence;
//! and, with several years on file, the stages per year and what changed.

use super::rows::{self, Row};
use super::svg::{self, Bar, Point};
use super::{Nav, UiError, enc, file_link, one_decimal, render};
use crate::http::{ApiQuery, blocking, resolve_company, store_op};
use crate::state::AppState;
use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::time::Instant;

/// A quote as the page shows it.
struct Quote {
    text: String,
    filename: String,
    page: u32,
    href: String,
    criterion: String,
    stage: u8,
}

/// A rung of a theme's ladder.
struct Rung {
    stage: u8,
    label: String,
    descriptor: String,
    reached: bool,
    current: bool,
}

/// One theme's section.
struct ThemeView {
    code: String,
    name: String,
    stage: u8,
    label: String,
    descriptor: String,
    confidence: String,
    band: String,
    stale: bool,
    age_months: Option<i64>,
    ladder: Vec<Rung>,
    quotes: Vec<Quote>,
    frameworks: Vec<String>,
    caps: Vec<String>,
    gaps: Vec<String>,
    note: Option<String>,
}

/// A link to another report year.
struct YearLink {
    year: i32,
    href: String,
    current: bool,
}

/// A theme over the years on file.
struct Trend {
    code: String,
    name: String,
    points: Vec<Point>,
    line: String,
}

#[derive(Template)]
#[template(path = "scorecard.html")]
struct ScorecardPage {
    title: String,
    nav: Nav,
    name: String,
    sector: String,
    year: i32,
    years: Vec<YearLink>,
    grade: String,
    mean: String,
    as_of: String,
    rubric_version: String,
    stale_themes: Vec<String>,
    max_age_months: u32,
    penalty: String,
    documents: Vec<(String, String)>,
    bars: Vec<Bar>,
    chart_h: u32,
    grid: Vec<(u32, u8)>,
    left: u32,
    plot_w: u32,
    themes: Vec<ThemeView>,
    trends: Vec<Trend>,
    history_years: Vec<i32>,
    history: Vec<(String, Vec<u8>)>,
    changes: Vec<String>,
    search_href: String,
    compare_href: String,
}

/// `GET /ui/companies/{key}`.
pub async fn page(
    State(st): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    ApiQuery(q): ApiQuery,
) -> Result<Response, UiError> {
    let started = Instant::now();
    let Path(key) = key.map_err(|e| UiError {
        status: StatusCode::BAD_REQUEST,
        code: "malformed_path",
        message: e.body_text(),
    })?;
    let year = match q
        .iter()
        .rev()
        .find(|(k, _)| k == "year")
        .map(|(_, v)| v.trim())
    {
        None | Some("") => None,
        Some(y) => Some(
            y.parse::<i32>()
                .ok()
                .filter(|y| (2000..=2100).contains(y))
                .ok_or_else(|| UiError {
                    status: StatusCode::BAD_REQUEST,
                    code: "validation_failed",
                    message: format!("year must be a year between 2000 and 2100, found {y:?}"),
                })?,
        ),
    };
    let store = st.store()?;
    let rubric = st.rubric()?;
    let st2 = st.clone();
    let page = blocking(move || {
        let c = resolve_company(&*store, &key)?;
        let (card, names) = rows::score_card(&st2, &store, &c.name, year)?;
        let docs = store_op("store.documents", || store.documents(Some(&c.name)))?;
        let ids = rows::doc_ids_by_company_year(&docs);
        rows::remember(
            &c.key,
            card.year,
            ids.get(&(c.key.clone(), card.year))
                .cloned()
                .unwrap_or_default(),
            &rubric,
            &card,
        );
        // Every year on file, for the chart over time (kept rows, or
        // scored now and kept).
        let history: Vec<Row> = if c.years.len() > 1 {
            let mut all = Vec::new();
            for y in &c.years {
                let (mut r, _) = rows::rows(
                    &st2,
                    &store,
                    &rubric,
                    std::slice::from_ref(&c),
                    &docs,
                    Some(*y),
                );
                all.append(&mut r);
            }
            all
        } else {
            Vec::new()
        };
        let freshness = &rubric.scoring.freshness;
        let themes: Vec<ThemeView> = card
            .themes
            .iter()
            .map(|t| {
                let rt = rubric.theme(&t.theme);
                let ladder = rt
                    .map(|rt| {
                        rt.stages
                            .iter()
                            .map(|s| Rung {
                                stage: s.stage,
                                label: s.label.clone(),
                                descriptor: s.descriptor.clone(),
                                reached: s.stage <= t.stage,
                                current: s.stage == t.stage,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ThemeView {
                    code: t.theme.clone(),
                    name: t.name.clone(),
                    stage: t.stage,
                    label: t.label.clone(),
                    descriptor: t.stage_descriptor.clone(),
                    confidence: one_decimal(t.confidence),
                    band: t.confidence_band.clone(),
                    stale: t.confidence_detail.stale,
                    age_months: t.confidence_detail.age_months,
                    ladder,
                    quotes: t
                        .evidence
                        .iter()
                        .map(|e| Quote {
                            text: e.quote.clone(),
                            filename: names
                                .get(&e.doc_id)
                                .cloned()
                                .unwrap_or_else(|| e.doc_id.clone()),
                            page: e.page,
                            href: file_link(&e.doc_id, e.page),
                            criterion: rubric.criterion(&e.criterion).map_or_else(
                                || e.criterion.clone(),
                                |(_, _, c)| c.description.clone(),
                            ),
                            stage: e.stage,
                        })
                        .collect(),
                    frameworks: t
                        .frameworks
                        .iter()
                        .map(|f| {
                            let mut s = f.name.clone();
                            if let Some(m) = f.min_stage {
                                s.push_str(&format!(" (implies at least stage {m}"));
                                s.push_str(if f.raised_stage {
                                    "; raised the stage)"
                                } else {
                                    ")"
                                });
                            }
                            s
                        })
                        .collect(),
                    caps: t
                        .caps
                        .iter()
                        .map(|cap| {
                            format!(
                                "{} — capped at stage {}{}",
                                cap.description,
                                cap.cap,
                                if cap.lowered_stage {
                                    " (lowered the stage)"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect(),
                    gaps: t
                        .next_stage_gaps
                        .iter()
                        .map(|g| g.description.clone())
                        .collect(),
                    note: t.note.clone(),
                }
            })
            .collect();
        let bars = svg::bars(
            &card
                .themes
                .iter()
                .map(|t| {
                    (
                        t.theme.clone(),
                        format!("{}: stage {} ({})", t.name, t.stage, t.label),
                        t.stage,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let history_years: Vec<i32> = history.iter().map(|r| r.year).collect();
        let mut trends = Vec::new();
        let mut hist_rows = Vec::new();
        let mut changes = Vec::new();
        if history.len() > 1 {
            for (i, t) in rubric.themes.iter().enumerate() {
                let series: Vec<(i32, u8)> = history
                    .iter()
                    .map(|r| (r.year, r.summary.stages.get(i).copied().unwrap_or(0)))
                    .collect();
                for w in series.windows(2) {
                    let ((y0, a), (y1, b)) = (w[0], w[1]);
                    if a != b {
                        let dir = if b > a { "up" } else { "down" };
                        changes.push(format!(
                            "{}: stage {a} in {y0} → {b} in {y1} ({dir} {})",
                            t.code,
                            a.abs_diff(b)
                        ));
                    }
                }
                let (points, line) = svg::spark(&series, 40 + 48 * series.len() as u32);
                hist_rows.push((t.code.clone(), series.iter().map(|(_, s)| *s).collect()));
                trends.push(Trend {
                    code: t.code.clone(),
                    name: t.name.clone(),
                    points,
                    line,
                });
            }
            for w in history.windows(2) {
                if w[0].summary.grade != w[1].summary.grade {
                    changes.push(format!(
                        "Grade: {} in {} → {} in {}",
                        w[0].summary.grade, w[0].year, w[1].summary.grade, w[1].year
                    ));
                }
            }
        }
        Ok(ScorecardPage {
            title: format!("{} — scorecard {}", c.name, card.year),
            nav: Nav::None,
            sector: c.sector.clone().unwrap_or_default(),
            years: c
                .years
                .iter()
                .map(|y| YearLink {
                    year: *y,
                    href: format!("/ui/companies/{}?year={y}", enc(&c.key)),
                    current: *y == card.year,
                })
                .collect(),
            year: card.year,
            grade: card.overall.grade.clone(),
            mean: format!("{:.2}", card.overall.mean_stage),
            as_of: card.as_of.clone(),
            rubric_version: card.rubric_version.clone(),
            stale_themes: card
                .themes
                .iter()
                .filter(|t| t.confidence_detail.stale)
                .map(|t| t.theme.clone())
                .collect(),
            max_age_months: freshness.max_age_months,
            penalty: one_decimal(freshness.confidence_penalty),
            documents: card
                .documents
                .iter()
                .map(|d| {
                    (
                        names
                            .get(&d.doc_id)
                            .cloned()
                            .unwrap_or_else(|| d.doc_id.clone()),
                        format!("/documents/{}/file", enc(&d.doc_id)),
                    )
                })
                .collect(),
            chart_h: svg::bars_height(bars.len()),
            bars,
            grid: svg::grid(),
            left: svg::LEFT,
            plot_w: svg::PLOT_W,
            themes,
            trends,
            history_years,
            history: hist_rows,
            changes,
            search_href: format!("/ui/search?company={}&year={}", enc(&c.key), card.year),
            compare_href: format!("/ui/compare?c={}", enc(&c.key)),
            name: c.name.clone(),
        })
    })
    .await?;
    Ok(render(&page, StatusCode::OK, started))
}
