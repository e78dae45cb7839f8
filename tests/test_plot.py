"""python -m wnrl.plot on run directories written here directly (config.json + TensorBoard events,
as wnrl.run writes them), and on one tiny real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from tests.helpers import ROOT, main_in_process, train_in_process
from wnrl import plot as P

# What a real DQN CartPole run's config.json holds (wnrl.run: {"agent": ..., **cfg.to_dict()}).
CONFIG = {
    "agent": "dqn", "env": "CartPole-v1", "total_steps": 50_000, "num_envs": 1, "seed": 1, "device": "auto",
    "norm": "wn", "hidden_sizes": [64, 64], "wn_init_norm": 0.0, "wn_project": False, "activation": "relu",
    "logdir": "runs", "run_name": "x", "checkpoint_every": 500_000, "log_every": 10_000, "sticky_actions": 0.0,
    "life_loss_terminal": True, "clip_rewards": False, "progress": True, "compile": "off", "buffer_size": 10_000,
    "learning_starts": 1_000, "batch_size": 64, "optimizer": "adam", "learning_rate": 2.3e-3, "lr_decay": False,
    "adam_eps": 1e-8, "gamma": 0.99, "train_frequency": 256, "target_update_frequency": 10, "n_step": 1,
}  # fmt: skip


def make_run(root: Path, name: str, returns, steps=None, sps=1000.0, evals=(), **config) -> Path:
    """A run directory: config.json and one event file with an episodic return per step (and SPS), and
    ``evals``' (step, mean) as eval/episodic_return (--eval-every)."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({**CONFIG, "run_name": name, **config}, indent=2))
    steps = np.arange(1, len(returns) + 1) * 100 if steps is None else steps
    with SummaryWriter(str(run)) as w:
        for s, r in zip(steps, returns):
            w.add_scalar("charts/episodic_return", float(r), int(s))
            w.add_scalar("charts/SPS", sps, int(s))
        for s, mean in evals:
            w.add_scalar("eval/episodic_return", mean, s)
    return run


def plot_cli(*args):
    """``python -m wnrl.plot`` run in this process (its ``main``)."""
    return main_in_process("wnrl.plot", *map(str, args))


def plot_process(*args, timeout=120):
    """``python -m wnrl.plot`` as its own process: what it prints includes what libraries print."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "wnrl.plot", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.parametrize("bins", ["0", "-5"])
def test_bins_below_one_is_a_one_line_error(tmp_path, bins):
    make_run(tmp_path, "a", [1.0, 2.0, 3.0])
    r = plot_cli(tmp_path, "-o", tmp_path / "x.png", "--bins", bins, "--summary")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--bins" in r.stderr and "at least 1" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_resumed_run_plots_quietly_with_each_step_once_and_the_later_files_value(tmp_path):
    """A run killed after step 1,000 and resumed from its checkpoint at 500 has two event files whose
    steps overlap; the resumed run's values win (as the logger's purge_step intends)."""
    run = make_run(tmp_path, "resumed", [1.0] * 10)  # steps 100..1000, value 1
    with SummaryWriter(str(run), purge_step=501) as w:  # the logger resuming at step 500
        for s in range(600, 1600, 100):
            w.add_scalar("charts/episodic_return", 2.0, s)
    with SummaryWriter(str(run)) as w:  # a file with overlapping steps and no purge mark
        for s in range(1200, 2000, 100):
            w.add_scalar("charts/episodic_return", 3.0, s)
    steps, values = P.read_curve(run)
    assert steps.tolist() == list(range(100, 2000, 100))  # each step once, in order
    assert values.tolist() == [1.0] * 5 + [2.0] * 6 + [3.0] * 8
    r = plot_process(run, "-o", tmp_path / "x.png", "--summary")
    assert r.returncode == 0, r.stderr
    assert "out of order" not in (r.stdout + r.stderr).lower() and "removing" not in (r.stdout + r.stderr).lower()


def test_a_resume_on_a_machine_whose_clock_is_behind_is_still_read_after_the_first_file(tmp_path):
    """The resumed segment's file stamped earlier than the killed run's (a resume on another node whose
    clock is behind): read by wall time alone, the first file (no restart mark) came last and superseded
    the whole resumed segment."""
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({**CONFIG, "run_name": "r"}))
    with SummaryWriter(str(run), purge_step=501, filename_suffix=".b") as w:  # the resume, written first
        for s in range(600, 1600, 100):
            w.add_scalar("charts/episodic_return", 2.0, s)
    with SummaryWriter(str(run), filename_suffix=".a") as w:  # the killed run's file, stamped later
        for s in range(100, 1100, 100):
            w.add_scalar("charts/episodic_return", 1.0, s)
    steps, values = P.read_curve(run)
    assert steps.tolist() == list(range(100, 1600, 100))
    assert values.tolist() == [1.0] * 5 + [2.0] * 10


def test_games_ending_on_the_same_step_are_all_kept(tmp_path):
    """Several envs can finish a game on one agent step: one file's repeated steps are not duplicates."""
    run = make_run(tmp_path, "a", [1.0, 2.0, 3.0], steps=[100, 100, 200])
    assert P.read_curve(run)[1].tolist() == [1.0, 2.0, 3.0]


def test_runs_of_different_configs_are_not_pooled_as_seeds(tmp_path):
    """A long default run and a short small-buffer run, both seed 1, are two groups labelled by what
    differs, and the summary says what differs in one line."""
    make_run(tmp_path, "long", [1.0, 2.0], total_steps=10_000_000, buffer_size=1_000_000)
    make_run(tmp_path, "short", [5.0, 6.0], total_steps=4_000, buffer_size=1_000)
    groups = P.load_groups([str(tmp_path)])
    assert sorted(groups) == [
        ("dqn", "CartPole-v1", "wn, total_steps=10M, buffer_size=1M"),
        ("dqn", "CartPole-v1", "wn, total_steps=4k, buffer_size=1k"),
    ]
    assert all(len(runs) == 1 for runs in groups.values())
    assert P.differences(groups)[("dqn", "CartPole-v1")] == ["total_steps", "buffer_size"]
    r = plot_cli(tmp_path, "-o", tmp_path / "x.png", "--summary")
    assert r.returncode == 0, r.stderr
    assert "dqn on CartPole-v1: the groups differ in total_steps, buffer_size" in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith("| dqn |")]
    assert len(rows) == 2 and any("total_steps=4k, buffer_size=1k" in line for line in rows)


def test_a_run_whose_settings_changed_at_a_resume_is_a_group_of_its_own_and_says_so(tmp_path):
    """Two 5M runs of seeds 1 and 2, and a seed-3 run planned for 2M and extended to 5M at 2M (its
    first 2M followed the 2M schedules): the extended run is not pooled with the others as a third seed."""
    for seed in (1, 2):
        make_run(tmp_path, f"s{seed}", [1.0, 2.0], total_steps=5_000_000, seed=seed)
    changes = [{"step": 2_000_000, "fields": {"total_steps": [2_000_000, 5_000_000]}}]
    make_run(tmp_path, "s3", [9.0, 9.0], total_steps=5_000_000, seed=3, changes=changes)
    groups = P.load_groups([str(tmp_path)])
    assert sorted(groups) == [
        ("dqn", "CartPole-v1", "wn, changed at 2M: total_steps 2M→5M"),
        ("dqn", "CartPole-v1", "wn, unchanged"),
    ]
    assert sorted(r["seed"] for r in groups[("dqn", "CartPole-v1", "wn, unchanged")]) == [1, 2]


@pytest.mark.parametrize("long_labels", [False, True])
def test_a_legend_of_long_labels_goes_under_its_panel_wrapped_and_in_the_image(tmp_path, monkeypatch, long_labels):
    """Labels that name several differing settings would cover the curves or run off the figure: they go
    under the panel, wrapped, and the image grows to hold them; short ones stay inside the panel."""
    from matplotlib.figure import Figure

    if long_labels:
        make_run(tmp_path, "a", [1.0, 2.0], total_steps=10_000_000, buffer_size=1_000_000, learning_starts=80_000)
        make_run(tmp_path, "b", [5.0, 6.0], total_steps=4_000, buffer_size=1_000, learning_starts=1_000)
    else:
        make_run(tmp_path, "a", [1.0, 2.0], norm="wn")
        make_run(tmp_path, "b", [5.0, 6.0], norm="none")
    saved = []
    original = Figure.savefig

    def savefig(fig, *args, **kwargs):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        legend = ax.get_legend()
        labels = [t.get_text() for t in legend.get_texts()]
        (caption,) = fig.texts
        boxes = legend.get_window_extent(), ax.xaxis.get_tightbbox(renderer), ax.get_window_extent()
        saved.append((*boxes, caption.get_window_extent(), labels))
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    png = P.plot([str(tmp_path)], str(tmp_path / "x.png"))
    ((legend_box, ax_with_labels, ax_box, caption_box, labels),) = saved
    with Image.open(png) as image:
        width, height = image.size
    if long_labels:
        assert legend_box.y1 < ax_with_labels.y0 + 1  # under the x label and tick labels
        assert caption_box.y1 < legend_box.y0 + 1  # the caption under the legend
        assert all("\n" in label for label in labels)  # wrapped
        assert height > 400  # the 5.5 × 4 inch figure grew to hold them
    else:
        assert ax_box.y0 <= legend_box.y0 and legend_box.y1 <= ax_box.y1  # inside the panel
        assert labels == ["none (1 seed)", "wn (1 seed)"] and (width, height) == (550, 400)


def test_bookkeeping_fields_do_not_split_a_group(tmp_path):
    """Seed, run name, logdir, device, progress, log and checkpoint cadence, compile and replay
    placement do not change the experiment; WN settings do not change a run without weight norm."""
    make_run(tmp_path, "a", [1.0], seed=1)
    make_run(tmp_path, "b", [2.0], seed=2, logdir="elsewhere", device="cuda", progress=False, log_every=1,
             checkpoint_every=7, compile="default", replay_on_device="yes", save_replay=True, eval_every=500,
             eval_episodes=3, eval_greedy=True, eval_video=True, track=True, wandb_project="p")  # fmt: skip
    make_run(tmp_path, "c", [1.0], norm="none", wn_init_norm=0.0)
    make_run(tmp_path, "d", [2.0], norm="none", wn_init_norm=0.577, wn_project=True, seed=2)
    groups = P.load_groups([str(tmp_path)])
    assert {k: len(v) for k, v in groups.items()} == {
        ("dqn", "CartPole-v1", "wn"): 2,
        ("dqn", "CartPole-v1", "none"): 2,
    }
    assert P.differences(groups)[("dqn", "CartPole-v1")] == ["norm"]
    for field in P.BOOKKEEPING:  # the list is documented in the module
        assert f"``{field}``" in P.__doc__


def test_the_summary_reports_evaluations_where_runs_logged_them(tmp_path):
    """Per seed the best and the last evaluation (--eval-every), mean ± sample std over seeds; kept by --export;
    no such columns for runs without evaluations."""
    make_run(tmp_path / "ev", "a", [1.0] * 5, seed=1, eval_every=200, evals=[(200, 3.0), (400, 7.0), (600, 5.0)])
    make_run(tmp_path / "ev", "b", [2.0] * 5, seed=2, eval_every=200, evals=[(200, 4.0), (400, 6.0), (600, 9.0)])
    (row,) = P.summarize([str(tmp_path / "ev")])
    assert row["eval_best_per_seed"] == {1: 7.0, 2: 9.0} and (row["eval_best_mean"], row["eval_last_mean"]) == (8, 7)
    table = P.markdown_table([row], None)
    assert "best eval/episodic_return (mean ± sample std over seeds" in table
    assert "| 8.00 ± 1.41 (2) | 7.00 ± 2.83 (2) |" in table
    for run in P.find_runs([str(tmp_path / "ev")]):
        P.export_run(run, tmp_path / "exported")
    (exported,) = P.summarize([str(tmp_path / "exported")])
    assert exported["eval_best_per_seed"] == {1: 7.0, 2: 9.0}
    make_run(tmp_path / "plain", "c", [1.0, 2.0])
    assert "eval/" not in P.markdown_table(P.summarize([str(tmp_path / "plain")]), None)
    # seeds evaluated greedily and at ε share a training-curve group, not an evaluation mean
    make_run(tmp_path / "ev", "g", [1.0] * 5, seed=3, eval_every=200, eval_greedy=True, evals=[(200, 100.0)])
    (mixed,) = P.summarize([str(tmp_path / "ev")])
    assert mixed["eval_seeds"] == 0 and "eval_best_mean" not in mixed
    assert "runs evaluated differently: eval_greedy=" in P.markdown_table([mixed], None)


def test_runs_repeated_with_one_seed_are_repeats_not_seeds(tmp_path):
    """Two runs of seed 1 are one seed run twice: no std over them, and the table says so."""
    make_run(tmp_path, "a", [100.0] * 10, seed=1)
    make_run(tmp_path, "b", [200.0] * 10, seed=1)
    (row,) = P.summarize([str(tmp_path)])
    assert (row["seeds"], row["runs"]) == (1, 2)
    assert row["final_mean"] == 150.0 and row["final_std"] is None  # the seed's runs averaged
    table = P.markdown_table([row], None)
    assert "| 1 (2 runs; repeated: seed 1 ×2) |" in table and "150.00 ± —" in table
    assert "0.00" not in table.split("150.00")[1].split("|")[0]


def test_std_is_over_distinct_seeds_with_a_seeds_repeats_averaged_first(tmp_path):
    make_run(tmp_path, "a", [100.0] * 10, seed=1)
    make_run(tmp_path, "b", [200.0] * 10, seed=1)
    make_run(tmp_path, "c", [350.0] * 10, seed=2)
    (row,) = P.summarize([str(tmp_path)])
    assert (row["seeds"], row["runs"]) == (2, 3) and row["per_seed"] == {1: 150.0, 2: 350.0}
    assert row["final_mean"] == 250.0 and row["final_std"] == pytest.approx(np.std([150.0, 350.0], ddof=1))
    r = plot_cli(tmp_path, "-o", tmp_path / "x.png", "--summary")
    assert r.returncode == 0, r.stderr
    assert "| 2 (3 runs; repeated: seed 1 ×2) |" in r.stdout and "250.00 ± 141.42" in r.stdout


def test_summary_names_its_columns_and_gives_trainings_last_100_mean(tmp_path):
    """The last-100-episodes column equals what training prints at its end; headers name the tag."""
    train = train_in_process(
        "dqn", "--env", "CartPole-v1", "--total-steps", "3000", "--learning-starts", "500", "--logdir", str(tmp_path),
        "--run-name", "r", "--progress", "false",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    printed = float(train.stdout.split("mean return of the last ")[1].split(":")[1].split()[0])
    (row,) = P.summarize([str(tmp_path)])
    assert f"{row['last100_mean']:.2f}" == f"{printed:.2f}"
    r = plot_cli(tmp_path, "-o", tmp_path / "x.png", "--summary")
    assert r.returncode == 0, r.stderr
    head = next(line for line in r.stdout.splitlines() if line.startswith("| agent |"))
    assert "mean episodic_return over the last 10% of logged steps" in head
    assert "mean episodic_return of the last 100 episodes (training's last line;" in head
    assert "final return" not in r.stdout
    row_line = next(line for line in r.stdout.splitlines() if line.startswith("| dqn |"))
    assert f"| {printed:.2f} ± — |" in row_line

    # --export keeps the run's games and config in a few kB; the summary of the export is the run's
    exported = tmp_path.parent / f"{tmp_path.name}-exported"
    assert P.main(["--export", str(exported), str(tmp_path)]) == 0
    (copy,) = P.summarize([str(exported)])
    for k in ("agent", "env", "norm", "seeds", "per_seed", "final_mean", "last100_mean"):
        assert copy[k] == pytest.approx(row[k]), k
    assert copy["ms_per_1k_steps"] == pytest.approx(row["ms_per_1k_steps"], rel=1e-3)  # SPS kept to 0.1
    lines = (exported / "r" / P.EPISODES_CSV).read_text().splitlines()
    scalars = P.read_scalars(tmp_path / "r")
    assert lines[0] == "step,return,length" and len(lines) - 1 == len(scalars[P.TAG][0]) > 5
    assert [float(x.split(",")[2]) for x in lines[1:]] == list(scalars["charts/episodic_length"][1])
    copied = P.read_scalars(exported / "r")  # the learner's diagnostics too
    assert "losses/td_loss" in copied and "dormant/trunk.net.0/tau_0" in copied
    for tag in copied:
        if tag.startswith(("losses/", "dormant/")):
            np.testing.assert_allclose(copied[tag][1], scalars[tag][1], rtol=1e-5)
            np.testing.assert_array_equal(copied[tag][0], scalars[tag][0])
    meta = json.loads((exported / "r" / "config.json").read_text())["exported"]
    assert meta["last_step"] == int(scalars[P.TAG][0][-1]) and meta["wall_clock_s"] > 0

    r = plot_cli(tmp_path, "-o", tmp_path / "x.png", "--summary", "--tag", "losses/td_loss", "--threshold", "1")
    assert r.returncode == 0, r.stderr
    head = next(line for line in r.stdout.splitlines() if line.startswith("| agent |"))
    assert "mean td_loss over the last 10% of logged steps" in head and "episodes" not in head
    assert "steps until td_loss" in head and "return" not in head


def test_iqm_of_known_arrays():
    assert P.iqm(np.arange(1, 9)) == 4.5  # 8 values: 2 cut from each end, mean of 3..6
    assert P.iqm(np.arange(1, 11)) == 5.5  # 10 values: ⌊2.5⌋ = 2 cut, mean of 3..8
    assert P.iqm([1, 2, 3, 4]) == 2.5 and P.iqm([0, 0, 0, 100]) == 0.0  # the outlier is cut
    assert P.iqm([7]) == 7.0 and P.iqm([3, 1]) == 2.0 and P.iqm([1, 2, 30]) == 11.0  # n < 4: the mean
    assert P.iqm([[8, 1, 2, 3, 4, 5, 6, 7], [9, 2, 3, 4, 5, 6, 7, 8]], axis=1).tolist() == [4.5, 5.5]


def test_stratified_bootstrap_is_deterministic_contains_the_estimate_and_never_mixes_games():
    games = [np.array([0.1, 0.4, 0.2, 0.9]), np.array([1.5, 1.1, 1.3])]
    point = P.iqm(np.concatenate(games))
    lo, hi = P.stratified_bootstrap_ci(games, reps=2000, seed=3)
    assert lo <= point <= hi and lo < hi
    assert P.stratified_bootstrap_ci(games, reps=2000, seed=3) == (lo, hi)
    # each resample keeps every game's seed count and draws only from that game's own scores
    rows = P.stratified_resample(games, np.random.default_rng(0), reps=500)
    assert rows.shape == (500, 7)
    assert np.isin(rows[:, :4], games[0]).all() and np.isin(rows[:, 4:], games[1]).all()
    # so a statistic that only mixing would change does not move: 3 seeds at 0, one at 1 → mean 0.25 always
    assert P.stratified_bootstrap_ci([[0.0, 0.0, 0.0], [1.0]], np.mean, reps=300) == (0.25, 0.25)


def test_normalization_uses_random_and_human_scores():
    assert P.reference_scores("Pong") == (-20.7, 14.6) and P.reference_scores("ALE/Breakout-v5") == (1.7, 30.5)
    assert P.normalize(-20.7, -20.7, 14.6) == 0.0 and P.normalize(14.6, -20.7, 14.6) == 1.0
    assert P.normalize(16.1, 1.7, 30.5) == pytest.approx(0.5)
    # MinAtar: random play measured through wnrl's env, the paper's DQN at 5M frames; with or without a version
    rand, reference = P.reference_scores("MinAtar/Breakout-v1")
    assert (rand, reference) == P.MINATAR_RANDOM_REFERENCE["Breakout"] == P.reference_scores("MinAtar/Breakout")
    assert P.normalize(rand, rand, reference) == 0.0 and P.normalize(reference, rand, reference) == 1.0
    assert all(0 <= r < ref for r, ref in P.MINATAR_RANDOM_REFERENCE.values())
    assert P.reference_scores("CartPole-v1") is None and P.reference_scores("Catch") is None


def test_summary_reports_seeds_per_game_and_the_iqm_across_games(tmp_path):
    """Pong at normalized 0, 0.5, 1 (three seeds), Breakout at 0.25, 0.75 (two): IQM of the five is the
    mean of the middle three, 0.5; CartPole has no reference and is left out with a note."""
    for seed, x in zip((1, 2, 3), (0.0, 0.5, 1.0)):
        make_run(tmp_path, f"pong{seed}", [-20.7 + x * 35.3] * 10, agent="a2c", env="Pong", seed=seed)
    for seed, x in zip((1, 2), (0.25, 0.75)):
        make_run(tmp_path, f"breakout{seed}", [1.7 + x * 28.8] * 10, agent="a2c", env="Breakout", seed=seed)
    make_run(tmp_path, "cartpole", [20.0] * 10, agent="a2c")
    (row,) = P.across_games(P.load_groups([str(tmp_path)]))
    assert row["iqm"] == pytest.approx(0.5) and row["unnormalized"] == ["CartPole-v1"]
    assert sorted(row["games"]) == ["Breakout", "Pong"] and len(row["games"]["Pong"]) == 3
    lo, hi = row["ci"]
    assert lo <= 0.5 <= hi and 0.0 <= lo and hi <= 1.0
    r = plot_cli(tmp_path, "-o", tmp_path / "x.png", "--summary")
    assert r.returncode == 0, r.stderr
    assert "| a2c | Pong | wn | 3 |" in r.stdout and "-3.05 ± 17.65 |" in r.stdout  # std over 3 seeds
    assert "| a2c | CartPole-v1 | wn | 1 | 20.00 ± — |" in r.stdout
    assert f"| a2c | wn | Breakout 0.500 (2), Pong 0.500 (3) | 0.500 [{lo:.3f}, {hi:.3f}] |" in r.stdout
    assert "Not in the IQM (no reference score; reported unnormalized above): CartPole-v1 (a2c wn)." in r.stdout


def test_curve_band_is_a_bootstrap_interval_of_the_mean_over_seeds():
    same = np.tile(np.linspace(0, 1, 5), (3, 1))
    mean, lo, hi = P.mean_band(same)
    assert np.array_equal(mean, same[0]) and np.array_equal(lo, same[0]) and np.array_equal(hi, same[0])
    curves = np.random.default_rng(1).normal(size=(4, 6))
    mean, lo, hi = P.mean_band(curves)
    assert np.allclose(mean, curves.mean(0)) and (lo <= mean).all() and (mean <= hi).all() and (lo < hi).all()
    assert (lo >= curves.min(0)).all() and (hi <= curves.max(0)).all()
    assert all(np.array_equal(a, b) for a, b in zip(P.mean_band(curves), (mean, lo, hi)))  # seeded
    assert "95% bootstrap CI" in P.BAND_CAPTION


def test_a_95_percent_interval_is_claimed_only_where_resampling_can_give_one(tmp_path):
    """With 2-3 seeds of one game every percentile bootstrap "95% interval" is the range of the seeds (a
    resample of only the lowest seed has probability n⁻ⁿ ≥ 2.5%): the band and the IQM's interval say so."""
    assert [P.bootstrap_is_range(n) for n in ([2], [3], [4], [2, 2], [3, 3], [3, 2])] == [
        True, True, False, True, False, False,
    ]  # fmt: skip
    curves = np.random.default_rng(2).normal(size=(3, 6))
    _, lo, hi = P.mean_band(curves)
    assert np.array_equal(lo, curves.min(0)) and np.array_equal(hi, curves.max(0))
    assert "the range of the seeds with 2-3" in P.BAND_CAPTION
    for seed, score in ((1, -3.0), (2, 5.0)):
        make_run(tmp_path, f"pong{seed}", [score] * 10, agent="a2c", env="Pong", seed=seed)
    (row,) = P.across_games(P.load_groups([str(tmp_path)]))
    assert row["ci_is_range"] and row["ci"] == pytest.approx([P.normalize(s, -20.7, 14.6) for s in (-3.0, 5.0)])
    assert "too few seeds for a 95% interval" in P.iqm_table([row])


def test_one_game_under_two_names_is_one_stratum_and_a_run_named_twice_is_one_run(tmp_path):
    make_run(tmp_path, "a", [0.0] * 10, agent="a2c", env="Pong", seed=1)
    make_run(tmp_path, "b", [10.0] * 10, agent="a2c", env="ALE/Pong-v5", seed=2)
    (row,) = P.across_games(P.load_groups([str(tmp_path)]))
    assert list(row["games"]) == ["ALE/Pong-v5"] and len(row["games"]["ALE/Pong-v5"]) == 2
    assert P.find_runs([str(tmp_path), str(tmp_path / "a")]) == [tmp_path / "a", tmp_path / "b"]


def test_a_curve_is_not_drawn_past_its_runs_last_game_and_an_export_keeps_every_digit(tmp_path):
    grid = np.array([100.0, 200.0, 300.0, 400.0])
    out = P.smooth_on_grid(np.array([100.0, 300.0]), np.array([1.0, 3.0]), grid)
    assert out[:3].tolist() == [1.0, 1.0, 3.0] and np.isnan(out[3])  # carried over 200, not past 300
    run = make_run(tmp_path / "runs", "r", [199.78683, 2785370.5, -20.0])
    assert P.main(["--export", str(tmp_path / "out"), str(run)]) == 0
    assert P.read_curve(tmp_path / "out" / "r")[1].tolist() == P.read_curve(run)[1].tolist()
    with SummaryWriter(str(run)) as w:  # SPS logged after the last game: the steps trained, as the run says
        w.add_scalar("charts/SPS", 1000.0, 450)
    assert P.main(["--export", str(tmp_path / "again"), str(run)]) == 0
    runs = [{"run": d, "steps": P.read_curve(d)[0]} for d in (run, tmp_path / "again" / "r")]
    assert [P.trained_steps(r) for r in runs] == [450, 450]


def test_export_of_nothing_and_a_broken_export_are_one_line_errors(tmp_path, capsys):
    assert P.main(["--export", str(tmp_path / "out"), str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    broken = tmp_path / "runs" / "b"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text(json.dumps(CONFIG))
    (broken / P.EPISODES_CSV).write_text("when,score\n1,2\n")
    with pytest.raises(P.CliError, match="not an exported run's step,return,length table"):
        P.read_curve(broken)
