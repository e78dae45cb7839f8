"""``python -m wnrl.train {dqn,a2c} --env Breakout [--flag value ...]``: train an agent.

Every config field is a flag (``--help`` lists them with their defaults); env-family defaults
(Atari vs vector envs) apply to what is not set. Output goes to ``runs/<run-name>/``: TensorBoard
events, ``config.json`` and ``checkpoints/``. Bad input prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from wnrl.config import CliError, add_config_arguments

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
        add_config_arguments(p, cls)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    agent = args.pop("agent")
    mod, cls = _agent_module(agent)
    try:
        cfg = cls.for_env(args.pop("env", cls.env), **args)
        summary = mod.train(cfg)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"done: {summary['steps']:,} steps, {summary['episodes']} episodes, "
        f"mean return of the last {len(summary['recent_returns'])}: {summary['mean_return']:.2f}\n"
        f"run: {summary['run_dir']}   (tensorboard --logdir {summary['run_dir'].parent})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
