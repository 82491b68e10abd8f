#!/usr/bin/env bash
# Ingest throughput of the two stores side by side, in one run: every corpus
# PDF ingested (`esg ingest --no-embed`, one process per report, company and
# year from the manifest) into a fresh SQLite data dir and into a fresh
# PostgreSQL database, RUNS times each (alternating), best run kept; prints
# pages/s per backend and PostgreSQL/SQLite (goal >= 0.8).
#
# PostgreSQL: ESG_BENCH_DATABASE_URL (a role that may CREATE DATABASE), else
# a throw-away cluster in a temp dir on a free port (initdb/pg_ctl of the
# postgresql package; as the postgres user when run as root), fsync on (as a
# real server), stopped on exit.
#
# Usage: bench/store_backends.sh   (RUNS=2; ESG_BIN=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=store_backends
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
[ -f "$corpus/manifest.csv" ] || { echo "$BENCH: corpus not found at $corpus (set ESG_CORPUS_DIR)" >&2; exit 1; }
RUNS=${RUNS:-2}
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
cleanup() {
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

python3 - "${#rows[@]}" $best_lite $best_pg <<'PY'
import sys
n, lp, ls, pp, ps = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
lr, pr = lp / ls, pp / ps
print(f"{'backend':<11} {'reports':>7} {'pages':>6} {'seconds':>8} {'pages/s':>8} {'vs sqlite':>9}")
print(f"{'sqlite':<11} {n:>7} {lp:>6} {ls:>8.2f} {lr:>8.1f} {1:>9.2f}")
print(f"{'postgresql':<11} {n:>7} {pp:>6} {ps:>8.2f} {pr:>8.1f} {pr/lr:>9.2f}")
print(f"goal: postgresql >= 0.8 x sqlite pages/s: {'met' if pr >= 0.8 * lr else 'NOT met'}")
PY
