"""Tests of latentdim.data: the synthetic process of SPEC §6, validation, HDF5 loading."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from latentdim.data import (
    Standardiser,
    VectorData,
    from_array,
    load_source,
    make_synthetic,
    parse_synthetic_spec,
)
from latentdim.data.vectors import validate_vectors
from latentdim.errors import LatentdimError

SLOPE = 0.2


def _reference_network(n: int, d: int, seed: int) -> tuple[np.ndarray, ...]:
    """The SPEC §6 network drawn independently, in the documented order: W1, b1, W2, b2, then z."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n), size=(n, 128))
    b1 = rng.normal(0.0, 0.1, size=128)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(128), size=(128, d))
    b2 = rng.normal(0.0, 0.1, size=d)
    return w1, b1, w2, b2, rng


def _lrelu(y: np.ndarray) -> np.ndarray:
    return np.where(y >= 0, y, SLOPE * y)


def _lrelu_inverse(y: np.ndarray) -> np.ndarray:
    return np.where(y >= 0, y, y / SLOPE)


# ---------------------------------------------------------------- synthetic data (SPEC §6)


def test_synthetic_shape_dtype_finite() -> None:
    x = make_synthetic(3, d=16, samples=50, seed=0)
    assert x.shape == (50, 16)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))


def test_synthetic_is_deterministic_in_seed() -> None:
    assert_array_equal(make_synthetic(2, 8, 20, seed=5), make_synthetic(2, 8, 20, seed=5))
    assert not np.array_equal(make_synthetic(2, 8, 20, seed=5), make_synthetic(2, 8, 20, seed=6))


def test_synthetic_matches_reference_implementation() -> None:
    n, d, samples, seed = 3, 24, 40, 2
    w1, b1, w2, b2, rng = _reference_network(n, d, seed)
    z = rng.standard_normal((samples, n))
    expected = _lrelu(_lrelu(z @ w1 + b1) @ w2 + b2)
    assert_allclose(make_synthetic(n, d, samples, seed), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("n", "seed"), [(2, 0), (5, 7)])
def test_synthetic_inverts_layerwise_to_a_rank_n_matrix(n: int, seed: int) -> None:
    # Undo the network layer by layer (leaky-ReLU is a bijection, W2 is square and invertible
    # for d = 128): the first layer's pre-activations minus b1 equal z @ W1, of rank exactly n.
    x = make_synthetic(n, d=128, samples=200, seed=seed).astype(np.float64)
    w1, b1, w2, b2, _ = _reference_network(n, 128, seed)
    hidden = np.linalg.solve(w2.T, (_lrelu_inverse(x) - b2).T).T
    first = _lrelu_inverse(hidden) - b1
    singular = np.linalg.svd(first, compute_uv=False)
    # The gap is float32 rounding amplified by cond(W2) (a few hundred): ~1e-6, far below 1e-3.
    assert singular[n] / singular[n - 1] < 1e-3
    assert singular[n - 1] / singular[0] > 0.1


def test_synthetic_jacobian_has_rank_n_when_d_below_hidden_width() -> None:
    # For d < 128 the second layer projects, but generically: the Jacobian
    # W1 diag(s1) W2 diag(s2) keeps rank n at every sample.
    n, d, seed = 3, 16, 1
    w1, b1, w2, b2, rng = _reference_network(n, d, seed)
    z = rng.standard_normal((10, n))
    h1 = z @ w1 + b1
    h2 = _lrelu(h1) @ w2 + b2
    for s1, s2 in zip(np.where(h1 >= 0, 1.0, SLOPE), np.where(h2 >= 0, 1.0, SLOPE)):
        jacobian = (w1 * s1) @ (w2 * s2)
        assert np.linalg.matrix_rank(jacobian) == n


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"n": 2, "d": 0},
        {"n": 2, "samples": 0},
        {"n": 2, "seed": -1},
        {"n": 2.5},
        {"n": True},
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(LatentdimError):
        make_synthetic(**kwargs)


# ---------------------------------------------------------------- Standardiser


def test_standardiser_round_trip_and_moments() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(100, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 5.0, -2.0, 100.0]).astype(
        np.float32
    )
    s = Standardiser.fit(x)
    assert s.mean.dtype == np.float32 and s.std.dtype == np.float32
    assert s.mean.shape == (4,)
    y = s.transform(x)
    assert y.dtype == np.float32
    assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    assert_allclose(y.std(axis=0), 1.0, rtol=1e-5)
    assert_allclose(s.inverse(y), x, rtol=1e-5, atol=1e-4)


def test_standardiser_known_moments() -> None:
    # Column [1, 3]: mean 2, population std 1.
    s = Standardiser.fit(np.array([[1.0], [3.0]]))
    assert_allclose(s.mean, [2.0])
    assert_allclose(s.std, [1.0])


def test_standardiser_constant_column_maps_to_zero_and_back() -> None:
    x = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 4.0]], dtype=np.float32)
    s = Standardiser.fit(x)
    assert s.std[0] == 1.0
    y = s.transform(x)
    assert_array_equal(y[:, 0], 0.0)
    assert_array_equal(s.inverse(y)[:, 0], x[:, 0])


def test_standardiser_dict_round_trip() -> None:
    s = Standardiser(
        mean=np.array([1.5, -2.0], dtype=np.float32), std=np.array([0.5, 1.0], dtype=np.float32)
    )
    d = s.to_dict()
    assert all(isinstance(v, float) for v in d["mean"] + d["std"])
    back = Standardiser.from_dict(d)
    assert_array_equal(back.mean, s.mean)
    assert_array_equal(back.std, s.std)
    assert back.mean.dtype == np.float32


@pytest.mark.parametrize(
    "bad", [{"mean": [1.0]}, {"mean": [1.0, 2.0], "std": [1.0]}, {"mean": [0.0], "std": [0.0]}]
)
def test_standardiser_from_dict_rejects_malformed(bad: dict) -> None:
    with pytest.raises(LatentdimError, match="malformed standardiser"):
        Standardiser.from_dict(bad)


def test_standardiser_rejects_wrong_width() -> None:
    s = Standardiser.fit(np.zeros((3, 2)))
    with pytest.raises(LatentdimError, match="2 columns"):
        s.transform(np.zeros((3, 5)))


# ---------------------------------------------------------------- synthetic spec


def test_parse_synthetic_spec_full_and_defaults() -> None:
    assert parse_synthetic_spec("synthetic:n=8,d=64,samples=5000,seed=3") == {
        "n": 8,
        "d": 64,
        "samples": 5000,
        "seed": 3,
    }
    assert parse_synthetic_spec("synthetic:seed=1, n=4") == {
        "n": 4,
        "d": 128,
        "samples": 20000,
        "seed": 1,
    }


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("synthetic:d=64", "n .* is required"),
        ("synthetic:n=8,m=3", "unknown key 'm'"),
        ("synthetic:n=8,n=9", "'n' given twice"),
        ("synthetic:n=8.5", "n must be an integer"),
        ("synthetic:n=abc", "n must be an integer"),
        ("synthetic:n=", "n must be an integer"),
        ("synthetic:n=8,", "expected key=value"),
        ("synthetic:", "expected key=value"),
        ("synth:n=8", "must start with"),
    ],
)
def test_parse_synthetic_spec_errors(spec: str, problem: str) -> None:
    with pytest.raises(LatentdimError, match=problem) as info:
        parse_synthetic_spec(spec)
    assert "synthetic:n=8[,d=128][,samples=20000][,seed=0]" in str(info.value)


def test_load_source_synthetic_is_canonical() -> None:
    data = load_source("synthetic:n=2,d=8,samples=30")
    assert isinstance(data, VectorData)
    assert data.source == "synthetic:n=2,d=8,samples=30,seed=0"
    assert_array_equal(data.x, make_synthetic(2, 8, 30, 0))


def test_load_source_synthetic_rejects_key() -> None:
    with pytest.raises(LatentdimError, match="--key"):
        load_source("synthetic:n=2,d=8,samples=30", key="X")


# ---------------------------------------------------------------- HDF5 and paths


def _h5(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name.replace("__", "/"), data=value)
    return path


def test_load_single_dataset_without_key(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    path = _h5(tmp_path / "data.h5", X=x)
    data = load_source(path)
    assert data.source == f"{path}:X"
    assert data.x.dtype == np.float32
    assert_array_equal(data.x, x)


def test_load_nested_dataset_without_key(tmp_path: Path) -> None:
    path = _h5(tmp_path / "data.h5", group__inner__X=np.ones((2, 2)))
    data = load_source(str(path))
    assert data.source == f"{path}:group/inner/X"


def test_load_with_key(tmp_path: Path) -> None:
    path = _h5(tmp_path / "data.h5", a=np.ones((2, 2)), g__b=np.zeros((3, 1)))
    assert load_source(path, key="g/b").x.shape == (3, 1)
    assert load_source(path, key="/a").source == f"{path}:a"


def test_load_missing_key_lists_datasets(tmp_path: Path) -> None:
    path = _h5(tmp_path / "data.h5", a=np.ones((2, 2)), g__b=np.ones((2, 2)))
    with pytest.raises(LatentdimError) as info:
        load_source(path, key="c")
    assert str(info.value) == f"HDF5 file {path} has no dataset 'c'; it has: a, g/b"


def test_load_group_as_key_is_not_a_dataset(tmp_path: Path) -> None:
    path = _h5(tmp_path / "data.h5", g__b=np.ones((2, 2)))
    with pytest.raises(LatentdimError, match="has no dataset 'g'; it has: g/b"):
        load_source(path, key="g")


def test_load_several_datasets_without_key(tmp_path: Path) -> None:
    path = _h5(tmp_path / "data.h5", a=np.ones((2, 2)), b=np.ones((2, 2)))
    with pytest.raises(LatentdimError, match=r"several datasets \(a, b\); pass --key NAME"):
        load_source(path)


def test_load_file_without_datasets(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_group("nothing")
    with pytest.raises(LatentdimError, match="holds no datasets"):
        load_source(path)


def test_load_hdf5_nan_and_inf_counted(tmp_path: Path) -> None:
    x = np.zeros((5, 2))
    x[0, 0] = x[1, 1] = x[3, 0] = np.nan
    x[4, 1] = -np.inf
    path = _h5(tmp_path / "data.h5", X=x)
    with pytest.raises(LatentdimError) as info:
        load_source(path)
    assert str(info.value) == (
        f"{path}:X has 3 NaN and 1 infinite values; clean or drop those rows"
    )


def test_load_hdf5_string_dataset_rejected_before_reading(tmp_path: Path) -> None:
    path = _h5(tmp_path / "data.h5", X=np.array([[b"a", b"b"]]))
    with pytest.raises(LatentdimError, match="must be numbers"):
        load_source(path)


def test_load_a_file_of_no_known_format(tmp_path: Path) -> None:
    path = tmp_path / "data.dat"
    path.write_text("1,2\n3,4\n")
    with pytest.raises(LatentdimError, match=f"^{path} is not a file latentdim reads; use a folder of images, an HDF5"):
        load_source(path)


def test_load_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.h5"
    with pytest.raises(LatentdimError, match=f"^no such file or folder: {path}$"):
        load_source(path)


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(LatentdimError, match="image folders") as info:
        load_source(tmp_path)
    assert "\n" not in str(info.value)


def test_load_unknown_spec() -> None:
    with pytest.raises(LatentdimError) as info:
        load_source("foo:bar")
    assert str(info.value) == (
        "unknown source spec 'foo:bar': use a path to an HDF5 file or synthetic:n=8[,...]"
    )


def test_load_windows_drive_path_is_a_path_not_a_spec() -> None:
    with pytest.raises(LatentdimError, match="no such file or folder"):
        load_source("C:\\data\\x.h5")


# ---------------------------------------------------------------- validate_vectors / from_array


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.array([["a", "b"]]), "must be numbers"),
        (np.array([[1, "b"]], dtype=object), "must be numbers"),
        (np.ones((2, 2), dtype=np.complex64), "complex"),
        (np.zeros((2,), dtype=[("a", "f4"), ("b", "f4")]), "must be numbers"),
        (np.ones(5), r"shape \(5,\); vectors need shape \(N, d\)"),
        (np.ones((2, 3, 4)), r"shape \(2, 3, 4\); vectors need shape \(N, d\)"),
        (np.ones(()), r"shape \(\); vectors need shape \(N, d\)"),
        (np.ones((0, 3)), "is empty"),
        (np.ones((3, 0)), "is empty"),
        (np.array([[np.nan, 1.0], [np.nan, 2.0]]), "has 2 NaN and 0 infinite values"),
        (np.array([[np.inf, -np.inf]]), "has 0 NaN and 2 infinite values"),
        (np.array([[1e300]]), "has 0 NaN and 1 infinite values"),
    ],
)
def test_validate_vectors_rejects(x: np.ndarray, message: str) -> None:
    with pytest.raises(LatentdimError, match=message) as info:
        validate_vectors(x, "mydata")
    assert str(info.value).startswith("mydata ")


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_, np.float16, np.float64])
def test_validate_vectors_converts_to_float32(dtype: type) -> None:
    x = np.array([[0, 1], [1, 0]], dtype=dtype)
    out = validate_vectors(x, "mydata")
    assert out.dtype == np.float32
    assert_array_equal(out, [[0.0, 1.0], [1.0, 0.0]])


def test_validate_vectors_keeps_float32_without_copy() -> None:
    x = np.ones((3, 2), dtype=np.float32)
    assert validate_vectors(x, "mydata") is x


def test_from_array_list_and_errors() -> None:
    data = from_array([[1, 2], [3, 4]])
    assert data.source == "array"
    assert data.x.dtype == np.float32
    with pytest.raises(LatentdimError, match="^array cannot be read"):
        from_array([[1, 2], [3]])
    with pytest.raises(LatentdimError, match="^mine has shape"):
        from_array([1, 2, 3], source="mine")


def test_from_array_torch_tensor() -> None:
    torch = pytest.importorskip("torch")
    x = torch.ones(3, 2, requires_grad=True)
    data = from_array(x)
    assert data.x.dtype == np.float32
    assert_array_equal(data.x, np.ones((3, 2)))
