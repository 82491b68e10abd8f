//! Machine-checkable criteria: word-boundary patterns, proximity rules,
//! context requirements and negation guards.
//!
//! A pattern is a case-insensitive regular expression (Rust `regex` syntax)
//! that must start and end at word edges (`\b{start-half}` /
//! `\b{end-half}`, so `30%` or `2°C` work too); a literal space in it
//! matches any run of white space, or a single optional one when a
//! quantifier follows (`ISO ?14001`). Matching is done sentence by sentence
//! (sentences as split by `esg_core::chunk::sentences`; a line break ends a
//! sentence), so no hit spans two sentences. A criterion *hits*
//! a sentence when one of its patterns matches, or when a term of a
//! proximity rule lies within `within` words of one of its `near` terms in
//! the same sentence. A hit is then dropped when:
//!
//! * the criterion has `context` patterns and none occurs in the sentence;
//! * one of the criterion's own `negations` occurs in the sentence;
//! * the rubric-wide [`NegationGuard`] applies: the sentence is boilerplate
//!   (`ignore_sentences`, e.g. a TCFD "Describe the board's oversight…"
//!   prompt), or a negation term ("not", "no", "yet to", "haven't", …) sits
//!   in the same clause within `before_words` words before the hit or inside
//!   it, or an `after` term ("not", "yet to be", …) follows within
//!   `after_words` words. Phrases listed as `exceptions` ("not only",
//!   "no later than") never count as negations.
//!
//! So "We have not yet set targets" or "No external assurance was obtained"
//! do not hit, while "net zero no later than 2040" does.

use crate::text::{sentence_spans, trim_range, word_index_at, word_spans};
use regex::Regex;
use std::ops::Range;
use std::sync::OnceLock;

/// A combined pattern that is compiled on first use.
///
/// Compiling the built-in rubric's ~110 combined patterns takes ~180 ms of
/// CPU (Unicode case folding and word boundaries make large automata; even
/// parsing alone is ~35 ms, measured with regex 1.12), far more than an
/// `esg score` process should pay when the matches it needs are already
/// stored. So the built-in rubric keeps each pattern's source and compiles
/// it the first time a text is matched; a rubric loaded from a file is
/// validated and compiled at load ([`crate::Rubric::from_json_str`]), and a
/// server compiles everything at start-up ([`crate::Rubric::compile_all`]).
#[derive(Debug, Clone)]
pub struct LazyRegex {
    source: String,
    re: OnceLock<Regex>,
}

impl LazyRegex {
    /// An already compiled pattern.
    pub(crate) fn compiled(re: Regex) -> Self {
        LazyRegex {
            source: re.as_str().to_string(),
            re: OnceLock::from(re),
        }
    }

    /// A pattern compiled on first use. Its source must compile (the
    /// built-in rubric is checked by the crate's tests).
    pub(crate) fn deferred(source: String) -> Self {
        LazyRegex {
            source,
            re: OnceLock::new(),
        }
    }

    /// The compiled pattern.
    ///
    /// # Panics
    /// When a deferred source does not compile, which the validation of
    /// every rubric source rules out.
    pub fn get(&self) -> &Regex {
        self.re.get_or_init(|| {
            Regex::new(&self.source).unwrap_or_else(|e| {
                panic!("rubric pattern {:?} does not compile: {e}", self.source)
            })
        })
    }

    /// The combined pattern's source.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// The single word-bounded, case-insensitive alternation that
/// [`compile_terms`] compiles, without checking it. `None` for no patterns.
pub(crate) fn terms_source(patterns: &[String]) -> Option<String> {
    if patterns.is_empty() {
        return None;
    }
    let parts: Vec<String> = patterns
        .iter()
        .map(|p| format!("(?:{})", spaces_to_regex(p.trim())))
        .collect();
    Some(format!(
        r"(?i)\b{{start-half}}(?:{})\b{{end-half}}",
        parts.join("|")
    ))
}

/// The alternation that [`compile_raw`] compiles, without checking it.
pub(crate) fn raw_source(patterns: &[String]) -> Option<String> {
    if patterns.is_empty() {
        return None;
    }
    let parts: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
    Some(format!("(?i){}", parts.join("|")))
}

/// Characters that end a clause for the negation windows.
const CLAUSE_BREAKS: &[char] = &[',', ';', ':', '(', ')', '•', '|'];

/// Compiles a list of patterns into one word-bounded, case-insensitive
/// alternation. Returns `Ok(None)` for an empty list.
///
/// # Errors
/// Returns `(index, message)` of the first pattern that is empty, does not
/// compile, or matches the empty string.
pub fn compile_terms(patterns: &[String]) -> Result<Option<Regex>, (usize, String)> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(patterns.len());
    for (i, p) in patterns.iter().enumerate() {
        if p.trim().is_empty() {
            return Err((i, "must not be empty".into()));
        }
        let body = spaces_to_regex(p.trim());
        // Validate by parsing only (cheap); the regex is compiled once, combined.
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(true)
            .build()
            .parse(&format!("(?:{body})"))
            .map_err(|e| {
                (
                    i,
                    format!("invalid regex: {}", error_summary(&e.to_string())),
                )
            })?;
        if hir.properties().minimum_len() == Some(0) {
            return Err((i, "pattern matches the empty string".into()));
        }
        parts.push(format!("(?:{body})"));
    }
    let all = terms_source(patterns).unwrap_or_default();
    debug_assert_eq!(
        all,
        format!(r"(?i)\b{{start-half}}(?:{})\b{{end-half}}", parts.join("|"))
    );
    Regex::new(&all).map(Some).map_err(|e| {
        (
            0,
            format!(
                "patterns do not compile together: {}",
                error_summary(&e.to_string())
            ),
        )
    })
}

/// Compiles raw (not word-bounded) case-insensitive patterns, used for
/// sentence-level filters such as `ignore_sentences`.
///
/// # Errors
/// Returns `(index, message)` of the first pattern that does not compile.
pub fn compile_raw(patterns: &[String]) -> Result<Option<Regex>, (usize, String)> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(patterns.len());
    for (i, p) in patterns.iter().enumerate() {
        if p.trim().is_empty() {
            return Err((i, "must not be empty".into()));
        }
        Regex::new(&format!("(?i){p}")).map_err(|e| {
            (
                i,
                format!("invalid regex: {}", error_summary(&e.to_string())),
            )
        })?;
        parts.push(format!("(?:{p})"));
    }
    Regex::new(&raw_source(patterns).unwrap_or_default())
        .map(Some)
        .map_err(|e| {
            (
                0,
                format!(
                    "patterns do not compile together: {}",
                    error_summary(&e.to_string())
                ),
            )
        })
}

/// Turns each literal space of a pattern into a white-space matcher: `\s+`,
/// or `\s` when a quantifier follows (so `ISO ?14001` keeps meaning "an
/// optional space"). Spaces inside character classes and escaped spaces
/// are left alone.
pub fn spaces_to_regex(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut chars = p.chars().peekable();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '[' => {
                class_depth += 1;
                out.push(c);
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            ' ' if class_depth == 0 => {
                if matches!(chars.peek(), Some('?' | '*' | '+' | '{')) {
                    out.push_str(r"\s");
                } else {
                    out.push_str(r"\s+");
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The last non-empty line of a regex error (the line that says what is wrong).
fn error_summary(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// "`terms` within `within` words of `near`", inside one sentence.
#[derive(Debug, Clone)]
pub struct Proximity {
    /// Patterns of the first side (e.g. `limited`).
    pub terms: Vec<String>,
    /// Patterns of the second side (e.g. `assurance`).
    pub near: Vec<String>,
    /// Maximum distance in words between the start of both sides (either order).
    pub within: usize,
    pub(crate) terms_re: LazyRegex,
    pub(crate) near_re: LazyRegex,
}

/// The rubric-wide negation guard (see the module documentation).
#[derive(Debug, Clone)]
pub struct NegationGuard {
    /// Negation terms looked for before (and inside) a hit.
    pub before: Vec<String>,
    /// Size of the window before a hit, in words.
    pub before_words: usize,
    /// Negation terms looked for right after a hit ("targets have not been set").
    pub after: Vec<String>,
    /// Size of the window after a hit, in words.
    pub after_words: usize,
    /// Phrases that contain a negation term but do not negate ("no later than").
    pub exceptions: Vec<String>,
    /// Raw patterns of sentences that are never evidence (framework prompts, "N/A").
    pub ignore_sentences: Vec<String>,
    pub(crate) before_re: Option<LazyRegex>,
    pub(crate) after_re: Option<LazyRegex>,
    pub(crate) exceptions_re: Option<LazyRegex>,
    pub(crate) ignore_re: Option<LazyRegex>,
}

impl NegationGuard {
    /// A guard that never negates anything.
    pub fn none() -> Self {
        NegationGuard {
            before: Vec::new(),
            before_words: 0,
            after: Vec::new(),
            after_words: 0,
            exceptions: Vec::new(),
            ignore_sentences: Vec::new(),
            before_re: None,
            after_re: None,
            exceptions_re: None,
            ignore_re: None,
        }
    }

    /// Forces compilation of every pattern of the guard.
    pub(crate) fn compile(&self) {
        for re in [
            &self.before_re,
            &self.after_re,
            &self.exceptions_re,
            &self.ignore_re,
        ]
        .into_iter()
        .flatten()
        {
            re.get();
        }
    }

    fn is_ignored_sentence(&self, sentence: &str) -> bool {
        self.ignore_re
            .as_ref()
            .is_some_and(|r| r.get().is_match(sentence.trim()))
    }

    /// `true` when `re` matches inside `window` (absolute byte range of
    /// `text`) other than within an exception phrase of the sentence.
    fn negation_in(
        &self,
        re: &Option<LazyRegex>,
        text: &str,
        sentence: &Range<usize>,
        window: Range<usize>,
    ) -> bool {
        let Some(re) = re.as_ref().map(LazyRegex::get) else {
            return false;
        };
        if window.start >= window.end {
            return false;
        }
        let exceptions: Vec<Range<usize>> = self
            .exceptions_re
            .as_ref()
            .map(|e| {
                e.get()
                    .find_iter(&text[sentence.clone()])
                    .map(|m| (sentence.start + m.start())..(sentence.start + m.end()))
                    .collect()
            })
            .unwrap_or_default();
        re.find_iter(&text[window.clone()]).any(|m| {
            let (s, e) = (window.start + m.start(), window.start + m.end());
            !exceptions
                .iter()
                .any(|x| x.start <= s && e <= x.end || (s < x.end && x.start < e))
        })
    }

    /// `true` when the hit `hit` inside `sentence` is negated.
    pub(crate) fn negates(&self, text: &str, sentence: &Range<usize>, hit: &Range<usize>) -> bool {
        // Before: from the clause start (or `before_words` words back) to the hit's end.
        let head = &text[sentence.start..hit.start];
        let clause_start = head.rfind(CLAUSE_BREAKS).map_or(sentence.start, |i| {
            sentence.start + i + head[i..].chars().next().map_or(1, char::len_utf8)
        });
        let words = word_spans(text, clause_start..hit.start);
        let keep = self.before_words.min(words.len());
        let from = if keep == 0 {
            hit.start
        } else {
            words[words.len() - keep].start
        };
        if self.negation_in(&self.before_re, text, sentence, from..hit.end) {
            return true;
        }
        // After: up to `after_words` words, within the clause.
        let tail = &text[hit.end..sentence.end];
        let clause_end = tail
            .find(CLAUSE_BREAKS)
            .map_or(sentence.end, |i| hit.end + i);
        let words = word_spans(text, hit.end..clause_end);
        let to = words
            .get(self.after_words.min(words.len()).saturating_sub(1))
            .map_or(hit.end, |w| w.end);
        self.negation_in(&self.after_re, text, sentence, hit.end..to)
    }
}

/// How a criterion (or override) is recognised in text.
#[derive(Debug, Clone)]
pub struct MatchRule {
    /// Word-bounded patterns; any one may hit.
    pub patterns: Vec<String>,
    /// Proximity rules; any one may hit.
    pub proximity: Vec<Proximity>,
    /// When non-empty, the sentence of a hit must contain one of these.
    pub context: Vec<String>,
    /// A hit is dropped when its sentence contains one of these.
    pub negations: Vec<String>,
    /// Whether the rubric-wide [`NegationGuard`] applies.
    pub negation_guard: bool,
    pub(crate) patterns_re: Option<LazyRegex>,
    pub(crate) context_re: Option<LazyRegex>,
    pub(crate) negations_re: Option<LazyRegex>,
}

impl MatchRule {
    /// Byte ranges in `text` where the rule hits, sorted, non-overlapping.
    ///
    /// Every range lies within one sentence and starts and ends on
    /// non-white-space characters.
    pub fn find(&self, text: &str, guard: &NegationGuard) -> Vec<Range<usize>> {
        self.find_in_sentences(text, &sentence_spans(text), guard)
    }

    /// [`MatchRule::find`] with the sentences of `text` already split
    /// (byte spans as [`esg_core::chunk::sentences`] gives them), so that
    /// many rules can be matched on one text without splitting it again.
    pub fn find_in_sentences(
        &self,
        text: &str,
        sentences: &[Range<usize>],
        guard: &NegationGuard,
    ) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        for sentence in sentences {
            let sentence = sentence.clone();
            let s_text = &text[sentence.clone()];
            if self.negation_guard && guard.is_ignored_sentence(s_text) {
                continue;
            }
            if self
                .context_re
                .as_ref()
                .is_some_and(|ctx| !ctx.get().is_match(s_text))
            {
                continue;
            }
            if self
                .negations_re
                .as_ref()
                .is_some_and(|n| n.get().is_match(s_text))
            {
                continue;
            }
            let mut hits: Vec<Range<usize>> = Vec::new();
            if let Some(re) = &self.patterns_re {
                for m in re.get().find_iter(s_text) {
                    hits.push((sentence.start + m.start())..(sentence.start + m.end()));
                }
            }
            if !self.proximity.is_empty() {
                let words = word_spans(text, sentence.clone());
                for p in &self.proximity {
                    hits.extend(p.hits(text, &sentence, &words));
                }
            }
            for h in hits {
                let h = trim_range(text, h);
                if h.is_empty() {
                    continue;
                }
                if self.negation_guard && guard.negates(text, &sentence, &h) {
                    continue;
                }
                out.push(h);
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(out.len());
        for h in out {
            if merged.last().is_some_and(|l| h.start < l.end) {
                continue;
            }
            merged.push(h);
        }
        merged
    }

    /// Forces compilation of every pattern of the rule.
    pub(crate) fn compile(&self) {
        for re in [&self.patterns_re, &self.context_re, &self.negations_re]
            .into_iter()
            .flatten()
        {
            re.get();
        }
        for p in &self.proximity {
            p.terms_re.get();
            p.near_re.get();
        }
    }

    /// `true` when the rule hits anywhere in `text`.
    pub fn is_match(&self, text: &str, guard: &NegationGuard) -> bool {
        !self.find(text, guard).is_empty()
    }
}

impl Proximity {
    /// Hits of this rule inside one sentence: for every `terms` match, the
    /// nearest `near` match within `within` words, as one covering range.
    fn hits(
        &self,
        text: &str,
        sentence: &Range<usize>,
        words: &[Range<usize>],
    ) -> Vec<Range<usize>> {
        let s_text = &text[sentence.clone()];
        let a: Vec<Range<usize>> = self
            .terms_re
            .get()
            .find_iter(s_text)
            .map(|m| (sentence.start + m.start())..(sentence.start + m.end()))
            .collect();
        if a.is_empty() {
            return Vec::new();
        }
        let b: Vec<Range<usize>> = self
            .near_re
            .get()
            .find_iter(s_text)
            .map(|m| (sentence.start + m.start())..(sentence.start + m.end()))
            .collect();
        let mut out = Vec::new();
        for x in &a {
            let wx = word_index_at(words, x.start);
            let best = b
                .iter()
                .filter(|y| y.start >= x.end || y.end <= x.start)
                .map(|y| (word_index_at(words, y.start).abs_diff(wx), y))
                .filter(|(d, _)| *d <= self.within)
                .min_by_key(|(d, y)| (*d, y.start));
            if let Some((_, y)) = best {
                out.push(x.start.min(y.start)..x.end.max(y.end));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> NegationGuard {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let before = s(&["not", "no", "never", "yet to", r"\w+n[’']t"]);
        let after = s(&["not", "yet to be"]);
        let exceptions = s(&["no later than", "not only"]);
        let ignore = s(&[r"^\W*(?:[a-z]\)\s*)?describe\b"]);
        NegationGuard {
            before_re: compile_terms(&before).unwrap().map(LazyRegex::compiled),
            after_re: compile_terms(&after).unwrap().map(LazyRegex::compiled),
            exceptions_re: compile_terms(&exceptions).unwrap().map(LazyRegex::compiled),
            ignore_re: terms_or_raw_deferred(&ignore),
            before,
            before_words: 6,
            after,
            after_words: 4,
            exceptions,
            ignore_sentences: ignore,
        }
    }

    /// A raw guard pattern compiled lazily (as the built-in rubric's are).
    fn terms_or_raw_deferred(p: &[String]) -> Option<LazyRegex> {
        compile_raw(p).unwrap();
        raw_source(p).map(LazyRegex::deferred)
    }

    fn rule(patterns: &[&str]) -> MatchRule {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        MatchRule {
            patterns_re: terms_source(&patterns).map(LazyRegex::deferred),
            patterns,
            proximity: Vec::new(),
            context: Vec::new(),
            negations: Vec::new(),
            negation_guard: true,
            context_re: None,
            negations_re: None,
        }
    }

    #[test]
    fn word_boundaries_and_spaces() {
        let r = rule(&["scope 3", "SBTi?"]);
        let g = NegationGuard::none();
        assert!(r.is_match("our Scope  3 emissions", &g));
        // Matches never cross a paragraph (line) break.
        assert!(!r.is_match("our Scope\n3 emissions", &g));
        assert!(r.is_match("validated by the SBTi.", &g));
        assert!(!r.is_match("scope 30 projects", &g));
        assert!(!r.is_match("SBTIX", &g));
        // Patterns that end in a non-word character still match.
        let pct = rule(&[r"\d+ ?%"]);
        assert!(pct.is_match("a cut of 30% by 2030", &g));
    }

    #[test]
    fn negation_windows() {
        let r = rule(&[
            "set (?:[\\w-]+ ){0,3}targets?",
            "net zero",
            "external assurance",
        ]);
        let g = guard();
        assert!(r.is_match("In 2021 we set science-based targets.", &g));
        assert!(!r.is_match("We have not yet set targets.", &g));
        assert!(!r.is_match("We haven’t set targets yet.", &g));
        assert!(!r.is_match("No external assurance was obtained.", &g));
        assert!(r.is_match("We will reach net zero no later than 2040.", &g));
        // A negation in another clause does not count.
        assert!(r.is_match(
            "Although we have no coal assets, we set reduction targets in 2020.",
            &g
        ));
        // After-window.
        let a = rule(&["external assurance"]);
        assert!(!a.is_match("External assurance was not obtained for 2021.", &g));
        // Boilerplate prompts are ignored.
        let b = rule(&["board"]);
        assert!(!b.is_match(
            "a) Describe the board’s oversight of climate-related risks.",
            &g
        ));
        assert!(b.is_match("The board oversees climate-related risks.", &g));
    }

    #[test]
    fn proximity_within_sentence() {
        let mut r = rule(&[]);
        r.patterns_re = None;
        r.proximity = vec![Proximity {
            terms: vec!["limited".into()],
            near: vec!["assurance".into()],
            within: 4,
            terms_re: LazyRegex::compiled(
                compile_terms(&["limited".to_string()]).unwrap().unwrap(),
            ),
            near_re: LazyRegex::deferred(terms_source(&["assurance".to_string()]).unwrap()),
        }];
        let g = guard();
        let t = "EY provided a limited level of assurance over Scope 1.";
        let hits = r.find(t, &g);
        assert_eq!(hits.len(), 1);
        assert_eq!(&t[hits[0].clone()], "limited level of assurance");
        assert!(!r.is_match(
            "A limited number of sites. Assurance was provided by EY.",
            &g
        ));
        assert!(!r.is_match(
            "Supply is limited in several markets and we rely on partners for assurance.",
            &g
        ));
    }

    #[test]
    fn spaces_become_whitespace_matchers() {
        assert_eq!(spaces_to_regex("scope 3"), r"scope\s+3");
        assert_eq!(spaces_to_regex("ISO ?14001"), r"ISO\s?14001");
        assert_eq!(spaces_to_regex("(?:\\w+ ){0,3}x"), r"(?:\w+\s+){0,3}x");
        assert_eq!(spaces_to_regex("[a ]b\\ c"), r"[a ]b\ c");
        let r = rule(&["ISO ?14001", r"(?:1\.5|2) ?° ?C scenarios?"]);
        let g = NegationGuard::none();
        assert!(r.is_match("certified to ISO 14001 and ISO14001:2015", &g));
        assert!(r.is_match("under a 2°C scenario", &g));
        assert!(r.is_match("the 1.5 °C scenario", &g));
    }

    #[test]
    fn compile_errors_name_the_pattern() {
        let bad = vec!["ok".to_string(), "(unclosed".to_string()];
        assert_eq!(compile_terms(&bad).unwrap_err().0, 1);
        let empty = vec!["a?".to_string()];
        assert!(
            compile_terms(&empty)
                .unwrap_err()
                .1
                .contains("empty string")
        );
        let blank = vec![" ".to_string()];
        assert!(
            compile_terms(&blank)
                .unwrap_err()
                .1
                .contains("must not be empty")
        );
    }
}
