"""Gymnasium environments with vector observations (CartPole-v1, Acrobot-v1, ...), vectorized."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import TransformObservation


def is_registered(env_id: str) -> bool:
    return env_id in gym.registry


def is_ale_id(env_id: str) -> bool:
    """Whether ``env_id`` is registered by ale-py (an Atari game under gymnasium's own name)."""
    spec = gym.registry.get(env_id)
    entry = getattr(spec, "entry_point", None)
    return isinstance(entry, str) and entry.startswith("ale_py")


def registered_ids() -> list[str]:
    return [i for i in gym.registry if not i.startswith("ALE/")]


# The smallest image side the Nature conv trunk takes (8x8/4, 4x4/2, 3x3/1 convolutions: 36 -> 8 -> 3 -> 1);
# 10x10 images get MinAtar's trunk instead (wnrl.nets.make_trunk).
MIN_IMAGE_SIDE = 36
MINATAR_SIDE = 10
# An image whose last axis is at most this long is channels-last (H, W, C): RGB, RGBA or grey with a channel axis.
MAX_CHANNELS_LAST = 4

SUPPORTED = (
    "wnrl's agents take Atari games, Catch, MinAtar, or gymnasium envs with discrete actions (Discrete) and "
    "observations that are flat vectors (a 1-D Box) or images (a Box of shape (C, H, W), (H, W, C) with C <= 4, "
    f"or (H, W); at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}, or MinAtar's 10x10)"
)


def image_layout(shape: tuple[int, ...]) -> str | None:
    """How an image observation of ``shape`` becomes the ``(C, H, W)`` the conv trunks take: "chw" (as it
    is), "hwc" (channels last, moved first), "hw" (one channel added); None for a shape that is no image
    wnrl takes (not 2-D or 3-D, or smaller than the trunks' input)."""

    def fits(h: int, w: int) -> bool:
        return min(h, w) >= MIN_IMAGE_SIDE or (h, w) == (MINATAR_SIDE, MINATAR_SIDE)

    if len(shape) == 2:
        return "hw" if fits(*shape) else None
    if len(shape) != 3 or min(shape) < 1:
        return None
    if shape[2] <= MAX_CHANNELS_LAST < shape[0] and fits(shape[0], shape[1]):
        return "hwc"
    return "chw" if fits(shape[1], shape[2]) else None


def unsupported_spaces(observation_space: Any, action_space: Any) -> str | None:
    """What about these spaces wnrl's agents cannot take (one phrase), or None if they can."""
    problems = []
    box = isinstance(observation_space, gym.spaces.Box)
    if not box or len(observation_space.shape) not in (1, 2, 3):
        problems.append(f"observations {observation_space}")
    elif len(observation_space.shape) == 1 and observation_space.shape[0] < 1:
        problems.append(f"empty observations {observation_space}")
    elif len(observation_space.shape) > 1 and image_layout(observation_space.shape) is None:
        problems.append(f"image observations {observation_space}, a shape the conv trunks cannot take")
    if not isinstance(action_space, gym.spaces.Discrete):
        problems.append(f"actions {action_space}")
    elif int(action_space.start) != 0:
        problems.append(f"actions {action_space} (numbered from {int(action_space.start)}, not 0)")
    return " and ".join(problems) or None


def make_classic(env_id: str, num_envs: int, *, vectorization_mode: str = "sync", **env_kwargs: Any):
    """``gym.make_vec`` in NextStep autoreset mode; only flat-vector or image observations and discrete actions
    are accepted. Images come out as ``(C, H, W)`` (see :func:`image_layout`): the channels of one observation,
    not a stack of frames."""
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
    return channels_first(env)


def channels_first(env):
    """``env`` with image observations as ``(C, H, W)``: channels-last and single-channel images rearranged
    (a view per step, no copy of the data), vectors and channels-first images as they are."""
    space = env.single_observation_space
    layout = image_layout(space.shape) if len(space.shape) > 1 else "chw"
    if layout == "chw":
        return env
    if layout == "hwc":
        move = (lambda x: np.moveaxis(x, -1, 0)), (lambda batch: np.moveaxis(batch, -1, 1))
    else:
        move = (lambda x: x[None]), (lambda batch: batch[:, None])
    single = gym.spaces.Box(move[0](space.low), move[0](space.high), dtype=space.dtype)
    return TransformObservation(env, move[1], single_observation_space=single)
