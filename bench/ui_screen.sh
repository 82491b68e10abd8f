#!/usr/bin/env bash
# Server time of the screen page (/ui/) over many companies (issue 16: with
# 1,000 companies the page's server time is at most 100 ms when warm).
#
# Makes N (default 1000) small synthetic text reports (bench/ui_screen_corpus.py:
# paragraphs of the sample report picked per company, so grades and stages
# vary; eight sectors), ingests each with `esg ingest --sector`, starts
# `esg serve`, then requests:
#   cold   the first /ui/ (every company scored once, in parallel);
#   warm   /ui/ again REPS times (rows kept, nothing scored);
#   filter /ui/?min=GHG>=2&sort=mean&dir=desc REPS times;
#   csv    /ui/companies.csv?sector=… REPS times.
# Server time is the page's own Server-Timing header (app;dur=, measured in
# the handler); total is curl's time_total over loopback. Prints p50/p95/max.
#
# Usage: bench/ui_screen.sh
#   env: N (1000), REPS (50), ESG_BIN (a built esg; default: cargo build
#   --release, then $CARGO_TARGET_DIR/release/esg)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=ui_screen
n="${N:-1000}"
reps="${REPS:-50}"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "$BENCH: $tool is required" >&2; exit 1; }
done
if [ -z "${ESG_BIN:-}" ]; then
  cargo build --release -q -p esg-cli --bin esg
  ESG_BIN="${CARGO_TARGET_DIR:-target}/release/esg"
fi
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 bench/ui_screen_corpus.py samples/northwind-2024-sustainability.txt "$work/in" "$n" > "$work/list.tsv"
start=$(date +%s)
while IFS=$'\t' read -r company year sector file; do
  "$ESG_BIN" --data-dir "$work/data" ingest --company "$company" --year "$year" --sector "$sector" "$file" >/dev/null
done < "$work/list.tsv"
echo "ingested $n companies in $(( $(date +%s) - start )) s; machine: $(nproc) CPU(s), $(uname -sr); esg: $ESG_BIN"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
RUST_LOG=warn OTEL_TRACES_EXPORTER=none "$ESG_BIN" --data-dir "$work/data" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready" || true)" = 200 ] && break
  sleep 0.05
done

# get PATH: prints "server_ms total_ms bytes status"
get() {
  curl -s -D "$work/h" -o "$work/body" -w '%{time_total} %{size_download} %{http_code}\n' "http://127.0.0.1:$port$1" > "$work/t"
  read -r total bytes code < "$work/t"
  server=$(tr -d '\r' < "$work/h" | awk -F'dur=' 'tolower($0) ~ /^server-timing:/ {print $2}')
  python3 -c "print(f'{float(\"${server:-nan}\"):.2f} {float(\"$total\")*1000:.2f} $bytes $code')"
}

run() { # label path reps
  local label=$1 path=$2 k=$3 i
  : > "$work/$label.txt"
  for i in $(seq 1 "$k"); do get "$path" >> "$work/$label.txt"; done
  python3 - "$label" "$work/$label.txt" <<'PY'
import sys, statistics
label, path = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(path) if l.strip()]
srv = sorted(float(r[0]) for r in rows); tot = sorted(float(r[1]) for r in rows)
codes = sorted(set(r[3] for r in rows)); size = rows[-1][2]
def q(v, p): return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print(f"{label:<8} {len(rows):>5} {q(srv,.5):>10.2f} {q(srv,.95):>10.2f} {srv[-1]:>10.2f} {q(tot,.5):>10.2f} {q(tot,.95):>10.2f} {int(size):>10} {','.join(codes):>6}")
PY
}

printf '%-8s %5s %10s %10s %10s %10s %10s %10s %6s\n' view reqs srv_p50 srv_p95 srv_max tot_p50 tot_p95 bytes status
run cold "/ui/" 1
run warm "/ui/" "$reps"
run filter "/ui/?min=GHG%3E%3D2&sort=mean&dir=desc" "$reps"
run csv "/ui/companies.csv?sector=Utilities" "$reps"
curl -s "http://127.0.0.1:$port/ui/" | grep -o '[0-9]* of [0-9]* companies shown' | head -1
echo "(times in ms; srv = the handler's Server-Timing, tot = curl over loopback; goal: warm srv p95 <= 100 ms)"
