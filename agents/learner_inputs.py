"""What the learner sees of an env step: rewards and terminals as it learns from them, observations
on its device. The logs keep what the game gave (raw scores, whole games)."""

from __future__ import annotations

import numpy as np
import torch

from wnrl.config import CommonConfig


def learning_reward(cfg: CommonConfig, reward: np.ndarray) -> np.ndarray:
    """What the learner sees: sign(r) with ``clip_rewards`` (Atari), else r. Logs keep raw scores."""
    reward = reward.astype(np.float32, copy=False)
    return np.sign(reward) if cfg.clip_rewards else reward


def learning_terminal(cfg: CommonConfig, terminated: np.ndarray, info: dict) -> np.ndarray:
    """Terminal for bootstrapping: game over, or a lost life with ``life_loss_terminal``."""
    return terminated | info["life_lost"] if cfg.life_loss_terminal else terminated


def obs_to_device(obs: np.ndarray, device: torch.device) -> torch.Tensor:
    """Observations cross to the device as they are (uint8 frames stay uint8: 4× less traffic)."""
    t = torch.from_numpy(obs)
    return t.to(device, non_blocking=True) if device.type != "cpu" else t
