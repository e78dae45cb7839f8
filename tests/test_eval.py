"""--eval-every: evaluations while training, by wnrl.evaluate's protocol, that leave the training run as it was."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import wnrl
from tests.helpers import scalars
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.evaluate import Evaluator

TINY = {
    "dqn": dict(learning_starts=200, num_envs=4, batch_size=16, hidden_sizes=(32, 32)),
    "a2c": dict(num_envs=4, hidden_sizes=(32, 32)),
    "ppo": dict(num_envs=4, n_steps=25, update_epochs=2, init_rollouts=1, hidden_sizes=(32, 32)),
    "pqn": dict(num_envs=4, n_steps=25, update_epochs=2, num_minibatches=4, hidden_sizes=(32, 32)),
}


def _run(tmp_path, agent: str, name: str, **options):
    return wnrl.learn(
        agent, "CartPole-v1", total_steps=800, log_every=200, logdir=str(tmp_path), run_name=name, progress=False,
        **TINY[agent], **options,
    )  # fmt: skip


@pytest.mark.parametrize("agent", list(TINY))
def test_evaluations_leave_the_training_run_as_it_was(tmp_path, agent):
    """The same seed with and without --eval-every: the same training games, losses and final weights; the
    evaluations are logged at the steps they were taken, their mean and each game."""
    plain = _run(tmp_path, agent, "plain")
    evaluated = _run(tmp_path, agent, "eval", eval_every=200, eval_episodes=3)
    a, b = scalars(plain.run_dir), scalars(evaluated.run_dir)
    assert set(b) - set(a) == {
        "eval/episodic_return", "eval/episodic_return_per_game", "eval/episodic_length", "eval/seconds"
    }  # fmt: skip
    for tag in a:
        if tag != "charts/SPS":
            assert a[tag] == b[tag], tag  # the training curve, losses, diagnostics: identical
    assert len(a["charts/episodic_return"]) > 10
    weights = [load_checkpoint(list_checkpoints(r.run_dir)[-1])["model"] for r in (plain, evaluated)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    means = b["eval/episodic_return"]
    assert [s for s, _ in means] == [200, 400, 600, 800]
    games = b["eval/episodic_return_per_game"]
    assert [s for s, _ in games] == [s for s in (200, 400, 600, 800) for _ in range(3)]
    for step, mean in means:
        assert mean == pytest.approx(np.mean([v for s, v in games if s == step]), rel=1e-6)
    best = max(means, key=lambda p: p[1])
    assert evaluated.best_eval == (pytest.approx(best[1], rel=1e-6), best[0])
    assert evaluated.summary["eval"]["evaluations"] == 4 and "eval" not in plain.summary


def test_evaluations_survive_resume_and_follow_the_protocol(tmp_path):
    first = _run(tmp_path, "dqn", "r", eval_every=300, eval_episodes=2, checkpoint_every=300)
    assert load_checkpoint(list_checkpoints(first.run_dir)[-1])["eval"]["evaluations"] == 3  # 300, 600, 800 (end)
    more = wnrl.learn("dqn", resume=first.run_dir, total_steps=1000, progress=False)
    means = scalars(first.run_dir)["eval/episodic_return"]
    assert [s for s, _ in means] == [300, 600, 800, 900, 1000]
    state = load_checkpoint(list_checkpoints(first.run_dir)[-1])["eval"]
    best = max(means, key=lambda p: p[1])
    assert state["evaluations"] == 5 and state["best"] == pytest.approx(best[1]) and state["best_step"] == best[0]
    assert more.summary["eval"] == state and state["last_step"] == 1000

    # an evaluation at a step depends on the step and the seed alone (not on what came before), and plays
    # wnrl.evaluate's protocol: DQN at ε = 0.05 (--eval-greedy: 0)
    cfg = first.config
    ev = Evaluator(cfg, "dqn", "CartPole-v1", torch.device("cpu"))
    q = wnrl.load(first.run_dir).net
    again = ev(q, 1000)
    assert again["mean"] == pytest.approx(state["last"]) and ev._agent.epsilon == 0.05
    greedy = Evaluator(type(cfg)(**{**cfg.to_dict(), "eval_greedy": True}), "dqn", "CartPole-v1", "cpu")
    greedy(q, 1000)
    assert greedy._agent.epsilon == 0.0
    # an evaluation's games are seeded by its step alone: another Evaluator of the run plays the same games
    fresh = Evaluator(cfg, "dqn", "CartPole-v1", torch.device("cpu"))
    assert ev.seeds(1000)[0] != ev.seeds(900)[0] and ev.seeds(1000)[0] == fresh.seeds(1000)[0]
    assert ev.seeds(1000)[1].random() == fresh.seeds(1000)[1].random()


def test_eval_video_records_the_first_game_of_each_evaluation(tmp_path, small_catch):
    run = wnrl.learn(
        "a2c", "Catch", total_steps=640, num_envs=8, init_rollouts=1, eval_every=320, eval_episodes=2,
        eval_video=True, logdir=str(tmp_path), progress=False,
    )  # fmt: skip
    videos = sorted(p.name for p in (run.run_dir / "videos").iterdir())
    assert videos == ["eval_step_000000000320.mp4", "eval_step_000000000640.mp4"]
    import imageio.v2 as imageio

    frames = imageio.mimread(run.run_dir / "videos" / videos[0], memtest=False)
    assert len(frames) == 7  # Catch's 7 rows: the first frame and one per step of a 6-step game
    if importlib.util.find_spec("pygame") is None:  # CartPole draws with pygame: one line before the run starts
        with pytest.raises(ValueError, match="--eval-video: CartPole-v1 cannot render frames .*pygame"):
            wnrl.learn("a2c", "CartPole-v1", eval_every=100, eval_video=True, logdir=str(tmp_path / "none"))
        assert not (tmp_path / "none").exists()
