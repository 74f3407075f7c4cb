"""The four losses of MaskAAE (SPEC §3), as pure functions of tensors.

Shapes: batch size s, latent size m.  Every function returns a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: SPEC §3 weights, from the reference code.
VARIANCE_WEIGHT = 100.0  # alpha_2: weight of the closed-dimension variance penalty in the AE loss
DELTA_GAMMA = 10.0  # gamma in delta_j = exp(-gamma * mu_j^2)
GP_WEIGHT = 10.0  # WGAN-GP gradient-penalty weight
MASK_REC_WEIGHT = 1000.0  # lambda_1: reconstruction weight in the mask loss


def reconstruction(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean reconstruction error over batch and features.

    Args:
        x_hat: decoder output (s, ...): values for ``"mse"``, logits for ``"bce"``.
        x: targets, same shape; in [0, 1] for ``"bce"``.
        kind: ``"mse"`` (standardised vectors) or ``"bce"`` (images with a sigmoid decoder).
    """
    if kind == "mse":
        return F.mse_loss(x_hat, x)
    if kind == "bce":
        # The sigmoid lives inside the loss for numerical stability; generation applies it.
        return F.binary_cross_entropy_with_logits(x_hat, x)
    raise ValueError(f"unknown reconstruction loss {kind!r}")


def closed_variance_penalty(codes: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """mean_j(delta_j * Var_batch(codes_j)) with delta_j = exp(-10 mu_j^2) held constant (SPEC §3).

    Pushes the encoder to stop using coordinates the mask has (nearly) closed.
    codes: unmasked encoder output (s, m); mu: mask (m,).
    """
    delta = torch.exp(-DELTA_GAMMA * mu.detach() ** 2)
    return (delta * codes.var(dim=0, unbiased=False)).mean()


def ae_loss(rec: torch.Tensor, codes: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Encoder + decoder loss: rec + 100 * variance penalty (SPEC §3)."""
    return rec + VARIANCE_WEIGHT * closed_variance_penalty(codes, mu)


def gradient_penalty(critic: nn.Module, prior: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: mean (||grad H(u)|| - 1)^2 at u = a prior + (1 - a) encoded, a ~ U[0, 1] per sample."""
    a = torch.rand(prior.shape[0], 1, device=prior.device, dtype=prior.dtype)
    u = (a * prior + (1.0 - a) * encoded).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(u).sum(), u, create_graph=True)
    return ((grad.norm(dim=1) - 1.0) ** 2).mean()


def critic_loss(h_encoded: torch.Tensor, h_prior: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """mean H(mu E(x)) - mean H(mu z) + 10 * gradient penalty (SPEC §3)."""
    return h_encoded.mean() - h_prior.mean() + GP_WEIGHT * penalty


def generator_loss(h_encoded: torch.Tensor) -> torch.Tensor:
    """Encoder as generator: -mean H(mu E(x)) (SPEC §3)."""
    return -h_encoded.mean()


def wasserstein(h_prior: torch.Tensor, h_encoded: torch.Tensor) -> torch.Tensor:
    """The critic's Wasserstein estimate W = mean H(mu z) - mean H(mu E(x))."""
    return h_prior.mean() - h_encoded.mean()


def mask_loss(
    rec: torch.Tensor,
    w: torch.Tensor,
    mu: torch.Tensor,
    lambda3: float,
    closing_pressure: float = 0.0,
) -> torch.Tensor:
    """1000 rec + (1 + W)^2 + lambda3 sum_j |mu_j (1 - mu_j)| + beta sum_j mu_j.

    The first three terms are SPEC §3. The last, the closing pressure beta, is latentdim's addition
    (docs/log/mask-dynamics.md): a needed dimension is defended by the reconstruction term, a spurious
    one only by W, so a modest uniform pressure closes the spurious ones first. beta = 0 is the
    papers' loss.
    """
    polariser = (mu * (1.0 - mu)).abs().sum()
    return MASK_REC_WEIGHT * rec + (1.0 + w) ** 2 + lambda3 * polariser + closing_pressure * mu.sum()
