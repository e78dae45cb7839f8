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


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
