"""Targets and advantages against values computed by hand."""

import pytest
import torch
from wnrl.agents.returns import gae_advantages, q_learning_targets


def test_q_learning_targets_plain_and_double():
    returns = torch.tensor([1.0, 0.0, -1.0])
    discounts = torch.tensor([0.99, 0.0, 0.9801])  # 1-step, terminal, 2-step
    q_target = torch.tensor([[1.0, 3.0], [5.0, 2.0], [-2.0, 4.0]])
    q_online = torch.tensor([[9.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # plain: R + γ^m max_a Q_target
    torch.testing.assert_close(
        q_learning_targets(returns, discounts, q_target),
        torch.tensor([1.0 + 0.99 * 3.0, 0.0, -1.0 + 0.9801 * 4.0]),
    )
    # double: R + γ^m Q_target(argmax_a Q_online): actions 0, 1, 0
    torch.testing.assert_close(
        q_learning_targets(returns, discounts, q_target, q_online),
        torch.tensor([1.0 + 0.99 * 1.0, 0.0, -1.0 + 0.9801 * -2.0]),
    )


def test_q_learning_targets_shape_check():
    with pytest.raises(ValueError, match="must be \\[B, A\\]"):
        q_learning_targets(torch.zeros(3), torch.zeros(3), torch.zeros(4, 2))


def test_n_step_advantages_with_lambda_one():
    # one env, 3 steps, no terminal: A_t = Σ γ^k r + γ^(3-t) V(o_3) − V(o_t)
    g = 0.5
    r = torch.tensor([[1.0], [2.0], [4.0]])
    v = torch.tensor([[0.5], [1.0], [2.0], [8.0]])
    d = torch.zeros(3, 1, dtype=torch.bool)
    ok = torch.ones(3, 1, dtype=torch.bool)
    adv, ret = gae_advantages(r, v, d, ok, gamma=g, lam=1.0)
    expected_ret = torch.tensor([[1 + g * 2 + g**2 * 4 + g**3 * 8], [2 + g * 4 + g**2 * 8], [4 + g * 8]])
    torch.testing.assert_close(ret, expected_ret)
    torch.testing.assert_close(adv, expected_ret - v[:3])


def test_terminal_cuts_the_return():
    g = 0.9
    r = torch.tensor([[1.0], [1.0], [1.0]])
    v = torch.tensor([[0.0], [0.0], [5.0], [7.0]])
    d = torch.tensor([[False], [True], [False]])
    ok = torch.ones(3, 1, dtype=torch.bool)
    _, ret = gae_advantages(r, v, d, ok, gamma=g)
    # step 1 is terminal: R_1 = 1, R_0 = 1 + 0.9·1; step 2 starts a new episode: R_2 = 1 + 0.9·7
    torch.testing.assert_close(ret, torch.tensor([[1.9], [1.0], [1 + g * 7]]))


def test_truncation_bootstraps_from_the_final_observation():
    # step 1 reaches a final observation o_2 by truncation (not terminal); step 2 is the autoreset step
    g = 0.9
    r = torch.tensor([[1.0], [1.0], [0.0], [2.0]])
    v = torch.tensor([[0.0], [0.0], [10.0], [3.0], [4.0]])  # V(o_2) = 10 is the final observation's value
    d = torch.zeros(4, 1, dtype=torch.bool)
    ok = torch.tensor([[True], [True], [False], [True]])
    _, ret = gae_advantages(r, v, d, ok, gamma=g)
    torch.testing.assert_close(ret[0], torch.tensor([1 + g * 1 + g**2 * 10]))
    torch.testing.assert_close(ret[1], torch.tensor([1 + g * 10]))
    torch.testing.assert_close(ret[3], torch.tensor([2 + g * 4]))


def test_gae_lambda_matches_hand_computation():
    g, lam = 0.9, 0.5
    r = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[0.5, 1.0], [1.0, 0.0], [2.0, 3.0]])
    d = torch.tensor([[False, False], [False, True]])
    ok = torch.ones(2, 2, dtype=torch.bool)
    adv, _ = gae_advantages(r, v, d, ok, gamma=g, lam=lam)
    # env 0: δ1 = 0 + .9·2 − 1 = 0.8; δ0 = 1 + .9·1 − .5 = 1.4; A0 = 1.4 + .45·0.8 = 1.76
    # env 1: δ1 = 1 − 0 = 1 (terminal); δ0 = 0 + .9·0 − 1 = −1; A0 = −1 + .45·1 = −0.55
    torch.testing.assert_close(adv, torch.tensor([[1.76, -0.55], [0.8, 1.0]]))


def test_values_need_a_bootstrap_row():
    with pytest.raises(ValueError, match="T\\+1"):
        gae_advantages(
            torch.zeros(3, 1),
            torch.zeros(3, 1),
            torch.zeros(3, 1, dtype=torch.bool),
            torch.ones(3, 1, dtype=torch.bool),
            0.9,
        )


def test_returns_match_a_monte_carlo_walk_over_random_nextstep_rollouts():
    """50 random rollouts of 6 envs × 40 steps whose episodes end by termination or truncation anywhere
    (a rollout may start on an autoreset step and end on a terminal or a truncation): GAE at λ = 1 and
    Q(λ) at λ = 1 are the discounted rewards walked to the episode's end (terminated: nothing after;
    truncated: the final observation's value, stored at the autoreset step) or to the rollout's end
    (its bootstrap row); Q(λ) at λ = 0 is the one-step target."""
    import numpy as np
    from wnrl.agents.returns import q_lambda_returns

    rng = np.random.default_rng(0)
    T, N, gamma = 40, 6, 0.9
    for _ in range(50):
        valid, term, trunc = np.ones((T, N), bool), np.zeros((T, N), bool), np.zeros((T, N), bool)
        resetting = rng.random(N) < 0.3  # the step after an end only resets (NextStep)
        for t in range(T):
            valid[t] = ~resetting
            ends = (rng.random(N) < 0.15) & valid[t]
            term[t] = ends & (rng.random(N) < 0.5)
            trunc[t] = ends & ~term[t]
            resetting = ends
        r = rng.normal(size=(T, N)) * valid
        v = rng.normal(size=(T + 1, N))
        args = (torch.tensor(r, dtype=torch.float64), torch.tensor(v), torch.tensor(term), torch.tensor(valid))
        _, gae1 = gae_advantages(*args, gamma, 1.0)
        q1, q0 = q_lambda_returns(*args, gamma, 1.0), q_lambda_returns(*args, gamma, 0.0)
        for e in range(N):
            for t in np.flatnonzero(valid[:, e]):
                walk, disc, k = 0.0, 1.0, t
                while True:
                    walk += disc * r[k, e]
                    disc *= gamma
                    if term[k, e]:
                        break
                    if trunc[k, e] or k + 1 == T:  # the final observation's value, or the rollout's bootstrap
                        walk += disc * v[k + 1, e]
                        break
                    k += 1
                one = r[t, e] + (0.0 if term[t, e] else gamma * v[t + 1, e])
                assert gae1[t, e].item() == pytest.approx(walk) and q1[t, e].item() == pytest.approx(walk)
                assert q0[t, e].item() == pytest.approx(one)
