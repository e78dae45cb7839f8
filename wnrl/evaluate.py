"""``python -m wnrl.evaluate RUN_DIR_OR_CHECKPOINT --episodes N``: play a trained agent and report scores.

The standard protocol: DQN acts ε-greedily with ε = 0.05 (``--epsilon``), A2C samples its policy
(``--greedy`` takes the most likely action); whole games with raw scores, no life-loss resets, the
108,000-frame cap. Prints mean ± std and min/max over the episodes; ``--video out.gif`` writes the
first episode of the first env as an animated GIF of the agent's 84×84 frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from wnrl.checkpoint import CheckpointError
from wnrl.config import CliError
from wnrl.runtime import seed_everything
from wnrl.trained import load


def evaluate(
    path: str,
    episodes: int = 10,
    epsilon: float = 0.05,
    greedy: bool = False,
    seed: int = 12345,
    device: str = "auto",
    video: str | None = None,
    num_envs: int | None = None,
) -> dict:
    """Plays ``episodes`` whole games; returns the scores and their summary."""
    if episodes < 1:
        raise CliError(f"--episodes must be at least 1, got {episodes}")
    if not 0.0 <= epsilon <= 1.0:
        raise CliError(f"--epsilon must be in [0, 1], got {epsilon}")
    seed_everything(seed)
    agent = load(path, device=device, seed=seed)
    agent.epsilon = epsilon
    # the evaluation protocols: DQN ε-greedy (ε = 0 is greedy), A2C samples unless --greedy
    deterministic = greedy if agent.agent == "a2c" else epsilon == 0
    n = num_envs or min(episodes, 8)
    env = agent.make_env(num_envs=n, seed=seed)
    try:
        # Each env plays its own quota of games, so short games are not over-represented.
        quota = np.full(n, episodes // n) + (np.arange(n) < episodes % n)
        scores: list[list[float]] = [[] for _ in range(n)]
        lengths: list[int] = []
        frames: list[np.ndarray] = []
        recording = video is not None
        obs, _ = env.reset(seed=seed)
        while any(len(s) < q for s, q in zip(scores, quota)):
            if recording and obs.ndim == 4:
                frames.append(obs[0, -1].copy())
            obs, _, _, _, info = env.step(agent.predict(obs, deterministic))
            for k in np.flatnonzero(info["episode_end"]):
                if len(scores[k]) < quota[k]:
                    scores[k].append(float(info["episode_return"][k]))
                    lengths.append(int(info["episode_length"][k]))
                if k == 0:
                    recording = False
    finally:
        env.close()
    all_scores = np.array([s for per_env in scores for s in per_env])
    if video is not None:
        write_gif(video, frames)
    return {
        "checkpoint": str(agent.checkpoint),
        "agent": agent.agent,
        "env": agent.env_id,
        "step": agent.step,
        "episodes": len(all_scores),
        "scores": all_scores.tolist(),
        "mean": float(all_scores.mean()),
        "std": float(all_scores.std()),
        "min": float(all_scores.min()),
        "max": float(all_scores.max()),
        "mean_length": float(np.mean(lengths)),
    }


def write_gif(path: str, frames: list[np.ndarray], scale: int = 3, fps: int = 15) -> None:
    """An animated GIF of grayscale frames, each pixel ``scale``× larger."""
    from PIL import Image

    if not frames:
        raise CliError("--video needs an env with image observations")
    images = [Image.fromarray(f.repeat(scale, 0).repeat(scale, 1)) for f in frames]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wnrl.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("path", help="a run directory (its newest checkpoint) or a checkpoint file")
    p.add_argument("--episodes", type=int, default=10, help="whole games to play (default: 10)")
    p.add_argument("--epsilon", type=float, default=0.05, help="DQN: probability of a random action (default: 0.05)")
    p.add_argument("--greedy", action="store_true", help="A2C: take the most likely action instead of sampling")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation envs (default: 12345)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--video", default=None, metavar="PATH.gif", help="write the first episode as an animated GIF")
    p.error = lambda message: p.exit(2, f"error: {message} (see {p.prog} --help)\n")  # one line, exit 2
    args = p.parse_args(argv)
    try:
        r = evaluate(args.path, args.episodes, args.epsilon, args.greedy, args.seed, args.device, args.video)
    except (CliError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{r['agent']} on {r['env']} at step {r['step']:,}: {r['mean']:.2f} ± {r['std']:.2f} over {r['episodes']} "
        f"episodes (min {r['min']:.0f}, max {r['max']:.0f}, mean length {r['mean_length']:.0f})"
    )
    if args.video:
        print(f"video: {args.video}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
