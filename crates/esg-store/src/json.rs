//! A JSON array of strings, the stored form of a document's warnings.
//!
//! This is the only JSON the store writes, so a small exact codec here saves
//! a dependency. The decoder accepts any standard JSON array of strings.

/// Encodes `items` as a compact JSON array of strings.
pub(crate) fn encode_strings(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// Decodes a JSON array of strings; the error says what is wrong.
pub(crate) fn decode_strings(text: &str) -> Result<Vec<String>, String> {
    let mut p = Parser {
        chars: text.char_indices().peekable(),
    };
    p.ws();
    p.expect('[')?;
    let mut items = Vec::new();
    p.ws();
    if p.peek() == Some(']') {
        p.next();
    } else {
        loop {
            p.ws();
            items.push(p.string()?);
            p.ws();
            match p.next() {
                Some((_, ',')) => continue,
                Some((_, ']')) => break,
                Some((i, c)) => return Err(format!("expected ',' or ']' at {i}, found {c:?}")),
                None => return Err("unterminated array".into()),
            }
        }
    }
    p.ws();
    match p.next() {
        None => Ok(items),
        Some((i, c)) => Err(format!("trailing {c:?} at {i}")),
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<(usize, char)> {
        self.chars.next()
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.next();
        }
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        match self.next() {
            Some((_, c)) if c == want => Ok(()),
            Some((i, c)) => Err(format!("expected {want:?} at {i}, found {c:?}")),
            None => Err(format!("expected {want:?}, found end of text")),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..4 {
            let (i, c) = self.next().ok_or("truncated \\u escape")?;
            let d = c
                .to_digit(16)
                .ok_or_else(|| format!("bad hex digit {c:?} at {i}"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect('"')?;
        let mut s = String::new();
        loop {
            let (i, c) = self.next().ok_or("unterminated string")?;
            match c {
                '"' => return Ok(s),
                '\\' => {
                    let (j, e) = self.next().ok_or("unterminated escape")?;
                    match e {
                        '"' => s.push('"'),
                        '\\' => s.push('\\'),
                        '/' => s.push('/'),
                        'b' => s.push('\u{08}'),
                        'f' => s.push('\u{0c}'),
                        'n' => s.push('\n'),
                        'r' => s.push('\r'),
                        't' => s.push('\t'),
                        'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                self.expect('\\')?;
                                self.expect('u')?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(format!("unpaired surrogate at {j}"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            s.push(
                                char::from_u32(code)
                                    .ok_or_else(|| format!("invalid code point at {j}"))?,
                            );
                        }
                        other => return Err(format!("bad escape \\{other} at {j}")),
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(format!("unescaped control character at {i}"));
                }
                c => s.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_awkward_strings() {
        let items = vec![
            String::new(),
            "plain".to_string(),
            "quote \" backslash \\ slash /".to_string(),
            "lines\nand\ttabs\r\u{08}\u{0c}\u{01}\u{1f}".to_string(),
            "unicode: Nestlé — 温室效果 😀".to_string(),
        ];
        let text = encode_strings(&items);
        assert_eq!(decode_strings(&text).unwrap(), items);
        assert_eq!(encode_strings(&[]), "[]");
        assert_eq!(decode_strings("[]").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn decodes_standard_json() {
        assert_eq!(
            decode_strings(" [ \"a\\u00e9\" , \"\\ud83d\\ude00\\/\" ] ").unwrap(),
            vec!["aé".to_string(), "😀/".to_string()]
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "[",
            "[\"a\"",
            "[\"a\",]",
            "[1]",
            "{}",
            "[\"a\"] x",
            "[\"\\x\"]",
            "[\"\\ud83d\"]",
            "[\"\u{01}\"]",
        ] {
            assert!(decode_strings(bad).is_err(), "accepted {bad:?}");
        }
    }
}
