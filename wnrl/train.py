"""``python -m wnrl.train {dqn,a2c} --env Breakout [--flag value ...]``: train an agent.

Every config field is a flag (``--help`` lists them with their defaults); env-family defaults
(Atari vs vector envs) apply to what is not set. Output goes to ``runs/<run-name>/``: TensorBoard
events, ``config.json`` and ``checkpoints/``. ``--resume RUN_DIR`` continues a run from its last
checkpoint, after any crash. Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a
checkpoint and exits 0. Bad input prints one line and exits with code 2; a diverged run (non-finite
loss or parameters) stops with one line and exit code 1, keeping its last good checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from agents.common import TrainingDiverged, find_resume
from wnrl.checkpoint import CheckpointError
from wnrl.config import CliError, add_config_arguments

# What a resumed run cannot change: they fix its env, network shapes, replay layout and directory.
FROZEN_ON_RESUME = (
    "env",
    "norm",
    "hidden_sizes",
    "activation",
    "dueling",
    "wn_head",
    "num_envs",
    "seed",
    "logdir",
    "run_name",
)

# agent name -> (module, config class); modules are imported only when chosen
AGENTS = {"dqn": ("agents.dqn", "DQNConfig"), "a2c": ("agents.a2c", "A2CConfig")}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _agent_module(name: str):
    module, cls = AGENTS[name]
    mod = importlib.import_module(module)
    return mod, getattr(mod, cls)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m wnrl.train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="agent", metavar="{" + ",".join(AGENTS) + "}", parser_class=_Parser)
    sub.required = True
    for name in AGENTS:
        try:
            mod, cls = _agent_module(name)
        except ImportError:
            continue
        p = sub.add_parser(name, help=(mod.__doc__ or "").strip().split("\n")[0], description=mod.__doc__)
        p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue this run from its last checkpoint")
        add_config_arguments(p, cls)
    return parser


def resumed_config(cls, agent: str, run_dir: str, overrides: dict):
    """The config saved in ``run_dir``, with the overrides a resumed run may take (e.g. --total-steps)."""
    path = Path(run_dir) / "config.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        raise CliError(f"--resume {run_dir}: not a run directory (no readable config.json)") from None
    if saved.pop("agent", agent) != agent:
        raise CliError(f"--resume {run_dir}: that run is not a {agent} run")
    frozen = sorted(k for k in overrides if k in FROZEN_ON_RESUME and overrides[k] != saved.get(k))
    if frozen:
        flags = ", ".join("--" + k.replace("_", "-") for k in frozen)
        raise CliError(f"{flags} cannot change when resuming {run_dir}; start a new run instead")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
    return cls(**{**fields, **overrides})


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    agent = args.pop("agent")
    resume_dir = args.pop("resume")
    mod, cls = _agent_module(agent)
    try:
        if resume_dir is None:
            cfg = cls.for_env(args.pop("env", cls.env), **args)
            summary = mod.train(cfg)
        else:
            cfg = resumed_config(cls, agent, resume_dir, args)
            summary = mod.train(cfg, resume=find_resume(resume_dir, agent))
    except (CliError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if summary["interrupted"]:
        print(
            f"interrupted at step {summary['steps']:,}; checkpoint written. Resume with:\n"
            f"  python -m wnrl.train {agent} --resume {summary['run_dir']}"
        )
        return 0
    print(
        f"done: {summary['steps']:,} steps, {summary['episodes']} episodes, "
        f"mean return of the last {len(summary['recent_returns'])}: {summary['mean_return']:.2f}\n"
        f"run: {summary['run_dir']}   (tensorboard --logdir {summary['run_dir'].parent})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
