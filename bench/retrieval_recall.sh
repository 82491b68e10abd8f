#!/usr/bin/env bash
# Retrieval quality on data we have (issue 13): BM25 alone, semantic alone
# (the real all-MiniLM-L6-v2 through esg-embed's LocalEmbedder) and hybrid
# (esg_score::fuse, alpha 0.0..1.0 in steps of 0.1, and reciprocal-rank
# fusion) on the TCFD-labelled sentences.
#
#   corpus : the 593 rows of labels/tcfd_disclosures.csv, one passage each
#   queries: its 11 distinct questions, asked as written
#   relevant to a question: the passages with that question's label
#
# Prints markdown tables: recall@10 = relevant in the top 10 divided by
# min(10, relevant count) (every question has >= 34 relevant passages, so
# this equals precision@10), mean over the 11 questions; hit@10 = questions
# with any relevant passage in the top 10; R-precision = relevant in the
# top R divided by R, R = the question's relevant count. Then recall@10 per
# question for BM25, semantic, the DEFAULT_ALPHA hybrid and RRF. The
# rankings are the product's own functions (see
# crates/esg-cli/examples/retrieval_recall.rs); the result is deterministic
# (no timing in it), so one run is enough.
#
# Usage: bench/retrieval_recall.sh
#   env: ALPHA_STEPS (default 10: alpha 0.0, 0.1, .., 1.0), ESG_MODEL_DIR (default <data-dir>/models/all-MiniLM-L6-v2; installed
#        with scripts/fetch-model.sh when absent), ESG_CORPUS_DIR (default
#        ../shared/corpus), THREADS (embedder threads, default: all),
#        CARGO_TARGET_DIR, NO_BUILD
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=retrieval_recall
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
data_dir="${ESG_DATA_DIR:-$HOME/.local/share/esg-scoring-api}"
model="${ESG_MODEL_DIR:-$data_dir/models/all-MiniLM-L6-v2}"
target="${CARGO_TARGET_DIR:-target}"
labels="$corpus/labels/tcfd_disclosures.csv"

[ -f "$labels" ] || { echo "$BENCH: $labels not found (set ESG_CORPUS_DIR)" >&2; exit 1; }
[ -f "$model/model.safetensors" ] || scripts/fetch-model.sh "$model"

if [ -z "${NO_BUILD:-}" ]; then
  echo "$BENCH: building the release example retrieval_recall..." >&2
  cargo build --release --quiet -p esg-cli --example retrieval_recall
fi

args=(--labels "$labels" --model "$model")
[ -n "${THREADS:-}" ] && args+=(--threads "$THREADS")
args+=(--alpha-steps "${ALPHA_STEPS:-10}")
echo "$BENCH: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$target/release/examples/retrieval_recall" "${args[@]}"
