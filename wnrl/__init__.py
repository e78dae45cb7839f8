"""wnrl: deep RL agents whose networks use weight normalization (Salimans & Kingma, 2016)."""

__version__ = "0.1.0"
