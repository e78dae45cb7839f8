"""A run over several processes on ``torch.distributed``, as ``torchrun`` launches them.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each process; :func:`from_env`
reads them and joins the process group (NCCL when the run trains on CUDA GPUs, gloo on CPU). Without
``torchrun`` (no ``WORLD_SIZE``, or 1) it is a world of one: every helper here is then the identity
and nothing calls ``torch.distributed``, so a plain ``python -m wnrl.train`` is the single-process
run it always was.

Every collective has the group's timeout (``WNRL_DIST_TIMEOUT`` seconds, 300 by default): a rank that
died makes the others raise instead of waiting forever (and ``torchrun`` itself stops the other
ranks once one exits with an error).
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

DEFAULT_TIMEOUT_S = 300.0
# How long the other ranks wait for rank 0's own work (an evaluation of many long Atari games): a day.
# A rank 0 that dies meanwhile ends the run anyway (torchrun stops the other ranks).
RANK0_WORK_TIMEOUT_S = 24 * 3600.0


class World:
    """This process's place among the run's processes: ``rank`` of ``size``, ``local_rank`` on its machine."""

    def __init__(self, rank: int = 0, size: int = 1, local_rank: int = 0):
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self._waits: Any = None  # the process group of wait_for_rank0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # Collectives: all ranks call them at the same point of the loop (their step counts agree).

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of ``t`` over ranks (a new tensor; ``t`` itself in a world of one)."""
        if not self.distributed:
            return t
        out = t.detach().clone()
        dist.all_reduce(out)
        return out

    def all_gather_cat(self, t: torch.Tensor) -> torch.Tensor:
        """Every rank's ``t`` (same shape on all ranks), concatenated along dim 0 in rank order."""
        if not self.distributed:
            return t
        parts = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Every parameter and buffer of ``module`` set to rank 0's."""
        if not self.distributed:
            return
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def prepare_waits(self) -> None:
        """Makes the group :meth:`wait_for_rank0` waits in (all ranks call it together, before the first wait):
        gloo (CPU, also beside NCCL), with a timeout of ``RANK0_WORK_TIMEOUT_S`` instead of the collectives'."""
        if self.distributed and self._waits is None:
            self._waits = dist.new_group(backend="gloo", timeout=timedelta(seconds=RANK0_WORK_TIMEOUT_S))

    def wait_for_rank0(self) -> None:
        """Every rank waits here until rank 0 gets here: for work only rank 0 does (an evaluation), which may
        take longer than the collectives' timeout (``WNRL_DIST_TIMEOUT``)."""
        if self.distributed:
            self.prepare_waits()
            dist.barrier(group=self._waits)

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` for the gradient step: under DistributedDataParallel (gradients averaged over ranks,
        rank 0's parameters and buffers broadcast now) when there are several ranks; itself otherwise."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)  # buffers: rank 0's, at every forward

    def close(self, clean: bool = True) -> None:
        """Leaves the process group. ``clean`` (every rank got here without an error): first the garbage
        is collected and a barrier passed, so no rank tears its connections down while another is still
        in a collective. After an error neither: the other ranks may be gone. (The DDP wrappers, still
        referenced here, are collected once training returns: ``wnrl.train.main``.)

        Why collect: DDP's backward leaves reference cycles holding gloo work objects; freed during
        interpreter shutdown they abort the process ("terminate called without an active exception",
        SIGABRT). Measured: 2 spawned ranks, 3 DDP backward passes, wrapper deleted, then exit: 7 of 40
        launches aborted without a collection, 0 of 60 with one."""
        if not (self.distributed and dist.is_initialized()):
            return
        if clean:
            gc.collect()
            dist.barrier()
        dist.destroy_process_group()


def peer_lost(e: BaseException) -> bool:
    """Whether ``e`` is a collective that failed because another rank died or stopped answering
    (gloo's closed connection or timeout, or torch.distributed's own error types)."""
    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        w in text for w in ("gloo", "Connection closed by peer", "Timed out", "NCCL", "Connection reset")
    )


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as ``torchrun`` set them; (0, 1, 0) without it."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0"))


def timeout_s() -> float:
    return float(os.environ.get("WNRL_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))


def from_env(device: torch.device) -> World:
    """Joins the process group ``torchrun`` describes (nothing without it). ``device``: the run's
    device type; a CUDA run uses NCCL, a CPU run gloo."""
    rank, size, local_rank = world_from_env()
    if size <= 1:
        return World()
    _die_with_launcher()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s()))
    return World(rank, size, local_rank)


# looked up at import: die_with_parent also runs between fork and exec (a grid's preexec_fn)
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """Linux: this process is killed (SIGKILL) when its parent dies; elsewhere nothing. Used for a grid
    cell's run under Ray (wnrl.raygrid) and for torchrun's ranks (:func:`from_env`)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _die_with_launcher() -> None:
    """Under torchrun: this rank is killed when its launcher dies. torchrun stops its ranks when it
    exits, but a launcher killed outright (SIGKILL, a grid's Ray worker that died) would leave them
    running and writing the run directory beside whatever resumes it."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or _PRCTL is None:
        return
    die_with_parent()
    if os.getppid() == 1:  # the launcher was already gone before the line above
        os._exit(1)


def local_device(device: torch.device) -> torch.device:
    """A CUDA run's device for this process: ``LOCAL_RANK``'s GPU under ``torchrun`` (one process per
    GPU), ``device`` itself otherwise. Called before :func:`from_env` (NCCL binds to the current GPU)."""
    _, size, local_rank = world_from_env()
    if size > 1 and device.type == "cuda":
        index = local_rank % max(torch.cuda.device_count(), 1)
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device
