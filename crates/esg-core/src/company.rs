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
}
