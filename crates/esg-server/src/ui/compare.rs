//! `/ui/compare?c=a&c=b…`: two to four companies side by side (each at
//! its latest year, or `year=` for all), as a table and as one grouped bar
//! chart whose bars carry the company's letter and the stage number.

use super::rows::{self, Row};
use super::svg::{self, Group};
use super::{Nav, UiError, enc, render};
use crate::http::{ApiQuery, blocking, resolve_company, store_op};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use std::time::Instant;

/// A compared company as the page shows it.
struct Column {
    letter: char,
    series: usize,
    name: String,
    href: String,
    year: i32,
    grade: String,
    mean: String,
    confidence: String,
    stages: Vec<u8>,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    title: String,
    nav: Nav,
    errors: Vec<String>,
    columns: Vec<Column>,
    themes: Vec<(String, String)>,
    stage_rows: Vec<(String, String, Vec<u8>)>,
    groups: Vec<Group>,
    chart_w: u32,
    plot_top: u32,
    plot_h: u32,
    bar_w: u32,
    grid: Vec<(u32, u8)>,
    /// Every company on file, for the pickers: (key, name).
    choices: Vec<(String, String)>,
    /// The picked keys, four slots ("" for none).
    picked: Vec<String>,
}

/// `GET /ui/compare`.
pub async fn page(State(st): State<AppState>, ApiQuery(q): ApiQuery) -> Result<Response, UiError> {
    let started = Instant::now();
    let wanted: Vec<String> = q
        .iter()
        .filter(|(k, v)| k == "c" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect();
    let year = q
        .iter()
        .rev()
        .find(|(k, _)| k == "year")
        .map(|(_, v)| v.trim().to_string());
    let store = st.store()?;
    let rubric = st.rubric()?;
    let st2 = st.clone();
    let (page, status) = blocking(move || {
        let mut errors = Vec::new();
        let year = match year.as_deref() {
            None | Some("") => None,
            Some(y) => match y.parse::<i32>() {
                Ok(y) if (2000..=2100).contains(&y) => Some(y),
                _ => {
                    errors.push(format!(
                        "year must be a year between 2000 and 2100, found {y:?}"
                    ));
                    None
                }
            },
        };
        let all = store_op("store.companies", || store.companies())?;
        let docs = store_op("store.documents", || store.documents(None))?;
        let mut picked = Vec::new();
        for w in &wanted {
            match resolve_company(&*store, w) {
                Ok(c)
                    if picked
                        .iter()
                        .any(|p: &esg_store::CompanySummary| p.key == c.key) => {}
                Ok(c) => picked.push(c),
                Err(e) => errors.push(e.message),
            }
        }
        if !wanted.is_empty() && !(2..=4).contains(&picked.len()) {
            errors.push(format!(
                "pick two to four different companies to compare ({} picked)",
                picked.len()
            ));
        }
        let mut columns = Vec::new();
        if errors.is_empty() && !picked.is_empty() {
            for (i, c) in picked.iter().enumerate() {
                let (r, _): (Vec<Row>, usize) =
                    rows::rows(&st2, &store, &rubric, std::slice::from_ref(c), &docs, year);
                match r.into_iter().next() {
                    Some(r) => columns.push(Column {
                        letter: svg::letter(i),
                        series: i,
                        href: format!("/ui/companies/{}?year={}", enc(&r.key), r.year),
                        name: r.name,
                        year: r.year,
                        grade: r.summary.grade.clone(),
                        mean: format!("{:.2}", r.summary.mean_stage),
                        confidence: format!(
                            "{:.1} ({})",
                            r.summary.confidence, r.summary.confidence_band
                        ),
                        stages: r.summary.stages.clone(),
                    }),
                    None => errors.push(match year {
                        Some(y) => format!("{} has no scorable documents for {y}", c.name),
                        None => format!("{} has no scorable documents", c.name),
                    }),
                }
            }
        }
        let themes: Vec<(String, String)> = rubric
            .themes
            .iter()
            .map(|t| (t.code.clone(), t.name.clone()))
            .collect();
        let codes: Vec<String> = themes.iter().map(|(c, _)| c.clone()).collect();
        let (groups, chart_w) = svg::groups(
            &codes,
            &columns
                .iter()
                .map(|c| (c.name.clone(), c.stages.clone()))
                .collect::<Vec<_>>(),
        );
        let stage_rows = themes
            .iter()
            .enumerate()
            .map(|(i, (code, name))| {
                (
                    code.clone(),
                    name.clone(),
                    columns
                        .iter()
                        .map(|c| c.stages.get(i).copied().unwrap_or(0))
                        .collect(),
                )
            })
            .collect();
        let mut slots: Vec<String> = picked.iter().map(|c| c.key.clone()).collect();
        slots.resize(4, String::new());
        let status = if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Ok((
            ComparePage {
                title: if columns.is_empty() {
                    "Compare companies".into()
                } else {
                    format!(
                        "Compare {}",
                        columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                nav: Nav::Compare,
                errors,
                stage_rows,
                themes,
                groups,
                chart_w,
                plot_top: svg::GROUP_TOP,
                plot_h: svg::GROUP_PLOT_H,
                bar_w: svg::GROUP_BAR_W,
                grid: (0..=4u8)
                    .map(|s| {
                        (
                            svg::GROUP_TOP + svg::GROUP_PLOT_H
                                - svg::GROUP_PLOT_H * u32::from(s) / 4,
                            s,
                        )
                    })
                    .collect(),
                columns,
                choices: all.into_iter().map(|c| (c.key, c.name)).collect(),
                picked: slots,
            },
            status,
        ))
    })
    .await?;
    Ok(render(&page, status, started))
}
