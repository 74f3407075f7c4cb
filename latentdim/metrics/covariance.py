"""NAC: normalised absolute covariance of the encoder output (SPEC §7, section 10.4 of the paper).

Sigma = |cov(codes)| is rescaled to [0, 1] by (Sigma - min) / (max - min); the NAC is the mean of
its off-diagonal entries over the active (unmasked) dimensions. Small values mean the encoder's
active coordinates are nearly decorrelated; the papers report 0.013 to 0.046.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latentdim.metrics._validate import active_indices, finite_rows


def normalised_abs_covariance(codes: np.ndarray) -> np.ndarray:
    """|cov(codes)| min-max rescaled to [0, 1].

    Args:
        codes: samples, shape (N, k), one per row; N >= 2, k >= 1.

    Returns:
        float64 array (k, k): ``(Sigma - Sigma.min()) / (Sigma.max() - Sigma.min())`` with
        ``Sigma = |cov(codes)|``; all zeros when every entry of Sigma is equal (e.g. constant codes).

    Raises:
        LatentdimError: if ``codes`` is not 2-D, has fewer than 2 rows, or holds NaN or inf.
    """
    codes = _check_codes(codes)
    # atleast_2d: np.cov returns a 0-d array when k == 1.
    sigma = np.abs(np.atleast_2d(np.cov(codes, rowvar=False)))
    lo, hi = sigma.min(), sigma.max()
    if hi == lo:
        # Nothing to rescale (constant codes give an all-zero Sigma); avoid 0 / 0.
        return np.zeros_like(sigma)
    return (sigma - lo) / (hi - lo)


def nac(
    codes: np.ndarray,
    active: np.ndarray | Sequence[int] | None = None,
) -> tuple[float | None, np.ndarray]:
    """NAC over the active dimensions, and the full normalised matrix for heat maps.

    Args:
        codes: unmasked encoder outputs, shape (N, m); SPEC §7 uses N = b_s = 5000.
        active: which of the m dimensions are open: a boolean mask of length m, or integer
            indices in [0, m) without repeats; ``None`` means all m.

    Returns:
        ``(value, matrix)``. ``value`` is the mean off-diagonal entry of
        ``normalised_abs_covariance(codes[:, active])`` -- normalised over the active sub-matrix
        only, since the paper neglects masked dimensions -- or ``None`` when fewer than 2
        dimensions are active (there is no off-diagonal entry). ``matrix`` is
        ``normalised_abs_covariance(codes)`` over all m dimensions, shape (m, m), float64.

    Raises:
        LatentdimError: if ``codes`` is malformed (not 2-D, fewer than 2 rows, NaN or inf), or
            ``active`` is a mask of the wrong length or holds out-of-range or repeated indices.
    """
    codes = _check_codes(codes)
    m = codes.shape[1]
    full = normalised_abs_covariance(codes)
    idx = active_indices(active, m)
    k = idx.size
    if k < 2:
        return None, full
    sub = normalised_abs_covariance(codes[:, idx])
    off_diagonal_sum = sub.sum() - np.trace(sub)
    return float(off_diagonal_sum / (k * (k - 1))), full


def _check_codes(codes: np.ndarray) -> np.ndarray:
    """Validate and convert codes (N, k) to float64; see the public functions for the rules."""
    return finite_rows(codes, "codes", 2, "a covariance")
