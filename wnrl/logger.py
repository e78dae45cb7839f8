"""One place for run output: TensorBoard scalars, the config as text, a console progress bar."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


class Logger:
    """Tags are namespaced: ``charts/…`` (returns, SPS, schedules), ``losses/…``, ``wn/…``."""

    def __init__(self, run_dir: Path, config: dict[str, Any], total_steps: int, start_step: int = 0, progress=True):
        # purge_step drops the events a killed run wrote after its last checkpoint (steps above
        # start_step), so resumed curves continue without overlapping steps.
        self.writer = SummaryWriter(str(run_dir), purge_step=start_step + 1 if start_step > 0 else None)
        if start_step == 0:
            table = "\n".join(f"| {k} | {json.dumps(v)} |" for k, v in config.items())
            self.writer.add_text("config", "| field | value |\n|---|---|\n" + table, 0)
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.episodes = 0
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            disable=not progress,
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self._bar_step = start_step

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, v in values.items():
            self.writer.add_scalar(tag, v, step)

    def episodes_from(self, info: dict[str, np.ndarray], step: int) -> None:
        """Logs every game that ended on this env step (raw score and length, per whole game)."""
        for k in np.flatnonzero(info["episode_end"]):
            ret, length = float(info["episode_return"][k]), int(info["episode_length"][k])
            self.writer.add_scalar("charts/episodic_return", ret, step)
            self.writer.add_scalar("charts/episodic_length", length, step)
            self.recent_returns.append(ret)
            self.episodes += 1

    def mean_recent_return(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def progress(self, step: int, sps: float) -> None:
        self.bar.update(step - self._bar_step)
        self._bar_step = step
        post = {"sps": f"{sps:,.0f}", "episodes": self.episodes}
        if self.recent_returns:
            post["return"] = f"{self.mean_recent_return():.2f}"
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        self.bar.close()
        self.writer.flush()
        self.writer.close()
