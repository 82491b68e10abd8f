#!/usr/bin/env bash
# Scoring latency of one company on the largest corpus report.
#
# Builds release, ingests the report into a temporary data directory, then
#   1. in process (crates/esg-cli/examples/score_bench.rs), REPS repetitions:
#      rubric load (one-off per process), reading the chunks from SQLite,
#      score() (BM25 + criteria + stage logic), the whole in-process
#      `esg score` path (lookup + chunks + score + file names), JSON;
#   2. whole process: `esg score --format json` run PROC_REPS times
#      (process start, store open, rubric load, scoring, output).
# Prints p50/p99/max in milliseconds. Goal: scoring one ~150-page company
# in under 50 ms.
#
# Usage: bench/score_latency.sh [REPORT_FILE COMPANY YEAR]
#   env: REPS (default 200), PROC_REPS (default 50), ESG_CORPUS_DIR, CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
reps="${REPS:-200}"
proc_reps="${PROC_REPS:-50}"
report="${1:-$corpus/reports/Bayer_AG-2021_Sustainability_Report.pdf}"
company="${2:-Bayer AG}"
year="${3:-2021}"
[ -f "$report" ] || { echo "report not found: $report (set ESG_CORPUS_DIR or pass REPORT_FILE COMPANY YEAR)"; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p esg-cli --bin esg --example score_bench
esg="$target/release/esg"
bench="$target/release/examples/score_bench"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
data="$work/data"
"$esg" --data-dir "$data" ingest --company "$company" --year "$year" "$report" | tail -n 1
echo "machine: $(nproc) CPU(s), $(uname -sr)"
echo
echo "== in process ($reps repetitions)"
"$bench" --data-dir "$data" --company "$company" --year "$year" --reps "$reps" --as-of 2025-06

echo
echo "== whole process: esg score --format json ($proc_reps runs)"
"$esg" --data-dir "$data" score --company "$company" --year "$year" --format json --as-of 2025-06 >"$work/first.json"
times=()
for _ in $(seq "$proc_reps"); do
  s=$(date +%s%N)
  "$esg" --data-dir "$data" score --company "$company" --year "$year" --format json --as-of 2025-06 >"$work/out.json"
  e=$(date +%s%N)
  cmp -s "$work/first.json" "$work/out.json" || { echo "output changed between runs"; exit 1; }
  times+=($(( (e - s) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$proc_reps" '
  { v[NR] = $1; sum += $1 }
  END {
    p50 = v[int(0.5 * n + 0.999999)]; p99 = v[int(0.99 * n + 0.999999)];
    printf "%-16s %6s %9s %9s %9s %9s\n", "step", "n", "p50_ms", "p99_ms", "max_ms", "mean_ms";
    printf "%-16s %6d %9.2f %9.2f %9.2f %9.2f\n", "esg score", n, p50 / 1000, p99 / 1000, v[n] / 1000, sum / n / 1000;
  }'
echo "(output byte-identical over all $proc_reps runs; $(wc -c <"$work/first.json") bytes of JSON)"
