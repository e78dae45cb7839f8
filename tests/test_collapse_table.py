"""scripts/collapse_table.py: which probes' trunks died, from their exported diagnostics."""

import csv
import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "collapse_table.py"


def _probe(path, ev, dead, steps=range(100_000, 260_000, 10_000)):
    path.mkdir()
    with open(path / "diagnostics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tag", "step", "value"])
        for s in steps:
            w.writerow(["losses/explained_variance", s, ev(s)])
            w.writerow(["dormant/trunk.convs.0/tau_0", s, 0.99])  # the first layer: not judged
            w.writerow(["dormant/trunk.fc.0/tau_0", s, dead(s)])


def test_a_dead_critic_with_dead_units_is_a_collapse_and_either_alone_is_not(tmp_path):
    _probe(tmp_path / "dead", ev=lambda s: 0.5 if s < 130_000 else 0.0, dead=lambda s: 0.9)
    _probe(tmp_path / "units_dead_critic_alive", ev=lambda s: 0.7, dead=lambda s: 0.94)
    _probe(tmp_path / "critic_dead_units_alive", ev=lambda s: 0.01, dead=lambda s: 0.2)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, tmp_path.iterdir())], capture_output=True, text=True, check=True
    ).stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()[2:] if line.startswith("|")}
    assert "| 11 | 0.00 (0.00-0.00) | 90% (trunk.fc.0) | **yes** |" in rows["dead"]  # only 150k-250k counts
    assert rows["units_dead_critic_alive"].endswith("| no |")
    assert rows["critic_dead_units_alive"].endswith("| no |")


def test_one_line_per_setting_counts_its_collapsed_seeds(tmp_path):
    _probe(tmp_path / "a2c_Pong_wn_s3_5M", ev=lambda s: 0.0, dead=lambda s: 0.9)
    _probe(tmp_path / "a2c_Pong_wn_s12_5M", ev=lambda s: 0.6, dead=lambda s: 0.9)
    _probe(tmp_path / "a2c_Pong_layer_s3_5M", ev=lambda s: 0.6, dead=lambda s: 0.2)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, tmp_path.iterdir())], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-2:] == [
        "a2c_Pong_layer_5M: 0 of 1 collapsed",
        "a2c_Pong_wn_5M: 1 of 2 collapsed (seed 3)",
    ]


def test_a_probe_that_has_not_reached_the_window_is_one_line(tmp_path):
    _probe(tmp_path / "short", ev=lambda s: 0.5, dead=lambda s: 0.1, steps=range(10_000, 100_000, 10_000))
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "short")], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "no explained variance" in r.stderr
