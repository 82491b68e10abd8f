//! `/ui/`: screen companies. One row per company for its latest year (or
//! `year=`), filtered by sector, grade, name and per-theme minimums
//! (`min=TSP>=3, GHG>=2`), sorted by any column (`sort=`, `dir=`). The
//! whole view is in the query string, so a link shares it, and
//! `/ui/companies.csv` / `/ui/companies.json` with the same query download
//! the same rows.

use super::rows::{self, Row};
use super::{Nav, UiError, enc, one_decimal, query_string, render};
use crate::http::{ApiQuery, blocking, store_op};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// A column the screen sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Company name.
    Name,
    /// Sector.
    Sector,
    /// Grade (ordered as the mean stage).
    Grade,
    /// Mean stage.
    Mean,
    /// A theme's stage (index in the rubric's order).
    Theme(usize),
    /// Confidence.
    Confidence,
    /// Documents.
    Documents,
    /// Year.
    Year,
}

impl SortKey {
    /// The key's name in the query string (`name`, `grade`, `TSP`, ...).
    pub fn name(&self, codes: &[String]) -> String {
        match self {
            SortKey::Name => "name".into(),
            SortKey::Sector => "sector".into(),
            SortKey::Grade => "grade".into(),
            SortKey::Mean => "mean".into(),
            SortKey::Theme(i) => codes.get(*i).cloned().unwrap_or_default(),
            SortKey::Confidence => "confidence".into(),
            SortKey::Documents => "documents".into(),
            SortKey::Year => "year".into(),
        }
    }

    /// Parses a key name (theme codes case-insensitive).
    pub fn parse(s: &str, codes: &[String]) -> Option<SortKey> {
        Some(match s.to_ascii_lowercase().as_str() {
            "name" => SortKey::Name,
            "sector" => SortKey::Sector,
            "grade" => SortKey::Grade,
            "mean" => SortKey::Mean,
            "confidence" => SortKey::Confidence,
            "documents" => SortKey::Documents,
            "year" => SortKey::Year,
            other => SortKey::Theme(codes.iter().position(|c| c.eq_ignore_ascii_case(other))?),
        })
    }
}

/// The view the query string asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Report year (`None`: each company's latest).
    pub year: Option<i32>,
    /// Sector, compared case-insensitively.
    pub sector: Option<String>,
    /// Grade band name.
    pub grade: Option<String>,
    /// Per-theme minimum stages: (index in the rubric's order, stage).
    pub mins: Vec<(usize, u8)>,
    /// The `min` text as given (for the form).
    pub min_text: String,
    /// Name search (case-insensitive substring of name or key).
    pub q: Option<String>,
    /// Sort column.
    pub sort: SortKey,
    /// Descending.
    pub desc: bool,
}

impl Default for View {
    fn default() -> Self {
        View {
            year: None,
            sector: None,
            grade: None,
            mins: Vec::new(),
            min_text: String::new(),
            q: None,
            sort: SortKey::Name,
            desc: false,
        }
    }
}

/// Parses per-theme minimums: `TSP>=3, GHG>=2`, `TSP≥3 and GHG ≥ 2`,
/// `tsp>=3 ghg>=2` (`=` alone means the same). Codes are the rubric's
/// (case-insensitive); stages 0–4.
pub fn parse_minimums(text: &str, codes: &[String]) -> Result<Vec<(usize, u8)>, String> {
    let norm = text.replace('≥', ">=");
    let mut out: Vec<(usize, u8)> = Vec::new();
    // Split into `CODE>=N` terms: commas, semicolons, "and", "&" and spaces
    // separate them; spaces around the operator are allowed.
    let mut compact = String::new();
    for word in norm
        .split(|c: char| c == ',' || c == ';' || c == '&' || c.is_whitespace())
        .filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("and"))
    {
        // Glue `TSP >= 3` back together.
        if word.starts_with(">=") || word.starts_with('=') || compact.ends_with('=') {
            compact.push_str(word);
        } else {
            if !compact.is_empty() {
                compact.push(' ');
            }
            compact.push_str(word);
        }
    }
    for term in compact.split(' ').filter(|t| !t.is_empty()) {
        let (code, n) = term
            .split_once(">=")
            .or_else(|| term.split_once('='))
            .ok_or_else(|| {
                format!(
                    "{term:?} is not a minimum; write it like TSP>=3 (theme code, >=, stage 0–4)"
                )
            })?;
        let i = codes
            .iter()
            .position(|c| c.eq_ignore_ascii_case(code.trim()))
            .ok_or_else(|| {
                format!(
                    "{:?} is not a theme code; the themes are {}",
                    code.trim(),
                    codes.join(", ")
                )
            })?;
        let stage: u8 = n.trim().parse().ok().filter(|s| *s <= 4).ok_or_else(|| {
            format!(
                "the minimum for {} must be a stage 0–4, found {n:?}",
                codes[i]
            )
        })?;
        match out.iter_mut().find(|(j, _)| *j == i) {
            Some(m) => m.1 = m.1.max(stage),
            None => out.push((i, stage)),
        }
    }
    Ok(out)
}

/// Parses the view from query pairs; problems are returned as messages
/// (the page shows them and ignores that field).
pub fn parse_view(
    pairs: &[(String, String)],
    codes: &[String],
    grades: &[String],
) -> (View, Vec<String>) {
    let get = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let mut v = View::default();
    let mut errors = Vec::new();
    if let Some(y) = get("year") {
        match y.parse::<i32>() {
            Ok(y) if (2000..=2100).contains(&y) => v.year = Some(y),
            _ => errors.push(format!(
                "year must be a year between 2000 and 2100, found {y:?}"
            )),
        }
    }
    v.sector = get("sector").map(str::to_string);
    if let Some(g) = get("grade") {
        match grades.iter().find(|x| x.eq_ignore_ascii_case(g)) {
            Some(x) => v.grade = Some(x.clone()),
            None => errors.push(format!(
                "grade must be one of {}, found {g:?}",
                grades.join(", ")
            )),
        }
    }
    if let Some(m) = get("min") {
        v.min_text = m.to_string();
        match parse_minimums(m, codes) {
            Ok(mins) => v.mins = mins,
            Err(e) => errors.push(e),
        }
    }
    v.q = get("q").map(str::to_string);
    if let Some(s) = get("sort") {
        match SortKey::parse(s, codes) {
            Some(k) => v.sort = k,
            None => errors.push(format!("cannot sort by {s:?}")),
        }
    }
    v.desc = match get("dir") {
        None => false,
        Some("asc") => false,
        Some("desc") => true,
        Some(d) => {
            errors.push(format!("dir must be asc or desc, found {d:?}"));
            false
        }
    };
    (v, errors)
}

impl View {
    /// The query pairs of this view (sort and direction included).
    pub fn pairs(&self, codes: &[String]) -> Vec<(&'static str, String)> {
        vec![
            ("q", self.q.clone().unwrap_or_default()),
            ("sector", self.sector.clone().unwrap_or_default()),
            ("year", self.year.map(|y| y.to_string()).unwrap_or_default()),
            ("grade", self.grade.clone().unwrap_or_default()),
            ("min", self.min_text.clone()),
            (
                "sort",
                if self.sort == SortKey::Name {
                    String::new()
                } else {
                    self.sort.name(codes)
                },
            ),
            (
                "dir",
                if self.desc {
                    "desc".into()
                } else {
                    String::new()
                },
            ),
        ]
    }

    /// Whether `r` passes the filters (the year is applied when rows are made).
    pub fn keeps(&self, r: &Row) -> bool {
        if let Some(s) = &self.sector
            && !r
                .sector
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(s))
        {
            return false;
        }
        if let Some(g) = &self.grade
            && &r.summary.grade != g
        {
            return false;
        }
        if let Some(q) = &self.q {
            let q = q.to_lowercase();
            if !r.name.to_lowercase().contains(&q) && !r.key.contains(&esg_core::company_key(&q)) {
                return false;
            }
        }
        self.mins
            .iter()
            .all(|(i, m)| r.summary.stages.get(*i).is_some_and(|s| s >= m))
    }

    /// Sorts rows by the view's column (ties by name, then key).
    pub fn sort(&self, rows: &mut [Row]) {
        use std::cmp::Ordering;
        let f = |x: f64, y: f64| x.partial_cmp(&y).unwrap_or(Ordering::Equal);
        rows.sort_by(|a, b| {
            let o = match self.sort {
                SortKey::Name => Ordering::Equal,
                SortKey::Sector => a
                    .sector
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .cmp(&b.sector.as_deref().unwrap_or("").to_lowercase()),
                SortKey::Grade | SortKey::Mean => f(a.summary.mean_stage, b.summary.mean_stage),
                SortKey::Theme(i) => a.summary.stages.get(i).cmp(&b.summary.stages.get(i)),
                SortKey::Confidence => f(a.summary.confidence, b.summary.confidence),
                SortKey::Documents => a.documents.cmp(&b.documents),
                SortKey::Year => a.year.cmp(&b.year),
            };
            let o = if self.desc { o.reverse() } else { o };
            let by_name = a.name.to_lowercase().cmp(&b.name.to_lowercase());
            let by_name = if self.desc && self.sort == SortKey::Name {
                by_name.reverse()
            } else {
                by_name
            };
            o.then(by_name).then_with(|| a.key.cmp(&b.key))
        });
    }
}

/// One CSV cell: quoted when it holds a comma, quote, CR or LF (RFC 4180),
/// and a cell that a spreadsheet would read as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or CR) prefixed with `'`.
pub fn csv_cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The rows as CSV (CRLF line ends, a header line).
pub fn to_csv(rows: &[Row], codes: &[String]) -> String {
    let mut out = String::new();
    let mut head = vec![
        "company",
        "company_key",
        "sector",
        "year",
        "grade",
        "mean_stage",
    ];
    head.extend(codes.iter().map(String::as_str));
    head.extend(["confidence", "confidence_band", "documents", "stale"]);
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for r in rows {
        let mut cells = vec![
            csv_cell(&r.name),
            csv_cell(&r.key),
            csv_cell(r.sector.as_deref().unwrap_or("")),
            r.year.to_string(),
            csv_cell(&r.summary.grade),
            format!("{:.2}", r.summary.mean_stage),
        ];
        cells.extend(r.summary.stages.iter().map(u8::to_string));
        cells.push(format!("{:.2}", r.summary.confidence));
        cells.push(csv_cell(&r.summary.confidence_band));
        cells.push(r.documents.to_string());
        cells.push(r.summary.stale.to_string());
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// What every screen answer is made from.
struct Screen {
    rows: Vec<Row>,
    total: usize,
    unscored: usize,
    view: View,
    errors: Vec<String>,
    codes: Vec<String>,
    theme_names: Vec<String>,
    grades: Vec<String>,
    sectors: Vec<String>,
    years: Vec<i32>,
}

async fn load(st: &AppState, pairs: Vec<(String, String)>) -> Result<Screen, UiError> {
    let store = st.store()?;
    let rubric = st.rubric()?;
    let st2 = st.clone();
    Ok(blocking(move || {
        let codes: Vec<String> = rubric.themes.iter().map(|t| t.code.clone()).collect();
        let grades: Vec<String> = rubric
            .scoring
            .grade_bands
            .iter()
            .map(|b| b.name.clone())
            .collect();
        let (view, errors) = parse_view(&pairs, &codes, &grades);
        let companies = store_op("store.companies", || store.companies())?;
        let docs = store_op("store.documents", || store.documents(None))?;
        let (mut all, unscored) = rows::rows(&st2, &store, &rubric, &companies, &docs, view.year);
        let mut sectors: Vec<String> = companies.iter().filter_map(|c| c.sector.clone()).collect();
        sectors.sort_by_key(|s| s.to_lowercase());
        sectors.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let mut years: Vec<i32> = companies
            .iter()
            .flat_map(|c| c.years.iter().copied())
            .collect();
        years.sort_unstable();
        years.dedup();
        let total = all.len();
        all.retain(|r| view.keeps(r));
        view.sort(&mut all);
        Ok(Screen {
            rows: all,
            total,
            unscored,
            view,
            errors,
            theme_names: rubric.themes.iter().map(|t| t.name.clone()).collect(),
            codes,
            grades,
            sectors,
            years,
        })
    })
    .await?)
}

/// A column header: its label, the link that sorts by it, and its
/// `aria-sort` value.
struct Header {
    label: String,
    title: String,
    href: String,
    aria_sort: &'static str,
    theme: bool,
}

/// A row as the template shows it.
struct ShownRow {
    key_href: String,
    key: String,
    name: String,
    sector: String,
    year: i32,
    grade: String,
    mean: String,
    stages: Vec<(String, u8)>,
    confidence: String,
    band: String,
    documents: usize,
    stale: bool,
}

#[derive(Template)]
#[template(path = "screen.html")]
struct ScreenPage {
    title: String,
    nav: Nav,
    headers: Vec<Header>,
    rows: Vec<ShownRow>,
    total: usize,
    unscored: usize,
    errors: Vec<String>,
    q: String,
    min_text: String,
    sector: String,
    sectors: Vec<String>,
    year: String,
    years: Vec<i32>,
    grade: String,
    grades: Vec<String>,
    sort: String,
    dir: String,
    csv_href: String,
    json_href: String,
    theme_legend: Vec<(String, String)>,
}

/// `GET /ui/`.
pub async fn page(State(st): State<AppState>, ApiQuery(q): ApiQuery) -> Result<Response, UiError> {
    let started = Instant::now();
    let s = load(&st, q).await?;
    let codes = &s.codes;
    let mut columns: Vec<(SortKey, String, String)> = vec![
        (SortKey::Name, "Company".into(), "Company name".into()),
        (SortKey::Sector, "Sector".into(), "Sector".into()),
        (SortKey::Grade, "Grade".into(), "Overall grade".into()),
        (
            SortKey::Mean,
            "Mean".into(),
            "Mean stage over the seven themes".into(),
        ),
    ];
    for (i, (c, n)) in codes.iter().zip(&s.theme_names).enumerate() {
        columns.push((SortKey::Theme(i), c.clone(), n.clone()));
    }
    columns.extend([
        (
            SortKey::Confidence,
            "Confidence".into(),
            "Mean confidence of the themes".into(),
        ),
        (
            SortKey::Documents,
            "Docs".into(),
            "Documents of that year".into(),
        ),
        (SortKey::Year, "Year".into(), "Report year".into()),
    ]);
    let headers = columns
        .into_iter()
        .map(|(k, label, title)| {
            let active = s.view.sort == k;
            let mut v = s.view.clone();
            v.sort = k;
            // Clicking the active column flips it; a new column starts
            // descending for numbers, ascending for text.
            v.desc = if active {
                !s.view.desc
            } else {
                !matches!(k, SortKey::Name | SortKey::Sector)
            };
            Header {
                href: format!("/ui/{}", query_string(&v.pairs(codes))),
                aria_sort: match (active, s.view.desc) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                },
                theme: matches!(k, SortKey::Theme(_)),
                label,
                title,
            }
        })
        .collect();
    let rows = s
        .rows
        .iter()
        .map(|r| ShownRow {
            key_href: format!("/ui/companies/{}?year={}", enc(&r.key), r.year),
            key: r.key.clone(),
            name: r.name.clone(),
            sector: r.sector.clone().unwrap_or_default(),
            year: r.year,
            grade: r.summary.grade.clone(),
            mean: format!("{:.2}", r.summary.mean_stage),
            stages: codes
                .iter()
                .cloned()
                .zip(r.summary.stages.iter().copied())
                .collect(),
            confidence: one_decimal(r.summary.confidence),
            band: r.summary.confidence_band.clone(),
            documents: r.documents,
            stale: r.summary.stale,
        })
        .collect();
    let qs = query_string(&s.view.pairs(codes));
    let page = ScreenPage {
        title: "Screen companies".into(),
        nav: Nav::Screen,
        headers,
        rows,
        total: s.total,
        unscored: s.unscored,
        q: s.view.q.clone().unwrap_or_default(),
        min_text: s.view.min_text.clone(),
        sector: s.view.sector.clone().unwrap_or_default(),
        sectors: s.sectors,
        year: s.view.year.map(|y| y.to_string()).unwrap_or_default(),
        years: s.years,
        grade: s.view.grade.clone().unwrap_or_default(),
        grades: s.grades,
        sort: if s.view.sort == SortKey::Name {
            String::new()
        } else {
            s.view.sort.name(codes)
        },
        dir: if s.view.desc {
            "desc".into()
        } else {
            String::new()
        },
        csv_href: format!("/ui/companies.csv{qs}"),
        json_href: format!("/ui/companies.json{qs}"),
        theme_legend: codes.iter().cloned().zip(s.theme_names).collect(),
        errors: s.errors,
    };
    let status = if page.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(render(&page, status, started))
}

/// `GET /ui/companies.csv`: the screen's rows as CSV.
pub async fn csv(State(st): State<AppState>, ApiQuery(q): ApiQuery) -> Result<Response, UiError> {
    let started = Instant::now();
    let s = load(&st, q).await?;
    if !s.errors.is_empty() {
        return Err(bad_view(s.errors));
    }
    let mut res = to_csv(&s.rows, &s.codes).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"companies.csv\""),
    );
    server_timing(&mut res, started);
    Ok(res)
}

/// `GET /ui/companies.json`: the screen's rows as JSON (the CSV's fields,
/// stages by theme code).
pub async fn json(State(st): State<AppState>, ApiQuery(q): ApiQuery) -> Result<Response, UiError> {
    let started = Instant::now();
    let s = load(&st, q).await?;
    if !s.errors.is_empty() {
        return Err(bad_view(s.errors));
    }
    let rows: Vec<serde_json::Value> = s
        .rows
        .iter()
        .map(|r| {
            let stages: serde_json::Map<String, serde_json::Value> = s
                .codes
                .iter()
                .zip(&r.summary.stages)
                .map(|(c, st)| (c.clone(), (*st).into()))
                .collect();
            serde_json::json!({
                "company": r.name, "company_key": r.key, "sector": r.sector, "year": r.year,
                "grade": r.summary.grade, "mean_stage": r.summary.mean_stage, "stages": stages,
                "confidence": r.summary.confidence, "confidence_band": r.summary.confidence_band,
                "documents": r.documents, "stale": r.summary.stale,
            })
        })
        .collect();
    let body = serde_json::json!({ "companies": rows, "total": s.total, "unscored": s.unscored });
    let mut res = axum::Json(body).into_response();
    server_timing(&mut res, started);
    Ok(res)
}

/// `Server-Timing: app;dur=…` (milliseconds in the handler), as on the pages.
fn server_timing(res: &mut Response, started: Instant) {
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        res.headers_mut().insert("server-timing", v);
    }
}

fn bad_view(errors: Vec<String>) -> UiError {
    UiError {
        status: StatusCode::BAD_REQUEST,
        code: "bad_view",
        message: errors.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn codes() -> Vec<String> {
        ["TSP", "OSP", "DM", "GHG", "RD", "EI", "RMM"]
            .map(String::from)
            .to_vec()
    }

    fn row(name: &str, sector: &str, stages: [u8; 7], mean: f64) -> Row {
        Row {
            key: esg_core::company_key(name),
            name: name.into(),
            sector: (!sector.is_empty()).then(|| sector.to_string()),
            year: 2023,
            documents: 1,
            summary: Arc::new(rows::Summary {
                grade: if mean >= 2.0 {
                    "Established".into()
                } else {
                    "Emerging".into()
                },
                mean_stage: mean,
                stages: stages.to_vec(),
                confidence: 0.5,
                confidence_band: "adequate".into(),
                stale: false,
            }),
        }
    }

    #[test]
    fn minimums_in_several_spellings() {
        let c = codes();
        assert_eq!(
            parse_minimums("TSP>=3, GHG>=2", &c).unwrap(),
            vec![(0, 3), (3, 2)]
        );
        assert_eq!(
            parse_minimums("tsp ≥ 3 and ghg>=2", &c).unwrap(),
            vec![(0, 3), (3, 2)]
        );
        assert_eq!(
            parse_minimums("TSP >= 3 GHG = 2", &c).unwrap(),
            vec![(0, 3), (3, 2)]
        );
        // The stricter of two minimums for one theme.
        assert_eq!(parse_minimums("TSP>=1;TSP>=3", &c).unwrap(), vec![(0, 3)]);
        assert_eq!(parse_minimums("", &c).unwrap(), vec![]);
        assert!(
            parse_minimums("XYZ>=1", &c)
                .unwrap_err()
                .contains("not a theme code")
        );
        assert!(
            parse_minimums("TSP>=5", &c)
                .unwrap_err()
                .contains("stage 0–4")
        );
        assert!(parse_minimums("TSP>=x", &c).is_err());
        assert!(
            parse_minimums("TSP", &c)
                .unwrap_err()
                .contains("not a minimum")
        );
    }

    #[test]
    fn view_from_the_query_string() {
        let c = codes();
        let g = vec!["Emerging".to_string(), "Established".to_string()];
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let (v, e) = parse_view(
            &pairs(&[
                ("year", "2023"),
                ("sector", "Food"),
                ("grade", "established"),
                ("min", "GHG>=2"),
                ("sort", "ghg"),
                ("dir", "desc"),
                ("q", "nest"),
            ]),
            &c,
            &g,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(v.year, Some(2023));
        assert_eq!(v.grade.as_deref(), Some("Established"));
        assert_eq!(v.mins, vec![(3, 2)]);
        assert_eq!(v.sort, SortKey::Theme(3));
        assert!(v.desc);
        // Round trip through the pairs a link carries.
        let back: Vec<(String, String)> = v
            .pairs(&c)
            .into_iter()
            .filter(|(_, x)| !x.is_empty())
            .map(|(k, x)| (k.to_string(), x))
            .collect();
        assert_eq!(parse_view(&back, &c, &g).0, v);
        // Bad fields are reported, one message each, and ignored.
        let (v, e) = parse_view(
            &pairs(&[
                ("year", "20x"),
                ("grade", "Z"),
                ("sort", "nope"),
                ("dir", "up"),
                ("min", "TSP>=9"),
            ]),
            &c,
            &g,
        );
        assert_eq!(e.len(), 5, "{e:?}");
        assert_eq!(v, View::default().with_min_text("TSP>=9"));
    }

    impl View {
        fn with_min_text(mut self, t: &str) -> Self {
            self.min_text = t.into();
            self
        }
    }

    #[test]
    fn filters_and_sorts() {
        let c = codes();
        let g = vec!["Emerging".to_string(), "Established".to_string()];
        let mut rows = vec![
            row("Beta", "Food", [3, 1, 1, 2, 1, 1, 1], 1.4),
            row("alpha", "Energy", [4, 2, 2, 3, 2, 2, 2], 2.4),
            row("Gamma", "food", [1, 0, 0, 3, 0, 0, 0], 0.6),
        ];
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let (v, _) = parse_view(&pairs(&[("min", "TSP>=3 and GHG>=2")]), &c, &g);
        let kept: Vec<&str> = rows
            .iter()
            .filter(|r| v.keeps(r))
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(kept, ["Beta", "alpha"]);
        let (v, _) = parse_view(&pairs(&[("sector", "FOOD")]), &c, &g);
        assert_eq!(rows.iter().filter(|r| v.keeps(r)).count(), 2);
        let (v, _) = parse_view(&pairs(&[("q", "AMM")]), &c, &g);
        assert_eq!(rows.iter().filter(|r| v.keeps(r)).count(), 1);
        let (v, _) = parse_view(&pairs(&[("grade", "Established")]), &c, &g);
        assert_eq!(rows.iter().filter(|r| v.keeps(r)).count(), 1);
        // Name ascending ignores case; mean descending; a theme ascending.
        View::default().sort(&mut rows);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["alpha", "Beta", "Gamma"]
        );
        let (v, _) = parse_view(&pairs(&[("sort", "mean"), ("dir", "desc")]), &c, &g);
        v.sort(&mut rows);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["alpha", "Beta", "Gamma"]
        );
        let (v, _) = parse_view(&pairs(&[("sort", "TSP")]), &c, &g);
        v.sort(&mut rows);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["Gamma", "Beta", "alpha"]
        );
        // Ties (GHG 3 twice) fall back to the name.
        let (v, _) = parse_view(&pairs(&[("sort", "GHG"), ("dir", "desc")]), &c, &g);
        v.sort(&mut rows);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["alpha", "Gamma", "Beta"]
        );
    }

    #[test]
    fn csv_quotes_and_guards_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        let rows = vec![row(
            "=cmd|' /C calc'!A0",
            "Food, Drink",
            [1, 2, 3, 4, 0, 1, 2],
            1.86,
        )];
        let text = to_csv(&rows, &codes());
        let mut lines = text.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "company,company_key,sector,year,grade,mean_stage,TSP,OSP,DM,GHG,RD,EI,RMM,confidence,confidence_band,documents,stale"
        );
        let key = esg_core::company_key("=cmd|' /C calc'!A0");
        assert_eq!(
            lines.next().unwrap(),
            format!(
                "'=cmd|' /C calc'!A0,{key},\"Food, Drink\",2023,Emerging,1.86,1,2,3,4,0,1,2,0.50,adequate,1,false"
            )
        );
        assert_eq!(lines.next(), Some(""));
    }
}
