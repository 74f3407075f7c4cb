"""The learnable latent mask of MaskAAE (SPEC §2)."""

from __future__ import annotations

import torch
from torch import nn

from latentdim.thresholds import ACTIVE_THRESHOLD, DECIDED_THRESHOLD


class Mask(nn.Module):
    """mu = 1 - exp(-theta), theta >= 0, one gate per latent coordinate.

    Args:
        capacity: number of latent coordinates m.
        init_high: theta starts Uniform[0, init_high] (SPEC §2: 5).
        enabled: when False the mask is fixed at one (the WAE-GP baseline) and has no parameters
            that training moves.
    """

    def __init__(self, capacity: int, init_high: float = 5.0, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        self.theta = nn.Parameter(torch.empty(capacity).uniform_(0.0, init_high), requires_grad=enabled)

    def forward(self) -> torch.Tensor:
        """Returns the mask values mu, shape (m,), in [0, 1)."""
        if not self.enabled:
            return torch.ones_like(self.theta)
        return -torch.expm1(-self.theta)  # 1 - exp(-theta), accurate for small theta

    @torch.no_grad()
    def project(self) -> None:
        """SPEC §2: clamp theta >= 0 after every mask update (a projection, so a dim may re-open)."""
        self.theta.clamp_(min=0.0)


def active_count(mu: torch.Tensor) -> torch.Tensor:
    """m_A as a 0-d tensor on mu's device (no host transfer): the number of mask values >= 0.1."""
    return (mu >= ACTIVE_THRESHOLD).sum()


def undecided_count(mu: torch.Tensor) -> torch.Tensor:
    """The undecided count as a 0-d tensor on mu's device: active values below 0.9."""
    return ((mu >= ACTIVE_THRESHOLD) & (mu < DECIDED_THRESHOLD)).sum()


def count_active(mu: torch.Tensor) -> int:
    """m_A: the number of mask values >= 0.1 (SPEC §2)."""
    return int(active_count(mu))


def count_undecided(mu: torch.Tensor) -> int:
    """Active dimensions that are not yet clearly open (0.1 <= mu < 0.9); 0 at convergence."""
    return int(undecided_count(mu))


def active_dims(mu: torch.Tensor) -> list[int]:
    """Indices of the active dimensions (mask value >= 0.1), in order."""
    return [int(j) for j in torch.nonzero(mu >= ACTIVE_THRESHOLD).flatten().cpu()]


def sample_prior(mu: torch.Tensor, n: int) -> torch.Tensor:
    """n codes from the masked prior mu * N(0, I_m) (SPEC §1), on mu's device."""
    return mu * torch.randn(n, mu.shape[0], device=mu.device)
