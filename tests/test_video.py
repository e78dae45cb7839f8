"""evaluate --video (mp4 and GIF of Catch, an Atari game and classic control), the video path checked
before any game is played, and Ctrl-C stopping with one line."""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image
from wnrl.agents.a2c import A2CConfig
from wnrl.agents.a2c import train as train_a2c

from tests.helpers import ROOT, here
from wnrl.config import CliError
from wnrl.evaluate import AtariScreen, evaluate
from wnrl.trained import load

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def run_evaluate(*args, timeout=300):
    cmd = [sys.executable, "-m", "wnrl.evaluate", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)


def read_video(path, every=1):
    """(every ``every``-th frame, number of frames, frames per second) of a video file."""
    with imageio.get_reader(str(path)) as reader:
        kept, n = [], 0
        for frame in reader:  # not list(reader): its len() is inf
            if n % every == 0:
                kept.append(frame)
            n += 1
        return np.stack(kept), n, reader.get_meta_data()["fps"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for env_id, steps, name in (("Catch", 1600, "catch"), ("Pong", 2000, "pong"), ("CartPole-v1", 400, "cartpole")):
        train_a2c(A2CConfig.for_env(env_id, logdir=str(root), progress=False, total_steps=steps, run_name=name))
    return root


def test_mp4_of_catch(runs, tmp_path):
    out = tmp_path / "catch.mp4"
    r = run_evaluate(runs / "catch", "--episodes", "1", "--greedy", "--video", out)
    assert r.returncode == 0, r.stderr
    assert f"video: {out} (7 frames)" in r.stdout  # a Catch game: the first frame and 6 steps
    frames, n, fps = read_video(out)
    assert n == 7 and frames.shape == (7, 252, 252, 3) and fps == 5  # 84×84 frames at 3×, RGB
    assert frames.max() > 200 and frames.min() < 50  # white ball and paddle on black


def test_mp4_of_an_atari_game_in_colour_and_the_agents_view(runs, tmp_path):
    game, agent_view = tmp_path / "pong.mp4", tmp_path / "pong_agent.mp4"
    r = evaluate(str(runs / "pong"), episodes=1, video=str(game), device="cpu")
    frames, n, fps = read_video(game, every=25)
    assert r["video_frames"] == r["mean_length"] + 1 == n and r["video_note"] is None
    assert frames.shape[1:] == (630, 480, 3) and fps == 15  # 210×160 at 3×, real time (60 Hz, frame skip 4)
    colour = np.abs(frames[..., 0].astype(int) - frames[..., 1]).mean()
    assert colour > 20  # Pong's brown court, not grey

    r2 = evaluate(str(runs / "pong"), episodes=1, video=str(agent_view), video_view="agent", device="cpu")
    frames, n, _ = read_video(agent_view, every=25)
    assert r2["scores"] == r["scores"] and n == r2["video_frames"] == r["video_frames"]
    assert frames.shape[1:] == (252, 252, 3)  # the 84×84 input at 3×
    assert np.abs(frames[..., 0].astype(int) - frames[..., 1]).mean() < 3  # grey
    # recording does not change the games played
    assert evaluate(str(runs / "pong"), episodes=1, device="cpu")["scores"] == r["scores"]


def _grey_84(rgb: np.ndarray) -> np.ndarray:
    g = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.asarray(Image.fromarray(g.astype(np.float32)).resize((84, 84), Image.BOX))


def test_the_recorded_atari_game_is_the_one_the_agent_plays(runs):
    """The colour twin, shrunk to 84×84 grey, is the agent's input frame by frame (sticky actions and
    three envs included: env 0 is recorded), while a frame one step off is not."""
    agent = load(runs / "pong", device="cpu", seed=0)
    agent.config["sticky_actions"] = 0.25
    seed = 5
    env = agent.make_env(num_envs=3, seed=seed)
    twin = AtariScreen(agent.env_id, seed, 0.25)
    try:
        obs, info = env.reset(seed=seed)
        frame = twin.first(obs, info)  # checks lives and frame numbers; next() also rewards and game ends
        previous = obs[0, -1]
        same, off_by_one = [], []
        for _ in range(300):
            grey = _grey_84(frame)
            same.append(int((np.abs(grey - obs[0, -1]) > 40).sum()))
            off_by_one.append(int((np.abs(grey - previous) > 40).sum()))
            previous = obs[0, -1]
            actions = agent.predict(obs, deterministic=False)
            obs, reward, terminated, truncated, info = env.step(actions)
            frame = twin.next(actions, obs, reward, terminated, truncated, info)
            assert not (terminated[0] or truncated[0])
    finally:
        twin.close()
        env.close()
    assert max(same) <= 2  # colour max-pooling vs grey max-pooling: a pixel or two
    assert sum(off_by_one) > 10 * sum(same) + 100


def test_gif_of_an_atari_game_by_extension(runs, tmp_path):
    out = tmp_path / "pong.gif"
    r = evaluate(str(runs / "pong"), episodes=1, video=str(out), video_view="agent", video_scale=1, device="cpu")
    with Image.open(out) as im:
        assert im.size == (84, 84) and 2 <= im.n_frames <= r["video_frames"]  # Pillow merges repeated frames


@pytest.mark.parametrize(
    "name, message",
    [
        ("x.avi", "unknown video extension '.avi'"),
        ("noext", "no file extension"),
        ("a_dir", "is a directory"),
        ("a_file/x.mp4", "a_file is a file, not a directory"),
    ],
)
def test_video_path_is_checked_before_playing(runs, tmp_path, name, message):
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file").write_text("")
    r = here("wnrl.evaluate", runs / "pong", "--episodes", "1000", "--video", tmp_path / name)
    assert r.returncode == 2 and r.stdout == ""  # no game played (nor the checkpoint loaded: see the next test)
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr and "--video" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir", "a_file"]


def test_video_path_is_checked_before_the_checkpoint(tmp_path):
    with pytest.raises(CliError, match="unknown video extension"):
        evaluate(str(tmp_path / "no-such-run"), video=str(tmp_path / "x.webm"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_directory(runs, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    r = here("wnrl.evaluate", runs / "catch", "--video", locked / "x.mp4")
    assert r.returncode == 2 and r.stdout == "" and "cannot write a file there" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, where no file can be made")
def test_directory_where_no_file_can_be_made(runs):
    r = here("wnrl.evaluate", runs / "catch", "--video", "/proc/wnrl-video-test.mp4")
    assert r.returncode == 2 and r.stdout == "" and "cannot write a file there" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _interrupt(args, after_s):
    """Starts evaluate, waits for its "playing" line and ``after_s`` more, sends Ctrl-C to its
    process group (as a terminal does), returns (exit code, stdout, stderr)."""
    p = subprocess.Popen(
        [sys.executable, "-m", "wnrl.evaluate", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
        # as from a terminal: a suite started in the background inherits an ignored SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        first = p.stdout.readline()
        assert first.startswith("playing"), first + p.stderr.read()
        time.sleep(after_s)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, first + out, err


def test_ctrl_c_stops_with_one_line(runs):
    code, out, err = _interrupt([runs / "catch", "--episodes", "10000000"], after_s=3.0)
    assert code == 130, err
    assert len(err.strip().splitlines()) == 1, err
    # the count of games finished (hundreds in 3 s of Catch; none only on a machine that barely runs it)
    summary = r" \(mean -?[\d.]+ ± [\d.]+, min -?\d+, max -?\d+\)"
    m = re.match(rf"interrupted: (0|[1-9]\d*) of 10000000 games finished({summary})?\n$", err)
    assert m and bool(m.group(2)) == (m.group(1) != "0"), err
    assert "Traceback" not in out + err


def test_ctrl_c_keeps_a_playable_mp4(runs, tmp_path):
    out_file = tmp_path / "pong.mp4"
    code, out, err = _interrupt([runs / "pong", "--episodes", "1000", "--video", out_file], after_s=1.5)
    assert code == 130 and len(err.strip().splitlines()) == 1, err
    assert re.match(r"interrupted: \d+ of 1000 games finished.*; video( so far)?: ", err), err
    frames, n, _ = read_video(out_file)  # closed properly: readable, with what was played
    assert n >= 1 and frames.shape[1:] == (630, 480, 3)


def test_classic_control(runs, tmp_path):
    r = here(
        "wnrl.evaluate", runs / "cartpole", "--episodes", "1", "--video", tmp_path / "x.mp4", "--video-view", "agent"
    )
    assert r.returncode == 2 and r.stdout == "" and "observations are vectors" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

    out = tmp_path / "cartpole.mp4"
    r = run_evaluate(runs / "cartpole", "--episodes", "1", "--video", out)
    if importlib.util.find_spec("pygame") is None:  # gymnasium renders CartPole with pygame
        assert r.returncode == 2 and r.stdout == "" and "pygame" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        return
    assert r.returncode == 0 and r.stderr == "", r.stderr
    frames, n, fps = read_video(out)
    length = int(re.search(r"mean length (\d+)", r.stdout).group(1))
    assert n == length + 1 and frames.shape[1:] == (400, 600, 3) and fps == 50  # gymnasium's render, its own rate
