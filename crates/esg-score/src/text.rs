//! Small text helpers shared by matching and quoting: sentences and words
//! as byte spans.

use std::ops::Range;

/// Byte spans of the sentences of `text` (as split by
/// [`esg_core::chunk::sentences`]); never empty for non-blank text.
pub(crate) fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    esg_core::chunk::sentences(text)
        .into_iter()
        .map(|u| u.start..u.end)
        .collect()
}

/// Byte spans of the white-space separated words of `text[range]`,
/// as absolute offsets into `text`.
pub(crate) fn word_spans(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (off, c) in text[range.clone()].char_indices() {
        let pos = range.start + off;
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(s..pos);
            }
        } else if start.is_none() {
            start = Some(pos);
        }
    }
    if let Some(s) = start {
        out.push(s..range.end);
    }
    out
}

/// Index of the word (in `words`) that contains or follows byte `pos`.
pub(crate) fn word_index_at(words: &[Range<usize>], pos: usize) -> usize {
    words.partition_point(|w| w.end <= pos)
}

/// Number of white-space separated words in `s`.
#[cfg(test)]
pub(crate) fn count_words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Narrows `range` so that it neither starts nor ends with white space.
pub(crate) fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let s = &text[range.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead + trail >= s.len() {
        return range.start..range.start;
    }
    (range.start + lead)..(range.end - trail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_indices() {
        let t = "  We set  targets.\nNext line";
        let w = word_spans(t, 0..t.len());
        let words: Vec<&str> = w.iter().map(|r| &t[r.clone()]).collect();
        assert_eq!(words, vec!["We", "set", "targets.", "Next", "line"]);
        assert_eq!(word_index_at(&w, 0), 0);
        assert_eq!(word_index_at(&w, 6), 1);
        assert_eq!(word_index_at(&w, 9), 2);
        assert_eq!(trim_range(t, 0..5), 2..4);
    }
}
