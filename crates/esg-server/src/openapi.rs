//! The OpenAPI 3 description served at `/openapi.json`.

use serde_json::{Value, json};

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn ok(desc: &str, schema: &str) -> Value {
    json!({ "description": desc, "content": content(r(schema)) })
}

fn err(desc: &str) -> Value {
    json!({ "description": desc, "content": content(r("Error")) })
}

/// `semantic`, `alpha` and `fusion` of /score, /search and /trace.
fn semantic_q() -> Value {
    q(
        "semantic",
        false,
        json!({ "type": "integer", "enum": [0, 1], "default": 0 }),
        "1: hybrid retrieval, BM25 fused with the embedding model's cosine similarity (needs the server's embedder; results say so in retrieval)",
    )
}

fn alpha_q() -> Value {
    q(
        "alpha",
        false,
        json!({ "type": "number", "minimum": 0, "maximum": 1, "default": esg_score::DEFAULT_ALPHA }),
        "fusion=alpha: weight of BM25 (1: BM25's top-k exactly, 0: semantic only); refused with fusion=rrf; ignored with semantic=0",
    )
}

fn fusion_q() -> Value {
    q(
        "fusion",
        false,
        json!({ "type": "string", "enum": ["alpha", "rrf"], "default": "alpha" }),
        "alpha: alpha·lexical + (1−alpha)·semantic over per-query normalised scores; rrf: reciprocal-rank fusion",
    )
}

fn embedder_unavailable() -> Value {
    err(
        "semantic=1 and no embedder can serve it (embedder_unavailable): none configured, the model folder missing or broken, or the embedding server failing; the message says which",
    )
}

fn q(name: &str, required: bool, schema: Value, desc: &str) -> Value {
    json!({ "name": name, "in": "query", "required": required, "schema": schema, "description": desc })
}

fn year_schema() -> Value {
    json!({ "type": "integer", "minimum": 2000, "maximum": 2100 })
}

/// What `k` means (`esg_score::breadth_k`).
const K_DESCRIPTION: &str = "Retrieval breadth per theme: k chunks, or more when the company's chunks average under 120 words (tables are cut into one chunk per cell), to cover as much text (at most 100)";

fn k_schema() -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 10 })
}

/// Error responses every route can give (limits, panics, timeouts).
fn common_errors(mut responses: Value) -> Value {
    let obj = responses.as_object_mut().expect("object");
    for (code, desc) in [
        ("405", "Method not allowed"),
        ("408", "Request timed out"),
        (
            "429",
            "Too many requests in flight (`too_many_requests`), or over the per-client rate limit (`rate_limited`); see Retry-After",
        ),
        ("500", "Internal error"),
        (
            "503",
            "Not ready (store or rubric not loaded, or shutting down)",
        ),
    ] {
        obj.entry(code).or_insert_with(|| err(desc));
    }
    responses
}

/// Read operations: a key is optional (required with
/// `--require-auth-for-reads`).
const READ_OPS: &[(&str, &str)] = &[
    ("/companies", "get"),
    ("/companies/{id}", "get"),
    ("/documents", "get"),
    ("/documents/{doc_id}", "get"),
    ("/documents/{doc_id}/file", "get"),
    ("/documents/{doc_id}/file", "head"),
    ("/search", "get"),
    ("/score", "post"),
    ("/trace", "get"),
];

/// Adds the API key scheme (issue 6): `POST /documents` requires a Bearer
/// key (401 without, 403 wrong or revoked) and also takes
/// multipart/form-data; reads take one optionally.
fn with_security(mut doc: Value) -> Value {
    doc["components"]["securitySchemes"] = json!({
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key `esg_<id>_<secret>` made by `esg keys add` (shown once; stored as a salted SHA-256). Required for writes; for reads only with --require-auth-for-reads."
        }
    });
    let unauthorized = || err("No API key (`unauthorized`, with WWW-Authenticate: Bearer)");
    let forbidden = || err("The API key is wrong or revoked (`forbidden`)");
    for (path, method) in READ_OPS {
        let op = &mut doc["paths"][*path][*method];
        op["security"] = json!([{}, { "apiKey": [] }]);
        op["responses"]["401"] = unauthorized();
        op["responses"]["403"] = forbidden();
    }
    let up = &mut doc["paths"]["/documents"]["post"];
    up["security"] = json!([{ "apiKey": [] }]);
    up["summary"] = json!(
        "Upload one report: the raw body, or one file part of multipart/form-data (format detected from the bytes; streamed to disk under --max-upload-mb)"
    );
    up["requestBody"]["content"]["multipart/form-data"] = json!({
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": { "file": { "type": "string", "format": "binary", "description": "The report; its file name is kept as display metadata only (`../../x.pdf` is recorded as `x.pdf`)" } }
        }
    });
    up["responses"]["400"] = err(
        "Body unreadable, or multipart without exactly one file part (`malformed_multipart`, `no_file`, `too_many_files`)",
    );
    up["responses"]["401"] = unauthorized();
    up["responses"]["403"] = forbidden();
    up["responses"]["413"] = err(
        "Larger than --max-upload-mb (by Content-Length at once, else as soon as the stream crosses it)",
    );
    doc
}

/// The document.
pub fn document() -> Value {
    with_security(with_source_files(document_paths()))
}

/// The kept source files (issue 12, [`crate::source_file`]):
/// `GET /documents/{doc_id}` and `GET|HEAD /documents/{doc_id}/file`.
fn with_source_files(mut doc: Value) -> Value {
    let id = json!({ "name": "doc_id", "in": "path", "required": true,
        "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
        "description": "The document id: SHA-256 of its bytes, lowercase hex" });
    let bad_id = || err("doc_id is not a SHA-256 in lowercase hex (validation_failed)");
    let malformed = || err("The path segment does not decode to UTF-8 (malformed_path)");
    let hdr = |desc: &str| json!({ "description": desc, "schema": { "type": "string" } });
    let file_headers = json!({
        "ETag": hdr("\"<sha256>\" (strong; the bytes never change under a doc_id)"),
        "Accept-Ranges": hdr("bytes"),
        "Content-Disposition": hdr("inline; filename=\"...\"; filename*=UTF-8''... (the stored file name)"),
        "Cache-Control": hdr("private, no-cache")
    });
    let mut ok_headers = file_headers.clone();
    ok_headers["Content-Length"] = hdr("Bytes in the body");
    let mut part_headers = ok_headers.clone();
    part_headers["Content-Range"] = hdr("bytes a-b/len");
    let binary = json!({ "schema": { "type": "string", "format": "binary" } });
    let file_content = json!({
        "application/pdf": binary,
        "text/html": binary,
        "application/xhtml+xml": binary,
        "text/plain": binary
    });
    let file_responses = |body: bool| {
        let with = |mut v: Value| {
            if body {
                v["content"] = file_content.clone();
            }
            v
        };
        common_errors(json!({
            "200": with(json!({ "description": "The whole file (also the answer to several ranges, another range unit or a malformed Range, or a Range whose If-Range is not the ETag)", "headers": ok_headers })),
            "206": with(json!({ "description": "One byte range (bytes=a-b, a- or -n)", "headers": part_headers })),
            "304": { "description": "If-None-Match names the ETag", "headers": file_headers },
            "400": malformed(),
            "404": err("No such document (document_not_found), or its source file is not on file: ingested before files were kept, removed or damaged; ingest the same file again (source_missing)"),
            "412": err("If-Match does not name the ETag (precondition_failed)"),
            "416": { "description": "The range lies outside the file (range_not_satisfiable); Content-Range: bytes */len", "headers": { "Content-Range": hdr("bytes */len") }, "content": content(r("Error")) },
            "422": bad_id()
        }))
    };
    let range_param = json!({ "name": "Range", "in": "header", "required": false, "schema": { "type": "string" }, "description": "One byte range: bytes=a-b, bytes=a- or bytes=-n" });
    doc["paths"]["/documents/{doc_id}"] = json!({ "get": {
        "summary": "One document, with the URL of its source file and whether that file is on file",
        "parameters": [id],
        "responses": common_errors(json!({ "200": ok("The document", "DocumentDetail"), "400": malformed(), "404": err("No such document (document_not_found)"), "422": bad_id() }))
    } });
    doc["paths"]["/documents/{doc_id}/file"] = json!({
        "get": {
            "summary": "The document's original bytes, as ingested (open a PDF at …/file#page=N)",
            "parameters": [id, range_param],
            "responses": file_responses(true)
        },
        "head": {
            "summary": "The headers of GET /documents/{doc_id}/file, without the body",
            "parameters": [id, range_param],
            "responses": file_responses(false)
        }
    });
    let schemas = &mut doc["components"]["schemas"];
    schemas["DocumentDetail"] = json!({ "type": "object", "required": ["document", "file_url", "source_available"], "properties": {
        "document": r("Document"),
        "file_url": { "type": "string", "description": "/documents/{doc_id}/file" },
        "source_available": { "type": "boolean", "description": "false: ingest the same file again to keep it" } } });
    schemas["UploadResult"]["required"] = json!(["status", "document", "file_url"]);
    schemas["UploadResult"]["properties"]["file_url"] =
        json!({ "type": "string", "description": "/documents/{doc_id}/file" });
    doc
}

fn document_paths() -> Value {
    let company_q = || {
        q(
            "company",
            true,
            json!({ "type": "string", "minLength": 1 }),
            "Company name, matched case-, accent- and punctuation-insensitively",
        )
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ESG Scoring API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Page-cited ESG maturity scoring of sustainability reports. Every response carries X-Request-Id, X-Trace-Id and X-Span-Id."
        },
        "paths": {
            "/health": { "get": { "summary": "Service health", "responses": common_errors(json!({ "200": ok("Healthy", "Health") })) } },
            "/live": { "get": { "summary": "Liveness", "responses": common_errors(json!({ "200": ok("The process is serving", "Live") })) } },
            "/ready": { "get": { "summary": "Readiness", "responses": common_errors(json!({ "200": ok("Ready", "Ready"), "503": ok("Not ready, with the failing checks", "NotReady") })) } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "Text exposition format 0.0.4", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3 document", "content": content(json!({ "type": "object" })) } } } },
            "/companies": { "get": { "summary": "Companies on file", "responses": common_errors(json!({ "200": ok("Companies, by key", "CompanyList") })) } },
            "/companies/{id}": { "get": {
                "summary": "One company with its documents",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "Company name or key" }],
                "responses": common_errors(json!({ "200": ok("The company", "CompanyDetail"), "400": err("The path segment does not decode to UTF-8 (malformed_path)"), "404": err("No such company (company_not_found; details name close matches and the companies on file)") }))
            } },
            "/documents": {
                "get": {
                    "summary": "Documents on file",
                    "parameters": [q("company", false, json!({ "type": "string" }), "Only this company's documents")],
                    "responses": common_errors(json!({ "200": ok("Documents", "DocumentList"), "404": err("No such company"), "422": err("Invalid parameters") }))
                },
                "post": {
                    "summary": "Upload one report (raw body; format detected from the bytes)",
                    "parameters": [company_q(), q("year", true, year_schema(), "Report year"), q("filename", false, json!({ "type": "string" }), "File name to record (else Content-Disposition, else `upload`)"), q("sector", false, json!({ "type": "string", "maxLength": 100 }), "The company's sector (free text), used to filter screens")],
                    "requestBody": { "required": true, "content": {
                        "application/pdf": { "schema": { "type": "string", "format": "binary" } },
                        "text/html": { "schema": { "type": "string" } },
                        "text/plain": { "schema": { "type": "string" } },
                        "application/octet-stream": { "schema": { "type": "string", "format": "binary" } }
                    } },
                    "responses": common_errors(json!({
                        "201": ok("Ingested", "UploadResult"),
                        "200": ok("Already ingested (same bytes); nothing written", "UploadResult"),
                        "413": err("Body too large"),
                        "415": err("Content type or detected format not supported"),
                        "422": err("Invalid parameters, or the document is unreadable (the code names why)")
                    }))
                }
            },
            "/search": { "get": {
                "summary": "Top-k passages for a question (BM25 over chunks, or hybrid with semantic=1)",
                "parameters": [company_q(), q("year", false, year_schema(), "Default: latest year on file"), q("q", true, json!({ "type": "string", "minLength": 1 }), "The question"), q("k", false, k_schema(), "Passages"), semantic_q(), alpha_q(), fusion_q()],
                "responses": common_errors(json!({ "200": ok("Passages, best first", "SearchResult"), "404": err("Unknown company or year"), "422": err("Invalid parameters"), "503": embedder_unavailable() }))
            } },
            "/score": { "post": {
                "summary": "Score one company-year on the rubric",
                "parameters": [
                    semantic_q(),
                    q("k", false, k_schema(), K_DESCRIPTION),
                    alpha_q(),
                    fusion_q(),
                    q("view", false, json!({ "type": "string", "enum": ["full", "summary"], "default": "full" }), "summary: the card without the retrieved lists (each theme's retrieved, parity's retrieved_chunk_ids and evidence_chunk_ids); the answer then carries view: summary. Responses of 1 KiB or more are compressed (gzip, br or zstd) when Accept-Encoding asks")
                ],
                "requestBody": { "required": true, "content": content(r("ScoreRequest")) },
                "responses": common_errors(json!({
                    "200": ok("The scorecard", "Scorecard"),
                    "400": err("Malformed JSON"),
                    "404": err("Unknown company or year"),
                    "413": err("Body too large"),
                    "415": err("Not JSON"),
                    "422": err("Invalid input, one detail per field (validation_failed)"),
                    "503": embedder_unavailable()
                }))
            } },
            "/trace": { "get": {
                "summary": "Audit trail of a scoring: documents, quotes, parity",
                "parameters": [company_q(), q("year", false, year_schema(), "Default: latest year on file"), q("k", false, k_schema(), K_DESCRIPTION), semantic_q(), alpha_q(), fusion_q()],
                "responses": common_errors(json!({ "200": ok("The audit trail", "Trace"), "404": err("Unknown company or year"), "422": err("Invalid parameters"), "503": embedder_unavailable() }))
            } }
        },
        "components": { "schemas": {
            "Error": {
                "type": "object", "required": ["error", "request_id"],
                "properties": {
                    "error": { "type": "object", "required": ["code", "message", "details"], "properties": {
                        "code": { "type": "string", "description": "Stable snake_case code" },
                        "message": { "type": "string" },
                        "details": { "type": "array", "items": { "type": "object" } }
                    } },
                    "request_id": { "type": "string" }
                }
            },
            "Health": { "type": "object", "required": ["status", "service", "version", "timestamp"], "properties": {
                "status": { "type": "string", "enum": ["healthy"] }, "service": { "type": "string" },
                "version": { "type": "string" }, "timestamp": { "type": "string", "format": "date-time" } } },
            "Live": { "type": "object", "required": ["live"], "properties": { "live": { "type": "boolean" } } },
            "Ready": { "type": "object", "required": ["ready", "checks"], "properties": {
                "ready": { "type": "boolean" }, "checks": { "type": "object", "additionalProperties": { "type": "string" } } } },
            "NotReady": { "type": "object", "required": ["ready", "checks", "error", "request_id"], "properties": {
                "ready": { "type": "boolean" }, "checks": { "type": "object" }, "error": { "type": "object" }, "request_id": { "type": "string" } } },
            "CompanySummary": { "type": "object", "required": ["key", "name", "years", "documents", "pages", "chunks"], "properties": {
                "key": { "type": "string" }, "name": { "type": "string" },
                "years": { "type": "array", "items": { "type": "integer" } },
                "documents": { "type": "integer" }, "pages": { "type": "integer" }, "chunks": { "type": "integer" },
                "sector": { "type": "string", "nullable": true, "description": "Sector of the latest document that names one" } } },
            "CompanyList": { "type": "object", "required": ["companies"], "properties": { "companies": { "type": "array", "items": r("CompanySummary") } } },
            "CompanyDetail": { "type": "object", "required": ["company", "documents"], "properties": {
                "company": r("CompanySummary"),
                "documents": { "type": "array", "items": r("Document") } } },
            "Document": { "type": "object", "required": ["doc_id", "sha256", "company", "company_key", "year", "filename", "media_type", "pages", "chunks", "bytes", "virtual_pages", "warnings", "ingested_at"], "properties": {
                "doc_id": { "type": "string" }, "sha256": { "type": "string" }, "company": { "type": "string" },
                "company_key": { "type": "string" }, "year": { "type": "integer" }, "filename": { "type": "string" },
                "media_type": { "type": "string" }, "pages": { "type": "integer" }, "chunks": { "type": "integer" },
                "bytes": { "type": "integer" }, "virtual_pages": { "type": "boolean" },
                "warnings": { "type": "array", "items": { "type": "string" } }, "ingested_at": { "type": "string", "format": "date-time" },
                "sector": { "type": "string", "nullable": true, "description": "The company's sector as given with this document" } } },
            "DocumentList": { "type": "object", "required": ["documents"], "properties": { "documents": { "type": "array", "items": r("Document") } } },
            "UploadResult": { "type": "object", "required": ["status", "document"], "properties": {
                "status": { "type": "string", "enum": ["ingested", "already_ingested"] }, "document": r("Document") } },
            "Passage": { "type": "object", "required": ["rank", "score", "doc_id", "filename", "year", "page", "chunk_id", "char_start", "char_end", "text"], "properties": {
                "rank": { "type": "integer" }, "score": { "type": "number" }, "doc_id": { "type": "string" },
                "filename": { "type": "string" }, "year": { "type": "integer" }, "page": { "type": "integer" },
                "chunk_id": { "type": "string" }, "char_start": { "type": "integer" }, "char_end": { "type": "integer" }, "text": { "type": "string" } } },
            "SearchResult": { "type": "object", "required": ["company", "company_key", "year", "query", "k", "retrieval", "chunks_searched", "passages"], "properties": {
                "company": { "type": "string" }, "company_key": { "type": "string" }, "year": { "type": "integer" },
                "query": { "type": "string" }, "k": { "type": "integer" }, "retrieval": { "type": "string" },
                "chunks_searched": { "type": "integer" }, "passages": { "type": "array", "items": r("Passage") } } },
            "ScoreRequest": { "type": "object", "required": ["company"], "properties": {
                "company": { "type": "string", "minLength": 1 }, "year": { "type": "integer", "minimum": 2000, "maximum": 2100 },
                "query": { "type": "string", "description": "Accepted; not used by lexical scoring yet" },
                "themes": { "type": "array", "items": { "type": "string" }, "minItems": 1 } } },
            "Scorecard": { "type": "object", "required": ["company", "company_key", "rubric_version", "rubric_sha256", "year", "as_of", "k", "retrieval", "themes", "overall", "documents", "fingerprint", "parity", "sources"], "properties": {
                "company": { "type": "string" }, "company_key": { "type": "string" }, "rubric_version": { "type": "string" },
                "retrieval": { "type": "object", "required": ["method"], "properties": {
                    "method": { "type": "string", "enum": ["bm25", "hybrid"] }, "model": { "type": "string" },
                    "fusion": { "type": "string", "enum": ["alpha", "rrf"] }, "alpha": { "type": "number" },
                    "chunks": { "type": "integer" }, "chunks_with_vectors": { "type": "integer" },
                    "semantic_coverage": { "type": "number", "minimum": 0, "maximum": 1 } } },
                "rubric_sha256": { "type": "string" }, "year": { "type": "integer" }, "as_of": { "type": "string" },
                "k": { "type": "integer" }, "themes": { "type": "array", "items": { "type": "object" } },
                "overall": { "type": "object", "required": ["mean_stage", "grade", "themes_scored"] },
                "documents": { "type": "array", "items": { "type": "object" } }, "fingerprint": { "type": "string" },
                "parity": { "type": "object", "required": ["parity_ok"] }, "sources": { "type": "array", "items": { "type": "object" } },
                "view": { "type": "string", "enum": ["summary"], "description": "Present only with view=summary" } } },
            "Trace": { "type": "object", "required": ["company", "company_key", "year", "rubric_version", "fingerprint", "documents", "quotes", "parity"], "properties": {
                "company": { "type": "string" }, "company_key": { "type": "string" }, "year": { "type": "integer" },
                "rubric_version": { "type": "string" }, "fingerprint": { "type": "string" },
                "documents": { "type": "array", "items": { "type": "object", "required": ["doc_id", "sha256", "filename", "pages", "ingested_at"] } },
                "quotes": { "type": "array", "items": { "type": "object", "required": ["text", "page", "chunk_id", "source_sha256", "theme"], "properties": {
                    "bbox": { "type": ["array", "null"], "items": { "type": "number" }, "minItems": 4, "maxItems": 4,
                        "description": "PDF quotes: [x0, y0, x1, y1] of the lines the quote was drawn on, in the page's default user space (points, origin lower left, before /Rotate and the CropBox); null for HTML and text documents" } } } },
                "parity": { "type": "object", "required": ["verdict"], "properties": { "verdict": { "type": "string", "enum": ["PASS", "FAIL"] } } } } }
        } }
    })
}
