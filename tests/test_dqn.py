import json

import numpy as np
import pytest
import torch
from wnrl.agents.dqn import DQNConfig, QNetwork, act, train

from tests.helpers import assert_trained_with_norm, cli, scalars, train_in_process
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.layers import is_initialized, set_v_init_norm, wn_layers


def cartpole(tmp_path, **kw):
    base = dict(logdir=str(tmp_path), progress=False, total_steps=2000, learning_starts=200)
    return DQNConfig.for_env("CartPole-v1", **{**base, **kw})


def test_family_defaults_and_overrides():
    atari = DQNConfig.for_env("Breakout")
    assert (atari.buffer_size, atari.learning_starts, atari.batch_size, atari.learning_rate) == (
        1_000_000,
        80_000,
        32,
        1e-4,
    )
    assert (atari.target_update_frequency, atari.train_frequency, atari.num_envs, atari.max_grad_norm) == (
        1000,
        4,
        8,
        10.0,
    )
    assert atari.exploration_fraction == 0.1 and atari.end_epsilon == 0.01 and atari.clip_rewards
    classic = DQNConfig.for_env("CartPole-v1", buffer_size=123)
    assert classic.buffer_size == 123 and classic.learning_starts == 1_000 and not classic.clip_rewards


def test_act_is_greedy_at_zero_epsilon_and_random_at_one():
    q = QNetwork((3,), 4, norm="none")
    obs = torch.randn(64, 3)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(act(q, obs, 0.0, rng, 4), q(obs).argmax(1).numpy())
    random_actions = act(q, obs, 1.0, rng, 4)
    assert set(random_actions.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("overlap_env", [True, False])
@pytest.mark.parametrize("num_envs", [1, 8])
def test_replay_ratio_and_target_syncs_do_not_depend_on_num_envs(tmp_path, num_envs, overlap_env):
    cfg = cartpole(tmp_path, num_envs=num_envs, train_frequency=4, target_update_frequency=500, overlap_env=overlap_env)
    summary = train(cfg)
    assert summary["steps"] == 2000
    # one update per 4 agent steps from learning_starts on: (2000 - 200) / 4 + 1
    assert summary["updates"] == 451
    # copies at the start of learning (step 200), then every 500 steps: ~700, ~1200, ~1700
    assert summary["target_syncs"] == 4


def test_run_writes_config_checkpoints_and_initialized_model(tmp_path):
    summary = train(cartpole(tmp_path, checkpoint_every=1000, run_name="r"))
    run_dir = tmp_path / "r"
    assert summary["run_dir"] == run_dir
    config = json.loads((run_dir / "config.json").read_text())
    assert config["agent"] == "dqn" and config["env"] == "CartPole-v1" and config["learning_starts"] == 200
    ckpts = list_checkpoints(run_dir)
    assert [p.name for p in ckpts] == ["step_000000001000.pt", "step_000000002000.pt"]
    state = load_checkpoint(ckpts[-1])
    assert state["agent"] == "dqn" and state["env"] == "CartPole-v1" and state["step"] == 2000
    q = QNetwork((4,), 2, "wn", hidden_sizes=tuple(config["hidden_sizes"]))
    q.load_state_dict(state["model"])
    assert is_initialized(q)  # data-dependent init ran when learning started
    tags = scalars(run_dir)
    for tag in ("charts/episodic_return", "charts/SPS", "charts/epsilon", "losses/td_loss", "losses/q_values"):
        assert tag in tags, tag
    assert any(t.startswith("wn/") for t in tags)


def test_seeded_runs_are_reproducible(tmp_path):
    a = train(cartpole(tmp_path / "a", total_steps=1200, seed=3))
    b = train(cartpole(tmp_path / "b", total_steps=1200, seed=3))
    assert a["recent_returns"] == b["recent_returns"]
    sa = load_checkpoint(list_checkpoints(a["run_dir"])[-1])["model"]
    sb = load_checkpoint(list_checkpoints(b["run_dir"])[-1])["model"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)


@pytest.mark.parametrize("conv", [False, True])
def test_held_weights_change_no_bit_of_a_run(tmp_path, monkeypatch, conv):
    """The target's WN weights are built once per copy and the online net's pass over s' reuses its
    pass over s (layers.held_weights): the same run without either ends on the same bits. A target
    still holding the previous copy's weights after a copy would change the TD targets, and so the run.
    MLP: the fused dense path; conv (Catch): the convolutions and the large dense layer's other path."""
    import contextlib

    import wnrl.agents.dqn as dqn

    if conv:
        kw = dict(env="Catch", total_steps=600, learning_starts=300, batch_size=8, buffer_size=1000)
    else:
        kw = dict(total_steps=900, learning_starts=300)
    cfg = dict(seed=2, double_dqn=True, train_frequency=2, target_update_frequency=100, **kw)
    env = cfg.pop("env", "CartPole-v1")
    held = train(DQNConfig.for_env(env, logdir=str(tmp_path / "held"), progress=False, **cfg))
    monkeypatch.setattr(dqn, "held_weights", lambda module: contextlib.nullcontext(module))
    free = train(DQNConfig.for_env(env, logdir=str(tmp_path / "free"), progress=False, **cfg))
    assert held["target_syncs"] >= 3 and held["target_syncs"] == free["target_syncs"]
    a = load_checkpoint(list_checkpoints(held["run_dir"])[-1])
    b = load_checkpoint(list_checkpoints(free["run_dir"])[-1])
    for part in ("model", "target"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "wn_mobn"])
def test_other_norms_train(tmp_path, norm):
    summary = train(cartpole(tmp_path, norm=norm, total_steps=600))
    assert summary["updates"] > 0
    assert_trained_with_norm(summary["run_dir"], norm)


def test_double_dueling_n_step_reach_the_run(tmp_path, monkeypatch):
    """Each flag gets to the part that uses it: the replay returns over 3 steps, every TD loss is
    double DQN's, the saved network has a dueling head."""
    import wnrl.agents.dqn as dqn

    seen = {"n_step": [], "double": set()}
    real_buffer, real_loss = dqn.ReplayBuffer, dqn.td_loss

    def buffer(*args, **kw):
        seen["n_step"].append(kw["n_step"])
        return real_buffer(*args, **kw)

    def loss(q, target, batch, double, *args, **kw):
        seen["double"].add(double)
        return real_loss(q, target, batch, double, *args, **kw)

    monkeypatch.setattr(dqn, "ReplayBuffer", buffer)
    monkeypatch.setattr(dqn, "td_loss", loss)
    summary = train(cartpole(tmp_path, double_dqn=True, dueling=True, n_step=3, total_steps=600))
    assert summary["updates"] > 0 and seen == {"n_step": [3], "double": {True}}
    model = load_checkpoint(list_checkpoints(summary["run_dir"])[-1])["model"]
    assert {k.split(".")[1] for k in model if k.startswith("head.")} == {"advantage", "value"}


def test_adamax_with_the_papers_beta1(tmp_path):
    summary = train(cartpole(tmp_path, optimizer="adamax", adam_beta1=0.5, total_steps=600))
    opt = load_checkpoint(list_checkpoints(summary["run_dir"])[-1])["optimizer"]
    assert opt["param_groups"][0]["betas"] == (0.5, 0.999)
    assert all("exp_inf" in s for s in opt["state"].values())  # Adamax's infinity norm, not Adam's squares


@pytest.mark.slow
def test_dqn_solves_cartpole_with_its_defaults(tmp_path):
    """The classic-control defaults at their length (100k): near-solved (500 is the cap; random play ~22).
    At half the length seed 1 passed on one CPU and scored 110 on another (float rounding alone changes
    a DQN run): a test of the defaults runs the defaults."""
    cfg = DQNConfig.for_env("CartPole-v1", logdir=str(tmp_path), progress=False, seed=1)
    last = train(cfg)["recent_returns"][-20:]
    assert np.mean(last) > 400, last


@pytest.mark.slow
def test_dqn_learns_catch_with_the_conv_net(tmp_path, catch_56):
    cfg = DQNConfig.for_env(
        "Catch",
        logdir=str(tmp_path),
        progress=False,
        total_steps=8_000,
        learning_starts=500,
        train_frequency=2,
        exploration_fraction=0.3,
        learning_rate=5e-4,
        batch_size=16,
    )
    summary = train(cfg)
    last = summary["recent_returns"][-50:]
    # random play scores about -0.6; a perfect catcher +1
    assert np.mean(last) > 0.8, last


def test_cli_smoke_on_breakout(tmp_path):
    r = cli(
        "dqn",
        "--env",
        "Breakout",
        "--total-steps",
        "640",
        "--learning-starts",
        "320",
        "--num-envs",
        "4",
        "--buffer-size",
        "4000",
        "--log-every",
        "160",
        "--checkpoint-every",
        "320",
        "--logdir",
        str(tmp_path),
        "--run-name",
        "smoke",
        "--progress",
        "false",
        "--init-batch-size",
        "64",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = tmp_path / "smoke"
    assert "done: 640 steps" in r.stdout
    tags = scalars(run_dir)
    for tag in ("charts/SPS", "charts/epsilon", "losses/td_loss", "losses/q_values"):
        assert tag in tags, tag
    assert any(t.startswith("wn/") for t in tags)
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000000000320.pt", "step_000000000640.pt"]
    assert list(run_dir.glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "Breakot"], "did you mean 'Breakout'"),
        (["--env", "CartPole-v1", "--num-envs", "0"], "--num-envs must be at least 1"),
        (["--env", "CartPole-v1", "--total-steps", "-5"], "--total-steps must be at least 1"),
        (["--env", "CartPole-v1", "--batch-size", "500", "--buffer-size", "100"], "exceeds --buffer-size"),
        (["--env", "Breakout", "--buffer-size", "1000000000000"], "smaller --buffer-size"),
        (["--env", "CartPole-v1", "--total-steps", "abc"], "expected an integer"),
        (["--env", "CartPole-v1", "--norm", "bn"], "unknown --norm 'bn'"),
        (["--env", "CartPole-v1", "--optimizer", "sgd"], "unknown --optimizer 'sgd'"),
        (["--env", "CartPole-v1", "--bogus", "1"], "unrecognized arguments: --bogus"),
        (["--env", "CartPole-v1", "--norm", "layer", "--wn-project"], "--wn-project rescales weight norm's"),
        (["--env", "CartPole-v1", "--wn-init-norm", "-1"], "--wn-init-norm must be >= 0"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, message):
    """In this process (the command's main): the process itself is checked once, below."""
    r = (
        train_in_process("dqn", *args, "--logdir", str(tmp_path), "--total-steps", "100")
        if "--total-steps" not in args
        else train_in_process("dqn", *args, "--logdir", str(tmp_path))
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())  # nothing written for a refused run


def test_cli_run_too_short_for_an_episode_says_so(tmp_path):
    r = train_in_process(
        "dqn", "--env", "CartPole-v1", "--total-steps", "10", "--logdir", str(tmp_path), "--progress", "false"
    )
    assert r.returncode == 0 and "0 episodes, no episode finished" in r.stdout and "nan" not in r.stdout


def test_cli_bad_input_as_a_process_is_one_line_exit_2(tmp_path):
    """The command as a user runs it: a refusal after the Atari env was built (what ALE prints would reach
    the terminal here, not in-process) and an argparse error, each one line on stderr, exit 2."""
    for args in (["--env", "Breakout", "--buffer-size", "1000000000000"], ["--env", "CartPole-v1", "--bogus", "1"]):
        r = cli("dqn", *args, "--logdir", str(tmp_path), "--total-steps", "100")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cli_cuda_without_gpu(tmp_path):
    r = train_in_process("dqn", "--env", "CartPole-v1", "--device", "cuda", "--logdir", str(tmp_path))
    assert r.returncode == 2 and "use --device cpu" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_never_overwrites_a_run(tmp_path):
    (tmp_path / "taken").mkdir()
    r = train_in_process(
        "dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "taken", "--total-steps", "100"
    )
    assert r.returncode == 2 and "already exists" in r.stderr
    assert not any((tmp_path / "taken").iterdir())


def test_compiled_update_matches_eager_and_runs_compiled(tmp_path, capsys):
    """--compile default: the same TD gradients as eager, and a run that stays compiled."""
    from wnrl.agents.dqn import td_loss
    from wnrl.agents.replay import ReplayBatch

    from wnrl.compiled import Compiled
    from wnrl.layers import data_dependent_init

    torch.manual_seed(0)
    q, target = QNetwork((4,), 3, "wn"), QNetwork((4,), 3, "wn")
    data_dependent_init(q, torch.randn(64, 4))
    batch = ReplayBatch(
        torch.randn(16, 4), torch.randint(0, 3, (16,)), torch.randn(16), torch.rand(16), torch.randn(16, 4)
    )

    def grads(step):
        for p in q.parameters():
            p.grad = None
        loss = step(batch)
        return loss, [p.grad.clone() for p in q.parameters()]

    def update(b):
        loss, _ = td_loss(q, target, b, double=True)
        loss.backward()
        return loss.detach()

    compiled = Compiled(update, "default", "test update")
    eager_loss, eager_grads = grads(update)
    compiled_loss, compiled_grads = grads(compiled)
    assert compiled.compiled  # it did compile: no fallback to eager
    torch.testing.assert_close(compiled_loss, eager_loss)
    for a, b in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    summary = train(cartpole(tmp_path, total_steps=600, compile="default"))
    assert summary["updates"] > 0
    assert "warning" not in capsys.readouterr().err


def test_bad_compile_and_replay_placement_are_one_line_errors(tmp_path):
    for flag, value, expect in (
        ("--compile", "fast", "unknown --compile 'fast'"),
        ("--replay-on-device", "maybe", "--replay-on-device must be auto, yes or no"),
    ):
        r = cli("dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), flag, value)
        assert r.returncode == 2 and r.stderr.startswith(f"error: {expect}"), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_replay_goes_to_the_gpu_when_it_fits_in_half_its_free_memory(monkeypatch):
    import wnrl.agents.dqn as dqn

    monkeypatch.setattr(dqn, "available_memory", lambda device: 10 * 2**30)
    gpu, cpu = torch.device("cuda"), torch.device("cpu")

    def where(choice, gib, device=gpu):
        return dqn.replay_storage(DQNConfig.for_env("Breakout", replay_on_device=choice), gib * 2**30, device)

    assert where("auto", 4) == gpu and where("auto", 6) == cpu  # 10 GiB free
    assert where("yes", 6) == gpu and where("no", 1) == cpu
    assert where("auto", 1, cpu) == cpu and where("yes", 1, cpu) == cpu  # training on the CPU


@pytest.mark.parametrize("norm", ["batch", "wn_mobn"])
def test_batch_norm_target_agrees_with_online_after_a_copy(norm):
    """Batch-statistics nets: after init, the running statistics are the init batch's, and right
    after a target copy the target's Q on a batch equals the online net's (both in training mode);
    the passes over s' leave the online net's running statistics alone."""
    import copy

    from wnrl.agents.dqn import td_loss
    from wnrl.agents.replay import ReplayBatch

    from wnrl.layers import frozen_batch_statistics, init_from_data, needs_data_init

    torch.manual_seed(0)
    q = QNetwork((4,), 3, norm)
    x = torch.randn(256, 4) * 3 + 2
    assert needs_data_init(q)
    init_from_data(q, x)
    assert not needs_data_init(q)
    q.eval()
    eval_q = q(x)
    q.train()
    # eval mode on the init batch = train mode (up to batch norm's unbiased running variance, 256/255)
    torch.testing.assert_close(eval_q, q(x), rtol=1e-2, atol=1e-2)
    target = copy.deepcopy(q)
    batch = ReplayBatch(torch.randn(32, 4), torch.randint(0, 3, (32,)), torch.zeros(32), torch.ones(32), x[:32])
    only_obs = copy.deepcopy(q)
    only_obs(batch.obs)  # what the gradient pass over s alone does to the running statistics
    stats = {k: v for k, v in only_obs.state_dict().items() if "running" in k}
    captured = {}
    import wnrl.agents.dqn as dqn

    real = dqn.q_learning_targets
    try:
        dqn.q_learning_targets = lambda r, d, q_t, q_t_online: captured.update(q_t=q_t, online=q_t_online) or r + d
        td_loss(q, target, batch, double=True, freeze=frozen_batch_statistics(q, target))
    finally:
        dqn.q_learning_targets = real
    torch.testing.assert_close(captured["q_t"], captured["online"])  # target == online on s'
    for k, v in stats.items():
        torch.testing.assert_close(q.state_dict()[k], v)  # s' did not move the running statistics further


def row_norms_and_targets(state: dict, config: dict, obs_shape, n_actions):
    """Each WN layer's row norms ‖v_i‖ in a checkpoint's model, with the norm --wn-project holds them at."""
    q = QNetwork(obs_shape, n_actions, config["norm"], hidden_sizes=tuple(config["hidden_sizes"]))
    set_v_init_norm(q, config["wn_init_norm"])
    q.load_state_dict(state)
    return [(layer.v.detach().flatten(1).norm(dim=1), layer.v_target_norm) for _, layer in wn_layers(q)]


@pytest.mark.parametrize("compile", ["off", "default"])
def test_wn_project_holds_every_direction_at_its_initial_norm(tmp_path, compile, capsys):
    """After the last update every row sits at its target (the paper's draw: 0.05·√fan_in, 0.1 and
    0.8 for CartPole's 4 → 256 → 256 trunk); without the flag the same run's rows are not. The
    turn of the directions per update is logged."""
    short = dict(total_steps=800, log_every=200, compile=compile)
    runs = {project: train(cartpole(tmp_path / str(project), wn_project=project, **short)) for project in (True, False)}
    for project, summary in runs.items():
        assert summary["updates"] > 100
        config = json.loads((summary["run_dir"] / "config.json").read_text())
        assert config["wn_project"] is project
        state = load_checkpoint(list_checkpoints(summary["run_dir"])[-1])["model"]
        layers = row_norms_and_targets(state, config, (4,), 2)
        assert [t for _, t in layers] == pytest.approx([0.1, 0.8])
        for norms, target in layers:
            if project:
                torch.testing.assert_close(norms, torch.full_like(norms, target), rtol=1e-5, atol=0)
            else:  # drawn around the target, then lengthened by every step
                assert not torch.allclose(norms, torch.full_like(norms, target), rtol=1e-3)
    tags = scalars(runs[True]["run_dir"])
    for layer in ("trunk.net.0", "trunk.net.2"):
        angles = [a for _, a in tags[f"wn/{layer}/angle_per_update"]]
        one = [a for _, a in tags[f"wn/{layer}/angle_one_update"]]
        assert len(angles) == len(one) >= 2 and all(0 < a < 5 for a in angles + one)  # degrees
        assert all(v == pytest.approx(0.1 if layer.endswith("0") else 0.8) for _, v in tags[f"wn/{layer}/v_norm_mean"])
    if compile != "off":
        assert "warning" not in capsys.readouterr().err  # it stayed compiled


def test_wn_project_survives_resume_and_cannot_be_switched(tmp_path):
    from wnrl.config import CliError
    from wnrl.train import main, resumed_config

    args = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", "--progress", "false"]
    args += ["--learning-starts", "200", "--checkpoint-every", "400", "--wn-project", "--wn-init-norm", "0.5"]
    assert main([*args, "--total-steps", "400"]) == 0
    run_dir = tmp_path / "r"
    assert main(["dqn", "--resume", str(run_dir), "--total-steps", "1000", "--progress", "false"]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["wn_project"] is True and config["wn_init_norm"] == 0.5
    state = load_checkpoint(list_checkpoints(run_dir)[-1])
    assert state["step"] == 1000 and state["config"]["wn_project"] is True
    for norms, target in row_norms_and_targets(state["model"], config, (4,), 2):
        assert target == 0.5
        torch.testing.assert_close(norms, torch.full_like(norms, 0.5), rtol=1e-5, atol=0)
    for change in ({"wn_project": False}, {"wn_init_norm": 0.577}):
        with pytest.raises(CliError, match="cannot change when resuming"):
            resumed_config(DQNConfig, "dqn", str(run_dir), change)
    # the same values again, or a config saved before --wn-project existed, resume as they were
    assert resumed_config(DQNConfig, "dqn", str(run_dir), {"wn_project": True, "hidden_sizes": (256, 256)}).wn_project
    del config["wn_project"]
    (run_dir / "config.json").write_text(json.dumps(config))
    assert not resumed_config(DQNConfig, "dqn", str(run_dir), {"wn_project": False}).wn_project
