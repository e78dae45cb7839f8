import copy, torch
from wnrl.layers import WNConv2d, WNLinear
torch.manual_seed(0)
for name, base, shape in (("conv", WNConv2d(4, 32, 8, stride=4), (6, 4, 84, 84)), ("linear", WNLinear(3136, 512), (6, 3136))):
    with torch.no_grad():
        base.v.normal_(); base.g.uniform_(0.5, 2); base.bias.uniform_(-1, 1)
    base = base.double(); x = torch.randn(shape, dtype=torch.float64)
    def run(m, dev, dt):
        m = copy.deepcopy(m).to(dev, dt); y = m(x.to(dev, dt)); (y * y.detach().sin()).sum().backward()
        return [t.detach().double().cpu() for t in (y, m.v.grad, m.g.grad)]
    ref = run(base, "cpu", torch.float64)
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32; torch.backends.cuda.matmul.allow_tf32 = tf32
        for fused in (True, False):
            b = copy.deepcopy(base); b.fused = fused
            out = run(b, "cuda", torch.float32)
            print(name, "tf32", tf32, "fused", fused, " ".join(f"{k} {float((o-r).abs().max()/r.abs().max()):.1e}" for k, o, r in zip("yvg", out, ref)), flush=True)
