"""Linear schedules (ε-greedy exploration, learning-rate decay) over a run's agent steps.

A schedule is a straight line from ``(s0, v0)`` to ``(s1, v1)`` over agent steps, flat outside, made
from the run's config alone. A resumed run with its config unchanged follows the same line, so it
goes on exactly where it stopped. A run resumed with a new ``--total-steps`` (or another schedule
flag) follows, from its resume step on, the line of its new config: **an extended run is the run
that had been planned for the new length** (Stable-Baselines3's ``learn(..., reset_num_timesteps=False)``
re-plans the same way). So a finished 2,000-step A2C run extended to 6,000 goes on at 2/3 of its
learning rate, decaying to 0 at 6,000, where continuing the old line would have kept it at 0 and
trained nothing; a 10M-step DQN extended to 20M at step 500k goes on at the ε a 20M run has at
500k (0.75, up from 0.505). The line's ends are saved with each checkpoint, as a record.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

__all__ = ["LinearSchedule", "lr_schedule", "set_learning_rate"]


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

    def to_list(self) -> list[float]:
        return [float(x) for x in astuple(self)]

    @classmethod
    def from_list(cls, values) -> LinearSchedule:
        s0, v0, s1, v1 = (float(x) for x in values)
        return cls(s0, v0, s1, v1)


def lr_schedule(cfg: Any) -> LinearSchedule:
    """The learning rate's factor for an agent config with ``lr_decay``: 1 → 0 over total_steps, else 1."""
    return LinearSchedule.from_start(1.0, 0.0 if cfg.lr_decay else 1.0, cfg.total_steps)


def set_learning_rate(optimizer: Any, lr: float) -> None:
    """Sets every parameter group of a ``torch.optim`` optimizer to ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
