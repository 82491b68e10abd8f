//! A small language detector for report text (issue #17, family e).
//!
//! The rubric's patterns are written in English, so a report in another
//! language scores stage 0 for reasons that have nothing to do with the
//! company. [`detect_language`] lets the scorer say so.
//!
//! Method, in order:
//!
//! 1. **Script.** Among letters, a share of at least 10 % of Japanese kana
//!    (hiragana U+3040–U+309F, katakana U+30A0–U+30FF) gives `ja`; else at
//!    least 30 % of CJK ideographs (U+4E00–U+9FFF) gives `zh`.
//! 2. **Stop words.** Latin-script text is split into lower-case words; for
//!    each of English, French, German, Spanish, Italian and Dutch the share of
//!    words that are among that language's most frequent function words is
//!    counted. The highest share wins when it is at least 15 % and at least
//!    1.5 times the runner-up's.
//! 3. Otherwise (fewer than [`MIN_WORDS`] words, tables of figures, mixed
//!    text): `und` (undetermined).
//!
//! Codes are ISO 639-1. The detector reads at most [`MAX_CHARS`] characters.

/// Fewer words than this give `und`.
pub const MIN_WORDS: usize = 8;
/// Characters read at most.
pub const MAX_CHARS: usize = 20_000;

/// Undetermined.
pub const UNDETERMINED: &str = "und";

const EN: &[&str] = &[
    "the", "and", "of", "to", "in", "is", "are", "for", "on", "with", "by", "as", "that", "this",
    "our", "we", "be", "was", "were", "from", "at", "it", "has", "have", "an", "or", "which",
    "its", "their", "not",
];
const FR: &[&str] = &[
    "le", "la", "les", "de", "des", "du", "et", "en", "un", "une", "est", "sont", "pour", "dans",
    "par", "sur", "au", "aux", "que", "qui", "nous", "notre", "nos", "avec", "ce", "cette", "ses",
    "leur", "pas", "été",
];
const DE: &[&str] = &[
    "der", "die", "das", "und", "ist", "sind", "mit", "von", "zu", "den", "dem", "des", "ein",
    "eine", "einer", "für", "auf", "im", "wir", "unsere", "unser", "nicht", "auch", "bei", "wird",
    "werden", "sich", "durch", "nach", "zur",
];
const ES: &[&str] = &[
    "el", "la", "los", "las", "de", "del", "y", "en", "un", "una", "es", "son", "para", "por",
    "con", "que", "se", "nuestro", "nuestra", "al", "su", "sus", "como", "más",
];
const IT: &[&str] = &[
    "il", "lo", "la", "gli", "le", "di", "del", "della", "e", "è", "in", "un", "una", "per", "con",
    "che", "sono", "nel", "nella", "dei", "delle", "al", "alla", "nostro", "nostra",
];
const NL: &[&str] = &[
    "de", "het", "een", "en", "van", "is", "zijn", "voor", "met", "op", "te", "dat", "die", "wij",
    "onze", "ons", "niet", "ook", "door", "bij", "naar", "wordt", "worden",
];

const LISTS: &[(&str, &[&str])] = &[
    ("en", EN),
    ("fr", FR),
    ("de", DE),
    ("es", ES),
    ("it", IT),
    ("nl", NL),
];

/// The language of `text` as an ISO 639-1 code (`en`, `fr`, `de`, `es`,
/// `it`, `nl`, `ja`, `zh`) or [`UNDETERMINED`] (see the module documentation).
pub fn detect_language(text: &str) -> &'static str {
    let text: String = text.chars().take(MAX_CHARS).collect();
    let (mut letters, mut kana, mut han) = (0usize, 0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        match c as u32 {
            0x3040..=0x30FF => kana += 1,
            0x4E00..=0x9FFF => han += 1,
            _ => {}
        }
    }
    if letters > 0 && kana * 10 >= letters && kana > 0 {
        return "ja";
    }
    if letters > 0 && han * 10 >= letters * 3 {
        return "zh";
    }
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphabetic() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.len() < MIN_WORDS {
        return UNDETERMINED;
    }
    let mut shares: Vec<(f64, &'static str)> = LISTS
        .iter()
        .map(|(code, list)| {
            let n = words.iter().filter(|w| list.contains(&w.as_str())).count();
            (n as f64 / words.len() as f64, *code)
        })
        .collect();
    shares.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let (best, code) = shares[0];
    let runner_up = shares[1].0;
    if best >= 0.15 && best >= 1.5 * runner_up {
        code
    } else {
        UNDETERMINED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_languages_of_written_sentences() {
        assert_eq!(
            detect_language(
                "We aim to reduce our Scope 1 and 2 emissions by 50% by 2030 against a 2019 baseline, and the Board oversees our progress."
            ),
            "en"
        );
        assert_eq!(
            detect_language(
                "Nous visons à réduire nos émissions de 50 % d'ici 2030 par rapport à 2019, et le conseil d'administration suit les progrès de la stratégie."
            ),
            "fr"
        );
        assert_eq!(
            detect_language(
                "Wir wollen unsere Emissionen bis 2030 um 50 % gegenüber 2019 senken, und der Aufsichtsrat überwacht die Fortschritte der Strategie mit dem Vorstand."
            ),
            "de"
        );
        assert_eq!(
            detect_language(
                "当社は、2030年までにスコープ1および2の温室効果ガス排出量を2019年比で50％削減することを目指しています。取締役会が進捗を監督しています。"
            ),
            "ja"
        );
    }

    #[test]
    fn figures_and_short_text_are_undetermined() {
        assert_eq!(detect_language(""), UNDETERMINED);
        assert_eq!(
            detect_language("Scope 1 2 3 tCO2e 1,252 2,150"),
            UNDETERMINED
        );
        assert_eq!(
            detect_language("302-1 Energy 302-3 Intensity 305-1 Scope 305-2 Scope"),
            UNDETERMINED
        );
    }

    #[test]
    fn english_with_french_names_stays_english() {
        assert_eq!(
            detect_language(
                "The report of Société Générale and Crédit Agricole is prepared in accordance with the GRI Standards and is assured by an independent auditor."
            ),
            "en"
        );
    }
}
