"""One place for run output: TensorBoard scalars, the config as text, a console progress bar.

Which process writes is the run's decision (:class:`wnrl.run.Run`); a logger made with
``write=False`` only counts episodes and returns, and writes nothing."""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from wnrl.dormant import dormant_fractions
from wnrl.layers import WNDirections


def wait_to_sort_last(run_dir: Path, max_wait: float = 2.0) -> None:
    """Sleep until an event file made now sorts after every one in ``run_dir``.

    An event file is named ``events.out.tfevents.<whole seconds>.<host>.<pid>.<n>``, and TensorBoard
    reads a run's files in name order. A run resumed within the second its killed predecessor
    started writes a file with the same seconds, and the pids decide the order: the resumed curve
    could be read first, its purge of the old steps then applying to nothing and the old steps
    appended after it. Waiting for the next second (at most ``max_wait``; a file stamped further
    ahead comes from a clock that was moved, which no wait fixes) keeps the order the steps had."""
    stamps = []
    for f in run_dir.glob("events.out.tfevents.*"):
        part = f.name.split(".")[3]
        if part.isdigit():
            stamps.append(int(part))
    if stamps:
        wait = max(stamps) + 1 - time.time()
        if 0 < wait <= max_wait:
            time.sleep(wait)


class Logger:
    """Tags are namespaced: ``charts/…`` (returns, SPS, schedules), ``losses/…``, ``wn/…``,
    ``directions/…``, ``dormant/…``."""

    def __init__(
        self,
        run_dir: Path | None,
        config: dict[str, Any],
        total_steps: int,
        start_step: int = 0,
        progress=True,
        eta_from: int = 0,
        write: bool = True,
        collect: bool = False,
        track=None,
    ):
        """``eta_from``: the step from which the throughput is the run's own (DQN: ``learning_starts``;
        random play before it runs ~10× faster than learning). The progress bar shows no ETA before
        it, and after it an ETA from the throughput of the last minute. ``write=False``: no
        TensorBoard file and no progress bar (``run_dir`` is not touched). ``collect``: finished
        episodes are also kept for :meth:`take_pending` (a rank of a multi-process run hands them to
        rank 0's logger, which logs them with :meth:`episode`). ``track``: called with every scalar the
        logger writes, ``track(values, step)`` (``--track``: :class:`wnrl.track.Tracker`)."""
        # purge_step drops the events a killed run wrote after its last checkpoint (steps above
        # start_step), so resumed curves continue without overlapping steps. TensorBoard reads a run's
        # event files in name order, so the new one must sort after the killed run's (see
        # wait_to_sort_last).
        if write and run_dir is not None and start_step > 0:
            wait_to_sort_last(Path(run_dir))
        self.writer = (
            SummaryWriter(str(run_dir), purge_step=start_step + 1 if start_step > 0 else None) if write else None
        )
        if self.writer is not None:
            # at the start, and again at each resume's step: a resume may change --total-steps, the
            # learning rate or the optimizer's settings, and TensorBoard shows each step's table
            table = "\n".join(f"| {k} | {json.dumps(v)} |" for k, v in config.items())
            self.writer.add_text("config", "| field | value |\n|---|---|\n" + table, start_step)
        self.track = track if write else None
        self.last_eval: float | None = None  # the last evaluation's mean (--eval-every), shown on the bar
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.episodes = 0
        self.collect = collect
        self._pending: list[tuple[float, int, int]] = []
        self.total_steps, self.eta_from = total_steps, eta_from
        self._eta_wait = "after learning starts"
        self._marks: deque[tuple[float, int]] = deque()  # (time, step) of the last minute, from eta_from on
        self.bar = tqdm(
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
            total=total_steps,
            initial=start_step,
            disable=not (progress and write),
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self._bar_step = start_step

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars({tag: value}, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for tag, v in values.items():
                self.writer.add_scalar(tag, v, step)
        if self.track is not None:
            self.track(values, step)

    def wn_diagnostics(self, directions: WNDirections, step: int) -> None:
        """``wn/<layer>/g_mean``, ``v_norm_mean``, ``angle_per_update`` and ``angle_one_update`` (degrees:
        how far the directions turn per update) of each weight-normalized layer, and
        ``directions/<layer>/w_norm_mean`` and the same angles of each plain dense or conv layer,
        from the net's :class:`~wnrl.layers.WNDirections`."""
        if self.writer is not None:
            self.scalars(directions.diagnostics(), step)

    def dormant(self, net: nn.Module, obs: torch.Tensor, step: int) -> dict[str, float]:
        """``dormant/<layer>/tau_0`` and ``tau_0.025``: the fraction of each hidden layer's units that
        are τ-dormant on ``obs`` (:func:`~wnrl.dormant.dormant_fractions`: one extra forward, no
        gradients, eval mode). Computed only by the process that writes; returns the tags (empty
        for the others)."""
        if self.writer is None:
            return {}
        values = dormant_fractions(net, obs)
        self.scalars(values, step)
        return values

    def episodes_from(self, info: dict[str, np.ndarray], step: int) -> None:
        """Logs every game that ended on this env step (raw score and length, per whole game)."""
        for k in np.flatnonzero(info["episode_end"]):
            self.episode(float(info["episode_return"][k]), int(info["episode_length"][k]), step)

    def episode(self, ret: float, length: int, step: int) -> None:
        """One finished game: its raw score and length, at ``step``."""
        self.scalars({"charts/episodic_return": ret, "charts/episodic_length": length}, step)
        self.recent_returns.append(ret)
        self.episodes += 1
        if self.collect:
            self._pending.append((ret, length, step))

    def take_pending(self) -> list[tuple[float, int, int]]:
        """The episodes finished since the last call (``collect=True``), as (return, length, step)."""
        pending, self._pending = self._pending, []
        return pending

    def mean_recent_return(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def progress(self, step: int, sps: float) -> None:
        self.bar.update(step - self._bar_step)
        self._bar_step = step
        post = {"sps": f"{sps:,.0f}", "episodes": self.episodes, "eta": self.eta(step)}
        if self.recent_returns:
            post["return"] = f"{self.mean_recent_return():.2f}"
        if self.last_eval is not None:
            post["eval"] = f"{self.last_eval:.2f}"
        self.bar.set_postfix(post, refresh=False)

    def wait_for(self, step: int, why: str) -> None:
        """No ETA before ``step`` (the agent steps then run at another speed than learning's); the bar
        says ``why`` instead, e.g. "after the replay refills"."""
        self.eta_from, self._eta_wait = step, why

    def eta(self, step: int, now: float | None = None) -> str:
        """Time left at the throughput of the last minute, as h:mm:ss; before ``eta_from`` (or with
        less than two marks to measure from) a word saying why there is none yet."""
        if step < self.eta_from:
            return self._eta_wait
        now = time.perf_counter() if now is None else now
        self._marks.append((now, step))
        while len(self._marks) > 2 and now - self._marks[1][0] >= 60.0:
            self._marks.popleft()
        (t0, s0), (t1, s1) = self._marks[0], self._marks[-1]
        if s1 <= s0 or t1 <= t0:
            return "measuring"
        left = max(self.total_steps - step, 0) * (t1 - t0) / (s1 - s0)
        h, rem = divmod(int(left), 3600)
        return f"{h}:{rem // 60:02d}:{rem % 60:02d}"

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
