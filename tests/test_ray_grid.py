"""wnrl.grid --ray: the grid's cells as Ray tasks on one local Ray (2 CPUs) that the module's tests share. The
same cells run to the same results as the plain grid; a rerun skips finished cells; a cell whose worker dies
(as on a dead node) is retried by Ray from its checkpoint; a cell whose run is killed is reported and resumed by
the next grid; without Ray, one line."""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, main_in_process, scalars

CELLS = ["CartPole-v1__a2c__wn__s1", "CartPole-v1__a2c__wn__s2"]
GRID = ["--agents", "a2c", "--envs", "CartPole-v1", "--norms", "wn", "--seeds", "1,2"]
# past the first episodes' ends (~100 steps on CartPole's 8 envs): a restarted run would log returns before it
KILL_AFTER = 240


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: its start-up (~6 s on 2 cores) is paid once. The grid uses it as it is."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def checkout(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the plain grid's runs import this wnrl from any directory


def grid(*args: str):
    return main_in_process("wnrl.grid", *GRID, *args)


def returns(run_dir: Path) -> list[tuple[int, float]]:
    return scalars(run_dir)["charts/episodic_return"]


def checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.removeprefix("step_")) for p in (run_dir / "checkpoints").glob("step_*.pt"))


def test_ray_grid_runs_the_plain_grids_cells_to_the_same_results_and_a_rerun_skips_them(local_ray, checkout, tmp_path):
    plain, on_ray = tmp_path / "plain", tmp_path / "ray"
    r = grid("--total-steps", "320", "--jobs", "2", "--logdir", str(plain))
    assert r.returncode == 0 and "2 of 2 runs finished" in r.stdout, r.stdout + r.stderr
    r = grid("--total-steps", "320", "--ray", "--logdir", str(on_ray))
    assert r.returncode == 0 and "2 of 2 runs finished" in r.stdout, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "on a local Ray (1 node(s), 2 CPUs, 0 GPUs), each with 1 CPU(s)" in lines[0]
    for name in CELLS:
        assert [x for x in lines if x.startswith("started ") and name in x and " on " in x]
        assert f"done     {name}" in lines
        assert (on_ray / f"{name}.log").is_file() and checkpoint_steps(on_ray / name)[-1] == 320
        assert returns(on_ray / name) == returns(plain / name) and len(returns(plain / name)) > 3
        config = [json.loads((d / name / "config.json").read_text()) for d in (plain, on_ray)]
        assert [{k: v for k, v in c.items() if k != "logdir"} for c in config] == [
            {k: v for k, v in config[0].items() if k != "logdir"}
        ] * 2
    assert lines[-2] == "grid     2 of 2 cells done, 0 running; 640 of 640 steps"

    # run again: both cells are finished, nothing starts (and Ray is not needed for it)
    written = {name: (on_ray / name / "checkpoints").stat().st_mtime_ns for name in CELLS}
    r = grid("--total-steps", "320", "--ray", "--logdir", str(on_ray))
    assert r.returncode == 0 and "2 of 2 runs finished" in r.stdout, r.stdout + r.stderr
    assert sum(x.startswith("finished ") for x in r.stdout.splitlines()) == 2 and "started" not in r.stdout
    assert written == {name: (on_ray / name / "checkpoints").stat().st_mtime_ns for name in CELLS}


def _procs() -> dict[int, tuple[int, list[str]]]:
    """Every process: its parent and command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            found[int(entry.name)] = (parent, cmd)
    return found


def _kill_after_a_checkpoint(logdir: Path, name: str, whom: str, killed: dict) -> None:
    """Waits for a checkpoint of the cell at step KILL_AFTER or later, then SIGKILLs its run's process ("run") or
    the Ray worker that runs it ("worker"); records the checkpoint's step."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = checkpoint_steps(logdir / name) if (logdir / name / "checkpoints").is_dir() else []
        if steps and steps[-1] >= KILL_AFTER:
            run = [pid for pid, (_, cmd) in _procs().items() if name in cmd and "--run-name" in cmd]
            if run:
                killed[name] = steps[-1]
                os.kill(run[0] if whom == "run" else _procs()[run[0]][0], signal.SIGKILL)
                return
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the processes in /proc")
def test_a_dead_worker_is_retried_from_the_checkpoint_and_a_killed_run_is_resumed_by_the_next_grid(local_ray, tmp_path):
    # s1's Ray worker dies (as on a dead node): Ray runs the task again, which resumes from the checkpoint.
    # s2's run is killed: reported with its last line, the other cell goes on, the next grid resumes it.
    args = ["--total-steps", "640", "--a2c-args", "--checkpoint-every 80", "--ray", "--logdir", str(tmp_path)]
    killed: dict[str, int] = {}
    killers = [
        threading.Thread(target=_kill_after_a_checkpoint, args=(tmp_path, name, whom, killed))
        for name, whom in zip(CELLS, ("worker", "run"))
    ]
    for k in killers:
        k.start()
    r = grid(*args)
    for k in killers:
        k.join()
    assert sorted(killed) == CELLS, r.stdout + r.stderr
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert [x for x in lines if x.startswith(f"resumed  {CELLS[0]} on ") and "Ray's retry 1" in x], r.stdout
    assert f"done     {CELLS[0]}" in lines
    failed = [x for x in lines if x.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith(f"FAILED (signal 9) {CELLS[1]}: ")
    assert lines[-1] == f"1 of 2 runs finished; failed: {CELLS[1]}"

    r = grid(*args)
    assert r.returncode == 0 and lines[0] != r.stdout.splitlines()[0], r.stdout + r.stderr
    assert f"resumed  {CELLS[1]} on " in r.stdout and f"finished {CELLS[0]}" in r.stdout
    assert r.stdout.splitlines()[-1] == "2 of 2 runs finished"
    for name in CELLS:
        assert checkpoint_steps(tmp_path / name)[-1] == 640
        # resumed, not restarted: an events file a process, the second one's returns from past the checkpoint on
        firsts = sorted(min(s for s, _ in returns(f)) for f in _event_files(tmp_path / name))
        assert len(firsts) == 2 and firsts[0] < KILL_AFTER <= killed[name] < firsts[1], (name, killed, firsts)


def _event_files(run_dir: Path) -> list[Path]:
    """Each events file alone in a directory of its own (the reader reads a directory)."""
    out = []
    for i, f in enumerate(sorted(run_dir.glob("events.out.tfevents.*"))):
        alone = run_dir.parent / f"{run_dir.name}.events{i}"
        alone.mkdir()
        (alone / f.name).symlink_to(f)
        out.append(alone)
    return out


def test_without_ray_grid_ray_says_how_to_install_it_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as without the package
    r = main_in_process("wnrl.grid", *GRID, "--ray", "--logdir", str(tmp_path))
    assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == ["error: --ray needs Ray: pip install 'wnrl[ray]'"]


def test_ray_flags_refused_in_one_line(tmp_path):
    pytest.importorskip("ray")
    for args, says in [
        (["--ray", "--cpus-per-run", "0"], "--cpus-per-run must be above 0"),
        (["--cpus-per-run", "2"], "--cpus-per-run is for --ray"),
        (["--ray", "--jobs", "2"], "--jobs is for the local grid"),
        (["--ray-address", "127.0.0.1:9"], "--ray-address 127.0.0.1:9: no Ray cluster answers there"),
    ]:
        r = main_in_process("wnrl.grid", *GRID, *args, "--logdir", str(tmp_path))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, (args, r.stderr)
