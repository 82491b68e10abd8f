#!/usr/bin/env bash
# Runs bench/evidence_check.py in a throw-away Python venv that has pypdfium2
# (pdfium, the engine of Chrome's PDF viewer, as a PyPI wheel that ships its
# own libpdfium). pdftotext comes from poppler-utils (apt-get install -y
# poppler-utils). Arguments are passed on, e.g.:
#
#   bench/evidence_check.sh --show-misses 20 --json /tmp/evidence.json
#
# ESG_EVIDENCE_VENV=DIR keeps (and reuses) the venv in DIR instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYPDFIUM2_VERSION=5.15.2

command -v pdftotext >/dev/null || { echo "evidence_check: pdftotext missing (apt-get install -y poppler-utils)" >&2; exit 1; }
. bench/venv.sh
bench_venv "${ESG_EVIDENCE_VENV:-}" pypdfium2 "pypdfium2==$PYPDFIUM2_VERSION"
"$VENV_PYTHON" bench/evidence_check.py "$@"
