"""Run state on disk: written atomically, the last few kept, loaded without executing code.

A checkpoint is a dict of tensors, numbers and strings saved with ``torch.save`` and read with
``torch.load(weights_only=True)``. It names the agent, env, config and library version that wrote it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wnrl

if TYPE_CHECKING:
    import torch
# torch itself is imported where a checkpoint is written or read: listing a run's checkpoints (the grid's
# planning, `python -m wnrl.grid --dry-run`) does not pay the ~2 s of importing it.

CHECKPOINT_DIR = "checkpoints"
# The layout of a checkpoint's dict. Bump it when a field changes meaning; a checkpoint without one is format 1.
CHECKPOINT_FORMAT = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:012d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """This run's checkpoints, oldest first."""
    d = Path(run_dir) / CHECKPOINT_DIR
    if not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if _NAME.match(p.name)), key=lambda p: int(_NAME.match(p.name).group(1)))


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Writes ``state`` as the checkpoint of ``step``: temp file, flush, fsync, rename; then keeps
    only the newest ``keep``. A failure while writing (disk full) leaves earlier checkpoints intact."""
    path = checkpoint_path(run_dir, step)
    save_atomic(path, {**state, "step": step, "format": CHECKPOINT_FORMAT, "wnrl_version": wnrl.__version__})
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def save_atomic(path: Path, obj: Any) -> None:
    """``torch.save`` to a temp file in the same directory, flush, fsync, rename over ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _looks_like_torch_save(path: Path) -> bool:
    """Whether ``path`` starts like a file ``torch.save`` writes (a zip archive, or a legacy pickle)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK") or head[:1] == b"\x80"


def load_newest(paths: list[Path]) -> tuple[Path, dict[str, Any]]:
    """The newest readable of a run's checkpoints ``paths`` (oldest first) and its state: a newest file cut
    mid-write (a filesystem without atomic rename) falls back to the one before, with a warning; none
    readable is the newest's CheckpointError."""
    errors = []
    for path in reversed(paths):
        try:
            state = load_checkpoint(path)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if errors:
            print(f"warning: skipped unreadable checkpoint(s): {'; '.join(errors)}", file=sys.stderr)
        return path, state
    raise CheckpointError(errors[0])


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint with ``weights_only=True``; a truncated or corrupt file is a CheckpointError."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():  # torch warns (several lines) about the pickle protocol of some garbage
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001
        # Any file can be handed in: torch's unpickler fails on text and other garbage with whatever the
        # bytes happen to mean (a text file starting "he" is a memo lookup of key 101: KeyError), not only
        # with UnpicklingError or RuntimeError. None of them is a checkpoint.
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        detail = f"{type(e).__name__}: {first}" if first and len(first) <= 60 else type(e).__name__
        torch_file = _looks_like_torch_save(path)
        kind = "a torch.save file cut short or damaged" if torch_file else "not a file torch.save wrote"
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or corrupt: {kind}; {detail}); "
            "give a run directory or a checkpoints/step_*.pt file"
        ) from None
    if not isinstance(state, dict) or "agent" not in state or "step" not in state:
        raise CheckpointError(f"{path}: not a wnrl checkpoint (no agent/step fields)")
    fmt = state.get("format", 1)
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: written by a newer wnrl ({state.get('wnrl_version', '?')}, checkpoint format {fmt}; this is "
            f"{wnrl.__version__}, which reads up to format {CHECKPOINT_FORMAT}): upgrade wnrl to load it"
        )
    return state
