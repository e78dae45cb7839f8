"""wnrl.learn: the command line's run from Python, with its defaults, its one-line errors and its Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

import wnrl
from wnrl import train as train_cli
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.evaluate import evaluate


@pytest.mark.parametrize(
    ("agent", "env", "flags", "options"),
    [
        ("dqn", "CartPole-v1", ["--learning-rate", "3e-4", "--hidden-sizes", "32,32"], dict(learning_rate=3e-4,
         hidden_sizes=(32, 32))),
        ("a2c", "Catch", ["--total-steps", "1e4", "--normalize-advantage"], dict(total_steps=1e4,
         normalize_advantage=True)),
        ("dqn", None, ["--seed", "3"], dict(seed=3)),  # no env: the command's default (Breakout)
        ("a2c", "MinAtar/Breakout", [], {}),
    ],
)  # fmt: skip
def test_learn_makes_the_config_the_command_makes(monkeypatch, tmp_path, agent, env, flags, options):
    """The same config, env family's defaults included, as ``python -m wnrl.train`` with the same flags."""
    module, _ = train_cli._agent_module(agent)
    made = []
    summary = {"run_dir": tmp_path / "r", "steps": 0, "episodes": 0, "mean_return": float("nan"), "recent_returns": []}
    monkeypatch.setattr(module, "train", lambda cfg, resume=None: made.append(cfg) or {**summary, "interrupted": 0})
    assert train_cli.main([agent, *(["--env", env] if env else []), *flags]) == 0
    run = wnrl.learn(agent, env, **options)
    assert made[0] == made[1] and run.config == made[0]
    assert made[0].env == made[1].env and isinstance(made[1].total_steps, int)


def one_line(e: pytest.ExceptionInfo) -> str:
    """The message, after checking it is one line raised from wnrl.learn itself (no frames from deep inside)."""
    frames = traceback.extract_tb(e.value.__traceback__)
    assert all(f.filename.endswith(("__init__.py", "learning.py", "test_learn.py")) for f in frames), frames
    assert "\n" not in str(e.value)
    return str(e.value)


def test_bad_keywords_and_values_are_one_line_value_errors(tmp_path):
    common = dict(logdir=str(tmp_path), progress=False)
    with pytest.raises(ValueError) as e:
        wnrl.learn("dqn", env="CartPole-v1", totl_steps=1000, **common)
    assert "unknown option 'totl_steps' for dqn: did you mean 'total_steps'?" in one_line(e)
    with pytest.raises(ValueError) as e:
        wnrl.learn("a2c", env="CartPole-v1", learnin_rate=1e-3, **common)
    assert "did you mean 'learning_rate'?" in one_line(e)
    with pytest.raises(ValueError) as e:
        wnrl.learn("dqm", env="CartPole-v1")
    assert "unknown agent 'dqm' (did you mean 'dqn'?)" in one_line(e)
    cases = [
        (dict(total_steps=0), "--total-steps must be at least 1, got 0"),  # the command's own message
        (dict(norm="wm"), "unknown --norm 'wm': choose one of wn"),
        (dict(total_steps="100"), "argument --total-steps: expected an integer, got '100'"),
        (dict(total_steps=1.5), "expected an integer, got 1.5"),
        (dict(double_dqn=1), "argument --double-dqn: expected True or False"),
        (dict(hidden_sizes=[64, "a"]), "argument --hidden-sizes: expected integers"),
        (dict(env="CartPol-v1"), "did you mean 'CartPole-v1'"),
        (dict(env="Pendulum-v1"), "Pendulum-v1 has actions Box(-2.0, 2.0, (1,), float32)"),
        (dict(eval_video=True), "--eval-video records the games of the evaluations: give --eval-every"),
        (dict(time_limit=0), "--time-limit: expected a positive number of seconds"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError) as e:
            wnrl.learn("dqn", **{"env": "CartPole-v1", **common, **options})
        assert message in one_line(e), options
    assert not any(tmp_path.iterdir())  # refused before anything was written


class PixelCart(CartPoleEnv):
    """CartPole seen as a 40×48 RGB picture, channels last: an image env a user registers from Python."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.observation_space = gym.spaces.Box(0, 255, (40, 48, 3), np.uint8)

    def _picture(self) -> np.ndarray:
        img = np.zeros((40, 48, 3), np.uint8)
        x = int(np.clip((self.state[0] + 2.4) / 4.8 * 47, 0, 47))
        img[30:, x, 0] = 255  # the cart
        img[:30, x, 1] = np.uint8(127 + np.clip(self.state[2] * 400, -127, 127))  # the pole's angle
        return img

    def reset(self, **kw):
        super().reset(**kw)
        return self._picture(), {}

    def step(self, action):
        _, r, term, trunc, info = super().step(action)
        return self._picture(), r, term, trunc, info


class LeverArm(CartPoleEnv):
    """CartPole pushed with a continuous force: no agent of wnrl's takes it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


gym.register(id="PyCart-v0", entry_point=CartPoleEnv, max_episode_steps=60)
gym.register(id="PixelCart-v0", entry_point=PixelCart, max_episode_steps=60)
gym.register(id="LeverArm-v0", entry_point=LeverArm, max_episode_steps=60)


@pytest.mark.parametrize(("agent", "env_id"), [("a2c", "PyCart-v0"), ("dqn", "PixelCart-v0")])
def test_an_env_registered_in_python_trains_and_its_run_evaluates_in_process(tmp_path, agent, env_id):
    extra = dict(learning_starts=100, buffer_size=1000, batch_size=16) if agent == "dqn" else {}
    run = wnrl.learn(agent, env_id, total_steps=320, num_envs=2, logdir=str(tmp_path), progress=False, **extra)
    assert run.steps == 320 and not run.interrupted and run.summary["episodes"] > 0
    trained = run.agent(device="cpu")
    assert trained.env_id == env_id
    # an image env's pictures reach the conv trunk channels first, as one observation (not a stack of frames)
    assert trained.obs_shape == ((3, 40, 48) if env_id == "PixelCart-v0" else (4,))
    result = evaluate(str(run.run_dir), episodes=3, device="cpu")
    assert result["episodes"] == 3 and result["env"] == env_id and all(1 <= s <= 60 for s in result["scores"])


def test_an_env_whose_spaces_no_agent_takes_is_one_line(tmp_path):
    with pytest.raises(ValueError) as e:
        wnrl.learn("a2c", "LeverArm-v0", logdir=str(tmp_path))
    assert "LeverArm-v0 has actions Box(-1.0, 1.0, (1,), float32)" in one_line(e) and "discrete actions" in str(e.value)


def _interrupt_once_the_loop_listens(done: threading.Event) -> None:
    """SIGINT to this process (as a notebook's interrupt sends it) once the run's own handler is installed."""
    original = signal.getsignal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done.is_set():
        if signal.getsignal(signal.SIGINT) is not original:  # the training loop's StopRequest
            time.sleep(0.3)  # a few updates
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.01)


def test_ctrl_c_stops_with_a_checkpoint_in_process_and_resume_goes_on(tmp_path, capsys):
    done = threading.Event()
    timer = threading.Thread(target=_interrupt_once_the_loop_listens, args=(done,))
    before = signal.getsignal(signal.SIGINT)
    timer.start()
    try:
        run = wnrl.learn("a2c", "CartPole-v1", total_steps=10_000_000, logdir=str(tmp_path), progress=False)
    finally:
        done.set()
        timer.join()
    assert run.interrupted and 0 < run.steps < 10_000_000
    assert signal.getsignal(signal.SIGINT) is before  # the handler is given back
    assert load_checkpoint(list_checkpoints(run.run_dir)[-1])["step"] == run.steps
    assert f"Resume with: wnrl.learn('a2c', resume='{run.run_dir}')" in capsys.readouterr().out
    more = wnrl.learn("a2c", resume=run.run_dir, total_steps=run.steps + 160)
    assert more.run_dir == run.run_dir and more.steps == run.steps + 160 and not more.interrupted
