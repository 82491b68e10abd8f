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

venv="${ESG_PYMUPDF_VENV:-}"
if [ -z "$venv" ]; then
  venv=$(mktemp -d "${TMPDIR:-/tmp}/esg-pymupdf-venv.XXXXXX")
  trap 'rm -rf "$venv"' EXIT
fi
if ! "$venv/bin/python" -c "import pymupdf" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "pymupdf==$PYMUPDF_VERSION"
fi
python3 bench/ingest_vs_pdftotext.py --pymupdf "$venv/bin/python" "$@"
