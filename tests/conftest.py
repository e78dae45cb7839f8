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
# Inductor compiles in the test's own process instead of starting a pool of compile workers, each
# importing torch (~10 CPU-s less for the compiled tests on 2 cores, measured).
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

# The longest tests first (`--durations` alone on a 2-core machine, at 18 s and above), so that the
# short tests fill the gaps around them instead of one learning run starting last.
LONGEST_FIRST = (
    "test_dqn.py::test_dqn_solves_cartpole_with_its_defaults",  # ~155 s
    "test_pqn.py::test_pqn_learns_catch_with_the_conv_net",  # ~65 s
    "test_dqn.py::test_dqn_learns_catch_with_the_conv_net",  # ~50-65 s
    "test_a2c.py::test_a2c_solves_cartpole_with_its_defaults",  # ~50 s
    "test_pqn.py::test_pqn_learns_cartpole_with_its_defaults",  # ~45 s
    "test_ppo.py::test_ppo_solves_cartpole_with_its_defaults",  # ~35 s
    "test_ppo.py::test_ppo_learns_catch_with_the_conv_net",  # ~25 s
    "test_a2c.py::test_compiled_run_matches_the_eager_run",  # the "inductor" group below: ~70 s cold
    "test_grid.py::test_a_grid_rerun_extends_its_runs_and_a_failing_cell_does_not_stop_the_others",
    "test_distributed.py::test_torchrun_one_run_checkpoint_resume",
    "test_gpu_evidence.py::test_gpu_evidence_on_cpu_with_a_tiny_budget",
    "test_reliability.py::test_sigkill_then_resume_finishes_with_continuous_curves",
    "test_paper_preset.py::test_tiny_paper_preset_runs_and_the_summary_sets_it_beside_the_paper",
    "test_tools.py::test_grid_runs_and_resumes",
    "test_grid.py::test_a_grid_of_two_process_runs_writes_and_resumes_them_under_torchrun",
    # one local Ray (a module fixture, one worker): ~6 s to start, ~40 s for the two tests
    "test_ray_grid.py::test_ray_grid_runs_the_plain_grids_cells_to_the_same_results_and_a_rerun_skips_them",
    "test_ray_grid.py::test_a_dead_worker_is_retried_from_the_checkpoint_and_a_killed_run_is_resumed_by_the_next_grid",
)

# Tests that compile with Inductor run on one worker: the first compile in a process pays ~15 s
# that later ones do not (measured: 19 s for the first tiny function, 3 s for the next).
INDUCTOR = (
    "test_a2c.py::test_compiled_run_matches_the_eager_run",
    "test_a2c.py::test_wn_project_compiled_run_matches_the_eager_run",
    "test_dqn.py::test_compiled_update_matches_eager_and_runs_compiled",
    "test_dqn.py::test_wn_project_holds_every_direction_at_its_initial_norm[default]",
    "test_layers.py::test_torch_compile_matches_eager",
)


def _name(item) -> str:
    return item.nodeid.split("/")[-1].split("[")[0]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist names the groups
def pytest_collection_modifyitems(config, items):
    """The longest tests first; tests that share a module-scoped fixture (a few trained runs) in one
    group per module, so that one worker builds it once instead of each worker building it
    (``--dist loadgroup``); the Inductor tests in one group."""

    def rank(item) -> int:
        return LONGEST_FIRST.index(_name(item)) if _name(item) in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their collection order
    for item in items:
        if _name(item) in INDUCTOR or item.nodeid.split("/")[-1] in INDUCTOR:
            item.add_marker(pytest.mark.xdist_group("inductor"))
            continue
        defs = getattr(item, "_fixtureinfo", None)
        # the suite's own module-scoped fixtures (pytest's builtins, tmp_path_factory among them, have no baseid)
        shared = defs is not None and any(
            d[-1].scope == "module" and d[-1].baseid for d in defs.name2fixturedefs.values() if d
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0].split("/")[-1]))


def _catch_drawn_at(monkeypatch, cell: int) -> None:
    from wnrl import envs

    real = envs.make

    def make(env_id, num_envs=1, seed=None, **options):
        if envs.resolve(env_id)[0] == "catch":
            options.setdefault("cell", cell)
        return real(env_id, num_envs, seed=seed, **options)

    monkeypatch.setattr(envs, "make", make)


@pytest.fixture
def small_catch(monkeypatch):
    """Catch drawn at 6 pixels a cell (42×42 frames) instead of 12 (84×84): the same game and the same
    Nature conv trunk (42 is above the 36 it needs), about 4× less compute. The last conv sees a single
    position: PPO learns Catch there (1.00, 0.96, 1.00, seeds 1-3, 30k), A2C not reliably (docs/results.md:
    its learning test moved to ``catch_56``). (The 84×84 path is covered by the Atari smoke tests and
    docs/ablation.md.)"""
    _catch_drawn_at(monkeypatch, 6)


@pytest.fixture
def catch_56(monkeypatch):
    """Catch at 8 pixels a cell (56×56 frames; the conv trunk ends on 3×3 instead of 7×7), about 3× less
    compute than 84×84. DQN's and A2C's Catch learning tests run on it. DQN's settings scored 0.88, 0.84,
    0.96 there (seeds 1-3, 8k steps) but -0.36 on 42×42 frames, where the last conv sees a single position;
    A2C's 1.0, 1.0, 1.0, 1.0, 0.96 (seeds 1-5, 40k) against 0.72, 0.56, 0.16 (seeds 1-3) on 42×42."""
    _catch_drawn_at(monkeypatch, 8)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
