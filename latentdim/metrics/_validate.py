"""The checks every metric shares: point sets, and sets of active dimensions."""

from __future__ import annotations

from collections.abc import Sequence

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


def active_indices(active: np.ndarray | Sequence[int] | None, m: int) -> np.ndarray:
    """A boolean mask of length m, an index list or None (all) -> sorted unique indices in [0, m).

    Raises:
        LatentdimError: not 1-D, a mask of the wrong length, or indices that are not integers,
            out of range or repeated.
    """
    if active is None:
        return np.arange(m)
    arr = np.asarray(active)
    if arr.ndim != 1:
        raise LatentdimError(f"active must be a 1-D mask or index list, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        if arr.size != m:
            raise LatentdimError(f"active mask has length {arr.size}, but there are {m} dimensions")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return arr.astype(np.intp)
    if not np.issubdtype(arr.dtype, np.integer):
        raise LatentdimError(f"active indices must be integers or a boolean mask, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= m:
        raise LatentdimError(f"active indices must lie in [0, {m}), got {arr.tolist()}")
    if np.unique(arr).size != arr.size:
        raise LatentdimError(f"active indices repeat: {arr.tolist()}")
    # Order does not change the mean off-diagonal entry; sorting keeps the sub-matrix canonical.
    return np.sort(arr)
