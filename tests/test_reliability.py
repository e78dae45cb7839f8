"""Nothing loses a run: kill -9 and resume, Ctrl-C, broken checkpoints, divergence, a full disk."""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from wnrl.agents.dqn import DQNConfig, QNetwork, train

from tests.helpers import ROOT, cli, scalars, train_in_process
from tests.test_replay import reference, simulate
from wnrl.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint

# a 64-64 MLP (the default's 256-256 costs ~4× the compute): these tests are about the run's life, not learning
COMMON = ["--env", "CartPole-v1", "--hidden-sizes", "64,64", "--progress", "false", "--log-every", "500",
          "--checkpoint-every", "1000"]  # fmt: skip


def start(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "wnrl.train", "dqn", *COMMON, "--logdir", str(tmp_path), "--run-name", "r", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_checkpoint(run_dir, min_step, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [int(p.stem.split("_")[1]) for p in list_checkpoints(run_dir)]
        if steps and max(steps) >= min_step:
            return max(steps)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no checkpoint in time")


def assert_continuous(run_dir, total):
    tags = scalars(run_dir)
    steps = [s for s, _ in tags["charts/SPS"]]
    assert steps == sorted(set(steps)), steps  # no duplicated or overlapping steps
    assert steps[-1] == total
    assert steps == list(range(500, total + 1, 500))  # and no gap


def test_sigkill_then_resume_finishes_with_continuous_curves(tmp_path):
    proc = start(tmp_path, "--total-steps", "6000")
    run_dir = tmp_path / "r"
    wait_for_checkpoint(run_dir, 3000, proc)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    killed_at = max(int(p.stem.split("_")[1]) for p in list_checkpoints(run_dir))
    assert killed_at < 6000
    r = train_in_process("dqn", "--resume", str(run_dir), "--progress", "false")  # a resume needs no new process
    assert r.returncode == 0, r.stderr[-2000:]
    assert "done: 6,000 steps" in r.stdout
    state = load_checkpoint(list_checkpoints(run_dir)[-1])
    assert state["step"] == 6000
    assert_continuous(run_dir, 6000)
    q = QNetwork((4,), 2, hidden_sizes=tuple(state["config"]["hidden_sizes"]))
    q.load_state_dict(state["model"])
    out = q(torch.randn(16, 4))
    assert torch.isfinite(out).all() and out.shape == (16, 2)
    assert state["counters"]["updates"] > 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_and_exits_zero_then_resume(tmp_path, sig):
    proc = start(tmp_path, "--total-steps", "100000")
    run_dir = tmp_path / "r"
    wait_for_checkpoint(run_dir, 1000, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "Resume with" in out and f"--resume {run_dir}" in out
    stopped = load_checkpoint(list_checkpoints(run_dir)[-1])["step"]
    assert 1000 <= stopped < 100000 and stopped % 4 == 0
    r = train_in_process("dqn", "--resume", str(run_dir), "--total-steps", str(stopped + 1000), "--progress", "false")
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(list_checkpoints(run_dir)[-1])["step"] == stopped + 1000


def _finished_run(tmp_path, **kw):
    cfg = DQNConfig.for_env(
        "CartPole-v1",
        logdir=str(tmp_path),
        run_name="r",
        progress=False,
        total_steps=1000,
        learning_starts=200,
        checkpoint_every=500,
        train_frequency=1,
        **kw,
    )
    return train(cfg)["run_dir"]


def test_time_limit_counts_from_the_loop_and_needs_no_signal():
    """The clock starts when the run starts its loop (StopRequest entered), and the stop is a flag,
    not a signal: it holds where SIGINT is ignored (background jobs inherit an ignored SIGINT)."""
    from wnrl.run import StopRequest, TimeLimit

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with TimeLimit(0.05) as limit:
            stop = StopRequest()
            time.sleep(0.1)  # start-up: not counted
            with stop:
                assert not stop and not limit.reached
                time.sleep(0.1)
                assert stop and limit.reached
    finally:
        signal.signal(signal.SIGINT, previous)
    with StopRequest() as outside:  # no active limit: only a signal stops
        time.sleep(0.06)
        assert not outside


def test_time_limit_stops_like_ctrl_c(tmp_path):
    # 20k steps: ~10x what 1 s of A2C on Catch reaches, and a bound on the run if the limit broke (in-process,
    # no subprocess timeout would end it)
    r = train_in_process("a2c", "--env", "Catch", "--total-steps", "20000", "--time-limit", "1", "--logdir",
                         str(tmp_path), "--run-name", "t", "--progress", "false")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "time limit of 1 s reached at step" in r.stdout and "--resume" in r.stdout
    assert list((tmp_path / "t" / "checkpoints").glob("step_*.pt"))
    r = train_in_process("a2c", "--time-limit", "0")
    assert r.returncode == 2 and "positive number of seconds" in r.stderr


def test_corrupt_and_truncated_checkpoints_are_named(tmp_path):
    run_dir = _finished_run(tmp_path)
    newest = list_checkpoints(run_dir)[-1]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match=f"{newest.name}.*truncated or corrupt"):
        load_checkpoint(newest)
    # resume falls back to the older good one, and says so
    r = train_in_process("dqn", "--resume", str(run_dir), "--total-steps", "1200", "--progress", "false")
    assert r.returncode == 0 and "skipped unreadable checkpoint" in r.stderr
    # with every checkpoint broken: one line, exit 2
    for p in list_checkpoints(run_dir):
        p.write_bytes(b"\x00garbage" * 100)
    r = train_in_process("dqn", "--resume", str(run_dir), "--progress", "false")
    assert r.returncode == 2 and "truncated or corrupt" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert list_checkpoints(run_dir)[-1].name in r.stderr  # the newest's error names it


def test_checkpoint_of_the_other_agent_or_another_shape(tmp_path):
    run_dir = _finished_run(tmp_path)
    r = train_in_process("a2c", "--resume", str(run_dir), "--progress", "false")
    assert r.returncode == 2 and "not a a2c run" in r.stderr
    # A checkpoint whose weights are not its config's network (a file copied in from another run): the
    # resumed run is built from the checkpoint's config, so the mismatch is the checkpoint's own.
    newest = list_checkpoints(run_dir)[-1]
    state = load_checkpoint(newest)
    state["config"] = {**state["config"], "hidden_sizes": (32,)}
    save_checkpoint(run_dir, state["step"], state)
    r = train_in_process("dqn", "--resume", str(run_dir), "--total-steps", "1200", "--progress", "false")
    assert r.returncode == 2 and "does not match" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    state["config"] = {**state["config"], "hidden_sizes": (64, 64), "env": "Acrobot-v1"}
    save_checkpoint(run_dir, state["step"], state)
    r = train_in_process("dqn", "--resume", str(run_dir), "--total-steps", "1200", "--progress", "false")
    assert r.returncode == 2 and "written for env CartPole-v1, not Acrobot-v1" in r.stderr


def test_non_finite_training_stops_naming_the_step_and_keeps_good_checkpoints(tmp_path):
    r = cli(
        "dqn",
        *COMMON,
        "--total-steps",
        "20000",
        "--learning-starts",
        "200",
        "--learning-rate",
        "1e30",
        "--max-grad-norm",
        "0",
        "--checkpoint-every",
        "100",
        "--logdir",
        str(tmp_path),
        "--run-name",
        "r",
    )
    assert r.returncode == 1, (r.stdout[-500:], r.stderr[-2000:])
    assert "non-finite" in r.stderr and "at step" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    for p in list_checkpoints(tmp_path / "r"):
        for t in load_checkpoint(p)["model"].values():
            assert torch.isfinite(t.float()).all()


def test_disk_full_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 100, {"agent": "dqn", "x": torch.ones(3)})

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 200, {"agent": "dqn", "x": torch.zeros(3)})
    monkeypatch.undo()
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["step_000000000100.pt"]  # no temp file left, the old one intact
    torch.testing.assert_close(load_checkpoint(tmp_path / "checkpoints" / files[0])["x"], torch.ones(3))


def test_a_replay_that_cannot_be_written_is_a_warning_and_the_checkpoint_stands(tmp_path, monkeypatch, capsys):
    """--save-replay on a full disk: each checkpoint is written, the replay is not. It said "checkpoint not
    written" (and at the end, exit 2) about a checkpoint that was there; a resume then refills."""
    import wnrl.agents.dqn as dqn

    def full_disk(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dqn, "save_atomic", full_disk)
    run_dir = _finished_run(tmp_path, save_replay=True)
    err = capsys.readouterr().err
    assert "warning: replay buffer not written (No space left on device); the step-1,000 checkpoint was" in err
    assert "checkpoint not written" not in err
    assert load_checkpoint(list_checkpoints(run_dir)[-1])["step"] == 1000
    assert not (run_dir / "checkpoints" / "replay.pt").exists()


def test_resume_with_saved_replay_learns_at_once(tmp_path):
    run_dir = _finished_run(tmp_path, save_replay=True)
    assert (run_dir / "checkpoints" / "replay.pt").is_file()
    before = load_checkpoint(list_checkpoints(run_dir)[-1])["counters"]["updates"]
    r = train_in_process("dqn", "--resume", str(run_dir), "--total-steps", "1400", "--progress", "false")
    assert r.returncode == 0, r.stderr
    after = load_checkpoint(list_checkpoints(run_dir)[-1])["counters"]["updates"]
    assert after - before == 400  # 400 more steps at 1 update per step (classic), no refill pause


def test_resume_without_replay_refills_first(tmp_path):
    run_dir = _finished_run(tmp_path)
    before = load_checkpoint(list_checkpoints(run_dir)[-1])["counters"]["updates"]
    r = train_in_process(
        "dqn", "--resume", str(run_dir), "--total-steps", "1400", "--refill-steps", "120", "--progress", "false"
    )
    assert r.returncode == 0, r.stderr
    after = load_checkpoint(list_checkpoints(run_dir)[-1])["counters"]["updates"]
    assert after - before == 400 - 120 + 1  # learning waits for --refill-steps (120) new transitions


def test_unwritable_logdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = train_in_process("dqn", "--env", "CartPole-v1", "--logdir", str(blocker / "runs"), "--total-steps", "100")
    assert r.returncode == 2 and "--logdir" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@settings(max_examples=40, deadline=None)
@given(
    num_envs=st.integers(1, 4),
    per_env=st.integers(8, 40),
    steps=st.integers(10, 120),
    n_step=st.integers(1, 3),
    p_end=st.floats(0.0, 0.6),
    seed=st.integers(0, 10_000),
)
def test_replay_matches_reference_under_random_streams(num_envs, per_env, steps, n_step, p_end, seed):
    from wnrl.agents.replay import ReplayBuffer

    calls, naive = simulate(num_envs, steps, 4, seed=seed, p_end=p_end)
    rb = ReplayBuffer(per_env * num_envs, num_envs, (4, 1, 2), torch.uint8, gamma=0.9, n_step=n_step)
    for c in calls:
        rb.add(*c)
    lo, hi = max(0, steps - per_env) + 3, steps - 1 - n_step
    assert rb.num_sampleable() == max(0, hi - lo + 1)
    for e in range(num_envs):
        for t in range(lo, hi + 1):
            if not naive[e][t][4]:
                continue
            b = rb._gather(torch.tensor([e]), torch.tensor([t % per_env]))
            obs, a, ret, disc, next_obs = reference(naive[e], t, 0.9, n_step)
            np.testing.assert_array_equal(b.obs[0].numpy(), obs)
            np.testing.assert_array_equal(b.next_obs[0].numpy(), next_obs)
            assert b.returns[0].item() == pytest.approx(ret, abs=1e-5) and b.discounts[0].item() == pytest.approx(disc)


def test_a2c_resume_continues_the_step_axis(tmp_path):
    r = train_in_process(
        "a2c",
        "--env",
        "CartPole-v1",
        "--total-steps",
        "2560",
        "--checkpoint-every",
        "1280",
        "--log-every",
        "640",
        "--logdir",
        str(tmp_path),
        "--run-name",
        "r",
        "--progress",
        "false",
    )
    assert r.returncode == 0, r.stderr
    r = train_in_process("a2c", "--resume", str(tmp_path / "r"), "--total-steps", "5120", "--progress", "false")
    assert r.returncode == 0, r.stderr
    state = load_checkpoint(list_checkpoints(tmp_path / "r")[-1])
    assert state["step"] == 5120 and state["agent"] == "a2c"
    steps = [s for s, _ in scalars(tmp_path / "r")["charts/SPS"]]
    assert steps == list(range(640, 5121, 640))


def test_unknown_agent_is_one_line(tmp_path):
    r = train_in_process("sac", "--env", "CartPole-v1")
    assert r.returncode == 2 and "invalid choice: 'sac'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_resume_of_a_missing_run(tmp_path):
    r = train_in_process("dqn", "--resume", str(tmp_path / "nope"))
    assert r.returncode == 2 and "not a run directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1
