"""Gymnasium environments with vector observations (CartPole-v1, Acrobot-v1, ...), vectorized."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode


def is_registered(env_id: str) -> bool:
    return env_id in gym.registry


def is_ale_id(env_id: str) -> bool:
    """Whether ``env_id`` is registered by ale-py (an Atari game under gymnasium's own name)."""
    spec = gym.registry.get(env_id)
    entry = getattr(spec, "entry_point", None)
    return isinstance(entry, str) and entry.startswith("ale_py")


def registered_ids() -> list[str]:
    return [i for i in gym.registry if not i.startswith("ALE/")]


SUPPORTED = (
    "wnrl's agents take Atari games, Catch, or gymnasium envs with flat-vector observations (a 1-D Box) "
    "and discrete actions (Discrete)"
)


def unsupported_spaces(observation_space: Any, action_space: Any) -> str | None:
    """What about these spaces wnrl's agents cannot take (one phrase), or None if they can."""
    problems = []
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        problems.append(f"observations {observation_space}")
    elif observation_space.shape[0] < 1:
        problems.append(f"empty observations {observation_space}")
    if not isinstance(action_space, gym.spaces.Discrete):
        problems.append(f"actions {action_space}")
    elif int(action_space.start) != 0:
        problems.append(f"actions {action_space} (numbered from {int(action_space.start)}, not 0)")
    return " and ".join(problems) or None


def make_classic(env_id: str, num_envs: int, *, vectorization_mode: str = "sync", **env_kwargs: Any):
    """``gym.make_vec`` in NextStep autoreset mode; only flat-vector observations and discrete actions are accepted."""
    env = gym.make_vec(
        env_id,
        num_envs,
        vectorization_mode=vectorization_mode,
        vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
        **env_kwargs,
    )
    problem = unsupported_spaces(env.single_observation_space, env.single_action_space)
    if problem:
        env.close()
        raise ValueError(f"{env_id} has {problem}; {SUPPORTED}")
    return env
