"""MinAtar (Young & Tian, 2019): five Atari games on a 10×10 grid, vectorized for wnrl's agents.

``MinAtar/Breakout`` (also ``MinAtar/Breakout-v1``, any case, ``MinAtar/Space Invaders`` for
``MinAtar/SpaceInvaders-v1``) names one of Asterix, Breakout, Freeway, Seaquest and SpaceInvaders.
Only the ``MinAtar/`` prefix selects MinAtar: ``Breakout`` alone stays the Atari game.

* Versions as in the ``minatar`` package's gymnasium ids: ``-v1`` (the default) plays the game's
  minimal action set (Breakout: no-op, left, right), ``-v0`` all 6 actions, as the paper's agents did.
* Observations: MinAtar's ``10×10×C`` boolean channels (one per object kind: C is 4 for Asterix and
  Breakout, 7 for Freeway, 10 for Seaquest, 6 for SpaceInvaders), given channels-first as uint8
  ``(C, 10, 10)`` with values 0 and 255, the pixel convention of Atari and Catch: the nets scale uint8
  input to [0, 1], so they see MinAtar's 0/1 channels. No frame stacking (the channels are not frames:
  a replay stores whole observations, see ``MinAtarVectorEnv.frame_stack``) and no lives.
* Sticky actions with probability 0.1, MinAtar's default (``minatar.Environment``'s
  ``sticky_action_prob``): the previous action is repeated instead of the chosen one. Difficulty
  ramping on, also its default. Rewards are the game's (no clipping needed: +1 per event, Seaquest's
  surfacing more); only Freeway has a time limit (2,500 steps), the others end when the game is lost.
* Each env draws from its own ``numpy.random.RandomState``, seeded with ``seed + i`` on a seeded
  reset; it drives both the game and the sticky-action draws, as ``minatar.Environment.seed`` does,
  so a seeded env plays exactly what ``minatar.Environment`` plays with that seed and those actions.

The games are MinAtar's own code (``minatar/environments/<game>.py``, which needs only numpy), loaded
from the installed package without running ``minatar/__init__``: that imports matplotlib, seaborn
and pandas for its display (~1.4 s per process, measured) and wnrl never displays through it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

# Title -> module of minatar.environments
GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
VERSIONS = {"v1": "the game's minimal action set", "v0": "all 6 actions"}
DEFAULT_VERSION = "v1"
PREFIX = "MinAtar/"
STICKY_ACTION_PROB = 0.1  # minatar.Environment's default
NUM_ACTIONS = 6  # every MinAtar game's full action set

_ID = re.compile(r"^(?P<name>.*?)(?:-(?P<version>v\d+))?$")


def is_minatar_id(env_id: str) -> bool:
    """Whether the id asks for MinAtar (its ``MinAtar/`` prefix, any case)."""
    return env_id[: len(PREFIX)].lower() == PREFIX.lower()


def known_minatar_ids() -> list[str]:
    return [f"{PREFIX}{title}-{v}" for v in VERSIONS for title in GAMES]


def _key(name: str) -> str:
    """ "Space Invaders", "space_invaders", "space-invaders" -> "spaceinvaders"."""
    return re.sub(r"[\s_\-]+", "", name).lower()


def canonical_id(env_id: str) -> str:
    """``"MinAtar/<Game>-v<N>"`` for a MinAtar id, else a one-line ValueError naming the closest games."""
    m = _ID.match(env_id[len(PREFIX) :].strip())
    name, version = (m.group("name"), m.group("version")) if m else ("", None)
    by_key = {_key(t): t for t in GAMES}
    title = by_key.get(_key(name))
    games = ", ".join(GAMES)
    if title is None:
        close = difflib.get_close_matches(_key(name), list(by_key), n=2, cutoff=0.6)
        v = version if version in VERSIONS else DEFAULT_VERSION
        hint = f"did you mean {', '.join(repr(f'{PREFIX}{by_key[c]}-{v}') for c in close)}? " if close else ""
        raise ValueError(f"unknown environment {env_id!r}: {hint}MinAtar's games are {games} ('MinAtar/Breakout')")
    if version is None:
        version = DEFAULT_VERSION
    if version not in VERSIONS:
        raise ValueError(
            f"unknown environment {env_id!r}: did you mean '{PREFIX}{title}-{DEFAULT_VERSION}'? MinAtar games have "
            f"versions {', '.join(f'{v} ({what})' for v, what in VERSIONS.items())}"
        )
    return f"{PREFIX}{title}-{version}"


def is_installed() -> bool:
    return importlib.util.find_spec("minatar") is not None


def missing_message(name: str) -> str:
    return f"{name} needs the minatar package, which is not installed here: pip install minatar"


def game_class(title: str) -> type:
    """The ``Env`` class of MinAtar's game ``title`` (its ``minatar/environments/<game>.py``)."""
    module = GAMES[title]
    name = f"wnrl.envs._minatar_{module}"
    if name not in sys.modules:
        spec = importlib.util.find_spec("minatar")  # finds the package without importing it
        if spec is None:
            raise ValueError(missing_message(f"{PREFIX}{title}"))
        path = Path(next(iter(spec.submodule_search_locations or []), "")) / "environments" / f"{module}.py"
        file_spec = importlib.util.spec_from_file_location(name, path) if path.is_file() else None
        if file_spec is None or file_spec.loader is None:  # another layout: import it the ordinary way
            return importlib.import_module(f"minatar.environments.{module}").Env
        mod = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(mod)
        sys.modules[name] = mod
    return sys.modules[name].Env


class MinAtarVectorEnv(VectorEnv):
    """``num_envs`` copies of one MinAtar game, stepped one after another in this process, in
    gymnasium's NextStep autoreset mode (the step after a game ends returns the first observation of
    the next one, ignores its action and gives no reward). Observations: uint8 ``(num_envs, C, 10, 10)``,
    0 or 255."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}
    # Replays store each observation whole (its channels are not a stack of frames).
    frame_stack = 1

    def __init__(
        self,
        num_envs: int,
        game: str = "MinAtar/Breakout-v1",
        sticky_action_prob: float = STICKY_ACTION_PROB,
        difficulty_ramping: bool = True,
    ):
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob must be in [0, 1], got {sticky_action_prob}")
        name = canonical_id(game)
        title, version = name[len(PREFIX) :].rsplit("-", 1)
        cls = game_class(title)
        self.env_id = name
        self.num_envs = num_envs
        self.sticky_action_prob = float(sticky_action_prob)
        self._games = [cls(ramping=difficulty_ramping) for _ in range(num_envs)]
        full = list(range(NUM_ACTIONS))
        self.action_set = np.asarray(self._games[0].minimal_action_set() if version == "v1" else full, dtype=np.int64)
        h, w, c = self._games[0].state_shape()
        self.single_observation_space = spaces.Box(0, 255, (c, h, w), np.uint8)
        self.single_action_space = spaces.Discrete(len(self.action_set))
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._obs = np.zeros((num_envs, c, h, w), dtype=np.uint8)
        self._last_action = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    def _observe(self) -> np.ndarray:
        for i, g in enumerate(self._games):
            np.copyto(self._obs[i], g.state().transpose(2, 0, 1))  # bool (10, 10, C) -> 0/1 (C, 10, 10)
        np.multiply(self._obs, 255, out=self._obs)
        return self._obs.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        for i, g in enumerate(self._games):
            if seed is not None:
                g.random = np.random.RandomState((seed + i) % 2**32)  # the game's and the sticky draws' one RNG
                self._last_action[i] = 0
            g.reset()
        self._needs_reset[:] = False
        return self._observe(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} actions, got shape {actions.shape}")
        if actions.size and (actions.min() < 0 or actions.max() >= len(self.action_set)):
            raise ValueError(f"actions must be in [0, {len(self.action_set)}), got {actions.tolist()}")
        reward = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        for i, g in enumerate(self._games):
            if self._needs_reset[i]:
                g.reset()
                continue
            a = int(self.action_set[actions[i]])
            # minatar.Environment.act: one draw per step from the game's RNG, whatever the probability
            if g.random.rand() < self.sticky_action_prob:
                a = int(self._last_action[i])
            self._last_action[i] = a
            reward[i], terminated[i] = g.act(a)
        self._needs_reset = terminated.copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        return self._observe(), reward, terminated, truncated, {}

    def close(self, **kwargs: Any) -> None:
        pass
