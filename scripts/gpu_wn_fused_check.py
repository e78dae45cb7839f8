"""On a GPU: the WN layers' fused path against their plain ops and a CPU float64 reference (max abs
differences of y and each gradient), to tell which path and which layout differs and by how much."""

import copy

import torch

from wnrl.layers import WNConv2d, WNLinear

torch.manual_seed(0)
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def grads(layer, x):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    (y * y.detach().sin()).sum().backward()
    return {"y": y.detach().cpu(), "x": x.grad.cpu(), "v": layer.v.grad.cpu(), "g": layer.g.grad.cpu()}


cases = [
    ("conv", WNConv2d(4, 32, 8, stride=4), (6, 4, 84, 84), False),
    ("conv channels_last", WNConv2d(4, 32, 8, stride=4), (6, 4, 84, 84), True),
    ("linear 3136x512", WNLinear(3136, 512), (6, 3136), False),
]
for name, base, shape, cl in cases:
    with torch.no_grad():
        base.v.normal_()
        base.g.uniform_(0.5, 2)
    base = base.double()
    if cl:
        base.to(memory_format=torch.channels_last)
    x = torch.randn(shape, dtype=torch.float64)
    ref = copy.deepcopy(base)
    ref.fused = False
    r = grads(ref, x)
    for fused in (False, True):
        m = copy.deepcopy(base).to(dev)
        m.fused = fused
        out = grads(m, x.to(dev))
        diffs = ", ".join(
            f"{k} {float((out[k] - r[k]).abs().max()):.1e} (|ref| {float(r[k].abs().max()):.1e})" for k in r
        )
        print(f"{name:20s} fused={fused!s:5s} vs CPU float64 plain ops: {diffs}", flush=True)
