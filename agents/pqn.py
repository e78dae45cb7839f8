"""PQN (Gallici et al., ICLR 2025, "Simplifying Deep Temporal Difference Learning"): Q-learning from
parallel envs, with neither a replay buffer nor a target network.

Read top to bottom: the config, the Q(λ) returns, the loss, then one explicit training loop. N envs
play T steps ε-greedily with the current Q-network (the rollout lives on the training device, as
A2C's does); Q(λ) returns are computed backwards over the rollout from the same network's max Q;
then several epochs of shuffled minibatches regress Q(s, a) onto those fixed returns. What keeps
bootstrapping from its own moving estimate stable is the normalized network: the paper's LayerNorm
(``--norm layer``, the default on Atari, where it was measured best) or any other ``--norm`` (weight norm,
wnrl's default, on the other env families: on CartPole and Catch the norms measured alike; MinAtar is not
measured).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from wnrl.agents.dqn import QNetwork, epsilon_schedule
from wnrl.agents.learner_inputs import obs_to_device
from wnrl.agents.returns import minibatches, q_lambda_returns
from wnrl.agents.rollout import Rollout

from wnrl import optim
from wnrl.compiled import Compiled
from wnrl.config import CliError, CommonConfig, doc
from wnrl.layers import InitFromRollouts, WNDirections, held_weights, set_v_init_norm
from wnrl.run import Resume, Run
from wnrl.schedules import lr_schedule, set_learning_rate

PQN_OPTIMIZERS = ("radam", "adam")


@dataclass
class PQNConfig(CommonConfig):
    """Atari defaults: CleanRL's ``pqn_atari_envpool.py`` (8 envs × 128 steps, 4 epochs of 4
    minibatches, RAdam 2.5e-4 decayed to 0, λ 0.65, ε 1 → 0.01 over the first 10%)."""

    num_envs: int = doc("environments stepped together", 8)
    n_steps: int = doc("rollout length per env between learning phases", 128)
    num_minibatches: int = doc("minibatches each epoch splits the rollout's n_steps × num_envs transitions into", 4)
    update_epochs: int = doc("passes over each rollout (each a new shuffle)", 4)
    optimizer: str = doc("radam (the paper's and CleanRL's) | adam", "radam")
    learning_rate: float = doc("optimizer learning rate", 2.5e-4)
    lr_decay: bool = doc("decay the learning rate linearly to 0 over total_steps", True)
    adam_eps: float = doc("RAdam (or Adam) epsilon", 1e-8)
    gamma: float = doc("discount factor", 0.99)
    reward_scale: float = doc(
        "multiplies the rewards the learner sees, after --clip-rewards (Q values are in these units; logged "
        "returns stay raw scores)",
        1.0,
    )
    q_lambda: float = doc(
        "λ of the Q(λ) returns (0: one-step Q-learning targets; 1: Monte Carlo to the rollout's end)", 0.65
    )
    exploration_fraction: float = doc("fraction of total_steps over which epsilon decays linearly", 0.1)
    start_epsilon: float = doc("epsilon at the start", 1.0)
    end_epsilon: float = doc("epsilon after the decay", 0.01)
    max_grad_norm: float = doc("gradient-norm clip (0: off)", 10.0)
    wn_head: bool = doc("weight-normalize the Q output layer too (with --norm wn)", False)
    init_rollouts: int = doc(
        "rollouts (ε-greedy, of the initial net) whose observations set weight norm's data-dependent init and "
        "batch norm's running statistics; not learned from. Only nets that need them: --norm wn, wn_mobn, batch",
        1,
    )

    def validate(self) -> None:
        super().validate()
        self.require_at_least(1, "n_steps", "num_minibatches", "update_epochs", "init_rollouts")
        self.require_in("gamma", 0.0, 1.0, low_open=True)
        self.require_in("q_lambda", 0.0, 1.0)
        self.require_in("learning_rate", 0.0, float("inf"), low_open=True)
        self.require_in("reward_scale", 0.0, float("inf"), low_open=True)
        self.require_at_least(0, "max_grad_norm", "adam_eps")
        for name in ("exploration_fraction", "start_epsilon", "end_epsilon"):
            self.require_in(name, 0.0, 1.0)
        if self.optimizer not in PQN_OPTIMIZERS:
            raise CliError(f"unknown --optimizer {self.optimizer!r}: choose one of {', '.join(PQN_OPTIMIZERS)}")
        rollout = self.n_steps * self.num_envs
        if rollout % self.num_minibatches:
            raise CliError(
                f"--num-minibatches {self.num_minibatches} must divide the rollout of --n-steps {self.n_steps} × "
                f"--num-envs {self.num_envs} = {rollout} transitions; choose a divisor of {rollout}"
            )


PQNConfig.FAMILY_DEFAULTS = {
    # CleanRL's pqn_atari_envpool.py as it is: its 8 envs fit a 2-core CPU (the paper's purejaxql
    # config, 128 envs × 32 steps with 2 epochs of 32 minibatches, is sized for a GPU with envpool).
    # Its envpool env has episodic_life=True (a lost life ends the trace, the game goes on) and
    # reward_clip=True: wnrl's Atari defaults --life-loss-terminal and --clip-rewards. Measured here only
    # its speed: 150-260 agent steps/s on Breakout with one torch thread of a 2-core CPU beside another
    # run (5k steps), so 10M steps take 11-18 hours; its learning is not measured.
    # --norm layer (the paper's, CleanRL's; wnrl's GroupNorm(1, C) after every conv and the dense layer):
    # on Pong at 3M steps, seeds 1 and 2, it ended above --norm wn (last 100 games +18.8 and +20.1 against
    # +15.4 and +17.4), was above it at 1.5M on both (16.4 and 18.9 against 13.1 and 15.1) and kept its
    # dense units alive (4-10% dormant against 28-71%); wn took off sooner on seed 2 only (0.64M against
    # 0.98M; seed 1: 0.96M against 0.54M). docs/results.md, "PQN's norm on Pong".
    "atari": {"norm": "layer"},
    # CartPole, measured at 100k steps (the budget of wnrl's other CartPole defaults), seeds 1-5: last 20
    # games 500, 500, 477.7, 500, 500; last 100 games 483.1, 491.5, 426.4, 388.1, 459.8 (30-46 s a run,
    # one thread, beside another run). CleanRL's pqn.py as it is (4 envs × 128 steps, 4 epochs of 4
    # minibatches, RAdam 2.5e-4 decayed, λ 0.65, ε 1 → 0.05 over half the run, a 120-84 MLP) scored 53
    # over its last 100 games at 100k on seed 1 (332 at its own 500k): its mean Q had reached only 25-37
    # of the ~100 that γ = 0.99 allows by 70-90k steps. What changed, compared on seeds 1-3 (before the
    # minibatches were drawn as PPO's are): from purejaxql's pqn_cartpole.yaml its 256-256 MLP, λ 0.95,
    # rewards × 0.1 (Q ≤ 10) and ε decayed over the first 20% (over 10%: worse); 32-step rollouts (4×
    # the updates per agent step). Learning rate 5e-4: worse (last 100: 427, 297 on seeds 1-2).
    "classic": {
        "total_steps": 100_000,
        "num_envs": 4,
        "n_steps": 32,
        "hidden_sizes": (256, 256),
        "learning_rate": 2.5e-4,
        "q_lambda": 0.95,
        "reward_scale": 0.1,
        "exploration_fraction": 0.2,
        "end_epsilon": 0.05,
        "life_loss_terminal": False,
    },
    # purejaxql's config/alg/pqn_minatar.yaml (adapted by its authors from their Atari config): 128 envs ×
    # 32 steps, 2 epochs of 32 minibatches, lr 5e-4 decayed, ε 1 → 0.05 over 10%, λ 0.65. Its 10M steps
    # cut to the 5M of wnrl's other MinAtar defaults (the MinAtar paper's budget). Not tuned here.
    "minatar": {
        "total_steps": 5_000_000,
        "num_envs": 128,
        "n_steps": 32,
        "num_minibatches": 32,
        "update_epochs": 2,
        "learning_rate": 5e-4,
        "exploration_fraction": 0.1,
        "end_epsilon": 0.05,
    },
    # Catch: a first choice, not tuned: the classic table's rollout shape on 16 envs (Catch games last
    # 6 steps), ε decayed over a quarter of the 50k steps (as DQN's Catch defaults do), the Atari table's
    # learning. Measured once (seed 1, 84×84): 1.00 over the last 50 games (random play ≈ −0.6), 198 s.
    "catch": {
        "total_steps": 50_000,
        "num_envs": 16,
        "n_steps": 32,
        "exploration_fraction": 0.25,
        "end_epsilon": 0.05,
        "life_loss_terminal": False,
    },
}


def pqn_loss(
    q_taken: torch.Tensor, returns: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor, world_size: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """L = Σ_valid (Q(s_t, a_t) − G_t)² / n_valid: the mean squared error over a minibatch's valid steps.

    ``n_valid`` counts the valid steps of the whole minibatch, over all ranks when there are several:
    each rank's sum is then its share of the minibatch's mean, and the loss to differentiate is
    ``world_size`` × that share, so DistributedDataParallel's average of the ranks' gradients is the
    gradient of the whole minibatch's mean, as one process holding every rank's part computes it.
    Returns ``(loss to differentiate, this rank's share of the mean, detached)``."""
    share = ((q_taken - returns).pow(2) * valid).sum() / n_valid.clamp_min(1.0)
    return share * world_size if world_size > 1 else share, share.detach()


def make_pqn_optimizer(cfg: PQNConfig, params) -> torch.optim.Optimizer:
    """RAdam (Liu et al., 2020: Adam whose first steps are plain momentum SGD while the variance estimate is
    unreliable), as the paper and CleanRL train PQN with, or Adam."""
    if cfg.optimizer == "adam":
        return optim.Adam(params, lr=cfg.learning_rate, eps=cfg.adam_eps)
    return optim.RAdam(params, lr=cfg.learning_rate, eps=cfg.adam_eps)


def minibatch_update(learner: Callable, optimizer: torch.optim.Optimizer, world_size: int = 1) -> Callable:
    """``update(obs, actions, returns, valid, n_valid)``: the gradients of one minibatch's
    :func:`pqn_loss` through ``learner`` (the net, or the net under DDP); returns this rank's shares of
    the minibatch's loss and of its mean Q(s, a), on the device (no host sync)."""

    def update(obs, actions, returns, valid, n_valid) -> tuple[torch.Tensor, torch.Tensor]:
        optimizer.zero_grad(set_to_none=True)
        q_taken = learner(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        loss, share = pqn_loss(q_taken, returns, valid, n_valid, world_size)
        loss.backward()
        return share, (q_taken.detach() * valid).sum() / n_valid.clamp_min(1.0)

    return update


def learn(
    cfg: PQNConfig,
    q: nn.Module,
    update: Callable,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, ...],
    passes: list[list[torch.Tensor]],
    all_sum: Callable[[torch.Tensor], torch.Tensor],
    after_step: Callable[[], None] = lambda: None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The learning phase on one rollout: for each pass (epoch) and each of its minibatches (this
    rank's indices into ``batch``, :func:`wnrl.agents.returns.minibatches`), ``update(obs, actions,
    returns, valid, n_valid)`` (the gradients of :func:`pqn_loss`), gradient clip, optimizer step,
    ``after_step()``. ``batch``: the rollout flat over ``T·n`` (observations, actions, λ-returns,
    valid). Returns the sums of the minibatches' loss shares and mean-Q shares (on the device: no
    host sync here)."""
    obs, actions, returns, valid = batch
    flat = [idx.to(obs.device) for minibatches in passes for idx in minibatches]
    # every minibatch's valid steps over all ranks: one collective for the whole phase
    n_valid = all_sum(torch.stack([valid[idx].sum(dtype=torch.float32) for idx in flat]))
    loss_sum = torch.zeros((), device=obs.device)
    q_sum = torch.zeros((), device=obs.device)
    for i, idx in enumerate(flat):
        loss, q_mean = update(obs[idx], actions[idx], returns[idx], valid[idx], n_valid[i])
        if cfg.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(q.parameters(), cfg.max_grad_norm)
        optimizer.step()
        after_step()
        loss_sum += loss
        q_sum += q_mean
    return loss_sum, q_sum


def train(cfg: PQNConfig, resume: Resume | None = None) -> dict[str, Any]:
    """Trains PQN as ``cfg`` says (continuing ``resume`` if given); returns a summary (run_dir,
    steps, updates, episodes, recent returns, whether a signal interrupted it)."""
    with Run.open(cfg, "pqn", resume) as run:
        n_actions = int(run.env.single_action_space.n)
        shape = run.env.single_observation_space.shape
        q = QNetwork(shape, n_actions, cfg.norm, False, cfg.hidden_sizes, cfg.wn_head, cfg.activation)
        set_v_init_norm(q, cfg.wn_init_norm)
        q = run.sync_batch_norm(q).to(run.device)  # --norm batch on several GPUs: statistics over all ranks
        optimizer = make_pqn_optimizer(cfg, q.parameters())
        run.restore(model=q, optimizer=optimizer)
        learner = run.wrap(q)  # several ranks: DDP (rank 0's weights now, gradients averaged)
        run.start()
        return _loop(cfg, run, q, learner, optimizer, n_actions)


def _loop(cfg: PQNConfig, run: Run, q: nn.Module, learner: nn.Module, optimizer, n_actions: int) -> dict[str, Any]:
    """Several ranks: each plays ``num_envs / world size`` envs, computes the λ-returns of its own
    rollout and learns from its part of each minibatch (:func:`~wnrl.agents.returns.minibatches`,
    :func:`pqn_loss`); the step counter, the schedules and the minibatches are the whole run's."""
    env, device, logger, world, rng = run.env, run.device, run.logger, run.world, run.rng
    T, N = cfg.n_steps, env.num_envs  # N: this rank's envs (cfg.num_envs is the whole run's)
    epochs = cfg.update_epochs
    # The rollout, on the training device; q_max[t] = max_a Q(o_t, a) as the acting net saw it.
    rollout = Rollout(cfg, T, N, env.single_observation_space, device, reward_scale=cfg.reward_scale)
    q_max = torch.zeros((T + 1, N), dtype=torch.float32, device=device)

    step = run.start_step
    counters = {"updates": 0, "grad_steps": 0, **run.restored("counters", {})}
    # Envs restart on resume (their state is not saved); a different seed gives new episodes.
    obs, _ = env.reset(seed=cfg.seed + step + world.rank * N)
    obs_t = obs_to_device(obs, device)
    data_init = InitFromRollouts(q, cfg.init_rollouts, world)
    epsilon_at = run.schedule("epsilon", epsilon_schedule)
    lr_factor = run.schedule("lr", lr_schedule)
    epsilon = lr = float("nan")
    # --wn-project after every optimizer step; the directions' turn per update, logged under wn/
    directions = WNDirections(q, project=cfg.wn_project)
    loss_sum = torch.zeros((), device=device)
    q_sum = torch.zeros((), device=device)
    n_sums = 0
    last_obs = rollout.obs[0]  # the last minibatch's observations: dormant/ is measured on them

    def save() -> None:
        run.check_finite(step, q, loss_sum)  # never save a diverged network
        run.save_checkpoint(step, counters=dict(counters), model=q.state_dict(), optimizer=optimizer.state_dict())

    forward = Compiled(q, cfg.compile, "the PQN forward pass")
    compiled_update = Compiled(minibatch_update(learner, optimizer, world.size), cfg.compile, "the PQN update")

    while step < cfg.total_steps and not run.stop_requested:
        # 1. Roll out T steps of ε-greedy play by the current Q-network in N envs.
        q.eval()  # batch-norm nets act with running statistics
        # held_weights: the parameters are fixed for the rollout, each WN layer builds its weight once
        with held_weights(q), torch.no_grad():
            for t in range(T):
                epsilon = epsilon_at(step)
                q_values = forward(obs_t)
                greedy = q_values.argmax(dim=1)
                q_max[t] = q_values.gather(1, greedy.unsqueeze(1)).squeeze(1)
                explore = rng.random(N) < epsilon
                actions = np.where(explore, rng.integers(0, n_actions, size=N), greedy.cpu().numpy())
                # An autoreset step's action did nothing: marked invalid, masked from the loss, and the
                # λ-trace stops before it.
                next_obs, info = rollout.step(env, t, obs_t, actions)
                step += N * world.size  # the whole run's env steps: every rank steps N envs
                obs_t = obs_to_device(next_obs, device)
                logger.episodes_from(info, step)
            q_max[T] = forward(obs_t).max(dim=1).values  # max_a Q(o_T, a): the bootstrap
        q.train()

        if data_init.take(rollout.flat_obs()):  # the first rollouts set the init (InitFromRollouts)
            continue

        # 2. Q(λ) returns of the rollout (fixed for the whole learning phase), then update_epochs
        # passes of shuffled minibatches regressing Q(s_t, a_t) onto them.
        lr = cfg.learning_rate * lr_factor(step)
        set_learning_rate(optimizer, lr)
        returns = q_lambda_returns(rollout.rewards, q_max, rollout.terminals, rollout.valid, cfg.gamma, cfg.q_lambda)
        batch = (rollout.flat_obs(), rollout.actions.flatten(), returns.flatten(), rollout.valid.flatten())
        # The minibatches are drawn on the whole run's rollout (every rank's envs) by one generator, seeded
        # by the run's seed and the update's number: the same on every rank and after a resume, so
        # several ranks make the updates one process over all envs makes (each rank learns from its part).
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + counters["updates"])
        passes = [minibatches(generator, T, cfg.num_envs, cfg.num_minibatches, world.rank, N) for _ in range(epochs)]
        losses, qs = learn(cfg, q, compiled_update, optimizer, batch, passes, world.all_sum, directions.after_step)
        loss_sum += losses
        q_sum += qs
        n_sums += epochs * cfg.num_minibatches
        last_obs = batch[0][passes[-1][-1].to(device)]
        counters["updates"] += 1
        counters["grad_steps"] += epochs * cfg.num_minibatches

        if run.log_due(step):
            sps = run.sps(step)
            logger.scalars({"charts/SPS": sps, "charts/epsilon": epsilon, "charts/learning_rate": lr}, step)
            if n_sums:  # one host sync per log, not per update
                run.check_finite(step, q, loss_sum)
                # each rank's sums are its shares of the minibatches' means
                logger.scalars(
                    {
                        "losses/td_loss": (world.all_sum(loss_sum) / n_sums).item(),
                        "losses/q_values": (world.all_sum(q_sum) / n_sums).item(),
                    },
                    step,
                )
                loss_sum.zero_(), q_sum.zero_()
                n_sums = 0
                logger.wn_diagnostics(directions, step)
                # one extra forward (no gradients, eval mode as when acting) on the last minibatch
                logger.dormant(q, last_obs, step)
            logger.progress(step, sps)
        if run.evaluate_due(step):  # --eval-every: games on envs of its own; nothing here changes
            run.evaluate(step, q)
        if run.checkpoint_due(step):
            run.checkpoint(save)
    run.checkpoint(save, final=True)
    return run.summary(step, updates=counters["updates"], grad_steps=counters["grad_steps"])
