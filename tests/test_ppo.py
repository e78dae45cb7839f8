"""PPO: its loss against hand computation, its minibatches, short runs under every norm, learning on
CartPole and Catch with its defaults, and a run's life (SIGKILL and resume, load, evaluate)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from wnrl.agents.ppo import PPOConfig, ppo_loss, train
from wnrl.agents.returns import minibatches

import wnrl
from tests.helpers import (
    ROOT,
    assert_holds_the_checkpoints_weights,
    assert_trained_with_norm,
    scalars,
    train_in_process,
)
from tests.test_reliability import wait_for_checkpoint
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.config import CliError
from wnrl.evaluate import evaluate


def cartpole(tmp_path, **kw):
    base = dict(logdir=str(tmp_path), progress=False, total_steps=1024, init_rollouts=1, n_steps=16, num_envs=4)
    return PPOConfig.for_env("CartPole-v1", **{**base, **kw})


def test_family_defaults():
    atari = PPOConfig.for_env("Breakout")  # CleanRL's ppo_atari.py
    assert (atari.num_envs, atari.n_steps, atari.update_epochs, atari.num_minibatches) == (8, 128, 4, 4)
    assert (atari.learning_rate, atari.rms_eps, atari.optimizer, atari.lr_decay) == (2.5e-4, 1e-5, "adam", True)
    assert (atari.gamma, atari.gae_lambda, atari.clip_coef) == (0.99, 0.95, 0.1)
    assert (atari.ent_coef, atari.vf_coef) == (0.01, 0.5)
    assert atari.clip_vloss and atari.normalize_advantage and atari.max_grad_norm == 0.5 and not atari.clip_decay
    classic = PPOConfig.for_env("CartPole-v1")  # rl-baselines3-zoo's CartPole-v1
    assert (classic.num_envs, classic.n_steps, classic.num_minibatches, classic.update_epochs) == (8, 32, 1, 20)
    assert (classic.gamma, classic.gae_lambda, classic.ent_coef, classic.learning_rate) == (0.98, 0.8, 0.0, 1e-3)
    assert classic.clip_coef == 0.2 and classic.clip_decay and not classic.clip_vloss and not classic.clip_rewards
    assert classic.total_steps == 100_000 and classic.activation == "tanh"


def test_loss_matches_hand_computation():
    cfg = PPOConfig(ent_coef=0.1, vf_coef=0.5, normalize_advantage=False, clip_vloss=True)
    clip = 0.2
    # π(a|s) at the three steps: 0.5, 0.25 and (masked) whatever
    logits = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0], [5.0, -5.0]], requires_grad=True)
    values = torch.tensor([1.0, 0.0, 9.0], requires_grad=True)
    actions = torch.tensor([0, 1, 0])
    old_logp = torch.log(torch.tensor([0.25, 0.5, 0.5]))  # ratios 2 (clipped to 1.2) and 0.5 (clipped to 0.8)
    old_values = torch.tensor([0.5, 0.5, 0.0])
    adv = torch.tensor([2.0, -1.0, 100.0])
    ret = torch.tensor([3.0, 1.0, 0.0])
    valid = torch.tensor([True, True, False])  # the third step is an autoreset step: masked
    loss, parts = ppo_loss(logits, values, actions, old_logp, old_values, adv, ret, valid, cfg, clip)
    # step 0: min(2·2, 1.2·2) = 2.4; step 1: min(0.5·−1, 0.8·−1) = −0.8
    pg = -(2.4 + -0.8) / 2
    # step 0: V 1 (clipped 0.5 + 0.2 = 0.7), R 3: max(4, 2.3²); step 1: V 0 (clipped 0.5 − 0.2 = 0.3), R 1: max(1, 0.49)
    vl = 0.5 * (max(4.0, 2.3**2) + max(1.0, 0.7**2)) / 2
    h = (np.log(2.0) + -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))) / 2
    kl = ((2 - 1 - np.log(2)) + (0.5 - 1 - np.log(0.5))) / 2
    assert parts["policy_loss"].item() == pytest.approx(pg, rel=1e-5)
    assert parts["value_loss"].item() == pytest.approx(vl, rel=1e-5)
    assert parts["entropy"].item() == pytest.approx(h, rel=1e-5)
    assert parts["approx_kl"].item() == pytest.approx(kl, rel=1e-5)
    assert parts["clipfrac"].item() == pytest.approx(1.0)  # both valid ratios are outside [0.8, 1.2]
    assert loss.item() == pytest.approx(pg + 0.5 * vl - 0.1 * h, rel=1e-5)
    loss.backward()
    assert logits.grad[2].abs().max() == 0 and values.grad[2] == 0  # masked step contributes nothing
    # step 0's ratio is clipped on the side its advantage pushes: no policy gradient from it but the entropy's
    cfg_no_ent = PPOConfig(ent_coef=0.0, vf_coef=0.0, normalize_advantage=False)
    logits.grad = None
    ppo_loss(logits, values, actions, old_logp, old_values, adv, ret, valid, cfg_no_ent, clip)[0].backward()
    assert logits.grad[0].abs().max() == 0 and logits.grad[1].abs().max() == 0  # step 1 too: 0.5 < 0.8, A < 0
    # unclipped value loss: ½E[(V − R)²]
    plain = PPOConfig(normalize_advantage=False, clip_vloss=False)
    _, parts = ppo_loss(logits, values, actions, old_logp, old_values, adv, ret, valid, plain, clip)
    assert parts["value_loss"].item() == pytest.approx(0.5 * (4.0 + 1.0) / 2, rel=1e-5)


def test_minibatches_cover_the_rollout_once_and_ranks_take_their_share():
    T, N, M = 5, 4, 3
    one = minibatches(torch.Generator().manual_seed(3), T, N, M)
    assert len(one) == M and sorted(torch.cat(one).tolist()) == list(range(T * N))
    assert [len(m) for m in one] == [7, 7, 6]
    # two ranks of 2 envs: each keeps the steps of its envs, and together they are the same minibatches
    ranks = [minibatches(torch.Generator().manual_seed(3), T, N, M, rank=r, local_envs=2) for r in range(2)]
    for k in range(M):
        glob = set(one[k].tolist())
        from_ranks = {int(i // 2) * N + r * 2 + int(i % 2) for r in range(2) for i in ranks[r][k]}
        assert from_ranks == glob


def test_bad_values_are_one_line():
    with pytest.raises(CliError, match="--num-minibatches 300 is more than a rollout's 256 steps"):
        PPOConfig.for_env("CartPole-v1", num_minibatches=300).validate()
    with pytest.raises(CliError, match="--clip-coef must be > 0"):
        PPOConfig.for_env("CartPole-v1", clip_coef=0.0).validate()
    with pytest.raises(CliError, match="--update-epochs must be at least 1"):
        PPOConfig.for_env("CartPole-v1", update_epochs=0).validate()
    r = train_in_process("ppo", "--env", "CartPole-v1", "--num-minibatches", "0", "--logdir", "/nonexistent/x")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--num-minibatches must be at least 1" in r.stderr


def test_run_logs_clips_checkpoints_and_initializes(tmp_path):
    summary = train(cartpole(tmp_path, run_name="r", log_every=256, checkpoint_every=512, clip_decay=True))
    assert summary["updates"] == 1024 // 64 - 1  # the first rollout set weight norm's init
    state = load_checkpoint(list_checkpoints(tmp_path / "r")[-1])
    assert state["agent"] == "ppo" and state["step"] == 1024 and state["updates"] == summary["updates"]
    tags = scalars(tmp_path / "r")
    for tag in ("losses/policy_loss", "losses/value_loss", "losses/approx_kl", "losses/clipfrac", "charts/clip"):
        assert tag in tags, tag
    clips = dict(tags["charts/clip"])
    assert clips[512] == pytest.approx(0.2 * (1 - 512 / 1024), rel=1e-6)  # decayed with the learning rate
    assert any(t.startswith("wn/") for t in tags) and any(t.startswith("dormant/") for t in tags)


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "wn_mobn"])
def test_other_norms_train(tmp_path, norm):
    summary = train(cartpole(tmp_path, norm=norm, total_steps=256))
    assert summary["updates"] > 0
    assert_trained_with_norm(summary["run_dir"], norm)


def test_wn_project_holds_the_directions_after_every_minibatch_step(tmp_path, monkeypatch):
    """--wn-project's projection follows every optimizer step, not only a rollout's last."""
    from wnrl.agents import ppo

    from wnrl.layers import WNDirections

    off = []  # after each optimizer step: the largest |‖v_i‖ − 0.5| over the WN layers' rows
    original = WNDirections.after_step

    def spy(self):
        original(self)
        off.append(max(float((m.v.detach().flatten(1).norm(dim=1) - 0.5).abs().max()) for m in self._modules))

    monkeypatch.setattr(WNDirections, "after_step", spy)
    cfg = cartpole(tmp_path, wn_project=True, wn_init_norm=0.5, total_steps=256, num_minibatches=4, update_epochs=3)
    summary = ppo.train(cfg)
    assert len(off) == summary["updates"] * 3 * 4 and max(off) < 1e-5  # 3 epochs of 4 minibatches per rollout


@pytest.mark.slow
def test_ppo_solves_cartpole_with_its_defaults(tmp_path):
    """rl-baselines3-zoo's CartPole settings at their 100k steps: solved (500 is the cap; random play ~22)."""
    cfg = PPOConfig.for_env("CartPole-v1", logdir=str(tmp_path), progress=False, seed=1)
    last = train(cfg)["recent_returns"][-20:]
    assert np.mean(last) > 475, last


@pytest.mark.slow
def test_ppo_learns_catch_with_the_conv_net(tmp_path, small_catch):
    """The Catch defaults (30k steps): 1.00, 0.96, 1.00 on seeds 1-3 (docs/results.md)."""
    cfg = PPOConfig.for_env("Catch", logdir=str(tmp_path), progress=False, seed=1)
    last = train(cfg)["recent_returns"][-50:]
    assert np.mean(last) > 0.8, last  # random play: about -0.6; every ball caught: +1


def test_sigkill_then_resume_continues_the_curve_and_the_run_loads(tmp_path):
    args = ["--env", "CartPole-v1", "--total-steps", "12800", "--log-every", "1280", "--checkpoint-every", "2560"]
    args += ["--hidden-sizes", "16,16", "--update-epochs", "4", "--progress", "false", "--logdir", str(tmp_path)]
    args += ["--run-name", "r"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wnrl.train", "ppo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    run_dir = tmp_path / "r"
    wait_for_checkpoint(run_dir, 3840, proc)
    proc.kill()
    proc.wait()
    killed_at = max(int(p.stem.split("_")[1]) for p in list_checkpoints(run_dir))
    assert killed_at < 12800
    r = train_in_process("ppo", "--resume", str(run_dir), "--progress", "false")
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(list_checkpoints(run_dir)[-1])["step"] == 12800
    steps = [s for s, _ in scalars(run_dir)["charts/SPS"]]
    assert steps == list(range(1280, 12801, 1280))  # no gap, no step logged twice (rollouts of 256 steps)
    # the run loads and acts as a policy agent
    agent = wnrl.load(run_dir, device="cpu", seed=0)
    assert agent.agent == "ppo" and not agent.q_learner
    env_ = agent.make_env(num_envs=2, seed=0)
    obs, _ = env_.reset()
    assert_holds_the_checkpoints_weights(agent, list_checkpoints(run_dir)[-1])
    logits, _ = agent.net(torch.as_tensor(obs))
    assert (agent.predict(obs) == logits.argmax(1).numpy()).all()
    env_.close()
    assert evaluate(str(run_dir), episodes=2, device="cpu")["episodes"] == 2
    with pytest.raises(CliError, match="--epsilon is a Q-learner's exploration; this is a run of PPO"):
        evaluate(str(run_dir), episodes=1, epsilon=0.1)
    r = train_in_process("ppo", "--resume", str(run_dir), "--total-steps", "100", "--progress", "false")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nothing to train" in r.stderr
