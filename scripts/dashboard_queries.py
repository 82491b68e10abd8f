#!/usr/bin/env python3
"""Evaluate every PromQL expression of a Grafana dashboard against a live
Prometheus (HTTP API /api/v1/query) and fail if any returns no data.

Used by scripts/deploy-check.sh after Prometheus has scraped a running
`esg serve` under load. Python 3.11 standard library only.

    dashboard_queries.py --prometheus http://127.0.0.1:9090 \
        --dashboard deploy/grafana/dashboards/esg.json \
        --var job=esg-api --rate-interval 1m --range 5m \
        [--wait-samples 20 --job esg-api] [--check-rules]

Grafana variables are replaced before querying: $__rate_interval and
$__interval by --rate-interval, $__range by --range, $__range_s by its
seconds, and $name / ${name} by --var name=value. An expression with a
variable left over is a failure, not skipped. A panel query passes when
Prometheus returns at least one series (or a scalar) with a finite value.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(d: str) -> float:
    m = DURATION.match(d)
    if not m:
        raise argparse.ArgumentTypeError(f"not a Prometheus duration: {d!r} (e.g. 1m, 30s)")
    return int(m.group(1)) * SECONDS[m.group(2)]


def duration(d: str) -> str:
    duration_seconds(d)
    return d


def panel_targets(dashboard: dict) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every target, rows' nested panels included."""
    out = []

    def walk(panels):
        for p in panels or []:
            if p.get("type") == "row":
                walk(p.get("panels"))
                continue
            for t in p.get("targets") or []:
                expr = (t.get("expr") or "").strip()
                if t.get("hide"):
                    continue
                out.append((p.get("title", "?"), t.get("refId", "?"), expr))
            walk(p.get("panels"))

    walk(dashboard.get("panels"))
    return out


def substitute(expr: str, variables: dict[str, str], rate_interval: str, rng: str) -> str:
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": rng,
        "__range_s": str(int(duration_seconds(rng))),
    }
    values = {**builtins, **variables}

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))

    # Longest names first is implicit: the pattern takes the whole identifier.
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def get_json(url: str, timeout: float = 30.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def query(prom: str, expr: str) -> dict:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        return get_json(url)
    except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
        try:
            return json.load(e)
        except Exception:  # noqa: BLE001 - report the HTTP error itself
            return {"status": "error", "error": f"HTTP {e.code}"}


def finite_values(data: dict) -> tuple[int, list[float]]:
    """(number of series, finite sample values) of an instant query result."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        v = float(result[1])
        return 1, [v] if math.isfinite(v) else []
    if kind == "vector":
        vals = [float(s["value"][1]) for s in result]
        return len(result), [v for v in vals if math.isfinite(v)]
    if kind == "matrix":
        vals = [float(v[1]) for s in result for v in s["values"]]
        return len(result), [v for v in vals if math.isfinite(v)]
    return 0, []


def wait_samples(prom: str, job: str, n: int, timeout: float) -> int:
    """Waits until Prometheus holds n successful scrapes of `job`."""
    expr = f'sum(sum_over_time(up{{job="{job}"}}[1h]))'
    deadline = time.monotonic() + timeout
    have = 0
    while True:
        r = query(prom, expr)
        if r.get("status") == "success" and r["data"]["result"]:
            have = int(float(r["data"]["result"][0]["value"][1]))
        if have >= n:
            return have
        if time.monotonic() > deadline:
            raise SystemExit(f"FAIL: only {have} successful scrapes of job {job!r} after {timeout:.0f} s (wanted {n}); expr {expr}")
        time.sleep(0.5)


def check_rules(prom: str) -> list[str]:
    """Every loaded rule evaluated without error; returns failure lines."""
    r = get_json(f"{prom}/api/v1/rules")
    groups = r.get("data", {}).get("groups", [])
    rules = [(g["name"], rule) for g in groups for rule in g.get("rules", [])]
    failures = []
    if not rules:
        failures.append("no rules are loaded")
    firing = []
    for g, rule in rules:
        if rule.get("health") != "ok":
            failures.append(f"rule {g}/{rule.get('name')}: health {rule.get('health')}: {rule.get('lastError')}")
        if rule.get("type") == "alerting" and rule.get("state") == "firing":
            firing.append(rule.get("name"))
    print(f"rules: {len(rules)} loaded in {len(groups)} groups, all evaluated "
          f"{'without error' if not failures else 'WITH ERRORS'}; firing now: {', '.join(firing) or 'none'}")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    ap.add_argument("--dashboard", required=True, help="Grafana dashboard JSON file")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="dashboard variable value (repeatable)")
    ap.add_argument("--rate-interval", type=duration, required=True, help="value of $__rate_interval / $__interval, e.g. 1m")
    ap.add_argument("--range", type=duration, required=True, help="value of $__range, e.g. 5m")
    ap.add_argument("--wait-samples", type=int, default=0, help="first wait for this many successful scrapes of --job")
    ap.add_argument("--job", default=None, help="scrape job to wait for (with --wait-samples)")
    ap.add_argument("--wait-timeout", type=float, default=120.0, help="seconds to wait for the scrapes")
    ap.add_argument("--check-rules", action="store_true", help="also fail if any loaded rule has an evaluation error")
    args = ap.parse_args()

    prom = args.prometheus.rstrip("/")
    variables = {}
    for v in args.var:
        if "=" not in v:
            ap.error(f"--var wants NAME=VALUE, got {v!r}")
        k, val = v.split("=", 1)
        variables[k] = val

    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    targets = panel_targets(dashboard)
    if not targets:
        print(f"FAIL: no panel queries in {args.dashboard}")
        return 1

    if args.wait_samples:
        if not args.job:
            ap.error("--wait-samples needs --job")
        have = wait_samples(prom, args.job, args.wait_samples, args.wait_timeout)
        print(f"prometheus holds {have} successful scrapes of job {args.job!r}")

    failures: list[str] = []
    rows = []
    for title, ref, expr in targets:
        if not expr:
            failures.append(f"{title} [{ref}]: empty expression")
            rows.append((title, ref, "-", "-", "EMPTY EXPR"))
            continue
        q = substitute(expr, variables, args.rate_interval, args.range)
        left = re.findall(r"\$\{?\w+\}?", q)
        if left:
            failures.append(f"{title} [{ref}]: unresolved variable(s) {left} in {q}")
            rows.append((title, ref, "-", "-", "UNRESOLVED VAR"))
            continue
        r = query(prom, q)
        if r.get("status") != "success":
            failures.append(f"{title} [{ref}]: query error {r.get('errorType')}: {r.get('error')}\n    {q}")
            rows.append((title, ref, "-", "-", "QUERY ERROR"))
            continue
        n, vals = finite_values(r["data"])
        if not vals:
            why = "no series" if n == 0 else f"{n} series, none finite"
            failures.append(f"{title} [{ref}]: no data ({why})\n    {q}")
            rows.append((title, ref, str(n), "-", "NO DATA"))
            continue
        rows.append((title, ref, str(n), f"{vals[0]:.6g}", "ok"))

    w = max(len(t) for t, *_ in rows)
    print(f"{'panel':<{w}}  ref  series  first value   verdict")
    for t, ref, n, v, verdict in rows:
        print(f"{t:<{w}}  {ref:<3}  {n:>6}  {v:>11}   {verdict}")
    print(f"{len(rows)} panel queries from {sum(1 for _ in {t for t, *_ in rows})} panels: "
          f"{sum(1 for r in rows if r[4] == 'ok')} returned data")

    if args.check_rules:
        failures += check_rules(prom)

    if failures:
        print("FAIL:")
        for f in failures:
            print("  " + f)
        return 1
    print("PASS: every panel query returned data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
