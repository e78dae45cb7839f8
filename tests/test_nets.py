import pytest
import torch
from torch import nn

from wnrl.layers import WNConv2d, WNLinear, data_dependent_init, wn_layers
from wnrl.nets import NORMS, WNMLP, ActorCriticHead, QHead, WNConvNet, make_trunk


@pytest.mark.parametrize("norm", NORMS)
def test_conv_trunk_takes_uint8_frames_and_gives_features(norm):
    net = WNConvNet(4, norm=norm)
    x = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    y = net(x)
    assert y.shape == (3, 512) and y.dtype == torch.float32
    assert net.features_dim == 512
    # uint8 input is scaled to [0, 1] inside: the same frames as floats in [0, 1] give the same features
    net.eval()
    torch.testing.assert_close(net(x), net(x.float() / 255))


@pytest.mark.parametrize("norm", NORMS)
def test_mlp_trunk_shapes(norm):
    net = WNMLP(4, (32, 16), norm=norm)
    assert net(torch.randn(5, 4)).shape == (5, 16)
    assert net.features_dim == 16


def test_norm_switch_builds_the_right_layers():
    kinds = {norm: {type(m) for m in WNConvNet(4, norm=norm).modules()} for norm in NORMS}
    assert WNConv2d in kinds["wn"] and WNLinear in kinds["wn"] and nn.Conv2d not in kinds["wn"]
    assert nn.Conv2d in kinds["none"] and not (kinds["none"] & {WNConv2d, nn.BatchNorm2d, nn.GroupNorm})
    assert {nn.BatchNorm2d, nn.BatchNorm1d} <= kinds["batch"]
    assert {nn.GroupNorm, nn.LayerNorm} <= kinds["layer"]
    from wnrl.layers import MeanOnlyBatchNorm

    assert MeanOnlyBatchNorm in kinds["wn_mobn"] and WNConv2d in kinds["wn_mobn"]
    assert len(wn_layers(WNConvNet(4, norm="wn"))) == 4


def test_plain_trunk_has_nature_parameter_count():
    # 32·(4·64)+32 + 64·(32·16)+64 + 64·(64·9)+64 + 512·3136+512 = 1,684,128 (Mnih et al., 2015)
    assert sum(p.numel() for p in WNConvNet(4, norm="none").parameters()) == 1_684_128
    # WN adds one g per unit: 32 + 64 + 64 + 512
    assert sum(p.numel() for p in WNConvNet(4, norm="wn").parameters()) == 1_684_128 + 672


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match="unknown norm 'bn'.*wn, wn_mobn, none, batch, layer"):
        WNConvNet(4, norm="bn")


@pytest.mark.parametrize("wn_head", [True, False])
def test_q_head(wn_head):
    head = QHead(512, 6, wn_head=wn_head)
    assert isinstance(head.q, WNLinear if wn_head else nn.Linear)
    assert head(torch.randn(7, 512)).shape == (7, 6)


@pytest.mark.parametrize("obs_shape", [(4, 84, 84), (5,)])
def test_dueling_streams_have_their_own_hidden_layers(obs_shape):
    """Wang et al.: the value and advantage streams split after the shared layers, each with its own
    hidden layer; Q = V + A − mean A."""
    from wnrl.agents.dqn import QNetwork

    net = QNetwork(obs_shape, 6, norm="wn", dueling=True, hidden_sizes=(32, 16))
    hidden = 512 if len(obs_shape) == 3 else 16
    v_hidden, a_hidden = net.head.value[0], net.head.advantage[0]
    assert v_hidden is not a_hidden and v_hidden.out_features == a_hidden.out_features == hidden
    assert net.trunk.features_dim == (3136 if len(obs_shape) == 3 else 32)
    x = torch.randint(0, 256, (3, *obs_shape), dtype=torch.uint8) if len(obs_shape) == 3 else torch.randn(3, 5)
    feats = net.trunk(x)
    a = net.head.advantage(feats)
    torch.testing.assert_close(net(x), net.head.value(feats) + a - a.mean(1, keepdim=True))
    # one hidden layer: the streams start from the observation itself
    flat = QNetwork((5,), 2, norm="none", dueling=True, hidden_sizes=(8,))
    assert flat.trunk.features_dim == 5 and flat(torch.randn(4, 5)).shape == (4, 2)


def test_actor_critic_head_starts_near_uniform_after_init():
    net = nn.Sequential(WNConvNet(4), ActorCriticHead(512, 4, wn_head=True))
    x = torch.randint(0, 256, (32, 4, 84, 84), dtype=torch.uint8)
    data_dependent_init(net, x)
    logits, value = net(x)
    assert logits.shape == (32, 4) and value.shape == (32,)
    assert logits.std(0).max() < 0.02  # policy init_scale 0.01
    assert 0.5 < value.std() < 1.5


def test_make_trunk_picks_by_observation_shape():
    assert isinstance(make_trunk((4, 84, 84)), WNConvNet)
    assert isinstance(make_trunk((4,)), WNMLP)
    with pytest.raises(ValueError, match="no trunk"):
        make_trunk((2, 3))


def test_channels_last_gives_the_same_features():
    a = WNConvNet(4, channels_last=True)
    b = WNConvNet(4, channels_last=False)
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-5)
    a(x).sum().backward()
    b(x).sum().backward()
    torch.testing.assert_close(a.convs[0].v.grad, b.convs[0].v.grad, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("channels_last", [True, False])
def test_the_first_conv_sees_frames_over_255_as_float32_in_the_trunks_layout(channels_last):
    """uint8 frames reach the first convolution as exactly ``x / 255`` in float32, NHWC when the trunk
    keeps channels_last, NCHW otherwise."""
    net = WNConvNet(4, channels_last=channels_last)
    seen = []
    net.convs[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    net(x)
    (got,) = seen
    assert got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert torch.equal(got, x.float() / 255.0)


def test_plain_policy_head_starts_near_uniform():
    net = nn.Sequential(WNConvNet(4), ActorCriticHead(512, 4))
    x = torch.randint(0, 256, (32, 4, 84, 84), dtype=torch.uint8)
    data_dependent_init(net, x)
    logits, _ = net(x)
    assert isinstance(net[1].policy, nn.Linear) and logits.std(0).max() < 0.05


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_conv_trunk_plain_layers_start_orthogonal_with_gain_sqrt2(norm):
    net = WNConvNet(4, norm=norm)
    plain = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(plain) == 4
    for m in plain:
        w = m.weight.detach().flatten(1)  # (out, in): fewer rows than inputs in every trunk layer
        torch.testing.assert_close(w @ w.T, 2.0 * torch.eye(w.shape[0]), atol=1e-4, rtol=0)
        if m.bias is not None:
            assert not m.bias.any()


def test_conv_trunk_keeps_the_scale_of_its_input_under_plain_init():
    # PyTorch's default init shrinks the signal ~30x over the four ReLU layers; orthogonal √2 keeps it
    torch.manual_seed(0)
    x = torch.rand(64, 4, 84, 84)
    feats = WNConvNet(4, norm="none")(x)
    assert 0.2 < feats.pow(2).mean().sqrt() / x.pow(2).mean().sqrt() < 2.0
