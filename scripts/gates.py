#!/usr/bin/env python3
"""Runtime gates against a live ESG Scoring API instance.

    gates.py --target http://127.0.0.1:8000 --requests 200 --concurrency 4 \
        --duration-max 60 --p95-max 2.0 --p99-max 5.0 --error-rate-max 0.01 \
        --json-out gates.json [--company NAME] [--year YYYY]

1. GET /health (200, "status":"healthy"), /ready (200, "ready":true) and
   /metrics (200, the esg_http_request_duration_seconds histogram present).
2. Scrapes /metrics, sends a bounded load of valid POST /score requests
   (--requests in all, --concurrency at once, stopped at --duration-max
   seconds), scrapes /metrics again.
3. From the difference of the two scrapes, for route="/score",
   method="POST": p50/p95/p99 from the histogram bucket deltas (the same
   linear interpolation as Prometheus' histogram_quantile) and the error
   rate from the esg_http_requests_total deltas. The gate sends only valid
   requests for a company on file, so every non-2xx answer is an error.
4. Cross-checks those against its own client-side timings and counts, and
   reports both. Wild disagreement is flagged (and fails with
   --strict-cross-check).
5. Prints a table, writes JSON (--json-out), exits 0 when every gate
   passes, 1 when any threshold is breached or anything is missing.

If ESG_API_KEY is set, every request carries `Authorization: Bearer
$ESG_API_KEY` (for a server started with --require-auth-for-reads); the
key never appears in the output.

Nothing is assumed: an empty histogram delta, a missing family, a counter
that went backwards, fewer responses than requested within --duration-max,
or a failed probe is a failure, never a default value.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

ROUTE = "/score"
METHOD = "POST"
HIST = "esg_http_request_duration_seconds"
COUNTER = "esg_http_requests_total"


# ---------------------------------------------------------------- HTTP


class Target:
    def __init__(self, url: str):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise SystemExit(f"--target must be an http(s) URL, got {url!r}")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.base = u.path.rstrip("/")
        self.url = url.rstrip("/")
        key = os.environ.get("ESG_API_KEY", "").strip()
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 30.0) -> tuple[int, dict, bytes]:
        c = self.connect(timeout)
        try:
            c.request(method, self.base + path, body=body, headers={**self.auth, **(headers or {})})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


# ---------------------------------------------------------------- metrics text

LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_metrics(text: str) -> tuple[dict, dict]:
    """Samples {(name, frozenset(labels)): value} and types {family: type}."""
    samples: dict = {}
    types: dict = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = LINE.match(line)
        if not m:
            raise ValueError(f"unparsable /metrics line: {raw!r}")
        name, _, lab, value = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        labels = {}
        pos = 0
        while pos < len(lab):
            lm = LABEL.match(lab, pos)
            if not lm:
                raise ValueError(f"unparsable labels in /metrics line: {raw!r}")
            labels[lm.group(1)] = unescape(lm.group(2))
            pos = lm.end()
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples, types


def select(samples: dict, name: str, **want) -> dict:
    """{labels dict as frozenset: value} of `name` samples matching `want`."""
    out = {}
    for (n, labels), v in samples.items():
        if n != name:
            continue
        d = dict(labels)
        if all(d.get(k) == val for k, val in want.items()):
            out[labels] = v
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile on cumulative (upper bound, count) pairs."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    # Monotonic counts, as Prometheus enforces.
    fixed = []
    top = 0.0
    for ub, c in buckets:
        top = max(top, c)
        fixed.append((ub, top))
    buckets = fixed
    observations = buckets[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(buckets) - 1) if buckets[i][1] >= rank), len(buckets) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


def bucket_bounds(value: float, uppers: list[float]) -> tuple[float, float]:
    """The histogram bucket (lower, upper] a value falls in."""
    lo = 0.0
    for ub in sorted(uppers):
        if value <= ub:
            return lo, ub
        lo = ub
    return lo, math.inf


def sample_quantile(q: float, xs: list[float]) -> float:
    """Linear interpolation between order statistics (R type 7)."""
    if not xs:
        return math.nan
    s = sorted(xs)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


# ---------------------------------------------------------------- load


@dataclass
class Load:
    results: list = field(default_factory=list)  # (status or None, seconds, error text)
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: int = 0
    hit_deadline: bool = False
    wall: float = 0.0


def run_load(t: Target, body: bytes, n: int, concurrency: int, duration_max: float,
             request_timeout: float) -> Load:
    load = Load()
    started = time.monotonic()
    deadline = started + duration_max
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "User-Agent": "esg-gates/1", **t.auth}

    def worker():
        conn = None
        while True:
            with load.lock:
                if load.issued >= n:
                    break
                now = time.monotonic()
                if now >= deadline:
                    load.hit_deadline = True
                    break
                load.issued += 1
            timeout = max(0.05, min(request_timeout, deadline - now))
            if conn is None:
                conn = t.connect(timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            t0 = time.perf_counter()
            try:
                conn.request("POST", t.base + ROUTE, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                dt = time.perf_counter() - t0
                rec = (r.status, dt, None)
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                dt = time.perf_counter() - t0
                rec = (None, dt, f"{type(e).__name__}: {e}")
                try:
                    conn.close()
                finally:
                    conn = None
            with load.lock:
                load.results.append(rec)
        if conn is not None:
            conn.close()

    with ThreadPoolExecutor(max_workers=concurrency) as ex:
        futures = [ex.submit(worker) for _ in range(concurrency)]
        for f in futures:
            f.result()
    load.wall = time.monotonic() - started
    return load


# ---------------------------------------------------------------- main


def fmt_s(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if v < 0.001:
        return f"{v * 1e6:.1f} us"
    return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.3f} s"


def fmt_ratio(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v * 100:.2f} %"


def nan_to_none(o):
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {k: nan_to_none(v) for k, v in o.items()}
    if isinstance(o, list):
        return [nan_to_none(v) for v in o]
    return o


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="base URL of the instance, e.g. http://127.0.0.1:8000")
    ap.add_argument("--requests", type=int, required=True, help="POST /score requests to send (>= 1)")
    ap.add_argument("--concurrency", type=int, required=True, help="requests in flight at once (>= 1)")
    ap.add_argument("--duration-max", type=float, required=True, help="stop sending after this many seconds; unfinished requests fail the gate")
    ap.add_argument("--p95-max", type=float, required=True, help="largest acceptable server-side p95 latency, seconds")
    ap.add_argument("--p99-max", type=float, required=True, help="largest acceptable server-side p99 latency, seconds")
    ap.add_argument("--error-rate-max", type=float, required=True, help="largest acceptable share of non-2xx (or failed) requests, 0..1")
    ap.add_argument("--json-out", required=True, help="file to write the results to (JSON)")
    ap.add_argument("--company", help="company to score [default: the first one GET /companies lists; none on file fails]")
    ap.add_argument("--year", type=int, help="report year [default: the server's, the latest on file]")
    ap.add_argument("--request-timeout", type=float, default=30.0, help="per-request timeout, seconds (default 30, never beyond --duration-max)")
    ap.add_argument("--strict-cross-check", action="store_true", help="fail when server and client figures disagree wildly")
    args = ap.parse_args()
    for name in ("requests", "concurrency"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    for name in ("duration_max", "p95_max", "p99_max", "request_timeout"):
        if not getattr(args, name) > 0:
            ap.error(f"--{name.replace('_', '-')} must be > 0")
    if not 0 <= args.error_rate_max <= 1:
        ap.error("--error-rate-max must be within 0..1")

    t = Target(args.target)
    failures: list[str] = []
    warnings: list[str] = []
    report: dict = {
        "target": t.url, "route": ROUTE, "method": METHOD,
        "bounds": {"requests": args.requests, "concurrency": args.concurrency, "duration_max_s": args.duration_max},
        "thresholds": {"p95_max_s": args.p95_max, "p99_max_s": args.p99_max, "error_rate_max": args.error_rate_max},
        "checks": {}, "server": {}, "client": {}, "cross_check": {}, "breaches": [], "warnings": [],
    }

    def finish() -> int:
        report["breaches"] = failures
        report["warnings"] = warnings
        report["pass"] = not failures
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(nan_to_none(report), f, indent=2, sort_keys=True)
            f.write("\n")
        print_table(report)
        for w in warnings:
            print(f"WARNING: {w}")
        for b in failures:
            print(f"BREACH: {b}")
        print(f"{'PASS' if not failures else 'FAIL'}: {len(failures)} breach(es); JSON in {args.json_out}")
        return 0 if not failures else 1

    # 1. probes and /metrics
    def probe(path: str, check) -> bool:
        try:
            status, headers, body = t.request("GET", path, timeout=args.request_timeout)
        except (OSError, http.client.HTTPException) as e:
            report["checks"][path] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            failures.append(f"GET {path}: {type(e).__name__}: {e}")
            return False
        ok, why = check(status, headers, body)
        report["checks"][path] = {"ok": ok, "status": status, **({"why": why} if not ok else {})}
        if not ok:
            failures.append(f"GET {path}: {why}")
        return ok

    def json_says(key, want):
        def check(status, headers, body):
            if status != 200:
                return False, f"status {status}: {body[:200].decode(errors='replace')}"
            try:
                v = json.loads(body)
            except ValueError:
                return False, "body is not JSON"
            if v.get(key) != want:
                return False, f"{key} is {v.get(key)!r}, want {want!r}"
            return True, ""
        return check

    def metrics_ok(status, headers, body):
        if status != 200:
            return False, f"status {status}"
        if not headers.get("content-type", "").startswith("text/plain"):
            return False, f"content-type {headers.get('content-type')!r}"
        text = body.decode(errors="replace")
        if f"# TYPE {HIST} histogram" not in text or f"# TYPE {COUNTER} counter" not in text:
            return False, f"{HIST} histogram or {COUNTER} counter family missing"
        return True, ""

    up = probe("/health", json_says("status", "healthy"))
    up = probe("/ready", json_says("ready", True)) and up
    up = probe("/metrics", metrics_ok) and up
    if not up:
        return finish()

    # Company to score.
    company = args.company
    if company is None:
        status, _, body = t.request("GET", "/companies", timeout=args.request_timeout)
        companies = json.loads(body).get("companies", []) if status == 200 else []
        if not companies:
            failures.append(f"no --company given and GET /companies lists none (status {status})")
            return finish()
        company = companies[0]["name"]
        warnings.append(f"no --company given: scoring {company!r}, the first company on file")
    payload = {"company": company}
    if args.year is not None:
        payload["year"] = args.year
    report["request_body"] = payload
    body = json.dumps(payload).encode()

    def scrape() -> tuple[dict, dict]:
        status, _, raw = t.request("GET", "/metrics", timeout=args.request_timeout)
        if status != 200:
            raise RuntimeError(f"GET /metrics answered {status}")
        return parse_metrics(raw.decode())

    # 2. scrape, load, scrape
    try:
        before, _ = scrape()
    except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
        failures.append(f"first /metrics scrape: {e}")
        return finish()
    load = run_load(t, body, args.requests, args.concurrency, args.duration_max, args.request_timeout)
    try:
        after, _ = scrape()
    except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
        failures.append(f"second /metrics scrape: {e}")
        return finish()

    # 3. server-side figures from the deltas
    want = {"route": ROUTE, "method": METHOD}
    deltas_b: dict[float, float] = {}
    b0 = select(before, f"{HIST}_bucket", **want)
    b1 = select(after, f"{HIST}_bucket", **want)
    for labels, v1 in b1.items():
        v0 = b0.get(labels, 0.0)
        if v1 < v0:
            failures.append(f"{HIST}_bucket{dict(labels)} went backwards ({v0} -> {v1}): the server restarted during the run")
        le = float(dict(labels)["le"])  # "+Inf" parses as inf
        deltas_b[le] = deltas_b.get(le, 0.0) + (v1 - v0)
    c0 = select(before, COUNTER, **want)
    c1 = select(after, COUNTER, **want)
    by_status: dict[str, float] = {}
    for labels, v1 in c1.items():
        v0 = c0.get(labels, 0.0)
        if v1 < v0:
            failures.append(f"{COUNTER}{dict(labels)} went backwards ({v0} -> {v1}): the server restarted during the run")
        s = dict(labels)["status"]
        by_status[s] = by_status.get(s, 0.0) + (v1 - v0)
    by_status = {k: v for k, v in by_status.items() if v}
    buckets = sorted(deltas_b.items())
    server_n = deltas_b.get(math.inf, 0.0)
    counter_n = sum(by_status.values())
    server = {"requests": server_n, "requests_by_status": by_status}
    if server_n <= 0:
        failures.append(f"the {HIST} histogram for {METHOD} {ROUTE} did not move between the two scrapes: no latency can be computed")
        server.update({"p50_s": math.nan, "p95_s": math.nan, "p99_s": math.nan, "error_rate": math.nan})
    else:
        for q in (0.5, 0.95, 0.99):
            server[f"p{int(q * 100)}_s"] = histogram_quantile(q, buckets)
        errors = sum(v for s, v in by_status.items() if not s.startswith("2"))
        server["errors"] = errors
        server["error_rate"] = errors / counter_n if counter_n else math.nan
        if counter_n != server_n:
            failures.append(f"{COUNTER} moved by {counter_n:g} but the histogram count by {server_n:g}: the server's metrics disagree with themselves")
    server["bucket_deltas"] = [[("+Inf" if math.isinf(le) else le), c] for le, c in buckets]
    report["server"] = server

    # client-side figures
    answered = [(s, dt) for s, dt, _ in load.results if s is not None]
    transport = [e for s, _, e in load.results if s is None]
    lat = [dt for _, dt in answered]
    client_errors = sum(1 for s, _ in answered if not 200 <= s < 300) + len(transport)
    client = {
        "issued": load.issued, "answered": len(answered), "transport_errors": len(transport),
        "transport_error_examples": transport[:3], "errors": client_errors,
        "error_rate": client_errors / len(load.results) if load.results else math.nan,
        "wall_s": load.wall, "throughput_rps": len(load.results) / load.wall if load.wall else math.nan,
        "hit_duration_max": load.hit_deadline,
        "statuses": {str(k): sum(1 for s, _ in answered if s == k) for k in sorted({s for s, _ in answered})},
    }
    for q in (0.5, 0.95, 0.99):
        client[f"p{int(q * 100)}_s"] = sample_quantile(q, lat)
    report["client"] = client

    # 4. cross-check
    cc = {"agree": True, "notes": []}
    if server_n < len(answered):
        failures.append(f"the server counted {server_n:g} {METHOD} {ROUTE} requests but answered {len(answered)}: /metrics misses requests")
        cc["agree"] = False
    elif server_n > len(answered):
        cc["notes"].append(f"the server counted {server_n - len(answered):g} more {METHOD} {ROUTE} requests than this run sent: other traffic during the run")
    uppers = [le for le, _ in buckets]
    if server_n > 0 and lat:
        for q in ("p95", "p99"):
            sv, cv = server[f"{q}_s"], client[f"{q}_s"]
            lo, hi = bucket_bounds(sv, uppers)
            # The server's figure is only known to its bucket; the client adds
            # network and client time. Wild = the client is faster than half
            # the bucket's lower bound, or slower than twice its upper bound
            # plus 50 ms.
            wild = cv < lo / 2 or (not math.isinf(hi) and cv > 2 * hi + 0.05)
            cc[q] = {"server_s": sv, "server_bucket": [lo, "+Inf" if math.isinf(hi) else hi], "client_s": cv, "wild": wild}
            if wild:
                cc["agree"] = False
                msg = (f"{q}: server {fmt_s(sv)} (bucket {lo:g}..{hi:g} s) and client {fmt_s(cv)} disagree wildly")
                (failures if args.strict_cross_check else warnings).append(msg)
    if transport:
        cc["notes"].append(f"{len(transport)} request(s) failed before any answer (not in the server's metrics)")
    report["cross_check"] = cc
    warnings.extend(cc["notes"])

    # 5. gates
    if len(load.results) < args.requests:
        failures.append(f"only {len(load.results)} of {args.requests} requests finished within --duration-max {args.duration_max:g} s")
    if server_n > 0:
        if not server["p95_s"] <= args.p95_max:
            failures.append(f"p95 {fmt_s(server['p95_s'])} > {fmt_s(args.p95_max)}")
        if not server["p99_s"] <= args.p99_max:
            failures.append(f"p99 {fmt_s(server['p99_s'])} > {fmt_s(args.p99_max)}")
        if not server["error_rate"] <= args.error_rate_max:
            failures.append(f"server-side error rate {fmt_ratio(server['error_rate'])} > {fmt_ratio(args.error_rate_max)}")
    if load.results and not client["error_rate"] <= args.error_rate_max:
        failures.append(f"client-side error rate {fmt_ratio(client['error_rate'])} > {fmt_ratio(args.error_rate_max)}")
    return finish()


def print_table(r: dict) -> None:
    s, c, th = r.get("server", {}), r.get("client", {}), r["thresholds"]
    rows = [("gate", "server (/metrics delta)", "client", "limit", "verdict")]
    for path, chk in r["checks"].items():
        rows.append((f"GET {path}", str(chk.get("status", "-")), "", "200 + body", "ok" if chk["ok"] else "FAIL"))
    if s:
        b = r["bounds"]
        done = c.get("answered", 0) + c.get("transport_errors", 0)
        rows.append(("requests", f"{s.get('requests', 0):g}", f"{done} in {c.get('wall_s', 0):.1f} s",
                     f"{b['requests']} x{b['concurrency']} <= {b['duration_max_s']:g} s",
                     "ok" if done >= b["requests"] else "FAIL"))
        rows.append(("p50 latency", fmt_s(s.get("p50_s")), fmt_s(c.get("p50_s")), "-", "-"))
        for q, lim in (("p95", th["p95_max_s"]), ("p99", th["p99_max_s"])):
            v = s.get(f"{q}_s")
            ok = v is not None and not math.isnan(v) and v <= lim
            rows.append((f"{q} latency", fmt_s(v), fmt_s(c.get(f"{q}_s")), f"<= {fmt_s(lim)}", "ok" if ok else "FAIL"))
        er = s.get("error_rate")
        ok = er is not None and not math.isnan(er) and er <= th["error_rate_max"] and \
            (c.get("error_rate") is None or c["error_rate"] <= th["error_rate_max"])
        rows.append(("error rate", fmt_ratio(er), fmt_ratio(c.get("error_rate")), f"<= {fmt_ratio(th['error_rate_max'])}", "ok" if ok else "FAIL"))
        cc = r.get("cross_check", {})
        rows.append(("cross-check", "", "", "no wild gap", "ok" if cc.get("agree", False) else "FLAG"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    for i, row in enumerate(rows):
        print("  ".join(str(v).ljust(widths[j]) for j, v in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
