"""Gymnasium environments with vector observations (CartPole-v1, Acrobot-v1, ...), vectorized."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode


def is_registered(env_id: str) -> bool:
    return env_id in gym.registry


def registered_ids() -> list[str]:
    return [i for i in gym.registry if not i.startswith("ALE/")]


def make_classic(env_id: str, num_envs: int, *, vectorization_mode: str = "sync", **env_kwargs: Any):
    """``gym.make_vec`` in NextStep autoreset mode; only vector observations are accepted."""
    env = gym.make_vec(
        env_id,
        num_envs,
        vectorization_mode=vectorization_mode,
        vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
        **env_kwargs,
    )
    space = env.single_observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        env.close()
        raise ValueError(
            f"{env_id} has observations {space}; wnrl takes Atari games, Catch, "
            "or gymnasium envs whose observations are flat vectors"
        )
    return env
