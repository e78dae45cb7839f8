"""The on-policy agents' rollout storage (A2C, PPO, PQN): ``T`` steps of ``N`` envs on the training
device, filled one env step at a time by :meth:`Rollout.step`.

Each step keeps the observation and action, and what the learner sees of the outcome
(:mod:`~wnrl.agents.learner_inputs`): the learning reward, the bootstrap terminal, and whether the
action did anything (a NextStep autoreset step does not: ``valid`` is False there, and the losses and
returns mask it). What an agent keeps beyond that (PPO's log-probabilities and values, PQN's max Q)
stays in the agent."""

from __future__ import annotations

import numpy as np
import torch
from wnrl.agents.learner_inputs import learning_reward, learning_terminal

from wnrl.config import CommonConfig


class Rollout:
    """``obs`` ``[T, N, *obs_shape]`` (uint8 frames stay uint8), ``actions`` ``[T, N]`` int64,
    ``rewards`` ``[T, N]`` float32, ``terminals`` and ``valid`` ``[T, N]`` bool. ``reward_scale``
    multiplies the learning rewards (PQN's ``--reward-scale``)."""

    def __init__(self, cfg: CommonConfig, T: int, N: int, obs_space, device: torch.device, reward_scale: float = 1.0):
        self.cfg, self.device, self.reward_scale = cfg, device, np.float32(reward_scale)
        obs_dtype = torch.uint8 if obs_space.dtype == np.uint8 else torch.float32
        self.obs = torch.zeros((T, N, *obs_space.shape), dtype=obs_dtype, device=device)
        self.actions = torch.zeros((T, N), dtype=torch.int64, device=device)
        self.rewards = torch.zeros((T, N), dtype=torch.float32, device=device)
        self.terminals = torch.zeros((T, N), dtype=torch.bool, device=device)
        self.valid = torch.zeros((T, N), dtype=torch.bool, device=device)

    def step(self, env, t: int, obs: torch.Tensor, actions: torch.Tensor | np.ndarray) -> tuple[np.ndarray, dict]:
        """Stores ``obs`` and ``actions`` (a tensor on the device, or an array) as step ``t``, steps
        ``env`` with them and stores the outcome; returns the next observations and the step's info.
        The observation is stored before the envs step (on a CPU it may share the envs' memory)."""
        self.obs[t] = obs
        if isinstance(actions, torch.Tensor):
            self.actions[t] = actions
            actions = actions.cpu().numpy()
        else:
            self.actions[t] = torch.from_numpy(actions).to(self.device)
        next_obs, reward, terminated, _, info = env.step(actions)
        reward = learning_reward(self.cfg, reward)
        if self.reward_scale != 1:
            reward = reward * self.reward_scale
        self.rewards[t] = torch.from_numpy(reward).to(self.device, non_blocking=True)
        self.terminals[t] = torch.from_numpy(learning_terminal(self.cfg, terminated, info)).to(self.device)
        self.valid[t] = torch.from_numpy(~info["autoreset"]).to(self.device)
        return next_obs, info

    def flat_obs(self) -> torch.Tensor:
        """The observations as one batch, ``[T·N, *obs_shape]``."""
        return self.obs.flatten(0, 1)
