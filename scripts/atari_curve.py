"""The Atari figures of docs/results.md: a run's games, their 20-game mean, random play and a peer's
published training-log points for that agent and game; prints the mean score per window.

    python scripts/atari_curve.py RUN_DIR OUT.png [--window STEPS]

The peers' points are read off their public training monitors (docs/results.md says which files and
how steps were counted). A game with no peer entry is drawn without one.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from wnrl.plot import read_curve

# (agent, game) -> (label, agent steps, mean score); random play per game (docs/results.md).
PEERS = {
    ("a2c", "Pong"): (
        "rl-zoo A2C, its training log (0 at ~6M, +16 at 10M)",
        [0.5e6, 1e6, 1.5e6, 2e6, 3e6, 4e6],
        [-20.4, -20.3, -20.0, -20.1, -18.4, -14.0],
    ),
    # rl-trained-agents dqn/BreakoutNoFrameskip-v4_1/0.monitor.csv: mean of the games ending in each
    # 50k-step window, plotted at the window's middle (its ε falls 1 → 0.1 over 1M steps: see results.md)
    ("dqn", "Breakout"): (
        "rl-zoo DQN, its training log (ε 1→0.1 over 1M steps)",
        [75e3, 175e3, 275e3, 375e3, 475e3, 575e3, 725e3, 975e3],
        [1.36, 2.44, 3.96, 5.44, 7.76, 8.96, 16.2, 41.6],
    ),
}
RANDOM = {"Pong": -20.7, "Breakout": 1.7}
Y_LIMITS = {"Pong": (-21.5, 21.5)}


def game_name(env: str) -> str:
    """Breakout from "ALE/Breakout-v5", "BreakoutNoFrameskip-v4" or "Breakout"."""
    return env.split("/")[-1].split("-")[0].removesuffix("NoFrameskip")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("out")
    p.add_argument("--window", type=int, default=250_000, help="agent steps per printed window")
    args = p.parse_args()
    cfg = json.loads((args.run / "config.json").read_text())
    agent, game = cfg["agent"], game_name(cfg["env"])
    s, v = read_curve(args.run)
    if len(v) == 0:
        raise SystemExit(f"{args.run}: no game has ended in this run yet; nothing to draw")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    what = f"wnrl {agent.upper()}, {cfg['norm']}, {cfg['total_steps'] / 1e6:g}M budget, seed {cfg['seed']}: games"
    ax.plot(s, v, ".", ms=2, alpha=0.25, color="tab:blue", label=what)
    if len(v) >= 20:
        ax.plot(
            s[19:],
            np.convolve(v, np.ones(20) / 20, mode="valid"),
            color="tab:blue",
            lw=1.8,
            label="mean of the last 20 games",
        )
    if (agent, game) in PEERS:
        label, peer_s, peer_v = PEERS[agent, game]
        shown = [(x, y) for x, y in zip(peer_s, peer_v) if x <= max(s.max(), peer_s[0]) * 1.05]
        ax.plot(*zip(*shown), "s--", color="tab:orange", label=label)
    if game in RANDOM:
        ax.axhline(RANDOM[game], color="gray", ls=":", label=f"random play ({RANDOM[game]:g})")
    ax.set_xlabel("agent steps (x4 frames)")
    ax.set_ylabel("score per game")
    if game in Y_LIMITS:
        ax.set_ylim(*Y_LIMITS[game])
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7.5)
    ax.set_title(f"{agent.upper()} on {game}, 2-core CPU")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    for a in np.arange(0, s.max(), args.window):
        m = (s >= a) & (s < a + args.window)
        if m.any():
            print(f"{a / 1e6:.2f}-{(a + args.window) / 1e6:.2f}M: {v[m].mean():.2f} ({m.sum()} games)")
    print(f"last 20 games: {v[-20:].mean():.2f}, last 100: {v[-100:].mean():.2f}, at step {s[-1]:.0f}")


if __name__ == "__main__":
    main()
