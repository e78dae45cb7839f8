"""``python -m wnrl.train {dqn,a2c,ppo,pqn} --env Breakout [--flag value ...]``: train an agent.

Every config field is a flag (``--help`` lists them with their defaults, each env family's where
they differ); env-family defaults (Atari, vector envs, Catch, MinAtar) apply to what is not set. Output goes
to ``runs/<run-name>/``: TensorBoard events, ``config.json`` and ``checkpoints/``. ``--resume
RUN_DIR`` continues a run from its last checkpoint, after any crash. Ctrl-C (SIGINT) or SIGTERM
finishes the current step, writes a checkpoint and exits 0; a Ctrl-C before the training loop began
(imports, env and network building) stops with one line and exit code 130, nothing trained. Bad
input prints one line and exits with code 2; a diverged run (non-finite loss or parameters) stops
with one line and exit code 1, keeping its last good checkpoint.
``--time-limit SECONDS`` stops the run as Ctrl-C would once its loop has run that long.

Under ``torchrun`` (``torchrun --nproc-per-node 2 -m wnrl.train a2c ...``) every process runs this
and the run is one run over all of them (:mod:`wnrl.distributed`, README "Many GPUs"); only rank 0
prints the summary, other ranks' errors are prefixed with their rank.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import json
import os
import sys
from pathlib import Path

# torch and the run machinery are imported inside main: a Ctrl-C while they load is a one-line stop too
from wnrl.config import (
    FAMILY_HELP,
    CliError,
    add_config_arguments,
    add_threads_argument,
    set_threads,
    settings_changed,
)
from wnrl.learning import CALL_OPTIONS

# What a resumed run cannot change: they fix its env, network shapes, replay layout and directory;
# the optimizer (its saved statistics belong to one algorithm: Adam's moments are not Adamax's, torch's
# RMSprop squares start at 0 where the TF-style ones start at 1);
# with --wn-project, the norm its directions are held at (switching the projection on or off mid-run
# would make one curve two experiments: a grown ‖v‖ snapped back at once is a jump of the effective
# learning rate).
FROZEN_ON_RESUME = (
    "env",
    "norm",
    "wn_project",
    "wn_init_norm",
    "hidden_sizes",
    "activation",
    "dueling",
    "wn_head",
    "num_envs",
    "optimizer",
    "seed",
    "logdir",
    "run_name",
)

# The parser's options that are not config fields (main takes them out before building the config).
NOT_CONFIG = ("agent", *CALL_OPTIONS)

# agent name -> (module, config class); modules are imported only when chosen
AGENTS = {
    "dqn": ("wnrl.agents.dqn", "DQNConfig"),
    "a2c": ("wnrl.agents.a2c", "A2CConfig"),
    "ppo": ("wnrl.agents.ppo", "PPOConfig"),
    "pqn": ("wnrl.agents.pqn", "PQNConfig"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _agent_module(name: str):
    module, cls = AGENTS[name]
    mod = importlib.import_module(module)
    return mod, getattr(mod, cls)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m wnrl.train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="agent", metavar="{" + ",".join(AGENTS) + "}", parser_class=_Parser)
    sub.required = True
    for name in AGENTS:
        try:
            mod, cls = _agent_module(name)
        except ImportError:
            continue
        p = sub.add_parser(
            name, help=(mod.__doc__ or "").strip().split("\n")[0], description=mod.__doc__, epilog=FAMILY_HELP
        )
        p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue this run from its last checkpoint")
        p.add_argument(
            "--time-limit",
            metavar="SECONDS",
            type=_seconds,
            default=None,
            help="stop as Ctrl-C would (checkpoint written, exit 0; --resume goes on) once the training loop has "
            "run this long (start-up not counted)",
        )
        add_threads_argument(p)
        add_config_arguments(p, cls)
    return parser


def saved_config(agent: str, run_dir: str) -> dict:
    """``run_dir``'s config.json (its settings history, ``changes``, left out), or a CliError (one line)
    when it is not a run directory of ``agent``."""
    path = Path(run_dir) / "config.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        raise CliError(f"--resume {run_dir}: not a run directory (no readable config.json)") from None
    if saved.pop("agent", agent) != agent:
        raise CliError(f"--resume {run_dir}: that run is not a {agent} run")
    saved.pop("changes", None)
    return saved


def resumed_config(cls, agent: str, run_dir: str, overrides: dict, saved: dict | None = None):
    """The run's config (``saved``, by default its config.json), with the overrides a resumed run may
    take (e.g. --total-steps)."""
    if saved is None:
        saved = saved_config(agent, run_dir)
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k not in ("agent", "changes")}
    # A field the saved config lacks (a run from before the field existed) ran with its default.
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    frozen = sorted(k for k in overrides if k in FROZEN_ON_RESUME and overrides[k] != fields.get(k, defaults.get(k)))
    if frozen:
        flags = ", ".join("--" + k.replace("_", "-") for k in frozen)
        raise CliError(f"{flags} cannot change when resuming {run_dir}; start a new run instead")
    return cls(**{**fields, **overrides})


def resumed_run(cls, agent: str, run_dir: str, overrides: dict):
    """``--resume RUN_DIR``: its config with the ``overrides`` (:func:`resumed_config`) and its newest
    checkpoint, or a CliError (one line) when there is nothing to continue. The config is the one that
    checkpoint was trained with, not config.json's: a resume that died before its first checkpoint has
    already rewritten config.json with its own flags, which trained nothing that is kept; a plain
    ``--resume`` after it goes on as the checkpoint did."""
    from wnrl.run import find_resume

    written = saved_config(agent, run_dir)  # a run directory of this agent, or one line saying what it is not
    resume = find_resume(run_dir, agent)
    trained = resume.state.get("config")
    stale = settings_changed(trained, written) if isinstance(trained, dict) else {}
    if stale:
        what = ", ".join(f"{k} {b!r} (checkpoint: {a!r})" for k, (a, b) in stale.items())
        resume.warnings.append(
            f"warning: {run_dir}/config.json says {what}, not what its step-{resume.step:,} checkpoint was trained "
            "with (a resume that stopped before its first checkpoint leaves its flags there): the run goes on "
            "with the checkpoint's settings and the flags given now"
        )
    cfg = resumed_config(cls, agent, run_dir, overrides, saved=dict(trained) if isinstance(trained, dict) else None)
    if cfg.total_steps <= resume.step:
        raise CliError(
            f"--resume {run_dir}: the run is at step {resume.step:,}, at or past --total-steps "
            f"{cfg.total_steps:,}: nothing to train; pass a --total-steps above {resume.step:,} to extend it"
        )
    return cfg, resume


def evaluation_line(summary: dict) -> str | None:
    """The summary's line on the evaluations (--eval-every), or None for a run without them."""
    ev = summary.get("eval")
    if ev is None:
        return None
    if not ev["evaluations"]:
        return "evaluations: none finished"
    return (
        f"evaluations: {ev['evaluations']}, best mean return {ev['best']:.2f} at step {ev['best_step']:,}, "
        f"last {ev['last']:.2f} at step {ev['last_step']:,}"
    )


def main(argv: list[str] | None = None) -> int:
    """The command. A Ctrl-C before the training loop (importing torch, building the envs and the
    network: the loop's own stop is not installed yet) is one line and exit code 130: nothing was
    trained and no checkpoint written."""
    limits: list = []  # _main's TimeLimit once made: it records whether the training loop started
    try:
        return _main(argv, limits)
    except KeyboardInterrupt:
        if limits and limits[0].loop_started:  # the loop's handler is gone again: Ctrl-C while the run closed
            what = "interrupted while the run was closing, after its training loop"
        else:
            what = "interrupted while starting, before training began: nothing trained, no checkpoint written"
        print(f"{_rank_prefix()}{what}", file=sys.stderr)
        return 130


def _rank_prefix() -> str:
    """The prefix of a rank's error lines under torchrun (ranks other than 0), read from the environment
    as ``distributed.world_from_env`` reads it, without importing torch."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and int(os.environ.get("RANK", "0") or 0):
        return f"rank {int(os.environ['RANK'])}: "
    return ""


def _main(argv: list[str] | None, limits: list) -> int:
    from wnrl.checkpoint import CheckpointError
    from wnrl.distributed import peer_lost, world_from_env
    from wnrl.run import TimeLimit, TrainingDiverged

    args = vars(build_parser().parse_args(argv))
    agent = args.pop("agent")
    resume_dir = args.pop("resume")
    limit = TimeLimit(args.pop("time_limit"))
    limits.append(limit)
    set_threads(args.pop("threads"))
    rank, world_size, _ = world_from_env()  # under torchrun: every rank runs main; rank 0 reports
    who = f"rank {rank}: " if rank else ""
    try:
        mod, cls = _agent_module(agent)
        if resume_dir is None:
            cfg = cls.for_env(args.pop("env", cls.env), **args)
            with limit:
                summary = mod.train(cfg)
        else:
            cfg, resume = resumed_run(cls, agent, resume_dir, args)
            with limit:
                summary = mod.train(cfg, resume=resume)
    except (CliError, CheckpointError) as e:
        print(f"{who}error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"{who}error: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        if world_size <= 1 or not peer_lost(e):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:200]
        print(
            f"{who}error: another rank died or stopped answering ({first}); this rank stopped without a "
            "checkpoint: resume from the last one with the same torchrun command",
            file=sys.stderr,
        )
        return 1
    if world_size > 1:
        # DDP's wrappers (reference cycles) freed now, while the interpreter is whole: gloo work objects
        # freed during interpreter shutdown can abort the process (SIGABRT)
        gc.collect()
    if rank:
        return 0
    launch = "python -m wnrl.train"
    if world_size > 1:  # the same torchrun shape: a resume needs the same number of processes
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        nodes = f"--nnodes {world_size // per_node} " if world_size > per_node else ""
        launch = f"torchrun {nodes}--nproc-per-node {per_node} -m wnrl.train"
    if evaluation_line(summary):
        print(evaluation_line(summary))
    if summary["interrupted"]:
        why = f"time limit of {limit.seconds:g} s reached" if limit.reached else "interrupted"
        print(
            f"{why} at step {summary['steps']:,}; checkpoint written. Resume with:\n"
            f"  {launch} {agent} --resume {summary['run_dir']}"
        )
        return 0
    n = len(summary["recent_returns"])
    returns = f"mean return of the last {n}: {summary['mean_return']:.2f}" if n else "no episode finished"
    print(
        f"done: {summary['steps']:,} steps, {summary['episodes']} episodes, {returns}\n"
        f"run: {summary['run_dir']}   (tensorboard --logdir {summary['run_dir'].parent})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
