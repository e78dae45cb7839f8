"""wnrl: deep RL agents whose networks use weight normalization (Salimans & Kingma, 2016)."""

__version__ = "0.1.0"


def load(path, device: str = "auto", seed: int | None = None):
    """The trained agent of a run directory or checkpoint file: ``agent.predict(obs)``; see :mod:`wnrl.trained`."""
    from wnrl.trained import load as _load  # torch and the envs load on first use, not on ``import wnrl``

    return _load(path, device=device, seed=seed)
