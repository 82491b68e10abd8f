//! Company-name keys: how two spellings of one company are recognised as one.

use unicode_normalization::UnicodeNormalization;

/// The normalised key of a company name.
///
/// Case, punctuation, accents and runs of white space are ignored, so
/// `"Headlam Group PLC"`, `"Headlam Group Plc"` and `"headlam  group, plc."`
/// share the key `"headlam group plc"`. `&` is kept as the word `and`, so
/// `"Johnson & Johnson"` and `"Johnson and Johnson"` agree too.
pub fn company_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in name.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c == '&' {
            if !key.is_empty() {
                key.push(' ');
            }
            key.push_str("and");
            pending_space = true;
            continue;
        }
        if c.is_alphanumeric() {
            if pending_space && !key.is_empty() {
                key.push(' ');
            }
            pending_space = false;
            key.extend(c.to_lowercase());
        } else if c.is_whitespace() || c == '-' || c == '_' || c == '/' {
            pending_space = true;
        }
        // Other punctuation (. , ' ( ) …) joins: "U.S." -> "us".
    }
    key
}

/// Words that say what kind of company it is, not which one; a name made
/// only of these is not a useful match.
const GENERIC_WORDS: &[&str] = &[
    "ag",
    "and",
    "co",
    "company",
    "corp",
    "corporation",
    "gmbh",
    "group",
    "holding",
    "holdings",
    "inc",
    "incorporated",
    "limited",
    "llc",
    "ltd",
    "nv",
    "of",
    "plc",
    "sa",
    "se",
    "spa",
    "the",
];

/// Smallest [`name_similarity`] reported as a close match.
pub const CLOSE_MATCH_THRESHOLD: f64 = 0.65;

/// The items whose company key (`key_of`) is close to `name`, best first
/// (ties by key), at most `max`: a [`name_similarity`] of at least
/// [`CLOSE_MATCH_THRESHOLD`].
pub fn closest<'a, T>(
    name: &str,
    items: &'a [T],
    key_of: impl Fn(&T) -> &str,
    max: usize,
) -> Vec<&'a T> {
    let key = company_key(name);
    let mut scored: Vec<(f64, &str, &T)> = items
        .iter()
        .map(|c| (name_similarity(&key, key_of(c)), key_of(c), c))
        .filter(|(s, _, _)| *s >= CLOSE_MATCH_THRESHOLD)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.truncate(max);
    scored.into_iter().map(|(_, _, c)| c).collect()
}

/// Similarity of two company keys in 0..=1, ignoring words such as "inc",
/// "plc" or "group" when a key has others: the better of the edit
/// similarity of the two keys' distinctive words, and the mean, over the
/// query's distinctive words, of each word's best match among the other
/// key's words (equal 1, prefix of ≥ 3 letters 0.9, else edit similarity).
pub fn name_similarity(query_key: &str, company_key: &str) -> f64 {
    if query_key.is_empty() || company_key.is_empty() {
        return 0.0;
    }
    let query_words = distinctive_words(query_key);
    let company_words: Vec<&str> = company_key.split(' ').collect();
    let whole = edit_similarity(
        &query_words.join(" "),
        &distinctive_words(company_key).join(" "),
    );
    let per_word: f64 = query_words
        .iter()
        .map(|q| {
            company_words
                .iter()
                .map(|c| word_similarity(q, c))
                .fold(0.0, f64::max)
        })
        .sum::<f64>()
        / query_words.len() as f64;
    whole.max(per_word)
}

/// The words of a key that are not [`GENERIC_WORDS`] (all of them when
/// every word is generic).
fn distinctive_words(key: &str) -> Vec<&str> {
    let words: Vec<&str> = key.split(' ').collect();
    let distinctive: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !GENERIC_WORDS.contains(w))
        .collect();
    if distinctive.is_empty() {
        words
    } else {
        distinctive
    }
}

fn word_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let (la, lb) = (a.chars().count(), b.chars().count());
    if la.min(lb) >= 3 && (a.starts_with(b) || b.starts_with(a)) {
        return 0.9;
    }
    edit_similarity(a, b)
}

/// `1 − levenshtein(a, b) / max(len a, len b)`, over characters.
fn edit_similarity(a: &str, b: &str) -> f64 {
    let n = a.chars().count().max(b.chars().count());
    if n == 0 {
        return 1.0;
    }
    1.0 - levenshtein(a, b) as f64 / n as f64
}

/// Levenshtein distance over characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_punctuation_insensitive() {
        assert_eq!(company_key("Headlam Group PLC"), "headlam group plc");
        assert_eq!(
            company_key("Headlam Group Plc"),
            company_key("headlam  group, plc.")
        );
        assert_eq!(company_key("Nestlé S.A."), "nestle sa");
        assert_eq!(company_key("Johnson & Johnson"), "johnson and johnson");
        assert_eq!(company_key("General_Motors-Co"), "general motors co");
        assert_eq!(company_key("  "), "");
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("nortwind", "northwind"), 1);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("nestlé", "nestle"), 1);
    }

    #[test]
    fn closest_finds_typos_prefixes_and_words() {
        let keys: Vec<String> = [
            "Northwind Components Ltd",
            "Netflix Inc.",
            "Nestle SA",
            "Bayer AG",
            "Apple Inc.",
            "General Motors Co.",
        ]
        .iter()
        .map(|n| company_key(n))
        .collect();
        let found = |q: &str| -> Vec<&str> {
            closest(q, &keys, |k| k.as_str(), 5)
                .into_iter()
                .map(String::as_str)
                .collect()
        };
        assert_eq!(found("Nortwind"), ["northwind components ltd"]);
        assert_eq!(found("northwind compnents"), ["northwind components ltd"]);
        assert_eq!(found("Bayer"), ["bayer ag"]);
        assert_eq!(found("Bayer Group"), ["bayer ag"]);
        assert_eq!(found("General Motor"), ["general motors co"]);
        assert_eq!(found("Netflx"), ["netflix inc"]);
        // Generic words alone do not make a match with a different company.
        assert!(found("Acme Inc").is_empty());
        assert_eq!(found("Apple Group"), ["apple inc"]);
        assert!(found("Zzz").is_empty());
        assert!(found("").is_empty());
    }
}
