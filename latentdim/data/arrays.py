"""NumPy (``.npy``, ``.npz``) and CSV files, read into one array whose rank then decides what the
data are: (N, d) vectors, or (N, H, W), (N, H, W, C), (N, C, H, W) images (the HDF5 layouts).

* ``.npy``: memory-mapped (``np.load(mmap_mode="r")``), so a large file is read as it is used.
  Pickled (object) arrays are refused: they can run code and hold no numbers.
* ``.npz``: the array named by ``key``, or the only one; the source reads ``PATH:NAME``.
* ``.csv`` / ``.tsv``: one sample per row, comma (tab) separated numbers; one header row of names
  is skipped when its fields are not numbers; ``#`` starts a comment.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile

import numpy as np

from latentdim.errors import LatentdimError

#: File suffixes (lower case) read here, and what they are.
ARRAY_SUFFIXES = {".npy": "npy", ".npz": "npz", ".csv": "csv", ".tsv": "tsv"}

#: What a source may be, for error messages.
KNOWN_SOURCES = (
    "a folder of images, an HDF5 file (.h5, .hdf5), a NumPy file (.npy, .npz), a CSV file (.csv, .tsv) "
    "or synthetic:n=8[,...]"
)


def array_file_kind(path: str | os.PathLike[str]) -> str | None:
    """``"npy"``, ``"npz"``, ``"csv"`` or ``"tsv"`` by the file's suffix; None for anything else."""
    return ARRAY_SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower())


def read_array_file(path: str | os.PathLike[str], key: str | None = None) -> tuple[np.ndarray, str]:
    """Reads a ``.npy``, ``.npz`` or CSV file into an array, checking nothing about its values.

    Returns:
        The array and its name for messages and results (``PATH``, or ``PATH:NAME`` for ``.npz``).

    Raises:
        LatentdimError: the file is missing or unreadable, ``key`` is given where it does not apply
            or names no array, an ``.npz`` holds several arrays and no ``key``, the array is pickled,
            or a CSV row holds something that is not a number or has another number of columns.
    """
    path = os.fspath(path)
    kind = array_file_kind(path)
    if kind is None:
        raise LatentdimError(f"{path} is not a file latentdim reads; use {KNOWN_SOURCES}")
    if not os.path.isfile(path):
        raise LatentdimError(f"no such file: {path}" if not os.path.exists(path) else f"{path} is not a file")
    if kind != "npz" and key is not None:
        raise LatentdimError(f"--key (key=) applies to HDF5 and .npz files, not to a .{kind} file; drop it")
    if kind == "npy":
        return _read_npy(path), path
    if kind == "npz":
        return _read_npz(path, key)
    return _read_text(path, "," if kind == "csv" else "\t"), path


def _pickled(path: str) -> LatentdimError:
    return LatentdimError(
        f"{path} holds Python objects (a pickled array), not numbers; save a numeric array, e.g. "
        "np.save(path, np.asarray(x, dtype=np.float32))"
    )


def _read_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "Python objects" in str(err):
            raise _pickled(path) from err
        raise LatentdimError(f"cannot read {path} as a NumPy .npy file ({err})") from err
    except (OSError, EOFError) as err:
        raise LatentdimError(f"cannot read {path} as a NumPy .npy file ({err})") from err


def _read_npz(path: str, key: str | None) -> tuple[np.ndarray, str]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = sorted(archive.files)
            if key is None:
                if not names:
                    raise LatentdimError(f"{path} holds no arrays")
                if len(names) > 1:
                    raise LatentdimError(f"{path} holds several arrays ({', '.join(names)}); pass --key NAME (key= in Python)")
                name = names[0]
            elif key not in names:
                raise LatentdimError(f"{path} has no array '{key}'; it has: {', '.join(names) or 'no arrays'}")
            else:
                name = key
            return archive[name], f"{path}:{name}"
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise _pickled(path) from err
        raise LatentdimError(f"cannot read {path} as a NumPy .npz file ({err})") from err
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise LatentdimError(f"cannot read {path} as a NumPy .npz file ({err})") from err


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_text(path: str, delimiter: str) -> np.ndarray:
    """A CSV / TSV of numbers, with one optional header row of names."""
    skip = 0  # lines up to and including a header row
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                content = line.split("#", 1)[0].strip()
                if content:
                    if not all(_is_number(v.strip()) for v in content.split(delimiter)):
                        skip = number
                    break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file: reported below as empty
            array = np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=np.float64, comments="#",
                               encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise LatentdimError(f"{path} is not a text file ({err.reason}); a CSV holds numbers as text") from err
    except ValueError as err:
        detail = str(err).split(";")[0].rstrip(".")
        # numpy counts rows after the skipped header, from 0 in conversion errors and from 1 when
        # the columns change: say the file's line
        first = 1 if detail.startswith("could not convert") else 0
        detail = re.sub(r"at row (\d+)", lambda m: f"on line {int(m.group(1)) + first + skip}", detail)
        raise LatentdimError(
            f"cannot read {path} as numbers ({detail}); a CSV needs one sample per row, the same number "
            "of numbers in every row, and at most one header row of names"
        ) from err
    except OSError as err:
        raise LatentdimError(f"cannot read {path}: {err.strerror or err}") from err
    return array
