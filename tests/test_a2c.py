import json

import numpy as np
import pytest
import torch
from wnrl.agents.a2c import A2CConfig, ActorCritic, a2c_loss, explained_variance, train

from tests.helpers import assert_trained_with_norm, cli, scalars, train_in_process
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.layers import is_initialized, set_v_init_norm, wn_layers


def cartpole(tmp_path, **kw):
    # one init rollout keeps these short runs short; the learning tests use the real defaults
    base = dict(logdir=str(tmp_path), progress=False, total_steps=2000, init_rollouts=1)
    return A2CConfig.for_env("CartPole-v1", **{**base, **kw})


def test_family_defaults():
    atari = A2CConfig.for_env("Breakout")
    assert (atari.num_envs, atari.n_steps, atari.learning_rate, atari.rms_alpha, atari.rms_eps) == (
        16,
        5,
        7e-4,
        0.99,
        1e-5,
    )
    assert (atari.gamma, atari.ent_coef, atari.vf_coef, atari.max_grad_norm, atari.gae_lambda) == (
        0.99,
        0.01,
        0.5,
        0.5,
        1.0,
    )
    assert atari.total_steps == 10_000_000 and atari.clip_rewards and atari.lr_decay
    assert atari.optimizer == "rmsprop_tf" and atari.init_rollouts == 20 and atari.wn_init_norm == 1.0
    classic = A2CConfig.for_env("CartPole-v1")
    assert classic.num_envs == 8 and classic.n_steps == 5 and not classic.clip_rewards
    assert classic.activation == "tanh" and classic.optimizer == "rmsprop" and classic.ent_coef == 0.0
    assert classic.normalize_advantage and classic.lr_decay and not atari.normalize_advantage


def test_loss_matches_hand_computation():
    cfg = A2CConfig(ent_coef=0.1, vf_coef=0.5)
    logits = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0], [5.0, -5.0]], requires_grad=True)
    values = torch.tensor([1.0, 0.0, 9.0], requires_grad=True)
    actions = torch.tensor([0, 1, 0])
    adv = torch.tensor([2.0, -1.0, 100.0])
    ret = torch.tensor([3.0, 1.0, 0.0])
    valid = torch.tensor([True, True, False])  # the third step is an autoreset step: masked
    loss, parts = a2c_loss(logits, values, actions, adv, ret, valid, cfg)
    logp = torch.tensor([np.log(0.5), np.log(0.25)])
    pg = -(2.0 * logp[0] + -1.0 * logp[1]) / 2
    vl = ((3.0 - 1.0) ** 2 + (1.0 - 0.0) ** 2) / 2
    h = (np.log(2.0) + -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))) / 2
    assert parts["policy_loss"].item() == pytest.approx(pg.item(), rel=1e-5)
    assert parts["value_loss"].item() == pytest.approx(vl, rel=1e-5)
    assert parts["entropy"].item() == pytest.approx(h, rel=1e-5)
    assert loss.item() == pytest.approx(pg.item() + 0.5 * vl - 0.1 * h, rel=1e-5)
    loss.backward()
    assert logits.grad[2].abs().max() == 0 and values.grad[2] == 0  # masked step contributes nothing


def test_explained_variance():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(r, r) == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 2.5), r) == pytest.approx(0.0)


def test_run_writes_checkpoints_scalars_and_initialized_net(tmp_path):
    summary = train(cartpole(tmp_path, run_name="r", checkpoint_every=1000, log_every=400, n_steps=5, lr_decay=False))
    run_dir = tmp_path / "r"
    assert summary["steps"] == 2000
    # the first rollout (8 envs × 5 steps) only feeds the data-dependent init
    assert summary["updates"] == 2000 // 40 - 1
    assert json.loads((run_dir / "config.json").read_text())["agent"] == "a2c"
    state = load_checkpoint(list_checkpoints(run_dir)[-1])
    assert state["agent"] == "a2c" and state["step"] == 2000
    net = ActorCritic((4,), 2)
    net.load_state_dict(state["model"])
    assert is_initialized(net)
    tags = scalars(run_dir)
    for tag in (
        "charts/SPS",
        "charts/learning_rate",
        "losses/policy_loss",
        "losses/value_loss",
        "losses/entropy",
        "losses/explained_variance",
        "charts/episodic_return",
        "charts/episodic_length",
    ):
        assert tag in tags, tag
    assert any(t.startswith("wn/") for t in tags)


def test_lr_decays_linearly(tmp_path):
    summary = train(cartpole(tmp_path, lr_decay=True, learning_rate=7e-4, log_every=384, run_name="d"))
    lrs = scalars(summary["run_dir"])["charts/learning_rate"]
    assert len(lrs) >= 4
    for step, lr in lrs:
        assert lr == pytest.approx(7e-4 * max(0.0, 1 - step / 2000), abs=1e-9)


def test_seeded_runs_are_reproducible(tmp_path):
    a = train(cartpole(tmp_path / "a", seed=4))
    b = train(cartpole(tmp_path / "b", seed=4))
    assert a["recent_returns"] == b["recent_returns"]


def test_compiled_run_matches_the_eager_run(tmp_path, capsys):
    """--compile default changes the speed, not the learning: the same seed gives the same network."""
    runs = [train(cartpole(tmp_path / mode, seed=4, total_steps=1280, compile=mode)) for mode in ("off", "default")]
    assert "warning" not in capsys.readouterr().err  # it compiled: no fallback
    eager, compiled = (load_checkpoint(list_checkpoints(r["run_dir"])[-1])["model"] for r in runs)
    assert runs[0]["updates"] == runs[1]["updates"] > 0
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "wn_mobn"])
def test_other_norms_train(tmp_path, norm):
    summary = train(cartpole(tmp_path, norm=norm, total_steps=400))
    assert summary["updates"] > 0
    assert_trained_with_norm(summary["run_dir"], norm)


@pytest.mark.slow
def test_a2c_solves_cartpole_with_its_defaults(tmp_path):
    """The classic-control defaults (300k steps): near-solved (500 is the cap; random play ~22)."""
    cfg = A2CConfig.for_env("CartPole-v1", logdir=str(tmp_path), progress=False, seed=1)
    last = train(cfg)["recent_returns"][-20:]
    assert np.mean(last) > 400, last


@pytest.mark.slow
def test_a2c_learns_catch_with_the_conv_net(tmp_path, catch_56):
    # 56×56 frames, 40k steps: 1.0, 1.0, 1.0, 1.0, 0.96 (seeds 1-5); 30k: 1.0, 0.92, 1.0 (seeds 1-3).
    # On 42×42 frames (the last conv sees one position) the same runs are unstable: 0.72, 0.56, 0.16 at
    # 40k, 0.48, 1.0, -0.12 at 60k (seeds 1-3), after a change of environment (not of code) moved seed 1
    # from 1.00 to 0.72 there.
    cfg = A2CConfig.for_env("Catch", logdir=str(tmp_path), progress=False, total_steps=40_000, seed=1)
    last = train(cfg)["recent_returns"][-50:]
    assert np.mean(last) > 0.8, last  # random play: about -0.6; every ball caught: +1


def test_cli_smoke_on_breakout(tmp_path):
    r = cli(
        "a2c",
        "--env",
        "Breakout",
        "--total-steps",
        "800",
        "--num-envs",
        "8",
        "--log-every",
        "200",
        "--checkpoint-every",
        "400",
        "--logdir",
        str(tmp_path),
        "--run-name",
        "smoke",
        "--progress",
        "false",
        "--init-rollouts",
        "2",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = tmp_path / "smoke"
    tags = scalars(run_dir)
    for tag in ("charts/SPS", "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/explained_variance"):
        assert tag in tags, tag
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000000000400.pt", "step_000000000800.pt"]


def test_cli_bad_input(tmp_path):
    r = train_in_process("a2c", "--env", "CartPole-v1", "--n-steps", "0", "--logdir", str(tmp_path))
    assert r.returncode == 2 and "--n-steps must be at least 1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_wn_project_holds_the_conv_nets_directions_at_their_initial_norm(tmp_path):
    """Catch's Nature-style conv trunk at A2C Atari's initial norm: after the last update every row of
    every WN layer sits at 0.577, the function of the net being what the updates made it."""
    cfg = A2CConfig.for_env(
        "Catch", logdir=str(tmp_path), progress=False, total_steps=640, init_rollouts=1, log_every=160,
        wn_init_norm=0.577, wn_project=True,
    )  # fmt: skip
    summary = train(cfg)
    assert summary["updates"] == 640 // (16 * 5) - 1
    state = load_checkpoint(list_checkpoints(summary["run_dir"])[-1])
    net = ActorCritic((4, 84, 84), 3)
    set_v_init_norm(net, 0.577)
    net.load_state_dict(state["model"])
    layers = wn_layers(net)
    assert len(layers) == 4  # conv1-3 and the dense layer
    for _, layer in layers:
        norms = layer.v.detach().flatten(1).norm(dim=1)
        torch.testing.assert_close(norms, torch.full_like(norms, 0.577), rtol=1e-5, atol=0)
    tags = scalars(summary["run_dir"])
    assert all(f"wn/{n}/angle_per_update" in tags and f"wn/{n}/angle_one_update" in tags for n, _ in layers)


def test_wn_project_compiled_run_matches_the_eager_run(tmp_path, capsys):
    """--compile default with --wn-project: the same network as eager, every row at its target."""
    runs = [
        train(cartpole(tmp_path / mode, seed=4, total_steps=1280, compile=mode, wn_project=True))
        for mode in ("off", "default")
    ]
    assert "warning" not in capsys.readouterr().err
    eager, compiled = (load_checkpoint(list_checkpoints(r["run_dir"])[-1])["model"] for r in runs)
    assert runs[0]["updates"] == runs[1]["updates"] > 0
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-4)
    net = ActorCritic((4,), 2, hidden_sizes=(64, 64), activation="tanh")
    net.load_state_dict(compiled)
    for _, layer in wn_layers(net):  # actor and critic MLPs: fan-in 4 and 64, the paper's draw
        norms = layer.v.detach().flatten(1).norm(dim=1)
        torch.testing.assert_close(norms, torch.full_like(norms, layer.v_target_norm), rtol=1e-5, atol=0)


def test_a_batch_norm_net_takes_its_advantages_from_the_values_it_acted_with():
    """Its bootstrap V(s_T) comes from acting (eval mode: running statistics), so V(s_t) must too: the
    training-mode values (the rollout's batch statistics) of a batch-norm net are another function. The
    targets are then those of the acting values; the value loss still trains the learner's values."""
    from wnrl.agents.a2c import rollout_losses

    T, N = 3, 2
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(T, N, generator=g)
    terminals = torch.tensor([[False, True], [False, False], [True, False]])
    valid, actions = torch.ones(T, N, dtype=torch.bool), torch.zeros(T, N, dtype=torch.long)
    acting, learner, bootstrap = torch.rand(T, N, generator=g), torch.rand(T * N, generator=g), torch.rand(N)
    logits = torch.zeros(T * N, 2)
    cfg = A2CConfig.for_env("CartPole-v1", gae_lambda=0.9)  # λ < 1: the targets depend on V(s_t)
    with_acting = rollout_losses(cfg, rewards, terminals, valid, actions, acting_values=acting)
    _, parts, returns = with_acting(logits, learner, bootstrap)
    _, _, expected = rollout_losses(cfg, rewards, terminals, valid, actions)(logits, acting.flatten(), bootstrap)
    torch.testing.assert_close(returns, expected)  # the targets of the acting values
    assert parts["value_loss"].item() == pytest.approx(((learner - returns) ** 2).mean().item(), rel=1e-5)
    # the default nets (no batch statistics) keep the learner's values
    _, _, plain = rollout_losses(cfg, rewards, terminals, valid, actions)(logits, learner, bootstrap)
    assert not torch.allclose(plain, returns)
