"""Bad input through the real commands: one line saying what to do, exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from wnrl.agents.a2c import A2CConfig
from wnrl.agents.a2c import train as train_a2c
from wnrl.agents.dqn import DQNConfig
from wnrl.agents.dqn import train as train_dqn

import wnrl
from tests.helpers import ROOT, here
from wnrl.checkpoint import CheckpointError
from wnrl.config import CliError
from wnrl.evaluate import evaluate

# a module that registers a CartPole under its own id when imported, as a user's env package would
MODULE = """
import gymnasium as gym

gym.register(id="UserCart-v0", entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv", max_episode_steps=100)
"""


def command(module: str, *args, pythonpath: list | None = None, cwd=None, timeout: float = 120):
    paths = [str(p) for p in (pythonpath or [])] + [str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The command exited 2 with one line on stderr that holds every needle."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr)
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    small = dict(logdir=str(root), progress=False, total_steps=400, num_envs=2)
    train_a2c(A2CConfig.for_env("CartPole-v1", run_name="a2c", **small))
    train_dqn(DQNConfig.for_env("CartPole-v1", run_name="dqn", learning_starts=100, **small))
    return root


# ---------------------------------------------------------------- 1. files that are not checkpoints


@pytest.mark.parametrize(
    "content",
    [
        b"hello, these are my notes\n",  # torch's unpickler: KeyError 101 ('e' as a memo key)
        b"I42\n.",  # a pickle of an int
        b"\x80\x04\x95garbage",  # pickle protocol 4 (torch warns about it, several lines)
        b"PK\x03\x04 not really a zip",
        bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)),
    ],
    ids=["text", "int-pickle", "protocol-4", "fake-zip", "random"],
)
def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a (readable|wnrl) checkpoint"):
        wnrl.load(path)
    # torch warns about protocol 4 as it loads: only a process of its own shows what reaches the terminal
    run = command if content.startswith(b"\x80\x04") else here
    one_line_error(run("wnrl.evaluate", path), str(path))


def test_a_dict_without_weights_is_no_checkpoint(tmp_path):
    path = tmp_path / "partial.pt"
    torch.save({"agent": "dqn", "step": 3}, path)
    with pytest.raises(CheckpointError, match="not a wnrl checkpoint .no config/model field"):
        wnrl.load(path)


# ---------------------------------------------------------------- 2. seeds


@pytest.mark.parametrize("seed", [-1, 2**31])
def test_train_seed_out_of_range_is_one_line(tmp_path, seed):
    r = here("wnrl.train", "a2c", "--env", "CartPole-v1", "--seed", seed, "--logdir", tmp_path)
    one_line_error(r, "--seed must be an integer from 0 to")
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_evaluate_negative_seed_is_one_line(runs):
    one_line_error(here("wnrl.evaluate", runs / "a2c", "--seed", "-1"), "--seed must be an integer from 0 to")


@pytest.mark.parametrize("threads", ["0", "-2", "1.5", "two"])
def test_evaluate_bad_threads_is_one_line_before_anything_loads(tmp_path, threads):
    # train's --threads, the same check: read before the path (here none) or torch are looked at
    r = command("wnrl.evaluate", tmp_path / "no_run", "--threads", threads)
    one_line_error(r, "--threads", f"expected a positive whole number, got '{threads}'")


# ---------------------------------------------------------------- 3. envs whose spaces the agents cannot take


def test_frozen_lake_is_one_line_naming_what_is_supported(tmp_path):
    r = here("wnrl.train", "a2c", "--env", "FrozenLake-v1", "--logdir", tmp_path)
    one_line_error(r, "FrozenLake-v1 has observations Discrete(16)", "flat vectors", "images", "discrete actions")


@pytest.mark.parametrize(
    ("env_id", "what"),
    [
        ("FrozenLake-v1", "observations Discrete(16)"),
        ("Pendulum-v1", "actions Box(-2.0, 2.0, (1,), float32)"),
        ("MountainCarContinuous-v0", "actions Box"),
        ("Blackjack-v1", "observations Tuple("),  # gymnasium's toy-text game, not ALE's Blackjack
    ],
)
def test_unsupported_spaces_are_refused_before_the_run(env_id, what):
    for cls in (A2CConfig, DQNConfig):
        with pytest.raises(CliError, match=r"wnrl's agents take Atari games, Catch, MinAtar, or gymnasium envs") as e:
            cls.for_env(env_id).validate()
        assert what in str(e.value) and "\n" not in str(e.value)


def test_user_env_spaces_are_checked_too(tmp_path):
    (tmp_path / "odd_envs.py").write_text(
        textwrap.dedent(
            """
            import gymnasium as gym
            from gymnasium.envs.classic_control.cartpole import CartPoleEnv

            class FromOne(CartPoleEnv):
                def __init__(self, **kw):
                    super().__init__(**kw)
                    self.action_space = gym.spaces.Discrete(2, start=1)

            class Pairs(CartPoleEnv):
                def __init__(self, **kw):
                    super().__init__(**kw)
                    self.action_space = gym.spaces.MultiDiscrete([2, 2])

            gym.register(id="FromOne-v0", entry_point=FromOne)
            gym.register(id="Pairs-v0", entry_point=Pairs)
            """
        )
    )
    one_line_error(
        command("wnrl.train", "a2c", "--env", "odd_envs:FromOne-v0", pythonpath=[tmp_path], cwd=tmp_path),
        "numbered from 1, not 0",
    )
    one_line_error(
        command("wnrl.train", "dqn", "--env", "odd_envs:Pairs-v0", pythonpath=[tmp_path], cwd=tmp_path),
        "actions MultiDiscrete([2 2])",
    )


# ---------------------------------------------------------------- 4. user-registered envs


def test_module_env_id_trains_and_evaluates(tmp_path):
    mods, logdir = tmp_path / "mods", tmp_path / "runs"
    mods.mkdir()
    (mods / "user_envs.py").write_text(MODULE)
    train = ["a2c", "--env", "user_envs:UserCart-v0", "--total-steps", "400", "--num-envs", "2"]
    r = command("wnrl.train", *train, "--logdir", logdir, "--run-name", "u", "--progress", "false", pythonpath=[mods])
    assert r.returncode == 0, r.stderr
    assert '"env": "user_envs:UserCart-v0"' in (logdir / "u" / "config.json").read_text()
    r = command("wnrl.evaluate", logdir / "u", "--episodes", "2", pythonpath=[mods])
    assert r.returncode == 0, r.stderr
    assert "a2c on user_envs:UserCart-v0 at step 400" in r.stdout
    # without the module on the path: one line saying so
    one_line_error(command("wnrl.evaluate", logdir / "u"), "no module 'user_envs' to import", "PYTHONPATH")


def test_module_env_id_errors_are_one_line(tmp_path):
    one_line_error(command("wnrl.train", "a2c", "--env", "no_such_module_x:Foo-v0"), "no module 'no_such_module_x'")
    (tmp_path / "empty_envs.py").write_text("X = 1\n")
    r = command("wnrl.train", "a2c", "--env", "empty_envs:Foo-v0", pythonpath=[tmp_path], cwd=tmp_path)
    one_line_error(r, "registers no env 'Foo-v0'")


def test_evaluating_an_env_registered_from_python_says_how(tmp_path):
    import gymnasium as gym

    gym.register(
        id="PyRegisteredCart-v0",
        entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv",
        max_episode_steps=50,
    )
    cfg = A2CConfig.for_env(
        "PyRegisteredCart-v0", logdir=str(tmp_path), progress=False, total_steps=200, num_envs=2, run_name="p"
    )
    train_a2c(cfg)
    assert wnrl.load(tmp_path / "p").env_id == "PyRegisteredCart-v0"  # here, where it is registered
    one_line_error(
        command("wnrl.evaluate", tmp_path / "p"),
        "'PyRegisteredCart-v0' is not registered with gymnasium in this process",
        "import the module that registers it",
        "--env MODULE:PyRegisteredCart-v0",
    )


# ---------------------------------------------------------------- 5. flags of the other agent


def test_epsilon_on_an_a2c_run_is_refused(runs):
    refusal = here("wnrl.evaluate", runs / "a2c", "--epsilon", "0.5")
    one_line_error(refusal, "--epsilon is a Q-learner's", "a run of A2C")
    with pytest.raises(CliError, match="--epsilon is a Q-learner's"):
        evaluate(str(runs / "a2c"), episodes=1, epsilon=0.5)
    with pytest.raises(CliError, match="--greedy is for policy agents .* a run of DQN"):
        evaluate(str(runs / "dqn"), episodes=1, greedy=True)
    # each agent's own protocol still runs
    assert evaluate(str(runs / "a2c"), episodes=1, greedy=True)["episodes"] == 1
    assert evaluate(str(runs / "dqn"), episodes=1, epsilon=0.0)["episodes"] == 1
    assert evaluate(str(runs / "dqn"), episodes=2) == evaluate(str(runs / "dqn"), episodes=2, epsilon=0.05)


# ---------------------------------------------------------------- 6. more envs than the machine holds


def test_too_many_atari_envs_are_refused_before_building_any(tmp_path):
    # today's cost, measured: ~0.3 s and ~1.6 MB per env, built without seeing Ctrl-C (envs/atari.py)
    r = here("wnrl.train", "a2c", "--env", "Pong", "--num-envs", "5000", "--logdir", tmp_path)
    one_line_error(r, "--num-envs 5000", "per CPU core")
    assert not any(tmp_path.iterdir())


def test_the_env_limit_follows_cores_and_memory():
    from wnrl.envs.atari import ENVS_PER_CORE, max_envs

    limit, why = max_envs(cpu_count=2, memory=64 * 2**30)
    assert limit == 2 * ENVS_PER_CORE and "per CPU core" in why
    assert "per CPU core" in max_envs(cpu_count=16, memory=64 * 2**30)[1]
    limit, why = max_envs(cpu_count=64, memory=2**30)  # 1 GiB: half of it holds 256 envs at 2 MB
    assert limit == 256 and "memory" in why
    cfg = A2CConfig.for_env("Pong", num_envs=max_envs()[0] + 1)
    with pytest.raises(CliError, match=f"--num-envs {cfg.num_envs}: .* more than {max_envs()[0]}"):
        cfg.validate()
    A2CConfig.for_env("CartPole-v1", num_envs=5000).validate()  # vector envs build fast, in Python: no limit


# ---------------------------------------------------------------- 7. GPU goals on a CPU


def test_gpu_goals_on_a_cpu_are_not_applicable_never_fail():
    from wnrl.bench import goal_line, goals

    result = {
        "layers": [{"variant": "wnrl WN", "vs_plain": 1.5}],
        "agents": [{"agent": "dqn", "num_envs": 8, "compile": "off", "steps_per_s": 90.0, "of_raw_env": 0.1}],
    }
    on_cpu = goals(result, "cpu")
    assert [g["passed"] for g in on_cpu] == [None, None, None] and not any(g["applies"] for g in on_cpu)
    lines = [goal_line(g) for g in on_cpu]
    assert all(line.startswith("n/a ") and "GPU goal, not applicable on CPU" in line for line in lines), lines
    assert "90 steps/s" in lines[1]
    on_gpu = goals(result, "cuda")  # the same figures on a GPU are failures
    assert [goal_line(g)[:4] for g in on_gpu] == ["FAIL", "FAIL", "FAIL"]
