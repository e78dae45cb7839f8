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
import torch

from agents.common import make_env
from wnrl.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from wnrl.config import CliError
from wnrl.runtime import resolve_device, seed_everything


def checkpoint_file(path: str) -> Path:
    """A checkpoint file, or the newest one of a run directory."""
    p = Path(path)
    if p.is_dir():
        found = list_checkpoints(p)
        if not found:
            raise CliError(f"{p}: no checkpoint in this run directory")
        return found[-1]
    if not p.exists():
        raise CliError(f"{p}: no such run directory or checkpoint file")
    return p


def build_policy(state: dict, env, device: torch.device):
    """The network the checkpoint holds, loaded, in eval mode; and its agent's name."""
    from agents.a2c import ActorCritic
    from agents.dqn import QNetwork

    agent, cfg = state["agent"], state["config"]
    obs_shape, n_actions = env.single_observation_space.shape, int(env.single_action_space.n)
    hidden = tuple(cfg.get("hidden_sizes", (64, 64)))
    act = cfg.get("activation", "relu")
    if agent == "dqn":
        dueling, wn_head = cfg.get("dueling", False), cfg.get("wn_head", False)
        net = QNetwork(obs_shape, n_actions, cfg["norm"], dueling, hidden, wn_head, act)
    elif agent == "a2c":
        net = ActorCritic(obs_shape, n_actions, cfg["norm"], hidden, cfg.get("wn_head", False), act)
    else:
        raise CheckpointError(f"unknown agent {agent!r} in checkpoint")
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"model does not match its config ({str(e).splitlines()[-1].strip()[:160]})") from None
    return net.to(device).eval(), agent


@torch.no_grad()
def choose(net, agent: str, obs: torch.Tensor, rng: np.random.Generator, epsilon: float, greedy: bool) -> np.ndarray:
    if agent == "dqn":
        greedy_actions = net(obs).argmax(1).cpu().numpy()
        n_actions = net.head.q.out_features
        explore = rng.random(len(greedy_actions)) < epsilon
        return np.where(explore, rng.integers(0, n_actions, len(greedy_actions)), greedy_actions)
    logits, _ = net(obs)
    if greedy:
        return logits.argmax(1).cpu().numpy()
    return torch.distributions.Categorical(logits=logits).sample().cpu().numpy()


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
    file = checkpoint_file(path)
    state = load_checkpoint(file)
    dev = resolve_device(device)
    rng = seed_everything(seed)
    n = num_envs or min(episodes, 8)
    from agents.dqn import DQNConfig

    cfg = DQNConfig.for_env(
        state["config"]["env"], sticky_actions=state["config"].get("sticky_actions", 0.0), seed=seed
    )
    env = make_env(cfg, num_envs=n, seed=seed)
    try:
        net, agent = build_policy(state, env, dev)
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
            obs_t = torch.from_numpy(obs).to(dev)
            obs, _, _, _, info = env.step(choose(net, agent, obs_t, rng, epsilon, greedy))
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
        "checkpoint": str(file),
        "agent": agent,
        "env": state["env"],
        "step": int(state["step"]),
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
