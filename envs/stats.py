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
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper


class GameStats(VectorWrapper):
    def __init__(self, env: VectorEnv, seed: int | None = None):
        super().__init__(env)
        self._first_seed = seed  # used by the first reset() that names no seed
        if seed is not None:
            self.action_space.seed(seed)
        n = env.num_envs
        self._return = np.zeros(n, dtype=np.float64)
        self._length = np.zeros(n, dtype=np.int64)
        self._lives = np.zeros(n, dtype=np.int64)
        self._resetting = np.zeros(n, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        obs, info = self.env.reset(seed=seed, options=options)
        self._return[:] = 0.0
        self._length[:] = 0
        self._resetting[:] = False
        if "lives" in info:
            self._lives[:] = info["lives"]
        return obs, info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
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
