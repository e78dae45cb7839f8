"""Speed figures, side by side in one run:
``python -m wnrl.bench [--quick] [--device cuda] [--compile MODE] [--json F] [--png F]``.

Sections:
* ``layers``: forward+backward time of the Nature trunk (plus a Q head) with plain layers, with
  wnrl's WN layers (both ways of applying g/‖v‖ to a conv), and with
  ``torch.nn.utils.parametrizations.weight_norm``; ratios to plain. Then one whole DQN update
  (online forward+backward, target forward, clip, Adam), whose time bounds DQN's steps/s at its
  replay ratio on this machine.
* ``project``: ``--wn-project``'s projection of every WN direction against one whole DQN update
  of the same net (the Nature Q-network on frames, and CartPole's MLP).
* ``env``: raw steps/s of the Atari vector env at several ``num_envs`` (random actions): the
  ceiling any agent can reach on this machine.
* ``agents``: DQN and A2C end-to-end agent steps/s on Breakout after learning has started (DQN at
  its default replay ratio, one update of 32 per 4 agent steps), as a fraction of the raw env at the
  same ``num_envs`` (and, for DQN, of the update bound), at several ``num_envs``: the scaling curve
  (``--png`` draws it).
* ``memory``: replay bytes per stored Atari transition, and the process's peak memory.

Only ratios measured in one run on the same machine are worth comparing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from wnrl.layers import WNConv2d
from wnrl.nets import QHead, WNConvNet

# num_envs per agent for the scaling curve (DQN at its default replay ratio: 1 update of 32 per 4 steps)
AGENT_SIZES = {"quick": {"dqn": [8], "a2c": [16]}, "full": {"dqn": [1, 8, 32], "a2c": [1, 8, 16, 32, 64]}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 3) -> float:
    """Median seconds per call over ``repeats`` calls (after ``warmup``)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _nature_q(norm: str, n_actions: int = 4) -> nn.Module:
    return nn.Sequential(WNConvNet(4, norm=norm), QHead(512, n_actions, wn_head=norm == "wn"))


def _torch_weight_norm_q(n_actions: int = 4) -> nn.Module:
    from torch.nn.utils.parametrizations import weight_norm

    net = _nature_q("none", n_actions)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            weight_norm(m)
    return net


def _wn_scale_output_q(n_actions: int = 4) -> nn.Module:
    net = _nature_q("wn", n_actions)
    for m in net.modules():
        if isinstance(m, WNConv2d):
            m.scale_output = True
    return net


def bench_layers(device: torch.device, batch: int = 32, repeats: int = 30) -> list[dict]:
    """Forward+backward (and an Adam step) of the Nature Q-network per layer flavour."""
    variants = {
        "plain (nn.Conv2d/Linear)": lambda: _nature_q("none"),
        "wnrl WN": lambda: _nature_q("wn"),
        "wnrl WN, conv output scaled": _wn_scale_output_q,
        "torch parametrizations.weight_norm": _torch_weight_norm_q,
    }
    x = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8, device=device)
    nets = {name: make().to(device) for name, make in variants.items()}
    opts = {name: torch.optim.Adam(net.parameters(), lr=1e-4) for name, net in nets.items()}

    def step(name: str) -> None:
        net, opt = nets[name], opts[name]
        opt.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
        opt.step()

    # Interleave the variants round by round so drifts in machine load hit all of them alike.
    samples: dict[str, list[float]] = {name: [] for name in nets}
    for name in nets:
        for _ in range(3):
            step(name)
    for _ in range(repeats):
        for name in nets:
            samples[name].append(time_fn(lambda n=name: step(n), device, repeats=1, warmup=0))
    plain = statistics.median(samples["plain (nn.Conv2d/Linear)"])
    rows = []
    for name, s in samples.items():
        t = statistics.median(s)
        rows.append({"variant": name, "batch": batch, "ms_per_update": t * 1e3, "vs_plain": t / plain})
    return rows


def _dqn_update(
    obs_shape: tuple[int, ...],
    batch: int,
    device: torch.device,
    compile: str = "off",
    hidden_sizes: tuple[int, ...] = (64, 64),
) -> tuple[nn.Module, Callable[[], None]]:
    """A WN Q-network and one DQN gradient step on a fixed random batch, made as the agent makes it
    (``compile``: its --compile): online forward and backward, target forward, gradient clip, Adam."""
    import copy

    from wnrl.agents.dqn import QNetwork, td_loss
    from wnrl.agents.replay import ReplayBatch
    from wnrl.compiled import Compiled

    q = QNetwork(obs_shape, 4, "wn", hidden_sizes=hidden_sizes).to(device)
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=1e-4, fused=True)

    def observations():
        if len(obs_shape) == 3:
            return torch.randint(0, 256, (batch, *obs_shape), dtype=torch.uint8, device=device)
        return torch.randn(batch, *obs_shape, device=device)

    b = ReplayBatch(
        observations(),
        torch.randint(0, 4, (batch,), device=device),
        torch.randn(batch, device=device),
        torch.full((batch,), 0.99, device=device),
        observations(),
    )

    def grads() -> None:
        opt.zero_grad(set_to_none=True)
        td_loss(q, target, b, double=False)[0].backward()

    compiled_grads = Compiled(grads, compile, "the DQN update")

    def step() -> None:
        compiled_grads()
        nn.utils.clip_grad_norm_(q.parameters(), 10.0)
        opt.step()

    return q, step


def bench_dqn_update(device: torch.device, batch: int = 32, repeats: int = 30, compile: str = "off") -> float:
    """Seconds per DQN gradient step with wnrl's WN Q-network on Atari frames, made as the agent
    makes it (``compile``: its --compile): online forward and backward, target forward, gradient
    clip and Adam. At one update per ``train_frequency`` agent steps, no DQN with this network can
    run faster than ``train_frequency / t`` steps/s here."""
    _, step = _dqn_update((4, 84, 84), batch, device, compile)
    return time_fn(step, device, repeats)


# (what, observation shape, batch, hidden sizes): the DQN nets --wn-project's cost is measured on
PROJECT_NETS = (
    ("Nature Q-net (Atari frames)", (4, 84, 84), 32, (64, 64)),
    ("MLP 256-256 (CartPole defaults)", (4,), 64, (256, 256)),
)


def bench_wn_project(device: torch.device, repeats: int = 30, compile: str = "off") -> list[dict]:
    """``--wn-project``'s cost: one :func:`~wnrl.layers.project_directions` over every WN direction
    of a DQN Q-network against one whole DQN update of that network (as the agent makes it, with
    ``compile``), timed interleaved, per net of :data:`PROJECT_NETS`. The CartPole MLP's update is
    so small that the projection's fixed costs show most there."""
    from wnrl.layers import project_directions, wn_layers

    rows = []
    for what, obs_shape, batch, hidden in PROJECT_NETS:
        q, step = _dqn_update(obs_shape, batch, device, compile, hidden)
        layers = [m for _, m in wn_layers(q)]

        def project(layers=layers) -> None:
            project_directions(layers)

        for _ in range(3):
            step(), project()
        samples: dict[str, list[float]] = {"update": [], "project": []}
        for _ in range(repeats):
            samples["update"].append(time_fn(step, device, repeats=1, warmup=0))
            samples["project"].append(time_fn(project, device, repeats=1, warmup=0))
        update, proj = (statistics.median(samples[k]) for k in ("update", "project"))
        rows.append(
            {
                "net": what,
                "batch": batch,
                "wn_params": sum(m.v.numel() for m in layers),
                "update_ms": update * 1e3,
                "project_ms": proj * 1e3,
                "project_of_update": proj / update,
            }
        )
    return rows


def bench_env(num_envs_list: list[int], seconds: float, game: str = "Breakout") -> list[dict]:
    """Raw vector-env steps/s (agent steps summed over envs) with random actions."""
    from wnrl import envs

    rows = []
    for n in num_envs_list:
        env = envs.make(game, num_envs=n, seed=0)
        env.reset()
        rng = np.random.default_rng(0)
        actions = rng.integers(0, env.single_action_space.n, size=(256, n))
        for i in range(20):
            env.step(actions[i % 256])
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            env.step(actions[steps % 256])
            steps += 1
        elapsed = time.perf_counter() - t0
        env.close()
        rows.append({"game": game, "num_envs": n, "steps_per_s": steps * n / elapsed})
    return rows


def agent_rate(
    agent: str,
    num_envs: int,
    seconds: float,
    device: str = "auto",
    learning_starts: int = 2_000,
    startup: float = 6.0,
    steps: int | None = None,
    **overrides,
) -> float | None:
    """Median agent steps/s of a real training run on Breakout, measured after learning starts
    (``overrides``: config fields, e.g. ``overlap_env=False``); the run is stopped ``seconds`` plus
    ``startup`` seconds after it starts, or ends after ``steps`` agent steps if that comes first
    (a fixed amount of work: what a slow or busy machine still measures)."""
    import shutil
    import tempfile

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tempfile.mkdtemp(prefix="wnrl-bench-")
    # Without ``steps`` no step budget: stopped (as Ctrl-C would) ``seconds`` (plus start-up) after it starts.
    budget = steps if steps is not None else 10**9
    fields = dict(
        num_envs=num_envs, logdir=logdir, progress=False, device=device, checkpoint_every=10**9, total_steps=budget
    )
    if agent == "dqn":
        from wnrl.agents.dqn import DQNConfig as Config
        from wnrl.agents.dqn import train

        fields.update(learning_starts=learning_starts, buffer_size=50_000, log_every=max(400, num_envs * 20))
    else:
        from wnrl.agents.a2c import A2CConfig as Config
        from wnrl.agents.a2c import train

        learning_starts = 0
        fields.update(log_every=num_envs * 5 * 10)
    cfg = Config.for_env("Breakout", **{**fields, **overrides})
    try:
        summary = _with_deadline(train, cfg, seconds + startup)
        events = EventAccumulator(str(summary["run_dir"]))
        events.Reload()
        sps = [e.value for e in events.Scalars("charts/SPS") if e.step > learning_starts + cfg.log_every]
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    return float(statistics.median(sps)) if sps else None  # the run was too short to log after learning


def _with_deadline(train, cfg, seconds: float) -> dict:
    """Runs ``train`` and stops it (as Ctrl-C would) once ``seconds`` have passed."""
    import signal
    import threading

    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        return train(cfg)
    finally:
        timer.cancel()


def device_name(device: torch.device) -> str:
    """ "NVIDIA H100 80GB HBM3" or "AMD EPYC, 2 cores"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores"


def peak_memory_mb(device: torch.device) -> dict:
    import resource

    out = {"process_peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["cuda_peak_allocated_MB"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def _print_table(title: str, rows: list[dict]) -> None:
    if not rows:
        return
    print(f"\n{title}")
    keys = list(rows[0])
    cells = [[_fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


# The speed goals a GPU machine is held to (goals() checks a bench result against them); on a CPU they
# do not apply: the figures are shown, never as a failure.
DQN_GOAL_STEPS_PER_S = 5_000  # DQN at its default replay ratio (one update of 32 per 4 agent steps)
A2C_GOAL_OF_RAW_ENV = 0.85  # A2C's steps/s as a fraction of the raw vector env at the same num_envs
WN_GOAL_VS_PLAIN = 1.10  # wnrl's WN Nature Q-network update time over the plain one


def goals(result: dict, device_type: str = "cuda") -> list[dict]:
    """The goals for the sections ``result`` holds, each ``{"goal", "passed", "detail", "applies"}``;
    a figure its section did not produce (a run too short, or one that failed) fails its goal. They
    are GPU goals: measured on another ``device_type``, each has ``applies`` False and ``passed`` None."""
    out = _goals(result)
    for g in out:
        g["applies"] = device_type == "cuda"
        if not g["applies"]:
            g["passed"] = None
            g["detail"] += f" (GPU goal, not applicable on {device_type.upper()})"
    return out


def goal_line(g: dict) -> str:
    """``PASS ...`` / ``FAIL ...`` for a goal that applies, ``n/a ...`` for one that does not."""
    mark = "n/a " if not g.get("applies", True) else "PASS" if g["passed"] else "FAIL"
    return f"{mark} {g['goal']}: {g['detail']}"


def _goals(result: dict) -> list[dict]:
    out = []
    if "layers" in result:
        wn = next((r for r in result["layers"] if r["variant"] == "wnrl WN"), None)
        ok = wn is not None and wn["vs_plain"] <= WN_GOAL_VS_PLAIN
        detail = f"{wn['vs_plain']:.3f}× plain" if wn else "not measured"
        out.append({"goal": f"WN layer within {WN_GOAL_VS_PLAIN - 1:.0%} of plain", "passed": ok, "detail": detail})
    if "agents" in result:
        for agent, goal in (
            ("dqn", f"DQN >= {DQN_GOAL_STEPS_PER_S:,} agent steps/s at the default replay ratio"),
            ("a2c", f"A2C >= {A2C_GOAL_OF_RAW_ENV:.0%} of the raw env's steps/s at the same num_envs"),
        ):
            rows = [r for r in result["agents"] if r["agent"] == agent and r.get("steps_per_s") is not None]
            best = max(rows, key=lambda r: r["steps_per_s"], default=None)  # the fastest num_envs
            if best is None:
                out.append({"goal": goal, "passed": False, "detail": "not measured (see the agents table)"})
                continue
            where = f"{best['num_envs']} envs, compile {best['compile']}"
            if agent == "dqn":
                ok = best["steps_per_s"] >= DQN_GOAL_STEPS_PER_S
                detail = f"{best['steps_per_s']:,.0f} steps/s ({where})"
            else:
                ok = best["of_raw_env"] >= A2C_GOAL_OF_RAW_ENV
                detail = f"{best['of_raw_env']:.0%} of the raw env ({best['steps_per_s']:,.0f} steps/s, {where})"
            out.append({"goal": goal, "passed": ok, "detail": detail})
    return out


def _sizes(text: str) -> list[int]:
    """ "8,16" -> [8, 16]; "none" or "" -> [] (that part is skipped)."""
    if text.strip().lower() == "none":
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 8,16, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    from wnrl.compiled import COMPILE_MODES

    p = argparse.ArgumentParser(prog="python -m wnrl.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and sizes (under a minute)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file (after every section)")
    p.add_argument("--png", default=None, help="also draw steps/s against num_envs (env and agents) to this PNG")
    p.add_argument("--compile", default="off", choices=COMPILE_MODES, help="the agents' --compile")
    p.add_argument(
        "--sections",
        default="layers,project,env,agents,memory",
        help="comma-separated: layers, project, env, agents, memory",
    )
    p.add_argument("--repeats", type=int, default=None, help="timed calls per layer variant and DQN update")
    p.add_argument("--env-sizes", type=_sizes, default=None, help="num_envs for the raw env (e.g. 8,16,32,64)")
    p.add_argument("--env-seconds", type=float, default=None, help="seconds per raw-env size")
    p.add_argument("--dqn-envs", type=_sizes, default=None, help="num_envs for DQN end to end (e.g. 8,32; none)")
    p.add_argument("--a2c-envs", type=_sizes, default=None, help="num_envs for A2C end to end (e.g. 16,64; none)")
    p.add_argument("--agent-seconds", type=float, default=None, help="seconds each agent run is measured")
    p.add_argument("--agent-startup", type=float, default=6.0, help="seconds each agent run gets to start (6)")
    p.add_argument(
        "--agent-steps", type=int, default=None, help="end each agent run after this many steps (else only by time)"
    )
    args = p.parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            print("error: --device cuda but no CUDA GPU is visible; use --device cpu", file=sys.stderr)
            return 2
    quick = args.quick
    repeats = {
        "layers": args.repeats or (10 if quick else 40),
        "update": args.repeats or (10 if quick else 30),
    }
    agent_sizes = dict(AGENT_SIZES["quick" if quick else "full"])
    if args.dqn_envs is not None:
        agent_sizes["dqn"] = args.dqn_envs
    if args.a2c_envs is not None:
        agent_sizes["a2c"] = args.a2c_envs
    sections = set(args.sections.split(","))
    result: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": device_name(device),
            "torch_threads": torch.get_num_threads(),
            "cpu_cores": os.cpu_count(),
        }
    }

    def save() -> None:  # after every section, so a run stopped midway keeps what it measured
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)

    print(f"wnrl bench on {result['machine']['device']} (torch {torch.__version__}, {device.type})")
    if "layers" in sections:
        result["layers"] = bench_layers(device, repeats=repeats["layers"])
        _print_table("Nature Q-network, forward+backward+Adam, batch 32", result["layers"])
        save()
    if "layers" in sections or "agents" in sections:
        from wnrl.agents.dqn import DQNConfig

        every = DQNConfig.for_env("Breakout").train_frequency
        t = bench_dqn_update(device, repeats=repeats["update"], compile=args.compile)
        result["dqn_update"] = {"compile": args.compile, "ms": t * 1e3, "update_bound_steps_per_s": every / t}
        _print_table(
            "DQN update (online fwd+bwd, target fwd, clip, Adam; batch 32) and the steps/s it allows at 1 per 4 steps",
            [result["dqn_update"]],
        )
        save()
    if "project" in sections:
        result["wn_project"] = bench_wn_project(device, repeats=repeats["update"], compile=args.compile)
        _print_table(
            f"--wn-project: one projection of every WN direction vs one DQN update (compile {args.compile})",
            result["wn_project"],
        )
        save()
    env_seconds = args.env_seconds or (1.0 if quick else 3.0)
    if "env" in sections:
        sizes = args.env_sizes if args.env_sizes is not None else ([8, 16] if quick else [1, 8, 16, 32, 64])
        result["env"] = bench_env(sizes, seconds=env_seconds)
        _print_table(f"Raw Atari vector env (random actions, {os.cpu_count()} CPU cores)", result["env"])
        save()
    failures = []
    if "agents" in sections:
        secs = args.agent_seconds or (10.0 if quick else 25.0)
        raw = {r["num_envs"]: r["steps_per_s"] for r in result.get("env", [])}
        rows = []
        for agent, sizes in agent_sizes.items():
            for n in sizes:
                if n not in raw:
                    raw[n] = bench_env([n], seconds=min(env_seconds, 1.0))[0]["steps_per_s"]
                row = {"agent": agent, "num_envs": n, "compile": args.compile, "steps_per_s": None}
                try:
                    row["steps_per_s"] = agent_rate(
                        agent,
                        n,
                        secs,
                        device=str(device),
                        startup=args.agent_startup,
                        steps=args.agent_steps,
                        compile=args.compile,
                    )
                except Exception as e:  # one broken configuration must not hide the others' figures
                    row["error"] = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"
                    failures.append(f"{agent} at {n} envs: {row['error']}")
                    print(f"error: {agent} at {n} envs, compile {args.compile}: {row['error']}", file=sys.stderr)
                sps = row["steps_per_s"]
                row["of_raw_env"] = None if sps is None else sps / raw[n]
                bound = result["dqn_update"]["update_bound_steps_per_s"]
                row["of_update_bound"] = sps / bound if agent == "dqn" and sps is not None else None
                rows.append(row)
                result["agents"] = rows
                save()
        result["agents"] = rows
        _print_table("Agents end-to-end on Breakout, after learning starts", rows)
    if "memory" in sections:
        from wnrl.agents.replay import ReplayBuffer

        rb = ReplayBuffer(1_000, 8, (4, 84, 84), torch.uint8)
        result["memory"] = {
            "replay_bytes_per_transition": rb.bytes_per_transition,
            "replay_GB_per_million": rb.bytes_per_transition * 1e6 / 1e9,
            **peak_memory_mb(device),
        }
        _print_table("Memory", [result["memory"]])
    result["goals"] = goals(result, device.type)
    if result["goals"]:
        gpu_only = "" if device.type == "cuda" else f"; GPU goals, not applicable on {device.type.upper()}"
        print(f"\nGoals (compile {args.compile}{gpu_only}):")
        for g in result["goals"]:
            print(goal_line(g))
    save()
    if args.json:
        print(f"\nwrote {args.json}")
    if args.png:
        plot_scaling(result, args.png)
        print(f"wrote {args.png}")
    if failures:
        print(f"error: {len(failures)} agent run(s) failed; first: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def plot_scaling(result: dict, path: str) -> None:
    """Steps/s against num_envs: the raw env (the ceiling) and each agent, log-log."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.6))
    env_rows = result.get("env", [])
    if env_rows:
        ax.plot([r["num_envs"] for r in env_rows], [r["steps_per_s"] for r in env_rows], "k--o", label="raw env")
    for agent in sorted({r["agent"] for r in result.get("agents", [])}):
        rows = [r for r in result["agents"] if r["agent"] == agent and r["steps_per_s"] is not None]
        ax.plot([r["num_envs"] for r in rows], [r["steps_per_s"] for r in rows], "-o", label=agent)
    bound = result.get("dqn_update", {}).get("update_bound_steps_per_s")
    if bound:
        ax.axhline(bound, color="tab:orange", linestyle=":", label="DQN update bound (1 update per 4 steps)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted({r["num_envs"] for r in env_rows + result.get("agents", [])})
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(sizes))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(n) for n in sizes]))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("num_envs")
    ax.set_ylabel("agent steps/s (Breakout)")
    ax.set_title(f"wnrl bench: {result['machine']['device']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
