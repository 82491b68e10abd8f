#!/usr/bin/env bash
# Chunk size and overlap, measured on the stored page text of the corpus PDFs.
# Usage: bench/chunking.sh   (needs ../shared/corpus or ESG_CORPUS_DIR; python3)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
[ -f "$corpus/manifest.csv" ] || { echo "corpus not found at $corpus (set ESG_CORPUS_DIR)"; exit 1; }
cargo build --release -q -p esg-cli
cargo build --release -q -p esg-core --example chunk_stats
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# Ingest every real PDF report (company/year do not matter here), then dump
# each document's stored pages, form-feed separated.
for f in "$corpus"/reports/*.pdf; do
  target/release/esg --data-dir "$work/data" ingest --company Bench --year 2022 "$f" >/dev/null || true
done
python3 - "$work" <<'PY'
import sqlite3, sys, os
w = sys.argv[1]
c = sqlite3.connect(os.path.join(w, "data", "esg.sqlite3"))
for doc_id, name in c.execute("SELECT id, filename FROM documents WHERE media_type = 'application/pdf'"):
    pages = [t for (t,) in c.execute("SELECT text FROM pages WHERE document = ? ORDER BY page", (doc_id,))]
    open(os.path.join(w, name + ".pages"), "w").write("\f".join(pages))
PY
files=("$work"/*.pages)
echo "${#files[@]} documents; chunk sizes in words"
printf '%-7s %-5s %-5s %-8s | %7s %8s %7s %5s %9s %14s\n' target min max overlap chunks per_page mean_w p95_w overhead pairs_together
for cfg in "60 30 120 0" "60 30 120 20" "120 60 240 0" "120 60 240 30" "120 60 240 60" "200 100 400 0" "200 100 400 40" "300 150 600 0" "300 150 600 60"; do
  read -r t mi ma o <<<"$cfg"
  IFS=$'\t' read -r c pp m p95 ov pt < <(target/release/examples/chunk_stats "$t" "$mi" "$ma" "$o" "${files[@]}")
  printf '%-7s %-5s %-5s %-8s | %7s %8s %7s %5s %9s %14s\n' "$t" "$mi" "$ma" "$o" "$c" "$pp" "$m" "$p95" "$ov" "$pt"
done
