"""Optimizers the agents use that ``torch.optim`` lacks.

``RMSpropTF`` is RMSprop as TensorFlow computes it, which is what OpenAI baselines' A2C and
rl-baselines3-zoo's tuned Atari A2C (SB3's ``RMSpropTFLike``) train with. It differs from
``torch.optim.RMSprop`` on two points, both of which matter in the first updates of a run:

* the running mean of squared gradients starts at **one**, not zero. Torch's first step is
  ``lr · g / sqrt((1 − α) g²) = lr / sqrt(1 − α)`` per element, 10× the learning rate at α = 0.99,
  whatever the gradient's size; TF's first steps are ``lr · g`` and grow as the average learns the
  gradient's scale;
* ``eps`` sits **inside** the square root: ``g / sqrt(E[g²] + eps)`` (torch: ``/ (sqrt(E[g²]) + eps)``).

``Adam``, ``RAdam``, ``Adamax`` and ``RMSprop`` are torch's, computing exactly what torch's do, but
without importing ``torch._dynamo`` in a process that compiles nothing. Torch's optimizers import it
on their first ``step`` (to mark graph breaks for ``torch.compile``) and on their construction (their
``add_param_group`` is wrapped in "do not compile this", whose wrapper imports it on its first call):
1.4–2.3 CPU seconds of every process that trains, against ~2 s for ``import torch`` itself; on a
short run (a test, a grid cell, a resumed run that only writes its last checkpoint) that is a quarter
to a third of the process. Until something imports ``torch._dynamo`` (``torch.compile`` does) there
is nothing that could be compiling, so those marks have nothing to do; from then on the classes
below do exactly what torch's do (:func:`defer_dynamo_import`).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch

__all__ = ["RMSpropTF", "Adam", "RAdam", "Adamax", "RMSprop", "make_optimizer", "OPTIMIZERS", "defer_dynamo_import"]

_CACHE = "__dynamo_disable"  # where torch's "do not compile this" wrapper keeps the version it builds


def _dynamo():
    """``torch._dynamo`` once something in this process has imported it (fully), else None."""
    module = sys.modules.get("torch._dynamo")
    return module if module is not None and hasattr(module, "disable") else None


class _UntilDynamo:
    """What torch's "do not compile this" wrapper calls in place of the version of ``fn`` it would
    build by importing ``torch._dynamo``: ``fn`` itself while nothing has imported it, torch's own
    version from the first call after."""

    def __init__(self, fn, recursive: bool):
        self.fn, self.recursive = fn, recursive

    def __call__(self, *args: Any, **kwargs: Any):
        dynamo = _dynamo()
        if dynamo is None:
            return self.fn(*args, **kwargs)
        disabled = dynamo.disable(self.fn, self.recursive, wrapping=False)
        setattr(self.fn, _CACHE, disabled)  # torch's wrapper calls it directly from now on
        return disabled(*args, **kwargs)


def _cells(f) -> dict[str, Any]:
    out = {}
    for name, cell in zip(f.__code__.co_freevars, getattr(f, "__closure__", None) or ()):
        try:
            out[name] = cell.cell_contents
        except ValueError:  # an empty cell
            pass
    return out


_deferred = False


def defer_dynamo_import() -> int:
    """Gives torch's "do not compile this" wrappers in ``torch.optim`` (the optimizers' methods and
    the functional optimizers they call) :class:`_UntilDynamo` in place of the version they would
    import ``torch._dynamo`` to build. Once per process, and nothing once ``torch._dynamo`` is
    imported; a torch whose wrappers look different is left as it is. Returns how many it changed."""
    global _deferred
    if _deferred or "torch._dynamo" in sys.modules:
        return 0
    _deferred = True
    import torch._compile

    inner = next(
        (c for c in torch._compile._disable_dynamo.__code__.co_consts if getattr(c, "co_name", None) == "inner"),
        None,
    )
    if inner is None:
        return 0
    wrappers = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("torch.optim") or module is None:
            continue
        for obj in list(vars(module).values()):
            for f in vars(obj).values() if isinstance(obj, type) else (obj,):
                if getattr(f, "__code__", None) is inner:
                    wrappers.add(f)
                elif inspect.isfunction(f):  # the functional optimizers wrap theirs once more
                    wrappers.update(v for v in _cells(f).values() if getattr(v, "__code__", None) is inner)
    changed = 0
    for w in wrappers:
        cells = _cells(w)
        fn = cells.get("fn")
        if fn is not None and getattr(fn, _CACHE, None) is None:
            setattr(fn, _CACHE, _UntilDynamo(fn, cells.get("recursive", True)))
            changed += 1
    return changed


class _StepWithoutDynamo:
    """Mixed in before a torch optimizer: its ``step`` as torch's ``_use_grad_for_differentiable``
    runs it (grad mode set to the optimizer's ``differentiable`` for the step), without that
    wrapper's ``import torch._dynamo`` and graph breaks while nothing has imported it."""

    _torch_step = None  # the base's step as torch wraps it (grad mode and graph breaks)
    _raw_step = None  # the step itself
    # foreach=True unless the caller chooses (torch picks it on GPUs only): one op per kind of update
    # over all parameters instead of a Python loop of ~10 ops per tensor. Set where it gives the same
    # bits as the loop on CPU (RMSprop, Adam: checked in tests/test_optim_schedules.py); RAdam's
    # foreach version rounds differently (2e-7), Adamax's is no faster: both keep torch's default.
    _foreach_by_default = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        base = next(b for b in cls.__mro__[1:] if b.__module__.startswith("torch.optim"))
        cls._torch_step = inspect.unwrap(
            base.step, stop=lambda f: getattr(getattr(f, "__code__", None), "co_name", None) == "_use_grad"
        )
        cls._raw_step = inspect.unwrap(base.step)

    def __init__(self, *args: Any, **kwargs: Any):
        defer_dynamo_import()
        if self._foreach_by_default and kwargs.get("foreach") is None and not kwargs.get("fused"):
            kwargs["foreach"] = True
        super().__init__(*args, **kwargs)

    def step(self, closure=None):
        cls = type(self)  # the functions themselves (through an instance they would be new bound methods)
        if _dynamo() is not None or cls._torch_step is cls._raw_step:  # compiling, or a torch without _use_grad
            return cls._torch_step(self, closure)
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return cls._raw_step(self, closure)
        finally:
            torch.set_grad_enabled(previous)


class Adam(_StepWithoutDynamo, torch.optim.Adam):
    """``torch.optim.Adam``, without importing ``torch._dynamo`` while nothing compiles (foreach by default)."""

    _foreach_by_default = True


class RAdam(_StepWithoutDynamo, torch.optim.RAdam):
    """``torch.optim.RAdam``, without importing ``torch._dynamo`` while nothing compiles."""


class Adamax(_StepWithoutDynamo, torch.optim.Adamax):
    """``torch.optim.Adamax``, without importing ``torch._dynamo`` while nothing compiles."""


class RMSprop(_StepWithoutDynamo, torch.optim.RMSprop):
    """``torch.optim.RMSprop``, without importing ``torch._dynamo`` while nothing compiles (foreach by
    default: ~0.2 of ~3.2 ms less per agent step of MinAtar's DQN on one CPU thread, the same bits)."""

    _foreach_by_default = True


class RMSpropTF(torch.optim.Optimizer):
    """``E[g²] ← α·E[g²] + (1 − α)·g²`` (``E[g²]`` starts at 1), then ``θ ← θ − lr · g / sqrt(E[g²] + eps)``."""

    def __init__(self, params, lr: float = 7e-4, alpha: float = 0.99, eps: float = 1e-5):
        defer_dynamo_import()
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
        return RMSprop(params, lr=lr, alpha=alpha, eps=eps)
    if name == "adam":
        return Adam(params, lr=lr, eps=eps)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
