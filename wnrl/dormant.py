"""Dormant units (Sokar et al., 2023) and the dead-trunk warning.

**The τ-dormant ratio.** Sokar, Agarwal, Castro and Evci, "The Dormant Neuron Phenomenon in Deep
Reinforcement Learning" (ICML 2023), Definition 3.1: for a layer of ``H`` units with post-activation
outputs ``h_i`` on a batch ``D``, the score of unit ``i`` is

    s_i = E_{x∈D} |h_i(x)| / ( (1/H) Σ_k E_{x∈D} |h_k(x)| )

(its mean absolute activation over the layer's mean), and unit ``i`` is τ-dormant if ``s_i ≤ τ``. A
convolution's unit is a channel: the mean runs over the batch and every spatial position (the
paper's convention, and its code's: ``google/dopamine``, ``dopamine/labs/redo/weight_recyclers.py``,
``estimate_neuron_score``). Two thresholds are logged, as ``dormant/<layer>/tau_0`` and
``dormant/<layer>/tau_0.025`` (fractions of the layer's units, in [0, 1]):

* τ = 0: units never active on the batch, exactly the dead ReLUs (``s_i = 0`` only when
  ``h_i(x) = 0`` for every ``x``). A tanh unit is essentially never exactly 0, so under tanh this
  stays at 0 and τ = 0.025 is the one to read. It is also the official code's default threshold.
* τ = 0.025: units whose mean activity is at most 2.5% of the layer's average: the paper's
  ReDo threshold in its default DQN setting (its hyper-parameter table: 0.025 for default DQN, 0.1
  for the other settings; the official code's default, unset in its configs, is 0). Of the
  paper's two values the lower was chosen, so that the tag counts units that are nearly silent,
  not merely quiet; ``dormant_fractions(..., taus=(0.1,))`` gives the other.

Which layers: every activation module of the net (``nn.ReLU``, ``nn.Tanh``: the trunk's conv
blocks and dense layers, A2C's separate critic MLP, a dueling head's two hidden layers), named
after the dense or conv layer it follows, so ``dormant/trunk.fc.0/...`` sits beside
``wn/trunk.fc.0/...`` (or ``directions/trunk.fc.0/...``). Output layers have no activation and are
not counted (as in the paper's figures).

**What the net is run on, and in which mode.** One extra forward, without gradients, at each log
(nothing per update), on the batch the learner already holds: A2C's last rollout (``T·N``
observations: 80 frames on Atari), DQN's last replay batch (32 on Atari, 64 on CartPole), so no
random number is drawn and the run's course is the same with or without it. The forward runs in
**eval mode**, as both agents act (``net.eval()`` before a rollout in A2C, :func:`wnrl.agents.dqn.act`):
batch-norm layers (``--norm batch``, ``wn_mobn``) normalize with their running statistics, so the
diagnostic sees the activations of the network that plays, and their running statistics are not
touched (eval mode never updates them; :class:`wnrl.layers.frozen_batch_statistics` would keep them
too, but in training mode, with the batch's own statistics: the learner's view, not the actor's).
Other norms (``wn``, ``none``, ``layer``) compute the same in both modes. Cost: that forward plus one
reduction per activation, once per log: measured ~43 ms for A2C's Nature net on 80 frames (the
forward alone ~35 ms; one CPU thread, on a 2-core machine busy with two runs), against ~17 s of
training between two Atari logs (10k steps at ~600 steps/s).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from wnrl.layers import _WeightNormBase

__all__ = [
    "DORMANT_TAUS",
    "activation_layers",
    "dormant_fractions",
    "dormant_tag",
    "dead_trunk_warning",
    "DeadTrunkWatch",
    "DEAD_TRUNK_EV",
    "DEAD_TRUNK_STEPS",
    "DEAD_TRUNK_MIN_LOGS",
    "DEAD_TRUNK_DEAD_FRACTION",
    "watched_layers",
]

# τ = 0: dead (never active on the batch); τ = 0.025: Sokar et al.'s ReDo threshold for default DQN.
DORMANT_TAUS: tuple[float, ...] = (0.0, 0.025)
# The activations whose outputs are scored (those wnrl's nets use: wnrl.nets.ACTIVATIONS).
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.Tanh)

# The dead-trunk warning (A2C): the critic's explained variance below DEAD_TRUNK_EV at every log of a
# stretch of at least DEAD_TRUNK_STEPS agent steps holding at least DEAD_TRUNK_MIN_LOGS logs, while at
# least DEAD_TRUNK_DEAD_FRACTION of the units of a watched layer are dead (τ = 0). The watched layers are
# the hidden layers on the critic's path but its first (``watched_layers``): on Atari frames the first
# convolution has most channels dead in healthy runs too (0.84–0.94 on A2C Pong runs that learned), so
# it tells nothing. All the others are watched, so that a trunk whose last convolution died is caught
# whatever its dense layer shows (a dead convolution leaves the dense layer's units constant, not all
# dead). Measured on A2C Pong, `--norm none --learning-rate 0.004`, 2M budget (issue 23): seed 3's
# critic explained nothing for 930k steps (|EV| ≤ 0.06; it came back after) and its second and third convolutions
# were 77–100% dead from 150k steps on; seed 1 explained ~0 for 160k steps (a critic slow to start,
# then 0.6–0.9) with at most 65% of any layer but the first dead; on seed 3 layer norm and
# --wn-project runs stayed under 62%. DEAD_TRUNK_DEAD_FRACTION 0.75 parts them (at 0.5 with the first
# convolution watched, the line fired on seed 1 at 110k: a false alarm). 100k steps is 10 logs at the
# Atari --log-every (10k): long enough that one bad stretch of rollouts is not flagged, early enough to
# stop a 2M-step run.
DEAD_TRUNK_EV = 0.05
DEAD_TRUNK_STEPS = 100_000
DEAD_TRUNK_MIN_LOGS = 10
DEAD_TRUNK_DEAD_FRACTION = 0.75


def watched_layers(critic_layers: Sequence[str]) -> list[str]:
    """The layers the dead-trunk warning judges: the critic's path but its first layer (when it has more)."""
    return list(critic_layers[1:]) if len(critic_layers) > 1 else list(critic_layers)


def _is_layer(m: nn.Module) -> bool:
    return isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, _WeightNormBase))


def _is_dense(m: nn.Module | None) -> bool:
    return isinstance(m, nn.Linear) or (isinstance(m, _WeightNormBase) and m.v.dim() == 2)


def activation_layers(module: nn.Module) -> list[tuple[str, nn.Module, nn.Module | None]]:
    """``(name, activation, layer)`` for every activation module of ``module`` (``nn.ReLU``,
    ``nn.Tanh``), in forward order; ``name`` is the qualified name of the dense or conv ``layer``
    registered last before it (the layer whose units it activates; a norm layer may sit between),
    or the activation's own name when there is none."""
    out = []
    last_name, last_layer = None, None
    for name, m in module.named_modules():
        if _is_layer(m):
            last_name, last_layer = name, m
        elif isinstance(m, ACTIVATION_TYPES):
            out.append((last_name or name, m, last_layer))
            last_name, last_layer = None, None  # one activation per layer
    return out


def dormant_tag(layer: str, tau: float) -> str:
    """The TensorBoard tag of a layer's fraction of τ-dormant units: ``dormant/<layer>/tau_<τ>``."""
    return f"dormant/{layer}/tau_{tau:g}"


def _scores(h: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """``s_i``: each unit's mean |activation| over the layer's mean (0 for every unit of a silent layer)."""
    a = h.detach().abs().float()
    unit_dim = unit_dim % a.dim()
    mean_abs = a.mean(dim=[d for d in range(a.dim()) if d != unit_dim]) if a.dim() > 1 else a
    avg = mean_abs.mean()
    return mean_abs / avg if avg > 0 else torch.zeros_like(mean_abs)


@torch.no_grad()
def dormant_fractions(module: nn.Module, x: torch.Tensor, taus: Sequence[float] = DORMANT_TAUS) -> dict[str, float]:
    """The fraction of τ-dormant units of every activation of ``module`` on the batch ``x``, for each
    τ in ``taus``: ``{dormant_tag(layer, τ): fraction}`` (see the module's docstring).

    One forward of ``x`` without gradients in eval mode (batch norm with its running statistics, as
    the agents act; none of them is changed), with a forward hook on each activation module that
    keeps only the per-unit mean |output|; the module's training flag is restored after. Units are
    the last dimension after a dense layer and dimension 1 (channels) after a convolution; an
    activation applied more than once in a forward is scored on its first use."""
    layers = activation_layers(module)
    if not layers:
        return {}
    scores: dict[int, torch.Tensor] = {}
    handles = []
    for i, (_, act, layer) in enumerate(layers):
        dim = -1 if _is_dense(layer) else 1

        def hook(mod, args, out, i=i, unit_dim=dim):
            if i not in scores:
                scores[i] = _scores(out, unit_dim)

        handles.append(act.register_forward_hook(hook))
    was_training = module.training
    module.eval()
    try:
        module(x)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    taus = list(taus)
    rows, names = [], []
    for i, (name, _, _) in enumerate(layers):
        if i in scores:
            s = scores[i]
            rows.append(torch.stack([(s <= tau).float().mean() for tau in taus]))
            names.append(name)
    values = torch.stack(rows).tolist() if rows else []  # one host sync for all of them
    return {dormant_tag(name, tau): v for name, row in zip(names, values) for tau, v in zip(taus, row)}


def dead_trunk_warning(
    history: Sequence[tuple[int, float, float]],
    layer: str,
    ev_below: float = DEAD_TRUNK_EV,
    steps: int = DEAD_TRUNK_STEPS,
    min_logs: int = DEAD_TRUNK_MIN_LOGS,
    dead_fraction: float = DEAD_TRUNK_DEAD_FRACTION,
) -> str | None:
    """The dead-trunk decision, a pure function of the logs so far: ``history`` holds one
    ``(step, explained variance, dead fraction)`` per log, oldest first, the dead fraction being
    ``layer``'s τ = 0 fraction at that log. Returns the warning's line when the logs from some step
    ``s0`` to the last one (at ``step``) all have an explained variance below ``ev_below`` (NaN,
    constant returns, counts as below: nothing explained), ``step − s0 ≥ steps``, there are at least
    ``min_logs`` of them, and the last log's dead fraction is at least ``dead_fraction``; else None."""
    if not history:
        return None
    step, _, dead = history[-1]
    start, n = None, 0
    for s, ev, _ in reversed(history):
        if ev >= ev_below:  # False for NaN
            break
        start, n = s, n + 1
    if start is None or n < min_logs or step - start < steps or not dead >= dead_fraction:
        return None
    return (
        f"warning: step {step:,}: the critic's explained variance has stayed below {ev_below:g} since step "
        f"{start:,} and {dead:.0%} of {layer}'s units are dead (never active on the last rollout; dormant/ in "
        'TensorBoard): the trunk may have collapsed, see README "Dead trunk"'
    )


class DeadTrunkWatch:
    """Feeds :func:`dead_trunk_warning` one log at a time and says its line once (per process: a
    resumed run watches afresh). ``layers``: the hidden layers on the critic's path (their
    ``dormant/`` names); at each log the one with the largest dead (τ = 0) fraction is the one
    judged and named. It keeps only the logs of the current stretch of low explained variance (a
    log at or above the threshold ends it). The thresholds are the module's constants as they are
    when it is made, unless given."""

    def __init__(
        self,
        layers: Sequence[str],
        ev_below: float | None = None,
        steps: int | None = None,
        min_logs: int | None = None,
        dead_fraction: float | None = None,
    ):
        if not layers:
            raise ValueError("DeadTrunkWatch needs at least one layer to watch")
        self.layers = list(layers)
        self.thresholds = {
            "ev_below": DEAD_TRUNK_EV if ev_below is None else ev_below,
            "steps": DEAD_TRUNK_STEPS if steps is None else steps,
            "min_logs": DEAD_TRUNK_MIN_LOGS if min_logs is None else min_logs,
            "dead_fraction": DEAD_TRUNK_DEAD_FRACTION if dead_fraction is None else dead_fraction,
        }
        self.history: list[tuple[int, float, float]] = []
        self.warned = False

    def deadest(self, dormant: dict[str, float]) -> tuple[float, str]:
        """The largest τ = 0 fraction among the watched layers in ``dormant`` (NaN when none is there)
        and its layer (the later one on a tie)."""
        found = [
            (dormant[dormant_tag(n, 0.0)], i, n) for i, n in enumerate(self.layers) if dormant_tag(n, 0.0) in dormant
        ]
        if not found:
            return float("nan"), self.layers[-1]
        dead, _, name = max(found)
        return dead, name

    def update(self, step: int, explained_variance: float, dormant: dict[str, float]) -> str | None:
        """One log: the critic's explained variance and :func:`dormant_fractions`' tags. Returns the
        warning's line the first time the decision says so, else None."""
        if self.warned:
            return None
        if explained_variance >= self.thresholds["ev_below"]:
            self.history.clear()  # the stretch ends here (this log is kept: the decision stops at it)
        dead, layer = self.deadest(dormant)
        self.history.append((step, explained_variance, dead))
        line = dead_trunk_warning(self.history, layer, **self.thresholds)
        if line is not None:
            self.warned = True
            self.history.clear()
        return line
