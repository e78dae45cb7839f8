"""The weight-norm maths, exactly: forward, effective weight, gradients, init, serialization."""

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wnrl.layers import (
    MeanOnlyBatchNorm,
    WNConv2d,
    WNDirections,
    WNLinear,
    _fused_weight_norm,
    data_dependent_init,
    is_initialized,
    project_directions,
    set_v_init_norm,
    wn_diagnostics,
    wn_layers,
    wn_scale,
    wn_weight,
)


def _per_unit_norm(w):
    return w.flatten(1).norm(dim=1)


def _randomize(layer):
    with torch.no_grad():
        layer.v.normal_()
        layer.g.uniform_(-2, 2)
        if layer.bias is not None:
            layer.bias.normal_()
    return layer


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_equals_plain_layer_with_effective_weight(bias, fused):
    layer = _randomize(WNLinear(7, 5, bias=bias, fused=fused)).double()
    x = torch.randn(11, 7, dtype=torch.float64)
    w = layer.g[:, None] * layer.v / layer.v.norm(dim=1, keepdim=True)
    expected = F.linear(x, w, layer.bias)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_without_grad_gives_the_same_bits_as_with_grad(bias, fused):
    """Acting (no grad) skips the autograd Function but not a single op: the same numbers exactly,
    so a run acts with exactly the network it learns."""
    layer = _randomize(WNLinear(64, 32, bias=bias, fused=fused))
    x = torch.randn(9, 64)
    with torch.no_grad():
        acting = layer(x)
    learning = layer(x)
    assert learning.grad_fn is not None and acting.grad_fn is None
    assert torch.equal(acting, learning.detach())


@pytest.mark.parametrize("scale_output", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_forward_equals_plain_conv_with_effective_weight(scale_output, bias):
    layer = _randomize(WNConv2d(3, 6, 4, stride=2, padding=1, bias=bias, scale_output=scale_output)).double()
    x = torch.randn(2, 3, 13, 13, dtype=torch.float64)
    w = layer.g[:, None, None, None] * layer.v / _per_unit_norm(layer.v)[:, None, None, None]
    expected = F.conv2d(x, w, layer.bias, stride=2, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer", [WNLinear(9, 4), WNConv2d(2, 3, 3)])
def test_weight_property_has_per_unit_norm_abs_g_and_is_read_only(layer):
    _randomize(layer)
    w = layer.weight
    assert w.shape == layer.v.shape
    torch.testing.assert_close(_per_unit_norm(w), layer.g.abs().detach())
    assert not w.requires_grad
    with pytest.raises(AttributeError):
        layer.weight = torch.zeros_like(w)
    assert set(dict(layer.named_parameters())) == {"v", "g", "bias"}
    assert layer.g.shape == (layer.v.shape[0],)


@pytest.mark.parametrize(
    "layer",
    [WNLinear(9, 4, fused=False), WNLinear(9, 4, fused=True), WNConv2d(2, 3, 3), WNConv2d(2, 3, 3, fused=True)],
)
def test_gradient_wrt_v_is_orthogonal_to_v_per_unit(layer):
    layer = _randomize(layer).double()
    x = torch.randn(8, *((9,) if isinstance(layer, WNLinear) else (2, 7, 7)), dtype=torch.float64)
    (layer(x) ** 2).sum().backward()
    dots = (layer.v.grad * layer.v).flatten(1).sum(dim=1)
    assert layer.v.grad.abs().max() > 1e-3  # a real gradient, not a zero one
    torch.testing.assert_close(dots, torch.zeros_like(dots), atol=1e-10, rtol=0)


def test_sgd_never_shrinks_norm_of_v():
    layer = _randomize(WNLinear(16, 8))
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    norms = [_per_unit_norm(layer.v).detach().clone()]
    for _ in range(20):
        opt.zero_grad()
        x = torch.randn(32, 16)
        ((layer(x) - 1.0) ** 2).mean().backward()
        opt.step()
        norms.append(_per_unit_norm(layer.v).detach().clone())
    for before, after in zip(norms, norms[1:]):
        assert torch.all(after >= before * (1 - 1e-6))
    assert torch.all(norms[-1] > norms[0])  # and it did grow: the update was not a no-op


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("zero_rows", [slice(None), slice(1, 2)])
def test_zero_direction_is_safe(fused, zero_rows):
    """A direction of zero norm is a zero weight (its unit outputs its bias), with finite gradients,
    whether every direction is zero or one."""
    layer = WNLinear(4, 3, fused=fused)
    with torch.no_grad():
        layer.v[zero_rows] = 0.0
    x = torch.randn(5, 4, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(layer.v.grad).all() and torch.isfinite(layer.g.grad).all()
    assert torch.isfinite(x.grad).all()
    w = layer.weight
    assert torch.isfinite(w).all() and not w[zero_rows].any()
    torch.testing.assert_close(y, F.linear(x, w, layer.bias))
    torch.testing.assert_close(y[:, zero_rows], layer.bias[zero_rows].expand(5, -1))


@pytest.mark.parametrize("init_scale", [1.0, 0.1])
def test_data_dependent_init_gives_zero_mean_and_init_scale_std_per_unit(init_scale):
    net = nn.Sequential(
        WNConv2d(3, 8, 3, stride=2, init_scale=init_scale),
        nn.ReLU(),
        WNConv2d(8, 6, 3, init_scale=init_scale),
        nn.ReLU(),
        nn.Flatten(),
        WNLinear(6 * 5 * 5, 10, init_scale=init_scale),
    )
    x = torch.randn(64, 3, 15, 15) * 3 + 2
    assert not is_initialized(net)
    assert data_dependent_init(net, x) == 3
    assert is_initialized(net)
    # every WN layer, checked on its own input in the initialized net
    acts = {}
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: acts.__setitem__(k, o)) for k, m in net.named_children()]
    net(x)
    for h in hooks:
        h.remove()
    for key in ("0", "2"):
        out = acts[key].transpose(0, 1).flatten(1)
        torch.testing.assert_close(out.mean(1), torch.zeros(out.shape[0]), atol=1e-4 * max(1, init_scale), rtol=0)
        torch.testing.assert_close(
            out.std(1, unbiased=False), torch.full((out.shape[0],), init_scale), rtol=1e-3, atol=0
        )
    out = acts["5"]
    torch.testing.assert_close(out.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.full((10,), init_scale), rtol=1e-3, atol=0)


def test_data_dependent_init_draws_v_from_small_gaussian():
    layer = WNLinear(4000, 3)
    with torch.no_grad():
        layer.v.fill_(7.0)
    data_dependent_init(layer, torch.randn(8, 4000))
    assert abs(layer.v.std().item() - 0.05) < 0.003


def test_data_dependent_init_on_a_constant_batch_stays_finite():
    net = nn.Sequential(WNConv2d(4, 8, 8, stride=4), nn.ReLU(), nn.Flatten(), WNLinear(8 * 4 * 4, 5))
    x = torch.full((16, 4, 20, 20), 0.3)
    data_dependent_init(net, x)
    for p in net.parameters():
        assert torch.isfinite(p).all()
    y = net(torch.rand(16, 4, 20, 20))
    assert torch.isfinite(y).all() and y.abs().max() < 1e3
    torch.testing.assert_close(net(x), torch.zeros(16, 5), atol=1e-5, rtol=0)  # still centred on the batch


def test_data_dependent_init_rejects_a_single_example():
    with pytest.raises(ValueError, match="at least 2"):
        data_dependent_init(WNLinear(3, 2), torch.randn(1, 3))


def test_shared_layer_is_initialized_on_first_use_only():
    layer = WNLinear(5, 5)
    net = nn.Sequential(layer, nn.Tanh(), layer)
    calls = []
    orig = layer._data_dependent_init
    layer._data_dependent_init = lambda x, m: (calls.append(1), orig(x, m))
    assert data_dependent_init(net, torch.randn(32, 5)) == 1
    assert len(calls) == 1
    assert not layer._forward_pre_hooks  # hooks are gone afterwards


def test_deepcopy_and_state_dict_round_trip_keep_init_flag():
    net = nn.Sequential(WNConv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), WNLinear(4 * 4 * 4, 3))
    x = torch.randn(8, 2, 6, 6)
    data_dependent_init(net, x)
    clone = copy.deepcopy(net)
    torch.testing.assert_close(clone(x), net(x))
    assert is_initialized(clone)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    fresh = nn.Sequential(WNConv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), WNLinear(4 * 4 * 4, 3))
    assert not is_initialized(fresh)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert is_initialized(fresh)
    torch.testing.assert_close(fresh(x), net(x))
    assert "0.initialized" in net.state_dict()


def test_wn_weight_is_g_times_v_over_its_row_norm_written_out():
    layer = _randomize(WNConv2d(3, 4, 2))
    g, v = layer.g.detach().double(), layer.v.detach().double()
    by_hand = torch.stack([g[o] * v[o] / v[o].pow(2).sum().sqrt() for o in range(4)])
    torch.testing.assert_close(wn_weight(g, v), by_hand, rtol=1e-12, atol=0)
    torch.testing.assert_close(layer.weight.double(), by_hand, rtol=1e-6, atol=1e-7)  # the layer's own view


def test_mean_only_batch_norm_subtracts_batch_mean_and_uses_running_mean_in_eval():
    bn = MeanOnlyBatchNorm(3, momentum=0.5)
    with torch.no_grad():
        bn.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = torch.randn(10, 3, 4, 4) + torch.tensor([5.0, -1.0, 0.5])[None, :, None, None]
    y = bn(x)
    mean = x.mean(dim=(0, 2, 3))
    torch.testing.assert_close(y, x - mean[None, :, None, None] + bn.bias.detach()[None, :, None, None])
    torch.testing.assert_close(bn.running_mean, 0.5 * mean)
    bn.eval()
    x2 = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(bn(x2), x2 - (0.5 * mean - bn.bias.detach())[None, :, None, None])
    dense = MeanOnlyBatchNorm(4)
    z = torch.randn(6, 4)
    torch.testing.assert_close(dense(z).mean(0), torch.zeros(4), atol=1e-6, rtol=0)


def test_diagnostics_report_g_and_v_norm_per_layer():
    net = nn.Sequential(WNLinear(3, 2), nn.ReLU(), WNLinear(2, 1))
    d = wn_diagnostics(net)
    assert set(d) == {"0/g_mean", "0/v_norm_mean", "2/g_mean", "2/v_norm_mean"}
    assert d["0/g_mean"] == pytest.approx(net[0].g.mean().item())
    assert d["2/v_norm_mean"] == pytest.approx(net[2].v.norm().item())


def test_invalid_init_scale_is_rejected():
    with pytest.raises(ValueError, match="init_scale"):
        WNLinear(2, 2, init_scale=0.0)


def test_torch_compile_matches_eager():
    """Compiled, every dense layer takes the output-scaling path, even one built fused=True (the
    eager net runs the fused op there); no fallback, no graph break."""
    net = nn.Sequential(
        WNConv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), WNLinear(4 * 4 * 4, 5), nn.ReLU(), WNLinear(5, 3, fused=True)
    )
    x = torch.randn(4, 2, 6, 6)
    compiled = torch.compile(net, fullgraph=True)
    torch.testing.assert_close(compiled(x), net(x), rtol=1e-5, atol=1e-5)
    compiled(x).sum().backward()
    assert net[0].v.grad is not None and net[-1].v.grad is not None


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(5, 6), (2, 3, 6)])
def test_linear_backward_matches_numerical_gradient(bias, x_shape, fused):
    """Both paths: the hand-written backward (fused=False) and torch's fused op's (True)."""
    layer = _randomize(WNLinear(6, 4, bias=bias, fused=fused)).double()
    x = torch.randn(*x_shape, dtype=torch.float64, requires_grad=True)
    names = ["v", "g", "bias"] if bias else ["v", "g"]

    def f(x, *params):
        return torch.func.functional_call(layer, dict(zip(names, params)), (x,))

    inputs = (x, *(getattr(layer, n).detach().clone().requires_grad_() for n in names))
    assert torch.autograd.gradcheck(f, inputs)


def test_v_init_norm_sets_every_direction_and_survives_data_dependent_init():
    from wnrl.nets import WNConvNet

    net = WNConvNet(4)
    set_v_init_norm(net, 0.577)
    for _, layer in wn_layers(net):
        norms = layer.v.flatten(1).norm(dim=1)
        torch.testing.assert_close(norms, torch.full_like(norms, 0.577))
    data_dependent_init(net, torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8))
    assert all(abs(v - 0.577) < 1e-5 for k, v in wn_diagnostics(net).items() if k.endswith("v_norm_mean"))
    # without a norm: the paper's draw, whose row norm grows with fan-in (0.05·√fan_in)
    plain = WNConvNet(4)
    set_v_init_norm(plain, 0.0)
    fc = plain.fc[0].v.norm(dim=1).mean().item()
    assert 2.6 < fc < 3.0  # 0.05·√3136 = 2.8


def _row_norms(layer):
    return layer.v.detach().flatten(1).norm(dim=1)


def _small_wn_net():
    return nn.Sequential(WNConv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), WNLinear(4 * 4 * 4, 3))


@pytest.mark.parametrize("init_norm", [0.0, 0.577])
def test_projection_keeps_the_function_and_puts_every_row_at_its_initial_norm(init_norm):
    net = _small_wn_net()
    set_v_init_norm(net, init_norm)
    data_dependent_init(net, torch.randn(16, 2, 6, 6))
    with torch.no_grad():  # rows far from their target, as after many updates
        for _, layer in wn_layers(net):
            layer.v.mul_(torch.rand(layer.v.shape[0]).add(0.5).mul(3).view(-1, *[1] * (layer.v.dim() - 1)))
    x = torch.randn(8, 2, 6, 6)
    before = net(x)
    weights = [layer.weight.clone() for _, layer in wn_layers(net)]
    project_directions(net)
    torch.testing.assert_close(net(x), before, rtol=1e-6, atol=1e-6)  # w = g·v/‖v‖: the same function
    for (_, layer), w in zip(wn_layers(net), weights):
        torch.testing.assert_close(layer.weight, w, rtol=1e-6, atol=1e-7)
        # the target: --wn-init-norm when set, else the paper's draw's 0.05·√fan_in (conv 2·3·3, dense 64)
        target = init_norm or 0.05 * layer.v[0].numel() ** 0.5
        assert layer.v_target_norm == pytest.approx(target)
        torch.testing.assert_close(_row_norms(layer), torch.full((layer.v.shape[0],), target), rtol=1e-6, atol=0)


def test_projection_leaves_a_zero_row_zero_and_a_plain_net_alone():
    layer = WNLinear(3, 2)
    with torch.no_grad():
        layer.v[0].zero_()
    project_directions(layer)
    assert layer.v[0].abs().max() == 0 and torch.isfinite(layer.v).all()
    assert _row_norms(layer)[1].item() == pytest.approx(0.05 * 3**0.5)
    plain = nn.Linear(3, 2)
    w = plain.weight.clone()
    project_directions(plain)
    assert torch.equal(plain.weight, w)


def test_negative_initial_norm_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        set_v_init_norm(WNLinear(3, 2), -0.5)


def test_after_step_projects_only_when_asked_and_counts_updates():
    net = nn.Sequential(WNLinear(5, 4))
    set_v_init_norm(net, 0.5)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    for project in (False, True):
        directions = WNDirections(net, project=project)
        opt.zero_grad()
        net(torch.randn(32, 5)).pow(2).sum().backward()
        opt.step()
        grown = _row_norms(net[0])
        directions.after_step()
        assert directions.updates == 1
        if project:
            torch.testing.assert_close(_row_norms(net[0]), torch.full((4,), 0.5))
        else:  # the gradient is orthogonal to v: a step only lengthens it, and nothing undoes that
            assert (grown > 0.5).all() and torch.equal(_row_norms(net[0]), grown)


def _rotate_rows(v: torch.Tensor, degrees: float) -> None:
    """Turns each row of ``v`` by ``degrees`` in the plane of its first two coordinates, keeping its norm."""
    a = torch.deg2rad(torch.tensor(degrees, dtype=torch.float64))
    x, y = v[:, 0].double(), v[:, 1].double()
    v[:, 0], v[:, 1] = (x * a.cos() - y * a.sin()).float(), (x * a.sin() + y * a.cos()).float()


def test_logged_angles_of_a_hand_made_rotation():
    layer = WNLinear(2, 3)  # fan-in 2: each row lies in the plane it is turned in
    net = nn.Sequential(layer)
    directions = WNDirections(net)
    first = directions.diagnostics()
    assert "wn/0/angle_per_update" not in first  # the first log only keeps the directions
    with torch.no_grad():
        layer.v.mul_(torch.tensor([[1.0], [2.0], [5.0]]))  # a row's length is no part of its angle
        _rotate_rows(layer.v, 3.0)  # the first update after the log: 3°
    directions.after_step()
    for _ in range(4):  # four more of 0.5° each: 5° in 5 updates
        with torch.no_grad():
            _rotate_rows(layer.v, 0.5)
        directions.after_step()
    d = directions.diagnostics()
    assert d["wn/0/angle_per_update"] == pytest.approx(5.0 / 5, rel=1e-4)
    assert d["wn/0/angle_one_update"] == pytest.approx(3.0, rel=1e-4)
    assert d["wn/0/g_mean"] == pytest.approx(layer.g.mean().item())
    # a log with no update in between logs no angle and keeps the reference
    assert "wn/0/angle_per_update" not in directions.diagnostics()
    with torch.no_grad():
        _rotate_rows(layer.v, -0.002)  # small angles stay exact (acos would read 0 in float32)
    directions.after_step()
    d = directions.diagnostics()
    assert d["wn/0/angle_per_update"] == pytest.approx(0.002, rel=1e-2)
    assert d["wn/0/angle_one_update"] == pytest.approx(0.002, rel=1e-2)


def test_angles_of_a_conv_layer_average_over_its_rows():
    conv = WNConv2d(1, 2, (1, 2))  # rows of fan-in 2
    rows = conv.v.detach().view(2, 2)
    rows[0] = torch.tensor([1.0, 0.0])
    rows[1] = torch.tensor([0.0, 1.0])
    directions = WNDirections(nn.Sequential(conv))
    directions.diagnostics()
    with torch.no_grad():
        rows[0] = torch.tensor([0.0, 1.0])  # 90°
        rows[1] = torch.tensor([0.0, 2.0])  # 0°
    directions.after_step()
    directions.after_step()
    d = directions.diagnostics()
    assert d["wn/0/angle_per_update"] == pytest.approx(45.0 / 2, rel=1e-5)
    assert d["wn/0/angle_one_update"] == pytest.approx(45.0, rel=1e-5)


def test_plain_layers_angles_are_logged_like_wn_ones():
    """A plain dense layer's rows ``w_i/‖w_i‖``: the same angles (tags ``directions/<layer>/...``) and
    its mean row norm, so that one learning rate's step can be compared across norms."""
    plain = nn.Linear(2, 3)
    net = nn.Sequential(WNLinear(2, 3), plain)
    directions = WNDirections(net)
    first = directions.diagnostics()
    assert "directions/1/angle_per_update" not in first and "directions/0/w_norm_mean" not in first
    assert first["directions/1/w_norm_mean"] == pytest.approx(plain.weight.norm(dim=1).mean().item())
    with torch.no_grad():
        plain.weight.mul_(torch.tensor([[1.0], [3.0], [0.5]]))
        _rotate_rows(plain.weight, 2.0)
    directions.after_step()
    with torch.no_grad():
        _rotate_rows(plain.weight, 4.0)
    directions.after_step()
    d = directions.diagnostics()
    assert d["directions/1/angle_per_update"] == pytest.approx(6.0 / 2, rel=1e-4)
    assert d["directions/1/angle_one_update"] == pytest.approx(2.0, rel=1e-4)
    assert d["wn/0/angle_per_update"] == 0.0  # the WN layer did not move
    assert d["directions/1/w_norm_mean"] == pytest.approx(plain.weight.norm(dim=1).mean().item())


def test_init_from_rollouts_takes_the_first_rollouts_then_none():
    """An on-policy agent's init: the first ``rollouts`` rollouts go to it (no gradient step from them),
    made on all of them at once after the last; a plain net, or one already initialized, takes none."""
    from wnrl.distributed import World
    from wnrl.layers import InitFromRollouts, is_initialized
    from wnrl.nets import WNMLP

    torch.manual_seed(0)
    net = WNMLP(3, (8,), norm="wn")
    init = InitFromRollouts(net, 2, World())
    first, second = torch.randn(5, 3), torch.randn(5, 3) + 4.0
    assert init.take(first) and not is_initialized(net)
    assert init.take(second) and is_initialized(net)
    assert not init.take(torch.randn(5, 3))  # from now on the rollouts are learned from
    # the init saw both rollouts: the first layer's pre-activations on them have zero mean per unit
    layer = net.net[0]
    pre = layer(torch.cat([first, second]))
    torch.testing.assert_close(pre.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    assert not InitFromRollouts(WNMLP(3, (8,), norm="none"), 2, World()).take(first)
    assert not InitFromRollouts(net, 2, World()).take(first)  # already initialized (a resumed run)


def test_small_dense_layers_on_a_cpu_take_the_fused_path_and_large_ones_scale_the_output(monkeypatch):
    import wnrl.layers as layers

    calls = []
    real = torch._weight_norm_interface
    monkeypatch.setattr(torch, "_weight_norm_interface", lambda *a: calls.append(a[0].shape) or real(*a))
    small, large = WNLinear(256, 256), WNLinear(256, layers.FUSED_MAX_WEIGHTS // 256 + 1)
    y_small, y_large = small(torch.randn(2, 256)), large(torch.randn(2, 256))
    assert calls == [small.v.shape]
    # and the fused op's weight is what the layer computed with (a plain product's backward)
    assert type(y_small.grad_fn).__name__ == "AddmmBackward0"
    assert type(y_large.grad_fn).__name__ == "_WNLinearFnBackward"
    assert WNLinear(256, 256, fused=False)._use_fused() is False and large._use_fused() is False
    assert WNLinear(3136, 512, fused=True)._use_fused() is True  # an explicit choice wins


EVERY_LAYER_KIND = [
    (lambda: WNLinear(64, 32, fused=True), (9, 64)),
    (lambda: WNLinear(64, 32, bias=False, fused=True), (9, 64)),
    (lambda: WNLinear(64, 32, fused=False), (9, 64)),
    (lambda: WNLinear(64, 32, bias=False, fused=False), (9, 64)),
    (lambda: WNConv2d(3, 6, 3, stride=2), (2, 3, 9, 9)),
    (lambda: WNConv2d(3, 6, 3, bias=False, scale_output=True), (2, 3, 9, 9)),
    (lambda: WNConv2d(3, 6, 3, scale_output=True), (2, 3, 9, 9)),
]


@pytest.mark.parametrize("make, shape", EVERY_LAYER_KIND)
def test_a_forward_with_gradients_inside_held_weights_hands_its_weight_to_the_next(make, shape):
    """A TD loss: a pass with gradients over s, then one without over s'. Where the first computes what
    the second would start with (the fused dense path, the convolutions) the second reuses it, detached:
    the same bits as a free forward, and the gradients of the first are untouched."""
    from wnrl.layers import held_weights

    layer = _randomize(make())
    x, x_next = (torch.randn(*shape) for _ in range(2))
    y_free = layer(x)
    y_free.square().sum().backward()
    grads_free = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad(set_to_none=True)
    with torch.no_grad():
        y_next_free = layer(x_next)
        acting = layer._weight_or_scale() if isinstance(layer, WNConv2d) else layer._acting_weight()
    with held_weights(layer):
        y = layer(x)
        shared = layer._held
        with torch.no_grad():
            y_next = layer(x_next)
        if isinstance(layer, WNConv2d) or layer.fused:
            assert shared is not None and not shared.requires_grad and torch.equal(shared, acting)
            assert layer._held is shared  # the forward without gradients computed nothing new
        else:  # the output-scaling path's forward with gradients never builds g/‖v‖ alone: nothing to hand on
            assert shared is None and torch.equal(layer._held, acting)
    assert torch.equal(y, y_free) and torch.equal(y_next, y_next_free)
    y.square().sum().backward()
    assert all(torch.equal(p.grad, g) for p, g in zip(layer.parameters(), grads_free))
    assert layer._held is None and not layer._hold


@pytest.mark.parametrize("make, shape", EVERY_LAYER_KIND)
def test_held_weights_give_the_same_bits_and_are_dropped_on_leaving(make, shape, monkeypatch):
    import wnrl.layers as layers
    from wnrl.layers import held_weights

    layer = _randomize(make())
    xs = [torch.randn(*shape) for _ in range(3)]
    with torch.no_grad():
        free = [layer(x) for x in xs]
    scales = []  # the weight (or factor) is computed once for the three forwards
    monkeypatch.setattr(layers, "wn_scale", lambda g, v: scales.append(1) or wn_scale(g, v))
    if isinstance(layer, WNLinear):
        real = layer._acting_weight
        monkeypatch.setattr(layer, "_acting_weight", lambda: scales.append(1) or real())
    with held_weights(nn.Sequential(layer)), torch.no_grad():
        held = [layer(x) for x in xs]
        assert len(scales) == 1
        kept = layer._held
        assert kept is not None
        with torch.enable_grad():
            learning = layer(xs[0])  # a forward with gradients inside: the ordinary path
        assert learning.grad_fn is not None and layer._held is kept
    assert all(torch.equal(a, b) for a, b in zip(free, held))
    assert torch.equal(learning.detach(), free[0])
    assert layer._held is None and not layer._hold
    with torch.no_grad():  # after leaving, a parameter change shows at once
        layer.g.mul_(2.0)
        assert not torch.equal(layer(xs[0]), free[0])


def test_a_zero_direction_under_held_weights_is_a_zero_weight():
    from wnrl.layers import held_weights

    layer = WNLinear(4, 3, fused=True)
    with torch.no_grad():
        layer.v[1] = 0.0
        x = torch.randn(5, 4)
        with held_weights(layer):
            y = layer(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[:, 1], layer.bias[1].expand(5))


@pytest.mark.parametrize("norm", [0.0, 1e-9, 1e-6 / 2, 1e-6 * 2, 1.0])
def test_both_dense_paths_compute_the_same_function_at_any_direction_norm(norm):
    """The fused op has no floor on ‖v‖; it hands directions under the other path's floor (1e-6,
    where that path clamps) to that path, so a checkpoint computes one function on every path."""
    fused, other = WNLinear(4, 3, fused=True).double(), WNLinear(4, 3, fused=False).double()
    with torch.no_grad():
        fused.v[0] = fused.v[0] / fused.v[0].norm() * norm
    other.load_state_dict(fused.state_dict())
    x = torch.randn(5, 4, dtype=torch.float64)
    y_fused, y_other = fused(x), other(x)
    torch.testing.assert_close(y_fused, y_other, rtol=1e-12, atol=1e-12)
    y_fused.square().sum().backward()
    y_other.square().sum().backward()
    torch.testing.assert_close(fused.v.grad, other.v.grad, rtol=1e-9, atol=0.0)


def test_a_copy_made_while_weights_are_held_holds_nothing():
    import copy
    import pickle

    from wnrl.layers import held_weights

    layer = WNLinear(3, 4)
    x = torch.randn(2, 3)
    with held_weights(layer), torch.no_grad():
        layer(x)
        copies = [copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))]
    for c in copies:
        assert not c._hold and c._held is None
        with torch.no_grad():
            c.g.mul_(2.0)
            torch.testing.assert_close(c(x), 2 * (layer(x) - layer.bias) + layer.bias)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_conv_gives_the_plain_ops_values_and_gradients(channels_last):
    """WNConv2d's fused kernel (the default on a GPU) against its plain ops: same outputs, same
    gradients for x, v, g and the bias, in float64, with the kernel contiguous or channels_last
    (which the fused op must not read as contiguous)."""
    torch.manual_seed(0)
    plain = _randomize(WNConv2d(3, 4, 3, stride=2, fused=False)).double()
    if channels_last:  # as WNConvNet keeps its convolutions
        plain.to(memory_format=torch.channels_last)
        assert not plain.v.is_contiguous()
    fused = copy.deepcopy(plain)
    fused.fused = True
    x = torch.randn(5, 3, 9, 9, dtype=torch.float64)
    outs, grads = [], []
    for layer in (plain, fused):
        xi = x.clone().requires_grad_(True)
        y = layer(xi)
        (y * torch.linspace(-1, 1, y.numel(), dtype=torch.float64).view_as(y)).sum().backward()
        outs.append(y)
        grads.append([xi.grad, layer.v.grad, layer.g.grad, layer.bias.grad])
    torch.testing.assert_close(outs[1], outs[0])
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("sync_free", [False, True])
@pytest.mark.parametrize("shape", [(3, 4), (3, 2, 2, 2)])
def test_fused_weight_norm_zeroes_a_zero_direction_both_ways(sync_free, shape):
    """The fused op's result with one direction of zero norm: the CPU way (a read-back check) hands
    the layer back to the plain ops (None); the GPU's way (sync_free, tried here on a CPU) zeroes that
    direction's weight in place of torch's NaN and keeps the others exact."""
    v, g = torch.randn(shape, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5
    v[1] = 0.0
    w = _fused_weight_norm(v, g, sync_free=sync_free)
    if not sync_free:
        assert w is None
        return
    assert torch.isfinite(w).all() and not w[1].any()
    torch.testing.assert_close(w[[0, 2]], wn_weight(g, v)[[0, 2]])
    v[1] = 1.0  # no zero direction: both ways are the fused op's weight
    torch.testing.assert_close(_fused_weight_norm(v, g, sync_free=sync_free), wn_weight(g, v))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_float32_layers_take_the_fused_op_within_float32_rounding_and_float64_ones_stay_exact(monkeypatch):
    """On a GPU the layers default to torch's fused op in float32 (no read-back check) and to the
    plain ops in float64 (the op's kernels compute in single precision: ~1e-7 relative, measured on an
    H200 by scripts/gpu_wn_fused_check.py). The Nature-sized conv (contiguous and channels_last, as
    WNConvNet keeps it) and dense layer against a float64 reference on the CPU: float32 outputs and
    gradients within float32 rounding, float64 ones exact; a zero direction's weight is zero.

    TF32 off: cuDNN runs float32 convolutions in TF32 by default on Ampere and later (10-bit
    mantissa), whose rounding is the convolution's, not weight norm's (on an H200 this test failed
    with it on: one conv value 0.14 off, relative)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    dev = torch.device("cuda")
    channels_last = WNConv2d(4, 32, 8, stride=4).to(memory_format=torch.channels_last)
    for base, shape in (
        (WNConv2d(4, 32, 8, stride=4), (6, 4, 84, 84)),
        (channels_last, (6, 4, 84, 84)),
        (WNLinear(3136, 512), (6, 3136)),
    ):
        base = _randomize(base).double()
        x = torch.randn(shape, dtype=torch.float64)
        outs = {}
        for where, dtype in (("cpu", torch.float64), ("cuda", torch.float64), ("cuda", torch.float32)):
            layer = copy.deepcopy(base).to(device=where, dtype=dtype)
            assert layer._use_fused() == (where == "cuda" and dtype == torch.float32)
            y = layer(x.to(where, dtype))
            (y * y.detach().sin()).sum().backward()
            outs[where, dtype] = [t.detach().double().cpu() for t in (y, layer.v.grad, layer.g.grad, layer.bias.grad)]
        ref = outs["cpu", torch.float64]
        for a, b in zip(outs["cuda", torch.float64], ref):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max()))
        for a, b in zip(outs["cuda", torch.float32], ref):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
        layer = copy.deepcopy(base).to(device=dev, dtype=torch.float32)
        with torch.no_grad():
            layer.v[3] = 0.0
            y = layer(x.to(dev, torch.float32))
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y[:, 3], layer.bias[3].expand_as(y[:, 3]))


def test_which_layers_take_the_fused_op_off_a_cpu_and_the_bench_switch(monkeypatch, tmp_path):
    """Off a CPU, a layer with ``fused=None`` takes the fused op on a CUDA GPU in float32 only, and not
    when ``python -m wnrl.bench --wn-gpu-fused off`` has switched it off (to measure the op's gain)."""
    import json
    from types import SimpleNamespace

    import wnrl.layers
    from wnrl.bench import main

    monkeypatch.setattr(wnrl.layers, "GPU_FUSED", True)
    cuda = lambda dtype: SimpleNamespace(is_cuda=True, dtype=dtype)  # noqa: E731
    assert wnrl.layers._fused_on_gpu(cuda(torch.float32))
    assert not wnrl.layers._fused_on_gpu(cuda(torch.float64))
    assert not wnrl.layers._fused_on_gpu(SimpleNamespace(is_cuda=False, dtype=torch.float32))  # e.g. MPS
    out = tmp_path / "b.json"
    assert (
        main(["--device", "cpu", "--sections", "layers", "--repeats", "1", "--wn-gpu-fused", "off", "--json", str(out)])
        == 0
    )
    assert not wnrl.layers.GPU_FUSED and not wnrl.layers._fused_on_gpu(cuda(torch.float32))
    assert json.loads(out.read_text())["machine"]["wn_gpu_fused"] == "off"
