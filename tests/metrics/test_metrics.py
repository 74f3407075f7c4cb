"""Tests for latentdim.metrics: every expected number is a closed form or an independent reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from latentdim.errors import LatentdimError
from latentdim.metrics import (
    frechet_distance,
    frechet_distance_samples,
    gaussian_stats,
    nac,
    normalised_abs_covariance,
)

def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _reference_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """pytorch-fid's calculate_frechet_distance: scipy's sqrtm of the product (a Schur method,
    independent of the eigendecompositions latentdim uses), imaginary rounding dropped."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


# --- Frechet distance ------------------------------------------------------------------------


def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(0)
    sigma = _random_spd(rng, 4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_diagonal_covariances_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    # (1-2)^2 + (2-1)^2 + (3-0.5)^2 + (1 + 0 + 4) = 1 + 1 + 6.25 + 5
    expected = 13.25
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_matches_eigen_reference_on_random_spd():
    rng = np.random.default_rng(1)
    for d in (1, 3, 6):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        expected = _reference_frechet(mu1, s1, mu2, s2)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_identical_sample_sets_give_zero():
    x = np.random.default_rng(2).normal(size=(40, 5))
    assert frechet_distance_samples(x, x) == pytest.approx(0.0, abs=1e-6)


def test_rank_deficient_covariances_are_finite():
    # Diagonal with zero variances: the closed form sum (sqrt a - sqrt b)^2 still holds.
    a, b = np.array([0.0, 4.0, 1.0]), np.array([1.0, 0.0, 1.0])
    mu = np.zeros(3)
    assert frechet_distance(mu, np.diag(a), mu, np.diag(b)) == pytest.approx(1.0 + 4.0 + 0.0, abs=1e-6)

    # Fewer samples than dimensions: both covariances are rank-deficient.
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 8)), rng.normal(size=(5, 8)) + 1.0
    value = frechet_distance_samples(x, y)
    assert np.isfinite(value)
    assert value == pytest.approx(_reference_frechet(*gaussian_stats(x), *gaussian_stats(y)), rel=1e-5)


def test_matches_sqrtm_reference_on_rank_deficient_sample_covariances():
    # Pixel-like data: 30 samples of 50 values, so both covariances have rank 29 and the product
    # is singular (the case that made scipy's sqrtm fall back to an eps offset before).
    rng = np.random.default_rng(4)
    x, y = rng.random((30, 50)), rng.random((30, 50)) ** 2
    expected = _reference_frechet(*gaussian_stats(x), *gaussian_stats(y))
    assert frechet_distance_samples(x, y) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("which", [0, 1])
def test_covariance_that_is_not_psd_raises(which):
    mu, good, bad = np.zeros(2), np.eye(2), np.diag([1.0, -1.0])
    sigmas = (bad, good) if which == 0 else (good, bad)
    with pytest.raises(ValueError, match=f"sigma{which + 1} is not positive semi-definite"):
        frechet_distance(mu, sigmas[0], mu, sigmas[1])


def test_rounding_below_zero_is_not_an_error():
    # 5 samples of 40 values: a rank-4 covariance whose zero eigenvalues come out of eigh as
    # about -3e-16. The distance of the set to itself is 0 up to the square roots of the null
    # space's rounding (36 of about 1e-16, 1e-8 each).
    x = np.random.default_rng(0).random((5, 40))
    mu, sigma = gaussian_stats(x)
    assert np.linalg.eigvalsh(sigma).min() < 0.0
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_mismatched_dimensions_raise():
    with pytest.raises(LatentdimError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(LatentdimError):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(LatentdimError):
        frechet_distance_samples(np.zeros((5, 2)), np.zeros((5, 3)))


def test_gaussian_stats_closed_form():
    x = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    mu, sigma = gaussian_stats(x)
    # Deviations (-1, -2) and (1, 2), divided by N - 1 = 1.
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, [[2.0, 4.0], [4.0, 8.0]])
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    _, sigma1 = gaussian_stats(np.array([[0.0], [2.0]]))
    assert sigma1.shape == (1, 1) and sigma1[0, 0] == pytest.approx(2.0)


def test_gaussian_stats_rejects_bad_input():
    with pytest.raises(LatentdimError):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(LatentdimError):
        gaussian_stats(np.zeros(5))
    with pytest.raises(LatentdimError):
        gaussian_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))


# --- NAC -------------------------------------------------------------------------------------

# L is lower-triangular, so cov(codes) = L L^T = M is known exactly (computed by hand):
L = np.array(
    [
        [2.0, 0.0, 0.0, 0.0],
        [-1.0, 2.0, 0.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [1.0, 0.0, 0.0, 1.0],
    ]
)
M = np.array(
    [
        [4.0, -2.0, 0.0, 2.0],
        [-2.0, 5.0, 2.0, -1.0],
        [0.0, 2.0, 2.0, 0.0],
        [2.0, -1.0, 0.0, 2.0],
    ]
)


def _codes_with_covariance(lower: np.ndarray, n: int = 60, seed: int = 4) -> np.ndarray:
    """Codes Y L^T + offset where Y's sample covariance is exactly I, so cov(codes) = L L^T."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, lower.shape[0]))
    x -= x.mean(axis=0)
    chol = np.linalg.cholesky(x.T @ x / (n - 1))
    y = np.linalg.solve(chol, x.T).T  # whitened: y^T y / (n - 1) = I
    return y @ lower.T + 3.0  # the offset must not matter


def test_construction_has_the_intended_covariance():
    np.testing.assert_allclose(L @ L.T, M)
    np.testing.assert_allclose(np.cov(_codes_with_covariance(L), rowvar=False), M, atol=1e-10)


def test_normalised_abs_covariance_closed_form():
    # |M| has min 0 and max 5, so the normalised matrix is |M| / 5.
    expected = np.abs(M) / 5.0
    got = normalised_abs_covariance(_codes_with_covariance(L))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_nac_all_dims():
    # Off-diagonal |M| entries: 2, 0, 2, 2, 1, 0 (upper triangle), sum 7, over 6 pairs, / 5.
    value, full = nac(_codes_with_covariance(L))
    assert value == pytest.approx(7.0 / 6.0 / 5.0, abs=1e-10)
    np.testing.assert_allclose(full, np.abs(M) / 5.0, atol=1e-10)


def test_nac_normalises_over_active_submatrix_only():
    codes = _codes_with_covariance(L)
    # Active {0, 1, 3}: |M| sub-matrix [[4,2,2],[2,5,1],[2,1,2]], min 1, max 5 -> (x - 1) / 4.
    # Off-diagonal upper entries 1/4, 1/4, 0 -> mean 1/6 (normalising by the full matrix would give 1/3).
    by_bool, full_b = nac(codes, np.array([True, True, False, True]))
    by_idx, full_i = nac(codes, [3, 0, 1])
    assert by_bool == pytest.approx(1.0 / 6.0, abs=1e-10)
    assert by_idx == pytest.approx(by_bool, abs=1e-12)
    # The returned matrix always covers all m dims.
    np.testing.assert_allclose(full_b, np.abs(M) / 5.0, atol=1e-10)
    np.testing.assert_array_equal(full_b, full_i)


def test_nac_fewer_than_two_active_dims_is_none():
    codes = _codes_with_covariance(L)
    value, full = nac(codes, [2])
    assert value is None and full.shape == (4, 4)
    assert nac(codes, np.zeros(4, dtype=bool))[0] is None
    assert nac(codes[:, :1])[0] is None


def test_nac_constant_codes_give_zeros():
    value, full = nac(np.full((10, 3), 0.7))
    assert value == 0.0
    np.testing.assert_array_equal(full, np.zeros((3, 3)))


def test_nac_rejects_bad_input():
    codes = _codes_with_covariance(L)
    with pytest.raises(LatentdimError):
        nac(codes[:1])
    with pytest.raises(LatentdimError):
        nac(codes, np.array([True, False]))
    with pytest.raises(LatentdimError):
        nac(codes, [0, 4])
    with pytest.raises(LatentdimError):
        nac(codes, [1, 1])
    with pytest.raises(LatentdimError):
        normalised_abs_covariance(np.zeros(5))
