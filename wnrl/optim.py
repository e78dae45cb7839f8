"""Optimizers the agents use that ``torch.optim`` lacks.

``RMSpropTF`` is RMSprop as TensorFlow computes it, which is what OpenAI baselines' A2C and
rl-baselines3-zoo's tuned Atari A2C (SB3's ``RMSpropTFLike``) train with. It differs from
``torch.optim.RMSprop`` on two points, both of which matter in the first updates of a run:

* the running mean of squared gradients starts at **one**, not zero. Torch's first step is
  ``lr · g / sqrt((1 − α) g²) = lr / sqrt(1 − α)`` per element, 10× the learning rate at α = 0.99,
  whatever the gradient's size; TF's first steps are ``lr · g`` and grow as the average learns the
  gradient's scale;
* ``eps`` sits **inside** the square root: ``g / sqrt(E[g²] + eps)`` (torch: ``/ (sqrt(E[g²]) + eps)``).
"""

from __future__ import annotations

import torch

__all__ = ["RMSpropTF", "make_optimizer", "OPTIMIZERS"]


class RMSpropTF(torch.optim.Optimizer):
    """``E[g²] ← α·E[g²] + (1 − α)·g²`` (``E[g²]`` starts at 1), then ``θ ← θ − lr · g / sqrt(E[g²] + eps)``."""

    def __init__(self, params, lr: float = 7e-4, alpha: float = 0.99, eps: float = 1e-5):
        if lr <= 0 or not 0.0 <= alpha < 1.0 or eps < 0:
            raise ValueError(f"RMSpropTF needs lr > 0, 0 <= alpha < 1, eps >= 0; got {lr}, {alpha}, {eps}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, squares = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("RMSpropTF does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                squares.append(state["square_avg"])
            if not params:
                continue
            alpha = group["alpha"]
            # One fused pass per operation over all parameters (no Python loop per tensor).
            torch._foreach_mul_(squares, alpha)
            torch._foreach_addcmul_(squares, grads, grads, value=1.0 - alpha)
            denom = torch._foreach_add(squares, group["eps"])
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])
        return loss


OPTIMIZERS = ("rmsprop_tf", "rmsprop", "adam")


def make_optimizer(name: str, params, lr: float, alpha: float = 0.99, eps: float = 1e-5) -> torch.optim.Optimizer:
    """``rmsprop_tf`` (baselines' A2C), ``rmsprop`` (torch's) or ``adam`` (``eps`` as given, betas torch's)."""
    if name == "rmsprop_tf":
        return RMSpropTF(params, lr=lr, alpha=alpha, eps=eps)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=eps)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
