"""Environment construction: one ``make`` for Atari, gymnasium vector envs, MinAtar and the Catch test game.

>>> env = make("Breakout", num_envs=8, seed=1)          # also "ALE/Breakout-v5", "BreakoutNoFrameskip-v4"
>>> obs, info = env.reset()                            # uint8 (8, 4, 84, 84)
>>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
>>> make("MinAtar/Breakout", num_envs=8, seed=1).reset()[0].shape   # MinAtar's: uint8 (8, 4, 10, 10)

Every env autoresets in NextStep mode and carries the per-game statistics and life-loss signal
described in :mod:`envs.stats`. ``env.env_id`` is the canonical name, ``env.family`` one of
``"atari"``, ``"classic"``, ``"catch"``, ``"minatar"`` (only a ``MinAtar/`` id: ``Breakout`` is Atari's).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from wnrl.envs import minatar
from wnrl.envs.atari import atari_rom, game_title, make_atari, rom_ids
from wnrl.envs.catch import CatchVectorEnv
from wnrl.envs.classic import SUPPORTED, is_ale_id, is_registered, make_classic, registered_ids, unsupported_spaces
from wnrl.envs.minatar import MinAtarVectorEnv, is_minatar_id, known_minatar_ids
from wnrl.envs.stats import GameStats

__all__ = ["make", "resolve", "check_supported", "known_ids", "GameStats", "CatchVectorEnv", "MinAtarVectorEnv"]

FAMILIES = ("atari", "classic", "catch", "minatar")


def known_ids() -> list[str]:
    """Names ``make`` accepts (Atari games by title; each also takes its ALE/ and NoFrameskip forms)."""
    minatar_ids = known_minatar_ids()
    others = [i for i in registered_ids() if atari_rom(i.split("/")[-1]) is None and i not in minatar_ids]
    return ["Catch"] + [game_title(r) for r in rom_ids()] + minatar_ids + others


def resolve(env_id: str) -> tuple[str, str]:
    """``(family, canonical name)`` for an id, or a ValueError naming the closest known ids.

    ``"module:EnvId"`` (gymnasium's form for an env that ``module`` registers when imported) imports
    ``module`` and keeps the whole id as the name, so a run that records it can be made again in a
    fresh process."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env id must be a non-empty string, got {env_id!r}")
    if ":" in env_id:
        return "classic", _import_registering_module(env_id)
    if env_id.lower() in ("catch", "catch-v0"):
        return "catch", "Catch"
    # Before gymnasium's registry: minatar.gym.register_envs() registers these ids too, as a Python env
    # (bool channels-last observations) that wnrl's agents do not take.
    if is_minatar_id(env_id):
        return "minatar", minatar.canonical_id(env_id)
    # A gymnasium id registered by something other than ale-py is that env, even when an Atari ROM has
    # the same title (gymnasium's toy-text Blackjack-v1 is not ALE's Blackjack).
    if is_registered(env_id) and not env_id.startswith("ALE/") and not is_ale_id(env_id):
        return "classic", env_id
    rom = atari_rom(env_id)
    if rom is not None:
        return "atari", game_title(rom)
    if is_registered(env_id) and not env_id.startswith("ALE/"):
        return "classic", env_id
    candidates = known_ids()
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(env_id.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(by_lower[c]) for c in close)}? " if close else ""
    raise ValueError(
        f"unknown environment {env_id!r}: {hint}Use an Atari game ('Breakout', 'ALE/Pong-v5'), "
        "a gymnasium id with vector or image observations ('CartPole-v1'), 'module:EnvId' for an env that module "
        "registers, a MinAtar game ('MinAtar/Breakout') or 'Catch'"
    )


def _import_registering_module(env_id: str) -> str:
    """Imports the module of a ``"module:EnvId"`` id; the id if it then names a registered env."""
    module, _, name = env_id.partition(":")
    if not module or not name or ":" in name:
        raise ValueError(f"env id {env_id!r}: expected 'module:EnvId', e.g. 'my_envs:Maze-v0'")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and (module == e.name or module.startswith(e.name + ".")):
            raise ValueError(
                f"env id {env_id!r}: no module {module!r} to import; put the directory that holds it on "
                "PYTHONPATH (or install it)"
            ) from None
        raise ValueError(f"env id {env_id!r}: importing {module!r} failed ({_first_line(e)})") from None
    except Exception as e:  # the module itself raised while importing
        raise ValueError(f"env id {env_id!r}: importing {module!r} failed ({_first_line(e)})") from None
    if not is_registered(name):
        raise ValueError(
            f"env id {env_id!r}: module {module!r} was imported but registers no env {name!r} with gymnasium "
            "(gymnasium.register(id=..., entry_point=...) when it is imported)"
        )
    return env_id


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def check_supported(env_id: str) -> None:
    """A ValueError (one line, naming what is supported) if wnrl's agents cannot take ``env_id``'s
    spaces, or if it cannot be made at all (a missing dependency). Makes one env of a gymnasium id
    to read its spaces; Atari games, MinAtar and Catch are known to fit."""
    family, name = resolve(env_id)
    if family == "minatar" and not minatar.is_installed():
        raise ValueError(minatar.missing_message(name))
    if family != "classic":
        return
    import gymnasium as gym

    try:
        env = gym.make(name, disable_env_checker=True)
    except Exception as e:  # a missing dependency (Box2D, MuJoCo), or the env's own constructor failing
        raise ValueError(f"{name} cannot be made here ({_first_line(e)})") from None
    try:
        problem = unsupported_spaces(env.observation_space, env.action_space)
    finally:
        env.close()
    if problem:
        raise ValueError(f"{name} has {problem}; {SUPPORTED}")


def _check_options(fn, family: str, options: dict[str, Any]) -> None:
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n in params if n not in ("rom", "num_envs", "game")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {family} env option(s) {', '.join(unknown)}; valid: {', '.join(allowed)}")


def make(env_id: str, num_envs: int = 1, seed: int | None = None, **options: Any) -> GameStats:
    """A vector env of ``num_envs`` copies of ``env_id``, seeded with ``seed`` (None: random).

    Atari options: ``repeat_action_probability`` (0.0; 0.25 for sticky actions), ``noop_max`` (30),
    ``frame_skip`` (4), ``frame_stack`` (4), ``max_episode_frames`` (108,000), ``num_threads``,
    ``full_action_space``. Catch options: ``rows``, ``cols``, ``cell``, ``frame_stack``. MinAtar options:
    ``sticky_action_prob`` (0.1, MinAtar's default), ``difficulty_ramping`` (True).
    Classic envs take gymnasium's own keyword arguments.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    family, name = resolve(env_id)
    if family == "atari":
        _check_options(make_atari, family, options)
        env = make_atari(atari_rom(env_id), num_envs, **options)
    elif family == "catch":
        _check_options(CatchVectorEnv, family, options)
        env = CatchVectorEnv(num_envs, **options)
    elif family == "minatar":
        _check_options(MinAtarVectorEnv, family, options)
        env = MinAtarVectorEnv(num_envs, name, **options)
    else:
        env = make_classic(env_id, num_envs, **options)
    wrapped = GameStats(env, seed=seed)
    wrapped.env_id = name
    wrapped.family = family
    # observations per replay entry: Atari's and Catch's are stacks of frames (the default: the first
    # dimension of an image); MinAtar's channels, and a gymnasium env's image channels, are one observation
    wrapped.frame_stack = None if family in ("atari", "catch") else 1
    return wrapped
