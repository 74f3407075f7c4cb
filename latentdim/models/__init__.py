"""Networks of MaskAAE and the builder that maps a preset to them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from latentdim.errors import LatentdimError
from latentdim.models.mask import Mask, active_dims, count_active, count_undecided, sample_prior
from latentdim.models.conv import IMAGE_PRESETS, check_image_shape
from latentdim.models.mlp import mlp_critic, mlp_decoder, mlp_encoder

#: Every preset name (SPEC §5, plus ``conv`` for images of other sizes); ``auto`` chooses among them.
PRESETS = ("mlp", *IMAGE_PRESETS)


class MaskAAE(nn.Module):
    """Encoder, decoder, critic and mask of one model (SPEC §2).

    The decoder is the generator: generation feeds it mask * z with z ~ N(0, I_m).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, critic: nn.Module, mask: Mask) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.critic = critic
        self.mask = mask


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model from a checkpoint."""

    preset: str  # architecture preset name (SPEC §5)
    data_shape: tuple[int, ...]  # shape of one sample, e.g. (128,)
    capacity: int  # latent size m
    width: int | None = None  # hidden width override (tiny models in tests); None = the preset's
    use_mask: bool = True  # False: mask fixed at one, the WAE-GP baseline
    depth: int | None = None  # hidden layers of the mlp encoder and decoder; None = the preset's (1)


def build_model(spec: ModelSpec) -> MaskAAE:
    """Builds the networks for a preset.

    Raises:
        LatentdimError: unknown preset, or a preset that does not fit the data shape.
    """
    if spec.capacity < 1:
        raise LatentdimError(f"capacity must be at least 1, got {spec.capacity}")
    if spec.width is not None and spec.width < 1:
        raise LatentdimError(f"width must be at least 1, got {spec.width}")
    if spec.depth is not None and spec.depth < 1:
        raise LatentdimError(f"depth (--depth) must be at least 1, got {spec.depth}")
    if spec.depth is not None and spec.preset != "mlp":
        raise LatentdimError(f"depth (--depth) applies to vectors (preset mlp), not to the image preset '{spec.preset}'")
    if spec.preset == "mlp":
        if len(spec.data_shape) != 1:
            raise LatentdimError(f"preset 'mlp' needs vectors, got samples of shape {spec.data_shape}")
        d = spec.data_shape[0]
        enc_w, dec_w = (spec.width, spec.width) if spec.width else (1000, 1024)
        depth = spec.depth or 1
        return MaskAAE(
            mlp_encoder(d, spec.capacity, enc_w, depth),
            mlp_decoder(spec.capacity, d, dec_w, depth),
            mlp_critic(spec.capacity, dec_w),
            Mask(spec.capacity, enabled=spec.use_mask),
        )
    if spec.preset in IMAGE_PRESETS:
        problem = check_image_shape(spec.preset, spec.data_shape)
        if problem is not None:
            raise LatentdimError(problem)
        builder = IMAGE_PRESETS[spec.preset][0]
        encoder, decoder, critic = builder(spec.data_shape, spec.capacity, spec.width)
        return MaskAAE(encoder, decoder, critic, Mask(spec.capacity, enabled=spec.use_mask))
    raise LatentdimError(f"unknown preset '{spec.preset}'; choose one of: {', '.join(PRESETS)}")


def is_image_preset(preset: str) -> bool:
    """True for the presets whose data are images (C, H, W) with a sigmoid decoder and BCE."""
    return preset in IMAGE_PRESETS


__all__ = [
    "MaskAAE", "Mask", "ModelSpec", "PRESETS", "active_dims", "build_model", "chunked", "count_active", "count_undecided", "is_image_preset",
    "sample_prior",
]


def chunked(net: torch.nn.Module, x: torch.Tensor, rows: int = 500) -> torch.Tensor:
    """``net(x)`` in pieces of ``rows`` (eval mode, so batch norm does not care): convolutional
    activations of 5,000 images at once would take gigabytes."""
    return torch.cat([net(part) for part in x.split(rows)])
