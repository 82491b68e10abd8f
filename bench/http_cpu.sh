#!/usr/bin/env bash
# Server CPU time per request on GET /health (and POST /score), measured
# from /proc/PID/stat while wrk drives each server on loopback (and the OTLP
# receiver's CPU in the same interval, per request): less
# sensitive to a busy shared machine than req/s, since it counts only the
# CPU the server process itself spent. Servers, all in one run and
# interleaved round by round:
#   on      esg serve, JSON logs at info + OTLP/gRPC export to a local sink
#   off     esg serve, OTEL_TRACES_EXPORTER=none, RUST_LOG=warn
#   hello   the minimal hyper server (examples/hello.rs), /health only
# and, when BASE_ESG=/path/to/an/older/esg is set, the same two modes of
# that binary (on-base, off-base), for a before/after comparison.
#
# Run by hand:  bench/http_cpu.sh      (BASE_ESG=/tmp/esg-old bench/http_cpu.sh)
# Knobs:        DURATION=5 (seconds per run)  REPEAT=3  CONC=8  SCORE=1 (also /score)  NO_BUILD=1
#               CARGO_TARGET_DIR (where release binaries are built)
# Needs: cargo, wrk, curl, python3, Linux /proc.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
REPEAT=${REPEAT:-3}
CONC=${CONC:-8}
SCORE=${SCORE:-1}
BASE_ESG=${BASE_ESG:-}

TICK=$(getconf CLK_TCK)

BENCH=http_cpu.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
http_binaries
cpu_ticks() { # pid -> utime+stime of the process (all threads)
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

"$ESG" --data-dir "$WORK/data" ingest --company "Northwind Components Ltd" --year 2024 \
  samples/northwind-2024-sustainability.txt >/dev/null

SINK_PORT=$(free_port)
"$SINK" "127.0.0.1:$SINK_PORT" >"$WORK/sink.log" &
PIDS+=($!)
SINK_PID=$!

declare -A PORT PID
start_esg() { # name binary mode
  local name=$1 bin=$2 mode=$3 port
  port=$(free_port)
  if [ "$mode" = on ]; then
    # shellcheck disable=SC2046 # on_env prints words without spaces
    esg_serve "$name" "$bin" "$port" $(on_env "$SINK_PORT")
  else
    # shellcheck disable=SC2086 # OFF_ENV is words without spaces
    esg_serve "$name" "$bin" "$port" $OFF_ENV
  fi
  PID[$name]=$!
  PORT[$name]=$port
  wait_ready "http://127.0.0.1:$port/ready"
}

NAMES=(on off)
start_esg on "$ESG" on
start_esg off "$ESG" off
if [ -n "$BASE_ESG" ]; then
  NAMES+=(on-base off-base)
  start_esg on-base "$BASE_ESG" on
  start_esg off-base "$BASE_ESG" off
fi
HPORT=$(free_port)
"$HELLO" "127.0.0.1:$HPORT" >/dev/null &
PIDS+=($!)
PID[hello]=$!
PORT[hello]=$HPORT
wait_ready "http://127.0.0.1:$HPORT/health"

cat >"$WORK/score.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"company":"Northwind Components Ltd","year":2024}'
wrk.headers["Content-Type"] = "application/json"
LUA

# measure NAME PATH [LUA] -> a row: path name req/s cpu_us_per_request
# receiver_cpu_us_per_request (the OTLP sink's CPU in the same interval: it
# shares the CPUs, so it is part of what export costs on this machine)
measure() {
  local name=$1 path=$2 lua=${3:-} pid=${PID[$1]} port=${PORT[$1]} t0 t1 s0 s1 out reqs rps
  out="$WORK/wrk.out"
  t0=$(cpu_ticks "$pid")
  s0=$(cpu_ticks "$SINK_PID")
  wrk -t 2 -c "$CONC" -d "${DURATION}s" ${lua:+-s "$lua"} "http://127.0.0.1:$port$path" >"$out" 2>&1
  t1=$(cpu_ticks "$pid")
  s1=$(cpu_ticks "$SINK_PID")
  reqs=$(awk '/requests in/ {print $1}' "$out")
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  awk -v p="$path" -v n="$name" -v r="$rps" -v d="$((t1 - t0))" -v sd="$((s1 - s0))" -v q="$reqs" -v tk="$TICK" \
    'BEGIN { printf "%s\t%s\t%.0f\t%.1f\t%.1f\n", p, n, r, d * 1e6 / tk / q, sd * 1e6 / tk / q }' >>"$WORK/rows"
}

echo "warming up..." >&2
for n in "${NAMES[@]}" hello; do
  wrk -t 2 -c "$CONC" -d 1s "http://127.0.0.1:${PORT[$n]}/health" >/dev/null
done
: >"$WORK/rows"
for round in $(seq 1 "$REPEAT"); do
  echo "round $round/$REPEAT..." >&2
  for n in "${NAMES[@]}" hello; do measure "$n" /health; done
  if [ "$SCORE" = 1 ]; then
    for n in "${NAMES[@]}"; do measure "$n" /score "$WORK/score.lua"; done
  fi
done

echo
echo "# server CPU per request, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), wrk -t2 -c$CONC, ${DURATION}s x $REPEAT rounds (median)"
echo
echo "| endpoint | server | req/s (median) | CPU µs/request (median) | CPU µs/request, each round | OTLP receiver CPU µs/request (median) |"
echo "|---|---|---:|---:|---|---:|"
awk -F'\t' '
  { k = $1 "\t" $2; if (!(k in n)) order[++m] = k; n[k]++; rps[k, n[k]] = $3; cpu[k, n[k]] = $4; sink[k, n[k]] = $5 }
  function median(arr, k, c,   a, b, t, v) {
    for (a = 1; a <= c; a++) v[a] = arr[k, a]
    for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[b] + 0 < v[a] + 0) { t = v[a]; v[a] = v[b]; v[b] = t }
    return v[int((c + 1) / 2)]
  }
  END {
    for (i = 1; i <= m; i++) {
      k = order[i]; c = n[k]; split(k, kk, "\t")
      all = ""; for (a = 1; a <= c; a++) all = all (a > 1 ? " / " : "") cpu[k, a]
      printf "| %s | %s | %.0f | %.1f | %s | %.1f |\n", kk[1], kk[2], median(rps, k, c), median(cpu, k, c), all, median(sink, k, c)
    }
  }' "$WORK/rows"
