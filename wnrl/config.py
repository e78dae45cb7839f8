"""Typed run configuration shared by the agents, and the command line generated from it.

Each agent's config is a dataclass deriving from :class:`CommonConfig`; every field has a help
text in its metadata and becomes a ``--flag-name`` (underscores as dashes). Env-family defaults
(Atari vs vector envs vs Catch vs MinAtar) are small dicts of overrides applied where the user set nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar


def doc(text: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A dataclass field with its help text."""
    return field(default=default, metadata={"help": text}, **kw)


@dataclass
class CommonConfig:
    env: str = doc(
        "Atari game ('Breakout', 'ALE/Pong-v5'), gymnasium id with vector or image observations and discrete actions "
        "('CartPole-v1'; 'module:EnvId' imports the module that registers it), a MinAtar game ('MinAtar/Breakout', "
        "'MinAtar/SpaceInvaders-v1'; only the MinAtar/ prefix selects MinAtar) or 'Catch'",
        "Breakout",
    )
    total_steps: int = doc(
        "agent steps to train for, summed over all envs. With --resume: the new length of the run, above the "
        "step it reached (else one line, exit 2); the run goes on to it, and from the resume step on DQN's ε and "
        "the learning rate are what a run started with this --total-steps has at that step (the schedules planned anew "
        "over the new total from the configured start and end values, not continued from the old plan). Without "
        "it a resumed run keeps its saved total",
        10_000_000,
    )
    num_envs: int = doc("environments stepped together", 8)
    seed: int = doc("seed for envs, networks and sampling", 1)
    device: str = doc("auto | cpu | cuda | cuda:N (auto: the GPU if there is one)", "auto")
    norm: str = doc("network normalization: wn | wn_mobn | none | batch | layer", "wn")
    hidden_sizes: tuple[int, ...] = doc("hidden layers of the MLP trunk for vector observations", (64, 64))
    wn_init_norm: float = doc(
        "weight norm: the row norm ‖v_i‖ each direction starts with; under Adam or RMSprop a step turns a row by "
        "about lr·√fan_in/‖v_i‖, so this is an effective learning rate. 0: the paper's v ~ N(0, 0.05²), whose rows "
        "start at 0.05·√fan_in (0.8-2.8 in the Nature conv net, 0.1 for CartPole's first layer). wnrl's plain "
        "layers start at 0.577 (MLP trunks) and √2 = 1.414 (conv trunk): at those, WN takes their steps. Family "
        "defaults: 1.0 for A2C on Atari (measured on Pong: its trunk lived on every seed tried, docs/results.md), "
        "0 (the paper's draw) everywhere else; --wn-init-norm 0 gives the paper's draw",
        0.0,
    )
    wn_project: bool = doc(
        "weight norm (--norm wn or wn_mobn): after every optimizer step, rescale each direction v_i to one "
        "norm per layer: --wn-init-norm when set (the norm every row started at), else the layer's RMS norm of "
        "the paper's draw, 0.05·√fan_in (not the norm each drawn row happened to start at: those scatter "
        "around it by about 1/√(2·fan_in), relative, and are snapped to it at the first step). w = g·v/‖v‖ "
        "does not change; ‖v‖ stops growing, so the directions keep the effective learning rate they start with",
        False,
    )
    activation: str = doc("activation of the MLP trunk for vector observations: relu | tanh", "relu")
    logdir: str = doc("directory that holds run directories", "runs")
    run_name: str | None = doc("run directory name (default <env>__<agent>__<norm>__s<seed>__<time>)", None)
    checkpoint_every: int = doc("agent steps between checkpoints (one is always written at the end)", 500_000)
    log_every: int = doc("agent steps between scalar logs (SPS, losses)", 10_000)
    sticky_actions: float = doc(
        "Atari and MinAtar: probability of repeating the previous action (0.25: Machado et al.; 0.1: MinAtar's own)",
        0.0,
    )
    life_loss_terminal: bool = doc(
        "Atari: treat a lost life as terminal for bootstrapping (games still run to the end)", True
    )
    clip_rewards: bool = doc("learn from sign(reward) (logged returns stay raw game scores)", True)
    progress: bool = doc("show a progress bar on the console", True)
    compile: str = doc(
        "torch.compile the update and the action selection: off | default | reduce-overhead (adds CUDA graphs "
        "on a GPU); the first updates are slow while it compiles",
        "off",
    )
    eval_every: int = doc(
        "agent steps between evaluations while training, and one at the end (0: none): --eval-episodes whole "
        "games on envs of their own by the agent's evaluation protocol (DQN ε = 0.05, A2C samples its policy; "
        "as python -m wnrl.evaluate), logged as eval/episodic_return; the best goes into the summary and "
        "checkpoints. The training run is the same with or without them",
        0,
    )
    eval_episodes: int = doc("whole games per evaluation (--eval-every)", 10)
    eval_greedy: bool = doc(
        "evaluate greedily: DQN with ε = 0 instead of 0.05, A2C with its most likely action instead of a sample", False
    )
    eval_video: bool = doc(
        "record the first game of each evaluation (--eval-every) as RUN_DIR/videos/eval_step_<step>.mp4", False
    )
    track: bool = doc(
        "send the run to Weights & Biases: every scalar, the config and the last --eval-video (pip install "
        "wnrl[track]; wandb's own settings apply: WANDB_MODE=offline, WANDB_DIR, its login)",
        False,
    )
    wandb_project: str = doc("the W&B project of a --track run", "wnrl")
    wandb_entity: str | None = doc("the W&B entity (user or team) of a --track run (default: wandb's)", None)

    # The agent's overrides per env family ("atari", "classic", "catch", "minatar"), on top of the common ones.
    FAMILY_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def for_env(cls, env: str = "Breakout", **overrides: Any):
        """The config with ``env``'s family defaults, then ``overrides``. A MinAtar id is recorded by its
        canonical name (``MinAtar/Breakout`` as ``MinAtar/Breakout-v1``), so that config.json names the
        game and action set the run played whatever the short form comes to mean later."""
        family = env_family(env)
        if family == "minatar":
            from wnrl import envs

            env = envs.resolve(env)[1]
        return cls(**{**family_overrides(cls, family), "env": env, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Rejects bad values with a message that says what to do. An agent's config adds its own
        checks after these (``super().validate()``)."""
        from wnrl.compiled import COMPILE_MODES  # torch: imported when a run checks its config, not by plot or grid
        from wnrl.nets import ACTIVATIONS, NORMS

        self.require_at_least(1, "total_steps", "num_envs", "checkpoint_every", "log_every")
        if self.norm not in NORMS:
            raise CliError(f"unknown --norm {self.norm!r}: choose one of {', '.join(NORMS)}")
        self.require_in("sticky_actions", 0.0, 1.0)
        if self.activation not in ACTIVATIONS:
            raise CliError(f"unknown --activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise CliError(f"--hidden-sizes must be positive integers like 64,64, got {self.hidden_sizes}")
        self.require_in("wn_init_norm", 0.0, float("inf"))
        if self.wn_project and not self.norm.startswith("wn"):
            raise CliError(
                f"--wn-project rescales weight norm's directions: it needs --norm wn or wn_mobn, not --norm {self.norm}"
            )
        if self.compile not in COMPILE_MODES:
            raise CliError(f"unknown --compile {self.compile!r}: choose one of {', '.join(COMPILE_MODES)}")
        check_seed(self.seed)
        self.require_at_least(0, "eval_every")
        self.require_at_least(1, "eval_episodes")
        if self.eval_video and not self.eval_every:
            raise CliError("--eval-video records the games of the evaluations: give --eval-every STEPS too")
        if self.track:
            from wnrl.track import check_installed

            check_installed()
        self.check_env()

    def check_env(self) -> None:
        """The env exists, its spaces are ones the agents take, and this machine can hold
        ``num_envs`` of it (Atari: see ``envs.atari.max_envs``)."""
        from wnrl import envs
        from wnrl.distributed import world_from_env
        from wnrl.envs.atari import max_envs

        family = env_family(self.env)
        try:
            envs.check_supported(self.env)
        except ValueError as e:
            raise CliError(f"--env {e}") from None  # "--env FrozenLake-v1 has observations ..."
        if family == "atari":
            _, world_size, _ = world_from_env()
            # the envs this machine builds: this process's share times the processes torchrun runs here
            on_machine = -(-self.num_envs // world_size) * int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
            limit, why = max_envs()
            if on_machine > limit:
                per = " on this machine" if world_size > 1 else ""
                raise CliError(f"--num-envs {self.num_envs}: {on_machine} Atari envs{per} is more than {limit} ({why})")

    def require_at_least(self, low: float, *names: str) -> None:
        for name in names:
            if getattr(self, name) < low:
                raise CliError(f"{_flag(name)} must be at least {low}, got {getattr(self, name)}")

    def require_in(self, name: str, low: float, high: float, low_open: bool = False) -> None:
        v = getattr(self, name)
        if not (low < v <= high if low_open else low <= v <= high):
            if high == float("inf"):
                raise CliError(f"{_flag(name)} must be {'>' if low_open else '>='} {low:g}, got {v}")
            raise CliError(f"{_flag(name)} must be in {'(' if low_open else '['}{low:g}, {high:g}], got {v}")


# ale-py takes 32-bit seeds, and a run seeds env i with seed + i (+ the step, on resume): room is left.
MAX_SEED = 2**30


def check_seed(seed: int, flag: str = "--seed") -> None:
    """A seed every generator and env takes: an integer from 0 to ``MAX_SEED``; else a CliError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise CliError(f"{flag} must be an integer from 0 to {MAX_SEED:,}, got {seed}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_family(env_id: str) -> str:
    """ "atari", "classic", "catch" or "minatar"; an unknown id is a CliError naming the closest ones."""
    from wnrl import envs

    try:
        return envs.resolve(env_id)[0]
    except ValueError as e:
        raise CliError(str(e)) from None


# Overrides per env family, shared by every agent; an agent adds its own on top.
COMMON_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "atari": {},
    "classic": {"clip_rewards": False, "checkpoint_every": 50_000, "log_every": 2_000},
    "catch": {"clip_rewards": False, "checkpoint_every": 50_000, "log_every": 2_000},
    # MinAtar (Young & Tian, 2019) as its paper and package play it: sticky actions 0.1 (its default),
    # raw rewards (+1 per event; its agents do not clip), no lives.
    "minatar": {"sticky_actions": 0.1, "clip_rewards": False, "life_loss_terminal": False},
}


# How --help names the families, in this order.
FAMILY_NAMES = {"atari": "Atari", "classic": "vector envs", "catch": "Catch", "minatar": "MinAtar"}
FAMILY_HELP = (
    "Defaults differ by env family where --help names several: Atari (ALE games), vector envs (gymnasium ids "
    "with vector observations: CartPole-v1, Acrobot-v1, module:EnvId), Catch and MinAtar (MinAtar/Breakout and "
    "its other four games); the --env given picks the "
    "family, and a flag given wins over its family's default."
)


def family_overrides(cls: type, family: str) -> dict[str, Any]:
    """The fields ``cls``'s config sets for ``family`` over the dataclass defaults: the common table,
    then the agent's own (``cls.FAMILY_DEFAULTS``)."""
    return {**COMMON_FAMILY_DEFAULTS[family], **getattr(cls, "FAMILY_DEFAULTS", {}).get(family, {})}


def family_defaults(cls: type, name: str) -> dict[str, Any]:
    """Field ``name``'s default in each env family (``FAMILY_NAMES``' order)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        default = None
    return {family: family_overrides(cls, family).get(name, default) for family in FAMILY_NAMES}


def default_help(cls: type, name: str) -> str:
    """``default: X``, or, where the families differ, each family's value: ``default: 0.0001 on Atari,
    0.0005 on vector envs, 0.00025 on Catch`` (families with the same value named together)."""
    by_value: dict[str, list[str]] = {}
    for family, value in family_defaults(cls, name).items():
        by_value.setdefault(_show(value), []).append(FAMILY_NAMES[family])
    if len(by_value) == 1:
        return f"default: {next(iter(by_value))}"
    return "default: " + ", ".join(f"{v} on {' and '.join(names)}" for v, names in by_value.items())


# Fields of a config that do not change what a run computes (wnrl.plot's module docstring says why
# each): plot groups runs by every other field, and a resume records a change of any other field.
BOOKKEEPING = frozenset(
    {"seed", "run_name", "logdir", "device", "progress", "log_every", "checkpoint_every", "compile"}
    | {"save_replay", "replay_on_device", "exported"}
    | {"eval_every", "eval_episodes", "eval_greedy", "eval_video", "track", "wandb_project", "wandb_entity"}
)


# Bookkeeping for the training curves, but what the run's evaluations mean: a change is recorded.
EVAL_PROTOCOL = frozenset({"eval_greedy", "eval_episodes"})


def settings_changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """The fields of ``after`` outside :data:`BOOKKEEPING` (and those of :data:`EVAL_PROTOCOL`) whose
    value is not ``before``'s (tuples and lists alike, as JSON has them): ``{field: [before, after]}``,
    in ``after``'s order. A field ``before`` lacks (a config from before that field existed) is not
    counted as changed."""
    out = {}
    for k, v in after.items():
        if (k in BOOKKEEPING and k not in EVAL_PROTOCOL) or k not in before:
            continue
        old, new = json.loads(json.dumps(before[k])), json.loads(json.dumps(v))
        if old != new:
            out[k] = [old, new]
    return out


class CliError(Exception):
    """A bad command line or configuration: printed as one line, exit code 2."""


def _base_type(tp: Any) -> Any:
    """``int | None`` -> ``int``; leaves other types as they are."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def _parse_bool(s: str) -> bool:
    v = s.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def _parse_int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        pass
    try:
        x = float(s)  # 1e6, 2.5e5
        if x.is_integer():
            return int(x)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}")


def positive_int(s: str) -> int:
    """An argparse type: a whole number of at least 1 (``1e3`` and ``2.0`` too, as ``_parse_int`` reads them)."""
    try:
        value = _parse_int(s)
    except argparse.ArgumentTypeError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {s!r}")
    return value


THREADS_HELP = (
    "torch threads for this process (default: torch's, one per core). Give 1 when other processes share the "
    "cores (two runs side by side, an evaluation or the tests beside a run): with default threads each "
    "oversubscribes the cores and runs 8-12× slower"
)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (train, evaluate): applied with :func:`set_threads`; a bad N is argparse's error."""
    parser.add_argument("--threads", metavar="N", type=positive_int, default=None, help=THREADS_HELP)


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)``; None leaves torch's default."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _parse_float(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None


def _parse_int_tuple(s: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in s.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,64, got {s!r}") from None


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--flag`` per dataclass field; unset flags stay out of the namespace. The help gives the
    field's default, or each env family's where they differ (:func:`default_help`)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} ({default_help(cls, f.name)})"
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            kw.update(type=_parse_bool, nargs="?", const=True, metavar="BOOL")
        elif tp is int:
            kw.update(type=_parse_int, metavar="N")
        elif tp is float:
            kw.update(type=_parse_float, metavar="X")
        elif typing.get_origin(tp) is tuple:
            kw.update(type=_parse_int_tuple, metavar="N,N")
        else:
            kw.update(type=str, metavar="STR")
        parser.add_argument(flag, **kw)


def _show(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000:
        return f"{v:_}"
    return str(v)
