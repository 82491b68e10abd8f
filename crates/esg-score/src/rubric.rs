//! The rubric as data: themes × stages × machine-checkable criteria,
//! framework signals, negative overrides, freshness and bands.
//!
//! The shipped rubric is `rubric/v3.0.json` at the workspace root, embedded
//! at compile time ([`Rubric::builtin`]). A user rubric is loaded with
//! [`Rubric::from_json_str`] or [`Rubric::from_path`]; both validate the
//! whole document and report the first problem with the path of the field
//! that causes it, e.g. `themes[2].stages[3].criteria[0].patterns: must not be empty`.
//!
//! # Shape of the file
//!
//! ```text
//! { "version", "name"?, "description"?,
//!   "scoring": { "min_quotes_per_stage", "max_quotes_per_criterion", "quote_max_words", "default_k",
//!                "freshness": { "max_age_months", "confidence_penalty", "assumed_publication_month" },
//!                "confidence_bands": [ { "name", "min", "max" } ], "grade_bands": [ ... ] },
//!   "negation_guard": { "before": [re], "before_words", "after": [re]?, "after_words",
//!                       "exceptions": [re]?, "ignore_sentences": [raw re]? },
//!   "themes": [ { "code", "name", "description"?, "query",
//!                 "stages": [ { "stage", "label", "descriptor", "core_rule"?: "any"|"all", "query"?,
//!                               "criteria": [ { "id", "description", "core"?, "patterns": [re],
//!                                               "proximity"?: [ { "terms": [re], "near": [re], "within" } ],
//!                                               "context"?: [re], "negations"?: [re],
//!                                               "negation_guard"?: bool, "implies"?: [id],
//!                                               "corroborated_by"?: [id] } ] } ] } ],
//!   "frameworks": [ { "id", "name", "description"?, "theme", "min_stage"?, "supports"?: [stage],
//!                     "requires": [[id]] } ],
//!   "overrides": [ { "id", "description", "cap", "themes": [code], "min_quotes",
//!                    "patterns": [re], "proximity"?, "context"?, "negations"?, "negation_guard"? } ] }
//! ```
//!
//! `[re]` are patterns in the sense of [`crate::matcher`]; `requires` is a
//! list of groups, each satisfied by any one of its criteria.
//!
//! What is validated: the version is set; there are exactly 7 themes with
//! distinct upper-case codes and a retrieval query; every theme lists stages
//! 0–4 in order, with labels and descriptors; stage 0 has no criteria, every
//! other stage has criteria and at least one `core` criterion; criterion ids
//! are unique; every pattern compiles, is non-empty and cannot match the
//! empty string; proximity rules have both sides and a window of 1–25 words;
//! implications point to an existing criterion of the same theme at the
//! same or a lower stage; frameworks and overrides name existing themes and
//! criteria and sensible stages; confidence bands are contiguous in 0.1
//! steps within 0–1 and grade bands cover 0.0–4.0 the same way; the scoring
//! numbers are in range. Unknown fields are rejected, so a typo such as
//! `paterns` does not silently disable a criterion.

use crate::error::RubricError;
use crate::matcher::{
    LazyRegex, MatchRule, NegationGuard, Proximity, compile_raw, compile_terms, raw_source,
    terms_source,
};
use crate::retrieve::tokenize;
use esg_core::sha256_hex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// The shipped rubric file (`rubric/v3.0.json`), embedded at compile time.
pub const BUILTIN_RUBRIC_JSON: &str = include_str!("../../../rubric/v3.0.json");

/// Number of themes a rubric must define.
pub const THEME_COUNT: usize = 7;
/// Highest stage of every theme.
pub const MAX_STAGE: u8 = 4;

/// A validated, compiled rubric.
#[derive(Debug, Clone)]
pub struct Rubric {
    /// Rubric version, e.g. `"3.0"`.
    pub version: String,
    /// Human-readable name.
    pub name: String,
    /// Free-text description.
    pub description: String,
    /// Scoring numbers: quotes per stage, quote length, bands, freshness.
    pub scoring: ScoringRules,
    /// The rubric-wide negation guard applied to criteria.
    pub negation_guard: NegationGuard,
    /// The themes, in rubric order.
    pub themes: Vec<Theme>,
    /// Framework signals that set minimum stages.
    pub frameworks: Vec<Framework>,
    /// Negative overrides that cap stages.
    pub overrides: Vec<Override>,
    sha256: String,
    /// criterion id → (theme index, stage, criterion index within stage).
    index: BTreeMap<String, (usize, u8, usize)>,
}

/// Numbers that drive scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringRules {
    /// Distinct quotes (from distinct chunks) a stage above 0 needs.
    pub min_quotes_per_stage: usize,
    /// At most this many quotes are kept per criterion.
    pub max_quotes_per_criterion: usize,
    /// Longest quote, in words.
    pub quote_max_words: usize,
    /// Default number of chunks retrieved per theme.
    pub default_k: usize,
    /// The freshness rule.
    pub freshness: Freshness,
    /// Confidence bands (weak, adequate, strong), ascending.
    pub confidence_bands: Vec<Band>,
    /// Overall grade bands over the mean stage, ascending.
    pub grade_bands: Vec<Band>,
}

/// Evidence older than `max_age_months` lowers confidence by `confidence_penalty`.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    /// Maximum age before the penalty applies.
    pub max_age_months: u32,
    /// Confidence subtracted for stale evidence.
    pub confidence_penalty: f64,
    /// Month of its year a report is assumed to speak for (12: year end).
    pub assumed_publication_month: u32,
}

/// A named closed interval `[min, max]` in steps of 0.1.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Band name (`weak`, `Established`, ...).
    pub name: String,
    /// Lowest value in the band.
    pub min: f64,
    /// Highest value in the band.
    pub max: f64,
}

impl Band {
    /// Lower bound in tenths.
    pub(crate) fn min_tenths(&self) -> i64 {
        tenths(self.min)
    }
    /// Upper bound in tenths.
    pub(crate) fn max_tenths(&self) -> i64 {
        tenths(self.max)
    }
}

/// `x` in tenths, rounded.
pub(crate) fn tenths(x: f64) -> i64 {
    (x * 10.0).round() as i64
}

/// One theme (e.g. `GHG`) with its five stages.
#[derive(Debug, Clone)]
pub struct Theme {
    /// Short upper-case code (`TSP`, `OSP`, `DM`, `GHG`, `RD`, `EI`, `RMM`).
    pub code: String,
    /// Full name.
    pub name: String,
    /// What the theme measures.
    pub description: String,
    /// BM25 query used to retrieve the theme's chunks.
    pub query: String,
    /// Stages 0–4, in order.
    pub stages: Vec<Stage>,
}

/// Whether any or all core criteria of a stage must hold for its rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreRule {
    /// One core criterion evidenced or implied is enough.
    Any,
    /// Every core criterion must be evidenced or implied.
    All,
}

/// One stage of a theme.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Stage number, 0–4.
    pub stage: u8,
    /// Short label.
    pub label: String,
    /// What a company at this stage does.
    pub descriptor: String,
    /// How core criteria combine for the ladder.
    pub core_rule: CoreRule,
    /// Optional extra retrieval query for this stage's evidence, fused with the theme query.
    pub query: Option<String>,
    /// Criteria that support this stage.
    pub criteria: Vec<Criterion>,
}

/// A machine-checkable criterion.
#[derive(Debug, Clone)]
pub struct Criterion {
    /// Unique id, e.g. `TSP.4.sbti_validated`.
    pub id: String,
    /// What the criterion looks for.
    pub description: String,
    /// Part of the stage's rung of the ladder.
    pub core: bool,
    /// How the criterion is recognised.
    pub rule: MatchRule,
    /// Criteria (same theme, same or lower stage) that evidence of this one implies.
    pub implies: Vec<String>,
    /// Criteria (same theme) whose quotes corroborate a single quote of
    /// this one: when this criterion's stage has exactly one distinct quote
    /// and it is one of this criterion's, a quote of a listed criterion from
    /// another chunk and location counts as the stage's second quote (the
    /// two-distinct-quotes rule itself is unchanged). Empty for most
    /// criteria: a mention that is not decisive (e.g. "TCFD" in one chunk)
    /// is not corroborated this way.
    pub corroborated_by: Vec<String>,
}

/// A framework signal that sets a minimum stage when its criteria are evidenced.
#[derive(Debug, Clone)]
pub struct Framework {
    /// Unique id, e.g. `sbti_validated`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What the signal means.
    pub description: String,
    /// Theme it applies to.
    pub theme: String,
    /// Minimum stage it sets, if any (informational signals have none).
    pub min_stage: Option<u8>,
    /// Stages the framework supports without setting a minimum (informational).
    pub supports: Vec<u8>,
    /// Groups of criterion ids: every group needs one evidenced criterion.
    pub requires: Vec<Vec<String>>,
}

/// A negative override that caps a theme's stage.
#[derive(Debug, Clone)]
pub struct Override {
    /// Unique id, e.g. `override.failed_assurance`.
    pub id: String,
    /// What the override detects.
    pub description: String,
    /// Highest stage allowed when detected.
    pub cap: u8,
    /// Themes it applies to.
    pub themes: Vec<String>,
    /// Quotes needed to trigger it.
    pub min_quotes: usize,
    /// How it is recognised.
    pub rule: MatchRule,
}

/// A criterion hit in a text, see [`Rubric::match_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionHit {
    /// Theme code.
    pub theme: String,
    /// Stage of the criterion.
    pub stage: u8,
    /// Criterion id.
    pub criterion: String,
    /// Byte range of the hit in the text.
    pub span: Range<usize>,
}

static BUILTIN: OnceLock<Rubric> = OnceLock::new();

impl Rubric {
    /// The shipped rubric v3.0 (parsed once, then cloned).
    ///
    /// # Panics
    /// Never in a released build: the embedded file is validated by the
    /// crate's tests.
    ///
    /// Its patterns are compiled on first use (see [`LazyRegex`]): loading
    /// it costs about a millisecond, so a process that finds the matches
    /// it needs already stored never compiles a regex. The crate's tests
    /// validate and compile every pattern of the shipped file.
    pub fn builtin() -> Rubric {
        BUILTIN
            .get_or_init(|| {
                let parsed = serde_json::from_str::<Value>(BUILTIN_RUBRIC_JSON)
                    .map_err(RubricError::from)
                    .and_then(|v| parse_rubric(&v, Mode::Trusted));
                let mut rubric = parsed
                    .unwrap_or_else(|e| panic!("the shipped rubric/v3.0.json is invalid: {e}"));
                rubric.sha256 = sha256_hex(BUILTIN_RUBRIC_JSON);
                rubric
            })
            .clone()
    }

    /// Compiles every pattern now (a no-op for a rubric loaded with
    /// [`Rubric::from_json_str`], whose patterns are compiled at load), so
    /// that no request pays for it later. A server calls this at start-up.
    pub fn compile_all(&self) {
        self.negation_guard.compile();
        for t in &self.themes {
            for s in &t.stages {
                for c in &s.criteria {
                    c.rule.compile();
                }
            }
        }
        for o in &self.overrides {
            o.rule.compile();
        }
    }

    /// Parses and validates a rubric from JSON text.
    ///
    /// # Errors
    /// [`RubricError::Json`] for malformed JSON, [`RubricError::Invalid`]
    /// (with the field path) for anything that breaks the rules.
    pub fn from_json_str(json: &str) -> Result<Rubric, RubricError> {
        let value: Value = serde_json::from_str(json)?;
        let mut rubric = parse_rubric(&value, Mode::Validate)?;
        rubric.sha256 = sha256_hex(json);
        Ok(rubric)
    }

    /// Reads, parses and validates a rubric file.
    ///
    /// # Errors
    /// [`RubricError::Io`] when the file cannot be read, otherwise as
    /// [`Rubric::from_json_str`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Rubric, RubricError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RubricError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Rubric::from_json_str(&text)
    }

    /// SHA-256 of the JSON text the rubric was loaded from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The theme with this code.
    pub fn theme(&self, code: &str) -> Option<&Theme> {
        self.themes.iter().find(|t| t.code == code)
    }

    /// The criterion with this id, with its theme and stage number.
    pub fn criterion(&self, id: &str) -> Option<(&Theme, u8, &Criterion)> {
        let &(t, s, c) = self.index.get(id)?;
        let theme = &self.themes[t];
        Some((theme, s, &theme.stages[usize::from(s)].criteria[c]))
    }

    /// `ids` plus every criterion they imply, transitively.
    pub fn implied_closure<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = ids.into_iter().map(str::to_string).collect();
        while let Some(id) = todo.pop() {
            if !out.insert(id.clone()) {
                continue;
            }
            if let Some((_, _, c)) = self.criterion(&id) {
                todo.extend(c.implies.iter().cloned());
            }
        }
        out
    }

    /// Byte ranges where `rule` hits in `text`, under this rubric's negation guard.
    pub fn find(&self, rule: &MatchRule, text: &str) -> Vec<Range<usize>> {
        rule.find(text, &self.negation_guard)
    }

    /// Every criterion hit in `text`, in rubric order (theme, stage, criterion), then by position.
    pub fn match_text(&self, text: &str) -> Vec<CriterionHit> {
        let mut out = Vec::new();
        for theme in &self.themes {
            for stage in &theme.stages {
                for c in &stage.criteria {
                    for span in self.find(&c.rule, text) {
                        out.push(CriterionHit {
                            theme: theme.code.clone(),
                            stage: stage.stage,
                            criterion: c.id.clone(),
                            span,
                        });
                    }
                }
            }
        }
        out
    }

    /// Theme codes in rubric order.
    pub fn theme_codes(&self) -> Vec<&str> {
        self.themes.iter().map(|t| t.code.as_str()).collect()
    }
}

// ---------------------------------------------------------------------------
// Parsing with field paths

type R<T> = Result<T, RubricError>;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A JSON object being read field by field, remembering which fields were used.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &str) -> R<Self> {
        match v {
            Value::Object(map) => Ok(Obj {
                path: path.to_string(),
                map,
                used: Vec::new(),
            }),
            _ => Err(RubricError::invalid(
                if path.is_empty() { "$" } else { path },
                "expected an object",
            )),
        }
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn req(&mut self, key: &'static str) -> R<&'a Value> {
        self.get(key)
            .ok_or_else(|| RubricError::invalid(self.at(key), "is required"))
    }

    fn string(&mut self, key: &'static str) -> R<String> {
        let v = self.req(key)?;
        let s = v
            .as_str()
            .ok_or_else(|| RubricError::invalid(self.at(key), "expected a string"))?;
        if s.trim().is_empty() {
            return Err(RubricError::invalid(self.at(key), "must not be empty"));
        }
        Ok(s.to_string())
    }

    fn opt_string(&mut self, key: &'static str) -> R<String> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| RubricError::invalid(self.at(key), "expected a string")),
        }
    }

    fn uint(&mut self, key: &'static str, lo: u64, hi: u64) -> R<u64> {
        let v = self.req(key)?;
        let n = v
            .as_u64()
            .ok_or_else(|| RubricError::invalid(self.at(key), "expected a non-negative integer"))?;
        if n < lo || n > hi {
            return Err(RubricError::invalid(
                self.at(key),
                format!("must be between {lo} and {hi}, found {n}"),
            ));
        }
        Ok(n)
    }

    fn opt_uint(&mut self, key: &'static str, lo: u64, hi: u64) -> R<Option<u64>> {
        if self.map.get(key).is_none_or(Value::is_null) {
            self.used.push(key);
            return Ok(None);
        }
        self.uint(key, lo, hi).map(Some)
    }

    fn number(&mut self, key: &'static str, lo: f64, hi: f64) -> R<f64> {
        let v = self.req(key)?;
        let n = v
            .as_f64()
            .ok_or_else(|| RubricError::invalid(self.at(key), "expected a number"))?;
        if !(lo..=hi).contains(&n) {
            return Err(RubricError::invalid(
                self.at(key),
                format!("must be between {lo} and {hi}, found {n}"),
            ));
        }
        Ok(n)
    }

    fn boolean(&mut self, key: &'static str, default: bool) -> R<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| RubricError::invalid(self.at(key), "expected true or false")),
        }
    }

    fn array(&mut self, key: &'static str, required: bool) -> R<Vec<(String, &'a Value)>> {
        let path = self.at(key);
        let v = match self.get(key) {
            None if required => return Err(RubricError::invalid(path, "is required")),
            None => return Ok(Vec::new()),
            Some(v) => v,
        };
        let items = v
            .as_array()
            .ok_or_else(|| RubricError::invalid(path.clone(), "expected an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect())
    }

    fn strings(&mut self, key: &'static str, required: bool) -> R<Vec<String>> {
        let items = self.array(key, required)?;
        items
            .into_iter()
            .map(|(p, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| RubricError::invalid(p, "expected a string"))
            })
            .collect()
    }

    fn finish(self) -> R<()> {
        for key in self.map.keys() {
            if !self.used.contains(&key.as_str()) {
                return Err(RubricError::invalid(self.at(key), "unknown field"));
            }
        }
        Ok(())
    }
}

/// How much of a rubric's patterns [`parse_rubric`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Parse and compile every pattern now; errors name the field.
    Validate,
    /// Keep the sources and compile on first use: for the built-in rubric,
    /// which the crate's tests validate.
    Trusted,
}

fn terms(path: &str, patterns: &[String], m: Mode) -> R<Option<LazyRegex>> {
    match m {
        Mode::Validate => compile_terms(patterns)
            .map(|r| r.map(LazyRegex::compiled))
            .map_err(|(i, e)| RubricError::invalid(format!("{path}[{i}]"), e)),
        Mode::Trusted => Ok(terms_source(patterns).map(LazyRegex::deferred)),
    }
}

fn raw(path: &str, patterns: &[String], m: Mode) -> R<Option<LazyRegex>> {
    match m {
        Mode::Validate => compile_raw(patterns)
            .map(|r| r.map(LazyRegex::compiled))
            .map_err(|(i, e)| RubricError::invalid(format!("{path}[{i}]"), e)),
        Mode::Trusted => Ok(raw_source(patterns).map(LazyRegex::deferred)),
    }
}

fn parse_rubric(v: &Value, m: Mode) -> R<Rubric> {
    let mut o = Obj::new(v, "")?;
    let version = o.string("version")?;
    let name = o.opt_string("name")?;
    let description = o.opt_string("description")?;
    let scoring = parse_scoring(o.req("scoring")?, "scoring")?;
    let negation_guard = parse_guard(o.req("negation_guard")?, "negation_guard", m)?;

    let theme_items = o.array("themes", true)?;
    if theme_items.len() != THEME_COUNT {
        return Err(RubricError::invalid(
            "themes",
            format!("expected {THEME_COUNT} themes, found {}", theme_items.len()),
        ));
    }
    let mut themes = Vec::with_capacity(THEME_COUNT);
    let mut seen_codes: BTreeMap<String, String> = BTreeMap::new();
    for (path, tv) in theme_items {
        let theme = parse_theme(tv, &path, m)?;
        if let Some(first) = seen_codes.insert(theme.code.clone(), path.clone()) {
            return Err(RubricError::invalid(
                format!("{path}.code"),
                format!(
                    "duplicate theme code \"{}\" (first used at {first})",
                    theme.code
                ),
            ));
        }
        themes.push(theme);
    }

    // Criterion index and cross-references.
    let mut index: BTreeMap<String, (usize, u8, usize)> = BTreeMap::new();
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    for (ti, t) in themes.iter().enumerate() {
        for s in &t.stages {
            for (ci, c) in s.criteria.iter().enumerate() {
                let path = format!("themes[{ti}].stages[{}].criteria[{ci}].id", s.stage);
                if let Some(first) = paths.get(&c.id) {
                    return Err(RubricError::invalid(
                        path,
                        format!(
                            "duplicate criterion id \"{}\" (first used at {first})",
                            c.id
                        ),
                    ));
                }
                paths.insert(c.id.clone(), path);
                index.insert(c.id.clone(), (ti, s.stage, ci));
            }
        }
    }
    for (ti, t) in themes.iter().enumerate() {
        for s in &t.stages {
            for (ci, c) in s.criteria.iter().enumerate() {
                for (ii, target) in c.implies.iter().enumerate() {
                    let path = format!(
                        "themes[{ti}].stages[{}].criteria[{ci}].implies[{ii}]",
                        s.stage
                    );
                    let Some(&(tt, ts, _)) = index.get(target) else {
                        return Err(RubricError::invalid(
                            path,
                            format!("unknown criterion \"{target}\""),
                        ));
                    };
                    if target == &c.id {
                        return Err(RubricError::invalid(
                            path,
                            "a criterion must not imply itself",
                        ));
                    }
                    if tt != ti {
                        return Err(RubricError::invalid(
                            path,
                            format!("\"{target}\" belongs to another theme"),
                        ));
                    }
                    if ts > s.stage {
                        return Err(RubricError::invalid(
                            path,
                            format!(
                                "\"{target}\" is at stage {ts}; a criterion may only imply criteria at its own or a lower stage"
                            ),
                        ));
                    }
                }
                for (ii, target) in c.corroborated_by.iter().enumerate() {
                    let path = format!(
                        "themes[{ti}].stages[{}].criteria[{ci}].corroborated_by[{ii}]",
                        s.stage
                    );
                    let Some(&(tt, _, _)) = index.get(target) else {
                        return Err(RubricError::invalid(
                            path,
                            format!("unknown criterion \"{target}\""),
                        ));
                    };
                    if target == &c.id {
                        return Err(RubricError::invalid(
                            path,
                            "a criterion is not corroborated by itself (that is the two-quotes rule)",
                        ));
                    }
                    if tt != ti {
                        return Err(RubricError::invalid(
                            path,
                            format!("\"{target}\" belongs to another theme"),
                        ));
                    }
                }
            }
        }
    }

    let codes: BTreeSet<String> = themes.iter().map(|t| t.code.clone()).collect();
    let mut frameworks = Vec::new();
    let mut fw_ids = BTreeSet::new();
    for (path, fv) in o.array("frameworks", false)? {
        let f = parse_framework(fv, &path, &codes, &index, &themes)?;
        if !fw_ids.insert(f.id.clone()) {
            return Err(RubricError::invalid(
                format!("{path}.id"),
                format!("duplicate framework id \"{}\"", f.id),
            ));
        }
        frameworks.push(f);
    }
    let mut overrides = Vec::new();
    let mut ov_ids = BTreeSet::new();
    for (path, ov) in o.array("overrides", false)? {
        let x = parse_override(ov, &path, &codes, m)?;
        if !ov_ids.insert(x.id.clone()) || index.contains_key(&x.id) {
            return Err(RubricError::invalid(
                format!("{path}.id"),
                format!("duplicate id \"{}\"", x.id),
            ));
        }
        overrides.push(x);
    }
    o.finish()?;
    Ok(Rubric {
        version,
        name,
        description,
        scoring,
        negation_guard,
        themes,
        frameworks,
        overrides,
        sha256: String::new(),
        index,
    })
}

fn parse_scoring(v: &Value, path: &str) -> R<ScoringRules> {
    let mut o = Obj::new(v, path)?;
    let min_quotes_per_stage = o.uint("min_quotes_per_stage", 1, 10)? as usize;
    let max_quotes_per_criterion = o.uint("max_quotes_per_criterion", 1, 20)? as usize;
    let quote_max_words = o.uint("quote_max_words", 5, 100)? as usize;
    let default_k = o.uint("default_k", 1, 100)? as usize;
    let fv = o.req("freshness")?;
    let mut f = Obj::new(fv, &o.at("freshness"))?;
    let freshness = Freshness {
        max_age_months: f.uint("max_age_months", 1, 600)? as u32,
        confidence_penalty: f.number("confidence_penalty", 0.0, 1.0)?,
        assumed_publication_month: f.uint("assumed_publication_month", 1, 12)? as u32,
    };
    f.finish()?;
    let confidence_bands = parse_bands(&mut o, "confidence_bands", 0.0, 1.0, false)?;
    let grade_bands = parse_bands(&mut o, "grade_bands", 0.0, f64::from(MAX_STAGE), true)?;
    o.finish()?;
    Ok(ScoringRules {
        min_quotes_per_stage,
        max_quotes_per_criterion,
        quote_max_words,
        default_k,
        freshness,
        confidence_bands,
        grade_bands,
    })
}

/// Bands must be ascending, in 0.1 steps, contiguous (next min = previous
/// max + 0.1), inside `[lo, hi]`, and — when `cover` — span exactly `lo..=hi`.
fn parse_bands(o: &mut Obj<'_>, key: &'static str, lo: f64, hi: f64, cover: bool) -> R<Vec<Band>> {
    let items = o.array(key, true)?;
    let path = o.at(key);
    if items.is_empty() {
        return Err(RubricError::invalid(path, "must not be empty"));
    }
    let mut bands: Vec<Band> = Vec::new();
    for (p, bv) in items {
        let mut b = Obj::new(bv, &p)?;
        let band = Band {
            name: b.string("name")?,
            min: b.number("min", lo, hi)?,
            max: b.number("max", lo, hi)?,
        };
        b.finish()?;
        for (field, x) in [("min", band.min), ("max", band.max)] {
            if ((x * 10.0).round() - x * 10.0).abs() > 1e-9 {
                return Err(RubricError::invalid(
                    format!("{p}.{field}"),
                    "must be a multiple of 0.1",
                ));
            }
        }
        if band.min_tenths() > band.max_tenths() {
            return Err(RubricError::invalid(
                format!("{p}.max"),
                "must not be below min",
            ));
        }
        if let Some(prev) = bands
            .last()
            .filter(|prev| band.min_tenths() != prev.max_tenths() + 1)
        {
            return Err(RubricError::invalid(
                format!("{p}.min"),
                format!(
                    "bands must be contiguous: expected {:.1} after \"{}\" ends at {:.1}",
                    prev.max + 0.1,
                    prev.name,
                    prev.max
                ),
            ));
        }
        bands.push(band);
    }
    if cover {
        let (first, last) = (&bands[0], &bands[bands.len() - 1]);
        if first.min_tenths() != tenths(lo) || last.max_tenths() != tenths(hi) {
            return Err(RubricError::invalid(
                path,
                format!("bands must cover {lo:.1} to {hi:.1}"),
            ));
        }
    }
    Ok(bands)
}

fn parse_guard(v: &Value, path: &str, m: Mode) -> R<NegationGuard> {
    let mut o = Obj::new(v, path)?;
    let before = o.strings("before", true)?;
    let before_words = o.uint("before_words", 0, 20)? as usize;
    let after = o.strings("after", false)?;
    let after_words = o.uint("after_words", 0, 20)? as usize;
    let exceptions = o.strings("exceptions", false)?;
    let ignore_sentences = o.strings("ignore_sentences", false)?;
    let guard = NegationGuard {
        before_re: terms(&o.at("before"), &before, m)?,
        after_re: terms(&o.at("after"), &after, m)?,
        exceptions_re: terms(&o.at("exceptions"), &exceptions, m)?,
        ignore_re: raw(&o.at("ignore_sentences"), &ignore_sentences, m)?,
        before,
        before_words,
        after,
        after_words,
        exceptions,
        ignore_sentences,
    };
    o.finish()?;
    Ok(guard)
}

fn parse_theme(v: &Value, path: &str, m: Mode) -> R<Theme> {
    let mut o = Obj::new(v, path)?;
    let code = o.string("code")?;
    if !(1..=8).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(RubricError::invalid(
            o.at("code"),
            "must be 1 to 8 upper-case ASCII letters",
        ));
    }
    let name = o.string("name")?;
    let description = o.opt_string("description")?;
    let query = o.string("query")?;
    if tokenize(&query).is_empty() {
        return Err(RubricError::invalid(
            o.at("query"),
            "must contain at least one search term that is not a stop word",
        ));
    }
    let items = o.array("stages", true)?;
    if items.len() != usize::from(MAX_STAGE) + 1 {
        return Err(RubricError::invalid(
            o.at("stages"),
            format!(
                "must list stages 0 to {MAX_STAGE} in order, found {} stages",
                items.len()
            ),
        ));
    }
    let mut stages = Vec::with_capacity(items.len());
    for (i, (p, sv)) in items.into_iter().enumerate() {
        stages.push(parse_stage(sv, &p, i as u8, m)?);
    }
    o.finish()?;
    Ok(Theme {
        code,
        name,
        description,
        query,
        stages,
    })
}

fn parse_stage(v: &Value, path: &str, expected: u8, m: Mode) -> R<Stage> {
    let mut o = Obj::new(v, path)?;
    let stage = o.uint("stage", 0, u64::from(MAX_STAGE))? as u8;
    if stage != expected {
        return Err(RubricError::invalid(
            o.at("stage"),
            format!("stages must be 0 to {MAX_STAGE} in order: expected {expected}, found {stage}"),
        ));
    }
    let label = o.string("label")?;
    let descriptor = o.string("descriptor")?;
    let core_rule = match o.get("core_rule").map(|v| v.as_str()) {
        None | Some(Some("any")) => CoreRule::Any,
        Some(Some("all")) => CoreRule::All,
        Some(_) => {
            return Err(RubricError::invalid(
                o.at("core_rule"),
                "expected \"any\" or \"all\"",
            ));
        }
    };
    let query = match o.get("query") {
        None => None,
        Some(v) => {
            let q = v
                .as_str()
                .ok_or_else(|| RubricError::invalid(o.at("query"), "expected a string"))?;
            if tokenize(q).is_empty() {
                return Err(RubricError::invalid(
                    o.at("query"),
                    "must contain at least one search term that is not a stop word",
                ));
            }
            Some(q.to_string())
        }
    };
    let items = o.array("criteria", true)?;
    if stage == 0 && !items.is_empty() {
        return Err(RubricError::invalid(
            o.at("criteria"),
            "stage 0 is the floor and takes no criteria",
        ));
    }
    if stage > 0 && items.is_empty() {
        return Err(RubricError::invalid(o.at("criteria"), "must not be empty"));
    }
    let mut criteria = Vec::with_capacity(items.len());
    for (p, cv) in items {
        criteria.push(parse_criterion(cv, &p, m)?);
    }
    if stage > 0 && !criteria.iter().any(|c| c.core) {
        return Err(RubricError::invalid(
            o.at("criteria"),
            "at least one criterion must be marked core",
        ));
    }
    o.finish()?;
    Ok(Stage {
        stage,
        label,
        descriptor,
        core_rule,
        query,
        criteria,
    })
}

fn parse_rule(o: &mut Obj<'_>, default_guard: bool, m: Mode) -> R<MatchRule> {
    let patterns = o.strings("patterns", false)?;
    let mut proximity = Vec::new();
    for (p, pv) in o.array("proximity", false)? {
        let mut po = Obj::new(pv, &p)?;
        let t = po.strings("terms", true)?;
        let n = po.strings("near", true)?;
        let within = po.uint("within", 1, 25)? as usize;
        let terms_re = terms(&po.at("terms"), &t, m)?
            .ok_or_else(|| RubricError::invalid(po.at("terms"), "must not be empty"))?;
        let near_re = terms(&po.at("near"), &n, m)?
            .ok_or_else(|| RubricError::invalid(po.at("near"), "must not be empty"))?;
        po.finish()?;
        proximity.push(Proximity {
            terms: t,
            near: n,
            within,
            terms_re,
            near_re,
        });
    }
    if patterns.is_empty() && proximity.is_empty() {
        return Err(RubricError::invalid(o.at("patterns"), "must not be empty"));
    }
    let context = o.strings("context", false)?;
    let negations = o.strings("negations", false)?;
    let negation_guard = o.boolean("negation_guard", default_guard)?;
    Ok(MatchRule {
        patterns_re: terms(&o.at("patterns"), &patterns, m)?,
        context_re: terms(&o.at("context"), &context, m)?,
        negations_re: terms(&o.at("negations"), &negations, m)?,
        patterns,
        proximity,
        context,
        negations,
        negation_guard,
    })
}

fn parse_criterion(v: &Value, path: &str, m: Mode) -> R<Criterion> {
    let mut o = Obj::new(v, path)?;
    let id = o.string("id")?;
    if id.chars().any(char::is_whitespace) {
        return Err(RubricError::invalid(
            o.at("id"),
            "must not contain white space",
        ));
    }
    let description = o.string("description")?;
    let core = o.boolean("core", false)?;
    let rule = parse_rule(&mut o, true, m)?;
    let implies = o.strings("implies", false)?;
    let corroborated_by = o.strings("corroborated_by", false)?;
    o.finish()?;
    Ok(Criterion {
        id,
        description,
        core,
        rule,
        implies,
        corroborated_by,
    })
}

fn parse_framework(
    v: &Value,
    path: &str,
    codes: &BTreeSet<String>,
    index: &BTreeMap<String, (usize, u8, usize)>,
    themes: &[Theme],
) -> R<Framework> {
    let mut o = Obj::new(v, path)?;
    let id = o.string("id")?;
    let name = o.string("name")?;
    let description = o.opt_string("description")?;
    let theme = o.string("theme")?;
    if !codes.contains(&theme) {
        return Err(RubricError::invalid(
            o.at("theme"),
            format!("unknown theme \"{theme}\""),
        ));
    }
    let min_stage = o
        .opt_uint("min_stage", 1, u64::from(MAX_STAGE))?
        .map(|s| s as u8);
    let mut supports = Vec::new();
    for (p, sv) in o.array("supports", false)? {
        match sv.as_u64() {
            Some(s @ 1..=4) => supports.push(s as u8),
            _ => {
                return Err(RubricError::invalid(
                    p,
                    format!("must be a stage between 1 and {MAX_STAGE}"),
                ));
            }
        }
    }
    let groups = o.array("requires", true)?;
    if groups.is_empty() {
        return Err(RubricError::invalid(o.at("requires"), "must not be empty"));
    }
    let mut requires = Vec::new();
    for (gp, gv) in groups {
        let ids = gv.as_array().ok_or_else(|| {
            RubricError::invalid(gp.clone(), "expected an array of criterion ids")
        })?;
        if ids.is_empty() {
            return Err(RubricError::invalid(gp, "must not be empty"));
        }
        let mut group = Vec::new();
        for (i, idv) in ids.iter().enumerate() {
            let p = format!("{gp}[{i}]");
            let cid = idv
                .as_str()
                .ok_or_else(|| RubricError::invalid(p.clone(), "expected a criterion id"))?;
            let Some(&(ti, _, _)) = index.get(cid) else {
                return Err(RubricError::invalid(
                    p,
                    format!("unknown criterion \"{cid}\""),
                ));
            };
            if themes[ti].code != theme {
                return Err(RubricError::invalid(
                    p,
                    format!("\"{cid}\" is not a criterion of theme {theme}"),
                ));
            }
            group.push(cid.to_string());
        }
        requires.push(group);
    }
    o.finish()?;
    Ok(Framework {
        id,
        name,
        description,
        theme,
        min_stage,
        supports,
        requires,
    })
}

fn parse_override(v: &Value, path: &str, codes: &BTreeSet<String>, m: Mode) -> R<Override> {
    let mut o = Obj::new(v, path)?;
    let id = o.string("id")?;
    let description = o.string("description")?;
    let cap = o.uint("cap", 0, u64::from(MAX_STAGE) - 1)? as u8;
    let themes = o.strings("themes", true)?;
    if themes.is_empty() {
        return Err(RubricError::invalid(o.at("themes"), "must not be empty"));
    }
    for (i, t) in themes.iter().enumerate() {
        if !codes.contains(t) {
            return Err(RubricError::invalid(
                format!("{}[{i}]", o.at("themes")),
                format!("unknown theme \"{t}\""),
            ));
        }
    }
    let min_quotes = o.uint("min_quotes", 1, 10)? as usize;
    let rule = parse_rule(&mut o, false, m)?;
    o.finish()?;
    Ok(Override {
        id,
        description,
        cap,
        themes,
        min_quotes,
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(f: impl FnOnce(&mut Value)) -> Result<Rubric, RubricError> {
        let mut v: Value = serde_json::from_str(BUILTIN_RUBRIC_JSON).unwrap();
        f(&mut v);
        Rubric::from_json_str(&v.to_string())
    }

    fn err_path(r: Result<Rubric, RubricError>) -> String {
        match r {
            Err(RubricError::Invalid { path, message }) => format!("{path}: {message}"),
            Err(e) => panic!("expected a validation error, got {e}"),
            Ok(_) => panic!("expected a validation error, rubric was accepted"),
        }
    }

    /// The built-in rubric is parsed without compiling its patterns
    /// ([`Rubric::builtin`]); this is the check that every one of them is
    /// valid: the shipped file passes the full validation, the trusted and
    /// validated parses agree, and every deferred pattern compiles.
    #[test]
    fn builtin_rubric_validates_fully_and_every_deferred_pattern_compiles() {
        let validated = Rubric::from_json_str(BUILTIN_RUBRIC_JSON).unwrap();
        let trusted = Rubric::builtin();
        assert_eq!(validated.sha256(), trusted.sha256());
        trusted.compile_all();
        let text = "We set science-based targets validated by the SBTi in 2021 and \
                    report Scope 1, 2 and 3 emissions with limited assurance.";
        assert_eq!(validated.match_text(text), trusted.match_text(text));
        assert!(!trusted.match_text(text).is_empty());
    }

    #[test]
    fn builtin_rubric_is_valid_and_complete() {
        let r = Rubric::builtin();
        assert_eq!(r.version, "3.0");
        assert_eq!(
            r.theme_codes(),
            vec!["TSP", "OSP", "DM", "GHG", "RD", "EI", "RMM"]
        );
        assert_eq!(r.scoring.min_quotes_per_stage, 2);
        assert_eq!(r.scoring.quote_max_words, 30);
        assert_eq!(r.scoring.freshness.max_age_months, 24);
        assert!((r.scoring.freshness.confidence_penalty - 0.1).abs() < 1e-12);
        let cb: Vec<(&str, i64, i64)> = r
            .scoring
            .confidence_bands
            .iter()
            .map(|b| (b.name.as_str(), b.min_tenths(), b.max_tenths()))
            .collect();
        assert_eq!(
            cb,
            vec![("weak", 2, 4), ("adequate", 5, 7), ("strong", 8, 10)]
        );
        let gb: Vec<(&str, i64, i64)> = r
            .scoring
            .grade_bands
            .iter()
            .map(|b| (b.name.as_str(), b.min_tenths(), b.max_tenths()))
            .collect();
        assert_eq!(
            gb,
            vec![
                ("Nascent", 0, 9),
                ("Emerging", 10, 19),
                ("Established", 20, 29),
                ("Advanced", 30, 35),
                ("Leading", 36, 40)
            ]
        );
        for t in &r.themes {
            assert_eq!(t.stages.len(), 5, "{}", t.code);
            for s in &t.stages[1..] {
                assert!(!s.criteria.is_empty(), "{} stage {}", t.code, s.stage);
            }
        }
        // Framework minimums required by DESIGN §2.
        let fw = |id: &str| {
            r.frameworks
                .iter()
                .find(|f| f.id == id)
                .unwrap_or_else(|| panic!("framework {id}"))
        };
        assert_eq!(
            (
                fw("sbti_commitment").theme.as_str(),
                fw("sbti_commitment").min_stage
            ),
            ("TSP", Some(3))
        );
        assert_eq!(
            (
                fw("sbti_validated").theme.as_str(),
                fw("sbti_validated").min_stage
            ),
            ("TSP", Some(4))
        );
        assert_eq!(
            (fw("tcfd_issb").theme.as_str(), fw("tcfd_issb").min_stage),
            ("RD", Some(2))
        );
        assert_eq!(
            (
                fw("assured_tagged").theme.as_str(),
                fw("assured_tagged").min_stage
            ),
            ("RD", Some(4))
        );
        assert_eq!(
            (
                fw("ghg_protocol").theme.as_str(),
                fw("ghg_protocol").min_stage
            ),
            ("GHG", Some(3))
        );
        assert_eq!(
            fw("ghg_protocol").requires.len(),
            3,
            "GHG Protocol needs Scope 3 and assurance too"
        );
        assert_eq!(
            (
                fw("reasonable_assurance").theme.as_str(),
                fw("reasonable_assurance").min_stage
            ),
            ("GHG", Some(4))
        );
        assert_eq!(
            (fw("csrd_esrs").min_stage, fw("csrd_esrs").supports.clone()),
            (None, vec![3, 4])
        );
        let caps: Vec<(&str, u8)> = r.overrides.iter().map(|o| (o.id.as_str(), o.cap)).collect();
        assert_eq!(
            caps,
            vec![
                ("override.auditor_contradiction", 2),
                ("override.failed_assurance", 1)
            ]
        );
        // The ladder: validated SBTi implies quantitative targets.
        let implied = r.implied_closure(["TSP.4.sbti_validated"]);
        assert!(implied.contains("TSP.2.quantitative_target"));
        assert!(implied.contains("TSP.1.qualitative_goal"));
        assert!(!r.sha256().is_empty());
    }

    #[test]
    fn validation_errors_name_the_field() {
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| {
                    v["themes"][2]["stages"][3]["criteria"][0]["patterns"] = Value::Array(vec![])
                }),
                "themes[2].stages[3].criteria[0].patterns: must not be empty",
            ),
            (
                Box::new(|v| {
                    v["themes"][0]["stages"][1]["criteria"][0]["patterns"][1] = "(oops".into()
                }),
                "themes[0].stages[1].criteria[0].patterns[1]: invalid regex",
            ),
            (
                Box::new(|v| v["themes"][1]["code"] = "TSP".into()),
                "themes[1].code: duplicate theme code \"TSP\"",
            ),
            (
                Box::new(|v| {
                    v["themes"].as_array_mut().unwrap().pop();
                }),
                "themes: expected 7 themes, found 6",
            ),
            (
                Box::new(|v| v["themes"][4]["stages"][2]["stage"] = 3.into()),
                "themes[4].stages[2].stage: stages must be 0 to 4 in order",
            ),
            (
                Box::new(|v| {
                    v["themes"][5]["stages"].as_array_mut().unwrap().pop();
                }),
                "themes[5].stages: must list stages 0 to 4",
            ),
            (
                Box::new(|v| {
                    v["themes"][0]["stages"][4]["criteria"][0]["implies"][0] = "TSP.9.nope".into()
                }),
                "themes[0].stages[4].criteria[0].implies[0]: unknown criterion \"TSP.9.nope\"",
            ),
            (
                Box::new(|v| {
                    v["themes"][0]["stages"][1]["criteria"][0]["implies"] =
                        serde_json::json!(["TSP.4.sbti_validated"])
                }),
                "themes[0].stages[1].criteria[0].implies[0]: \"TSP.4.sbti_validated\" is at stage 4",
            ),
            (
                Box::new(|v| {
                    v["themes"][0]["stages"][4]["criteria"][0]["corroborated_by"] =
                        serde_json::json!(["GHG.1.emissions_reported"])
                }),
                "themes[0].stages[4].criteria[0].corroborated_by[0]: \"GHG.1.emissions_reported\" belongs to another theme",
            ),
            (
                Box::new(|v| {
                    v["themes"][0]["stages"][4]["criteria"][0]["corroborated_by"] =
                        serde_json::json!(["TSP.4.sbti_validated"])
                }),
                "themes[0].stages[4].criteria[0].corroborated_by[0]: a criterion is not corroborated by itself (that is the two-quotes rule)",
            ),
            (
                Box::new(|v| {
                    v["themes"][3]["stages"][1]["criteria"][0]["paterns"] = serde_json::json!(["x"])
                }),
                "themes[3].stages[1].criteria[0].paterns: unknown field",
            ),
            (
                Box::new(|v| v["scoring"]["grade_bands"][4]["max"] = 3.9.into()),
                "scoring.grade_bands: bands must cover 0.0 to 4.0",
            ),
            (
                Box::new(|v| v["scoring"]["confidence_bands"][1]["min"] = 0.6.into()),
                "scoring.confidence_bands[1].min: bands must be contiguous",
            ),
            (
                Box::new(|v| v["scoring"]["quote_max_words"] = 0.into()),
                "scoring.quote_max_words: must be between 5 and 100",
            ),
            (
                Box::new(|v| v["frameworks"][0]["requires"][0][0] = "GHG.3.ghg_protocol".into()),
                "frameworks[0].requires[0][0]: \"GHG.3.ghg_protocol\" is not a criterion of theme TSP",
            ),
            (
                Box::new(|v| v["frameworks"][0]["theme"] = "XYZ".into()),
                "frameworks[0].theme: unknown theme \"XYZ\"",
            ),
            (
                Box::new(|v| v["overrides"][1]["cap"] = 4.into()),
                "overrides[1].cap: must be between 0 and 3",
            ),
            (
                Box::new(|v| {
                    v["themes"][6]["stages"][3]["criteria"][0]["proximity"] =
                        serde_json::json!([{"terms": ["a"], "near": [], "within": 3}])
                }),
                "themes[6].stages[3].criteria[0].proximity[0].near: must not be empty",
            ),
            (
                Box::new(|v| v["themes"][2]["stages"][1]["criteria"][0]["core"] = false.into()),
                "themes[2].stages[1].criteria: at least one criterion must be marked core",
            ),
            (
                Box::new(|v| v["themes"][2]["query"] = "the of and".into()),
                "themes[2].query: must contain at least one search term",
            ),
            (
                Box::new(|v| v["negation_guard"]["before"][0] = "[".into()),
                "negation_guard.before[0]: invalid regex",
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("version");
                }),
                "version: is required",
            ),
        ];
        for (f, want) in cases {
            let got = err_path(edit(f));
            assert!(got.starts_with(want), "got {got:?}, want prefix {want:?}");
        }
    }

    #[test]
    fn malformed_json_and_missing_file_are_errors() {
        assert!(matches!(
            Rubric::from_json_str("{"),
            Err(RubricError::Json(_))
        ));
        assert!(matches!(
            Rubric::from_path("/nonexistent/rubric.json"),
            Err(RubricError::Io { .. })
        ));
        assert_eq!(
            err_path(Rubric::from_json_str("[]")),
            "$: expected an object"
        );
    }

    #[test]
    fn duplicate_criterion_ids_are_rejected() {
        let r = edit(|v| {
            let id = v["themes"][0]["stages"][1]["criteria"][0]["id"].clone();
            v["themes"][0]["stages"][2]["criteria"][1]["id"] = id;
        });
        let e = err_path(r);
        assert!(
            e.starts_with("themes[0].stages[2].criteria[1].id: duplicate criterion id"),
            "{e}"
        );
    }
}
