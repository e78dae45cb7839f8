"""evaluate, plot and grid on real (tiny) runs."""

import json
import os
import subprocess
import sys

import pytest
from wnrl.agents.a2c import A2CConfig
from wnrl.agents.a2c import train as train_a2c
from wnrl.agents.dqn import DQNConfig
from wnrl.agents.dqn import train as train_dqn

from tests.helpers import ROOT, main_in_process
from wnrl.evaluate import evaluate
from wnrl.plot import line_style, load_groups, plot


def run_module(module, *args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for seed in (1, 2):
        for norm in ("wn", "none"):
            train_dqn(
                DQNConfig.for_env(
                    "CartPole-v1",
                    logdir=str(root),
                    progress=False,
                    total_steps=1500,
                    learning_starts=200,
                    seed=seed,
                    norm=norm,
                    hidden_sizes=(64, 64),  # these runs are read, not judged: a small net is enough
                    run_name=f"dqn_{norm}_{seed}",
                )
            )
    train_a2c(A2CConfig.for_env("Catch", logdir=str(root), progress=False, total_steps=1600, run_name="a2c_catch"))
    return root


def test_evaluate_a_dqn_run(runs):
    r = evaluate(str(runs / "dqn_wn_1"), episodes=5, epsilon=0.05)
    assert r["agent"] == "dqn" and r["env"] == "CartPole-v1" and r["episodes"] == 5 and r["step"] == 1500
    assert len(r["scores"]) == 5 and r["min"] <= r["mean"] <= r["max"]
    assert all(s >= 8 for s in r["scores"])  # CartPole scores are episode lengths
    # the same seed plays the same games
    assert evaluate(str(runs / "dqn_wn_1"), episodes=5)["scores"] == r["scores"]


def test_evaluate_cli_with_video(runs, tmp_path):
    gif = tmp_path / "catch.gif"
    r = run_module("wnrl.evaluate", str(runs / "a2c_catch"), "--episodes", "4", "--greedy", "--video", str(gif))
    assert r.returncode == 0, r.stderr
    assert "a2c on Catch at step 1,600" in r.stdout and "over 4 episodes" in r.stdout
    from PIL import Image

    with Image.open(gif) as im:
        assert im.size == (252, 252) and im.n_frames >= 6  # one Catch game, 84×84 frames at 3×


def test_evaluate_errors_are_one_line(tmp_path):
    r = main_in_process("wnrl.evaluate", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such run directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    r = main_in_process("wnrl.evaluate", str(bad))
    assert r.returncode == 2 and "truncated or corrupt" in r.stderr


def test_plot_groups_seeds_and_writes_png(runs, tmp_path):
    groups = load_groups([str(runs)])
    assert {k: len(v) for k, v in groups.items()} == {
        ("dqn", "CartPole-v1", "wn"): 2,
        ("dqn", "CartPole-v1", "none"): 2,
        ("a2c", "Catch", "wn"): 1,
    }
    out = plot([str(runs)], str(tmp_path / "curves.png"))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plot_gives_projected_and_initial_norm_wn_runs_their_own_group(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    for name, extra in (("a", {}), ("b", {"wn_project": True}), ("c", {"wn_project": True, "wn_init_norm": 0.577})):
        run = tmp_path / name
        config = {"agent": "a2c", "env": "Catch", "norm": "wn", "seed": 1, "total_steps": 10, "wn_init_norm": 0.0}
        (run).mkdir()
        (run / "config.json").write_text(json.dumps({**config, **extra}))
        with SummaryWriter(str(run)) as w:
            w.add_scalar("charts/episodic_return", 1.0, 5)
    assert sorted(norm for _, _, norm in load_groups([str(tmp_path)])) == ["wn", "wn+project", "wn+project ‖v‖₀=0.577"]


def test_plot_draws_each_wn_variant_in_wns_colour_with_its_own_dashes():
    wn = line_style("wn")
    variants = [line_style(g) for g in ("wn+project", "wn ‖v‖₀=0.577", "wn+project ‖v‖₀=0.577")]
    assert wn == ("C0", "-") and {color for color, _ in variants} == {"C0"}
    assert len({style for _, style in [wn, *variants]}) == 4
    assert line_style("none")[0] not in (None, "C0") and line_style("none")[1] == "-"


def test_plot_without_event_files_fails_clearly(tmp_path):
    (tmp_path / "empty").mkdir()
    r = main_in_process("wnrl.plot", str(tmp_path / "empty"), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "no TensorBoard event files" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_grid_runs_and_resumes(tmp_path):
    args = [
        "--agents",
        "dqn,a2c",
        "--envs",
        "CartPole-v1",
        "--norms",
        "wn",
        "--seeds",
        "1",
        "--jobs",
        "2",
        "--logdir",
        str(tmp_path),
        "--dqn-args",
        "--total-steps 400 --learning-starts 100",
        "--a2c-args",
        "--total-steps 640",
    ]
    r = run_module("wnrl.grid", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    names = {p.name for p in tmp_path.iterdir() if p.is_dir()}
    assert names == {f"CartPole-v1__{a}__wn__s1" for a in ("dqn", "a2c")}
    for name in names:
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        assert cfg["norm"] in name and cfg["agent"] in name
        assert (tmp_path / f"{name}.log").is_file()
    assert "2 of 2 runs finished" in r.stdout
    again = run_module("wnrl.grid", *args)  # a second call resumes (finished runs end at once)
    assert again.returncode == 0 and "2 of 2 runs finished" in again.stdout


def test_grid_bad_input(tmp_path):
    r = main_in_process("wnrl.grid", "--norms", "wn,bn", "--logdir", str(tmp_path))
    assert r.returncode == 2 and "unknown agent or norm: bn" in r.stderr
    r = main_in_process("wnrl.grid", "--seeds", "x", "--logdir", str(tmp_path))
    assert r.returncode == 2 and "--seeds" in r.stderr


def test_summary_table(runs):
    from wnrl.plot import markdown_table, summarize

    rows = summarize([str(runs)], threshold=15.0)
    by_norm = {(r["agent"], r["norm"]): r for r in rows}
    wn = by_norm[("dqn", "wn")]
    assert wn["seeds"] == 2 and wn["ms_per_1k_steps"] > 0

    # "reached": the seeds whose curve gets to the threshold (every CartPole game scores >= 8; none 1e9)
    def reached(threshold):
        return next(
            r["reached"]
            for r in summarize([str(runs)], threshold=threshold)
            if r["norm"] == "wn" and r["agent"] == "dqn"
        )

    assert reached(0.0) == 2 and reached(1e9) == 0
    table = markdown_table(rows, 15.0)
    assert table.splitlines()[0].startswith("| agent | env | norm | seeds |") and len(table.splitlines()) == 2 + len(
        rows
    )
