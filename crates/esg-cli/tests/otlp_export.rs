//! OTLP export end to end: the real `esg serve` binary, configured only by
//! the standard `OTEL_*` variables, exports its spans to a real OTLP
//! receiver started here from the official protocol definitions (the
//! `opentelemetry-proto` crate): the generated tonic `TraceService` server
//! for OTLP/gRPC, and prost-decoded `ExportTraceServiceRequest` bodies on
//! `POST /v1/traces` for OTLP/HTTP+protobuf. Spans are flushed when the
//! server stops on SIGTERM; the test then checks what the receiver got.

mod serve_support;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message as _;
use serve_support::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every export request a receiver got, and the content types of HTTP ones.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

struct GrpcSink(Received);

#[tonic::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn http_sink(
    axum::extract::State(r): axum::extract::State<Received>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    r.content_types.lock().unwrap().push(ct);
    match ExportTraceServiceRequest::decode(body) {
        Ok(req) => {
            r.requests.lock().unwrap().push(req);
            (
                [("content-type", "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    Grpc,
    HttpProtobuf,
}

/// Starts a receiver on 127.0.0.1:0; returns its endpoint URL.
fn start_receiver(rt: &tokio::runtime::Runtime, t: Transport, r: Received) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind receiver");
    let addr = listener.local_addr().unwrap();
    match t {
        Transport::Grpc => {
            rt.spawn(
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(GrpcSink(r)))
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
            );
        }
        Transport::HttpProtobuf => {
            let app = axum::Router::new()
                .route("/v1/traces", axum::routing::post(http_sink))
                .with_state(r);
            rt.spawn(async move { axum::serve(listener, app).await });
        }
    }
    format!("http://{addr}")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(kvs: &[KeyValue], key: &str) -> Option<String> {
    let v = kvs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => format!("int:{i}"),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// (service.name of the resource, span) for every span received.
fn spans(r: &Received) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    for req in r.requests.lock().unwrap().iter() {
        for rs in &req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|res| attr(&res.attributes, "service.name"))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    out.push((service.clone(), s.clone()));
                }
            }
        }
    }
    out
}

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_A: &str = "00f067aa0ba902b7";
const TRACE_B: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_B: &str = "b7ad6b7169203331";

fn export_case(t: Transport) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let received = Received::default();
    let endpoint = start_receiver(&rt, t, received.clone());
    let service = format!("esg-otlp-{t:?}").to_lowercase();
    // gRPC: every variable spelled out. HTTP: OTEL_TRACES_EXPORTER and the
    // protocol left unset, so this also checks the defaults (otlp over
    // http/protobuf, `/v1/traces` appended to the endpoint).
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", service.as_str()),
    ];
    if t == Transport::Grpc {
        env.push(("OTEL_TRACES_EXPORTER", "otlp"));
        env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"));
    }
    let mut s = Served::start_ingested(&[], &env);

    let tp_a = format!("00-{TRACE_A}-{PARENT_A}-01");
    let r = s.send("GET", "/companies", &[("traceparent", &tp_a)], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-trace-id"), TRACE_A);
    let companies_span = r.header("x-span-id").to_string();
    let tp_b = format!("00-{TRACE_B}-{PARENT_B}-01");
    let r = s.send(
        "POST",
        "/score",
        &[("traceparent", &tp_b), ("Content-Type", "application/json")],
        br#"{"company":"Northwind Components Ltd"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-trace-id"), TRACE_B);
    let score_span = r.header("x-span-id").to_string();
    let r = s.get("/companies/nobody");
    assert_eq!(r.status, 404);
    let nf_trace = r.header("x-trace-id").to_string();

    // Nothing is exported per request; SIGTERM flushes the batch.
    s.sigterm();
    let (status, took) = s
        .wait_exit(Duration::from_secs(30))
        .expect("esg serve exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");

    let all = spans(&received);
    assert!(!all.is_empty(), "the receiver got no spans");
    for (svc, sp) in &all {
        assert_eq!(svc, &service, "resource service.name of {}", sp.name);
    }
    if t == Transport::HttpProtobuf {
        for ct in received.content_types.lock().unwrap().iter() {
            assert_eq!(ct, "application/x-protobuf");
        }
    }
    let find = |span_id: &str| {
        all.iter()
            .map(|(_, sp)| sp)
            .find(|sp| hex(&sp.span_id) == span_id)
            .unwrap_or_else(|| panic!("no span {span_id} among {:?}", names(&all)))
    };

    // GET /companies continues the caller's trace.
    let c = find(&companies_span);
    assert_eq!(c.name, "GET /companies");
    assert_eq!(c.kind, SpanKind::Server as i32);
    assert_eq!(hex(&c.trace_id), TRACE_A);
    assert_eq!(hex(&c.parent_span_id), PARENT_A);
    assert_eq!(
        attr(&c.attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr(&c.attributes, "http.route").as_deref(),
        Some("/companies")
    );
    assert_eq!(
        attr(&c.attributes, "url.path").as_deref(),
        Some("/companies")
    );
    assert_eq!(
        attr(&c.attributes, "http.response.status_code").as_deref(),
        Some("int:200")
    );
    assert_ne!(
        c.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert!(c.end_time_unix_nano > c.start_time_unix_nano);
    // The INFO access events are log lines, not span events.
    assert!(
        c.events.is_empty(),
        "{:?}",
        c.events.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
    let kids = children(&all, c);
    assert_eq!(kids, ["store.companies"], "children of GET /companies");

    // POST /score: scoring and store access are children of the server span.
    let sc = find(&score_span);
    assert_eq!(sc.name, "POST /score");
    assert_eq!(sc.kind, SpanKind::Server as i32);
    assert_eq!(hex(&sc.trace_id), TRACE_B);
    assert_eq!(hex(&sc.parent_span_id), PARENT_B);
    assert_eq!(
        attr(&sc.attributes, "http.route").as_deref(),
        Some("/score")
    );
    assert_eq!(
        attr(&sc.attributes, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attr(&sc.attributes, "http.response.status_code").as_deref(),
        Some("int:200")
    );
    let kids = children(&all, sc);
    for want in [
        "retrieval",
        "scoring",
        "store.chunks",
        "store.company_documents",
    ] {
        assert!(
            kids.contains(&want),
            "no {want} child of POST /score: {kids:?}"
        );
    }
    for (_, k) in all.iter().filter(|(_, k)| k.parent_span_id == sc.span_id) {
        assert_eq!(k.trace_id, sc.trace_id);
        assert!(
            k.start_time_unix_nano >= sc.start_time_unix_nano,
            "{}",
            k.name
        );
        assert!(k.end_time_unix_nano <= sc.end_time_unix_nano, "{}", k.name);
    }
    // Retrieval is timed on its own: it ends before scoring starts.
    let child = |name: &str| {
        all.iter()
            .map(|(_, k)| k)
            .find(|k| k.parent_span_id == sc.span_id && k.name == name)
            .unwrap()
    };
    let (retrieval, scoring) = (child("retrieval"), child("scoring"));
    assert!(retrieval.end_time_unix_nano > retrieval.start_time_unix_nano);
    assert!(retrieval.end_time_unix_nano <= scoring.start_time_unix_nano);
    let chunks = child("store.chunks");
    assert_eq!(
        attr(&chunks.attributes, "db.system.name").as_deref(),
        Some("sqlite")
    );

    // A request without traceparent starts its own trace (no parent).
    let nf = all
        .iter()
        .map(|(_, k)| k)
        .find(|k| hex(&k.trace_id) == nf_trace && k.kind == SpanKind::Server as i32)
        .expect("404 server span");
    assert_eq!(nf.name, "GET /companies/{id}");
    assert!(nf.parent_span_id.is_empty(), "a fresh trace has no parent");
    assert_eq!(
        attr(&nf.attributes, "url.path").as_deref(),
        Some("/companies/nobody")
    );
    assert_eq!(
        attr(&nf.attributes, "http.response.status_code").as_deref(),
        Some("int:404")
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

fn names(all: &[(String, Span)]) -> Vec<String> {
    all.iter()
        .map(|(_, s)| format!("{} {}", s.name, hex(&s.span_id)))
        .collect()
}

fn children<'a>(all: &'a [(String, Span)], parent: &Span) -> Vec<&'a str> {
    let mut v: Vec<&str> = all
        .iter()
        .filter(|(_, s)| s.parent_span_id == parent.span_id)
        .map(|(_, s)| s.name.as_str())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn spans_reach_a_real_otlp_grpc_receiver() {
    export_case(Transport::Grpc);
}

#[test]
fn spans_reach_a_real_otlp_http_protobuf_receiver_with_default_settings() {
    export_case(Transport::HttpProtobuf);
}

#[test]
fn console_exporter_prints_span_json_lines_on_stderr() {
    let mut s = Served::start_ingested(&[], &[("OTEL_TRACES_EXPORTER", "console")]);
    let tp = format!("00-{TRACE_A}-{PARENT_A}-01");
    let r = s.send("GET", "/companies", &[("traceparent", &tp)], b"");
    assert_eq!(r.status, 200);
    let span_id = r.header("x-span-id").to_string();
    s.sigterm();
    let (status, _) = s.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(status.success());
    let lines = s.stderr.lock().unwrap().clone();
    let server = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["span_id"] == span_id.as_str())
        .unwrap_or_else(|| panic!("no span line for {span_id} on stderr: {lines:?}"));
    assert_eq!(server["name"], "GET /companies");
    assert_eq!(server["trace_id"], TRACE_A);
    assert_eq!(server["parent_span_id"], PARENT_A);
    assert_eq!(server["attributes"]["http.route"], "/companies");
    // stdout stays the JSON log stream.
    assert!(!s.json_logs().is_empty());
}

#[test]
fn an_unknown_exporter_stops_the_server_at_startup_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_esg"));
    cmd.arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null());
    for v in OTEL_VARS {
        cmd.env_remove(v);
    }
    let out = cmd
        .env("OTEL_TRACES_EXPORTER", "jaeger")
        .output()
        .expect("run esg serve");
    assert!(!out.status.success(), "an unknown exporter must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OTEL_TRACES_EXPORTER")
            && err.contains("jaeger")
            && err.contains("otlp, console or none"),
        "{err}"
    );
}

#[test]
fn the_sampler_variables_are_honoured_parent_based_ratio_zero() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let received = Received::default();
    let endpoint = start_receiver(&rt, Transport::HttpProtobuf, received.clone());
    let mut s = Served::start_ingested(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    );
    // A sampled caller: the parent's decision wins over the ratio.
    let sampled = format!("00-{TRACE_A}-{PARENT_A}-01");
    let r = s.send("GET", "/companies", &[("traceparent", &sampled)], b"");
    assert_eq!(r.status, 200);
    // An unsampled caller, and a root request: ratio 0 drops them.
    let unsampled = format!("00-{TRACE_B}-{PARENT_B}-00");
    let r = s.send("GET", "/companies", &[("traceparent", &unsampled)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-trace-id"), TRACE_B, "ids still propagate");
    let r = s.get("/live");
    assert_eq!(r.status, 200);
    let root_trace = r.header("x-trace-id").to_string();
    s.sigterm();
    let (status, _) = s.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(status.success());
    let traces: Vec<String> = spans(&received)
        .iter()
        .map(|(_, sp)| hex(&sp.trace_id))
        .collect();
    assert!(
        traces.iter().any(|t| t == TRACE_A),
        "sampled parent exported: {traces:?}"
    );
    assert!(
        !traces.iter().any(|t| t == TRACE_B),
        "unsampled parent dropped: {traces:?}"
    );
    assert!(
        !traces.contains(&root_trace),
        "ratio 0 drops roots: {traces:?}"
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}
