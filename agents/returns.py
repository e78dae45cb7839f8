"""The agents' maths as pure functions of tensors, tested against hand-computed arrays.

Names follow the step they belong to: ``r_t`` the reward after acting at t, ``discount_t`` the
factor that multiplies the value of the next state (0 at a terminal).
"""

from __future__ import annotations

import torch


def q_learning_targets(
    returns: torch.Tensor,
    discounts: torch.Tensor,
    q_next_target: torch.Tensor,
    q_next_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bellman targets for a batch of (n-step) transitions, shape ``[B]``.

    Plain DQN:   y = R + γ^m · max_a Q_target(s', a)
    Double DQN:  y = R + γ^m · Q_target(s', argmax_a Q_online(s', a))     (van Hasselt et al., 2016)

    ``returns`` is R, ``discounts`` is γ^m (0 where the episode terminated), the Q tensors ``[B, A]``.
    """
    if q_next_target.dim() != 2 or q_next_target.shape[0] != returns.shape[0]:
        raise ValueError(f"q_next_target must be [B, A] with B={returns.shape[0]}, got {tuple(q_next_target.shape)}")
    if q_next_online is None:
        v_next = q_next_target.max(dim=1).values
    else:
        a_star = q_next_online.argmax(dim=1, keepdim=True)
        v_next = q_next_target.gather(1, a_star).squeeze(1)
    return returns + discounts * v_next


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    terminals: torch.Tensor,
    valid: torch.Tensor,
    gamma: float,
    lam: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimates over a rollout of ``T`` steps and ``N`` envs.

    ``rewards``, ``terminals``, ``valid``: ``[T, N]``; ``values``: ``[T+1, N]`` (the last row is
    V of the observation after the rollout, the bootstrap). ``valid[t]`` is False for a NextStep
    autoreset step (its observation was a final one and its action did nothing); the trace stops
    before it, bootstrapping from that final observation's value (truncation is not termination).

        δ_t = r_t + γ (1 − d_t) V(o_{t+1}) − V(o_t)
        A_t = δ_t + γ λ (1 − d_t) valid_{t+1} A_{t+1},      A_T = 0

    λ = 1 gives plain n-step advantages. Returns ``(advantages, returns = advantages + V(o_t))``;
    entries where ``valid`` is False are meaningless and must be masked from the loss.
    """
    T = rewards.shape[0]
    if values.shape[0] != T + 1:
        raise ValueError(f"values must have T+1 = {T + 1} rows (the last is the bootstrap), got {values.shape[0]}")
    not_done = (~terminals).to(values.dtype)
    cont = torch.ones_like(values[0])
    advantages = torch.zeros_like(rewards, dtype=values.dtype)
    next_adv = torch.zeros_like(values[0])
    for t in range(T - 1, -1, -1):
        delta = rewards[t] + gamma * not_done[t] * values[t + 1] - values[t]
        next_adv = delta + gamma * lam * not_done[t] * cont * next_adv
        advantages[t] = next_adv
        cont = valid[t].to(values.dtype)
    return advantages, advantages + values[:-1]


def q_lambda_returns(
    rewards: torch.Tensor,
    q_max: torch.Tensor,
    terminals: torch.Tensor,
    valid: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Peng's Q(λ) returns over a rollout of ``T`` steps and ``N`` envs: PQN's regression targets.

    ``rewards``, ``terminals``, ``valid``: ``[T, N]``; ``q_max``: ``[T+1, N]``, max_a Q(o_t, a) of
    each step's observation, the last row that of the observation after the rollout (the bootstrap).

        G_t = r_t + γ (1 − d_t) [λ G_{t+1} + (1 − λ) max_a Q(o_{t+1}, a)],      G_T = max_a Q(o_T, a)

    ``valid[t]`` is False for a NextStep autoreset step (o_t was a final observation and the action
    did nothing): the trace stops before it, G_t = r_t + γ (1 − d_t) max_a Q(o_{t+1}, a), so a
    truncated game bootstraps from its final observation (truncation is not termination), as
    :func:`wnrl.agents.returns.gae_advantages` does. λ = 0 gives one-step Q-learning targets. Entries
    where ``valid`` is False are meaningless and must be masked from the loss.
    """
    T = rewards.shape[0]
    if q_max.shape != (T + 1, *rewards.shape[1:]):
        want = [T + 1, *rewards.shape[1:]]
        raise ValueError(f"q_max must be [T+1, N] = {want} (the last row: the bootstrap), got {list(q_max.shape)}")
    not_done = (~terminals).to(q_max.dtype)
    returns = torch.empty_like(q_max[:-1])
    g = q_max[T]  # G_T: the trace's end bootstraps fully from max Q
    cont = torch.ones_like(q_max[0])  # valid_{t+1}: does the trace go on through o_{t+1}?
    for t in range(T - 1, -1, -1):
        # λ G_{t+1} + (1 − λ) q_{t+1}, or q_{t+1} alone where step t+1 only reset its env
        next_value = q_max[t + 1] + lam * cont * (g - q_max[t + 1])
        g = rewards[t] + gamma * not_done[t] * next_value
        returns[t] = g
        cont = valid[t].to(q_max.dtype)
    return returns


def minibatches(
    generator: torch.Generator, n_steps: int, num_envs: int, num_minibatches: int, rank: int = 0, local_envs: int = 0
) -> list[torch.Tensor]:
    """One pass's minibatches as indices into this rank's flat rollout (``[T·n]``, row-major over
    (step, env)).

    The minibatches are drawn on the whole run's rollout (``T × num_envs``, every rank's envs side by
    side, rank r holding envs ``r·n ... r·n + n − 1`` with ``n = local_envs``): one permutation from
    ``generator`` (the same on every rank), cut into ``num_minibatches`` near-equal parts, and each
    rank keeps the part of each that falls in its envs. So two ranks make the updates one process
    over all envs makes, step for step; a rank's share of a minibatch varies around 1/ranks."""
    n = local_envs or num_envs
    perm = torch.randperm(n_steps * num_envs, generator=generator)
    out = []
    for part in torch.tensor_split(perm, num_minibatches):
        t, env = part // num_envs, part % num_envs
        mine = (env // n) == rank
        out.append(t[mine] * n + (env[mine] - rank * n))
    return out
