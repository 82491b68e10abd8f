//! The kept source files (DESIGN §3, §6): `GET /documents/{doc_id}` (the
//! document with `file_url` and `source_available`) and
//! `GET|HEAD /documents/{doc_id}/file` (the original bytes, so an analyst
//! can open `…/file#page=N` on the cited page).
//!
//! The file is streamed from the [`esg_store::FileStore`] on the data volume
//! (never loaded whole), with:
//! * `Content-Type` from the stored format: `application/pdf`, `text/html`
//!   (`application/xhtml+xml` when the file is XML, as inline-XBRL reports
//!   are), `text/plain; charset=…` (`utf-8`, `utf-16` with its BOM, else
//!   `windows-1252`: the encodings ingestion decodes);
//! * `Content-Disposition: inline` with the stored file name (an ASCII
//!   fallback and the RFC 8187 `filename*` form);
//! * `ETag: "<sha256>"` (strong: the bytes never change under a `doc_id`),
//!   `If-None-Match` → 304, `If-Match` that does not match → 412,
//!   `Cache-Control: private, no-cache` (browsers keep it and revalidate, so
//!   the key check runs on every use);
//! * `Accept-Ranges: bytes`; one range (`bytes=a-b`, `a-`, `-n`) → 206 with
//!   `Content-Range`, honoured only when `If-Range` (if any) is the ETag; an
//!   unsatisfiable range → 416 with `Content-Range: bytes */len`. Several
//!   ranges, another unit or a malformed header are answered with the whole
//!   file (200), as RFC 9110 §14.2 allows: no `multipart/byteranges`.
//!
//! Errors: an id that is not a SHA-256 → 422 `validation_failed`; no such
//! document → 404 `document_not_found`; a document whose file is not on the
//! volume (ingested before files were kept, or removed, or damaged) → 404
//! `source_missing`, saying to ingest it again; never a 500 for that.
//!
//! Why hand-written rather than tower-http's `ServeFile` (`fs` feature):
//! tower-http 0.7.1 derives its own ETag from size and mtime, so
//! `If-None-Match`/`If-Range` against the sha256 ETag would not be honoured;
//! it answers a malformed `Range` with 416 instead of ignoring it; its
//! errors are not in the API's JSON shape; and it needs `mime_guess` and
//! `http-range-header`, for ~100 lines of range handling tested here.
//!
//! Responses carrying a file are not compressed ([`not_byte_served`]): the
//! ETag and byte ranges refer to the stored bytes.

use crate::error::{ApiError, FieldError};
use crate::http::store_op;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use esg_store::files::{SourceFile, is_sha256_hex};
use esg_store::{DocumentSummary, MediaType};
use serde_json::{Value, json};
use std::io::{Read as _, Seek as _, SeekFrom};
use tokio::io::AsyncReadExt as _;

/// Bytes read from the file per body chunk.
const CHUNK: usize = 64 * 1024;

/// The path of a document's file.
pub fn file_url(doc_id: &str) -> String {
    format!("/documents/{doc_id}/file")
}

/// The compression predicate's exclusion: responses that serve bytes by
/// range (`Accept-Ranges` set) keep their stored encoding.
pub fn not_byte_served(_: StatusCode, _: Version, h: &HeaderMap, _: &Extensions) -> bool {
    !h.contains_key(header::ACCEPT_RANGES)
}

/// Validates the `{doc_id}` path segment: 400 `malformed_path` when it does
/// not decode, 422 `validation_failed` unless it is a SHA-256 in lowercase hex.
fn doc_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) =
        id.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_path", e.body_text()))?;
    if !is_sha256_hex(&id) {
        return Err(ApiError::validation(vec![FieldError::new(
            "doc_id",
            "must be a document id: the SHA-256 of its bytes in lowercase hex (64 characters 0-9a-f)",
        )]));
    }
    Ok(id)
}

fn document_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "document_not_found",
        format!("no document with doc_id {id} is on file; see GET /documents"),
    )
}

fn source_missing(d: &DocumentSummary, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "source_missing",
        format!(
            "the source file of document {} ({:?}) is not on file ({why}); ingest the same file again (esg ingest or POST /documents) to restore it",
            d.doc_id, d.filename
        ),
    )
    .with_details(vec![json!({ "doc_id": d.doc_id, "filename": d.filename })])
}

fn file_error(e: &esg_store::FileStoreError) -> ApiError {
    tracing::error!(error_type = "storage_error", error = %e, "cannot read a source file");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_error",
        "the source file could not be read",
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|_| ApiError::internal())?
}

/// `GET /documents/{doc_id}`: the stored document, its `file_url` and
/// whether its source file is on file (`source_available`).
pub async fn document(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = doc_id(id)?;
    let store = st.store()?;
    let files = st.files().clone();
    blocking(move || {
        let d = store_op("store.document", || store.document(&id))?
            .ok_or_else(|| document_not_found(&id))?;
        let available = tracing::info_span!("source_file", otel.name = "files.contains")
            .in_scope(|| files.open(&id))
            .map_err(|e| file_error(&e))?
            .is_some_and(|f| f.len == d.bytes);
        Ok(Json(json!({
            "document": d,
            "file_url": file_url(&id),
            "source_available": available,
        })))
    })
    .await
}

/// What the blocking part found: the document, its open file and the
/// content type to serve it with.
struct Opened {
    doc: DocumentSummary,
    file: SourceFile,
    content_type: String,
}

/// `GET|HEAD /documents/{doc_id}/file` (see the module documentation).
pub async fn file(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = doc_id(id)?;
    let store = st.store()?;
    let files = st.files().clone();
    let Opened {
        doc,
        file,
        content_type,
    } = blocking(move || {
        let doc = store_op("store.document", || store.document(&id))?
            .ok_or_else(|| document_not_found(&id))?;
        let span = tracing::info_span!("source_file", otel.name = "files.open");
        let Some(mut file) = span
            .in_scope(|| files.open(&id))
            .map_err(|e| file_error(&e))?
        else {
            return Err(source_missing(
                &doc,
                "ingested before source files were kept, or removed from the data volume",
            ));
        };
        if file.len != doc.bytes {
            tracing::error!(
                error_type = "source_damaged",
                doc_id = %doc.doc_id,
                path = %file.path.display(),
                found = file.len,
                expected = doc.bytes,
                "a kept source file has the wrong length"
            );
            return Err(source_missing(
                &doc,
                &format!(
                    "the kept file is damaged: {} bytes instead of {}",
                    file.len, doc.bytes
                ),
            ));
        }
        let content_type = content_type(doc.media_type, &mut file.file).map_err(|e| {
            file_error(&esg_store::FileStoreError::Io {
                path: file.path.clone(),
                source: e,
            })
        })?;
        Ok(Opened {
            doc,
            file,
            content_type,
        })
    })
    .await?;

    let etag = format!("\"{}\"", doc.doc_id);
    let len = file.len;
    let mut h = HeaderMap::new();
    h.insert(header::ETAG, hv(&etag));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Only a PDF needs more than the API's strict policy: Chrome's viewer
    // is a plugin with inline styles, and same-origin pages may frame it.
    // HTML and text are sandboxed (no scripts, an opaque origin).
    let (csp, xfo) = match doc.media_type {
        MediaType::Pdf => (
            "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'",
            "SAMEORIGIN",
        ),
        MediaType::Html | MediaType::Text => (
            "sandbox; default-src 'none'; frame-ancestors 'none'",
            "DENY",
        ),
    };
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static(xfo));

    if let Some(v) = headers.get(header::IF_MATCH)
        && !etag_list_matches(v, &etag, false)
    {
        let mut e = ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!("If-Match does not name this file's ETag {etag}"),
        )
        .into_response();
        e.headers_mut().extend(h);
        return Ok(e);
    }
    if let Some(v) = headers.get(header::IF_NONE_MATCH)
        && etag_list_matches(v, &etag, true)
    {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        res.headers_mut().extend(h);
        return Ok(res);
    }

    h.insert(header::CONTENT_TYPE, hv(&content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        hv(&content_disposition(
            &doc.filename,
            &doc.doc_id,
            doc.media_type,
        )),
    );
    let range = match headers.get(header::RANGE) {
        Some(r) if if_range_allows(&headers, &etag) => parse_range(r.as_bytes(), len),
        _ => RangeRequest::Full,
    };
    let (status, start, count) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            h.insert(
                header::CONTENT_RANGE,
                hv(&format!("bytes {start}-{end}/{len}")),
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the requested range is outside the file's {len} bytes"),
            )
            .into_response();
            h.remove(header::CONTENT_TYPE);
            h.remove(header::CONTENT_DISPOSITION);
            h.insert(header::CONTENT_RANGE, hv(&format!("bytes */{len}")));
            e.headers_mut().extend(h);
            return Ok(e);
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        stream_body(file.file, start, count)
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = h;
    Ok(res)
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `count` bytes of `file` from `start`, read in [`CHUNK`]s as the client
/// takes them.
fn stream_body(file: std::fs::File, start: u64, count: u64) -> Body {
    let state = (tokio::fs::File::from_std(file), start, count, false);
    let stream = futures_util::stream::unfold(state, |(mut f, start, left, seeked)| async move {
        if left == 0 {
            return None;
        }
        if !seeked
            && start > 0
            && let Err(e) = tokio::io::AsyncSeekExt::seek(&mut f, SeekFrom::Start(start)).await
        {
            return Some((Err(e), (f, start, 0, true)));
        }
        let want = left.min(CHUNK as u64) as usize;
        let mut buf = bytes::BytesMut::with_capacity(want);
        match (&mut f).take(want as u64).read_buf(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the source file is shorter than its recorded length",
                )),
                (f, start, 0, true),
            )),
            Ok(n) => Some((Ok(buf.freeze()), (f, start, left - n as u64, true))),
            Err(e) => Some((Err(e), (f, start, 0, true))),
        }
    });
    Body::from_stream(stream)
}

/// The `Content-Type` to serve a kept file with. Reads the start of HTML
/// (XML or not) and the whole of a text file (UTF-8 or not), then rewinds.
fn content_type(media: MediaType, file: &mut std::fs::File) -> std::io::Result<String> {
    let ct = match media {
        MediaType::Pdf => "application/pdf".to_string(),
        MediaType::Html => {
            let mut head = [0u8; 512];
            let n = read_up_to(file, &mut head)?;
            let head = &head[..n];
            let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
            let start = head.iter().position(|b| !b.is_ascii_whitespace());
            if start.is_some_and(|i| head[i..].starts_with(b"<?xml")) {
                "application/xhtml+xml".to_string()
            } else {
                "text/html".to_string()
            }
        }
        MediaType::Text => format!("text/plain; charset={}", text_charset(file)?),
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(ct)
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The encoding ingestion decoded a text file with: `utf-16` (a UTF-16
/// BOM), `utf-8` (valid UTF-8, with or without BOM), else `windows-1252`.
fn text_charset(file: &mut std::fs::File) -> std::io::Result<&'static str> {
    let mut buf = vec![0u8; CHUNK];
    let mut carry = 0usize;
    let mut first = true;
    loop {
        let n = read_up_to(file, &mut buf[carry..])?;
        let filled = carry + n;
        if first {
            first = false;
            if buf[..filled].starts_with(b"\xff\xfe") || buf[..filled].starts_with(b"\xfe\xff") {
                return Ok("utf-16");
            }
        }
        match std::str::from_utf8(&buf[..filled]) {
            Ok(_) if n == 0 || filled < buf.len() => return Ok("utf-8"),
            Ok(_) => carry = 0,
            // A sequence cut by the buffer's end: keep its bytes for the
            // next read (unless the file ends here).
            Err(e) if e.error_len().is_none() && n > 0 => {
                let valid = e.valid_up_to();
                buf.copy_within(valid..filled, 0);
                carry = filled - valid;
            }
            Err(_) => return Ok("windows-1252"),
        }
    }
}

/// `inline; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`
/// (RFC 6266, RFC 8187); `<doc_id>.<ext>` when no file name was stored.
pub fn content_disposition(filename: &str, doc_id: &str, media: MediaType) -> String {
    let name = if filename.trim().is_empty() {
        let ext = match media {
            MediaType::Pdf => "pdf",
            MediaType::Html => "html",
            MediaType::Text => "txt",
        };
        format!("{doc_id}.{ext}")
    } else {
        filename.to_string()
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("inline; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `true` when the `If-Match`/`If-None-Match` value `v` is `*` or lists
/// `etag` (weak comparison, `W/` ignored, for `If-None-Match`; strong for
/// `If-Match`).
fn etag_list_matches(v: &HeaderValue, etag: &str, weak: bool) -> bool {
    let Ok(s) = v.to_str() else {
        return false;
    };
    s.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        match t.strip_prefix("W/") {
            Some(w) => weak && w == etag,
            None => t == etag,
        }
    })
}

/// `false` when an `If-Range` is present and is not this file's ETag
/// (an HTTP date cannot match: no `Last-Modified` is sent). Then the Range
/// is ignored and the whole file is sent.
fn if_range_allows(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|s| s.trim() == etag),
    }
}

/// What a `Range` header asks of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole file: no usable range (several ranges, another unit, a
    /// malformed header).
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A well-formed range with no byte in the file (416).
    Unsatisfiable,
}

/// Parses one `Range` value against a file of `len` bytes (RFC 9110 §14).
pub fn parse_range(v: &[u8], len: u64) -> RangeRequest {
    let Ok(s) = std::str::from_utf8(v) else {
        return RangeRequest::Full;
    };
    let s = s.trim();
    let Some((unit, set)) = s.split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let num = |x: &str| -> Option<u64> {
        (!x.is_empty() && x.bytes().all(|c| c.is_ascii_digit()))
            .then(|| x.parse().ok())
            .flatten()
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match num(b) {
            None => RangeRequest::Full,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial {
                start: len - n.min(len),
                end: len - 1,
            },
        },
        // `a-`: from a to the end.
        (false, true) => match num(a) {
            None => RangeRequest::Full,
            Some(start) if start >= len => RangeRequest::Unsatisfiable,
            Some(start) => RangeRequest::Partial {
                start,
                end: len - 1,
            },
        },
        (false, false) => match (num(a), num(b)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= len {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial {
                        start,
                        end: end.min(len - 1),
                    }
                }
            }
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

/// At start: removes temporary files a killed writer left in the store.
pub fn on_load(st: &AppState) {
    match st.files().remove_stale_temps(STALE_TEMPS) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed stale temporary source files"),
        Err(e) => tracing::warn!(error = %e, "cannot clean the source file store"),
    }
}

/// Temporary files of the store older than this are left-overs.
const STALE_TEMPS: std::time::Duration = std::time::Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn ranges() {
        let p = |s: &str| parse_range(s.as_bytes(), 100);
        assert_eq!(p("bytes=0-9"), Partial { start: 0, end: 9 });
        assert_eq!(p("bytes=90-"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-10"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-1000"), Partial { start: 0, end: 99 });
        assert_eq!(p("bytes=50-1000"), Partial { start: 50, end: 99 });
        assert_eq!(p("BYTES = 1-1"), Partial { start: 1, end: 1 });
        assert_eq!(p("bytes=99-99"), Partial { start: 99, end: 99 });
        assert_eq!(p("bytes=100-"), Unsatisfiable);
        assert_eq!(p("bytes=100-200"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        // Ignored: the whole file.
        assert_eq!(p("bytes=0-1,5-6"), Full);
        assert_eq!(p("bytes=5-1"), Full);
        assert_eq!(p("items=0-1"), Full);
        assert_eq!(p("bytes=a-b"), Full);
        assert_eq!(p("bytes=-"), Full);
        assert_eq!(p("bytes=+1-2"), Full);
        assert_eq!(p("bytes 0-1"), Full);
        assert_eq!(parse_range(b"bytes=-5", 0), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 1), Partial { start: 0, end: 0 });
        assert_eq!(parse_range(b"bytes=\xff", 10), Full);
    }

    #[test]
    fn etag_lists() {
        let e = "\"abc\"";
        let m = |v: &str, weak| etag_list_matches(&HeaderValue::from_str(v).unwrap(), e, weak);
        assert!(m("\"abc\"", true));
        assert!(m("\"x\", \"abc\"", true));
        assert!(m("W/\"abc\"", true));
        assert!(!m("W/\"abc\"", false));
        assert!(m("*", false));
        assert!(!m("\"abd\"", true));
        assert!(!m("abc", true));
    }

    #[test]
    fn dispositions_quote_safely() {
        let id = "ab".repeat(32);
        assert_eq!(
            content_disposition("r.pdf", &id, MediaType::Pdf),
            "inline; filename=\"r.pdf\"; filename*=UTF-8''r.pdf"
        );
        assert_eq!(
            content_disposition("Nestlé \"2024\"\\x.pdf", &id, MediaType::Pdf),
            "inline; filename=\"Nestl_ _2024__x.pdf\"; filename*=UTF-8''Nestl%C3%A9%20%222024%22%5Cx.pdf"
        );
        assert_eq!(
            content_disposition("a\r\nb;c.txt", &id, MediaType::Text),
            "inline; filename=\"a__b;c.txt\"; filename*=UTF-8''a%0D%0Ab%3Bc.txt"
        );
        assert_eq!(
            content_disposition("", &id, MediaType::Html),
            format!("inline; filename=\"{id}.html\"; filename*=UTF-8''{id}.html")
        );
        // Always a valid header value.
        for name in ["\u{0}\u{7f}", "日本語.pdf", "x\"y"] {
            let v = content_disposition(name, &id, MediaType::Pdf);
            assert!(HeaderValue::from_str(&v).is_ok(), "{v}");
        }
    }

    fn charset_of(bytes: &[u8]) -> &'static str {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        text_charset(&mut f).unwrap()
    }

    #[test]
    fn text_charsets_follow_ingestion() {
        assert_eq!(charset_of(b"plain ascii"), "utf-8");
        assert_eq!(charset_of("caf\u{e9}".as_bytes()), "utf-8");
        assert_eq!(charset_of(b"\xef\xbb\xbfbom"), "utf-8");
        assert_eq!(charset_of(b"\xff\xfea\x00"), "utf-16");
        assert_eq!(charset_of(b"caf\xe9"), "windows-1252");
        assert_eq!(charset_of(b""), "utf-8");
        // A multi-byte character across the 64 KiB read boundary is UTF-8.
        let mut long = vec![b'a'; CHUNK - 1];
        long.extend_from_slice("\u{e9}".as_bytes());
        long.extend_from_slice(b"tail");
        assert_eq!(charset_of(&long), "utf-8");
        // Invalid bytes after the first buffer are still found.
        let mut late = vec![b'a'; CHUNK * 2];
        late.push(0xe9);
        late.push(b'x');
        assert_eq!(charset_of(&late), "windows-1252");
        // Cut short at the very end: not UTF-8.
        let mut cut = b"abc".to_vec();
        cut.push(0xc3);
        assert_eq!(charset_of(&cut), "windows-1252");
    }
}
