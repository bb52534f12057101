#!/usr/bin/env python3
"""The table of docs/reliability.md from `make chaos`'s reports: one row per fault, in `make chaos`'s order.

    scripts/chaos_table.py COMMIT [RESULTS_DIR]

Reads RESULTS_DIR/chaos-*.chaos.json (each fault's outcome) and the run's own JSON beside it (the generator's
share of the machine), and prints the Markdown rows; COMMIT is the commit the runs were built from (the reports do
not know it). Every figure in a row is one of the reports' fields, rounded.
"""

import json
import pathlib
import sys

ORDER = [
    "redis-empty", "redis-aof", "postgres", "slow-redis", "lossy-redis", "slow-postgres", "lossy-postgres",
    "partition-rendering", "partition-rendering-scoring", "partition-verification", "partition-identity",
    "partition-declaration", "partition-scoring", "kill-identity", "kill-declaration", "kill-scoring", "kill-rendering",
    "kill-verification",
]
WRITES = ["declarations", "checkins", "scans", "import_rows"]


def window(w):
    return f"{w['goodput_per_s']:.0f}/s, {w['error_rate'] * 100:.2f} %, {w['p99_ms'] / 1000:.1f} s"


def showed(r):
    parts = []
    slow = r["fault"] in ("slow-redis", "lossy-redis", "slow-postgres", "lossy-postgres")
    if (slow or r.get("partition")) and "people_p99_ms" in r["during"]:
        parts.append(f"people's p99 during {r['during']['people_p99_ms'] / 1000:.1f} s")
    s = r.get("stale_codes") or {"during": 0, "after": 0, "last_at_s": None}
    if s["during"] or s["after"]:
        last = f", last at {s['last_at_s']} s (back at {r['back_at_s']:.0f} s)" if s["last_at_s"] is not None else ""
        parts.append(f"stale codes during {s['during']}, after {s['after']}{last}")
    p = r.get("partition")
    if p:
        out = p["taken_out_after_s"]
        back = p["back_in_after_s"]
        parts.append(
            (f"taken out {out:.1f} s after the cut" if out is not None else "never taken out")
            + (f", back {back:.1f} s after the heal" if back is not None and out is not None else "")
            + f", connections {p['connections']}"
        )
    b = r.get("bystanders")
    if b:
        parts.append(f"bystanders {b['before_goodput_per_s']:.0f}/s → {b['during_goodput_per_s']:.0f}/s")
    return "; ".join(parts) or "–"


def row(r, run, commit):
    a = r["accounting"]
    acknowledged = sum(a[k]["acknowledged"] for k in WRITES)
    lost = sum(a[k]["lost"] for k in WRITES + ["declarations_in_scoring", "import_rows_in_scoring"])
    duplicated = sum(a[k]["duplicated"] for k in WRITES + ["declarations_in_scoring", "import_rows_in_scoring"])
    recovered = f"{r['recovery_s']:.0f} s" if r["recovery_s"] is not None else "never"
    outcome = "passed" if not r["broken"] else "BROKEN: " + "; ".join(r["broken"])
    generator = run.get("cpu", {}).get("load generator")
    return "| " + " | ".join([
        f"`{r['fault']}`",
        window(r["before"]),
        window(r["during"]),
        window(r["after"]),
        recovered,
        f"{a['settled_after_s']:.0f} s",
        f"{lost} / {duplicated} of {acknowledged:,}",
        str(a["stale_status_documents"]),
        f"{generator:.2f}" if generator is not None else "–",
        showed(r),
        f"{outcome} ({commit})",
    ]) + " |"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    commit = sys.argv[1]
    results = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "loadtests/results")
    reports = {}
    for path in results.glob("chaos-*.chaos.json"):
        r = json.loads(path.read_text())
        reports[r["fault"]] = (r, path)
    total = 0
    for fault in ORDER + sorted(set(reports) - set(ORDER)):
        if fault not in reports:
            continue
        r, path = reports[fault]
        run_path = path.with_name(path.name.replace(".chaos.json", ".json"))
        run = json.loads(run_path.read_text()) if run_path.exists() else {}
        total += sum(r["accounting"][k]["acknowledged"] for k in WRITES)
        print(row(r, run, commit))
    print(f"\n{total:,} acknowledged writes in {len(reports)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
