"""Classical intrinsic-dimension estimators, shown beside m_A so a user sees whether they agree.

Three estimators, each with scikit-dimension's defaults so the numbers match what the literature
and that library report (issue 4; the tests check agreement to 1e-6 on skdim's own manifolds):

- TwoNN (Facco et al. 2017): the ratio mu = r2 / r1 of each point's second to first neighbour
  distance follows a Pareto law with shape d, so -log(1 - F(mu)) = d log mu. The slope of a line
  through the origin fitted to the empirical distribution is d; the largest 10 % of the ratios
  are discarded (skdim ``TwoNN(discard_fraction=0.1)``).
- MLE (Levina & Bickel 2005): per point, m_i = (k - 1) / sum_{j<k} log(T_k / T_j) over its k = 20
  nearest-neighbour distances T_j; the estimates are combined by their harmonic mean, as MacKay
  and Ghahramani proposed and as ``skdim.id.MLE().fit(X).dimension_`` does (``comb='mle'``).
- lPCA (Fukunaga & Olsen 1971), local: per point, PCA of its 100 nearest neighbours (itself
  excluded), counting the eigenvalues above 0.05 times the largest; the mean of these counts over
  all points (skdim ``lPCA(ver='FO', alphaFO=0.05).fit_pw(X, n_neighbors=100)``, then the mean
  of ``dimension_pw_``, the usage scikit-dimension's README shows).

Neighbours are exact Euclidean: scipy's cKDTree in up to 15 dimensions, above that a blocked
brute force through matrix products whose candidates' distances are recomputed from differences.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from threadpoolctl import threadpool_limits

from latentdim.errors import LatentdimError
from latentdim.metrics._distances import sq_distances
from latentdim.metrics._validate import finite_rows

#: skdim ``TwoNN`` default: fraction of the largest ratios r2 / r1 left out of the fit.
TWONN_DISCARD_FRACTION = 0.1
#: skdim ``MLE`` default neighbourhood size (``MLE._N_NEIGHBORS``).
MLE_NEIGHBOURS = 20
#: Neighbourhood size of scikit-dimension's documented local-PCA usage (``fit_pw`` default).
LPCA_NEIGHBOURS = 100
#: skdim ``lPCA`` default ``alphaFO``: an eigenvalue counts when above this fraction of the largest.
LPCA_ALPHA = 0.05
#: Points used by :func:`classical_estimates`; the neighbour search grows as N^2 in high dimension.
MAX_POINTS = 5000
# Elements (neighbourhoods x neighbours x features) per lPCA batch: ~32 MB of float64 at a time.
_LPCA_BATCH_ELEMENTS = 1 << 22
#: Above this many features the neighbour search is a brute force through matrix products: a k-d
#: tree degrades with dimension (5,000 images of 64 x 64 pixels, 101 neighbours: 198 s against 6 s
#: on one thread). scikit-learn's ``NearestNeighbors(algorithm="auto")`` draws the line here too.
BRUTE_FORCE_FEATURES = 15
# Candidates beyond k taken from the matrix-product distances before the exact ones decide.
_CANDIDATE_MARGIN = 8
# Elements per brute-force batch (distance rows, or candidates x features): ~32 MB of float64.
_BRUTE_BATCH_ELEMENTS = 1 << 22


def nearest_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest neighbours, the point itself excluded.

    Args:
        x: points, shape (N, D), N > k.
        k: number of neighbours, k >= 1.

    Returns:
        ``(distances, indices)``, both of shape (N, k), sorted by increasing distance. With exact
        duplicates one copy may stand in for the other (same coordinates, same distances).

    Raises:
        LatentdimError: if ``x`` is malformed or has no more than ``k`` points.
    """
    x = _check_points(x)
    if not 1 <= k < x.shape[0]:
        raise LatentdimError(f"need 1 <= k < number of points, got k = {k} for {x.shape[0]} points")
    if x.shape[1] > BRUTE_FORCE_FEATURES:
        return _brute_force_neighbours(x, k)
    # k + 1: the query set is the tree's own points, so each point's nearest hit is itself.
    distances, indices = cKDTree(x).query(x, k=k + 1)
    return distances[:, 1:], indices[:, 1:]


def _brute_force_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_neighbours` for many features: candidates from matrix products, exact order.

    The expansion ||a||^2 + ||b||^2 - 2 a.b is fast but loses digits for near neighbours (two
    almost identical images), so it only proposes k + 8 candidates per point; their distances are
    recomputed from coordinate differences and sorted, as a tree returns them.
    """
    n, d = x.shape
    n_cand = min(k + _CANDIDATE_MARGIN, n - 1)
    x = x - x.mean(axis=0)  # a shift changes no distance and keeps the expansion's terms small
    candidates = np.empty((n, n_cand), dtype=np.intp)
    rows = max(1, _BRUTE_BATCH_ELEMENTS // n)
    for start in range(0, n, rows):
        d2 = sq_distances(x[start : start + rows], x)
        own = np.arange(d2.shape[0])
        d2[own, start + own] = np.inf  # a point is not its own neighbour (a duplicate is)
        candidates[start : start + d2.shape[0]] = np.argpartition(d2, n_cand - 1, axis=1)[:, :n_cand]
    exact = np.empty((n, n_cand))
    rows = max(1, _BRUTE_BATCH_ELEMENTS // (n_cand * d))
    for start in range(0, n, rows):
        diff = x[start : start + rows, None, :] - x[candidates[start : start + rows]]
        exact[start : start + diff.shape[0]] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(exact, order, axis=1), np.take_along_axis(candidates, order, axis=1)


def twonn_from_distances(
    r1: np.ndarray, r2: np.ndarray, discard_fraction: float = TWONN_DISCARD_FRACTION
) -> float:
    """TwoNN estimate from first and second nearest-neighbour distances (Facco et al. 2017).

    Args:
        r1: distance of each point to its nearest neighbour, shape (N,).
        r2: distance of each point to its second nearest neighbour, shape (N,).
        discard_fraction: fraction of the largest ratios mu = r2 / r1 left out, in (0, 1).

    Returns:
        The slope d of the least-squares line through the origin of ``-log(1 - i / N)`` against
        ``log mu_(i)``, i = 1 .. int(N (1 - discard_fraction)), where N counts the points with
        r1 > 0 (a duplicate's ratio is undefined; skdim drops those points too).

    Raises:
        LatentdimError: if ``discard_fraction`` is outside (0, 1), fewer than 2 ratios remain, or
            every kept ratio is exactly 1 (equidistant neighbours, as on a lattice).
    """
    if not 0.0 < discard_fraction < 1.0:
        raise LatentdimError(f"discard_fraction must lie in (0, 1), got {discard_fraction}")
    r1, r2 = np.asarray(r1, dtype=np.float64), np.asarray(r2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = r2 / r1
    mu = np.sort(mu[np.isfinite(mu)])
    n = mu.size
    # min(.., n - 1): at i = n the empirical F is 1 and -log(1 - F) is infinite.
    n_keep = min(int(n * (1.0 - discard_fraction)), n - 1)
    if n_keep < 2:
        raise LatentdimError(f"TwoNN needs at least 2 ratios after discarding, got {max(n_keep, 0)} of {n} points")
    log_mu = np.log(mu[:n_keep])
    y = -np.log(1.0 - np.arange(1, n_keep + 1) / n)
    denominator = log_mu @ log_mu
    if denominator == 0.0:
        raise LatentdimError("TwoNN is undefined: every point's two nearest neighbours are equidistant")
    return float(log_mu @ y / denominator)


def mle_from_distances(distances: np.ndarray) -> float:
    """Levina-Bickel MLE from each point's k nearest-neighbour distances, harmonic-mean combined.

    Args:
        distances: sorted nearest-neighbour distances, shape (N, k), k >= 2, all positive.

    Returns:
        ``1 / mean_i(1 / m_i)`` with ``m_i = (k - 1) / sum_{j=1}^{k} log(T_ik / T_ij)`` (the j = k
        term is 0), which equals ``(k - 1) / mean_i(sum_j log(T_ik / T_ij))``.

    Raises:
        LatentdimError: if ``distances`` is not (N, k) with k >= 2, holds a zero distance
            (duplicate points), or every point's k neighbours are equidistant.
    """
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 2 or distances.shape[1] < 2 or distances.shape[0] < 1:
        raise LatentdimError(f"MLE needs distances of shape (N, k) with k >= 2, got {distances.shape}")
    if not (distances[:, 0] > 0).all():
        raise LatentdimError("MLE is undefined for duplicate points (zero neighbour distance); remove duplicates")
    k = distances.shape[1]
    log_sums = np.log(distances[:, -1:] / distances).sum(axis=1)
    # The harmonic mean of m_i written without the division by each sum, so a point whose
    # neighbours are all equidistant (sum 0, m_i infinite) contributes 0 instead of inf.
    mean_sum = log_sums.mean()
    if mean_sum == 0.0:
        raise LatentdimError("MLE is undefined: every point's neighbours are equidistant")
    return float((k - 1) / mean_sum)


def lpca_from_neighbourhoods(x: np.ndarray, indices: np.ndarray, alpha: float = LPCA_ALPHA) -> float:
    """Local PCA (Fukunaga-Olsen rule) averaged over the neighbourhoods ``x[indices[i]]``.

    Args:
        x: points, shape (N, D).
        indices: the neighbours of each point, shape (N, k), k >= 1, values in [0, N).
        alpha: an eigenvalue counts when it exceeds ``alpha`` times the neighbourhood's largest.

    Returns:
        The mean over i of the number of eigenvalues of the (centred) covariance of
        ``x[indices[i]]`` above ``alpha * largest``.

    Raises:
        LatentdimError: if the shapes do not fit or ``alpha`` is outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise LatentdimError(f"alpha must lie in (0, 1), got {alpha}")
    x = np.asarray(x, dtype=np.float64)
    indices = np.asarray(indices)
    if x.ndim != 2 or indices.ndim != 2 or indices.shape[1] < 1:
        raise LatentdimError(f"need points (N, D) and neighbour indices (N, k), got {x.shape} and {indices.shape}")
    n, k = indices.shape
    d = x.shape[1]
    batch = max(1, _LPCA_BATCH_ELEMENTS // (k * d))
    counts = np.empty(n)
    # Thousands of small BLAS/LAPACK calls gain nothing from BLAS threads, and on a busy 2-core
    # machine OpenBLAS's thread hand-offs made them 30x slower (110 s instead of 4 s at N = 5,000).
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, batch):
            hood = x[indices[start : start + batch]]  # (b, k, D)
            hood = hood - hood.mean(axis=1, keepdims=True)
            # The nonzero eigenvalues of the k x k Gram matrix and the D x D scatter matrix are
            # the same; the smaller one is cheaper. Both are (k - 1) times the covariance, and
            # the rule compares eigenvalues with each other, so the scale does not matter.
            gram = hood @ hood.transpose(0, 2, 1) if k <= d else hood.transpose(0, 2, 1) @ hood
            eigenvalues = np.linalg.eigvalsh(gram)  # ascending
            counts[start : start + batch] = (eigenvalues > alpha * eigenvalues[:, -1:]).sum(axis=1)
    return float(counts.mean())


def twonn(x: np.ndarray, discard_fraction: float = TWONN_DISCARD_FRACTION) -> float:
    """TwoNN intrinsic dimension of ``x`` (N, D), N >= 3; see :func:`twonn_from_distances`.

    Raises:
        LatentdimError: as :func:`nearest_neighbours` and :func:`twonn_from_distances`.
    """
    distances, _ = nearest_neighbours(x, 2)
    return twonn_from_distances(distances[:, 0], distances[:, 1], discard_fraction)


def mle(x: np.ndarray, k: int = MLE_NEIGHBOURS) -> float:
    """Levina-Bickel MLE of ``x`` (N, D) with k neighbours (at most N - 1, as skdim clamps).

    Raises:
        LatentdimError: as :func:`nearest_neighbours` and :func:`mle_from_distances`.
    """
    x = _check_points(x)
    distances, _ = nearest_neighbours(x, min(k, x.shape[0] - 1))
    return mle_from_distances(distances)


def lpca(x: np.ndarray, k: int = LPCA_NEIGHBOURS, alpha: float = LPCA_ALPHA) -> float:
    """Local PCA dimension of ``x`` (N, D) over k-neighbourhoods (at most N - 1 neighbours).

    Raises:
        LatentdimError: as :func:`nearest_neighbours` and :func:`lpca_from_neighbourhoods`.
    """
    x = _check_points(x)
    _, indices = nearest_neighbours(x, min(k, x.shape[0] - 1))
    return lpca_from_neighbourhoods(x, indices, alpha)


def classical_estimates(x: np.ndarray, max_points: int = MAX_POINTS, seed: int = 0) -> dict[str, float]:
    """TwoNN, MLE and lPCA on a seeded subsample of ``x``, from one neighbour search.

    Args:
        x: samples, shape (N, D) (flatten images first), in the user's units.
        max_points: at most this many rows, drawn without replacement, are used (>= 3).
        seed: seed of the subsample; equal arguments give equal estimates.

    Returns:
        ``{"twonn": .., "mle": .., "lpca": ..}`` as Python floats. Exact duplicate rows are
        dropped first: their zero neighbour distance makes every estimator's log-ratios undefined.

    Raises:
        LatentdimError: as :func:`classical_estimates_or_reasons`, and if an estimator is undefined
            on ``x`` (e.g. a lattice whose neighbours are all equidistant).
    """
    values, reasons = classical_estimates_or_reasons(x, max_points, seed)
    if reasons:
        raise LatentdimError(next(iter(reasons.values())))
    return {name: float(value) for name, value in values.items()}  # no reasons: none is None


def classical_estimates_or_reasons(
    x: np.ndarray, max_points: int = MAX_POINTS, seed: int = 0
) -> tuple[dict[str, float | None], dict[str, str]]:
    """:func:`classical_estimates`, but an estimator that is undefined on ``x`` gives None and a
    reason instead of stopping the others (``latentdim estimate`` shows the rest beside m_A).

    Args:
        x, max_points, seed: as :func:`classical_estimates`.

    Returns:
        ``(values, reasons)``: ``values`` maps "twonn", "mle" and "lpca" to a Python float, or to
        None when that estimator is undefined on the sample; ``reasons`` maps each such name to
        why (one line), and is empty when all three are defined.

    Raises:
        LatentdimError: if ``x`` is not 2-D, holds NaN or inf, or has fewer than 3 distinct rows
            (no estimator is defined then), or ``max_points`` is below 3.
    """
    if max_points < 3:
        raise LatentdimError(f"max_points must be at least 3, got {max_points}")
    x = np.asarray(x)
    if x.ndim != 2:
        raise LatentdimError(f"samples must be a 2-D array (N, D), got shape {x.shape}")
    if x.shape[0] > max_points:
        rows = np.random.default_rng(seed).choice(x.shape[0], size=max_points, replace=False)
        x = x[np.sort(rows)]
    x = _check_points(x)  # float64 only after subsampling: a full image set would not fit twice
    _, first = np.unique(x, axis=0, return_index=True)
    x = x[np.sort(first)]
    if x.shape[0] < 3:
        raise LatentdimError(
            f"the classical estimators need at least 3 distinct samples, got {x.shape[0]}; use --no-baselines"
        )
    k_mle = min(MLE_NEIGHBOURS, x.shape[0] - 1)
    k_lpca = min(LPCA_NEIGHBOURS, x.shape[0] - 1)
    distances, indices = nearest_neighbours(x, max(k_mle, k_lpca, 2))
    estimators = {
        "twonn": lambda: twonn_from_distances(distances[:, 0], distances[:, 1]),
        "mle": lambda: mle_from_distances(distances[:, :k_mle]),
        "lpca": lambda: lpca_from_neighbourhoods(x, indices[:, :k_lpca]),
    }
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for name, compute in estimators.items():
        try:
            values[name] = compute()
        except LatentdimError as e:  # one undefined estimator says nothing about the others
            values[name], reasons[name] = None, str(e)
    return values, reasons


def _check_points(x: np.ndarray) -> np.ndarray:
    """Validate points (N, D) and convert them to float64; N >= 2 (distances need a pair)."""
    return finite_rows(x, "samples", 2, "a nearest-neighbour estimate")
