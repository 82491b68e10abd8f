//! `/ui/upload`: the form that adds a report. The page itself is plain
//! HTML; `static/ui.js` sends the file to `POST /documents?company=&year=&sector=`
//! with `Authorization: Bearer <key>` (the key the user pastes, kept only
//! in the page's memory: never stored, never sent anywhere else), shows
//! the upload's progress and the outcome in words (401, 403, 413, 415 and
//! the ingest error codes), and links the new scorecard. Without
//! JavaScript the page says that uploading needs it (or `esg ingest`).

use super::{Nav, render};
use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use std::time::Instant;

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    title: String,
    nav: Nav,
    min_year: i64,
    max_year: i64,
}

/// `GET /ui/upload`.
pub async fn page() -> Response {
    let started = Instant::now();
    let page = UploadPage {
        title: "Add a report".into(),
        nav: Nav::Upload,
        min_year: crate::http::MIN_YEAR,
        max_year: crate::http::MAX_YEAR,
    };
    render(&page, StatusCode::OK, started)
}
