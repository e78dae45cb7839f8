"""scripts/gpu_profile.py runs end to end (on a CPU, with its repeats scaled down to one): its three
sections print and land in OUT_DIR/profile.txt, so a device call does not find it broken."""

import os
import subprocess
import sys

from tests.helpers import ROOT


def test_gpu_profile_runs_every_section_on_a_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GPU_PROFILE_SCALE": "0.01"}
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_profile.py"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    text = (tmp_path / "profile.txt").read_text()
    assert text == r.stdout
    assert "device: cpu" in text
    rows = [line for line in text.splitlines() if line.startswith("| none |") or line.startswith("| wn |")]
    assert len(rows) == 8  # plain and WN × channels_last on/off × cuDNN's autotuner off/on
    assert text.count("median ms per update:") == 2
    for name in ("guarded (default)", "unguarded", "guarded again"):
        assert f"{name}: median ms per update" in text
