"""The commands' own surface: what --help says, --threads, and Ctrl-C before a run's loop (wnrl issue 22)."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from wnrl.agents.a2c import A2CConfig
from wnrl.agents.dqn import DQNConfig
from wnrl.agents.ppo import PPOConfig
from wnrl.agents.pqn import PQNConfig

from tests.helpers import ROOT
from wnrl import evaluate, run, train
from wnrl.config import COMMON_FAMILY_DEFAULTS, FAMILY_NAMES, _show, family_defaults

CONFIGS = {"dqn": DQNConfig, "a2c": A2CConfig, "ppo": PPOConfig, "pqn": PQNConfig}
QUIET = ["--progress", "false"]


def _help_of(agent: str) -> dict[str, str]:
    """Each config field's help text in ``python -m wnrl.train AGENT --help``."""
    parser = train.build_parser()
    sub = next(a for a in parser._actions if a.dest == "agent").choices[agent]
    return {a.dest: a.help for a in sub._actions if a.help}


def _table_default(cls, name: str, family: str):
    """A field's default in one family, read from the tables themselves (not through wnrl.config's helpers)."""
    table = {**COMMON_FAMILY_DEFAULTS[family], **cls.FAMILY_DEFAULTS.get(family, {})}
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return table.get(name, field.default)


# ---------------------------------------------------------------- --help: each family's default


def test_help_gives_each_familys_default_where_they_differ():
    """`dqn --help` used to show the Atari defaults only (64,64, lr 1e-4, no Double DQN) while a CartPole
    run used 256,256, 5e-4 and Double DQN. Now every field's help ends with the default of each family,
    taken from the family tables, with families of equal value named together."""
    checked_differing = 0
    for agent, cls in CONFIGS.items():
        helps = _help_of(agent)
        for f in dataclasses.fields(cls):
            m = re.search(r"\(default: ([^()]*)\)$", helps[f.name])
            assert m, (agent, f.name, helps[f.name])
            values = {family: _show(_table_default(cls, f.name, family)) for family in FAMILY_NAMES}
            if len(set(values.values())) == 1:
                assert m.group(1) == values["atari"], (agent, f.name, m.group(1))
                continue
            checked_differing += 1
            said = {}
            for part in m.group(1).split(", "):
                value, _, names = part.partition(" on ")
                for name in names.split(" and "):
                    said[name] = value
            assert said == {FAMILY_NAMES[family]: v for family, v in values.items()}, (agent, f.name, m.group(1))
    assert checked_differing >= 20  # DQN's vector-env table alone sets 16 fields


def test_dqn_help_names_the_cartpole_defaults_a_run_uses(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["dqn", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    classic = DQNConfig.FAMILY_DEFAULTS["classic"]
    lr = f"(default: {DQNConfig.learning_rate} on Atari, {classic['learning_rate']} on vector envs, "
    assert lr in out
    assert f"(default: 64,64 on Atari and Catch and MinAtar, {_show(classic['hidden_sizes'])} on vector envs)" in out
    double = "--double-dqn [BOOL] Double DQN targets (van Hasselt et al., 2016) (default: False on Atari and Catch and "
    double += "MinAtar, "
    assert f"{double}True on vector envs)" in out
    assert "Defaults differ by env family" in out
    # --total-steps says what it means on --resume
    assert "With --resume: the new length of the run" in out and "planned anew over the new total" in out


@pytest.mark.parametrize("agent", list(CONFIGS))
@pytest.mark.parametrize(
    "env, family",
    [("Breakout", "atari"), ("CartPole-v1", "classic"), ("Catch", "catch"), ("MinAtar/Breakout", "minatar")],
)
def test_the_defaults_help_names_are_the_ones_a_run_gets(agent, env, family):
    cls = CONFIGS[agent]
    cfg = cls.for_env(env)
    for f in dataclasses.fields(cls):
        if f.name != "env":
            assert getattr(cfg, f.name) == family_defaults(cls, f.name)[family], (agent, env, f.name)


# ---------------------------------------------------------------- --threads


def test_evaluate_threads_sets_torchs_threads(tmp_path, capsys):
    cfg = ["a2c", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", "--total-steps", "200"]
    assert train.main([*cfg, "--num-envs", "2", *QUIET]) == 0
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert evaluate.main([str(tmp_path / "r"), "--episodes", "1", "--device", "cpu", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        assert "a2c on CartPole-v1 at step 200" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- Ctrl-C before the training loop


def test_ctrl_c_while_the_envs_build_is_one_line(tmp_path, monkeypatch, capsys):
    """A KeyboardInterrupt out of the vector env's build (Run.open, before the loop's own stop is
    installed) used to end in a traceback."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "make_env", interrupted)
    code = train.main(["dqn", "--env", "CartPole-v1", "--logdir", str(tmp_path), *QUIET])
    err = capsys.readouterr().err
    assert code == 130
    assert err == "interrupted while starting, before training began: nothing trained, no checkpoint written\n"
    assert not any(tmp_path.iterdir())


def test_ctrl_c_while_the_run_closes_is_one_line(tmp_path, monkeypatch, capsys):
    """After the loop the run gives the signals back; a Ctrl-C then says so, without a traceback."""
    from wnrl.logger import Logger

    closed = Logger.close

    def close_then_interrupt(self):
        closed(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Logger, "close", close_then_interrupt)
    args = ["a2c", "--env", "CartPole-v1", "--logdir", str(tmp_path), "--run-name", "r", "--total-steps", "200"]
    assert train.main([*args, "--num-envs", "2", *QUIET]) == 130
    assert capsys.readouterr().err == "interrupted while the run was closing, after its training loop\n"
    assert any((tmp_path / "r" / "checkpoints").iterdir())  # the final checkpoint came before


SLOW_ENVS = """
import os
import time

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

BUILT = 0


class SlowCart(CartPoleEnv):
    def __init__(self, **kw):
        global BUILT
        super().__init__(**kw)
        BUILT += 1
        if BUILT == 2:  # the first is the config check's; the second, the vector env's first
            open(os.environ["SLOW_ENVS_MARKER"], "w").close()
            time.sleep(120)


gym.register(id="SlowCart-v0", entry_point=SlowCart, max_episode_steps=100)
"""


def test_sigint_while_classic_envs_build_is_one_line(tmp_path):
    """The real thing: SIGINT to `python -m wnrl.train` while its vector envs are being built."""
    (tmp_path / "slow_envs.py").write_text(textwrap.dedent(SLOW_ENVS))
    marker = tmp_path / "building"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "OMP_NUM_THREADS": "1",
        "SLOW_ENVS_MARKER": str(marker),
    }
    args = ["a2c", "--env", "slow_envs:SlowCart-v0", "--num-envs", "8", "--logdir", str(tmp_path / "runs")]
    p = subprocess.Popen(
        [sys.executable, "-m", "wnrl.train", *args, "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as from a terminal: a suite started in the background inherits an ignored SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), p.communicate(timeout=10)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert err == "interrupted while starting, before training began: nothing trained, no checkpoint written\n"
    assert out == "" and not (tmp_path / "runs").exists()
