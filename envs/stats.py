"""Per-game statistics and the life-loss signal, the same for every env family.

Every env from :func:`envs.make` autoresets in gymnasium's "NextStep" mode: the step after an
episode ends returns the first observation of the next one, ignores its action and gives no reward.
This wrapper adds to each step's ``info``:

* ``autoreset``      bool[n]: this step only reset the env (no transition to learn from);
* ``life_lost``      bool[n]: a life was lost on this step (Atari; the last one included), the
  terminal a learner may bootstrap on without ending the game;
* ``episode_end``    bool[n]: a whole game ended on this step (terminated or truncated);
* ``episode_return`` float[n], ``episode_length`` int[n]: the raw game score and agent steps of the
  game so far (the finished game's, where ``episode_end``).

``step_async(actions)`` then ``step_wait()`` is ``step(actions)`` in two halves: envs that can step in
the background (ale-py's C++ vector env) do so in between, so the caller's own work (a gradient
update) overlaps the stepping; the others step inside ``step_wait``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper


class GameStats(VectorWrapper):
    def __init__(self, env: VectorEnv, seed: int | None = None):
        mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode")
        if mode is not None and getattr(mode, "value", mode) != "NextStep":
            # another mode's steps mean other things: "autoreset" below would mask real transitions
            raise ValueError(f"GameStats needs a vector env in NextStep autoreset mode, got {mode}")
        super().__init__(env)
        self._first_seed = seed  # used by the first reset() that names no seed
        if seed is not None:
            self.action_space.seed(seed)
        n = env.num_envs
        self._return = np.zeros(n, dtype=np.float64)
        self._length = np.zeros(n, dtype=np.int64)
        self._lives = np.zeros(n, dtype=np.int64)
        self._resetting = np.zeros(n, dtype=bool)
        self._pending = None  # the step started by step_async

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        if self._pending is not None:
            self.step_wait()  # finish the step in flight before resetting
        obs, info = self.env.reset(seed=seed, options=options)
        self._return[:] = 0.0
        self._length[:] = 0
        self._resetting[:] = False
        if "lives" in info:
            self._lives[:] = info["lives"]
        return obs, info

    def step(self, actions):
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions) -> None:
        """Starts a step; ``step_wait`` returns its result. One step may be in flight at a time."""
        if self._pending is not None:
            raise RuntimeError("step_async called twice without step_wait")
        inner = self.env
        if hasattr(inner, "send") and hasattr(inner, "recv"):
            inner.send(actions)  # the C++ threads step while the caller works
            self._pending = inner.recv
        elif hasattr(inner, "step_async") and hasattr(inner, "step_wait"):  # gymnasium's AsyncVectorEnv
            inner.step_async(actions)
            self._pending = inner.step_wait
        else:
            self._pending = lambda: inner.step(actions)

    def step_wait(self):
        if self._pending is None:
            raise RuntimeError("step_wait called without step_async")
        pending, self._pending = self._pending, None
        obs, reward, terminated, truncated, info = pending()
        fresh = self._resetting
        playing = ~fresh
        self._return[fresh] = 0.0
        self._length[fresh] = 0
        self._return[playing] += reward[playing]
        self._length[playing] += 1
        if "lives" in info:
            lives = np.asarray(info["lives"])
            life_lost = playing & (lives < self._lives)
            self._lives[:] = lives
        else:
            life_lost = np.zeros_like(fresh)
        done = np.logical_or(terminated, truncated)
        info["autoreset"] = fresh.copy()
        info["life_lost"] = life_lost
        info["episode_end"] = done
        info["episode_return"] = self._return.copy()
        info["episode_length"] = self._length.copy()
        self._resetting = done
        return obs, reward, terminated, truncated, info

    def close(self, **kwargs):
        if self._pending is not None:
            try:
                self.step_wait()
            except Exception:  # closing anyway
                pass
        return super().close(**kwargs)
