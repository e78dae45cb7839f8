"""A replay buffer that stores each frame once and rebuilds frame stacks by index.

``num_envs`` environments write interleaved streams; each stream has its own circular region of
``capacity // num_envs`` entries. Entry ``t`` of a stream holds

    frame_t   the newest frame of observation o_t (the whole observation for vector envs)
    a_t, r_t  the action taken in o_t and the (clipped) reward it earned
    d_t       the learning terminal after a_t (game over, or a lost life)
    first_t   o_t is the first observation of an episode
    valid_t   a_t really acted (False for a NextStep autoreset step: o_t was a final observation)

The stack of ``o_t`` is ``frame_{t-S+1..t}`` with frames before the episode's first zeroed, as
the envs do after a reset. A sampled transition ``t`` returns the n-step return
``R = Σ_{k<m} γ^k r_{t+k}`` and the discount ``γ^m`` (0 if the episode terminated inside the
window) to bootstrap from ``o_{t+m}``; the window ends early at a terminal or at a final
observation (truncation). Atari frames cost 84·84 = 7,056 bytes per transition, 7.1 GB per million.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np
import torch

_STORED = ("frames", "actions", "rewards", "terminals", "firsts", "valids")


class ReplayBatch(NamedTuple):
    obs: torch.Tensor  # o_t, as the env gives it (uint8 frames or float vectors)
    actions: torch.Tensor  # a_t, int64
    returns: torch.Tensor  # R_t = Σ_k γ^k r_{t+k}, float32
    discounts: torch.Tensor  # γ^m if bootstrapping from next_obs, else 0; float32
    next_obs: torch.Tensor  # o_{t+m}


class BufferTooLarge(ValueError):
    """The buffer would not fit in the memory that is free."""


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a new allocation on ``device`` (None when the platform does not say)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def transition_bytes(obs_shape: tuple[int, ...], obs_dtype: torch.dtype, frame_stack: int | None = None) -> int:
    """Bytes one stored transition takes: its newest frame (the whole observation for vectors),
    action, reward and three flags."""
    if frame_stack is None:
        frame_stack = obs_shape[0] if len(obs_shape) == 3 else 1
    frame = obs_shape[1:] if frame_stack > 1 else obs_shape
    return int(np.prod(frame)) * torch.empty((), dtype=obs_dtype).element_size() + 8 + 4 + 3


class ReplayBuffer:
    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        *,
        gamma: float = 0.99,
        n_step: int = 1,
        frame_stack: int | None = None,
        device: torch.device | str = "cpu",
        storage_device: torch.device | str = "cpu",
        seed: int | None = None,
        memory_margin: float = 0.9,
        sync_free: bool | None = None,
    ):
        """``frame_stack`` defaults to ``obs_shape[0]`` for ``(S, H, W)`` frames and 1 otherwise.
        Raises :class:`BufferTooLarge` before allocating if the buffer needs more than
        ``memory_margin`` of the free memory of ``storage_device``."""
        if frame_stack is None:
            frame_stack = obs_shape[0] if len(obs_shape) == 3 else 1
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.num_envs = num_envs
        self.per_env = capacity // num_envs
        # Each stream keeps S-1 frames of history and n steps of look-ahead that cannot be sampled.
        if self.per_env < frame_stack + n_step + 1:
            raise ValueError(
                f"buffer_size {capacity} is too small for {num_envs} envs: each env needs at least "
                f"{frame_stack + n_step + 1} entries; use --buffer-size {num_envs * (frame_stack + n_step + 1)} or more"
            )
        self.capacity = self.per_env * num_envs
        self.obs_shape = tuple(obs_shape)
        self.frame_stack = frame_stack
        self.frame_shape = tuple(obs_shape[1:]) if frame_stack > 1 else tuple(obs_shape)
        self.gamma = gamma
        self.n_step = n_step
        self.device = torch.device(device)
        self.storage_device = torch.device(storage_device)
        # the n-step window's offsets and discounts γ^0..γ^n (float32, each the previous one times γ)
        self._window = torch.arange(n_step, device=self.storage_device)
        powers = [torch.ones((), dtype=torch.float32)]
        for _ in range(n_step):
            powers.append(powers[-1] * gamma)
        self._powers = torch.stack(powers).to(self.storage_device)

        self.bytes_per_transition = transition_bytes(self.obs_shape, obs_dtype, frame_stack)
        need = self.bytes_per_transition * self.capacity
        free = available_memory(self.storage_device)
        if free is not None and need > memory_margin * free:
            raise BufferTooLarge(
                f"a replay buffer of {self.capacity:,} transitions needs {need / 2**30:.1f} GiB but "
                f"{free / 2**30:.1f} GiB is free on {self.storage_device}; use a smaller --buffer-size "
                f"(at most about {int(memory_margin * free / self.bytes_per_transition):,})"
            )
        E, C, dev = num_envs, self.per_env, self.storage_device
        self.frames = torch.empty((E, C, *self.frame_shape), dtype=obs_dtype, device=dev)
        self.actions = torch.zeros((E, C), dtype=torch.int64, device=dev)
        self.rewards = torch.zeros((E, C), dtype=torch.float32, device=dev)
        self.terminals = torch.zeros((E, C), dtype=torch.bool, device=dev)
        self.firsts = torch.zeros((E, C), dtype=torch.bool, device=dev)
        self.valids = torch.zeros((E, C), dtype=torch.bool, device=dev)
        self.pos = 0  # next slot to write (the same for every stream: they advance together)
        self.added = 0  # entries written per stream so far
        self._gen = torch.Generator(device=dev)
        self._gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, ()).item()))
        # Sampling without host syncs: the default where the buffer lives on a GPU.
        self.sync_free = dev.type == "cuda" if sync_free is None else sync_free
        self._short = torch.zeros((), dtype=torch.int64, device=dev)
        self._n_sync_free = 0

    def __len__(self) -> int:
        """Transitions stored (all streams)."""
        return min(self.added, self.per_env) * self.num_envs

    def add(self, obs, actions, rewards, terminals, valid, first) -> None:
        """Writes one entry per env for observation ``obs`` (shape ``(num_envs, *obs_shape)``) and
        what followed it. Arrays may be numpy or torch."""
        p, dev = self.pos, self.storage_device
        newest = obs[:, -1] if self.frame_stack > 1 else obs
        self.frames[:, p] = torch.as_tensor(newest).to(dev, non_blocking=True)
        self.actions[:, p] = torch.as_tensor(actions).to(dev)
        self.rewards[:, p] = torch.as_tensor(rewards, dtype=torch.float32).to(dev)
        self.terminals[:, p] = torch.as_tensor(terminals).to(dev)
        self.valids[:, p] = torch.as_tensor(valid).to(dev)
        self.firsts[:, p] = torch.as_tensor(first).to(dev)
        self.pos = (p + 1) % self.per_env
        self.added += 1

    def mark_stream_break(self) -> None:
        """The newest entry of every stream loses its successor (a resumed run resets its envs):
        it can no longer start a transition, and n-step windows stop before it."""
        if self.added:
            self.valids[:, (self.pos - 1) % self.per_env] = False

    def state_dict(self) -> dict[str, Any]:
        """What is stored, compactly: frames once each, only the slots written so far."""
        n = min(self.added, self.per_env)
        return {
            "pos": self.pos,
            "added": self.added,
            "shape": [self.num_envs, self.per_env, *self.frame_shape],
            # the sampling generator (and the GPU's count of short draws): a resumed run draws what the
            # uninterrupted one would have
            "sampling": {
                "device": self.storage_device.type,
                "generator": self._gen.get_state(),
                "n_sync_free": self._n_sync_free,
                "short": int(self._short),
            },
            **{k: getattr(self, k)[:, :n].cpu() for k in _STORED},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["shape"]) != [self.num_envs, self.per_env, *self.frame_shape]:
            raise ValueError(
                f"replay of shape {state['shape']} does not fit this buffer ({self.num_envs} envs × "
                f"{self.per_env} × {list(self.frame_shape)})"
            )
        n = state["frames"].shape[1]
        for k in _STORED:
            getattr(self, k)[:, :n] = state[k].to(self.storage_device)
        self.pos, self.added = int(state["pos"]), int(state["added"])
        sampling = state.get("sampling")  # replays saved before it was kept draw anew from the seed
        if sampling is not None and sampling["device"] == self.storage_device.type:
            self._gen.set_state(sampling["generator"])
            self._n_sync_free = int(sampling["n_sync_free"])
            self._short.fill_(int(sampling["short"]))

    def num_sampleable(self) -> int:
        """Entries per stream that can start a transition (enough history behind, n steps ahead)."""
        stored = min(self.added, self.per_env)
        return max(0, stored - (self.frame_stack - 1) - self.n_step)

    def _stack(self, env: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """Observations at (env, slot): ``S`` frames ending at ``slot``, zeroed before the episode start."""
        S, C = self.frame_stack, self.per_env
        if S == 1:
            return self.frames[env, slot]
        back = torch.arange(S - 1, -1, -1, device=slot.device)  # S-1, ..., 0
        slots = (slot[:, None] - back[None, :]) % C  # (B, S), oldest first
        frames = self.frames[env[:, None], slots]  # (B, S, H, W)
        # Frame t-k is blank if an episode started at any of t-k+1..t (k = 1..S-1).
        starts = self.firsts[env[:, None], slots[:, 1:]]  # (B, S-1) for t-S+2..t
        blank = torch.flip(torch.cumsum(torch.flip(starts.int(), [1]), 1), [1]) > 0  # (B, S-1)
        return frames * ~torch.cat([blank, torch.zeros_like(blank[:, :1])], 1)[:, :, None, None]

    def sample(self, batch_size: int) -> ReplayBatch:
        """A uniform batch of valid transitions (with replacement), on ``device``.

        Candidates are drawn uniformly and the invalid ones (one per finished game) rejected: a
        stable sort keeps the first ``batch_size`` valid candidates in draw order. A draw with too
        few valid ones (it needs over 80% of them invalid) is drawn again; with ``sync_free`` (a
        buffer on a GPU) it is only counted on the device and checked every 256 samples, so
        sampling never waits for the GPU."""
        n_ok = self.num_sampleable()
        if n_ok <= 0:
            raise RuntimeError("the replay buffer holds no complete transition yet")
        dev, C, m = self.storage_device, self.per_env, 5 * batch_size + 16
        first = (self.pos - min(self.added, C) + self.frame_stack - 1) % C  # oldest slot with a full stack
        for _ in range(100):
            env = torch.randint(0, self.num_envs, (m,), generator=self._gen, device=dev)
            slot = (first + torch.randint(0, n_ok, (m,), generator=self._gen, device=dev)) % C
            ok = self.valids[env, slot]
            keep = torch.argsort((~ok).to(torch.uint8), stable=True)[:batch_size]
            if self.sync_free:
                self._short += ok.sum() < batch_size
                self._n_sync_free += 1
                if self._n_sync_free % 256 == 0 and int(self._short):
                    break
                return self._gather(env[keep], slot[keep])
            if int(ok.sum()) >= batch_size:
                return self._gather(env[keep], slot[keep])
        raise RuntimeError(
            "the replay buffer holds too few valid transitions to sample from (nearly every stored step ends "
            "an episode)"
        )

    def _gather(self, env: torch.Tensor, slot: torch.Tensor) -> ReplayBatch:
        C, n = self.per_env, self.n_step
        # n-step window: R = Σ_{k<m} γ^k r_{t+k}; it stops after a terminal (no bootstrap) or before
        # an entry that did not act (a final observation: bootstrap from it). Step k of the window is
        # in it ("alive") if every entry 1..k acted and none of 0..k-1 was terminal. All n steps are
        # gathered at once: a few ops per batch instead of a dozen per step of the window (the sums
        # and products are done in the same order as a step-by-step loop, so the same floats).
        e, s = env[:, None], (slot[:, None] + self._window) % C  # (B, n)
        valid, rewards, terminals = self.valids[e, s], self.rewards[e, s], self.terminals[e, s]
        valid[:, 0] = True  # the transition itself: sample() drew a valid one
        valid[:, 1:] &= ~terminals[:, :-1]
        alive = valid.cummin(dim=1).values  # (B, n)
        powers = self._powers
        parts = alive * powers[:n] * rewards
        ret = parts[:, 0]
        for k in range(1, n):
            ret = ret + parts[:, k]
        m = alive.sum(dim=1)
        ended = (alive & terminals).any(dim=1)
        disc = torch.where(ended, torch.zeros_like(ret), powers[m])
        next_slot = (slot + m) % C
        obs = self._stack(env, slot)
        next_obs = self._stack(env, next_slot)
        to = self.device
        return ReplayBatch(
            obs.to(to, non_blocking=True),
            self.actions[env, slot].to(to, non_blocking=True),
            ret.to(to, non_blocking=True),
            disc.to(to, non_blocking=True),
            next_obs.to(to, non_blocking=True),
        )
