//! Measures chunking parameters on real text (used by `bench/chunking.sh`).
//!
//! Usage: `chunk_stats TARGET MIN MAX OVERLAP FILE...` where each FILE is
//! stored page text (already cleaned) with form feeds between pages. Prints
//! one tab-separated line: chunks, chunks per page, mean and p95 words per
//! chunk, word overhead from overlap, and the share of adjacent sentence
//! pairs that share a chunk (context kept together).

use esg_core::chunk::{ChunkParams, chunk_spans, sentences};
use esg_core::{CleanedPage, RawPage};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> usize {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .expect("usage: chunk_stats TARGET MIN MAX OVERLAP FILE...")
    };
    let params = ChunkParams {
        target_words: num(0),
        min_words: num(1),
        max_words: num(2),
        overlap_words: num(3),
    };
    let (mut chunks, mut pages, mut page_words, mut chunk_words) = (0usize, 0usize, 0usize, 0usize);
    let (mut pairs, mut pairs_together) = (0usize, 0usize);
    let mut sizes = Vec::new();
    for file in &args[4..] {
        let text = std::fs::read_to_string(file).expect("read file");
        let raw: Vec<RawPage> = text
            .split('\u{0c}')
            .enumerate()
            .map(|(i, t)| RawPage {
                number: i as u32 + 1,
                text: t.to_string(),
                is_virtual: false,
                layout: None,
            })
            .collect();
        // Stored text is already clean: one paragraph per line.
        for page in raw.into_iter().map(|p| CleanedPage {
            number: p.number,
            text: p.text,
            is_virtual: p.is_virtual,
            layout: None,
        }) {
            let spans = chunk_spans(&page.text, params);
            if spans.is_empty() {
                continue;
            }
            pages += 1;
            page_words += page.text.split_whitespace().count();
            for &(s, e) in &spans {
                let w = page.text[s..e].split_whitespace().count();
                sizes.push(w);
                chunk_words += w;
            }
            chunks += spans.len();
            let sents = sentences(&page.text);
            for pair in sents.windows(2) {
                pairs += 1;
                if spans
                    .iter()
                    .any(|&(s, e)| s <= pair[0].start && pair[1].end <= e)
                {
                    pairs_together += 1;
                }
            }
        }
    }
    sizes.sort_unstable();
    let mean = chunk_words as f64 / chunks.max(1) as f64;
    let p95 = sizes.get(sizes.len() * 95 / 100).copied().unwrap_or(0);
    println!(
        "{chunks}\t{:.2}\t{mean:.1}\t{p95}\t{:.3}\t{:.3}",
        chunks as f64 / pages.max(1) as f64,
        chunk_words as f64 / page_words.max(1) as f64,
        pairs_together as f64 / pairs.max(1) as f64
    );
}
