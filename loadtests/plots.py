#!/usr/bin/env python3
"""The capacity report's plots (SVG) from the load runs' JSON results (loadtests/results/*.json), made by
`make capacity-report`:

    loadtests/plots.py RESULTS_DIR OUT_PREFIX      # e.g. loadtests/results docs/capacity

- OUT_PREFIX-knee.svg: goodput and p99 against offered load, per profile (the knee curves)
- OUT_PREFIX-{plan}-{profile}.svg: offered load, goodput, failures and p99 second by second, the surge shaded
- OUT_PREFIX-ablation.svg: goodput at the same overload with one defence off at a time
- OUT_PREFIX-ablation-knees.svg: the knee of each configuration of the ablation
- OUT_PREFIX-map.svg: the vulnerability maps (surge size x duration: recovered or stayed down)
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        return json.load(f)


def knee_plot(results, out):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    top = 1
    # The main sweeps (a small population) solid, the same sweeps over a million people dashed.
    for name, style in (("knee-hardened", "-"), ("knee-naive", "-"), ("knee-hardened-1m", "--"), ("knee-naive-1m", "--")):
        path = os.path.join(results, name + ".json")
        if not os.path.exists(path):
            continue
        k = load(path)
        xs = [s["offered_per_s"] for s in k["steps"]]
        top = max([top] + xs)
        label = f'{k["setup"]["profile"]}, {k["setup"]["people"]:,} people'
        ax1.plot(xs, [s["goodput_per_s"] for s in k["steps"]], marker="o", linestyle=style, label=label)
        ax2.plot(xs, [s["p99_us"] / 1000 for s in k["steps"]], marker="o", linestyle=style, label=label)
        if k.get("knee_per_s"):
            ax1.axvline(k["knee_per_s"], linestyle=":", color=ax1.lines[-1].get_color())
    ax1.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle="--", label="goodput = offered")
    ax1.set(xlabel="offered requests/s", ylabel="goodput (right answers within 1 s)/s", title="Goodput against offered load")
    ax2.set(xlabel="offered requests/s", ylabel="p99 latency from intended send (ms)", yscale="log", title="p99 against offered load")
    ax2.axhline(200, color="red", linewidth=0.8, linestyle="--", label="200 ms")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out + "-knee.svg")
    plt.close(fig)


def timeline_plot(r, out):
    secs = r["summary"]["seconds"]
    if not secs:
        return
    t = [s["t"] for s in secs]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    ax1.plot(t, [s["offered"] for s in secs], label="offered")
    ax1.plot(t, [s["attempts"] for s in secs], label="attempts (with retries)", linestyle=":")
    ax1.plot(t, [s["goodput"] for s in secs], label="goodput")
    ax1.plot(t, [s["failed"] for s in secs], label="failed (shed, errors, timeouts, gave up)")
    ax1.set(ylabel="per second", title=f"{r['name']}: {r['plan']['name']}, {r['setup']['profile']} profile, {r['plan']['clients']} clients")
    ax2.plot(t, [max(s["p99_us"], 1) / 1000 for s in secs], label="p99", color="C3")
    ax2.plot(t, [max(s["p50_us"], 1) / 1000 for s in secs], label="p50", color="C0")
    ax2.set(xlabel="second of the run", ylabel="latency (ms, log)", yscale="log")
    ax2.axhline(200, color="red", linewidth=0.8, linestyle="--")
    surge = r["plan"].get("surge")
    for ax in (ax1, ax2):
        if surge:
            ax.axvspan(surge["start_s"], surge["start_s"] + surge["ramp_s"] + surge["hold_s"] + surge["fall_s"],
                       color="orange", alpha=0.15, label="surge")
        if r["plan"].get("risk_change_at_s"):
            ax.axvline(r["plan"]["risk_change_at_s"], color="purple", linestyle="--", linewidth=0.8, label="risk change")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{out}-{r['name']}.svg")
    plt.close(fig)


def ours(results, pattern):
    """Our own results (goose's JSON reports sit beside them)."""
    return [load(p) for p in sorted(glob.glob(os.path.join(results, pattern))) if ".goose." not in p]


def ablation_plot(results, out):
    runs = ours(results, "ablation-*.json")
    if not runs:
        return
    runs.sort(key=lambda r: -r["summary"]["goodput_per_s"])
    fig, ax = plt.subplots(figsize=(10, 4))
    names = [r["setup"]["profile"] for r in runs]
    ax.barh(names, [r["summary"]["goodput_per_s"] for r in runs], color="C2", label="goodput/s")
    ax.barh(names, [r["summary"]["offered_per_s"] - r["summary"]["goodput_per_s"] for r in runs],
            left=[r["summary"]["goodput_per_s"] for r in runs], color="C3", alpha=0.5, label="offered but not goodput")
    ax.set(xlabel="requests/s at the same offered overload", title="Ablation: one defence off at a time")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    fig.savefig(out + "-ablation.svg")
    plt.close(fig)


def ablation_knee_plot(results, out):
    knees = ours(results, "knee-ablation-*.json")
    if not knees:
        return
    knees.sort(key=lambda k: -(k.get("knee_per_s") or 0))
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.barh([k["setup"]["profile"] for k in knees], [k.get("knee_per_s") or 0 for k in knees], color="C0")
    ax.set(xlabel="knee (requests/s: p99 < 200 ms, failures < 0.1 %)",
           title="Ablation: the knee with one defence off at a time")
    ax.invert_yaxis()
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(out + "-ablation-knees.svg")
    plt.close(fig)


def map_plot(results, out):
    runs = ours(results, "map-*.json")
    if not runs:
        return
    profiles = sorted({r["setup"]["profile"] for r in runs})
    fig, axes = plt.subplots(1, len(profiles), figsize=(5 * len(profiles), 4), squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        mine = [r for r in runs if r["setup"]["profile"] == profile]
        factors = sorted({r["plan"]["surge"]["factor"] for r in mine})
        holds = sorted({r["plan"]["surge"]["hold_s"] for r in mine})
        for r in mine:
            x = holds.index(r["plan"]["surge"]["hold_s"])
            y = factors.index(r["plan"]["surge"]["factor"])
            rec = r.get("recovery_s")
            ok = rec is not None and rec <= 30
            ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, color="C2" if ok else "C3", alpha=0.6))
            ax.text(x, y, "recovered\n%.0f s" % rec if rec is not None else "stayed\ndown", ha="center", va="center")
        ax.set_xticks(range(len(holds)), [f"{h:.0f} s" for h in holds])
        ax.set_yticks(range(len(factors)), [f"{f:.0f}x" for f in factors])
        ax.set_xlim(-0.5, len(holds) - 0.5)
        ax.set_ylim(-0.5, len(factors) - 0.5)
        ax.set(xlabel="surge held for", ylabel="surge size (show code and imports)", title=f"{profile}, retrying clients")
    fig.tight_layout()
    fig.savefig(out + "-map.svg")
    plt.close(fig)


def main():
    results, out = sys.argv[1], sys.argv[2]
    knee_plot(results, out)
    ablation_knee_plot(results, out)
    for r in ours(results, "*.json"):
        if "summary" in r and not r["name"].startswith(("ablation-", "map-")):
            timeline_plot(r, out)
    ablation_plot(results, out)
    map_plot(results, out)


if __name__ == "__main__":
    main()
