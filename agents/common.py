"""What DQN and A2C share: env from config, run start-up, reward/terminal shaping, checkpoint RNG state."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from wnrl import envs
from wnrl.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from wnrl.config import CliError, CommonConfig
from wnrl.layers import wn_diagnostics
from wnrl.logger import Logger
from wnrl.nets import ACTIVATIONS, NORMS
from wnrl.runtime import default_run_name, new_run_dir, resolve_device, seed_everything
from wnrl.schedules import LinearSchedule


def check_common(cfg: CommonConfig) -> None:
    """Rejects bad values with a message that says what to do."""
    cfg.require_at_least(1, "total_steps", "num_envs", "checkpoint_every", "log_every")
    if cfg.norm not in NORMS:
        raise CliError(f"unknown --norm {cfg.norm!r}: choose one of {', '.join(NORMS)}")
    cfg.require_in("sticky_actions", 0.0, 1.0)
    if cfg.activation not in ACTIVATIONS:
        raise CliError(f"unknown --activation {cfg.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if not cfg.hidden_sizes or min(cfg.hidden_sizes) < 1:
        raise CliError(f"--hidden-sizes must be positive integers like 64,64, got {cfg.hidden_sizes}")
    if cfg.compile not in COMPILE_MODES:
        raise CliError(f"unknown --compile {cfg.compile!r}: choose one of {', '.join(COMPILE_MODES)}")


COMPILE_MODES = ("off", "default", "reduce-overhead")


class Compiled:
    """``fn``, through ``torch.compile`` unless ``mode`` is "off". If compiling fails (no C++
    compiler, an unsupported op), one warning is printed and ``fn`` runs as it is from then on: the
    run goes on. ``fn`` must be safe to run again after a failed call (set gradients to None first)."""

    def __init__(self, fn, mode: str = "off", name: str = ""):
        self.eager = fn
        self.name = name or getattr(fn, "__name__", "function")
        self.mode = mode
        self.fn = fn if mode == "off" else torch.compile(fn, mode=mode)

    @property
    def compiled(self) -> bool:
        return self.fn is not self.eager

    def __call__(self, *args: Any) -> Any:
        if self.fn is self.eager:
            return self.eager(*args)
        try:
            return self.fn(*args)
        except Exception as e:  # a compiler failure must not end the run
            first = (str(e).strip().splitlines() or [""])[0][:200]
            print(
                f"warning: --compile {self.mode} failed for {self.name} ({type(e).__name__}: {first}); "
                "running it uncompiled (--compile off hides this)",
                file=sys.stderr,
            )
            self.fn = self.eager
            return self.eager(*args)


def make_env(cfg: CommonConfig, num_envs: int | None = None, seed: int | None = None):
    family, _ = envs.resolve(cfg.env)
    options = {"repeat_action_probability": cfg.sticky_actions} if family == "atari" else {}
    env = envs.make(cfg.env, num_envs or cfg.num_envs, seed=cfg.seed if seed is None else seed, **options)
    if not isinstance(env.single_action_space, gym.spaces.Discrete):
        env.close()
        raise CliError(f"{cfg.env} has actions {env.single_action_space}; wnrl's agents need discrete actions")
    return env


@dataclass
class Run:
    """A started run: where it writes, on what device, its env, logger and random generator."""

    run_dir: Path
    device: torch.device
    env: Any
    logger: Logger
    rng: np.random.Generator


def prepare(cfg: CommonConfig) -> tuple[torch.device, np.random.Generator, Any]:
    """Device, seeds and env: everything that can refuse bad input, before anything is written."""
    device = resolve_device(cfg.device)
    rng = seed_everything(cfg.seed)
    return device, rng, make_env(cfg)


def open_run(
    cfg: CommonConfig,
    agent: str,
    device: torch.device,
    rng: np.random.Generator,
    env: Any,
    resume: Resume | None = None,
) -> Run:
    """Creates the run directory (with ``config.json``) and the logger, or reopens a resumed one.

    A resumed run's TensorBoard log is purged after the checkpoint's step, so the curves continue
    without duplicated or overlapping steps."""
    config = {"agent": agent, **cfg.to_dict()}
    if resume is None:
        run_dir = new_run_dir(cfg.logdir, cfg.run_name or default_run_name(env.env_id, agent, cfg.norm, cfg.seed))
        start = 0
    else:
        run_dir, start = resume.run_dir, resume.step
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    logger = Logger(
        run_dir,
        config,
        cfg.total_steps,
        start_step=start,
        progress=cfg.progress,
        eta_from=getattr(cfg, "learning_starts", 0),  # DQN's random play runs ~10× faster than its learning
    )
    if resume is not None:
        logger.episodes = int(resume.state.get("episodes", 0))
        logger.recent_returns.extend(resume.state.get("recent_returns", torch.zeros(0)).tolist())
        restore_rng(rng, resume.state["rng"])
    return Run(run_dir, device, env, logger, rng)


@dataclass
class Resume:
    """A run to continue: its directory, the checkpoint used and what it holds."""

    run_dir: Path
    path: Path
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def find_resume(run_dir: str | Path, agent: str) -> Resume:
    """The newest readable checkpoint of ``run_dir``, written by ``agent``. A newest file that is
    truncated (killed mid-write on a filesystem without atomic rename) falls back to the one before."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise CliError(f"--resume {run_dir}: not a run directory (no config.json)")
    paths = list_checkpoints(run_dir)
    if not paths:
        raise CliError(f"--resume {run_dir}: no checkpoint yet; start the run again instead")
    errors = []
    for path in reversed(paths):
        try:
            state = load_checkpoint(path)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if state["agent"] != agent:
            raise CheckpointError(f"{path}: written by {state['agent']}, not {agent}; resume it with that agent")
        if errors:
            print(f"warning: skipped unreadable checkpoint(s): {'; '.join(errors)}", file=sys.stderr)
        return Resume(run_dir, path, state)
    raise CheckpointError(errors[0])


def load_into(resume: Resume, **modules: Any) -> None:
    """``load_state_dict`` of each named part of the checkpoint, with a one-line error on a mismatch."""
    for key, module in modules.items():
        if key not in resume.state:
            raise CheckpointError(f"{resume.path}: has no {key!r} state")
        try:
            module.load_state_dict(resume.state[key])
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[-1].strip() if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{resume.path}: {key} does not match this network/config ({first[:160]})") from None


def check_resume_env(resume: Resume, env: Any) -> None:
    if resume.state.get("env") != env.env_id:
        raise CheckpointError(f"{resume.path}: written for env {resume.state.get('env')}, not {env.env_id}")


class TrainingDiverged(RuntimeError):
    """A non-finite loss or parameter: the run stops without checkpointing the broken state."""


def continued_schedule(resume: Resume | None, name: str, make, cfg: CommonConfig) -> LinearSchedule:
    """``make(cfg)`` for a new run. For a resumed one, the schedule saved in the checkpoint, continued
    from the resume step to the end ``make(cfg)`` sets: a new --total-steps moves where the schedule
    ends, never its value at the resume step. (Checkpoints from before schedules were saved: the
    schedule their own config made.)"""
    fresh = make(cfg)
    if resume is None:
        return fresh
    saved = resume.state.get("schedules", {}).get(name)
    if saved is not None:
        old = LinearSchedule.from_list(saved)
    else:
        old = make(dataclasses.replace(cfg, total_steps=int(resume.state["config"]["total_steps"])))
    return old.continued(resume.step, fresh.s1, fresh.v1)


def lr_schedule(cfg: Any) -> LinearSchedule:
    """The learning rate's factor for an agent config with ``lr_decay``: 1 → 0 over total_steps, else 1."""
    return LinearSchedule.from_start(1.0, 0.0 if cfg.lr_decay else 1.0, cfg.total_steps)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def check_finite(step: int, run: Run, net: nn.Module, *losses: torch.Tensor) -> None:
    bad = [t for t in losses if not bool(torch.isfinite(t).all())]
    bad_params = [n for n, p in net.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad or bad_params:
        what = f"parameters ({', '.join(bad_params[:3])})" if bad_params else "loss"
        last = list_checkpoints(run.run_dir)
        keep = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"non-finite {what} at step {step}; stopped, {keep}; "
            "resume from it with a lower --learning-rate or --max-grad-norm"
        )


class StopRequest:
    """SIGINT/SIGTERM ask the training loop to stop after the current step, checkpoint and return.

    A second signal while stopping is ignored: the checkpoint being written must finish."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __bool__(self) -> bool:
        return self.signum is not None

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def try_checkpoint(save, final: bool = False) -> None:
    """Writes a checkpoint; a failure to write (disk full) leaves the previous one valid and, except
    for the final checkpoint, lets training go on."""
    try:
        save()
    except OSError as e:
        if final:
            raise CliError(f"could not write the final checkpoint ({e.strerror}); the previous one is kept") from None
        print(f"warning: checkpoint not written ({e.strerror}); the previous one is kept", file=sys.stderr)


def learning_reward(cfg: CommonConfig, reward: np.ndarray) -> np.ndarray:
    """What the learner sees: sign(r) with ``clip_rewards`` (Atari), else r. Logs keep raw scores."""
    reward = reward.astype(np.float32, copy=False)
    return np.sign(reward) if cfg.clip_rewards else reward


def learning_terminal(cfg: CommonConfig, terminated: np.ndarray, info: dict) -> np.ndarray:
    """Terminal for bootstrapping: game over, or a lost life with ``life_loss_terminal``."""
    return terminated | info["life_lost"] if cfg.life_loss_terminal else terminated


def obs_to_device(obs: np.ndarray, device: torch.device) -> torch.Tensor:
    """Observations cross to the device as they are (uint8 frames stay uint8: 4× less traffic)."""
    t = torch.from_numpy(obs)
    return t.to(device, non_blocking=True) if device.type != "cpu" else t


def log_wn(logger: Logger, net: nn.Module, step: int) -> None:
    logger.scalars({f"wn/{k}": v for k, v in wn_diagnostics(net).items()}, step)


def save_run_checkpoint(run: Run, cfg: CommonConfig, agent: str, step: int, **parts: Any) -> Path:
    """The checkpoint of ``step``: who wrote it (agent, env, config), episode count, RNG states and
    the agent's ``parts`` (state dicts and counters)."""
    state = {
        "agent": agent,
        "env": run.env.env_id,
        "config": cfg.to_dict(),
        "episodes": run.logger.episodes,
        "recent_returns": torch.tensor(list(run.logger.recent_returns), dtype=torch.float64),
        "rng": rng_state(run.rng),
        **parts,
    }
    return save_checkpoint(run.run_dir, step, state)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """RNG states in a form ``torch.load(weights_only=True)`` reads back."""
    return {"numpy": json.dumps(rng.bit_generator.state), "torch": torch.get_rng_state()}


def restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = json.loads(state["numpy"])
    torch.set_rng_state(state["torch"])


class Every:
    """Fires once per ``period`` agent steps, counting from multiples of it (so a resumed run keeps
    the same logging and checkpoint steps)."""

    def __init__(self, period: int, step: int = 0):
        self.period = period
        self.next = (step // period + 1) * period

    def due(self, step: int) -> bool:
        if step < self.next:
            return False
        self.next += self.period
        return True


def summary(run: Run, step: int, interrupted: bool, **extra: Any) -> dict[str, Any]:
    """What ``train`` returns: where the run is, how far it got and how it was doing."""
    return {
        "run_dir": run.run_dir,
        "steps": step,
        "episodes": run.logger.episodes,
        "mean_return": run.logger.mean_recent_return(),
        "recent_returns": list(run.logger.recent_returns),
        "interrupted": interrupted,
        **extra,
    }


class Throughput:
    """Agent steps per second since the last call of ``sps``."""

    def __init__(self, step: int = 0):
        self.step, self.time = step, time.perf_counter()

    def sps(self, step: int) -> float:
        now = time.perf_counter()
        rate = (step - self.step) / max(now - self.time, 1e-9)
        self.step, self.time = step, now
        return rate
