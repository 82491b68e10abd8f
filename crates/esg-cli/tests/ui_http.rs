//! The web pages over plain HTTP against the real `esg serve`: the
//! redirect from `/`, the pages' CSP, escaping of report-derived strings
//! (a company name, sector and quotes carrying `<script>` and
//! `"><img onerror=…>`), filters, sorting, the CSV and JSON downloads
//! (RFC 4180 quoting, formula guard), compare, search, the 404 page and
//! the static files' ETags.

mod serve_support;
mod support;
mod ui_support;

use serve_support::Resp;
use ui_support::{EVIL, EVIL_SECTOR, key, key_url};

/// The pages' policy (esg_server::ui::CSP).
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn assert_page(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", &r.body[..r.body.len().min(2000)]);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(r.header("content-security-policy"), CSP);
    assert!(
        r.header("server-timing").starts_with("app;dur="),
        "{:?}",
        r.headers
    );
    assert!(r.body.starts_with("<!doctype html>"));
    // No inline script or style anywhere (the CSP would block them).
    assert!(!r.body.contains("<script>"), "inline script");
    assert!(!r.body.contains(" style=\""), "inline style");
    assert!(!r.body.contains("<style"), "style element");
}

/// The markup of the synthetic report appears only escaped (askama writes
/// numeric character references).
fn assert_escaped(body: &str) {
    assert!(!body.contains("<script>alert"), "unescaped script");
    assert!(!body.contains("<img src=x"), "unescaped img");
    assert!(!body.contains("onerror=alert(1)>"), "unescaped attribute");
    let at = body.find("Evil").unwrap_or(0);
    let near = &body[at..(at + 120).min(body.len())];
    assert!(
        body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "escaped script missing: {near}"
    );
    assert!(
        body.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "escaped img missing"
    );
}

#[test]
fn pages_csv_json_and_escaping() {
    let (s, corpus) = ui_support::start(&[]);
    let north_key = key("Northwind Components Ltd");
    let north = key_url("Northwind Components Ltd");
    let evil = key_url(EVIL);

    // `/` redirects to the screen.
    let r = s.get("/");
    assert!(matches!(r.status, 303 | 307 | 308), "{r:?}");
    assert_eq!(r.header("location"), "/ui/");

    // The screen: every company, the evil one escaped.
    let r = s.get("/ui/");
    assert_page(&r, 200);
    assert!(r.body.contains("Northwind Components Ltd"));
    assert_escaped(&r.body);
    assert!(
        r.body
            .contains(&format!("href=\"/ui/companies/{north}?year=2024\"")),
        "{}",
        &r.body[r.body.find("Northwind").unwrap_or(0).saturating_sub(120)..][..200]
    );
    let companies = if corpus { 5 } else { 2 };
    assert!(
        r.body
            .contains(&format!("{companies} of {companies} companies shown")),
        "{}",
        r.body
    );

    // Filters: by sector, by theme minimum, by name, by year; sort links.
    let r = s.get("/ui/?sector=industrial%20components");
    assert_page(&r, 200);
    assert!(
        r.body
            .contains(&format!("1 of {companies} companies shown"))
    );
    let r = s.get("/ui/?q=north");
    assert!(r.body.contains("Northwind") && !r.body.contains("Evil &#60;script"));
    let r = s.get("/ui/?year=2023");
    assert!(r.body.contains("1 of 1 companies shown"), "{}", r.body);
    let r = s.get("/ui/?sort=GHG&dir=desc");
    assert_page(&r, 200);
    assert!(r.body.contains("aria-sort=\"descending\""));
    // A bad minimum is a message on the page, not a broken page.
    let r = s.get("/ui/?min=XYZ%3E%3D2");
    assert_page(&r, 400);
    assert!(r.body.contains("not a theme code"));

    // The same views as JSON and CSV.
    let all = s.get("/ui/companies.json").json();
    let rows = all["companies"].as_array().unwrap();
    assert_eq!(rows.len(), companies);
    let nw = rows
        .iter()
        .find(|r| r["company_key"] == north_key.as_str())
        .unwrap();
    assert_eq!(nw["year"], 2024);
    assert_eq!(nw["sector"], "Industrial components");
    let ghg = nw["stages"]["GHG"].as_u64().unwrap();
    assert!(ghg >= 2, "the sample reports its emissions fully: {nw}");
    let j = s.get(&format!("/ui/companies.json?min=GHG%3E%3D{ghg}&sort=name"));
    assert_eq!(j.status, 200);
    let kept = j.json()["companies"].as_array().unwrap().clone();
    assert!(
        kept.iter()
            .all(|r| r["stages"]["GHG"].as_u64().unwrap() >= ghg)
    );
    assert!(kept.iter().any(|r| r["company_key"] == north_key.as_str()));
    let csv = s.get(&format!("/ui/companies.csv?min=GHG%3E%3D{ghg}&sort=name"));
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(csv.header("content-disposition").starts_with("attachment"));
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), kept.len() + 1, "{}", csv.body);
    assert!(lines[0].starts_with("company,company_key,sector,year,grade,mean_stage,TSP,"));
    // The evil row: the name quoted (it holds a quote), the sector guarded.
    let csv = s.get("/ui/companies.csv?q=evil");
    let line = csv.body.split("\r\n").nth(1).unwrap();
    let fields = support::csv_fields(line);
    assert_eq!(fields[0], EVIL);
    assert_eq!(fields[2], format!("'{EVIL_SECTOR}"));
    assert!(
        line.starts_with("\"Evil <script>alert(1)</script> \"\"><img"),
        "{line}"
    );
    let bad = s.get("/ui/companies.csv?grade=Nope");
    assert_eq!(bad.status, 400);

    // The scorecard of the evil company: every string escaped, quotes shown.
    let r = s.get(&format!("/ui/companies/{evil}"));
    assert_page(&r, 200);
    assert_escaped(&r.body);
    assert!(r.body.contains("href=\"/documents/"), "evidence links");

    // Northwind: two years, a chart over time and what changed.
    let r = s.get(&format!("/ui/companies/{north}"));
    assert_page(&r, 200);
    assert!(r.body.contains("<h2 id=\"over-time\">Over time</h2>"));
    // Every quote links the stored file at its page.
    assert!(r.body.contains("<ul class=\"quotes\">"));
    assert!(r.body.contains("/file#page=1\""));
    assert!(
        r.body.contains("TSP: stage"),
        "the targets paragraph changes TSP"
    );
    assert!(r.body.contains("<svg role=\"img\""));
    assert!(r.body.contains("What evidence would raise this"));
    let r = s.get(&format!("/ui/companies/{north}?year=2023"));
    assert_page(&r, 200);
    assert!(r.body.contains("report year 2023"));
    let r = s.get(&format!("/ui/companies/{north}?year=1999"));
    assert_page(&r, 400);

    // An unknown company is a 404 page saying so (with a close match).
    let r = s.get("/ui/companies/Northwnd%20Components");
    assert_page(&r, 404);
    assert!(r.body.contains("no company named"));
    assert!(r.body.contains("did you mean"));
    let r = s.get("/ui/no-such-page");
    assert_page(&r, 404);

    // Compare two; one alone is a message.
    let r = s.get(&format!("/ui/compare?c={north}&c={evil}"));
    assert_page(&r, 200);
    assert_escaped(&r.body);
    assert!(r.body.contains("Northwind Components Ltd"));
    assert!(r.body.contains("class=\"gbar series-1\""));
    let r = s.get(&format!("/ui/compare?c={north}"));
    assert_page(&r, 422);
    assert!(r.body.contains("pick two to four"));

    // Search runs /search and links each passage to its page.
    let r = s.get(&format!(
        "/ui/search?company={north}&q=scope%203%20emissions"
    ));
    assert_page(&r, 200);
    assert!(r.body.contains("passages from Northwind Components Ltd"));
    assert!(r.body.contains("/file#page="));
    let r = s.get(&format!("/ui/search?company={north}&q=the"));
    assert_page(&r, 422);
    assert!(r.body.contains("no searchable words"));

    // The upload page and the static files (ETag, 304).
    let r = s.get("/ui/upload");
    assert_page(&r, 200);
    assert!(r.body.contains("id=\"u-key\" type=\"password\""));
    let css = s.get("/ui/static/ui.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    let etag = css.header("etag").to_string();
    assert!(etag.starts_with('"'));
    let again = s.send("GET", "/ui/static/ui.css", &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert_eq!(
        s.get("/ui/static/ui.js").header("content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(s.get("/ui/static/nope.js").status, 404);

    // The JSON API is unchanged: its CSP is still the strict one.
    let api = s.get("/companies");
    assert_eq!(
        api.header("content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
}
