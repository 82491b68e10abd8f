#!/usr/bin/env bash
# Where a warm POST /score?k=20 spends the server's CPU: perf samples of the
# release esg serve (observability off, so the profile is the request path)
# while wrk drives 8 connections on Headlam Group's 2025 report, printed as
# the top symbols by self time. With BASE_ESG=/path/to/older/esg the same
# for that binary, for a before/after comparison in one run.
#
# Usage: bench/score_profile.sh    env: SECONDS_PROFILED (8), TOP (25),
#   BASE_ESG, NO_BUILD, ESG_CORPUS_DIR, CARGO_TARGET_DIR
# Needs: perf (Debian's linux-perf), wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=score_profile.sh
. bench/lib.sh
command -v perf >/dev/null || { echo "$BENCH: perf is required (apt-get install linux-perf)" >&2; exit 1; }
http_binaries
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
report="$corpus/reports-text/Headlam_Group_Plc-2025_Sustainability_Report.txt"
[ -f "$report" ] || { echo "$BENCH: $report not found (set ESG_CORPUS_DIR)" >&2; exit 1; }
secs=${SECONDS_PROFILED:-8}
top=${TOP:-25}
cat >"$WORK/score.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"company":"Headlam Group Plc","year":2025}'
wrk.headers["Content-Type"] = "application/json"
LUA

profile() { # NAME BIN
  local name=$1 bin=$2 port pid
  rm -rf "$WORK/data"
  "$bin" --data-dir "$WORK/data" ingest --company "Headlam Group Plc" --year 2025 "$report" >/dev/null
  port=$(free_port)
  # shellcheck disable=SC2086
  esg_serve "$name" "$bin" "$port" $OFF_ENV
  pid=$!
  wait_ready "http://127.0.0.1:$port/ready"
  wrk -t 2 -c 8 -d 2s -s "$WORK/score.lua" "http://127.0.0.1:$port/score?k=20" >/dev/null
  wrk -t 2 -c 8 -d "$((secs + 2))s" -s "$WORK/score.lua" "http://127.0.0.1:$port/score?k=20" >"$WORK/$name.wrk" &
  local wrk_pid=$!
  sleep 1
  perf record -q -F 499 -g -p "$pid" -o "$WORK/$name.perf" -- sleep "$secs" 2>/dev/null
  wait "$wrk_pid"
  kill "$pid"
  echo "== $name: $(awk '/^Requests\/sec:/ {print $2}' "$WORK/$name.wrk") req/s while profiled (wrk -c8)"
  perf report -q -i "$WORK/$name.perf" --no-children --sort symbol --percent-limit 0.7 --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -n "$top"
  echo
}

echo "# perf, warm POST /score?k=20 on Headlam, observability off, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
profile new "$ESG"
if [ -n "${BASE_ESG:-}" ]; then profile base "$BASE_ESG"; fi
