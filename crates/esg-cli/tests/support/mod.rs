//! Test support: a minimal PDF writer for fixtures, and helpers to run the
//! real `esg` binary against a temporary data directory.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Escapes a string for a PDF literal string (WinAnsi text, ASCII only here).
fn pdf_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('(', "\\(")
        .replace(')', "\\)")
}

/// Content stream drawing `lines` top-down in Helvetica 11pt.
pub fn text_content(lines: &[&str]) -> Vec<u8> {
    let mut c = String::from("BT /F1 11 Tf 14 TL 72 760 Td\n");
    for l in lines {
        c.push_str(&format!("({}) Tj T*\n", pdf_escape(l)));
    }
    c.push_str("ET\n");
    c.into_bytes()
}

/// A PDF under construction: numbered objects, then an xref and trailer.
pub struct PdfBuilder {
    objects: Vec<Vec<u8>>, // object i+1
}

impl Default for PdfBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PdfBuilder {
    pub fn new() -> Self {
        PdfBuilder {
            objects: Vec::new(),
        }
    }
    /// Adds an object body (without `n 0 obj`/`endobj`) and returns its number.
    pub fn add(&mut self, body: impl Into<Vec<u8>>) -> usize {
        self.objects.push(body.into());
        self.objects.len()
    }
    pub fn set(&mut self, num: usize, body: impl Into<Vec<u8>>) {
        self.objects[num - 1] = body.into();
    }
    pub fn stream(dict_extra: &str, data: &[u8]) -> Vec<u8> {
        let mut v = format!("<< /Length {} {} >>\nstream\n", data.len(), dict_extra).into_bytes();
        v.extend_from_slice(data);
        v.extend_from_slice(b"\nendstream");
        v
    }
    /// Serialises with a classic xref table; `root` is the catalog's number.
    pub fn finish(&self, root: usize) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in self.objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", self.objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root {root} 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] >>\nstartxref\n{xref}\n%%EOF\n",
                self.objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }
}

/// A text PDF: one page per entry of `pages`, each a list of lines.
pub fn text_pdf(pages: &[Vec<&str>]) -> Vec<u8> {
    let mut b = PdfBuilder::new();
    let catalog = b.add("");
    let pages_obj = b.add("");
    let font =
        b.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    let mut kids = Vec::new();
    for lines in pages {
        let content = b.add(PdfBuilder::stream("", &text_content(lines)));
        kids.push(b.add(format!(
            "<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
        )));
    }
    b.set(
        catalog,
        format!("<< /Type /Catalog /Pages {pages_obj} 0 R >>"),
    );
    let kids_s: Vec<String> = kids.iter().map(|k| format!("{k} 0 R")).collect();
    b.set(
        pages_obj,
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids_s.join(" "),
            kids.len()
        ),
    );
    b.finish(catalog)
}

/// Appends an incremental update to `base` (as made by [`text_pdf`], whose
/// page tree is object 2) that adds one page with `lines`. The first
/// trailer still claims the old page count, as in the NVIDIA corpus report.
pub fn append_page_incrementally(base: &[u8], base_pages: usize, lines: &[&str]) -> Vec<u8> {
    let base_objects = 3 + 2 * base_pages; // catalog, pages, font, (content, page) per page
    let prev_xref: usize = {
        let s = String::from_utf8_lossy(base);
        let i = s.rfind("startxref").expect("startxref");
        s[i + 9..]
            .split_whitespace()
            .next()
            .expect("offset")
            .parse()
            .expect("number")
    };
    let mut out = base.to_vec();
    let content_num = base_objects + 1;
    let page_num = base_objects + 2;
    let mut offsets = Vec::new();
    let content = PdfBuilder::stream("", &text_content(lines));
    offsets.push((content_num, out.len()));
    out.extend_from_slice(format!("{content_num} 0 obj\n").as_bytes());
    out.extend_from_slice(&content);
    out.extend_from_slice(b"\nendobj\n");
    offsets.push((page_num, out.len()));
    out.extend_from_slice(
        format!("{page_num} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {content_num} 0 R >>\nendobj\n").as_bytes(),
    );
    let kids: Vec<String> = (0..base_pages)
        .map(|i| format!("{} 0 R", 5 + 2 * i))
        .chain([format!("{page_num} 0 R")])
        .collect();
    offsets.push((2, out.len()));
    out.extend_from_slice(
        format!(
            "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {} >>\nendobj\n",
            kids.join(" "),
            base_pages + 1
        )
        .as_bytes(),
    );
    offsets.sort();
    let xref = out.len();
    out.extend_from_slice(b"xref\n");
    for (num, off) in &offsets {
        out.extend_from_slice(format!("{num} 1\n{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Prev {prev_xref} /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] >>\nstartxref\n{xref}\n%%EOF\n",
            page_num + 1
        )
        .as_bytes(),
    );
    out
}

/// A one-page PDF that shows only an image: no text layer, like a scan.
pub fn image_only_pdf() -> Vec<u8> {
    let mut b = PdfBuilder::new();
    let catalog = b.add("");
    let pages = b.add("");
    let pixels = [0u8, 255, 255, 0, 128, 64, 32, 16, 200];
    let image = b.add(PdfBuilder::stream(
        "/Type /XObject /Subtype /Image /Width 3 /Height 3 /ColorSpace /DeviceGray /BitsPerComponent 8",
        &pixels,
    ));
    let content = b.add(PdfBuilder::stream("", b"q 468 0 0 648 72 72 cm /Im1 Do Q"));
    let page = b.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 {image} 0 R >> >> /Contents {content} 0 R >>"
    ));
    b.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    b.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    b.finish(catalog)
}

/// A one-page PDF whose content stream inflates to `inflated` bytes of
/// zeros (a "deflate bomb").
pub fn deflate_bomb_pdf(inflated: usize) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1 << 20];
    let mut left = inflated;
    while left > 0 {
        let n = left.min(block.len());
        enc.write_all(&block[..n]).expect("compress");
        left -= n;
    }
    let data = enc.finish().expect("compress");
    let mut b = PdfBuilder::new();
    let catalog = b.add("");
    let pages = b.add("");
    let content = b.add(PdfBuilder::stream("/Filter /FlateDecode", &data));
    let page = b.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R >>"
    ));
    b.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    b.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    b.finish(catalog)
}

/// The `esg` binary under test.
pub fn esg_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_esg"))
}

/// Runs `esg --data-dir DATA args...` and returns its output.
pub fn esg(data: &Path, args: &[&str]) -> Output {
    Command::new(esg_bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ESG_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run esg")
}

/// Parses `--json` ingest output: one object per line.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Is `tool` on PATH?
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Requires `tool`: under CI (CI=true) a missing tool is a failure; elsewhere
/// the caller skips with a visible message.
pub fn require(tool: &str, package: &str) -> bool {
    if have(tool) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is required under CI: apt-get install -y {package}");
    }
    eprintln!("SKIP: {tool} not installed (apt-get install -y {package})");
    false
}

/// Opens the store's SQLite file read-only for checks.
pub fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        data.join("esg.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db")
}

/// Row counts of (companies, documents, pages, chunks).
pub fn counts(data: &Path) -> (i64, i64, i64, i64) {
    let c = db(data);
    let n = |t: &str| {
        c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .expect("count")
    };
    (n("companies"), n("documents"), n("pages"), n("chunks"))
}

/// The shared corpus (`ESG_CORPUS_DIR`, default `../shared/corpus` beside
/// the project), or `None` after printing a SKIP line.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ESG_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.join("manifest.csv").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: corpus not found at {} (set ESG_CORPUS_DIR)",
            dir.display()
        );
        None
    }
}

/// Splits one CSV line, honouring double-quoted fields.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// One row of the corpus `manifest.csv`.
pub struct Row {
    pub file: String,
    pub company: String,
    pub year: String,
    pub format: String,
    pub pages: Option<u64>,
}

/// Every row of `manifest.csv`.
pub fn manifest(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("manifest.csv")).unwrap();
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap());
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("manifest has no {name} column"))
    };
    let (f, c, y, fm, p) = (
        col("file"),
        col("company"),
        col("year"),
        col("format"),
        col("pages"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v = csv_fields(l);
            Row {
                file: v[f].clone(),
                company: v[c].clone(),
                year: v[y].clone(),
                format: v[fm].clone(),
                pages: v[p].parse().ok(),
            }
        })
        .collect()
}
