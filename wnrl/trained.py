"""A trained agent from a checkpoint, for use from Python: ``wnrl.load``.

    import wnrl
    agent = wnrl.load("runs/Breakout__dqn__wn__1")      # a run directory (its newest checkpoint) or a .pt file
    env = agent.make_env(num_envs=4, seed=0)             # the env it was trained on, same preprocessing
    obs, _ = env.reset()
    actions = agent.predict(obs, deterministic=True)     # numpy in, numpy out

``predict`` takes observations in the env's own format (uint8 frames ``(4, 84, 84)`` for Atari,
float vectors for classic control), one observation or a batch, and returns integer actions: a
numpy array for a batch, a numpy integer for one observation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wnrl.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, load_newest
from wnrl.run import resolve_device

# Q-learners act by argmax Q (evaluated ε-greedily); policy agents by their policy (evaluated by sampling it).
Q_AGENTS = ("dqn", "pqn")
POLICY_AGENTS = ("a2c", "ppo")
AGENTS = Q_AGENTS + POLICY_AGENTS


def checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file, or the newest one of a run directory."""
    p = Path(path)
    if p.is_dir():
        found = list_checkpoints(p)
        if not found:
            raise CheckpointError(
                f"{p}: no checkpoint in this run directory (a run saves one every --checkpoint-every steps)"
            )
        return found[-1]
    if not p.exists():
        raise CheckpointError(f"{p}: no such run directory or checkpoint file")
    return p


def build_network(agent: str, cfg: dict[str, Any], obs_shape: tuple[int, ...], n_actions: int) -> torch.nn.Module:
    """The network an ``agent`` run with config ``cfg`` trains, freshly built (weights not loaded)."""
    from wnrl.agents.a2c import ActorCritic
    from wnrl.agents.dqn import QNetwork

    hidden = tuple(cfg.get("hidden_sizes", (64, 64)))
    act = cfg.get("activation", "relu")
    wn_head = cfg.get("wn_head", False)
    if agent in Q_AGENTS:
        return QNetwork(obs_shape, n_actions, cfg["norm"], cfg.get("dueling", False), hidden, wn_head, act)
    if agent in POLICY_AGENTS:
        return ActorCritic(obs_shape, n_actions, cfg["norm"], hidden, wn_head, act)
    raise CheckpointError(f"checkpoint of an unknown agent {agent!r}: this wnrl has {', '.join(AGENTS)}")


class TrainedAgent:
    """A trained network in eval mode, with what it needs to act: its env id, its observation shape
    and number of actions.

    ``predict(obs, deterministic=True)`` takes the greedy action (DQN and PQN: argmax Q; A2C and PPO:
    the most likely action). ``deterministic=False`` is each agent's evaluation protocol: the
    Q-learners act ε-greedily with ``epsilon`` (0.05, the Nature-DQN evaluation), the policy agents
    sample their policy. Random draws come from ``seed``.
    """

    def __init__(
        self,
        state: dict[str, Any],
        device: str | torch.device = "auto",
        seed: int | None = None,
        checkpoint: Path | None = None,
    ):
        self.checkpoint = checkpoint
        where = f"{checkpoint}: " if checkpoint is not None else ""
        missing = [k for k in ("agent", "step", "config", "model") if k not in state]
        if missing or not isinstance(state["config"], dict) or not isinstance(state["model"], dict):
            what = f"no {'/'.join(missing)} field" if missing else "its config or model is not a dict"
            raise CheckpointError(f"{where}not a wnrl checkpoint ({what})")
        self.agent: str = state["agent"]
        self.q_learner = self.agent in Q_AGENTS
        self.config: dict[str, Any] = dict(state["config"])
        self.env_id: str = state.get("env") or self.config["env"]
        self.step: int = int(state["step"])
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.epsilon = 0.05
        self._rng = np.random.default_rng(seed)
        if self.agent not in AGENTS:
            raise CheckpointError(f"checkpoint of an unknown agent {self.agent!r}: this wnrl has {', '.join(AGENTS)}")
        self._check_env(where)
        try:
            probe = self.make_env(num_envs=1, seed=0)
        except ValueError as e:  # the env's spaces changed since the run (a user env edited), or similar
            raise CheckpointError(f"{where}its env {self.env_id!r} cannot be made here: {e}") from None
        try:
            self.obs_shape: tuple[int, ...] = tuple(probe.single_observation_space.shape)
            self.obs_dtype = probe.single_observation_space.dtype
            self.n_actions: int = int(probe.single_action_space.n)
        finally:
            probe.close()
        net = build_network(self.agent, self.config, self.obs_shape, self.n_actions)
        try:
            net.load_state_dict(state["model"])
        except RuntimeError as e:
            detail = str(e).splitlines()[-1].strip()[:160]
            raise CheckpointError(f"the checkpoint's weights do not match its config ({detail})") from None
        self.net = net.to(self.device).eval().requires_grad_(False)

    def _check_env(self, where: str) -> None:
        """A CheckpointError saying how to make the run's env here if this process cannot."""
        from wnrl import envs

        try:
            envs.resolve(self.env_id)
        except ValueError as e:
            if ":" in self.env_id:  # "module:EnvId": the module is not importable here
                raise CheckpointError(f"{where}its env cannot be made here: {e}") from None
            raise CheckpointError(
                f"{where}its env {self.env_id!r} is not registered with gymnasium in this process (it was "
                "registered from Python when the run trained): import the module that registers it before "
                f"wnrl.load(), or train with --env MODULE:{self.env_id} so that evaluate imports MODULE itself"
            ) from None

    def use_generator(self, rng: np.random.Generator) -> None:
        """Draws (a Q-learner's random actions, a policy's samples) from ``rng`` from now on."""
        self._rng = rng

    def __repr__(self) -> str:
        return (
            f"TrainedAgent({self.agent} on {self.env_id}, norm={self.config.get('norm')}, step={self.step:,}, "
            f"device={self.device})"
        )

    def make_env(self, num_envs: int = 1, seed: int | None = None):
        """A vector env like the one this agent trained on (same game, preprocessing and sticky actions)."""
        from wnrl.run import make_env

        return make_env(self.env_id, num_envs, seed, self.config.get("sticky_actions", 0.0))

    @torch.no_grad()
    def predict(self, obs: Any, deterministic: bool = True) -> np.ndarray | np.integer:
        x = np.asarray(obs)
        single = x.shape == self.obs_shape
        if not single and x.shape[1:] != self.obs_shape:
            raise ValueError(
                f"observation of shape {x.shape}: this agent ({self.agent} on {self.env_id}) takes one observation "
                f"of shape {self.obs_shape} or a batch of shape (n, {', '.join(map(str, self.obs_shape))})"
            )
        if single:
            x = x[None]
        if x.dtype != self.obs_dtype:
            if np.issubdtype(self.obs_dtype, np.integer):
                info = np.iinfo(self.obs_dtype)
                # Never narrowed unchecked: floats are refused (frames scaled to [0, 1] would become blank
                # 0/1 bytes, and Catch's scaled 0/1 frames cannot be told from raw ones), other integers
                # only in range.
                if not np.issubdtype(x.dtype, np.integer) or x.min() < info.min or x.max() > info.max:
                    raise ValueError(
                        f"observation of dtype {x.dtype}: this agent takes the env's raw {self.obs_dtype} frames "
                        f"(integers {info.min}-{info.max}), not scaled ones; pass the frames its env returns"
                    )
            x = x.astype(self.obs_dtype)
        actions = self._act(torch.from_numpy(np.ascontiguousarray(x)).to(self.device), deterministic)
        return actions[0] if single else actions

    def _act(self, obs: torch.Tensor, deterministic: bool) -> np.ndarray:
        if self.q_learner:
            greedy = self.net(obs).argmax(1).cpu().numpy()
            if deterministic or self.epsilon == 0:
                return greedy
            explore = self._rng.random(len(greedy)) < self.epsilon
            return np.where(explore, self._rng.integers(0, self.n_actions, len(greedy)), greedy)
        logits, _ = self.net(obs)
        logits = logits.float().cpu().numpy()
        if deterministic:
            return logits.argmax(1)
        return (logits + self._rng.gumbel(size=logits.shape)).argmax(1)  # a draw from softmax(logits)


def load(path: str | Path, device: str = "auto", seed: int | None = None) -> TrainedAgent:
    """The agent a run directory (its newest checkpoint) or a checkpoint file holds, ready to act.

    Raises ``CheckpointError`` (a ``ValueError``) with one line saying what is wrong for a file
    that is not a wnrl checkpoint, is corrupt, was written by a newer wnrl or by an unknown agent.
    """
    file = checkpoint_file(path)
    if Path(path).is_dir():  # a newest checkpoint cut mid-write: the one before, as --resume does
        file, state = load_newest(list_checkpoints(Path(path)))
        return TrainedAgent(state, device=device, seed=seed, checkpoint=file)
    return TrainedAgent(load_checkpoint(file), device=device, seed=seed, checkpoint=file)
