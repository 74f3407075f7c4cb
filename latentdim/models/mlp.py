"""The `mlp` preset of SPEC §5 for vectors in R^d."""

from __future__ import annotations

from torch import nn


def mlp_encoder(data_dim: int, capacity: int, width: int = 1000) -> nn.Module:
    """E: FC width - ReLU - FC m.  (batch, d) -> (batch, m)."""
    return nn.Sequential(nn.Linear(data_dim, width), nn.ReLU(), nn.Linear(width, capacity))


def mlp_decoder(capacity: int, data_dim: int, width: int = 1024) -> nn.Module:
    """D: FC width - ReLU - FC d, linear output (standardised vectors).  (batch, m) -> (batch, d)."""
    return nn.Sequential(nn.Linear(capacity, width), nn.ReLU(), nn.Linear(width, data_dim))


def mlp_critic(capacity: int, width: int = 1024) -> nn.Module:
    """H: FC width - ReLU - FC 1.  (batch, m) -> (batch, 1)."""
    return nn.Sequential(nn.Linear(capacity, width), nn.ReLU(), nn.Linear(width, 1))
