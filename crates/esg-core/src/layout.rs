//! Page layout of a PDF page: blocks of lines, each with its box.
//!
//! A block is a run of text a reader takes in one go ([`BlockKind`]: a
//! paragraph, a list item, a heading, a table cell). Blocks are in reading
//! order: columns left to right, each top to bottom, a table row by row and
//! each cell whole, and where the page's geometry leaves the order open,
//! the order its content stream draws them in (the order pdfium and
//! Chrome's viewer select text in). A block never spans two table cells or
//! two columns: the extractor starts a new block wherever the pen jumps
//! across a gap wider than a word space, back up the page, or away from the
//! block's left edge (see `esg_ingest::layout`). Running headers, footers and page
//! numbers are blocks too; the clean-up recognises them across pages and
//! drops them from the stored text, so no quote comes from them.
//!
//! **Coordinates.** Boxes are in the page's default user space, in points
//! (1/72 in), with the origin where the PDF puts it, normally the lower-left
//! corner of the MediaBox, y growing upwards. `/Rotate` and the CropBox do
//! not change the numbers (as with annotation `QuadPoints`): a viewer that
//! shows a rotated or cropped page applies the same transform to the boxes
//! as to the page. A line's box runs from its first glyph's origin to the end
//! of its last glyph's advance, and from 0.25 em below the baseline to 0.85
//! em above it (the font's size, not its actual glyph outlines).
//!
//! The page's stored text is the blocks' text after clean-up, so a quote
//! taken from the stored text is found in the lines again by
//! [`PageLayout::quote_bbox`] and [`PageLayout::place`], which compare
//! lowercase letters and digits only (clean-up changes white space, joins
//! hyphenated words and drops running headers, but never letters) and look
//! a quote up piece by piece when lines the clean-up dropped lie inside it.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// A rectangle in page space, points: `x0 ≤ x1`, `y0 ≤ y1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "[f32; 4]", into = "[f32; 4]")]
pub struct BBox {
    /// Left edge.
    pub x0: f32,
    /// Bottom edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
}

impl BBox {
    /// A box from two corners in any order, rounded to 0.1 pt (finer is
    /// noise next to glyph metrics and costs storage).
    pub fn new(xa: f32, ya: f32, xb: f32, yb: f32) -> BBox {
        let r = |v: f32| (v * 10.0).round() / 10.0;
        BBox {
            x0: r(xa.min(xb)),
            y0: r(ya.min(yb)),
            x1: r(xa.max(xb)),
            y1: r(ya.max(yb)),
        }
    }

    /// The smallest box holding both.
    pub fn union(self, o: BBox) -> BBox {
        BBox {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }

    /// `true` when every coordinate is finite.
    pub fn is_finite(self) -> bool {
        [self.x0, self.y0, self.x1, self.y1]
            .iter()
            .all(|v| v.is_finite())
    }
}

impl From<[f32; 4]> for BBox {
    fn from(a: [f32; 4]) -> BBox {
        BBox::new(a[0], a[1], a[2], a[3])
    }
}

impl From<BBox> for [f32; 4] {
    fn from(b: BBox) -> [f32; 4] {
        [b.x0, b.y0, b.x1, b.y1]
    }
}

/// One line of a block: its text as extracted and its box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Box of the line's glyphs.
    pub bbox: BBox,
    /// Text of the line as extracted (before clean-up).
    pub text: String,
}

/// What a block is, as far as its geometry and first characters tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Running text (the default).
    #[default]
    Paragraph,
    /// At most three lines set at least a fifth larger than the page's body
    /// text.
    Heading,
    /// Starts with a bullet or an item number (`•`, `–`, `1.`, `(a)`).
    ListItem,
    /// A short block (at most `esg_ingest::layout::SPLIT_MAX_LINES` lines)
    /// beside another on a shared baseline: a table cell, a label or a
    /// value.
    TableCell,
    /// A running header or footer, or a page number: lines the clean-up
    /// removed from the stored text because they recur at the edge of many
    /// pages (`esg_core::clean`). Never evidence: quotes are not placed in
    /// them.
    Running,
}

/// A block: lines read one after another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// Union of the lines' boxes.
    pub bbox: BBox,
    /// Paragraph, heading, list item, table cell, or running header or footer.
    #[serde(default)]
    pub kind: BlockKind,
    /// Lines, top to bottom as drawn.
    pub lines: Vec<Line>,
}

/// The blocks of one page, in the order their text is stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageLayout {
    /// Blocks in reading order (see the module doc).
    pub blocks: Vec<Block>,
}

/// Smallest run of a quote's letters and digits looked up on its own when
/// the quote is not on the page in one piece.
const MIN_PIECE: usize = 12;

impl PageLayout {
    /// Letters and digits of the page's lines, lowercase, with the block and
    /// line each comes from.
    fn haystack(&self) -> (Vec<char>, Vec<(u32, u32)>) {
        let mut hay = Vec::new();
        let mut owner = Vec::new();
        for (b, block) in self.blocks.iter().enumerate() {
            if block.kind == BlockKind::Running {
                continue;
            }
            for (l, line) in block.lines.iter().enumerate() {
                for c in fold_chars(&line.text) {
                    hay.push(c);
                    owner.push((b as u32, l as u32));
                }
            }
        }
        (hay, owner)
    }

    fn union_of(&self, lines: impl Iterator<Item = (u32, u32)>) -> Option<BBox> {
        let mut bbox: Option<BBox> = None;
        let mut last = None;
        for (b, l) in lines {
            if last == Some((b, l)) {
                continue;
            }
            last = Some((b, l));
            let lb = self.blocks[b as usize].lines[l as usize].bbox;
            bbox = Some(bbox.map_or(lb, |x| x.union(lb)));
        }
        bbox
    }

    /// The owner (block, line) of each of `q`'s characters on the page, or
    /// `None` when `q` is not there. `q` is looked up in one piece first;
    /// failing that, piece by piece in reading order, as the stored text
    /// may lack lines the layout has between them (a running header or a
    /// page number dropped by the clean-up).
    fn locate(&self, q: &[char]) -> Option<Vec<(u32, u32)>> {
        if q.is_empty() {
            return None;
        }
        let (hay, owner) = self.haystack();
        if let Some(at) = find(&hay, q, 0) {
            return Some(owner[at..at + q.len()].to_vec());
        }
        let mut out = Vec::with_capacity(q.len());
        let (mut i, mut from) = (0, 0);
        while i < q.len() {
            let k = MIN_PIECE.min(q.len() - i);
            let at = find(&hay, &q[i..i + k], from)?;
            let mut n = k;
            while i + n < q.len() && at + n < hay.len() && hay[at + n] == q[i + n] {
                n += 1;
            }
            out.extend_from_slice(&owner[at..at + n]);
            i += n;
            from = at + n;
        }
        Some(out)
    }

    /// The box of `quote` on this page: the union of the boxes of the lines
    /// its letters and digits come from. `None` when the quote has no
    /// letters or digits, or is not on the page's lines (text read from
    /// annotation appearances or by the second reader has no layout).
    pub fn quote_bbox(&self, quote: &str) -> Option<BBox> {
        self.place(quote, 0..0).map(|(_, b)| b)
    }

    /// Places a quote taken from this page's stored text: the byte range of
    /// `quote` that lies in the block of `quote[focus]` (the text that
    /// matched), widened to whole words, and the box of that part.
    ///
    /// The stored text joins blocks as the clean-up decides (a sentence may
    /// run from a table cell into the next, or from a column into the
    /// next), so a quote cut from it at sentence bounds can join blocks that
    /// a reader sees apart; this narrows it to the block of the match. When
    /// the match itself runs over several blocks (a table cell drawn as one
    /// block per line), the quote keeps the blocks of the match and loses
    /// the others before and after them. The part kept is then narrowed
    /// again to the lines around the match that a reader ordering text by
    /// position keeps together ([`PageLayout::break_may_part`]), to the
    /// sentence of the match where that part holds a sentence bound (stores
    /// ingested before such breaks were kept in the stored text need it).
    /// The whole quote comes back when it lies in those blocks and lines
    /// already. `None` when the quote is not on the page's lines.
    pub fn place(
        &self,
        quote: &str,
        focus: std::ops::Range<usize>,
    ) -> Option<(std::ops::Range<usize>, BBox)> {
        // Folded characters of the quote with the byte range of the
        // character each comes from.
        let mut q = Vec::new();
        let mut src: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, ch) in quote.char_indices() {
            let mut buf = [0u8; 4];
            for c in fold_chars(ch.encode_utf8(&mut buf)) {
                q.push(c);
                src.push(i..i + ch.len_utf8());
            }
        }
        let owners = self.locate(&q)?;
        let focused: Vec<usize> = (0..src.len())
            .filter(|&k| src[k].start >= focus.start && src[k].end <= focus.end)
            .collect();
        let whole =
            |owners: &[(u32, u32)]| Some((0..quote.len(), self.union_of(owners.iter().copied())?));
        let (Some(&first), Some(&last)) = (focused.first(), focused.last()) else {
            return whole(&owners);
        };
        let mut blocks: Vec<u32> = focused.iter().map(|&k| owners[k].0).collect();
        blocks.sort_unstable();
        blocks.dedup();
        let of_match = |k: usize| blocks.binary_search(&owners[k].0).is_ok();
        let mut a = first;
        while a > 0 && of_match(a - 1) {
            a -= 1;
        }
        let mut b = last;
        while b + 1 < owners.len() && of_match(b + 1) {
            b += 1;
        }
        // Then to the lines a position-ordering reader keeps together.
        let (ra, rb) = self.reader_run(&owners, a..=b, first..=last);
        let by_reader = (ra, rb) != (a, b);
        let (a, b) = (ra, rb);
        if (a, b) == (0, owners.len() - 1) {
            return whole(&owners);
        }
        // Whole words: back to the white space before, on to the white
        // space after (closing punctuation stays with its word).
        let mut start = src[a].start;
        while let Some(c) = quote[..start].chars().next_back() {
            if c.is_whitespace() {
                break;
            }
            start -= c.len_utf8();
        }
        let mut end = src[b].end;
        while let Some(c) = quote[end..].chars().next() {
            if c.is_whitespace() {
                break;
            }
            end += c.len_utf8();
        }
        if by_reader {
            // Cut at the line breaks a reader may not keep: the part kept
            // starts and ends with the sentence of the match where the
            // part holds a sentence bound.
            let m = src[first].start.max(start)..src[last].end.min(end);
            let (s, e) = sentence_of(quote, start..end, m);
            start = s;
            end = e;
        }
        let bbox = self.union_of(owners[a..=b].iter().copied())?;
        Some((start..end, bbox))
    }

    /// Line `l` of block `b`.
    ///
    /// # Panics
    /// When either index is out of range.
    pub fn line(&self, (b, l): (u32, u32)) -> &Line {
        &self.blocks[b as usize].lines[l as usize]
    }

    /// Narrows the character range `range` of a located quote (`owners`:
    /// the block and line of each character) to the lines around `keep`
    /// that a reader who orders text by position keeps together: it stops
    /// at every line break [`PageLayout::break_may_part`] flags. The range
    /// comes back unchanged when such a break lies inside `keep` itself.
    fn reader_run(
        &self,
        owners: &[(u32, u32)],
        range: std::ops::RangeInclusive<usize>,
        keep: std::ops::RangeInclusive<usize>,
    ) -> (usize, usize) {
        let (lo, hi) = (*range.start(), *range.end());
        let (first, last) = (*keep.start(), *keep.end());
        let parts =
            |k: usize| owners[k - 1] != owners[k] && self.break_may_part(owners[k - 1], owners[k]);
        if (first + 1..=last).any(parts) {
            return (lo, hi);
        }
        let mut a = first;
        while a > lo && !parts(a) {
            a -= 1;
        }
        let mut b = last;
        while b < hi && !parts(b + 1) {
            b += 1;
        }
        (a, b)
    }

    /// `true` when a reader that orders a page's text by position may put
    /// other text between line `prev` and line `next`, read one after the
    /// other in the stored text.
    ///
    /// poppler (`pdftotext`, evince, okular) builds blocks of lines whose
    /// baselines are at most 1.5 font sizes apart
    /// (`maxLineSpacingDelta`), in one font size (within 5 %,
    /// `maxBlockFontSizeDelta1`), overlapping along the line. Lines it puts
    /// in separate blocks are sorted by position with the other blocks, so
    /// a line beside them, at a height between theirs, is read between
    /// them: two columns or a table set with 1.65 font sizes from one
    /// baseline to the next come out one row at a time, across all
    /// columns. Such a break is flagged; one inside a poppler block, or with
    /// nothing beside it, is not. Text drawn sideways (a landscape page
    /// stored rotated) is measured in its own frame; two lines that are not
    /// one above the other, or not drawn the same way, are never flagged.
    ///
    /// `prev` and `next` are (block, line) indices into [`PageLayout::blocks`].
    pub fn break_may_part(&self, prev: (u32, u32), next: (u32, u32)) -> bool {
        self.break_may_part_beside(prev, next, |_| true)
    }

    /// [`PageLayout::break_may_part`], counting only the lines of blocks
    /// `beside` accepts as text that may be read between the two.
    pub fn break_may_part_beside(
        &self,
        prev: (u32, u32),
        next: (u32, u32),
        beside: impl Fn(&Block) -> bool,
    ) -> bool {
        const MAX_LINE_SPACING: f32 = 1.5;
        const MAX_SIZE_DELTA: f32 = 0.05;
        let (p, n) = (self.line(prev), self.line(next));
        let upright = is_upright(p);
        if upright != is_upright(n) {
            return false;
        }
        let (p, n) = (Frame::of(p, upright), Frame::of(n, upright));
        let dist = (p.mid - n.mid).abs();
        if !(p.size > 0.0 && n.size > 0.0) || dist < 0.5 * p.size.min(n.size) {
            return false;
        }
        let overlap = p.a0 < n.a1 && n.a0 < p.a1;
        if overlap
            && dist <= MAX_LINE_SPACING * p.size
            && (p.size - n.size).abs() <= MAX_SIZE_DELTA * p.size
        {
            return false;
        }
        let (a0, a1) = (p.a0.min(n.a0), p.a1.max(n.a1));
        let (lo, hi) = (
            (p.mid - 0.3 * p.size).min(n.mid - 0.3 * n.size),
            (p.mid + 0.3 * p.size).max(n.mid + 0.3 * n.size),
        );
        self.blocks.iter().enumerate().any(|(bi, block)| {
            beside(block)
                && block.lines.iter().enumerate().any(|(li, m)| {
                    let own = (bi as u32, li as u32);
                    let f = Frame::of(m, upright);
                    own != prev
                        && own != next
                        && (f.a1 <= a0 || f.a0 >= a1)
                        && (lo..=hi).contains(&f.mid)
                        && m.text.chars().any(char::is_alphanumeric)
                })
        })
    }
}

/// `true` for a line wider than tall: text drawn upright (or upside down)
/// on the page, as opposed to sideways.
fn is_upright(l: &Line) -> bool {
    l.bbox.x1 - l.bbox.x0 >= l.bbox.y1 - l.bbox.y0
}

/// A line's box in the frame of its text: `a0..a1` along the line, `mid`
/// the middle across it, `size` the font size (the box spans 1.1 em
/// across the line, see the module doc).
struct Frame {
    a0: f32,
    a1: f32,
    mid: f32,
    size: f32,
}

impl Frame {
    fn of(l: &Line, upright: bool) -> Frame {
        let b = l.bbox;
        let (a0, a1, c0, c1) = if upright {
            (b.x0, b.x1, b.y0, b.y1)
        } else {
            (b.y0, b.y1, b.x0, b.x1)
        };
        Frame {
            a0,
            a1,
            mid: (c0 + c1) / 2.0,
            size: (c1 - c0) / 1.1,
        }
    }
}

/// The byte range, inside `part`, of the sentences of `quote` that `m`
/// touches: `part` itself where no sentence bound lies inside it.
fn sentence_of(
    quote: &str,
    part: std::ops::Range<usize>,
    m: std::ops::Range<usize>,
) -> (usize, usize) {
    let units = crate::chunk::sentences(&quote[part.clone()]);
    let touching: Vec<_> = units
        .iter()
        .map(|u| part.start + u.start..part.start + u.end)
        .filter(|u| u.start < m.end.max(m.start + 1) && m.start < u.end)
        .collect();
    match (touching.first(), touching.last()) {
        (Some(f), Some(l)) if f.start <= m.start && m.end <= l.end => (f.start, l.end),
        _ => (part.start, part.end),
    }
}

/// First index at or after `from` where `pat` occurs in `hay`.
fn find(hay: &[char], pat: &[char], from: usize) -> Option<usize> {
    if pat.is_empty() || hay.len() < pat.len() {
        return None;
    }
    (from..=hay.len() - pat.len()).find(|&i| hay[i] == pat[0] && hay[i..i + pat.len()] == *pat)
}

fn fold_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(x0: f32, y0: f32, x1: f32, y1: f32, t: &str) -> Line {
        Line {
            bbox: BBox::new(x0, y0, x1, y1),
            text: t.to_string(),
        }
    }

    fn page() -> PageLayout {
        let a = vec![
            line(72.0, 700.0, 300.0, 712.0, "We cut Scope 1 emis-"),
            line(72.0, 686.0, 280.0, 698.0, "sions by 40 % in 2023."),
        ];
        let b = vec![line(320.0, 700.0, 500.0, 712.0, "Water use fell.")];
        PageLayout {
            blocks: vec![
                Block {
                    bbox: a[0].bbox.union(a[1].bbox),
                    kind: BlockKind::Paragraph,
                    lines: a,
                },
                Block {
                    bbox: b[0].bbox,
                    kind: BlockKind::Paragraph,
                    lines: b,
                },
            ],
        }
    }

    /// Two columns of `rows` single-line rows, `leading` points apart, font
    /// size 10 (boxes 11 pt high); sideways when `turned` (x and y swapped).
    fn columns(leading: f32, rows: usize, right: bool, turned: bool) -> PageLayout {
        let mut blocks = Vec::new();
        for x in [72.0, 320.0].into_iter().take(if right { 2 } else { 1 }) {
            let lines: Vec<Line> = (0..rows)
                .map(|i| {
                    let y0 = 700.0 - leading * i as f32;
                    let (a, b, c, d) = (x, y0, x + 200.0, y0 + 11.0);
                    if turned {
                        line(b, a, d, c, "some words of the column")
                    } else {
                        line(a, b, c, d, "some words of the column")
                    }
                })
                .collect();
            blocks.push(Block {
                bbox: lines[0].bbox.union(lines[rows - 1].bbox),
                kind: BlockKind::Paragraph,
                lines,
            });
        }
        PageLayout { blocks }
    }

    #[test]
    fn loose_lines_with_text_beside_them_may_be_parted() {
        for turned in [false, true] {
            // 17 pt = 1.7 font sizes: poppler blocks of one line each,
            // read row by row across the columns.
            assert!(columns(17.0, 3, true, turned).break_may_part((0, 0), (0, 1)));
            assert!(columns(17.0, 3, true, turned).break_may_part((1, 1), (1, 2)));
            // 12 pt: one poppler block per column.
            assert!(!columns(12.0, 3, true, turned).break_may_part((0, 0), (0, 1)));
            // Nothing beside: read in order whatever the blocks.
            assert!(!columns(17.0, 3, false, turned).break_may_part((0, 0), (0, 1)));
        }
        // Lines of the same row are not a break between lines.
        assert!(!columns(17.0, 3, true, false).break_may_part((0, 0), (1, 0)));
    }

    #[test]
    fn a_quote_over_a_loose_break_is_cut_to_the_sentence_of_its_match() {
        // A store made before ingest kept such breaks: the quote runs over
        // two loosely set lines with a column beside them.
        let mut p = columns(17.0, 2, true, false);
        p.blocks[0].lines[0].text = "Energy use fell. We cut".into();
        p.blocks[0].lines[1].text = "waste. Water use rose.".into();
        let quote = "Energy use fell. We cut waste. Water use rose.";
        let m = quote.find("fell").unwrap();
        let (r, b) = p.place(quote, m..m + 4).expect("on the page");
        assert_eq!(&quote[r], "Energy use fell.");
        assert_eq!(b, p.blocks[0].lines[0].bbox);
        // A match over the break keeps the whole quote.
        let m = quote.find("cut waste").unwrap();
        let (r, _) = p.place(quote, m..m + 9).expect("on the page");
        assert_eq!(&quote[r], quote);
    }

    #[test]
    fn a_quote_over_a_hyphenated_line_end_has_both_lines() {
        let b = page()
            .quote_bbox("Scope 1 emissions by 40 %")
            .expect("found");
        assert_eq!(b, BBox::new(72.0, 686.0, 300.0, 712.0));
    }

    #[test]
    fn a_quote_found_whole_is_not_pieced_from_an_earlier_start() {
        // "Water" starts line 1 and the quote; the quote is whole on line 2.
        let p = PageLayout {
            blocks: vec![Block {
                bbox: BBox::new(0.0, 0.0, 100.0, 30.0),
                kind: BlockKind::Paragraph,
                lines: vec![
                    line(0.0, 20.0, 100.0, 30.0, "Water stewardship report"),
                    line(0.0, 0.0, 100.0, 10.0, "Water stewardship targets are set."),
                ],
            }],
        };
        assert_eq!(
            p.quote_bbox("Water stewardship targets"),
            Some(BBox::new(0.0, 0.0, 100.0, 10.0))
        );
    }

    #[test]
    fn a_quote_on_one_line_has_that_line() {
        let b = page().quote_bbox("water USE fell").expect("found");
        assert_eq!(b, BBox::new(320.0, 700.0, 500.0, 712.0));
    }

    #[test]
    fn text_not_on_the_page_has_no_box() {
        assert_eq!(page().quote_bbox("Biodiversity"), None);
        assert_eq!(page().quote_bbox(" - % "), None);
    }

    #[test]
    fn boxes_are_stored_as_four_numbers() {
        let b = BBox::new(10.04, 20.0, 5.0, 1.0);
        let json = serde_json_like(b);
        assert_eq!(json, [5.0, 1.0, 10.0, 20.0]);
    }

    fn serde_json_like(b: BBox) -> [f32; 4] {
        b.into()
    }

    /// One single-line block of `kind` per entry of `blocks`, each 20 pt
    /// below the last; every word with its block; and all the words joined
    /// by spaces, as the quote.
    fn stacked(
        blocks: &[Vec<String>],
        kind: BlockKind,
    ) -> (PageLayout, Vec<(usize, &String)>, String) {
        let layout = PageLayout {
            blocks: blocks
                .iter()
                .enumerate()
                .map(|(i, words)| {
                    let y = 700.0 - 20.0 * i as f32;
                    Block {
                        bbox: BBox::new(0.0, y, 100.0, y + 10.0),
                        kind,
                        lines: vec![line(0.0, y, 100.0, y + 10.0, &words.join(" "))],
                    }
                })
                .collect(),
        };
        let all: Vec<(usize, &String)> = blocks
            .iter()
            .enumerate()
            .flat_map(|(b, ws)| ws.iter().map(move |w| (b, w)))
            .collect();
        let quote = all
            .iter()
            .map(|(_, w)| w.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        (layout, all, quote)
    }

    proptest! {
        /// A quote over several blocks is narrowed to words of the block of
        /// its match: the kept part holds the match, is whole words, and
        /// every word of it belongs to that block.
        #[test]
        fn placing_keeps_the_match_inside_its_block(
            blocks in proptest::collection::vec(proptest::collection::vec("[a-z]{2,7}", 1..5), 1..5),
            pick in 0usize..20,
        ) {
            let (layout, all, quote) = stacked(&blocks, BlockKind::Paragraph);
            let k = pick % all.len();
            let start: usize = all[..k].iter().map(|(_, w)| w.len() + 1).sum();
            let focus = start..start + all[k].1.len();
            let (r, b) = layout.place(&quote, focus.clone()).expect("the quote is on the page");
            prop_assert!(r.start <= focus.start && focus.end <= r.end);
            let kept = &quote[r];
            let block = all[k].0;
            let want = blocks[block].join(" ");
            // Words repeated across blocks may be located in another
            // occurrence; the kept text is then still one block's words.
            prop_assert!(
                want.contains(kept) || blocks.iter().any(|ws| ws.join(" ").contains(kept)),
                "{kept:?} is not inside one block of {blocks:?}"
            );
            prop_assert!(b.is_finite());
        }

        /// A match over several blocks keeps exactly the blocks it runs over:
        /// the words of the other blocks, before and after, are cut.
        #[test]
        fn a_match_over_blocks_keeps_those_blocks(
            blocks in proptest::collection::vec(proptest::collection::vec("[a-z]{2,7}", 1..5), 2..6),
            from in 0usize..30,
            len in 0usize..30,
        ) {
            // Words made unique, so each is found where it was drawn.
            let mut n = 0;
            let blocks: Vec<Vec<String>> = blocks
                .into_iter()
                .map(|ws| ws.into_iter().map(|w| { n += 1; format!("{w}{n}") }).collect())
                .collect();
            let (layout, all, quote) = stacked(&blocks, BlockKind::TableCell);
            let k1 = from % all.len();
            let k2 = (k1 + len).min(all.len() - 1);
            let at = |k: usize| -> usize { all[..k].iter().map(|(_, w)| w.len() + 1).sum() };
            let focus = at(k1)..at(k2) + all[k2].1.len();
            let (r, _) = layout.place(&quote, focus.clone()).expect("the quote is on the page");
            prop_assert!(r.start <= focus.start && focus.end <= r.end);
            let want = blocks[all[k1].0..=all[k2].0]
                .iter()
                .map(|ws| ws.join(" "))
                .collect::<Vec<_>>()
                .join(" ");
            prop_assert_eq!(&quote[r], want.as_str());
        }

        /// Any run of a line's words is found, and its box lies inside the
        /// block's box.
        #[test]
        fn any_run_of_words_is_found_inside_its_block(
            words in proptest::collection::vec("[a-z]{1,8}", 1..12),
            from in 0usize..12,
            len in 1usize..12,
        ) {
            let text = words.join(" ");
            let p = PageLayout {
                blocks: vec![Block {
                    bbox: BBox::new(0.0, 0.0, 100.0, 10.0),
                    kind: BlockKind::Paragraph,
                    lines: vec![line(0.0, 0.0, 100.0, 10.0, &text)],
                }],
            };
            let from = from.min(words.len() - 1);
            let to = (from + len).min(words.len());
            let q = words[from..to].join(" ");
            let b = p.quote_bbox(&q).expect("a run of the line's words is on the page");
            prop_assert_eq!(b, BBox::new(0.0, 0.0, 100.0, 10.0));
        }
    }

    #[test]
    fn a_quote_is_found_across_a_line_the_clean_up_dropped() {
        let p = PageLayout {
            blocks: vec![
                Block {
                    bbox: BBox::new(72.0, 100.0, 300.0, 112.0),
                    kind: BlockKind::Paragraph,
                    lines: vec![line(72.0, 100.0, 300.0, 112.0, "Statement of Verification")],
                },
                Block {
                    bbox: BBox::new(72.0, 20.0, 100.0, 30.0),
                    kind: BlockKind::Paragraph,
                    lines: vec![line(72.0, 20.0, 100.0, 30.0, "2021 REPORT")],
                },
                Block {
                    bbox: BBox::new(500.0, 20.0, 520.0, 30.0),
                    kind: BlockKind::Paragraph,
                    lines: vec![line(500.0, 20.0, 520.0, 30.0, "5")],
                },
            ],
        };
        // The stored text lost "2021 REPORT" (a running footer).
        let quote = "Statement of Verification 5";
        assert!(p.quote_bbox("Verification").is_some());
        let (r, b) = p.place(quote, 0..9).expect("found in two pieces");
        assert_eq!(&quote[r], "Statement of Verification");
        assert_eq!(b, BBox::new(72.0, 100.0, 300.0, 112.0));
    }

    #[test]
    fn a_quote_over_two_cells_is_narrowed_to_the_cell_of_its_match() {
        let cells = PageLayout {
            blocks: vec![
                Block {
                    bbox: BBox::new(72.0, 700.0, 200.0, 712.0),
                    kind: BlockKind::Paragraph,
                    lines: vec![line(72.0, 700.0, 200.0, 712.0, "Scope 1 emissions")],
                },
                Block {
                    bbox: BBox::new(300.0, 700.0, 500.0, 712.0),
                    kind: BlockKind::Paragraph,
                    lines: vec![line(
                        300.0,
                        700.0,
                        500.0,
                        712.0,
                        "Direct emissions from owned sources.",
                    )],
                },
            ],
        };
        let quote = "Scope 1 emissions Direct emissions from owned sources.";
        let m = quote.find("owned").unwrap();
        let (r, b) = cells.place(quote, m..m + 5).expect("on the page");
        assert_eq!(&quote[r], "Direct emissions from owned sources.");
        assert_eq!(b, BBox::new(300.0, 700.0, 500.0, 712.0));
        // A match in the first cell keeps the first cell.
        let (r, _) = cells.place(quote, 0..5).expect("on the page");
        assert_eq!(&quote[r], "Scope 1 emissions");
        // A match over both cells keeps the whole quote.
        let (r, b) = cells.place(quote, 8..24).expect("on the page");
        assert_eq!(r, 0..quote.len());
        assert_eq!(b, BBox::new(72.0, 700.0, 500.0, 712.0));
        assert_eq!(cells.place("Water", 0..5), None);
    }
}
