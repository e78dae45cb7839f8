"""``python -m wnrl.grid``: a grid of runs (agents × envs × norms × seeds), one process per run.

    python -m wnrl.grid --agents dqn,a2c --envs CartPole-v1 --norms wn,none,batch,layer --seeds 1-5 \\
        --logdir runs/ablation --dqn-args "--total-steps 16000" --a2c-args "--total-steps 60000"
    python -m wnrl.grid --agents a2c --envs Catch --norms wn,wn+project,none,layer,batch --seeds 1-5
    python -m wnrl.grid --preset paper --seeds 1-3 --logdir runs/paper      # Salimans & Kingma, Table 3
    python -m wnrl.grid --preset paper --dry-run                            # the commands, none started
    python -m wnrl.grid --preset paper --logdir /shared/runs/paper --ray --ray-address HEAD:6379

Runs as many at a time as ``--jobs`` (default: the GPUs torch sees, else the CPU cores), each a
normal run directory ``<logdir>/<env>__<agent>__<norm>__s<seed>`` with its console output in
``<name>.log`` beside it. Running a grid again goes on from what its cells left: a cell at the
grid's ``--total-steps`` (or, without one, its own) is finished and not started; any other resumes
with ``--resume RUN`` plus the grid's agent flags and length (a larger ``--total-steps`` extends
finished runs; train refuses, in one line, a flag a run cannot change); a ``--total-steps`` below
what a cell has already run is refused before anything starts; a cell directory with no
checkpoint (killed before its first) holds nothing to resume: it is removed and the cell starts
afresh. ``--dry-run`` prints exactly the commands that would run. Threads are split between
concurrent CPU runs; with several GPUs each run gets one. ``--nproc-per-run N`` (N > 1) launches each
run, new or resumed, as N processes under torchrun on one machine (README, "Many GPUs"): N GPUs
of its own (refused in one line on a machine with fewer), or 1/N of a CPU run's threads each;
``--jobs`` counts runs. It prints a line as each run starts
and ends and, after each end, the grid's: cells done and the runs' steps summed (a bar on a
terminal). ``--ray`` runs the same cells as tasks on a Ray cluster (:mod:`wnrl.raygrid`; README,
"Many machines"). A norm written ``wn+project`` (or
``wn_mobn+project``) is that norm with ``--wn-project``, a cell of its own. A preset fills in the
agents, envs, norms, seeds, length and flags of a known experiment; flags given on the command
line replace the preset's.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wnrl.checkpoint import list_checkpoints
from wnrl.config import CliError
from wnrl.train import AGENTS


@dataclass(frozen=True)
class Preset:
    """A named grid: its cells, its length and the flags its runs get."""

    description: str
    agents: tuple[str, ...]
    envs: tuple[str, ...]
    norms: tuple[str, ...]
    seeds: str
    total_steps: int
    # total_steps -> flags for every run of an agent (schedules can depend on the length)
    agent_args: Callable[[int], dict[str, list[str]]]
    # flags for every run of one norm, after the agent's
    norm_args: dict[str, list[str]] = field(default_factory=dict)


# Nature DQN's exploration: ε from 1 to 0.1 over the first million agent steps (4M frames).
NATURE_EXPLORATION_STEPS = 1_000_000
# The paper's evaluations: after every epoch of deep_q_rl (250,000 agent steps), games at ε = 0.05
PAPER_EVAL_EVERY = 250_000
PAPER_EVAL_EPISODES = 30


def _paper_dqn_args(total_steps: int) -> dict[str, list[str]]:
    """Nature DQN (Mnih et al., 2015) as DQNConfig flags, with the paper's minibatch of 64. Every
    setting is spelled out, so a later change of the agent's defaults does not move the preset."""
    return {
        "dqn": [
            "--buffer-size", "1000000",  # replay memory: 1M transitions
            "--batch-size", "64",  # Salimans & Kingma: 64 (Nature: 32)
            "--learning-starts", "50000",  # replay start size
            "--train-frequency", "4",  # one update per 4 agent steps
            "--target-update-frequency", "10000",  # agent steps, as DeepMind's code counts them
            "--gamma", "0.99",
            "--start-epsilon", "1.0",
            "--end-epsilon", "0.1",
            "--exploration-fraction", f"{min(1.0, NATURE_EXPLORATION_STEPS / total_steps):.6g}",
            "--max-grad-norm", "0",  # Nature clips the TD error (Huber loss), not the gradient norm
            "--double-dqn", "false",
            "--dueling", "false",
            "--n-step", "1",
            "--lr-decay", "false",
            "--clip-rewards", "true",
            "--life-loss-terminal", "true",
            "--sticky-actions", "0",
            "--wn-init-norm", "0",  # the paper's v ~ N(0, 0.05²), then its data-dependent init
            "--wn-project", "false",  # the paper lets ‖v‖ grow
            "--optimizer", "adamax",  # the paper's DQN optimizer, with β₁ = 0.5
            "--adam-beta1", "0.5",
            # Table 3 reports maximum evaluation scores: an evaluation after each of deep_q_rl's 250,000-step
            # epochs (and at the end), at Nature's evaluation ε of 0.05, over 30 games (Nature's count)
            "--eval-every", str(PAPER_EVAL_EVERY),
            "--eval-episodes", str(PAPER_EVAL_EPISODES),
            "--eval-greedy", "false",
        ]
    }  # fmt: skip


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        description="Salimans & Kingma (2016), Table 3: DQN with normal vs weight-normalized networks",
        agents=("dqn",),
        envs=("Breakout", "Enduro", "Seaquest", "SpaceInvaders"),
        norms=("none", "wn"),
        seeds="1",
        # Nature DQN's "50 million frames": agent steps of 4 emulator frames each (200M frames, ~38 days of play)
        total_steps=50_000_000,
        agent_args=_paper_dqn_args,
        # The paper's learning rates from its search over {1e-4, 3e-4, 1e-3, 3e-3}.
        norm_args={"none": ["--learning-rate", "1e-4"], "wn": ["--learning-rate", "3e-4"]},
    ),
}

DEFAULTS = {"agents": "dqn,a2c", "envs": "CartPole-v1", "norms": "wn,none,batch,layer", "seeds": "1-5"}

# A grid norm "<norm>+project" is <norm> with --wn-project (weight norm's directions held at their initial norm).
PROJECT_SUFFIX = "+project"


def base_norm(norm: str) -> str:
    """The --norm of a grid norm: "wn+project" -> "wn"."""
    return norm.removesuffix(PROJECT_SUFFIX)


def _known_norm(norm: str) -> bool:
    from wnrl.nets import NORMS

    base = base_norm(norm)
    return base in NORMS and (base == norm or base.startswith("wn"))


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


@dataclass
class Cell:
    """One run of the grid and what running the grid does with it."""

    name: str
    run_dir: Path
    # the train command; None: the cell is already at its length and nothing runs
    cmd: list[str] | None
    # the --total-steps the grid asks of this cell; None: the run's own (its saved config's or its agent's default)
    target: int | None
    # its directory holds no checkpoint (killed before the first): removed before the cell starts afresh
    restart: bool = False
    # the step of its newest checkpoint when planned (None: no checkpoint)
    reached: int | None = None
    # the steps it already ran that its length cannot go below (None: nothing to keep)
    floor: int | None = None
    # plans the cell again from its directory as it is then (what a Ray task retried on another node runs)
    replan: Callable[[], Cell] | None = field(default=None, repr=False, compare=False)
    # a finished cell whose run had settings other than the grid's flags give: {field: [its, asked]}
    differs: dict[str, list] = field(default_factory=dict)


def checkpoint_step(run_dir: Path) -> int | None:
    """The step of ``run_dir``'s newest checkpoint (read from its file name), or None."""
    paths = list_checkpoints(run_dir)
    return int(paths[-1].stem.removeprefix("step_")) if paths else None


def saved_total_steps(run_dir: Path) -> int | None:
    """The --total-steps a run directory's config.json holds, or None."""
    try:
        value = json.loads((Path(run_dir) / "config.json").read_text()).get("total_steps")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def settings_differ(agent: str, env: str, norm: str, seed: int, run_dir: Path, flags: list[str]) -> dict[str, list]:
    """The settings (all but bookkeeping and the length) in which the run in ``run_dir`` differs from
    the run these flags make (train's parser, the agent's defaults for the env): ``{field: [its,
    asked]}``. Empty when they agree, or when train would refuse the flags (it says why when run)."""
    import contextlib
    import io

    from wnrl.config import settings_changed
    from wnrl.train import NOT_CONFIG, _agent_module, build_parser

    try:
        saved = json.loads((run_dir / "config.json").read_text())
        with contextlib.redirect_stderr(io.StringIO()):
            argv = [agent, "--env", env, "--norm", base_norm(norm), "--seed", str(seed), *flags]
            args = build_parser().parse_args(argv)
        args = {k: v for k, v in vars(args).items() if k not in NOT_CONFIG}
        asked = _agent_module(agent)[1].for_env(args.pop("env"), **args).to_dict()
    except (OSError, ValueError, TypeError, AttributeError, CliError, SystemExit):
        return {}
    if not isinstance(saved, dict):
        return {}
    changed = settings_changed({k: v for k, v in saved.items() if k not in ("agent", "changes")}, asked)
    changed.pop("total_steps", None)  # the length has its own rule (a larger one extends the cell)
    return changed


def _last_total_steps(flags: list[str]) -> int | None:
    """The --total-steps that ``flags`` set last (the one train's argparse keeps), or None."""
    value = None
    for i, arg in enumerate(flags):
        if arg == "--total-steps" and i + 1 < len(flags):
            value = flags[i + 1]
        elif arg.startswith("--total-steps="):
            value = arg.split("=", 1)[1]
    try:
        return _count(value) if value is not None else None
    except argparse.ArgumentTypeError:
        return None  # train names the bad value itself


def train_command(agent: str, nproc: int = 1) -> list[str]:
    """The start of every cell's command: ``python -m wnrl.train AGENT``, or with ``nproc`` > 1 the same
    run as ``nproc`` processes on one machine under torchrun (README, "Many GPUs")."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
    return [*(launcher if nproc > 1 else [sys.executable]), "-m", "wnrl.train", agent, "--progress", "false"]


def plan_cell(agent: str, env: str, norm: str, seed: int, logdir: Path, flags: list[str], nproc: int = 1) -> Cell:
    """One cell of the grid and its command, from its directory as it is now (see :func:`plan`)."""
    name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', env)}__{agent}__{norm}__s{seed}"
    run_dir = logdir / name
    base = train_command(agent, nproc)
    target = _last_total_steps(flags)
    reached = checkpoint_step(run_dir) if run_dir.is_dir() else None
    replan = functools.partial(plan_cell, agent, env, norm, seed, logdir, flags, nproc)
    if reached is None:
        new = ["--env", env, "--norm", base_norm(norm), "--seed", str(seed)]
        new += ["--logdir", str(logdir), "--run-name", name]
        return Cell(name, run_dir, base + new + flags, target, restart=run_dir.exists(), replan=replan)
    own = saved_total_steps(run_dir)
    # A2C's last rollout (DQN's last step over several envs) can end a run past its length: a
    # cell that finished its own length is not "past" the grid's when both are that length.
    floor = reached if own is None else min(reached, own)
    length = target if target is not None else own
    cmd = None if length is not None and reached >= length else base + ["--resume", str(run_dir)] + flags
    differs = settings_differ(agent, env, norm, seed, run_dir, flags) if cmd is None else {}
    return Cell(name, run_dir, cmd, target, reached=reached, floor=floor, replan=replan, differs=differs)


def plan(
    agents,
    envs,
    norms,
    seeds,
    logdir: Path,
    extra: dict[str, list[str]],
    norm_extra: dict[str, list[str]] | None = None,
    nproc: int = 1,
) -> list[Cell]:
    """Every cell of the grid and its command. A cell's flags are ``norm_extra[norm]`` (for
    "wn+project": ``norm_extra["wn"]``), then ``extra[agent]`` (a flag given twice takes its last
    value), then a "+project" cell's ``--wn-project true``, which no other flag overrides: it is
    what the cell is. A new cell gets its env, norm, seed and name with them; a cell with a
    checkpoint resumes with them (its length and agent flags follow the grid's, as given now), or
    does not run if it is already at the grid's --total-steps; a cell directory without a
    checkpoint is started afresh. A --total-steps below the steps a cell already ran (and below
    its own length) is a CliError naming the cell. With ``nproc`` > 1 each cell's run (new or resumed) is
    ``nproc`` processes under torchrun (:func:`train_command`)."""
    cells: list[Cell] = []
    for agent, env, norm, seed in itertools.product(agents, envs, norms, seeds):
        norm_flags = (norm_extra or {}).get(norm, (norm_extra or {}).get(base_norm(norm), []))
        flags = norm_flags + extra.get(agent, [])
        if norm != base_norm(norm):
            flags += ["--wn-project", "true"]
        cells.append(plan_cell(agent, env, norm, seed, logdir, flags, nproc))
    too_short = [c for c in cells if c.target is not None and c.floor is not None and c.target < c.floor]
    if too_short:
        first = too_short[0]
        others = f" (and {len(too_short) - 1} other cell(s))" if len(too_short) > 1 else ""
        raise CliError(
            f"--total-steps {first.target:,} is below the {first.reached:,} steps {first.name} already ran{others}; "
            f"give at least {max(c.floor for c in too_short):,}, or another --logdir for a shorter grid"
        )
    return cells


def _restart_note(cell: Cell) -> str:
    return f"{cell.name}: no checkpoint in its directory (killed before the first), nothing to resume"


def _finished_note(cell: Cell) -> str:
    length = cell.target if cell.target is not None else saved_total_steps(cell.run_dir)
    note = f"{cell.name}: already at step {cell.reached:,} of {length:,}; nothing to run "
    note += "(a larger --total-steps extends it)"
    if cell.differs:
        what = ", ".join(f"{k} {json.dumps(a)} (asked: {json.dumps(b)})" for k, (a, b) in cell.differs.items())
        note += f"; it ran with {what}: to run the settings asked, give another --logdir"
    return note


def _last_line(path: Path, offset: int) -> str:
    """The last non-empty line written to ``path`` after byte ``offset`` ("" if none)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


# Seconds between overall lines while no cell ends (not on a terminal; there the bar is redrawn every few seconds)
OVERALL_EVERY = 600.0


@dataclass
class Outcome:
    """How a cell's run ended, as the machine that ran it saw it."""

    code: int  # its exit code (negative: the signal that ended it)
    last: str  # the last line it wrote to <name>.log ("" if none)
    reached: int | None  # its newest checkpoint's step afterwards
    length: int | None  # the grid's --total-steps, else the run's own


def launch(cell: Cell, logdir: Path, env: dict[str, str], say: Callable[[str], None], **popen):
    """Starts the cell's command, its output appended to ``<logdir>/<name>.log``; returns the process
    and the log's size before it (where its output begins). A cell directory with no checkpoint is
    removed first, which ``say`` reports. The local grid and the Ray tasks (wnrl.raygrid) both start
    their cells here."""
    if cell.restart and cell.run_dir.exists():
        shutil.rmtree(cell.run_dir)
        say(f"afresh   {_restart_note(cell)}; removed it, starting the cell afresh")
    with open(logdir / f"{cell.name}.log", "a") as log:
        offset = log.tell()
        proc = subprocess.Popen(cell.cmd, stdout=log, stderr=subprocess.STDOUT, env=env, **popen)
    return proc, offset


def start_line(cell: Cell, where: str = "") -> str:
    return f"{'resumed ' if '--resume' in cell.cmd else 'started '} {cell.name}{f' on {where}' if where else ''}"


def outcome(cell: Cell, code: int, logdir: Path, offset: int) -> Outcome:
    """What the cell's run (started by :func:`launch`, its log at ``offset``) left when it exited with ``code``."""
    reached, length = _progress(cell)
    return Outcome(code, _last_line(logdir / f"{cell.name}.log", offset), reached, length)


def end_line(name: str, out: Outcome) -> str:
    """A finished run's line: done, stopped short of its length (it exited 0: a time limit or a
    signal), or FAILED with its exit code and last line."""
    if out.code != 0:
        why = f"signal {-out.code}" if out.code < 0 else str(out.code)
        return f"FAILED ({why}) {name}: {out.last or '(no output)'}   (see {name}.log)"
    if out.reached is not None and (out.length is None or out.reached >= out.length):
        return f"done     {name}"
    at = "no checkpoint" if out.reached is None else f"at step {out.reached:,} of {out.length:,}"
    return f"stopped  {name}: {at}; run the grid again to go on"


class Overall:
    """The grid as a whole: cells done (at their length) and the runs' steps summed, at their newest
    checkpoints in the grid's directory. On a terminal a bar on stderr, redrawn every few seconds;
    otherwise a line after each cell's end and every ``every`` seconds. Cell lines go through
    :meth:`say` (above the bar)."""

    def __init__(self, cells: list[Cell], every: float = OVERALL_EVERY):
        self.cells, self.every = cells, every
        self.running: set[str] = set()
        self.shown = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            done, steps, total = self._count()
            # no rate: the steps move at checkpoints, and count the runs' steps before this grid
            form = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}{postfix}]"
            if total is None:
                form = "{desc} {n_fmt} steps [{elapsed}{postfix}]"
            self.bar = tqdm(
                desc="grid", total=total, initial=steps, unit_scale=True, bar_format=form, file=sys.stderr,
                dynamic_ncols=True,
            )  # fmt: skip
            self.tick(force=True)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def started(self, cell: Cell, where: str = "") -> None:
        self.running.add(cell.name)
        self.say(start_line(cell, where))

    def ended(self, cell: Cell, out: Outcome) -> None:
        self.running.discard(cell.name)
        self.say(end_line(cell.name, out))
        self.tick(force=True)

    def line(self) -> str:
        done, steps, total = self._count()
        of = f" of {total:,}" if total is not None else ""
        return f"grid     {done} of {len(self.cells)} cells done, {len(self.running)} running; {steps:,}{of} steps"

    def _count(self) -> tuple[int, int, int | None]:
        done = steps = 0
        total: int | None = 0
        for cell in self.cells:
            reached, length = _progress(cell)
            steps += reached or 0
            done += cell.name not in self.running and reached is not None and length is not None and reached >= length
            total = None if total is None or length is None else total + length
        return done, steps, total

    def tick(self, force: bool = False) -> None:
        """The overall line or bar, if it is due."""
        now = time.monotonic()
        if self.bar is not None:
            if force or now - self.shown >= 2:
                done, steps, total = self._count()
                self.bar.total, self.bar.n = total, steps
                self.bar.set_postfix_str(f"{done}/{len(self.cells)} cells done, {len(self.running)} running")
                self.shown = now
        elif force or now - self.shown >= self.every:
            print(self.line(), flush=True)
            self.shown = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cuda_devices(slot: int, nproc: int, gpus: int) -> str:
    """CUDA_VISIBLE_DEVICES of the run in ``slot``: ``nproc`` distinct GPUs (``nproc`` <= ``gpus``), the
    slots taking them in turn (more slots than GPUs share them, as one process a run does)."""
    return ",".join(str((slot * nproc + i) % gpus) for i in range(nproc))


def run_grid(cells: list[Cell], logdir: Path, parallel: int, nproc: int = 1) -> dict[str, int]:
    """Runs the cells that have a command, at most ``parallel`` at a time, each ``nproc`` processes (its
    own ``nproc`` GPUs, else the cores split between them); returns each one's exit code. A failure is
    one line: the exit code and the last line the run wrote."""
    import torch

    gpus = torch.cuda.device_count()
    threads = max(1, (os.cpu_count() or 1) // parallel // nproc)
    pending = [c for c in cells if c.cmd is not None]
    running: dict[str, tuple[Cell, subprocess.Popen, int, int]] = {}
    codes: dict[str, int] = {}
    free_slots = list(range(parallel))
    logdir.mkdir(parents=True, exist_ok=True)
    overall = Overall(cells)
    try:
        while pending or running:
            while pending and free_slots:
                cell = pending.pop(0)
                slot = free_slots.pop(0)
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = cuda_devices(slot, nproc, gpus)
                proc, offset = launch(cell, logdir, env, overall.say)
                running[cell.name] = (cell, proc, slot, offset)
                overall.started(cell)
            time.sleep(0.2)
            for name, (cell, proc, slot, offset) in list(running.items()):
                if proc.poll() is not None:
                    codes[name] = proc.returncode
                    free_slots.append(slot)
                    del running[name]
                    overall.ended(cell, outcome(cell, proc.returncode, logdir, offset))
            overall.tick()
    finally:
        overall.close()
    return codes


def _progress(cell: Cell) -> tuple[int | None, int | None]:
    """The step of the cell's newest checkpoint and its length (the grid's --total-steps, else the run's own)."""
    length = cell.target if cell.target is not None else saved_total_steps(cell.run_dir)
    return (checkpoint_step(cell.run_dir) if cell.run_dir.is_dir() else None), length


def summarize(cells: list[Cell], codes: dict[str, int]) -> tuple[str, bool]:
    """The grid's last line, and whether every cell finished: exited 0 (or had nothing to run) and
    has a checkpoint at its length (the grid's --total-steps, else its own)."""
    failed = [c.name for c in cells if codes.get(c.name, 0) != 0]
    unfinished = []
    for c in cells:
        if c.name in failed:
            continue
        reached, length = _progress(c)
        if reached is None or (length is not None and reached < length):
            at = "no checkpoint" if reached is None else f"step {reached:,} of {length:,}"
            unfinished.append(f"{c.name} ({at})")
    done = len(cells) - len(failed) - len(unfinished)
    line = f"{done} of {len(cells)} runs finished"
    line += f"; failed: {', '.join(failed)}" if failed else ""
    line += f"; unfinished: {', '.join(unfinished)}" if unfinished else ""
    return line, not (failed or unfinished)


def _count(text: str) -> int:
    """ "50000000", "5e7" or "2.5e6"."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of steps, got {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number of steps, got {text!r}")
    return int(value)


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def build_jobs(args: argparse.Namespace) -> list[Cell]:
    """The grid the command line asks for: the preset's cells and flags, with explicit flags replacing them."""
    preset = PRESETS[args.preset] if args.preset else None

    def pick(name: str) -> str:
        """The flag as given, else the preset's value, else the plain default."""
        given = getattr(args, name)
        if given is not None:
            return given
        if preset is None:
            return DEFAULTS[name]
        value = getattr(preset, name)
        return value if isinstance(value, str) else ",".join(value)

    agents, envs, norms = _split(pick("agents")), _split(pick("envs")), _split(pick("norms"))
    bad = [a for a in agents if a not in AGENTS] + [n for n in norms if not _known_norm(n)]
    if bad:
        raise CliError(f"unknown agent or norm: {', '.join(bad)}")
    if not (agents and envs and norms):
        raise CliError("--agents, --envs and --norms each need at least one name")
    _check_envs(envs)
    seeds = parse_seeds(pick("seeds"))
    if args.total_steps is not None and args.total_steps < 1:
        raise CliError(f"--total-steps must be at least 1, got {args.total_steps}")
    total = args.total_steps if args.total_steps is not None else (preset.total_steps if preset else None)
    # Per agent: the preset's flags, then the length, then the user's flags (the last of a repeated flag wins).
    preset_flags = preset.agent_args(total) if preset else {}
    user_flags = {a: shlex.split(getattr(args, f"{a}_args", "")) for a in AGENTS}
    length = ["--total-steps", str(total)] if total is not None else []
    extra = {a: preset_flags.get(a, []) + length + user_flags.get(a, []) for a in agents}
    norm_extra = preset.norm_args if preset else {}
    return plan(agents, envs, norms, seeds, Path(args.logdir), extra, norm_extra, args.nproc_per_run)


def _check_envs(env_ids: list[str]) -> None:
    """Unknown env ids fail here, before any run starts, with the closest known names."""
    from wnrl import envs

    for env_id in env_ids:
        try:
            envs.resolve(env_id)
        except ValueError as e:
            raise CliError(str(e)) from None


def _check_ray_flags(args: argparse.Namespace) -> None:
    """--ray's flags, and Ray itself, before anything is planned."""
    if args.jobs is not None:
        raise CliError("--jobs is for the local grid; with --ray the cluster's CPUs and GPUs decide (--cpus-per-run)")
    if args.cpus_per_run is not None and not args.cpus_per_run > 0:
        raise CliError(f"--cpus-per-run must be above 0, got {args.cpus_per_run:g}")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise CliError("--ray needs Ray: pip install 'wnrl[ray]'") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m wnrl.grid",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets:\n" + "\n".join(f"  {k}: {v.description}" for k, v in PRESETS.items()),
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="a known experiment (listed below)")
    p.add_argument("--agents", default=None, help=f"comma-separated (default: {DEFAULTS['agents']})")
    p.add_argument("--envs", default=None, help=f"comma-separated env ids (default: {DEFAULTS['envs']})")
    p.add_argument(
        "--norms",
        default=None,
        help=f"comma-separated; wn+project: wn with --wn-project (default: {DEFAULTS['norms']})",
    )
    p.add_argument("--seeds", default=None, help=f"range or list (default: {DEFAULTS['seeds']}; paper preset: 1)")
    p.add_argument(
        "--total-steps",
        type=_count,
        default=None,
        metavar="N",
        help="agent steps per run, for every agent (default: each agent's own; paper preset: 50M, as Nature DQN)",
    )
    p.add_argument(
        "--logdir", default=None, help="where the run directories go (default: runs/grid; a preset: runs/<preset>)"
    )
    p.add_argument(
        "--jobs", type=int, default=None, help="runs at a time (default: GPUs, else CPU cores, over --nproc-per-run)"
    )
    p.add_argument(
        "--nproc-per-run",
        type=int,
        default=1,
        metavar="N",
        help="processes per run: with N > 1 each run (new or resumed) is launched under torchrun with N processes "
        "on one machine, each on a GPU of its own where there are GPUs (README: Many GPUs; a run resumes with the N "
        "it began with)",
    )
    for agent in AGENTS:
        p.add_argument(
            f"--{agent}-args",
            default="",
            help=f"extra flags for every {agent.upper()} run, quoted (they win over the preset's)",
        )
    p.add_argument("--dry-run", action="store_true", help="print each run's command, one per line, and start none")
    p.add_argument(
        "--ray",
        action="store_true",
        help="run each cell as a Ray task: on the cluster RAY_ADDRESS or --ray-address names, else on a local Ray "
        "started for the grid (pip install 'wnrl[ray]'; README: Many machines)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="the Ray cluster's head (`ray start --head` prints it; implies --ray; default: $RAY_ADDRESS)",
    )
    p.add_argument(
        "--cpus-per-run",
        type=float,
        default=None,
        metavar="N",
        help="with --ray: the CPUs each run asks for (and its threads; default 1); on a cluster with GPUs "
        "each run also asks for one GPU (--nproc-per-run N: N times the CPUs and N GPUs, on one node)",
    )
    p.error = lambda message: p.exit(2, f"error: {message} (see {p.prog} --help)\n")
    args = p.parse_args(argv)
    if args.logdir is None:
        args.logdir = f"runs/{args.preset}" if args.preset else "runs/grid"
    args.ray = args.ray or args.ray_address is not None
    address = (args.ray_address or os.environ.get("RAY_ADDRESS") or None) if args.ray else None
    started, where = False, ""
    try:
        if args.cpus_per_run is not None and not args.ray:
            raise CliError("--cpus-per-run is for --ray (the local grid splits the cores between its --jobs)")
        if args.ray:
            _check_ray_flags(args)
            # the nodes see the grid's directory by the same path, whatever their working directory
            args.logdir = str(Path(args.logdir).absolute())
        nproc = args.nproc_per_run
        if nproc < 1:
            raise CliError(f"--nproc-per-run must be at least 1, got {nproc}")
        jobs = build_jobs(args)
        import torch

        gpus = torch.cuda.device_count()
        if not args.ray and 0 < gpus < nproc:
            raise CliError(f"--nproc-per-run {nproc} needs {nproc} GPUs for each run; this machine has {gpus}")
        parallel = args.jobs or max(1, (gpus or os.cpu_count() or 1) // nproc)
        if parallel < 1:
            raise CliError("--jobs must be at least 1")
        cpus = args.cpus_per_run or 1
        if args.ray and not args.dry_run and any(c.cmd is not None for c in jobs):
            from wnrl import raygrid

            started, where = raygrid.connect(address)
            asks = raygrid.task_resources(nproc, cpus, raygrid.node_gpus())
    except CliError as e:
        if started:  # the cluster cannot take the runs (raygrid.task_resources)
            import ray

            ray.shutdown()
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for cell in jobs:  # what a run would also do, beside the commands
            if cell.restart:
                print(f"{_restart_note(cell)}; a run removes it and starts the cell afresh", file=sys.stderr)
            elif cell.cmd is None:
                print(_finished_note(cell), file=sys.stderr)
        try:
            for cell in jobs:
                if cell.cmd is not None:
                    print(shlex.join(cell.cmd))
            sys.stdout.flush()
        except BrokenPipeError:  # piped into head: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    to_run = sum(c.cmd is not None for c in jobs)
    finished = f" ({len(jobs) - to_run} already finished)" if to_run < len(jobs) else ""
    each = f" of {nproc} processes" if nproc > 1 else ""
    if where:
        print(f"{len(jobs)} runs{each}{finished}, on {where}, each with {raygrid.per_run(asks)}, in {args.logdir}")
    elif args.ray:
        print(f"{len(jobs)} runs{each}{finished}, in {args.logdir}")
    else:
        print(f"{len(jobs)} runs{each}{finished}, {parallel} at a time, in {args.logdir}")
    for cell in jobs:
        if cell.cmd is None:
            print(f"finished {_finished_note(cell)}")
    sys.stdout.flush()
    if where:
        try:
            codes = raygrid.run_grid_on_ray(jobs, Path(args.logdir), cpus, asks)
        finally:
            if started:
                import ray

                ray.shutdown()
    else:
        codes = run_grid(jobs, Path(args.logdir), parallel, nproc)
    line, ok = summarize(jobs, codes)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
