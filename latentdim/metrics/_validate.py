"""One check for the point sets every metric takes."""

from __future__ import annotations

import numpy as np

from latentdim.errors import LatentdimError


def finite_rows(x: np.ndarray, name: str, min_rows: int, why: str) -> np.ndarray:
    """Returns ``x`` as a float64 (N, D) array, or raises a message naming ``name`` and ``why``.

    Args:
        x: array-like of shape (N, D).
        name: what the rows are, for messages ("samples", "codes", "real samples").
        min_rows: the fewest rows the metric can use.
        why: completes "... needs at least {min_rows} {name}" in the message, e.g. "a covariance".

    Raises:
        LatentdimError: not 2-D, fewer than ``min_rows`` rows, or a NaN or infinite value.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise LatentdimError(f"{name} must be a 2-D array (N, D), got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise LatentdimError(f"{why} needs at least {min_rows} {name}, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise LatentdimError(f"{name} contain NaN or inf")
    return x
