"""The frame-deduplicated replay buffer against a naive reference that stores whole observations."""

import numpy as np
import pytest
import torch
from wnrl.agents.replay import BufferTooLarge, ReplayBuffer


def simulate(num_envs, steps, stack, seed, p_end=0.15):
    """Interleaved streams like NextStep-autoreset envs give them. Frames carry unique ids.

    Returns the per-step arguments for ``add`` and, per env, the naive list of entries
    ``(full_obs, action, reward, terminal, valid)``."""
    rng = np.random.default_rng(seed)
    next_id = 1
    frames = np.zeros((num_envs, stack, 1, 2), dtype=np.uint8)

    def new_frame():
        nonlocal next_id
        f = np.array([[next_id // 256, next_id % 256]], dtype=np.uint8)
        next_id += 1
        return f

    for e in range(num_envs):
        frames[e, -1] = new_frame()
    resetting = np.zeros(num_envs, dtype=bool)
    first = np.ones(num_envs, dtype=bool)
    calls, naive = [], [[] for _ in range(num_envs)]
    for _ in range(steps):
        obs = frames.copy()
        actions = rng.integers(0, 4, num_envs)
        rewards = rng.normal(size=num_envs).astype(np.float32)
        ends = rng.random(num_envs) < p_end
        terminal = ends & (rng.random(num_envs) < 0.5)  # the rest of the ends are truncations
        rewards[resetting] = 0.0
        terminal[resetting] = False
        valid = ~resetting
        calls.append((obs, actions, rewards, terminal, valid, first.copy()))
        for e in range(num_envs):
            naive[e].append((obs[e], actions[e], rewards[e], terminal[e], valid[e]))
        # the env's next observation
        for e in range(num_envs):
            if resetting[e]:
                frames[e] = 0
            else:
                frames[e, :-1] = frames[e, 1:]
            frames[e, -1] = new_frame()
        first = resetting.copy()
        resetting = valid & ends
    return calls, naive


def reference(naive_env, t, gamma, n):
    ret, disc = 0.0, 1.0
    m = 0
    for k in range(n):
        obs, a, r, d, valid = naive_env[t + k]
        if k > 0 and not valid:
            break
        ret += disc * r
        disc *= gamma
        m += 1
        if d:
            disc = 0.0
            break
    return naive_env[t][0], naive_env[t][1], ret, disc, naive_env[t + m][0]


@pytest.mark.parametrize(
    ("num_envs", "capacity", "steps", "stack", "n_step"),
    [(1, 50, 30, 4, 1), (3, 60, 80, 4, 1), (4, 48, 200, 4, 3), (2, 40, 100, 1, 2), (5, 1000, 120, 4, 5)],
)
def test_every_sampleable_transition_matches_the_naive_reference(num_envs, capacity, steps, stack, n_step):
    gamma = 0.9
    calls, naive = simulate(num_envs, steps, stack, seed=steps + n_step)
    obs_shape = (stack, 1, 2) if stack > 1 else (1, 2)
    rb = ReplayBuffer(capacity, num_envs, obs_shape, torch.uint8, gamma=gamma, n_step=n_step, frame_stack=stack)
    for obs, a, r, d, valid, first in calls:
        rb.add(obs if stack > 1 else obs[:, -1], a, r, d, valid, first)
    C = rb.per_env
    lo = max(0, steps - C) + stack - 1
    hi = steps - 1 - n_step
    assert rb.num_sampleable() == hi - lo + 1
    checked = 0
    for e in range(num_envs):
        for t in range(lo, hi + 1):
            if not naive[e][t][4]:
                continue
            batch = rb._gather(torch.tensor([e]), torch.tensor([t % C]))
            obs, a, ret, disc, next_obs = reference(naive[e], t, gamma, n_step)
            if stack == 1:
                obs, next_obs = obs[-1], next_obs[-1]
            np.testing.assert_array_equal(batch.obs[0].numpy(), obs)
            np.testing.assert_array_equal(batch.next_obs[0].numpy(), next_obs)
            assert batch.actions[0].item() == a
            assert batch.returns[0].item() == pytest.approx(ret, abs=1e-5)
            assert batch.discounts[0].item() == pytest.approx(disc, abs=1e-7)
            checked += 1
    assert checked > 10


def test_sample_returns_only_valid_transitions_on_the_device():
    calls, naive = simulate(3, 200, 4, seed=1, p_end=0.3)
    rb = ReplayBuffer(300, 3, (4, 1, 2), torch.uint8, seed=0)
    for c in calls:
        rb.add(*c)
    all_valid = {tuple(o.flatten()) for e in range(3) for o, *_, v in naive[e][-rb.per_env + 3 : -1] if v}
    batch = rb.sample(256)
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (256, 4, 1, 2)
    assert batch.actions.dtype == torch.int64 and batch.returns.dtype == torch.float32
    for o in batch.obs.numpy():
        assert tuple(o.flatten()) in all_valid


def test_sampling_is_seeded():
    calls, _ = simulate(2, 100, 4, seed=2)
    draws = []
    for _ in range(2):
        rb = ReplayBuffer(200, 2, (4, 1, 2), torch.uint8, seed=7)
        for c in calls:
            rb.add(*c)
        draws.append(rb.sample(32).obs)
    torch.testing.assert_close(draws[0], draws[1])


def test_a_saved_and_reloaded_buffer_draws_what_the_original_goes_on_to_draw():
    """--save-replay: the resumed run's buffer continues the sampling stream instead of starting it again."""
    calls, _ = simulate(2, 100, 4, seed=2)
    rb = ReplayBuffer(200, 2, (4, 1, 2), torch.uint8, seed=7)
    for c in calls:
        rb.add(*c)
    rb.sample(32)  # the run has sampled before its checkpoint
    saved = rb.state_dict()
    reloaded = ReplayBuffer(200, 2, (4, 1, 2), torch.uint8, seed=7)
    reloaded.load_state_dict(saved)
    for _ in range(3):
        a, b = rb.sample(32), reloaded.sample(32)
        torch.testing.assert_close(a.obs, b.obs, rtol=0, atol=0)
        torch.testing.assert_close(a.returns, b.returns, rtol=0, atol=0)
    # a replay saved before the sampling state was kept still loads, and draws from its seed
    old = {k: v for k, v in saved.items() if k != "sampling"}
    fresh = ReplayBuffer(200, 2, (4, 1, 2), torch.uint8, seed=7)
    fresh.load_state_dict(old)
    assert fresh.sample(32).obs.shape == (32, 4, 1, 2)


def test_atari_transition_costs_one_frame():
    rb = ReplayBuffer(1000, 4, (4, 84, 84), torch.uint8)
    assert rb.bytes_per_transition == 84 * 84 + 15
    assert rb.frames.numel() == 1000 * 84 * 84
    # a million Atari transitions fit in 7.5 GB
    assert rb.bytes_per_transition * 1_000_000 <= 7.5e9


def test_too_large_buffer_fails_before_allocating():
    with pytest.raises(BufferTooLarge, match="smaller --buffer-size"):
        ReplayBuffer(10**12, 8, (4, 84, 84), torch.uint8)


def test_too_small_buffer_says_how_large():
    with pytest.raises(ValueError, match="use --buffer-size 48 or more"):
        ReplayBuffer(20, 8, (4, 84, 84), torch.uint8)


def test_sampling_an_empty_buffer_is_an_error():
    rb = ReplayBuffer(100, 2, (4,), torch.float32)
    with pytest.raises(RuntimeError, match="no complete transition"):
        rb.sample(4)


def _filled(sync_free: bool, p_end: float = 0.3, seed: int = 0) -> tuple[ReplayBuffer, list]:
    calls, naive = simulate(3, 200, 4, seed=1, p_end=p_end)
    rb = ReplayBuffer(300, 3, (4, 1, 2), torch.uint8, seed=seed, sync_free=sync_free)
    for c in calls:
        rb.add(*c)
    return rb, naive


def test_sync_free_sampling_keeps_only_valid_transitions_uniformly():
    """The GPU sampler (no host sync) draws the same distribution as the CPU one: uniform over
    the valid transitions, invalid ones (episode resets) never."""
    counts = {}
    for sync_free in (False, True):
        rb, naive = _filled(sync_free, seed=int(sync_free))  # independent draws
        all_valid = {tuple(o.flatten()) for e in range(3) for o, *_, v in naive[e][-rb.per_env + 3 : -1] if v}
        seen: dict[tuple, int] = {}
        for _ in range(200):
            for o in rb.sample(64).obs.numpy():
                key = tuple(o.flatten())
                assert key in all_valid
                seen[key] = seen.get(key, 0) + 1
        counts[sync_free] = seen
    keys = sorted(set(counts[False]) | set(counts[True]))
    n = 200 * 64
    # Every valid observation appears in both, with frequencies that agree within sampling noise.
    assert len(keys) == len(counts[False]) == len(counts[True])
    freq = np.array([[counts[s].get(k, 0) / n for k in keys] for s in (False, True)])
    expected = 1.0 / len(keys)
    sd = np.sqrt(expected * (1 - expected) / n)
    assert np.abs(freq[0] - freq[1]).max() < 6 * np.sqrt(2) * sd
    assert np.abs(freq - expected).max() < 6 * sd


def test_sync_free_sampling_reports_a_buffer_of_resets():
    calls, _ = simulate(1, 60, 4, seed=3, p_end=0.0)
    rb = ReplayBuffer(50, 1, (4, 1, 2), torch.uint8, seed=0, sync_free=True)
    for c in calls:
        rb.add(*c)
    rb.valids[:] = False  # as if every stored step had only reset its env
    with pytest.raises(RuntimeError, match="too few valid transitions"):
        for _ in range(256):
            rb.sample(8)


def test_a_real_breakout_stream_with_truncations_life_losses_and_a_resume_break_is_stored_exactly():
    """Real Breakout, 2 envs, games cut at 300 frames (truncations), lost lives as the learner's
    terminals, and at step 450 what a resume does (``mark_stream_break``, envs reset): every transition the
    buffer can start, gathered, equals the one walked from the raw stream (observation with its frame
    stack, n-step return, discount, next observation) — also across the wrap of the buffer."""
    from wnrl.agents.dqn import DQNConfig
    from wnrl.agents.learner_inputs import learning_reward, learning_terminal
    from wnrl.envs import make

    env = make("Breakout", num_envs=2, seed=5, max_episode_frames=300, num_threads=1)
    cfg = DQNConfig.for_env("Breakout")
    gamma, n, steps = 0.9, 3, 560
    rb = ReplayBuffer(2 * 150, 2, env.single_observation_space.shape, torch.uint8, gamma=gamma, n_step=n,
                      frame_stack=env.frame_stack)  # fmt: skip
    rng = np.random.default_rng(1)
    stream = [[], []]  # per env: (obs, reward, terminal, valid) of every entry, as the learner sees them
    obs, _ = env.reset(seed=5)
    first = np.ones(2, bool)
    cut = {"terminal": 0, "truncation": 0}
    for step in range(steps):
        if step == 450:  # a resume: the newest entries lose their successors, the envs start anew
            rb.mark_stream_break()
            for e in range(2):
                stream[e][-1] = (*stream[e][-1][:3], False)
            obs, _ = env.reset(seed=99)
            first = np.ones(2, bool)
        actions = rng.integers(0, env.single_action_space.n, 2)
        next_obs, reward, terminated, truncated, info = env.step(actions)
        r, d = learning_reward(cfg, reward), learning_terminal(cfg, terminated, info)
        rb.add(obs, actions, r, d, ~info["autoreset"], first)
        for e in range(2):
            stream[e].append((obs[e].copy(), r[e], bool(d[e]), not info["autoreset"][e]))
            cut["truncation"] += bool(truncated[e])
            cut["terminal"] += bool(d[e])
        first, obs = info["autoreset"], next_obs
    env.close()
    assert cut["truncation"] and cut["terminal"]  # both kinds of end are in the stream
    C = rb.per_env
    checked = 0
    for e in range(2):
        for t in range(max(0, steps - C) + rb.frame_stack - 1, steps - n):
            if not stream[e][t][3]:
                continue
            ret, disc, m = 0.0, 1.0, 0
            for k in range(n):
                _, r, d, valid = stream[e][t + k]
                if k > 0 and not valid:
                    break  # bootstrap from this entry's observation (a final one, or the last before a break)
                ret, disc, m = ret + disc * r, disc * gamma, m + 1
                if d:
                    disc = 0.0
                    break
            b = rb._gather(torch.tensor([e]), torch.tensor([t % C]))
            assert np.array_equal(b.obs[0].numpy(), stream[e][t][0]), (e, t)
            assert np.array_equal(b.next_obs[0].numpy(), stream[e][t + m][0]), (e, t)
            assert b.returns[0].item() == pytest.approx(ret) and b.discounts[0].item() == pytest.approx(disc)
            checked += 1
    assert checked > 250
