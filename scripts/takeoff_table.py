"""When did each Atari run take off, where was it at fixed points, how much of its trunk was dead: a
markdown table from run directories or their exports (``python -m wnrl.plot --export``).

    python scripts/takeoff_table.py docs/data/pong_ppo_pqn_3M/pqn_Pong_wn_s1_3M docs/data/pong_pqn_norms_3M/*

Per run:
- the step at which the mean of the last 20 games first reaches each of ``--levels`` (> 0 for the first,
  ≥ for the others; the step of the game that completes that window);
- at each of ``--at`` (millions of agent steps), the mean return of the games that ended in the 100k
  steps before it (a point at or past the run's ``total_steps``: from 100k before it to the run's end,
  which takes the games that end after its last rollout crossed it);
- the mean return of its last 100 games;
- at each of ``--dormant-at``, the mean over the 200k steps before it of the fraction of the dense
  layer's units that were dormant (τ = 0: never active on the logged batch; ``dormant/trunk.fc.0``),
  and the largest such mean among the conv layers but the first (on Atari frames most of the first
  conv's channels are dead in runs that learn too);
- compute: the run's median charts/SPS, as seconds per 1,000 agent steps and hours for its steps.

A point counts as reached when the run logged within 50k steps of it (a finished run's last log falls a
rollout or a log interval short of its length); one not reached shows "—", and a run of fewer than 20
games "n/a" for the take-off steps."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from wnrl.plot import read_scalars  # noqa: E402

RETURN, DENSE = "charts/episodic_return", "dormant/trunk.fc.0/tau_0"


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def first_reaching(steps: np.ndarray, returns: np.ndarray, level: float, strict: bool, games: int = 20):
    """The step of the game that completes the first ``games``-game window whose mean reaches ``level``."""
    if len(returns) < games:
        return None
    # Sums against games × level, not means against level: a mean of 20 games that is exactly 15 (a sum of
    # 300) computed as 14.999999999999998 missed "≥ 15" (seen on a MinAtar run). Scores here are integers.
    sums = np.convolve(returns, np.ones(games), mode="valid")  # sums[i]: games i .. i+games-1
    bar = games * level
    hit = np.flatnonzero(sums > bar if strict else sums >= bar)
    return float(steps[hit[0] + games - 1]) if len(hit) else None


def window_mean(steps: np.ndarray, values: np.ndarray, lo: float, hi: float):
    """Mean of the values logged at steps in (lo, hi]; None if none."""
    keep = (steps > lo) & (steps <= hi)
    return float(values[keep].mean()) if keep.any() else None


# A point counts as reached when the run logged within this many steps of it: a finished run's last log
# falls a rollout or a log interval short of its length.
REACHED = 50_000


def row(run: Path, levels: list[float], at: list[float], dormant_at: list[float]) -> list[str]:
    scalars = read_scalars(run)
    steps, returns = scalars.get(RETURN, (np.zeros(0), np.zeros(0)))
    if not len(steps):
        raise SystemExit(f"error: {run} has no finished game ({RETURN}); nothing to tabulate")
    last = float(steps[-1])
    cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    total = float(cfg.get("total_steps") or last)

    def m(x):
        return "—" if x is None else f"{x / 1e6:.2f}M"

    def f(x, digits=1):
        return "—" if x is None else f"{x:.{digits}f}"

    if len(returns) < 20:
        firsts = ["n/a"] * len(levels)  # fewer games than one window
    else:
        firsts = [m(first_reaching(steps, returns, lv, strict=(i == 0))) for i, lv in enumerate(levels)]
    # the 100k steps before each point the run reached; at or past its length, up to its end (the games
    # that end after the last rollout crossed it)
    wins = [
        f(window_mean(steps, returns, p - 1e5, np.inf if p >= total else p)) if last >= p - REACHED else "—"
        for p in (q * 1e6 for q in at)
    ]
    # τ = 0 only (a run logs τ = 0.025 too); the first conv is not judged (on Atari frames most of its
    # channels are dead in runs that learn too)
    dense = scalars.get(DENSE)
    convs = [t for t in scalars if t.startswith("dormant/trunk.convs.") and t.endswith("/tau_0")]
    convs = sorted(convs, key=lambda t: int(t.split(".")[2].split("/")[0]))[1:]
    dormant = []
    for p in (q * 1e6 for q in dormant_at):
        logged = dense is not None and float(dense[0][-1]) >= p - REACHED
        d = window_mean(*dense, p - 2e5, p) if logged else None
        c = [x for x in (window_mean(*scalars[t], p - 2e5, p) for t in convs) if x is not None] if logged else []
        dormant.append("—" if d is None else f"{d:.0%}" + (f" ({max(c):.0%})" if c else ""))
    sps = cfg.get("exported", {}).get("median_sps")
    if sps is None and "charts/SPS" in scalars:
        sps = float(np.median(scalars["charts/SPS"][1]))
    compute = "—" if not sps else f"{last / sps / 3600:.1f} h ({1000 / sps:.1f} s per 1k)"
    last100 = f"{returns[-100:].mean():+.2f}" + ("" if len(returns) >= 100 else f" ({len(returns)} games)")
    return [run.name, " / ".join(firsts), " / ".join(wins), last100, " / ".join(dormant), compute, m(last)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories or exported runs")
    p.add_argument("--levels", type=_floats, default=[0.0, 10.0, 15.0], help="20-game means (default 0,10,15)")
    p.add_argument("--at", type=_floats, default=[0.5, 1, 1.5, 2, 3], help="points, millions of steps")
    p.add_argument("--dormant-at", type=_floats, default=[0.5, 1, 2, 3], help="points, millions of steps")
    args = p.parse_args(argv)
    lv = " / ".join(("> " if i == 0 else "≥ ") + f"{x:g}" for i, x in enumerate(args.levels))
    at = " / ".join(f"{x:g}M" for x in args.at)
    dat = " / ".join(f"{x:g}M" for x in args.dormant_at)
    print(
        f"| run | 20-game mean first {lv} | games ending in the 100k steps before {at} (at the run's length: "
        "to its end) | last 100 games "
        f"| dense layer's dormant units (τ = 0; the later convs' worst in brackets), 200k before {dat} "
        "| compute (median charts/SPS) | last game at |"
    )
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        print("| " + " | ".join(row(run, args.levels, args.at, args.dormant_at)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
