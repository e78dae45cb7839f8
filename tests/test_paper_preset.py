"""The paper's experiment as a grid preset (Salimans & Kingma, 2016, Table 3), --dry-run, and the
summary beside the paper's scores."""

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, scalars
from wnrl.grid import main as grid_main
from wnrl.plot import PAPER_TABLE3, best_window_return, final_return, paper_comparison, paper_table

GAMES = ["Breakout", "Enduro", "Seaquest", "SpaceInvaders"]


def run_module(module, *args, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def dry_run(capsys, *args) -> list[list[str]]:
    assert grid_main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    return [shlex.split(line) for line in out.splitlines()]


def flag(cmd: list[str], name: str) -> str:
    """The value of ``name`` the command sets last (the one argparse keeps)."""
    values = [cmd[i + 1] for i, a in enumerate(cmd) if a == name]
    assert values, f"{name} not in {shlex.join(cmd)}"
    return values[-1]


def test_paper_preset_dry_run_is_the_eight_runs_of_table_3(capsys, tmp_path):
    cmds = dry_run(capsys, "--preset", "paper", "--logdir", str(tmp_path / "paper"))
    assert len(cmds) == 8  # 4 games × {none, wn} × 1 seed, one line each
    cells = {(flag(c, "--env"), flag(c, "--norm"), flag(c, "--seed")) for c in cmds}
    assert cells == {(g, n, "1") for g in GAMES for n in ("none", "wn")}
    for c in cmds:
        assert c[1:4] == ["-m", "wnrl.train", "dqn"]
        # Nature DQN: 50M agent steps, 1M replay, 50k replay start, target every 10k steps, ε 1 → 0.1 over 1M steps
        assert flag(c, "--total-steps") == "50000000" and flag(c, "--buffer-size") == "1000000"
        assert flag(c, "--learning-starts") == "50000" and flag(c, "--target-update-frequency") == "10000"
        assert flag(c, "--end-epsilon") == "0.1" and flag(c, "--exploration-fraction") == "0.02"
        # the paper's changes: minibatch 64, learning rate 1e-4 (normal) or 3e-4 (weight norm)
        assert flag(c, "--batch-size") == "64"
        assert flag(c, "--optimizer") == "adamax" and flag(c, "--adam-beta1") == "0.5"
        assert flag(c, "--learning-rate") == {"none": "1e-4", "wn": "3e-4"}[flag(c, "--norm")]
        # the paper's weight norm: its v ~ N(0, 0.05²) draw, and ‖v‖ free to grow
        assert flag(c, "--wn-init-norm") == "0" and flag(c, "--wn-project") == "false"
        # Table 3's maximum evaluation score: 30 games at ε = 0.05 after every 250,000-step epoch
        assert flag(c, "--eval-every") == "250000" and flag(c, "--eval-episodes") == "30"
        assert flag(c, "--eval-greedy") == "false"
    assert not (tmp_path / "paper").exists()  # a dry run starts nothing, creates nothing


def test_dry_run_flags_replace_the_presets(capsys, tmp_path):
    cmds = dry_run(
        capsys, "--preset", "paper", "--envs", "Seaquest", "--seeds", "2-3", "--total-steps", "2e6",
        "--dqn-args", "--batch-size 32", "--logdir", str(tmp_path),
    )  # fmt: skip
    assert [(flag(c, "--env"), flag(c, "--norm"), flag(c, "--seed")) for c in cmds] == [
        ("Seaquest", n, s) for n in ("none", "wn") for s in ("2", "3")
    ]
    for c in cmds:  # the schedule follows the length; the user's flags win
        assert flag(c, "--total-steps") == "2000000" and flag(c, "--exploration-fraction") == "0.5"
        assert flag(c, "--batch-size") == "32"


def test_dry_run_of_any_grid_and_of_a_grid_to_resume(capsys, tmp_path):
    cmds = dry_run(capsys, "--agents", "a2c", "--envs", "CartPole-v1", "--norms", "wn,none", "--seeds", "1-2",
                   "--logdir", str(tmp_path), "--total-steps", "640")  # fmt: skip
    assert len(cmds) == 4 and all(flag(c, "--total-steps") == "640" for c in cmds)
    assert list(tmp_path.iterdir()) == []
    run = tmp_path / "CartPole-v1__a2c__wn__s1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text('{"total_steps": 640}')
    (run / "checkpoints" / "step_000000000320.pt").write_bytes(b"")  # cut at 320 of 640
    cmds = dry_run(capsys, "--agents", "a2c", "--envs", "CartPole-v1", "--norms", "wn", "--seeds", "1",
                   "--logdir", str(tmp_path))  # fmt: skip
    assert len(cmds) == 1 and flag(cmds[0], "--resume") == str(run)


def test_a_wn_project_cell_is_its_own_run(capsys, tmp_path):
    cmds = dry_run(capsys, "--agents", "dqn", "--envs", "Catch", "--norms", "wn,wn+project,wn_mobn+project,none",
                   "--seeds", "1", "--logdir", str(tmp_path))  # fmt: skip
    assert [(flag(c, "--norm"), "--wn-project" in c, flag(c, "--run-name")) for c in cmds] == [
        ("wn", False, "Catch__dqn__wn__s1"),
        ("wn", True, "Catch__dqn__wn+project__s1"),
        ("wn_mobn", True, "Catch__dqn__wn_mobn+project__s1"),
        ("none", False, "Catch__dqn__none__s1"),
    ]
    assert flag(cmds[1], "--wn-project") == "true"
    # in the paper preset (which pins --wn-project false) the cell still projects, at the preset's wn learning rate
    cmds = dry_run(capsys, "--preset", "paper", "--envs", "Pong", "--norms", "wn,wn+project", "--logdir", str(tmp_path))
    assert [(flag(c, "--wn-project"), flag(c, "--learning-rate")) for c in cmds] == [
        ("false", "3e-4"),
        ("true", "3e-4"),
    ]
    assert grid_main(["--norms", "none+project", "--dry-run"]) == 2
    assert "unknown agent or norm: none+project" in capsys.readouterr().err


def test_grid_names_an_unknown_env_before_starting(capsys, tmp_path):
    assert grid_main(["--preset", "paper", "--envs", "Breakot", "--logdir", str(tmp_path)]) == 2
    assert "did you mean 'Breakout'" in capsys.readouterr().err
    assert grid_main(["--preset", "paper", "--total-steps", "0", "--dry-run"]) == 2


def test_final_and_best_returns_use_the_logged_steps():
    steps = np.array([100.0, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    values = np.array([0.0, 0, 1, 9, 9, 2, 2, 2, 2, 4])
    assert final_return(steps, values) == 3.0  # games in the last 10% of what was logged (900, 1000)
    assert best_window_return(steps, values) == 9.0  # ten windows of 100 steps for a short run
    assert best_window_return(steps, values, window=500) == 9.0  # a window is at most a tenth of the run
    long_steps = np.arange(1, 101) * 50_000.0  # 5M steps: 20 windows of 250,000 (the paper's epochs)
    long_values = np.where(long_steps <= 250_000, 100.0, 1.0)
    assert best_window_return(long_steps, long_values) == 100.0
    assert best_window_return(long_steps, long_values, window=500_000) == (5 * 100 + 5 * 1) / 10


def test_tiny_paper_preset_runs_and_the_summary_sets_it_beside_the_paper(tmp_path, capsys):
    r = run_module(
        "wnrl.grid", "--preset", "paper", "--envs", "Breakout", "--total-steps", "1100", "--jobs", "2",
        "--logdir", str(tmp_path),
        "--dqn-args", "--num-envs 1 --learning-starts 1000 --buffer-size 2000 --log-every 100 --eval-episodes 2",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 of 2 runs finished" in r.stdout
    for norm, lr in (("none", 1e-4), ("wn", 3e-4)):
        cfg = json.loads((tmp_path / f"Breakout__dqn__{norm}__s1" / "config.json").read_text())
        assert (cfg["norm"], cfg["learning_rate"], cfg["batch_size"], cfg["total_steps"]) == (norm, lr, 64, 1100)
        assert (cfg["target_update_frequency"], cfg["end_epsilon"], cfg["max_grad_norm"]) == (10_000, 0.1, 0.0)

    rows = paper_comparison([str(tmp_path)])
    assert [r["game"] for r in rows] == ["Breakout"]
    row = rows[0]
    assert row["steps"] == 1100 and row["none"]["seeds"] == row["wn"]["seeds"] == 1
    assert (row["paper_none"], row["paper_wn"], row["nature_dqn"]) == PAPER_TABLE3["Breakout"][1:]
    table = paper_table(rows)
    assert "| Breakout | 1,100 | 1 / 1 |" in table and "| 410 | 403 | 401 |" in table
    assert "Not among these runs: Enduro, Seaquest, Space Invaders" in table
    # "ours" is the paper's measure, the best evaluation (here the one at the end: the run is shorter than an epoch)
    for norm in ("none", "wn"):
        evals = scalars(tmp_path / f"Breakout__dqn__{norm}__s1")["eval/episodic_return"]
        assert [s for s, _ in evals] == [1100]
        assert row[norm]["measure"] == "eval" and row[norm]["best_mean"] == pytest.approx(evals[0][1])
    assert "Ours: best evaluation" in table

    from wnrl.plot import main as plot_main

    assert plot_main([str(tmp_path), "-o", str(tmp_path / "curves.png"), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "| dqn | Breakout | wn | 1 |" in out and "Salimans & Kingma (2016), Table 3" in out
    assert "best eval/episodic_return" in out
