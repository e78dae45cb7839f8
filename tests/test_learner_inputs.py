"""What the learner sees of an env step: clipped rewards, life loss as terminal."""

import numpy as np
import torch
from wnrl.agents.dqn import DQNConfig
from wnrl.agents.learner_inputs import learning_reward, learning_terminal


def test_rewards_clipped_for_learning_and_life_loss_is_terminal():
    cfg = DQNConfig.for_env("Breakout")
    np.testing.assert_array_equal(learning_reward(cfg, np.array([0, 1, 4, 7, -3])), [0, 1, 1, 1, -1])
    info = {"life_lost": np.array([True, False, False])}
    np.testing.assert_array_equal(learning_terminal(cfg, np.array([False, True, False]), info), [True, True, False])
    cfg.life_loss_terminal = False
    np.testing.assert_array_equal(learning_terminal(cfg, np.array([False, True, False]), info), [False, True, False])


class _InPlaceEnv:
    """Two envs whose step writes the next observations into the array it returned last (as a vector
    env without copies may), with scripted rewards, terminations, lost lives and autoresets."""

    def __init__(self):
        self.buf = np.zeros((2, 3), dtype=np.uint8)
        self.outcomes = [  # reward, terminated, life_lost, autoreset
            (np.array([7.0, -2.0]), np.array([False, True]), np.array([True, False]), np.array([False, False])),
            (np.array([0.0, 3.0]), np.array([False, False]), np.array([False, False]), np.array([False, True])),
        ]
        self.t = 0

    def step(self, actions):
        self.last_actions = actions
        reward, terminated, life_lost, autoreset = self.outcomes[self.t]
        self.t += 1
        self.buf[:] = 10 * self.t
        return self.buf, reward, terminated, np.zeros(2, bool), {"life_lost": life_lost, "autoreset": autoreset}


def test_the_on_policy_rollout_stores_what_the_learner_sees_of_each_step():
    """A2C, PPO and PQN fill their rollouts with Rollout.step: the observation as it was before the
    envs stepped, the action, the clipped (and scaled) reward, the life-loss terminal, and valid False
    where the step only reset an env."""
    from gymnasium.spaces import Box
    from wnrl.agents.rollout import Rollout

    cfg = DQNConfig.for_env("Breakout")  # clip_rewards and life_loss_terminal on
    env = _InPlaceEnv()
    rollout = Rollout(cfg, 2, 2, Box(0, 255, (3,), np.uint8), torch.device("cpu"), reward_scale=0.5)
    obs = torch.from_numpy(env.buf)  # shares the env's memory
    next_obs, info = rollout.step(env, 0, obs, torch.tensor([1, 2]))
    assert isinstance(env.last_actions, np.ndarray) and env.last_actions.tolist() == [1, 2]
    rollout.step(env, 1, torch.from_numpy(next_obs), np.array([3, 0]))
    assert rollout.obs.dtype == torch.uint8 and rollout.obs[:, :, 0].tolist() == [[0, 0], [10, 10]]
    assert rollout.actions.tolist() == [[1, 2], [3, 0]]
    assert rollout.rewards.tolist() == [[0.5, -0.5], [0.0, 0.5]]  # sign(r) · 0.5
    assert rollout.terminals.tolist() == [[True, True], [False, False]]  # a lost life is terminal
    assert rollout.valid.tolist() == [[True, True], [True, False]]
    assert rollout.flat_obs().shape == (4, 3)
