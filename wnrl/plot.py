"""``python -m wnrl.plot RUN_DIR... -o curves.png``: learning curves from TensorBoard event files.

Each argument is a run directory or a directory holding runs. Runs are grouped by the experiment they
ran: their agent, env and every field of their ``config.json`` except the bookkeeping below, so only
runs that differ in nothing but the seed share a group. Groups of one agent and env are drawn in one
panel, each labelled by its norm and the fields in which the panel's groups differ, and the panel
says in one line which fields those are. A group is drawn as the mean over its distinct seeds (a
seed's repeated runs averaged first) with a 95% bootstrap band of that mean where it has ≥ 2 seeds,
episodic return against agent steps.

``--summary`` reports per group and game the mean ± std over distinct seeds (never a std over one
seed), with columns for the evaluations (``eval/episodic_return``: each seed's best and last evaluation)
when runs logged them (``--eval-every``), and across games the interquartile mean of normalized scores
with a stratified-bootstrap 95% interval (Agarwal et al., 2021, "Deep RL at the edge of the statistical
precipice"; implemented here in numpy: ``iqm``, ``stratified_bootstrap_ci``).

``--export DIR`` writes each run's games (episodes.csv: step,return,length) and config.json to
DIR/<run name>/, a few kB that git holds where event files and checkpoints do not; every command here
reads such a directory as it reads the run, so statistics can be recomputed from committed data.

Bookkeeping, not part of an experiment (``BOOKKEEPING``): ``seed`` (what varies within a group),
``run_name``, ``logdir``, ``device``, ``progress``, ``log_every``, ``checkpoint_every``, ``compile``
(the same maths, compiled), ``save_replay`` and ``replay_on_device`` (where the replay buffer lives,
not what it holds), ``exported`` (what ``--export`` adds: where the data came from), the evaluations'
and tracking's settings (``eval_every``, ``eval_episodes``, ``eval_greedy``, ``eval_video``, ``track``,
``wandb_project``, ``wandb_entity``: the training run is the same with or without them). For a run
without weight norm, ``wn_init_norm``, ``wn_project`` and ``wn_head`` change nothing and are left
out too. Everything else, ``total_steps`` included (the exploration and learning-rate schedules
follow it), defines the experiment, and so does a run's settings history: a resume that changed a
setting (``--resume RUN --total-steps 5M`` on a 2M run, a new ``--learning-rate``) records it in
config.json's ``changes``, and such a run is a group of its own, labelled "changed at 2M: total_steps
2M→5M" (runs without a change: "unchanged" where the two meet in one panel).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from wnrl.config import BOOKKEEPING, CliError
from wnrl.nets import NORMS

TAG = "charts/episodic_return"
# --eval-every's evaluations: the mean return of each evaluation's games, at its step
EVAL_TAG = "eval/episodic_return"

# Salimans & Kingma (2016), Table 3: maximum evaluation scores of DQN with the normal
# parameterization, with weight normalization, and those Mnih et al. (2015) reported for Nature DQN.
PAPER_TABLE3: dict[str, tuple[str, int, int, int]] = {
    "Breakout": ("Breakout", 410, 403, 401),
    "Enduro": ("Enduro", 1_250, 1_448, 302),
    "Seaquest": ("Seaquest", 7_188, 7_375, 5_286),
    "SpaceInvaders": ("Space Invaders", 1_779, 2_179, 1_975),
}
# deep_q_rl, from which the paper's DQN was adapted, trains in epochs of 250,000 agent steps and
# evaluates after each.
EPOCH_STEPS = 250_000
# Training's last line reports the mean return of the last 100 games (wnrl.logger.Logger.recent_returns).
LAST_EPISODES = 100


# Random and human scores of the Atari-57 games, by ALE ROM id: the table of DeepMind's DQN Zoo
# (dqn_zoo/atari_data.py, "Atari-57" human and random performance, as used by Badia et al., 2020, Agent57,
# and by Agarwal et al., 2021), 108,000-frame episodes started with 1-30 no-ops. Normalized score:
# (score - random) / (human - random).
ATARI_RANDOM_HUMAN: dict[str, tuple[float, float]] = {
    "alien": (227.8, 7127.7), "amidar": (5.8, 1719.5), "assault": (222.4, 742.0), "asterix": (210.0, 8503.3),
    "asteroids": (719.1, 47388.7), "atlantis": (12850.0, 29028.1), "bank_heist": (14.2, 753.1),
    "battle_zone": (2360.0, 37187.5), "beam_rider": (363.9, 16926.5), "berzerk": (123.7, 2630.4),
    "bowling": (23.1, 160.7), "boxing": (0.1, 12.1), "breakout": (1.7, 30.5), "centipede": (2090.9, 12017.0),
    "chopper_command": (811.0, 7387.8), "crazy_climber": (10780.5, 35829.4), "defender": (2874.5, 18688.9),
    "demon_attack": (152.1, 1971.0), "double_dunk": (-18.6, -16.4), "enduro": (0.0, 860.5),
    "fishing_derby": (-91.7, -38.7), "freeway": (0.0, 29.6), "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2412.5), "gravitar": (173.0, 3351.4), "hero": (1027.0, 30826.4),
    "ice_hockey": (-11.2, 0.9), "jamesbond": (29.0, 302.8), "kangaroo": (52.0, 3035.0), "krull": (1598.0, 2665.5),
    "kung_fu_master": (258.5, 22736.3), "montezuma_revenge": (0.0, 4753.3), "ms_pacman": (307.3, 6951.6),
    "name_this_game": (2292.3, 8049.0), "phoenix": (761.4, 7242.6), "pitfall": (-229.4, 6463.7),
    "pong": (-20.7, 14.6), "private_eye": (24.9, 69571.3), "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 17118.0), "road_runner": (11.5, 7845.0), "robotank": (2.2, 11.9),
    "seaquest": (68.4, 42054.7), "skiing": (-17098.1, -4336.9), "solaris": (1236.3, 12326.7),
    "space_invaders": (148.0, 1668.7), "star_gunner": (664.0, 10250.0), "surround": (-10.0, 6.5),
    "tennis": (-23.8, -8.3), "time_pilot": (3568.0, 5229.2), "tutankham": (11.4, 167.6),
    "up_n_down": (533.4, 11693.2), "venture": (0.0, 1187.5),
    "video_pinball": (16256.9, 17667.9),  # DQN Zoo's random figure; other tables give 0.0
    "wizard_of_wor": (563.5, 4756.5), "yars_revenge": (3092.9, 54576.9), "zaxxon": (32.5, 9173.3),
}  # fmt: skip
# MinAtar (Young & Tian, 2019), by the game in its gymnasium id ("MinAtar/Breakout-v1"): (random, reference).
# Random: uniform random actions from the env's action space, played through wnrl's own env
# (envs.make("MinAtar/<Game>", num_envs=16, seed=12345): the -v1 minimal action set, sticky actions 0.1,
# difficulty ramping), 1,008 games per game (each env's first 63, so short games are not over-counted):
# mean ± standard error Asterix 0.477 ± 0.026, Breakout 0.398 ± 0.021, Freeway 0.387 ± 0.019,
# Seaquest 0.090 ± 0.012, SpaceInvaders 4.11 ± 0.10 (the 1,000-game cap came before a 2% standard error).
# Reference: the paper's DQN (its examples/dqn.py: 5M frames, ε 1 → 0.1, 30 runs) at the end of training,
# read off the learning curves in MinAtar's README (github.com/kenjyoung/MinAtar, img/learning_curves.gif,
# commit 87c2bc8 "...results in README.md to be consistent with most recent paper"; "moving average of
# returns over 100 episodes", the DQN curve over its last 0.1M frames, digitized from the figure's
# pixels: about ±0.3 for most games, ±1 for SpaceInvaders). It is not a printed number: no table with
# these scores was found. Its runs played the full 6-action set (-v0; the README: "the results included
# in this repo and the associated paper use the full action set of 6 actions"), sticky actions 0.1 and
# difficulty ramping (minatar.Environment's defaults, which examples/dqn.py keeps); its Seaquest is
# MinAtar <= 1.0.10's, whose oxygen bar flashed full a step before running out (fixed in 1.0.11).
# -v0 runs use the same pair; random play there (same protocol) scores Asterix 0.472 ± 0.027, Breakout
# 0.529 ± 0.024, Freeway 0.164 ± 0.013, SpaceInvaders 2.83 ± 0.07 (Seaquest's minimal set is all 6 actions).
# A game with None is reported unnormalized and left out of the IQM.
MINATAR_RANDOM_REFERENCE: dict[str, tuple[float | None, float | None]] = {
    "Asterix": (0.477, 16.8),
    "Breakout": (0.398, 10.1),
    "Freeway": (0.387, 50.2),
    "Seaquest": (0.090, 20.0),
    "SpaceInvaders": (4.11, 43.6),
}


def find_runs(paths: list[str]) -> list[Path]:
    """Run directories (holding ``config.json``) at or under ``paths``, each once (a run named twice,
    itself and under its parent, is not a repeat of its seed)."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise CliError(f"{p}: no such directory")
        if (p / "config.json").is_file():
            runs.append(p)
        else:
            runs += sorted(c.parent for c in p.rglob("config.json"))
    seen: set[Path] = set()
    return [r for r in runs if not (r.resolve() in seen or seen.add(r.resolve()))]


def event_files(run_dir: Path) -> list[Path]:
    """A run's TensorBoard event files in the order they were written: a resumed run adds a file after
    the killed run's. By the first event's wall time, except that the run's first file (the earliest
    without a restart mark: a resume's file opens with one) comes first whatever the clocks said (a
    resume on a machine whose clock is behind the first run's)."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    def opening(path: Path) -> tuple[float, bool]:
        started, restart = float("inf"), False
        for i, event in enumerate(LegacyEventFileLoader(str(path)).Load()):
            started = min(started, event.wall_time)
            restart |= event.HasField("session_log") and event.session_log.status == SessionLog.START
            if i >= 2:  # the file's version record, then the restart mark if it has one
                break
        return started, restart

    files = {f: opening(f) for f in run_dir.glob("events.out.tfevents.*")}
    by_time = sorted(files, key=lambda f: (files[f][0], f.name))
    first = next((f for f in by_time if not files[f][1]), None)  # the first run's file: no restart mark
    return ([first] if first else []) + [f for f in by_time if f != first]


_SCALARS: dict[tuple[str, tuple], dict[str, tuple[np.ndarray, np.ndarray]]] = {}


def read_scalars(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar tag of a run as (steps, values), read across its event files in order.

    A resumed run (``--resume`` after a crash or ``kill -9``) continues from its last checkpoint in a
    new event file that opens with a restart mark at the first step it will write again (the
    logger's ``purge_step``). What earlier files logged from that step on came from the killed run
    after its checkpoint and is dropped, so each step keeps the resumed run's values; a file without
    the mark (an older writer) supersedes from the first step it logs. Several values at one step
    within a file are kept (games of several envs can end on the same agent step). TensorBoard's
    EventAccumulator does the same purge but warns about it ("out of order event.step") every time
    the run is read; this reader is quiet. Cached per run until its files change."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog
    from tensorboard.util import tensor_util

    files = event_files(Path(run_dir))
    if not files and (Path(run_dir) / EPISODES_CSV).is_file():
        return read_exported(Path(run_dir))
    key = (str(run_dir), tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if key in _SCALARS:
        return _SCALARS[key]
    merged: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def cut(points: dict[str, list[tuple[int, float]]], step: int) -> None:
        for tag, pts in points.items():
            points[tag] = [p for p in pts if p[0] < step]

    for f in files:
        own: dict[str, list[tuple[int, float]]] = defaultdict(list)
        restarted = False
        for event in LegacyEventFileLoader(str(f)).Load():
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                cut(merged, event.step)
                cut(own, event.step)
                restarted = True
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    own[v.tag].append((event.step, float(v.simple_value)))
                elif v.HasField("tensor") and v.metadata.plugin_data.plugin_name == "scalars":
                    own[v.tag].append((event.step, float(tensor_util.make_ndarray(v.tensor))))
        if not restarted and own:
            cut(merged, min(p[0] for pts in own.values() for p in pts))
        for tag, pts in own.items():
            merged[tag] += pts
    out = {}
    for tag, pts in merged.items():
        pts.sort(key=lambda p: p[0])  # stable: a step's values keep their order
        out[tag] = (np.array([p[0] for p in pts], np.float64), np.array([p[1] for p in pts], np.float64))
    _SCALARS[key] = out
    return out


# ------------------------------------------------------------------------------ exported runs
# ``--export DIR`` keeps what a learning claim needs of a run in a few kB that git can hold (event files
# and checkpoints stay out of it): DIR/<run name>/config.json (the run's, with an "exported" entry:
# where from, episodes, last step, wall-clock, median SPS), episodes.csv (step,return,length, one
# row per finished game) and diagnostics.csv (tag,step,value of the losses/, dormant/*/tau_0 and, if the
# run evaluated, eval/episodic_return scalars). ``plot`` and ``--summary`` read it as they read the run.
EPISODES_CSV = "episodes.csv"
# The learner's health, for claims about it (a critic that explains nothing, a trunk whose units died),
# and the evaluations' means: tag,step,value rows.
DIAGNOSTICS_CSV = "diagnostics.csv"


def _diagnostic(tag: str) -> bool:
    return tag == EVAL_TAG or tag.startswith("losses/") or (tag.startswith("dormant/") and tag.endswith("/tau_0"))


def wall_clock(run_dir: Path) -> float:
    """Seconds the run spent logging: per event file, its last event's wall time minus its first's,
    summed (a resumed run's files each count their own stretch, not the gap between them)."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    total = 0.0
    for f in event_files(run_dir):
        times = [e.wall_time for e in LegacyEventFileLoader(str(f)).Load()]
        total += (max(times) - min(times)) if times else 0.0
    return total


def export_run(run_dir: Path, out_root: Path) -> Path:
    """Writes ``out_root/<run name>/`` (config.json, episodes.csv, diagnostics.csv) from a run directory."""
    cfg = json.loads((run_dir / "config.json").read_text())
    scalars = read_scalars(run_dir)
    steps, returns = scalars.get(TAG, (np.zeros(0), np.zeros(0)))
    if not len(steps):
        raise CliError(f"{run_dir}: no finished game logged ({TAG}); nothing to export")
    _, lengths = scalars.get("charts/episodic_length", (np.zeros(0), np.zeros(0)))
    if len(lengths) != len(returns):
        lengths = np.full(len(returns), np.nan)
    sps_steps, sps = scalars.get("charts/SPS", (np.zeros(0), np.zeros(0)))
    cfg["exported"] = {
        "from": str(run_dir),
        "episodes": int(len(steps)),
        "last_step": int(steps[-1]),
        "last_logged_step": int(max(steps[-1], sps_steps[-1] if len(sps_steps) else 0)),  # trained_steps
        "wall_clock_s": round(wall_clock(run_dir), 1),
        "median_sps": round(float(np.median(sps)), 1) if len(sps) else None,
    }
    dest = out_root / run_dir.name
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    rows = ["step,return,length"] + [
        f"{int(s)},{r:.17g},{'' if np.isnan(n) else f'{n:.17g}'}" for s, r, n in zip(steps, returns, lengths)
    ]
    (dest / EPISODES_CSV).write_text("\n".join(rows) + "\n")
    diagnostics = ["tag,step,value"] + [
        f"{tag},{int(st)},{v:.6g}" for tag in sorted(scalars) if _diagnostic(tag) for st, v in zip(*scalars[tag])
    ]
    if len(diagnostics) > 1:
        (dest / DIAGNOSTICS_CSV).write_text("\n".join(diagnostics) + "\n")
    return dest


def read_exported(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The scalars an exported run keeps: episodic return and length, the diagnostics file's tags, and its
    median SPS (at the last step it logged, so ``trained_steps`` reads the same as from the run)."""
    import csv

    with open(run_dir / EPISODES_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        steps, returns, lengths = (
            np.array([float(r[c]) if r[c] not in ("", None) else np.nan for r in rows], np.float64)
            for c in ("step", "return", "length")
        )
    except (KeyError, ValueError) as e:
        raise CliError(f"{run_dir / EPISODES_CSV}: not an exported run's step,return,length table ({e})") from None
    out = {TAG: (steps, returns), "charts/episodic_length": (steps, lengths)}
    if (run_dir / DIAGNOSTICS_CSV).is_file():
        with open(run_dir / DIAGNOSTICS_CSV, newline="") as f:
            points: dict[str, list[tuple[float, float]]] = defaultdict(list)
            for r in csv.DictReader(f):
                points[r["tag"]].append((float(r["step"]), float(r["value"])))
        for tag, pts in points.items():
            out[tag] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    exported = json.loads((run_dir / "config.json").read_text()).get("exported", {})
    sps = exported.get("median_sps")
    if sps is not None and len(steps):  # at the last step the run logged (older exports: its last game's)
        at = float(exported.get("last_logged_step", steps[-1]))
        out["charts/SPS"] = (np.array([at]), np.array([float(sps)]))
    return out


def read_curve(run_dir: Path, tag: str = TAG) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one scalar tag; empty arrays if the run logged none."""
    return read_scalars(Path(run_dir)).get(tag, (np.zeros(0), np.zeros(0)))


def check_bins(bins: int) -> None:
    """``--bins`` is a number of points per curve: at least one."""
    if bins < 1:
        raise CliError(f"--bins {bins}: the number of points per curve must be at least 1 (default 50)")


def smooth_on_grid(steps: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Mean of the episodes that ended in each bin of ``grid``, carried forward over empty bins up to
    the bin of the run's last episode (NaN after it: a shorter run is not drawn past its end)."""
    out = np.full(len(grid), np.nan)
    idx = np.searchsorted(grid, steps, side="left").clip(0, len(grid) - 1)
    sums, counts = np.bincount(idx, values, len(grid)), np.bincount(idx, minlength=len(grid))
    have = counts > 0
    out[have] = sums[have] / counts[have]
    last = int(idx.max()) if len(idx) else -1
    for i in range(1, last + 1):  # carry the last value forward, up to the run's last episode
        if np.isnan(out[i]):
            out[i] = out[i - 1]
    return out


# Weight-norm settings: no effect on a run whose norm is not weight norm.
WN_ONLY = ("wn_init_norm", "wn_project", "wn_head")
# Shown in a group's norm label ("wn+project ‖v‖₀=0.577"), so not repeated after it.
IN_NORM_LABEL = ("norm", "wn_project", "wn_init_norm")


def experiment(cfg: dict) -> dict:
    """The fields of a run's config that define its experiment (all but bookkeeping)."""
    out = {k: v for k, v in cfg.items() if k not in BOOKKEEPING}
    if not str(cfg.get("norm", "")).startswith("wn"):
        for k in WN_ONLY:
            out.pop(k, None)
    return out


def norm_label(cfg: dict) -> str:
    """The norm, and for weight norm its variant: "wn+project", "wn ‖v‖₀=0.577"."""
    norm = cfg["norm"]
    if norm.startswith("wn") and cfg.get("wn_project"):
        norm += "+project"
    if norm.startswith("wn") and cfg.get("wn_init_norm"):
        norm = f"{norm} ‖v‖₀={cfg['wn_init_norm']:g}"
    return norm


def show(value) -> str:
    """A config value, short: 10M, 4k, 0.0003, true, [64, 64]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value and abs(value) >= 1000:
        for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                return f"{value / size:g}{unit}"
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if not isinstance(value, str) else value


def show_changes(changes: list[dict] | None) -> str:
    """A run's settings history (``changes`` in config.json, written by a resume that changed a setting)
    in a label: "changed at 2M: total_steps 2M→5M"; "unchanged" for a run without one."""
    if not changes:
        return "unchanged"
    parts = []
    for c in changes:
        fields = ", ".join(f"{k} {show(a)}→{show(b)}" for k, (a, b) in c["fields"].items())
        parts.append(f"at {show(c['step'])}: {fields}")
    return "changed " + "; ".join(parts)


def variant_label(cfg: dict, fields: list[str]) -> str:
    """``cfg``'s values of ``fields`` (those in which its panel's groups differ), for its label."""
    return ", ".join(
        show_changes(cfg.get(k)) if k == "changes" else f"{k}={show(cfg.get(k, '(unset)'))}" for k in fields
    )


def differing(configs: list[dict]) -> list[str]:
    """The fields (in config order) whose values are not the same in all of ``configs``; a field a
    config lacks differs, unless it is a WN setting left out of a run without weight norm."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    out = []
    for k in keys:
        have = [json.dumps(c[k], sort_keys=True) for c in configs if k in c]
        lacking = len(have) < len(configs) and k not in WN_ONLY
        if len(set(have)) > 1 or lacking:
            out.append(k)
    return out


def load_groups(paths: list[str], tag: str = TAG) -> dict[tuple[str, str, str], list[dict]]:
    """Runs with event data for ``tag``, grouped by experiment (the module docstring says which
    config fields count) and keyed by (agent, env, label). The label is the norm (a WN run with
    ``wn_project`` or a set ``wn_init_norm`` shows it: "wn+project", "wn ‖v‖₀=0.577"), then the other
    fields in which the groups of its agent and env differ ("wn, total_steps=4k, buffer_size=1k").
    Each run is a dict: run, seed, steps, values, total, config, norm (the norm label) and variant
    (the other differing fields, "" if none)."""
    experiments: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for run in find_runs(paths):
        cfg = json.loads((run / "config.json").read_text())
        steps, values = read_curve(run, tag)
        if len(steps):
            key = (cfg["agent"], cfg["env"], json.dumps(experiment(cfg), sort_keys=True))
            experiments[key].append(
                {"run": run, "seed": cfg["seed"], "steps": steps, "values": values, "total": cfg["total_steps"]}
                | {"config": cfg, "norm": norm_label(cfg)}
            )
    if not experiments:
        where = ", ".join(paths)
        raise CliError(f"no TensorBoard event files with {tag} under {where}; point at run directories")
    panels: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (agent, env, _), runs in experiments.items():
        panels[(agent, env)].append(experiment(runs[0]["config"]))  # in config order
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for (agent, env, _), runs in experiments.items():
        cfg = runs[0]["config"]
        extra = [k for k in differing(panels[(agent, env)]) if k not in IN_NORM_LABEL]
        variant = variant_label(cfg, extra)
        for r in runs:
            r["variant"] = variant
        groups[(agent, env, runs[0]["norm"] + (f", {variant}" if variant else ""))] = runs
    return groups


def differences(groups: dict[tuple[str, str, str], list[dict]]) -> dict[tuple[str, str], list[str]]:
    """Per (agent, env): the config fields in which its groups differ (empty for a single group)."""
    panels: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (agent, env, _), runs in sorted(groups.items()):
        panels[(agent, env)].append(experiment(runs[0]["config"]))
    return {panel: differing(configs) if len(configs) > 1 else [] for panel, configs in panels.items()}


def differences_lines(groups: dict[tuple[str, str, str], list[dict]]) -> list[str]:
    """One line per panel whose groups differ: "dqn on Breakout: the groups differ in norm, learning_rate"."""
    return [
        f"{agent} on {env}: the groups differ in {', '.join(fields)}"
        for (agent, env), fields in differences(groups).items()
        if fields
    ]


def line_style(group: str) -> tuple[str | None, str]:
    """Colour and line style of a group's curve: one colour per norm in every panel; a WN variant
    ("wn+project", "wn ‖v‖₀=0.577") keeps wn's colour with its own dash pattern. Only the norm label
    counts (what follows its first comma is the group's other settings: see :func:`plot`)."""
    group = group.split(",")[0]
    norm = group.split()[0].removesuffix("+project")
    color = f"C{NORMS.index(norm)}" if norm in NORMS else None
    projected, initial_norm = "+project" in group, " " in group
    return color, {(False, False): "-", (True, False): "--", (False, True): ":", (True, True): "-."}[
        (projected, initial_norm)
    ]


def by_seed(runs: list[dict]) -> dict[int, list[dict]]:
    """A group's runs by seed: runs of one seed are repeats of one sample, not more samples."""
    out: dict[int, list[dict]] = defaultdict(list)
    for r in runs:
        out[r["seed"]].append(r)
    return dict(sorted(out.items()))


def per_seed(runs: list[dict], measure) -> dict[int, float]:
    """``measure(run)`` per distinct seed, a seed's repeated runs averaged."""
    return {seed: float(np.mean([measure(r) for r in rs])) for seed, rs in by_seed(runs).items()}


def mean_std(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1) over seeds; no std over a single seed."""
    v = np.asarray(list(values), dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) >= 2 else None)


def seeds_text(runs: list[dict]) -> str:
    """Distinct seeds, and the runs that repeat a seed: "1 (2 runs; repeated: seed 1 ×2)"."""
    seeds = by_seed(runs)
    repeated = [f"seed {s} ×{len(rs)}" for s, rs in seeds.items() if len(rs) > 1]
    return f"{len(seeds)}" + (f" ({len(runs)} runs; repeated: {', '.join(repeated)})" if repeated else "")


def seed_curves(runs: list[dict], grid: np.ndarray) -> np.ndarray:
    """(seeds, len(grid)): each seed's curve on ``grid``, its repeated runs averaged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bins before any episode ended are NaN
        seeds = by_seed(runs).values()
        return np.stack([np.nanmean([smooth_on_grid(r["steps"], r["values"], grid) for r in rs], 0) for rs in seeds])


def game_key(env: str) -> str:
    """The game an env id plays, whatever its spelling: Atari's ROM id ("pong" for Pong, ALE/Pong-v5 and
    PongNoFrameskip-v4), MinAtar's game without its version; else the id itself."""
    from wnrl.envs.atari import atari_rom

    if env.startswith("MinAtar/"):
        return "minatar/" + env.split("/")[1].split("-")[0]
    return atari_rom(env) or env


def reference_scores(env: str) -> tuple[float, float] | None:
    """(random, reference) for normalizing ``env``'s scores: Atari's human score, MinAtar's table; None
    where there is none."""
    from wnrl.envs.atari import atari_rom

    if env.startswith("MinAtar/"):
        random, reference = MINATAR_RANDOM_REFERENCE.get(env.split("/")[1].split("-")[0], (None, None))
        return None if random is None or reference is None else (random, reference)
    rom = atari_rom(env)
    return ATARI_RANDOM_HUMAN.get(rom) if rom else None


def normalize(score, random: float, reference: float):
    """(score − random) / (reference − random): 0 is random play, 1 the reference (Atari: human)."""
    return (np.asarray(score, dtype=np.float64) - random) / (reference - random)


def iqm(x, axis: int = -1):
    """Interquartile mean: the mean of the middle 50% of ``x`` along ``axis``, cutting ⌊n/4⌋ values
    from each end, as scipy.stats.trim_mean(x, 0.25) (which rliable uses; plain mean for n < 4)."""
    x = np.sort(np.asarray(x, dtype=np.float64), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def stratified_resample(scores_by_game: list[np.ndarray], rng: np.random.Generator, reps: int) -> np.ndarray:
    """(reps, total seeds): each row draws every game's seeds with replacement from that game's own
    seeds, as many as it has: resampling never mixes games."""
    return np.concatenate([g[rng.integers(0, len(g), size=(reps, len(g)))] for g in scores_by_game], axis=1)


def bootstrap_is_range(seeds_per_game: list[int], level: float = 0.95) -> bool:
    """Whether a percentile bootstrap interval over games with these numbers of seeds is no more than the
    range of what resampling can give: a resample that draws every game's lowest seed only has
    probability ∏ n⁻ⁿ, and when that reaches the tail (2.5%) the interval's ends are those extremes.
    One game with 2 or 3 seeds, or two games with 2 each: the "95% interval" is the seeds' range."""
    return float(np.prod([float(n) ** -n for n in seeds_per_game])) >= (1 - level) / 2


def stratified_bootstrap_ci(
    scores_by_game: list, statistic=iqm, reps: int = 50_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over the pooled scores of all games, from ``reps``
    stratified-bootstrap resamples (Agarwal et al., 2021): deterministic for a given ``seed``."""
    games = [np.asarray(g, dtype=np.float64).ravel() for g in scores_by_game]
    samples = statistic(stratified_resample(games, np.random.default_rng(seed), reps), axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


BAND_RESAMPLES = 1000
# Legend labels longer than this (several differing settings) would cover the curves or run off the
# figure: they go under their panel instead, wrapped at LEGEND_WRAP_CHARS (the panel's width at fontsize 8)
LEGEND_INSIDE_CHARS = 40
LEGEND_WRAP_CHARS = 48
# With 2-3 seeds no percentile bootstrap gives a 95% interval (bootstrap_is_range): the band is their range.
BAND_CAPTION = (
    "line: mean over the seeds reaching each step (repeated runs of a seed averaged first); band: 95% "
    f"bootstrap CI of the mean ({BAND_RESAMPLES} resamples) with ≥ 4 seeds, the range of the seeds with 2-3"
)


def mean_band(curves: np.ndarray, reps: int = BAND_RESAMPLES, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(mean, lo, hi) over the seeds (rows) of ``curves`` at each point: the mean and a 95% percentile
    bootstrap interval of it, resampling seeds with replacement (NaN where no seed has a value)."""
    idx = np.random.default_rng(seed).integers(0, len(curves), size=(reps, len(curves)))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bins before any episode ended are NaN
        means = np.nanmean(curves[idx], axis=1)
        lo, hi = np.nanpercentile(means, [2.5, 97.5], axis=0)
        return np.nanmean(curves, 0), lo, hi


def plot(paths: list[str], out: str, tag: str = TAG, bins: int = 50) -> Path:
    import matplotlib

    check_bins(bins)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = load_groups(paths, tag)
    differ = differences(groups)
    panels = sorted({(a, e) for a, e, _ in groups})
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    markers = ["o", "s", "^", "v", "D", "x", "+", "*"]
    pending = []  # (panel, handles, wrapped labels) of the legends drawn under their panel
    for ax, (agent, env) in zip(axes[0], panels):
        drawn: dict[tuple, int] = defaultdict(int)  # groups of one norm label differ in other settings: markers
        for (a, e, norm), runs in sorted(groups.items()):
            if (a, e) != (agent, env):
                continue
            end = max(int(r["steps"][-1]) for r in runs)  # what was logged, not the planned length
            grid = np.linspace(end / bins, end, bins)
            curves = seed_curves(runs, grid)
            mean, lo, hi = mean_band(curves)
            color, style = line_style(norm)
            k = drawn[(color, style)]
            drawn[(color, style)] += 1
            marker = {"marker": markers[(k - 1) % len(markers)], "markevery": max(bins // 10, 1)} if k else {}
            n = len(curves)
            count = f"{n} seed{'s' if n > 1 else ''}" + (f", {len(runs)} runs" if len(runs) > n else "")
            ax.plot(grid, mean, style, label=f"{norm} ({count})", color=color, **marker)
            if n > 1:
                ax.fill_between(grid, lo, hi, color=color, alpha=0.2)
        fields = differ[(agent, env)]
        ax.set_title(f"{agent} on {env}" + (f"\ngroups differ in {', '.join(fields)}" if fields else ""), fontsize=10)
        ax.set_xlabel("agent steps")
        ax.set_ylabel(tag.split("/")[-1].replace("_", " "))
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if max(map(len, labels), default=0) > LEGEND_INSIDE_CHARS:
            pending.append((ax, handles, [textwrap.fill(label, LEGEND_WRAP_CHARS) for label in labels]))
        else:
            ax.legend()
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    # legends under their panel come after the layout (which would otherwise shrink the panel to fit them),
    # each just under its panel's x label and tick labels
    below = []
    if pending:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
    for ax, handles, labels in pending:
        y = ax.transAxes.inverted().transform((0, ax.xaxis.get_tightbbox(renderer).y0))[1] - 0.03
        below.append(ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y), fontsize=8))
    caption_y = 0.01
    if below:  # the caption goes under the lowest legend; the saved image grows to hold them (bbox tight)
        fig.canvas.draw()
        to_fig = fig.transFigure.inverted()
        caption_y = min(leg.get_window_extent().transformed(to_fig).y0 for leg in below) - 0.02
    fig.text(0.5, caption_y, BAND_CAPTION, ha="center", va="top" if below else "bottom", fontsize=8, wrap=True)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100, bbox_inches="tight" if below else None)
    plt.close(fig)
    return out_path


def final_return(steps: np.ndarray, values: np.ndarray) -> float:
    """Mean of the episodes that ended in the last 10% of the steps the run logged (an
    interrupted run is judged on where it got to, not on the length it was given)."""
    late = steps >= 0.9 * steps[-1]
    return float(values[late].mean())


def best_window_return(steps: np.ndarray, values: np.ndarray, window: float = EPOCH_STEPS) -> float:
    """The highest mean return over windows of ``window`` agent steps (at most a tenth of the run,
    so short runs get ten windows): the nearest thing in training episodes to a "maximum
    evaluation score" taken after each epoch."""
    end = max(float(steps[-1]), 1.0)
    n = int(np.ceil(end / min(window, end / 10)))
    grid = np.linspace(end / n, end, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # windows before the first episode are NaN
        return float(np.nanmax(smooth_on_grid(steps, values, grid)))


def last_episodes_mean(values: np.ndarray, n: int = LAST_EPISODES) -> float:
    """Mean of the last ``n`` values (fewer if fewer were logged): for an episodic tag, the "mean
    return of the last 100" that training prints when it ends (its logger keeps the same 100)."""
    return float(values[-n:].mean())


def episodic(tag: str) -> bool:
    """Whether ``tag`` is logged once per finished game (``charts/episodic_return``, ``..._length``)."""
    return tag.startswith("charts/episodic_")


def column_names(tag: str = TAG, threshold: float | None = None, bins: int = 50) -> dict[str, str]:
    """The summary's column headers, named after the tag they measure (``episodic_return``)."""
    name = tag.split("/")[-1]
    cols = {"final": f"mean {name} over the last 10% of logged steps (mean ± sample std over seeds)"}
    if episodic(tag):
        trains = "training's last line; " if tag == TAG else ""
        cols["last100"] = f"mean {name} of the last {LAST_EPISODES} episodes ({trains}mean ± sample std over seeds)"
    if threshold is not None:
        cols["threshold"] = (
            f"steps until {name} (mean per bin of {bins}) first reaches {threshold:g} (median; seeds reaching)"
        )
    cols["speed"] = "ms per 1k agent steps (from charts/SPS)"
    return cols


def summarize(paths: list[str], threshold: float | None = None, bins: int = 50, tag: str = TAG) -> list[dict]:
    """Per group: final return (episodes in the last 10% of the logged steps; per seed, then mean
    and std over distinct seeds, a seed's repeated runs averaged first; no std over one seed), steps
    until a seed's smoothed curve first reaches ``threshold`` (median over the seeds that reach it),
    and wall-clock per 1,000 agent steps (from each run's median SPS, mean over runs)."""
    check_bins(bins)
    rows = []
    for (agent, env, _), runs in sorted(load_groups(paths, tag).items()):
        finals = per_seed(runs, lambda r: final_return(r["steps"], r["values"]))
        reach, ms = [], []
        for rs in by_seed(runs).values():
            end = max(float(r["steps"][-1]) for r in rs)  # what was logged, not the planned total_steps
            grid = np.linspace(end / bins, end, bins)
            curve = seed_curves(rs, grid)[0]
            hit = np.flatnonzero(curve >= threshold) if threshold is not None else []
            if len(hit):
                reach.append(float(grid[hit[0]]))
        for r in runs:
            _, sps = read_curve(r["run"], "charts/SPS")
            if len(sps):
                ms.append(1000.0 / float(np.median(sps)) * 1000.0)
        final_mean, final_std = mean_std(finals.values())
        last100 = per_seed(runs, lambda r: last_episodes_mean(r["values"]))
        last100_mean, last100_std = mean_std(last100.values())
        evals = eval_per_seed(runs)
        rows.append(
            {
                "agent": agent,
                "env": env,
                "norm": runs[0]["norm"],
                "variant": runs[0]["variant"],
                "seeds": len(finals),
                "runs": len(runs),
                "seeds_text": seeds_text(runs),
                "per_seed": finals,
                "final_mean": final_mean,
                "final_std": final_std,
                "last100_per_seed": last100,
                "last100_mean": last100_mean,
                "last100_std": last100_std,
                "reached": len(reach),
                "steps_to_threshold": float(np.median(reach)) if reach else None,
                "ms_per_1k_steps": float(np.mean(ms)) if ms else None,
                **evals,
            }
        )
    return rows


def eval_per_seed(runs: list[dict]) -> dict:
    """A group's evaluations (``eval/episodic_return``, --eval-every): per seed its best and its last
    evaluation's mean return (a seed's repeated runs averaged), their mean and std over the seeds that
    evaluated, and how many did (``eval_seeds``, 0 where no run evaluated)."""
    curves = {id(r): read_curve(r["run"], EVAL_TAG) for r in runs}
    evaluated = [r for r in runs if len(curves[id(r)][0])]
    # The evaluation settings are bookkeeping for the training curves, not for the evaluations: runs
    # evaluated greedily and at ε (or over other numbers of games) are not averaged together.
    protocols = {(r["config"].get("eval_greedy"), r["config"].get("eval_episodes")) for r in evaluated}
    if len(protocols) > 1:
        mixed = "; ".join(f"eval_greedy={show(g)}, eval_episodes={show(n)}" for g, n in sorted(protocols, key=str))
        return {"eval_seeds": 0, "eval_best_per_seed": {}, "eval_mixed": mixed}
    best = per_seed(evaluated, lambda r: float(curves[id(r)][1].max()))
    last = per_seed(evaluated, lambda r: float(curves[id(r)][1][-1]))
    out: dict = {"eval_seeds": len(best), "eval_best_per_seed": best}
    if best:
        out["eval_best_mean"], out["eval_best_std"] = mean_std(best.values())
        out["eval_last_mean"], out["eval_last_std"] = mean_std(last.values())
    return out


def pm(mean: float, std: float | None, fmt: str = ".2f") -> str:
    """The text "mean ± std", or "mean ± —" where there is no std (one seed)."""
    return f"{mean:{fmt}} ± " + (f"{std:{fmt}}" if std is not None else "—")


def markdown_table(rows: list[dict], threshold: float | None, tag: str = TAG, bins: int = 50) -> str:
    """The summary as markdown: a row per group, each column headed by exactly what it measures."""
    variants = any(r.get("variant") for r in rows)
    cols = column_names(tag, threshold, bins)
    head = "| agent | env | norm | seeds | " + ("other settings | " if variants else "")
    head += " | ".join(cols.values()) + " |"
    evaluated = any(r.get("eval_seeds") or r.get("eval_mixed") for r in rows)
    if evaluated:  # --eval-every runs: their evaluations (whole games by the evaluation protocol)
        head += (
            f" best {EVAL_TAG} (mean ± sample std over seeds; seeds that evaluated) |"
            f" last {EVAL_TAG} (mean ± sample std over seeds; seeds) |"
        )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = f"| {r['agent']} | {r['env']} | {r['norm']} | {r['seeds_text']} | "
        line += f"{r['variant'] or '—'} | " if variants else ""
        line += f"{pm(r['final_mean'], r['final_std'])} | "
        if "last100" in cols:
            line += f"{pm(r['last100_mean'], r['last100_std'])} | "
        if threshold is not None:
            reach = f"{r['steps_to_threshold']:,.0f}" if r["steps_to_threshold"] is not None else "—"
            line += f"{reach} ({r['reached']}/{r['seeds']}) | "
        line += f"{r['ms_per_1k_steps']:,.0f} |" if r["ms_per_1k_steps"] is not None else "— |"
        if evaluated:
            for key in ("eval_best", "eval_last"):
                if r["eval_seeds"]:
                    line += f" {pm(r[key + '_mean'], r[key + '_std'])} ({r['eval_seeds']}) |"
                else:
                    line += f" — (runs evaluated differently: {r['eval_mixed']}) |" if r.get("eval_mixed") else " — |"
        lines.append(line)
    return "\n".join(lines)


def summary_notes(rows: list[dict], tag: str = TAG) -> list[str]:
    """Lines under the summary table: each group's per-seed values, and what a repeated seed means."""
    name = tag.split("/")[-1]
    lines = [f"Per seed, mean {name} over the last 10% of logged steps (a seed's repeated runs averaged):"]
    for r in rows:
        variant = f", {r['variant']}" if r.get("variant") else ""
        values = ", ".join(f"seed {seed} {v:.2f}" for seed, v in r["per_seed"].items())
        lines.append(f"- {r['agent']} {r['env']} {r['norm']}{variant}: {values}")
    if any(r["runs"] > r["seeds"] for r in rows):
        lines.append(
            "Runs of one seed and config are repeats, not more seeds: they are averaged into that seed, "
            "and ± is the sample std over distinct seeds (— with one seed)."
        )
    return lines


def across_games(groups: dict[tuple[str, str, str], list[dict]], reps: int = 50_000, seed: int = 0) -> list[dict]:
    """Per agent and config (all but the env): the normalized final scores of every game that has a
    reference score (``reference_scores``), each seed's score the mean episodic return over the last
    10% of its logged steps; their IQM over all (game, seed) pairs and a stratified-bootstrap 95%
    interval (only when some game has ≥ 2 seeds: otherwise no resample differs). Games without a
    reference are listed under ``unnormalized``."""
    aggregates: dict[tuple[str, str], dict] = {}
    for (agent, env, _), runs in sorted(groups.items()):
        exp = experiment(runs[0]["config"])
        exp.pop("env", None)
        key = (agent, json.dumps(exp, sort_keys=True))
        agg = aggregates.setdefault(
            key, {"agent": agent, "norm": runs[0]["norm"], "config": exp, "games": {}, "unnormalized": []}
        )
        finals = per_seed(runs, lambda r: final_return(r["steps"], r["values"]))
        ref = reference_scores(env)
        if ref is None:
            agg["unnormalized"].append(env)
        else:
            # one game under several names (Pong, ALE/Pong-v5) is one stratum, named as first seen
            label = agg.setdefault("names", {}).setdefault(game_key(env), env)
            scores = normalize(list(finals.values()), *ref)
            agg["games"][label] = np.concatenate([agg["games"].get(label, np.zeros(0)), scores])
    by_agent: dict[str, list[dict]] = defaultdict(list)
    for agg in aggregates.values():
        by_agent[agg["agent"]].append(agg["config"])
    rows = []
    for agg in aggregates.values():
        extra = [k for k in differing(by_agent[agg["agent"]]) if k not in IN_NORM_LABEL]
        agg["variant"] = variant_label(agg["config"], extra)
        games = list(agg["games"].values())
        agg["iqm"] = float(iqm(np.concatenate(games))) if games else None
        spread = any(len(g) >= 2 for g in games)
        agg["ci"] = stratified_bootstrap_ci(games, iqm, reps, seed=seed) if spread else None
        agg["ci_is_range"] = spread and bootstrap_is_range([len(g) for g in games])
        rows.append(agg)
    return rows


def iqm_table(rows: list[dict], tag: str = TAG, reps: int = 50_000) -> str:
    """The across-games table and its notes as markdown; empty when no game has a reference score."""
    shown = [r for r in rows if r["games"]]
    left_out = sorted({f"{env} ({r['agent']} {r['norm']})" for r in rows for env in r["unnormalized"]})
    if not shown:
        return f"No IQM: no game here has a reference score in wnrl.plot ({', '.join(left_out)})." if left_out else ""
    name = tag.split("/")[-1]
    variants = any(r["variant"] for r in shown)
    head = "| agent | norm | " + ("other settings | " if variants else "")
    head += "normalized score per game (mean over seeds; seeds) | "
    head += f"IQM of normalized mean {name} over the last 10% of logged steps, all (game, seed) pairs [95% CI] |"
    lines = [
        "Across games (Agarwal et al., 2021): normalized score = (score − random) / (reference − random), the "
        "reference being the human score for Atari (Atari-57 table, DQN Zoo) and MinAtar's table in wnrl.plot.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in shown:
        per_game = ", ".join(f"{env} {g.mean():.3f} ({len(g)})" for env, g in r["games"].items())
        ci = f" [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]" if r["ci"] else " [— : one seed per game]"
        if r.get("ci_is_range"):
            ci += " (too few seeds for a 95% interval: the range of the resamples)"
        line = f"| {r['agent']} | {r['norm']} | " + (f"{r['variant'] or '—'} | " if variants else "")
        lines.append(line + f"{per_game} | {r['iqm']:.3f}{ci} |")
    lines += [
        "",
        "IQM: mean of the middle 50% of the (game, seed) scores (⌊n/4⌋ cut from each end); CI: 2.5th-97.5th "
        f"percentile of the IQM over {reps:,} stratified bootstrap resamples (each game's seeds drawn with "
        "replacement from its own), fixed seed.",
    ]
    if left_out:
        lines.append(f"Not in the IQM (no reference score; reported unnormalized above): {', '.join(left_out)}.")
    return "\n".join(lines)


def trained_steps(run: dict) -> int:
    """The last step a run logged anything at (its SPS), else the end of its last game."""
    steps, _ = read_curve(run["run"], "charts/SPS")
    return int(max(steps[-1] if len(steps) else 0, run["steps"][-1]))


def paper_comparison(paths: list[str], tag: str = TAG) -> list[dict]:
    """One row per game of the paper's Table 3 that the DQN runs under ``paths`` played: for the
    ``none`` and ``wn`` runs, the best epoch-window return and the final return (mean and std
    over seeds), beside the paper's figures. Empty when no such run is there."""
    from wnrl import envs

    by_game: dict[str, dict[str, list[dict]]] = defaultdict(lambda: {"none": [], "wn": []})
    for (agent, env, _), runs in load_groups(paths, tag).items():
        norm = runs[0]["norm"]
        try:
            game = envs.resolve(env)[1]
        except ValueError:
            continue
        if agent == "dqn" and game in PAPER_TABLE3 and norm in ("none", "wn"):
            by_game[game][norm] += runs
    rows = []
    for game in PAPER_TABLE3:  # the paper's order
        if game not in by_game:
            continue
        title, normal, wn, nature = PAPER_TABLE3[game]
        row: dict = {"game": title, "paper_none": normal, "paper_wn": wn, "nature_dqn": nature, "steps": 0}
        for norm, runs in by_game[game].items():
            evaluations = eval_per_seed(runs)
            # every seed evaluated (--eval-every): its best evaluation, the paper's measure; else the best window
            evaluated = bool(runs) and evaluations["eval_seeds"] == len(by_seed(runs))
            if evaluated:
                best = evaluations["eval_best_per_seed"]
            else:
                best = per_seed(runs, lambda r: best_window_return(r["steps"], r["values"]))
            final = per_seed(runs, lambda r: final_return(r["steps"], r["values"]))
            best_mean, best_std = mean_std(best.values()) if runs else (None, None)
            row[norm] = {
                "seeds": len(best),  # distinct seeds; a seed's repeated runs are averaged
                "best_mean": best_mean,
                "best_std": best_std,
                "final_mean": mean_std(final.values())[0] if runs else None,
                "measure": "eval" if evaluated else "window",
            }
            row["steps"] = max([row["steps"]] + [trained_steps(r) for r in runs])
        rows.append(row)
    return rows


def paper_table(rows: list[dict]) -> str:
    """The comparison as markdown, with a note on what "best" means here and which games are missing."""

    measures = {r[norm]["measure"] for r in rows for norm in ("none", "wn") if r[norm]["seeds"]}

    def ours(cell: dict) -> str:
        if not cell["seeds"]:
            return "—"
        spread = f" ± {cell['best_std']:,.0f}" if cell["seeds"] > 1 else ""
        mark = "*" if cell["measure"] == "eval" and len(measures) > 1 else ""
        return f"{cell['best_mean']:,.0f}{spread}{mark} ({cell['final_mean']:,.0f})"

    if measures == {"eval"}:
        ours_text = (
            f"best evaluation (mean return of an evaluation's games, {EVAL_TAG}, --eval-every; the preset's: 30 "
            f"games at ε = 0.05 every {EPOCH_STEPS:,} steps), as the paper's, mean ± sample std over seeds"
        )
    else:
        ours_text = (
            f"best mean return of the training games in any {EPOCH_STEPS:,}-step window (a tenth of the run if "
            "shorter), mean ± sample std over seeds"
            + ("; where every seed of a cell evaluated (marked *), its best evaluation" if "eval" in measures else "")
        )
    lines = [
        f"DQN against Salimans & Kingma (2016), Table 3 (their maximum evaluation scores). Ours: {ours_text}, "
        "and in brackets the final return of the training games (last 10% of the logged steps).",
        "",
        "| game | agent steps | seeds (none / wn) | ours, normal | ours, WN | paper, normal | paper, WN | Nature DQN |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['game']} | {r['steps']:,} | {r['none']['seeds']} / {r['wn']['seeds']} | {ours(r['none'])} | "
            f"{ours(r['wn'])} | {r['paper_none']:,} | {r['paper_wn']:,} | {r['nature_dqn']:,} |"
        )
    shown = {r["game"] for r in rows}
    missing = [title for title, *_ in PAPER_TABLE3.values() if title not in shown]
    if missing:
        lines += [
            "",
            f"Not among these runs: {', '.join(missing)} (`python -m wnrl.grid --preset paper` runs all four).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wnrl.plot", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories, or directories that hold runs")
    p.add_argument("-o", "--output", default="curves.png", help="PNG to write (default: curves.png)")
    p.add_argument("--tag", default=TAG, help=f"scalar to plot (default: {TAG})")
    p.add_argument("--bins", type=int, default=50, help="points per curve (default: 50)")
    p.add_argument(
        "--summary",
        action="store_true",
        help="also print a markdown table per group: the tag's mean over the last 10%% of logged steps and, for "
        "episodic tags, over the last 100 episodes (as training's last line), per-seed statistics and speed "
        "(and, for DQN runs on the paper's games, the comparison with Salimans & Kingma's Table 3)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="with --summary: report the steps until the tag's binned mean first reaches this value",
    )
    p.add_argument(
        "--export",
        metavar="DIR",
        help="instead of plotting, write each run's per-game data and config to DIR/<run name>/ (episodes.csv: "
        "step,return,length; diagnostics.csv: losses, dead units, evaluations; config.json): a few kB to "
        "commit, which plot and --summary read like the run",
    )
    p.error = lambda message: p.exit(2, f"error: {message} (see {p.prog} --help)\n")
    args = p.parse_args(argv)
    if args.export:
        try:
            runs = find_runs(args.runs)
            if not runs:
                raise CliError(f"no run directories (with config.json) under {', '.join(args.runs)}")
            for run in runs:
                dest = export_run(run, Path(args.export))
                print(f"wrote {dest} ({json.loads((dest / 'config.json').read_text())['exported']['episodes']} games)")
        except CliError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    try:
        path = plot(args.runs, args.output, args.tag, args.bins)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    for line in differences_lines(load_groups(args.runs, args.tag)):
        print(line)
    if args.summary:
        rows = summarize(args.runs, args.threshold, args.bins, args.tag)
        print(markdown_table(rows, args.threshold, args.tag, args.bins))
        print("\n" + "\n".join(summary_notes(rows, args.tag)))
        games = iqm_table(across_games(load_groups(args.runs, args.tag))) if args.tag == TAG else ""
        if games:
            print("\n" + games)
        comparison = paper_comparison(args.runs) if args.tag == TAG else []
        if comparison:
            print("\n" + paper_table(comparison))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
