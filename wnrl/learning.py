"""Training from Python: ``wnrl.learn``, the command line's run as one call.

    import wnrl
    run = wnrl.learn("dqn", env="CartPole-v1", total_steps=100_000, norm="wn", seed=1)
    run.run_dir, run.summary["mean_return"]     # where it went, how it ended
    agent = run.agent()                         # the trained agent (wnrl.load of its run directory)

Every option of ``python -m wnrl.train`` is a keyword by its config field's name (``learning_rate=3e-4``,
``eval_every=10_000``); what is not given takes the env family's default, as on the command line. A bad
keyword or value is one ``ValueError`` whose message is the command line's (a misspelled keyword names the
nearest valid one). Ctrl-C (SIGINT, as a notebook's interrupt sends it) stops the run as the command's does:
the current step finishes, a checkpoint is written, and the result says ``interrupted``; ``resume=RUN_DIR``
goes on from it. (This module is not named ``learn``: a module of that name would hide the function
``wnrl.learn`` once imported, as ``wnrl.train``, the command's module, would hide a function of its name.)
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any

from wnrl.config import CliError, _base_type, _parse_int_tuple

# Keywords of learn() that are the command's options but no config field.
CALL_OPTIONS = ("resume", "time_limit", "threads")


class TrainingRun:
    """What :func:`learn` returns: ``run_dir``, ``summary`` (the dict the agent's ``train`` returns: steps,
    episodes, ``mean_return`` of the last 100 games, ``interrupted``, and ``eval`` with the best evaluation
    and its step when the run evaluated) and ``agent()``, the trained agent of its newest checkpoint."""

    def __init__(self, agent: str, config: Any, summary: dict[str, Any]):
        self.agent_name = agent
        self.config = config
        self.summary = summary
        self.run_dir = Path(summary["run_dir"])

    @property
    def steps(self) -> int:
        return int(self.summary["steps"])

    @property
    def interrupted(self) -> bool:
        """Stopped by Ctrl-C, SIGTERM or ``time_limit`` before ``total_steps`` (``resume=run_dir`` goes on)."""
        return bool(self.summary["interrupted"])

    @property
    def mean_return(self) -> float:
        """The mean raw score of the last 100 training games (NaN if none finished)."""
        return float(self.summary["mean_return"])

    @property
    def best_eval(self) -> tuple[float, int] | None:
        """(best mean evaluation return, its step) with ``eval_every``; None without evaluations."""
        ev = self.summary.get("eval")
        return None if not ev or not ev["evaluations"] else (ev["best"], ev["best_step"])

    def agent(self, device: str = "auto", seed: int | None = None):
        """The trained agent of the run's newest checkpoint: ``wnrl.load(run.run_dir)``."""
        from wnrl.trained import load

        return load(self.run_dir, device=device, seed=seed)

    def __repr__(self) -> str:
        state = "interrupted" if self.interrupted else "done"
        return f"TrainingRun({self.agent_name} on {self.config.env}, {state} at step {self.steps:,}, {self.run_dir})"


def learn(
    agent: str,
    env: str | None = None,
    *,
    resume: str | Path | None = None,
    time_limit: float | None = None,
    threads: int | None = None,
    **options: Any,
) -> TrainingRun:
    """Trains ``agent`` ("dqn", "a2c", "ppo" or "pqn") on ``env`` as ``python -m wnrl.train AGENT --env ENV`` with
    ``options`` as its flags (``total_steps=100_000`` for ``--total-steps 100000``) would, and returns a
    :class:`TrainingRun`. ``resume``: a run directory to continue (``--resume``; ``total_steps`` then extends
    it); ``time_limit``: seconds of training after which it stops as Ctrl-C would; ``threads``: torch's
    threads in this process (``torch.set_num_threads``). Raises ValueError (one line, the command's message)
    for bad input; a run whose loss or parameters turn non-finite raises ``wnrl.run.TrainingDiverged``."""
    from wnrl.train import AGENTS

    try:
        if agent not in AGENTS:
            close = _nearest(agent, AGENTS)
            raise CliError(
                f"unknown agent {agent!r}{f' ({close[2:]})' if close else ''}: choose one of {', '.join(AGENTS)}"
            )
        return _learn(agent, env, resume, time_limit, threads, options)
    except CliError as e:  # the command's one-line messages, without the frames that raised them
        raise ValueError(str(e)) from None
    except ValueError as e:
        from wnrl.checkpoint import CheckpointError

        if isinstance(e, CheckpointError):  # a run to resume that cannot be: the same, its own type kept
            raise e.with_traceback(None) from None
        raise


def _learn(agent: str, env: str | None, resume, time_limit, threads, options: dict[str, Any]) -> TrainingRun:
    from wnrl.config import set_threads
    from wnrl.train import _agent_module, resumed_run

    mod, cls = _agent_module(agent)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in options:
        if name not in fields:
            raise CliError(
                f"unknown option {name!r} for {agent}{_nearest(name, [*fields, *CALL_OPTIONS])} (wnrl.learn takes "
                f"every field of {cls.__name__}, as python -m wnrl.train {agent} --help lists them with dashes)"
            )
    hints = typing.get_type_hints(cls)
    values = {name: _typed(name, value, hints[name]) for name, value in options.items()}
    if env is not None:
        values["env"] = _typed("env", env, str)
    if time_limit is not None and (isinstance(time_limit, bool) or not _number(time_limit) or not time_limit > 0):
        raise CliError(f"--time-limit: expected a positive number of seconds, got {time_limit!r}")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise CliError(f"--threads: expected a positive whole number, got {threads!r}")
        set_threads(threads)

    from wnrl.run import TimeLimit, TrainingDiverged

    if resume is None:
        cfg = cls.for_env(values.pop("env", cls.env), **values)
        found = None
    else:
        cfg, found = resumed_run(cls, agent, str(resume), values)
    limit = TimeLimit(time_limit)
    try:
        with limit:
            summary = mod.train(cfg, resume=found)
    except TrainingDiverged as e:
        raise e.with_traceback(None) from None
    result = TrainingRun(agent, cfg, summary)
    if result.interrupted:
        why = f"time limit of {time_limit:g} s reached" if limit.reached else "interrupted"
        print(
            f"{why} at step {result.steps:,}; checkpoint written. Resume with: "
            f"wnrl.learn({agent!r}, resume={str(result.run_dir)!r})"
        )
    return result


def _nearest(name: str, valid) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f": did you mean {close[0]!r}?" if close else ""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _typed(name: str, value: Any, hint: Any) -> Any:
    """``value`` as field ``name`` of type ``hint`` holds it, or a CliError as the command's parser says it:
    whole numbers for counts (``1e5`` too), numbers for rates, True/False for switches, strings for names,
    integers (or "64,64") for layer sizes; None where the field allows it."""
    flag = "--" + name.replace("_", "-")
    if value is None and _base_type(hint) is not hint:  # an Optional field
        return None
    tp = _base_type(hint)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise CliError(f"argument {flag}: expected True or False, got {value!r}")
    if tp is int:
        if _number(value) and float(value).is_integer():
            return int(value)
        raise CliError(f"argument {flag}: expected an integer, got {value!r}")
    if tp is float:
        if _number(value):
            return float(value)
        raise CliError(f"argument {flag}: expected a number, got {value!r}")
    if typing.get_origin(tp) is tuple:
        if isinstance(value, str):
            try:
                return _parse_int_tuple(value)
            except Exception:
                pass
        elif isinstance(value, (list, tuple)) and all(_number(v) and float(v).is_integer() for v in value):
            return tuple(int(v) for v in value)
        raise CliError(f"argument {flag}: expected integers like (64, 64), got {value!r}")
    if isinstance(value, str):
        return value
    raise CliError(f"argument {flag}: expected a string, got {value!r}")
