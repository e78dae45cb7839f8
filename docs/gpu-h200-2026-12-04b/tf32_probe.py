"""On a GPU, with TF32 on and off: the WN layers in float32 (fused op and plain ops) against float64 on the
CPU. Prints max |diff| / max |ref| of y and of v's and g's gradients. (Ran on the H200 as a one-line-per-
statement version of this same code; the output is in this folder's README.)"""

import copy

import torch

from wnrl.layers import WNConv2d, WNLinear

torch.manual_seed(0)
CASES = (("conv", WNConv2d(4, 32, 8, stride=4), (6, 4, 84, 84)), ("linear", WNLinear(3136, 512), (6, 3136)))


def grads(module, x, device, dtype):
    m = copy.deepcopy(module).to(device, dtype)
    y = m(x.to(device, dtype))
    (y * y.detach().sin()).sum().backward()
    return [t.detach().double().cpu() for t in (y, m.v.grad, m.g.grad)]


for name, base, shape in CASES:
    with torch.no_grad():
        base.v.normal_()
        base.g.uniform_(0.5, 2)
        base.bias.uniform_(-1, 1)
    base = base.double()
    x = torch.randn(shape, dtype=torch.float64)
    ref = grads(base, x, "cpu", torch.float64)
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        for fused in (True, False):
            b = copy.deepcopy(base)
            b.fused = fused
            out = grads(b, x, "cuda", torch.float32)
            rel = [float((o - r).abs().max() / r.abs().max()) for o, r in zip(out, ref)]
            diffs = " ".join(f"{k} {e:.1e}" for k, e in zip("yvg", rel))
            print(name, "tf32", tf32, "fused", fused, diffs, flush=True)
