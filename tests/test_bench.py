import json
import statistics

import pytest
import torch

from wnrl import bench
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


def test_agent_rate_of_a_run_stopped_before_its_first_log_is_none(monkeypatch, tmp_path):
    """On a busy machine the deadline can stop a run before it logs any SPS: not measured, no KeyError."""
    from torch.utils.tensorboard import SummaryWriter

    import wnrl.bench as bench

    with SummaryWriter(str(tmp_path)) as w:
        w.add_scalar("charts/epsilon", 1.0, 0)  # an event file without charts/SPS

    monkeypatch.setattr(bench, "_with_deadline", lambda train, cfg, seconds: {"run_dir": tmp_path})
    assert bench.agent_rate("a2c", 2, seconds=1, device="cpu") is None


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
    # A2C's rows and its goal line at a measured figure: tests/test_gpu_evidence.py (its bench measures A2C only)
    args = ["--sections", "agents", "--device", "cpu", "--repeats", "2", "--dqn-envs", "none", "--a2c-envs", "none"]
    args += ["--ppo-envs", "1", "--pqn-envs", "1", "--agent-seconds", "300"]
    args += ["--agent-startup", "0", "--agent-steps", "300", "--json", str(out)]
    assert main(args) == 0
    figures = json.loads(out.read_text())
    assert [(r["agent"], r["num_envs"]) for r in figures["agents"]] == [("ppo", 1), ("pqn", 1)]
    assert all(r["steps_per_s"] > 0 for r in figures["agents"]) and figures["dqn_update"]["ms"] > 0
    printed = capsys.readouterr().out
    # GPU goals on a CPU: the figures, never PASS or FAIL
    assert "n/a  DQN >= 5,000 agent steps/s at the default replay ratio: not measured" in printed
    assert "n/a  A2C >= 85% of the raw env's steps/s at the same num_envs: not measured" in printed
    # PPO and PQN have rows and no goal
    assert "Agents end-to-end on Breakout" in printed and not any(
        "PPO >=" in ln or "PQN >=" in ln for ln in printed.splitlines()
    )
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


def test_bench_norms_section_rows_ratios_goal_lines_and_json(tmp_path, capsys):
    from wnrl.bench import NORM_VARIANTS

    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the suite runs at 1: the section's 1 and its putting back are then seen
    # tiny sizes: DQN learns from step 50 (runs of 52 and 252 steps), A2C from its 4 init rollouts (160 and 1,160)
    args = ["--sections", "norms", "--device", "cpu", "--norm-envs", "CartPole-v1", "--norm-steps", "0,200"]
    args += ["--norm-learning-starts", "50", "--norm-repeats", "2", "--repeats", "3", "--json", str(out)]
    args += ["--norm-agents", "dqn,a2c"]  # PPO's part: test_bench_norms_ppo_update_and_window
    # A2C's window is the same 200 steps: 5 rollouts of 8 envs
    try:
        assert main(args) == 0
        assert torch.get_num_threads() == 2  # the section's one thread is put back
    finally:
        torch.set_num_threads(threads)
    rows = json.loads(out.read_text())["norms"]
    variants = list(NORM_VARIANTS)
    assert variants == ["none", "wn", "wn_mobn", "wn+project", "layer", "batch"]
    assert [(r["agent"], r["env"], r["norm"]) for r in rows] == [
        (agent, "CartPole-v1", v) for agent in ("dqn", "a2c") for v in variants
    ]
    # The costs are differences of two runs' CPU times: at these tiny windows one can come out ≤ 0 on a
    # busy machine (the table then notes it), so the contract checked is how the figures relate, not a sign.
    none = {r["agent"]: r for r in rows if r["norm"] == "none"}
    for r in rows:
        assert r["update_ms"] > 0 and r["update_vs_none"] > 0  # a time of work, never a difference
        assert len(r["samples_s_per_1k"]) == 2 and r["repeats"] == 2 and r["update_repeats"] == 3
        assert r["torch_threads"] == 1 and r["clock"] == "CPU"
        assert r["s_per_1k_steps"] == statistics.median(r["samples_s_per_1k"])
        base = none[r["agent"]]
        paired = [c / b for c, b in zip(r["samples_s_per_1k"], base["samples_s_per_1k"]) if b > 0]
        # the median of the rounds' paired ratios, not the ratio of the medians
        assert r["vs_none"] == (statistics.median(paired) if paired and base["s_per_1k_steps"] > 0 else None)
        assert (r["s_per_1k_min"], r["s_per_1k_max"]) == (min(r["samples_s_per_1k"]), max(r["samples_s_per_1k"]))
        assert r["update_vs_none"] == r["update_ms"] / none[r["agent"]]["update_ms"]
        if r["vs_none_min"] is not None:
            assert r["vs_none_min"] <= r["vs_none_max"]
    for r in none.values():
        assert r["update_vs_none"] == 1.0 and r["vs_none"] in (1.0, None)
    dqn, a2c = rows[0], rows[6]
    assert (dqn["learning_from"], dqn["steps_from"], dqn["steps_to"], dqn["update_batch"]) == (50, 52, 252, 64)
    assert (a2c["learning_from"], a2c["steps_from"], a2c["steps_to"], a2c["update_batch"]) == (160, 160, 360, 40)
    printed = capsys.readouterr().out
    assert "DQN on CartPole-v1 (its family defaults), one torch thread, one run at a time; ratios to none" in printed
    assert (
        "CPU seconds per 1k agent steps over steps 52→252" in printed
        and "learning from step 50, median of 2" in printed
    )
    # the norms goal is not a GPU goal: it applies on a CPU too, with its figure; 2 rounds decide nothing
    goal_lines = [line for line in printed.splitlines() if " wn within 10% of none end to end" in line]
    assert [line.split()[1] for line in goal_lines] == ["DQN", "A2C"]
    assert all(line.startswith("OPEN ") and "undecided (2 round(s)" in line for line in goal_lines), goal_lines
    assert all("× none on CartPole-v1" in line or "within the noise" in line for line in goal_lines)


def test_bench_norms_takes_no_ratio_to_a_cost_within_the_noise(monkeypatch, capsys):
    """A round whose window measured no cost (≤ 0, a busy machine at a tiny window) gives no ratio to it:
    vs_none is None where none's median is ≤ 0, the per-round range skips such rounds, the goal says
    "not measured" and the table notes the window is within the noise."""
    import wnrl.bench as bench

    costs = {"none": iter([-0.5, 2.0, -1.0]), "wn": iter([1.0, 2.2, 3.0])}
    monkeypatch.setattr(bench, "steady_cost", lambda agent, env, v, *a, **k: next(costs[v]))
    monkeypatch.setattr(bench, "_norm_run", lambda *a, **k: (0.0, 0))
    rows = bench.bench_norms("a2c", "CartPole-v1", ["none", "wn"], torch.device("cpu"), 0, 40, 3, 2)
    none, wn = rows
    assert none["samples_s_per_1k"] == [-0.5, 2.0, -1.0] and none["s_per_1k_steps"] == -0.5
    assert none["vs_none"] is None and wn["vs_none"] is None and wn["s_per_1k_steps"] == 2.2
    # rounds in a rotated order: wn's second sample met none's second; only that round has a positive none
    assert (wn["vs_none_min"], wn["vs_none_max"]) == (1.1, 1.1)
    assert [g["detail"] for g in bench._norm_goals(rows)] == [
        "not measured (none's window measured no cost, within the noise: lengthen --norm-steps)"
    ]
    assert bench.norms_table(rows)[0]["vs_none_range"] == "1.00–1.00"
    costs = {"none": iter([-0.5, -0.2]), "wn": iter([1.0, 2.0])}
    rows = bench.bench_norms("a2c", "CartPole-v1", ["none", "wn"], torch.device("cpu"), 0, 40, 2, 2)
    assert rows[1]["vs_none_min"] is None and bench.norms_table(rows)[1]["vs_none_range"] is None


@pytest.mark.parametrize("agent, batch, learn_from", [("ppo", 8 * 32, 2 * 256), ("pqn", 4 * 32 // 4, 1 * 128)])
def test_bench_norms_ppo_and_pqn_update_and_window(monkeypatch, agent, batch, learn_from):
    """PPO and PQN in the norms section: the update is one minibatch step (forward, loss, backward, clip,
    the optimizer's step, --wn-project's projection) that changes the net; runs end on whole rollouts."""
    import importlib

    from wnrl.bench import learning_from, norm_config, norm_update, norm_window
    from wnrl.layers import wn_layers

    module = importlib.import_module(f"wnrl.agents.{agent}")
    name = "ppo_update" if agent == "ppo" else "learn"
    seen = []
    original = getattr(module, name)

    def spy(cfg, net, *args, **kw):
        before = [p.detach().clone() for p in net.parameters()]
        out = original(cfg, net, *args, **kw)
        seen.append((before, net))
        return out

    monkeypatch.setattr(module, name, spy)
    cfg = norm_config(agent, "CartPole-v1", "wn+project")
    update, n, data_init = norm_update(agent, cfg, torch.device("cpu"))
    assert n == batch and data_init  # one minibatch of the classic rollout (PPO: 8 × 32 in 1; PQN: 4 × 32 in 4)
    update()
    before, net = seen[0]
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
    for _, layer in wn_layers(net):  # projected back to the layer's norm after the step
        norms = layer.v.detach().flatten(1).norm(dim=1)
        assert torch.allclose(norms, norms[0].expand_as(norms), rtol=1e-5)
    assert learning_from(agent, cfg, data_init) == learn_from  # after the init rollouts
    per = cfg.num_envs * cfg.n_steps
    t1, t2 = norm_window(agent, cfg, learn_from, 100, 300)
    assert t1 % per == 0 and t2 % per == 0 and t1 >= learn_from + 100 and t2 >= t1 + 300 and t2 - t1 < 300 + per


def test_norm_goals_per_agent_on_every_env():
    from wnrl.bench import goal_line, goals

    def row(agent, env, norm, ratio, lo=None, hi=None, repeats=3):
        return {"agent": agent, "env": env, "norm": norm, "vs_none": ratio, "repeats": repeats}| {
            "vs_none_min": ratio if lo is None else lo, "vs_none_max": ratio if hi is None else hi,
        }  # fmt: skip

    norms = [row("dqn", "CartPole-v1", "none", 1.0), row("dqn", "CartPole-v1", "wn", 1.08)]
    norms += [row("dqn", "Catch", "wn", 1.02), row("a2c", "CartPole-v1", "wn", 1.04), row("a2c", "Catch", "wn", 1.2)]
    norms += [{"agent": "a2c", "env": "Breakout", "error": "RuntimeError: x"}]
    dqn, a2c = goals({"norms": norms}, "cpu")
    assert dqn["applies"] and dqn["passed"] and a2c["applies"] and not a2c["passed"]
    assert goal_line(dqn).startswith("PASS DQN wn within 10% of none end to end: CPU s per 1k agent steps, 1.08×")
    assert "1.20× none on Catch" in goal_line(a2c) and goal_line(a2c).endswith("not within 10%")
    # a verdict only where every round is on one side of the goal, over at least 3 rounds
    (straddles,) = goals({"norms": [row("dqn", "Catch", "wn", 1.04, 0.9, 1.2)]}, "cpu")
    (one_round,) = goals({"norms": [row("dqn", "Catch", "wn", 1.04, repeats=1)]}, "cpu")
    assert straddles["passed"] is None and "undecided (the rounds fall on both sides" in straddles["detail"]
    assert one_round["passed"] is None and goal_line(one_round).startswith("OPEN ")
    assert "1 round(s)" in goal_line(one_round)
    (only_layer,) = goals({"norms": [row("dqn", "Catch", "layer", 1.1)]}, "cuda")
    assert not only_layer["passed"] and "not measured (wn and none must both be" in only_layer["detail"]
    (failed,) = goals({"norms": [{"agent": "a2c", "env": "Catch", "error": "AttributeError: x"}]}, "cpu")
    assert not failed["passed"] and failed["detail"] == "not measured (failed on Catch: see the errors above)"


@pytest.mark.parametrize(
    "bad, says",
    [
        (["--sections", "norm"], "--sections: unknown norm"),
        (["--norm-variants", "wn,weight"], "unknown weight"),
        (["--norm-agents", "sac"], "unknown sac"),
        (["--norm-envs", "NoSuchEnv-v9"], "--norm-envs"),
        (["--norm-steps", "100"], "WARMUP,WINDOW"),
        (["--norm-steps", "100,0"], "WARMUP,WINDOW"),
        (["--norm-repeats", "0"], "positive integer"),
        (["--norm-learning-starts", "-5"], "positive integer"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_bench_bad_values_are_one_line(bad, says, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--sections", "norms", "--device", "cpu", *bad])
    assert exit.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith("error: ") and says in captured.err


def test_bench_threads_sets_torchs_threads(monkeypatch):
    """--threads N, as train and evaluate take it: the sections run with N torch threads."""
    seen = []
    monkeypatch.setattr(bench, "bench_env", lambda *a, **k: seen.append(torch.get_num_threads()) or [])
    before = torch.get_num_threads()
    try:
        bench.main(
            ["--sections", "env", "--device", "cpu", "--threads", "3", "--env-sizes", "1", "--env-seconds", "0.01"]
        )
    finally:
        torch.set_num_threads(before)
    assert seen == [3]
