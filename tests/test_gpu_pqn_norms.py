"""scripts/gpu_pqn_norms.sh's logic on a CPU with a tiny budget: one PQN run per norm at the same time,
and what it keeps (a log per norm, the take-off table, the per-episode CSVs in one archive: within the
device call's 8 files), also when one run fails."""

import os
import subprocess
import sys
import tarfile

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "gpu_pqn_norms.sh"


def test_runs_each_norm_keeps_what_the_good_runs_logged_and_fails_for_the_bad_one(tmp_path):
    """`none` and `wn` run to their end; `bogus` stops with its one-line error: the script exits 1 and
    still keeps both good runs' CSVs and table rows, and every run's log."""
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "ENV": "CartPole-v1",
        "NORMS": "none bogus wn",
        "SEED": "3",
        "RUNS_DIR": str(tmp_path / "runs"),
        # the flags that follow the script's override its Atari config: a CartPole run of 1,024 steps
        "PQN_ARGS": "--num-envs 4 --n-steps 8 --num-minibatches 4 --update-epochs 1 --total-steps 1024 "
        "--threads 1 --device cpu --log-every 256",
    }
    out = tmp_path / "out"
    r = subprocess.run(["bash", str(SCRIPT), str(out), "60"], env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 1, r.stdout + r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["bogus.log", "csv.tar.gz", "none.log", "table.md", "wn.log"]
    assert (out / "bogus.log").read_text().strip() == (
        "error: unknown --norm 'bogus': choose one of wn, wn_mobn, none, batch, layer"
    )
    for norm in ("none", "wn"):
        assert "done: 1,024 steps" in (out / f"{norm}.log").read_text()
        config = (tmp_path / "runs" / f"pqn_CartPole-v1_gpu_{norm}_s3" / "config.json").read_text()
        assert f'"norm": "{norm}"' in config and '"seed": 3' in config
    rows = [line for line in (out / "table.md").read_text().splitlines() if line.startswith("| pqn_")]
    assert [row.split(" |")[0] for row in rows] == ["| pqn_CartPole-v1_gpu_none_s3", "| pqn_CartPole-v1_gpu_wn_s3"]
    with tarfile.open(out / "csv.tar.gz") as tar:
        names = tar.getnames()
    assert {"csv/pqn_CartPole-v1_gpu_none_s3/episodes.csv", "csv/pqn_CartPole-v1_gpu_wn_s3/episodes.csv"} <= set(names)
    assert not any("bogus" in n for n in names)
    assert "not exported:" in r.stderr and "bogus" in r.stderr
