"""A run's life (wnrl.run.Run): nothing written before start, cleanup on any exit, one writer."""

import signal

import pytest
import torch
from wnrl.agents.a2c import A2CConfig

from wnrl.run import Every, Run


def catch(tmp_path, **kw):
    return A2CConfig.for_env("Catch", logdir=str(tmp_path / "runs"), run_name="r", progress=False, **kw)


def test_nothing_is_written_before_start_and_the_env_closes_on_an_error(tmp_path):
    cfg = A2CConfig.for_env("CartPole-v1", logdir=str(tmp_path / "runs"), progress=False)
    with pytest.raises(RuntimeError, match="network failed"), Run.open(cfg, "a2c") as run:
        env = run.env
        raise RuntimeError("network failed")
    assert not (tmp_path / "runs").exists()
    assert env.closed


def test_signals_stop_the_loop_only_between_start_and_the_end(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    with Run.open(catch(tmp_path), "a2c") as run:
        assert signal.getsignal(signal.SIGINT) is before  # start-up: Ctrl-C still ends the process
        run.start()
        assert signal.getsignal(signal.SIGINT) is not before and not run.stop_requested
        signal.raise_signal(signal.SIGTERM)
        assert run.stop_requested
        summary = run.summary(0)
    assert signal.getsignal(signal.SIGINT) is before
    assert summary["interrupted"] and summary["run_dir"] == tmp_path / "runs" / "r"
    assert (summary["run_dir"] / "config.json").is_file()


def test_a_process_that_is_not_the_writer_writes_nothing(tmp_path):
    with Run.open(catch(tmp_path), "a2c", rank=1) as run:
        assert not run.is_writer
        run.start()
        run.logger.scalars({"charts/SPS": 1.0}, 10)
        run.logger.episodes_from({"episode_end": [True], "episode_return": [2.0], "episode_length": [7]}, 10)
        saved = []
        run.checkpoint(lambda: saved.append(run.save_checkpoint(10, model={"w": torch.ones(1)})), final=True)
        summary = run.summary(10)
    assert not saved and not (tmp_path / "runs").exists()
    assert summary["episodes"] == 1 and summary["recent_returns"] == [2.0]  # it still counts its games


def test_log_and_checkpoint_steps_stay_on_multiples_of_their_period_after_a_resume():
    due = Every(500, step=1_200)
    assert [s for s in range(1_204, 3_000, 4) if due.due(s)] == [1_500, 2_000, 2_500]


def test_periods_passed_without_a_check_fire_once_not_in_a_burst():
    """A2C's data-init rollouts skip the checks: evaluations every 100 steps then fired at 420, 440, 460,
    480 and 500 (one per call until caught up), four near-identical evaluations instead of one."""
    due = Every(100)
    assert [s for s in range(420, 720, 20) if due.due(s)] == [420, 500, 600, 700]


def test_a_checkpoint_keeps_the_gpus_generator_where_actions_are_drawn(monkeypatch):
    """A2C and PPO draw their actions on the training device: a GPU run's checkpoint keeps that
    generator's state and a resume on a GPU puts it back (without it, every resume would replay the
    GPU's random numbers from the run's seed). A CPU run keeps none; a GPU state is ignored on a CPU."""
    import json

    import numpy as np

    from wnrl.run import _restore_rng, _rng_state

    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: torch.tensor([7, 8], dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append((state.tolist(), device)))
    rng = np.random.default_rng(3)
    gpu = torch.device("cuda", 1)
    state = _rng_state(rng, gpu)
    assert state["cuda"].tolist() == [7, 8] and "cuda" not in _rng_state(rng, torch.device("cpu"))
    rng.random(5)
    _restore_rng(rng, state, gpu)
    assert calls == [([7, 8], gpu)]
    assert json.dumps(rng.bit_generator.state) == state["numpy"]
    _restore_rng(rng, state, torch.device("cpu"))  # resumed on a CPU: nothing to put the GPU state into
    assert len(calls) == 1
