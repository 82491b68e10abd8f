//! Layout-aware PDF text (issue 12) on generated PDFs whose layout is known:
//! two columns, a page drawn out of reading order, a table with wrapped
//! cells, a running header, a page turned by `/Rotate` with its text drawn
//! turned, and a cropped page. Text is set
//! in Courier (every glyph 0.6 em wide), so where each line was drawn is
//! known exactly, and the boxes are checked against it within 1 pt.

mod common;

use common::{stream, write_pdf};
use esg_core::layout::{BBox, BlockKind, PageLayout};
use esg_ingest::pdf::extract_pdf;

const SIZE: f32 = 10.0;

/// A document of one page per entry: (content stream, extra page entries).
fn doc(pages: &[(&str, &str)]) -> Vec<u8> {
    let n = pages.len();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objs: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>".to_vec(),
    ];
    for (i, (content, extra)) in pages.iter().enumerate() {
        objs.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] {extra} \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        objs.push(stream("", content));
    }
    write_pdf(&objs)
}

/// Content that draws each `(x, y, text)` as its own text object.
fn draw(lines: &[(f32, f32, &str)]) -> String {
    lines
        .iter()
        .map(|(x, y, t)| format!("BT /F1 {SIZE} Tf {x} {y} Td ({t}) Tj ET"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where an upright Courier line was drawn: its advance, 0.25 em below and
/// 0.85 em above the baseline (the box `esg_core::layout` defines).
fn drawn(x: f32, y: f32, text: &str) -> BBox {
    let w = 0.6 * SIZE * text.chars().count() as f32;
    BBox::new(x, y - 0.25 * SIZE, x + w, y + 0.85 * SIZE)
}

fn assert_near(got: BBox, want: BBox) {
    let d = [
        got.x0 - want.x0,
        got.y0 - want.y0,
        got.x1 - want.x1,
        got.y1 - want.y1,
    ];
    assert!(
        d.iter().all(|v| v.abs() <= 1.0),
        "box {got:?} is not within 1 pt of {want:?}"
    );
}

fn layout_of(pdf: &[u8], page: usize) -> (String, PageLayout) {
    let out = extract_pdf(pdf).expect("the PDF is read");
    let p = &out.pages[page];
    (p.text.clone(), p.layout.clone().expect("a layout"))
}

fn block_texts(l: &PageLayout) -> Vec<String> {
    l.blocks
        .iter()
        .map(|b| {
            b.lines
                .iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn two_columns_are_two_blocks_and_a_sentence_has_its_box() {
    // Columns of prose longer than `SPLIT_MAX_LINES` (shorter blocks side
    // by side are read line by line, like table cells).
    let left = [
        (72.0, 700.0, "Our board oversees"),
        (72.0, 688.0, "climate risk each"),
        (72.0, 676.0, "quarter and reviews"),
        (72.0, 664.0, "the targets that"),
        (72.0, 652.0, "management sets for"),
        (72.0, 640.0, "energy, water and"),
        (72.0, 628.0, "waste every single"),
        (72.0, 616.0, "year."),
    ];
    let right = [
        (320.0, 700.0, "Water use fell by"),
        (320.0, 688.0, "twelve percent in"),
        (320.0, 676.0, "the year, and the"),
        (320.0, 664.0, "share of recycled"),
        (320.0, 652.0, "water rose to one"),
        (320.0, 640.0, "third of the total"),
        (320.0, 628.0, "drawn at our sites"),
        (320.0, 616.0, "in dry regions."),
    ];
    assert!(left.len() > esg_ingest::layout::SPLIT_MAX_LINES);
    let content = draw(&[left.as_slice(), right.as_slice()].concat());
    let pdf = doc(&[(&content, "")]);
    let (text, l) = layout_of(&pdf, 0);
    assert_eq!(
        block_texts(&l),
        vec![
            left.iter().map(|l| l.2).collect::<Vec<_>>().join(" "),
            right.iter().map(|l| l.2).collect::<Vec<_>>().join(" "),
        ]
    );
    assert_eq!(text.lines().count(), left.len() + right.len(), "{text:?}");
    for (i, (x, y, t)) in left.iter().enumerate() {
        assert_near(l.blocks[0].lines[i].bbox, drawn(*x, *y, t));
    }
    assert!(
        l.blocks.iter().all(|b| b.kind == BlockKind::Paragraph),
        "columns of prose are paragraphs, not cells"
    );
    let b = l
        .quote_bbox("Water use fell by twelve percent in the year")
        .expect("the sentence is on the page");
    assert_near(
        b,
        drawn(320.0, 700.0, "Water use fell by").union(drawn(320.0, 676.0, "the year, and the")),
    );
}

fn borrowed(v: &[(f32, f32, String)]) -> Vec<(f32, f32, &str)> {
    v.iter().map(|(x, y, t)| (*x, *y, t.as_str())).collect()
}

#[test]
fn a_page_drawn_out_of_reading_order_is_stored_in_it() {
    // Drawn footnote first, then the right column, the left column and at
    // last the heading over both: read heading, left, right, footnote, as
    // the page shows them and poppler reads them.
    let heading = (72.0, 740.0, "Climate and water in 2021");
    let left: Vec<(f32, f32, String)> = (0..8)
        .map(|i| {
            (
                72.0,
                700.0 - 12.0 * i as f32,
                format!("left column line {i}"),
            )
        })
        .collect();
    let right: Vec<(f32, f32, String)> = (0..8)
        .map(|i| {
            (
                320.0,
                700.0 - 12.0 * i as f32,
                format!("right column line {i}"),
            )
        })
        .collect();
    let note = (72.0, 60.0, "Figures for the calendar year.");
    let content = draw(&[vec![note], borrowed(&right), borrowed(&left), vec![heading]].concat());
    let pdf = doc(&[(&content, "")]);
    let (text, l) = layout_of(&pdf, 0);
    let mut want = vec![heading.2.to_string()];
    want.extend(left.iter().map(|l| l.2.clone()));
    want.extend(right.iter().map(|l| l.2.clone()));
    want.push(note.2.to_string());
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
    // The layout lists the blocks in the same order, with their boxes.
    assert_eq!(block_texts(&l)[0], heading.2);
    assert_near(l.blocks[0].bbox, drawn(heading.0, heading.1, heading.2));
    assert_near(l.blocks[1].lines[0].bbox, drawn(72.0, 700.0, &left[0].2));
    assert_near(l.blocks[2].lines[0].bbox, drawn(320.0, 700.0, &right[0].2));
    assert_eq!(block_texts(&l)[3], note.2);
}

#[test]
fn wrapped_table_cells_never_share_a_block() {
    // A two-column table row drawn line by line across the cells, as many
    // report generators do, then a row drawn cell by cell.
    let content = draw(&[
        (72.0, 700.0, "Scope 1 emissions"),
        (300.0, 700.0, "Direct emissions from"),
        (72.0, 688.0, "(tCO2e)"),
        (300.0, 688.0, "owned sources"),
        (72.0, 660.0, "Scope 2 emissions"),
        (72.0, 648.0, "(market-based)"),
        (300.0, 660.0, "Purchased electricity"),
        (300.0, 648.0, "and heat"),
    ]);
    let pdf = doc(&[(&content, "")]);
    let (_, l) = layout_of(&pdf, 0);
    let cells = [
        ["Scope 1 emissions", "(tCO2e)"],
        ["Direct emissions from", "owned sources"],
        ["Scope 2 emissions", "(market-based)"],
        ["Purchased electricity", "and heat"],
    ];
    for b in block_texts(&l) {
        let owners: Vec<usize> = (0..cells.len())
            .filter(|&c| cells[c].iter().any(|line| b.contains(line)))
            .collect();
        assert_eq!(owners.len(), 1, "block {b:?} joins cells {owners:?}");
    }
    assert!(
        l.blocks.iter().all(|b| b.kind == BlockKind::TableCell),
        "every block of the table is a cell"
    );
    let b = l.quote_bbox("Purchased electricity").expect("on the page");
    assert_near(b, drawn(300.0, 660.0, "Purchased electricity"));
}

#[test]
fn a_running_header_is_its_own_block_and_is_not_stored_text() {
    let page = |body: &str, number: &str| {
        draw(&[
            (72.0, 760.0, "ACME Sustainability Report 2023"),
            (72.0, 700.0, body),
            (300.0, 40.0, number),
        ])
    };
    let bodies = [
        "We report on climate in the ACME Sustainability Report 2023.",
        "We report on water.",
        "We report on people.",
    ];
    let contents: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| page(b, &(i + 1).to_string()))
        .collect();
    let pages: Vec<(&str, &str)> = contents.iter().map(|c| (c.as_str(), "")).collect();
    let out = extract_pdf(&doc(&pages)).expect("read");
    for (i, (p, body)) in out.pages.iter().zip(bodies).enumerate() {
        let l = p.layout.as_ref().expect("layout");
        let number = (i + 1).to_string();
        assert_eq!(
            block_texts(l),
            vec!["ACME Sustainability Report 2023", body, number.as_str()]
        );
    }
    let cleaned = esg_core::clean_pages(out.pages);
    for (c, body) in cleaned.iter().zip(bodies) {
        assert_eq!(c.text, body, "the running header is not page text");
        let l = c.layout.as_ref().expect("layout");
        let kinds: Vec<BlockKind> = l.blocks.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            vec![BlockKind::Running, BlockKind::Paragraph, BlockKind::Running],
            "the header and the page number are marked running"
        );
    }
    // A quote of body text that repeats the header is placed in the body,
    // never in the header.
    let l = cleaned[0].layout.as_ref().expect("layout");
    let b = l
        .quote_bbox("ACME Sustainability Report 2023")
        .expect("placed");
    assert!(b.y1 < 720.0, "placed in the header: {b:?}");
}

#[test]
fn a_rotated_page_is_read_in_its_reading_order_with_page_space_boxes() {
    // /Rotate 90 and text drawn turned a quarter anticlockwise: it runs up
    // the page, and each next line is further right (Bayer's 2021 report is
    // made this way).
    let lines = [
        (100.0, 72.0, "Net zero by 2050 across"),
        (112.0, 72.0, "our own operations."),
    ];
    let content = lines
        .iter()
        .map(|(x, y, t)| format!("BT /F1 {SIZE} Tf 0 1 -1 0 {x} {y} Tm ({t}) Tj ET"))
        .collect::<Vec<_>>()
        .join("\n");
    let pdf = doc(&[(&content, "/Rotate 90")]);
    let (text, l) = layout_of(&pdf, 0);
    assert_eq!(text, "Net zero by 2050 across\nour own operations.");
    // Turned: the advance runs along y, the glyphs stand to the left of
    // the baseline (0.85 em) and descend to its right (0.25 em).
    let turned = |x: f32, y: f32, t: &str| {
        let w = 0.6 * SIZE * t.chars().count() as f32;
        BBox::new(x - 0.85 * SIZE, y, x + 0.25 * SIZE, y + w)
    };
    for (i, (x, y, t)) in lines.iter().enumerate() {
        assert_near(l.blocks[0].lines[i].bbox, turned(*x, *y, t));
    }
}

#[test]
fn a_cropped_page_keeps_user_space_boxes() {
    let content = draw(&[(72.0, 700.0, "Limited assurance by KPMG.")]);
    let pdf = doc(&[(&content, "/CropBox [36 36 576 756]")]);
    let (_, l) = layout_of(&pdf, 0);
    let b = l.quote_bbox("Limited assurance by KPMG.").expect("found");
    assert_near(b, drawn(72.0, 700.0, "Limited assurance by KPMG."));
}

#[test]
fn chunks_never_join_two_table_cells() {
    // Prose, a table drawn cell by cell on shared baselines, then more
    // prose. The chunks are made as large as possible, so only block
    // breaks can end them.
    let prose = [
        (72.0, 700.0, "We cut our emissions by a third"),
        (72.0, 688.0, "since the base year and report"),
        (72.0, 676.0, "them against our targets below."),
    ];
    let rows = [
        ["Scope 1 emissions", "12,345 tCO2e", "11,020 tCO2e"],
        ["Scope 2 emissions", "8,100 tCO2e", "7,950 tCO2e"],
    ];
    let mut lines: Vec<(f32, f32, &str)> = prose.to_vec();
    for (r, row) in rows.iter().enumerate() {
        let y = 640.0 - 14.0 * r as f32;
        for (c, cell) in row.iter().enumerate() {
            lines.push((72.0 + 180.0 * c as f32, y, cell));
        }
    }
    lines.push((72.0, 560.0, "The board approves every target"));
    lines.push((72.0, 548.0, "and reviews progress each year."));
    let pdf = doc(&[(&draw(&lines), "")]);
    let out = extract_pdf(&pdf).expect("read");
    let cleaned = esg_core::clean_pages(out.pages);
    let kinds: Vec<BlockKind> = cleaned[0]
        .layout
        .as_ref()
        .expect("layout")
        .blocks
        .iter()
        .map(|b| b.kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == BlockKind::TableCell).count(),
        6
    );
    assert!(cleaned[0].text.contains(esg_core::chunk::BLOCK_BREAK));
    let params = esg_core::ChunkParams {
        target_words: 1000,
        min_words: 1000,
        max_words: 2000,
        overlap_words: 50,
    };
    let chunks = esg_core::chunk_pages("doc", &cleaned, params);
    let cells: Vec<&str> = rows.iter().flatten().copied().collect();
    for c in &chunks {
        let held = cells.iter().filter(|cell| c.text.contains(**cell)).count();
        assert!(held <= 1, "a chunk joins {held} cells: {:?}", c.text);
    }
    assert!(chunks.len() >= cells.len(), "{chunks:?}");
    // Every word of the page is in a chunk, once (no overlap across cells).
    let words: usize = chunks.iter().map(|c| c.words as usize).sum();
    assert_eq!(words, cleaned[0].text.split_whitespace().count());
}

/// Two columns of eight lines each, `leading` points from one baseline to
/// the next, cleaned as `esg ingest` stores them.
fn columns_stored(
    leading: f32,
    with_right: bool,
) -> (Vec<String>, Vec<String>, esg_core::CleanedPage, Vec<u8>) {
    let words = [
        "the board reviews",
        "climate risk at",
        "every meeting and",
        "sets the targets",
        "that management",
        "reports against",
        "in each quarter",
        "of the year.",
    ];
    let mut lines = Vec::new();
    let mut left = Vec::new();
    let mut right = Vec::new();
    // Drawn a column at a time, as a page-layout program draws its
    // text frames.
    for (i, w) in words.iter().enumerate() {
        let y = 700.0 - leading * i as f32;
        left.push(format!("left {w}"));
        lines.push((72.0, y, left[i].clone()));
    }
    if with_right {
        for (i, w) in words.iter().enumerate() {
            let y = 700.0 - leading * i as f32;
            right.push(format!("right {w}"));
            lines.push((320.0, y, right[i].clone()));
        }
    }
    let drawn: Vec<(f32, f32, &str)> = lines.iter().map(|(x, y, t)| (*x, *y, t.as_str())).collect();
    let pdf = doc(&[(&draw(&drawn), "")]);
    let out = extract_pdf(&pdf).expect("read");
    let mut cleaned = esg_core::clean_pages(out.pages);
    (left, right, cleaned.remove(0), pdf)
}

/// A row of three table cells of two lines each, `leading` points from one
/// baseline to the next, cleaned as `esg ingest` stores them.
fn table_stored(leading: f32) -> (Vec<[&'static str; 2]>, esg_core::CleanedPage, Vec<u8>) {
    let cells = vec![
        ["Scope 1 emissions of", "the group in tonnes"],
        ["reported every year", "since the base year"],
        ["verified by a third", "party each spring"],
    ];
    let mut lines = Vec::new();
    for (c, cell) in cells.iter().enumerate() {
        for (i, l) in cell.iter().enumerate() {
            lines.push((72.0 + 180.0 * c as f32, 700.0 - leading * i as f32, *l));
        }
    }
    let pdf = doc(&[(&draw(&lines), "")]);
    let out = extract_pdf(&pdf).expect("read");
    (cells, esg_core::clean_pages(out.pages).remove(0), pdf)
}

/// poppler's reading of `pdf` (`pdftotext`, as evince and okular read it),
/// white space collapsed; `None` without pdftotext, except under
/// `CI=true`, where CI installs it and its absence fails.
fn poppler_text(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.pdf");
    std::fs::write(&path, pdf).expect("write");
    match std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(o) if o.status.success() => Some(
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        r => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "pdftotext is needed under CI=true: {r:?}");
            eprintln!("SKIP poppler check: no pdftotext ({r:?})");
            None
        }
    }
}

#[test]
fn loosely_set_table_cells_keep_their_line_breaks() {
    // At 1.7 font sizes from baseline to baseline poppler (pdftotext,
    // evince) makes each line a block of its own and reads the row line by
    // line across all cells; a sentence over two lines of a cell is then
    // found by no search. The stored text keeps each line apart, so no
    // sentence, match or quote joins two of them.
    let (cells, page, pdf) = table_stored(17.0);
    let paragraphs: Vec<&str> = page.text.lines().filter(|l| !l.is_empty()).collect();
    let want: Vec<&str> = cells.iter().flatten().copied().collect();
    assert_eq!(paragraphs, want, "{:?}", page.text);
    assert!(!page.text.contains(esg_core::clean::HARD_BREAK));
    // poppler itself: every stored paragraph is in its text, and a cell's
    // two lines are not (it read something else between them).
    if let Some(poppler) = poppler_text(&pdf) {
        for p in &paragraphs {
            assert!(poppler.contains(p), "{p:?} not in poppler's {poppler:?}");
        }
        for c in &cells {
            let joined = c.join(" ");
            assert!(
                !poppler.contains(&joined),
                "poppler kept {joined:?} whole: {poppler:?}"
            );
        }
    }
    // Set at 1.2 font sizes, each cell is one poppler block: one paragraph.
    let (cells, page, pdf) = table_stored(12.0);
    let paragraphs: Vec<&str> = page.text.lines().filter(|l| !l.is_empty()).collect();
    let want: Vec<String> = cells.iter().map(|c| c.join(" ")).collect();
    assert_eq!(paragraphs, want, "{:?}", page.text);
    // And poppler keeps each of those cells whole.
    if let Some(poppler) = poppler_text(&pdf) {
        for p in &paragraphs {
            assert!(poppler.contains(p), "{p:?} not in poppler's {poppler:?}");
        }
    }
}

#[test]
fn loosely_set_prose_keeps_its_sentences_whole() {
    // Running prose is joined at 1.2 and at 1.6 font sizes (poppler parts
    // the lines of the latter, Sligro's case): the rubric's criteria
    // read whole sentences. (A quote is still cut at a loose break at
    // placement when its match allows: `PageLayout::place`.)
    for leading in [12.0, 16.0] {
        let (left, right, page, pdf) = columns_stored(leading, true);
        let paragraphs: Vec<&str> = page.text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            paragraphs,
            vec![left.join(" "), right.join(" ")],
            "{:?}",
            page.text
        );
        let l = page.layout.as_ref().expect("a layout");
        let parted = l.break_may_part((0, 0), (0, 1));
        assert_eq!(parted, leading > 15.0);
        // The rule agrees with poppler: it reads the columns whole at 1.2
        // font sizes, and row by row across both at 1.6.
        if let Some(poppler) = poppler_text(&pdf) {
            for column in [&left, &right] {
                let whole = column.join(" ");
                assert_eq!(
                    !poppler.contains(&whole),
                    parted,
                    "{whole:?} in {poppler:?}"
                );
            }
        }
    }
    let (left, _, page, _) = columns_stored(16.0, false);
    assert_eq!(page.text, left.join(" "));
}
