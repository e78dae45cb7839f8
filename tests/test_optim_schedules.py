"""TF-style RMSprop against hand-computed steps; linear schedules."""

import numpy as np
import pytest
import torch

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
