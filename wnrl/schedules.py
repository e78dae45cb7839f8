"""Linear schedules (ε-greedy exploration, learning-rate decay) that stay continuous across resumes.

A schedule is a straight line from ``(s0, v0)`` to ``(s1, v1)`` over agent steps, flat outside.
Its ends are saved with each checkpoint. A run resumed with a new ``--total-steps`` does not
recompute the line from step 0 (that would make ε or the learning rate jump: a 10M-step run at
step 500k extended to 20M would go from ε = 0.505 back to 0.75); it continues from the value the
schedule had at the resume step and reaches its end value where the new length puts the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any

__all__ = ["LinearSchedule", "continued_schedule", "lr_schedule", "set_learning_rate"]


@dataclass(frozen=True)
class LinearSchedule:
    """``v0`` up to step ``s0``, ``v1`` from step ``s1`` on, linear in between."""

    s0: float
    v0: float
    s1: float
    v1: float

    @classmethod
    def from_start(cls, start: float, end: float, duration: float) -> LinearSchedule:
        """``start`` at step 0 to ``end`` at step ``duration`` (``end`` at once if duration ≤ 0)."""
        return cls(0.0, start if duration > 0 else end, max(float(duration), 0.0), end)

    def __call__(self, step: float) -> float:
        if step >= self.s1:
            return self.v1
        if step <= self.s0:
            return self.v0
        return self.v0 + (self.v1 - self.v0) * (step - self.s0) / (self.s1 - self.s0)

    def continued(self, step: float, s1: float, v1: float) -> LinearSchedule:
        """From this schedule's value at ``step``, linear to ``v1`` at ``s1`` (at once if ``s1 ≤ step``).

        Continuing with the ends a schedule already has changes nothing from ``step`` on."""
        return LinearSchedule(float(step), self(step), max(float(s1), float(step)), v1)

    def to_list(self) -> list[float]:
        return [float(x) for x in astuple(self)]

    @classmethod
    def from_list(cls, values) -> LinearSchedule:
        s0, v0, s1, v1 = (float(x) for x in values)
        return cls(s0, v0, s1, v1)


def continued_schedule(
    make: Callable[[Any], LinearSchedule], cfg: Any, name: str, checkpoint: dict[str, Any] | None
) -> LinearSchedule:
    """``make(cfg)`` for a new run (``checkpoint`` None). For a resumed one, the schedule ``name``
    saved in its checkpoint, continued from the checkpoint's step to the end ``make(cfg)`` sets: a
    new --total-steps moves where the schedule ends, never its value at the resume step.
    (Checkpoints from before schedules were saved: the schedule their own config made.)"""
    fresh = make(cfg)
    if checkpoint is None:
        return fresh
    saved = checkpoint.get("schedules", {}).get(name)
    if saved is not None:
        old = LinearSchedule.from_list(saved)
    else:
        old = make(dataclasses.replace(cfg, total_steps=int(checkpoint["config"]["total_steps"])))
    return old.continued(int(checkpoint["step"]), fresh.s1, fresh.v1)


def lr_schedule(cfg: Any) -> LinearSchedule:
    """The learning rate's factor for an agent config with ``lr_decay``: 1 → 0 over total_steps, else 1."""
    return LinearSchedule.from_start(1.0, 0.0 if cfg.lr_decay else 1.0, cfg.total_steps)


def set_learning_rate(optimizer: Any, lr: float) -> None:
    """Sets every parameter group of a ``torch.optim`` optimizer to ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
