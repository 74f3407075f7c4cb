"""The `mlp` preset of SPEC §5 for vectors in R^d."""

from __future__ import annotations

from torch import nn


def _stack(inputs: int, outputs: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` ReLU units; depth 1 is SPEC §5's network exactly
    (the same layers built in the same order, so the same initial weights for a seed)."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    layers: list[nn.Module] = [nn.Linear(inputs, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def mlp_encoder(data_dim: int, capacity: int, width: int = 1000, depth: int = 1) -> nn.Module:
    """E: (FC width - ReLU) x depth - FC m.  (batch, d) -> (batch, m)."""
    return _stack(data_dim, capacity, width, depth)


def mlp_decoder(capacity: int, data_dim: int, width: int = 1024, depth: int = 1) -> nn.Module:
    """D: (FC width - ReLU) x depth - FC d, linear output (standardised vectors).  (batch, m) -> (batch, d)."""
    return _stack(capacity, data_dim, width, depth)


def mlp_critic(capacity: int, width: int = 1024) -> nn.Module:
    """H: FC width - ReLU - FC 1.  (batch, m) -> (batch, 1)."""
    return nn.Sequential(nn.Linear(capacity, width), nn.ReLU(), nn.Linear(width, 1))
