//! Verbatim quotes: a window of at most N words around a match, cut at
//! word boundaries, never leaving the sentence(s) of the match.

use crate::text::{sentence_spans, word_index_at, word_spans};
use std::ops::Range;

/// The byte range of a quote around `hit` in `text`, or `None` when the
/// hit itself spans more than `max_words` words (it cannot be quoted whole).
///
/// The quote is the sentence containing the hit when that sentence has at
/// most `max_words` words; otherwise the `max_words`-word window of that
/// sentence centred on the hit. It always starts at the start of a word,
/// ends at the end of a word, and contains `hit`.
pub fn quote_range(text: &str, hit: Range<usize>, max_words: usize) -> Option<Range<usize>> {
    if hit.start >= hit.end || hit.end > text.len() || max_words == 0 {
        return None;
    }
    let hit = crate::text::trim_range(text, hit);
    if hit.is_empty() {
        return None;
    }
    // The sentence(s) the hit touches.
    let sentences = sentence_spans(text);
    let touching: Vec<&Range<usize>> = sentences
        .iter()
        .filter(|s| s.start < hit.end && hit.start < s.end)
        .collect();
    let outer = match (touching.first(), touching.last()) {
        (Some(f), Some(l)) => f.start.min(hit.start)..l.end.max(hit.end),
        _ => hit.clone(),
    };
    let words = word_spans(text, outer);
    if words.is_empty() {
        return None;
    }
    let first = word_index_at(&words, hit.start);
    let last = word_index_at(&words, hit.end - 1);
    if first >= words.len() || last >= words.len() || last < first {
        return None;
    }
    let need = last - first + 1;
    if need > max_words {
        return None;
    }
    let (a, b) = if words.len() <= max_words {
        (0, words.len() - 1)
    } else {
        let spare = max_words - need;
        let before = (spare / 2).min(first);
        let after = (spare - before).min(words.len() - 1 - last);
        let before = (spare - after).min(first);
        (first - before, last + after)
    };
    let range = words[a].start..words[b].end;
    debug_assert!(range.start <= hit.start && hit.end <= range.end);
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::count_words;

    #[test]
    fn short_sentence_is_quoted_whole() {
        let t = "Intro text here. We set a target of 50% by 2030. More text.";
        let s = t.find("50%").unwrap();
        let q = quote_range(t, s..s + 3, 30).unwrap();
        assert_eq!(&t[q], "We set a target of 50% by 2030.");
    }

    #[test]
    fn long_sentence_is_windowed_around_the_hit() {
        let words: Vec<String> = (0..80).map(|i| format!("w{i}")).collect();
        let mut t = words.join(" ");
        t.push_str(" limited assurance ");
        t.push_str(&words.join(" "));
        let s = t.find("limited").unwrap();
        let e = s + "limited assurance".len();
        let q = quote_range(&t, s..e, 30).unwrap();
        assert_eq!(count_words(&t[q.clone()]), 30);
        assert!(q.start <= s && e <= q.end);
        // Near the start of the text the window shifts right.
        let q0 = quote_range(&t, 0..2, 30).unwrap();
        assert_eq!(q0.start, 0);
        assert_eq!(count_words(&t[q0]), 30);
    }

    #[test]
    fn too_long_hits_are_refused() {
        let t = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(quote_range(&t, 0..t.len(), 30).is_none());
        assert!(quote_range(&t, 0..0, 30).is_none());
    }

    #[test]
    fn hit_inside_a_word_extends_to_the_word() {
        let t = "emissions (Scope 1) fell";
        let s = t.find("Scope").unwrap();
        let q = quote_range(t, s..s + 5, 2).unwrap();
        assert_eq!(&t[q], "(Scope 1)");
    }
}
