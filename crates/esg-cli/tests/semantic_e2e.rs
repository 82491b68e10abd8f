//! Semantic retrieval end to end (issue 13): the real `esg serve` with the
//! real all-MiniLM-L6-v2 weights embeds the stored chunks in the
//! background, answers `semantic=1` on `/score`, `/search` and `/trace`,
//! exports an `embedding` span to a real OTLP/HTTP receiver (prost-decoded
//! `ExportTraceServiceRequest`s) and moves its metrics; and the same
//! through `--embedder openai` against a small OpenAI-compatible server
//! started here that answers with the local model's vectors.
//!
//! The model folder is `ESG_MODEL_DIR`, else where `scripts/fetch-model.sh`
//! installs it; without it these tests print SKIP, and fail under
//! `CI=true`. The tests without a model always run.

mod serve_support;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serve_support::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The model folder, or None (SKIP) outside CI; panics under `CI=true`.
fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ESG_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".local/share/esg-scoring-api/models/all-MiniLM-L6-v2")
        });
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "model not found at {} under CI=true (run scripts/fetch-model.sh)",
        dir.display()
    );
    eprintln!(
        "SKIP: model not found at {} (run scripts/fetch-model.sh)",
        dir.display()
    );
    None
}

/// The shared corpus (`ESG_CORPUS_DIR`, else `../shared/corpus` beside
/// the repository).
fn corpus_dir() -> PathBuf {
    std::env::var_os("ESG_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"))
}

/// A metric's value in a `/metrics` body (first series of that name).
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Waits until the server has embedded everything it knows of.
fn wait_embedded(s: &Served, at_least: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let m = s.get("/metrics").body;
        if metric(&m, "esg_chunks_embedded_total") >= at_least
            && metric(&m, "esg_embedding_queue_depth") == 0.0
        {
            return m;
        }
        assert!(Instant::now() < deadline, "chunks never embedded: {m}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn score(s: &Served, query: &str) -> Resp {
    s.send(
        "POST",
        &format!("/score?{query}"),
        &[("Content-Type", "application/json")],
        br#"{"company":"Northwind Components Ltd"}"#,
    )
}

/// An OTLP/HTTP receiver on 127.0.0.1:0 (spans kept in memory).
fn otlp_receiver(
    rt: &tokio::runtime::Runtime,
) -> (String, Arc<Mutex<Vec<ExportTraceServiceRequest>>>) {
    let got: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                if let Ok(req) = ExportTraceServiceRequest::decode(body) {
                    sink.lock().unwrap().push(req);
                }
                ExportTraceServiceResponse::default().encode_to_vec()
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

#[test]
fn serve_answers_semantic_requests_with_the_real_model() {
    let Some(model) = model_dir() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (endpoint, received) = otlp_receiver(&rt);
    let model = model.to_string_lossy().to_string();
    // `esg ingest` (in start_ingested) stores the sample without vectors:
    // its data directory has no model. The server's background queue
    // embeds what it finds without vectors at start-up.
    let mut s = Served::start_ingested(
        &["--model-dir", &model, "--embed-threads", "2"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "esg-semantic-e2e"),
        ],
    );
    let ready = s.get("/ready").json();
    assert_eq!(ready["checks"]["embedder"], "ok", "{ready}");
    let m = wait_embedded(&s, 1.0);
    let chunks = metric(&m, "esg_chunks");
    assert_eq!(metric(&m, "esg_chunks_embedded_total"), chunks, "{m}");

    // /score: hybrid, every chunk with a vector, byte-identical when repeated.
    let a = score(&s, "semantic=1");
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["retrieval"]["method"], "hybrid", "{}", v["retrieval"]);
    assert_eq!(v["retrieval"]["model"], MODEL_ID);
    assert_eq!(v["retrieval"]["fusion"], "alpha");
    assert_eq!(v["retrieval"]["alpha"], esg_score::DEFAULT_ALPHA);
    assert_eq!(v["retrieval"]["semantic_coverage"], 1.0);
    assert!(v["parity"]["parity_ok"].as_bool().unwrap());
    let score_trace = a.header("x-trace-id").to_string();
    assert_eq!(score(&s, "semantic=1").body, a.body, "repeatable");
    let bm25 = score(&s, "semantic=0").json();
    assert_eq!(bm25["retrieval"]["method"], "bm25");
    assert_ne!(bm25["fingerprint"], v["fingerprint"]);
    // alpha 1 retrieves exactly what BM25 does.
    let one = score(&s, "semantic=1&alpha=1").json();
    let ids = |card: &serde_json::Value| -> Vec<Vec<String>> {
        card["themes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t["retrieved"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["chunk_id"].as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(ids(&one), ids(&bm25));
    let rrf = score(&s, "semantic=1&fusion=rrf").json();
    assert_eq!(rrf["retrieval"]["fusion"], "rrf");
    assert!(rrf["retrieval"].get("alpha").is_none());

    // /search and /trace.
    let r = s.get(&format!(
        "/search?company={COMPANY_QS}&semantic=1&k=3&q=how%20do%20they%20cut%20carbon%20emissions"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let sv = r.json();
    assert_eq!(sv["retrieval"], "hybrid");
    assert_eq!(sv["semantic"]["model"], MODEL_ID);
    assert!(
        sv["passages"][0]["semantic"].as_f64().unwrap() > 0.0,
        "{sv}"
    );
    let t = s
        .get(&format!("/trace?company={COMPANY_QS}&semantic=1"))
        .json();
    assert_eq!(t["retrieval"]["method"], "hybrid", "{t}");

    // A real report from the corpus, uploaded, is embedded in the
    // background and scored with semantic=1.
    let key = s.add_key("e2e");
    let before = metric(&s.get("/metrics").body, "esg_chunks_embedded_total");
    let pdf = std::fs::read(corpus_dir().join("reports/Alphabet_Inc-ESG_Index.pdf"))
        .expect("corpus report (ESG_CORPUS_DIR)");
    let up = s.send(
        "POST",
        "/documents?company=Alphabet%20Inc.&year=2023&filename=Alphabet_Inc-ESG_Index.pdf",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/pdf"),
        ],
        &pdf,
    );
    assert_eq!(up.status, 201, "{}", up.body);
    let uploaded = up.json()["document"]["chunks"].as_f64().unwrap();
    let m = wait_embedded(&s, before + uploaded);
    assert_eq!(
        metric(&m, "esg_chunks_embedded_total"),
        before + uploaded,
        "{m}"
    );
    let card = s.send(
        "POST",
        "/score?semantic=1",
        &[("Content-Type", "application/json")],
        br#"{"company":"Alphabet Inc."}"#,
    );
    assert_eq!(card.status, 200, "{}", card.body);
    let card = card.json();
    assert_eq!(
        card["retrieval"]["semantic_coverage"], 1.0,
        "{}",
        card["retrieval"]
    );
    assert!(card["parity"]["parity_ok"].as_bool().unwrap());
    let quotes: usize = card["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["evidence"].as_array().unwrap().len())
        .sum();
    assert!(
        quotes > 0,
        "a real report gives quotes under hybrid retrieval"
    );

    // Spans: the first semantic /score embedded the theme queries in an
    // `embedding` child span of its request.
    s.sigterm();
    let (status, _) = s.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(status.success());
    let spans: Vec<(String, String)> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
        .map(|sp| {
            let trace: String = sp.trace_id.iter().map(|b| format!("{b:02x}")).collect();
            (sp.name.clone(), trace)
        })
        .collect();
    assert!(
        spans
            .iter()
            .any(|(name, trace)| name == "embedding" && *trace == score_trace),
        "no embedding span in the /score trace {score_trace}: {spans:?}"
    );
    assert!(
        spans.iter().any(|(name, _)| name == "embedding_backfill"),
        "{spans:?}"
    );
}

#[test]
fn a_missing_model_leaves_bm25_working_and_semantic_503() {
    let s = Served::start_ingested(&["--model-dir", "/nonexistent/model"], &[]);
    let ready = s.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let embedder = ready.json()["checks"]["embedder"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        embedder.starts_with("missing: model file missing: /nonexistent/model"),
        "{embedder}"
    );
    let r = score(&s, "semantic=1");
    assert_eq!(r.status, 503, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], "embedder_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/model")
    );
    assert_eq!(score(&s, "semantic=0").status, 200);
    // The startup error is logged, naming the file.
    assert!(
        s.json_logs().iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot load the embedder"))
            && l["error"]
                .as_str()
                .is_some_and(|e| e.contains("/nonexistent/model"))),
        "{:?}",
        s.json_logs()
    );
}

/// A small OpenAI-compatible `/v1/embeddings` server answering with
/// `embed`'s vectors (or `dim`-long constant ones when `embed` is None).
fn openai_server(
    rt: &tokio::runtime::Runtime,
    embed: Option<Arc<esg_embed::LocalEmbedder>>,
    dim: usize,
) -> String {
    use esg_embed::Embedder as _;
    let app = axum::Router::new().route(
        "/v1/embeddings",
        axum::routing::post(move |axum::Json(req): axum::Json<serde_json::Value>| {
            let embed = embed.clone();
            async move {
                let texts: Vec<String> = match &req["input"] {
                    serde_json::Value::String(s) => vec![s.clone()],
                    serde_json::Value::Array(a) => a
                        .iter()
                        .map(|v| v.as_str().unwrap_or_default().to_string())
                        .collect(),
                    _ => Vec::new(),
                };
                let vectors: Vec<Vec<f32>> = match embed {
                    Some(e) => tokio::task::spawn_blocking(move || {
                        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                        e.embed(&refs).unwrap()
                    })
                    .await
                    .unwrap(),
                    None => texts.iter().map(|_| vec![0.5; dim]).collect(),
                };
                let data: Vec<serde_json::Value> = vectors
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| serde_json::json!({"object": "embedding", "index": i, "embedding": v}))
                    .collect();
                axum::Json(serde_json::json!({"object": "list", "data": data, "model": req["model"]}))
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn esg(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_esg"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ESG_DATA_DIR")
        .env_remove("ESG_MODEL_DIR")
        .env("ESG_EMBEDDER_API_KEY", "sk-test-secret")
        .stdin(Stdio::null())
        .output()
        .expect("run esg")
}

#[test]
fn openai_backend_embeds_through_a_real_server_and_refuses_another_dimension() {
    let Some(model) = model_dir() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let local = Arc::new(
        esg_embed::LocalEmbedder::load(&esg_embed::LocalConfig::new(&model)).expect("model"),
    );
    let url = openai_server(&rt, Some(local), 384);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let sample = tmp.path().join("northwind.txt");
    std::fs::write(&sample, sample_bytes()).unwrap();
    let openai = ["--embedder", "openai", "--embedder-url", url.as_str()];
    let mut args = vec!["ingest", "--company", "Northwind", "--year", "2024"];
    args.extend(openai);
    args.push(sample.to_str().unwrap());
    let out = esg(&data, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("embedded with sentence-transformers/all-MiniLM-L6-v2"),
        "{err}"
    );
    assert!(!err.contains("sk-test-secret"));
    // Nothing left to embed: idempotent.
    let mut args = vec!["embed", "--json"];
    args.extend(openai);
    let out = esg(&data, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["embedded"], 0, "{v}");
    assert_eq!(v["with_vectors"], v["chunks"], "{v}");
    assert_eq!(v["dim"], 384);
    // The same vectors as the local model: semantic search agrees.
    let search = |extra: &[&str]| {
        let mut args = vec!["search", "--company", "Northwind", "--semantic", "--json"];
        args.extend(extra);
        args.push("board oversight of climate risk");
        let out = esg(&data, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["passages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["chunk_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let model_s = model.to_string_lossy().to_string();
    assert_eq!(search(&openai), search(&["--model-dir", &model_s]));

    // A server answering with 8-dimensional vectors under the same model
    // name is refused before anything is stored.
    let wrong = openai_server(&rt, None, 8);
    let more = tmp.path().join("more.txt");
    std::fs::write(
        &more,
        "Another company text about renewable electricity targets.",
    )
    .unwrap();
    let out = esg(
        &data,
        &[
            "ingest",
            "--company",
            "Other",
            "--year",
            "2024",
            "--embedder",
            "openai",
            "--embedder-url",
            &wrong,
            more.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "documents are stored regardless");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dimension"), "{err}");
    let out = esg(
        &data,
        &["embed", "--embedder", "openai", "--embedder-url", &wrong],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dimension_mismatch"));
}

fn sample_bytes() -> Vec<u8> {
    serve_support::sample()
}

/// Rows of `chunk_vectors` in the data directory's database.
fn stored_vectors(data: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(data.join("esg.sqlite3")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.query_row("SELECT COUNT(*) FROM chunk_vectors", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn esg_embed_resumes_after_a_kill_and_then_has_nothing_to_do() {
    let Some(model) = model_dir() else { return };
    let model = model.to_string_lossy().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let report = corpus_dir().join("reports/Johnson___Johnson-SASB_Index.pdf");
    let out = esg(
        &data,
        &[
            "ingest",
            "--no-embed",
            "--company",
            "Johnson & Johnson",
            "--year",
            "2022",
            report.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored_vectors(&data), 0, "--no-embed stores no vectors");

    // Killed (SIGKILL) once at least one batch is committed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_esg"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "embed",
            "--json",
            "--model-dir",
            &model,
            "--embed-threads",
            "1",
        ])
        .env_remove("ESG_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while stored_vectors(&data) == 0 {
        assert!(Instant::now() < deadline, "no batch committed");
        assert!(child.try_wait().unwrap().is_none(), "esg embed ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = stored_vectors(&data);
    assert!(kept > 0 && kept % 32 == 0, "whole batches kept: {kept}");

    // The rerun embeds exactly what is missing, then a third run nothing.
    let run = || {
        let out = esg(&data, &["embed", "--json", "--model-dir", &model]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let second = run();
    let chunks = second["chunks"].as_i64().unwrap();
    assert!(kept < chunks, "killed before the end ({kept} of {chunks})");
    assert_eq!(
        second["embedded"].as_i64().unwrap(),
        chunks - kept,
        "{second}"
    );
    assert_eq!(second["with_vectors"], chunks);
    let third = run();
    assert_eq!(third["embedded"], 0, "{third}");
    assert_eq!(stored_vectors(&data), chunks);
}
