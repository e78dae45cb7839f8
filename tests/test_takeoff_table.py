"""scripts/takeoff_table.py: take-off steps, windows, dormant units and compute, exact on made-up runs."""

import importlib.util
import json

from tests.helpers import ROOT

spec = importlib.util.spec_from_file_location("takeoff_table", ROOT / "scripts" / "takeoff_table.py")
takeoff_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(takeoff_table)


def _exported(path, games: int, dense, sps: float = 200.0, after: int = 0):
    """An exported run of 3M steps: a game every 10k steps, -20 up to 1.0M and +20 after, then ``after``
    games scoring 0 past 3M (a last rollout crossing the length); the dense layer's dead fraction
    ``dense(step)``, the convs' 0.9 (the first: not judged), 0.2 and 0.3 at τ = 0, and 0.95 at τ = 0.025
    (not read), every 50k."""
    path.mkdir()
    steps = [10_000 * k for k in range(1, games + 1)] + [3_000_000 + 10_000 * k for k in range(1, after + 1)]
    rows = ["step,return,length"] + [f"{s},{0 if s > 3_000_000 else -20 if s <= 1_000_000 else 20},100" for s in steps]
    (path / "episodes.csv").write_text("\n".join(rows) + "\n")
    diag = ["tag,step,value"]
    for s in range(50_000, steps[-1] + 1, 50_000):
        diag += [f"dormant/trunk.convs.{i}/tau_0,{s},{v}" for i, v in ((0, 0.9), (3, 0.2), (6, 0.3))]
        diag += [f"dormant/trunk.convs.{i}/tau_0.025,{s},0.95" for i in (0, 3)]
        diag.append(f"dormant/trunk.fc.0/tau_0,{s},{dense(s)}")
    (path / "diagnostics.csv").write_text("\n".join(diag) + "\n")
    config = {"agent": "pqn", "total_steps": 3_000_000, "exported": {"median_sps": sps}}
    (path / "config.json").write_text(json.dumps(config))


def test_each_column_on_runs_whose_answers_are_known(tmp_path, capsys):
    _exported(tmp_path / "full", 300, dense=lambda s: 0.5 if s <= 1_000_000 else 0.1, after=2)
    _exported(tmp_path / "short", 60, dense=lambda s: 0.4)
    _exported(tmp_path / "tiny", 10, dense=lambda s: 0.4)
    runs = [str(tmp_path / n) for n in ("full", "short", "tiny")]
    assert takeoff_table.main(runs) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| run | 20-game mean first > 0 / ≥ 10 / ≥ 15 | games ending in the 100k steps")
    # 20 games ending at game k (k > 100) hold k - 100 wins: mean 2(k - 100) - 20, > 0 from k = 111,
    # ≥ 10 from 115, ≥ 15 from 118. At 3M, the run's length, the window runs to its end: 10 games of 20
    # and 2 of 0 (16.7); the last 100: 98 of 20 and 2 of 0. Dormant: the dense layer (the later convs'
    # worst at τ = 0; their τ = 0.025 is not read)
    assert lines[2] == (
        "| full | 1.11M / 1.15M / 1.18M | -20.0 / -20.0 / 20.0 / 20.0 / 16.7 | +19.60 "
        "| 50% (30%) / 50% (30%) / 10% (30%) / 10% (30%) | 4.2 h (5.0 s per 1k) | 3.02M |"
    )
    # a run cut at 0.6M: nothing past its end, its windows before its length plain, its 60 games said
    assert lines[3] == (
        "| short | — / — / — | -20.0 / — / — / — / — | -20.00 (60 games) | 40% (30%) / — / — / — "
        "| 0.8 h (5.0 s per 1k) | 0.60M |"
    )
    assert lines[4].startswith("| tiny | n/a / n/a / n/a | — / — / — / — / — | -20.00 (10 games) |")


def test_a_20_game_mean_exactly_on_a_level_reaches_it():
    """These 20 scores sum to 300, a mean of exactly 15, which the float convolution of means computed as
    14.999999999999998: "≥ 15" was missed (and "> 0" could pass on an exact 0)."""
    import numpy as np

    scores = np.array([11, 18, 9, 12, 11, 20, 9, 15, 16, 18, 16, 18, 18, 16, 18, 19, 12, 15, 20, 9], float)
    steps = np.arange(1, 21) * 1000.0
    assert takeoff_table.first_reaching(steps, scores, 15, strict=False) == 20_000
    assert takeoff_table.first_reaching(steps, scores, 15, strict=True) is None
    assert takeoff_table.first_reaching(steps, scores - 15, 0, strict=True) is None  # a mean of exactly 0
