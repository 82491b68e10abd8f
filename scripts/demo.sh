#!/usr/bin/env bash
# The main job, end to end: build `esg`, ingest the sample report the project
# ships (and, when ../shared/corpus is present, two real reports), show what
# is on file, search it and print its scorecard.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p esg-cli
esg=target/release/esg
export ESG_DATA_DIR="${ESG_DATA_DIR:-$PWD/.esg-data}"
echo "== data dir: $ESG_DATA_DIR"

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
echo "== scorecard"
"$esg" score --company "Northwind Components Ltd"
if [ -d "$corpus/reports" ]; then
  "$esg" score --company "CarMax Inc." --year 2022
fi
