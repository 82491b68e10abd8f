#!/usr/bin/env bash
# Runs bench/ingest_vs_pdftotext.py with a PyMuPDF column: PyMuPDF comes
# from a throw-away Python venv (a PyPI wheel that ships its own MuPDF).
# Arguments are passed on, e.g.:
#
#   CARGO_TARGET_DIR=/var/tmp/esg-target bench/ingest_vs_pdftotext.sh --runs 3
#
# ESG_PYMUPDF_VENV=DIR keeps (and reuses) the venv in DIR instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYMUPDF_VERSION=2.0

. bench/venv.sh
bench_venv "${ESG_PYMUPDF_VENV:-}" pymupdf "pymupdf==$PYMUPDF_VERSION"
python3 bench/ingest_vs_pdftotext.py --pymupdf "$VENV_PYTHON" "$@"
