//! `esg ingest` keeps each document's source file under
//! `<data-dir>/files/<2 hex>/<sha256>`, and the real `esg serve` on that data
//! directory serves it back byte-identical at `/documents/{doc_id}/file`.

mod serve_support;
mod support;

use serve_support::Served;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use support::{esg, json_lines};

/// GET over plain HTTP/1.1; returns (status, lower-cased headers, raw body).
fn get_raw(addr: &str, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status.parse().unwrap(), headers, body)
}

fn h<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn kept(data: &Path, sha: &str) -> std::path::PathBuf {
    data.join("files").join(&sha[..2]).join(sha)
}

#[test]
fn esg_ingest_keeps_the_file_and_esg_serve_serves_it() {
    // The sample text report, ingested by `esg ingest` before the server starts.
    let mut s = Served::start_ingested(&[], &[]);
    let sample = serve_support::sample();
    let sha = esg_core::sha256_hex(&sample);
    assert_eq!(std::fs::read(kept(&s.data, &sha)).unwrap(), sample);
    let (status, headers, body) = get_raw(&s.addr, &format!("/documents/{sha}/file"), "");
    assert_eq!(status, 200);
    assert_eq!(body, sample);
    assert_eq!(h(&headers, "etag"), format!("\"{sha}\""));
    assert_eq!(h(&headers, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        h(&headers, "content-disposition"),
        "inline; filename=\"northwind-2024.txt\"; filename*=UTF-8''northwind-2024.txt"
    );

    // A corpus PDF ingested by another `esg ingest` while the server runs.
    if let Some(corpus) = support::corpus_dir() {
        let pdf_path = corpus.join("reports/Nestle_SA-SASB_Index.pdf");
        let pdf = std::fs::read(&pdf_path).unwrap();
        let pdf_sha = esg_core::sha256_hex(&pdf);
        let p = pdf_path.display().to_string();
        let args = [
            "ingest",
            "--company",
            "Nestle SA",
            "--year",
            "2023",
            "--json",
            p.as_str(),
        ];
        let out = esg(&s.data, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json_lines(&out)[0]["status"], "ingested");
        assert_eq!(std::fs::read(kept(&s.data, &pdf_sha)).unwrap(), pdf);
        let (status, headers, body) = get_raw(&s.addr, &format!("/documents/{pdf_sha}/file"), "");
        assert_eq!(status, 200);
        assert_eq!(h(&headers, "content-type"), "application/pdf");
        assert_eq!(h(&headers, "content-length"), pdf.len().to_string());
        assert!(body == pdf, "served PDF differs from the file ingested");
        let (status, headers, body) = get_raw(
            &s.addr,
            &format!("/documents/{pdf_sha}/file"),
            "Range: bytes=-1024\r\n",
        );
        assert_eq!(status, 206);
        assert_eq!(
            h(&headers, "content-range"),
            format!("bytes {}-{}/{}", pdf.len() - 1024, pdf.len() - 1, pdf.len())
        );
        assert!(body[..] == pdf[pdf.len() - 1024..]);

        // Ingesting the same file again stores nothing new.
        let before = std::fs::metadata(kept(&s.data, &pdf_sha)).unwrap();
        let out = esg(&s.data, &args);
        assert_eq!(json_lines(&out)[0]["status"], "already_ingested");
        let after = std::fs::metadata(kept(&s.data, &pdf_sha)).unwrap();
        assert_eq!(before.modified().unwrap(), after.modified().unwrap());

        // Lost from the volume: 404 source_missing; `esg ingest` brings it back.
        std::fs::remove_file(kept(&s.data, &pdf_sha)).unwrap();
        let r = s.get(&format!("/documents/{pdf_sha}/file"));
        assert_eq!(r.status, 404);
        assert_eq!(r.json()["error"]["code"], "source_missing");
        let out = esg(&s.data, &args);
        assert_eq!(json_lines(&out)[0]["status"], "already_ingested");
        let (status, _, body) = get_raw(&s.addr, &format!("/documents/{pdf_sha}/file"), "");
        assert_eq!(status, 200);
        assert!(body == pdf);
    }
    s.sigterm();
    s.wait_exit(Duration::from_secs(30)).expect("exits");
}

#[test]
fn a_failed_ingest_keeps_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let scan = tmp.path().join("scan.pdf");
    std::fs::write(&scan, support::image_only_pdf()).unwrap();
    let png = tmp.path().join("x.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    let a = scan.display().to_string();
    let b = png.display().to_string();
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "Acme",
            "--year",
            "2024",
            "--json",
            &a,
            &b,
        ],
    );
    let lines = json_lines(&out);
    assert_eq!(lines[0]["error"]["code"], "pdf_no_text_layer", "{lines:?}");
    assert_eq!(lines[1]["error"]["code"], "unsupported_format", "{lines:?}");
    let mut left = Vec::new();
    if let Ok(rd) = std::fs::read_dir(data.join("files")) {
        for shard in rd.flatten() {
            left.extend(
                std::fs::read_dir(shard.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    assert!(left.is_empty(), "files kept for failed documents: {left:?}");
}
