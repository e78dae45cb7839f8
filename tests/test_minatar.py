"""MinAtar (Young & Tian, 2019) as the env family "minatar": ids, observations, autoreset and game
statistics, seeding, sticky actions, MinAtar's small conv net under every norm, the family's defaults,
and a tiny run of each agent through the command line that wnrl.load, evaluate and --resume take."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from torch import nn
from wnrl.agents.a2c import A2CConfig, ActorCritic
from wnrl.agents.dqn import DQNConfig, QNetwork, build_buffer, make_dqn_optimizer
from wnrl.envs.minatar import GAMES, MinAtarVectorEnv

import wnrl
from wnrl import envs, evaluate, train
from wnrl.dormant import dormant_fractions, dormant_tag
from wnrl.layers import WNConv2d, WNDirections, WNLinear, init_from_data, set_v_init_norm, wn_layers
from wnrl.nets import NORMS, MinAtarConvNet, WNConvNet, last_hidden_size, make_trunk

# wnrl loads MinAtar's games without importing the package (its display imports take ~1.4 s)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("minatar") is None, reason="needs pip install minatar")

QUIET = ["--progress", "false", "--threads", "1"]
CHANNELS = {"Asterix": 4, "Breakout": 4, "Freeway": 7, "Seaquest": 10, "SpaceInvaders": 6}
MINIMAL_ACTIONS = {"Asterix": 5, "Breakout": 3, "Freeway": 3, "Seaquest": 6, "SpaceInvaders": 4}


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("env_id", "name"),
    [
        ("MinAtar/Breakout", "MinAtar/Breakout-v1"),
        ("MinAtar/Breakout-v1", "MinAtar/Breakout-v1"),
        ("minatar/breakout", "MinAtar/Breakout-v1"),
        ("MinAtar/Breakout-v0", "MinAtar/Breakout-v0"),
        ("MinAtar/SpaceInvaders-v1", "MinAtar/SpaceInvaders-v1"),
        ("MinAtar/Space Invaders", "MinAtar/SpaceInvaders-v1"),
        ("MINATAR/space_invaders-v0", "MinAtar/SpaceInvaders-v0"),
        ("MinAtar/Asterix", "MinAtar/Asterix-v1"),
        ("MinAtar/Freeway", "MinAtar/Freeway-v1"),
        ("MinAtar/Seaquest", "MinAtar/Seaquest-v1"),
    ],
)
def test_minatar_ids_resolve_to_their_canonical_name(env_id, name):
    assert envs.resolve(env_id) == ("minatar", name)


def test_only_the_prefix_selects_minatar():
    assert envs.resolve("Breakout") == ("atari", "Breakout")
    assert envs.resolve("SpaceInvaders") == ("atari", "SpaceInvaders")
    assert envs.resolve("ALE/Breakout-v5") == ("atari", "Breakout")


def test_minatars_own_gymnasium_ids_still_mean_wnrls_env():
    """minatar.gym.register_envs() registers the same ids with gymnasium (a Python env with bool
    channels-last observations): they must still resolve to wnrl's vector env, not to "classic"."""
    import gymnasium as gym
    from minatar.gym import register_envs

    before = set(gym.registry)
    register_envs()
    try:
        assert "MinAtar/Breakout-v1" in gym.registry
        assert envs.resolve("MinAtar/Breakout-v1") == ("minatar", "MinAtar/Breakout-v1")
        env = envs.make("MinAtar/Breakout-v1", 1, seed=0)
        assert env.family == "minatar" and env.single_observation_space.shape == (4, 10, 10)
        env.close()
    finally:
        for env_id in set(gym.registry) - before:  # leave the registry as the other tests expect it
            del gym.registry[env_id]


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("MinAtar/Breakot", "did you mean 'MinAtar/Breakout-v1'?"),
        ("MinAtar/SpaceInvader", "did you mean 'MinAtar/SpaceInvaders-v1'?"),
        ("MinAtar/Breakout-v7", "did you mean 'MinAtar/Breakout-v1'?"),
        ("MinAtar/Pong", "MinAtar's games are Asterix, Breakout, Freeway, Seaquest, SpaceInvaders"),
    ],
)
def test_an_unknown_minatar_id_is_one_line_naming_the_closest(bad, hint, capsys):
    with pytest.raises(ValueError) as e:
        envs.resolve(bad)
    assert hint in str(e.value) and "\n" not in str(e.value)
    assert train.main(["dqn", "--env", bad, *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: unknown environment {bad!r}") and hint in err


def test_without_the_minatar_package_a_run_stops_in_one_line(monkeypatch, capsys):
    import wnrl.envs.minatar

    monkeypatch.setattr(wnrl.envs.minatar, "is_installed", lambda: False)
    assert train.main(["a2c", "--env", "MinAtar/Breakout", *QUIET]) == 2
    err = capsys.readouterr().err
    assert err == "error: --env MinAtar/Breakout-v1 needs the minatar package, which is not installed here: " + (
        "pip install minatar\n"
    )


# ---------------------------------------------------------------- the env


@pytest.mark.parametrize("title", list(GAMES))
def test_observations_are_channels_first_uint8_of_minatars_state(title):
    env = envs.make(f"MinAtar/{title}", num_envs=3, seed=5)
    c = CHANNELS[title]
    assert env.family == "minatar" and env.env_id == f"MinAtar/{title}-v1"
    assert env.single_observation_space.shape == (c, 10, 10) and env.single_observation_space.dtype == np.uint8
    assert env.single_action_space.n == MINIMAL_ACTIONS[title]
    obs, _ = env.reset()
    assert obs.shape == (3, c, 10, 10) and obs.dtype == np.uint8
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    assert set(np.unique(obs)) <= {0, 255} and obs.any()
    # each env's observation is its game's (10, 10, C) bool state, channels first, 0/1 as 0/255
    for i, game in enumerate(env.unwrapped._games):
        np.testing.assert_array_equal(obs[i], game.state().transpose(2, 0, 1).astype(np.uint8) * 255)
    env.close()
    full = envs.make(f"MinAtar/{title}-v0", num_envs=1)
    assert full.single_action_space.n == 6
    full.close()


def test_autoreset_and_whole_game_statistics():
    env = envs.make("MinAtar/Breakout", num_envs=4, seed=2)
    env.reset()
    rng = np.random.default_rng(0)
    ret = np.zeros(4)
    length = np.zeros(4, dtype=int)
    ended = 0
    pending = np.zeros(4, dtype=bool)
    for _ in range(400):
        obs, reward, term, trunc, info = env.step(rng.integers(0, 3, size=4))
        # NextStep: the step after a game's end only resets (no reward, flagged autoreset)
        np.testing.assert_array_equal(info["autoreset"], pending)
        assert not reward[pending].any() and not term[pending].any()
        assert not info["life_lost"].any() and not trunc.any()
        playing = ~pending
        ret[playing] += reward[playing]
        length[playing] += 1
        np.testing.assert_array_equal(info["episode_end"], term)
        for k in np.flatnonzero(term):
            assert info["episode_return"][k] == ret[k] and info["episode_length"][k] == length[k]
            ended += 1
        ret[pending], length[pending] = 0, 0
        ret[term], length[term] = 0, 0
        pending = term.copy()
    assert ended >= 10  # random Breakout games last ~10-30 steps


def _trajectory(seed, steps=300, num_envs=2, **options):
    env = envs.make("MinAtar/Seaquest", num_envs=num_envs, seed=seed, **options)
    obs, _ = env.reset()
    rng = np.random.default_rng(123)
    out = [obs]
    for _ in range(steps):
        obs, reward, term, _, _ = env.step(rng.integers(0, env.single_action_space.n, size=num_envs))
        out += [obs, reward, term]
    env.close()
    return out


def test_seeding_is_deterministic_and_per_env():
    a, b, c = _trajectory(7), _trajectory(7), _trajectory(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # env i draws from seed + i: env 1 of seed 7 starts as env 0 of seed 8
    env7, env8 = MinAtarVectorEnv(2, "MinAtar/Seaquest"), MinAtarVectorEnv(1, "MinAtar/Seaquest")
    for k in range(20):
        np.testing.assert_array_equal(env7.reset(seed=7 + k)[0][1], env8.reset(seed=8 + k)[0][0])


def test_plays_what_minatars_own_environment_plays():
    """Same seed, same actions: the same states, rewards and game ends as minatar.Environment (sticky
    actions 0.1 and the game drawing from one RNG), through several games."""
    from minatar import Environment

    ours = MinAtarVectorEnv(1, "MinAtar/Breakout-v0")
    theirs = Environment("breakout")  # sticky_action_prob 0.1, difficulty ramping: its defaults
    theirs.seed(11)
    theirs.reset()
    obs, _ = ours.reset(seed=11)
    rng = np.random.default_rng(0)
    games = 0
    for _ in range(600):
        np.testing.assert_array_equal(obs[0], theirs.state().transpose(2, 0, 1) * 255)
        a = int(rng.integers(0, 6))
        r, done = theirs.act(a)
        obs, reward, term, _, _ = ours.step(np.array([a]))
        assert (reward[0], term[0]) == (r, done)
        if done:
            games += 1
            theirs.reset()
            obs, *_ = ours.step(np.array([0]))  # NextStep: this step resets
    assert games >= 5


def test_sticky_actions_repeat_the_previous_action():
    def paddle_moves(p):
        env = MinAtarVectorEnv(1, "MinAtar/Breakout", sticky_action_prob=p)
        env.reset(seed=3)
        start = env._games[0].pos
        env.step(np.array([1]))  # "left" (minimal set: no-op, left, right)
        return env._games[0].pos != start

    assert paddle_moves(0.0)
    assert not paddle_moves(1.0)  # always the previous action: the no-op it starts with
    assert DQNConfig.for_env("MinAtar/Breakout").sticky_actions == 0.1  # MinAtar's default
    assert DQNConfig.for_env("Breakout").sticky_actions == 0.0


# ---------------------------------------------------------------- the net


@pytest.mark.parametrize("norm", NORMS)
def test_minatar_net_shapes_under_every_norm(norm):
    trunk = make_trunk((7, 10, 10), norm)
    assert isinstance(trunk, MinAtarConvNet) and trunk.features_dim == 128
    x = (torch.randint(0, 2, (5, 7, 10, 10)) * 255).to(torch.uint8)
    init_from_data(trunk, x)
    assert trunk(x).shape == (5, 128)
    trunk.eval()
    torch.testing.assert_close(trunk(x), trunk(x.float() / 255))  # uint8 0/255 is read as 0/1
    q = QNetwork((7, 10, 10), 3, norm)
    init_from_data(q, x)
    assert q(x).shape == (5, 3)
    duel = QNetwork((7, 10, 10), 3, norm, dueling=True)
    assert duel.trunk.features_dim == 8 * 8 * 16 and last_hidden_size((7, 10, 10)) == 128
    init_from_data(duel, x)
    assert duel(x).shape == (5, 3)
    ac = ActorCritic((7, 10, 10), 3, norm)
    init_from_data(ac, x)
    logits, value = ac(x)
    assert logits.shape == (5, 3) and value.shape == (5,)
    assert isinstance(make_trunk((4, 84, 84), norm), WNConvNet) and not isinstance(
        make_trunk((4, 84, 84), norm), MinAtarConvNet
    )


def test_minatar_net_is_the_papers():
    net = MinAtarConvNet(4, "none")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    dense = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [(4, 16, (3, 3), (1, 1))]
    assert [(d.in_features, d.out_features) for d in dense] == [(8 * 8 * 16, 128)]
    assert sum(p.numel() for p in net.parameters()) == (4 * 9 * 16 + 16) + (1024 * 128 + 128)
    wn = MinAtarConvNet(4, "wn")
    assert [type(m) for _, m in wn_layers(wn)] == [WNConv2d, WNLinear]


def test_wn_init_norm_and_projection_hold_on_the_minatar_net():
    net = MinAtarConvNet(4, "wn")
    set_v_init_norm(net, 0.577)
    x = (torch.randint(0, 2, (16, 4, 10, 10)) * 255).to(torch.uint8)
    init_from_data(net, x)
    for _, layer in wn_layers(net):
        torch.testing.assert_close(layer.v.flatten(1).norm(dim=1), torch.full((layer.v.shape[0],), 0.577))
    directions = WNDirections(net, project=True)
    directions.diagnostics()  # the reference directions
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    net(x).square().sum().backward()
    opt.step()
    grown = max(float(layer.v.detach().flatten(1).norm(dim=1).max()) for _, layer in wn_layers(net))
    directions.after_step()
    assert grown > 0.6  # the step grew the directions, the projection put them back
    for _, layer in wn_layers(net):
        torch.testing.assert_close(layer.v.flatten(1).norm(dim=1), torch.full((layer.v.shape[0],), 0.577))
    tags = directions.diagnostics()
    for layer in ("convs.0", "fc.0"):
        assert tags[f"wn/{layer}/angle_per_update"] > 0 and tags[f"wn/{layer}/angle_one_update"] > 0


@pytest.mark.parametrize("norm", NORMS)
def test_dormant_units_are_counted_per_layer_on_the_minatar_net(norm):
    net = ActorCritic((4, 10, 10), 3, norm)
    x = (torch.randint(0, 2, (8, 4, 10, 10)) * 255).to(torch.uint8)
    init_from_data(net, x)
    out = dormant_fractions(net, x)
    layers = ["trunk.convs.0", "trunk.fc.0"]
    assert list(out) == [dormant_tag(n, tau) for n in layers for tau in (0.0, 0.025)]
    assert net.critic_layers() == layers


# ---------------------------------------------------------------- defaults and the replay


def test_dqn_defaults_are_minatars_dqn():
    cfg = DQNConfig.for_env("MinAtar/Breakout")
    assert cfg.env == "MinAtar/Breakout-v1"  # the canonical name is what config.json records
    assert (cfg.total_steps, cfg.num_envs, cfg.buffer_size, cfg.learning_starts, cfg.batch_size) == (
        5_000_000,
        1,
        100_000,
        5_000,
        32,
    )
    assert (cfg.train_frequency, cfg.target_update_frequency, cfg.gamma, cfg.end_epsilon) == (1, 1_000, 0.99, 0.1)
    assert cfg.exploration_fraction * cfg.total_steps == 100_000
    assert not cfg.clip_rewards and cfg.max_grad_norm == 0 and not cfg.double_dqn and cfg.n_step == 1
    opt = make_dqn_optimizer(cfg, [nn.Parameter(torch.zeros(3))])
    assert isinstance(opt, torch.optim.RMSprop)
    group = opt.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["centered"]) == (2.5e-4, 0.95, 0.01, True)
    a2c = A2CConfig.for_env("MinAtar/Breakout")
    assert (a2c.total_steps, a2c.num_envs, a2c.n_steps, a2c.optimizer, a2c.learning_rate) == (
        5_000_000,
        16,
        5,
        "rmsprop_tf",
        7e-4,
    )
    assert a2c.sticky_actions == 0.1 and not a2c.clip_rewards and a2c.lr_decay


def test_the_replay_stores_whole_minatar_observations():
    """MinAtar's channels are not a frame stack: the replay must give back each observation whole."""
    env = envs.make("MinAtar/Freeway", num_envs=2, seed=0)
    cfg = DQNConfig.for_env("MinAtar/Freeway", buffer_size=200, batch_size=16)
    rb = build_buffer(cfg, env, torch.device("cpu"))
    assert rb.frame_stack == 1 and tuple(rb.frames.shape[2:]) == (7, 10, 10)
    obs, _ = env.reset()
    seen = {obs[i].tobytes() for i in range(2)}
    first = np.ones(2, dtype=bool)
    for _ in range(60):
        actions = env.action_space.sample()
        nxt, reward, term, _, info = env.step(actions)
        rb.add(obs, actions, reward, term, ~info["autoreset"], first)
        first = info["autoreset"]
        obs = nxt
        seen |= {obs[i].tobytes() for i in range(2)}
    batch = rb.sample(16)
    for o in (*batch.obs.numpy(), *batch.next_obs.numpy()):
        assert o.tobytes() in seen
    env.close()


# ---------------------------------------------------------------- end to end through the command line


TINY_FLAGS = {
    "dqn": ["--total-steps", "300", "--learning-starts", "100"],
    "a2c": ["--total-steps", "320"],
    "ppo": ["--total-steps", "320", "--num-envs", "4", "--n-steps", "16", "--init-rollouts", "1"],
    "pqn": ["--total-steps", "320", "--num-envs", "4", "--n-steps", "16", "--num-minibatches", "4"],
}


@pytest.mark.parametrize("agent", list(TINY_FLAGS))
def test_a_tiny_run_trains_checkpoints_loads_and_predicts(agent, tmp_path, capsys):
    args = [agent, "--env", "MinAtar/Breakout", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    args += TINY_FLAGS[agent]
    assert train.main(args) == 0
    run_dir = tmp_path / "r"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env"] == "MinAtar/Breakout-v1" and config["sticky_actions"] == 0.1
    trained = wnrl.load(run_dir, device="cpu", seed=0)
    assert trained.env_id == "MinAtar/Breakout-v1" and trained.obs_shape == (4, 10, 10)
    assert isinstance(trained.net.trunk, MinAtarConvNet)
    env = trained.make_env(num_envs=3, seed=1)
    obs, _ = env.reset()
    actions = trained.predict(obs)
    assert actions.shape == (3,) and set(actions.tolist()) <= {0, 1, 2}
    assert trained.predict(obs[0]) == actions[0]
    env.close()
    if agent == "a2c":  # resume and evaluate find the game again by its recorded name
        assert train.main([agent, "--resume", str(run_dir), "--total-steps", "480", *QUIET]) == 0
        assert wnrl.load(run_dir, device="cpu").step == 480
        gif = tmp_path / "game.gif"
        args = [str(run_dir), "--episodes", "2", "--device", "cpu", "--threads", "1", "--video", str(gif)]
        assert evaluate.main(args) == 0
        assert "a2c on MinAtar/Breakout-v1 at step 480" in capsys.readouterr().out
        from PIL import Image

        with Image.open(gif) as im:  # the 10×10 grid in colour, 8 pixels a cell, 3×
            assert im.size == (240, 240)
            colours = {c for _, c in im.convert("RGB").getcolors(maxcolors=256)}
        assert len(colours) >= 3  # background, paddle, bricks
