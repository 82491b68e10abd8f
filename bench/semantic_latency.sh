#!/usr/bin/env bash
# POST /score latency with semantic=1 (hybrid retrieval, issue 13) side by
# side with semantic=0 (BM25), on one server, in one run: Headlam Group's
# 2025 report (the corpus's plain text) ingested and embedded with the real
# all-MiniLM-L6-v2 (`esg embed`; its chunks/s is printed too).
#
# Two servers over the same data directory, one after the other:
#   cached     as shipped (--cache-mb 256): the company-year index and the
#              /score body are kept, the theme query vectors embedded once
#              per process;
#   uncached   --cache-mb 0: every request reads the chunks (and, for
#              semantic=1, the vectors) from the store, builds the index and
#              scores (the query vectors are still kept per process).
# For each: the first request of the fresh process (semantic=1 pays the
# embedding of the seven theme queries there), then wrk at 1 connection
# (p50, p99) and 8 connections (req/s) for DURATION seconds, each mode in
# turn. The issue's goal: semantic=1 p50 within 2x of semantic=0.
#
# Usage: bench/semantic_latency.sh    env: DURATION (10), ESG_MODEL_DIR,
#   ESG_CORPUS_DIR, CARGO_TARGET_DIR, NO_BUILD
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=semantic_latency.sh
. bench/lib.sh
DURATION=${DURATION:-10}
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
report="$corpus/reports-text/Headlam_Group_Plc-2025_Sustainability_Report.txt"
[ -f "$report" ] || { echo "$BENCH: $report not found (set ESG_CORPUS_DIR)" >&2; exit 1; }
model="${ESG_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/esg-scoring-api/models/all-MiniLM-L6-v2}"
[ -f "$model/model.safetensors" ] || scripts/fetch-model.sh "$model"
http_binaries
BODY='{"company":"Headlam Group Plc","year":2025}'

"$ESG" --data-dir "$WORK/data" ingest --no-embed --company "Headlam Group Plc" --year 2025 "$report" >/dev/null
embed_json=$("$ESG" --data-dir "$WORK/data" embed --model-dir "$model" --json)

# wrk_latency URL CONNS: prints "p50_ms p99_ms req_s".
wrk_run() {
  local url=$1 conns=$2 lua="$WORK/post.lua"
  printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$BODY" >"$lua"
  wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$lua" "$url" >"$WORK/wrk.out"
  python3 - "$WORK/wrk.out" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
if non2xx:
    sys.exit("non-2xx responses: " + non2xx.group(1))
print(f"{p50:.2f} {p99:.2f} {rps:.0f}")
EOF
}

first_ms() { # url
  curl -s -o "$WORK/first.json" -w '%{time_total}' -X POST -H 'content-type: application/json' -d "$BODY" "$1" |
    python3 -c 'import sys; print("%.1f" % (float(sys.stdin.read()) * 1000))'
}

rows=()
for variant in cached uncached; do
  port=$(free_port)
  cache=256
  [ "$variant" = uncached ] && cache=0
  esg_serve "$variant" "$ESG" "$port" OTEL_TRACES_EXPORTER=none ESG_MODEL_DIR="$model" ESG_CACHE_MB=$cache
  pid=$!
  wait_ready "http://127.0.0.1:$port/ready"
  for mode in "semantic=0" "semantic=1" "semantic=1&fusion=rrf"; do
    url="http://127.0.0.1:$port/score?k=20&$mode"
    first=$(first_ms "$url")
    method=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["retrieval"]; print(r["method"], r.get("semantic_coverage", ""))' "$WORK/first.json")
    c1=$(wrk_run "$url" 1) || exit 1
    c8=$(wrk_run "$url" 8) || exit 1
    read -r p50 p99 _ <<<"$c1"
    read -r _ _ rps8 <<<"$c8"
    rows+=("| $variant | $mode | $method | $first | $p50 | $p99 | $rps8 |")
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo
echo "bench/semantic_latency.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), DURATION=${DURATION}s, k=20"
echo "esg embed: $embed_json"
echo
echo "| server | request | retrieval (coverage) | first request ms | c1 p50 ms | c1 p99 ms | c8 req/s |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
python3 - "${rows[@]}" <<'EOF'
import sys
rows = [r.strip("| ").split(" | ") for r in sys.argv[1:]]
for variant in ("cached", "uncached"):
    p = {r[1]: float(r[4]) for r in rows if r[0] == variant}
    print(f"{variant}: semantic=1 p50 / semantic=0 p50 = {p['semantic=1'] / p['semantic=0']:.2f}x (goal <= 2x)")
EOF
