"""Several processes on torch.distributed (gloo, CPU): the A2C, PPO and DQN updates of 2 ranks equal one process's
over the same data, ranks stay equal, and ``torchrun --standalone --nproc-per-node 2`` runs, stops
and resumes as one run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from wnrl.agents.a2c import A2CConfig, ActorCritic, learn, rollout_losses
from wnrl.agents.dqn import QNetwork, td_loss
from wnrl.agents.ppo import PPOConfig, ppo_update
from wnrl.agents.replay import ReplayBatch
from wnrl.agents.returns import gae_advantages

from tests.helpers import ROOT, scalars, train_in_process
from tests.test_pqn import _pqn_updates
from wnrl.checkpoint import list_checkpoints, load_checkpoint
from wnrl.config import CliError
from wnrl.distributed import World, world_from_env
from wnrl.layers import WNDirections, init_from_data, set_v_init_norm, wn_layers
from wnrl.logger import Logger
from wnrl.optim import make_optimizer
from wnrl.run import local_num_envs

T, N, UPDATES = 5, 4, 3  # N: the whole run's envs


def test_without_torchrun_a_world_of_one(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert world_from_env() == (0, 1, 0)
    world = World()
    t = torch.ones(3)
    assert world.all_sum(t) is t and world.all_gather_cat(t) is t and world.gather_objects(5) == [5]
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world_from_env() == (3, 4, 1)


def test_num_envs_split_over_ranks():
    assert local_num_envs(16, 1) == 16 and local_num_envs(16, 8) == 2
    with pytest.raises(CliError, match="--num-envs 6 .* multiple of 4"):
        local_num_envs(6, 4)


def test_logger_collects_episodes_for_rank_0(tmp_path):
    """A non-writing rank's logger keeps its finished episodes for rank 0; rank 0's logs them."""
    info = {
        "episode_end": torch.tensor([True, False, True]).numpy(),
        "episode_return": torch.tensor([1.0, 0.0, 3.0]).numpy(),
        "episode_length": torch.tensor([10, 0, 30]).numpy(),
    }
    other = Logger(None, {}, 100, progress=False, write=False, collect=True)
    other.episodes_from(info, 40)
    pending = other.take_pending()
    assert pending == [(1.0, 10, 40), (3.0, 30, 40)] and other.take_pending() == []
    rank0 = Logger(tmp_path, {}, 100, progress=False)
    for ret, length, step in pending:
        rank0.episode(ret, length, step)
    rank0.close()
    assert rank0.episodes == 2
    assert scalars(tmp_path)["charts/episodic_length"] == [(40, 10.0), (40, 30.0)]


def _data(updates: int):
    """Rollouts of ``N`` envs with some autoreset (masked) steps and terminals, the same in every process."""
    g = torch.Generator().manual_seed(7)
    out = []
    for _ in range(updates + 1):  # the first one sets weight norm's init
        out.append(
            {
                "obs": torch.randn(T, N, 4, generator=g),
                "actions": torch.randint(0, 2, (T, N), generator=g),
                "rewards": torch.rand(T, N, generator=g),
                "terminals": torch.rand(T, N, generator=g) < 0.2,
                "valid": torch.rand(T, N, generator=g) > 0.15,
                "bootstrap": torch.randn(N, generator=g),
            }
        )
    return out


def _actor_critic_on_ranks(world: World, seed: int, updates: int):
    """A2C's and PPO's setup on each rank: a WN ActorCritic (rank-dependent weights: rank 0's must win),
    weight norm's init on all ranks' first observations, rank 0's net broadcast, DDP around it; and this
    rank's env columns of :func:`_data`. Returns (net, learner, columns, data)."""
    torch.manual_seed(seed + world.rank)
    net = ActorCritic((4,), 2, "wn", (16, 16), activation="tanh")
    set_v_init_norm(net, 0.577)
    n = N // world.size
    cols = slice(world.rank * n, (world.rank + 1) * n)
    data = _data(updates)
    init_from_data(net, world.all_gather_cat(data[0]["obs"][:, cols].flatten(0, 1).contiguous()))
    world.broadcast_module(net)
    return net, world.wrap(net, torch.device("cpu")), cols, data


def _updates(world: World, optimizer: str, updates: int = UPDATES) -> dict[str, torch.Tensor]:
    """What the A2C loop does with the data: WN's init on all ranks' observations (rank 0's result
    kept), then ``updates`` gradient steps, each rank on its slice of the envs, with --wn-project.
    ``optimizer`` "sgd": plain SGD without clipping, whose step shows the gradient's scale (RMSprop
    and clipping would hide a gradient off by a factor)."""
    clip = 0.0 if optimizer == "sgd" else 0.5
    cfg = A2CConfig(norm="wn", wn_project=True, normalize_advantage=True, optimizer=optimizer, max_grad_norm=clip)
    net, learner, cols, data = _actor_critic_on_ranks(world, 100, updates)
    if optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
    else:
        opt = make_optimizer(cfg.optimizer, net.parameters(), 1e-2, cfg.rms_alpha, cfg.rms_eps)
    directions = WNDirections(net, project=cfg.wn_project)
    all_sum = world.all_sum if world.distributed else None
    for d in data[1:]:
        losses = rollout_losses(
            cfg, d["rewards"][:, cols], d["terminals"][:, cols], d["valid"][:, cols], d["actions"][:, cols], all_sum,
            world.size,
        )  # fmt: skip
        learn(cfg, net, learner, opt, losses, d["obs"][:, cols].flatten(0, 1), d["bootstrap"][cols])
        directions.after_step()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _dqn_updates(world: World, optimizer: str, updates: int = UPDATES, batch: int = 8) -> dict[str, torch.Tensor]:
    """DQN's update: each rank's TD loss on its ``batch`` transitions (its replay shard's sample),
    gradients averaged by DDP; one process on all ranks' transitions (ranks × batch) does the same."""
    torch.manual_seed(200 + world.rank)
    q = QNetwork((4,), 2, "wn", dueling=True, hidden_sizes=(16, 16), activation="tanh")
    target = QNetwork((4,), 2, "wn", dueling=True, hidden_sizes=(16, 16), activation="tanh")
    g = torch.Generator().manual_seed(11)
    n = 2 * batch // world.size
    rows = slice(world.rank * n, (world.rank + 1) * n)
    init = torch.randn(64, 4, generator=g)
    init_from_data(q, world.all_gather_cat(init[world.rank * 64 // world.size : (world.rank + 1) * 64 // world.size]))
    world.broadcast_module(q)
    target.load_state_dict(q.state_dict())
    learner = world.wrap(q, torch.device("cpu"))
    if optimizer == "sgd":
        opt = torch.optim.SGD(q.parameters(), lr=0.1)
    else:
        opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    for _ in range(updates):
        full = ReplayBatch(
            torch.randn(2 * batch, 4, generator=g),
            torch.randint(0, 2, (2 * batch,), generator=g),
            torch.randn(2 * batch, generator=g),
            torch.full((2 * batch,), 0.99),
            torch.randn(2 * batch, 4, generator=g),
        )
        mine = ReplayBatch(*(t[rows] for t in full))
        opt.zero_grad(set_to_none=True)
        loss, _ = td_loss(learner, target, mine, double=True)
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in q.state_dict().items()}


def _ppo_updates(world: World, optimizer: str, updates: int = UPDATES) -> dict[str, torch.Tensor]:
    """PPO's update: per rollout, 2 epochs of 3 minibatches drawn on the whole run's steps (each rank
    its share, of a size that varies), advantages normalized per minibatch over all ranks, clipped
    value loss, masked steps, --wn-project after every step; one process over all envs does the same."""
    cfg = PPOConfig(
        norm="wn", wn_project=True, update_epochs=2, num_minibatches=3, optimizer="adam",
        max_grad_norm=0.0 if optimizer == "sgd" else 0.5, clip_coef=0.2,
    )  # fmt: skip
    net, learner, cols, data = _actor_critic_on_ranks(world, 300, updates)
    opt = torch.optim.SGD(net.parameters(), lr=0.1) if optimizer == "sgd" else torch.optim.Adam(net.parameters(), 1e-2)
    directions = WNDirections(net, project=True)
    all_sum = world.all_sum if world.distributed else None
    g = torch.Generator().manual_seed(5)
    for i, d in enumerate(data[1:]):
        values = torch.randn(T + 1, N, generator=g)  # the acting policy's values and log-probabilities
        logp = -torch.rand(T, N, generator=g)
        advantages, returns = gae_advantages(
            d["rewards"][:, cols], values[:, cols], d["terminals"][:, cols], d["valid"][:, cols], 0.99, 0.95
        )
        rollout = {
            "obs": d["obs"][:, cols].flatten(0, 1), "actions": d["actions"][:, cols].flatten(),
            "logp": logp[:, cols].flatten(), "values": values[:T, cols].flatten(),
            "advantages": advantages.flatten(), "returns": returns.flatten(), "valid": d["valid"][:, cols].flatten(),
            "n_steps": T,
        }  # fmt: skip
        ppo_update(
            cfg, net, learner, opt, rollout, 0.2, torch.Generator().manual_seed(i), all_sum, world.size, world.rank,
            N, directions.after_step,
        )  # fmt: skip
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


AGENT_UPDATES = {"a2c": _updates, "dqn": _dqn_updates, "ppo": _ppo_updates, "pqn": _pqn_updates}


def _worker(rank: int, world_size: int, init_file: str, out_dir: str, jobs: tuple[tuple[str, str], ...]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    world, clean = World(rank, world_size), False
    try:
        for agent, optimizer in jobs:  # one launch (two processes importing torch) for every check
            out = AGENT_UPDATES[agent](world, optimizer)
            torch.save(out, os.path.join(out_dir, f"rank{rank}_{agent}_{optimizer}.pt"))
        clean = True
    finally:
        world.close(clean)  # a clean close collects DDP's cycles first (without it: SIGABRT at exit, 1 in 6)


def _two_ranks_and_single(tmp_path, jobs: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], dict]:
    """Each (agent, optimizer)'s parameters after the updates, two ranks against one process; the
    ranks' are checked equal to each other and close to the single process's."""
    args = (2, str(tmp_path / "init"), str(tmp_path), jobs)
    mp.start_processes(_worker, args=args, nprocs=2, start_method="spawn")
    singles = {}
    for agent, optimizer in jobs:
        ranks = [torch.load(tmp_path / f"rank{r}_{agent}_{optimizer}.pt") for r in range(2)]
        torch.manual_seed(0)
        single = AGENT_UPDATES[agent](World(), optimizer)
        assert ranks[0].keys() == single.keys()
        for k in single:
            assert torch.equal(ranks[0][k], ranks[1][k]), f"{agent} {optimizer}: ranks differ in {k}"
            torch.testing.assert_close(
                ranks[0][k].float(), single[k].float(), rtol=1e-4, atol=1e-5, msg=f"{agent} {optimizer} {k}"
            )
        singles[agent, optimizer] = single
    return singles


def test_two_rank_updates_equal_single_process_for_every_agent(tmp_path):
    """2 ranks × 2 envs (or shards), DDP: the same parameters as 1 process on all the data, and both
    ranks exactly the same parameters, for every agent's update, in one launch of two processes:

    * A2C: the init and 3 updates (advantages normalized over all ranks, masked steps, gradient
      clipping, --wn-project), with SGD (whose step shows the gradient's scale) and with RMSprop;
    * PPO (:func:`_ppo_updates`): 2 epochs of 3 minibatches per rollout, each rank its share of each,
      with SGD and with Adam and clipping;
    * DQN: batch 8 from each rank's shard = 1 process × batch 16 (double DQN, dueling WN net), SGD and Adam;
    * PQN (tests/test_pqn.py's ``_pqn_updates``): its learning phases, masked steps, with SGD and RAdam."""
    jobs = (
        ("a2c", "sgd"), ("a2c", "rmsprop"), ("ppo", "sgd"), ("ppo", "adam"),
        ("dqn", "sgd"), ("dqn", "adam"), ("pqn", "sgd"), ("pqn", "radam"),
    )  # fmt: skip
    for (agent, optimizer), single in _two_ranks_and_single(tmp_path, jobs).items():
        if agent in ("a2c", "ppo"):  # --wn-project held ‖v‖ at its initial norm
            net = ActorCritic((4,), 2, "wn", (16, 16), activation="tanh")
            net.load_state_dict(single)
            for _, layer in wn_layers(net):
                norms = layer.v.pow(2).sum(1).sqrt()
                torch.testing.assert_close(norms, torch.full_like(norms, 0.577), msg=f"{agent} {optimizer}")
        if agent == "pqn":  # the learning phases moved the directions
            start = _pqn_updates(World(), optimizer, rollouts=0)
            assert any(not torch.allclose(single[k].float(), start[k].float()) for k in single if k.endswith(".v"))


# The CLI under torchrun: 2 CPU processes, tiny budgets.


def _cmd(*args: str) -> list[str]:
    """``torchrun --standalone --nproc-per-node 2 -m wnrl.train ARGS`` (torchrun as this Python's module)."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    return [*launch, "-m", "wnrl.train", *args]


def _env() -> dict[str, str]:
    # faulthandler: a rank that aborts prints its Python stack
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WNRL_DIST_TIMEOUT": "30", "PYTHONFAULTHANDLER": "1"}
    return {**os.environ, **env}


def _why(stderr: str) -> str:
    """What a failed launch's ranks said: their own lines (errors, aborts, Python stacks) before
    torchrun's summary, which alone would fill a short message."""
    keep = ("error", "Error", "terminate", "what()", "Fatal", "File ", "Abort", "Signal", "rank")
    lines = [ln for ln in stderr.splitlines() if any(k in ln for k in keep) and "torch/distributed" not in ln]
    return "\n".join(lines[:40]) + "\n...\n" + stderr[-800:]


def _run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(*args), capture_output=True, text=True, env=_env(), timeout=timeout)


def _a2c(logdir) -> list[str]:
    return ["a2c", "--env", "CartPole-v1", "--init-rollouts", "1", "--progress", "false", "--logdir", str(logdir)]


TINY = {
    "a2c": ["--init-rollouts", "1"],
    # a 64-64 MLP (the default 256-256 costs ~4× the compute): these runs are about the run's life
    "dqn": ["--learning-starts", "500", "--buffer-size", "2000", "--num-envs", "8", "--hidden-sizes", "64,64"],
}


@pytest.mark.parametrize("agent", ["a2c", "dqn"])
def test_torchrun_one_run_checkpoint_resume(tmp_path, agent):
    """One run directory, one event file, rank 1's episodes in rank 0's curves, a checkpoint; a resume
    under torchrun continues the curve; a resume with another world size is one clear error."""
    logdir = tmp_path / "runs"
    base = [agent, "--env", "CartPole-v1", *TINY[agent], "--progress", "false", "--logdir", str(logdir)]
    base += ["--run-name", "r", "--checkpoint-every", "1000", "--eval-every", "1000", "--eval-episodes", "2"]
    p = _run(*base, "--total-steps", "2000")
    assert p.returncode == 0, _why(p.stderr)
    assert [d.name for d in logdir.iterdir()] == ["r"]  # rank 1 made no directory of its own
    run_dir = logdir / "r"
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert p.stdout.count("done:") == 1  # only rank 0 reports
    assert json.loads((run_dir / "config.json").read_text())["num_envs"] == 8  # the whole run's
    ckpts = list_checkpoints(run_dir)
    assert [c.name for c in ckpts] == ["step_000000001000.pt", "step_000000002000.pt"]
    state = load_checkpoint(ckpts[-1])
    assert state["world_size"] == 2 and state["step"] == 2000
    curves = scalars(run_dir)
    lengths = [v for _, v in curves["charts/episodic_length"]]
    assert len(lengths) == state["episodes"]
    # 2000 env steps over 8 envs: the finished games of rank 0's 4 envs alone cover at most 1000 steps
    assert sum(lengths) > 1000
    assert max(s for s, _ in curves["charts/SPS"]) == 2000
    # rank 0 evaluated (the other waited): once per evaluation, two games each, in the checkpoint and the summary
    assert [s for s, _ in curves["eval/episodic_return_per_game"]] == [1000, 1000, 2000, 2000]
    assert state["eval"]["evaluations"] == 2 and p.stdout.count("evaluations: 2, best mean return") == 1

    # A single process cannot continue a 2-process run: one line, exit 2, nothing written.
    single = train_in_process(agent, "--resume", str(run_dir), "--total-steps", "3000")
    assert single.returncode == 2
    assert "written by 2 process(es), this run has 1" in single.stderr
    assert len(single.stderr.strip().splitlines()) == 1

    p = _run(agent, "--resume", str(run_dir), "--total-steps", "3000")
    assert p.returncode == 0, _why(p.stderr)
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2  # one writer per launch
    curves = scalars(run_dir)
    sps_steps = [s for s, _ in curves["charts/SPS"]]
    assert max(sps_steps) == 3000 and len(sps_steps) == len(set(sps_steps))  # continued, no repeated step
    assert load_checkpoint(list_checkpoints(run_dir)[-1])["step"] == 3000
    assert [s for s, _ in curves["eval/episodic_return"]] == [1000, 2000, 3000]
    assert load_checkpoint(list_checkpoints(run_dir)[-1])["eval"]["evaluations"] == 3


def _rank_pids(parent: int) -> dict[int, int]:
    """rank -> pid of torchrun's workers (children of ``parent`` whose environment names a RANK)."""
    pids = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            env = dict(
                kv.split("=", 1)
                for kv in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in kv
            )
        except (OSError, ValueError, IndexError):
            continue
        if "RANK" in env:
            pids[int(env["RANK"])] = int(proc.name)
    return pids


def _start_long_run(logdir: Path, *extra: str) -> tuple[subprocess.Popen, dict[int, int]]:
    proc = subprocess.Popen(
        _cmd(*_a2c(logdir), "--run-name", "r", "--total-steps", "100000000", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (logdir / "r" / "config.json").exists():
        time.sleep(0.2)
    time.sleep(2.0)  # past the init rollout: the loop listens for signals
    pids = _rank_pids(proc.pid)
    assert set(pids) == {0, 1}, pids
    return proc, pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_the_ranks_die_with_a_killed_torchrun(tmp_path):
    """torchrun killed outright (SIGKILL: no chance to stop its ranks, as when a grid's Ray worker or node
    dies) takes its ranks with it: nothing goes on writing the run beside whatever resumes it."""
    proc, pids = _start_long_run(tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    alive = set(pids.values())
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)}
        time.sleep(0.2)
    assert not alive, f"ranks still running after their torchrun was killed: {alive}"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_torchrun_signal_to_one_rank_stops_all_with_one_checkpoint(tmp_path):
    """SIGINT to rank 1 alone: both ranks stop after the same update, rank 0 writes one checkpoint
    (with --norm batch: torch's batch norm under DDP on CPU)."""
    logdir = tmp_path / "runs"
    proc, pids = _start_long_run(logdir, "--norm", "batch")
    try:
        os.kill(pids[1], signal.SIGINT)  # to rank 1 only
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, _why(err)
    assert "interrupted at step" in out and "torchrun --nproc-per-node 2" in out
    ckpts = list_checkpoints(logdir / "r")
    assert len(ckpts) == 1 and load_checkpoint(ckpts[0])["world_size"] == 2


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_torchrun_dead_rank_ends_the_run_with_an_error(tmp_path):
    logdir = tmp_path / "runs"
    proc, pids = _start_long_run(logdir)
    try:
        os.kill(pids[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)  # no hang
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "error: another rank died or stopped answering" in err  # rank 0's one line
    assert list_checkpoints(logdir / "r") == []  # the survivor wrote no checkpoint of a broken run
