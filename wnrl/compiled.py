"""``--compile``: the agents' update and action selection through ``torch.compile``, never at the cost of the run."""

from __future__ import annotations

import sys
from typing import Any

import torch

COMPILE_MODES = ("off", "default", "reduce-overhead")


class Compiled:
    """``fn``, through ``torch.compile`` unless ``mode`` is "off". If compiling fails (no C++
    compiler, an unsupported op), one warning is printed and ``fn`` runs as it is from then on: the
    run goes on. ``fn`` must be safe to run again after a failed call (set gradients to None first)."""

    def __init__(self, fn, mode: str = "off", name: str = ""):
        self.eager = fn
        self.name = name or getattr(fn, "__name__", "function")
        self.mode = mode
        self.fn = fn if mode == "off" else torch.compile(fn, mode=mode)

    @property
    def compiled(self) -> bool:
        return self.fn is not self.eager

    def __call__(self, *args: Any) -> Any:
        if self.fn is self.eager:
            return self.eager(*args)
        try:
            return self.fn(*args)
        except Exception as e:  # a compiler failure must not end the run; nothing else is caught
            if not is_compile_error(e):
                raise
            first = (str(e).strip().splitlines() or [""])[0][:200]
            print(
                f"warning: --compile {self.mode} failed for {self.name} ({type(e).__name__}: {first}); "
                "running it uncompiled (--compile off hides this)",
                file=sys.stderr,
            )
            self.fn = self.eager
            return self.eager(*args)


def is_compile_error(e: BaseException) -> bool:
    """Whether ``e`` comes from torch's compiler stack (Dynamo tracing, Inductor and its C++/Triton
    builds: e.g. ``InductorError`` for "no working C++ compiler"), not from running the code. A
    collective that fails because a peer died is not one: retrying it eagerly would wait a whole
    timeout again before the real error."""
    return any(c.__module__.startswith(("torch._dynamo", "torch._inductor")) for c in type(e).__mro__)
