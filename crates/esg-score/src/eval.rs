//! Measuring the rubric's criteria against sentences labelled with TCFD
//! recommended disclosures, with a keyword-count baseline for comparison.
//!
//! # Label → theme mapping
//!
//! | TCFD disclosure | what it asks | themes |
//! |---|---|---|
//! | Governance a) | board oversight of climate issues | OSP |
//! | Governance b) | management's role | OSP |
//! | Strategy a) | climate risks and opportunities identified | RMM |
//! | Strategy b) | their impact on business, strategy, financial planning | RMM |
//! | Strategy c) | resilience of the strategy under scenarios | RMM, TSP |
//! | Risk Management a) | processes to identify and assess climate risks | RMM |
//! | Risk Management b) | processes to manage them | RMM |
//! | Risk Management c) | integration into overall risk management | RMM |
//! | Metrics and Targets a) | metrics used (emissions, energy, carbon price…) | EI, GHG |
//! | Metrics and Targets b) | Scope 1, 2, 3 emissions | GHG |
//! | Metrics and Targets c) | targets used | TSP |
//!
//! DM (data maturity) and RD (reporting & disclosure) have no TCFD
//! counterpart, so they have no gold positives here; their predictions are
//! counted but not scored. Rows with another label are skipped (counted as
//! `unmapped`).
//!
//! # Measures
//!
//! A sentence is *predicted* for a theme when any criterion of that theme
//! (stages 1–4) hits it under the rubric's negation guard. Per theme:
//! precision, recall and F1 against the mapped gold themes; micro averages
//! over the themes that have gold positives.
//!
//! The **baseline** counts occurrences of the theme's query terms (the
//! same BM25 tokens used for retrieval) in the sentence and predicts the
//! theme when the count reaches a threshold. The threshold (1, 2 or 3) is
//! chosen per theme to maximise the baseline's F1 *on the evaluated rows
//! themselves*, so the comparison is tilted in the baseline's favour. The
//! table also shows the F1 of predicting the theme for every row ("all
//! F1"): with noisy, unbalanced labels (RMM is 58% of the rows) that trivial
//! rule is hard to beat on recall, and a threshold-1 keyword baseline is
//! close to it.

use crate::error::CsvError;
use crate::retrieve::tokenize;
use crate::rubric::Rubric;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Themes a TCFD disclosure label maps to (see the module docs); empty for unknown labels.
pub fn tcfd_label_themes(label: &str) -> &'static [&'static str] {
    let l: String = label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    match l.trim_end_matches(')') {
        "governance a" | "governance b" => &["OSP"],
        "strategy a" | "strategy b" => &["RMM"],
        "strategy c" => &["RMM", "TSP"],
        "risk management a" | "risk management b" | "risk management c" => &["RMM"],
        "metrics and targets a" => &["EI", "GHG"],
        "metrics and targets b" => &["GHG"],
        "metrics and targets c" => &["TSP"],
        _ => &[],
    }
}

/// Counts and ratios of a binary classifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// False negatives.
    pub fn_: usize,
}

impl Prf {
    /// `tp / (tp + fp)`, 0 when nothing was predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// `tp / (tp + fn)`, 0 when there are no positives.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    fn add(&mut self, pred: bool, gold: bool) {
        match (pred, gold) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }
    fn merge(&mut self, o: &Prf) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Evaluation of one theme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThemeEval {
    /// Theme code.
    pub theme: String,
    /// Rows whose label maps to this theme.
    pub gold: usize,
    /// Rows the rubric predicts for this theme.
    pub predicted: usize,
    /// The rubric's criteria.
    pub rubric: Prf,
    /// The keyword-count baseline at its best threshold.
    pub baseline: Prf,
    /// Threshold chosen for the baseline.
    pub baseline_threshold: usize,
    /// Reference: predicting the theme for every row (recall 1, precision = prevalence).
    pub all_rows: Prf,
}

/// Result of [`evaluate_labels`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Rows evaluated (mapped labels).
    pub rows: usize,
    /// Rows skipped because their label maps to no theme.
    pub unmapped: usize,
    /// Per theme, in rubric order.
    pub themes: Vec<ThemeEval>,
    /// Micro average of the rubric over themes with gold positives.
    pub micro_rubric: Prf,
    /// Micro average of the baseline over themes with gold positives.
    pub micro_baseline: Prf,
}

impl EvalReport {
    /// A plain-text table of the report.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rows evaluated: {}  (skipped, unmapped label: {})",
            self.rows, self.unmapped
        );
        let _ = writeln!(
            s,
            "{:<6} {:>5} {:>5} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>3} | {:>6}",
            "theme", "gold", "pred", "P", "R", "F1", "base P", "base R", "base F1", "t", "all F1"
        );
        let _ = writeln!(s, "{}", "-".repeat(83));
        for t in &self.themes {
            if t.gold == 0 {
                let _ = writeln!(
                    s,
                    "{:<6} {:>5} {:>5} | {:>20} | {:>26}",
                    t.theme, 0, t.predicted, "n/a (no gold)", "n/a"
                );
                continue;
            }
            let _ = writeln!(
                s,
                "{:<6} {:>5} {:>5} | {:>6.3} {:>6.3} {:>6.3} | {:>6.3} {:>6.3} {:>7.3} {:>3} | {:>6.3}",
                t.theme,
                t.gold,
                t.predicted,
                t.rubric.precision(),
                t.rubric.recall(),
                t.rubric.f1(),
                t.baseline.precision(),
                t.baseline.recall(),
                t.baseline.f1(),
                t.baseline_threshold,
                t.all_rows.f1()
            );
        }
        let _ = writeln!(s, "{}", "-".repeat(83));
        let (m, b) = (&self.micro_rubric, &self.micro_baseline);
        let _ = writeln!(
            s,
            "{:<6} {:>5} {:>5} | {:>6.3} {:>6.3} {:>6.3} | {:>6.3} {:>6.3} {:>7.3}",
            "micro",
            m.tp + m.fn_,
            m.tp + m.fp,
            m.precision(),
            m.recall(),
            m.f1(),
            b.precision(),
            b.recall(),
            b.f1()
        );
        s
    }
}

/// Themes whose criteria hit `text`.
pub fn predict_themes(rubric: &Rubric, text: &str) -> BTreeSet<String> {
    rubric
        .match_text(text)
        .into_iter()
        .map(|h| h.theme)
        .collect()
}

/// Per theme, how many tokens of `text` are terms of the theme's query.
pub fn keyword_counts(rubric: &Rubric, text: &str) -> BTreeMap<String, usize> {
    let tokens = tokenize(text);
    rubric
        .themes
        .iter()
        .map(|t| {
            let terms: BTreeSet<String> = tokenize(&t.query).into_iter().collect();
            (
                t.code.clone(),
                tokens.iter().filter(|x| terms.contains(*x)).count(),
            )
        })
        .collect()
}

/// One evaluated row: gold themes, rubric predictions, keyword counts per theme.
type Judged<'a> = (BTreeSet<&'a str>, BTreeSet<String>, BTreeMap<String, usize>);

/// Precision/recall of the rubric's criteria and of the keyword baseline on
/// `(text, label)` rows labelled with TCFD disclosures. The baseline uses, per
/// theme, the threshold (1–3) that scores best on these same rows.
pub fn evaluate_labels(rubric: &Rubric, rows: &[(String, String)]) -> EvalReport {
    evaluate_labels_with(rubric, rows, None)
}

/// As [`evaluate_labels`], but the baseline uses the given per-theme
/// thresholds (e.g. those chosen on a development split) instead of the best
/// ones for `rows`: the fair comparison on held-out rows.
pub fn evaluate_labels_with(
    rubric: &Rubric,
    rows: &[(String, String)],
    thresholds: Option<&BTreeMap<String, usize>>,
) -> EvalReport {
    const THRESHOLDS: [usize; 3] = [1, 2, 3];
    let mut unmapped = 0;
    let mut scored: Vec<Judged<'_>> = Vec::new();
    for (text, label) in rows {
        let gold: BTreeSet<&str> = tcfd_label_themes(label).iter().copied().collect();
        if gold.is_empty() {
            unmapped += 1;
            continue;
        }
        scored.push((
            gold,
            predict_themes(rubric, text),
            keyword_counts(rubric, text),
        ));
    }
    let mut themes = Vec::new();
    let (mut micro_rubric, mut micro_baseline) = (Prf::default(), Prf::default());
    for t in &rubric.themes {
        let code = t.code.as_str();
        let mut r = Prf::default();
        let mut gold_n = 0;
        let mut predicted = 0;
        for (gold, pred, _) in &scored {
            let g = gold.contains(code);
            let p = pred.contains(code);
            gold_n += usize::from(g);
            predicted += usize::from(p);
            r.add(p, g);
        }
        let fixed = thresholds.and_then(|m| m.get(code)).copied();
        let candidates: Vec<usize> = fixed.map_or_else(|| THRESHOLDS.to_vec(), |t| vec![t]);
        let mut best = (Prf::default(), candidates[0]);
        let mut best_f1 = -1.0;
        for th in candidates {
            let mut b = Prf::default();
            for (gold, _, counts) in &scored {
                b.add(
                    counts.get(code).copied().unwrap_or(0) >= th,
                    gold.contains(code),
                );
            }
            if b.f1() > best_f1 {
                best_f1 = b.f1();
                best = (b, th);
            }
        }
        if gold_n > 0 {
            micro_rubric.merge(&r);
            micro_baseline.merge(&best.0);
        }
        themes.push(ThemeEval {
            theme: code.to_string(),
            gold: gold_n,
            predicted,
            rubric: r,
            baseline: best.0,
            baseline_threshold: best.1,
            all_rows: Prf {
                tp: gold_n,
                fp: scored.len() - gold_n,
                fn_: 0,
            },
        });
    }
    EvalReport {
        rows: scored.len(),
        unmapped,
        themes,
        micro_rubric,
        micro_baseline,
    }
}

/// Parses CSV text (RFC 4180): comma-separated fields, double-quoted fields
/// may contain commas, newlines and doubled quotes (`""`); `\r\n` and `\n`
/// both end records. A trailing newline does not create an empty record.
///
/// # Errors
/// [`CsvError`] for an unterminated quoted field or text after a closing quote.
pub fn parse_csv(input: &str) -> Result<Vec<Vec<String>>, CsvError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = input.chars().peekable();
    let mut line = 1;
    let mut at_field_start = true;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match c {
            '"' if at_field_start => {
                let start_line = line;
                loop {
                    match chars.next() {
                        None => return Err(CsvError::UnterminatedQuote { line: start_line }),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                    }
                }
                match chars.peek() {
                    None | Some(',') | Some('\n') | Some('\r') => {}
                    Some(&other) => {
                        return Err(CsvError::TrailingAfterQuote { line, found: other });
                    }
                }
                at_field_start = false;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
                line += 1;
                any = false;
            }
            other => {
                field.push(other);
                at_field_start = false;
            }
        }
    }
    if any || !record.is_empty() || !field.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_commas_newlines() {
        let t = "question,text,label\r\n\"Q, one\",\"He said \"\"hi\"\"\nthen left\",Governance a)\nq2,plain,Strategy b)\n";
        let rows = parse_csv(t).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            vec!["Q, one", "He said \"hi\"\nthen left", "Governance a)"]
        );
        assert_eq!(rows[2], vec!["q2", "plain", "Strategy b)"]);
        assert_eq!(
            parse_csv("a,\"b").unwrap_err(),
            CsvError::UnterminatedQuote { line: 1 }
        );
        assert!(matches!(
            parse_csv("\"a\"b,c"),
            Err(CsvError::TrailingAfterQuote { .. })
        ));
        assert_eq!(parse_csv("a,,b").unwrap(), vec![vec!["a", "", "b"]]);
        assert!(parse_csv("").unwrap().is_empty());
    }

    #[test]
    fn label_mapping_covers_all_eleven_disclosures() {
        let labels = [
            "Governance a)",
            "Governance b)",
            "Strategy a)",
            "Strategy b)",
            "Strategy c)",
            "Risk Management a)",
            "Risk Management b)",
            "Risk Management c)",
            "Metrics and Targets a)",
            "Metrics and Targets b)",
            "Metrics and Targets c)",
        ];
        for l in labels {
            assert!(!tcfd_label_themes(l).is_empty(), "{l}");
        }
        assert_eq!(tcfd_label_themes("Strategy c)"), &["RMM", "TSP"]);
        assert_eq!(tcfd_label_themes("metrics and  targets b)"), &["GHG"]);
        assert!(tcfd_label_themes("Other").is_empty());
    }

    #[test]
    fn prf_arithmetic() {
        let p = Prf {
            tp: 3,
            fp: 1,
            fn_: 3,
        };
        assert!((p.precision() - 0.75).abs() < 1e-12);
        assert!((p.recall() - 0.5).abs() < 1e-12);
        assert!((p.f1() - 0.6).abs() < 1e-12);
        assert_eq!(Prf::default().f1(), 0.0);
    }

    #[test]
    fn evaluation_counts_predictions_and_baseline() {
        let r = Rubric::builtin();
        let rows: Vec<(String, String)> = vec![
            (
                "The Board oversees climate-related risks through its Sustainability Committee."
                    .into(),
                "Governance a)".into(),
            ),
            (
                "We aim to reduce Scope 1 and 2 emissions by 50% by 2030 against a 2019 baseline."
                    .into(),
                "Metrics and Targets c)".into(),
            ),
            (
                "Unrelated sentence about cafeteria menus.".into(),
                "Strategy a)".into(),
            ),
            ("Something".into(), "Not a TCFD label".into()),
        ];
        let rep = evaluate_labels(&r, &rows);
        assert_eq!((rep.rows, rep.unmapped), (3, 1));
        let osp = rep.themes.iter().find(|t| t.theme == "OSP").unwrap();
        assert_eq!((osp.gold, osp.rubric.tp), (1, 1));
        let tsp = rep.themes.iter().find(|t| t.theme == "TSP").unwrap();
        assert_eq!(tsp.rubric.tp, 1);
        let rmm = rep.themes.iter().find(|t| t.theme == "RMM").unwrap();
        assert_eq!(rmm.rubric.fn_, 1);
        assert!(rep.to_table().contains("micro"));
    }
}
