#!/usr/bin/env bash
# The cost of the network hop, SQLite and PostgreSQL side by side in one run:
#
#   ingest: every corpus PDF ingested (`esg ingest --no-embed`, one process
#     per report, company and year from the manifest) into a fresh SQLite
#     data dir and into a fresh PostgreSQL database, RUNS times each
#     (alternating), best run kept: pages/s (goal: PostgreSQL >= 0.8x).
#   warm /score: `esg serve` on each store as ingested (logs at warn, no
#     span export, no embedder), POST /score for the company with the most
#     pages, warmed up, then wrk at 8 connections for DURATION seconds,
#     alternating SQLite / PostgreSQL WRK_RUNS times, best kept: req/s
#     (goal: PostgreSQL >= 0.9x). `esg serve` on PostgreSQL holds a read
#     lease (esg-store's pg_lease.rs): warm requests trust the change stamp
#     it holds, and writers wait for every leased replica to see their
#     commit, so no round trip is paid per request.
#
# PostgreSQL: ESG_BENCH_DATABASE_URL (a role that may CREATE DATABASE), else
# a throw-away cluster in a temp dir on a free port (initdb/pg_ctl of the
# postgresql package; as the postgres user when run as root), fsync on (as a
# real server), stopped on exit.
#
# Usage: bench/store_backends.sh   (RUNS=2, WRK_RUNS=2, DURATION=10; ESG_BIN=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=store_backends
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
[ -f "$corpus/manifest.csv" ] || { echo "$BENCH: corpus not found at $corpus (set ESG_CORPUS_DIR)" >&2; exit 1; }
RUNS=${RUNS:-2}
WRK_RUNS=${WRK_RUNS:-2}
DURATION=${DURATION:-10}
command -v wrk >/dev/null || { echo "$BENCH: wrk is required (apt-get install wrk)" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-target}
if [ -z "${ESG_BIN:-}" ]; then
  echo "building the release esg..." >&2
  cargo build --release --quiet -p esg-cli --bin esg
  ESG_BIN="$target/release/esg"
fi
command -v python3 >/dev/null || { echo "$BENCH: python3 is required" >&2; exit 1; }

WORK=$(mktemp -d)
chmod 755 "$WORK"
PGDIR=""
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
SERVERS=()
cleanup() {
  for p in "${SERVERS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$PGDIR" ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
    run_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${ESG_BENCH_DATABASE_URL:-}" ]; then
  admin_url=$ESG_BENCH_DATABASE_URL
else
  if command -v initdb >/dev/null; then
    PGBIN=$(dirname "$(readlink -f "$(command -v initdb)")")
  else
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  fi
  [ -x "$PGBIN/initdb" ] || { echo "$BENCH: PostgreSQL not installed (apt-get install postgresql) and ESG_BENCH_DATABASE_URL unset" >&2; exit 1; }
  PGDIR="$WORK/pg"
  mkdir "$PGDIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$PGDIR"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  run_pg "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null
  run_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-p $port -k $PGDIR -c listen_addresses=127.0.0.1" start >/dev/null
  admin_url="postgres://postgres@127.0.0.1:$port/postgres"
fi
with_db() { python3 -c 'import sys,re; u,d=sys.argv[1:]; print(re.sub(r"^(\w+://[^/?]*)(/[^?]*)?", lambda m: m.group(1)+"/"+d, u, count=1))' "$1" "$2"; }
psql_exec() { # url sql: runs SQL through esg's own client is not available; use psql if present, else python
  if command -v psql >/dev/null; then psql -q "$1" -c "$2" >/dev/null
  else run_pg "$PGBIN/psql" -q "$1" -c "$2" >/dev/null; fi
}

# The reports: file, company, year from the manifest (PDFs only).
mapfile -t rows < <(python3 - "$corpus" <<'PY'
import csv, sys, os
d = sys.argv[1]
for r in csv.DictReader(open(os.path.join(d, "manifest.csv"))):
    if r["file"].endswith(".pdf"):
        print("\t".join([os.path.join(d, r["file"]), r["company"], r["year"]]))
PY
)

# ingest_all label [--database-url URL]: prints "pages seconds".
ingest_all() {
  local data="$WORK/data-$1"; shift
  rm -rf "$data"
  local pages=0 start end row f c y out
  start=$(date +%s.%N)
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r f c y <<<"$row"
    out=$("$ESG_BIN" --data-dir "$data" "$@" ingest --company "$c" --year "$y" --no-embed --json "$f" || true)
    pages=$((pages + $(python3 -c 'import sys,json
n=0
for l in sys.stdin:
    l=l.strip()
    if l:
        r=json.loads(l); n+=r.get("pages",0) if r.get("status")=="ingested" else 0
print(n)' <<<"$out")))
  done
  end=$(date +%s.%N)
  echo "$pages $(python3 -c "print(f'{$end-$start:.3f}')")"
}

best_lite=""; best_pg=""
for run in $(seq 1 "$RUNS"); do
  read -r lp ls < <(ingest_all "lite-$run")
  db="esg_bench_${run}_$$"
  psql_exec "$admin_url" "CREATE DATABASE $db"
  url=$(with_db "$admin_url" "$db")
  read -r pp ps < <(ingest_all "pg-$run" --database-url "$url")
  echo "run $run: sqlite $lp pages in ${ls}s; postgresql $pp pages in ${ps}s" >&2
  [ "$lp" = "$pp" ] || { echo "$BENCH: page counts differ ($lp vs $pp)" >&2; exit 1; }
  if [ -z "$best_lite" ] || python3 -c "import sys; sys.exit(0 if $ls < ${best_lite#* } else 1)"; then best_lite="$lp $ls"; fi
  if [ -z "$best_pg" ] || python3 -c "import sys; sys.exit(0 if $ps < ${best_pg#* } else 1)"; then best_pg="$pp $ps"; fi
done

# ---- warm /score at 8 connections on the stores of the last run.
read -r company year < <(python3 - "$corpus" <<'PY'
import csv, sys, os
d = sys.argv[1]
rows = [r for r in csv.DictReader(open(os.path.join(d, "manifest.csv"))) if r["file"].endswith(".pdf")]
best = max(rows, key=lambda r: os.path.getsize(os.path.join(d, r["file"])))
print(best["company"].replace(" ", "\x1f"), best["year"])
PY
)
company=${company//$'\x1f'/ }
body=$(python3 -c 'import json,sys; print(json.dumps({"company": sys.argv[1], "year": int(sys.argv[2])}))' "$company" "$year")
cat >"$WORK/score.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
# serve NAME ARGS...: starts esg serve, prints its port once /ready is 200.
serve() {
  local name=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  env RUST_LOG=warn OTEL_TRACES_EXPORTER=none "$ESG_BIN" "$@" serve --listen "127.0.0.1:$port" \
    --embedder none --max-concurrent-requests 1024 >"$WORK/$name.log" 2>&1 &
  SERVERS+=($!)
  for _ in $(seq 1 400); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready" || true)" = 200 ] && { echo "$port"; return 0; }
    sleep 0.05
  done
  echo "$BENCH: $name never became ready; see its log:" >&2; cat "$WORK/$name.log" >&2; exit 1
}
lite_port=$(serve sqlite --data-dir "$WORK/data-lite-$RUNS")
pg_port=$(serve postgresql --data-dir "$WORK/data-pg-$RUNS" --database-url "$url")
for p in "$lite_port" "$pg_port"; do
  code=$(curl -s -o "$WORK/score-$p.json" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$p/score")
  [ "$code" = 200 ] || { echo "$BENCH: POST /score on port $p answered $code: $(head -c 300 "$WORK/score-$p.json")" >&2; exit 1; }
  wrk -t 2 -c 8 -d 2s -s "$WORK/score.lua" "http://127.0.0.1:$p/score" >/dev/null
done
# The two stores give the same scorecard (fingerprint) for the same documents.
fp() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("fingerprint"))' "$1"; }
[ "$(fp "$WORK/score-$lite_port.json")" = "$(fp "$WORK/score-$pg_port.json")" ] ||
  { echo "$BENCH: the scorecards differ between the stores" >&2; exit 1; }
rps() { # port: req/s of one wrk run (fails on any non-2xx answer)
  local out="$WORK/wrk.out"
  wrk -t 2 -c 8 -d "${DURATION}s" --latency -s "$WORK/score.lua" "http://127.0.0.1:$1/score" >"$out" 2>&1
  if grep -q "Non-2xx" "$out"; then echo "$BENCH: non-2xx answers:" >&2; cat "$out" >&2; exit 1; fi
  echo "$(awk '/^Requests\/sec:/ {printf "%.1f", $2}' "$out") $(awk '$1 == "99%" {print $2}' "$out")"
}
best_lite_rps=0; best_pg_rps=0; lite_p99=""; pg_p99=""
for run in $(seq 1 "$WRK_RUNS"); do
  read -r r p99 < <(rps "$lite_port")
  echo "wrk run $run: sqlite $r req/s (p99 $p99)" >&2
  if python3 -c "import sys; sys.exit(0 if $r > $best_lite_rps else 1)"; then best_lite_rps=$r; lite_p99=$p99; fi
  read -r r p99 < <(rps "$pg_port")
  echo "wrk run $run: postgresql $r req/s (p99 $p99)" >&2
  if python3 -c "import sys; sys.exit(0 if $r > $best_pg_rps else 1)"; then best_pg_rps=$r; pg_p99=$p99; fi
done

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(run_pg "$PGBIN/postgres" --version 2>/dev/null | awk '{print $3}' || echo external) on loopback, fsync on"
python3 - "${#rows[@]}" $best_lite $best_pg "$best_lite_rps" "$best_pg_rps" "$lite_p99" "$pg_p99" "$company $year" "$DURATION" <<'PY'
import sys
n, lp, ls, pp, ps = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
lq, pq, l99, p99, who, dur = float(sys.argv[6]), float(sys.argv[7]), sys.argv[8], sys.argv[9], sys.argv[10], sys.argv[11]
lr, pr = lp / ls, pp / ps
print(f"{'ingest':<11} {'reports':>7} {'pages':>6} {'seconds':>8} {'pages/s':>8} {'vs sqlite':>9}")
print(f"{'sqlite':<11} {n:>7} {lp:>6} {ls:>8.2f} {lr:>8.1f} {1:>9.2f}")
print(f"{'postgresql':<11} {n:>7} {pp:>6} {ps:>8.2f} {pr:>8.1f} {pr/lr:>9.2f}")
print()
print(f"warm POST /score ({who}), wrk 8 connections, {dur} s, best run")
print(f"{'store':<11} {'req/s':>8} {'p99':>9} {'vs sqlite':>9}")
print(f"{'sqlite':<11} {lq:>8.1f} {l99:>9} {1:>9.2f}")
print(f"{'postgresql':<11} {pq:>8.1f} {p99:>9} {pq/lq:>9.2f}")
print(f"goal: ingest postgresql >= 0.8 x sqlite pages/s: {'met' if pr >= 0.8 * lr else 'NOT met'}")
print(f"goal: warm /score postgresql >= 0.9 x sqlite req/s: {'met' if pq >= 0.9 * lq else 'NOT met'}")
PY
