"""Train one agent config over several seeds and report the mean return of each run's last episodes.

    python scripts/seeds.py dqn --env CartPole-v1 --seeds 1-5 --jobs 2 [--last 20] [-- --flag value ...]

Each run is a normal ``python -m wnrl.train`` process (one torch thread each) writing under
``--logdir``; the table printed at the end (markdown) gives, per seed, the mean raw return of the
last ``--last`` episodes, the steps and the wall-clock, then the median and the minimum over seeds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]


def last_returns(run_dir: Path, last: int) -> list[float]:
    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    if "charts/episodic_return" not in ea.Tags()["scalars"]:
        return []
    return [e.value for e in ea.Scalars("charts/episodic_return")][-last:]


def run_one(agent: str, env: str, seed: int, logdir: Path, extra: list[str], tag: str) -> tuple[int, float, float]:
    name = f"{tag}__s{seed}"
    run_dir = logdir / name
    cmd = [sys.executable, "-m", "wnrl.train", agent, "--env", env, "--seed", str(seed), "--logdir", str(logdir)]
    cmd += ["--run-name", name, "--progress", "false", *extra]
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env_vars)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"seed {seed}: exit {proc.returncode}: {tail}", file=sys.stderr)
        return seed, float("nan"), wall
    rets = last_returns(run_dir, args.last)
    return seed, (sum(rets) / len(rets) if rets else float("nan")), wall


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


if __name__ == "__main__":
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("agent")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", default="1-5")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--last", type=int, default=20)
    p.add_argument("--logdir", default="runs/seeds")
    p.add_argument("--tag", default=None, help="run-name prefix (default: <env>__<agent>)")
    args = p.parse_args(argv)
    logdir = Path(args.logdir)
    tag = args.tag or f"{args.env}__{args.agent}"
    seeds = parse_seeds(args.seeds)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda s: run_one(args.agent, args.env, s, logdir, extra, tag), seeds))
    finals = [r for _, r, _ in results if r == r]
    print(f"\n{args.agent} {args.env} {' '.join(extra)}")
    print(f"| seed | mean of last {args.last} | wall-clock (s) |\n|---|---|---|")
    for seed, r, wall in results:
        print(f"| {seed} | {r:.1f} | {wall:.0f} |")
    if finals:
        print(
            f"median {statistics.median(finals):.1f}, min {min(finals):.1f}, max {max(finals):.1f} "
            f"over {len(finals)} seeds; total wall-clock {time.perf_counter() - t0:.0f} s"
        )
