"""What every run needs before training: a device, seeds, a fresh run directory."""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import numpy as np
import torch

from wnrl.config import CliError


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks the GPU when torch sees one; ``cuda`` without a GPU is a clear error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise CliError(f"unknown --device {spec!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError("--device cuda but torch sees no CUDA GPU (CPU-only build or no driver); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CliError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s) visible")
    elif device.type != "cpu":
        raise CliError(f"unsupported --device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device


def seed_everything(seed: int) -> np.random.Generator:
    """Seeds Python, numpy and torch; returns the numpy generator the agent draws from."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def default_run_name(env_id: str, agent: str, norm: str, seed: int) -> str:
    safe_env = re.sub(r"[^A-Za-z0-9_.-]+", "-", env_id)
    return f"{safe_env}__{agent}__{norm}__s{seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def new_run_dir(logdir: str, name: str) -> Path:
    """Creates ``logdir/name``; refuses an existing one (never overwrite a run) or an unwritable logdir."""
    if not name or "/" in name or name in (".", ".."):
        raise CliError(f"--run-name {name!r} must be a plain directory name")
    root = Path(logdir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot create --logdir {logdir}: {e.strerror}; choose a writable directory") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise CliError(f"--logdir {logdir} is not writable; choose a writable directory")
    run_dir = root / name
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise CliError(
            f"run directory {run_dir} already exists; choose another --run-name, or resume it with --resume {run_dir}"
        ) from None
    return run_dir
