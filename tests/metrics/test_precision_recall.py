"""Tests for latentdim.metrics.precision_recall: point clouds with closed-form answers and a
brute-force reference over the full distance matrix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from latentdim.errors import LatentdimError
from latentdim.metrics.precision_recall import precision_recall


def _reference(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al. 2019 over full distance matrices (the point itself at column 0)."""
    real_r = np.sort(cdist(real, real), axis=1)[:, k]
    fake_r = np.sort(cdist(fake, fake), axis=1)[:, k]
    precision = np.mean((cdist(fake, real) <= real_r[None, :]).any(axis=1))
    recall = np.mean((cdist(real, fake) <= fake_r[None, :]).any(axis=1))
    return float(precision), float(recall)


def test_identical_sets_give_one_one():
    x = np.random.default_rng(0).normal(size=(300, 5))
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x, batch_rows=7) == (1.0, 1.0)


def test_disjoint_far_apart_clouds_give_zero_zero():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 4))
    fake = rng.normal(size=(150, 4)) + 1000.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_half_support_on_a_grid_closed_form():
    # Real: the integers 0..99 on a line; generated: 0..49, the left half. With k = 3 an interior
    # point's radius is 2 (neighbours at 1, 1, 2) and an end point's is 3 (1, 2, 3).
    # Precision: every generated point is a real point -> 1.
    # Recall: the generated balls cover 0..51 with radius 2, and the end point 49 reaches 52:
    # real points 0..52 are covered, 53 of 100.
    real = np.arange(100.0)[:, None]
    fake = np.arange(50.0)[:, None]
    assert precision_recall(real, fake) == (1.0, 0.53)
    # Swapped roles: the same count is now the precision.
    assert precision_recall(fake, real) == (0.53, 1.0)
    # Embedding the line in 3-D (integer coordinates keep the boundary cases exact) scales every
    # distance by 5 and changes no answer.
    embed = np.array([[3.0, 4.0, 0.0]])
    assert precision_recall(real @ embed + 5.0, fake @ embed + 5.0, batch_rows=16) == (1.0, 0.53)


def test_sparser_generated_grid_closed_form():
    # Real: integers 0..99 (radius 2; 3 at the ends 0 and 99). Generated: the even integers
    # 0..98 (radius 4; 6 at the ends). Every generated point is real: precision 1; every real point
    # is within 1 of an even one: recall 1.
    real = np.arange(100.0)[:, None]
    fake = np.arange(0.0, 100.0, 2.0)[:, None]
    assert precision_recall(real, fake) == (1.0, 1.0)
    # Shifted by 4.5 to 4.5..102.5: 102.5 is 3.5 from the real end 99 (radius 3) and out, every
    # other generated point is within 1.5 of a real one: precision 49/50. The generated end 4.5
    # has radius 6 and reaches -1.5, so all real points stay covered: recall 1.
    assert precision_recall(real, fake + 4.5) == (0.98, 1.0)


@pytest.mark.parametrize("batch_rows", [1, 33, 1024])
def test_matches_brute_force_reference(batch_rows):
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 6))
    fake = 0.8 * rng.normal(size=(300, 6)) + 0.5  # partly overlapping, partly not
    expected = _reference(real, fake)
    assert 0.0 < expected[0] < 1.0 and 0.0 < expected[1] < 1.0  # a case that tests something
    assert precision_recall(real, fake, batch_rows=batch_rows) == pytest.approx(expected, abs=1e-12)
    assert precision_recall(real, fake, k=5) == pytest.approx(_reference(real, fake, k=5), abs=1e-12)


def test_far_from_the_origin_is_still_exact():
    # Uncentred, the squared-distance expansion gives (0.955, 0.95) at 1e7 and (1, 1) at 1e8;
    # centring on the real mean keeps the answer.
    rng = np.random.default_rng(3)
    real = rng.normal(size=(200, 3))
    fake = rng.normal(size=(200, 3))
    expected = _reference(real, fake)
    for offset in (1e7, 1e8):
        assert precision_recall(real + offset, fake + offset) == pytest.approx(expected, abs=1e-12)


def test_bad_input_raises():
    x = np.zeros((10, 2))
    with pytest.raises(LatentdimError, match="at least 4"):
        precision_recall(x[:3], x)
    with pytest.raises(LatentdimError, match="features"):
        precision_recall(x, np.zeros((10, 3)))
    with pytest.raises(LatentdimError, match="NaN"):
        precision_recall(x, np.full((10, 2), np.nan))
    with pytest.raises(LatentdimError, match="2-D"):
        precision_recall(np.zeros(10), x)
    with pytest.raises(LatentdimError, match="k"):
        precision_recall(x, x, k=0)
