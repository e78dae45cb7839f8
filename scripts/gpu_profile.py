"""Where a DQN update's time goes on a GPU: python scripts/gpu_profile.py [OUT_DIR]

1. The Nature Q-network's forward + backward + Adam (batch 32), plain and WN, with cuDNN's autotuner
   (``torch.backends.cudnn.benchmark``) off and on, channels_last convolutions on and off: median ms.
2. The DQN update as the agent makes it (wnrl.bench's ``_dqn_update``), profiled with torch.profiler:
   the GPU's busy time per update against its wall-clock (launch-bound when the GPU is mostly idle),
   and the top ops by self CUDA time and by self CPU time.
3. The DQN update with and without the fused path's zero-direction guard.
Prints everything; with OUT_DIR also writes profile.txt and the Chrome trace there. GPU_PROFILE_SCALE
(default 1) multiplies the timed repeats (tests/test_gpu_profile.py runs it on a CPU with a tiny one).
"""

import os
import sys
import time

import torch
from torch import nn

from wnrl.bench import _dqn_update, _sync, time_fn
from wnrl.nets import QHead, WNConvNet

dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SCALE = float(os.environ.get("GPU_PROFILE_SCALE", "1"))
out_dir = sys.argv[1] if len(sys.argv) > 1 else None
lines: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)


def median_ms(fn, repeats: int = 40, warmup: int = 5) -> float:
    """wnrl.bench's timing (synchronized, median), its repeats scaled by GPU_PROFILE_SCALE, in ms."""
    return time_fn(fn, dev, max(1, round(repeats * SCALE)), max(1, round(warmup * SCALE))) * 1e3


def net_step(norm: str, channels_last: bool):
    net = nn.Sequential(WNConvNet(4, norm=norm, channels_last=channels_last), QHead(512, 4, wn_head=norm == "wn"))
    net = net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=dev.type == "cuda")
    x = torch.randint(0, 256, (32, 4, 84, 84), dtype=torch.uint8, device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
        opt.step()

    def forward() -> None:
        with torch.no_grad():
            net(x)

    return step, forward


say(f"device: {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, torch {torch.__version__}")
say()
say("## 1. Nature Q-network, batch 32: fwd+bwd+Adam ms (forward only ms), median of 40")
say("| norm | channels_last | cudnn.benchmark | fwd+bwd+Adam ms | forward ms |")
say("|---|---|---|---|---|")
for bench_flag in (False, True):
    torch.backends.cudnn.benchmark = bench_flag
    for norm in ("none", "wn"):
        for cl in (True, False):
            step, forward = net_step(norm, cl)
            say(f"| {norm} | {cl} | {bench_flag} | {median_ms(step):.3f} | {median_ms(forward):.3f} |")

for bench_flag in (False, True):
    torch.backends.cudnn.benchmark = bench_flag
    say()
    say(f"## 2. DQN update (wnrl.bench._dqn_update, WN, batch 32), cudnn.benchmark={bench_flag}")
    _, step = _dqn_update((4, 84, 84), 32, dev)
    median = median_ms(step)
    say(f"median ms per update: {median:.3f}")
    if dev.type != "cuda":
        continue
    n = 20
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        _sync(dev)
        wall = (time.perf_counter() - t0) / n
    events = prof.key_averages()
    # the GPU's own events only (kernels, copies): an op's row repeats its kernels' time, and a user
    # annotation (the optimizer's step) spans some of them again
    on_gpu = [
        e
        for e in events
        if e.device_type == torch.autograd.DeviceType.CUDA and not getattr(e, "is_user_annotation", False)
    ]
    gpu_ms = sum(e.self_device_time_total for e in on_gpu) / n / 1e3
    kernels = sum(e.count for e in on_gpu) / n
    say(
        f"profiled: wall {wall * 1e3:.3f} ms per update (the profiler's overhead included), GPU busy "
        f"{gpu_ms:.3f} ms per update ({100 * gpu_ms / median:.0f}% of the unprofiled median), "
        f"~{kernels:.0f} GPU kernels and copies per update"
    )
    say("top ops by self CUDA time:")
    say(events.table(sort_by="self_device_time_total", row_limit=15, max_name_column_width=60))
    say("top ops by self CPU time:")
    say(events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=60))
    if out_dir and bench_flag:
        prof.export_chrome_trace(f"{out_dir}/dqn_update_trace.json")

# 3. What the fused path's zero-direction guard costs: on a GPU each WN layer's forward adds a `ge` and a
# `where` (and the backward a `where`) so that a zero direction gives a zero weight; with gradients that row's
# gradient is NaN anyway. The same DQN update with the guard and without it (the op's weight as it is).
torch.backends.cudnn.benchmark = False
say()
say("## 3. DQN update with and without the fused path's zero-direction guard (cudnn.benchmark=False)")
import wnrl.layers as layers  # noqa: E402

guarded = layers._fused_weight_norm


def unguarded(v, g, sync_free=None):
    return layers._weight_norm_op(v, g)[0]


for name, fn in (("guarded (default)", guarded), ("unguarded", unguarded), ("guarded again", guarded)):
    layers._fused_weight_norm = fn
    _, step = _dqn_update((4, 84, 84), 32, dev)
    say(f"{name}: median ms per update {median_ms(step, repeats=100):.3f}")
layers._fused_weight_norm = guarded

if out_dir:
    with open(f"{out_dir}/profile.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
