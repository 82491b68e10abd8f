"""What the corpus benches share: the corpus and its PDF rows, pdftotext.

Imported by bench/evidence_check.py, bench/ingest_vs_pdftotext.py and
bench/reading_order.py (Python puts a script's own folder on `sys.path`).
"""
import csv, os, shutil, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus_dir():
    """ESG_CORPUS_DIR, default ../shared/corpus; exits when it has no manifest."""
    corpus = os.environ.get("ESG_CORPUS_DIR", os.path.join(ROOT, "..", "shared", "corpus"))
    if not os.path.isfile(os.path.join(corpus, "manifest.csv")):
        sys.exit(f"corpus not found at {corpus} (set ESG_CORPUS_DIR)")
    return corpus


def pdf_rows(corpus):
    """The manifest's PDF rows (file, company, year, ...)."""
    with open(os.path.join(corpus, "manifest.csv")) as f:
        return [r for r in csv.DictReader(f) if r["format"] == "pdf"]


def require_pdftotext():
    """Exits with the package to install when pdftotext is missing."""
    if not shutil.which("pdftotext"):
        sys.exit("pdftotext not found: apt-get install -y poppler-utils")
