#!/usr/bin/env python3
"""Are blocks stored in the order a reader takes them? Agreement with poppler.

Issue 12. Every PDF of the corpus manifest is ingested by each given `esg`
binary into a temporary data dir. For each page, each stored layout block
(running headers and footers aside) is looked up in poppler's `pdftotext`
text of that page, which orders text by position with its own algorithm:
the block's first line, letters and digits only, lowercase, its first 40
characters, when at least 16 long and found exactly once. The score is the
share of pairs of located blocks that the store lists in the same order as
pdftotext's text (1.0: the same reading order; content-stream order, what
pdfium reads, scores whatever the producer drew). pdftotext is not ground
truth (it reads some tables row by row and some column by column), so this
compares orders; the checked ground truth is `esg-ingest/tests/layout_pdf.rs`.

Usage: bench/reading_order.py --esg PATH [--esg PATH ...]
Needs pdftotext (poppler-utils) and the corpus (ESG_CORPUS_DIR, default
../shared/corpus). Prints one table: per document and in total, the share
for each binary, side by side.
"""
import argparse, functools, json, os, re, shutil, sqlite3, subprocess, tempfile

import corpus as bench_corpus

KEY_LEN, MIN_KEY = 40, 16


def norm(s):
    return re.sub(r"[^0-9a-z]", "", s.lower())


@functools.lru_cache(maxsize=None)
def poppler_page(path, page):
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-f", str(page), "-l", str(page), path, "-"],
        capture_output=True, check=True,
    ).stdout
    return norm(out.decode("utf-8", "replace"))


def agreement(esg, rows, corpus):
    """Per file: (pairs in pdftotext's order, located pairs)."""
    work = tempfile.mkdtemp(prefix="esg-order-")
    try:
        data = os.path.join(work, "data")
        for r in rows:
            subprocess.run(
                [esg, "--data-dir", data, "ingest", "--company", r["company"], "--year", r["year"],
                 os.path.join(corpus, r["file"])],
                check=True, stdout=subprocess.DEVNULL,
            )
        paths = {os.path.basename(r["file"]): os.path.join(corpus, r["file"]) for r in rows}
        db = sqlite3.connect(os.path.join(data, "esg.sqlite3"))
        per = {}
        for fn, page, layout in db.execute(
            "SELECT d.filename, p.page, p.layout FROM pages p JOIN documents d ON d.id = p.document "
            "WHERE p.layout IS NOT NULL ORDER BY 1, 2"
        ):
            ref = poppler_page(paths[fn], page)
            pos = []
            for b in json.loads(layout)["blocks"]:
                if b.get("kind") == "running":
                    continue
                key = norm(b["lines"][0]["text"])[:KEY_LEN]
                if len(key) >= MIN_KEY and ref.count(key) == 1:
                    pos.append(ref.find(key))
            same = sum(1 for i in range(len(pos)) for j in range(i + 1, len(pos)) if pos[i] < pos[j])
            n = len(pos) * (len(pos) - 1) // 2
            acc = per.setdefault(fn, [0, 0])
            acc[0] += same
            acc[1] += n
        db.close()
        return per
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--esg", action="append", required=True, help="esg binary (repeat to compare builds)")
    args = ap.parse_args()
    corpus = bench_corpus.corpus_dir()
    bench_corpus.require_pdftotext()
    rows = bench_corpus.pdf_rows(corpus)
    results = [agreement(e, rows, corpus) for e in args.esg]
    names = [f"esg {i + 1}" for i in range(len(args.esg))]
    for n, e in zip(names, args.esg):
        print(f"{n}: {e}")
    print(f"{'document':50} " + " ".join(f"{n:>16}" for n in names))
    files = sorted(set().union(*results))
    for f in files:
        cells = []
        for res in results:
            same, n = res.get(f, (0, 0))
            cells.append(f"{100 * same / n:6.1f} % of {n:5}" if n else f"{'-':>16}")
        print(f"{f[:50]:50} " + " ".join(cells))
    totals = []
    for res in results:
        same = sum(v[0] for v in res.values())
        n = sum(v[1] for v in res.values())
        totals.append(f"{100 * same / max(n, 1):6.1f} % of {n:5}")
    print(f"{'all':50} " + " ".join(totals))


if __name__ == "__main__":
    main()
