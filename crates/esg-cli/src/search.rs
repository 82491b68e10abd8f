//! `esg search`: BM25 over one company's chunks, and the company/year
//! resolution shared with `esg score` (unknown names get close matches,
//! unknown years get the years on file).

use crate::cli::SearchArgs;
use anyhow::Context;
use esg_core::company_key;
use esg_score::{Bm25Index, Bm25Params, tokenize};
use esg_store::{CompanySummary, Store, StoredChunk};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Why a company or year named on the command line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The company name has no letters or digits.
    #[error("--company must contain at least one letter or digit")]
    EmptyCompany,
    /// No company on file has this name's key.
    #[error("{}", unknown_company_message(.name, .close, .on_file))]
    UnknownCompany {
        /// The name as given.
        name: String,
        /// Display names of close matches, best first.
        close: Vec<String>,
        /// Display names of every company on file, by key.
        on_file: Vec<String>,
    },
    /// The company has no documents for the requested year.
    #[error("{}", no_year_message(.company, *.year, .years))]
    NoDocumentsForYear {
        /// Display name of the company.
        company: String,
        /// The requested year.
        year: i32,
        /// Years on file for the company, ascending.
        years: Vec<i32>,
    },
    /// `--semantic` was asked for but no embedder is configured.
    #[error(
        "semantic search needs an embedder and none is configured; run without --semantic for BM25 (lexical) search"
    )]
    NoEmbedder,
    /// The question has no searchable word.
    #[error(
        "the question {0:?} has no searchable words (only stop words or punctuation); ask with content words such as \"scope 3 emissions\""
    )]
    EmptyQuery(String),
}

fn unknown_company_message(name: &str, close: &[String], on_file: &[String]) -> String {
    let quoted = |v: &[String]| -> String {
        v.iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !close.is_empty() {
        let list = quoted(close);
        return if close.len() == 1 {
            format!("no company named \"{name}\" is on file; did you mean {list}?")
        } else {
            format!("no company named \"{name}\" is on file; did you mean one of {list}?")
        };
    }
    if on_file.is_empty() {
        return format!(
            "no company named \"{name}\" is on file, and no company is on file yet \
             (add reports with `esg ingest --company NAME --year YYYY FILE...`)"
        );
    }
    const SHOWN: usize = 10;
    let mut msg = format!(
        "no company named \"{name}\" is on file and none is close; companies on file: {}",
        quoted(&on_file[..on_file.len().min(SHOWN)])
    );
    if on_file.len() > SHOWN {
        msg.push_str(&format!(
            " and {} more (see `esg companies`)",
            on_file.len() - SHOWN
        ));
    }
    msg
}

fn no_year_message(company: &str, year: i32, years: &[i32]) -> String {
    if years.is_empty() {
        return format!("{company} has no documents on file");
    }
    let list: Vec<String> = years.iter().map(i32::to_string).collect();
    format!(
        "{company} has no documents for {year}; years on file: {} (pass one with --year)",
        list.join(", ")
    )
}

/// Which years of a company to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearChoice {
    /// The latest year on file.
    Latest,
    /// This year, which must be on file.
    Year(i32),
    /// Every year on file.
    All,
}

impl YearChoice {
    /// From `--year` and `--all-years`.
    pub fn from_flags(year: Option<i32>, all_years: bool) -> Self {
        match (year, all_years) {
            (_, true) => YearChoice::All,
            (Some(y), false) => YearChoice::Year(y),
            (None, false) => YearChoice::Latest,
        }
    }
}

/// Finds the company named `name` (by [`company_key`]); when there is none,
/// the error lists close matches among the companies on file.
pub fn resolve_company(store: &dyn Store, name: &str) -> anyhow::Result<CompanySummary> {
    if company_key(name).is_empty() {
        return Err(TargetError::EmptyCompany.into());
    }
    if let Some(c) = store
        .company(name)
        .with_context(|| format!("cannot look up company {name:?}"))?
    {
        return Ok(c);
    }
    let all = store.companies().context("cannot list companies")?;
    Err(TargetError::UnknownCompany {
        name: name.to_string(),
        close: close_matches(name, &all, 5)
            .into_iter()
            .map(|c| c.name.clone())
            .collect(),
        on_file: all.iter().map(|c| c.name.clone()).collect(),
    }
    .into())
}

/// The year(s) to use for `company`: `None` means every year.
///
/// # Errors
/// [`TargetError::NoDocumentsForYear`] when the year is not on file (or
/// the company has no documents at all).
pub fn resolve_year(
    company: &CompanySummary,
    choice: YearChoice,
) -> Result<Option<i32>, TargetError> {
    let missing = |year| TargetError::NoDocumentsForYear {
        company: company.name.clone(),
        year,
        years: company.years.clone(),
    };
    match choice {
        YearChoice::All if company.years.is_empty() => Err(missing(0)),
        YearChoice::All => Ok(None),
        YearChoice::Latest => company.year_on_file(None).map(Some).ok_or(missing(0)),
        YearChoice::Year(y) => company.year_on_file(Some(y)).map(Some).ok_or(missing(y)),
    }
}

/// Companies whose names are close to `name`, best first (ties by key), at
/// most `max` ([`esg_core::company::closest`]).
pub fn close_matches<'a>(
    name: &str,
    companies: &'a [CompanySummary],
    max: usize,
) -> Vec<&'a CompanySummary> {
    esg_core::company::closest(name, companies, |c| &c.key, max)
}

/// One passage found by `esg search`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// 1-based rank.
    pub rank: usize,
    /// BM25 score, rounded to 4 decimals.
    pub score: f64,
    /// File name of the document.
    pub filename: String,
    /// Document id (SHA-256 of the source bytes).
    pub doc_id: String,
    /// Report year of the document.
    pub year: i32,
    /// 1-based page of the source document.
    pub page: u32,
    /// Chunk id.
    pub chunk_id: String,
    /// Start of the chunk in the page text, in characters.
    pub char_start: u32,
    /// End (exclusive) of the chunk in the page text, in characters.
    pub char_end: u32,
    /// The chunk's text.
    pub text: String,
    /// Hybrid only: BM25 score (4 decimals) when in the BM25 top-k.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical: Option<f64>,
    /// Hybrid only: cosine similarity with the question (4 decimals) when
    /// the chunk has a vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic: Option<f64>,
}

/// The result of `esg search`, as printed with `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// Display name of the company.
    pub company: String,
    /// Company key.
    pub company_key: String,
    /// Years searched, ascending.
    pub years: Vec<i32>,
    /// The question as asked.
    pub query: String,
    /// Passages asked for.
    pub k: usize,
    /// Retrieval method (`bm25` or `hybrid`).
    pub retrieval: &'static str,
    /// Hybrid only: model, fusion, alpha and the share of chunks with a vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic: Option<esg_score::RetrievalInfo>,
    /// Chunks searched.
    pub chunks_searched: usize,
    /// The passages, best first (score descending, then chunk id).
    pub passages: Vec<Passage>,
}

/// Rounds to `decimals` decimal places.
pub(crate) fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// File names of a company's documents, by `doc_id`.
pub(crate) fn filenames(
    store: &dyn Store,
    company: &CompanySummary,
) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(store
        .documents(Some(&company.name))
        .with_context(|| format!("cannot list the documents of {}", company.name))?
        .into_iter()
        .map(|d| (d.doc_id, d.filename))
        .collect())
}

/// Runs a BM25 search over the chunks of one company, or a hybrid one
/// (BM25 fused with the similarity of the chunks' stored vectors to the
/// question's, [`esg_score::fuse`]) when `semantic` gives the embedder
/// and fusion.
///
/// # Errors
/// [`TargetError`] for an unknown company or year or an empty question;
/// embedder and store errors with context.
pub fn search(
    store: &dyn Store,
    company: &str,
    years: YearChoice,
    query: &str,
    k: usize,
    semantic: Option<(&dyn esg_embed::Embedder, esg_score::Fusion)>,
) -> anyhow::Result<SearchResult> {
    let company = resolve_company(store, company)?;
    let year = resolve_year(&company, years)?;
    if semantic.is_none() && tokenize(query).is_empty() {
        return Err(TargetError::EmptyQuery(query.to_string()).into());
    }
    let chunks: Vec<StoredChunk> = store
        .chunks(&company.name, year)
        .with_context(|| format!("cannot read the chunks of {}", company.name))?;
    let names = filenames(store, &company)?;
    let index = Bm25Index::new(
        Bm25Params::default(),
        chunks
            .iter()
            .map(|c| (c.chunk.chunk_id.as_str(), c.chunk.text.as_str())),
    );
    let by_id: BTreeMap<&str, &StoredChunk> = chunks
        .iter()
        .map(|c| (c.chunk.chunk_id.as_str(), c))
        .collect();
    let mut info = None;
    let hits = match semantic {
        None => index.search(query, k),
        Some((embedder, fusion)) => {
            let years: Vec<i32> = year.map_or_else(|| company.years.clone(), |y| vec![y]);
            let vectors = crate::embed::company_vectors(store, embedder, &company.name, &years)?;
            let qv = embedder
                .embed(&[query])
                .context("cannot embed the question")?
                .pop()
                .unwrap_or_default();
            let similar = vectors.similarities(&qv, by_id.keys().copied())?;
            let with = by_id.keys().filter(|id| vectors.contains(id)).count();
            info = Some(esg_score::RetrievalInfo::hybrid(
                vectors.model_id(),
                fusion,
                by_id.len(),
                with,
            ));
            esg_score::fuse(&index.search(query, k), &similar, fusion, k)
        }
    };
    let passages = hits
        .into_iter()
        .enumerate()
        .filter_map(|(i, hit)| {
            let c = by_id.get(hit.chunk_id.as_str())?;
            Some(Passage {
                rank: i + 1,
                score: round_to(hit.score, 4),
                lexical: hit.lexical.map(|x| round_to(x, 4)),
                semantic: hit.semantic.map(|x| round_to(x, 4)),
                filename: names.get(&c.doc_id).cloned().unwrap_or_default(),
                doc_id: c.doc_id.clone(),
                year: c.year,
                page: c.chunk.page,
                chunk_id: c.chunk.chunk_id.clone(),
                char_start: c.chunk.char_start,
                char_end: c.chunk.char_end,
                text: c.chunk.text.clone(),
            })
        })
        .collect();
    Ok(SearchResult {
        years: match year {
            Some(y) => vec![y],
            None => company.years.clone(),
        },
        company: company.name,
        company_key: company.key,
        query: query.to_string(),
        k,
        retrieval: if info.is_some() { "hybrid" } else { "bm25" },
        semantic: info,
        chunks_searched: index.len(),
        passages,
    })
}

/// Runs `esg search`.
pub fn run(
    store: &dyn Store,
    data_dir: &std::path::Path,
    args: &SearchArgs,
) -> anyhow::Result<ExitCode> {
    let query = args.query.join(" ");
    let semantic = crate::embed::semantic(&args.retrieval, data_dir, store)?;
    let result = search(
        store,
        &args.company,
        YearChoice::from_flags(args.year, args.all_years),
        &query,
        args.k,
        semantic.as_ref().map(|(e, f)| (&**e, *f)),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(ExitCode::SUCCESS);
    }
    let years: Vec<String> = result.years.iter().map(i32::to_string).collect();
    println!(
        "{} ({}): {} passage(s) for \"{}\" ({} over {} chunks)",
        result.company,
        years.join(", "),
        result.passages.len(),
        result.query,
        match &result.semantic {
            None => "BM25".to_string(),
            Some(s) => format!(
                "BM25 + {} fused by {}{}, {} of the chunks with a vector",
                s.model.as_deref().unwrap_or("?"),
                s.fusion.unwrap_or("?"),
                s.alpha.map(|a| format!(" {a}")).unwrap_or_default(),
                s.chunks_with_vectors.unwrap_or(0)
            ),
        },
        result.chunks_searched
    );
    for p in &result.passages {
        println!(
            "\n{:>3}. score {:.4}  {}  p. {}  ({}, doc {}, chunk {})",
            p.rank,
            p.score,
            p.filename,
            p.page,
            p.year,
            short(&p.doc_id),
            short(&p.chunk_id)
        );
        for line in wrap(&truncate_words(&p.text, 480), 96) {
            println!("     {line}");
        }
    }
    if result.passages.is_empty() {
        println!("No passage shares a word with the question.");
    }
    Ok(ExitCode::SUCCESS)
}

/// The first 12 characters of an id.
pub(crate) fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

/// `s` cut at a word boundary to at most `max_chars` characters, with `…`
/// when cut.
pub(crate) fn truncate_words(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out = String::new();
    for w in s.split_whitespace() {
        let extra = usize::from(!out.is_empty()) + w.chars().count();
        if out.chars().count() + extra + 1 > max_chars {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    if out.is_empty() {
        out = s.chars().take(max_chars.saturating_sub(1)).collect();
    }
    out.push('…');
    out
}

/// Greedy word wrap at `width` characters (a longer word stays whole).
pub(crate) fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in s.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(name: &str) -> CompanySummary {
        CompanySummary {
            key: company_key(name),
            name: name.to_string(),
            years: vec![2022, 2024],
            documents: 1,
            pages: 1,
            chunks: 1,
            sector: None,
        }
    }

    #[test]
    fn close_matches_return_the_company_summaries() {
        let all: Vec<CompanySummary> = ["Northwind Components Ltd", "Netflix Inc."]
            .iter()
            .map(|n| company(n))
            .collect();
        let found: Vec<&str> = close_matches("Nortwind", &all, 5)
            .into_iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(found, ["Northwind Components Ltd"]);
    }

    #[test]
    fn messages_name_what_is_on_file() {
        let e = TargetError::UnknownCompany {
            name: "Nortwind".into(),
            close: vec!["Northwind Components Ltd".into()],
            on_file: vec!["Northwind Components Ltd".into()],
        };
        assert_eq!(
            e.to_string(),
            "no company named \"Nortwind\" is on file; did you mean \"Northwind Components Ltd\"?"
        );
        let e = TargetError::UnknownCompany {
            name: "Acme".into(),
            close: vec![],
            on_file: vec!["A".into(), "B".into()],
        };
        assert!(e.to_string().contains("companies on file: \"A\", \"B\""));
        let c = company("Northwind Components Ltd");
        let e = resolve_year(&c, YearChoice::Year(2019)).unwrap_err();
        assert!(e.to_string().contains("years on file: 2022, 2024"), "{e}");
        assert_eq!(resolve_year(&c, YearChoice::Latest), Ok(Some(2024)));
        assert_eq!(resolve_year(&c, YearChoice::All), Ok(None));
        assert_eq!(resolve_year(&c, YearChoice::Year(2022)), Ok(Some(2022)));
    }

    #[test]
    fn truncation_and_wrapping_keep_words_whole() {
        assert_eq!(truncate_words("short", 10), "short");
        let t = truncate_words("one two three four five", 12);
        assert_eq!(t, "one two…");
        assert!(t.chars().count() <= 12);
        assert_eq!(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
    }
}
