"""Catch: a tiny pixel game for fast tests of the CNN path (after bsuite's Catch).

A ball starts in a random column of the top row and falls one row per step; the agent moves a
paddle along the bottom row (0: left, 1: stay, 2: right). When the ball reaches the bottom row
the game ends with reward +1 if the paddle is under it, else −1. Frames are ``rows × cell`` by
``cols × cell`` pixels (84×84 by default), uint8, stacked like Atari's (oldest first, zeros
before the first frame). Vectorized in numpy, NextStep autoreset like every env here.
Random play scores about −0.6 with the default 7×7 board; a perfect agent scores +1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class CatchVectorEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, rows: int = 7, cols: int = 7, cell: int = 12, frame_stack: int = 4):
        if rows < 2 or cols < 1 or cell < 1 or frame_stack < 1:
            raise ValueError("Catch needs rows >= 2, cols >= 1, cell >= 1, frame_stack >= 1")
        self.num_envs = num_envs
        self.rows, self.cols, self.cell, self.stack = rows, cols, cell, frame_stack
        h, w = rows * cell, cols * cell
        self.single_observation_space = spaces.Box(0, 255, (frame_stack, h, w), np.uint8)
        self.single_action_space = spaces.Discrete(3)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._frames = np.zeros((num_envs, frame_stack, h, w), dtype=np.uint8)
        self._ball_row = np.zeros(num_envs, dtype=np.int64)
        self._ball_col = np.zeros(num_envs, dtype=np.int64)
        self._paddle = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._rng = np.random.default_rng()

    def _start(self, idx: np.ndarray) -> None:
        self._ball_row[idx] = 0
        self._ball_col[idx] = self._rng.integers(0, self.cols, size=len(idx))
        self._paddle[idx] = self.cols // 2
        self._frames[idx] = 0

    def _push_frames(self) -> None:
        """Rolls the stack and draws the newest frame (ball and paddle as white cells)."""
        self._frames[:, :-1] = self._frames[:, 1:]
        grid = np.zeros((self.num_envs, self.rows, self.cols), dtype=np.uint8)
        n = np.arange(self.num_envs)
        grid[n, self._ball_row, self._ball_col] = 255
        grid[n, self.rows - 1, self._paddle] = 255
        self._frames[:, -1] = grid.repeat(self.cell, axis=1).repeat(self.cell, axis=2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._start(np.arange(self.num_envs))
        self._needs_reset[:] = False
        self._push_frames()
        return self._frames.copy(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} actions, got shape {actions.shape}")
        resetting = self._needs_reset.copy()
        playing = ~resetting
        self._paddle[playing] = np.clip(self._paddle[playing] + actions[playing] - 1, 0, self.cols - 1)
        self._ball_row[playing] += 1
        self._start(np.flatnonzero(resetting))
        terminated = playing & (self._ball_row == self.rows - 1)
        reward = np.where(terminated, np.where(self._ball_col == self._paddle, 1.0, -1.0), 0.0)
        self._push_frames()
        truncated = np.zeros(self.num_envs, dtype=bool)
        self._needs_reset = terminated.copy()
        return self._frames.copy(), reward, terminated, truncated, {}

    def close(self, **kwargs: Any) -> None:
        pass
