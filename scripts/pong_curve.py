"""The Pong figure of docs/results.md ("Five million steps"): a run's games, their 20-game mean, and
rl-zoo A2C's published training-log points; prints the mean score per 250k-step window.

    python scripts/pong_curve.py RUN_DIR OUT.png
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from wnrl.plot import read_curve

run, out = Path(sys.argv[1]), sys.argv[2]
cfg = json.loads((run / "config.json").read_text())
s, v = read_curve(run)
roll = np.convolve(v, np.ones(20) / 20, mode="valid")
fig, ax = plt.subplots(figsize=(8, 4.5))
what = f"wnrl {cfg['agent'].upper()}, {cfg['norm']}, {cfg['total_steps'] / 1e6:g}M budget, seed {cfg['seed']}: games"
ax.plot(s, v, ".", ms=2, alpha=0.25, color="tab:blue", label=what)
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
print(f"last20 {v[-20:].mean():.2f} at {s[-1]:.0f}")
