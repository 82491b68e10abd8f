//! Text clean-up: from extractor output to the page text that is stored,
//! chunked and quoted.
//!
//! The rules, in order:
//! 1. Unicode: NFKC (ligatures such as `ﬁ` become `fi`, NBSP becomes a space),
//!    soft hyphens and zero-width characters removed, other control
//!    characters turned into spaces, `\r\n` into `\n`.
//! 2. White space inside a line collapsed to single spaces; lines trimmed.
//! 3. Running headers and footers (a line with a letter that recurs, digits
//!    aside, at the top or bottom of many pages) and bare page numbers
//!    removed.
//! 4. Lines joined into paragraphs, one paragraph per output line; a word
//!    hyphenated across a line end is joined (`sustain-` + `ability`), and a
//!    compound cut at its hyphen keeps it (`Climate-` + `Related`).
//! 5. On a page with a layout (PDF), a blank line in the extracted text marks
//!    the edge of a block no chunk may join (between two table cells, see
//!    `esg_ingest::layout`; before text read from annotations, which is not
//!    in the layout), and stays a blank line
//!    ([`crate::chunk::BLOCK_BREAK`]) in the stored text. Elsewhere (HTML,
//!    plain text, PDF pages read by the second reader) blank lines are plain
//!    paragraph breaks, as before.
//! 6. A line the extractor marked with [`HARD_BREAK`] starts a new
//!    paragraph: a reader that orders the page by position (poppler) may
//!    read other text between it and the line before, so no sentence, match
//!    or quote may join them. Chunks still do (it is not a block edge).
//!
//! Stored text is the output of these rules, so a quote taken from it is
//! verbatim from what is stored.

use crate::layout::{BlockKind, PageLayout};
use crate::model::RawPage;
use std::collections::HashMap;
use unicode_normalization::UnicodeNormalization;

/// A page after clean-up: paragraphs separated by `\n`, blocks no chunk
/// joins by a blank line (PDF pages with a layout only).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanedPage {
    /// 1-based page number in the source document.
    pub number: u32,
    /// Cleaned text; one paragraph per line, with a blank line between
    /// blocks that no chunk joins (see [`crate::chunk::BLOCK_BREAK`]).
    pub text: String,
    /// See [`RawPage::is_virtual`].
    pub is_virtual: bool,
    /// See [`RawPage::layout`].
    pub layout: Option<crate::layout::PageLayout>,
}

/// How many lines at each end of a page are candidates for running headers/footers.
const EDGE_LINES: usize = 8;
/// Longer lines are body text, never running headers or footers.
const MAX_EDGE_WORDS: usize = 14;

/// Cleans every page of one document. Page numbers are kept as given; each
/// page's layout moves to its cleaned page.
/// The layout's blocks made only of lines the clean-up removed as running
/// headers, footers or page numbers become [`BlockKind::Running`].
pub fn clean_pages(pages: Vec<RawPage>) -> Vec<CleanedPage> {
    let (lines, mut hard): (Vec<Vec<String>>, Vec<Vec<bool>>) = pages
        .iter()
        .map(|p| normalize_marked(&p.text).into_iter().unzip())
        .unzip();
    let (lines, dropped) = strip_running_lines(lines, &mut hard);
    pages
        .into_iter()
        .zip(lines.into_iter().zip(dropped).zip(hard))
        .map(|(p, ((l, d), h))| {
            let mut layout = p.layout;
            if let Some(layout) = &mut layout
                && !d.is_empty()
            {
                mark_running(layout, d);
            }
            CleanedPage {
                number: p.number,
                text: join_paragraphs(&l, &h, layout.is_some()),
                is_virtual: p.is_virtual,
                layout,
            }
        })
        .collect()
}

/// Marks the blocks of `layout` every line of which is one of `dropped`
/// (the page's lines removed as running, each used once) as
/// [`BlockKind::Running`].
fn mark_running(layout: &mut PageLayout, mut dropped: Vec<String>) {
    for block in &mut layout.blocks {
        // Cheap first: a block longer than what is left to find is body
        // text (most blocks), so its lines are not normalised again.
        if block.lines.len() > dropped.len() {
            continue;
        }
        let texts: Vec<String> = block
            .lines
            .iter()
            .map(|l| normalize_lines(&l.text).join(" "))
            .collect();
        let mut left = dropped.clone();
        let all = texts
            .iter()
            .all(|t| match left.iter().position(|d| d == t) {
                Some(i) => {
                    left.swap_remove(i);
                    true
                }
                None => false,
            });
        if all && !texts.is_empty() {
            block.kind = BlockKind::Running;
            dropped = left;
            if dropped.is_empty() {
                break;
            }
        }
    }
}

/// Put by the extractor at the start of a line whose break from the line
/// before must stay a paragraph break in the stored text (never joined into
/// one sentence): a reader that orders a page's text by position may read
/// other text between the two lines (see
/// [`PageLayout::break_may_part`](crate::PageLayout::break_may_part)). A
/// Unicode noncharacter, so never text; the clean-up removes it wherever
/// it is.
pub const HARD_BREAK: char = '\u{fdd0}';

/// Applies the Unicode and white-space rules; returns trimmed lines, with an
/// empty string for each blank line (a block separator).
pub fn normalize_lines(text: &str) -> Vec<String> {
    normalize_marked(text).into_iter().map(|(l, _)| l).collect()
}

/// [`normalize_lines`], with whether each line started with [`HARD_BREAK`].
fn normalize_marked(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut line = String::new();
    let mut hard = false;
    let mut space = false;
    for c in text.nfkc() {
        match c {
            '\n' | '\u{2028}' | '\u{2029}' | '\u{0c}' | '\u{0b}' => {
                let h = std::mem::take(&mut hard);
                out.push((std::mem::take(&mut line), h && !out.is_empty()));
                space = false;
            }
            HARD_BREAK => hard |= line.is_empty(),
            '\u{00ad}' | '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' => {}
            '\r' => {}
            c if c.is_whitespace() || c.is_control() => space = !line.is_empty(),
            '\u{2010}' | '\u{2011}' => push(&mut line, &mut space, '-'),
            c => push(&mut line, &mut space, c),
        }
    }
    out.push((line, hard && !out.is_empty()));
    // Collapse runs of blank lines and drop leading/trailing blanks.
    let mut collapsed: Vec<(String, bool)> = Vec::with_capacity(out.len());
    for (l, h) in out {
        if l.is_empty() && collapsed.last().is_none_or(|p| p.0.is_empty()) {
            continue;
        }
        collapsed.push((l, h));
    }
    while collapsed.last().is_some_and(|l| l.0.is_empty()) {
        collapsed.pop();
    }
    collapsed
}

fn push(line: &mut String, space: &mut bool, c: char) {
    if *space {
        line.push(' ');
        *space = false;
    }
    line.push(c);
}

/// `true` for a line that is only a page number (at most 3 digits, so a
/// year such as `2030` is not one): `12`, `- 12 -`, `Page 3 of 40`, `3/40`.
pub fn is_page_number_line(line: &str) -> bool {
    let l = line.trim_matches(|c: char| c == '-' || c == '–' || c == '|' || c.is_whitespace());
    let l = l
        .strip_prefix("Page ")
        .or_else(|| l.strip_prefix("page "))
        .unwrap_or(l);
    let mut parts = l.split(['/', ' ']);
    let first = parts.next().unwrap_or("");
    if first.is_empty() || first.len() > 3 || !first.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let rest: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
    match rest.as_slice() {
        [] => true,
        [n] => n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()),
        ["of", n] => n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// The recurrence key of a line: lowercase, digits folded to `#`.
fn edge_key(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The candidate lines of a page for running headers and footers, and
/// whether each is one of the [`OUTER_LINES`] at either end.
fn edge_indices(lines: &[String]) -> Vec<(usize, bool)> {
    let content: Vec<usize> = (0..lines.len()).filter(|&i| !lines[i].is_empty()).collect();
    let n = content.len();
    let mut idx: Vec<(usize, bool)> = content
        .iter()
        .enumerate()
        .filter(|&(k, _)| k < EDGE_LINES || k + EDGE_LINES >= n)
        .filter(|&(_, &i)| lines[i].split(' ').count() <= MAX_EDGE_WORDS)
        .map(|(k, &i)| (i, k < OUTER_LINES || k + OUTER_LINES >= n))
        .collect();
    idx.sort_unstable();
    idx.dedup();
    idx
}

/// Separators between the fixed part of a running header and the part that
/// changes with the section (`Sustainability Report 2021 | Ready for
/// people`, `Annual Report // Climate`, GlobalFoundries' `Corporate
/// Responsibility Report 2022: Governance`).
const SECTION_SEPARATORS: [&str; 7] = [" | ", " // ", " – ", " — ", " · ", " • ", ": "];

/// How many content lines at each end of a page may be a running header
/// recognised by its fixed part alone (see [`edge_keys`]).
const OUTER_LINES: usize = 2;

/// The keys under which an edge line recurs: its whole [`edge_key`], and,
/// for one of the [`OUTER_LINES`] at either end of the page (`outer`) that
/// has a [`SECTION_SEPARATORS`] separator, the part before the first one
/// and the part after the last one (each of at least two words), so that a
/// header whose section name changes from page to page still recurs by its
/// fixed part; such a line without a separator counts as a fixed part too
/// (the header of a page that names no section).
///
/// A line without a letter has no key: a row of figures or codes that
/// recurs at the top of a table continued over many pages (J&J's GRI
/// index, `103-1, 103-2, 103-3`) is table text, and bare page numbers are
/// [`is_page_number_line`]'s.
fn edge_keys(line: &str, outer: bool) -> Vec<String> {
    if !line.chars().any(char::is_alphabetic) {
        return Vec::new();
    }
    let mut keys = vec![edge_key(line)];
    if !outer {
        return keys;
    }
    let cut = SECTION_SEPARATORS
        .iter()
        .filter_map(|s| line.find(s).map(|i| (i, s.len())))
        .min();
    let last = SECTION_SEPARATORS
        .iter()
        .filter_map(|s| line.rfind(s).map(|i| (i, s.len())))
        .max();
    let fixed = |part: &str| part.split_whitespace().count() >= 2;
    if let Some((i, _)) = cut
        && fixed(&line[..i])
    {
        keys.push(format!("{}\u{1}", edge_key(&line[..i])));
    } else if cut.is_none() && fixed(line) {
        // The fixed part alone, on pages that name no section.
        keys.push(format!("{}\u{1}", edge_key(line)));
    }
    if let Some((i, n)) = last
        && fixed(&line[i + n..])
    {
        keys.push(format!("\u{1}{}", edge_key(&line[i + n..])));
    }
    keys
}

/// How many times [`strip_running_lines`] looks at the page edges again
/// after removing lines: a running block longer than [`EDGE_LINES`]
/// (Bayer 2021's side navigation, ten chapter names down the edge of every
/// page) is removed a window at a time.
const RUNNING_PASSES: usize = 3;

/// Removes page-number lines at page edges and running headers/footers:
/// an edge line one of whose [`edge_keys`] is at an edge of at least 3
/// pages and of at least a quarter of the document's pages. Lines that
/// such removals bring within [`EDGE_LINES`] of an edge are candidates in
/// the next pass (up to [`RUNNING_PASSES`]), by their whole line as it
/// is: page numbers, fixed parts and lines that recur digits aside count
/// in the first pass only. Returns the
/// pages and, per page, the lines removed; `hard` (a flag per line, see
/// [`HARD_BREAK`]) loses the same lines.
fn strip_running_lines(
    mut pages: Vec<Vec<String>>,
    hard: &mut [Vec<bool>],
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let threshold = 3.max(pages.len().div_ceil(4));
    let mut dropped = vec![Vec::new(); pages.len()];
    for pass in 0..RUNNING_PASSES {
        let mut counts: HashMap<String, usize> = HashMap::new();
        // Lines at an edge only since the pass before removed the header
        // recur as they are: not by a fixed part, nor with their digits
        // aside (a table's rows of codes, `FB-NB-110a.1`, `FB-NB-130a.2`,
        // come to the top of the page once its header row is gone).
        let keys = |line: &str, outer: bool| -> Vec<String> {
            if pass == 0 {
                edge_keys(line, outer)
            } else if line.chars().any(char::is_alphabetic) {
                vec![line.to_lowercase()]
            } else {
                Vec::new()
            }
        };
        for lines in &pages {
            let mut seen: Vec<String> = edge_indices(lines)
                .into_iter()
                .flat_map(|(i, outer)| keys(&lines[i], outer))
                .collect();
            seen.sort();
            seen.dedup();
            for k in seen {
                *counts.entry(k).or_default() += 1;
            }
        }
        let mut any = false;
        for ((lines, hard), gone) in pages.iter_mut().zip(hard.iter_mut()).zip(&mut dropped) {
            let drop: Vec<usize> = edge_indices(lines)
                .into_iter()
                .filter(|&(i, outer)| {
                    let l = &lines[i];
                    (pass == 0 && is_page_number_line(l))
                        || keys(l, outer)
                            .iter()
                            .any(|k| counts.get(k).copied().unwrap_or(0) >= threshold)
                })
                .map(|(i, _)| i)
                .collect();
            any |= !drop.is_empty();
            for i in drop.into_iter().rev() {
                gone.push(lines.remove(i));
                if i < hard.len() {
                    hard.remove(i);
                }
            }
        }
        if !any {
            break;
        }
    }
    (pages, dropped)
}

/// `true` for a line that starts a list item: a bullet (`•`, `▪`, `–`, …,
/// or `- `), or an item number or letter followed by a space (`1. `,
/// `12) `, `(a) `, `a) `).
pub fn starts_list_item(line: &str) -> bool {
    let mut chars = line.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if matches!(
        first,
        '•' | '▪' | '●' | '◦' | '■' | '□' | '►' | '➢' | '✓' | '·' | '*' | '–' | '—'
    ) {
        return true;
    }
    if first == '-' {
        return chars.next() == Some(' ');
    }
    // "1." "12)" "(a)" "a)" followed by a space
    let head: String = line.chars().take(5).collect();
    let bytes = head.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'(') {
        i = 1;
    }
    let start = i;
    while i < bytes.len()
        && (bytes[i].is_ascii_digit() || (i == start && bytes[i].is_ascii_lowercase()))
    {
        i += 1;
    }
    i > start && i + 1 < bytes.len() && matches!(bytes[i], b'.' | b')') && bytes[i + 1] == b' '
}

fn ends_sentence(line: &str) -> bool {
    let l = line.trim_end_matches(['"', '\'', '”', '’', ')', ']']);
    l.ends_with(['.', '!', '?', ':', ';'])
}

/// Joins lines into paragraphs. A blank line always breaks, and with
/// `blocks` (the page has a layout) stays a blank line; otherwise a line
/// starts a new paragraph when it is a list item, or when the previous line
/// is short and either ends a sentence or looks like a heading, or when its
/// flag in `hard` is set (the extractor's [`HARD_BREAK`]).
fn join_paragraphs(lines: &[String], hard: &[bool], blocks: bool) -> String {
    let mut lens: Vec<usize> = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().count())
        .collect();
    lens.sort_unstable();
    let typical = lens.get(lens.len() * 4 / 5).copied().unwrap_or(0).max(60);

    let mut out = String::new();
    let mut prev: Option<&str> = None;
    let mut block_break = false;
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            prev = None;
            block_break = blocks;
            continue;
        }
        match prev {
            None => {
                if !out.is_empty() {
                    out.push_str(if block_break {
                        crate::chunk::BLOCK_BREAK
                    } else {
                        "\n"
                    });
                }
                block_break = false;
                out.push_str(line);
            }
            Some(p) => {
                let plen = p.chars().count();
                let short = plen * 4 < typical * 3;
                let heading = plen * 2 < typical
                    && !p.ends_with([',', '-', '&'])
                    && !ends_with_connector(p)
                    && line.chars().next().is_some_and(char::is_uppercase);
                if hard.get(i).copied().unwrap_or(false)
                    || starts_list_item(line)
                    || (short && ends_sentence(p))
                    || heading
                {
                    out.push('\n');
                    out.push_str(line);
                } else if is_hyphen_break(p, line) {
                    out.pop();
                    out.push_str(line);
                } else if ends_in_letter_hyphen(p) {
                    // A compound cut at its hyphen (`Climate-` + `Related`):
                    // the hyphen stays, the line end goes.
                    out.push_str(line);
                } else {
                    out.push(' ');
                    out.push_str(line);
                }
            }
        }
        prev = Some(line);
    }
    out
}

fn ends_with_connector(line: &str) -> bool {
    let last = line.rsplit(' ').next().unwrap_or("");
    matches!(
        last.to_lowercase().as_str(),
        "and"
            | "or"
            | "of"
            | "the"
            | "to"
            | "in"
            | "for"
            | "a"
            | "an"
            | "with"
            | "on"
            | "by"
            | "our"
    )
}

/// `true` when `prev` ends in `letter-` and `next` starts with a lowercase letter.
fn is_hyphen_break(prev: &str, next: &str) -> bool {
    ends_in_letter_hyphen(prev) && next.chars().next().is_some_and(char::is_lowercase)
}

/// `true` when `line` ends in `letter-`.
fn ends_in_letter_hyphen(line: &str) -> bool {
    let mut tail = line.chars().rev();
    tail.next() == Some('-') && tail.next().is_some_and(char::is_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u32, t: &str) -> RawPage {
        RawPage {
            number: n,
            text: t.to_string(),
            is_virtual: false,
            layout: None,
        }
    }

    #[test]
    fn unicode_rules() {
        let l = normalize_lines(
            "e\u{fb03}cient\u{00a0}of\u{00ad}fice \u{200b}use\r\n\tnext   line\u{0007}x",
        );
        assert_eq!(l, vec!["efficient office use", "next line x"]);
    }

    #[test]
    fn a_blank_line_stays_a_block_break_only_on_pages_with_a_layout() {
        let raw = "Our board oversees climate risk and\nmeets each quarter.\n\nScope 1 emissions\n\n\n12,345 tCO2e";
        let mut with_layout = page(1, raw);
        with_layout.layout = Some(PageLayout::default());
        let out = clean_pages(vec![with_layout, page(2, raw)]);
        assert_eq!(
            out[0].text,
            "Our board oversees climate risk and meets each quarter.\n\nScope 1 emissions\n\n12,345 tCO2e"
        );
        assert_eq!(
            out[1].text,
            "Our board oversees climate risk and meets each quarter.\nScope 1 emissions\n12,345 tCO2e"
        );
    }

    #[test]
    fn a_hard_break_keeps_two_lines_apart_and_leaves_no_mark() {
        let h = HARD_BREAK;
        let text =
            format!("We cut our emissions by\n{h}a third since{h} 2019 and\nwill cut them again.");
        let out = clean_pages(vec![page(1, &text)]);
        assert_eq!(
            out[0].text,
            "We cut our emissions by\na third since 2019 and will cut them again."
        );
        // A mark on the first line, or on a line after a blank line, is no
        // break at all.
        let out = clean_pages(vec![page(1, &format!("{h}Targets are set"))]);
        assert_eq!(out[0].text, "Targets are set");
    }

    #[test]
    fn dehyphenates_across_lines_only_before_lowercase() {
        let out = clean_pages(vec![page(
            1,
            "We improved sustain-\nability across the group and the wider com-\nmunity, in the\nNorth-\nEast region.",
        )]);
        assert_eq!(
            out[0].text,
            "We improved sustainability across the group and the wider community, in the North-East region."
        );
    }

    #[test]
    fn paragraphs_and_lists() {
        let text = "Our Climate Strategy\nWe have set a science-based target to reduce absolute Scope 1 and 2 emissions by\n42% by 2030 from a 2020 base year.\n• Renewable electricity\n• Fleet electrification\n\nA new block starts here.";
        let out = clean_pages(vec![page(1, text)]);
        let paras: Vec<&str> = out[0].text.split('\n').collect();
        assert_eq!(
            paras,
            vec![
                "Our Climate Strategy",
                "We have set a science-based target to reduce absolute Scope 1 and 2 emissions by 42% by 2030 from a 2020 base year.",
                "• Renewable electricity",
                "• Fleet electrification",
                "A new block starts here."
            ]
        );
    }

    #[test]
    fn running_headers_and_page_numbers_removed() {
        let pages: Vec<RawPage> = (1..=6)
            .map(|n| page(n, &format!("ACME Sustainability Report 2023 | {n}\nBody text {} talks about water.\n{n}", "x".repeat(n as usize))))
            .collect();
        let out = clean_pages(pages);
        for (i, p) in out.iter().enumerate() {
            assert_eq!(
                p.text,
                format!("Body text {} talks about water.", "x".repeat(i + 1))
            );
        }
    }

    #[test]
    fn a_row_of_figures_recurring_at_the_top_of_pages_is_kept() {
        // J&J's GRI index: every page of the table starts with the same row
        // of disclosure numbers under a heading that changes.
        let pages: Vec<RawPage> = (1..=6)
            .map(|n| {
                let z = "z".repeat(n as usize);
                page(
                    n,
                    &format!("GRI 20{n} {z}\n103-1, 103-2, 103-3\nBody {z} talks."),
                )
            })
            .collect();
        for (n, p) in clean_pages(pages).iter().enumerate() {
            let z = "z".repeat(n + 1);
            assert_eq!(
                p.text,
                format!("GRI 20{} {z} 103-1, 103-2, 103-3\nBody {z} talks.", n + 1)
            );
        }
    }

    #[test]
    fn a_running_header_whose_section_changes_is_removed() {
        // Swisscom's 2021 report: "Sustainability Report 2021 | <section>"
        // at the top of every page, each section a few pages long.
        let sections = ["Strategy", "Ready for people", "Climate and energy"];
        let body = |n: usize| {
            let z = "z".repeat(n);
            format!("Body {z} talks.\nTable {z} | water use.\nMore {z} text.\nThe end {z}.")
        };
        let pages: Vec<RawPage> = (1..=9)
            .map(|n| {
                let section = sections[(n as usize - 1) / 3];
                page(
                    n,
                    &format!(
                        "Sustainability Report 2021 | {section}\n{}",
                        body(n as usize)
                    ),
                )
            })
            .collect();
        let out = clean_pages(pages);
        for (i, p) in out.iter().enumerate() {
            // The table line's fixed part recurs too, but it is not at an
            // outer edge of its page: kept.
            assert_eq!(
                p.text,
                join_paragraphs(&normalize_lines(&body(i + 1)), &[], false)
            );
            assert!(p.text.contains("| water use."), "{}", p.text);
        }
    }

    #[test]
    fn a_running_footer_with_a_colon_or_no_section_is_removed() {
        // GlobalFoundries 2022: "Corporate Responsibility Report 2022:
        // <section>" at the foot of most pages, and without a section on
        // the others; no one form is on a quarter of the pages.
        let footers = [
            "Corporate Responsibility Report 2022: Governance",
            "Corporate Responsibility Report 2022: Governance",
            "Corporate Responsibility Report 2022: Water and energy",
            "Corporate Responsibility Report 2022: Water and energy",
            "Corporate Responsibility Report 2022: Climate",
            "Corporate Responsibility Report 2022: Human capital",
            "Corporate Responsibility Report 2022",
            "Corporate Responsibility Report 2022",
            "Corporate Responsibility Report 2022: Index",
        ];
        let pages: Vec<RawPage> = footers
            .iter()
            .enumerate()
            .map(|(i, f)| {
                page(
                    i as u32 + 1,
                    &format!("Body {} talks.\n{f}", "z".repeat(i + 1)),
                )
            })
            .collect();
        for (i, p) in clean_pages(pages).iter().enumerate() {
            assert_eq!(p.text, format!("Body {} talks.", "z".repeat(i + 1)));
        }
    }

    #[test]
    fn a_running_block_longer_than_the_edge_window_is_removed() {
        // Bayer 2021: ten chapter names down the edge of every page, read
        // before the body.
        let nav = [
            "1. The Company",
            "2. Corporate Governance",
            "3. Product Stewardship",
            "4. Procurement",
            "5. Human Rights",
            "6. Employees",
            "7. Climate Protection",
            "8. Environmental Protection and Safety",
            "9. Charitable Giving",
            "Further Information",
        ];
        let pages: Vec<RawPage> = (1..=6)
            .map(|n| {
                let z = "z".repeat(n as usize);
                page(n, &format!("{}\nBody {z} talks.", nav.join("\n")))
            })
            .collect();
        for (i, p) in clean_pages(pages).iter().enumerate() {
            assert_eq!(p.text, format!("Body {} talks.", "z".repeat(i + 1)));
        }
        // What such a block uncovers recurs by its whole line only: the
        // codes that head each page's table, the same digits aside, stay.
        let pages: Vec<RawPage> = (1..=6)
            .map(|n| {
                let z = "z".repeat(n as usize);
                let body: Vec<String> = (0..9).map(|j| format!("Body {z} line {j}.")).collect();
                page(
                    n,
                    &format!("{}\nFB-NB-{n}10a.1\n{}", nav.join("\n"), body.join("\n")),
                )
            })
            .collect();
        for (i, p) in clean_pages(pages).iter().enumerate() {
            assert!(
                p.text.starts_with(&format!("FB-NB-{}10a.1\n", i + 1)),
                "{}",
                p.text
            );
            assert!(!p.text.contains("Giving"), "{}", p.text);
        }
    }

    #[test]
    fn rare_edge_lines_are_kept() {
        let pages: Vec<RawPage> = (1..=8)
            .map(|n| {
                page(
                    n,
                    &format!(
                        "Section {}\nBody {}.",
                        if n < 3 { "A" } else { "B" },
                        "y".repeat(n as usize)
                    ),
                )
            })
            .collect();
        let out = clean_pages(pages);
        // "Section A" is on 2 of 8 pages: kept; "Section B" on 6 of 8: a running header.
        assert!(out[0].text.starts_with("Section A"));
        assert_eq!(out[5].text, "Body yyyyyy.");
    }

    proptest::proptest! {
        #[test]
        fn clean_never_panics_and_removes_invisible_characters(
            pages in proptest::collection::vec("(?s).{0,300}", 0..6)
        ) {
            let raw: Vec<RawPage> = pages.iter().enumerate().map(|(i, t)| page(i as u32 + 1, t)).collect();
            let out = clean_pages(raw.clone());
            proptest::prop_assert_eq!(out.len(), raw.len());
            for (o, r) in out.iter().zip(&raw) {
                proptest::prop_assert_eq!(o.number, r.number);
                let invisible = ['\u{ad}', '\u{a0}', '\u{fb01}', '\u{200b}', '\r', '\t'];
                proptest::prop_assert!(!o.text.contains(invisible), "invisible character kept");
                proptest::prop_assert!(!o.text.contains("  "));
                proptest::prop_assert!(!o.text.starts_with(char::is_whitespace) && !o.text.ends_with(char::is_whitespace));
            }
        }
    }

    #[test]
    fn page_number_lines() {
        for yes in ["12", "- 12 -", "Page 3 of 40", "3/40", "page 7"] {
            assert!(is_page_number_line(yes), "{yes}");
        }
        for no in ["2030", "12 tonnes", "Scope 3", "", "12345"] {
            assert!(!is_page_number_line(no), "{no}");
        }
    }
}
