"""Weight-normalized layers (Salimans & Kingma, 2016) and their data-dependent initialization.

Each output unit ``i`` has a direction ``v_i`` and a length ``g_i``; its effective weight is

    w_i = g_i · v_i / ‖v_i‖          (‖·‖ over every dimension of v but the output one)

so a layer computes ``y = (g/‖v‖) ⊙ (v ⊛ x) + b``. Written here from scratch (no
``torch.nn.utils`` hooks): the per-unit factor ``g/‖v‖`` is one small vector, applied to the
output of the plain product when that is cheaper (large dense layers: the output is far smaller
than the weight) and to ``v`` when that is cheaper (convolutions: the output is far larger). Small
dense layers on a CPU, and every layer on a GPU, build ``w`` with torch's fused native op instead
(see ``WNLinear``).
``python -m wnrl.bench`` measures the choices.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "WNLinear",
    "WNConv2d",
    "MeanOnlyBatchNorm",
    "batch_stat_layers",
    "wn_scale",
    "wn_weight",
    "data_dependent_init",
    "is_initialized",
    "needs_data_init",
    "init_from_data",
    "set_batch_statistics",
    "set_v_init_norm",
    "frozen_batch_statistics",
    "held_weights",
    "wn_layers",
    "wn_diagnostics",
    "project_directions",
    "WNDirections",
]

# Floor on ‖v‖²: a direction that collapses to zero yields a zero weight, never inf/NaN.
_NORM_SQ_EPS = 1e-12
_NORM_FLOOR = _NORM_SQ_EPS**0.5
# Std of the direction draw, as in the paper's code.
_V_INIT_STD = 0.05
# Row norm of PyTorch's default (kaiming-uniform, a=√5) init: w ~ U(±1/√fan_in) has E‖w_i‖² = 1/3.
# Used as g before any data-dependent init, so an uninitialized WN net works at a plain net's scale.
_DEFAULT_G = 3.0**-0.5
# Dense layers with at most this many weights build w = g·v/‖v‖ in one native op on a CPU (see
# WNLinear). Measured one thread, forward + backward, against the output-scaling path: 64→64 at
# batch 40 99 against 180 µs (plain 100), 256→256 at 64 345 against 520 (plain 314), 1024→128 at
# 32 642 against 682, but 1600→128 1,043 against 836 and 3136→512 8.4 against 6.0 ms.
FUSED_MAX_WEIGHTS = 256 * 256


def wn_scale(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-unit factor ``g / ‖v‖`` (shape ``[out]``), the norm taken over all dims of ``v`` but dim 0."""
    norm_sq = v.pow(2).sum(dim=tuple(range(1, v.dim())))
    return g * torch.rsqrt(norm_sq.clamp_min(_NORM_SQ_EPS))


def wn_weight(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The effective weight ``g · v / ‖v‖``, same shape as ``v``."""
    return v * wn_scale(g, v).view(-1, *([1] * (v.dim() - 1)))


def _weight_norm_op(v: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w, ‖v‖)`` from torch's fused op, in ``v``'s layout; a zero direction gives NaN there (no guard)."""
    if v.is_contiguous():
        return torch._weight_norm_interface(v, g, 0)
    if v.dim() == 4 and v.is_contiguous(memory_format=torch.channels_last):
        # The op reads v as contiguous (its CUDA kernel silently, whatever the strides). A channels_last
        # kernel is [out, kh, kw, in] in memory: the op runs on that contiguous view (the norm over all
        # but dim 0 is the same) and its weight is viewed back, channels_last too: no copy.
        w, norm = torch._weight_norm_interface(v.permute(0, 2, 3, 1), g, 0)
        return w.permute(0, 3, 1, 2), norm
    return torch._weight_norm_interface(v.contiguous(), g, 0)


def _fused_weight_norm(v: torch.Tensor, g: torch.Tensor, sync_free: bool | None = None) -> torch.Tensor | None:
    """``w = g·v/‖v‖`` by torch's fused native op (one kernel forward, one backward: what
    ``torch.nn.utils.parametrizations.weight_norm`` runs). A direction of zero norm (NaN there) must
    give a zero weight, as the other path's floor makes it: on a CPU the check is cheap (~6 µs) and a failing
    one returns None (the caller takes the other path, whose gradients stay finite); on a GPU it would
    be a sync per forward, so the weight is zeroed there by a ``where`` instead, and that direction's
    gradient (through ``1/‖v‖`` = inf, not tested on a GPU) can be non-finite, which stops a run with its
    one-line non-finite error (no checkpoint of it kept).
    ``sync_free`` picks the GPU's way (default: on any device but a CPU)."""
    w, norm = _weight_norm_op(v, g)
    if sync_free is None:
        sync_free = not norm.is_cpu
    if not sync_free:
        # norm never needs a gradient. Its minimum read back by torch costs ~6 µs here; numpy's read-back,
        # 4.5 µs alone, costs ~17 right after the op (one thread: a 64→64 layer's forward and backward at
        # batch 40 took 178 µs with it, 158 with this; NaN fails either comparison alike)
        return w if norm.detach().min().item() >= _NORM_FLOOR else None
    return torch.where((norm >= _NORM_FLOOR).view(-1, *([1] * (v.dim() - 1))), w, 0.0)


# False: a layer whose ``fused`` is None takes the plain ops on a GPU too (how every WN layer ran there
# before 2026-12-04); ``python -m wnrl.bench --wn-gpu-fused off`` sets it to measure the fused op's gain.
GPU_FUSED = True


def _fused_on_gpu(v: torch.Tensor) -> bool:
    """Whether a layer whose ``fused`` is None takes the fused op off a CPU: on a CUDA GPU, but not in
    float64, where its kernels compute in single precision (measured on an H200: float64 outputs
    ~1e-7 and gradients ~1e-7 relative from the float64 reference, where the plain ops give ~1e-15);
    in float32 that is the plain ops' own rounding."""
    return GPU_FUSED and v.is_cuda and v.dtype != torch.float64


class _WeightNormBase(nn.Module):
    """Shared parameters and bookkeeping of the WN layers. Subclasses define ``_raw`` (``v ⊛ x``)."""

    v: nn.Parameter
    g: nn.Parameter
    bias: nn.Parameter | None
    initialized: torch.Tensor

    def _setup(self, v_shape: tuple[int, ...], bias: bool, init_scale: float) -> None:
        if init_scale <= 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.init_scale = float(init_scale)
        # Row norm ‖v_i‖ the inits give each direction; None: the paper's v ~ N(0, 0.05²) as drawn.
        self.v_init_norm: float | None = None
        out = v_shape[0]
        self.v = nn.Parameter(torch.empty(v_shape))
        self.g = nn.Parameter(torch.empty(out))
        self.bias = nn.Parameter(torch.empty(out)) if bias else None
        # Saved in the state_dict, so a resumed run knows the data-dependent init already happened.
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        # held_weights: while set, forwards without gradients reuse what the first one computed
        self._hold = False
        self._held: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Data-independent init: v ~ N(0, 0.05²), g at a plain layer's row norm, bias as PyTorch's."""
        self._draw_v()
        nn.init.constant_(self.g, _DEFAULT_G)
        if self.bias is not None:
            fan_in = self.v[0].numel()
            bound = fan_in**-0.5
            nn.init.uniform_(self.bias, -bound, bound)
        self.initialized.fill_(False)

    @torch.no_grad()
    def _draw_v(self) -> None:
        """v ~ N(0, 0.05²) (the paper), each row rescaled to ``v_init_norm`` when that is set.

        Under Adam/RMSprop (steps of about one learning rate per element) a direction turns by an
        angle ∝ lr·√fan_in/‖v_i‖ per step, so the paper's draw (‖v_i‖ = 0.05·√fan_in: 0.8 to 2.8 in
        the Nature net) turns the wide layers up to 5× slower than a plain layer's rows (‖w_i‖ ≈ 0.58
        at PyTorch's default init) at the same learning rate."""
        self.v.normal_(0.0, _V_INIT_STD)
        if self.v_init_norm:
            norms = self.v.pow(2).sum(dim=tuple(range(1, self.v.dim())), keepdim=True).sqrt()
            self.v.mul_(self.v_init_norm / norms.clamp_min(1e-12))

    @property
    def v_target_norm(self) -> float:
        """The row norm ``‖v_i‖`` this layer's directions start at, which ``--wn-project`` holds
        them at: ``v_init_norm`` when set, else the root-mean-square norm of the paper's draw,
        ``0.05·√fan_in`` (its rows scatter around it by about ``1/√(2·fan_in)``, relative)."""
        return self.v_init_norm or _V_INIT_STD * math.prod(self.v.shape[1:]) ** 0.5

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``g · v / ‖v‖`` (read-only, detached), for inspection and export."""
        with torch.no_grad():
            return wn_weight(self.g, self.v)

    def _raw(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fused_by_default(self) -> bool:  # pragma: no cover - abstract
        """Whether the layer takes torch's fused op when its ``fused`` is None."""
        raise NotImplementedError

    def _use_fused(self) -> bool:
        if torch.compiler.is_compiling():
            # Inductor fuses the plain ops itself; torch's decomposition of the fused op also wants
            # g shaped [out, 1]. Checked first, so compiled code never guards on the attributes below.
            return False
        fused = getattr(self, "fused", None)  # a module pickled before WNConv2d had the attribute: None
        return self._fused_by_default() if fused is None else fused

    def _fused_weight(self) -> torch.Tensor | None:
        """``w`` by torch's fused op (:func:`_fused_weight_norm`; None: take the plain ops)."""
        return _fused_weight_norm(self.v, self.g)

    def __getstate__(self) -> dict:
        # a copy made inside held_weights (a target net, a pickle) must not keep its weight held
        state = self.__dict__.copy()
        state["_hold"], state["_held"] = False, None
        return state

    def _holding(self) -> bool:
        """Whether this forward may use (or keep) the held weight: inside :func:`held_weights`,
        without gradients, outside ``torch.compile`` (which traces the plain path)."""
        # is_compiling first: a compiled forward never reads _hold, so its guards do not depend on it
        return not torch.compiler.is_compiling() and self._hold and not torch.is_grad_enabled()

    def _held_value(self, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Inside :func:`held_weights`: ``compute()``'s result, computed at the first call."""
        if self._held is None:
            with torch.no_grad():
                self._held = compute()
        return self._held

    def _hold_computed(self, value: torch.Tensor) -> torch.Tensor:
        """A forward with gradients inside :func:`held_weights`: ``value`` (what a forward without
        them would compute first, by the same ops: the same bits) is kept, detached, for the forwards
        without gradients that follow, if none is held yet. Returns ``value``."""
        if not torch.compiler.is_compiling() and self._hold and self._held is None:
            self._held = value.detach()
        return value

    @torch.no_grad()
    def _data_dependent_init(self, x: torch.Tensor, min_std: float) -> None:
        """Sets g and bias so this layer's outputs on ``x`` have zero mean and ``init_scale`` std per unit."""
        self._draw_v()
        # t = (v·x)/‖v‖: the pre-activations with g = 1 and no bias.
        t = self._raw(x, self.v) * _per_channel(wn_scale(torch.ones_like(self.g), self.v), x.dim())
        dims = [0] + list(range(2, t.dim()))
        mean = t.mean(dim=dims)
        std = t.std(dim=dims, unbiased=False)
        # A unit whose pre-activations barely vary on this batch (a constant batch: frames right
        # after reset) tells us nothing about its scale: it keeps length init_scale instead of 1/0.
        g = torch.where(std > min_std, self.init_scale / std.clamp_min(min_std), self.init_scale)
        self.g.copy_(g)
        if self.bias is not None:
            self.bias.copy_(-mean * g)
        self.initialized.fill_(True)


def _per_channel(s: torch.Tensor, ndim: int) -> torch.Tensor:
    """Shapes a per-unit vector to broadcast over an activation of ``ndim`` dims (unit dim 1)."""
    return s.view(1, -1, *([1] * (ndim - 2)))


def _inv_row_norm(v: torch.Tensor) -> torch.Tensor:
    """``1/‖v_i‖`` per row of a dense ``v``, the norm floored (a zero row gives a zero weight)."""
    return torch.linalg.vector_norm(v, dim=1).clamp_min(_NORM_FLOOR).reciprocal()


def _scale_output(z: torch.Tensor, s: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``s ⊙ z + b``: the output-scaling path's last op."""
    return z * s if bias is None else torch.addcmul(bias, z, s)


def _wn_linear_forward(x, v, g, bias):
    """``(1/‖v‖, x vᵀ, y)``: the WN dense layer's forward, shared by the autograd Function and the
    gradient-free path (the same ops, so the same numbers)."""
    inv_norm = _inv_row_norm(v)
    z = F.linear(x, v)
    return inv_norm, z, _scale_output(z, g * inv_norm, bias)


class _WNLinearFn(torch.autograd.Function):
    """``y = s ⊙ (x vᵀ) + b`` with ``s = g/‖v‖``, with a hand-written backward.

    Autograd through ``‖v‖`` would add two full passes over ``v`` (a squared copy forward, its
    gradient backward) plus a temporary the size of ``v``; here the norm is one reduction and its
    gradient one in-place update of ``∂L/∂v``:

        ∂L/∂s = Σ_batch dy ⊙ z            (z = x vᵀ)
        ∂L/∂g = ∂L/∂s / ‖v‖
        ∂L/∂v = (dy ⊙ s)ᵀ x − (∂L/∂s · g / ‖v‖³) v      (orthogonal to v, as the paper shows)
    """

    @staticmethod
    def forward(ctx, x, v, g, bias):
        inv_norm, z, y = _wn_linear_forward(x, v, g, bias)
        ctx.save_for_backward(x, v, g, inv_norm, z)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, v, g, inv_norm, z = ctx.saved_tensors
        s = g * inv_norm
        dy2, x2, z2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1]), z.reshape(-1, z.shape[-1])
        ds = (dy2 * z2).sum(0)
        dz = dy2 * s
        dx = dv = dg = db = None
        if ctx.needs_input_grad[0]:
            dx = dz.mm(v).view(x.shape)
        if ctx.needs_input_grad[1]:
            dv = dz.t().mm(x2)
            dv.addcmul_(v, (-(ds * g) * inv_norm.pow(3)).unsqueeze(1))
        if ctx.needs_input_grad[2]:
            dg = ds * inv_norm
        if ctx.has_bias and ctx.needs_input_grad[3]:
            db = dy2.sum(0)
        return dx, dv, dg, db


class WNLinear(_WeightNormBase):
    """Weight-normalized dense layer: ``y = (g/‖v‖) ⊙ (x vᵀ) + b``.

    Parameters ``v`` ``[out, in]``, ``g`` ``[out]``, ``bias`` ``[out]``. ``init_scale`` is the output
    std that :func:`data_dependent_init` aims for. Two exact ways to compute it, chosen by ``fused``:

    - ``False``: the plain product, then the factor ``g/‖v‖`` scales the output (``out`` values per
      example, not the ``out·in`` of ``w``), with a hand-written backward. The way for large layers.
    - ``True``: ``w = g·v/‖v‖`` by torch's fused ``_weight_norm_interface`` (one native op forward
      and one backward, what ``torch.nn.utils.parametrizations.weight_norm`` runs), then a plain
      layer. On small layers the per-op overhead dominates, and this path costs about what a plain
      layer costs. A direction of zero norm gets a zero weight (:func:`_fused_weight_norm`).
    - ``None`` (default): outside ``torch.compile`` (which fuses the first path itself), ``True``
      on a GPU in float32 (not float64: :func:`_fused_on_gpu`), where a small batch's update is
      bound by kernel launches (the first path launches ~6 kernels forward and ~8 backward per
      layer, this one 2 and 2; measured on an H200 at batch 32, forward + backward + Adam of the
      Nature Q-network took 1.85× a plain one's on the first path, 1.43× on this one), and on a
      CPU for at most ``FUSED_MAX_WEIGHTS`` weights; else ``False``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init_scale: float = 1.0,
        fused: bool | None = None,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.fused = fused
        self._small = in_features * out_features <= FUSED_MAX_WEIGHTS
        self._setup((out_features, in_features), bias, init_scale)

    def _raw(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.linear(x, v)

    def _fused_by_default(self) -> bool:
        return self._small if self.v.is_cpu else _fused_on_gpu(self.v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._holding():
            held = self._held_value(self._acting_weight)
            if held.dim() == 2:  # w, from the fused path
                return F.linear(x, held, self.bias)
            return _scale_output(F.linear(x, self.v), held, self.bias)  # held = g/‖v‖, the other path's
        if self._use_fused():
            w = self._fused_weight()
            if w is not None:
                return F.linear(x, self._hold_computed(w), self.bias)
        if not torch.is_grad_enabled():
            # Acting: no backward to prepare. Function.apply's own overhead is about half of this
            # layer's time on a small MLP (one CPU thread: 18 µs against 9 for a 4→64 layer, batch 8).
            return _wn_linear_forward(x, self.v, self.g, self.bias)[2]
        return _WNLinearFn.apply(x, self.v, self.g, self.bias)

    def _acting_weight(self) -> torch.Tensor:
        """What a forward without gradients computes before it meets ``x``: ``w`` (fused path) or
        the factor ``g/‖v‖`` (the other), by the same ops, so a held forward gives the same bits."""
        w = self._fused_weight() if self._use_fused() else None
        return w if w is not None else self.g * _inv_row_norm(self.v)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class WNConv2d(_WeightNormBase):
    """Weight-normalized 2-D convolution: ``y = (g/‖v‖) ⊙ (v ⊛ x) + b``.

    Parameters ``v`` ``[out, in, kh, kw]``, ``g`` ``[out]``, ``bias`` ``[out]``; ‖v‖ is taken per
    output channel over ``in·kh·kw``. By default the factor is folded into the (small) kernel before
    the convolution, which the bench measures faster than scaling the (large) output;
    ``scale_output=True`` does the latter. The kernel ``g·v/‖v‖`` is built by torch's fused op when
    ``fused`` is True (the default on a GPU in float32 outside ``torch.compile``: two kernel launches
    where autograd through the norm takes ~14, see :class:`WNLinear`), else by plain ops.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        init_scale: float = 1.0,
        scale_output: bool = False,
        fused: bool | None = None,
    ):
        super().__init__()
        self.fused = fused
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kh, kw)
        self.stride = stride
        self.padding = padding
        self.scale_output = scale_output
        self._setup((out_channels, in_channels, kh, kw), bias, init_scale)

    def _raw(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, v, None, self.stride, self.padding)

    def _fused_by_default(self) -> bool:
        return _fused_on_gpu(self.v)

    def _weight_or_scale(self) -> torch.Tensor:
        """The factor ``g/‖v‖`` with ``scale_output``, else the weight ``g·v/‖v‖``."""
        if not self.scale_output and self._use_fused():
            w = self._fused_weight()
            if w is not None:
                return w
        s = wn_scale(self.g, self.v)
        return s if self.scale_output else self.v * s.view(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._holding():
            ws = self._held_value(self._weight_or_scale)
        else:
            ws = self._hold_computed(self._weight_or_scale())
        if self.scale_output:
            y = self._raw(x, self.v) * ws.view(1, -1, 1, 1)
            return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
        return F.conv2d(x, ws, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class MeanOnlyBatchNorm(nn.Module):
    """The paper's §3 companion to WN: ``y = x − μ_B[x] + b`` per channel, no division by σ.

    In training mode μ is the minibatch mean (and updates a running mean); in eval mode the
    running mean is used. Put it after a WN layer without bias.
    """

    def __init__(self, num_features: int, momentum: float = 0.1):
        super().__init__()
        self.num_features = num_features
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=[0] + list(range(2, x.dim())))
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
        else:
            mean = self.running_mean
        return x - _per_channel(mean - self.bias, x.dim())

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.momentum}"


def wn_layers(module: nn.Module) -> list[tuple[str, _WeightNormBase]]:
    """The weight-normalized layers inside ``module``, with their qualified names."""
    return [(n, m) for n, m in module.named_modules() if isinstance(m, _WeightNormBase)]


def is_initialized(module: nn.Module) -> bool:
    """True when every WN layer in ``module`` has had its data-dependent init (or there are none)."""
    return all(bool(m.initialized) for _, m in wn_layers(module))


@torch.no_grad()
def data_dependent_init(module: nn.Module, x: torch.Tensor, min_std: float = 1e-3) -> int:
    """The paper's data-dependent init: one forward pass of ``x`` sets every WN layer's g and bias.

    Layer by layer in forward order, each WN layer draws ``v ~ N(0, 0.05²)``, computes its
    pre-activations ``t = (v·x)/‖v‖`` on its actual input (the outputs of the layers before it,
    already initialized) and sets ``g = init_scale/σ[t]``, ``bias = −μ[t]·init_scale/σ[t]``, so its
    outputs start at zero mean and ``init_scale`` std per unit over the batch (and positions). Units
    with ``σ ≤ min_std`` on this batch keep ``g = init_scale``. Marks the layers initialized (in
    their state_dict). Returns how many layers were initialized (0 for a net without WN layers).
    """
    if x.shape[0] < 2:
        raise ValueError(f"data_dependent_init needs a batch of at least 2 examples, got shape {tuple(x.shape)}")
    layers = wn_layers(module)
    handles = {}

    def make_hook(layer: _WeightNormBase):
        def hook(mod, args):
            layer._data_dependent_init(args[0], min_std)
            handles[id(layer)].remove()  # a layer used twice is initialized on its first use only

        return hook

    for _, layer in layers:
        handles[id(layer)] = layer.register_forward_pre_hook(make_hook(layer))
    try:
        module(x)
    finally:
        for h in handles.values():
            h.remove()
    return len(layers)


def set_v_init_norm(module: nn.Module, norm: float | None) -> None:
    """Every WN layer of ``module`` draws its directions with row norm ``norm`` from now on (its next
    init, data-dependent or not; None or 0: the paper's v ~ N(0, 0.05²)), and redraws them now
    (with a norm: without one the directions drawn at construction stand)."""
    if norm is not None and not norm >= 0:
        raise ValueError(f"the initial norm of v must be >= 0 (0 or None: the paper's draw), got {norm}")
    for _, layer in wn_layers(module):
        layer.v_init_norm = norm or None
        if norm:
            layer._draw_v()


def batch_stat_layers(module: nn.Module) -> list[nn.Module]:
    """Layers that normalize with minibatch statistics in training mode and running ones in eval mode."""
    return [m for m in module.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, MeanOnlyBatchNorm))]


def needs_data_init(module: nn.Module) -> bool:
    """True while a WN layer lacks its data-dependent init or a batch-norm layer has never seen a batch
    (its running statistics still the 0/1 defaults, which eval mode would use)."""
    return not is_initialized(module) or any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and int(m.num_batches_tracked) == 0
        for m in module.modules()
    )


@torch.no_grad()
def set_batch_statistics(module: nn.Module, x: torch.Tensor) -> None:
    """Sets every batch-norm layer's running statistics to the exact statistics of ``x`` (one
    training-mode pass). Without this, a net right after init acts in eval mode with running means
    at 0.1 × the batch mean (momentum 0.1 from zeros), far from what it computes in training mode."""
    layers = batch_stat_layers(module)
    if not layers:
        return
    momenta = [m.momentum for m in layers]
    was_training = module.training
    for m in layers:
        if isinstance(m, MeanOnlyBatchNorm):
            m.momentum = 1.0  # running ← batch mean
        else:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly its statistics
    module.train()
    try:
        module(x)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        module.train(was_training)


@torch.no_grad()
def init_from_data(module: nn.Module, x: torch.Tensor, min_std: float = 1e-3) -> None:
    """Everything a net learns from its first batch: WN's data-dependent init (for layers not yet
    initialized), then batch norm's running statistics on the initialized net."""
    if not is_initialized(module):
        data_dependent_init(module, x, min_std)
    set_batch_statistics(module, x)


class InitFromRollouts:
    """An on-policy agent's data-dependent init (WN's ``g`` and biases, batch norm's running
    statistics) from the observations of its first ``rollouts`` rollouts, which serve only the init,
    not a gradient step: the first rollout alone is near-identical game starts and the zero frames
    that pad a reset's frame stack, and an init on it leaves dense units dead or always on for later
    frames (A2C on Pong: 15% and 17% after one rollout, none after 20). A net that needs no such init
    (a plain net, a resumed one) takes none. Several ranks (``world``, :class:`wnrl.distributed.World`):
    the init is on all ranks' observations, and rank 0's result is what every rank keeps.

    ``if init.take(obs): continue`` in the loop, with the rollout's observations flat over ``T·N``."""

    def __init__(self, net: nn.Module, rollouts: int, world):
        self.net, self.world = net, world
        self.left = rollouts if needs_data_init(net) else 0
        self._obs: list[torch.Tensor] = []

    def take(self, obs: torch.Tensor) -> bool:
        """Keeps ``obs`` (a copy) while rollouts are still owed to the init, and makes the init
        after the last one. True: this rollout went to the init (make no gradient step from it)."""
        if self.left <= 0:
            return False
        self._obs.append(obs.clone())
        self.left -= 1
        if self.left == 0:
            init_from_data(self.net, self.world.all_gather_cat(torch.cat(self._obs)))
            self.world.broadcast_module(self.net)
            self._obs.clear()
        return True


class frozen_batch_statistics:
    """Within it, training-mode forwards of ``modules`` normalize with batch statistics but leave the
    running statistics as they are (momentum 0): for extra passes over data, like a TD target's
    next observations, that must not count as the data the net acts on."""

    def __init__(self, *modules: nn.Module):
        self.layers = [m for module in modules for m in batch_stat_layers(module)]
        self.momenta: list = []

    def __enter__(self) -> frozen_batch_statistics:
        self.momenta = [m.momentum for m in self.layers]
        for m in self.layers:
            m.momentum = 0.0
        return self

    def __exit__(self, *exc) -> None:
        for m, momentum in zip(self.layers, self.momenta):
            m.momentum = momentum


class held_weights:
    """``with held_weights(net):`` around code that runs ``net`` without gradients while its
    parameters do not change (an agent's rollout): each WN layer computes its weight (or its factor
    ``g/‖v‖``) at its first such forward and reuses it, so the later ones cost what a plain layer
    costs. Outputs are the same bits as outside. A forward with gradients inside computes as it
    does outside, and where that computation is the one a forward without gradients starts with (the
    fused dense path, the convolutions), its result is held too, detached, for those that follow (a
    TD loss's pass over s' after its pass over s). Leaving drops what was held. Changing the
    parameters inside is an error the layers cannot see: don't."""

    def __init__(self, module: nn.Module):
        self.layers = [layer for _, layer in wn_layers(module)]

    def __enter__(self) -> held_weights:
        for layer in self.layers:
            layer._hold, layer._held = True, None
        return self

    def __exit__(self, *exc) -> None:
        for layer in self.layers:
            layer._hold, layer._held = False, None


@torch.no_grad()
def wn_diagnostics(module: nn.Module) -> dict[str, float]:
    """Per WN layer, mean g and mean ‖v‖ (keys ``"<layer>/g_mean"``, ``"<layer>/v_norm_mean"``).

    Under plain SGD ‖v‖ only grows (the gradient is orthogonal to v); a fast-growing ‖v‖ shrinks the
    effective learning rate of that layer, which is what these curves let you watch.
    """
    out = {}
    for name, layer in wn_layers(module):
        v = layer.v
        norms = v.pow(2).sum(dim=tuple(range(1, v.dim()))).sqrt()
        out[f"{name}/g_mean"] = float(layer.g.mean())
        out[f"{name}/v_norm_mean"] = float(norms.mean())
    return out


@torch.no_grad()
def project_directions(module: nn.Module | list[_WeightNormBase]) -> None:
    """Rescales every direction ``v_i`` of the WN layers (of a module, or a list of layers) to its
    layer's :attr:`~_WeightNormBase.v_target_norm`: ``--wn-project``, run after every optimizer step.

    ``w = g·v/‖v‖`` does not see ``‖v‖``, so the net computes the same function (up to float
    rounding); what changes is the next steps. The gradient with respect to ``v_i`` is orthogonal
    to it and scales as ``1/‖v_i‖``, so each step lengthens ``v_i`` and the angle a step turns it by
    falls as ``1/‖v_i‖²`` under SGD (``1/‖v_i‖`` under Adam or RMSprop): held at one norm, a
    direction keeps the effective learning rate it started with. Cost: one norm reduction per layer
    and three ``torch._foreach`` ops over all the layers (one of them the in-place rescale of v)."""
    layers = [m for _, m in wn_layers(module)] if isinstance(module, nn.Module) else module
    if not layers:
        return
    vs = [m.v for m in layers]
    scales = [torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True) for v in vs]
    torch._foreach_clamp_min_(scales, _NORM_FLOOR)  # a zero row stays zero
    torch._foreach_reciprocal_(scales)
    torch._foreach_mul_(scales, [m.v_target_norm for m in layers])
    torch._foreach_mul_(vs, scales)


def _unit_rows(v: torch.Tensor) -> torch.Tensor:
    """``v_i/‖v_i‖`` as rows of a new ``[out, fan_in]`` float tensor (a zero row stays zero)."""
    flat = v.detach().flatten(1).float()
    return flat / torch.linalg.vector_norm(flat, dim=1, keepdim=True).clamp_min(_NORM_FLOOR)


def _mean_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the angle (radians) between unit rows ``a_i`` and ``b_i``, as
    ``2·atan2(‖a_i − b_i‖, ‖a_i + b_i‖)``: exact for small angles too, which ``acos(a_i·b_i)``
    loses to rounding (float32 cannot tell a cosine of 1 − 1e-9 from 1)."""
    diff = torch.linalg.vector_norm(a - b, dim=1)
    total = torch.linalg.vector_norm(a + b, dim=1)
    return (2 * torch.atan2(diff, total)).mean()


def plain_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The dense and conv layers inside ``module`` that are not weight-normalized (``--norm none``,
    ``layer``, ``batch``, and output layers), with their qualified names."""
    return [(n, m) for n, m in module.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


class WNDirections:
    """The directions of a net's layers across its optimizer steps, as the training loop sees them.

    :meth:`after_step` goes right after every ``optimizer.step()`` (outside any compiled function):
    with ``project`` (``--wn-project``) it runs :func:`project_directions`, and it counts the
    updates. :meth:`diagnostics`, at each log, adds to :func:`wn_diagnostics` how far each layer's
    directions turned, in **degrees**, the mean over the layer's rows: ``v_i/‖v_i‖`` for a WN
    layer (tags ``wn/<layer>/...``), ``w_i/‖w_i‖`` for a plain dense or conv layer (tags
    ``directions/<layer>/...``, with ``w_norm_mean``, the mean row norm), so that one learning rate's
    step can be compared across norms:

    * ``angle_per_update``: the angle between the directions now and at the previous log,
      divided by the updates in between: the net turn per update over the log interval. It falls
      as ‖v‖ grows (the effective learning rate), and also when successive steps cancel (steps in
      random directions turn ``v`` by about √n steps in n updates, not n).
    * ``angle_one_update``: the angle of one update, the first after the previous log: the
      size of a step itself (under Adam or RMSprop about ``lr·√fan_in/‖v_i‖``), whatever the steps
      after it do. The ratio of the two says how consistently the direction moves.

    Both start at the second log (the first only keeps the directions). Memory: one float copy of
    each layer's weight; time: a few reductions per layer per log, nothing per update without
    ``project``.
    """

    def __init__(self, module: nn.Module, project: bool = False):
        self.module = module
        self.layers = wn_layers(module)
        self._modules = [m for _, m in self.layers]
        # (tag prefix, layer, the name of the parameter whose rows are the directions)
        self._tracked = [(f"wn/{n}", m, "v") for n, m in self.layers] + [
            (f"directions/{n}", m, "weight") for n, m in plain_layers(module)
        ]
        self.project = project
        self.updates = 0  # optimizer steps seen by this object (this process: restarts at 0 on resume)
        self._logged: list[torch.Tensor] | None = None  # unit directions at the last log
        self._logged_updates = 0
        self._one: list[torch.Tensor] | None = None  # the first update's angle after the last log
        self._measure_one = False

    def after_step(self) -> None:
        """After every optimizer step: the projection (with ``project``) and the update count."""
        if self.project:
            project_directions(self._modules)
        self.updates += 1
        if self._measure_one:
            self._measure_one = False
            # stays on the device (no host sync) until the next log reads it
            self._one = [
                _mean_angle(before, _unit_rows(getattr(m, p))) for before, (_, m, p) in zip(self._logged, self._tracked)
            ]

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """The tags to log: :func:`wn_diagnostics` (as ``wn/<layer>/...``), each plain layer's mean
        row norm, and the angles since the previous call (once there was one and an update came
        since); the directions now become the reference for the next call."""
        out = {f"wn/{k}": v for k, v in wn_diagnostics(self.module).items()}
        for prefix, m, p in self._tracked:
            if p == "weight":
                out[f"{prefix}/w_norm_mean"] = float(torch.linalg.vector_norm(m.weight.flatten(1), dim=1).mean())
        n = self.updates - self._logged_updates
        if self._logged is not None and n == 0:
            return out  # nothing moved: keep the reference (and a pending one-update measure)
        now = [_unit_rows(getattr(m, p)) for _, m, p in self._tracked]
        if self._logged is not None:
            for (prefix, _, _), before, after in zip(self._tracked, self._logged, now):
                out[f"{prefix}/angle_per_update"] = math.degrees(float(_mean_angle(before, after))) / n
            for (prefix, _, _), angle in zip(self._tracked, self._one or []):
                out[f"{prefix}/angle_one_update"] = math.degrees(float(angle))
        self._logged, self._logged_updates = now, self.updates
        self._one, self._measure_one = None, True
        return out
