"""Which exported A2C Pong probes collapsed: a markdown table from their diagnostics.csv.

    python scripts/collapse_table.py docs/data/pong_a2c_5Msched_screen/*

Per run, over steps FROM-TO (default 150k-250k, after the ~130k where seed 3's trunk died): the
median of the critic's explained variance, and the median of the largest dead (τ = 0) fraction
among the trunk's layers but its first (as the dead-trunk warning, wnrl/dormant.py: on Atari frames
most of the first convolution's channels are dead in runs that learn too), with the layer it was.
"Collapsed": that explained variance is below 0.05 (the critic explains nothing) while most units of
such a layer (> 50%) are dead."""

from __future__ import annotations

import argparse
import csv
import re
import statistics
from collections import defaultdict
from pathlib import Path


def summary(run: Path, lo: int, hi: int) -> dict:
    rows = defaultdict(dict)  # step -> tag -> value
    layers: list[str] = []  # the dead-fraction tags, in the order the net's layers come
    with open(run / "diagnostics.csv") as f:
        for r in csv.DictReader(f):
            step, tag = int(r["step"]), r["tag"]
            if tag.startswith("dormant/") and tag.endswith("/tau_0") and tag not in layers:
                layers.append(tag)
            if lo <= step <= hi:
                rows[step][tag] = float(r["value"])
    ev = [t["losses/explained_variance"] for t in rows.values() if "losses/explained_variance" in t]
    judged = layers[1:]  # the first layer is not judged
    dead = {k: [t[k] for t in rows.values() if k in t] for k in judged}
    dead = {k: statistics.median(v) for k, v in dead.items() if v}
    if not ev or not dead:
        raise SystemExit(f"error: {run} has no explained variance or dead fractions over {lo}-{hi}")
    deadest = max(dead, key=dead.get)
    ev_med = statistics.median(ev)
    return {
        "run": run.name,
        "logs": len(ev),
        "ev": ev_med,
        "ev_range": (min(ev), max(ev)),
        "dead": dead[deadest],
        "layer": deadest.removeprefix("dormant/").removesuffix("/tau_0"),
        "collapsed": ev_med < 0.05 and dead[deadest] > 0.5,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="exported run directories (each with diagnostics.csv)")
    p.add_argument("--steps", default="150000-250000", help="the window, FROM-TO agent steps")
    a = p.parse_args(argv)
    lo, hi = (int(x) for x in a.steps.split("-"))
    print(
        f"| run | logs in {lo // 1000}k-{hi // 1000}k | explained variance, median (range) "
        "| dead, deadest layer but the first (median) | collapsed |"
    )
    print("|---|---|---|---|---|")
    settings: dict[str, list[tuple[int, bool]]] = defaultdict(list)  # the name without its seed -> (seed, collapsed)
    for run in sorted(a.runs):
        s = summary(run, lo, hi)
        print(
            f"| {s['run']} | {s['logs']} | {s['ev']:.2f} ({s['ev_range'][0]:.2f}-{s['ev_range'][1]:.2f}) "
            f"| {s['dead']:.0%} ({s['layer']}) | {'**yes**' if s['collapsed'] else 'no'} |"
        )
        m = re.search(r"_s(\d+)(?=_|$)", s["run"])
        setting = s["run"][: m.start()] + s["run"][m.end() :] if m else s["run"]
        settings[setting].append((int(m.group(1)) if m else 0, s["collapsed"]))
    print()
    for setting, seeds in settings.items():  # one line per setting: how many of its seeds collapsed
        dead = [str(seed) for seed, collapsed in sorted(seeds) if collapsed]
        which = f" (seed {', '.join(dead)})" if dead else ""
        print(f"{setting}: {len(dead)} of {len(seeds)} collapsed{which}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
