"""Atari through ale-py's C++ vector env, with the standard DQN preprocessing.

84×84 grayscale, frame skip 4 with a max over the last two frames, 4-frame stack, FIRE then 0–28
no-ops on reset (ale-py's draw with noop_max=30; FIRE only on reset, never after a lost life, as in
Dopamine), a 108,000-frame cap (truncation, not termination), sticky actions off unless
asked (0.25 is Machado et al.'s protocol). Games run to their real end: ale-py's own
``episodic_life`` would reset the whole game at every life loss, so it stays off and the life-loss
signal comes from ``info["lives"]`` (see :mod:`envs.stats`). Rewards are the raw game score;
agents clip them for learning only.
"""

from __future__ import annotations

import os
import re

_ROM_IDS: list[str] | None = None


def rom_ids() -> list[str]:
    """Snake-case names of the ROMs that ship inside ale-py ("breakout", "ms_pacman", ...)."""
    global _ROM_IDS
    if _ROM_IDS is None:
        from ale_py import roms

        _ROM_IDS = sorted(roms.get_all_rom_ids())
    return _ROM_IDS


def game_title(rom: str) -> str:
    """ "ms_pacman" -> "MsPacman"."""
    return "".join(part.capitalize() for part in rom.split("_"))


_ID_PATTERN = re.compile(r"^(?:ALE/)?(?P<name>[A-Za-z0-9_]+?)(?:NoFrameskip|Deterministic)?(?:-v\d+)?$")


def atari_rom(env_id: str) -> str | None:
    """The ROM an id names, or None: "Breakout", "ALE/Breakout-v5", "BreakoutNoFrameskip-v4",
    "breakout" all give "breakout"; "MsPacman" gives "ms_pacman", "UpNDown" "up_n_down"."""
    m = _ID_PATTERN.match(env_id)
    if not m:
        return None
    name = m.group("name")
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    snake = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", snake).lower()  # UpNDown: up_n_down
    digits = re.sub(r"(?<=[a-z])(?=[0-9])", "_", snake)  # TicTacToe3d: tic_tac_toe_3d (Pitfall2: pitfall2)
    for candidate in (snake, digits, name.lower()):
        if candidate in rom_ids():
            return candidate
    return None


# Measured on the 2-core dev machine (ale-py 0.12.1, Breakout, 16 to 256 envs, beside two training
# runs): each env adds ~1.6 MB of resident memory once reset, and building then resetting the vector
# env takes ~0.3 s per env (0.15 + 0.15), one env after another, inside one C++ call that holds the
# GIL: Python, and so Ctrl-C, is deaf until it returns (256 envs: 82 s; 5,000 would be ~25 min, ~8 GB).
# ale-py steps the envs on at most one thread per core, so past a few dozen envs per core a step only
# gets longer. The bound keeps a build under ~1 minute per core of the machine, and well inside memory.
ENVS_PER_CORE = 64
BYTES_PER_ENV = 2 * 2**20  # 1.6 MB measured, rounded up


def available_memory() -> int | None:
    """Bytes of memory the kernel says a new process can use (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def max_envs(cpu_count: int | None = None, memory: int | None = None) -> tuple[int, str]:
    """The most Atari envs one machine should build, and why: ``ENVS_PER_CORE`` per CPU core, or
    fewer if half the available memory cannot hold them."""
    cores = cpu_count or os.cpu_count() or 1
    limit = ENVS_PER_CORE * cores
    why = (
        f"{ENVS_PER_CORE} per CPU core on this machine's {cores}: ale-py steps them on one thread per core, "
        "and builds them at ~0.3 s each without seeing Ctrl-C"
    )
    memory = available_memory() if memory is None else memory
    if memory is not None and memory // 2 // BYTES_PER_ENV < limit:
        limit = max(1, memory // 2 // BYTES_PER_ENV)
        why = f"half the {memory / 2**30:.1f} GiB of memory available, at ~{BYTES_PER_ENV / 2**20:.0f} MB per env"
    return limit, why


def make_atari(
    rom: str,
    num_envs: int,
    *,
    repeat_action_probability: float = 0.0,
    noop_max: int = 30,
    frame_skip: int = 4,
    frame_stack: int = 4,
    max_episode_frames: int = 108_000,
    num_threads: int | None = None,
    full_action_space: bool = False,
    screen: str = "agent",
):
    """``ale_py.vector_env.AtariVectorEnv`` with raw rewards, whole games and NextStep autoreset.

    ``screen="agent"``: 84×84 grey frames, the agent's input; ``"game"``: the 210×160 colour screen
    (max-pooled over the last two frames of each skip like the agent's), for videos."""
    from ale_py.vector_env import AtariVectorEnv

    if not 0.0 <= repeat_action_probability <= 1.0:
        raise ValueError(f"repeat_action_probability must be in [0, 1], got {repeat_action_probability}")
    if screen not in ("agent", "game"):
        raise ValueError(f"screen must be 'agent' or 'game', got {screen!r}")
    game = screen == "game"
    threads = num_threads or min(num_envs, os.cpu_count() or 1)
    env = AtariVectorEnv(
        rom,
        num_envs,
        num_threads=threads,
        max_num_frames_per_episode=max_episode_frames,
        repeat_action_probability=repeat_action_probability,
        full_action_space=full_action_space,
        autoreset_mode="NextStep",
        img_height=210 if game else 84,
        img_width=160 if game else 84,
        grayscale=not game,
        stack_num=frame_stack,
        frameskip=frame_skip,
        maxpool=True,
        noop_max=noop_max,
        episodic_life=False,  # CRUCIAL: True resets the whole game at each life loss
        life_loss_info=False,
        reward_clipping=False,  # logged returns are game scores; agents clip for learning
        use_fire_reset=True,
    )
    return env
