import numpy as np
import pytest

from wnrl import envs


@pytest.mark.parametrize("env_id", ["Breakout", "ALE/Breakout-v5", "BreakoutNoFrameskip-v4", "breakout"])
def test_atari_names_mean_the_same_game(env_id):
    assert envs.resolve(env_id) == ("atari", "Breakout")


def test_other_names_resolve():
    assert envs.resolve("MsPacman") == ("atari", "MsPacman")
    assert envs.resolve("ALE/MsPacman-v5") == ("atari", "MsPacman")
    assert envs.resolve("CartPole-v1") == ("classic", "CartPole-v1")
    assert envs.resolve("Catch") == ("catch", "Catch")


@pytest.mark.parametrize(("bad", "suggestion"), [("Breakot", "'Breakout'"), ("CartPol-v1", "'CartPole-v1'")])
def test_unknown_ids_name_the_closest(bad, suggestion):
    with pytest.raises(ValueError, match=f"unknown environment '{bad}': did you mean {suggestion}"):
        envs.make(bad, 1)


@pytest.mark.parametrize("n", [0, -3, 1.5, True])
def test_bad_env_counts(n):
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        envs.make("CartPole-v1", n)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="unknown atari env option.*sticky"):
        envs.make("Breakout", 1, sticky=0.25)


def test_envs_with_discrete_observations_are_refused():
    pytest.importorskip("gymnasium.envs.toy_text")
    with pytest.raises(ValueError, match=r"observations Discrete\(16\).*flat vectors \(a 1-D Box\) or images"):
        envs.make("FrozenLake-v1", 1)


def _play(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    obs, _ = env.reset()
    log = []
    for _ in range(steps):
        actions = rng.integers(0, env.single_action_space.n, size=env.num_envs)
        obs, reward, term, trunc, info = env.step(actions)
        log.append((obs, reward, term, trunc, info))
    return log


def test_breakout_shapes_whole_games_and_raw_scores():
    env = envs.make("Breakout", num_envs=2, seed=3)
    assert env.env_id == "Breakout" and env.family == "atari"
    assert env.single_observation_space.shape == (4, 84, 84)
    log = _play(env, 700)
    env.close()
    obs = log[0][0]
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    lives_before_end = {k: [] for k in range(2)}
    summed = np.zeros(2)
    games = []
    for _obs, reward, _term, _trunc, info in log:
        summed[info["autoreset"]] = 0
        summed += reward
        assert not (info["life_lost"] & info["autoreset"]).any()
        for k in range(2):
            if not info["autoreset"][k]:
                lives_before_end[k].append(int(info["lives"][k]))
        for k in np.flatnonzero(info["episode_end"]):
            games.append((info["episode_return"][k], info["episode_length"][k], info["lives"][k]))
            assert info["episode_return"][k] == summed[k]  # return = sum of raw rewards
    assert len(games) >= 2
    for ret, length, lives in games:
        assert lives == 0  # a game runs until the last life is gone
        assert length > 60  # whole games, not ~20-step life segments
        assert ret == int(ret) and ret >= 0  # raw game score, not clipped-per-step sums
    seen = set(lives_before_end[0])
    assert {5, 4, 3, 2, 1, 0} <= seen
    n_life_losses = sum(int(info["life_lost"].sum()) for *_, info in log)
    assert n_life_losses >= 5 * len(games)


def test_raw_rewards_are_not_clipped():
    env = envs.make("SpaceInvaders", num_envs=2, seed=0)
    rewards = np.concatenate([r for _, r, *_ in _play(env, 300)])
    env.close()
    assert rewards.max() >= 5  # invaders score 5 to 30 points each: rewards are game points, not signs


def test_truncation_is_not_termination():
    env = envs.make("Breakout", num_envs=1, seed=0, max_episode_frames=200)
    log = _play(env, 120)
    env.close()
    ends = [(t, tr) for _, _, t, tr, info in log if info["episode_end"][0]]
    assert ends and all(tr[0] and not t[0] for t, tr in ends)


def test_next_step_autoreset_and_reset_frames():
    env = envs.make("Catch", num_envs=3, seed=0)
    obs, _ = env.reset()
    assert obs.shape == (3, 4, 84, 84)
    assert (obs[:, :3] == 0).all() and (obs[:, 3] > 0).any()  # zeros before the first frame
    log = _play(env, 14)
    for i, (obs, reward, term, _trunc, info) in enumerate(log):
        assert term.all() == (i in (5, 12)) and term.any() == term.all()  # 6 steps a game, then a reset step
        assert info["autoreset"].all() == (i in (6, 13))
        if info["autoreset"].all():
            assert (obs[:, :3] == 0).all() and (reward == 0).all()
        if term.any():
            assert set(reward.tolist()) <= {-1.0, 1.0}
            np.testing.assert_array_equal(info["episode_return"], reward)
            np.testing.assert_array_equal(info["episode_length"], 6)


def test_catch_random_play_scores_about_minus_point_six():
    env = envs.make("Catch", num_envs=16, seed=1)
    returns = [r for *_, info in _play(env, 700) for r in info["episode_return"][info["episode_end"]]]
    assert len(returns) > 1000
    assert -0.8 < np.mean(returns) < -0.4


def test_catch_perfect_play_scores_one():
    env = envs.make("Catch", num_envs=5, seed=2)
    env.reset()
    inner = env.unwrapped
    returns = []
    for _ in range(70):
        actions = np.sign(inner._ball_col - inner._paddle) + 1
        *_, info = env.step(actions)
        returns += list(info["episode_return"][info["episode_end"]])
    assert len(returns) >= 40 and all(r == 1.0 for r in returns)


def test_cartpole_vector_env_and_seeding():
    a = _play(envs.make("CartPole-v1", num_envs=4, seed=5), 50)
    b = _play(envs.make("CartPole-v1", num_envs=4, seed=5), 50)
    assert a[0][0].shape == (4, 4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
    lengths = [n for *_, info in a for n in info["episode_length"][info["episode_end"]]]
    assert all(n >= 8 for n in lengths)


def test_atari_seeding_is_reproducible():
    runs = []
    for _ in range(2):
        env = envs.make("Breakout", num_envs=2, seed=11)
        runs.append(np.stack([o for o, *_ in _play(env, 40)]))
        env.close()
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("env_id", ["Breakout", "Catch", "CartPole-v1"])
def test_step_async_then_wait_is_step(env_id):
    """The two halves give exactly what one step gives, with the same statistics in info."""
    a, b = envs.make(env_id, 3, seed=5), envs.make(env_id, 3, seed=5)
    try:
        a.reset(), b.reset()
        rng = np.random.default_rng(0)
        for _ in range(60):
            actions = rng.integers(0, a.single_action_space.n, size=3)
            one = a.step(actions)
            b.step_async(actions)
            two = b.step_wait()
            for x, y in zip(one[:4], two[:4]):
                np.testing.assert_array_equal(x, y)
            for key in ("autoreset", "life_lost", "episode_end", "episode_return", "episode_length"):
                np.testing.assert_array_equal(one[4][key], two[4][key])
    finally:
        a.close(), b.close()


def test_step_halves_out_of_order_are_errors():
    env = envs.make("Catch", 2, seed=0)
    env.reset()
    with pytest.raises(RuntimeError, match="without step_async"):
        env.step_wait()
    env.step_async(np.zeros(2, dtype=np.int64))
    with pytest.raises(RuntimeError, match="twice without step_wait"):
        env.step_async(np.zeros(2, dtype=np.int64))
    env.close()  # finishes the step in flight


@pytest.mark.parametrize("fixture, size", [("small_catch", 42), ("catch_56", 56)])
def test_the_catch_fixtures_draw_smaller_frames(request, fixture, size):
    """What the Catch learning tests train on (tests/conftest.py): the same game at fewer pixels a cell."""
    from wnrl import envs

    request.getfixturevalue(fixture)
    env = envs.make("Catch", 2, seed=0)
    assert env.single_observation_space.shape == (4, size, size)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4, size, size) and obs.max() == 255  # ball and paddle drawn
    env.close()


def test_every_rom_is_named_by_its_title_in_each_spelling():
    """Every ROM ale-py ships maps back from its title ("UpNDown" used to map to nothing, so plot's IQM
    left it out as a game without a reference score; "TicTacToe3d" too)."""
    from wnrl.envs.atari import atari_rom, game_title, rom_ids

    for rom in rom_ids():
        title = game_title(rom)
        for name in (title, f"ALE/{title}-v5", f"{title}NoFrameskip-v4"):
            assert atari_rom(name) == rom, (rom, name)
    assert atari_rom("UpNDown") == "up_n_down" and atari_rom("Pitfall2") == "pitfall2"


def test_game_stats_refuses_a_vector_env_in_another_autoreset_mode():
    """Its "autoreset" mask assumes NextStep: on a SameStep env it would mask real transitions."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode
    from wnrl.envs.stats import GameStats

    mode = {"autoreset_mode": AutoresetMode.SAME_STEP}
    same = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync", vector_kwargs=mode)
    with pytest.raises(ValueError, match="NextStep"):
        GameStats(same)
    same.close()
