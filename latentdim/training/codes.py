"""The latent code's plumbing: the model's input, its latent layers, and the code's re-standardisation."""

from __future__ import annotations

import torch
from torch import nn

from latentdim.models import MaskAAE


def latent_layers(model: MaskAAE) -> tuple[nn.Linear, nn.Linear]:
    """The encoder's last linear layer (-> codes) and the decoder's first (codes ->)."""
    enc = [mod for mod in model.encoder.modules() if isinstance(mod, nn.Linear)][-1]
    dec = [mod for mod in model.decoder.modules() if isinstance(mod, nn.Linear)][0]
    m = model.mask.theta.shape[0]
    if enc.out_features != m or dec.in_features != m:
        raise ValueError("the encoder must end and the decoder start with a linear layer of the latent size")
    return enc, dec


@torch.no_grad()
def restandardise_codes(model: MaskAAE, x: torch.Tensor, min_mu: float = 0.1) -> None:
    """Rescales each active latent coordinate to zero mean and unit variance over ``x``, and
    compensates in the decoder's first layer, so reconstructions are unchanged.

    Why: while the closing pressure shrinks the mask, the auto-encoder update (rate 5e-4, weight of
    the reconstruction) grows the codes by 1/mu to keep reconstructing, faster than the generator
    update (rate 1e-4) pulls them back to the N(0, I) prior; W then rises and generation suffers.
    This exact reparametrisation removes that mismatch of the first two moments:
    E'_j = (E_j - m_j) / s_j, W'_d[:, j] = s_j W_d[:, j], b'_d = b_d + W_d (mu * m).
    Dimensions with mu < ``min_mu`` are left alone: their variance penalty is removing them.

    Args:
        model: the model, changed in place.
        x: a batch of training data (n, ...), n >= 2.
    """
    enc, dec = latent_layers(model)
    was_training = model.training
    model.eval()  # use running statistics, not this batch's, in any batch norm
    codes = model.encoder(x)
    model.train(was_training)
    mu = model.mask()
    mean, std = codes.mean(0), codes.std(0)
    keep = (mu >= min_mu) & (std > 1e-6)
    scale = torch.where(keep, std, torch.ones_like(std))
    shift = torch.where(keep, mean, torch.zeros_like(mean))
    dec.bias += dec.weight @ (mu * shift)
    dec.weight *= scale  # column j scaled by s_j
    enc.weight /= scale[:, None]
    enc.bias.sub_(shift).div_(scale)


def model_input(x: torch.Tensor) -> torch.Tensor:
    """Training data as the model sees it: uint8 images (the compact cache) become floats in [0, 1];
    float data passes through."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x
