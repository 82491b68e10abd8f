//! Prints one PDF page as `esg ingest` extracts it (text with its blocks)
//! and, with `--runs`, the positioned runs it was built from, to tune
//! `esg_ingest::layout`:
//! `cargo run -p esg-ingest --example page_runs -- FILE PAGE [--runs | --blocks]`
//! (`--blocks` prints each line with its box, font size and baseline).
use oxidize_pdf::parser::{ParseOptions, PdfDocument, PdfReader};
use oxidize_pdf::text::{ExtractionOptions, TextExtractor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("read");
    let page: u32 = args[2].parse().expect("page number");
    if args.get(3).is_some_and(|a| a == "--runs") {
        let reader =
            PdfReader::new_with_options(std::io::Cursor::new(bytes), ParseOptions::lenient())
                .expect("open");
        let doc = PdfDocument::new(reader);
        let options = ExtractionOptions {
            include_artifacts: true,
            preserve_layout: true,
            sort_by_position: false,
            detect_columns: false,
            merge_hyphenated: false,
            ..Default::default()
        };
        let mut ex = TextExtractor::with_options(options);
        let r = ex
            .extract_from_page_with_recovery(&doc, page - 1, 64 << 20)
            .expect("extract");
        for f in &r.text.fragments {
            println!(
                "x={:7.1} y={:7.1} w={:6.1} s={:4.1} {:?}",
                f.x, f.y, f.width, f.font_size, f.text
            );
        }
        return;
    }
    let out = esg_ingest::pdf::extract_pdf(&bytes).expect("extract");
    let p = &out.pages[page as usize - 1];
    if args.get(3).is_none_or(|a| a != "--blocks") {
        println!("{}", p.text);
    }
    if args.get(3).is_some_and(|a| a == "--blocks")
        && let Some(layout) = &p.layout
    {
        for (i, b) in layout.blocks.iter().enumerate() {
            let bb = b.bbox;
            println!(
                "-- block {i} {:?} [{:.1} {:.1} {:.1} {:.1}]",
                b.kind, bb.x0, bb.y0, bb.x1, bb.y1
            );
            for l in &b.lines {
                let lb = l.bbox;
                let fs = (lb.y1 - lb.y0) / 1.1;
                println!(
                    "   [{:6.1} {:6.1} {:6.1}] fs={:4.1} base={:6.1} {}",
                    lb.x0,
                    lb.x1,
                    lb.y0,
                    fs,
                    lb.y0 + 0.25 * fs,
                    l.text
                );
            }
        }
    }
}
