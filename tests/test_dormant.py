"""Dormant units (Sokar et al., 2023), exactly, and the dead-trunk warning's decision."""

import math

import pytest
import torch
from torch import nn
from wnrl.agents import a2c, dqn

import wnrl.dormant
import wnrl.logger
from tests.helpers import scalars
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.dormant import (
    DEAD_TRUNK_DEAD_FRACTION,
    DEAD_TRUNK_EV,
    DEAD_TRUNK_MIN_LOGS,
    DEAD_TRUNK_STEPS,
    DeadTrunkWatch,
    activation_layers,
    dead_trunk_warning,
    dormant_fractions,
    dormant_tag,
    watched_layers,
)
from wnrl.layers import MeanOnlyBatchNorm
from wnrl.nets import NORMS


def _dense(weights, biases, act=nn.ReLU):
    layer = nn.Linear(1, len(weights))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights).view(-1, 1))
        layer.bias.copy_(torch.tensor(biases))
    return nn.Sequential(layer, act())


def test_tags_name_the_layer_and_tau():
    assert dormant_tag("trunk.fc.0", 0.0) == "dormant/trunk.fc.0/tau_0"
    assert dormant_tag("trunk.fc.0", 0.025) == "dormant/trunk.fc.0/tau_0.025"


def test_the_ratio_of_a_hand_made_dense_layer():
    """On x ∈ {1, 3}: mean |h| = 0 (dead), 0.02, 0.5 (active on one example only) and 3.48, so
    the layer's mean is 1 and the scores are the means themselves: τ = 0 finds the one dead unit,
    τ = 0.025 and 0.1 also the unit at 0.02, never the unit active on half the batch."""
    net = _dense([-1.0, 0.0, 1.0, 0.0], [0.0, 0.02, -2.0, 3.48])
    x = torch.tensor([[1.0], [3.0]])
    out = dormant_fractions(net, x, taus=(0.0, 0.025, 0.1))
    assert out == {"dormant/0/tau_0": 0.25, "dormant/0/tau_0.025": 0.5, "dormant/0/tau_0.1": 0.5}
    assert dormant_fractions(net, x) == {"dormant/0/tau_0": 0.25, "dormant/0/tau_0.025": 0.5}


def test_the_ratio_scales_with_the_layer_not_with_the_units():
    """The score is relative to the layer's mean: the same unit at 0.02 is not dormant at 0.025
    in a layer whose mean is 0.5, and multiplying every activation by 100 changes nothing."""
    x = torch.tensor([[1.0], [3.0]])
    quiet = _dense([0.0, 0.0], [0.02, 0.98])  # layer mean 0.5: scores 0.04, 1.96
    assert dormant_fractions(quiet, x)["dormant/0/tau_0.025"] == 0.0
    big = _dense([-100.0, 0.0, 100.0, 0.0], [0.0, 2.0, -200.0, 348.0])
    assert dormant_fractions(big, x) == {"dormant/0/tau_0": 0.25, "dormant/0/tau_0.025": 0.5}


def test_tanh_units_are_scored_by_their_absolute_value():
    """|h|: a unit at −0.5 everywhere is as active as one at +0.5; only an exact 0 is dead."""
    a = math.atanh(0.5)
    net = _dense([0.0, 0.0, 0.0, 0.0], [-a, a, 0.0, a], act=nn.Tanh)
    out = dormant_fractions(net, torch.ones(3, 1))
    assert out == {"dormant/0/tau_0": 0.25, "dormant/0/tau_0.025": 0.25}


def test_a_silent_layer_is_all_dormant():
    net = _dense([-1.0, -2.0], [0.0, -1.0])
    assert dormant_fractions(net, torch.tensor([[1.0], [2.0]])) == {"dormant/0/tau_0": 1.0, "dormant/0/tau_0.025": 1.0}


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_conv_unit_is_a_channel(channels_last):
    """Channel 0 is never active, channel 1 only at one position of one example (alive: a unit is
    the channel, not a position), channel 2 everywhere."""
    conv = nn.Conv2d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-1.0, 1.0, 0.0]).view(3, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, -0.5, 1.0]))
    net = nn.Sequential(conv, nn.ReLU())
    x = torch.zeros(2, 1, 4, 4)
    x[0, 0, 1, 2] = 1.0
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    # channel means: 0, 0.5/32, 1 → scores 0, 0.046, 2.95
    out = dormant_fractions(net, x, taus=(0.0, 0.025, 0.1))
    assert out == pytest.approx({"dormant/0/tau_0": 1 / 3, "dormant/0/tau_0.025": 1 / 3, "dormant/0/tau_0.1": 2 / 3})


@pytest.mark.parametrize("bn", [nn.BatchNorm1d, MeanOnlyBatchNorm])
def test_batch_norm_acts_with_its_running_statistics_and_keeps_them(bn):
    """The diagnostic sees what the agent acts with (eval mode): unit 0's running mean (10) puts it
    below zero for every input in [0, 1], so it is dead there, though the batch's own statistics
    (training mode) would make it active on half the batch. Nothing of the layer changes."""
    layer = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    norm = bn(2)
    norm.running_mean.copy_(torch.tensor([10.0, -10.0]))
    net = nn.Sequential(layer, norm, nn.ReLU()).train()
    x = torch.linspace(0, 1, 8).view(-1, 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    out = dormant_fractions(net, x)
    assert out == {"dormant/0/tau_0": 0.5, "dormant/0/tau_0.025": 0.5}
    assert net.training and all(m.training for m in net.modules())
    after = net.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    # in training mode both units would be active on part of the batch
    with torch.no_grad():
        assert (net(x) > 0).any(dim=0).all()


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("obs_shape", [(4,), (4, 36, 36)])
def test_every_norm_and_trunk_gets_every_hidden_layer_and_keeps_its_state(norm, obs_shape):
    net = a2c.ActorCritic(obs_shape, 3, norm)
    x = torch.rand(6, *obs_shape)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    out = dormant_fractions(net, x)
    if len(obs_shape) == 3:
        layers = ["trunk.convs.0", *(f"trunk.convs.{i}" for i in ((2, 4) if norm in ("wn", "none") else (3, 6)))]
        layers.append("trunk.fc.0")
    else:
        layers = [
            f"{t}.net.{i}" for t in ("trunk", "critic_trunk") for i in ((0, 2) if norm in ("wn", "none") else (0, 3))
        ]
    assert list(out) == [dormant_tag(n, tau) for n in layers for tau in (0.0, 0.025)]
    assert all(0.0 <= v <= 1.0 for v in out.values())
    critic = [n for n in layers if n.startswith("critic_trunk")] or layers
    assert net.critic_layers() == critic
    assert net.training
    after = net.state_dict()
    for k in before:
        assert torch.equal(before[k], after[k]), k


def test_a_dueling_heads_hidden_layers_are_counted_and_its_outputs_are_not():
    q = dqn.QNetwork((4,), 2, "none", dueling=True, hidden_sizes=(8, 8))
    assert [n for n, _, _ in activation_layers(q)] == ["trunk.net.0", "head.value.0", "head.advantage.0"]


# --- the dead-trunk warning ---------------------------------------------------------------------


def _history(start, stop, every=10_000, ev=0.0, dead=0.86):
    return [(s, ev, dead) for s in range(start, stop + 1, every)]


def test_the_warning_fires_after_a_long_enough_stretch():
    history = _history(10_000, 70_000, ev=0.4) + _history(80_000, 180_000)
    line = dead_trunk_warning(history, "trunk.fc.0")
    assert line == (
        "warning: step 180,000: the critic's explained variance has stayed below 0.05 since step 80,000 and 86% "
        "of trunk.fc.0's units are dead (never active on the last rollout; dormant/ in TensorBoard): the trunk "
        'may have collapsed, see README "Dead trunk"'
    )
    assert "\n" not in line


def test_the_warning_waits_for_the_whole_stretch_and_enough_logs():
    assert DEAD_TRUNK_EV == 0.05 and DEAD_TRUNK_STEPS == 100_000 and DEAD_TRUNK_MIN_LOGS == 10
    assert DEAD_TRUNK_DEAD_FRACTION == 0.75
    # 90k steps of it: not yet
    assert dead_trunk_warning(_history(10_000, 70_000, ev=0.4) + _history(80_000, 170_000), "l") is None
    # 100k steps but 3 logs
    assert dead_trunk_warning(_history(0, 100_000, every=50_000), "l") is None
    assert dead_trunk_warning([], "l") is None


def test_the_warning_stays_quiet_when_the_critic_recovers_or_the_units_live():
    recovered = _history(0, 140_000) + [(150_000, 0.3, 0.86)] + _history(160_000, 200_000)
    assert dead_trunk_warning(recovered, "l") is None  # the stretch restarts at 160k
    assert dead_trunk_warning(recovered + _history(210_000, 260_000), "l") is not None  # 160k → 260k
    assert dead_trunk_warning(_history(0, 200_000, dead=0.74), "l") is None
    assert dead_trunk_warning(_history(0, 200_000, dead=float("nan")), "l") is None
    # the dead fraction counts at the last log only
    assert dead_trunk_warning(_history(0, 190_000) + [(200_000, 0.0, 0.1)], "l") is None
    assert dead_trunk_warning(_history(0, 190_000, dead=0.1) + [(200_000, 0.0, 0.75)], "l") is not None


def test_an_undefined_explained_variance_counts_as_nothing_explained():
    assert dead_trunk_warning(_history(0, 100_000, ev=float("nan")), "l") is not None
    assert dead_trunk_warning(_history(0, 100_000, ev=-3.0), "l") is not None


# A2C Pong, --norm none --learning-rate 0.004, 2M budget, seeds 1 and 3 (issue 23; docs/results.md):
# (step, explained variance, dead fraction of trunk.convs.0, .2, .4, fc.0) at each log to 300k.
PONG_HEALTHY_S1 = [
    (10000, 0.01, 0.22, 0.19, 0.41, 0.49),
    (20000, -0.09, 0.22, 0.22, 0.41, 0.5),
    (30000, -0.01, 0.22, 0.2, 0.38, 0.5),
    (40000, 0.03, 0.25, 0.22, 0.39, 0.51),
    (50000, 0.01, 0.25, 0.16, 0.34, 0.51),
    (60000, 0.01, 0.09, 0.09, 0.19, 0.3),
    (70000, -0.02, 0.22, 0.16, 0.12, 0.46),
    (80000, -0.03, 0.12, 0.08, 0.11, 0.31),
    (90000, 0.01, 0.44, 0.45, 0.02, 0.58),
    (100000, 0.02, 0.59, 0.05, 0.17, 0.62),
    (110000, 0.01, 0.62, 0.08, 0.08, 0.62),
    (120000, 0.01, 0.72, 0.16, 0.22, 0.65),
    (130000, 0.01, 0.84, 0.39, 0.33, 0.62),
    (140000, -0.0, 0.66, 0.39, 0.34, 0.62),
    (150000, -0.01, 0.75, 0.38, 0.28, 0.62),
    (160000, -0.4, 0.41, 0.16, 0.17, 0.39),
    (170000, 0.49, 0.72, 0.44, 0.3, 0.48),
    (180000, 0.01, 0.78, 0.25, 0.17, 0.36),
    (190000, 0.14, 0.31, 0.09, 0.08, 0.2),
    (200000, 0.48, 0.81, 0.31, 0.23, 0.16),
    (210000, 0.59, 0.94, 0.14, 0.41, 0.19),
    (220000, 0.0, 0.88, 0.39, 0.7, 0.42),
    (230000, 0.41, 0.88, 0.47, 0.56, 0.51),
    (240000, 0.64, 0.34, 0.06, 0.48, 0.22),
    (250000, 0.43, 0.91, 0.55, 0.06, 0.35),
    (260000, 0.04, 0.88, 0.52, 0.23, 0.63),
    (270000, -0.02, 0.94, 0.38, 0.2, 0.26),
    (280000, 0.84, 0.91, 0.39, 0.16, 0.15),
    (290000, 0.49, 0.94, 0.28, 0.08, 0.19),
    (300000, 0.31, 0.38, 0.05, 0.44, 0.45),
]
PONG_DEAD_S3 = [
    (10000, -0.0, 0.16, 0.44, 0.33, 0.49),
    (20000, -0.0, 0.16, 0.44, 0.31, 0.49),
    (30000, 0.0, 0.16, 0.41, 0.31, 0.5),
    (40000, -0.01, 0.16, 0.41, 0.31, 0.5),
    (50000, 0.03, 0.12, 0.38, 0.3, 0.5),
    (60000, 0.01, 0.12, 0.34, 0.28, 0.51),
    (70000, 0.01, 0.12, 0.33, 0.16, 0.51),
    (80000, -0.06, 0.16, 0.25, 0.17, 0.54),
    (90000, -0.0, 0.44, 0.36, 0.41, 0.55),
    (100000, 0.0, 0.31, 0.06, 0.08, 0.44),
    (110000, 0.0, 0.78, 0.5, 0.34, 0.63),
    (120000, 0.0, 0.94, 0.39, 0.22, 0.62),
    (130000, 0.0, 0.31, 0.12, 0.14, 0.34),
    (140000, -0.0, 0.81, 0.72, 0.61, 0.62),
    (150000, 0.0, 0.81, 0.92, 0.77, 0.62),
    (160000, -0.0, 0.78, 0.91, 0.84, 0.6),
    (170000, 0.0, 0.72, 0.62, 0.8, 0.59),
    (180000, 0.0, 0.91, 0.84, 0.91, 0.58),
]
PONG_LAYERS = ["trunk.convs.0", "trunk.convs.2", "trunk.convs.4", "trunk.fc.0"]


def _replay(history, layers=PONG_LAYERS):
    watch = DeadTrunkWatch(watched_layers(layers))
    said = []
    for step, ev, *dead in history:
        line = watch.update(step, ev, {dormant_tag(n, 0.0): d for n, d in zip(layers, dead)})
        if line is not None:
            said.append((step, line))
    return said


def test_the_measured_collapse_warns_and_the_measured_slow_start_does_not():
    """Real logs: seed 3's trunk died (its critic explained nothing for 930k steps), seed 1's critic was only slow
    to start (explained variance 0.6–0.9 from 200k on). The first convolution, mostly dead in both, is
    not watched; with it watched at the old 50% the line fired on seed 1 at 110k."""
    assert watched_layers(PONG_LAYERS) == PONG_LAYERS[1:] and watched_layers(["only"]) == ["only"]
    assert _replay(PONG_HEALTHY_S1) == []
    ((step, line),) = _replay(PONG_DEAD_S3)
    assert step == 150_000 and "92% of trunk.convs.2's units are dead" in line and "since step 10,000" in line
    old = DeadTrunkWatch(PONG_LAYERS, dead_fraction=0.5)
    fired = [
        s
        for s, ev, *d in PONG_HEALTHY_S1
        if old.update(s, ev, dict(zip((dormant_tag(n, 0.0) for n in PONG_LAYERS), d)))
    ]
    assert fired == [110_000]  # the false alarm this replaces


def test_the_watch_says_it_once():
    watch = DeadTrunkWatch(["trunk.fc.0"])
    tag = dormant_tag("trunk.fc.0", 0.0)
    lines = []
    for step in range(10_000, 400_001, 10_000):
        ev = 0.5 if step < 80_000 or step == 150_000 else 0.01
        lines.append((step, watch.update(step, ev, {tag: 0.9})))
    said = [(s, line) for s, line in lines if line is not None]
    assert len(said) == 1
    assert said[0][0] == 260_000 and "since step 160,000" in said[0][1] and "90%" in said[0][1]
    assert len(watch.history) == 0  # nothing kept after it spoke


def test_the_watch_keeps_only_the_current_stretch():
    watch = DeadTrunkWatch(["l"], steps=50, min_logs=2, dead_fraction=0.5)
    for step in range(0, 100, 10):
        watch.update(step, 0.9, {})
    assert len(watch.history) == 1
    assert watch.update(100, 0.0, {"dormant/l/tau_0": 0.4}) is None
    assert watch.update(150, 0.0, {"dormant/l/tau_0": 0.6}) is not None


def test_the_watch_judges_the_deadest_layer_on_the_critics_path():
    watch = DeadTrunkWatch(["trunk.convs.4", "trunk.fc.0"], steps=20, min_logs=2)
    conv, fc = dormant_tag("trunk.convs.4", 0.0), dormant_tag("trunk.fc.0", 0.0)
    assert watch.deadest({conv: 0.86, fc: 0.3}) == (0.86, "trunk.convs.4")
    assert watch.deadest({conv: 0.5, fc: 0.5}) == (0.5, "trunk.fc.0")
    assert watch.deadest({})[1] == "trunk.fc.0"
    assert watch.update(0, 0.0, {conv: 0.86, fc: 0.3}) is None
    assert watch.update(10, 0.0, {conv: 0.86, fc: 0.3}) is None
    line = watch.update(20, 0.0, {conv: 0.86, fc: 0.3})
    assert line is not None and "86% of trunk.convs.4's units are dead" in line
    with pytest.raises(ValueError):
        DeadTrunkWatch([])


# --- the tags and the warning in real runs -------------------------------------------------------


def _a2c_cartpole(tmp_path, **kw):
    base = dict(logdir=str(tmp_path), progress=False, total_steps=400, init_rollouts=1, log_every=80, run_name="r")
    return a2c.A2CConfig.for_env("CartPole-v1", **{**base, **kw})


def test_a2c_logs_dormant_tags_beside_the_wn_ones(tmp_path, capsys):
    summary = a2c.train(_a2c_cartpole(tmp_path))
    tags = scalars(summary["run_dir"])
    for layer in ("trunk.net.0", "trunk.net.2", "critic_trunk.net.0", "critic_trunk.net.2"):
        for tau in (0.0, 0.025):
            values = tags[dormant_tag(layer, tau)]
            assert len(values) == len(tags["losses/explained_variance"]) >= 4
            assert all(0.0 <= v <= 1.0 for _, v in values)
    assert "warning" not in capsys.readouterr().err


def test_a2c_conv_trunk_logs_dormant_channels(tmp_path):
    cfg = a2c.A2CConfig.for_env(
        "Catch", logdir=str(tmp_path), progress=False, total_steps=320, init_rollouts=1, log_every=160, run_name="c"
    )
    tags = scalars(a2c.train(cfg)["run_dir"])
    for layer in ("trunk.convs.0", "trunk.convs.2", "trunk.convs.4", "trunk.fc.0"):
        assert dormant_tag(layer, 0.0) in tags and dormant_tag(layer, 0.025) in tags


def test_a2c_prints_the_warning_once_to_stderr(tmp_path, capsys, monkeypatch):
    """The wiring, with thresholds that any run meets: the line goes to stderr once, naming the
    layer under the value head (the critic MLP's last layer on CartPole)."""
    monkeypatch.setattr(wnrl.dormant, "DEAD_TRUNK_EV", float("inf"))
    monkeypatch.setattr(wnrl.dormant, "DEAD_TRUNK_STEPS", 80)
    monkeypatch.setattr(wnrl.dormant, "DEAD_TRUNK_MIN_LOGS", 2)
    monkeypatch.setattr(wnrl.dormant, "DEAD_TRUNK_DEAD_FRACTION", 0.0)
    a2c.train(_a2c_cartpole(tmp_path))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(err) == 1, err
    assert "critic_trunk.net.2's units are dead" in err[0] and 'README "Dead trunk"' in err[0]


def test_dqn_logs_dormant_tags(tmp_path):
    cfg = dqn.DQNConfig.for_env(
        "CartPole-v1", logdir=str(tmp_path), progress=False, total_steps=600, learning_starts=200, log_every=100,
        run_name="q",
    )  # fmt: skip
    tags = scalars(dqn.train(cfg)["run_dir"])
    for layer in ("trunk.net.0", "trunk.net.2"):
        for tau in (0.0, 0.025):
            values = tags[dormant_tag(layer, tau)]
            assert len(values) == len(tags["losses/td_loss"]) >= 3
            assert all(0.0 <= v <= 1.0 for _, v in values)


@pytest.mark.parametrize("norm", ["batch", "wn_mobn"])
def test_the_diagnostic_leaves_the_run_as_it_was(tmp_path, monkeypatch, norm):
    """The same seed with and without the extra forward: the same network, bit for bit (batch
    norm's running statistics included)."""
    with_it = a2c.train(_a2c_cartpole(tmp_path / "with", norm=norm, seed=2))
    monkeypatch.setattr(wnrl.logger.Logger, "dormant", lambda self, net, obs, step: {})
    without = a2c.train(_a2c_cartpole(tmp_path / "without", norm=norm, seed=2))
    assert dormant_tag("trunk.net.0", 0.0) in scalars(with_it["run_dir"])
    assert dormant_tag("trunk.net.0", 0.0) not in scalars(without["run_dir"])
    a, b = (load_checkpoint(list_checkpoints(r["run_dir"])[-1])["model"] for r in (with_it, without))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
