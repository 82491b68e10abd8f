//! Prometheus metrics, rendered in the text exposition format (0.0.4) by
//! hand: a few counters, gauges and histograms behind one mutex, plus
//! process figures read from `/proc` at scrape time.
//!
//! Every `esg_*` family is updated by the code path it describes: the
//! access middleware (HTTP families), `/search` (retrieval), `/score` and
//! `/trace` (score, retrieval, parity), `POST /documents` (ingestion and the
//! companies/chunks gauges, also set when the store opens).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets in seconds (HTTP, scoring, retrieval).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; LATENCY_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

/// Durations of store operations, by operation and outcome, for the whole
/// process (one store per process): recorded by [`observe_store_op`],
/// which `http::store_op` calls around every store call, so that the
/// helper needs no handle on a [`Metrics`].
static STORE_OPS: Mutex<BTreeMap<(&'static str, &'static str), Histogram>> =
    Mutex::new(BTreeMap::new());

/// The store's backend (`sqlite` or `postgresql`), once open.
static STORE_BACKEND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Records one store operation: its name (`store.companies` ...), whether
/// it succeeded, and how long it took.
pub fn observe_store_op(operation: &'static str, ok: bool, elapsed: Duration) {
    let outcome = if ok { "ok" } else { "error" };
    STORE_OPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((operation, outcome))
        .or_insert_with(Histogram::new)
        .observe(elapsed.as_secs_f64());
}

/// Records which backend the store is (`db.system.name` in spans).
pub fn set_store_backend(backend: &'static str) {
    let _ = STORE_BACKEND.set(backend);
}

/// The store's backend, `sqlite` until one is open.
pub fn store_backend() -> &'static str {
    STORE_BACKEND.get().copied().unwrap_or("sqlite")
}

/// The HTTP series of one route template: (method, status, latency); the
/// request count of a series is its histogram's count. Looked up by `&str`
/// route and a short scan, so counting a request allocates nothing once the
/// series exists.
type HttpSeries = Vec<(String, u16, Histogram)>;
/// Labels of an ingestion sample: format, outcome.
type IngestKey = (String, String);

#[derive(Debug)]
struct Inner {
    http: BTreeMap<String, HttpSeries>,
    score_duration: Histogram,
    retrieval_duration: BTreeMap<String, Histogram>,
    ingest_documents: BTreeMap<IngestKey, u64>,
    ingest_pages: BTreeMap<IngestKey, u64>,
    ingest_chunks: BTreeMap<IngestKey, u64>,
    companies: u64,
    chunks: u64,
    parity_breaks: u64,
}

/// Build facts exported as `esg_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Crate version.
    pub version: String,
    /// Rubric version served.
    pub rubric_version: String,
    /// Source commit (`ESG_BUILD_COMMIT` at build time, else `unknown`).
    pub commit: String,
}

/// The process's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    response_hits: AtomicU64,
    response_misses: AtomicU64,
    cache_bytes: AtomicU64,
    embedding_queue_depth: AtomicI64,
    chunks_embedded: AtomicU64,
    embedding_errors: AtomicU64,
    in_flight: AtomicI64,
    ready: AtomicI64,
    store_up: AtomicI64,
    pool: Mutex<Option<esg_store::PoolStatus>>,
    /// 1 / 0 while a PostgreSQL store holds / lacks its read lease; -1 on
    /// SQLite (not exported).
    read_lease: AtomicI64,
    build: Mutex<BuildInfo>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Escapes a label value (`\`, `"`, newline).
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                http: BTreeMap::new(),
                score_duration: Histogram::new(),
                retrieval_duration: BTreeMap::new(),
                ingest_documents: BTreeMap::new(),
                ingest_pages: BTreeMap::new(),
                ingest_chunks: BTreeMap::new(),
                companies: 0,
                chunks: 0,
                parity_breaks: 0,
            }),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            response_hits: AtomicU64::new(0),
            response_misses: AtomicU64::new(0),
            cache_bytes: AtomicU64::new(0),
            embedding_queue_depth: AtomicI64::new(0),
            chunks_embedded: AtomicU64::new(0),
            embedding_errors: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            ready: AtomicI64::new(0),
            store_up: AtomicI64::new(0),
            pool: Mutex::new(None),
            read_lease: AtomicI64::new(-1),
            build: Mutex::new(BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                rubric_version: "none".into(),
                commit: option_env!("ESG_BUILD_COMMIT")
                    .unwrap_or("unknown")
                    .to_string(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the rubric version for `esg_build_info`.
    pub fn set_rubric_version(&self, version: &str) {
        self.build
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rubric_version = version.to_string();
    }

    /// The readiness verdict of `/ready` (exported as `esg_ready` 1/0), set
    /// from the same checks each time `/ready` or `/metrics` is served.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(i64::from(ready), Ordering::Relaxed);
    }

    /// A request started.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request stopped being served (answered, or dropped by the client).
    pub fn request_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request was answered with `status` after `elapsed`.
    pub fn request_finished(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let observe = |series: &mut HttpSeries| match series
            .iter_mut()
            .find(|(m, s, _)| *s == status && m == method)
        {
            Some((_, _, h)) => h.observe(secs),
            None => {
                let mut h = Histogram::new();
                h.observe(secs);
                series.push((method.to_string(), status, h));
            }
        };
        let mut g = self.lock();
        if let Some(series) = g.http.get_mut(route) {
            observe(series);
            return;
        }
        let mut series = HttpSeries::new();
        observe(&mut series);
        g.http.insert(route.to_string(), series);
    }

    /// One scoring run took `elapsed`.
    pub fn observe_score(&self, elapsed: Duration) {
        self.lock().score_duration.observe(elapsed.as_secs_f64());
    }

    /// One retrieval (`operation` = `search` or `score`) took `elapsed`.
    pub fn observe_retrieval(&self, operation: &str, elapsed: Duration) {
        self.lock()
            .retrieval_duration
            .entry(operation.to_string())
            .or_insert_with(Histogram::new)
            .observe(elapsed.as_secs_f64());
    }

    /// One document ended with `outcome` (`ingested`, `already_ingested`, a
    /// failure code); `pages`/`chunks` are those stored or found on file.
    pub fn observe_ingest(&self, format: &str, outcome: &str, pages: u64, chunks: u64) {
        let key = (format.to_string(), outcome.to_string());
        let mut g = self.lock();
        *g.ingest_documents.entry(key.clone()).or_insert(0) += 1;
        *g.ingest_pages.entry(key.clone()).or_insert(0) += pages;
        *g.ingest_chunks.entry(key).or_insert(0) += chunks;
    }

    /// The store's totals changed (or were read at start).
    pub fn set_on_file(&self, companies: u64, chunks: u64) {
        let mut g = self.lock();
        g.companies = companies;
        g.chunks = chunks;
    }

    /// A company-year index was looked up in the cache (`hit` or built),
    /// which now weighs `bytes`.
    pub fn cache_lookup(&self, hit: bool, bytes: u64) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.set_cache_bytes(bytes);
    }

    /// A `/score` answer was looked up among those kept (`hit`) or scored.
    pub fn response_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.response_hits
        } else {
            &self.response_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Chunks waiting to be embedded changed by `delta`.
    pub fn embedding_queue_add(&self, delta: i64) {
        let v = self
            .embedding_queue_depth
            .fetch_add(delta, Ordering::Relaxed)
            + delta;
        if v < 0 {
            // Another process embedded some of them first: never below zero.
            self.embedding_queue_depth.store(0, Ordering::Relaxed);
        }
    }

    /// Sets the chunks waiting to be embedded (after a scan of the store).
    pub fn set_embedding_queue_depth(&self, depth: u64) {
        self.embedding_queue_depth
            .store(i64::try_from(depth).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Chunks waiting to be embedded.
    pub fn embedding_queue_depth(&self) -> i64 {
        self.embedding_queue_depth.load(Ordering::Relaxed)
    }

    /// `n` chunks got their vector.
    pub fn chunks_embedded(&self, n: u64) {
        self.chunks_embedded.fetch_add(n, Ordering::Relaxed);
    }

    /// An embedding batch failed (the chunks stay queued for the next try).
    pub fn embedding_error(&self) {
        self.embedding_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The index cache now weighs `bytes`.
    pub fn set_cache_bytes(&self, bytes: u64) {
        self.cache_bytes.store(bytes, Ordering::Relaxed);
    }

    /// A scorecard broke evidence/retrieval parity.
    pub fn parity_break(&self) {
        self.lock().parity_breaks += 1;
    }

    /// Whether the store answered its last check ([`crate::store_health`]).
    pub fn set_store_up(&self, up: bool) {
        self.store_up.store(i64::from(up), Ordering::Relaxed);
    }

    /// The PostgreSQL pool's state at the last check.
    pub fn set_pool(&self, status: esg_store::PoolStatus) {
        *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    /// Whether the PostgreSQL store held its read lease at the last check
    /// (`None`: no lease kept, SQLite).
    pub fn set_read_lease(&self, held: Option<bool>) {
        let v = held.map_or(-1, i64::from);
        self.read_lease.store(v, Ordering::Relaxed);
    }

    fn render_store(&self, out: &mut String) {
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        let backend = store_backend();
        family(
            out,
            "esg_store_up",
            "gauge",
            "1 when the store answered its last check (every 2 s), else 0; by backend.",
        );
        let _ = writeln!(
            out,
            "esg_store_up{{backend=\"{backend}\"}} {}",
            self.store_up.load(Ordering::Relaxed)
        );
        family(
            out,
            "esg_store_operation_duration_seconds",
            "histogram",
            "Time of one store operation in seconds, by operation and outcome (ok, error).",
        );
        for ((op, outcome), h) in STORE_OPS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h.render(
                out,
                "esg_store_operation_duration_seconds",
                &format!(
                    "operation=\"{}\",outcome=\"{outcome}\"",
                    escape_label(op.trim_start_matches("store."))
                ),
            );
        }
        if let Some(p) = *self.pool.lock().unwrap_or_else(|e| e.into_inner()) {
            for (name, help, v) in [
                (
                    "esg_store_pool_connections_max",
                    "Bound of the PostgreSQL connection pool (--db-pool-size).",
                    p.max_size,
                ),
                (
                    "esg_store_pool_connections",
                    "PostgreSQL connections open.",
                    p.size,
                ),
                (
                    "esg_store_pool_in_use",
                    "PostgreSQL connections running a query.",
                    p.in_use,
                ),
                (
                    "esg_store_pool_idle",
                    "PostgreSQL connections open and free.",
                    p.idle,
                ),
                (
                    "esg_store_pool_waiting",
                    "Callers waiting for a PostgreSQL connection.",
                    p.waiting,
                ),
            ] {
                family(out, name, "gauge", help);
                let _ = writeln!(out, "{name} {v}");
            }
        }
        let lease = self.read_lease.load(Ordering::Relaxed);
        if lease >= 0 {
            family(
                out,
                "esg_store_read_lease_held",
                "gauge",
                "1 while this replica holds its PostgreSQL read lease (requests trust its change stamps without a query), 0 while it asks the database per request.",
            );
            let _ = writeln!(out, "esg_store_read_lease_held {lease}");
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let g = self.lock();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };

        family(
            &mut out,
            "esg_http_requests_total",
            "counter",
            "HTTP requests served, by route template, method and status.",
        );
        // Sorted by route, method, status, as the exposition always was.
        let mut http: Vec<(&str, &str, u16, &Histogram)> = g
            .http
            .iter()
            .flat_map(|(r, series)| {
                series
                    .iter()
                    .map(move |(m, s, h)| (r.as_str(), m.as_str(), *s, h))
            })
            .collect();
        http.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        for &(r, m, s, h) in &http {
            let _ = writeln!(
                out,
                "esg_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{s}\"}} {}",
                escape_label(r),
                escape_label(m),
                h.count
            );
        }
        family(
            &mut out,
            "esg_http_request_duration_seconds",
            "histogram",
            "HTTP request latency in seconds (monotonic clock).",
        );
        for &(r, m, s, h) in &http {
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{s}\"",
                escape_label(r),
                escape_label(m)
            );
            h.render(&mut out, "esg_http_request_duration_seconds", &labels);
        }
        family(
            &mut out,
            "esg_http_requests_in_flight",
            "gauge",
            "HTTP requests being served.",
        );
        let _ = writeln!(
            out,
            "esg_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );

        family(
            &mut out,
            "esg_score_duration_seconds",
            "histogram",
            "Time to score one company-year, in seconds.",
        );
        g.score_duration
            .render(&mut out, "esg_score_duration_seconds", "");
        family(
            &mut out,
            "esg_retrieval_duration_seconds",
            "histogram",
            "Time to retrieve chunks (index build and search), in seconds, by operation.",
        );
        for (op, h) in &g.retrieval_duration {
            h.render(
                &mut out,
                "esg_retrieval_duration_seconds",
                &format!("operation=\"{}\"", escape_label(op)),
            );
        }

        for (name, map, help) in [
            (
                "esg_ingest_documents_total",
                &g.ingest_documents,
                "Documents uploaded, by detected format and outcome.",
            ),
            (
                "esg_ingest_pages_total",
                &g.ingest_pages,
                "Pages of uploaded documents, by format and outcome.",
            ),
            (
                "esg_ingest_chunks_total",
                &g.ingest_chunks,
                "Chunks of uploaded documents, by format and outcome.",
            ),
        ] {
            family(&mut out, name, "counter", help);
            for ((f, o), v) in map {
                let _ = writeln!(
                    out,
                    "{name}{{format=\"{}\",outcome=\"{}\"}} {v}",
                    escape_label(f),
                    escape_label(o)
                );
            }
        }

        family(
            &mut out,
            "esg_ready",
            "gauge",
            "1 when /ready answers 200 (store open, migrations done, rubric loaded, not shutting down), else 0.",
        );
        let _ = writeln!(out, "esg_ready {}", self.ready.load(Ordering::Relaxed));
        self.render_store(&mut out);
        family(&mut out, "esg_companies", "gauge", "Companies on file.");
        let _ = writeln!(out, "esg_companies {}", g.companies);
        family(&mut out, "esg_chunks", "gauge", "Chunks on file.");
        let _ = writeln!(out, "esg_chunks {}", g.chunks);
        family(
            &mut out,
            "esg_parity_breaks_total",
            "counter",
            "Scorecards whose evidence came from a chunk outside the retrieved top-k.",
        );
        let _ = writeln!(out, "esg_parity_breaks_total {}", g.parity_breaks);
        drop(g);
        family(
            &mut out,
            "esg_cache_bytes",
            "gauge",
            "Bytes held by a cache (company_index: the company-year indexes behind /score, /trace and /search; bounded by --cache-mb).",
        );
        let _ = writeln!(
            out,
            "esg_cache_bytes{{cache=\"company_index\"}} {}",
            self.cache_bytes.load(Ordering::Relaxed)
        );
        for (name, series, help) in [
            (
                "esg_cache_hits_total",
                [&self.cache_hits, &self.response_hits],
                "Lookups answered from a cache (company_index: built from the same documents and rubric; score_response: the same index and request).",
            ),
            (
                "esg_cache_misses_total",
                [&self.cache_misses, &self.response_misses],
                "Lookups that had to build the entry (absent, stale, evicted, or the cache is off).",
            ),
        ] {
            family(&mut out, name, "counter", help);
            for (cache, v) in ["company_index", "score_response"].iter().zip(series) {
                let _ = writeln!(
                    out,
                    "{name}{{cache=\"{cache}\"}} {}",
                    v.load(Ordering::Relaxed)
                );
            }
        }

        family(
            &mut out,
            "esg_embedding_queue_depth",
            "gauge",
            "Chunks waiting for their embedding vector (uploads are embedded in the background after they are stored).",
        );
        let _ = writeln!(
            out,
            "esg_embedding_queue_depth {}",
            self.embedding_queue_depth.load(Ordering::Relaxed).max(0)
        );
        family(
            &mut out,
            "esg_chunks_embedded_total",
            "counter",
            "Chunks this process computed and stored an embedding vector for.",
        );
        let _ = writeln!(
            out,
            "esg_chunks_embedded_total {}",
            self.chunks_embedded.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "esg_embedding_errors_total",
            "counter",
            "Embedding batches that failed (model or embedding server error, store error); retried later.",
        );
        let _ = writeln!(
            out,
            "esg_embedding_errors_total {}",
            self.embedding_errors.load(Ordering::Relaxed)
        );

        let b = self.build.lock().unwrap_or_else(|e| e.into_inner()).clone();
        family(
            &mut out,
            "esg_build_info",
            "gauge",
            "Build facts; always 1.",
        );
        let _ = writeln!(
            out,
            "esg_build_info{{version=\"{}\",rubric_version=\"{}\",commit=\"{}\"}} 1",
            escape_label(&b.version),
            escape_label(&b.rubric_version),
            escape_label(&b.commit)
        );
        render_process(&mut out);
        out
    }
}

/// Process figures from `/proc/self` (Linux); absent elsewhere.
fn render_process(out: &mut String) {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends at the last ')'.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // rest[0] is field 3 (state): utime is field 14, stime 15, starttime 22, rss 24.
    let field = |n: usize| rest.get(n - 3).and_then(|s| s.parse::<f64>().ok());
    let btime = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let mut family = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {v}");
    };
    if ticks > 0.0
        && let (Some(u), Some(s)) = (field(14), field(15))
    {
        family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (u + s) / ticks,
        );
    }
    if let Some(rss) = field(24) {
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss * page,
        );
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            d.count() as f64,
        );
    }
    if let (Some(start), Some(bt)) = (field(22), btime)
        && ticks > 0.0
    {
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            bt + start / ticks,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_and_moves() {
        let m = Metrics::new();
        m.request_started();
        m.request_finished("/companies/{id}", "GET", 200, Duration::from_millis(3));
        m.request_ended();
        m.observe_ingest("text", "ingested", 2, 5);
        m.parity_break();
        let t = m.render();
        assert!(
            t.contains(
                "esg_http_requests_total{route=\"/companies/{id}\",method=\"GET\",status=\"200\"} 1"
            ),
            "{t}"
        );
        assert!(t.contains("esg_http_request_duration_seconds_bucket{route=\"/companies/{id}\",method=\"GET\",status=\"200\",le=\"0.005\"} 1"));
        assert!(t.contains("esg_http_requests_in_flight 0"));
        assert!(t.contains("esg_ready 0"), "not ready until told");
        m.set_ready(true);
        assert!(m.render().contains("esg_ready 1"));
        assert!(t.contains("esg_ingest_chunks_total{format=\"text\",outcome=\"ingested\"} 5"));
        assert!(t.contains("esg_parity_breaks_total 1"));
        assert!(t.contains("esg_build_info{version="));
        assert!(t.contains("process_open_fds "));
        assert!(t.contains("process_start_time_seconds "));
        assert!(t.contains("esg_score_duration_seconds_count 0"));
        assert_eq!(escape_label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
