"""The Pong figure of docs/results.md ("Five million steps"): a run's games, their 20-game mean, and
rl-zoo A2C's published training-log points; prints the mean score per 250k-step window.

    python scripts/pong_curve.py RUN_DIR OUT.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run, out = sys.argv[1], sys.argv[2]
ea = EventAccumulator(run, size_guidance={"scalars": 0})
ea.Reload()
ev = ea.Scalars("charts/episodic_return")
s = np.array([e.step for e in ev])
v = np.array([e.value for e in ev])
roll = np.convolve(v, np.ones(20) / 20, mode="valid")
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(s, v, ".", ms=2, alpha=0.25, color="tab:blue", label="wnrl A2C, defaults, 5M budget, seed 1: games")
ax.plot(s[19:], roll, color="tab:blue", lw=1.8, label="mean of the last 20 games")
peer_s = [0.5e6, 1e6, 1.5e6, 2e6, 3e6, 4e6]
peer_v = [-20.4, -20.3, -20.0, -20.1, -18.4, -14.0]
ax.plot(peer_s, peer_v, "s--", color="tab:orange", label="rl-zoo A2C, its training log (0 at ~6M, +16 at 10M)")
ax.axhline(-20.7, color="gray", ls=":", label="random play (-20.7)")
ax.axhline(0, color="black", lw=0.6)
ax.set_xlabel("agent steps (x4 frames)")
ax.set_ylabel("score per game")
ax.set_ylim(-21.5, 21.5)
ax.grid(alpha=0.3)
ax.legend(loc="upper left", fontsize=7.5)
ax.set_title("A2C on Pong, 2-core CPU")
fig.tight_layout()
fig.savefig(out, dpi=110)
# windows
for a in np.arange(0, s.max(), 250_000):
    m = (s >= a) & (s < a + 250_000)
    if m.any():
        print(f"{a / 1e6:.2f}-{(a + 250_000) / 1e6:.2f}M: {v[m].mean():.1f} ({m.sum()})")
print(f"last20 {v[-20:].mean():.2f} at {s[-1]}")
