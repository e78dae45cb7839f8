"""Networks for the agents: the Nature-DQN conv trunk, MinAtar's small conv trunk, an MLP trunk, and the heads.

Every net takes one ``norm`` argument so the same agent can run the paper's comparison:

* ``"wn"``     weight-normalized layers (default);
* ``"wn_mobn"`` weight norm plus mean-only batch norm on hidden layers (the paper's §3 combination);
* ``"none"``   plain ``nn.Conv2d``/``nn.Linear`` (PyTorch's default init in MLPs; orthogonal with gain √2
  and zero biases in the conv trunk, as OpenAI baselines', SB3's and CleanRL's Atari nets);
* ``"batch"``  plain layers followed by BatchNorm on every hidden layer;
* ``"layer"``  plain layers followed by LayerNorm on every hidden layer (GroupNorm(1, C) for convs).

Output layers (heads) are plain ``nn.Linear`` by default under every norm, never followed by a
normalization layer: the scale of an output (a policy's temperature, the size of returns) must
adapt fast and far, and a weight-normalized output unit learns its scale through a single ``g``
that Adam/RMSprop move by about one learning rate per step (measured: A2C on Catch reaches 0.96 in
20k steps with plain heads, stays at random play with WN heads). ``wn_head=True`` normalizes them
too, as the paper does for every layer.

A new agent needs only a trunk and its own head::

    from wnrl.nets import WNConvNet
    trunk = WNConvNet(in_channels=4)                 # uint8 (B, 4, 84, 84) -> (B, 512)
    head = torch.nn.Linear(trunk.features_dim, n_actions)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from wnrl.layers import MeanOnlyBatchNorm, WNConv2d, WNLinear

NORMS = ("wn", "wn_mobn", "none", "batch", "layer")
# Activations of the MLP trunk (the conv trunk is always ReLU, as in the Nature network).
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}

__all__ = [
    "NORMS",
    "ACTIVATIONS",
    "WNConvNet",
    "MinAtarConvNet",
    "WNMLP",
    "QHead",
    "DuelingQHead",
    "ActorCriticHead",
    "make_trunk",
    "check_norm",
    "orthogonal_init",
]


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: choose one of {', '.join(NORMS)}")
    return norm


def _conv_block(norm: str, c_in: int, c_out: int, k: int, stride: int) -> list[nn.Module]:
    """conv → (norm) → ReLU for one hidden conv layer."""
    if norm == "wn":
        return [WNConv2d(c_in, c_out, k, stride), nn.ReLU()]
    if norm == "wn_mobn":
        return [WNConv2d(c_in, c_out, k, stride, bias=False), MeanOnlyBatchNorm(c_out), nn.ReLU()]
    if norm == "none":
        return [nn.Conv2d(c_in, c_out, k, stride), nn.ReLU()]
    if norm == "batch":
        return [nn.Conv2d(c_in, c_out, k, stride, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return [nn.Conv2d(c_in, c_out, k, stride), nn.GroupNorm(1, c_out), nn.ReLU()]  # "layer"


def _dense_block(norm: str, n_in: int, n_out: int, act: type[nn.Module] = nn.ReLU) -> list[nn.Module]:
    """dense → (norm) → activation for one hidden dense layer."""
    if norm == "wn":
        return [WNLinear(n_in, n_out), act()]
    if norm == "wn_mobn":
        return [WNLinear(n_in, n_out, bias=False), MeanOnlyBatchNorm(n_out), act()]
    if norm == "none":
        return [nn.Linear(n_in, n_out), act()]
    if norm == "batch":
        return [nn.Linear(n_in, n_out, bias=False), nn.BatchNorm1d(n_out), act()]
    return [nn.Linear(n_in, n_out), nn.LayerNorm(n_out), act()]  # "layer"


def output_layer(n_in: int, n_out: int, wn: bool = False, init_scale: float = 1.0) -> nn.Module:
    """A head's last layer. WN: outputs start at std ``init_scale`` after data-dependent init.
    Plain: PyTorch's default init with weight and bias multiplied by ``init_scale``."""
    if wn:
        return WNLinear(n_in, n_out, init_scale=init_scale)
    layer = nn.Linear(n_in, n_out)
    if init_scale != 1.0:
        with torch.no_grad():
            layer.weight.mul_(init_scale)
            layer.bias.mul_(init_scale)
    return layer


def orthogonal_init(module: nn.Module, gain: float = 2**0.5) -> None:
    """Orthogonal weights (rows of norm ``gain`` where there are fewer rows than inputs) and zero
    biases for every plain ``nn.Conv2d``/``nn.Linear`` in ``module``; weight-normalized layers are
    left alone (their data-dependent init sets their scale).

    The conv trunk's plain layers get it: under PyTorch's default init the four ReLU layers shrink
    Pong frames (rms 0.46) to features of rms 0.014, and A2C's critic then explained ~0% of the
    returns for its first 340k steps (docs/results.md); with it the features' rms is 0.29."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = torch.empty(m.weight.shape)  # a contiguous copy: orthogonal_ cannot fill channels_last views
            nn.init.orthogonal_(w, gain)
            with torch.no_grad():
                m.weight.copy_(w)
                if m.bias is not None:
                    m.bias.zero_()


def _conv_out(size: int, k: int, stride: int) -> int:
    return (size - k) // stride + 1


# (channels, kernel, stride) of each conv layer
NATURE_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
# Young & Tian (2019), "MinAtar" (arXiv:1903.03176), as its examples/dqn.py and AC_lambda.py build it:
# one 16×3×3 stride-1 conv on the 10×10 grid, then 128 dense units.
MINATAR_CONVS = ((16, 3, 1),)
MINATAR_HW = (10, 10)
MINATAR_FEATURES = 128


class WNConvNet(nn.Module):
    """The Nature-DQN trunk: 32×8×8/4, 64×4×4/2, 64×3×3/1 convs and a dense layer of 512, ReLUs.

    Takes ``(B, C, H, W)`` frames: uint8 are scaled to [0, 1] inside; floating input is used as
    given. Returns ``(B, features_dim)`` features for a head to use; ``features_dim=0`` leaves the
    dense layer out and returns the flattened conv features (``features_dim`` is then 3136 for
    84×84 input), for heads with streams of their own. ``channels_last`` runs the convolutions in
    NHWC layout (same results; measured ~15% faster updates on CPU). ``convs`` gives other conv
    layers, as ``(channels, kernel, stride)``: :class:`MinAtarConvNet` is this class with MinAtar's.
    """

    def __init__(
        self,
        in_channels: int = 4,
        norm: str = "wn",
        features_dim: int = 512,
        input_hw: tuple[int, int] = (84, 84),
        channels_last: bool = True,
        convs: Sequence[tuple[int, int, int]] = NATURE_CONVS,
    ):
        super().__init__()
        self.norm = check_norm(norm)
        self.in_channels = in_channels
        self.channels_last = channels_last
        h, w = input_hw
        layers: list[nn.Module] = []
        c = in_channels
        for c_out, k, s in convs:
            layers += _conv_block(norm, c, c_out, k, s)
            c, h, w = c_out, _conv_out(h, k, s), _conv_out(w, k, s)
        if h < 1 or w < 1:
            what = "the Nature trunk (needs at least 36×36)" if tuple(convs) == NATURE_CONVS else f"convs {convs}"
            raise ValueError(f"input {input_hw} is too small for {what}")
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Sequential(*_dense_block(norm, c * h * w, features_dim)) if features_dim else nn.Identity()
        self.features_dim = features_dim or c * h * w
        orthogonal_init(self)
        if channels_last:
            self.convs.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NHWC first, then to float: on uint8 frames the layout copy moves a quarter of the bytes (a batch
        # of 256 Atari frames, one CPU thread: 9.7 against 18-26 ms; the float keeps the layout, same values)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return self.fc(self.convs(x))


class MinAtarConvNet(WNConvNet):
    """MinAtar's network trunk (Young & Tian, 2019): one conv of 16 channels, 3×3, stride 1 (10×10 →
    8×8), ReLU, then a dense layer of 128, ReLU; the norm (``--norm``), init and layer names
    (``convs.0``, ``fc.0``) of :class:`WNConvNet`. Plain layers start orthogonal (gain √2) as the
    Nature trunk's do; MinAtar's own code kept PyTorch's default init. Takes uint8 ``(B, C, 10, 10)``
    (0/255, scaled to 0/1 inside) or float."""

    def __init__(
        self,
        in_channels: int = 4,
        norm: str = "wn",
        features_dim: int = MINATAR_FEATURES,
        input_hw: tuple[int, int] = MINATAR_HW,
        channels_last: bool = True,
    ):
        super().__init__(in_channels, norm, features_dim, input_hw, channels_last, convs=MINATAR_CONVS)


def is_minatar_shape(obs_shape: Sequence[int]) -> bool:
    """``(C, 10, 10)``: MinAtar's grid, which gets :class:`MinAtarConvNet` (the Nature trunk needs 36×36)."""
    return len(obs_shape) == 3 and tuple(obs_shape[1:]) == MINATAR_HW


class WNMLP(nn.Module):
    """An MLP trunk for vector observations: dense layers of ``hidden_sizes``, each with ``norm``."""

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (64, 64),
        norm: str = "wn",
        activation: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        self.norm = check_norm(norm)
        if not hidden_sizes:
            raise ValueError("WNMLP needs at least one hidden layer")
        layers: list[nn.Module] = []
        n = in_features
        for h in hidden_sizes:
            layers += _dense_block(norm, n, h, activation)
            n = h
        self.net = nn.Sequential(*layers)
        self.features_dim = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


class _Flat(nn.Module):
    """An empty trunk: vector observations as float features."""

    def __init__(self, n: int):
        super().__init__()
        self.features_dim = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def make_trunk(
    obs_shape: Sequence[int],
    norm: str = "wn",
    hidden_sizes: Sequence[int] = (64, 64),
    last_layer: bool = True,
    activation: str = "relu",
) -> nn.Module:
    """``WNConvNet`` for ``(C, H, W)`` frames (``MinAtarConvNet`` for MinAtar's ``(C, 10, 10)``),
    ``WNMLP`` for flat vectors. ``last_layer=False`` leaves out the last hidden layer (the conv
    trunk's 512 units, MinAtar's 128, the MLP's ``hidden_sizes[-1]``):
    the shared part for a head that builds that layer once per stream, see :func:`last_hidden_size`.
    ``activation`` ("relu" or "tanh", see ``ACTIVATIONS``) is the MLP's; the conv trunk uses ReLU."""
    if is_minatar_shape(obs_shape):
        return MinAtarConvNet(obs_shape[0], norm, MINATAR_FEATURES if last_layer else 0)
    if len(obs_shape) == 3:
        return WNConvNet(obs_shape[0], norm, 512 if last_layer else 0, input_hw=(obs_shape[1], obs_shape[2]))
    if len(obs_shape) == 1:
        sizes = tuple(hidden_sizes) if last_layer else tuple(hidden_sizes)[:-1]
        return WNMLP(obs_shape[0], sizes, norm, ACTIVATIONS[activation]) if sizes else _Flat(obs_shape[0])
    raise ValueError(f"no trunk for observations of shape {tuple(obs_shape)}: expected (C, H, W) frames or a vector")


def last_hidden_size(obs_shape: Sequence[int], hidden_sizes: Sequence[int] = (64, 64)) -> int:
    """The width of the layer ``make_trunk(..., last_layer=False)`` leaves out."""
    if is_minatar_shape(obs_shape):
        return MINATAR_FEATURES
    return 512 if len(obs_shape) == 3 else int(hidden_sizes[-1])


class QHead(nn.Module):
    """Q values from features: one output layer."""

    def __init__(self, features_dim: int, n_actions: int, wn_head: bool = False):
        super().__init__()
        self.q = output_layer(features_dim, n_actions, wn_head)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.q(features)


class DuelingQHead(nn.Module):
    """The dueling architecture (Wang et al., 2016): after the shared layers, a value stream and an
    advantage stream, each with its own hidden layer of ``hidden`` units (``norm``), and
    ``Q = V + A − mean_a A``. Put it on ``make_trunk(..., last_layer=False)``."""

    def __init__(
        self,
        features_dim: int,
        hidden: int,
        n_actions: int,
        norm: str = "wn",
        wn_head: bool = False,
        activation: str = "relu",
    ):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.value = nn.Sequential(*_dense_block(norm, features_dim, hidden, act), output_layer(hidden, 1, wn_head))
        self.advantage = nn.Sequential(
            *_dense_block(norm, features_dim, hidden, act), output_layer(hidden, n_actions, wn_head)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        a = self.advantage(features)
        return self.value(features) + a - a.mean(dim=1, keepdim=True)


class ActorCriticHead(nn.Module):
    """Policy logits and a state value from shared features; ``policy_init_scale`` is the std of
    the logits at init."""

    def __init__(self, features_dim: int, n_actions: int, wn_head: bool = False, policy_init_scale: float = 0.01):
        super().__init__()
        self.policy = output_layer(features_dim, n_actions, wn_head, init_scale=policy_init_scale)
        self.value = output_layer(features_dim, 1, wn_head, init_scale=1.0)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy(features), self.value(features).squeeze(-1)
