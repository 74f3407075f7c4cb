"""Improved precision and recall (Kynkaanniemi et al. 2019) of generated against real samples.

Each set's support is estimated as the union of balls around its points, each ball's radius the
distance to that point's k-th nearest neighbour in the same set (k = 3, as in the paper).
Precision is the fraction of generated points inside the real support (are the samples
realistic?); recall is the fraction of real points inside the generated support (is the data
covered?). As in the reference implementation, a point on a ball's boundary counts as inside.

Distances are computed in row batches, so 5,000 x 5,000 points never need the full matrix.
"""

from __future__ import annotations

import numpy as np

from latentdim.errors import LatentdimError
from latentdim.metrics._distances import sq_distances
from latentdim.metrics._validate import finite_rows

#: Neighbour index of the radius; the paper's choice.
K_NEIGHBOUR = 3
#: Rows per batch of distances: 1024 x 5,000 float64 is 40 MB.
BATCH_ROWS = 1024


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = K_NEIGHBOUR, batch_rows: int = BATCH_ROWS
) -> tuple[float, float]:
    """Improved precision and recall of ``fake`` against ``real``.

    Args:
        real: real samples, shape (N, D), N > k.
        fake: generated samples, shape (M, D), M > k, in the same space as ``real``.
        k: the k-th nearest neighbour (the point itself not counted) sets each ball's radius.
        batch_rows: query rows per distance batch; bounds memory at batch_rows x max(N, M).

    Returns:
        ``(precision, recall)``, each in [0, 1].

    Raises:
        LatentdimError: if either set is not 2-D, holds NaN or inf, has no more than ``k`` rows,
            or the feature dimensions differ; or if ``k`` or ``batch_rows`` is below 1.
    """
    if k < 1:
        raise LatentdimError(f"k must be at least 1, got {k}")
    if batch_rows < 1:
        raise LatentdimError(f"batch_rows must be at least 1, got {batch_rows}")
    real = _check(real, "real", k)
    fake = _check(fake, "fake", k)
    if real.shape[1] != fake.shape[1]:
        raise LatentdimError(f"real and generated samples differ in features: {real.shape[1]} and {fake.shape[1]}")
    # Centre both sets on one point: ||a||^2 + ||b||^2 - 2 a.b loses digits to cancellation when
    # the data sits far from the origin, and a shift changes no distance.
    origin = real.mean(axis=0)
    real, fake = real - origin, fake - origin
    real_radii2 = kth_neighbour_sq_distances(real, k, batch_rows)
    fake_radii2 = kth_neighbour_sq_distances(fake, k, batch_rows)
    fake_inside, real_inside = inside_each_others_balls(fake, real, fake_radii2, real_radii2, batch_rows)
    return float(fake_inside.mean()), float(real_inside.mean())


def kth_neighbour_sq_distances(x: np.ndarray, k: int, batch_rows: int = BATCH_ROWS) -> np.ndarray:
    """Squared distance from each point to its k-th nearest neighbour in ``x``, itself excluded.

    Args:
        x: points, shape (N, D), N > k, float64.
        k: neighbour index, 1 <= k < N.
        batch_rows: rows per distance batch.

    Returns:
        float64 array (N,).
    """
    n = x.shape[0]
    out = np.empty(n)
    for start in range(0, n, batch_rows):
        d2 = sq_distances(x[start : start + batch_rows], x)
        # Each point's distance to itself is exactly 0 (not the rounding residue of the
        # expansion), so it is the smallest and index k of the partition is the k-th neighbour.
        rows = np.arange(d2.shape[0])
        d2[rows, start + rows] = 0.0
        out[start : start + d2.shape[0]] = np.partition(d2, k, axis=1)[:, k]
    return out


def inside_each_others_balls(
    a: np.ndarray, b: np.ndarray, a_radii2: np.ndarray, b_radii2: np.ndarray, batch_rows: int = BATCH_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each point of one set lies in at least one ball of the other, both ways.

    One pass over the distances serves both questions (||a_i - b_j||^2 <= b_radii2_j and
    <= a_radii2_i), a third fewer matrix products than a pass each way.

    Args:
        a: points, shape (A, D), with squared ball radii ``a_radii2`` (A,).
        b: points, shape (B, D), with squared ball radii ``b_radii2`` (B,).
        batch_rows: rows of ``a`` per distance batch; bounds memory at batch_rows x B.

    Returns:
        boolean arrays (A,): a_i inside some ball of b, and (B,): b_j inside some ball of a.
    """
    a_inside = np.empty(a.shape[0], dtype=bool)
    b_inside = np.zeros(b.shape[0], dtype=bool)
    for start in range(0, a.shape[0], batch_rows):
        d2 = sq_distances(a[start : start + batch_rows], b)
        a_inside[start : start + d2.shape[0]] = (d2 <= b_radii2[None, :]).any(axis=1)
        b_inside |= (d2 <= a_radii2[start : start + d2.shape[0], None]).any(axis=0)
    return a_inside, b_inside


def _check(x: np.ndarray, name: str, k: int) -> np.ndarray:
    """Validate a sample set (N, D) with N > k and convert it to float64."""
    # More than k rows: each point needs k neighbours other than itself.
    return finite_rows(x, f"{name} samples", k + 1, f"precision and recall with k = {k}")
