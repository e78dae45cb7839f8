"""Suite-wide settings: one torch thread per process, the longest tests first.

README's test command runs the suite on every core with pytest-xdist (``-n auto``; pyproject's
``--dist load --maxschedchunk 2`` hands tests out two at a time). Each worker, and every process a
test starts, computes with one thread: two workers with torch's default threads on two cores would
each run several times slower than alone. The learning runs go first, spread over the workers,
so that the short tests fill the gaps around them instead of one learning run starting last.
"""

import os

import pytest
import torch

# Subprocesses (the CLI tests, torchrun) inherit it; a test that needs more threads sets them itself.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

# The longest tests first (`--durations` on a 2-core machine). Each worker is handed two tests to
# start with: the first pair (~205 s + ~55 s) and the second (~110 s + ~95 s) are about even.
LONGEST_FIRST = (
    "test_dqn.py::test_dqn_solves_cartpole_with_its_defaults",
    "test_a2c.py::test_a2c_learns_catch_with_the_conv_net",
    "test_dqn.py::test_dqn_learns_catch_with_the_conv_net",
    "test_a2c.py::test_a2c_solves_cartpole_with_its_defaults",
    "test_a2c.py::test_compiled_run_matches_the_eager_run",
    "test_distributed.py::test_torchrun_one_run_checkpoint_resume",
    "test_tools.py::test_grid_runs_and_resumes",
    "test_dqn.py::test_compiled_update_matches_eager_and_runs_compiled",
    "test_grid.py::test_a_grid_rerun_extends_its_runs_and_a_failing_cell_does_not_stop_the_others",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        for i, name in enumerate(LONGEST_FIRST):
            if item.nodeid.split("/")[-1].split("[")[0] == name:
                return i
        return len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their collection order


@pytest.fixture
def small_catch(monkeypatch):
    """Catch drawn at 6 pixels a cell (42×42 frames) instead of 12 (84×84): the same game and the same
    Nature conv trunk (42 is above the 36 it needs), about 4× less compute: A2C's Catch learning test
    takes 15 s instead of 55 (the 84×84 path is covered by DQN's Catch learning test, the Atari smoke
    tests and docs/ablation.md). DQN's Catch test stays at 84×84: its settings, tuned there, scored
    -0.36 on 42×42 frames."""
    from wnrl import envs

    real = envs.make

    def make(env_id, num_envs=1, seed=None, **options):
        if envs.resolve(env_id)[0] == "catch":
            options.setdefault("cell", 6)
        return real(env_id, num_envs, seed=seed, **options)

    monkeypatch.setattr(envs, "make", make)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
