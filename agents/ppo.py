"""PPO (proximal policy optimization, Schulman et al., 2017, clipped objective) on A2C's network.

Read top to bottom: the config, the loss, the update, then one explicit training
loop. What is A2C's is taken from it, not copied: the network (:class:`~wnrl.agents.a2c.ActorCritic`,
a shared conv trunk for frames, separate actor and critic MLPs for vectors, every layer under
``--norm``), the advantages (:func:`~wnrl.agents.returns.gae_advantages`, which masks NextStep
autoreset steps) and the rollout on the training device. What PPO adds: the rollout keeps the
acting policy's log-probabilities and values, and ``update_epochs`` passes over it in
``num_minibatches`` minibatches each make one clipped step.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from wnrl.agents.a2c import explained_variance, open_actor_critic
from wnrl.agents.learner_inputs import obs_to_device
from wnrl.agents.returns import gae_advantages, minibatches
from wnrl.agents.rollout import Rollout

from wnrl.compiled import Compiled
from wnrl.config import CliError, CommonConfig, doc
from wnrl.dormant import DeadTrunkWatch, watched_layers
from wnrl.layers import InitFromRollouts, WNDirections, held_weights
from wnrl.optim import OPTIMIZERS
from wnrl.run import Resume, Run
from wnrl.schedules import LinearSchedule, lr_schedule, set_learning_rate


@dataclass
class PPOConfig(CommonConfig):
    """Atari defaults: CleanRL's ``ppo_atari.py`` (8 envs × 128 steps, 4 epochs of 4 minibatches, Adam
    2.5e-4 decayed linearly, clip 0.1, clipped value loss, entropy 0.01, gradient clip 0.5), which
    follows OpenAI baselines' ``ppo2`` Atari settings."""

    num_envs: int = doc("environments stepped together", 8)
    n_steps: int = doc("rollout length per env between updates", 128)
    update_epochs: int = doc("passes over each rollout", 4)
    num_minibatches: int = doc("minibatches per pass (each num_envs·n_steps / num_minibatches steps)", 4)
    optimizer: str = doc(
        "adam (CleanRL's, eps 1e-5) | rmsprop (torch's) | rmsprop_tf (TensorFlow's, as baselines' A2C)", "adam"
    )
    learning_rate: float = doc("optimizer learning rate", 2.5e-4)
    lr_decay: bool = doc("decay the learning rate linearly to 0 over total_steps", True)
    rms_alpha: float = doc("RMSprop smoothing constant (--optimizer rmsprop*)", 0.99)
    rms_eps: float = doc("Adam (or RMSprop) epsilon", 1e-5)
    gamma: float = doc("discount factor", 0.99)
    gae_lambda: float = doc("GAE lambda", 0.95)
    clip_coef: float = doc("the ratio's clip range ε: the policy's ratio is clipped to [1 − ε, 1 + ε]", 0.1)
    clip_decay: bool = doc("decay the clip range linearly to 0 over total_steps, as the learning rate", False)
    clip_vloss: bool = doc("clip the value's change to ±ε around the acting value, as baselines' ppo2", True)
    ent_coef: float = doc("entropy bonus coefficient", 0.01)
    vf_coef: float = doc("value loss coefficient", 0.5)
    max_grad_norm: float = doc("gradient-norm clip (0: off)", 0.5)
    normalize_advantage: bool = doc("normalize advantages per minibatch", True)
    target_kl: float = doc(
        "stop a rollout's epochs early once the approximate KL to the acting policy passes this (0: never)", 0.0
    )
    wn_head: bool = doc("weight-normalize the policy and value output layers too (with --norm wn)", False)
    init_rollouts: int = doc(
        "rollouts of the initial policy (not trained on) whose observations set weight norm's data-dependent "
        "init and batch norm's running statistics",
        2,
    )

    def validate(self) -> None:
        super().validate()
        self.require_at_least(1, "n_steps", "update_epochs", "num_minibatches", "init_rollouts")
        self.require_in("gamma", 0.0, 1.0, low_open=True)
        self.require_in("gae_lambda", 0.0, 1.0)
        self.require_in("learning_rate", 0.0, float("inf"), low_open=True)
        self.require_in("clip_coef", 0.0, float("inf"), low_open=True)
        self.require_at_least(0, "max_grad_norm", "target_kl", "ent_coef", "vf_coef")
        self.require_in("rms_alpha", 0.0, 0.999)
        self.require_at_least(0, "rms_eps")
        if self.optimizer not in OPTIMIZERS:
            raise CliError(f"unknown --optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        rollout = self.num_envs * self.n_steps
        if self.num_minibatches > rollout:
            raise CliError(
                f"--num-minibatches {self.num_minibatches} is more than a rollout's {rollout} steps "
                f"(--num-envs {self.num_envs} × --n-steps {self.n_steps}): give at most {rollout}"
            )


PPOConfig.FAMILY_DEFAULTS = {
    # CleanRL's settings as they are (the class defaults). Weight norm's directions start at the paper's
    # draw (--wn-init-norm 0): A2C's Atari 1.0 was measured for A2C's RMSprop on Pong, not for PPO's
    # Adam; PPO on Atari is not measured here yet (a 10M run needs a GPU; see docs/results.md).
    "atari": {},
    # rl-baselines3-zoo's CartPole-v1 PPO (hyperparams/ppo.yml): 8 envs × 32 steps, one minibatch of
    # 256 (its batch_size), 20 epochs, GAE λ 0.8, γ 0.98, no entropy bonus, learning rate 1e-3 and clip
    # 0.2 both decayed linearly to 0 ("lin_"), 100k steps; on SB3's network shape (separate tanh actor
    # and critic MLPs of 64-64, as A2C's classic defaults). Its value loss is not clipped (SB3's default).
    "classic": {
        "total_steps": 100_000,
        "num_envs": 8,
        "n_steps": 32,
        "num_minibatches": 1,
        "update_epochs": 20,
        "gamma": 0.98,
        "gae_lambda": 0.8,
        "ent_coef": 0.0,
        "learning_rate": 1e-3,
        "clip_coef": 0.2,
        "clip_decay": True,
        "clip_vloss": False,
        "activation": "tanh",
        "life_loss_terminal": False,
    },
    # MinAtar: purejaxrl's PPO MinAtar config (Lu et al., 2022, "Discovered Policy Optimisation",
    # the setting gymnax's MinAtar baselines use): 64 envs × 128 steps, 4 epochs of 8 minibatches,
    # Adam 5e-4 decayed, clip 0.2, entropy 0.01, unclipped rewards. Not tuned here: a first choice.
    "minatar": {
        "total_steps": 5_000_000,
        "num_envs": 64,
        "n_steps": 128,
        "num_minibatches": 8,
        "learning_rate": 5e-4,
        "clip_coef": 0.2,
    },
    # Catch (58 rollouts, 928 minibatch steps): the Atari settings on 16 envs of 32 steps, with a
    # learning rate of 1e-3 and clip 0.2. Measured (seeds 1-3, frames at 42×42, last 50 games): 1.00,
    # 0.96, 1.00 at 30k steps with the rate decayed to 0; without the decay 0.84, 0.64, 0.88 at 30k and
    # 0.72, 0.80, 0.88 at 50k (the score wanders where the decay lets it settle); decayed over 20k: 0.92,
    # 0.68, 0.84.
    "catch": {
        "total_steps": 30_000,
        "num_envs": 16,
        "n_steps": 32,
        "learning_rate": 1e-3,
        "clip_coef": 0.2,
        "life_loss_terminal": False,
    },
}


def ppo_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    old_logp: torch.Tensor,
    old_values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    valid: torch.Tensor,
    cfg: PPOConfig,
    clip: float,
    all_sum=None,
    world_size: int = 1,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate over a minibatch's valid steps (all inputs flat, ``[B]``; logits ``[B, A]``):

        r = π(a|s) / π_old(a|s),   L_π = −E[min(r·A, clip(r, 1 − ε, 1 + ε)·A)]
        L_V = ½ E[max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)]   (plain ½ E[(V − R)²] without clip_vloss)
        loss = L_π + vf_coef · L_V − ent_coef · E[H(π(·|s))]

    Several ranks (``all_sum`` sums over them): as :func:`wnrl.agents.a2c.a2c_loss`, the means (and
    the advantages' normalization) are over all ranks' valid steps of the minibatch, and the loss is
    ``world_size`` × this rank's share, so that DDP's average of the gradients is the whole
    minibatch's. Also returns the approximate KL (``E[(r − 1) − log r]``, Schulman's estimator) and
    the fraction of steps whose ratio was clipped; every part detached, and each this rank's share
    of the minibatch's mean (their sum over the ranks is the mean)."""
    total = all_sum if all_sum is not None else (lambda t: t)
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(1, actions.unsqueeze(1)).squeeze(1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    w = valid.float() / total(valid.float().sum()).clamp_min(1.0)
    if cfg.normalize_advantage:
        mean = total((advantages * w).sum())
        std = total(((advantages - mean).pow(2) * w).sum()).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    policy_loss = -(surrogate * w).sum()
    if cfg.clip_vloss:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        v_err = torch.max((values - returns).pow(2), (clipped - returns).pow(2))
    else:
        v_err = (values - returns).pow(2)
    value_loss = 0.5 * (v_err * w).sum()
    entropy_mean = (entropy * w).sum()
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy_mean
    if world_size > 1:
        loss = loss * world_size
    with torch.no_grad():
        approx_kl = (((ratio - 1) - log_ratio) * w).sum()
        clipfrac = (((ratio - 1).abs() > clip).float() * w).sum()
    parts = {
        "policy_loss": policy_loss.detach(),
        "value_loss": value_loss.detach(),
        "entropy": entropy_mean.detach(),
        "approx_kl": approx_kl,
        "clipfrac": clipfrac,
    }
    return loss, parts


def clip_schedule(cfg: PPOConfig) -> LinearSchedule:
    """The clip range: ``clip_coef``, decayed linearly to 0 over total_steps with ``clip_decay``."""
    return LinearSchedule.from_start(cfg.clip_coef, 0.0 if cfg.clip_decay else cfg.clip_coef, cfg.total_steps)


def ppo_update(
    cfg: PPOConfig,
    net: nn.Module,
    learner,
    optimizer: torch.optim.Optimizer,
    rollout: dict[str, torch.Tensor],
    clip: float,
    generator: torch.Generator,
    all_sum=None,
    world_size: int = 1,
    rank: int = 0,
    num_envs: int | None = None,
    after_step=None,
) -> tuple[dict[str, torch.Tensor], int]:
    """``update_epochs`` passes of :func:`minibatches` over a rollout, one clipped gradient step per
    minibatch. ``rollout``: flat ``[T·n]`` tensors ``obs``, ``actions``, ``logp``, ``values`` (the
    acting policy's), ``advantages``, ``returns``, ``valid``, and ``n_steps``; ``num_envs``: the
    whole run's (this rank's ``n`` times ``world_size``); ``after_step``: called after every optimizer
    step (:meth:`wnrl.layers.WNDirections.after_step`: ``--wn-project``'s projection). Returns the
    mean of each loss part over the steps made, and the number of steps (fewer than
    ``update_epochs · num_minibatches`` when ``target_kl`` stopped the epochs early; the KL is
    checked after each epoch, as CleanRL does)."""
    n_local = rollout["valid"].shape[0] // rollout["n_steps"]
    num_envs = num_envs or n_local * world_size
    sums: dict[str, torch.Tensor] = {}
    steps = 0
    keys = ("obs", "actions", "logp", "values", "advantages", "returns", "valid")
    for _ in range(cfg.update_epochs):
        for idx in minibatches(generator, rollout["n_steps"], num_envs, cfg.num_minibatches, rank, n_local):
            mb = {k: rollout[k][idx] for k in keys}
            logits, values = learner(mb["obs"])
            loss, parts = ppo_loss(
                logits, values, mb["actions"], mb["logp"], mb["values"], mb["advantages"], mb["returns"],
                mb["valid"], cfg, clip, all_sum, world_size,
            )  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            optimizer.step()
            if after_step is not None:
                after_step()
            for k, v in parts.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            steps += 1
        if cfg.target_kl > 0:
            kl = parts["approx_kl"] if all_sum is None else all_sum(parts["approx_kl"].clone())
            if float(kl) > cfg.target_kl:
                break
    return {k: v / steps for k, v in sums.items()}, steps


def train(cfg: PPOConfig, resume: Resume | None = None) -> dict[str, Any]:
    """Trains PPO as ``cfg`` says (continuing ``resume`` if given); returns a summary (run_dir,
    steps, updates, episodes, recent returns, whether a signal interrupted it)."""
    with Run.open(cfg, "ppo", resume) as run:
        net, learner, optimizer = open_actor_critic(cfg, run)  # A2C's network and optimizers
        run.start()
        return _loop(cfg, run, net, learner, optimizer)


def _loop(
    cfg: PPOConfig, run: Run, net: nn.Module, learner: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    env, device, logger, world = run.env, run.device, run.logger, run.world
    T, N = cfg.n_steps, env.num_envs  # N: this rank's envs (cfg.num_envs is the whole run's)
    rollout = Rollout(cfg, T, N, env.single_observation_space, device)
    # what PPO keeps beside the rollout: the acting policy's log-probabilities and values
    rollout_logp = torch.zeros((T, N), device=device)
    rollout_values = torch.zeros((T + 1, N), device=device)  # the last row: the bootstrap V(o_T)
    step = run.start_step
    updates = int(run.restored("updates", 0))
    obs, _ = env.reset(seed=cfg.seed + step + world.rank * N)
    obs_t = obs_to_device(obs, device)
    data_init = InitFromRollouts(net, cfg.init_rollouts, world)
    sums: dict[str, torch.Tensor] = {}
    n_sums = 0
    lr_factor = run.schedule("lr", lr_schedule)
    clip_at = run.schedule("clip", clip_schedule)
    lr = cfg.learning_rate * lr_factor(step)
    directions = WNDirections(net, project=cfg.wn_project)
    critic_layers = net.critic_layers()
    dead_trunk = DeadTrunkWatch(watched_layers(critic_layers)) if run.is_writer and critic_layers else None
    all_sum = world.all_sum if world.distributed else None
    forward = Compiled(net, cfg.compile, "the PPO forward pass")
    learner_forward = forward if learner is net else Compiled(learner, cfg.compile, "the PPO forward pass")
    last_values = last_returns = None

    def save() -> None:
        run.check_finite(step, net, *sums.values())  # never save a diverged network
        run.save_checkpoint(step, updates=updates, model=net.state_dict(), optimizer=optimizer.state_dict())

    while step < cfg.total_steps and not run.stop_requested:
        # 1. Roll out T steps of the current policy in N envs, keeping its log-probabilities and values.
        net.eval()  # batch-norm nets act with running statistics
        # held_weights: the parameters are fixed for the rollout, each WN layer builds its weight once
        with held_weights(net), torch.no_grad():
            for t in range(T):
                logits, values = forward(obs_t)
                logp_all = F.log_softmax(logits, dim=-1)
                actions = torch.multinomial(logp_all.exp(), 1).squeeze(1)
                rollout_logp[t] = logp_all.gather(1, actions.unsqueeze(1)).squeeze(1)
                rollout_values[t] = values
                next_obs, info = rollout.step(env, t, obs_t, actions)  # an autoreset step is marked invalid
                step += N * world.size
                obs_t = obs_to_device(next_obs, device)
                logger.episodes_from(info, step)
            rollout_values[T] = forward(obs_t)[1]
        net.train()

        if data_init.take(rollout.flat_obs()):  # the first rollouts set the init (InitFromRollouts)
            continue

        # 2. Advantages of the acting policy's values, then the epochs of minibatch steps.
        advantages, returns = gae_advantages(
            rollout.rewards, rollout_values, rollout.terminals, rollout.valid, cfg.gamma, cfg.gae_lambda
        )
        lr = cfg.learning_rate * lr_factor(step)
        set_learning_rate(optimizer, lr)
        clip = clip_at(step)
        batch = {
            "obs": rollout.flat_obs(),
            "actions": rollout.actions.flatten(),
            "logp": rollout_logp.flatten(),
            "values": rollout_values[:T].flatten(),
            "advantages": advantages.flatten(),
            "returns": returns.flatten(),
            "valid": rollout.valid.flatten(),
            "n_steps": T,
        }
        # The minibatches' draw: one generator per update, seeded by the run's seed and the update's
        # number, the same on every rank and after a resume.
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + updates)
        parts, _ = ppo_update(
            cfg, net, learner_forward, optimizer, batch, clip, generator, all_sum, world.size, world.rank,
            cfg.num_envs, directions.after_step,
        )  # fmt: skip
        for k, v in parts.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
        n_sums += 1
        mask = batch["valid"]
        last_values, last_returns = batch["values"][mask], batch["returns"][mask]
        updates += 1

        if run.log_due(step):
            sps = run.sps(step)
            logger.scalars({"charts/SPS": sps, "charts/learning_rate": lr, "charts/clip": clip}, step)
            if n_sums:  # one host sync per log, not per update
                run.check_finite(step, net, *sums.values())
                logger.scalars({f"losses/{k}": (world.all_sum(v) / n_sums).item() for k, v in sums.items()}, step)
                ev = explained_variance(last_values, last_returns)
                logger.scalar("losses/explained_variance", ev, step)
                sums.clear()
                n_sums = 0
                logger.wn_diagnostics(directions, step)
                dormant = logger.dormant(net, rollout.flat_obs(), step)
                if dead_trunk is not None and (line := dead_trunk.update(step, ev, dormant)):
                    print(line, file=sys.stderr)
            logger.progress(step, sps)
        if run.evaluate_due(step):
            run.evaluate(step, net)
        if run.checkpoint_due(step):
            run.checkpoint(save)
    run.checkpoint(save, final=True)
    return run.summary(step, updates=updates)
