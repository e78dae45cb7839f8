"""wnrl.load: a trained agent from a run directory or checkpoint, acting on numpy observations."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from wnrl.agents.a2c import A2CConfig
from wnrl.agents.a2c import train as train_a2c
from wnrl.agents.dqn import DQNConfig
from wnrl.agents.dqn import train as train_dqn

import wnrl
from tests.helpers import ROOT, assert_holds_the_checkpoints_weights
from wnrl.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_atomic, save_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    common = dict(logdir=str(root), progress=False)
    train_dqn(DQNConfig.for_env("CartPole-v1", total_steps=1200, learning_starts=200, run_name="dqn", **common))
    # Catch's A2C defaults spend 1,600 steps on the init's rollouts: 3,200 make 20 updates after them
    train_a2c(A2CConfig.for_env("Catch", total_steps=3200, run_name="a2c", **common))
    return root


def test_dqn_predict_is_the_argmax_of_the_saved_network(runs):
    agent = wnrl.load(runs / "dqn", device="cpu")
    assert (agent.agent, agent.env_id, agent.obs_shape, agent.n_actions) == ("dqn", "CartPole-v1", (4,), 2)
    assert agent.step == 1200 and "dqn on CartPole-v1" in repr(agent)
    env = agent.make_env(num_envs=5, seed=3)
    obs, _ = env.reset(seed=3)
    env.close()
    actions = agent.predict(obs)
    assert isinstance(actions, np.ndarray) and actions.shape == (5,) and actions.dtype.kind == "i"
    assert_holds_the_checkpoints_weights(agent, list_checkpoints(runs / "dqn")[-1])  # so the net below is the saved one
    expected = agent.net(torch.as_tensor(obs)).argmax(1).numpy()
    np.testing.assert_array_equal(actions, expected)
    one = agent.predict(obs[2])  # one observation: one numpy integer
    assert isinstance(one, np.integer) and one == actions[2]
    # the same file loaded twice acts the same; a checkpoint file works like its run directory
    again = wnrl.load(list_checkpoints(runs / "dqn")[-1], device="cpu")
    np.testing.assert_array_equal(again.predict(obs), actions)


def test_dqn_epsilon_greedy_is_seeded_and_explores_at_epsilon(runs):
    obs = np.zeros((4000, 4), dtype=np.float32)
    a, b = wnrl.load(runs / "dqn", seed=7), wnrl.load(runs / "dqn", seed=7)
    a.epsilon = b.epsilon = 0.5
    x, y = a.predict(obs, deterministic=False), b.predict(obs, deterministic=False)
    np.testing.assert_array_equal(x, y)
    greedy = a.predict(obs[0])
    # half the actions are random, half of those happen to equal the greedy one: 25% differ
    assert abs((x != greedy).mean() - 0.25) < 0.03


def test_a2c_predict_on_frames_greedy_and_sampled(runs):
    agent = wnrl.load(str(runs / "a2c"), seed=0)
    env = agent.make_env(num_envs=3, seed=1)
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.uint8 and obs.shape[1:] == agent.obs_shape
    assert_holds_the_checkpoints_weights(agent, list_checkpoints(runs / "a2c")[-1])
    logits, _ = agent.net(torch.as_tensor(obs))
    np.testing.assert_array_equal(agent.predict(obs), logits.argmax(1).numpy())
    # sampling follows softmax(logits): frequencies over many copies of one frame, with the policy made
    # far from uniform (a sampler that ignored the logits would pass near-uniform probabilities)
    with torch.no_grad():
        agent.net.head.policy.bias += torch.tensor([2.5, 0.0, -2.5])
        logits, _ = agent.net(torch.as_tensor(obs))
    probs = torch.softmax(logits[0], 0).numpy()
    assert probs.max() > 0.6 and probs.min() < 0.1
    draws = agent.predict(np.repeat(obs[:1], 6000, axis=0), deterministic=False)
    freq = np.bincount(draws, minlength=agent.n_actions) / len(draws)
    np.testing.assert_allclose(freq, probs, atol=0.03)
    # a whole game through the env the agent makes
    done = np.zeros(3, bool)
    for _ in range(200):
        obs, _, _, _, info = env.step(agent.predict(obs))
        done |= info["episode_end"]
        if done.all():
            break
    env.close()
    assert done.all()


def test_wrong_observation_shape_is_one_clear_error(runs):
    agent = wnrl.load(runs / "dqn")
    with pytest.raises(ValueError, match=r"takes one observation of shape \(4,\) or a batch of shape \(n, 4\)"):
        agent.predict(np.zeros((2, 5)))


def test_frames_scaled_to_floats_are_refused_not_narrowed_to_blank_frames(runs):
    """A Catch agent takes uint8 frames: float frames in [0, 1] were cast to 0/1 bytes, nearly blank
    frames, and acted on silently. Floats are refused, and integers out of the bytes' range; other
    integer types of the raw frames work."""
    agent = wnrl.load(runs / "a2c")
    env = agent.make_env(num_envs=2, seed=1)
    obs, _ = env.reset(seed=1)
    env.close()
    for bad in (obs / 255.0, obs.astype(np.float32), obs.astype(np.int64) + 1):
        with pytest.raises(ValueError, match="not scaled ones"):
            agent.predict(bad)
    np.testing.assert_array_equal(agent.predict(obs.astype(np.int64)), agent.predict(obs))


def test_a_run_whose_newest_checkpoint_is_cut_loads_the_one_before(runs, tmp_path, capsys):
    """As --resume does: a newest checkpoint cut mid-write (a filesystem without atomic rename) is skipped
    with a warning; a run with no readable checkpoint is a one-line error."""
    import shutil

    run = tmp_path / "dqn"
    shutil.copytree(runs / "dqn", run)
    state = load_checkpoint(list_checkpoints(run)[-1])
    older = save_checkpoint(run, 600, {k: v for k, v in state.items() if k not in ("step", "format", "wnrl_version")})
    newest = list_checkpoints(run)[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    agent = wnrl.load(run)
    assert agent.step == load_checkpoint(older)["step"] and "skipped unreadable checkpoint" in capsys.readouterr().err
    older.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        wnrl.load(run)


def test_checkpoints_it_cannot_use_are_one_line_errors(runs, tmp_path):
    state = load_checkpoint(list_checkpoints(runs / "dqn")[-1])
    save_atomic(tmp_path / "other.pt", {**state, "agent": "sac"})
    with pytest.raises(CheckpointError, match="unknown agent 'sac'"):
        wnrl.load(tmp_path / "other.pt")
    save_atomic(tmp_path / "newer.pt", {**state, "format": 99, "wnrl_version": "9.0"})
    with pytest.raises(CheckpointError, match="newer wnrl .*upgrade wnrl"):
        wnrl.load(tmp_path / "newer.pt")
    r = subprocess.run(
        [sys.executable, "-m", "wnrl.evaluate", str(tmp_path / "newer.pt")], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "upgrade wnrl" in r.stderr
    with pytest.raises(CheckpointError, match="no such run directory"):
        wnrl.load(tmp_path / "missing")


def test_import_wnrl_stays_light():
    code = "import sys, wnrl; print('torch' in sys.modules, callable(wnrl.load))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ["False", "True"], r.stderr
