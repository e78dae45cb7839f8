"""``python -m wnrl.grid``: a grid of runs (agents × envs × norms × seeds), one process per run.

    python -m wnrl.grid --agents dqn,a2c --envs CartPole-v1 --norms wn,none,batch,layer --seeds 1-5 \\
        --logdir runs/ablation --dqn-args "--total-steps 16000" --a2c-args "--total-steps 60000"

Runs as many at a time as ``--jobs`` (default: the GPUs torch sees, else the CPU cores), each a
normal run directory ``<logdir>/<env>__<agent>__<norm>__s<seed>`` with its console output in
``<name>.log`` beside it. Running the same grid again resumes unfinished runs and skips none:
a finished run resumes to its end at once. Threads are split between concurrent CPU runs; with
several GPUs each run gets one.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from wnrl.config import CliError


def parse_seeds(text: str) -> list[int]:
    """ "1-5" or "1,3,7"."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise CliError(f"--seeds {text!r}: use a range like 1-5 or a list like 1,3,7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds += range(lo, hi + 1)
    return seeds


def plan(agents, envs, norms, seeds, logdir: Path, extra: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """(run name, command) for every cell of the grid."""
    jobs = []
    for agent, env, norm, seed in itertools.product(agents, envs, norms, seeds):
        name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', env)}__{agent}__{norm}__s{seed}"
        run_dir = logdir / name
        base = [sys.executable, "-m", "wnrl.train", agent, "--progress", "false"]
        if (run_dir / "config.json").is_file():
            cmd = base + ["--resume", str(run_dir)]
        else:
            cmd = base + [
                "--env",
                env,
                "--norm",
                norm,
                "--seed",
                str(seed),
                "--logdir",
                str(logdir),
                "--run-name",
                name,
            ]
            cmd += extra.get(agent, [])
        jobs.append((name, cmd))
    return jobs


def run_grid(jobs: list[tuple[str, list[str]]], logdir: Path, parallel: int) -> dict[str, int]:
    """Runs ``jobs`` at most ``parallel`` at a time; returns each run's exit code."""
    import torch

    gpus = torch.cuda.device_count()
    threads = max(1, (os.cpu_count() or 1) // parallel)
    pending = list(jobs)
    running: dict[str, tuple[subprocess.Popen, int]] = {}
    codes: dict[str, int] = {}
    free_slots = list(range(parallel))
    logdir.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and free_slots:
            name, cmd = pending.pop(0)
            slot = free_slots.pop(0)
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
            log = open(logdir / f"{name}.log", "a")
            running[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), slot)
            log.close()
            print(f"started  {name}", flush=True)
        time.sleep(0.2)
        for name, (proc, slot) in list(running.items()):
            if proc.poll() is not None:
                codes[name] = proc.returncode
                free_slots.append(slot)
                del running[name]
                status = "done    " if proc.returncode == 0 else f"FAILED ({proc.returncode}), see {name}.log:"
                print(f"{status} {name}", flush=True)
    return codes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wnrl.grid", description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", default="dqn,a2c", help="comma-separated (default: dqn,a2c)")
    p.add_argument("--envs", default="CartPole-v1", help="comma-separated env ids (default: CartPole-v1)")
    p.add_argument("--norms", default="wn,none,batch,layer", help="comma-separated (default: wn,none,batch,layer)")
    p.add_argument("--seeds", default="1-5", help="range or list (default: 1-5)")
    p.add_argument("--logdir", default="runs/grid", help="where the run directories go (default: runs/grid)")
    p.add_argument("--jobs", type=int, default=None, help="runs at a time (default: GPUs, else CPU cores)")
    p.add_argument("--dqn-args", default="", help="extra flags for every DQN run, quoted")
    p.add_argument("--a2c-args", default="", help="extra flags for every A2C run, quoted")
    p.error = lambda message: p.exit(2, f"error: {message} (see {p.prog} --help)\n")
    args = p.parse_args(argv)
    try:
        import torch

        from wnrl.nets import NORMS
        from wnrl.train import AGENTS

        agents = [a for a in args.agents.split(",") if a]
        norms = [n for n in args.norms.split(",") if n]
        bad = [a for a in agents if a not in AGENTS] + [n for n in norms if n not in NORMS]
        if bad:
            raise CliError(f"unknown agent or norm: {', '.join(bad)}")
        seeds = parse_seeds(args.seeds)
        parallel = args.jobs or torch.cuda.device_count() or os.cpu_count() or 1
        if parallel < 1:
            raise CliError("--jobs must be at least 1")
        extra = {"dqn": shlex.split(args.dqn_args), "a2c": shlex.split(args.a2c_args)}
        jobs = plan(agents, args.envs.split(","), norms, seeds, Path(args.logdir), extra)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(jobs)} runs, {parallel} at a time, in {args.logdir}")
    codes = run_grid(jobs, Path(args.logdir), parallel)
    failed = [n for n, c in codes.items() if c != 0]
    print(
        f"{len(codes) - len(failed)} of {len(codes)} runs finished"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
