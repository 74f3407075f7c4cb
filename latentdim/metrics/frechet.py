"""Frechet distance between two Gaussians, and between the Gaussian fits of two sample sets.

SPEC §7 uses it twice: on Inception features for FID (images), and directly in data space for
vector data. The formula follows mseitzer/pytorch-fid ``calculate_frechet_distance``:

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import linalg

from latentdim.errors import LatentdimError
from latentdim.metrics._validate import finite_rows

# pytorch-fid's tolerance: imaginary parts of sqrtm's diagonal below this are rounding noise.
IMAG_ATOL = 1e-3
# frechet_distance_samples rescales sample sets whose largest standard deviation exceeds this.
_LARGE_SPREAD = 1.0


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1: mean of the first Gaussian, shape (d,).
        sigma1: covariance of the first Gaussian, shape (d, d), symmetric positive semi-definite.
        mu2: mean of the second Gaussian, shape (d,).
        sigma2: covariance of the second Gaussian, shape (d, d).
        eps: diagonal offset added to both covariances when the product is too close to singular
            for ``sqrtm`` to return a finite result.

    Returns:
        ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))`` as a Python float.

    Raises:
        LatentdimError: if the shapes disagree or an input holds NaN or inf.
        ValueError: if ``sqrtm`` has a large imaginary component (a covariance is not positive
            semi-definite), or stays non-finite after the eps offset.
    """
    # Everything in float64: sqrtm of a float32 product loses several digits on 2048-d features.
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))

    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise LatentdimError(f"means must be vectors of the same length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise LatentdimError(
            f"covariances must be ({d}, {d}) to match the means, got {sigma1.shape} and {sigma2.shape}"
        )
    for name, arr in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(arr).all():
            raise LatentdimError(f"{name} contains NaN or inf; check the samples it was computed from")

    diff = mu1 - mu2

    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Product might be almost singular (e.g. fewer samples than dimensions): regularise both
        # covariances by eps * I, as pytorch-fid does. The trace terms below keep the originals.
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise ValueError(f"sqrtm(sigma1 @ sigma2) is not finite even after adding {eps} * I")

    # sqrtm may return a complex array with tiny imaginary parts from rounding; drop them, but a
    # large one means a covariance was not positive semi-definite and the distance is meaningless.
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=IMAG_ATOL):
            m = np.max(np.abs(covmean.imag))
            raise ValueError(f"imaginary component {m} in sqrtm(sigma1 @ sigma2); are both covariances PSD?")
        covmean = covmean.real

    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """scipy's matrix square root, without its singular-matrix warning.

    A singular product is expected for rank-deficient covariances; the caller checks finiteness
    and falls back to the eps offset, so the warning carries no information the caller lacks.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(a)


def gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a sample set, the Gaussian fit the Frechet distance compares.

    Args:
        x: samples, shape (N, d), one sample per row; N >= 2.

    Returns:
        ``(mu, sigma)``: float64 mean of shape (d,) and unbiased (N - 1) covariance of shape (d, d).

    Raises:
        LatentdimError: if ``x`` is not 2-D, has fewer than 2 rows, or holds NaN or inf.
    """
    x = finite_rows(x, "samples", 2, "a covariance")
    mu = x.mean(axis=0)
    # atleast_2d: np.cov returns a 0-d array when d == 1.
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def frechet_distance_samples(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between the Gaussian fits of two sample sets (SPEC §7, vector data).

    Args:
        a: first sample set, shape (N, d), N >= 2.
        b: second sample set, shape (M, d), M >= 2, same d.

    Returns:
        ``frechet_distance(*gaussian_stats(a), *gaussian_stats(b))``.

    Raises:
        LatentdimError: if either set is malformed (see :func:`gaussian_stats`) or the feature
            dimensions differ.
    """
    mu1, sigma1 = gaussian_stats(a)
    mu2, sigma2 = gaussian_stats(b)
    if mu1.shape != mu2.shape:
        raise LatentdimError(
            f"sample sets must have the same number of features, got {mu1.shape[0]} and {mu2.shape[0]}"
        )
    # sqrtm's rounding noise grows with the covariances' scale (and is largest for rank-deficient
    # ones, e.g. few samples), so data in large units (standard deviations of 5e5, or integers
    # near 1e18) exceeded frechet_distance's absolute tolerance and raised ValueError. The
    # distance scales as units squared: compute it in a power-of-two unit (exact in floating
    # point) that brings the largest standard deviation into [0.5, 1), and scale back. Data whose
    # standard deviations are at most 1 (pixels in [0, 1]) is passed as it is.
    spread = math.sqrt(max(float(np.max(np.diagonal(sigma1))), float(np.max(np.diagonal(sigma2)))))
    if spread > _LARGE_SPREAD:
        unit = 2.0 ** math.frexp(spread)[1]
        return frechet_distance(mu1 / unit, sigma1 / unit**2, mu2 / unit, sigma2 / unit**2) * unit**2
    return frechet_distance(mu1, sigma1, mu2, sigma2)
