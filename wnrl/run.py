"""A training run's life in one place: how it starts, where it writes, when it logs and
checkpoints, how a signal stops it, how it resumes, and what it reports at the end.

An agent's ``train`` reads::

    with Run.open(cfg, "dqn", resume) as run:       # config checked, device, seeds, env: nothing written yet
        q = QNetwork(...).to(run.device)
        run.restore(model=q, optimizer=optimizer)    # a resumed run's weights (a new run: nothing)
        run.start()                                  # run directory, config.json, logger; Ctrl-C now stops the loop
        step = run.start_step
        while step < cfg.total_steps and not run.stop_requested:
            ...                                       # the algorithm
            if run.log_due(step):
                run.logger.scalars({...}, step)
            if run.checkpoint_due(step):
                run.checkpoint(save)                  # save() calls run.save_checkpoint(step, model=..., ...)
        run.checkpoint(save, final=True)
        return run.summary(step, updates=...)

Leaving the ``with`` block gives the signals back and closes the logger and the env.

The run is the one place that decides whether this process writes (:attr:`Run.is_writer`): the
run directory, ``config.json``, the TensorBoard log and the checkpoints. A single process always
does; when a run has several processes, only rank 0 does.

Several processes (``torchrun``, :mod:`wnrl.distributed`): :meth:`Run.open` joins the process group
torchrun describes, puts each rank on ``LOCAL_RANK``'s GPU (or the CPU), and gives each rank its
share of ``--num-envs`` (``num_envs / world size`` envs, seeded as that slice of a single process's
envs would be). ``--total-steps`` and the step counter stay the whole run's: every rank counts all
ranks' env steps, so logging, checkpoints and the end come at the same step on every rank. Rank 0
makes the run directory and tells the others its path; the other ranks' finished episodes reach rank
0's logger at every stop check and checkpoint; a signal to any rank stops all of them after the same
update (:attr:`Run.stop_requested` agrees across ranks), with one checkpoint, written by rank 0. A
resume needs the world size the checkpoint was written with.

On disk a run is ``<logdir>/<run name>/`` with ``config.json``, the TensorBoard events
(:mod:`wnrl.logger`) and ``checkpoints/`` (:mod:`wnrl.checkpoint`: the file format).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from wnrl import envs
from wnrl.checkpoint import CheckpointError, list_checkpoints, load_newest, save_checkpoint
from wnrl.config import CliError, CommonConfig, settings_changed
from wnrl.distributed import World, from_env, local_device
from wnrl.evaluate import EvaluationStopped, Evaluator
from wnrl.logger import Logger
from wnrl.schedules import LinearSchedule


class TrainingDiverged(RuntimeError):
    """A non-finite loss or parameter: the run stops without checkpointing the broken state."""


@dataclass
class Resume:
    """A run to continue: its directory, the checkpoint used and what it holds."""

    run_dir: Path
    path: Path
    state: dict[str, Any]
    warnings: list[str] = field(default_factory=list)  # printed once the run starts (Run.start)

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def changes(self, cfg: CommonConfig) -> list[dict[str, Any]]:
        """The run's settings history with ``cfg`` resuming it: the checkpoint's own (the changes made
        at earlier resumes that trained up to it), and, when ``cfg`` changes a setting that is not
        bookkeeping (``--total-steps``, ``--learning-rate``...), ``{"step": S, "fields": {name: [old,
        new]}}`` for this resume. Taken from the checkpoint, not config.json: a resume that died before
        its first checkpoint trained nothing that is kept, and its changes are not part of the run."""
        history = [dict(c) for c in self.state.get("changes", [])]
        before = self.state.get("config")
        changed = settings_changed(before, cfg.to_dict()) if isinstance(before, dict) else {}
        if changed:
            history.append({"step": self.step, "fields": changed})
        return history


def find_resume(run_dir: str | Path, agent: str) -> Resume:
    """The newest readable checkpoint of ``run_dir``, written by ``agent``. A newest file that is
    truncated (killed mid-write on a filesystem without atomic rename) falls back to the one before."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise CliError(f"--resume {run_dir}: not a run directory (no config.json)")
    paths = list_checkpoints(run_dir)
    if not paths:
        raise CliError(
            f"--resume {run_dir}: no checkpoint yet (stopped before its first); delete that directory and start "
            "the run again (left there, wnrl.plot would average it in as a repeat of its seed)"
        )
    path, state = load_newest(paths)
    if state["agent"] != agent:
        raise CheckpointError(f"{path}: written by {state['agent']}, not {agent}; resume it with that agent")
    return Resume(run_dir, path, state)


class Run:
    """One training run of ``agent`` with ``cfg``, new or continuing ``resume``. Made by
    :meth:`open`; used as a context manager. ``device``, ``rng`` (the generator the agent draws
    from) and ``env`` are there from the start; ``run_dir`` and ``logger`` once :meth:`start` ran."""

    def __init__(
        self,
        cfg: CommonConfig,
        agent: str,
        device: torch.device,
        rng: np.random.Generator,
        env: Any,
        resume: Resume | None = None,
        rank: int = 0,
        world: World | None = None,
        evaluator: Evaluator | None = None,
    ):
        self.cfg, self.agent, self.resume = cfg, agent, resume
        # Settings changed at resumes (Resume.changes): in config.json and every checkpoint, so plot
        # keeps a run whose settings changed partway apart from runs that had one setting throughout.
        self.changes = [] if resume is None else resume.changes(cfg)
        self.device, self.rng, self.env = device, rng, env
        self.world = world if world is not None else World(rank)
        self.rank = self.world.rank  # this process among the run's processes; a single process is rank 0
        self._stopped = False  # the ranks' agreed stop (sticky)
        self.start_step = resume.step if resume is not None else 0  # the step the training loop starts from
        self.run_dir: Path | None = resume.run_dir if resume is not None else None
        self.logger: Logger | None = None
        self._schedules: dict[str, LinearSchedule] = {}
        self._stop = StopRequest()
        self._log_due = Every(cfg.log_every, self.start_step)
        self._checkpoint_due = Every(cfg.checkpoint_every, self.start_step)
        self._throughput = Throughput(self.start_step)
        # --eval-every: the evaluator (the process that writes has one), when evaluations are due, the results
        self.evaluator = evaluator
        self._eval_due = Every(cfg.eval_every, self.start_step) if cfg.eval_every > 0 else None
        self.evaluations = EvaluationRecord()
        self.tracker: Any = None  # --track: wnrl.track.Tracker, in the process that writes

    @classmethod
    def open(cls, cfg: CommonConfig, agent: str, resume: Resume | None = None, rank: int = 0) -> Run:
        """Checks ``cfg``, picks the device, seeds every generator and makes the env: everything
        that can refuse bad input, before anything is written."""
        cfg.validate()
        device = local_device(resolve_device(cfg.device))
        world = from_env(device) if rank == 0 else World(rank)
        try:
            n_local = local_num_envs(cfg.num_envs, world.size)
            written_by = 1 if resume is None else int(resume.state.get("world_size", 1))
            if resume is not None and written_by != world.size:
                raise CliError(
                    f"--resume {resume.run_dir}: its checkpoint was written by {written_by} process(es), this run has "
                    f"{world.size}; resume it with the same torchrun --nproc-per-node/--nnodes (or without torchrun "
                    "for 1), or start a new run"
                )
            # Rank r's envs are seeded as envs r·n .. r·n+n−1 of a single process; its own generators
            # (actions, exploration) are seeded apart.
            rng = seed_everything(cfg.seed + RANK_SEED_STRIDE * world.rank)
            env = make_env(cfg.env, n_local, cfg.seed + world.rank * n_local, cfg.sticky_actions)
        except BaseException:
            world.close(clean=False)
            raise
        evaluator = None
        try:
            if cfg.eval_every > 0:
                world.prepare_waits()  # every rank: the others wait there while rank 0 evaluates
                if world.rank == 0:
                    evaluator = Evaluator(cfg, agent, env.env_id, device)
                    with isolated_rng(device):  # a probe of --eval-video's renderer draws from nothing of the run's
                        evaluator.check_video(env.single_observation_space.shape, env.family)
        except BaseException:
            env.close()
            world.close(clean=False)
            raise
        return cls(cfg, agent, device, rng, env, resume, world=world, evaluator=evaluator)

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run's files (directory, config.json, logs, checkpoints)."""
        return self.rank == 0

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        clean = exc[0] is None
        self._stop.__exit__()
        try:
            if self.logger is not None:
                self.logger.close()
            if self.tracker is not None:
                self.tracker.finish(clean, self.evaluator.last_video if self.evaluator is not None else None)
        finally:
            try:
                self.env.close()
                if self.evaluator is not None:
                    self.evaluator.close()
            finally:
                self.world.close(clean)

    @property
    def distributed(self) -> bool:
        """Whether this run has several processes (torchrun)."""
        return self.world.distributed

    def sync_batch_norm(self, net: nn.Module) -> nn.Module:
        """``--norm batch`` on several GPUs: torch's batch norm layers as SyncBatchNorm (statistics over
        all ranks' batch). On CPU (gloo) torch has no SyncBatchNorm: each rank normalizes with its own
        batch, and the running statistics are rank 0's (DDP broadcasts buffers at every forward)."""
        if self.distributed and self.device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return net

    def wrap(self, net: nn.Module) -> nn.Module:
        """``net`` for the gradient step: under DistributedDataParallel with several ranks (rank 0's
        weights broadcast now, gradients averaged at every backward; batch norm made SyncBatchNorm
        before), ``net`` itself in a single process. Act with ``net``, learn through what this returns."""
        if not self.distributed:
            return net
        return self.world.wrap(net, self.device)

    # Before start(): what a resumed run continues from.

    def restore(self, **modules: Any) -> None:
        """A resumed run: ``load_state_dict`` of each named part of its checkpoint into the module
        given for it (``model=q, optimizer=optimizer``), with a one-line CheckpointError for a
        checkpoint of another env or one that does not fit. A new run: nothing."""
        if self.resume is None:
            return
        resume = self.resume
        # An optimizer's state_dict carries its param_groups' settings (lr, eps, betas, alpha), which
        # would silently replace what this run's config (and config.json) says: the config's settings
        # are kept, the checkpoint's statistics (moments, step counts) taken.
        settings = {k: _settings(m) for k, m in modules.items() if isinstance(m, torch.optim.Optimizer)}
        if resume.state.get("env") != self.env.env_id:
            raise CheckpointError(f"{resume.path}: written for env {resume.state.get('env')}, not {self.env.env_id}")
        for key, module in modules.items():
            if key not in resume.state:
                raise CheckpointError(f"{resume.path}: has no {key!r} state")
            try:
                module.load_state_dict(resume.state[key])
                if isinstance(module, torch.optim.Optimizer):
                    _apply_settings(module, settings[key])
            except (RuntimeError, ValueError, KeyError) as e:
                first = str(e).strip().splitlines()[-1].strip() if str(e).strip() else type(e).__name__
                raise CheckpointError(
                    f"{resume.path}: {key} does not match this network/config ({first[:160]})"
                ) from None

    def restored(self, key: str, default: Any) -> Any:
        """What a resumed run's checkpoint holds under ``key`` (an agent's counters); ``default`` for a new run."""
        return default if self.resume is None else self.resume.state[key]

    def schedule(self, name: str, make: Callable[[Any], LinearSchedule]) -> LinearSchedule:
        """``make(cfg)``, saved under ``name`` with every checkpoint. A resumed run's schedule is its
        (possibly extended) config's, not the checkpoint's: see :mod:`wnrl.schedules`."""
        self._schedules[name] = make(self.cfg)
        return self._schedules[name]

    def start(self) -> None:
        """From here on the run writes: a new run's directory (never an existing one) or the resumed
        one, its config.json and the logger (a resumed run's TensorBoard log is cut after its
        checkpoint's step, so the curves go on without duplicated or overlapping steps). A resumed
        run gets back its RNG states and episode counts. Then SIGINT and SIGTERM stop the training
        loop after its current step (:attr:`stop_requested`) instead of the process."""
        cfg = self.cfg
        config = {"agent": self.agent, **cfg.to_dict(), **({"changes": self.changes} if self.changes else {})}
        if self.run_dir is None:
            made: str | CliError = ""
            if self.is_writer:
                name = cfg.run_name or default_run_name(self.env.env_id, self.agent, cfg.norm, cfg.seed)
                try:
                    made = str(new_run_dir(cfg.logdir, name))
                except CliError as e:
                    made = e
            made = self.world.broadcast_object(made)  # every rank learns rank 0's directory (or its error)
            if isinstance(made, CliError):
                raise made
            self.run_dir = Path(made)
        if self.is_writer:
            (self.run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            for line in self.resume.warnings if self.resume is not None else ():
                print(line, file=sys.stderr)
            if self.changes and self.changes[-1]["step"] == self.start_step:
                changed = "; ".join(f"{k} {_show(a)} -> {_show(b)}" for k, (a, b) in self.changes[-1]["fields"].items())
                print(
                    f"note: resuming at step {self.start_step:,} with changed settings ({changed}): config.json "
                    'records it under "changes", and wnrl.plot keeps this run apart from runs without the change',
                    file=sys.stderr,
                )
            if self.evaluator is not None:
                self.evaluator.video_dir = self.run_dir / "videos"
            if cfg.track:
                from wnrl.track import Tracker

                try:
                    self.tracker = Tracker.start(cfg, config, self.run_dir)
                except CliError:
                    if self.resume is None:  # W&B refused (no login, no network): no run was started
                        shutil.rmtree(self.run_dir, ignore_errors=True)
                    raise
        self.logger = Logger(
            self.run_dir,
            config,
            cfg.total_steps,
            start_step=self.start_step,
            progress=cfg.progress,
            eta_from=getattr(cfg, "learning_starts", 0),  # DQN's random play runs ~10× faster than its learning
            write=self.is_writer,
            collect=self.distributed and not self.is_writer,
            track=self.tracker.log if self.tracker is not None else None,
        )
        if self.resume is not None:
            state = self.resume.state
            self.evaluations = EvaluationRecord.from_state(state.get("eval"))
            self.logger.episodes = int(state.get("episodes", 0))
            self.logger.recent_returns.extend(state.get("recent_returns", torch.zeros(0)).tolist())
            if self.distributed:
                # The checkpoint holds rank 0's generators only: each rank draws anew, seeded apart.
                self.rng = seed_everything(cfg.seed + RANK_SEED_STRIDE * self.rank + 7 * self.start_step)
            else:
                _restore_rng(self.rng, state["rng"], self.device)
        self._throughput = Throughput(self.start_step)
        self._stop.__enter__()

    # The training loop's questions and duties.

    @property
    def stop_requested(self) -> bool:
        """A SIGINT or SIGTERM came: finish the step, write the final checkpoint and return.

        With several ranks, all ranks ask it at the same point of the loop: the answer is the
        agreement of all ranks (a signal to any one stops all), and the other ranks' finished
        episodes reach rank 0's logger with it."""
        if not self._stopped:
            self._sync()
        return self._stopped

    def _sync(self) -> None:
        """Stop flags and finished episodes of all ranks: one collective (nothing in a single process)."""
        if not self.distributed:
            self._stopped = bool(self._stop)
            return
        pending = self.logger.take_pending() if self.logger is not None else []
        everyone = self.world.gather_objects((bool(self._stop), pending))
        self._stopped = any(flag for flag, _ in everyone)
        if self.is_writer and self.logger is not None:
            for _, episodes in everyone[1:]:
                for ret, length, step in episodes:
                    self.logger.episode(ret, length, step)

    def log_due(self, step: int) -> bool:
        """Once per ``log_every`` agent steps (at the same steps after a resume), and at the last step."""
        return self._log_due.due(step) or step >= self.cfg.total_steps

    def checkpoint_due(self, step: int) -> bool:
        """Once per ``checkpoint_every`` agent steps, except at the last step (the final checkpoint's)."""
        return self._checkpoint_due.due(step) and step < self.cfg.total_steps

    def evaluate_due(self, step: int) -> bool:
        """``--eval-every``: once per ``eval_every`` agent steps (at the same steps after a resume), and at
        the last step."""
        return self._eval_due is not None and (self._eval_due.due(step) or step >= self.cfg.total_steps)

    def evaluate(self, step: int, net: nn.Module) -> None:
        """Evaluates ``net`` at ``step`` (:class:`~wnrl.evaluate.Evaluator`) in the process that writes and
        logs ``eval/episodic_return`` (the mean), ``eval/episodic_return_per_game`` (each game),
        ``eval/episodic_length`` and ``eval/seconds``; the best so far goes into the checkpoints and the
        summary. Nothing of the training run changes: the evaluation plays on envs and with a network and
        generators of its own, the global generators (Python's, numpy's, torch's) are put back as they
        were, and its time is left out of ``charts/SPS``. A stop (signal, time limit) during the games
        drops the evaluation. The other ranks wait for rank 0 (without the collectives' timeout)."""
        if self.evaluator is not None:
            start = time.perf_counter()
            try:
                with isolated_rng(self.device):
                    result = self.evaluator(net, step, stop=lambda: bool(self._stop))
            except EvaluationStopped:
                result = None
            seconds = time.perf_counter() - start
            self._throughput.time += seconds  # charts/SPS: the training's throughput
            if result is not None:
                self.evaluations.add(result["mean"], step)
                self.logger.scalars(
                    {
                        "eval/episodic_return": result["mean"],
                        "eval/episodic_length": result["mean_length"],
                        "eval/seconds": seconds,
                    },
                    step,
                )
                for score in result["scores"]:
                    self.logger.scalar("eval/episodic_return_per_game", score, step)
                self.logger.last_eval = result["mean"]
        self.world.wait_for_rank0()

    def sps(self, step: int) -> float:
        """Agent steps per second since the last call (or since :meth:`start`)."""
        return self._throughput.sps(step)

    def check_finite(self, step: int, net: nn.Module, *losses: torch.Tensor) -> None:
        """Raises TrainingDiverged, naming the step and the last good checkpoint, if a loss or a
        parameter of ``net`` is not finite."""
        bad = [t for t in losses if not bool(torch.isfinite(t).all())]
        bad_params = [n for n, p in net.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad or bad_params:
            what = f"parameters ({', '.join(bad_params[:3])})" if bad_params else "loss"
            last = list_checkpoints(self.run_dir)
            keep = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"non-finite {what} at step {step}; stopped, {keep}; "
                "resume from it with a lower --learning-rate or --max-grad-norm"
            )

    def checkpoint(self, save: Callable[[], None], final: bool = False) -> None:
        """Runs ``save`` (the agent's: it calls :meth:`save_checkpoint`) in the process that writes.
        A failure to write (disk full) leaves the previous checkpoint valid and, except for the
        final checkpoint, lets training go on. With several ranks every rank calls it (at the same
        step): rank 0's checkpoint then counts every rank's episodes."""
        if self.distributed:
            self._sync()
        if not self.is_writer:
            return
        try:
            save()
        except OSError as e:
            if final:
                raise CliError(
                    f"could not write the final checkpoint ({e.strerror}); the previous one is kept"
                ) from None
            print(f"warning: checkpoint not written ({e.strerror}); the previous one is kept", file=sys.stderr)

    def save_checkpoint(self, step: int, **parts: Any) -> Path:
        """The checkpoint of ``step``: who wrote it (agent, env, config), episode counts, RNG states,
        the schedules and the agent's ``parts`` (state dicts and counters)."""
        state = {
            "agent": self.agent,
            "env": self.env.env_id,
            "config": self.cfg.to_dict(),
            "changes": self.changes,
            "episodes": self.logger.episodes,
            "recent_returns": torch.tensor(list(self.logger.recent_returns), dtype=torch.float64),
            "rng": _rng_state(self.rng, self.device),
            "schedules": {name: s.to_list() for name, s in self._schedules.items()},
            "world_size": self.world.size,
            **self.evaluations.state(),
            **parts,
        }
        return save_checkpoint(self.run_dir, step, state)

    def summary(self, step: int, **extra: Any) -> dict[str, Any]:
        """What ``train`` returns: where the run is, how far it got and how it was doing."""
        return {
            "run_dir": self.run_dir,
            "steps": step,
            "episodes": self.logger.episodes,
            "mean_return": self.logger.mean_recent_return(),
            "recent_returns": list(self.logger.recent_returns),
            "interrupted": self._stopped or bool(self._stop),
            **({"eval": self.evaluations.summary()} if self.cfg.eval_every > 0 and self.is_writer else {}),
            **extra,
        }


def _settings(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Each param group's settings (everything but its parameters)."""
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def _apply_settings(optimizer: torch.optim.Optimizer, settings: list[dict[str, Any]]) -> None:
    for group, values in zip(optimizer.param_groups, settings, strict=True):
        group.update(values)


# Rank r's generators are seeded with seed + r · this (rank 0: the seed itself, as a single process).
RANK_SEED_STRIDE = 1_000_003


def _show(value: Any) -> str:
    """A setting's value in a one-line message: 5,000,000, 0.0007, true, [64, 64]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    return json.dumps(value) if not isinstance(value, (str, float)) else str(value)


def local_num_envs(num_envs: int, world_size: int) -> int:
    """This rank's share of ``--num-envs`` (the whole run's): an even split, or a CliError."""
    if num_envs % world_size:
        raise CliError(
            f"--num-envs {num_envs} is the whole run's number of envs and must split evenly over {world_size} "
            f"processes; use a multiple of {world_size}"
        )
    return num_envs // world_size


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks the GPU when torch sees one; ``cuda`` without a GPU is a clear error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise CliError(f"unknown --device {spec!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError("--device cuda but torch sees no CUDA GPU (CPU-only build or no driver); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CliError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s) visible")
    elif device.type != "cpu":
        raise CliError(f"unsupported --device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device


def seed_everything(seed: int) -> np.random.Generator:
    """Seeds Python, numpy and torch; returns the numpy generator the agent draws from."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def make_env(env_id: str, num_envs: int, seed: int | None, sticky_actions: float = 0.0):
    """The vector env an agent trains on: the game, the number of envs, the seed and (Atari, MinAtar)
    sticky actions; an env with other than discrete actions is a CliError."""
    family, _ = envs.resolve(env_id)
    options = {}
    if family == "atari":
        options = {"repeat_action_probability": sticky_actions}
    elif family == "minatar":
        options = {"sticky_action_prob": sticky_actions}
    env = envs.make(env_id, num_envs, seed=seed, **options)
    if not isinstance(env.single_action_space, gym.spaces.Discrete):
        env.close()
        raise CliError(f"{env_id} has actions {env.single_action_space}; wnrl's agents need discrete actions")
    return env


def default_run_name(env_id: str, agent: str, norm: str, seed: int) -> str:
    safe_env = re.sub(r"[^A-Za-z0-9_.-]+", "-", env_id)
    return f"{safe_env}__{agent}__{norm}__s{seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def new_run_dir(logdir: str, name: str) -> Path:
    """Creates ``logdir/name``; refuses an existing one (never overwrite a run) or an unwritable logdir."""
    if not name or "/" in name or name in (".", ".."):
        raise CliError(f"--run-name {name!r} must be a plain directory name")
    root = Path(logdir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot create --logdir {logdir}: {e.strerror}; choose a writable directory") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise CliError(f"--logdir {logdir} is not writable; choose a writable directory")
    run_dir = root / name
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise CliError(
            f"run directory {run_dir} already exists; choose another --run-name, or resume it with --resume {run_dir}"
        ) from None
    return run_dir


class TimeLimit:
    """``--time-limit``: a run started inside ``with TimeLimit(seconds):`` stops as Ctrl-C would
    (its step finished, a checkpoint written) once its loop has run ``seconds``. The clock starts at
    :meth:`Run.start` (start-up is not counted). No signal is involved, so it also holds where SIGINT
    is ignored: jobs started in the background by a script or under nohup inherit an ignored SIGINT."""

    active: TimeLimit | None = None

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.reached = False
        # The run reached its training loop (Run.start installed the stop): ``wnrl.train`` reads it to
        # say whether a Ctrl-C that got through came before the loop (start-up) or after it.
        self.loop_started = False

    def __enter__(self) -> TimeLimit:
        TimeLimit.active = self
        return self

    def __exit__(self, *exc) -> None:
        TimeLimit.active = None


class StopRequest:
    """SIGINT/SIGTERM ask the training loop to stop after the current step, checkpoint and return;
    so does the active :class:`TimeLimit` once its time is up.

    A second signal while stopping is ignored: the checkpoint being written must finish."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._limit: TimeLimit | None = None
        self._deadline: float | None = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        self._limit = TimeLimit.active
        if self._limit is not None:
            self._limit.loop_started = True
            if self._limit.seconds is not None:
                self._deadline = time.monotonic() + self._limit.seconds
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __bool__(self) -> bool:
        if self.signum is None and self._deadline is not None and time.monotonic() >= self._deadline:
            self._limit.reached = True
            self._deadline = None
            self.signum = 0  # stopped, by no signal
        return self.signum is not None

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            # None: a handler installed outside Python (an embedding program's): Python's own is put back
            if handler is None:
                handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, handler)
        self._previous.clear()
        self._deadline = None


@dataclass
class EvaluationRecord:
    """The evaluations of a run so far (``--eval-every``): how many, the best mean and its step, the last."""

    count: int = 0
    best: float | None = None
    best_step: int | None = None
    last: float | None = None
    last_step: int | None = None

    def add(self, mean: float, step: int) -> None:
        self.count += 1
        self.last, self.last_step = mean, step
        if self.best is None or mean > self.best:
            self.best, self.best_step = mean, step

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (nothing before the first evaluation)."""
        return {"eval": self.summary()} if self.count else {}

    def summary(self) -> dict[str, Any]:
        return {
            "evaluations": self.count,
            "best": self.best,
            "best_step": self.best_step,
            "last": self.last,
            "last_step": self.last_step,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> EvaluationRecord:
        if not state:
            return cls()
        return cls(state["evaluations"], state["best"], state["best_step"], state["last"], state["last_step"])


@contextmanager
def isolated_rng(device: torch.device | None = None):
    """Whatever runs inside draws from the global generators (Python's, numpy's, torch's on the CPU and on
    ``device``'s GPU) without moving them for what runs after: their states are put back on the way out."""
    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(device) if device is not None and device.type == "cuda" else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)


class Every:
    """Fires once per ``period`` agent steps, counting from multiples of it (so a resumed run keeps
    the same logging and checkpoint steps)."""

    def __init__(self, period: int, step: int = 0):
        self.period = period
        self.next = (step // period + 1) * period

    def due(self, step: int) -> bool:
        """Whether a multiple of ``period`` was reached since the last time it fired. Periods passed
        without a call (an agent's data-init rollouts skip the checks) fire once, not once per call
        until it catches up: the next is the first multiple above ``step``, as on a resume."""
        if step < self.next:
            return False
        self.next = (step // self.period + 1) * self.period
        return True


class Throughput:
    """Agent steps per second since the last call of ``sps``."""

    def __init__(self, step: int = 0):
        self.step, self.time = step, time.perf_counter()

    def sps(self, step: int) -> float:
        now = time.perf_counter()
        rate = (step - self.step) / max(now - self.time, 1e-9)
        self.step, self.time = step, now
        return rate


def _rng_state(rng: np.random.Generator, device: torch.device | None = None) -> dict[str, Any]:
    """RNG states in a form ``torch.load(weights_only=True)`` reads back: the run's numpy generator,
    torch's CPU generator and, on a GPU, torch's generator of ``device`` (A2C and PPO draw their
    actions there)."""
    state = {"numpy": json.dumps(rng.bit_generator.state), "torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(rng: np.random.Generator, state: dict[str, Any], device: torch.device | None = None) -> None:
    """Puts back what :func:`_rng_state` saved. A run resumed on a GPU from a checkpoint written
    without one (or on another kind of device) keeps the GPU generator as the run's seed set it."""
    rng.bit_generator.state = json.loads(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
