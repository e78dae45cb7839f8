"""``--track``: a run sent to Weights & Biases, as CleanRL's ``--track`` does (``pip install wnrl[track]``).

The process that writes the run (rank 0 under torchrun) opens one W&B run named after the run directory,
in ``--wandb-project`` (and ``--wandb-entity``), with the whole config as its config. Every scalar the
run's logger writes to TensorBoard goes to W&B too, against the agent step (``global_step``, W&B's x-axis
for every chart), and the last ``--eval-video`` is uploaded when the run ends. A resumed run continues the
same W&B run (its id is kept in ``RUN_DIR/wandb-id``). W&B's own settings apply: ``WANDB_MODE=offline``
keeps everything on disk (``wandb sync`` uploads it later), ``WANDB_DIR`` says where (default: the run
directory), ``WANDB_API_KEY`` or ``wandb login`` who.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from pathlib import Path
from typing import Any

from wnrl.config import CliError

MISSING = (
    "--track sends the run to Weights & Biases, whose client is not installed here: pip install 'wnrl[track]' "
    "(or pip install wandb)"
)
ID_FILE = "wandb-id"
STEP = "global_step"


def check_installed() -> None:
    """A CliError saying how to install the extra, if wandb is not importable (it is not imported here)."""
    if importlib.util.find_spec("wandb") is None:
        raise CliError(MISSING)


class Tracker:
    """One W&B run: :meth:`log` every scalar at its agent step, :meth:`finish` with the last video."""

    def __init__(self, wandb: Any, run: Any):
        self.wandb, self.run = wandb, run

    @classmethod
    def start(cls, cfg: Any, config: dict[str, Any], run_dir: Path) -> Tracker:
        """The W&B run of ``run_dir`` (a new one, or the one a resumed run started)."""
        try:
            import wandb
        except ImportError:
            raise CliError(MISSING) from None
        id_file = Path(run_dir) / ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        if run_id is None:
            run_id = secrets.token_hex(4)  # W&B's kind of id: 8 characters of [0-9a-z]
            id_file.write_text(run_id + "\n")
        try:
            run = wandb.init(
                project=cfg.wandb_project,
                entity=cfg.wandb_entity,
                name=Path(run_dir).name,
                id=run_id,
                resume="allow",
                config=config,
                dir=None if os.environ.get("WANDB_DIR") else str(run_dir),
                job_type="train",
            )
        except Exception as e:  # no login, no network in online mode, a bad project name
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise CliError(
                f"--track: W&B did not start the run ({first}); run `wandb login`, or set WANDB_MODE=offline"
            ) from None
        run.define_metric(STEP)
        run.define_metric("*", step_metric=STEP)
        return cls(wandb, run)

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log({**values, STEP: step})

    def finish(self, ok: bool = True, video: Path | None = None) -> None:
        """Uploads ``video`` (an --eval-video mp4) and closes the run (marked failed unless ``ok``)."""
        try:
            if video is not None and Path(video).is_file():
                self.run.log({"eval/video": self.wandb.Video(str(video), format="mp4")})
        finally:
            self.run.finish(exit_code=0 if ok else 1)
