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

    # a step budget, not a time one: a busy machine measures the same work, only slower
    sps = agent_rate("dqn", 2, seconds=300, device="cpu", learning_starts=200, log_every=100, steps=600)
    assert sps is not None and 1 < sps < 10_000


def test_goals_pass_fail_and_unmeasured():
    from wnrl.bench import goals

    layers = [{"variant": "plain (nn.Conv2d/Linear)", "vs_plain": 1.0}, {"variant": "wnrl WN", "vs_plain": 1.08}]
    agents = [
        {"agent": "dqn", "num_envs": 8, "compile": "off", "steps_per_s": 4_000.0, "of_raw_env": 0.2},
        {"agent": "dqn", "num_envs": 32, "compile": "off", "steps_per_s": 6_000.0, "of_raw_env": 0.1},
        # the fastest A2C row decides, not the one with the best fraction
        {"agent": "a2c", "num_envs": 1, "compile": "off", "steps_per_s": 900.0, "of_raw_env": 0.95},
        {"agent": "a2c", "num_envs": 64, "compile": "off", "steps_per_s": 30_000.0, "of_raw_env": 0.6},
    ]
    by_goal = {g["goal"].split()[0]: g for g in goals({"layers": layers, "agents": agents})}
    assert by_goal["WN"]["passed"] and "1.080× plain" in by_goal["WN"]["detail"]
    assert by_goal["DQN"]["passed"] and "6,000 steps/s (32 envs" in by_goal["DQN"]["detail"]
    assert not by_goal["A2C"]["passed"] and "60% of the raw env" in by_goal["A2C"]["detail"]

    # a section that was not run has no goal; one whose figure is missing fails it
    only_agents = goals({"agents": [{"agent": "dqn", "num_envs": 8, "compile": "x", "steps_per_s": None}]})
    assert [(g["goal"].split()[0], g["passed"], g["detail"].split()[0]) for g in only_agents] == [
        ("DQN", False, "not"),
        ("A2C", False, "not"),
    ]
    slow_wn = goals({"layers": [{"variant": "wnrl WN", "vs_plain": 1.2}]})
    assert len(slow_wn) == 1 and not slow_wn[0]["passed"]


def test_bench_agent_section_with_chosen_sizes_and_goal_lines(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["--sections", "agents", "--device", "cpu", "--repeats", "2", "--dqn-envs", "none", "--a2c-envs", "2"]
    args += ["--agent-seconds", "300", "--agent-startup", "0", "--agent-steps", "600", "--json", str(out)]
    assert main(args) == 0
    figures = json.loads(out.read_text())
    assert [(r["agent"], r["num_envs"]) for r in figures["agents"]] == [("a2c", 2)]
    assert figures["agents"][0]["steps_per_s"] > 0 and figures["dqn_update"]["ms"] > 0
    printed = capsys.readouterr().out
    # GPU goals on a CPU: the figures, never PASS or FAIL
    assert "n/a  DQN >= 5,000 agent steps/s at the default replay ratio: not measured" in printed
    assert any(line.startswith("n/a  A2C") and "not applicable on CPU" in line for line in printed.splitlines())
    assert not any(line.startswith(("PASS", "FAIL")) for line in printed.splitlines())


def test_bench_project_section_times_the_projection_against_the_update(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--sections", "project", "--device", "cpu", "--repeats", "3", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["wn_project"]
    assert [r["net"] for r in rows] == ["Nature Q-net (Atari frames)", "MLP 256-256 (CartPole defaults)"]
    assert rows[0]["wn_params"] == 32 * 4 * 64 + 64 * 32 * 16 + 64 * 64 * 9 + 512 * 3136
    for r in rows:
        assert 0 < r["project_ms"] and 0 < r["update_ms"]
        assert r["project_of_update"] == pytest.approx(r["project_ms"] / r["update_ms"])
    assert "--wn-project: one projection" in capsys.readouterr().out
