"""What users do to a run after it started: resume it, extend it, change its settings. Each test
reproduces a defect a user met through the CLI (wnrl issue 22)."""

import json

import pytest
import torch

from tests.helpers import scalars
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.train import main

QUIET = ["--progress", "false"]


def _last(run_dir):
    return load_checkpoint(list_checkpoints(run_dir)[-1])


def _one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def test_extending_a_finished_decayed_run_replans_the_learning_rate_and_learns(tmp_path):
    """A finished A2C run's learning rate has decayed to 0. Extended, it is the run planned for the new
    length: lr = lr₀·(1 − step/new_total) from the resume step on (it used to stay at 0: nothing moved)."""
    base = ["a2c", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", "--log-every", "1000", *QUIET]
    assert main([*base, "--total-steps", "2000"]) == 0
    run_dir = tmp_path / "r"
    before = _last(run_dir)
    assert main(["a2c", "--resume", str(run_dir), "--total-steps", "40000", *QUIET]) == 0
    lr = dict(scalars(run_dir)["charts/learning_rate"])
    for step in (3000, 20000, 39000):
        assert lr[step] == pytest.approx(7e-4 * (1 - step / 40000), rel=0.02), step
    after = _last(run_dir)
    assert after["step"] == 40000
    model = {k: v for k, v in before["model"].items() if v.is_floating_point()}
    moved = max((after["model"][k] - v).abs().max().item() for k, v in model.items())
    assert moved > 0.05
    # It learns: random play scores ~22 on CartPole; the mean of the last 100 games is well above it.
    assert after["recent_returns"].mean().item() > 60


def test_extending_dqn_replans_epsilon_and_learning_rate(tmp_path):
    """Resumed at 1,000 of 2,000 steps and extended to 4,000: from the resume on, ε and the learning rate
    are those of a run planned for 4,000 steps, and config.json says so."""
    base = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    base += ["--log-every", "500", "--checkpoint-every", "1000", "--learning-starts", "200"]
    assert main([*base, "--total-steps", "2000", "--exploration-fraction", "1.0", "--lr-decay", "true"]) == 0
    run_dir = tmp_path / "r"
    list_checkpoints(run_dir)[-1].unlink()  # resume from the step-1,000 checkpoint, mid-schedule
    assert main(["dqn", "--resume", str(run_dir), "--total-steps", "4000", *QUIET]) == 0
    tags = scalars(run_dir)
    eps, lr = dict(tags["charts/epsilon"]), dict(tags["charts/learning_rate"])
    n = 4  # envs: the value logged at step s was set at the start of the vector step, s − 4
    assert eps[1000] == pytest.approx(1 - 0.96 * (1000 - n) / 2000)  # the first run's plan
    for step in (1500, 2000, 3500):  # the 4,000-step plan: 1 → 0.04 over 4,000 steps
        assert eps[step] == pytest.approx(1 - 0.96 * (step - n) / 4000, abs=1e-6), step
        assert lr[step] == pytest.approx(5e-4 * (1 - (step - n) / 4000), rel=1e-5), step
    assert _last(run_dir)["schedules"]["epsilon"] == pytest.approx([0.0, 1.0, 4000.0, 0.04])
    # The run's settings history: the change, where it was made, in config.json and in the checkpoint.
    change = {"step": 1000, "fields": {"total_steps": [2000, 4000]}}
    assert json.loads((run_dir / "config.json").read_text())["changes"] == [change]
    assert _last(run_dir)["changes"] == [change]


def test_a_resume_that_died_before_its_first_checkpoint_leaves_its_flags_behind_unused(tmp_path, capsys):
    """``--resume r --learning-rate 5e-3 --gamma 0.9`` killed before its first checkpoint has rewritten
    config.json with those flags, though nothing it trained is kept. The next plain ``--resume`` goes on
    with the settings the checkpoint was trained with, and the history records only what trained."""
    base = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    base += ["--log-every", "500", "--checkpoint-every", "1000", "--learning-starts", "200"]
    assert main([*base, "--total-steps", "2000", "--lr-decay", "true"]) == 0
    run_dir = tmp_path / "r"
    dead = json.loads((run_dir / "config.json").read_text())  # what the dead resume wrote
    dead.update(learning_rate=5e-3, gamma=0.9, total_steps=100_000)
    dead["changes"] = [{"step": 2000, "fields": {"learning_rate": [5e-4, 5e-3], "gamma": [0.99, 0.9]}}]
    (run_dir / "config.json").write_text(json.dumps(dead))
    capsys.readouterr()
    assert main(["dqn", "--resume", str(run_dir), "--total-steps", "3000", *QUIET]) == 0
    err = capsys.readouterr().err
    stale = "config.json says total_steps 100000 (checkpoint: 2000), learning_rate 0.005 (checkpoint: 0.0005), gamma"
    assert stale in err, err
    assert "note: resuming at step 2,000 with changed settings (total_steps 2,000 -> 3,000)" in err, err
    cfg = json.loads((run_dir / "config.json").read_text())
    assert (cfg["learning_rate"], cfg["gamma"]) == (5e-4, 0.99)
    assert cfg["changes"] == [{"step": 2000, "fields": {"total_steps": [2000, 3000]}}]
    lr = dict(scalars(run_dir)["charts/learning_rate"])
    assert lr[2500] == pytest.approx(5e-4 * (1 - (2500 - 4) / 3000), rel=1e-5)  # the checkpoint's, replanned


def test_a_run_resumed_without_new_steps_goes_on_exactly(tmp_path):
    """Preempted and resumed with nothing changed: the schedules are the ones the run started with."""
    base = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    base += ["--log-every", "500", "--checkpoint-every", "1000", "--learning-starts", "200", "--total-steps", "2000"]
    assert main([*base, "--exploration-fraction", "1.0", "--lr-decay", "true"]) == 0
    run_dir = tmp_path / "r"
    first = dict(scalars(run_dir)["charts/epsilon"])
    list_checkpoints(run_dir)[-1].unlink()
    assert main(["dqn", "--resume", str(run_dir), *QUIET]) == 0
    again = dict(scalars(run_dir)["charts/epsilon"])
    for step in (1500, 2000):
        assert again[step] == pytest.approx(first[step], abs=1e-9)
    assert "changes" not in json.loads((run_dir / "config.json").read_text())  # nothing changed: no history


@pytest.mark.parametrize(
    "agent, flags, expect",
    [
        (
            "dqn",
            ["--adam-eps", "1e-3", "--adam-beta1", "0.5", "--learning-rate", "2e-4", "--lr-decay", "false"],
            {"eps": 1e-3, "betas": (0.5, 0.999), "lr": 2e-4},
        ),
        (
            "a2c",
            ["--rms-alpha", "0.9", "--rms-eps", "1e-3", "--learning-rate", "1e-3", "--lr-decay", "false"],
            {"eps": 1e-3, "alpha": 0.9, "lr": 1e-3},
        ),
    ],
)
def test_optimizer_settings_given_on_resume_are_the_ones_used(tmp_path, agent, flags, expect):
    """Loading the optimizer's state used to restore the checkpoint's settings while config.json recorded
    the new ones: the run went on with eps 1e-8 and betas (0.9, 0.999) after --adam-eps 1e-3 --adam-beta1 0.5."""
    base = [agent, "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    base += ["--learning-starts", "200"] if agent == "dqn" else []
    assert main([*base, "--total-steps", "1000"]) == 0
    run_dir = tmp_path / "r"
    moments = {k: v for k, v in _last(run_dir)["optimizer"]["state"].items()}
    assert main([agent, "--resume", str(run_dir), "--total-steps", "2000", *flags, *QUIET]) == 0
    state = _last(run_dir)["optimizer"]
    for group in state["param_groups"]:
        for key, value in expect.items():
            got = tuple(group[key]) if isinstance(value, tuple) else group[key]
            assert got == pytest.approx(value), (key, group[key])
    assert set(state["state"]) == set(moments)  # the statistics were carried on, not restarted


def test_changing_the_optimizer_on_resume_is_one_line(tmp_path, capsys):
    base = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    assert main([*base, "--total-steps", "600", "--learning-starts", "200"]) == 0
    code = main(["dqn", "--resume", str(tmp_path / "r"), "--total-steps", "1200", "--optimizer", "adamax", *QUIET])
    _one_line_error(capsys, code, "--optimizer cannot change")


def test_a_total_below_the_resume_step_is_one_line(tmp_path, capsys):
    """`--resume RUN --total-steps 1000` on a finished 2,000-step run used to print "done: 2,000 steps"."""
    base = ["a2c", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    assert main([*base, "--total-steps", "2000"]) == 0
    code = main(["a2c", "--resume", str(tmp_path / "r"), "--total-steps", "1000", *QUIET])
    _one_line_error(capsys, code, "at step 2,000", "above 2,000")
    code = main(["a2c", "--resume", str(tmp_path / "r"), *QUIET])  # finished, nothing new asked
    _one_line_error(capsys, code, "nothing to train")


def test_optimizer_settings_survive_load_state_dict_unit():
    """The mechanism on its own: Run.restore keeps the new optimizer's settings, takes the old state."""
    from wnrl.run import _apply_settings, _settings

    p = [torch.nn.Parameter(torch.ones(3))]
    old = torch.optim.Adam(p, lr=1e-4, eps=1e-8)
    p[0].grad = torch.ones(3)
    old.step()
    new = torch.optim.Adam(p, lr=3e-4, eps=1e-3, betas=(0.5, 0.999))
    keep = _settings(new)
    new.load_state_dict(old.state_dict())
    assert new.param_groups[0]["eps"] == 1e-8  # what torch does: the checkpoint's settings win
    _apply_settings(new, keep)
    assert new.param_groups[0]["eps"] == 1e-3 and new.param_groups[0]["betas"] == (0.5, 0.999)
    assert new.state[p[0]]["step"] == 1


@pytest.mark.parametrize("save_replay", [True, False])
def test_a_dqn_resumed_during_random_play_starts_learning_where_an_uninterrupted_run_would(tmp_path, save_replay):
    """Stopped at step 400 of its 600 steps of random play and resumed: learning starts at learning_starts
    (600) with the data-dependent init and a target copy, as without the stop. With the replay saved it
    used to learn at once from the default init (every WN layer `initialized=False`)."""
    from wnrl.agents.dqn import QNetwork

    from wnrl.layers import is_initialized

    base = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), *QUIET, "--learning-starts", "600"]
    base += ["--train-frequency", "2", "--save-replay", str(save_replay).lower()]
    assert main([*base, "--run-name", "whole", "--total-steps", "1000"]) == 0
    assert main([*base, "--run-name", "cut", "--total-steps", "400"]) == 0  # only plays: warned, see below
    # without the replay: 100 steps of refill fit before learning_starts, which still decides
    refill = [] if save_replay else ["--refill-steps", "100"]
    assert main(["dqn", "--resume", str(tmp_path / "cut"), "--total-steps", "1000", *refill, *QUIET]) == 0
    whole, cut = _last(tmp_path / "whole"), _last(tmp_path / "cut")
    assert cut["counters"]["updates"] == whole["counters"]["updates"] == (1000 - 600) // 2 + 1
    assert cut["counters"]["target_syncs"] >= 1
    q = QNetwork((4,), 2, hidden_sizes=(256, 256))
    q.load_state_dict(cut["model"])
    assert is_initialized(q)


def test_a_dqn_run_shorter_than_learning_starts_says_so(tmp_path, capsys):
    args = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    assert main([*args, "--total-steps", "400", "--learning-starts", "600"]) == 0
    err = capsys.readouterr().err
    assert "makes no update" in err and len(err.strip().splitlines()) == 1


def test_a_resumed_dqn_refills_refill_steps_then_learns_and_the_bar_says_so(tmp_path):
    """Each resume used to refill a whole learning_starts (80k on Atari) while ε kept falling: a run
    preempted every few minutes never learned. It refills --refill-steps, and the bar says why it has no ETA."""
    from wnrl.logger import Logger

    args = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    assert main([*args, "--total-steps", "1000", "--learning-starts", "600", "--train-frequency", "1"]) == 0
    before = _last(tmp_path / "r")["counters"]["updates"]
    assert main(["dqn", "--resume", str(tmp_path / "r"), "--total-steps", "1400", "--refill-steps", "100", *QUIET]) == 0
    assert _last(tmp_path / "r")["counters"]["updates"] - before == 400 - 100 + 1
    log = Logger(None, {}, total_steps=2000, progress=False, write=False)
    log.wait_for(1500, "after the replay refills")
    assert log.eta(1200) == "after the replay refills" and log.eta(1600, now=0.0) != "after the replay refills"


def test_a_dqn_stopped_during_its_refill_with_the_replay_saved_finishes_the_refill_first(tmp_path):
    """Resumed without its replay at 1,000 (refill to 1,300) with --save-replay on, stopped at 1,200 and
    resumed again: its checkpoint said it was learning, so it learned at once from the 200 transitions
    the refill had gathered. It refills to 1,300, then learns."""
    args = ["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", *QUIET]
    assert main([*args, "--total-steps", "1000", "--learning-starts", "600", "--train-frequency", "1"]) == 0
    run_dir = tmp_path / "r"
    before = _last(run_dir)["counters"]["updates"]
    resume = ["dqn", "--resume", str(run_dir), *QUIET]
    assert main([*resume, "--total-steps", "1200", "--refill-steps", "300", "--save-replay", "true"]) == 0
    cut = _last(run_dir)["counters"]
    assert (cut["updates"], cut["learning"], cut["learn_from"]) == (before, False, 1300)
    assert (run_dir / "checkpoints" / "replay.pt").exists()
    assert main([*resume, "--total-steps", "1500"]) == 0
    assert _last(run_dir)["counters"]["updates"] - before == 1500 - 1300 + 1


@pytest.mark.parametrize("agent", ["dqn", "a2c", "ppo", "pqn"])
def test_every_agent_asks_for_synchronized_batch_norm(tmp_path, monkeypatch, agent):
    """README says `--norm batch` is SyncBatchNorm on several GPUs; DQN never asked for it (only A2C
    did). Run.sync_batch_norm converts on CUDA ranks (not on this CPU): here, that each agent's network
    goes through it before its optimizer is built."""
    from wnrl.run import Run

    seen = []
    original = Run.sync_batch_norm

    def spy(self, net):
        seen.append(type(net).__name__)
        return original(self, net)

    monkeypatch.setattr(Run, "sync_batch_norm", spy)
    args = [agent, "--env", "CartPole-v1", "--logdir", str(tmp_path), "--norm", "batch", "--total-steps", "300"]
    assert main([*args, "--learning-starts", "100"] if agent == "dqn" else args) == 0
    assert seen == ["QNetwork" if agent in ("dqn", "pqn") else "ActorCritic"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["dqn", "--max-grad-norm", "-1"], "--max-grad-norm must be at least 0"),
        (["a2c", "--max-grad-norm", "-1"], "--max-grad-norm must be at least 0"),
        (["a2c", "--rms-alpha", "1.5"], "--rms-alpha must be in"),
        (["a2c", "--threads", "0"], "expected a positive whole number"),
    ],
)
def test_settings_no_run_can_use_are_one_line(tmp_path, capsys, args, needle):
    try:
        code = main([*args, "--env", "CartPole-v1", "--logdir", str(tmp_path), *QUIET])
    except SystemExit as e:  # argparse's own errors exit from the parser (one line: wnrl.train._Parser)
        code = e.code
    _one_line_error(capsys, code, needle)
    assert not any(tmp_path.iterdir())  # nothing written


def test_threads_sets_torchs_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # the suite runs at 1: start elsewhere so that a flag doing nothing fails
        args = ["a2c", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--total-steps", "200", "--threads", "1"]
        assert main([*args, *QUIET]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
