"""DQN (Mnih et al., 2015) with weight-normalized Q-networks, vectorized.

Read top to bottom: the config, the network, the loss, then one explicit training loop.
Options off by default: Double DQN, a dueling head, n-step returns.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from wnrl.agents.learner_inputs import learning_reward, learning_terminal, obs_to_device
from wnrl.agents.replay import BufferTooLarge, ReplayBatch, ReplayBuffer, available_memory, transition_bytes
from wnrl.agents.returns import q_learning_targets

from wnrl import optim
from wnrl.checkpoint import CHECKPOINT_DIR, save_atomic
from wnrl.compiled import Compiled
from wnrl.config import CliError, CommonConfig, doc
from wnrl.layers import (
    WNDirections,
    frozen_batch_statistics,
    held_weights,
    init_from_data,
    needs_data_init,
    set_v_init_norm,
)
from wnrl.nets import DuelingQHead, QHead, last_hidden_size, make_trunk
from wnrl.run import Resume, Run
from wnrl.schedules import LinearSchedule, lr_schedule, set_learning_rate

DQN_OPTIMIZERS = ("adam", "adamax", "rmsprop")


@dataclass
class DQNConfig(CommonConfig):
    """Atari defaults: CleanRL's ``dqn_atari.py`` settings (Adam 1e-4, target copy every 1,000 steps,
    learning from 80k), Nature DQN's replay ratio of one update of 32 per 4 agent steps (README, "Training")."""

    buffer_size: int = doc("replay capacity in transitions (Atari frames: 7 KB each)", 1_000_000)
    learning_starts: int = doc("agent steps of random play before the first update", 80_000)
    batch_size: int = doc("transitions per gradient step", 32)
    optimizer: str = doc(
        "adam | adamax (the weight-norm paper's DQN optimizer, with --adam-beta1 0.5) | rmsprop (torch's, "
        "with --rms-alpha, --rms-eps, --rms-centered: MinAtar's DQN)",
        "adam",
    )
    learning_rate: float = doc("optimizer learning rate", 1e-4)
    lr_decay: bool = doc("decay the learning rate linearly to 0 over total_steps", False)
    adam_eps: float = doc("Adam (or Adamax) epsilon", 1e-8)
    adam_beta1: float = doc("Adam (or Adamax) beta1, the momentum of the gradient's average", 0.9)
    # MinAtar's examples/dqn.py: torch.optim.RMSprop(lr=0.00025, alpha=0.95, centered=True, eps=0.01)
    rms_alpha: float = doc("RMSprop (--optimizer rmsprop): smoothing constant of the squared gradients' average", 0.95)
    rms_eps: float = doc("RMSprop: epsilon added to the root of the average (torch's: outside the root)", 0.01)
    rms_centered: bool = doc("RMSprop: centered (divide by the gradients' estimated standard deviation)", True)
    gamma: float = doc("discount factor", 0.99)
    train_frequency: int = doc("agent steps (summed over envs) per gradient step", 4)
    target_update_frequency: int = doc("agent steps between target-network copies", 1_000)
    exploration_fraction: float = doc("fraction of total_steps over which epsilon decays linearly", 0.1)
    start_epsilon: float = doc("epsilon at the start", 1.0)
    end_epsilon: float = doc("epsilon after the decay", 0.01)
    max_grad_norm: float = doc("gradient-norm clip (0: off)", 10.0)
    double_dqn: bool = doc("Double DQN targets (van Hasselt et al., 2016)", False)
    dueling: bool = doc("dueling head: Q = V + A - mean A (Wang et al., 2016)", False)
    n_step: int = doc("n-step returns", 1)
    init_batch_size: int = doc("replay transitions for weight norm's data-dependent init", 256)
    wn_head: bool = doc("weight-normalize the Q output layer too (with --norm wn)", False)
    save_replay: bool = doc(
        "save the replay buffer with each checkpoint (resume without refilling; Atari: ~7 GB)", False
    )
    refill_steps: int = doc(
        "after a resume without a saved replay: agent steps of play (by the resumed policy and its ε) that "
        "refill the buffer before learning goes on",
        8_000,
    )
    replay_on_device: str = doc(
        "keep the replay buffer in GPU memory: auto (when training on a GPU and it takes at most half the free "
        "GPU memory) | yes | no",
        "auto",
    )
    overlap_env: bool = doc(
        "update the network while the envs step (each update then samples the replay as it was one vector step "
        "earlier)",
        True,
    )

    def validate(self) -> None:
        super().validate()
        self.require_at_least(1, "buffer_size", "batch_size", "train_frequency", "target_update_frequency", "n_step")
        self.require_at_least(0, "learning_starts", "refill_steps")
        if self.batch_size > self.buffer_size:
            raise CliError(f"--batch-size {self.batch_size} exceeds --buffer-size {self.buffer_size}; lower it")
        self.require_in("gamma", 0.0, 1.0, low_open=True)
        self.require_in("learning_rate", 0.0, float("inf"), low_open=True)
        self.require_at_least(0, "max_grad_norm")
        self.require_in("adam_beta1", 0.0, 0.999)
        self.require_in("rms_alpha", 0.0, 0.999)
        self.require_at_least(0, "rms_eps")
        if self.optimizer not in DQN_OPTIMIZERS:
            raise CliError(f"unknown --optimizer {self.optimizer!r}: choose one of {', '.join(DQN_OPTIMIZERS)}")
        for name in ("exploration_fraction", "start_epsilon", "end_epsilon"):
            self.require_in(name, 0.0, 1.0)
        if isinstance(self.replay_on_device, bool):  # configs saved before "auto" existed
            self.replay_on_device = "yes" if self.replay_on_device else "no"
        if self.replay_on_device not in ("auto", "yes", "no"):
            raise CliError(f"--replay-on-device must be auto, yes or no, got {self.replay_on_device!r}")


DQNConfig.FAMILY_DEFAULTS = {
    "atari": {},
    # Tuned on CartPole-v1 with 5 seeds (docs/results.md). What made the difference, measured: Double
    # DQN with 3-step returns (plain 1-step DQN's Q rose past the 100 that γ = 0.99 allows and the
    # return stalled at 60-230; an independent minimal DQN did the same), then the learning rate
    # decayed to 0 (without it the solved policy kept collapsing between 200 and 500).
    "classic": {
        "total_steps": 100_000,
        "num_envs": 4,
        "hidden_sizes": (256, 256),
        "buffer_size": 100_000,
        "learning_starts": 1_000,
        "refill_steps": 500,
        "batch_size": 64,
        "learning_rate": 5e-4,
        "lr_decay": True,
        "train_frequency": 2,
        "target_update_frequency": 256,
        "exploration_fraction": 0.16,
        "end_epsilon": 0.04,
        "double_dqn": True,
        "n_step": 3,
        "life_loss_terminal": False,
    },
    # MinAtar: the DQN of its paper (Young & Tian, 2019, "MinAtar: An Atari-Inspired Testbed for
    # Thorough and Reproducible Reinforcement Learning Experiments", arXiv:1903.03176), as the constants
    # of its examples/dqn.py give it: one env, 5M steps, replay 100k, learning from 5,000, one update of 32 per
    # step, target copied every 1,000 updates, ε 1 → 0.1 over 100k steps (here the first 2% of
    # --total-steps: 100k of 5M; MinAtar starts that decay after its 5,000 random steps), γ 0.99,
    # Huber loss, no gradient clip, RMSprop lr 0.00025 with alpha 0.95, eps 0.01, centered (the
    # DQNConfig rms_* defaults). MinAtar's net: MinAtarConvNet, chosen by the 10×10 observations.
    "minatar": {
        "total_steps": 5_000_000,
        "num_envs": 1,
        "buffer_size": 100_000,
        "learning_starts": 5_000,
        "refill_steps": 5_000,
        "batch_size": 32,
        "optimizer": "rmsprop",
        "learning_rate": 2.5e-4,
        "gamma": 0.99,
        "train_frequency": 1,
        "target_update_frequency": 1_000,
        "exploration_fraction": 0.02,
        "start_epsilon": 1.0,
        "end_epsilon": 0.1,
        "max_grad_norm": 0.0,
    },
    "catch": {
        "total_steps": 40_000,
        "num_envs": 8,
        "buffer_size": 20_000,
        "learning_starts": 1_000,
        "refill_steps": 500,
        "learning_rate": 2.5e-4,
        "target_update_frequency": 1_000,
        "exploration_fraction": 0.25,
        "end_epsilon": 0.05,
        "life_loss_terminal": False,
    },
}


class QNetwork(nn.Module):
    """Trunk (``WNConvNet`` for frames, ``WNMLP`` for vectors) and a Q head, both with ``norm``.
    Dueling: the trunk's last hidden layer becomes two, one per stream (value, advantage)."""

    def __init__(
        self,
        obs_shape,
        n_actions: int,
        norm: str = "wn",
        dueling: bool = False,
        hidden_sizes=(64, 64),
        wn_head=False,
        activation: str = "relu",
    ):
        super().__init__()
        wn_head = wn_head and norm.startswith("wn")
        self.trunk = make_trunk(obs_shape, norm, hidden_sizes, last_layer=not dueling, activation=activation)
        if dueling:
            hidden = last_hidden_size(obs_shape, hidden_sizes)
            stream_act = activation if len(obs_shape) == 1 else "relu"
            self.head = DuelingQHead(self.trunk.features_dim, hidden, n_actions, norm, wn_head, stream_act)
        else:
            self.head = QHead(self.trunk.features_dim, n_actions, wn_head)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(obs))


def epsilon_schedule(cfg: DQNConfig) -> LinearSchedule:
    """ε: start_epsilon → end_epsilon over the first exploration_fraction of total_steps."""
    return LinearSchedule.from_start(cfg.start_epsilon, cfg.end_epsilon, cfg.exploration_fraction * cfg.total_steps)


def td_loss(
    q: nn.Module, target: nn.Module, batch: ReplayBatch, double: bool, freeze=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Huber loss between Q(s, a) and the (n-step, optionally double) Bellman target.

    Both nets run in training mode, so a batch-norm target normalizes ``s'`` as the online net
    normalizes ``s`` (right after a copy, target and online give the same Q on the same batch; an
    eval-mode target would use running statistics instead). ``freeze`` (a
    :class:`~wnrl.layers.frozen_batch_statistics`) keeps the passes over ``s'`` out of the running
    statistics the online net acts with."""
    # held_weights: the pass over s' (double DQN) reuses the weights the pass over s built
    with held_weights(q):
        q_tm1 = q(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        with torch.no_grad(), freeze if freeze is not None else contextlib.nullcontext():
            q_t = target(batch.next_obs)
            q_t_online = q(batch.next_obs) if double else None
            # y = R + γ^m · max_a Q_target(s', a)   (or Q_target(s', argmax_a Q_online(s', a)))
            y = q_learning_targets(batch.returns, batch.discounts, q_t, q_t_online)
    return F.smooth_l1_loss(q_tm1, y), q_tm1.detach()


@torch.no_grad()
def act(
    q: nn.Module, obs: torch.Tensor, epsilon: float, rng: np.random.Generator, n_actions: int, greedy=None
) -> np.ndarray:
    """ε-greedy actions for a batch of observations (the net is skipped while ε = 1). ``greedy``
    (obs -> argmax actions) replaces ``q(obs).argmax(1)``, e.g. a compiled version of it."""
    n = obs.shape[0]
    explore = rng.random(n) < epsilon
    random_actions = rng.integers(0, n_actions, size=n)
    if explore.all():
        return random_actions
    was_training = q.training
    q.eval()  # batch-norm nets act with running statistics
    best = greedy(obs) if greedy is not None else greedy_actions(q, obs)
    q.train(was_training)
    return np.where(explore, random_actions, best.cpu().numpy())


def greedy_actions(q: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    return q(obs).argmax(dim=1)


def replay_storage(cfg: DQNConfig, bytes_needed: int, device: torch.device) -> torch.device:
    """Where the replay lives: on the training GPU when asked, or (auto) when it fits in half its free memory."""
    if device.type != "cuda" or cfg.replay_on_device == "no":
        return torch.device("cpu")
    if cfg.replay_on_device == "yes":
        return device
    free = available_memory(device)
    return device if free is not None and bytes_needed <= free // 2 else torch.device("cpu")


def make_dqn_optimizer(cfg: DQNConfig, params) -> torch.optim.Optimizer:
    """Adam (fused: one kernel for all parameters instead of a Python loop over them) or Adamax, with
    the config's learning rate, β₁ (β₂ 0.999) and ε; or torch's RMSprop with the config's alpha, eps
    and centering."""
    if cfg.optimizer == "rmsprop":
        return optim.RMSprop(
            params, lr=cfg.learning_rate, alpha=cfg.rms_alpha, eps=cfg.rms_eps, centered=cfg.rms_centered
        )
    betas = (cfg.adam_beta1, 0.999)
    if cfg.optimizer == "adamax":
        return optim.Adamax(params, lr=cfg.learning_rate, betas=betas, eps=cfg.adam_eps)
    return optim.Adam(params, lr=cfg.learning_rate, betas=betas, eps=cfg.adam_eps, fused=True)


def build_buffer(cfg: DQNConfig, env, device: torch.device, rank: int = 0, world_size: int = 1) -> ReplayBuffer:
    """The replay of ``env``'s envs. Several ranks: each rank's shard holds ``buffer_size / world
    size`` transitions of its own envs (the whole run keeps ``buffer_size``), sampled with its own seed."""
    obs_space = env.single_observation_space
    dtype = torch.uint8 if obs_space.dtype == np.uint8 else torch.float32
    capacity = max(cfg.buffer_size // world_size, cfg.batch_size)
    # None: the replay's default (an image's first dimension is a stack of frames); MinAtar's env says 1
    frame_stack = getattr(env, "frame_stack", None)
    storage = replay_storage(cfg, transition_bytes(obs_space.shape, dtype, frame_stack) * capacity, device)
    try:
        return ReplayBuffer(
            capacity,
            env.num_envs,
            obs_space.shape,
            dtype,
            gamma=cfg.gamma,
            n_step=cfg.n_step,
            frame_stack=frame_stack,
            device=device,
            storage_device=storage,
            seed=cfg.seed + rank,
        )
    except (BufferTooLarge, ValueError) as e:
        raise CliError(str(e)) from None


def train(cfg: DQNConfig, resume: Resume | None = None) -> dict[str, Any]:
    """Trains DQN as ``cfg`` says (continuing ``resume`` if given); returns a summary (run_dir,
    steps, updates, episodes, recent returns, whether a signal interrupted it)."""
    with Run.open(cfg, "dqn", resume) as run:
        n_actions = int(run.env.single_action_space.n)
        q = QNetwork(
            run.env.single_observation_space.shape,
            n_actions,
            cfg.norm,
            cfg.dueling,
            cfg.hidden_sizes,
            cfg.wn_head,
            cfg.activation,
        )
        set_v_init_norm(q, cfg.wn_init_norm)
        q = run.sync_batch_norm(q).to(run.device)  # --norm batch on several GPUs: statistics over all ranks
        target = copy.deepcopy(q)  # stays in training mode: see td_loss
        optimizer = make_dqn_optimizer(cfg, q.parameters())
        run.restore(model=q, target=target, optimizer=optimizer)
        learner = run.wrap(q)  # several ranks: DDP (rank 0's weights now, gradients averaged)
        run.world.broadcast_module(target)
        # checks free memory before the run directory exists
        rb = build_buffer(cfg, run.env, run.device, run.rank, run.world.size)
        replay_restored = restore_replay(cfg, run, rb)
        run.start()
        if cfg.learning_starts >= cfg.total_steps and run.is_writer:
            print(
                f"warning: --learning-starts {cfg.learning_starts:,} is not below --total-steps {cfg.total_steps:,}: "
                "this run only plays (random actions) and makes no update",
                file=sys.stderr,
            )
        return _loop(cfg, run, q, learner, target, optimizer, rb, n_actions, replay_restored)


def _loop(cfg: DQNConfig, run: Run, q, learner, target, optimizer, rb, n_actions, replay_restored) -> dict[str, Any]:
    """``learner``: ``q`` itself, or ``q`` under DDP (several ranks): the gradient's forward goes through it.

    Several ranks: each steps ``num_envs / world size`` envs into its own replay shard; the step
    counter, learning_starts, the replay ratio (one update per ``train_frequency`` agent steps of
    all ranks) and the target copies are the whole run's, so every rank makes the same updates,
    each on ``batch_size`` transitions of its shard; DDP averages the gradients (an effective batch
    of world size × batch_size)."""
    env, device, logger, rng, world = run.env, run.device, run.logger, run.rng, run.world
    saved = run.restored("counters", {})
    counters = {"updates": 0, "target_syncs": 0, "last_sync": -1, "pending": 0, "learning": False, **saved}
    step = run.start_step
    # When learning starts: at learning_starts, as in a run never interrupted (also for a run resumed with
    # its saved replay before it got there: the data-dependent init and the first target copy come then).
    # A resumed run without its replay first refills the buffer with refill_steps of its own play; a full
    # learning_starts of refill at every resume (80k on Atari) let a run preempted every few minutes
    # reach 200k steps without one update while ε kept falling.
    learning = replay_restored and bool(saved.get("learning", step >= cfg.learning_starts))
    learn_from = cfg.learning_starts
    if run.resume is not None and not replay_restored:
        learn_from = max(learn_from, step + cfg.refill_steps)
        logger.wait_for(learn_from, "after the replay refills")
    elif not learning and int(saved.get("learn_from", 0)) > learn_from:
        # Stopped during a refill with its replay saved (--save-replay): the refill goes on to its end,
        # instead of learning at once from the few transitions it had gathered.
        learn_from = int(saved["learn_from"])
        logger.wait_for(learn_from, "after the replay refills")
    else:
        logger.wait_for(learn_from, "after learning starts")
    # What the checkpoints say: a refill in progress is not learning (a resume before its end goes on refilling).
    counters["learning"], counters["learn_from"] = learning, learn_from
    # Envs restart on resume (their state is not saved); a different seed gives new episodes.
    obs, _ = env.reset(seed=cfg.seed + step + world.rank * env.num_envs)
    first = np.ones(env.num_envs, dtype=bool)
    loss_sum = torch.zeros((), device=device)
    q_sum = torch.zeros((), device=device)
    n_loss = 0
    last_obs: list[torch.Tensor] = []  # the last update's batch of observations: dormant/ is measured on it
    epsilon_at = run.schedule("epsilon", epsilon_schedule)
    lr_factor = run.schedule("lr", lr_schedule)
    freeze = frozen_batch_statistics(q, target)
    # The target changes only when copied: its WN layers build their weights once per copy
    hold_target = held_weights(target)
    hold_target.__enter__()

    def sync_target() -> None:
        target.load_state_dict(q.state_dict())
        hold_target.__enter__()  # drops the weights held from the previous copy
        counters["last_sync"], counters["target_syncs"] = step, counters["target_syncs"] + 1

    # --wn-project after every optimizer step; the directions' turn per update, logged under wn/
    directions = WNDirections(q, project=cfg.wn_project)

    def save() -> None:
        run.check_finite(step, q, loss_sum)  # never save a diverged network
        run.save_checkpoint(
            step,
            counters=dict(counters),
            model=q.state_dict(),
            target=target.state_dict(),
            optimizer=optimizer.state_dict(),
        )
        if cfg.save_replay and not run.distributed:
            try:
                save_atomic(replay_path(run.run_dir), {"step": step, **rb.state_dict()})
            except OSError as e:  # the checkpoint itself is written: the run goes on, a resume refills
                replay_path(run.run_dir).unlink(missing_ok=True)  # an older step's replay: never used again
                print(
                    f"warning: replay buffer not written ({e.strerror}); the step-{step:,} checkpoint was: a resume "
                    "from it refills --refill-steps before learning",
                    file=sys.stderr,
                )

    def update(batch: ReplayBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of one TD loss; no host sync (losses stay on the device until logged)."""
        optimizer.zero_grad(set_to_none=True)
        loss, q_taken = td_loss(learner, target, batch, cfg.double_dqn, freeze)
        loss.backward()
        return loss.detach(), q_taken.mean()

    compiled_update = Compiled(update, cfg.compile, "the DQN update")
    greedy = Compiled(lambda o: greedy_actions(q, o), cfg.compile, "action selection")

    def learn() -> None:
        """The updates due (fixed replay ratio: one per train_frequency agent steps, whatever
        num_envs is), then the target copy if one is due."""
        nonlocal n_loss
        while counters["pending"] >= cfg.train_frequency:
            counters["pending"] -= cfg.train_frequency
            batch = rb.sample(cfg.batch_size)
            loss, q_mean = compiled_update(batch)
            last_obs[:] = [batch.obs]
            if cfg.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(q.parameters(), cfg.max_grad_norm)
            optimizer.step()
            directions.after_step()
            counters["updates"] += 1
            loss_sum.add_(loss)
            q_sum.add_(q_mean)
            n_loss += 1
        if step - counters["last_sync"] >= cfg.target_update_frequency:
            sync_target()

    while step < cfg.total_steps and not run.stop_requested:
        epsilon = epsilon_at(step)
        lr = cfg.learning_rate * lr_factor(step)
        if lr != optimizer.param_groups[0]["lr"]:
            set_learning_rate(optimizer, lr)
        actions = act(q, obs_to_device(obs, device), epsilon, rng, n_actions, greedy)
        env.step_async(actions)
        if learning and cfg.overlap_env:
            learn()  # while the envs step: from the replay as it was before this step
        next_obs, reward, terminated, truncated, info = env.step_wait()
        step += cfg.num_envs
        # The transition from obs is real unless this step only reset the env (NextStep autoreset).
        rb.add(
            obs,
            actions,
            learning_reward(cfg, reward),
            learning_terminal(cfg, terminated, info),
            ~info["autoreset"],
            first,
        )
        first = info["autoreset"]
        obs = next_obs
        logger.episodes_from(info, step)

        if not learning and step >= learn_from and _all_ranks(world, rb.num_sampleable() > 0, device):
            learning = counters["learning"] = True
            counters["pending"] = cfg.train_frequency  # the first update comes at once
            if needs_data_init(q):
                # Weight norm's data-dependent init and batch norm's running statistics, on
                # random-play frames from the buffer (not reset frames), before the first
                # update; the target starts as a copy.
                # Several ranks: on all ranks' samples; rank 0's result is what every rank keeps.
                init_from_data(q, world.all_gather_cat(rb.sample(max(cfg.init_batch_size, 2)).obs))
                world.broadcast_module(q)
            if counters["last_sync"] < 0:
                sync_target()
        elif learning:
            counters["pending"] += cfg.num_envs
        if learning and (not cfg.overlap_env or step >= cfg.total_steps):
            learn()

        if run.log_due(step):
            sps = run.sps(step)
            logger.scalars({"charts/SPS": sps, "charts/epsilon": epsilon, "charts/learning_rate": lr}, step)
            if n_loss:  # one host sync per log, not per update
                run.check_finite(step, q, loss_sum)
                n_all = n_loss * world.size  # the mean over all ranks' batches
                logger.scalars(
                    {
                        "losses/td_loss": (world.all_sum(loss_sum) / n_all).item(),
                        "losses/q_values": (world.all_sum(q_sum) / n_all).item(),
                    },
                    step,
                )
                loss_sum.zero_(), q_sum.zero_()
                n_loss = 0
                logger.wn_diagnostics(directions, step)
                # one extra forward (no gradients, eval mode as when acting) on the last replay batch
                logger.dormant(q, last_obs[0], step)
            logger.progress(step, sps)
        if run.evaluate_due(step):  # --eval-every: games on envs of its own; nothing here changes
            run.evaluate(step, q)
        if run.checkpoint_due(step):
            run.checkpoint(save)
    run.checkpoint(save, final=True)
    hold_target.__exit__()
    return run.summary(step, updates=counters["updates"], target_syncs=counters["target_syncs"])


def _all_ranks(world, flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every rank (itself in a single process)."""
    if not world.distributed:
        return flag
    return bool(world.all_sum(torch.tensor(int(flag), device=device)).item() == world.size)


def restore_replay(cfg: DQNConfig, run: Run, rb: ReplayBuffer) -> bool:
    """Whether a resumed run's buffer came back from the replay saved with its checkpoint
    (``save_replay``): then learning goes on where it stopped, else the buffer refills first.
    A run of several ranks saves no replay (only rank 0 writes): its shards refill after a resume."""
    if run.distributed:
        return False
    path = replay_path(run.run_dir) if run.resume is not None else None
    if path is None or not cfg.save_replay or not path.is_file() or _replay_step(path) != run.start_step:
        return False
    try:
        rb.load_state_dict(torch.load(path, weights_only=True))
        rb.mark_stream_break()
        return True
    except (ValueError, RuntimeError) as e:
        print(f"warning: {path} not used ({e}); refilling the buffer", file=sys.stderr)
        return False


def replay_path(run_dir) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / "replay.pt"


def _replay_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, weights_only=True, mmap=True)["step"])
    except Exception:  # an unreadable replay file is simply not used: the buffer refills
        return None
