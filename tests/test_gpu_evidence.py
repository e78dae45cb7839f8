"""scripts/gpu_evidence.sh's logic, on CPU with a tiny budget: its stages, the files it leaves (at
most 8, 16 MiB each), its summary, and that every broken stage is named with its error line."""

import json
import os
import subprocess
import sys
import tarfile

import pytest
import torch

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "gpu_evidence.sh"
TINY = {
    "PYTHON": sys.executable,
    "PYTHONPATH": str(ROOT),
    "OMP_NUM_THREADS": "1",
    "GPU_EVIDENCE_DEVICE": "cpu",
    "GPU_EVIDENCE_COMPILE": "",  # the compiled bench is a second bench run; the failure test covers its stage
    "GPU_EVIDENCE_BENCH_SECONDS": "1",
    # DQN is too slow on 2 cores for a figure in a second: the bench skips it, training gets fixed settings
    "GPU_EVIDENCE_BENCH_ARGS": "--repeats 2 --env-sizes 2 --env-seconds 0.2 --dqn-envs none --a2c-envs 2 "
    "--agent-startup 1",
    # A2C stops on its step budget (too short for a game of Pong), DQN on its time limit (after a few
    # random games of Breakout: one env, learning not yet started).
    "GPU_EVIDENCE_A2C_SECONDS": "60",
    "GPU_EVIDENCE_A2C_ARGS": "--total-steps 600 --log-every 100",
    "GPU_EVIDENCE_DQN_SECONDS": "3",
    "GPU_EVIDENCE_DQN_SPS": "100000",  # sizes the DQN run so that its time limit ends it
    "GPU_EVIDENCE_DQN_ARGS": "--num-envs 1 --learning-starts 1000000 --buffer-size 2000 --log-every 200",
}


def run_script(out_dir, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(out_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, **TINY, **env},
        timeout=180,
        cwd="/",
    )


def check_limits(out_dir) -> dict[str, int]:
    files = {p.name: p.stat().st_size for p in out_dir.rglob("*") if p.is_file()}
    assert len(files) <= 8 and max(files.values()) <= 16 * 2**20, files
    return files


def test_gpu_evidence_on_cpu_with_a_tiny_budget(tmp_path):
    r = run_script(tmp_path / "out")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / "out"
    files = check_limits(out)
    expected = {"summary.md", "evidence.log", "bench-eager.json", "bench-scaling.png", "curves.png", "runs.tar.gz"}
    assert set(files) == expected

    summary = (out / "summary.md").read_text()
    for name in ("bench-eager", "train-a2c-pong", "train-dqn-breakout", "curves"):
        assert f"PASS stage {name} (" in summary
    assert "FAIL stage" not in summary and summary.rstrip().endswith("RESULT: every stage ran")
    goals = [line for line in summary.splitlines() if line.startswith("[eager] ")]
    # on a CPU the speed goals are shown with their figures, marked n/a (they are GPU goals)
    assert [g.split()[2] for g in goals] == ["WN", "DQN", "A2C"]
    assert all(g.split()[1] == "n/a" and "(GPU goal, not applicable on CPU)" in g for g in goals), goals
    # the settings: A2C at the num_envs its bench measured, DQN on fixed ones (the bench measured none)
    assert "- a2c: 2 envs, compile off (the fastest in the benches:" in summary
    assert "- dqn: 8 envs, compile off (fixed: the benches measured no dqn steps/s; 100000 steps/s assumed)" in summary
    assert "| dqn | Breakout | wn | 1 |" in summary  # the curves' table

    bench = json.loads((out / "bench-eager.json").read_text())
    assert {"layers", "dqn_update", "env", "agents", "memory", "goals"} <= set(bench)
    assert [(r["agent"], r["num_envs"]) for r in bench["agents"]] == [("a2c", 2)]
    for png in ("curves.png", "bench-scaling.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = tar.getnames()
    for run in ("pong_a2c", "breakout_dqn"):
        assert f"runs/{run}/config.json" in names
        assert any(n.startswith(f"runs/{run}/events.out.tfevents.") for n in names)
    assert not any("checkpoints" in n for n in names)
    log = (out / "evidence.log").read_text()
    assert "[train-dqn-breakout] time limit of 3 s reached" in log and "[train-a2c-pong] done: 600 steps" in log


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_evidence_names_every_broken_stage_and_goes_on(tmp_path):
    """--device cuda on a machine without one: every stage breaks; each is named with its error
    line, the later ones still run, and the script exits 1."""
    r = run_script(
        tmp_path / "out",
        GPU_EVIDENCE_DEVICE="cuda",
        GPU_EVIDENCE_COMPILE="reduce-overhead",
        GPU_EVIDENCE_A2C_SECONDS="2",
        GPU_EVIDENCE_DQN_SECONDS="2",
    )
    assert r.returncode == 1
    summary = (tmp_path / "out" / "summary.md").read_text()
    fails = {line.split()[2]: line for line in summary.splitlines() if line.startswith("FAIL stage ")}
    assert set(fails) == {"device", "bench-eager", "bench-compiled", "train-a2c-pong", "train-dqn-breakout", "curves"}
    assert fails["device"].endswith("AssertionError: torch sees no CUDA GPU (torch " + torch.__version__ + ")")
    for name in ("bench-eager", "bench-compiled"):
        assert "(exit 2," in fails[name] and fails[name].endswith(
            "error: --device cuda but no CUDA GPU is visible; use --device cpu"
        )
    for name in ("train-a2c-pong", "train-dqn-breakout"):
        assert fails[name].endswith(
            "error: --device cuda but torch sees no CUDA GPU (CPU-only build or no driver); use --device cpu"
        )
    assert "[reduce-overhead] FAIL no goal was reported" in summary
    assert "RESULT: 6 stage(s) failed: device,bench-eager,bench-compiled," in summary
    assert "FAIL stage device" in r.stderr  # loud on stderr too
    check_limits(tmp_path / "out")
