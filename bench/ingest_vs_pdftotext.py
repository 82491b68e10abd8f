#!/usr/bin/env python3
"""Ingestion speed and text quality of `esg ingest` against poppler's pdftotext.

For every PDF report in the corpus manifest, measured side by side in one run:
  - wall time of `pdftotext FILE OUT` and of `esg ingest FILE` into a fresh
    data dir (extraction in the sandboxed worker + clean-up + chunking + the
    SQLite transaction), best of N runs each;
  - token recall and precision of our stored page text against pdftotext's,
    per page (lowercase alphanumeric tokens, multiset overlap), summed per
    document. `recall`/`precis` compare with pdftotext's text put through the
    same clean-up (it is ingested as a form-feed-paged text file), so both
    sides lose the same running headers and page numbers; `raw_rec` compares
    with pdftotext's raw output, so the gap between the two is what our
    boilerplate removal takes away on purpose.

With `--pymupdf PYTHON` (a Python that has PyMuPDF; bench/ingest_vs_pdftotext.sh
makes one in a throw-away venv) a third reader is timed: open the file and
call `page.get_text()` on every page, best of N, timed inside one Python
process (its start and `import pymupdf` take ~0.75 s, which would swamp the
small files), so PyMuPDF gets no process or storage cost while esg's time
has both; `esg/mu` is esg's pages/s over PyMuPDF's (goal >= 1.0).
`--esg PATH` times that binary instead of building one; `--base PATH` also
times an older build on the same files, interleaved run by run with `esg`
(base, esg, base, esg, ...) so drift of a shared machine hits both alike,
and prints `base p/s` and `esg/base` (and `base/mu`). `esg cpu` is the
CPU time of esg's best run (all threads, the worker included), as `esg`
reads a PDF's pages with one thread per core; `--one-thread` also times
`ESG_EXTRACT_THREADS=1` (columns `esg1 p/s`, `esg1/mu`) and checks that the
stored text is the same both ways.

Usage: python3 bench/ingest_vs_pdftotext.py [--runs N] [--pymupdf PYTHON] [--one-thread] [--esg PATH] [--base PATH]
Needs: pdftotext (Debian poppler-utils), the corpus (ESG_CORPUS_DIR or
../shared/corpus), a release build (made here with cargo, in CARGO_TARGET_DIR
when set).
"""
import argparse, collections, os, re, resource, shutil, sqlite3, subprocess, sys, tempfile, time

import corpus as bench_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text):
    return collections.Counter(TOKEN.findall(text.lower()))


def best_time(cmd, runs, before=None, env=None, cpu=False):
    """Best wall time of `runs` runs; with cpu=True, (wall, CPU seconds of
    that run, user + system, summed over the process and the children it
    waited for: esg's extraction worker and its threads)."""
    best = None
    for _ in range(runs):
        if before:
            before()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}: {r.stderr.decode()[:500]}")
        c = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if best is None or dt < best[0]:
            best = (dt, c)
    return best if cpu else best[0]


def best_times_interleaved(cmds, runs, before=None):
    """Best wall time and its CPU seconds for each of `cmds`, run in turn
    (cmd 0, cmd 1, cmd 0, ...) `runs` times each."""
    best = [None] * len(cmds)
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            t = best_time(cmd, 1, before, cpu=True)
            if best[i] is None or t[0] < best[i][0]:
                best[i] = t
    return best


PYMUPDF_TEXT = """
import sys, time, pymupdf
best = None
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    doc = pymupdf.open(sys.argv[1])
    n = sum(len(page.get_text()) for page in doc)
    doc.close()
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(best)
"""


def pymupdf_time(python, path, runs):
    """Best of `runs` in one process: open + get_text() of every page, not
    counting the interpreter's start and the import (~0.75 s here, more than
    most documents take)."""
    r = subprocess.run([python, "-c", PYMUPDF_TEXT, path, str(runs)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"PyMuPDF failed on {path}: {r.stderr[:500]}")
    return float(r.stdout.strip())


def stored_pages(data):
    db = sqlite3.connect(os.path.join(data, "esg.sqlite3"))
    pages = [t for (t,) in db.execute("SELECT p.text FROM pages p JOIN documents d ON d.id = p.document ORDER BY p.page")]
    db.close()
    return pages


def overlap(ours, theirs):
    inter = n_ours = n_theirs = 0
    for i in range(max(len(ours), len(theirs))):
        a = tokens(ours[i]) if i < len(ours) else collections.Counter()
        b = tokens(theirs[i]) if i < len(theirs) else collections.Counter()
        inter += sum((a & b).values())
        n_ours += sum(a.values())
        n_theirs += sum(b.values())
    return (inter / n_theirs if n_theirs else 1.0), (inter / n_ours if n_ours else 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--esg", metavar="PATH", help="the esg binary to time (default: build a release one)")
    ap.add_argument("--base", metavar="PATH", help="an older esg binary timed interleaved with --esg on the same files")
    ap.add_argument("--pymupdf", metavar="PYTHON", help="a Python interpreter that has PyMuPDF: adds a PyMuPDF column")
    ap.add_argument(
        "--one-thread",
        action="store_true",
        help="also time esg with ESG_EXTRACT_THREADS=1 (one thread reads a PDF's pages), and check that it stores the same text",
    )
    args = ap.parse_args()
    corpus = bench_corpus.corpus_dir()
    bench_corpus.require_pdftotext()
    if args.esg:
        esg = os.path.abspath(args.esg)
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "esg-cli"], cwd=ROOT, check=True)
        esg = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "esg")
    base = os.path.abspath(args.base) if args.base else None
    rows = bench_corpus.pdf_rows(corpus)
    work = tempfile.mkdtemp(prefix="esg-bench-")
    data = os.path.join(work, "data")
    print(f"{len(rows)} PDFs, best of {args.runs} runs each; pdftotext {subprocess.run(['pdftotext', '-v'], capture_output=True, text=True).stderr.splitlines()[0]}")
    mu = args.pymupdf
    if mu:
        v = subprocess.run([mu, "-c", "import pymupdf; print(pymupdf.__version__)"], capture_output=True, text=True, check=True).stdout.strip()
        print(f"PyMuPDF {v} ({mu})")
    mu_head = f" {'mu s':>7} {'mu p/s':>7} {'esg/mu':>6}" if mu else ""
    one_head = f" {'esg1 p/s':>8} {'esg1/mu':>7}" if args.one_thread else ""
    base_head = f" {'base p/s':>8} {'esg/base':>8}" + (f" {'base/mu':>7}" if mu else "") if base else ""
    head = f"{'document':<48} {'pages':>5} {'pdftotext s':>11} {'esg s':>7} {'esg cpu':>7} {'ptt p/s':>8} {'esg p/s':>8} {'esg/ptt':>7}{mu_head}{one_head}{base_head} {'recall':>7} {'precis':>7} {'raw_rec':>7}"
    print(f"esg cpu: CPU seconds (user + system, all threads and the worker) of esg's best run; esg1: ESG_EXTRACT_THREADS=1; {os.cpu_count()} cores")
    print(head)
    print("-" * len(head))
    tot_p = tot_e = tot_m = tot_c = tot_1 = tot_b = 0.0
    differ = []
    tot_pages = 0
    recalls = []
    for r in rows:
        path = os.path.join(corpus, r["file"])
        name = os.path.basename(path)
        out_txt = os.path.join(work, name + ".txt")
        t_ptt = best_time(["pdftotext", "-enc", "UTF-8", path, out_txt], args.runs)

        def fresh():
            shutil.rmtree(data, ignore_errors=True)

        ingest = [esg, "--data-dir", data, "ingest", "--company", r["company"], "--year", r["year"], path]
        t_one = None
        if args.one_thread:
            t_one = best_time(ingest, args.runs, fresh, env={**os.environ, "ESG_EXTRACT_THREADS": "1"})
            one_pages = stored_pages(data)
        t_base = None
        if base:
            (t_base, _), (t_esg, c_esg) = best_times_interleaved([[base] + ingest[1:], ingest], args.runs, fresh)
        else:
            t_esg, c_esg = best_time(ingest, args.runs, fresh, cpu=True)
        t_mu = pymupdf_time(mu, path, args.runs) if mu else None
        ours = stored_pages(data)
        if args.one_thread and ours != one_pages:
            differ.append(name)
        raw = open(out_txt, encoding="utf-8", errors="replace").read()
        theirs_raw = raw.split("\f")
        if theirs_raw and not theirs_raw[-1].strip():
            theirs_raw = theirs_raw[:-1]
        # pdftotext's text through our clean-up: ingest it as a paged text file.
        ref_txt = os.path.join(work, name + ".ref.txt")
        open(ref_txt, "w", encoding="utf-8").write("\f".join(theirs_raw))
        ref_data = os.path.join(work, "ref")
        shutil.rmtree(ref_data, ignore_errors=True)
        subprocess.run([esg, "--data-dir", ref_data, "ingest", "--company", "Reference", "--year", r["year"], ref_txt], check=True, stdout=subprocess.DEVNULL)
        theirs = stored_pages(ref_data)
        recall, precision = overlap(ours, theirs)
        raw_recall, _ = overlap(ours, theirs_raw)
        recalls.append((recall, name))
        pages = int(r["pages"])
        tot_p += t_ptt
        tot_e += t_esg
        tot_c += c_esg
        tot_pages += pages
        mu_cols = f" {t_mu:>7.3f} {pages / t_mu:>7.0f} {t_mu / t_esg:>6.2f}" if mu else ""
        one_cols = f" {pages / t_one:>8.0f} {(t_mu / t_one if mu else float('nan')):>7.2f}" if args.one_thread else ""
        base_cols = f" {pages / t_base:>8.0f} {t_base / t_esg:>8.2f}" + (f" {t_mu / t_base:>7.2f}" if mu else "") if base else ""
        print(f"{name[:48]:<48} {pages:>5} {t_ptt:>11.3f} {t_esg:>7.3f} {c_esg:>7.3f} {pages / t_ptt:>8.0f} {pages / t_esg:>8.0f} {t_esg / t_ptt:>7.2f}{mu_cols}{one_cols}{base_cols} {recall:>7.3f} {precision:>7.3f} {raw_recall:>7.3f}")
        if mu:
            tot_m += t_mu
        if args.one_thread:
            tot_1 += t_one
        if base:
            tot_b += t_base
    print("-" * len(head))
    mu_tot = f" {tot_m:>7.3f} {tot_pages / tot_m:>7.0f} {tot_m / tot_e:>6.2f}" if mu else ""
    one_tot = f" {tot_pages / tot_1:>8.0f} {(tot_m / tot_1 if mu else float('nan')):>7.2f}" if args.one_thread else ""
    base_tot = f" {tot_pages / tot_b:>8.0f} {tot_b / tot_e:>8.2f}" + (f" {tot_m / tot_b:>7.2f}" if mu else "") if base else ""
    print(f"{'TOTAL':<48} {tot_pages:>5} {tot_p:>11.3f} {tot_e:>7.3f} {tot_c:>7.3f} {tot_pages / tot_p:>8.0f} {tot_pages / tot_e:>8.0f} {tot_e / tot_p:>7.2f}{mu_tot}{one_tot}{base_tot}")
    if base:
        print(f"base: {base}, timed interleaved with {esg}")
    if args.one_thread:
        print(f"stored text with one thread and with several: {'the same for every document' if not differ else 'DIFFERENT for ' + ', '.join(differ)}")
    if mu:
        print(f"CPU time per page: esg {1000 * tot_c / tot_pages:.2f} ms, PyMuPDF (wall, one thread) {1000 * tot_m / tot_pages:.2f} ms")
    worst = min(recalls)
    print(f"lowest token recall: {worst[0]:.3f} ({worst[1]}); goal >= 0.97 on every report; total time goal esg/pdftotext <= 1.5")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
