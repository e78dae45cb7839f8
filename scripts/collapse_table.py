"""Which exported A2C Pong probes collapsed: a markdown table from their diagnostics.csv.

    python scripts/collapse_table.py docs/data/pong_a2c_5Msched_screen/*

Per run, over steps FROM-TO (default 150k-250k, after the ~130k where seed 3's trunk died): the
median of the critic's explained variance, and the median of the largest dead (τ = 0) fraction
among the trunk's layers. "Collapsed": that explained variance is below 0.05 (the critic explains
nothing) while most units of some trunk layer (> 50%) are dead."""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path


def summary(run: Path, lo: int, hi: int) -> dict:
    rows = defaultdict(dict)  # step -> tag -> value
    with open(run / "diagnostics.csv") as f:
        for r in csv.DictReader(f):
            step = int(r["step"])
            if lo <= step <= hi:
                rows[step][r["tag"]] = float(r["value"])
    ev = [t["losses/explained_variance"] for t in rows.values() if "losses/explained_variance" in t]
    dead = [
        max(v for k, v in t.items() if k.startswith("dormant/") and k.endswith("/tau_0"))
        for t in rows.values()
        if any(k.startswith("dormant/") for k in t)
    ]
    if not ev or not dead:
        raise SystemExit(f"error: {run} has no explained variance or dead fractions over {lo}-{hi}")
    ev_med, dead_med = statistics.median(ev), statistics.median(dead)
    return {
        "run": run.name,
        "logs": len(ev),
        "ev": ev_med,
        "ev_range": (min(ev), max(ev)),
        "dead": dead_med,
        "collapsed": ev_med < 0.05 and dead_med > 0.5,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="exported run directories (each with diagnostics.csv)")
    p.add_argument("--steps", default="150000-250000", help="the window, FROM-TO agent steps")
    a = p.parse_args(argv)
    lo, hi = (int(x) for x in a.steps.split("-"))
    print(
        f"| run | logs in {lo // 1000}k-{hi // 1000}k | explained variance, median (range) "
        "| dead, deadest trunk layer (median) | collapsed |"
    )
    print("|---|---|---|---|---|")
    for run in sorted(a.runs):
        s = summary(run, lo, hi)
        print(
            f"| {s['run']} | {s['logs']} | {s['ev']:.2f} ({s['ev_range'][0]:.2f}-{s['ev_range'][1]:.2f}) "
            f"| {s['dead']:.0%} | {'**yes**' if s['collapsed'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
