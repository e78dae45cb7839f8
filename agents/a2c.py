"""A2C (synchronous advantage actor-critic, Mnih et al., 2016) with a weight-normalized shared trunk.

Read top to bottom: the config, the network, the loss, then one explicit training loop. The
rollout lives on the training device: observations cross to it once per step (uint8 frames stay
uint8) and only the sampled actions come back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from wnrl.agents.learner_inputs import obs_to_device
from wnrl.agents.returns import gae_advantages
from wnrl.agents.rollout import Rollout

from wnrl.compiled import Compiled
from wnrl.config import CliError, CommonConfig, doc
from wnrl.dormant import DeadTrunkWatch, activation_layers, watched_layers
from wnrl.layers import InitFromRollouts, WNDirections, batch_stat_layers, held_weights, set_v_init_norm
from wnrl.nets import ActorCriticHead, make_trunk
from wnrl.optim import OPTIMIZERS, make_optimizer
from wnrl.run import Resume, Run
from wnrl.schedules import lr_schedule, set_learning_rate


@dataclass
class A2CConfig(CommonConfig):
    """Atari defaults: OpenAI baselines' A2C (16 envs, 5-step rollouts, TF-style RMSprop, learning
    rate decayed linearly), which rl-baselines3-zoo's tuned Atari A2C also uses."""

    num_envs: int = doc("environments stepped together", 16)
    n_steps: int = doc("rollout length per env between updates", 5)
    optimizer: str = doc(
        "rmsprop_tf (TensorFlow's RMSprop, as baselines' A2C: squares start at 1, eps inside the root) | "
        "rmsprop (torch's) | adam",
        "rmsprop_tf",
    )
    learning_rate: float = doc("optimizer learning rate", 7e-4)
    lr_decay: bool = doc("decay the learning rate linearly to 0 over total_steps", True)
    rms_alpha: float = doc("RMSprop smoothing constant", 0.99)
    rms_eps: float = doc("RMSprop (or Adam) epsilon", 1e-5)
    gamma: float = doc("discount factor", 0.99)
    gae_lambda: float = doc("GAE lambda (1: plain n-step advantages)", 1.0)
    ent_coef: float = doc("entropy bonus coefficient", 0.01)
    vf_coef: float = doc("value loss coefficient", 0.5)
    max_grad_norm: float = doc("gradient-norm clip (0: off)", 0.5)
    normalize_advantage: bool = doc("normalize advantages per batch", False)
    wn_head: bool = doc("weight-normalize the policy and value output layers too (with --norm wn)", False)
    init_rollouts: int = doc(
        "rollouts of the initial policy (not trained on) whose observations set weight norm's data-dependent "
        "init and batch norm's running statistics",
        20,
    )

    def validate(self) -> None:
        super().validate()
        self.require_at_least(1, "n_steps", "init_rollouts")
        self.require_in("gamma", 0.0, 1.0, low_open=True)
        self.require_in("gae_lambda", 0.0, 1.0)
        self.require_in("learning_rate", 0.0, float("inf"), low_open=True)
        self.require_at_least(0, "max_grad_norm")
        self.require_in("rms_alpha", 0.0, 0.999)
        self.require_at_least(0, "rms_eps")
        if self.optimizer not in OPTIMIZERS:
            raise CliError(f"unknown --optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")


A2CConfig.FAMILY_DEFAULTS = {
    # WN directions start at row norm 1.0 instead of the paper's N(0, 0.05²) draw (‖v‖ 0.8-2.8 in the
    # Nature net: its dense layer turned too slowly to learn Pong in 2M steps). Measured on Pong
    # (docs/results.md, "The dead trunk"): 0.577, the default until 2026-12-03, learned fastest at 2M
    # (-13.4, -15.1, -15.4 on seeds 1-3) but its trunk died within the first 250k steps of the 5M
    # command on seeds 3 and 5 of 1-8 (seed 3, run on, was at random play at 2.9M); at 1.0 (directions
    # turning ~1.7× less per update) the trunk lived on seeds 2-5, those two among them, and the 2M runs
    # learned more slowly (-15.9 and -18.6 on seeds 1 and 3): a slower start whose trunk lived on every
    # seed tried.
    "atari": {"wn_init_norm": 1.0},
    # rl-baselines3-zoo's CartPole A2C (its n_steps 5, RMSprop 7e-4, no entropy bonus, 8 envs) on
    # SB3's network shape: separate actor and critic MLPs with tanh. Measured on CartPole-v1
    # (docs/results.md): ReLU MLPs, a shared MLP or the TF-style RMSprop (whose squares start at 1,
    # so the first few hundred updates barely move a small net) kept A2C at 80-230 in 300k steps.
    # Advantages normalized per batch and the learning rate decayed: Acrobot's −1 per step makes
    # every early advantage negative (returns ~−100 against a critic near 0), and unnormalized they
    # pushed the policy to a deterministic never-reaching-the-goal action within 40k steps on seed 1
    # (−500 until 250k); normalized, 5 of 5 seeds learned Acrobot. The decay ended CartPole's late
    # collapses (5 of 5 seeds at 500 with it, one seed fell to 102 without it). docs/results.md.
    "classic": {
        "total_steps": 300_000,
        "num_envs": 8,
        "n_steps": 5,
        "activation": "tanh",
        "optimizer": "rmsprop",
        "learning_rate": 7e-4,
        "lr_decay": True,
        "normalize_advantage": True,
        "gae_lambda": 1.0,
        "ent_coef": 0.0,
        "init_rollouts": 4,
        "life_loss_terminal": False,
    },
    # MinAtar: its paper's actor-critic (Young & Tian, 2019) is an online AC(λ) with eligibility traces
    # and one env, not A2C, so its settings do not carry over. Kept: its 5M-step budget and its
    # unclipped rewards (the common MinAtar table). The rest is the Atari table's, OpenAI baselines'
    # A2C as rl-baselines3-zoo tunes it for Atari (16 envs, 5-step rollouts, TF-style RMSprop 7e-4
    # decayed to 0, entropy 0.01, gradient clip 0.5): MinAtar is a miniature Atari with the same kind
    # of rewards and episode lengths, and 5M steps are 62,500 updates, the order of an Atari run's. The
    # Atari table's --wn-init-norm 1.0 (measured on the Nature net, Pong) is not taken: not measured
    # on MinAtar's net, whose directions start at 0.3 (conv, Breakout's 4 channels) and 1.6 (dense)
    # under the paper's draw. Not tuned here: a first choice, to be measured.
    "minatar": {
        "total_steps": 5_000_000,
        "num_envs": 16,
        "n_steps": 5,
        "optimizer": "rmsprop_tf",
        "learning_rate": 7e-4,
        "lr_decay": True,
    },
    # Catch's runs are a few hundred updates long: torch's RMSprop, which moves from the first update
    "catch": {
        "total_steps": 50_000,
        "num_envs": 16,
        "optimizer": "rmsprop",
        "lr_decay": False,
        "life_loss_terminal": False,
    },
}


class ActorCritic(nn.Module):
    """Policy logits and a state value, all layers with ``norm``.

    Frames: one shared conv trunk under both heads (A3C's network). Vectors: a separate MLP for the
    critic (``critic_trunk``), as Stable-Baselines3 and CleanRL build theirs: with a shared MLP the
    critic's squared error on unclipped returns (CartPole's reach ~100) dominates the clipped
    gradient and the policy barely moves.
    """

    def __init__(
        self,
        obs_shape,
        n_actions: int,
        norm: str = "wn",
        hidden_sizes=(64, 64),
        wn_head: bool = False,
        activation: str = "relu",
    ):
        super().__init__()
        self.trunk = make_trunk(obs_shape, norm, hidden_sizes, activation=activation)
        self.critic_trunk = (
            make_trunk(obs_shape, norm, hidden_sizes, activation=activation) if len(obs_shape) == 1 else None
        )
        self.head = ActorCriticHead(self.trunk.features_dim, n_actions, wn_head and norm.startswith("wn"))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(obs)
        if self.critic_trunk is None:
            return self.head(features)
        return self.head.policy(features), self.head.value(self.critic_trunk(obs)).squeeze(-1)

    def critic_layers(self) -> list[str]:
        """The hidden layers on the value head's path, in forward order, as the ``dormant/`` tags
        name them: the conv trunk's (``trunk.convs.0`` ... ``trunk.fc.0``) or the critic MLP's
        (``critic_trunk.net.0`` ...); empty when the critic has none."""
        name = "trunk" if self.critic_trunk is None else "critic_trunk"
        return [f"{name}.{n}" for n, _, _ in activation_layers(getattr(self, name))]


def a2c_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    valid: torch.Tensor,
    cfg: A2CConfig,
    all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None,
    world_size: int = 1,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """loss = −E[A · log π(a|s)] + vf_coef · E[(R − V(s))²] − ent_coef · E[H(π(·|s))], over valid steps.

    All inputs are flat over the rollout (``[T·N]``, logits ``[T·N, A]``); advantages and returns
    carry no gradient.

    Several ranks (``all_sum`` sums a tensor over them): the means (and the advantages'
    normalization) are over all ranks' valid steps, each rank's parts are its share of them, and the
    loss is ``world_size`` × its share, so DistributedDataParallel's average of the ranks' gradients
    is the gradient of the whole batch's loss, as one process over all envs would compute it.
    """
    total = all_sum if all_sum is not None else (lambda t: t)
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(1, actions.unsqueeze(1)).squeeze(1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    w = valid.float() / total(valid.float().sum()).clamp_min(1.0)  # mean over the steps that really acted
    if cfg.normalize_advantage:
        mean = total((advantages * w).sum())
        std = total(((advantages - mean).pow(2) * w).sum()).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)
    policy_loss = -(advantages * logp * w).sum()
    value_loss = ((returns - values).pow(2) * w).sum()
    entropy_mean = (entropy * w).sum()
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy_mean
    if world_size > 1:
        loss = loss * world_size
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy_mean}


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 − Var[R − V] / Var[R]: 1 is a perfect critic, 0 no better than a constant."""
    var_r = returns.var()
    return float("nan") if var_r == 0 else float(1 - (returns - values).var() / var_r)


def train(cfg: A2CConfig, resume: Resume | None = None) -> dict[str, Any]:
    """Trains A2C as ``cfg`` says (continuing ``resume`` if given); returns a summary (run_dir,
    steps, updates, episodes, recent returns, whether a signal interrupted it)."""
    with Run.open(cfg, "a2c", resume) as run:
        net, learner, optimizer = open_actor_critic(cfg, run)
        run.start()
        return _loop(cfg, run, net, learner, optimizer)


def open_actor_critic(cfg, run: Run) -> tuple[ActorCritic, nn.Module, torch.optim.Optimizer]:
    """The run's :class:`ActorCritic` (``cfg``'s norm, sizes, head and initial direction norm; synchronized
    batch norm on several GPUs) on its device, its optimizer (``cfg.optimizer``: ``rmsprop_tf``,
    ``rmsprop`` or ``adam`` with ``learning_rate``, ``rms_alpha``, ``rms_eps``), both restored from a
    resumed run's checkpoint, and the learner (the net, or the net under DDP with several ranks: rank
    0's weights, gradients averaged). A2C's and PPO's."""
    n_actions = int(run.env.single_action_space.n)
    net = ActorCritic(
        run.env.single_observation_space.shape, n_actions, cfg.norm, cfg.hidden_sizes, cfg.wn_head, cfg.activation
    )
    set_v_init_norm(net, cfg.wn_init_norm)
    net = run.sync_batch_norm(net).to(run.device)
    optimizer = make_optimizer(cfg.optimizer, net.parameters(), cfg.learning_rate, cfg.rms_alpha, cfg.rms_eps)
    run.restore(model=net, optimizer=optimizer)
    return net, run.wrap(net), optimizer


def learn(
    cfg: A2CConfig,
    net: nn.Module,
    learner: Callable,
    optimizer: torch.optim.Optimizer,
    losses: Callable,
    obs: torch.Tensor,
    bootstrap: torch.Tensor,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """One gradient step of ``net`` on a rollout's observations ``obs`` (``[T·N, ...]``): a forward
    through ``learner`` (the net, or the net under DDP), ``losses(logits, values, bootstrap)`` →
    (loss, parts, flat returns), backward, clip, step. Returns the parts, the detached values and
    the returns."""
    logits, values = learner(obs)
    loss, parts, returns = losses(logits, values, bootstrap)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.max_grad_norm > 0:
        nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
    optimizer.step()
    return parts, values.detach(), returns


def rollout_losses(
    cfg: A2CConfig, rewards, terminals, valid, actions, all_sum=None, world_size: int = 1, acting_values=None
) -> Callable:
    """``losses(logits, values, bootstrap)`` over a rollout of ``[T, N]`` rewards, terminals, valid
    steps and actions: GAE on the detached values (or, given ``acting_values`` ``[T, N]``, on those:
    the values the net gave while acting, in the mode ``bootstrap`` was computed in), then
    :func:`a2c_loss` (over all ranks' steps when ``all_sum`` is given)."""
    T, N = rewards.shape

    def losses(logits, values, bootstrap):
        seen = values.detach().view(T, N) if acting_values is None else acting_values
        values_tn = torch.cat([seen, bootstrap.unsqueeze(0)])
        advantages, returns = gae_advantages(rewards, values_tn, terminals, valid, cfg.gamma, cfg.gae_lambda)
        flat_returns = returns.flatten()
        loss, parts = a2c_loss(
            logits,
            values,
            actions.flatten(),
            advantages.flatten(),
            flat_returns,
            valid.flatten(),
            cfg,
            all_sum,
            world_size,
        )
        return loss, parts, flat_returns

    return losses


def _loop(
    cfg: A2CConfig, run: Run, net: nn.Module, learner: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    env, device, logger, world = run.env, run.device, run.logger, run.world
    T, N = cfg.n_steps, env.num_envs  # N: this rank's envs (cfg.num_envs is the whole run's)
    rollout = Rollout(cfg, T, N, env.single_observation_space, device)  # on the training device

    step = run.start_step
    updates = int(run.restored("updates", 0))
    # Envs restart on resume (their state is not saved); a different seed gives new episodes.
    obs, _ = env.reset(seed=cfg.seed + step + world.rank * N)
    obs_t = obs_to_device(obs, device)
    data_init = InitFromRollouts(net, cfg.init_rollouts, world)
    sums = {k: torch.zeros((), device=device) for k in ("policy_loss", "value_loss", "entropy")}
    n_sums = 0
    last_values = last_returns = None
    lr_factor = run.schedule("lr", lr_schedule)
    lr = cfg.learning_rate * lr_factor(step)
    # --wn-project after every optimizer step; the directions' turn per update, logged under wn/
    directions = WNDirections(net, project=cfg.wn_project)
    # The dead-trunk warning (wnrl.dormant): said once, by the process that writes.
    critic_layers = net.critic_layers()
    dead_trunk = DeadTrunkWatch(watched_layers(critic_layers)) if run.is_writer and critic_layers else None

    def save() -> None:
        run.check_finite(step, net, *sums.values())  # never save a diverged network
        run.save_checkpoint(step, updates=updates, model=net.state_dict(), optimizer=optimizer.state_dict())

    forward = Compiled(net, cfg.compile, "the A2C forward pass")

    all_sum = world.all_sum if world.distributed else None
    # A net with batch statistics (--norm batch, wn_mobn) is a different function in training mode (the
    # rollout's statistics) than when acting and bootstrapping (running statistics): its advantages take
    # the values it gave while acting, so V(s_t) and the bootstrap V(s_T) come from one function (as
    # PPO's do). Other nets are the same function in both modes and keep the learner's values.
    acting_values = torch.zeros(T, N, device=device) if batch_stat_layers(net) else None
    losses = rollout_losses(
        cfg, rollout.rewards, rollout.terminals, rollout.valid, rollout.actions, all_sum, world.size, acting_values
    )
    compiled_losses = Compiled(losses, cfg.compile, "the A2C loss")
    learner_forward = forward if learner is net else Compiled(learner, cfg.compile, "the A2C forward pass")

    while step < cfg.total_steps and not run.stop_requested:
        # 1. Roll out T steps of the current policy in N envs.
        net.eval()  # batch-norm nets act with running statistics
        # held_weights: the parameters are fixed for the rollout, each WN layer builds its weight once
        with held_weights(net), torch.no_grad():
            for t in range(T):
                logits, acting = forward(obs_t)
                if acting_values is not None:
                    acting_values[t] = acting
                # Categorical(logits=logits).sample()'s arithmetic and draw, without building the
                # distribution (its argument checks: ~6% of a CartPole run)
                probs = torch.softmax(logits - logits.logsumexp(dim=-1, keepdim=True), dim=-1)
                actions = torch.multinomial(probs, 1, True).squeeze(1)
                # An autoreset step's action did nothing: the rollout marks it, and the loss masks it.
                next_obs, info = rollout.step(env, t, obs_t, actions)
                step += N * world.size  # the whole run's env steps: every rank steps N envs
                obs_t = obs_to_device(next_obs, device)
                logger.episodes_from(info, step)
            # V(o_T), to bootstrap the last steps of the rollout (a copy: it outlives the next call)
            bootstrap = forward(obs_t)[1].clone()
        net.train()

        if data_init.take(rollout.flat_obs()):  # the first rollouts set the init (InitFromRollouts)
            continue

        # 2. One forward with gradients over the whole rollout; its detached values (of the current
        # parameters) give the advantages.
        lr = cfg.learning_rate * lr_factor(step)
        set_learning_rate(optimizer, lr)
        parts, values, returns = learn(
            cfg, net, learner_forward, optimizer, compiled_losses, rollout.flat_obs(), bootstrap
        )
        # What is logged is copied out before the next compiled call can reuse its memory.
        for k in sums:
            sums[k] += parts[k].detach()
        n_sums += 1
        mask = rollout.valid.flatten()
        last_values, last_returns = values[mask], returns[mask]
        directions.after_step()  # the same on every rank: their parameters stay equal
        updates += 1

        if run.log_due(step):
            sps = run.sps(step)
            logger.scalars({"charts/SPS": sps, "charts/learning_rate": lr}, step)
            if n_sums:  # one host sync per log, not per update
                run.check_finite(step, net, *sums.values())
                # each rank's parts are its share of the whole batch's means
                logger.scalars({f"losses/{k}": (world.all_sum(v) / n_sums).item() for k, v in sums.items()}, step)
                ev = explained_variance(last_values, last_returns)
                logger.scalar("losses/explained_variance", ev, step)
                for v in sums.values():
                    v.zero_()
                n_sums = 0
                logger.wn_diagnostics(directions, step)
                # one extra forward (no gradients, eval mode as when acting) on the last rollout
                dormant = logger.dormant(net, rollout.flat_obs(), step)
                if dead_trunk is not None and (line := dead_trunk.update(step, ev, dormant)):
                    print(line, file=sys.stderr)
            logger.progress(step, sps)
        if run.evaluate_due(step):  # --eval-every: games on envs of its own; nothing here changes
            run.evaluate(step, net)
        if run.checkpoint_due(step):
            run.checkpoint(save)
    run.checkpoint(save, final=True)
    return run.summary(step, updates=updates)
