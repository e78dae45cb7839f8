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
* ``norms`` (not in the default sections: about 25 minutes on 2 cores for DQN and A2C, ``--quick``
  under 2; PPO's part, ``--norm-agents ppo --quick``, took 7 minutes beside two other runs): what
  each network normalization costs (none, wn, wn_mobn, wn+project, layer, batch), for DQN, A2C and
  PPO on CartPole-v1, Catch and Breakout (``--quick``: not Breakout), each agent with its env family's
  defaults (DQN on Breakout learning from step 500): one gradient update of the agent's own net,
  and the agent end to end as CPU seconds per 1,000 agent steps, from two whole runs of different
  lengths (start-up cancels), both past the learning start; one torch thread, one run at a time,
  the median of 3 rounds, with ratios to none. ``time.process_time``: on a machine that other work
  shares, the figure moves far less than wall-clock would (a GPU run measures wall-clock).

Only ratios measured in one run on the same machine are worth comparing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import wnrl.layers
from wnrl.config import add_threads_argument, set_threads
from wnrl.layers import WNConv2d, WNLinear
from wnrl.nets import QHead, WNConvNet

# num_envs per agent for the scaling curve (DQN at its default replay ratio: 1 update of 32 per 4 steps;
# PPO and PQN at their Atari defaults' 8 and more)
AGENT_SIZES = {
    "quick": {"dqn": [8], "a2c": [16], "ppo": [8], "pqn": [8]},
    "full": {"dqn": [1, 8, 32], "a2c": [1, 8, 16, 32, 64], "ppo": [8, 16, 32], "pqn": [8, 16, 32]},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(
    fn: Callable[[], object],
    device: torch.device,
    repeats: int,
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median seconds per call over ``repeats`` calls (after ``warmup``), by ``clock`` (wall-clock;
    ``time.process_time`` for the process's CPU time)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        _sync(device)
        times.append(clock() - t0)
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


def _wn_fused_q(fused: bool, n_actions: int = 4) -> nn.Module:
    net = _nature_q("wn", n_actions)
    for m in net.modules():
        if isinstance(m, (WNConv2d, WNLinear)):
            m.fused = fused
    return net


def bench_layers(device: torch.device, batch: int = 32, repeats: int = 30) -> list[dict]:
    """Forward+backward (and an Adam step) of the Nature Q-network per layer flavour."""
    variants = {
        "plain (nn.Conv2d/Linear)": lambda: _nature_q("none"),
        "wnrl WN": lambda: _nature_q("wn"),
        "wnrl WN, fused op everywhere": lambda: _wn_fused_q(True),
        "wnrl WN, plain ops everywhere": lambda: _wn_fused_q(False),
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
    from wnrl.train import _agent_module

    agent_module, Config = _agent_module(agent)
    train = agent_module.train
    if agent == "dqn":
        fields.update(learning_starts=learning_starts, buffer_size=50_000, log_every=max(400, num_envs * 20))
    else:  # the on-policy agents learn from their first rollout: a log every 10 (A2C) or 1 (PPO, PQN) of them
        learning_starts = 0
        n_steps = overrides.get("n_steps", Config.for_env("Breakout").n_steps)
        fields.update(log_every=num_envs * n_steps * (10 if agent == "a2c" else 1))
    cfg = Config.for_env("Breakout", **{**fields, **overrides})
    try:
        summary = _with_deadline(train, cfg, seconds + startup)
        events = EventAccumulator(str(summary["run_dir"]))
        events.Reload()
        # A run stopped (busy machine, short deadline) before its first log has no SPS at all.
        logged = events.Scalars("charts/SPS") if "charts/SPS" in events.Tags()["scalars"] else []
        sps = [e.value for e in logged if e.step > learning_starts + cfg.log_every]
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


# ------------------------------------------------------------------------------------------ norms
# What each network normalization costs: one update of the agent's own net, and the agent's whole
# run end to end, per variant (--norm, with --wn-project for "wn+project").
NORM_VARIANTS: dict[str, dict] = {
    "none": {"norm": "none"},
    "wn": {"norm": "wn"},
    "wn_mobn": {"norm": "wn_mobn"},
    "wn+project": {"norm": "wn", "wn_project": True},
    "layer": {"norm": "layer"},
    "batch": {"norm": "batch"},
}
NORM_AGENTS = ("dqn", "a2c", "ppo", "pqn")
NORM_ENVS = ("CartPole-v1", "Catch", "Breakout")  # --quick leaves out Breakout
# DQN on Atari learns from step 80,000 with a 1M buffer by default: measured while learning instead.
NORM_DQN_ATARI = {"learning_starts": 500, "buffer_size": 10_000}
# (warm-up, window) per agent and env family: the two runs are T1 = L + warm-up and T2 = T1 + window
# agent steps long, L the step from which every variant learns. Full: 24 minutes' wall-clock in all
# on 2 cores busy with two other runs. One DQN update of the Nature net on 84x84 frames (Catch's as
# Breakout's) takes ~35 ms on one thread: DQN costs ~9 CPU s per 1k steps there; A2C's CartPole
# steps are cheap, ~0.15 s per 1k, so its window is long. Quick (CartPole and Catch, one round):
# under 2 minutes, windows of one to three CPU seconds: a rough look (one run's cost moves by
# ~0.1-0.3 s, more on a busy machine).
NORM_WINDOWS = {
    "full": {
        ("dqn", "classic"): (500, 4_000),
        ("dqn", "catch"): (200, 800),
        ("dqn", "atari"): (200, 600),
        ("a2c", "classic"): (2_000, 40_000),
        ("a2c", "catch"): (800, 3_200),
        ("a2c", "atari"): (400, 2_000),
        # MinAtar (--norm-envs MinAtar/Breakout): one DQN update of its small net ~4-5 ms, A2C ~7k steps/s
        ("dqn", "minatar"): (500, 4_000),
        ("a2c", "minatar"): (2_000, 40_000),
        # PPO: a rollout's 20 (CartPole) or 16 (Catch, Atari) minibatch steps; CartPole ~0.4 CPU s per 1k steps
        ("ppo", "classic"): (2_048, 20_480),
        ("ppo", "catch"): (1_024, 4_096),
        ("ppo", "atari"): (1_024, 3_072),
        ("ppo", "minatar"): (8_192, 32_768),
        # PQN: a rollout's 16 (CartPole, Catch, Atari) or 64 (MinAtar) minibatch steps
        ("pqn", "classic"): (1_024, 10_240),
        ("pqn", "catch"): (1_024, 4_096),
        ("pqn", "atari"): (1_024, 3_072),
        ("pqn", "minatar"): (8_192, 32_768),
    },
    "quick": {
        ("dqn", "classic"): (200, 1_500),
        ("dqn", "catch"): (50, 240),
        ("dqn", "atari"): (50, 240),
        ("a2c", "classic"): (200, 6_000),
        ("a2c", "catch"): (80, 1_600),
        ("a2c", "atari"): (80, 1_600),
        ("dqn", "minatar"): (200, 1_500),
        ("a2c", "minatar"): (400, 8_000),
        ("ppo", "classic"): (256, 5_120),
        ("ppo", "catch"): (512, 2_048),
        ("ppo", "atari"): (1_024, 2_048),
        ("ppo", "minatar"): (8_192, 16_384),
        ("pqn", "classic"): (256, 2_560),
        ("pqn", "catch"): (512, 2_048),
        ("pqn", "atari"): (1_024, 2_048),
        ("pqn", "minatar"): (8_192, 16_384),
    },
}
NORM_GOAL_WN_VS_NONE = 1.10  # wn's end-to-end cost over none's, per agent (issue 24)
NORM_GOAL_MIN_ROUNDS = 3  # fewer rounds of the end-to-end cost give no verdict (one round: no spread to judge)


def norm_clock(device: torch.device) -> tuple[Callable[[], float], str]:
    """The clock the norms section measures with: the process's CPU time on a CPU (all its threads,
    the env's included; what a run sharing the machine with others still measures right), the
    wall-clock on a GPU (whose work is no CPU time of the process)."""
    if device.type == "cuda":
        return time.perf_counter, "wall-clock"
    return time.process_time, "CPU"


def norm_config(agent: str, env: str, variant: str, device: str = "cpu", **fields):
    """``agent``'s config for ``env``: its family defaults, then the variant's norm (and DQN on Atari
    learning early, :data:`NORM_DQN_ATARI`), then ``fields``."""
    from wnrl.config import env_family
    from wnrl.train import AGENTS, _agent_module

    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}")
    Config = _agent_module(agent)[1]
    base = dict(NORM_DQN_ATARI) if agent == "dqn" and env_family(env) == "atari" else {}
    return Config.for_env(env, **{**base, **NORM_VARIANTS[variant], "device": device, "progress": False, **fields})


def _random_obs(space, n: int, device: torch.device) -> torch.Tensor:
    if space.dtype == np.uint8:
        return torch.randint(0, 256, (n, *space.shape), dtype=torch.uint8, device=device)
    return torch.randn(n, *space.shape, device=device)


def norm_update(agent: str, cfg, device: torch.device) -> tuple[Callable[[], None], int, bool]:
    """One gradient update of ``agent``'s own network for ``cfg`` (its env, norm, sizes and optimizer),
    made with the agent's own loss on a fixed random batch as the training loop makes it: DQN's TD loss
    (online forward and backward, target forward), clip, optimizer step, ``--wn-project``'s
    projection; A2C's forward over a rollout of ``n_steps × num_envs`` observations, loss, backward,
    clip, step, projection; PPO's one minibatch step (``n_steps × num_envs / num_minibatches``
    observations: forward, clipped loss, backward, clip, step, projection), of which a rollout makes
    ``update_epochs × num_minibatches``; PQN's one minibatch step likewise (Q(s, a) forward, squared
    error to the λ-returns, backward, clip, step, projection). Returns (the update, its batch, whether
    the net takes a data-dependent init: then it learns only after that init's data)."""
    import copy

    from wnrl import envs
    from wnrl.layers import (
        WNDirections,
        frozen_batch_statistics,
        held_weights,
        init_from_data,
        needs_data_init,
        set_v_init_norm,
    )

    env = envs.make(cfg.env, 1, seed=0)
    space, n_actions = env.single_observation_space, int(env.single_action_space.n)
    env.close()
    if agent in ("dqn", "pqn"):
        from wnrl.agents.dqn import QNetwork, make_dqn_optimizer, td_loss
        from wnrl.agents.replay import ReplayBatch

        dueling = getattr(cfg, "dueling", False)
        net = QNetwork(space.shape, n_actions, cfg.norm, dueling, cfg.hidden_sizes, cfg.wn_head, cfg.activation)
        if agent == "dqn":
            batch = cfg.batch_size
        else:
            batch = cfg.n_steps * cfg.num_envs // cfg.num_minibatches
    else:
        from wnrl.agents.a2c import ActorCritic, learn, rollout_losses

        net = ActorCritic(space.shape, n_actions, cfg.norm, cfg.hidden_sizes, cfg.wn_head, cfg.activation)
        batch = cfg.n_steps * cfg.num_envs // (cfg.num_minibatches if agent == "ppo" else 1)
    set_v_init_norm(net, cfg.wn_init_norm)
    net = net.to(device)
    data_init = needs_data_init(net)
    obs = _random_obs(space, batch, device)
    if data_init:
        init_from_data(net, _random_obs(space, max(batch, 2), device))
    net.train()
    directions = WNDirections(net, project=cfg.wn_project)

    if agent == "dqn":
        target = copy.deepcopy(net)
        held_weights(target).__enter__()  # as in the agent: the target's weights built once per copy
        optimizer = make_dqn_optimizer(cfg, net.parameters())
        freeze = frozen_batch_statistics(net, target)
        replay = ReplayBatch(
            obs,
            torch.randint(0, n_actions, (batch,), device=device),
            torch.randn(batch, device=device),
            torch.full((batch,), cfg.gamma**cfg.n_step, device=device),
            _random_obs(space, batch, device),
        )

        def update() -> None:
            optimizer.zero_grad(set_to_none=True)
            td_loss(net, target, replay, cfg.double_dqn, freeze)[0].backward()
            if cfg.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            optimizer.step()
            directions.after_step()

    elif agent == "pqn":
        from wnrl.agents.pqn import learn as pqn_learn
        from wnrl.agents.pqn import make_pqn_optimizer, minibatch_update

        optimizer = make_pqn_optimizer(cfg, net.parameters())
        step = minibatch_update(net, optimizer)
        data = (
            obs,
            torch.randint(0, n_actions, (batch,), device=device),
            torch.randn(batch, device=device),
            torch.ones(batch, dtype=torch.bool, device=device),
        )
        one_minibatch = [[torch.arange(batch, device=device)]]

        def update() -> None:
            pqn_learn(cfg, net, step, optimizer, data, one_minibatch, lambda t: t, directions.after_step)

    elif agent == "ppo":
        import dataclasses

        from wnrl.agents.ppo import ppo_update
        from wnrl.optim import make_optimizer

        optimizer = make_optimizer(cfg.optimizer, net.parameters(), cfg.learning_rate, cfg.rms_alpha, cfg.rms_eps)
        one_step = dataclasses.replace(cfg, update_epochs=1, num_minibatches=1)
        minibatch = {
            "obs": obs,
            "actions": torch.randint(0, n_actions, (batch,), device=device),
            "logp": -torch.rand(batch, device=device),
            "values": torch.randn(batch, device=device),
            "advantages": torch.randn(batch, device=device),
            "returns": torch.randn(batch, device=device),
            "valid": torch.ones(batch, dtype=torch.bool, device=device),
            "n_steps": batch,
        }
        generator = torch.Generator().manual_seed(0)

        def update() -> None:
            clip = cfg.clip_coef
            ppo_update(one_step, net, net, optimizer, minibatch, clip, generator, after_step=directions.after_step)

    else:
        from wnrl.optim import make_optimizer

        optimizer = make_optimizer(cfg.optimizer, net.parameters(), cfg.learning_rate, cfg.rms_alpha, cfg.rms_eps)
        T, N = cfg.n_steps, cfg.num_envs
        losses = rollout_losses(
            cfg,
            torch.randn(T, N, device=device),
            torch.rand(T, N, device=device) < 0.05,
            torch.ones(T, N, dtype=torch.bool, device=device),
            torch.randint(0, n_actions, (T, N), device=device),
        )
        bootstrap = torch.randn(N, device=device)

        def update() -> None:
            learn(cfg, net, net, optimizer, losses, obs, bootstrap)
            directions.after_step()

    return update, batch, data_init


def learning_from(agent: str, cfg, data_init: bool) -> int:
    """The agent step from which ``cfg``'s run makes gradient updates: DQN's learning_starts; A2C's, PPO's
    and PQN's first rollouts after the ones their data-dependent init uses (none without such an init)."""
    if agent == "dqn":
        return cfg.learning_starts
    return cfg.init_rollouts * cfg.n_steps * cfg.num_envs if data_init else 0


def run_cost(agent: str, cfg, clock: Callable[[], float] = time.process_time) -> tuple[float, int]:
    """(``clock`` seconds, agent steps) of one whole ``train(cfg)``: start-up, the run, its final checkpoint."""
    from wnrl.train import _agent_module

    train = _agent_module(agent)[0].train
    t0 = clock()
    summary = train(cfg)
    cost = clock() - t0
    if summary.get("interrupted"):
        raise KeyboardInterrupt  # a run Ctrl-C stopped early: no figure
    return cost, int(summary["steps"])


def steady_cost(
    agent: str, env: str, variant: str, t1: int, t2: int, device: str = "cpu", clock=time.process_time, **fields
) -> float:
    """``clock`` seconds per 1,000 agent steps of ``agent`` on ``env`` with ``variant``, its family
    defaults otherwise: two runs, ``t1`` and ``t2`` steps long (each a whole ``train(cfg)`` in a temp
    logdir, no checkpoint but the final one), and (cost(t2) − cost(t1)) / (t2 − t1): the start-up
    (imports, envs, nets, the final checkpoint) cancels, and with both lengths past the learning start
    what is left is the agent's cost per step while it learns.

    The two runs are the same run up to ``t1`` (same seeds): DQN's ε schedule, which otherwise scales
    with total_steps (and skips the net's forward while every env explores), is pinned to end by
    ``t1`` (or by the family default's own end, if sooner) in both, so the window is measured at the
    final ε, as most of a run is."""
    (c1, n1), (c2, n2) = (_norm_run(agent, env, variant, total, t1, device, clock, **fields) for total in (t1, t2))
    if n2 <= n1:
        raise ValueError(f"the runs of {t1:,} and {t2:,} steps both ended at step {n1:,}")
    return (c2 - c1) / (n2 - n1) * 1_000


def _norm_run(
    agent: str, env: str, variant: str, total: int, t1: int, device: str, clock, **fields
) -> tuple[float, int]:
    """:func:`run_cost` of one run of ``total`` steps for :func:`steady_cost` (ε pinned to end by ``t1``)."""
    import shutil
    import tempfile

    logdir = tempfile.mkdtemp(prefix="wnrl-bench-norms-")
    try:
        run_fields = dict(fields, total_steps=total, logdir=logdir, checkpoint_every=10**9)
        if agent in ("dqn", "pqn"):  # ε-greedy agents: the same ε up to t1 in both runs
            family = norm_config(agent, env, variant, device, **fields)
            end = min(family.exploration_fraction * family.total_steps, t1)
            run_fields["exploration_fraction"] = end / total
        return run_cost(agent, norm_config(agent, env, variant, device, **run_fields), clock)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def norm_window(agent: str, cfg, learn_from: int, warmup: int, window: int) -> tuple[int, int]:
    """(T1, T2): T1 = ``learn_from`` + ``warmup``, T2 = T1 + ``window``, each rounded up to whole
    vector steps of ``cfg`` (A2C and PPO: whole rollouts), where a run ends."""
    per = cfg.num_envs if agent == "dqn" else cfg.num_envs * cfg.n_steps
    t1 = -(-(learn_from + warmup) // per) * per
    return t1, -(-(t1 + window) // per) * per


def bench_norms(
    agent: str,
    env: str,
    variants: list[str],
    device: torch.device,
    warmup: int,
    window: int,
    repeats: int = 3,
    update_repeats: int = 30,
    dqn_learning_starts: int | None = None,
) -> list[dict]:
    """One row per variant of ``agent`` on ``env``, measured one after the other with one torch thread
    (the caller sets it): the update time (median of ``update_repeats``, the variants interleaved) and
    the end-to-end cost per 1k agent steps (:func:`steady_cost`, median of ``repeats`` rounds, each
    round every variant once, in a seeded random order), each also as a ratio to ``none`` (the first variant
    if ``none`` is not asked). ``vs_none_min``/``_max``: the range of the per-round ratios."""
    clock, _ = norm_clock(device)
    fields = {} if dqn_learning_starts is None or agent != "dqn" else {"learning_starts": dqn_learning_starts}
    cfgs = {v: norm_config(agent, env, v, str(device), **fields) for v in variants}
    updates, batch, starts = {}, 0, []
    for v in variants:
        updates[v], batch, data_init = norm_update(agent, cfgs[v], device)
        starts.append(learning_from(agent, cfgs[v], data_init))
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for v in variants:
        time_fn(updates[v], device, repeats=1, warmup=3, clock=clock)
    for _ in range(update_repeats):
        for v in variants:
            samples[v].append(time_fn(updates[v], device, repeats=1, warmup=0, clock=clock))
    update_s = {v: statistics.median(s) for v, s in samples.items()}

    L = max(starts)  # every variant learns from here on
    t1, t2 = norm_window(agent, cfgs[variants[0]], L, warmup, window)
    # The first run in a process (and on an env) pays one-off costs (imports, first calls) that the
    # difference would take for the agent's: one run of T1 steps, not measured, first.
    _norm_run(agent, env, variants[0], t1, t1, str(device), clock, **fields)
    costs: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(repeats):
        # each round in its own (seeded) order: no variant always runs right after the warm-up run or
        # after the same neighbour (a fixed rotation left the first slot reading high in two tables)
        order = [variants[i] for i in random.Random(r).sample(range(len(variants)), len(variants))]
        for v in order:
            costs[v].append(steady_cost(agent, env, v, t1, t2, str(device), clock, **fields))
    base = "none" if "none" in variants else variants[0]
    base_cost = statistics.median(costs[base])
    rows = []
    for v in variants:
        # A tiny window on a busy machine can measure no cost (≤ 0): no ratio to it then (None), and the
        # table's note says so; a ratio is only taken to a positive cost.
        # Each round's ratio pairs two costs taken minutes apart in one round: the figure is the median
        # of those paired ratios (the ratio of the medians can pair a fast round with a slow one).
        per_round = [c / b for c, b in zip(costs[v], costs[base]) if b > 0]
        cost = statistics.median(costs[v])
        rows.append(
            {
                "agent": agent,
                "env": env,
                "norm": v,
                "update_batch": batch,
                "update_ms": update_s[v] * 1e3,
                "update_vs_none": update_s[v] / update_s[base],
                "s_per_1k_steps": cost,
                "vs_none": statistics.median(per_round) if per_round and base_cost > 0 else None,
                "s_per_1k_min": min(costs[v]),
                "s_per_1k_max": max(costs[v]),
                "vs_none_min": min(per_round, default=None),
                "vs_none_max": max(per_round, default=None),
                "samples_s_per_1k": costs[v],
                "learning_from": L,
                "steps_from": t1,
                "steps_to": t2,
                "repeats": repeats,
                "update_repeats": update_repeats,
                "clock": norm_clock(device)[1],
                "torch_threads": torch.get_num_threads(),
            }
        )
    return rows


def norms_title(rows: list[dict], clock_name: str) -> str:
    """What a norms table measures, exactly (three lines)."""
    r = rows[0]
    return (
        f"{r['agent'].upper()} on {r['env']} (its family defaults), one torch thread, one run at a time; "
        "ratios to none\n"
        f"  s_per_1k_steps: {clock_name} seconds per 1k agent steps over steps {r['steps_from']:,}→{r['steps_to']:,} "
        f"(cost of a {r['steps_to']:,}-step run − cost of a {r['steps_from']:,}-step run), learning from step "
        f"{r['learning_from']:,}, median of {r['repeats']} rounds (its own range in brackets); vs_none: median of "
        "the rounds' paired ratios (vs_none_range: their range)\n"
        f"  update_ms: one gradient update of the agent's net, {clock_name} ms, batch {r['update_batch']}, median of "
        f"{r['update_repeats']}"
    )


def norms_table(rows: list[dict]) -> list[dict]:
    """The printed columns of a norms table; the times to 4 significant digits (11.03, where the
    table's own format would print 11)."""

    def digits(v: float) -> str:
        return f"{v:#.4g}".rstrip(".")

    return [
        {
            "norm": r["norm"],
            "update_ms": digits(r["update_ms"]),
            "update_vs_none": r["update_vs_none"],
            "s_per_1k_steps": digits(r["s_per_1k_steps"])
            + (f" ({digits(r['s_per_1k_min'])}–{digits(r['s_per_1k_max'])})" if "s_per_1k_min" in r else ""),
            "vs_none": r["vs_none"],
            "vs_none_range": None if r["vs_none_min"] is None else f"{r['vs_none_min']:.2f}–{r['vs_none_max']:.2f}",
        }
        for r in rows
    ]


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
    a figure its section did not produce (a run too short, or one that failed) fails its goal. The
    layers' and agents' goals are GPU goals: measured on another ``device_type``, each has ``applies``
    False and ``passed`` None. The norms goal applies on any device (see :func:`_norm_goals`)."""
    out = _goals(result)
    for g in out:
        g["applies"] = g.pop("any_device", False) or device_type == "cuda"
        if not g["applies"]:
            g["passed"] = None
            g["detail"] += f" (GPU goal, not applicable on {device_type.upper()})"
    return out


def goal_line(g: dict) -> str:
    """``PASS ...`` / ``FAIL ...`` for a goal that applies, ``n/a ...`` for one that does not."""
    if not g.get("applies", True):
        mark = "n/a "
    else:
        mark = "PASS" if g["passed"] else "OPEN" if g["passed"] is None else "FAIL"
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
    if "norms" in result:
        out += _norm_goals(result["norms"])
    return out


def _norm_goals(rows: list[dict]) -> list[dict]:
    """Per agent in ``rows``: wn's end-to-end cost per agent step within 10% of none's, on every env
    measured (issue 24). Not a GPU goal: it is a ratio of two figures taken the same way, one after
    the other, in one run on one machine, so it holds or not on whatever device the run was on (a CPU
    user pays a CPU run's ratio); it applies everywhere and shows PASS or FAIL, an informational line
    like the others (no goal changes the bench's exit code). A busy machine blurs it: the per-round
    range in the table says by how much."""
    out = []
    for agent in dict.fromkeys(r["agent"] for r in rows):
        goal = f"{agent.upper()} wn within {NORM_GOAL_WN_VS_NONE - 1:.0%} of none end to end"
        measured = [r for r in rows if r["agent"] == agent and r.get("norm") == "wn"]
        wn = [r for r in measured if r.get("vs_none") is not None]
        failed = [r["env"] for r in rows if r["agent"] == agent and "error" in r]
        if measured and not wn:
            detail, ok = "not measured (none's window measured no cost, within the noise: lengthen --norm-steps)", False
        elif not wn and failed:
            detail, ok = f"not measured (failed on {', '.join(failed)}: see the errors above)", False
        elif not wn:
            detail, ok = "not measured (wn and none must both be among --norm-variants; see the norms tables)", False
        else:
            # A verdict only where the noise cannot turn it: at least NORM_GOAL_MIN_ROUNDS rounds, and every
            # round's ratio on one side of the goal; else undecided (passed None: neither PASS nor FAIL).
            rounds = min(r.get("repeats", 1) for r in wn)
            within = all(r["vs_none_max"] <= NORM_GOAL_WN_VS_NONE for r in wn)
            beyond = any(r["vs_none_min"] > NORM_GOAL_WN_VS_NONE for r in wn)
            ok = None if rounds < NORM_GOAL_MIN_ROUNDS else True if within else False if beyond else None
            figures = ", ".join(
                f"{r['vs_none']:.2f}× none on {r['env']} ({r['vs_none_min']:.2f}–{r['vs_none_max']:.2f})" for r in wn
            )
            clock = wn[0].get("clock", "CPU")
            if ok is None:
                why = f"{rounds} round(s)" if rounds < NORM_GOAL_MIN_ROUNDS else "the rounds fall on both sides"
                verdict = f"undecided ({why}: the noise is as large as the question)"
            else:
                verdict = "within" if ok else "not within"
            detail = f"{clock} s per 1k agent steps, {figures}: {verdict} {NORM_GOAL_WN_VS_NONE - 1:.0%}"
        out.append({"goal": goal, "passed": ok, "detail": detail, "any_device": True})
    return out


def _sizes(text: str) -> list[int]:
    """ "8,16" -> [8, 16]; "none" or "" -> [] (that part is skipped)."""
    if text.strip().lower() == "none":
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 8,16, got {text!r}") from None


SECTIONS = ("layers", "project", "env", "agents", "memory", "norms")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def _names(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    """A type for "a,b": a list of names among ``choices``, in the order given, each once."""

    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad) or '(none given)'}; choose from {','.join(choices)}"
            )
        return names

    return parse


def _envs(text: str) -> list[str]:
    """ "CartPole-v1,Catch": env ids wnrl knows (a CliError's line otherwise)."""
    from wnrl.config import CliError, env_family

    names = list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    if not names:
        raise argparse.ArgumentTypeError("no env given")
    for name in names:
        try:
            env_family(name)
        except CliError as e:
            raise argparse.ArgumentTypeError(str(e).splitlines()[0]) from None
    return names


def _window(text: str) -> tuple[int, int]:
    """ "WARMUP,WINDOW": two integers, WARMUP >= 0 and WINDOW >= 1."""
    try:
        warmup, window = (int(x) for x in text.split(","))
    except ValueError:
        warmup = window = -1
    if warmup < 0 or window < 1:
        raise argparse.ArgumentTypeError(f"expected WARMUP,WINDOW (agent steps, like 1000,4000), got {text!r}")
    return warmup, window


def _norms_section(args, device: torch.device, quick: bool, update_repeats: int, result: dict, save) -> list[str]:
    """The norms tables (one per agent and env), into ``result["norms"]``; returns the failures. Runs
    with one torch thread (torch's setting is put back after), every measurement one at a time."""
    # Both agents imported now: every run of the section uses the code as it was when it started
    # (an agent imported at its first run, minutes later, could meet a half-edited working tree).
    import wnrl.agents.a2c  # noqa: F401
    import wnrl.agents.dqn  # noqa: F401
    from wnrl.config import env_family

    envs = args.norm_envs if args.norm_envs is not None else list(NORM_ENVS[:2] if quick else NORM_ENVS)
    _, clock_name = norm_clock(device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: list[dict] = []
    failures = []
    try:
        for agent in args.norm_agents:
            for env in envs:
                warmup, window = args.norm_steps or NORM_WINDOWS["quick" if quick else "full"][(agent, env_family(env))]
                try:
                    block = bench_norms(
                        agent,
                        env,
                        args.norm_variants,
                        device,
                        warmup,
                        window,
                        repeats=args.norm_repeats or (1 if quick else 3),
                        update_repeats=update_repeats,
                        dqn_learning_starts=args.norm_learning_starts,
                    )
                except Exception as e:  # one broken configuration must not hide the others' figures
                    error = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"
                    block = [{"agent": agent, "env": env, "error": error}]
                    failures.append(f"norms, {agent} on {env}: {error}")
                    print(f"error: norms, {agent} on {env}: {error}", file=sys.stderr)
                else:
                    _print_table(norms_title(block, clock_name), norms_table(block))
                    if any(s <= 0 for r in block for s in r["samples_s_per_1k"]):
                        print(
                            "note: a round measured no cost (≤ 0): its window is within this machine's noise; "
                            "lengthen it (--norm-steps) or add rounds (--norm-repeats)"
                        )
                rows += block
                result["norms"] = rows
                save()
    finally:
        torch.set_num_threads(threads)
    return failures


def main(argv: list[str] | None = None) -> int:
    from wnrl.compiled import COMPILE_MODES

    p = argparse.ArgumentParser(prog="python -m wnrl.bench", description=__doc__.split("\n")[0])
    p.error = lambda message: p.exit(2, f"error: {message} (see {p.prog} --help)\n")  # one line, exit 2
    p.add_argument("--quick", action="store_true", help="fewer repeats and sizes (under a minute)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file (after every section)")
    p.add_argument("--png", default=None, help="also draw steps/s against num_envs (env and agents) to this PNG")
    p.add_argument("--compile", default="off", choices=COMPILE_MODES, help="the agents' --compile")
    p.add_argument(
        "--sections",
        default="layers,project,env,agents,memory",
        help="comma-separated: layers, project, env, agents, memory, norms (norms is not in the default: about "
        "25 minutes on 2 cores, --quick under 2)",
    )
    p.add_argument(
        "--repeats", type=_positive, default=None, help="timed calls per layer variant, DQN update and norm update"
    )
    p.add_argument("--env-sizes", type=_sizes, default=None, help="num_envs for the raw env (e.g. 8,16,32,64)")
    p.add_argument("--env-seconds", type=float, default=None, help="seconds per raw-env size")
    p.add_argument("--dqn-envs", type=_sizes, default=None, help="num_envs for DQN end to end (e.g. 8,32; none)")
    p.add_argument("--a2c-envs", type=_sizes, default=None, help="num_envs for A2C end to end (e.g. 16,64; none)")
    p.add_argument("--ppo-envs", type=_sizes, default=None, help="num_envs for PPO end to end (e.g. 8,32; none)")
    p.add_argument("--pqn-envs", type=_sizes, default=None, help="num_envs for PQN end to end (e.g. 8,32; none)")
    p.add_argument("--agent-seconds", type=float, default=None, help="seconds each agent run is measured")
    p.add_argument("--agent-startup", type=float, default=6.0, help="seconds each agent run gets to start (6)")
    p.add_argument(
        "--agent-steps", type=int, default=None, help="end each agent run after this many steps (else only by time)"
    )
    p.add_argument(
        "--norm-agents", type=_names(NORM_AGENTS), default=list(NORM_AGENTS), help="norms: agents (dqn,a2c,ppo,pqn)"
    )
    p.add_argument(
        "--norm-envs",
        type=_envs,
        default=None,
        help=f"norms: envs (default {','.join(NORM_ENVS)}; --quick: {','.join(NORM_ENVS[:2])}: Breakout left out)",
    )
    p.add_argument(
        "--norm-variants",
        type=_names(tuple(NORM_VARIANTS)),
        default=list(NORM_VARIANTS),
        help=f"norms: variants ({','.join(NORM_VARIANTS)}; wn+project: --norm wn --wn-project)",
    )
    p.add_argument(
        "--norm-repeats", type=_positive, default=None, help="norms: rounds of end-to-end runs (3; --quick: 1)"
    )
    p.add_argument(
        "--norm-steps",
        type=_window,
        default=None,
        metavar="WARMUP,WINDOW",
        help="norms: for every agent and env, runs of L+WARMUP and L+WARMUP+WINDOW agent steps (L: where learning "
        "starts); default per agent and env family",
    )
    p.add_argument(
        "--norm-learning-starts", type=_positive, default=None, help="norms: DQN's learning_starts on every env"
    )
    p.add_argument(
        "--wn-gpu-fused",
        choices=("on", "off"),
        default="on",
        help="on a GPU, WN layers build g*v/|v| with torch's fused op (on, the default) or with plain ops "
        "(off: as before 2026-12-04), to measure the op's gain; no effect on a CPU",
    )
    add_threads_argument(p)  # the sections other than norms (which measures with one thread) use them
    args = p.parse_args(argv)
    set_threads(args.threads)
    wnrl.layers.GPU_FUSED = args.wn_gpu_fused == "on"
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        p.error(f"--sections: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(SECTIONS)}")
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
    for agent in agent_sizes:
        chosen = getattr(args, f"{agent}_envs")
        if chosen is not None:
            agent_sizes[agent] = chosen
    sections = set(sections)
    result: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": device_name(device),
            "torch_threads": torch.get_num_threads(),
            "cpu_cores": os.cpu_count(),
            "wn_gpu_fused": args.wn_gpu_fused,
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
    if "norms" in sections:
        failures += _norms_section(args, device, quick, repeats["update"], result, save)
    result["goals"] = goals(result, device.type)
    if result["goals"]:
        gpu_only = ""
        if not all(g["applies"] for g in result["goals"]):
            gpu_only = f"; GPU goals, not applicable on {device.type.upper()}, are n/a"
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
        print(f"error: {len(failures)} agent run(s) or measurement(s) failed; first: {failures[0]}", file=sys.stderr)
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
