#!/usr/bin/env bash
# HTTP load on loopback with wrk: requests/s and p50/p99 latency of
# GET /health and POST /score at several concurrencies, for
#   on    esg serve with observability on: JSON logs at info to a file and
#         OTLP/gRPC span export to a local receiver (examples/otlp_sink.rs),
#   on10  the same as on with OTEL_TRACES_SAMPLER=parentbased_traceidratio
#         and OTEL_TRACES_SAMPLER_ARG=0.1 (1 trace in 10 exported, as a busy
#         production service would sample), to its own receiver, /health only,
#   off   esg serve with OTEL_TRACES_EXPORTER=none and RUST_LOG=warn,
#   hello a minimal hyper 1 server (examples/hello.rs, same runtime and
#         allocator), /health only,
# in one run, interleaved (for each endpoint and concurrency: on, off, hello)
# so that machine noise hits all of them alike. Goals (issue 4):
# observability costs <= 5 % throughput; /health >= 70 % of hello's.
#
# Every cell is run REPEAT times (interleaved rounds) and the table shows the
# median round, so one noisy moment on a shared machine does not decide it.
#
# Run by hand:  bench/http_load.sh
# Knobs:        DURATION=8 (seconds per run)  REPEAT=3  CONCURRENCY="1 8 64"  NO_BUILD=1
#               CARGO_TARGET_DIR (where release binaries are built)
# Needs: cargo, wrk, curl, python3 (to pick free ports).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
REPEAT=${REPEAT:-3}
CONCURRENCY=${CONCURRENCY:-"1 8 64"}


BENCH=http_load.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
http_binaries

# The on and on10 servers' JSON logs are kept in files under $WORK (the log
# lines are counted at the end): about 1 GB per round at this machine's
# rates (2 lines of ~430 bytes per request). Refuse to start rather than
# fill the disk halfway through.
NEED_KB=$(( (REPEAT * DURATION * 1024 * 1024 + 7) / 8 ))
AVAIL_KB=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
if [ "$AVAIL_KB" -lt "$NEED_KB" ]; then
  echo "$BENCH: needs ~$(( NEED_KB / 1048576 + 1 )) GB free under $WORK for the log files, has $(( AVAIL_KB / 1048576 )) GB (lower REPEAT or DURATION, or set TMPDIR)" >&2
  exit 1
fi

# Data: the shipped sample report, ingested once; both servers read it.
"$ESG" --data-dir "$WORK/data" ingest --company "Northwind Components Ltd" --year 2024 \
  samples/northwind-2024-sustainability.txt >/dev/null

SINK_PORT=$(free_port)
"$SINK" "127.0.0.1:$SINK_PORT" >"$WORK/sink.log" &
PIDS+=($!)
SINK_PID=$!

SINK10_PORT=$(free_port)
"$SINK" "127.0.0.1:$SINK10_PORT" >"$WORK/sink10.log" &
PIDS+=($!)
SINK10_PID=$!

ON10_PORT=$(free_port)
# shellcheck disable=SC2046 # on_env prints words without spaces, split on purpose
esg_serve on10 "$ESG" "$ON10_PORT" $(on_env "$SINK10_PORT") \
  OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
ON10_PID=$!

ON_PORT=$(free_port)
# shellcheck disable=SC2046
esg_serve on "$ESG" "$ON_PORT" $(on_env "$SINK_PORT")
ON_PID=$!

OFF_PORT=$(free_port)
# shellcheck disable=SC2086 # OFF_ENV is words without spaces, split on purpose
esg_serve off "$ESG" "$OFF_PORT" $OFF_ENV

HELLO_PORT=$(free_port)
"$HELLO" "127.0.0.1:$HELLO_PORT" >/dev/null &
PIDS+=($!)

wait_ready "http://127.0.0.1:$ON_PORT/ready"
wait_ready "http://127.0.0.1:$ON10_PORT/ready"
wait_ready "http://127.0.0.1:$OFF_PORT/ready"
wait_ready "http://127.0.0.1:$HELLO_PORT/health"

cat >"$WORK/score.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"company":"Northwind Components Ltd","year":2024}'
wrk.headers["Content-Type"] = "application/json"
LUA
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"company":"Northwind Components Ltd","year":2024}' "http://127.0.0.1:$OFF_PORT/score")
[ "$code" = 200 ] || { echo "http_load.sh: POST /score answered $code" >&2; exit 1; }

# to_ms VALUE-WITH-UNIT (wrk prints us, ms or s)
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
    printf "%.3f", n }'
}

# run NAME PORT PATH CONC [LUA] -> appends a row to $WORK/rows
ON_REQUESTS=0
ON10_REQUESTS=0
run() {
  local name=$1 port=$2 path=$3 c=$4 lua=${5:-}
  local t=$(( c < 2 ? c : 2 ))
  local out="$WORK/wrk.out"
  wrk -t "$t" -c "$c" -d "${DURATION}s" --latency ${lua:+-s "$lua"} \
    "http://127.0.0.1:$port$path" >"$out" 2>&1
  local rps p50 p99 reqs non2xx errs
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  reqs=$(awk '/requests in/ {print $1}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
  errs=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")
  if [ "$name" = on ]; then ON_REQUESTS=$((ON_REQUESTS + reqs)); fi
  if [ "$name" = on10 ]; then ON10_REQUESTS=$((ON10_REQUESTS + reqs)); fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$c" "$name" "$rps" "$p50" "$p99" \
    "${non2xx:-0}" "${errs:-0}" >>"$WORK/rows"
}

echo "warming up..." >&2
for port in $ON_PORT $ON10_PORT $OFF_PORT; do
  wrk -t 2 -c 8 -d 2s "http://127.0.0.1:$port/health" >/dev/null
  wrk -t 2 -c 8 -d 2s -s "$WORK/score.lua" "http://127.0.0.1:$port/score" >/dev/null
done
wrk -t 2 -c 8 -d 2s "http://127.0.0.1:$HELLO_PORT/health" >/dev/null

: >"$WORK/rows"
for round in $(seq 1 "$REPEAT"); do
  for c in $CONCURRENCY; do
    echo "round $round/$REPEAT, concurrency $c..." >&2
    run on "$ON_PORT" /health "$c"
    run on10 "$ON10_PORT" /health "$c"
    run off "$OFF_PORT" /health "$c"
    run hello "$HELLO_PORT" /health "$c"
    run on "$ON_PORT" /score "$c" "$WORK/score.lua"
    run off "$OFF_PORT" /score "$c" "$WORK/score.lua"
  done
done
# Median round per (endpoint, concurrency, server), by req/s; rows keep
# first-seen order.
awk -F'\t' '
  { k = $1 "\t" $2 "\t" $3; if (!(k in n)) order[++m] = k; n[k]++; row[k, n[k]] = $0; rps[k, n[k]] = $4 }
  END {
    for (i = 1; i <= m; i++) {
      k = order[i]; c = n[k]
      for (a = 1; a <= c; a++) idx[a] = a
      for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++)
        if (rps[k, idx[b]] + 0 < rps[k, idx[a]] + 0) { t = idx[a]; idx[a] = idx[b]; idx[b] = t }
      med = idx[int((c + 1) / 2)]
      all = ""; for (a = 1; a <= c; a++) all = all (a > 1 ? "/" : "") sprintf("%.0f", rps[k, a])
      print row[k, med] "\t" all
    }
  }' "$WORK/rows" >"$WORK/median"

# Flush: stopping the "on" server flushes its spans; then stop the sink.
kill -TERM "$ON_PID" "$ON10_PID"; wait "$ON_PID" "$ON10_PID" 2>/dev/null || true
sleep 1
kill -TERM "$SINK_PID" "$SINK10_PID"; wait "$SINK_PID" "$SINK10_PID" 2>/dev/null || true
SPANS=$(tail -n 1 "$WORK/sink.log" | sed -n 's/.*"spans":\([0-9]*\).*/\1/p')
SPANS10=$(tail -n 1 "$WORK/sink10.log" | sed -n 's/.*"spans":\([0-9]*\).*/\1/p')
LOG_LINES=$(wc -l <"$WORK/on.log")

echo
echo "# HTTP load, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), ${DURATION}s per run, wrk on loopback"
echo
echo "| endpoint | conc | server | req/s (median) | p50 ms | p99 ms | non-2xx | socket errors | req/s of each round |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$WORK/median"
echo
echo "| endpoint | conc | observability cost (1 - on/off) | cost with 10 % sampling (1 - on10/off) | /health on/hello | /health off/hello |"
echo "|---|---:|---:|---:|---:|---:|"
awk -F'\t' '
  { r[$1 "|" $2 "|" $3] = $4; if (!seen[$1 "|" $2]++) keys[++n] = $1 "|" $2 }
  END {
    for (i = 1; i <= n; i++) {
      split(keys[i], k, "|"); on = r[keys[i] "|on"]; off = r[keys[i] "|off"]; h = r[keys[i] "|hello"]
      on10 = r[keys[i] "|on10"]
      cost = off > 0 ? 100 * (1 - on / off) : 0
      cost10 = (off > 0 && on10 > 0) ? sprintf("%.1f %%", 100 * (1 - on10 / off)) : ""
      if (h > 0) printf "| %s | %s | %.1f %% | %s | %.0f %% | %.0f %% |\n", k[1], k[2], cost, cost10, 100 * on / h, 100 * off / h
      else printf "| %s | %s | %.1f %% | %s | | |\n", k[1], k[2], cost, cost10
    }
  }' "$WORK/median"
echo
echo "observability on: $ON_REQUESTS requests measured; $SPANS spans received by the OTLP sink; $LOG_LINES JSON log lines written"
echo "on10 (/health only): $ON10_REQUESTS requests measured; $SPANS10 spans received by its OTLP sink (about 1 in 10 expected)"
echo "(both counts include the warm-up requests; on's spans include /score's child spans)"
echo "goals: observability cost <= 5 %; /health >= 70 % of hello"
