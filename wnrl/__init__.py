"""wnrl: deep RL agents whose networks use weight normalization (Salimans & Kingma, 2016)."""

import os as _os

__version__ = "0.1.0"

# An installed wnrl (pip install . or -e .) has wnrl.agents and wnrl.envs mapped to the agents/ and
# envs/ folders of the source tree (pyproject's package-dir). A source checkout used without
# installing it (the repository root on PYTHONPATH) finds them beside this folder instead.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(__path__[0], "agents")) and _os.path.isfile(_os.path.join(_root, "pyproject.toml")):
    __path__.append(_root)


def load(path, device: str = "auto", seed: int | None = None):
    """The trained agent of a run directory or checkpoint file: ``agent.predict(obs)``; see :mod:`wnrl.trained`."""
    from wnrl.trained import load as _load  # torch and the envs load on first use, not on ``import wnrl``

    return _load(path, device=device, seed=seed)


def learn(agent: str, env: str | None = None, **options):
    """Trains ``agent`` ("dqn", "a2c", "ppo" or "pqn") on ``env`` as ``python -m wnrl.train`` would, every
    flag a keyword (``total_steps=100_000``), and returns the run: ``.run_dir``, ``.summary``, ``.agent()``. See
    :func:`wnrl.learning.learn`."""
    from wnrl.learning import learn as _learn  # the agents (torch) load when a run starts, not on ``import wnrl``

    return _learn(agent, env, **options)
