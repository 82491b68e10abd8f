#!/usr/bin/env bash
# Embedding throughput and query latency: our local embedder (esg-embed,
# candle) side by side with sentence-transformers (PyTorch) on the same
# texts, same model files, same thread count, in one run.
#
#   chunks : the 593 sentences of labels/tcfd_disclosures.csv plus ~100-word
#            passages cut from reports-text/*.txt (PASSAGES_PER_REPORT from
#            each of the 15 reports); embedded in one call per system
#            (batch BATCH), reported as chunks/s.
#   queries: 200 TCFD sentences of 16-24 words (~27 tokens), embedded one
#            at a time; p50/p95 latency in ms.
#
# sentence-transformers is installed with pip from PyPI into a throw-away
# venv ($ST_VENV, default /var/tmp/esg-bench-st-venv; kept between runs,
# delete it to start over). If that install fails, the recorded reference
# figures (31 chunks/s with 2 threads, 10.5 ms median per query) are printed
# instead, marked "recorded".
#
# Usage: bench/embed_throughput.sh
#   env: THREADS (default 2), BATCH (default 32), ROUNDS (default 1: each
#        system once; more alternates them and reports the median),
#        PASSAGES_PER_REPORT (default 27), ESG_MODEL_DIR, ESG_CORPUS_DIR,
#        CARGO_TARGET_DIR, ST_VENV, NO_BUILD
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=embed_throughput
threads="${THREADS:-2}"
batch="${BATCH:-32}"
rounds="${ROUNDS:-1}"
per_report="${PASSAGES_PER_REPORT:-27}"
corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
data_dir="${ESG_DATA_DIR:-$HOME/.local/share/esg-scoring-api}"
model="${ESG_MODEL_DIR:-$data_dir/models/all-MiniLM-L6-v2}"
venv="${ST_VENV:-/var/tmp/esg-bench-st-venv}"
target="${CARGO_TARGET_DIR:-target}"

[ -f "$corpus/labels/tcfd_disclosures.csv" ] || { echo "$BENCH: corpus not found at $corpus (set ESG_CORPUS_DIR)" >&2; exit 1; }
[ -f "$model/model.safetensors" ] || scripts/fetch-model.sh "$model"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The texts, one per line.
python3 - "$corpus" "$work" "$per_report" <<'PY'
import csv, glob, os, sys
corpus, work, per_report = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = list(csv.DictReader(open(os.path.join(corpus, "labels/tcfd_disclosures.csv"), encoding="utf-8")))
sentences = [" ".join(r["text"].split()) for r in rows]
passages = []
for path in sorted(glob.glob(os.path.join(corpus, "reports-text/*.txt"))):
    words = open(path, encoding="utf-8", errors="replace").read().split()
    pieces = [" ".join(words[i:i + 100]) for i in range(0, len(words) - 99, 100)]
    passages += pieces[:per_report]
chunks = sentences + passages
queries = [s for s in sentences if 16 <= len(s.split()) <= 24][:200]
open(os.path.join(work, "chunks.txt"), "w", encoding="utf-8").write("\n".join(chunks) + "\n")
open(os.path.join(work, "queries.txt"), "w", encoding="utf-8").write("\n".join(queries) + "\n")
print(f"texts: {len(sentences)} TCFD sentences + {len(passages)} report passages of 100 words = {len(chunks)} chunks; {len(queries)} queries", file=sys.stderr)
PY

if [ -z "${NO_BUILD:-}" ]; then
  echo "$BENCH: building the release example embed_bench..." >&2
  cargo build --release --quiet -p esg-embed --example embed_bench
fi
local_bin="$target/release/examples/embed_bench"

# sentence-transformers: the reference implementation's versions (see
# corpus/embeddings/README.md). PyPI's torch wheel for Linux is the CUDA
# build (it pulls the nvidia-* runtime wheels, ~3 GB); it runs on the CPU.
st_ok=1
if ! "$venv/bin/python" -c 'import sentence_transformers, torch' 2>/dev/null; then
  echo "$BENCH: installing sentence-transformers into $venv (torch is large; a few minutes)..." >&2
  if ! { python3 -m venv "$venv" &&
         "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
           "torch==2.15.0" "transformers==5.24.0" "sentence-transformers==6.3.0"; } >"$work/pip.log" 2>&1; then
    tail -5 "$work/pip.log" >&2
    echo "$BENCH: could not install sentence-transformers from PyPI; showing the recorded reference figures" >&2
    st_ok=0
  fi
fi

cat >"$work/st_bench.py" <<'PY'
import json, sys, time
threads, batch, model, chunks_path, queries_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
import torch
torch.set_num_threads(threads)
import sentence_transformers
from sentence_transformers import SentenceTransformer
chunks = open(chunks_path, encoding="utf-8").read().split("\n")[:-1]
queries = open(queries_path, encoding="utf-8").read().split("\n")[:-1]
t = time.perf_counter()
m = SentenceTransformer(model, device="cpu")
load_s = time.perf_counter() - t
m.encode(chunks[:batch], batch_size=batch, normalize_embeddings=True)
for q in queries[:10]:
    m.encode([q], normalize_embeddings=True)
t, c = time.perf_counter(), time.process_time()
v = m.encode(chunks, batch_size=batch, normalize_embeddings=True)
chunk_s, chunk_cpu_s = time.perf_counter() - t, time.process_time() - c
assert len(v) == len(chunks)
lat = []
c = time.process_time()
for q in queries:
    t = time.perf_counter()
    m.encode([q], normalize_embeddings=True)
    lat.append((time.perf_counter() - t) * 1000)
query_cpu_ms = (time.process_time() - c) * 1000 / len(queries)
lat.sort()
pct = lambda p: lat[max(1, -(-len(lat) * p // 100)) - 1]
print(json.dumps({
    "system": f"sentence-transformers {sentence_transformers.__version__} (torch {torch.__version__})",
    "threads": torch.get_num_threads(), "batch": batch, "load_s": load_s,
    "chunks": len(chunks), "chunk_seconds": chunk_s, "chunks_per_s": len(chunks) / chunk_s,
    "chunk_cpu_ms_mean": chunk_cpu_s * 1000 / len(chunks), "query_cpu_ms_mean": query_cpu_ms,
    "queries": len(queries), "query_p50_ms": pct(50), "query_p95_ms": pct(95),
}))
PY

: >"$work/results.jsonl"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
  echo "$BENCH: round $round/$rounds: esg-embed" >&2
  "$local_bin" --model "$model" --chunks "$work/chunks.txt" --queries "$work/queries.txt" \
    --threads "$threads" --batch "$batch" >>"$work/results.jsonl"
  if [ "$st_ok" = 1 ]; then
    echo "$BENCH: round $round/$rounds: sentence-transformers" >&2
    "$venv/bin/python" "$work/st_bench.py" "$threads" "$batch" "$model" \
      "$work/chunks.txt" "$work/queries.txt" 2>"$work/st.err" >>"$work/results.jsonl" ||
      { cat "$work/st.err" >&2; echo "$BENCH: sentence-transformers run failed" >&2; st_ok=0; }
  fi
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work/results.jsonl" "$st_ok" "$threads" "$load_before" "$load_after" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
st_ok, threads = sys.argv[2] == "1", int(sys.argv[3])
print(f"\nper round (chunks/s, query p50 ms, p95 ms; CPU ms per chunk, per query, all threads); load average before {sys.argv[4]}, after {sys.argv[5]}:")
for r in rows:
    print(f"  {r['system']:<50} {r['chunks_per_s']:7.1f} {r['query_p50_ms']:8.2f} {r['query_p95_ms']:8.2f}"
          f" {r['chunk_cpu_ms_mean']:8.1f} {r['query_cpu_ms_mean']:8.1f}")
by = {}
for r in rows:
    by.setdefault(r["system"], []).append(r)
def med(rs, k):
    return statistics.median(r[k] for r in rs)
table = []
for system, rs in by.items():
    table.append((system, rs[0]["threads"], rs[0]["chunks"], med(rs, "chunks_per_s"),
                  med(rs, "query_p50_ms"), med(rs, "query_p95_ms"), len(rs), rs[0],
                  med(rs, "chunk_cpu_ms_mean"), med(rs, "query_cpu_ms_mean")))
if not st_ok or not any(s.startswith("sentence-transformers") for s, *_ in table):
    table.append(("sentence-transformers (recorded, not run here)", 2, None, 31.0, 10.5, None, 0, {}, None, None))
ref = next(t for t in table if t[0].startswith("sentence-transformers"))
local = next(t for t in table if t[0].startswith("esg-embed"))
print(f"\nmedian of the rounds:\n{'system':<52} {'threads':>7} {'chunks':>6} {'chunks/s':>9} {'q p50 ms':>9} {'q p95 ms':>9} {'cpu ms/chunk':>12} {'cpu ms/q':>9} {'runs':>4}")
for s, th, n, cps, p50, p95, runs, _, ccpu, qcpu in table:
    fmt = lambda x, f: "-" if x is None else format(x, f)
    print(f"{s:<52} {th:>7} {fmt(n, 'd'):>6} {cps:>9.1f} {p50:>9.2f} {fmt(p95, '.2f'):>9} {fmt(ccpu, '.1f'):>12} {fmt(qcpu, '.1f'):>9} {runs:>4}")
extra = local[7]
print(f"\nchunk tokens (mean) {extra['chunk_tokens_mean']:.1f}, query tokens (mean) {extra['query_tokens_mean']:.1f}, batch {extra['batch']}, esg-embed CANDLE_NUM_THREADS={extra.get('candle_num_threads', '')}")
ratio = local[3] / ref[3]
print(f"throughput esg-embed / sentence-transformers: {ratio:.2f}x (goal >= 1.0x): {'met' if ratio >= 1.0 else 'MISSED'}")
print(f"query p50 {local[4]:.2f} ms (goal <= 15 ms): {'met' if local[4] <= 15 else 'MISSED'}")
if ref[8] is not None:
    print(f"CPU time per chunk esg-embed / sentence-transformers: {local[8] / ref[8]:.2f}, per query: {local[9] / ref[9]:.2f} (lower is better; less sensitive to other load than wall time)")
PY
