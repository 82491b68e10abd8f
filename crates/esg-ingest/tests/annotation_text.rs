//! Text drawn by annotation appearances is page text (issue 12: no page
//! lost). A generated PDF whose pages carry push buttons, a hidden button,
//! a check box in its "off" state and a link, each with an appearance
//! stream that shows a label.

mod common;

use common::{stream, write_pdf};
use esg_ingest::pdf::extract_pdf;

fn form(text_ops: &str) -> Vec<u8> {
    // An upside-down /BBox, as real reports write them.
    stream(
        "/Type /XObject /Subtype /Form /BBox [0 30 200 0] /Resources << /Font << /T1 5 0 R >> >>",
        text_ops,
    )
}

fn label(text: &str) -> Vec<u8> {
    form(&format!("BT /T1 14 Tf 0 8 Td ({text}) Tj ET"))
}

fn page(contents: u32, annots: &str) -> Vec<u8> {
    format!(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents {contents} 0 R {annots} >>"
    )
    .into_bytes()
}

fn annot(rest: &str) -> Vec<u8> {
    format!("<< /Type /Annot /Rect [300 600 500 630] {rest} >>").into_bytes()
}

fn doc() -> Vec<u8> {
    let objs: Vec<Vec<u8>> = vec![
        // 1, 2
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [6 0 R 8 0 R 10 0 R 18 0 R] >> >>"
            .to_vec(),
        b"<< /Type /Pages /Kids [3 0 R 16 0 R 17 0 R] /Count 3 >>".to_vec(),
        // 3: the contents page, 4: its own text, 5: the font
        page(4, "/Annots [6 0 R 8 0 R 10 0 R 13 0 R]"),
        stream("", "BT /F1 12 Tf 72 720 Td (Contents of the report) Tj ET"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        // 6, 7: a push button (printed) whose label is two text objects
        annot("/Subtype /Widget /FT /Btn /Ff 65536 /F 4 /AP << /N 7 0 R >>"),
        form(
            "BT /T1 14 Tf 0 8 Td (Protecting the Environment) Tj ET \
             BT /T1 14 Tf 150 8 Td [(1) -50 (8)] TJ ET",
        ),
        // 8, 9: a hidden button (flags Print | Hidden)
        annot("/Subtype /Widget /FT /Btn /Ff 65536 /F 6 /AP << /N 9 0 R >>"),
        label("Hidden label words"),
        // 10, 11, 12: a check box, off
        annot("/Subtype /Widget /FT /Btn /F 4 /AS /Off /AP << /N << /On 11 0 R /Off 12 0 R >> >>"),
        label("Ticked box label"),
        label("Empty box label"),
        // 13, 14: a link with an appearance (links are not drawn text)
        annot("/Subtype /Link /F 4 /AP << /N 14 0 R >>"),
        label("Link label words"),
        // 15, 16: a page without annotations
        stream("", "BT /F1 12 Tf 72 720 Td (Second page body text) Tj ET"),
        page(15, ""),
        // 17: a page whose only text is a button's (18, 19), 20: no text
        page(20, "/Annots [18 0 R]"),
        annot("/Subtype /Widget /FT /Btn /Ff 65536 /F 4 /AP << /N 19 0 R >>"),
        label("Only a button on this page"),
        stream("", "0 0 m 100 100 l S"),
    ];
    write_pdf(&objs)
}

#[test]
fn visible_annotation_appearances_are_read_after_the_page_text() {
    let t = extract_pdf(&doc()).expect("extracts");
    assert_eq!(t.pages.len(), 3);
    let p1 = &t.pages[0].text;
    let body = p1.find("Contents of the report").expect("page text kept");
    let button = p1
        .find("Protecting the Environment")
        .unwrap_or_else(|| panic!("{p1:?}"));
    assert!(
        body < button,
        "appearance text comes after the page's own: {p1:?}"
    );
    assert!(
        p1.lines().any(|l| l == "18"),
        "a TJ array is one run of text, one line per text object: {p1:?}"
    );
    assert!(
        p1.contains("Empty box label"),
        "the state /AS names: {p1:?}"
    );
    for absent in ["Ticked box label", "Hidden label words", "Link label words"] {
        assert!(!p1.contains(absent), "{absent} is not drawn: {p1:?}");
    }
    assert_eq!(t.pages[1].text.trim(), "Second page body text");
    assert!(
        t.pages[2].text.contains("Only a button on this page"),
        "{:?}",
        t.pages[2].text
    );
}
