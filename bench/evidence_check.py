#!/usr/bin/env python3
"""Can a reader find our evidence? Quotes on their cited page, and pages kept.

Issue 12. Every PDF of the corpus manifest is ingested by the real `esg`
binary into a temporary data dir, every company-year is scored
(`esg score --format json`, as of --as-of), and two things are measured
against two independent extractors, poppler's `pdftotext` (what `less` and
many viewers show) and pdfium (Chrome's PDF viewer, through `pypdfium2`):

1. Quotes: each distinct PDF quote (document, page, text) is looked up on its
   cited page. Both sides are token-normalised (NFKC, lowercase, runs of
   letters and digits; a word hyphenated at a line end is joined, and the
   unjoined reading is tried as well, so `well-\\nbeing` matches both
   "wellbeing" and "well being"; a compound in the quote, `Climate-Related`,
   is tried joined as well, since pdftotext drops the hyphen of a compound
   it finds cut at a line end); a quote is found when its token sequence is
   a contiguous run of the page's. Reported: found by pdftotext, by pdfium,
   by both, by neither.

2. Pages kept: per page, token recall of the stored page text (read from the
   store's `pages` table) against pdftotext's text of that page (multiset
   overlap of lowercase alphanumeric tokens). `recall` compares with
   pdftotext's text put through our own clean-up (ingested as a form-feed
   paged text file), so both sides lose the same running headers and page
   numbers; `raw_rec` compares with pdftotext's raw output. A page with at
   least --min-page-words words in pdftotext that keeps < 20 % of them
   (against the cleaned reference) is listed as lost.

Usage: bench/evidence_check.sh [--esg PATH] [--as-of YYYY-MM] [--json FILE]
(the wrapper makes a throw-away venv with pypdfium2; run this file directly
when `import pypdfium2` works). Needs pdftotext (poppler-utils) and the corpus
(ESG_CORPUS_DIR, default ../shared/corpus). Exit status 0, or 1 when
--min-both is given and the share of quotes found by both is lower.
"""
import argparse, collections, json, os, re, shutil, sqlite3, subprocess, sys, tempfile, unicodedata

import corpus as bench_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORD = re.compile(r"[^\W_]+")
# A word cut by a hyphen at a line end (pdftotext keeps the hyphen and the
# newline).
EOL_HYPHEN = re.compile(r"([^\W\d_])[-\u2010\u00ad\u0002\ufffe]\s*\r?\n\s*(?=[^\W\d_])")
# pdfium marks a hyphen it considers a line-end break with U+0002 or U+FFFE
# (its text is `Audit Com\ufffemittee`, the line break already taken away).
PDFIUM_SOFT = re.compile(r"[\u0002\ufffe]\s*")


def norm(text):
    return unicodedata.normalize("NFKC", text).lower()


def tokens(text):
    return WORD.findall(norm(text))


def page_variants(text):
    """Token lists of a page's text: hyphens at line ends joined, and not."""
    t = norm(text)
    joined = EOL_HYPHEN.sub(r"\1", t)
    joined = PDFIUM_SOFT.sub("", joined)
    return [WORD.findall(joined), WORD.findall(PDFIUM_SOFT.sub("-", t))]


# A hyphen between letters in a quote: where the PDF broke a compound across
# lines (`Climate-` + `Related`), pdftotext joins the two words and drops
# the hyphen ("ClimateRelated"), so the quote is also tried that way.
QUOTE_HYPHEN = re.compile(r"([^\W\d_])[-\u2010]\s*(?=[^\W\d_])")


def quote_variants(quote):
    """Token lists of a quote: as it is, and with its compounds joined."""
    t = norm(quote)
    return [WORD.findall(t), WORD.findall(QUOTE_HYPHEN.sub(r"\1", t))]


def contains(hay, needle):
    """`needle` (a token list) is a contiguous run of `hay`."""
    if not needle:
        return True
    if len(needle) > len(hay):
        return False
    joined = " " + " ".join(hay) + " "
    return (" " + " ".join(needle) + " ") in joined


def pdftotext_pages(path):
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", path, "-"], capture_output=True, check=True).stdout
    pages = out.decode("utf-8", "replace").split("\f")
    if pages and not pages[-1].strip():
        pages.pop()
    return pages


def pdfium_pages(path):
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    pages = []
    for i in range(len(doc)):
        page = doc[i]
        tp = page.get_textpage()
        pages.append(tp.get_text_range())
        tp.close()
        page.close()
    doc.close()
    return pages


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode not in (0, 2):
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r


def stored_pages(data_dir):
    db = sqlite3.connect(os.path.join(data_dir, "esg.sqlite3"))
    out = collections.defaultdict(dict)
    for doc_id, page, text in db.execute(
        "SELECT d.doc_id, p.page, p.text FROM pages p JOIN documents d ON d.id = p.document"
    ):
        out[doc_id][page] = text
    db.close()
    return out


def walk_evidence(node, found):
    """Every evidence record in a scorecard (a dict with quote, page, doc_id)."""
    if isinstance(node, dict):
        if "quote" in node and "page" in node and "doc_id" in node:
            found.append(node)
        for v in node.values():
            walk_evidence(v, found)
    elif isinstance(node, list):
        for v in node:
            walk_evidence(v, found)


def recall(ours, ref):
    a, b = collections.Counter(tokens(ours)), collections.Counter(tokens(ref))
    return sum((a & b).values()), sum(b.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--esg", default=os.environ.get("ESG_BIN"), help="esg binary (default: cargo build -p esg-cli, debug)")
    ap.add_argument("--as-of", default="2025-06", help="scoring month (freshness rule), default 2025-06")
    ap.add_argument("--min-page-words", type=int, default=20, help="pages with fewer pdftotext words are not judged lost")
    ap.add_argument("--json", help="write the measurements to this file")
    ap.add_argument("--min-both", type=float, help="exit 1 when the %% of quotes found by both is below this")
    ap.add_argument("--keep", help="keep the data dir here instead of a temporary one")
    ap.add_argument("--show-misses", type=int, default=0, help="print up to N quotes not found by both")
    args = ap.parse_args()

    corpus = bench_corpus.corpus_dir()
    bench_corpus.require_pdftotext()
    import pypdfium2  # noqa: F401  (fail early, before ingesting)

    esg = args.esg
    if not esg:
        subprocess.run(["cargo", "build", "-q", "-p", "esg-cli"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        esg = os.path.join(target, "debug", "esg")
    rows = bench_corpus.pdf_rows(corpus)
    work = args.keep or tempfile.mkdtemp(prefix="esg-evidence-")
    data, ref_data = os.path.join(work, "data"), os.path.join(work, "ref")
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(ref_data, ignore_errors=True)

    docs = {}  # doc_id -> {row, ptt pages, pdfium pages, ref doc_id}
    for r in rows:
        path = os.path.join(corpus, r["file"])
        out = run([esg, "--data-dir", data, "ingest", "--json", "--company", r["company"], "--year", r["year"], path])
        res = json.loads(out.stdout.strip().splitlines()[-1])
        if res["status"] == "failed":
            print(f"ingest failed: {r['file']}: {res['error']}", file=sys.stderr)
            continue
        ptt = pdftotext_pages(path)
        # Reference: pdftotext's text through our own clean-up.
        txt = os.path.join(work, os.path.basename(path) + ".txt")
        with open(txt, "w") as f:
            f.write("\f".join(ptt))
        ref = json.loads(
            run([esg, "--data-dir", ref_data, "ingest", "--json", "--company", "ref " + r["company"], "--year", r["year"], txt]).stdout.strip().splitlines()[-1]
        )
        docs[res["doc_id"]] = {
            "file": os.path.basename(r["file"]),
            "company": r["company"],
            "year": r["year"],
            "ptt": ptt,
            "pdfium": pdfium_pages(path),
            "ref_id": ref.get("doc_id"),
            "warnings": res.get("warnings", []),
        }

    quotes = {}  # (doc_id, page, quote) -> record
    for company, year in sorted({(d["company"], d["year"]) for d in docs.values()}):
        out = run([esg, "--data-dir", data, "score", "--company", company, "--year", year, "--format", "json", "--as-of", args.as_of])
        found = []
        walk_evidence(json.loads(out.stdout), found)
        for e in found:
            if e["doc_id"] in docs:
                quotes.setdefault((e["doc_id"], e["page"], e["quote"]), e)

    # Quotes on their cited page.
    per_doc = collections.defaultdict(lambda: collections.Counter())
    variants = {}
    misses = []
    for (doc_id, page, quote), e in sorted(quotes.items()):
        d = docs[doc_id]
        qs = quote_variants(quote)
        hit = {}
        for eng in ("ptt", "pdfium"):
            key = (doc_id, page, eng)
            if key not in variants:
                text = d[eng][page - 1] if 0 < page <= len(d[eng]) else ""
                variants[key] = page_variants(text)
            hit[eng] = any(contains(v, q) for v in variants[key] for q in qs)
        c = per_doc[doc_id]
        c["quotes"] += 1
        c["ptt"] += hit["ptt"]
        c["pdfium"] += hit["pdfium"]
        c["both"] += hit["ptt"] and hit["pdfium"]
        c["neither"] += not (hit["ptt"] or hit["pdfium"])
        if not (hit["ptt"] and hit["pdfium"]):
            misses.append((d["file"], page, hit, quote))

    # Pages kept.
    ours, refs = stored_pages(data), stored_pages(ref_data)
    lost = []
    rec = {}
    for doc_id, d in docs.items():
        inter = total = raw_inter = raw_total = 0
        for i, ptt in enumerate(d["ptt"]):
            n = i + 1
            mine = ours[doc_id].get(n, "")
            ref = refs.get(d["ref_id"], {}).get(n, "")
            a, b = recall(mine, ref)
            ra, rb = recall(mine, ptt)
            inter, total, raw_inter, raw_total = inter + a, total + b, raw_inter + ra, raw_total + rb
            if rb >= args.min_page_words and (b == 0 or a < 0.2 * b):
                lost.append((d["file"], n, a, b, rb))
        rec[doc_id] = (inter / total if total else 1.0, raw_inter / raw_total if raw_total else 1.0, len(d["ptt"]))

    head = f"{'document':<56} {'pages':>5} {'quotes':>6} {'ptt':>6} {'pdfium':>6} {'both':>6} {'none':>5} {'recall':>7} {'raw_rec':>7}"
    print(head)
    print("-" * len(head))
    tot = collections.Counter()
    for doc_id, d in sorted(docs.items(), key=lambda kv: kv[1]["file"]):
        c = per_doc[doc_id]
        tot.update(c)
        r, rr, np_ = rec[doc_id]
        pct = lambda k: f"{100 * c[k] / c['quotes']:.1f}" if c["quotes"] else "-"
        print(f"{d['file'][:56]:<56} {np_:>5} {c['quotes']:>6} {pct('ptt'):>6} {pct('pdfium'):>6} {pct('both'):>6} {c['neither']:>5} {r:>7.3f} {rr:>7.3f}")
    n = tot["quotes"]
    share = {k: (100 * tot[k] / n if n else 0.0) for k in ("ptt", "pdfium", "both", "neither")}
    print("-" * len(head))
    print(f"quotes: {n}; found on the cited page by pdftotext {share['ptt']:.1f} %, pdfium {share['pdfium']:.1f} %, both {share['both']:.1f} %, neither {share['neither']:.1f} %")
    worst = min(rec.items(), key=lambda kv: kv[1][0]) if rec else None
    if worst:
        print(f"token recall against cleaned pdftotext: lowest {worst[1][0]:.3f} ({docs[worst[0]]['file']}); pages: {sum(v[2] for v in rec.values())}")
    print(f"lost pages (< 20 % of pdftotext's words, pdftotext >= {args.min_page_words} words): {len(lost)}")
    for f, p, a, b, rb in lost:
        print(f"  {f} p{p}: kept {a} of {b} words ({rb} raw)")
    for d in docs.values():
        for w in d["warnings"]:
            print(f"  warning {d['file']}: {w}")
    for f, p, hit, q in misses[: args.show_misses]:
        print(f"  miss {f} p{p} ptt={int(hit['ptt'])} pdfium={int(hit['pdfium'])}: {q}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "quotes": n,
                    "share": share,
                    "lost_pages": [{"file": f, "page": p, "kept": a, "words": b} for f, p, a, b, _ in lost],
                    "recall": {docs[k]["file"]: {"recall": v[0], "raw_recall": v[1], "pages": v[2]} for k, v in rec.items()},
                    "misses": [{"file": f, "page": p, "pdftotext": hit["ptt"], "pdfium": hit["pdfium"], "quote": q} for f, p, hit, q in misses],
                },
                fh,
                indent=1,
                sort_keys=True,
            )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if args.min_both is not None and share["both"] < args.min_both:
        print(f"FAIL: {share['both']:.1f} % of quotes found by both < {args.min_both} %")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
