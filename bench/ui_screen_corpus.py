"""Writes N small synthetic text reports for bench/ui_screen.sh and prints
one line per report: company, year, sector, file (tab-separated).

Each report is the sample report's title plus a deterministic pick of its
paragraphs (so stages and grades vary between companies), with the
sample's company name replaced by the synthetic one."""
import os
import random
import sys

sample, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
text = open(sample, encoding="utf-8").read()
paras = [p for p in text.split("\n\n") if p.strip()]
head, body = paras[:3], paras[3:]
sectors = ["Utilities", "Energy", "Materials", "Industrials", "Consumer Staples",
           "Health Care", "Financials", "Information Technology"]
rng = random.Random(16)
for i in range(n):
    name = f"Synthetic Company {i:04d}"
    keep = [p for p in body if rng.random() < 0.6] or body[:1]
    doc = "\n\n".join(head + keep).replace("Northwind Components Ltd", name)
    doc += f"\n\nCompany reference {i:04d}."
    path = os.path.join(out, f"c{i:04d}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc)
    print(f"{name}\t2024\t{sectors[i % len(sectors)]}\t{path}")
