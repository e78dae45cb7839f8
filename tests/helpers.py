"""Shared by the agent tests: read TensorBoard scalars, run the real CLI."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    return {tag: [(e.step, e.value) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}


def main_in_process(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m <module> *args`` as this process runs it: the module's ``main(argv)`` with stdout and
    stderr captured and its exit code, as :func:`cli` returns them, without starting an interpreter
    and importing torch again (~2 s a call on the developers' CPU). For input a command refuses before
    it trains; what only a process shows (signals, exit codes of a killed run) needs :func:`cli`. An
    exception escaping ``main`` (a traceback, in a terminal) fails the test that called this."""
    import importlib

    main = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's errors and --help
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


def here(module: str, *args) -> subprocess.CompletedProcess:
    """The command run in this process (its ``main``), its arguments made strings (paths welcome): for
    refusals that need no separate process."""
    return main_in_process(module, *map(str, args))


def train_in_process(*args: str) -> subprocess.CompletedProcess:
    """``python -m wnrl.train *args`` in this process (:func:`main_in_process`)."""
    return main_in_process("wnrl.train", *args)


def cli(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "wnrl.train", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
