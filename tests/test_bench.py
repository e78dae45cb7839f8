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
