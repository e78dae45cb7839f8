"""Steps/s of wnrl and Stable-Baselines3 side by side, same game, same settings, one machine.

    pip install stable-baselines3 opencv-python-headless
    python scripts/compare_sb3.py [--agents dqn,a2c] [--seconds 60]

DQN: replay ratio of one update of batch 32 per 4 agent steps, measured after learning starts.
A2C: 16 envs, 5-step rollouts. SB3 is not a dependency of wnrl; this script is for measuring only.
"""

from __future__ import annotations

import argparse
import time


def sb3_rate(algo: str, n_envs: int, start: int, seconds: float, **kwargs) -> float:
    """SB3's steps/s on Breakout with its own Atari wrappers, measured from ``start`` agent steps on."""
    import ale_py
    import gymnasium as gym
    import stable_baselines3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    env = VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=n_envs, seed=0), n_stack=4)
    rate = Rate(start, seconds)
    model = getattr(stable_baselines3, algo)("CnnPolicy", env, verbose=0, device="cpu", **kwargs)

    class Cb(BaseCallback):
        def _on_step(self) -> bool:
            return rate.tick(self.num_timesteps)

    model.learn(total_timesteps=10**9, callback=Cb())
    return rate.value()


def sb3_dqn(seconds: float, learning_starts: int) -> float:
    return sb3_rate(
        "DQN",
        1,
        learning_starts,
        seconds,
        buffer_size=50_000,
        learning_starts=learning_starts,
        batch_size=32,
        train_freq=4,
        gradient_steps=1,
        optimize_memory_usage=False,
    )


def sb3_a2c(seconds: float) -> float:
    return sb3_rate("A2C", 16, 2_000, seconds, n_steps=5)


class Rate:
    """Steps/s between ``start`` agent steps and ``seconds`` later."""

    def __init__(self, start: int, seconds: float):
        self.start, self.seconds = start, seconds
        self.t0 = self.s0 = None
        self.t1 = self.s1 = None

    def tick(self, steps: int) -> bool:
        now = time.perf_counter()
        if self.t0 is None:
            if steps >= self.start:
                self.t0, self.s0 = now, steps
            return True
        self.t1, self.s1 = now, steps
        return now - self.t0 < self.seconds

    def value(self) -> float:
        return (self.s1 - self.s0) / (self.t1 - self.t0)


def wnrl_rate(agent: str, seconds: float, num_envs: int, learning_starts: int) -> float | None:
    from wnrl.bench import agent_rate

    return agent_rate(agent, num_envs, seconds, device="cpu", learning_starts=learning_starts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", default="dqn,a2c")
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()
    jobs = []
    if "dqn" in args.agents:
        jobs += [
            ("DQN  SB3 (1 env)", lambda: sb3_dqn(args.seconds, 2_000)),
            ("DQN  wnrl (1 env)", lambda: wnrl_rate("dqn", args.seconds, 1, 2_000)),
            ("DQN  wnrl (8 envs)", lambda: wnrl_rate("dqn", args.seconds, 8, 2_000)),
        ]
    if "a2c" in args.agents:
        jobs += [
            ("A2C  SB3 (16 envs)", lambda: sb3_a2c(args.seconds)),
            ("A2C  wnrl (16 envs)", lambda: wnrl_rate("a2c", args.seconds, 16, 0)),
        ]
    print("Breakout, CPU, agent steps/s after learning starts", flush=True)
    for name, job in jobs:
        rate = job()
        print(f"  {name:22s} {'-' if rate is None else f'{rate:8.0f}'}", flush=True)


if __name__ == "__main__":
    main()
