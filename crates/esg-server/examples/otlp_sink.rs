//! A minimal OTLP/gRPC trace receiver for `bench/http_load.sh`: it accepts
//! `ExportTraceServiceRequest`s with the generated server of the official
//! protocol definitions (`opentelemetry-proto`), counts requests and spans,
//! and prints `{"exports":N,"spans":M}` on stdout once a second when the
//! counts moved, and once more on SIGTERM/SIGINT before it exits.
//!
//! ```sh
//! cargo run --release -p esg-server --example otlp_sink -- 127.0.0.1:4317
//! ```

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
struct Counts {
    exports: AtomicU64,
    spans: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "{{\"exports\":{},\"spans\":{}}}",
            self.exports.load(Ordering::Relaxed),
            self.spans.load(Ordering::Relaxed)
        )
    }
}

struct Sink(Arc<Counts>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.exports.fetch_add(1, Ordering::Relaxed);
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".to_string());
    // One thread: the sink should take as little CPU from the bench as it can.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening {}", listener.local_addr()?);
        let counts = Arc::new(Counts::default());
        let c2 = counts.clone();
        tokio::spawn(async move {
            let mut last = String::new();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let line = c2.line();
                if line != last {
                    println!("{line}");
                    last = line;
                }
            }
        });
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Sink(counts.clone())))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop_signal(),
            )
            .await?;
        println!("{}", counts.line());
        Ok(())
    })
}
