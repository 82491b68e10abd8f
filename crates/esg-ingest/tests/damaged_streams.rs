//! No page lost silently (issue 12): generated PDFs whose page content
//! streams are damaged the ways real reports are (a zlib stream cut short,
//! one without its Adler-32 checksum, one bad stream among good pages).

mod common;

use esg_ingest::pdf::{extract_pdf, extract_pdf_with};
use flate2::{Compression, write::ZlibEncoder};
use std::io::Write;

/// How a page's content stream is stored.
#[derive(Clone, Copy)]
enum Stream {
    /// A complete zlib stream.
    Flate,
    /// A zlib stream missing its last 4 bytes (the Adler-32 checksum).
    NoAdler,
    /// The first `percent` % of a zlib stream.
    Truncated(usize),
    /// Bytes that are not zlib at all.
    Garbage,
}

fn content(lines: &[String]) -> Vec<u8> {
    let mut c = String::from("BT /F1 11 Tf 14 TL 72 720 Td\n");
    for l in lines {
        c.push_str(&format!("({l}) Tj T*\n"));
    }
    c.push_str("ET\n");
    c.into_bytes()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A PDF with one page per entry, each showing its lines in Helvetica.
fn pdf(pages: &[(Vec<String>, Stream)]) -> Vec<u8> {
    let n = pages.len();
    // Objects: 1 catalog, 2 pages, 3 font, then per page: page, content.
    let mut objs: Vec<Vec<u8>> = Vec::new();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objs.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objs.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes());
    objs.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
    for (i, (lines, how)) in pages.iter().enumerate() {
        objs.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        let raw = content(lines);
        let z = zlib(&raw);
        let data = match how {
            Stream::Flate => z,
            Stream::NoAdler => z[..z.len() - 4].to_vec(),
            Stream::Truncated(p) => z[..z.len() * p / 100].to_vec(),
            Stream::Garbage => b"\x78\x9c this is not deflate data at all \xff\xfe".to_vec(),
        };
        let mut o = format!(
            "<< /Length {} /Filter /FlateDecode >>\nstream\n",
            data.len()
        )
        .into_bytes();
        o.extend_from_slice(&data);
        o.extend_from_slice(b"\nendstream");
        objs.push(o);
    }
    common::write_pdf(&objs)
}

fn lines(page: usize, count: usize) -> Vec<String> {
    (0..count)
        .map(|l| format!("Page {page} line {l} reports scope emissions word{page}x{l}"))
        .collect()
}

#[test]
fn stream_without_adler32_is_read_whole_with_a_warning() {
    let doc = pdf(&[(lines(1, 30), Stream::NoAdler)]);
    let t = extract_pdf(&doc).expect("extracts");
    for l in 0..30 {
        assert!(
            t.pages[0].text.contains(&format!("word1x{l}")),
            "line {l} lost: {}",
            t.pages[0].text
        );
    }
    assert!(
        t.warnings
            .iter()
            .any(|w| w.starts_with("page 1:") && w.contains("damaged content stream")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn truncated_stream_gives_the_text_before_the_damage() {
    let doc = pdf(&[(lines(1, 60), Stream::Truncated(50))]);
    let t = extract_pdf(&doc).expect("extracts");
    let text = &t.pages[0].text;
    // The first lines lie well before the cut; the last ones after it.
    for l in 0..10 {
        assert!(
            text.contains(&format!("word1x{l} "))
                || text.contains(&format!("word1x{l}\n"))
                || text.ends_with(&format!("word1x{l}")),
            "line {l} lost: {text}"
        );
    }
    assert!(
        !text.contains("word1x59"),
        "text after the cut cannot be read: {text}"
    );
    assert!(
        t.warnings
            .iter()
            .any(|w| w.starts_with("page 1:") && w.contains("damaged content stream")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn one_bad_stream_among_many_pages_costs_only_that_page_and_says_so() {
    let mut pages: Vec<(Vec<String>, Stream)> =
        (1..=8).map(|p| (lines(p, 12), Stream::Flate)).collect();
    pages[4].1 = Stream::Garbage;
    pages[6] = (lines(7, 40), Stream::Truncated(50));
    let t = extract_pdf(&pdf(&pages)).expect("extracts");
    assert_eq!(t.pages.len(), 8);
    for (i, p) in t.pages.iter().enumerate() {
        let n = i + 1;
        match n {
            5 => {
                assert!(
                    p.text.trim().is_empty(),
                    "garbage page has text: {}",
                    p.text
                );
                assert!(
                    t.warnings
                        .iter()
                        .any(|w| w.starts_with("page 5:") && w.contains("no reader got text")),
                    "{:?}",
                    t.warnings
                );
            }
            7 => assert!(p.text.contains("word7x0"), "{}", p.text),
            _ => {
                for l in 0..12 {
                    assert!(
                        p.text.contains(&format!("word{n}x{l}")),
                        "page {n} line {l}: {}",
                        p.text
                    );
                }
                assert!(
                    !t.warnings
                        .iter()
                        .any(|w| w.starts_with(&format!("page {n}:"))),
                    "{:?}",
                    t.warnings
                );
            }
        }
    }
    assert!(
        t.warnings.iter().any(|w| w.starts_with("page 7:")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn intact_pages_have_no_warnings() {
    let pages: Vec<(Vec<String>, Stream)> = (1..=3).map(|p| (lines(p, 5), Stream::Flate)).collect();
    let t = extract_pdf(&pdf(&pages)).expect("extracts");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert!(t.pages[2].text.contains("word3x4"));
}

#[test]
fn pages_read_by_several_threads_come_back_in_order_and_the_same() {
    // Enough pages for four threads (at least MIN_PAGES_PER_THREAD each),
    // with damaged pages among them, so that warnings must be put back in
    // page order too.
    let mut pages: Vec<(Vec<String>, Stream)> = (1..=23)
        .map(|p| (lines(p, 6 + p % 5), Stream::Flate))
        .collect();
    pages[3].1 = Stream::Garbage;
    pages[11].1 = Stream::NoAdler;
    pages[19] = (lines(20, 40), Stream::Truncated(50));
    let doc = pdf(&pages);
    let one = extract_pdf_with(&doc, 1).expect("one thread");
    assert_eq!(one.pages.len(), 23);
    assert!(
        one.pages[22].text.contains("word23x0"),
        "{}",
        one.pages[22].text
    );
    let pages_warned: Vec<&str> = one
        .warnings
        .iter()
        .map(|w| w.split(':').next().unwrap_or(""))
        .collect();
    assert!(pages_warned.contains(&"page 4"), "{:?}", one.warnings);
    assert!(pages_warned.contains(&"page 12"), "{:?}", one.warnings);
    assert!(pages_warned.contains(&"page 20"), "{:?}", one.warnings);
    for threads in [2, 4, 0] {
        let many = extract_pdf_with(&doc, threads).expect("several threads");
        assert_eq!(many, one, "{threads} threads");
    }
    for (i, p) in one.pages.iter().enumerate() {
        assert_eq!(p.number as usize, i + 1);
    }
}
