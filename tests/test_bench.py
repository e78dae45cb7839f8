import json

import pytest
import torch

from wnrl.bench import main


def test_bench_memory_section_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--sections", "memory", "--json", str(out), "--device", "cpu"]) == 0
    figures = json.loads(out.read_text())
    assert figures["memory"]["replay_bytes_per_transition"] == 84 * 84 + 15
    assert figures["memory"]["process_peak_rss_MB"] > 0
    assert "replay_bytes_per_transition" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_bench_refuses_cuda_without_gpu(capsys):
    assert main(["--device", "cuda"]) == 2
    assert "use --device cpu" in capsys.readouterr().err


def test_bench_env_section_writes_json_and_the_scaling_png(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "scaling.png"
    assert main(["--sections", "env", "--quick", "--json", str(out), "--png", str(png), "--device", "cpu"]) == 0
    rows = json.loads(out.read_text())["env"]
    assert [r["num_envs"] for r in rows] == [8, 16]
    assert all(r["steps_per_s"] > 0 for r in rows)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_agent_rate_measures_a_real_run_after_learning_starts():
    from wnrl.bench import agent_rate

    sps = agent_rate("dqn", 2, seconds=8, device="cpu", learning_starts=200, log_every=100)
    assert 1 < sps < 10_000
