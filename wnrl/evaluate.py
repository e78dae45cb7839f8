"""``python -m wnrl.evaluate RUN_DIR_OR_CHECKPOINT --episodes N``: play a trained agent and report scores.

The protocol, exactly: DQN and PQN act ε-greedily with ε = 0.05 (``--epsilon``), the evaluation ε of Mnih
et al. (2015, Nature); A2C and PPO sample their policy (``--greedy`` takes the most likely action); whole games
with raw scores, no life-loss resets; an Atari game is cut at 108,000 emulator frames (27,000 agent
steps at frame skip 4), the cap Dopamine uses (``max_steps_per_episode = 27000``), longer than Nature's
5-minute (18,000-frame) evaluation games; other envs play to their own end or time limit. Prints mean ± std
and min/max over the episodes. ``--threads N``: torch threads, as for ``wnrl.train`` (1 beside a run).

``--video out.mp4`` records the first game of the first env (H.264 through imageio and the ffmpeg
binary of the imageio-ffmpeg wheel; a ``.gif`` path writes an animated GIF instead). What it shows
(``--video-view``):

* ``game`` (default): Atari in colour at the game's own 210×160 resolution, each pixel 3×3 (nearest
  neighbour), 15 frames/s (real time). The frames come from a twin of the agent's env: one ale-py env
  with the same game, seed and options but full-size colour frames, stepped with env 0's actions, so
  it plays the same game frame by frame (its rewards, game ends, lives and frame numbers are checked
  against the agent's at every step). Each frame is the max of the last two frames of its 4-frame
  skip, as in the agent's input. Catch shows its own frames. Classic control shows gymnasium's
  ``rgb_array`` render of a twin made the same way (CartPole and the others draw with pygame: without
  it, a one-line error before any game is played). MinAtar shows its 10×10 grid in colour, one colour
  per channel (the highest channel where several are on, as MinAtar's own display), each cell 8×8
  pixels, 3×, 10 frames/s: its channels are the whole game, so both views show this.
* ``agent``: the agent's 84×84 grey input (the newest frame of its stack), 3×.

The output path is checked before the checkpoint is loaded. Ctrl-C stops with one line giving the
games finished so far (and closes the video, which then holds the game so far).

The same protocol (:func:`protocol`, :class:`Games`, :func:`play`, the videos) evaluates a run while it
trains: :class:`Evaluator`, behind ``python -m wnrl.train ... --eval-every STEPS``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wnrl.config import CliError, add_threads_argument, check_seed, set_threads

VIDEO_FORMATS = (".mp4", ".gif")
VIEWS = ("game", "agent")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while playing. ``scores``: the games finished so far; ``video``: the video file written
    with what was recorded (None if nothing was)."""

    def __init__(self, scores: list[float], episodes: int, video: str | None, video_complete: bool = False):
        super().__init__(f"interrupted after {len(scores)} of {episodes} games")
        self.scores, self.episodes, self.video, self.video_complete = scores, episodes, video, video_complete

    def line(self) -> str:
        n = len(self.scores)
        if n:
            s = np.array(self.scores)
            summary = f" (mean {s.mean():.2f} ± {s.std():.2f}, min {s.min():.0f}, max {s.max():.0f})"
        else:
            summary = ""
        video = f"; {'video' if self.video_complete else 'video so far'}: {self.video}" if self.video else ""
        return f"interrupted: {n} of {self.episodes} games finished{summary}{video}"


# ---------------------------------------------------------------- the output file


def check_video_path(path: str) -> Path:
    """The video file ``path`` as a Path, if it can be written: a known extension, a directory that
    exists or can be made, a file that can be created there. A CliError (one line) otherwise.
    Leaves no file behind (only the missing directories, made as the video would make them)."""
    p = Path(path)
    ext = p.suffix.lower()
    if p.is_dir():
        raise CliError(f"--video {path} is a directory; give a file name ending in .mp4 or .gif")
    if ext not in VIDEO_FORMATS:
        got = f"unknown video extension {p.suffix!r}" if p.suffix else "no file extension"
        raise CliError(f"--video {path}: {got}; use .mp4 (H.264) or .gif")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CliError(f"--video {path}: {ancestor} is a file, not a directory")
    if ext == ".mp4":
        try:
            import imageio.v2  # noqa: F401
            import imageio_ffmpeg

            imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError) as e:
            raise CliError(
                f"--video {path}: mp4 needs imageio and imageio-ffmpeg ({_first_line(e)}); "
                "pip install imageio imageio-ffmpeg, or write a .gif"
            ) from None
    existed = p.exists()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "ab" if existed else "xb"):
            pass
        if not existed:
            p.unlink()
    except OSError as e:
        raise CliError(f"--video {path}: cannot write a file there ({e.strerror or e})") from None
    return p


def _frame_scale(frame: np.ndarray, scale: int) -> np.ndarray:
    return frame if scale == 1 else frame.repeat(scale, 0).repeat(scale, 1)


class Mp4Writer:
    """H.264 in yuv420p, each pixel ``scale``× larger; frames are written as they come (a whole
    Atari game never sits in memory)."""

    def __init__(self, path: Path, fps: float, scale: int = 1):
        import imageio.v2 as imageio

        self.path = path
        self.scale = scale
        self.frames = 0
        # quality 8 of 10 keeps the pixel edges sharp; macro_block_size 1: no resizing by imageio
        self._writer = imageio.get_writer(
            str(path),
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            quality=8,
            pixelformat="yuv420p",
            macro_block_size=1,
            ffmpeg_log_level="error",
        )

    def add(self, frame: np.ndarray) -> None:
        frame = _frame_scale(frame, self.scale)
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        h, w = frame.shape[:2]
        if h % 2 or w % 2:  # yuv420p needs even sides: repeat the last row / column
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        self._writer.append_data(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()


class GifWriter:
    """An animated GIF, each pixel ``scale``× larger, written on close: its frames are kept in
    memory until then (Pillow too keeps them all), so it suits short games."""

    def __init__(self, path: Path, fps: float, scale: int = 1):
        self.path = path
        self.fps = fps
        self.scale = scale
        self._frames: list[np.ndarray] = []

    @property
    def frames(self) -> int:
        return len(self._frames)

    def add(self, frame: np.ndarray) -> None:
        self._frames.append(frame)

    def close(self) -> None:
        from PIL import Image

        if not self._frames:
            return
        images = (Image.fromarray(_frame_scale(f, self.scale)) for f in self._frames)  # scaled one at a time
        first = next(images)
        duration = max(20, int(round(1000 / self.fps)))
        first.save(self.path, save_all=True, append_images=images, duration=duration, loop=0)


# ---------------------------------------------------------------- where the frames come from


class OutOfStep(Exception):
    """The twin env that renders the video no longer plays the agent's game."""


class AgentView:
    """The agent's own input: the newest frame of env 0's stack (84×84 grey for Atari and Catch)."""

    def __init__(self, fps: float):
        self.fps = fps

    def first(self, obs: np.ndarray, info: dict) -> np.ndarray:
        return obs[0, -1].copy()

    def next(self, actions, obs, reward, terminated, truncated, info) -> np.ndarray:
        return obs[0, -1].copy()

    def close(self) -> None:
        pass


class MinAtarView:
    """MinAtar's grid from env 0's observation ``(C, 10, 10)``: each cell the colour of its highest
    channel that is on (black where none is), ``cell`` pixels a side."""

    # matplotlib's tab10, one colour per channel (MinAtar's games have at most 10)
    PALETTE = np.array(
        [
            [0, 0, 0],
            [31, 119, 180],
            [255, 127, 14],
            [44, 160, 44],
            [214, 39, 40],
            [148, 103, 189],
            [140, 86, 75],
            [227, 119, 194],
            [127, 127, 127],
            [188, 189, 34],
            [23, 190, 207],
        ],
        dtype=np.uint8,
    )

    def __init__(self, fps: float = 10.0, cell: int = 8):
        self.fps = fps
        self.cell = cell

    def render(self, obs: np.ndarray) -> np.ndarray:
        on = obs[0] > 0  # (C, H, W)
        index = np.where(on.any(0), on.shape[0] - np.argmax(on[::-1], axis=0), 0)  # highest channel on, 1-based
        rgb = self.PALETTE[np.minimum(index, len(self.PALETTE) - 1)]
        return rgb.repeat(self.cell, 0).repeat(self.cell, 1)

    def first(self, obs: np.ndarray, info: dict) -> np.ndarray:
        return self.render(obs)

    def next(self, actions, obs, reward, terminated, truncated, info) -> np.ndarray:
        return self.render(obs)

    def close(self) -> None:
        pass


class AtariScreen:
    """Env 0's game in colour at 210×160: a one-env twin of the agent's ale-py env (same ROM, seed,
    frame skip, max-pooling, no-op starts, FIRE reset, sticky actions and frame cap; colour,
    full-size, no stack) stepped with env 0's actions. ale-py seeds each env from its own seed, so
    the twin replays env 0's no-op starts and sticky-action draws; every step checks that reward,
    end of game, lives and frame numbers still match."""

    fps = 15.0  # 60 Hz with a frame skip of 4: real time

    def __init__(self, env_id: str, seed: int, repeat_action_probability: float):
        from wnrl.envs.atari import atari_rom, make_atari

        # the agent's env (envs.atari.make_atari, the same options) with the game's screen, one env
        self.env = make_atari(
            atari_rom(env_id),
            1,
            repeat_action_probability=repeat_action_probability,
            frame_stack=1,
            num_threads=1,
            screen="game",
        )
        self.seed = seed
        self.step_count = 0

    def _check(self, name: str, ours: Any, theirs: Any) -> None:
        if ours != theirs:
            raise OutOfStep(f"at step {self.step_count} its {name} is {ours}, the agent's {theirs}")

    def _compare(self, info_twin: dict, info: dict) -> None:
        for key in ("lives", "episode_frame_number"):
            if key in info and key in info_twin:
                self._check(key.replace("_", " "), int(info_twin[key][0]), int(info[key][0]))

    def first(self, obs: np.ndarray, info: dict) -> np.ndarray:
        screen, info_twin = self.env.reset(seed=self.seed)
        self._compare(info_twin, info)
        return screen[0, 0].copy()

    def next(self, actions, obs, reward, terminated, truncated, info) -> np.ndarray:
        self.step_count += 1
        screen, r, term, trunc, info_twin = self.env.step(np.asarray(actions[:1], dtype=np.int64))
        self._check("reward", float(r[0]), float(reward[0]))
        self._check("end of game", (bool(term[0]), bool(trunc[0])), (bool(terminated[0]), bool(truncated[0])))
        self._compare(info_twin, info)
        return screen[0, 0].copy()

    def close(self) -> None:
        self.env.close()


class ClassicRender:
    """Env 0's episode as gymnasium's ``rgb_array`` render of a one-env twin (same id and seed,
    stepped with env 0's actions; reward and end of episode checked at every step). ``flag``: the
    option its errors name."""

    def __init__(self, env_id: str, seed: int, flag: str = "--video"):
        import gymnasium as gym

        try:
            self.env = gym.make(env_id, render_mode="rgb_array")
        except Exception as e:  # an env without render modes, or one missing its renderer
            raise CliError(f"{flag}: {env_id} cannot render frames ({_first_line(e)})") from None
        if "rgb_array" not in (self.env.metadata.get("render_modes") or []):
            self.env.close()
            raise CliError(f"{flag}: {env_id} has no rgb_array render mode, so no video of it can be made")
        self.seed = seed
        self.fps = float(self.env.metadata.get("render_fps") or 30)
        self.step_count = 0
        try:
            self.env.reset(seed=seed)
            self.env.render()  # fails here, before any game is played, if the renderer (pygame) is missing
        except Exception as e:
            self.env.close()
            raise CliError(f"{flag}: {env_id} cannot render frames ({_first_line(e)})") from None

    def first(self, obs: np.ndarray, info: dict) -> np.ndarray:
        self.env.reset(seed=self.seed)
        return np.asarray(self.env.render())

    def next(self, actions, obs, reward, terminated, truncated, info) -> np.ndarray:
        self.step_count += 1
        _, r, term, trunc, _ = self.env.step(actions[0].item())
        if float(r) != float(reward[0]) or (bool(term), bool(trunc)) != (bool(terminated[0]), bool(truncated[0])):
            raise OutOfStep(f"at step {self.step_count} its reward or end of episode differs from the agent's")
        return np.asarray(self.env.render())

    def close(self) -> None:
        self.env.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def frame_source(agent, family: str, view: str, seed: int, flag: str = "--video"):
    """Where the video's frames come from, or a CliError (naming ``flag``) saying why this env has none.
    ``agent``: what the frames are of, its ``env_id``, ``config`` and ``obs_shape``."""
    if view not in VIEWS:
        raise CliError(f"--video-view {view!r}: choose one of {', '.join(VIEWS)}")
    if family == "classic":
        if view == "game" or len(agent.obs_shape) == 1:
            if view == "agent":
                raise CliError(
                    f"--video-view agent: {agent.env_id}'s observations are vectors, not images; use --video-view game"
                )
            return ClassicRender(agent.env_id, seed, flag)
    if family == "minatar":
        return MinAtarView()
    if family == "atari" and view == "game":
        return AtariScreen(agent.env_id, seed, agent.config.get("sticky_actions", 0.0))
    return AgentView(fps=5.0 if family == "catch" else 15.0)  # Catch: its frames are the game


class Recorder:
    """Env 0's first game: frames from ``source`` into ``writer``."""

    def __init__(self, source, writer):
        self.source, self.writer = source, writer
        self.active = True
        self.complete = False  # the whole game is in the file
        self.note: str | None = None

    def first(self, obs, info) -> None:
        try:
            frame = self.source.first(obs, info)
        except OutOfStep as e:
            self._stop(e)
            return
        self.writer.add(frame)

    def step(self, actions, obs, reward, terminated, truncated, info) -> None:
        if not self.active:
            return
        try:
            frame = self.source.next(actions, obs, reward, terminated, truncated, info)
        except OutOfStep as e:
            self._stop(e)
            return
        self.writer.add(frame)
        if terminated[0] or truncated[0]:
            self.complete = True
            self.close()

    def _stop(self, e: OutOfStep) -> None:
        self.note = f"the video stops after {self.writer.frames} frames: the env that renders it left the game ({e})"
        self.close()

    def close(self) -> None:
        if self.active:
            self.active = False
            try:
                self.source.close()
            finally:
                self.writer.close()


# ---------------------------------------------------------------- evaluation


class CtrlC:
    """Defers Ctrl-C (SIGINT) to ``check()``, between two steps, so that it never lands inside a
    frame being piped to ffmpeg (that kills ffmpeg and leaves an unplayable mp4). A second Ctrl-C
    interrupts at once. Does nothing outside the main thread or under a SIGINT handler of the
    caller's own."""

    def __init__(self) -> None:
        self.pressed = False
        self._installed = False

    def __enter__(self) -> CtrlC:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            try:
                signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def check(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


# Nature DQN's evaluation ε (Mnih et al., 2015)
EVAL_EPSILON = 0.05
# Envs that play an evaluation's games side by side, at most
EVAL_ENVS = 8
# Mixed into every evaluation's seed while training: its envs and draws are a stream of their own.
EVAL_STREAM = 0xE7A1


def protocol(agent, epsilon: float | None = None, greedy: bool = False) -> bool:
    """Sets ``agent`` (a :class:`~wnrl.trained.TrainedAgent`) to its agent's evaluation protocol and returns
    the ``deterministic`` its ``predict`` then takes: a Q-learner (DQN, PQN) acts ε-greedily with
    ``epsilon`` (None: 0.05, Nature DQN's evaluation ε; 0 is greedy), a policy agent (A2C, PPO) samples
    its policy unless ``greedy``. Each knob is refused (CliError) for the other kind of run: it would be
    silently ignored."""
    name = agent.agent.upper()
    if not agent.q_learner and epsilon is not None:
        raise CliError(
            f"--epsilon is a Q-learner's exploration; this is a run of {name}, which samples its policy (--greedy "
            f"takes the most likely action instead): drop --epsilon {epsilon:g}"
        )
    if agent.q_learner and greedy:
        raise CliError(
            f"--greedy is for policy agents (A2C, PPO); this is a run of {name}, which acts ε-greedily: use "
            "--epsilon 0 for greedy play"
        )
    agent.epsilon = EVAL_EPSILON if epsilon is None else epsilon
    return agent.epsilon == 0 if agent.q_learner else greedy


class Games:
    """The whole games of an evaluation over ``n`` envs: each env plays its own quota of ``episodes``,
    so that short games are not over-represented (the envs that finish first would otherwise play more)."""

    def __init__(self, episodes: int, n: int):
        self.episodes = episodes
        self.quota = np.full(n, episodes // n) + (np.arange(n) < episodes % n)
        self.per_env: list[list[float]] = [[] for _ in range(n)]
        self.lengths: list[int] = []

    def done(self) -> bool:
        return all(len(s) >= q for s, q in zip(self.per_env, self.quota))

    def record(self, info: dict) -> None:
        """The games that ended on this step (raw scores, whole games: :mod:`wnrl.envs.stats`)."""
        for k in np.flatnonzero(info["episode_end"]):
            if len(self.per_env[k]) < self.quota[k]:
                self.per_env[k].append(float(info["episode_return"][k]))
                self.lengths.append(int(info["episode_length"][k]))

    @property
    def scores(self) -> list[float]:
        return [s for per_env in self.per_env for s in per_env]


def play(agent, env, games: Games, deterministic: bool, seed: int, recorder=None, check=None) -> None:
    """Plays ``games`` on ``env`` (reset with ``seed``) with ``agent.predict(obs, deterministic)``; ``recorder``
    (a :class:`Recorder`) gets env 0's frames, ``check()`` runs before every step (it may raise to stop)."""
    obs, info = env.reset(seed=seed)
    if recorder is not None:
        recorder.first(obs, info)
    while not games.done():
        if check is not None:
            check()
        actions = agent.predict(obs, deterministic)
        obs, reward, terminated, truncated, info = env.step(actions)
        if recorder is not None:
            recorder.step(actions, obs, reward, terminated, truncated, info)
        games.record(info)


def video_recorder(agent, env, out: Path, view: str = "game", scale: int | None = None, seed: int = 0, flag="--video"):
    """A :class:`Recorder` of env 0's first game into ``out`` (.mp4 or .gif)."""
    family = getattr(env, "family", None) or ("classic" if len(agent.obs_shape) == 1 else "atari")
    source = frame_source(agent, family, view, seed, flag)
    scale = scale or (1 if family == "classic" else 3)
    try:
        writer = (Mp4Writer if out.suffix.lower() == ".mp4" else GifWriter)(out, source.fps, scale)
    except BaseException:
        source.close()
        raise
    return Recorder(source, writer)


def evaluate(
    path: str,
    episodes: int = 10,
    epsilon: float | None = None,
    greedy: bool = False,
    seed: int = 12345,
    device: str = "auto",
    video: str | None = None,
    num_envs: int | None = None,
    video_view: str = "game",
    video_scale: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Plays ``episodes`` whole games; returns the scores and their summary.

    ``epsilon``: a Q-learner's probability of a random action (None: 0.05); ``greedy``: a policy agent
    takes its most likely action. Each is refused (CliError) for the other kind of run.

    ``video``: a .mp4 or .gif path for the first game of env 0, checked before anything is loaded
    (see the module's docstring for ``video_view``; ``video_scale``: pixel size, default 3, 1 for
    classic-control renders). Ctrl-C raises :class:`Interrupted` (a KeyboardInterrupt) holding the
    scores of the games finished so far, after closing the video. ``log``: called with one line
    when the games start.
    """
    if episodes < 1:
        raise CliError(f"--episodes must be at least 1, got {episodes}")
    if epsilon is not None and not 0.0 <= epsilon <= 1.0:
        raise CliError(f"--epsilon must be in [0, 1], got {epsilon}")
    check_seed(seed)
    if video_view not in VIEWS:
        raise CliError(f"--video-view {video_view!r}: choose one of {', '.join(VIEWS)}")
    if video_scale is not None and not 1 <= video_scale <= 8:
        raise CliError(f"--video-scale must be between 1 and 8, got {video_scale}")
    out = check_video_path(video) if video is not None else None

    from wnrl.run import seed_everything
    from wnrl.trained import load

    seed_everything(seed)
    agent = load(path, device=device, seed=seed)
    deterministic = protocol(agent, epsilon, greedy)
    n = num_envs or min(episodes, EVAL_ENVS)
    games = Games(episodes, n)
    recorder: Recorder | None = None
    env = agent.make_env(num_envs=n, seed=seed)
    with CtrlC() as ctrl_c:  # Ctrl-C ends the current step first: a video stays whole
        try:
            if out is not None:
                recorder = video_recorder(agent, env, out, video_view, video_scale, seed)
            if log is not None:
                log(f"playing {episodes} games of {agent.env_id} with {agent.agent} at step {agent.step:,} on {n} envs")
            play(agent, env, games, deterministic, seed, recorder, ctrl_c.check)
        except KeyboardInterrupt:
            written = None
            if recorder is not None:
                try:
                    had_frames = recorder.writer.frames > 0
                    recorder.close()  # an mp4 closed now plays the game so far
                    written = str(out) if had_frames and out.exists() else None
                except (KeyboardInterrupt, Exception):  # a second Ctrl-C, or a writer that cannot finish
                    written = None
            raise Interrupted(games.scores, episodes, written, recorder is not None and recorder.complete) from None
        finally:
            if recorder is not None:
                recorder.close()
            env.close()
    all_scores = np.array(games.scores)
    result = {
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
        "mean_length": float(np.mean(games.lengths)),
    }
    if recorder is not None:
        result["video"] = str(out)
        result["video_frames"] = recorder.writer.frames
        result["video_note"] = recorder.note
    return result


# ---------------------------------------------------------------- evaluation while training


class EvaluationStopped(Exception):
    """A stop (Ctrl-C, SIGTERM, --time-limit) came during an evaluation while training: it is dropped."""


class Evaluator:
    """``--eval-every``: the training run's network, evaluated by the protocol above (the games, the
    agents' policies and the video of :func:`evaluate`), on envs of its own.

    The evaluation plays ``--eval-episodes`` whole games on up to 8 envs of the run's env (same
    preprocessing, sticky actions and 108,000-frame Atari cap) with a copy of the network (its weights
    loaded at each evaluation; eval mode; the training net is not touched): DQN and PQN ε-greedy at
    ε = 0.05, A2C and PPO sampling their policy; ``--eval-greedy``: ε = 0, or the policy's most likely
    action. Each evaluation's env seed and action draws come from (seed, step) alone, through
    generators of its own: an evaluation at a step plays the same games whether the run was resumed
    or not, and the training run's generators are not drawn from (the caller also keeps the global
    ones: ``wnrl.run.Run.evaluate``).
    ``--eval-video``: env 0's first game of each evaluation in ``video_dir/eval_step_<step>.mp4``."""

    def __init__(self, cfg, agent: str, env_id: str, device, video_dir: Path | None = None):
        self.cfg, self.agent_name, self.env_id, self.device = cfg, agent, env_id, device
        self.video_dir = video_dir
        self.n = min(cfg.eval_episodes, EVAL_ENVS)
        self._agent = None  # the evaluation's TrainedAgent, made at the first evaluation
        self._env = None
        self.last_video: Path | None = None

    def check_video(self, obs_shape: tuple[int, ...], family: str) -> None:
        """A CliError now (before the run writes anything) if ``--eval-video`` cannot record this env."""
        if not self.cfg.eval_video:
            return
        from types import SimpleNamespace

        probe = SimpleNamespace(env_id=self.env_id, config=self.cfg.to_dict(), obs_shape=obs_shape)
        frame_source(probe, family, "game", 0, flag="--eval-video").close()

    def seeds(self, step: int) -> tuple[int, np.random.Generator]:
        """The evaluation at ``step``: its envs' seed (31 bits: env i takes seed + i) and its action generator."""
        entropy = np.random.SeedSequence([self.cfg.seed, step, EVAL_STREAM])
        env_seed = int(entropy.generate_state(1)[0] >> 1)
        return env_seed, np.random.default_rng(entropy.spawn(1)[0])

    def __call__(self, net, step: int, stop: Callable[[], bool] = lambda: False) -> dict:
        """Plays the evaluation of ``net`` at ``step``: the mean, each game's score, the mean length and the
        video written (None); an :class:`EvaluationStopped` as soon as ``stop()`` says so."""
        from wnrl.trained import TrainedAgent

        state = {"agent": self.agent_name, "env": self.env_id, "step": step, "config": self.cfg.to_dict()}
        if self._agent is None:
            self._agent = TrainedAgent({**state, "model": net.state_dict()}, device=self.device)
            self._env = self._agent.make_env(num_envs=self.n, seed=None)
        agent = self._agent
        agent.net.load_state_dict(net.state_dict())
        agent.step = step
        greedy = self.cfg.eval_greedy
        deterministic = protocol(agent, 0.0 if greedy and agent.q_learner else None, greedy and not agent.q_learner)
        env_seed, rng = self.seeds(step)
        agent.use_generator(rng)
        games = Games(self.cfg.eval_episodes, self.n)
        recorder = None
        video = None
        if self.cfg.eval_video and self.video_dir is not None:
            self.video_dir.mkdir(parents=True, exist_ok=True)
            video = self.video_dir / f"eval_step_{step:012d}.mp4"
            recorder = video_recorder(agent, self._env, video, seed=env_seed, flag="--eval-video")

        def check() -> None:
            if stop():
                raise EvaluationStopped

        try:
            play(agent, self._env, games, deterministic, env_seed, recorder, check)
        finally:
            if recorder is not None:
                recorder.close()
        if video is not None:
            self.last_video = video
        scores = games.scores
        return {
            "step": step,
            "mean": float(np.mean(scores)),
            "scores": scores,
            "mean_length": float(np.mean(games.lengths)),
            "video": video,
        }

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wnrl.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("path", help="a run directory (its newest checkpoint) or a checkpoint file")
    p.add_argument("--episodes", type=int, default=10, help="whole games to play (default: 10)")
    p.add_argument(
        "--epsilon", type=float, default=None, help="DQN and PQN only: probability of a random action (default: 0.05)"
    )
    p.add_argument(
        "--greedy", action="store_true", help="A2C and PPO only: take the most likely action instead of sampling"
    )
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation envs (default: 12345)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_threads_argument(p)  # as train's: give 1 beside a training run
    p.add_argument(
        "--video",
        default=None,
        metavar="PATH.mp4",
        help="record the first game: .mp4 (H.264) or .gif, by the file's extension",
    )
    p.add_argument(
        "--video-view",
        default="game",
        choices=VIEWS,
        help="game: Atari in colour at 210x160, classic control as gymnasium renders it (default); "
        "agent: the agent's 84x84 grey input",
    )
    p.add_argument(
        "--video-scale", type=int, default=None, metavar="N", help="each pixel N×N (default: 3; classic control: 1)"
    )
    p.error = lambda message: p.exit(2, f"error: {message} (see {p.prog} --help)\n")  # one line, exit 2
    args = p.parse_args(argv)
    set_threads(args.threads)
    # pygame (gymnasium's renderer) draws off screen here: no display wanted, nor SDL's warnings about one
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        r = evaluate(
            args.path,
            args.episodes,
            args.epsilon,
            args.greedy,
            args.seed,
            args.device,
            args.video,
            video_view=args.video_view,
            video_scale=args.video_scale,
            log=lambda line: print(line, flush=True),
        )
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(e.line(), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"interrupted: 0 of {args.episodes} games finished", file=sys.stderr)
        return 130
    except ValueError as e:  # torch loads only after the video path is checked: CheckpointError is known late
        from wnrl.checkpoint import CheckpointError

        if not isinstance(e, CheckpointError):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{r['agent']} on {r['env']} at step {r['step']:,}: {r['mean']:.2f} ± {r['std']:.2f} over {r['episodes']} "
        f"episodes (min {r['min']:.0f}, max {r['max']:.0f}, mean length {r['mean_length']:.0f})"
    )
    if args.video:
        print(f"video: {args.video} ({r['video_frames']} frames)")
        if r.get("video_note"):
            print(f"warning: {r['video_note']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
