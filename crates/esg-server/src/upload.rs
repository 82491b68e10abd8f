//! Upload spooling: the body of `POST /documents` is streamed to a
//! temporary file under `<data-dir>/tmp/`, raw or as one file part of
//! `multipart/form-data`, with the size limit enforced while streaming.
//!
//! * A `Content-Length` over the limit is refused at once (413), before any
//!   byte is read.
//! * Otherwise bytes are written as they arrive, and the first chunk that
//!   would take the file past the limit ends the request with 413: the rest
//!   of the body is never read and the file never holds more than the limit.
//! * A body that stalls longer than the idle timeout ends with 408, so a
//!   client trickling bytes does not hold a request slot for the whole
//!   request timeout.
//! * The file is a [`tempfile::NamedTempFile`] (mode 0600, random name
//!   `upload-XXXXXX`): dropping it removes it, on success, on every error
//!   and when the client disconnects (the request future is dropped).
//!   Files left by a killed process are removed at the next start
//!   ([`remove_stale`]).
//! * Client-supplied file names (query, `Content-Disposition`, multipart
//!   part) are only display metadata, reduced by [`sanitize_filename`];
//!   they never become paths.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt as _;
use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::time::Duration;
use tempfile::NamedTempFile;

/// Name prefix of spooled uploads.
pub const TMP_PREFIX: &str = "upload-";
/// Spooled files older than this are removed at start (longer than the
/// longest request timeout, so no live upload is touched).
pub const STALE_AFTER: Duration = Duration::from_secs(2 * 3600);
/// Room for multipart boundaries and part headers on top of the file limit.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Largest non-file multipart field read (and ignored).
pub const MAX_FORM_FIELD: usize = 8 * 1024;

/// An upload on disk, ready to be ingested.
#[derive(Debug)]
pub struct Spooled {
    /// The temporary file (removed when dropped).
    pub file: NamedTempFile,
    /// Bytes in it.
    pub len: u64,
    /// The multipart part's file name, sanitised.
    pub filename: Option<String>,
}

/// `true` for `multipart/form-data` (any parameters).
pub fn is_multipart(headers: &HeaderMap) -> bool {
    media_type(headers).as_deref() == Some("multipart/form-data")
}

/// The media type of `Content-Type`, lowercased, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// A client-supplied file name reduced to display metadata: the last
/// component after `/` or `\`, without control characters, leading dots or
/// surrounding blanks, at most 255 characters; `None` when nothing is left.
/// `../../etc/passwd` becomes `passwd`.
pub fn sanitize_filename(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    (!clean.is_empty()).then(|| clean.to_string())
}

/// 413 `payload_too_large`.
pub fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the upload is larger than the limit of {limit} bytes (--max-upload-mb)"),
    )
}

fn body_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "body_read_failed",
        format!("the request body could not be read: {e}"),
    )
}

fn spool_failed(e: std::io::Error) -> ApiError {
    tracing::error!(error_type = "spool_error", error = %e, "cannot write the upload to its temporary file");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_error",
        "the upload could not be written to the server's temporary directory",
    )
}

/// Creates `dir` (mode 0700) when missing and a temporary file in it.
fn temp_file(dir: &Path) -> Result<NamedTempFile, ApiError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(spool_failed)?;
    tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempfile_in(dir)
        .map_err(spool_failed)
}

/// Appends `chunk` unless that takes the file past `limit` (413).
fn append(
    file: &mut NamedTempFile,
    len: &mut u64,
    chunk: &[u8],
    limit: u64,
) -> Result<(), ApiError> {
    let next = *len + chunk.len() as u64;
    if next > limit {
        return Err(too_large(limit));
    }
    file.write_all(chunk).map_err(spool_failed)?;
    *len = next;
    Ok(())
}

/// 408 `request_timeout` when no body bytes came for `idle`.
fn idle_timeout(idle: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "no upload data arrived for {} ms; the upload was abandoned",
            idle.as_millis()
        ),
    )
}

/// `fut`, or 408 when it takes longer than `idle`.
async fn within<T>(
    idle: Duration,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, ApiError> {
    tokio::time::timeout(idle, fut)
        .await
        .map_err(|_| idle_timeout(idle))
}

/// Streams the body into a temporary file under `dir`, at most `limit`
/// bytes of document, waiting at most `idle` for each next piece of the body
/// (see the module documentation).
///
/// # Errors
/// 413 over the limit, 408 when the body stalls for `idle`, 400 when the
/// body or the multipart framing cannot be read, 500 when the file cannot
/// be written.
pub async fn spool(
    headers: &HeaderMap,
    body: Body,
    dir: &Path,
    limit: u64,
    idle: Duration,
) -> Result<Spooled, ApiError> {
    let multipart = is_multipart(headers);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let allowed = if multipart {
        limit + MULTIPART_OVERHEAD
    } else {
        limit
    };
    if declared.is_some_and(|n| n > allowed) {
        return Err(too_large(limit));
    }
    let mut file = temp_file(dir)?;
    let mut len = 0u64;
    let mut filename = None;
    if multipart {
        filename = spool_multipart(headers, body, &mut file, &mut len, limit, idle).await?;
    } else {
        let mut body = body;
        while let Some(frame) = within(idle, body.frame()).await? {
            let frame = frame.map_err(body_failed)?;
            if let Ok(data) = frame.into_data() {
                append(&mut file, &mut len, &data, limit)?;
            }
        }
    }
    file.as_file_mut().flush().map_err(spool_failed)?;
    Ok(Spooled {
        file,
        len,
        filename,
    })
}

fn multipart_error(e: multer::Error, limit: u64) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            too_large(limit)
        }
        multer::Error::StreamReadFailed(e) => body_failed(e),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_multipart",
            format!("the multipart/form-data body is malformed: {other}"),
        ),
    }
}

/// One file part (a part with a file name, or named `file`) is spooled;
/// small other fields are read and ignored. Returns the part's sanitised
/// file name.
async fn spool_multipart(
    headers: &HeaderMap,
    body: Body,
    file: &mut NamedTempFile,
    len: &mut u64,
    limit: u64,
    idle: Duration,
) -> Result<Option<String>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(ct).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_multipart",
            format!("multipart/form-data without a usable boundary: {e}"),
        )
    })?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limit + MULTIPART_OVERHEAD));
    let mut mp =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut found = false;
    let mut filename = None;
    while let Some(mut field) = within(idle, mp.next_field())
        .await?
        .map_err(|e| multipart_error(e, limit))?
    {
        let is_file = field.file_name().is_some() || field.name() == Some("file");
        if !is_file {
            let mut seen = 0usize;
            while let Some(c) = within(idle, field.chunk())
                .await?
                .map_err(|e| multipart_error(e, limit))?
            {
                seen += c.len();
                if seen > MAX_FORM_FIELD {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_multipart",
                        format!(
                            "the form field {:?} is longer than {MAX_FORM_FIELD} bytes; send the report as a file part",
                            field.name().unwrap_or("")
                        ),
                    ));
                }
            }
            continue;
        }
        if found {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "too_many_files",
                "send one report per request: the form has more than one file part",
            ));
        }
        found = true;
        filename = field.file_name().and_then(sanitize_filename);
        while let Some(c) = within(idle, field.chunk())
            .await?
            .map_err(|e| multipart_error(e, limit))?
        {
            append(file, len, &c, limit)?;
        }
    }
    if !found {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_file",
            "the multipart/form-data body has no file part (e.g. curl -F file=@report.pdf)",
        ));
    }
    Ok(filename)
}

/// Removes `upload-*` files in `dir` older than `age`; returns how many.
///
/// # Errors
/// When `dir` exists but cannot be listed.
pub fn remove_stale(dir: &Path, age: Duration) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TMP_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|e| e >= age);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_display_metadata_only() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename("..\\..\\win.ini").as_deref(),
            Some("win.ini")
        );
        assert_eq!(
            sanitize_filename("report 2024.pdf").as_deref(),
            Some("report 2024.pdf")
        );
        assert_eq!(sanitize_filename(".hidden").as_deref(), Some("hidden"));
        assert_eq!(
            sanitize_filename("a\u{0}b\nc.pdf").as_deref(),
            Some("abc.pdf")
        );
        assert_eq!(sanitize_filename("../"), None);
        assert_eq!(sanitize_filename(".."), None);
        assert_eq!(
            sanitize_filename("x".repeat(1000).as_str()).map(|s| s.len()),
            Some(255)
        );
    }

    #[test]
    fn stale_spooled_files_are_removed_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("upload-fresh");
        std::fs::write(&fresh, b"x").unwrap();
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        assert_eq!(
            remove_stale(dir.path(), Duration::from_secs(3600)).unwrap(),
            0
        );
        assert_eq!(remove_stale(dir.path(), Duration::ZERO).unwrap(), 1);
        assert!(!fresh.exists());
        assert!(dir.path().join("other").exists());
        assert_eq!(
            remove_stale(&dir.path().join("missing"), Duration::ZERO).unwrap(),
            0
        );
    }
}
