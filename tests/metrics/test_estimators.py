"""Tests for latentdim.metrics.estimators: closed forms, a brute-force re-implementation of each
published formula, and scikit-dimension itself on its own benchmark manifolds (issue 4: 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

from latentdim.errors import LatentdimError
from latentdim.metrics.estimators import (
    classical_estimates,
    classical_estimates_or_reasons,
    lpca,
    mle,
    mle_from_distances,
    nearest_neighbours,
    twonn,
    twonn_from_distances,
)

# --- closed forms ------------------------------------------------------------------------------


def test_twonn_closed_form_on_a_doubling_line():
    # Points at 2^i - 1: for i >= 2 the neighbours lie at 2, 3 (left) and 4 (right) times 2^(i-2),
    # so mu = 3/2; points 0 and 1 have mu = 3 and 2. With N = 30 the int(27) kept ratios are all
    # 3/2, and the slope through the origin is sum_i -log(1 - i/N) / (27 log 3/2).
    n = 30
    x = (2.0 ** np.arange(n) - 1.0)[:, None]
    n_keep = 27
    expected = -np.log(1.0 - np.arange(1, n_keep + 1) / n).sum() / (n_keep * np.log(1.5))
    assert twonn(x) == pytest.approx(expected, rel=1e-12)


def test_mle_closed_form_on_a_circle():
    # N equally spaced points on a circle: every point's 20 neighbours are the chords
    # 2 sin(pi t / N), t = 1..10, each twice, so m_i = 19 / (2 sum_t log(chord_10 / chord_t)) for
    # every i, and so is their harmonic mean.
    n = 360
    angle = 2.0 * np.pi * np.arange(n) / n
    x = np.column_stack([np.cos(angle), np.sin(angle)])
    chord = 2.0 * np.sin(np.pi * np.arange(1, 11) / n)
    expected = 19.0 / (2.0 * np.log(chord[-1] / chord).sum())
    assert mle(x) == pytest.approx(expected, rel=1e-9)


def test_lpca_on_a_flat_subspace_is_its_dimension():
    # Uniform points on a random 3-D affine subspace of R^10: every neighbourhood has exactly 3
    # nonzero covariance eigenvalues, and none of them is near 5 % of the largest.
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(10, 3)))[0].T  # (3, 10), orthonormal rows
    x = rng.uniform(size=(600, 3)) @ basis + rng.normal(size=10)
    assert lpca(x) == 3.0
    assert classical_estimates(x)["lpca"] == 3.0


def test_mle_from_distances_hand_computed():
    # One point with neighbours at 1, 2, 4: sum log(4 / T_j) = log 4 + log 2 = 3 log 2, m = 2 / (3 log 2).
    # A second point with neighbours at 1, 1, 2: sum = 2 log 2, m = 2 / (2 log 2).
    # Harmonic mean of the two: 2 / mean(3 log 2, 2 log 2) = 2 / (2.5 log 2).
    d = np.array([[1.0, 2.0, 4.0], [1.0, 1.0, 2.0]])
    assert mle_from_distances(d) == pytest.approx(2.0 / (2.5 * np.log(2.0)), rel=1e-12)


def test_twonn_from_distances_drops_zero_first_distances():
    r1 = np.array([0.0, 1.0, 1.0, 1.0, 1.0])
    r2 = np.array([1.0, np.e, np.e, np.e, np.e ** 2])
    # The duplicate (r1 = 0) is dropped; N = 4 ratios, int(3.6) = 3 kept, all with log mu = 1:
    # slope = sum_{i=1..3} -log(1 - i/4) / 3.
    expected = -np.log(1.0 - np.arange(1, 4) / 4.0).sum() / 3.0
    assert twonn_from_distances(r1, r2) == pytest.approx(expected, rel=1e-12)


# --- a brute-force re-implementation of each formula ------------------------------------------


def _reference(x: np.ndarray) -> dict[str, float]:
    """The published formulas over a full distance matrix, without any shared code."""
    n = len(x)
    dist = cdist(x, x)
    order = np.argsort(dist, axis=1)[:, 1:]  # drop self
    sorted_d = np.take_along_axis(dist, order, axis=1)
    # TwoNN (Facco et al. 2017), 10 % of the largest ratios discarded, line through the origin.
    mu = np.sort(sorted_d[:, 1] / sorted_d[:, 0])
    keep = int(n * 0.9)
    xs, ys = np.log(mu[:keep]), -np.log(1 - np.arange(1, keep + 1) / n)
    two = np.linalg.lstsq(xs[:, None], ys, rcond=None)[0][0]
    # MLE (Levina-Bickel), k = 20, harmonic mean of the pointwise estimates.
    t = sorted_d[:, :20]
    m_i = 19.0 / np.log(t[:, -1:] / t).sum(axis=1)
    ml = 1.0 / np.mean(1.0 / m_i)
    # Local PCA, 100 neighbours, eigenvalues of the covariance above 5 % of the largest.
    counts = []
    for i in range(n):
        ev = np.linalg.svd(np.cov(x[order[i, :100]], rowvar=False), compute_uv=False)
        counts.append(np.sum(ev > 0.05 * ev[0]))
    return {"twonn": float(two), "mle": float(ml), "lpca": float(np.mean(counts))}


def test_matches_brute_force_reference_on_a_curved_surface():
    rng = np.random.default_rng(1)
    u = rng.uniform(-1, 1, size=(500, 2))
    x = np.column_stack([u, np.sin(3 * u[:, 0]) * u[:, 1], u[:, 0] ** 2, np.cos(u[:, 1])])
    ref = _reference(x)
    got = classical_estimates(x)
    for key in ("twonn", "mle", "lpca"):
        assert got[key] == pytest.approx(ref[key], abs=1e-9), key
    assert (twonn(x), mle(x), lpca(x)) == pytest.approx((ref["twonn"], ref["mle"], ref["lpca"]), abs=1e-9)


# --- the neighbour search in many dimensions ---------------------------------------------------


@pytest.mark.parametrize("d", [3, 16, 64])
def test_neighbours_match_a_full_distance_matrix(d):
    # d = 3 takes the k-d tree, 16 and 64 the brute force; both against cdist and a full sort.
    x = np.random.default_rng(d).normal(size=(700, d))
    dist = cdist(x, x)
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1)[:, :25]
    got_d, got_i = nearest_neighbours(x, 25)
    np.testing.assert_array_equal(got_i, order)
    np.testing.assert_allclose(got_d, np.take_along_axis(dist, order, axis=1), rtol=1e-12)


def test_near_neighbours_in_many_dimensions_keep_their_digits():
    # Points 1e3 from each other, two of them 1e-5 apart: ||a||^2 + ||b||^2 - 2 a.b has rounding
    # of ~1e-9 there, far above the true 1e-10, so the distances must come from differences.
    x = 1e3 * np.random.default_rng(7).normal(size=(300, 40))
    step = np.zeros(40)
    step[3] = 1e-5
    x[1] = x[0] + step
    x[2] = x[0]  # an exact duplicate: distance 0, and it is the other copy, not the point itself
    dist, idx = nearest_neighbours(x, 2)
    assert idx[0].tolist() == [2, 1] and dist[0, 0] == 0.0
    assert dist[0, 1] == pytest.approx(1e-5, rel=1e-9)
    assert dist[1, 0] == pytest.approx(1e-5, rel=1e-9) and idx[2, 0] == 0


# --- scikit-dimension on its own manifolds ------------------------------------------------------

BENCHMARK_NAMES = [
    "M1_Sphere", "M2_Affine_3to5", "M3_Nonlinear_4to6", "M4_Nonlinear", "M5a_Helix1d", "M5b_Helix2d",
    "M6_Nonlinear", "M7_Roll", "M8_Nonlinear", "M9_Affine", "M10a_Cubic", "M10b_Cubic", "M10c_Cubic",
    "M10d_Cubic", "M11_Moebius", "M12_Norm", "M13a_Scurve", "M13b_Spiral", "Mbeta", "Mn1_Nonlinear",
    "Mn2_Nonlinear", "Mp1_Paraboloid", "Mp2_Paraboloid", "Mp3_Paraboloid",
]  # fmt: skip
# skdim's lPCA refits sklearn's PCA per point (about 1 s per 1,000 points): a varied subset.
LPCA_NAMES = ["M1_Sphere", "M4_Nonlinear", "M7_Roll", "M10b_Cubic", "M13b_Spiral", "Mn1_Nonlinear"]
# skdim's lPCA divides consecutive eigenvalues for its gap_ attribute; zeros there only warn.
quiet_skdim_gaps = pytest.mark.filterwarnings(
    "ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning"
)


def _skdim_lpca(skdim, x: np.ndarray) -> float:
    """skdim's local PCA as its README shows it: per-point ``lPCA`` on 100 neighbours, averaged."""
    # One sklearn PCA per point; with BLAS threads on a busy machine that took 50 s instead of 2.
    with threadpool_limits(limits=1, user_api="blas"):
        return float(skdim.id.lPCA().fit_pw(x, n_neighbors=100).dimension_pw_.mean())


def _benchmark(name: str, n: int) -> np.ndarray:
    skdim = pytest.importorskip("skdim")
    pytest.importorskip("pandas")  # BenchmarkManifolds builds its truth table with pandas
    bm = skdim.datasets.BenchmarkManifolds(random_state=0)
    d, dim, _ = bm._dict_truth[name]
    return bm.generate(name, n=n, dim=dim, d=d)


@pytest.mark.parametrize("name", BENCHMARK_NAMES)
def test_twonn_and_mle_match_skdim_on_benchmark_manifolds(name):
    skdim = pytest.importorskip("skdim")
    x = _benchmark(name, 1000)
    assert twonn(x) == pytest.approx(skdim.id.TwoNN().fit(x).dimension_, abs=1e-6)
    # MLE.fit combines with comb='mle' (harmonic mean) by default.
    assert mle(x) == pytest.approx(skdim.id.MLE().fit(x).dimension_, abs=1e-6)


@quiet_skdim_gaps
@pytest.mark.parametrize("name", LPCA_NAMES)
def test_lpca_matches_skdim_on_benchmark_manifolds(name):
    skdim = pytest.importorskip("skdim")
    x = _benchmark(name, 500)
    assert lpca(x) == pytest.approx(_skdim_lpca(skdim, x), abs=1e-6)


@quiet_skdim_gaps
@pytest.mark.parametrize(("generator", "d"), [("hyperBall", 3), ("hyperBall", 7), ("hyperSphere", 5)])
def test_all_three_match_skdim_on_balls_and_spheres(generator, d):
    skdim = pytest.importorskip("skdim")
    x = getattr(skdim.datasets, generator)(n=600, d=d, random_state=1)
    got = classical_estimates(x)
    assert got["twonn"] == pytest.approx(skdim.id.TwoNN().fit(x).dimension_, abs=1e-6)
    assert got["mle"] == pytest.approx(skdim.id.MLE().fit(x).dimension_, abs=1e-6)
    assert got["lpca"] == pytest.approx(_skdim_lpca(skdim, x), abs=1e-6)


@quiet_skdim_gaps
def test_subsample_matches_skdim_on_the_same_rows():
    skdim = pytest.importorskip("skdim")
    x = skdim.datasets.hyperBall(n=3000, d=4, random_state=2)
    got = classical_estimates(x, max_points=400, seed=5)
    # The documented rule: rows drawn without replacement by default_rng(seed), kept in order.
    sub = x[np.sort(np.random.default_rng(5).choice(3000, size=400, replace=False))]
    assert got["twonn"] == pytest.approx(skdim.id.TwoNN().fit(sub).dimension_, abs=1e-6)
    assert got["mle"] == pytest.approx(skdim.id.MLE().fit(sub).dimension_, abs=1e-6)
    assert got["lpca"] == pytest.approx(_skdim_lpca(skdim, sub), abs=1e-6)


# --- behaviour and bad input -------------------------------------------------------------------


def test_classical_estimates_is_seeded_and_ignores_duplicates():
    x = np.random.default_rng(3).normal(size=(900, 4))
    a = classical_estimates(x, max_points=300, seed=1)
    assert a == classical_estimates(x, max_points=300, seed=1)
    assert a != classical_estimates(x, max_points=300, seed=2)
    assert set(a) == {"twonn", "mle", "lpca"} and all(isinstance(v, float) for v in a.values())
    small = x[:200]
    assert classical_estimates(np.concatenate([small, small[:50]])) == classical_estimates(small)


def test_small_sets_clamp_the_neighbourhoods():
    # 5 points: MLE uses k = 4 and lPCA 4 neighbours, as skdim clamps n_neighbors to N - 1.
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [1.0, 4.0]])
    dist, _ = nearest_neighbours(x, 4)
    assert classical_estimates(x)["mle"] == pytest.approx(mle_from_distances(dist), rel=1e-12)


def test_bad_input_raises():
    with pytest.raises(LatentdimError, match="2-D"):
        classical_estimates(np.zeros(10))
    with pytest.raises(LatentdimError, match="NaN"):
        classical_estimates(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]))
    with pytest.raises(LatentdimError, match="3 distinct"):
        classical_estimates(np.ones((50, 3)))
    with pytest.raises(LatentdimError, match="duplicate"):
        mle(np.array([[0.0], [0.0], [1.0], [3.0]]))
    with pytest.raises(LatentdimError, match="discard_fraction"):
        twonn(np.arange(10.0)[:, None], discard_fraction=0.0)
    with pytest.raises(LatentdimError, match="k"):
        nearest_neighbours(np.zeros((3, 2)), 3)


def test_an_undefined_estimator_gives_a_reason_and_leaves_the_others():
    # A 10 x 10 integer grid: every ratio r2 / r1 is 1, so TwoNN is undefined; every 99-point
    # neighbourhood spans the plane with comparable spread in both directions, so lPCA is 2.
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10)), axis=-1).reshape(-1, 2).astype(float)
    values, reasons = classical_estimates_or_reasons(grid)
    assert values["twonn"] is None and values["lpca"] == 2.0
    assert values["mle"] == pytest.approx(mle(grid), rel=1e-12)
    assert reasons == {"twonn": "TwoNN is undefined: every point's two nearest neighbours are equidistant"}
    with pytest.raises(LatentdimError, match="TwoNN is undefined"):
        classical_estimates(grid)  # the strict form still stops
    x = np.random.default_rng(0).normal(size=(200, 3))
    assert classical_estimates_or_reasons(x) == (classical_estimates(x), {})
