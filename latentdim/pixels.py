"""Pixels: images in [0, 1] as 8-bit levels, tiles in a grid, a grid as a PIL image. numpy and
Pillow only, so ``latentdim sample`` uses it where torch is not installed."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def to_levels(images: np.ndarray, precision: type = np.float32) -> np.ndarray:
    """Images as uint8 levels, same shape: uint8 passes through; floats are clipped to [0, 1]
    (a generator may overshoot), NaN becomes 0, and ``value * 255`` (computed in ``precision``) is
    rounded with :func:`numpy.rint` (ties to even: 0.5 -> 127.5 -> 128), so ``k / 255`` maps back to
    ``k`` exactly. float32 is what the exported generator's uint8 head and FID use; the run's
    pictures use float64, the nearest level in exact arithmetic."""
    if images.dtype == np.uint8:
        return images
    return np.rint(np.clip(np.nan_to_num(images.astype(precision), nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)


def tile(tiles: np.ndarray, cols: int, pad: int = 0, fill: int = 255) -> np.ndarray:
    """(N, H, W, C) uint8 tiles row by row into one (rows*H + pad*(rows+1), cols*W + pad*(cols+1), C)
    picture, ``rows = ceil(N / cols)``: tile k at grid row k // cols and column k % cols, its
    top-left pixel at (pad + row * (H + pad), pad + col * (W + pad)); gaps and empty cells ``fill``."""
    n, h, w, c = tiles.shape
    rows = math.ceil(n / cols)
    canvas = np.full((rows * h + pad * (rows + 1), cols * w + pad * (cols + 1), c), fill, dtype=np.uint8)
    for k, one in enumerate(tiles):
        r, q = divmod(k, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        canvas[top : top + h, left : left + w] = one
    return canvas


def to_pil(image: np.ndarray) -> Image.Image:
    """(H, W, C) uint8 -> a PIL image: mode L for one channel, RGB for three."""
    return Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
