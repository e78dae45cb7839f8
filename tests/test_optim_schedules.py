"""TF-style RMSprop against hand-computed steps; schedules that stay continuous across resumes."""

import numpy as np
import pytest
import torch
from wnrl.agents.dqn import DQNConfig, epsilon_schedule

from wnrl.optim import RMSpropTF, make_optimizer
from wnrl.schedules import LinearSchedule


def test_rmsprop_tf_matches_hand_computed_steps():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = RMSpropTF([p], lr=0.1, alpha=0.9, eps=1e-2)
    theta, sq = np.array([1.0, -2.0, 0.5]), np.ones(3)  # the square average starts at ONE
    for g in ([0.5, -1.0, 3.0], [0.1, 0.0, -2.0]):
        p.grad = torch.tensor(g)
        opt.step()
        g = np.array(g)
        sq = 0.9 * sq + 0.1 * g**2
        theta = theta - 0.1 * g / np.sqrt(sq + 1e-2)  # eps inside the root
        np.testing.assert_allclose(p.detach().numpy(), theta, rtol=1e-6)


def test_rmsprop_tf_first_step_is_small_where_torch_rmsprop_steps_ten_learning_rates():
    def first_step(opt_cls, **kw):
        p = torch.nn.Parameter(torch.zeros(4))
        opt = opt_cls([p], lr=1e-3, alpha=0.99, eps=1e-5, **kw)
        p.grad = torch.full((4,), 0.1)
        opt.step()
        return p.detach().abs().max().item()

    assert first_step(torch.optim.RMSprop) == pytest.approx(1e-2, rel=1e-2)  # lr / sqrt(1 - alpha)
    assert first_step(RMSpropTF) == pytest.approx(1e-4, rel=1e-2)  # ≈ lr · g: the squares start at 1


def test_rmsprop_tf_state_round_trips_and_skips_params_without_grad():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = RMSpropTF([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and b not in opt.state
    opt2 = RMSpropTF([a, b], lr=0.1)
    opt2.load_state_dict(opt.state_dict())
    torch.testing.assert_close(opt2.state[a]["square_avg"], opt.state[a]["square_avg"])


def test_make_optimizer_names():
    p = [torch.nn.Parameter(torch.ones(1))]
    assert isinstance(make_optimizer("rmsprop_tf", p, 1e-3), RMSpropTF)
    assert isinstance(make_optimizer("adam", p, 1e-3), torch.optim.Adam)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        make_optimizer("sgd", p, 1e-3)


def test_linear_schedule_values():
    s = LinearSchedule.from_start(1.0, 0.1, 100)
    assert [s(0), s(50), s(100), s(10_000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert LinearSchedule.from_start(1.0, 0.1, 0)(0) == 0.1  # no decay: the end value at once
    assert LinearSchedule.from_list(s.to_list()) == s


def test_epsilon_continues_smoothly_when_a_resumed_run_is_made_longer():
    """The issue's case: a 10M run at 500k (ε = 0.505) extended to 20M must not jump to 0.75."""
    cfg = DQNConfig.for_env("Breakout", total_steps=10_000_000)
    old = epsilon_schedule(cfg)
    assert old(500_000) == pytest.approx(0.505)
    new_end = epsilon_schedule(DQNConfig.for_env("Breakout", total_steps=20_000_000))
    cont = old.continued(500_000, new_end.s1, new_end.v1)
    assert cont(500_000) == pytest.approx(0.505)  # no jump
    assert cont(2_000_000) == pytest.approx(0.01) and cont(1_250_000) == pytest.approx((0.505 + 0.01) / 2)
    # continuing with the same ends changes nothing
    same = old.continued(500_000, old.s1, old.v1)
    for t in (500_000, 700_000, 1_000_000, 5_000_000):
        assert same(t) == pytest.approx(old(t))
    # a decay that has ended stays ended
    assert old.continued(3_000_000, new_end.s1, new_end.v1)(3_000_001) == pytest.approx(0.01)


def test_continued_schedule_from_a_checkpoint_with_and_without_saved_schedules():
    from wnrl.schedules import continued_schedule

    cfg = DQNConfig.for_env("Breakout", total_steps=20_000_000)
    assert continued_schedule(epsilon_schedule, cfg, "epsilon", None) == epsilon_schedule(cfg)  # a new run
    saved = {"step": 500_000, "config": {"total_steps": 10_000_000}, "schedules": {"epsilon": [0, 1, 1e6, 0.01]}}
    assert continued_schedule(epsilon_schedule, cfg, "epsilon", saved)(500_000) == pytest.approx(0.505)
    # a checkpoint from before schedules were saved: the schedule of its own config (10M steps), continued
    del saved["schedules"]
    cont = continued_schedule(epsilon_schedule, cfg, "epsilon", saved)
    assert cont(500_000) == pytest.approx(0.505) and cont(2_000_000) == pytest.approx(0.01)
