"""wnrl.grid run again over the cells it left: a cell killed before its first checkpoint starts afresh, a
longer --total-steps extends every cell, a shorter one is refused, and a failing cell is reported by its last
line while the others finish. Dry runs on faked cells, then a few tiny real runs."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from wnrl.grid import main as grid_main

CELL = "CartPole-v1__a2c__wn__s1"
GRID = ["--agents", "a2c", "--envs", "CartPole-v1", "--norms", "wn", "--seeds", "1"]


def run_grid(*args, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "wnrl.grid", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def dry_run(capsys, *args) -> tuple[list[list[str]], str]:
    assert grid_main([*args, "--dry-run"]) == 0
    out = capsys.readouterr()
    return [shlex.split(line) for line in out.out.splitlines()], out.err


def flag(cmd: list[str], name: str) -> str:
    """The value of ``name`` the command sets last (the one argparse keeps)."""
    values = [cmd[i + 1] for i, a in enumerate(cmd) if a == name]
    assert values, f"{name} not in {shlex.join(cmd)}"
    return values[-1]


def fake_cell(logdir, total_steps: int, checkpoints: tuple[int, ...] = (), name: str = CELL):
    """A cell's directory as a run leaves it: its config and checkpoint files (only their names are read)."""
    run = logdir / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"agent": "a2c", "total_steps": total_steps}))
    for step in checkpoints:
        (run / "checkpoints" / f"step_{step:012d}.pt").write_bytes(b"x")
    return run


def last_checkpoint_step(run) -> int:
    return max(int(p.stem.removeprefix("step_")) for p in (run / "checkpoints").glob("step_*.pt"))


# 1. A cell killed before its first checkpoint


def test_a_cell_with_no_checkpoint_starts_afresh_and_a_dry_run_says_so(capsys, tmp_path):
    run = fake_cell(tmp_path, 5000)  # config.json written, killed before the first checkpoint
    (tmp_path / "CartPole-v1__a2c__none__s1").mkdir()  # killed even before its config.json
    cmds, err = dry_run(capsys, *GRID, "--norms", "wn,none", "--logdir", str(tmp_path), "--total-steps", "5000")
    assert [flag(c, "--run-name") for c in cmds] == [CELL, "CartPole-v1__a2c__none__s1"]
    assert not any("--resume" in c for c in cmds)
    lines = err.strip().splitlines()
    assert len(lines) == 2 and CELL in lines[0] and "no checkpoint" in lines[0] and "afresh" in lines[0]
    assert run.is_dir() and (run / "config.json").is_file()  # a dry run removes nothing


def test_rerunning_a_grid_finishes_a_cell_killed_before_its_first_checkpoint(tmp_path):
    run = tmp_path / CELL
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"agent": "a2c", "total_steps": 320}))
    (run / "events.out.tfevents.0.partial").write_bytes(b"")
    r = run_grid(*GRID, "--total-steps", "320", "--jobs", "1", "--logdir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of 1 runs finished" in r.stdout
    assert [line for line in r.stdout.splitlines() if "no checkpoint" in line and CELL in line]
    assert last_checkpoint_step(run) == 320 and not (run / "events.out.tfevents.0.partial").exists()


# 2. Running a grid again with other settings


def test_a_longer_rerun_resumes_every_cell_with_the_new_length_and_the_agent_flags(capsys, tmp_path):
    done = fake_cell(tmp_path, 5000, (4000, 5000))
    cut = fake_cell(tmp_path, 5000, (1000,), name="CartPole-v1__a2c__none__s1")
    cmds, _ = dry_run(capsys, *GRID, "--norms", "wn,none", "--logdir", str(tmp_path), "--total-steps", "8000",
                      "--a2c-args", "--learning-rate 1e-3")  # fmt: skip
    assert [flag(c, "--resume") for c in cmds] == [str(done), str(cut)]
    for c in cmds:
        assert flag(c, "--total-steps") == "8000" and flag(c, "--learning-rate") == "1e-3"
        assert "--run-name" not in c and "--env" not in c  # a resumed cell keeps what it is
    # the length given inside --a2c-args counts the same way
    cmds, _ = dry_run(capsys, *GRID, "--logdir", str(tmp_path), "--a2c-args", "--total-steps 9000")
    assert flag(cmds[0], "--resume") == str(done) and flag(cmds[0], "--total-steps") == "9000"


def test_a_shorter_rerun_than_a_cell_reached_is_refused_in_one_line(capsys, tmp_path):
    fake_cell(tmp_path, 8000, (5000,))
    assert grid_main([*GRID, "--logdir", str(tmp_path), "--total-steps", "3000", "--dry-run"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.strip().splitlines()) == 1
    assert CELL in out.err and "5,000" in out.err and "--total-steps 3,000" in out.err
    # shortening a cell that has not got there yet is a change of plan, not a loss: it resumes
    cmds, _ = dry_run(capsys, *GRID, "--logdir", str(tmp_path), "--total-steps", "6000")
    assert flag(cmds[0], "--total-steps") == "6000"


def test_a_cell_at_the_grids_length_is_finished_and_not_run(capsys, tmp_path):
    # train refuses a resume with nothing to train: the grid does not start one; the dry run says why
    fake_cell(tmp_path, 5000, (5040,))  # A2C's last rollout of 80 steps ended past 5,000
    for length in (["--total-steps", "5000"], []):  # the grid's length, or the run's own
        cmds, err = dry_run(capsys, *GRID, "--logdir", str(tmp_path), *length)
        assert cmds == [] and CELL in err and "already at step 5,040 of 5,000" in err


def test_a_finished_cell_that_ran_other_settings_than_asked_says_so(capsys, tmp_path):
    """Rerun into the same --logdir with a new learning rate, a finished cell is not run again: the grid
    said only "nothing to run", as if it had run what was asked."""
    from wnrl.agents.a2c import A2CConfig

    run = fake_cell(tmp_path, 5000, (5040,))
    cfg = A2CConfig.for_env("CartPole-v1", norm="wn", seed=1, total_steps=5000, learning_rate=1e-3)
    (run / "config.json").write_text(json.dumps({"agent": "a2c", **cfg.to_dict(), "run_name": CELL}))
    cmds, err = dry_run(capsys, *GRID, "--logdir", str(tmp_path), "--a2c-args", "--learning-rate 5e-4")
    assert cmds == [] and "nothing to run" in err
    assert "it ran with learning_rate 0.001 (asked: 0.0005): to run the settings asked, give another --logdir" in err
    cmds, err = dry_run(capsys, *GRID, "--logdir", str(tmp_path), "--a2c-args", "--learning-rate 1e-3")
    assert cmds == [] and "nothing to run" in err and "it ran with" not in err


# 2 and 3, on real runs: extend, refuse through train, report a failure by its last line


def test_a_grid_rerun_extends_its_runs_and_a_failing_cell_does_not_stop_the_others(tmp_path):
    wn, none = tmp_path / CELL, tmp_path / "CartPole-v1__a2c__none__s1"
    first = run_grid(*GRID, "--total-steps", "320", "--jobs", "1", "--logdir", str(tmp_path))
    assert first.returncode == 0 and "1 of 1 runs finished" in first.stdout, first.stdout + first.stderr
    assert last_checkpoint_step(wn) == 320

    # --num-envs cannot change on resume: train refuses the wn cell; the new none cell still runs to its end
    r = run_grid(*GRID, "--norms", "wn,none", "--total-steps", "640", "--a2c-args", "--num-envs 4",
                 "--jobs", "1", "--logdir", str(tmp_path))  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    failed = [line for line in r.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and CELL in failed[0] and "--num-envs cannot change when resuming" in failed[0]
    assert "1 of 2 runs finished" in r.stdout and f"failed: {CELL}" in r.stdout
    assert last_checkpoint_step(none) == 640 and last_checkpoint_step(wn) == 320

    # the same grid without the refused flag: the wn cell goes on from 320 to 640
    r = run_grid(*GRID, "--norms", "wn,none", "--total-steps", "640", "--jobs", "1", "--logdir", str(tmp_path))
    assert r.returncode == 0 and "2 of 2 runs finished" in r.stdout, r.stdout + r.stderr
    assert f"resumed  {CELL}" in r.stdout and "finished CartPole-v1__a2c__none__s1" in r.stdout
    assert last_checkpoint_step(wn) == 640
    assert json.loads((wn / "config.json").read_text())["total_steps"] == 640

    # a run that exits 0 short of the grid's length (stopped by its time limit) is not counted as finished
    r = run_grid(*GRID, "--total-steps", "4000", "--a2c-args", "--time-limit 0.001", "--logdir", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"0 of 1 runs finished; unfinished: {CELL} (step " in r.stdout and " of 4,000)" in r.stdout
    assert [line for line in r.stdout.splitlines() if line.startswith("stopped") and CELL in line]


# 4. A run of several processes: each cell (new or resumed) under torchrun

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "wnrl.train"]


def test_nproc_per_run_launches_new_and_resumed_cells_under_torchrun_and_n_below_1_is_refused(capsys, monkeypatch,
                                                                                              tmp_path):  # fmt: skip
    import torch

    from wnrl.grid import cuda_devices

    resumed = fake_cell(tmp_path, 5000, (1000,))
    cmds, _ = dry_run(capsys, *GRID, "--norms", "wn,none", "--logdir", str(tmp_path), "--total-steps", "5000",
                      "--nproc-per-run", "2")  # fmt: skip
    assert [c[: len(TORCHRUN) + 1] for c in cmds] == [TORCHRUN + ["a2c"]] * 2
    assert flag(cmds[0], "--resume") == str(resumed) and flag(cmds[1], "--run-name") == "CartPole-v1__a2c__none__s1"
    assert grid_main([*GRID, "--logdir", str(tmp_path), "--nproc-per-run", "0", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: --nproc-per-run must be at least 1, got 0"]
    # on GPUs: a run's processes each get a GPU of its own; fewer GPUs than processes is one line
    assert [cuda_devices(slot, 2, 4) for slot in range(3)] == ["0,1", "2,3", "0,1"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert grid_main([*GRID, "--logdir", str(tmp_path), "--nproc-per-run", "2", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --nproc-per-run 2 needs 2 GPUs for each run; this machine has 1"
    ]


def test_ray_tasks_of_a_torchrun_cell_ask_for_a_gpu_a_process_on_one_node():
    pytest.importorskip("ray")
    from wnrl.config import CliError
    from wnrl.raygrid import task_resources

    assert task_resources(1, 1, [0, 0]) == {"num_cpus": 1, "num_gpus": 0}  # a CPU cluster
    assert task_resources(2, 1.5, []) == {"num_cpus": 3.0, "num_gpus": 0}
    assert task_resources(1, 2, [0, 1]) == {"num_cpus": 2, "num_gpus": 1}
    assert task_resources(4, 1, [8, 4]) == {"num_cpus": 4, "num_gpus": 4}
    with pytest.raises(CliError, match="no node of the Ray cluster has 4 GPUs"):
        task_resources(4, 1, [2, 2])  # 4 GPUs in all, but a task runs on one node


def test_a_grid_of_two_process_runs_writes_them_under_torchrun(monkeypatch, tmp_path):
    """One real launch: the cell's two processes write one run. How a grid resumes such a cell is its
    command (the dry run above); that such a command resumes under torchrun is tests/test_distributed.py's
    (a second launch here cost ~12 CPU-s and checked nothing those two do not)."""
    from wnrl.checkpoint import list_checkpoints, load_checkpoint

    monkeypatch.setenv("WNRL_DIST_TIMEOUT", "30")
    args = [*GRID, "--a2c-args", "--init-rollouts 1", "--nproc-per-run", "2", "--jobs", "1", "--logdir", str(tmp_path)]
    r = run_grid(*args, "--total-steps", "640")
    assert r.returncode == 0 and "1 of 1 runs finished" in r.stdout, r.stdout + r.stderr
    assert f"started  {CELL}" in r.stdout
    state = load_checkpoint(list_checkpoints(tmp_path / CELL)[-1])
    assert state["world_size"] == 2 and state["step"] == 640


def test_every_agent_is_a_grid_agent_with_its_own_flags(capsys, tmp_path):
    """PPO and PQN cells as DQN's and A2C's: one command per cell, each agent's --AGENT-args on its own cells."""
    args = ["--agents", "ppo,pqn", "--envs", "CartPole-v1", "--norms", "wn,layer", "--seeds", "1"]
    args += ["--logdir", str(tmp_path), "--ppo-args", "--clip-coef 0.3", "--pqn-args", "--q-lambda 0.5"]
    cmds, _ = dry_run(capsys, *args)
    agents = [c[c.index("wnrl.train") + 1] for c in cmds]
    assert sorted(agents) == ["ppo", "ppo", "pqn", "pqn"]
    for cmd, agent in zip(cmds, agents):
        assert flag(cmd, "--run-name").startswith(f"CartPole-v1__{agent}__")
        assert (flag(cmd, "--clip-coef") == "0.3") if agent == "ppo" else (flag(cmd, "--q-lambda") == "0.5")
        assert ("--q-lambda" in cmd) == (agent == "pqn") and ("--clip-coef" in cmd) == (agent == "ppo")
