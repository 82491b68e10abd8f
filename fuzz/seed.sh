#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs. The third-party files of the
# shared corpus (robustness PDFs, a few report heads) are copied in here and
# never committed (fuzz/corpus is ignored); the small hand-written seeds below
# and the regression inputs in fuzz/regressions/ are ours.
#
#   ESG_CORPUS_DIR=../shared/corpus fuzz/seed.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
corpus="${ESG_CORPUS_DIR:-$root/../shared/corpus}"
out="$here/corpus"
mkdir -p "$out"/{detect_extract,pdf,html,text,http_json}

if [ -d "$corpus/robustness" ]; then
  find "$corpus/robustness" -type f | while read -r f; do
    name="rob-$(basename "$(dirname "$f")")-$(basename "$f")"
    cp "$f" "$out/pdf/$name"
    cp "$f" "$out/detect_extract/$name"
  done
else
  echo "seed.sh: no $corpus/robustness (set ESG_CORPUS_DIR); only our own seeds" >&2
fi
if [ -d "$corpus/reports" ]; then
  # Heads of real HTML reports (the inline-XBRL 10-K, HTML saved as .pdf).
  for f in "$corpus/reports"/*; do
    if head -c 2048 "$f" | grep -qi '<html\|<!doctype html'; then
      name="rep-$(basename "$f")"
      head -c 65536 "$f" > "$out/html/$name"
      cp "$out/html/$name" "$out/detect_extract/$name"
    fi
  done
  for f in "$corpus/reports-text"/*; do
    [ -f "$f" ] || continue
    head -c 16384 "$f" > "$out/text/rep-$(basename "$f")"
  done
fi

# The shipped sample and our own small fixtures.
cp "$root/samples/"*.txt "$out/text/"
cp "$root/samples/"*.txt "$out/detect_extract/"
printf 'Page one. Scope 1 emissions fell 12%%.\fPage two.\n\nAudited by KPMG.\f\fPage four' > "$out/text/formfeed.txt"
printf '\xff\xfeS\x00c\x00o\x00p\x00e\x00 \x001\x00.\x00' > "$out/text/utf16le.txt"
printf 'Caf\xe9 \x93quoted\x94 \x96 single-byte text with enough words to chunk.' > "$out/text/cp1252.txt"
cat > "$out/html/small.html" <<'HTML'
<!DOCTYPE html><html><head><title>Sustainability report</title><style>p{}</style></head>
<body><h1>Climate</h1><p>We cut scope&nbsp;1 emissions by 12%.</p>
<div style="page-break-before: always"><p>Board oversight of climate risk.</p><table><tr><td>2023</td><td>1.2 Mt</td></tr></table></div>
<div hidden>secret</div><ix:header><ix:hidden>0000320193</ix:hidden></ix:header><script>x()</script>
<p style="display:none">gone</p><ul><li>one</li><li>two</li></ul></body></html>
HTML
cat > "$out/html/error.html" <<'HTML'
<html><head><title>500 error</title></head><body><h1>Internal Server Error</h1></body></html>
HTML
cp "$out/html/"*.html "$out/detect_extract/"
cp "$out/text/formfeed.txt" "$out/text/utf16le.txt" "$out/detect_extract/"

# http_json: byte 0 picks the route (0-3 POST /score, 4 /search, 5 /trace,
# 6 /documents, 7 /companies/{body}); then the query, a NUL, the body.
h="$out/http_json"
printf '\x00k=5\x00{"company":"Northwind Traders","year":2024}' > "$h/score-ok"
printf '\x01\x00{"company":"northwind traders","themes":["GOV","CLIM"],"query":"x"}' > "$h/score-themes"
printf '\x02semantic=1&alpha=2\x00{"company":"","year":"2024","themes":[]}' > "$h/score-bad"
printf '\x03\x00{"company":"Northwind Traders","year":99999999999999999999}' > "$h/score-bigyear"
printf '\x00\x00[1,2,{"a":null}]' > "$h/score-array"
printf '\x00\x00{"company":"Nobody Inc"}' > "$h/score-unknown"
printf '\x04company=Northwind%%20Traders&q=scope%%201%%20emissions&k=3' > "$h/search-ok"
printf '\x04company=Northwind+Traders&q=the&year=2024&k=0' > "$h/search-bad"
printf '\x05company=Northwind%%20Traders&year=2024' > "$h/trace-ok"
printf '\x06company=northwind' > "$h/documents"
printf '\x07\x00northwind-traders' > "$h/company"
echo "seeds in $out:"
for t in detect_extract pdf html text http_json; do
  echo "  $t: $(find "$out/$t" -type f | wc -l) files"
done
