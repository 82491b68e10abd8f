//! Sentence- and paragraph-aware chunking of cleaned pages.
//!
//! A chunk is a contiguous span of one page's cleaned text (chunks never
//! cross pages, so every quote has one page). Chunks are built from whole
//! sentences: sentences are added until the chunk reaches
//! [`ChunkParams::target_words`]; a chunk that has reached
//! [`ChunkParams::min_words`] ends early at a paragraph break. The next
//! chunk starts with the trailing sentences of the previous one, up to
//! [`ChunkParams::overlap_words`], so a statement and its context sit in one
//! chunk. A sentence longer than [`ChunkParams::max_words`] (tables, lists
//! with no punctuation) is cut into word windows.
//!
//! The defaults (120/60/240 words, 30 words of overlap) come from
//! `bench/chunking.sh` on the corpus PDFs' stored text and from scoring:
//! they keep 94.5% of adjacent sentence pairs in one chunk for a 1.17× word
//! overhead (no overlap: 84%). 200/100/400 with 40 words of overlap keeps 98%
//! at the same overhead, but coarser chunks cost scoring evidence: with them
//! Bayer 2021's validated SBTi targets no longer reached TSP 4 (TSP 3), so the
//! smaller size stays.
//!
//! **Chunks do not follow layout blocks (yet).** Issue 12 asks that no chunk
//! join two table cells. Chunks here follow the clean-up's paragraphs, which
//! may run over cells; a quote is kept inside one block afterwards
//! (`esg_core::layout::PageLayout::place`). Ending chunks at every cell
//! edge was built and measured on the branch `chunk-blocks` (a blank line
//! between such blocks in the stored text; the chunker stops there). On the
//! 15 corpus PDFs, in one session: 4,620 chunks of 83 words on average
//! become 23,293 of 14; quotes found by both pdftotext and pdfium rise from
//! 94.9 % to 95.6 %, but the face-validity set falls from 97/102 to 89/102
//! (91/102 with breaks only between two cells). The cut is not the cause:
//! the same chunks with the rubric's `default_k` at 30 give 94/102, at 60
//! give 96/102, as top-k chunks of 14 words cover a sixth of the text that
//! top-k chunks of 83 words did. A word budget per query instead of k
//! chunks (80 words per chunk of k) gave 88/102. Merging needs retrieval
//! units that keep a table's cells apart without shrinking what a query
//! sees.

use crate::clean::CleanedPage;
use crate::hash::sha256_hex;
use crate::model::Chunk;

/// Chunk sizes, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkParams {
    /// A chunk stops growing once it has this many words.
    pub target_words: usize,
    /// A chunk of at least this many words ends at a paragraph break.
    pub min_words: usize,
    /// No chunk is longer than this; longer sentences are cut into windows.
    pub max_words: usize,
    /// Trailing sentences (up to this many words) repeated at the start of the next chunk.
    pub overlap_words: usize,
}

impl Default for ChunkParams {
    fn default() -> Self {
        ChunkParams {
            target_words: 120,
            min_words: 60,
            max_words: 240,
            overlap_words: 30,
        }
    }
}

/// A sentence (or word window) of a page: byte span and word count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
    /// Words in the unit.
    pub words: usize,
    /// `true` when a paragraph break follows the unit.
    pub para_end: bool,
}

const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "no", "nos", "inc", "co", "corp",
    "ltd", "plc", "st", "approx", "fig", "figs", "p", "pp", "vol", "ref", "dept", "est", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k",
    "e.u", "n.v", "s.a", "a.g", "cf", "al",
];

fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let w = word.to_lowercase();
    if w.chars().count() == 1 && w.chars().all(char::is_alphabetic) {
        return true; // an initial: "J. Smith"
    }
    ABBREVIATIONS.contains(&w.as_str())
}

/// Splits `text` (one paragraph per line) into sentences with byte spans.
pub fn sentences(text: &str) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut start: Option<usize> = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c == '\n' {
            if let Some(s) = start.take() {
                push_unit(&mut units, text, s, pos, true);
            }
            i += 1;
            continue;
        }
        if start.is_none() && !c.is_whitespace() {
            start = Some(pos);
        }
        if matches!(c, '.' | '!' | '?') {
            // Include closing quotes/brackets.
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '"' | '\'' | '”' | '’' | ')' | ']') {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(p, _)| p);
            let next_is_space = chars.get(j).is_some_and(|&(_, c)| c == ' ');
            let after = chars.get(j + 1).map(|&(_, c)| c);
            let boundary = next_is_space
                && after.is_some_and(|a| {
                    a.is_uppercase()
                        || a.is_ascii_digit()
                        || matches!(a, '"' | '“' | '‘' | '(' | '•')
                })
                && !(c == '.' && is_abbreviation(&text[start.unwrap_or(0)..pos]));
            if boundary {
                if let Some(s) = start.take() {
                    push_unit(&mut units, text, s, end, false);
                }
                i = j;
                continue;
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        push_unit(&mut units, text, s, text.len(), true);
    }
    units
}

fn push_unit(units: &mut Vec<Unit>, text: &str, start: usize, end: usize, para_end: bool) {
    let end = start + text[start..end].trim_end().len();
    if end > start {
        let words = text[start..end].split_whitespace().count();
        units.push(Unit {
            start,
            end,
            words,
            para_end,
        });
    }
}

/// Cuts units longer than `max` words into windows of at most `max` words.
fn cap_units(text: &str, units: Vec<Unit>, max: usize) -> Vec<Unit> {
    let mut out = Vec::with_capacity(units.len());
    for u in units {
        if u.words <= max {
            out.push(u);
            continue;
        }
        let mut word_starts = Vec::new();
        let mut in_word = false;
        for (off, c) in text[u.start..u.end].char_indices() {
            if !c.is_whitespace() && !in_word {
                word_starts.push(u.start + off);
            }
            in_word = !c.is_whitespace();
        }
        let mut k = 0;
        while k < word_starts.len() {
            let stop = (k + max).min(word_starts.len());
            let end = if stop == word_starts.len() {
                u.end
            } else {
                word_starts[stop]
            };
            let end = u.start.max(word_starts[k]) + text[word_starts[k]..end].trim_end().len();
            out.push(Unit {
                start: word_starts[k],
                end,
                words: stop - k,
                para_end: stop == word_starts.len() && u.para_end,
            });
            k = stop;
        }
    }
    out
}

/// Chunks the cleaned pages of the document whose bytes hash to `doc_sha256`.
///
/// The same pages and parameters always give the same chunks and ids.
pub fn chunk_pages(doc_sha256: &str, pages: &[CleanedPage], params: ChunkParams) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for page in pages {
        for (start, end) in chunk_spans(&page.text, params) {
            let text = &page.text[start..end];
            let char_start = page.text[..start].chars().count() as u32;
            let char_end = char_start + text.chars().count() as u32;
            let sha = sha256_hex(text);
            let id_src = format!("{doc_sha256}:{}:{char_start}:{char_end}:{sha}", page.number);
            chunks.push(Chunk {
                chunk_id: sha256_hex(id_src)[..32].to_string(),
                page: page.number,
                seq: chunks.len() as u32,
                char_start,
                char_end,
                words: text.split_whitespace().count() as u32,
                text: text.to_string(),
                sha256: sha,
            });
        }
    }
    chunks
}

/// Byte spans of the chunks of one page's text.
pub fn chunk_spans(text: &str, params: ChunkParams) -> Vec<(usize, usize)> {
    let units = cap_units(text, sentences(text), params.max_words.max(1));
    let mut spans = Vec::new();
    let mut first = 0;
    while first < units.len() {
        let mut words = 0;
        let mut last = first;
        loop {
            words += units[last].words;
            let done =
                words >= params.target_words || (units[last].para_end && words >= params.min_words);
            if done || last + 1 == units.len() || words + units[last + 1].words > params.max_words {
                break;
            }
            last += 1;
        }
        spans.push((units[first].start, units[last].end));
        if last + 1 == units.len() {
            break;
        }
        // Overlap: trailing whole sentences of this chunk, within the budget.
        let mut next = last + 1;
        let mut overlap = 0;
        while next - 1 > first && overlap + units[next - 1].words <= params.overlap_words {
            overlap += units[next - 1].words;
            next -= 1;
        }
        first = next;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sentence_split_respects_abbreviations() {
        let t = "We cut Scope 1 emissions by 12%, e.g. in the U.S. plants. J. Smith chairs the committee. Targets: 2030!\nNew paragraph";
        let s: Vec<&str> = sentences(t).iter().map(|u| &t[u.start..u.end]).collect();
        assert_eq!(
            s,
            vec![
                "We cut Scope 1 emissions by 12%, e.g. in the U.S. plants.",
                "J. Smith chairs the committee.",
                "Targets: 2030!",
                "New paragraph"
            ]
        );
    }

    #[test]
    fn chunks_are_exact_spans_and_overlap_by_sentences() {
        let sentence =
            "Our board oversees climate risk through a dedicated committee each quarter.";
        let text = vec![sentence; 40].join(" ");
        let page = CleanedPage {
            number: 3,
            text: text.clone(),
            is_virtual: false,
            layout: None,
        };
        let params = ChunkParams {
            target_words: 50,
            min_words: 20,
            max_words: 100,
            overlap_words: 12,
        };
        let chunks = chunk_pages("abc", &[page], params);
        assert!(chunks.len() > 5);
        for w in chunks.windows(2) {
            // One 11-word sentence of overlap.
            assert_eq!(
                w[1].char_start,
                w[0].char_end - sentence.chars().count() as u32
            );
        }
        for c in &chunks {
            assert_eq!(c.page, 3);
            let s: String = text
                .chars()
                .skip(c.char_start as usize)
                .take((c.char_end - c.char_start) as usize)
                .collect();
            assert_eq!(s, c.text);
            assert!(c.words <= 100);
        }
        assert_eq!(
            chunks.last().map(|c| c.char_end as usize),
            Some(text.chars().count())
        );
    }

    #[test]
    fn overlong_sentence_is_windowed() {
        let text = (0..500)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let spans = chunk_spans(&text, ChunkParams::default());
        assert!(spans.len() >= 3);
        for (s, e) in spans {
            assert!(text[s..e].split_whitespace().count() <= 240);
        }
    }

    proptest! {
        #[test]
        fn chunking_invariants(paras in proptest::collection::vec("[A-Za-z0-9 ,.!?é’]{0,400}", 0..8),
                               target in 5usize..80, overlap in 0usize..30) {
            let text = paras.join("\n");
            let params = ChunkParams { target_words: target, min_words: target / 2, max_words: target * 2, overlap_words: overlap };
            let page = CleanedPage { number: 1, text: text.clone(), is_virtual: false, layout: None };
            let a = chunk_pages("d", std::slice::from_ref(&page), params);
            let b = chunk_pages("d", std::slice::from_ref(&page), params);
            prop_assert_eq!(&a, &b);
            let mut prev_start = None;
            let mut covered_words = 0usize;
            for c in &a {
                let s: String = text.chars().skip(c.char_start as usize).take((c.char_end - c.char_start) as usize).collect();
                prop_assert_eq!(&s, &c.text);
                prop_assert!(c.words as usize <= target * 2);
                prop_assert!(!c.text.trim().is_empty());
                prop_assert_eq!(&c.sha256, &sha256_hex(&c.text));
                if let Some(p) = prev_start { prop_assert!(c.char_start > p); }
                prev_start = Some(c.char_start);
                covered_words += c.words as usize;
            }
            // Every word of the page is in some chunk.
            prop_assert!(covered_words >= text.split_whitespace().count());
        }
    }
}
