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


def assert_holds_the_checkpoints_weights(agent, checkpoint: Path) -> None:
    """``agent`` (from ``wnrl.load``) acts with exactly the weights the checkpoint file saved, not with
    a freshly built network's: every tensor equal, none missing or extra."""
    import torch

    from wnrl.checkpoint import load_checkpoint

    saved = load_checkpoint(checkpoint)["model"]
    held = agent.net.state_dict()
    assert sorted(held) == sorted(saved)
    for key, value in held.items():
        torch.testing.assert_close(value.cpu(), saved[key], rtol=0, atol=0, msg=key)


def assert_trained_with_norm(run_dir, norm: str) -> None:
    """The run's saved network is a ``norm`` network: ``wnrl.load`` builds one from the run's config and
    loads the saved weights strictly (a network trained with another norm has other tensors, so the
    load fails), and its layers are the ones ``norm`` names (see wnrl.nets)."""
    from torch import nn

    import wnrl
    from wnrl.layers import MeanOnlyBatchNorm, WNConv2d, WNLinear

    kinds = {type(m) for m in wnrl.load(run_dir, device="cpu").net.modules()}
    found = {
        "wn": bool(kinds & {WNLinear, WNConv2d}),
        "mobn": MeanOnlyBatchNorm in kinds,
        "batch": bool(kinds & {nn.BatchNorm1d, nn.BatchNorm2d}),
        "layer": bool(kinds & {nn.LayerNorm, nn.GroupNorm}),
    }
    expected = {"none": set(), "wn": {"wn"}, "wn_mobn": {"wn", "mobn"}, "batch": {"batch"}, "layer": {"layer"}}
    assert {k for k, v in found.items() if v} == expected[norm], (norm, sorted(k.__name__ for k in kinds))
