"""Vector data: loading it from a source string, validating it, and standardising it.

A *source* is what the user types: a path to an HDF5 file, or ``synthetic:n=8[,...]`` for the
built-in data of SPEC §6. Every loader ends in :func:`validate_vectors`, so all data that reaches
training is a finite float32 array of shape (N, d) and every problem is reported the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
from numpy.typing import ArrayLike

from latentdim.data.arrays import KNOWN_SOURCES, array_file_kind, read_array_file
from latentdim.data.synthetic import DEFAULT_D, DEFAULT_SAMPLES, DEFAULT_SEED, make_synthetic
from latentdim.errors import LatentdimError
from latentdim.data.stream import StreamedVectors, stream_bytes

# Rows per block when scanning or converting data, so a large array is never duplicated whole
# in float64 (or as a boolean mask) just to check it.
CHUNK_ROWS = 65536

SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_FORM = "synthetic:n=8[,d=128][,samples=20000][,seed=0]"
_SYNTHETIC_DEFAULTS = {"d": DEFAULT_D, "samples": DEFAULT_SAMPLES, "seed": DEFAULT_SEED}
_SYNTHETIC_KEYS = ("n", "d", "samples", "seed")
_INTEGER = re.compile(r"[+-]?\d+")
# "C:\data\x.h5" or "C:/data/x.h5" contain a ":" but are paths, not specs.
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")

# bool, signed and unsigned integers, floats: the dtype kinds that convert to float32 as numbers.
_NUMERIC_KINDS = "biuf"

# What h5py raises for a file that opens but whose structure or data cannot be read (corrupt or
# truncated): OSError from reads, RuntimeError from walking a damaged object tree, KeyError from
# opening a damaged object.
HDF5_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, KeyError)


def unstandardise(x: Any, mean: Any, std: Any) -> Any:
    """``x * std + mean``: standardised data back in the user's units, for numpy arrays and torch
    tensors alike (:meth:`Standardiser.inverse` and the exported generator's last layer)."""
    return x * std + mean


@dataclass
class Standardiser:
    """Per-column affine map to zero mean and unit standard deviation, and back.

    Columns that are constant get ``std = 1`` so they map to exactly 0 and back to their value,
    instead of dividing by zero.
    """

    mean: np.ndarray  # (d,) float32, column means of the data it was fitted on
    std: np.ndarray  # (d,) float32, column standard deviations; 1 for constant columns

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        """Fits the column means and standard deviations of ``x``.

        Args:
            x: Data of shape (N, d), N >= 1, finite (as returned by :func:`validate_vectors`).

        Returns:
            A :class:`Standardiser` with float32 ``mean`` and ``std`` of shape (d,).

        Raises:
            LatentdimError: If ``x`` is not 2-D or has no rows.
        """
        if not isinstance(x, StreamedVectors):  # a streamed file is read block by block below
            x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] == 0:
            raise LatentdimError(
                f"cannot fit a standardiser to data of shape {x.shape}; "
                "it needs shape (N, d) with N >= 1"
            )
        rows = x.shape[0]
        # Two passes over row blocks with float64 sums: accurate (no E[x^2] - E[x]^2
        # cancellation) without a float64 copy of the whole array.
        total = np.zeros(x.shape[1], dtype=np.float64)
        for start in range(0, rows, CHUNK_ROWS):
            total += x[start : start + CHUNK_ROWS].sum(axis=0, dtype=np.float64)
        mean = total / rows
        squares = np.zeros(x.shape[1], dtype=np.float64)
        lowest = np.full(x.shape[1], np.inf)
        highest = np.full(x.shape[1], -np.inf)
        for start in range(0, rows, CHUNK_ROWS):
            block = x[start : start + CHUNK_ROWS].astype(np.float64)
            squares += ((block - mean) ** 2).sum(axis=0)
            lowest = np.minimum(lowest, block.min(axis=0))
            highest = np.maximum(highest, block.max(axis=0))
        std = np.sqrt(squares / rows)
        # Test constancy exactly (max == min): the float64 mean of identical values can be off
        # by one rounding, which would leave a tiny nonzero std and blow noise up to O(1).
        constant = lowest == highest
        std[constant] = 1.0
        mean[constant] = lowest[constant]
        return cls(mean=mean.astype(np.float32), std=std.astype(np.float32))

    def _check_width(self, x: np.ndarray) -> None:
        if x.ndim == 0 or x.shape[-1] != self.mean.shape[0]:
            raise LatentdimError(
                f"data of shape {x.shape} does not match the standardiser, which was fitted to "
                f"{self.mean.shape[0]} columns"
            )

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Maps data in the user's units to standardised units.

        Args:
            x: Data of shape (..., d).

        Returns:
            float32 array of shape (..., d): ``(x - mean) / std``.

        Raises:
            LatentdimError: If the last axis of ``x`` is not of length d.
        """
        x = np.asarray(x, dtype=np.float32)
        self._check_width(x)
        return (x - self.mean) / self.std

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Maps standardised data back to the user's units.

        Args:
            x: Standardised data of shape (..., d).

        Returns:
            float32 array of shape (..., d): ``x * std + mean``.

        Raises:
            LatentdimError: If the last axis of ``x`` is not of length d.
        """
        x = np.asarray(x, dtype=np.float32)
        self._check_width(x)
        return unstandardise(x, self.mean, self.std)

    def to_dict(self) -> dict[str, list[float]]:
        """Returns ``{"mean": [...], "std": [...]}`` with plain floats, ready for JSON."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardiser:
        """Rebuilds a :class:`Standardiser` from the output of :meth:`to_dict`.

        Args:
            d: Mapping with lists ``"mean"`` and ``"std"`` of equal length d >= 1.

        Returns:
            The :class:`Standardiser`, with float32 arrays of shape (d,).

        Raises:
            LatentdimError: If a key is missing, the lengths differ, or a std is not positive.
        """
        try:
            mean = np.asarray(d["mean"], dtype=np.float32)
            std = np.asarray(d["std"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise LatentdimError(
                f"malformed standardiser: expected lists 'mean' and 'std' of numbers ({err})"
            ) from err
        if mean.ndim != 1 or mean.shape != std.shape or mean.shape[0] == 0:
            raise LatentdimError(
                "malformed standardiser: 'mean' and 'std' must be non-empty lists of equal "
                f"length, got shapes {mean.shape} and {std.shape}"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise LatentdimError("malformed standardiser: 'mean' must be finite and 'std' positive")
        return cls(mean=mean, std=std)


@dataclass
class VectorData:
    """Validated vector data and where it came from."""

    x: np.ndarray  # (N, d) float32, finite, in the user's units
    # Canonical description: "synthetic:n=8,d=128,samples=20000,seed=0", "data.h5:X" or "array".
    source: str


def _synthetic_error(spec: str, problem: str) -> LatentdimError:
    return LatentdimError(f"bad synthetic spec '{spec}': {problem}; use {SYNTHETIC_FORM}")


def parse_synthetic_spec(spec: str) -> dict[str, int]:
    """Parses ``synthetic:n=8[,d=128][,samples=20000][,seed=0]``.

    Args:
        spec: The source string, including the ``synthetic:`` prefix.

    Returns:
        ``{"n": ..., "d": ..., "samples": ..., "seed": ...}``, with the defaults of
        :func:`~latentdim.data.synthetic.make_synthetic` for the keys not given.

    Raises:
        LatentdimError: If the prefix is missing, or a key is unknown, repeated or has no
            integer value, or ``n`` is missing; the message shows the valid form.
    """
    if not spec.startswith(SYNTHETIC_PREFIX):
        raise _synthetic_error(spec, f"it must start with '{SYNTHETIC_PREFIX}'")
    body = spec[len(SYNTHETIC_PREFIX) :]
    values: dict[str, int] = {}
    for item in body.split(","):
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not sep:
            raise _synthetic_error(spec, f"expected key=value, got '{item.strip()}'")
        if key not in _SYNTHETIC_KEYS:
            raise _synthetic_error(
                spec, f"unknown key '{key}' (known: {', '.join(_SYNTHETIC_KEYS)})"
            )
        if key in values:
            raise _synthetic_error(spec, f"key '{key}' given twice")
        if not _INTEGER.fullmatch(raw):
            raise _synthetic_error(spec, f"{key} must be an integer, got '{raw}'")
        values[key] = int(raw)
    if "n" not in values:
        raise _synthetic_error(spec, "n (the latent dimension) is required")
    return {key: values.get(key, _SYNTHETIC_DEFAULTS.get(key)) for key in _SYNTHETIC_KEYS}


def _check_dtype(dtype: np.dtype, what: str) -> None:
    if dtype.kind in _NUMERIC_KINDS:
        return
    if dtype.kind == "c":
        raise LatentdimError(
            f"{what} holds complex numbers ({dtype}); "
            "pass real and imaginary parts as separate columns"
        )
    raise LatentdimError(
        f"{what} has dtype {dtype}; vectors must be numbers (bool, integer or float)"
    )


def _check_shape(shape: tuple[int, ...], what: str) -> None:
    if len(shape) != 2:
        hint = ""
        if len(shape) == 1:
            hint = "; for a single feature reshape to (N, 1)"
        elif len(shape) > 2:
            hint = "; flatten each sample to one row, e.g. x.reshape(len(x), -1)"
        raise LatentdimError(
            f"{what} has shape {tuple(shape)}; vectors need shape (N, d), one row per sample{hint}"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise LatentdimError(
            f"{what} is empty (shape {tuple(shape)}); it needs at least one row and one column"
        )


def _copy_checked(rows: Any, what: str) -> np.ndarray:
    """Copies a (N, d) array-like into float32 block by block and checks every value is finite.

    Args:
        rows: numpy array or h5py dataset of shape (N, d) with a numeric dtype.
        what: Name of the data for error messages.

    Returns:
        float32 array of shape (N, d); ``rows`` itself when it already is float32 in memory.

    Raises:
        LatentdimError: If any value is NaN or infinite after conversion to float32 (float64
            values beyond the float32 range count as infinite).
    """
    n_rows = rows.shape[0]
    if isinstance(rows, np.ndarray) and rows.dtype == np.float32:
        out = rows
    else:
        out = np.empty(rows.shape, dtype=np.float32)
    nan = inf = 0
    for start in range(0, n_rows, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n_rows)
        if out is not rows:
            # Overflow to inf is expected and reported below as an infinite value.
            with np.errstate(over="ignore"):
                out[start:stop] = rows[start:stop]
        block = out[start:stop]
        nan += int(np.count_nonzero(np.isnan(block)))
        inf += int(np.count_nonzero(np.isinf(block)))
    if nan or inf:
        raise LatentdimError(
            f"{what} has {nan} NaN and {inf} infinite values; clean or drop those rows"
        )
    return out


def validate_vectors(x: np.ndarray, what: str) -> np.ndarray:
    """Checks that ``x`` is usable vector data and returns it as float32.

    Args:
        x: Array of shape (N, d), N >= 1, d >= 1, with a bool, integer or float dtype.
        what: Name of the data in error messages, e.g. ``"data.h5:X"``.

    Returns:
        Finite float32 array of shape (N, d); ``x`` itself if it already was one.

    Raises:
        LatentdimError: If the dtype is not numeric (object, string, complex, structured ...),
            the array is not 2-D, has no rows or columns, or holds NaN or infinite values
            (the message counts them).
    """
    x = np.asarray(x)
    _check_dtype(x.dtype, what)
    _check_shape(x.shape, what)
    return _copy_checked(x, what)


def as_array(x: ArrayLike, source: str = "array") -> np.ndarray:
    """An in-memory array-like (numpy, nested lists, a torch tensor on any device ...) as a numpy
    array, its values unchecked.

    Raises:
        LatentdimError: If ``x`` cannot be made into an array.
    """
    # Torch tensors on a GPU or requiring grad refuse np.asarray; detach and move them without
    # importing torch here (the data package is numpy-only).
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise LatentdimError(f"{source} cannot be read as an array of numbers: {err}") from err


def from_array(x: ArrayLike, source: str = "array") -> VectorData:
    """Wraps an in-memory array (numpy, nested lists, a torch tensor ...) as :class:`VectorData`.

    Args:
        x: Array-like of shape (N, d) with numeric values.
        source: Description kept in :attr:`VectorData.source` and used in error messages.

    Returns:
        :class:`VectorData` with a finite float32 array of shape (N, d).

    Raises:
        LatentdimError: If ``x`` cannot be made into an array, or fails :func:`validate_vectors`.
    """
    return VectorData(x=validate_vectors(as_array(x, source), source), source=source)


def hdf5_read_error(what: str, err: BaseException) -> LatentdimError:
    """The one-line error for an HDF5 file whose structure or data cannot be read."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)  # no quotes
    detail = " ".join(text.split()) or type(err).__name__
    return LatentdimError(f"cannot read {what} ({detail}); the file may be corrupt or truncated")


def _hdf5_datasets(group: h5py.Group) -> list[str]:
    """Full paths (e.g. ``"group/X"``) of all datasets under ``group``, sorted.

    Raises:
        LatentdimError: If the file's object tree cannot be walked (a corrupt file).
    """
    names: list[str] = []

    def visit(name: str | bytes, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            # h5py gives bytes for a name that is not UTF-8 (C writers, corrupt files); show it
            # escaped, so names sort and print (opening it by that name then fails in one line).
            names.append(name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else name)

    try:
        group.visititems(visit)
    except HDF5_READ_ERRORS as err:
        raise hdf5_read_error(f"HDF5 file {group.file.filename}", err) from err
    return sorted(names)


def choose_dataset(file: h5py.File, path: str, key: str | None) -> str:
    """The dataset of ``file`` to read: ``key`` when given (it must exist), else the only one.

    Raises:
        LatentdimError: no datasets, several and no key, or a key that is not there (listing them).
    """
    names = _hdf5_datasets(file)
    if key is None:
        if not names:
            raise LatentdimError(f"HDF5 file {path} holds no datasets")
        if len(names) > 1:
            raise LatentdimError(f"HDF5 file {path} holds several datasets ({', '.join(names)}); pass --key NAME")
        return names[0]
    name = key.strip("/")
    if name not in names:
        listing = ", ".join(names) if names else "no datasets"
        raise LatentdimError(f"HDF5 file {path} has no dataset '{key}'; it has: {listing}")
    return name


@contextlib.contextmanager
def open_dataset(path: str, key: str | None) -> Iterator[tuple[h5py.Dataset, str]]:
    """Opens ``path`` read-only and yields the chosen dataset and its name ``"PATH:DATASET"``.

    The dataset is :func:`choose_dataset`'s. Both loaders (vectors here, image arrays in
    ``data.images``) open their files through this.
    """
    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise LatentdimError(f"cannot open HDF5 file {path}: {err}") from err
    with file:
        name = choose_dataset(file, path, key)
        try:
            dataset = file[name]
        except HDF5_READ_ERRORS as err:
            raise hdf5_read_error(f"{path}:{name}", err) from err
        yield dataset, f"{path}:{name}"


def _load_hdf5(path: str, key: str | None) -> VectorData:
    with open_dataset(path, key) as (dataset, what):
        try:
            # Check dtype and shape from the metadata before reading a single value.
            _check_dtype(dataset.dtype, what)
            _check_shape(dataset.shape or (), what)  # shape None: an empty (null) dataspace
            if dataset.size * 4 > stream_bytes():  # larger than memory: read in blocks (data/stream.py)
                return VectorData(x=StreamedVectors(path, dataset.name, dataset.shape, what), source=what)  # type: ignore[arg-type]
            return VectorData(x=_copy_checked(dataset, what), source=what)
        except HDF5_READ_ERRORS as err:
            raise hdf5_read_error(what, err) from err


def load_source(source: str | os.PathLike[str], key: str | None = None) -> VectorData:
    """Loads vector data from a source: an HDF5, ``.npy``, ``.npz`` or CSV file
    (:mod:`latentdim.data.arrays`), or ``synthetic:n=8[,...]``.

    Args:
        source: Path to a file, or a synthetic spec (see :func:`parse_synthetic_spec`).
        key: Dataset inside the HDF5 file (full path such as ``"group/X"``) or array inside the
            ``.npz``; needed only when the file holds more than one.

    Returns:
        :class:`VectorData` with a finite float32 array of shape (N, d) and a canonical
        ``source``: the synthetic spec with all four keys, or ``"PATH:DATASET"``.

    Raises:
        LatentdimError: If the spec is malformed or unknown, the path does not exist, is a folder
            or not an HDF5 file, the dataset cannot be chosen or is missing, ``key`` is given for
            synthetic data, or the data fails :func:`validate_vectors`.
    """
    if isinstance(source, str) and source.startswith(SYNTHETIC_PREFIX):
        if key is not None:
            raise LatentdimError("--key applies to HDF5 files only, not to synthetic data")
        params = parse_synthetic_spec(source)
        canonical = SYNTHETIC_PREFIX + ",".join(f"{k}={v}" for k, v in params.items())
        return VectorData(x=make_synthetic(**params), source=canonical)

    path = os.fspath(source)
    if (
        isinstance(source, str)
        and ":" in path
        and not os.path.exists(path)
        and not _WINDOWS_DRIVE.match(path)
    ):
        stem, _, tail = path.rpartition(":")
        hint = (
            f" (to read dataset '{tail}' of {stem}, pass --key {tail})"
            if os.path.isfile(stem)
            else ""
        )
        raise LatentdimError(
            f"unknown source spec '{path}': use a path to an HDF5 file or synthetic:n=8[,...]{hint}"
        )
    if not os.path.exists(path):
        raise LatentdimError(f"no such file or folder: {path}")
    if os.path.isdir(path):
        raise LatentdimError(
            f"{path} is a folder; this loader reads vectors, image folders are read by "
            "latentdim.data.images.load_images (latentdim.estimate chooses for you)"
        )
    if array_file_kind(path) is not None:
        array, what = read_array_file(path, key)
        return VectorData(x=validate_vectors(array, what), source=what)
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as err:
        raise LatentdimError(f"cannot read {path}: {err}") from err
    if not is_hdf5:
        raise LatentdimError(f"{path} is not a file latentdim reads; use {KNOWN_SOURCES}")
    return _load_hdf5(path, key)
