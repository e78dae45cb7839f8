"""What the learner sees of an env step: clipped rewards, life loss as terminal."""

import numpy as np
from wnrl.agents.dqn import DQNConfig
from wnrl.agents.learner_inputs import learning_reward, learning_terminal


def test_rewards_clipped_for_learning_and_life_loss_is_terminal():
    cfg = DQNConfig.for_env("Breakout")
    np.testing.assert_array_equal(learning_reward(cfg, np.array([0, 1, 4, 7, -3])), [0, 1, 1, 1, -1])
    info = {"life_lost": np.array([True, False, False])}
    np.testing.assert_array_equal(learning_terminal(cfg, np.array([False, True, False]), info), [True, True, False])
    cfg.life_loss_terminal = False
    np.testing.assert_array_equal(learning_terminal(cfg, np.array([False, True, False]), info), [False, True, False])
