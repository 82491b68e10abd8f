//! HTML and inline-XBRL extraction: visible text only, blocks kept apart,
//! pages from CSS page breaks.
//!
//! Skipped: `<head>`, `<script>`, `<style>`, `<noscript>`, `<template>`,
//! `<svg>`, `ix:header` (hidden XBRL facts), and any element that is hidden
//! (`hidden` attribute, `aria-hidden="true"`, or an inline style with
//! `display:none` / `visibility:hidden`). Block elements (paragraphs,
//! headings, list items, table rows, …) become separate lines with a blank
//! line between them. An element whose inline style asks for a page break
//! (`page-break-before/after: always`, `break-before/after: page`) starts a
//! new page, as printed inline-XBRL filings do; without any, the document is
//! one page, or virtual pages when it is long.

use crate::error::{ErrorCode, IngestError};
use esg_core::RawPage;
use html5gum::{DefaultEmitter, Token, Tokenizer};

const SKIP: &[&str] = &[
    "head",
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "ix:header",
    "object",
    "iframe",
];
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];
const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "caption",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
    "br",
    "body",
    "html",
    "center",
];
const CELL: &[&str] = &["td", "th"];

/// Words below which an HTML page whose title says "error" is an error page.
const ERROR_PAGE_MAX_WORDS: usize = 300;

struct Open {
    name: String,
    hidden: bool,
    break_after: bool,
}

#[derive(Default)]
struct Builder {
    pages: Vec<String>,
    cur: String,
    pending_break: bool,
    pending_space: bool,
    saw_page_break: bool,
}

impl Builder {
    fn text(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() {
                self.pending_space = true;
            } else {
                if self.pending_break {
                    if !self.cur.is_empty() {
                        self.cur.push_str("\n\n");
                    }
                    self.pending_break = false;
                    self.pending_space = false;
                } else if self.pending_space {
                    if !self.cur.is_empty() && !self.cur.ends_with('\n') {
                        self.cur.push(' ');
                    }
                    self.pending_space = false;
                }
                self.cur.push(c);
            }
        }
    }
    fn block(&mut self) {
        self.pending_break = true;
    }
    fn line(&mut self) {
        if !self.cur.is_empty() && !self.pending_break {
            self.cur.push('\n');
            self.pending_space = false;
        }
    }
    fn page_break(&mut self) {
        self.saw_page_break = true;
        if !self.cur.trim().is_empty() {
            self.pages.push(std::mem::take(&mut self.cur));
        }
        self.cur.clear();
        self.pending_break = false;
        self.pending_space = false;
    }
}

fn style_of(tag: &html5gum::StartTag<()>) -> String {
    tag.attributes
        .get(b"style".as_slice())
        .map(|v| {
            String::from_utf8_lossy(&v.value)
                .to_ascii_lowercase()
                .replace([' ', '\t', '\n'], "")
        })
        .unwrap_or_default()
}

fn is_hidden(tag: &html5gum::StartTag<()>, style: &str) -> bool {
    tag.attributes.contains_key(b"hidden".as_slice())
        || tag
            .attributes
            .get(b"aria-hidden".as_slice())
            .is_some_and(|v| v.value.eq_ignore_ascii_case(b"true"))
        || style.contains("display:none")
        || style.contains("visibility:hidden")
}

fn breaks(style: &str) -> (bool, bool) {
    let before = style.contains("page-break-before:always") || style.contains("break-before:page");
    let after = style.contains("page-break-after:always") || style.contains("break-after:page");
    (before, after)
}

/// Visible text of an HTML document and its `<title>`.
pub struct HtmlText {
    /// Pages, numbered from 1.
    pub pages: Vec<RawPage>,
    /// The document title, if any.
    pub title: Option<String>,
}

/// Extracts visible text by page from decoded HTML.
pub fn html_text(html: &str) -> HtmlText {
    let mut emitter = DefaultEmitter::default();
    emitter.naively_switch_states(true);
    let mut b = Builder::default();
    let mut stack: Vec<Open> = Vec::new();
    let mut hidden_depth = 0usize; // number of hidden elements on the stack
    let mut title: Option<String> = None;
    let mut in_title = false;
    for token in Tokenizer::new_with_emitter(html, emitter).flatten() {
        match token {
            Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                if name == "title" && !tag.self_closing {
                    in_title = true;
                    title.get_or_insert_with(String::new);
                }
                if VOID.contains(&name.as_str()) || tag.self_closing {
                    if hidden_depth == 0 {
                        if name == "br" {
                            b.line();
                        } else if name == "hr" || BLOCK.contains(&name.as_str()) {
                            let (before, after) = breaks(&style_of(&tag));
                            if before || after {
                                b.page_break();
                            } else {
                                b.block();
                            }
                        }
                    }
                    continue;
                }
                let style = style_of(&tag);
                let hidden = SKIP.contains(&name.as_str()) || is_hidden(&tag, &style);
                let (before, after) = breaks(&style);
                if hidden_depth == 0 && !hidden {
                    if before {
                        b.page_break();
                    }
                    if BLOCK.contains(&name.as_str()) {
                        b.block();
                    } else if CELL.contains(&name.as_str()) {
                        b.text(" ");
                    }
                }
                if hidden {
                    hidden_depth += 1;
                }
                stack.push(Open {
                    name,
                    hidden,
                    break_after: after,
                });
            }
            Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                if name == "title" {
                    in_title = false;
                }
                let Some(pos) = stack.iter().rposition(|o| o.name == name) else {
                    continue;
                };
                for open in stack.drain(pos..).rev() {
                    if open.hidden {
                        hidden_depth -= 1;
                    }
                    if hidden_depth == 0 && !open.hidden {
                        if BLOCK.contains(&open.name.as_str()) {
                            b.block();
                        }
                        if open.break_after {
                            b.page_break();
                        }
                    }
                }
            }
            Token::String(s) => {
                let s = String::from_utf8_lossy(&s.value);
                if in_title {
                    if let Some(t) = title.as_mut() {
                        t.push_str(&s);
                    }
                } else if hidden_depth == 0 {
                    b.text(&s);
                }
            }
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    b.page_break();
    let saw_page_break = b.saw_page_break && b.pages.len() > 1;
    let pages = if saw_page_break {
        b.pages
            .into_iter()
            .enumerate()
            .map(|(i, text)| RawPage {
                number: i as u32 + 1,
                text,
                is_virtual: false,
                layout: None,
            })
            .collect()
    } else {
        let all = b.pages.join("\n\n");
        if all.chars().count() > crate::text::VIRTUAL_PAGE_CHARS * 3 / 2 {
            crate::text::virtual_pages(&all, crate::text::VIRTUAL_PAGE_CHARS)
        } else {
            vec![RawPage {
                number: 1,
                text: all,
                is_virtual: false,
                layout: None,
            }]
        }
    };
    let title = title
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty());
    HtmlText { pages, title }
}

/// Extracts an HTML document; refuses error pages and pages without text.
pub fn extract_html(bytes: &[u8]) -> Result<Vec<RawPage>, IngestError> {
    let html = crate::text::decode(bytes)
        .ok_or_else(|| IngestError::new(ErrorCode::UnsupportedFormat, "binary content"))?;
    let HtmlText { pages, title } = html_text(&html);
    let words: usize = pages
        .iter()
        .map(|p| p.text.split_whitespace().count())
        .sum();
    if let Some(t) = title
        .as_deref()
        .filter(|t| words < ERROR_PAGE_MAX_WORDS && looks_like_error_title(t))
    {
        return Err(IngestError::new(
            ErrorCode::HtmlErrorPage,
            format!(
                "this is an HTML error page (title \"{t}\", {words} words of text), not a report; download the report again"
            ),
        ));
    }
    if words == 0 {
        return Err(IngestError::new(
            ErrorCode::NoText,
            "the HTML document has no visible text",
        ));
    }
    Ok(pages)
}

fn looks_like_error_title(title: &str) -> bool {
    let t = title.to_lowercase();
    [
        "error",
        "not found",
        "forbidden",
        "access denied",
        "unavailable",
        "bad request",
        "too many requests",
    ]
    .iter()
    .any(|w| t.contains(w))
        || t.split(|c: char| !c.is_ascii_digit()).any(|n| {
            matches!(
                n,
                "400" | "401" | "403" | "404" | "410" | "429" | "500" | "502" | "503" | "504"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_only_and_blocks_apart() {
        let html = r#"<!DOCTYPE html><html><head><title>R</title><style>p{color:red}</style>
<script>var secret = "do not index";</script></head><body>
<h1>Climate &amp; Energy</h1><p>We cut Scope&nbsp;1 emissions
by <b>12%</b>.</p><div style="display: none">hidden text</div><p hidden>also hidden</p>
<table><tr><td>Scope 1</td><td>1,200</td></tr><tr><td>Scope 2</td><td>800</td></tr></table>
<ul><li>Solar</li><li>Wind</li></ul>line one<br>line two</body></html>"#;
        let out = html_text(html);
        assert_eq!(out.title.as_deref(), Some("R"));
        assert_eq!(out.pages.len(), 1);
        let text = &out.pages[0].text;
        assert_eq!(
            text,
            "Climate & Energy\n\nWe cut Scope 1 emissions by 12%.\n\nScope 1 1,200\n\nScope 2 800\n\nSolar\n\nWind\n\nline one\nline two"
        );
    }

    #[test]
    fn inline_xbrl_header_is_dropped_and_page_breaks_split() {
        let html = r#"<?xml version='1.0' encoding='ASCII'?><html xmlns:ix="http://www.xbrl.org/2013/inlineXBRL"><body>
<div style="display:none"><ix:header><ix:hidden><ix:nonNumeric name="dei:X">HIDDENFACT</ix:nonNumeric></ix:hidden></ix:header></div>
<ix:header><ix:references>REFERENCEFACT</ix:references></ix:header>
<div><p>Page one text with <ix:nonFraction name="us-gaap:Revenue">383,285</ix:nonFraction> revenue.</p></div>
<hr style="page-break-after:always"/>
<div><p>Page two text.</p></div>
<div style="page-break-before: always"><p>Page three text.</p></div></body></html>"#;
        let out = html_text(html);
        let texts: Vec<&str> = out.pages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Page one text with 383,285 revenue.",
                "Page two text.",
                "Page three text."
            ]
        );
        assert!(out.pages.iter().all(|p| !p.text.contains("FACT")));
        assert_eq!(out.pages[2].number, 3);
    }

    #[test]
    fn error_pages_are_refused() {
        let html = "<html><head><title>500 error - Tesco plc</title></head><body><h1>Sorry</h1><p>Something went wrong.</p></body></html>";
        let err = extract_html(html.as_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::HtmlErrorPage);
        assert!(err.message.contains("500 error - Tesco plc"));
        let empty = extract_html(b"<html><body><script>x()</script></body></html>").unwrap_err();
        assert_eq!(empty.code, ErrorCode::NoText);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_markup_never_panics(s in "(?s)(<[a-z:/ ]{0,8}( style=\"[a-z:\\- ;]{0,30}\")?>|[a-z &;<>]{0,10}){0,60}") {
            let out = html_text(&s);
            proptest::prop_assert!(!out.pages.is_empty());
            for (i, p) in out.pages.iter().enumerate() {
                proptest::prop_assert_eq!(p.number as usize, i + 1);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024)) {
            let _ = extract_html(&bytes);
            let _ = crate::text::extract_text(&bytes);
        }
    }

    #[test]
    fn unclosed_and_stray_tags_do_not_lose_text() {
        let out = html_text("<html><body><p>one<p>two</span></div><div>three");
        assert_eq!(out.pages[0].text, "one\n\ntwo\n\nthree");
    }
}
