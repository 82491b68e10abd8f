//! `/ui/search?company=&year=&q=&semantic=`: a box that runs the API's own
//! `/search` handler (BM25, or hybrid with `semantic=1` when an embedder
//! is loaded) and lists the passages with links that open the stored file
//! at their page. An API error (no such company, no searchable words, no
//! embedder) is shown above the form in words.

use super::{Nav, UiError, file_link, render};
use crate::http::{ApiQuery, blocking, store_op};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::time::Instant;

struct Passage {
    score: String,
    filename: String,
    page: u64,
    href: String,
    text: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    title: String,
    nav: Nav,
    choices: Vec<(String, String)>,
    company: String,
    year: String,
    q: String,
    semantic: bool,
    error: Option<String>,
    searched: bool,
    company_name: String,
    searched_year: String,
    retrieval: String,
    passages: Vec<Passage>,
}

/// `GET /ui/search`.
pub async fn page(State(st): State<AppState>, ApiQuery(q): ApiQuery) -> Result<Response, UiError> {
    let started = Instant::now();
    let get = |n: &str| {
        q.iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let (company, year, text) = (get("company"), get("year"), get("q"));
    let semantic = get("semantic") == "1";
    let store = st.store()?;
    let choices = blocking(move || {
        Ok(store_op("store.companies", || store.companies())?
            .into_iter()
            .map(|c| (c.key, c.name))
            .collect::<Vec<_>>())
    })
    .await?;
    let mut page = SearchPage {
        title: "Search a company's reports".into(),
        nav: Nav::Search,
        choices,
        company: company.clone(),
        year: year.clone(),
        q: text.clone(),
        semantic,
        error: None,
        searched: false,
        company_name: String::new(),
        searched_year: String::new(),
        retrieval: String::new(),
        passages: Vec::new(),
    };
    let mut status = StatusCode::OK;
    if !company.is_empty() || !text.is_empty() {
        let mut pairs = vec![("company".to_string(), company), ("q".to_string(), text)];
        if !year.is_empty() {
            pairs.push(("year".into(), year));
        }
        if semantic {
            pairs.push(("semantic".into(), "1".into()));
        }
        match crate::http::search(State(st), ApiQuery(pairs)).await {
            Ok(axum::Json(v)) => {
                page.searched = true;
                page.title = format!(
                    "Search results — {}",
                    v["company"].as_str().unwrap_or_default()
                );
                page.company_name = v["company"].as_str().unwrap_or_default().to_string();
                page.searched_year = v["year"].to_string();
                page.retrieval = match v["retrieval"].as_str() {
                    Some("hybrid") => "hybrid (BM25 and semantic)".into(),
                    _ => "BM25".into(),
                };
                page.passages = v["passages"]
                    .as_array()
                    .map(|a| a.iter().map(passage).collect())
                    .unwrap_or_default();
            }
            Err(e) => {
                status = e.status;
                let mut msg = e.message.clone();
                for d in &e.details {
                    if let (Some(f), Some(m)) = (d["field"].as_str(), d["message"].as_str()) {
                        msg.push_str(&format!("; {f} {m}"));
                    }
                }
                page.error = Some(msg);
            }
        }
    }
    Ok(render(&page, status, started))
}

fn passage(p: &Value) -> Passage {
    let doc = p["doc_id"].as_str().unwrap_or_default();
    let page = p["page"].as_u64().unwrap_or(1);
    Passage {
        score: format!("{:.3}", p["score"].as_f64().unwrap_or(0.0)),
        filename: p["filename"].as_str().unwrap_or(doc).to_string(),
        page,
        href: file_link(doc, page as u32),
        text: p["text"].as_str().unwrap_or_default().to_string(),
    }
}
