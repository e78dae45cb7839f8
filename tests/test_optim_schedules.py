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


_WITHOUT_DYNAMO = r"""
import sys
import torch
from wnrl import optim
from wnrl.agents.dqn import DQNConfig, train

def steps(cls, make, n=3, **kw):
    torch.manual_seed(0)
    net = make()
    opt = cls(net.parameters(), **kw)
    for i in range(n):
        opt.zero_grad()
        net(torch.randn(5, 4, generator=torch.Generator().manual_seed(i))).pow(2).sum().backward()
        opt.step()  # under no_grad, as torch's (differentiable=False), and the caller's grad mode restored
        assert torch.is_grad_enabled() and not any(p.grad_fn for p in net.parameters())
    opt.load_state_dict(opt.state_dict())
    return [p.detach().clone() for p in net.parameters()], opt.state_dict()

make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
cases = [("Adam", dict(lr=1e-2, fused=True)), ("Adam", dict(lr=1e-2, eps=1e-5)), ("RAdam", dict(lr=1e-2)),
         ("Adamax", dict(lr=1e-2)), ("RMSprop", dict(lr=1e-2, alpha=0.95, eps=0.01, centered=True)),
         ("RMSprop", dict(lr=1e-2))]
ours = [steps(getattr(optim, name), make, **kw) for name, kw in cases]
# RMSprop and (unfused) Adam step with foreach by default: the same bits as torch's loop, checked below
assert [optim.RMSprop(make().parameters()).defaults["foreach"], optim.Adam(make().parameters()).defaults["foreach"],
        optim.Adam(make().parameters(), fused=True).defaults["foreach"]] == [True, True, None]
optim.RMSpropTF(make().parameters()).step()
train(DQNConfig.for_env("CartPole-v1", logdir=sys.argv[1], progress=False, total_steps=300, learning_starts=100,
                        checkpoint_every=100))
print("dynamo imported:", "torch._dynamo" in sys.modules)
import torch._dynamo  # as torch.compile would: from now on torch's own paths, the same numbers
for (name, kw), (params, state) in zip(cases, ours):
    for cls in (getattr(torch.optim, name), getattr(optim, name)):
        theirs, their_state = steps(cls, make, **kw)
        assert all(torch.equal(a, b) for a, b in zip(params, theirs)), name
        assert str(their_state["state"]) == str(state["state"]), name
print("same as torch")
"""


def test_torchs_optimizers_without_dynamo_step_exactly_as_torchs_and_a_run_never_imports_it(tmp_path):
    """wnrl.optim's Adam, RAdam, Adamax and RMSprop (the first and last with foreach by default): the
    same parameters and state as torch's (its per-tensor loop on a CPU) after the same steps, with
    torch._dynamo never imported by them nor by a DQN run (~1.5 s of every training process); once it
    is imported (torch.compile does), torch's own paths give the same."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    r = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DYNAMO, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.splitlines()[-2:] == ["dynamo imported: False", "same as torch"], r.stdout
