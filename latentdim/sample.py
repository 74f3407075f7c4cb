"""Sampling an exported generator with onnxruntime: no torch needed.

This module imports numpy, onnxruntime, pillow and h5py only (and latentdim's torch-free
:mod:`latentdim.onnx_format` and :mod:`latentdim.errors`), so a user with an exported model and
those four packages can sample. A test runs it with ``import torch`` made to fail.

z ~ N(0, I_k) is drawn with ``numpy.random.default_rng(seed)`` batch after batch from one stream,
so the samples for a seed do not depend on ``batch_size``. Everything is written into a hidden
staging folder inside the output folder and moved into place only when complete.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnxruntime as ort

from latentdim import onnx_format
from latentdim.errors import LatentdimError
from latentdim.pixels import tile, to_levels, to_pil

#: Vector formats: HDF5 (dataset "samples") or numpy's .npy.
FORMATS = ("h5", "npy")
#: Name of the HDF5 dataset that holds vector samples.
DATASET = "samples"
#: grid.png tiles at most this many images (the first ones), so it stays viewable for large -n.
GRID_MAX = 64


class NoMetadataWarning(UserWarning):
    """The ONNX file was not written by ``latentdim export``: shapes are guessed from the graph."""


@dataclass
class Generator:
    """An ONNX generator opened for sampling."""

    session: ort.InferenceSession
    path: Path
    input_name: str
    input_size: int  # k: z has shape (batch, k)
    fixed_batch: int | None  # the model's batch size when its batch axis is not dynamic
    metadata: dict[str, Any] | None  # latentdim metadata (keys without prefix); None for other files


@dataclass
class SampleInfo:
    """What :func:`sample` wrote."""

    kind: str  # "vectors" or "images"
    n: int  # samples drawn
    shape: tuple[int, ...]  # shape of one sample
    seed: int
    files: list[Path] = field(repr=False)  # every file written, in the output folder
    has_metadata: bool = True  # False for an ONNX file not written by latentdim export


def open_generator(model_path: str | os.PathLike[str]) -> Generator:
    """Opens an ONNX generator and checks it takes one float input of shape (batch, k).

    Raises:
        LatentdimError: missing file, a folder, not an ONNX model, an input that is not one
            (batch, k) float tensor, or latentdim metadata that contradicts the graph.
    """
    path = Path(model_path)
    if path.is_dir():
        raise LatentdimError(f"{path} is a folder, not an ONNX model file")
    if not path.is_file():
        raise LatentdimError(f"no such file: {path}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime's warnings would break the one-line contract
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise LatentdimError(f"{path} is not a readable ONNX model ({type(err).__name__})") from err
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise LatentdimError(
            f"{path} has {len(inputs)} inputs ({names}); a generator takes one input z of shape (batch, k)"
        )
    z = inputs[0]
    if z.type != "tensor(float)" or len(z.shape) != 2 or not isinstance(z.shape[1], int) or z.shape[1] < 1:
        raise LatentdimError(
            f"{path} takes input '{z.name}' of type {z.type} and shape {list(z.shape)}; "
            "a generator takes float z of shape (batch, k)"
        )
    fixed = z.shape[0] if isinstance(z.shape[0], int) and z.shape[0] > 0 else None
    metadata = onnx_format.decode(session.get_modelmeta().custom_metadata_map, str(path))
    if metadata is not None and metadata.get("m_active") != z.shape[1]:
        raise LatentdimError(
            f"{path} is inconsistent: its metadata says m_A = {metadata.get('m_active')} "
            f"but its input has size {z.shape[1]}"
        )
    return Generator(session, path, z.name, z.shape[1], fixed, metadata)


def _run(gen: Generator, z: np.ndarray) -> np.ndarray:
    """Runs one batch; pads it to the model's fixed batch size when it has one."""
    rows = z.shape[0]
    if gen.fixed_batch is not None and rows != gen.fixed_batch:
        z = np.concatenate([z, np.zeros((gen.fixed_batch - rows, z.shape[1]), dtype=z.dtype)])
    try:
        out = gen.session.run(None, {gen.input_name: z})[0]
    except Exception as err:  # a foreign graph may fail at run time
        raise LatentdimError(f"{gen.path} failed to run: {str(err).splitlines()[0]}") from err
    out = np.asarray(out)
    if out.ndim == 0 or out.shape[0] != z.shape[0]:
        raise LatentdimError(
            f"{gen.path} returned shape {out.shape} for a batch of {z.shape[0]}; expected one sample per row"
        )
    return out[:rows]


def _kind(gen: Generator, out: np.ndarray) -> str:
    if out.ndim == 2:
        kind = "vectors"
    elif out.ndim == 4:
        kind = "images"
    else:
        raise LatentdimError(
            f"{gen.path} outputs shape {out.shape[1:]} per sample; expected vectors (d,) or images (C, H, W)"
        )
    if gen.metadata is not None and gen.metadata.get("output", kind) != kind:
        raise LatentdimError(
            f"{gen.path} is inconsistent: its metadata says {gen.metadata['output']}, its output is {kind}"
        )
    if kind == "images" and out.shape[1] not in (1, 3, 4):
        raise LatentdimError(f"{gen.path} outputs images with {out.shape[1]} channels; PNG needs 1, 3 or 4")
    return kind


def _make_folder(out: Path) -> list[Path]:
    """Creates ``out`` and missing parents; returns the folders it created, outermost first."""
    if out.exists() and not out.is_dir():
        raise LatentdimError(f"output {out} exists and is not a folder")
    missing = []
    for folder in [out, *out.parents]:
        if folder.exists():
            break
        missing.append(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LatentdimError(f"cannot create output folder {out}: {err.strerror or err}") from err
    return missing[::-1]


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()  # only if still empty
        except OSError:
            break


def sample(
    model_path: str | os.PathLike[str],
    n: int,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    batch_size: int = 256,
    fmt: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SampleInfo:
    """Draws ``n`` samples from an ONNX generator and writes them into the folder ``out``.

    Images: ``sample_00000.png`` ... one PNG per image, plus ``grid.png`` of the first
    :data:`GRID_MAX`. Vectors: ``samples.h5`` (dataset ``"samples"``, float32 (n, d)) or
    ``samples.npy``. Files of the same names already in ``out`` are replaced.

    Args:
        model_path: an ONNX file from ``latentdim export``, or any ONNX generator with one float
            input of shape (batch, k) (a warning says it carries no latentdim metadata; a 2-D
            output is taken as vectors, a 4-D one as images (batch, C, H, W)).
        n: number of samples, >= 1.
        out: output folder, created if missing.
        seed: seed of ``numpy.random.default_rng`` for z ~ N(0, I_k).
        batch_size: samples per onnxruntime call; bounds memory for large ``n``.
        fmt: ``"h5"`` (default) or ``"npy"``, vector models only.
        on_progress: called as ``on_progress(done, n)`` after each batch is written.

    Returns:
        A :class:`SampleInfo`.

    Raises:
        LatentdimError: bad model file (see :func:`open_generator`), ``n`` or ``batch_size`` < 1,
            a negative seed, ``fmt`` unknown or given for an image model, or an output folder
            that cannot be created or written. Nothing is left in ``out`` on failure.
    """
    _check_arguments(n, batch_size, seed, fmt)
    gen = open_generator(model_path)
    if gen.metadata is None:
        warnings.warn(
            f"{gen.path} carries no latentdim metadata; "
            f"sampling it as a generic generator with z ~ N(0, I_{gen.input_size})",
            NoMetadataWarning,
            stacklevel=2,
        )
    if gen.fixed_batch is not None:
        batch_size = gen.fixed_batch
    rng = np.random.default_rng(seed)

    def draw(rows: int) -> np.ndarray:
        # float64 draws cast to float32, as torch-fidelity's noise; one stream for all batches.
        return rng.standard_normal((rows, gen.input_size)).astype(np.float32)

    first = _run(gen, draw(min(batch_size, n)))  # tells vectors from images before anything is written
    kind = _kind(gen, first)
    if kind == "images" and fmt is not None:
        raise LatentdimError("--format applies to vector models; image models are written as PNG files")

    def batches() -> Any:
        yield first
        done = first.shape[0]
        for start in range(first.shape[0], n, batch_size):
            if on_progress is not None:
                on_progress(done, n)  # the batch before is written once the consumer asks again
            batch = _run(gen, draw(min(batch_size, n - start)))
            yield batch
            done += batch.shape[0]
        if on_progress is not None:
            on_progress(done, n)

    out = Path(out)
    write = (lambda folder: _write_images(batches(), n, folder)) if kind == "images" else (
        lambda folder: [_write_vectors(batches(), n, first.shape[1], fmt or "h5", folder, seed, gen.path.name)])
    names = _write_staged(out, write)
    return SampleInfo(kind, n, tuple(first.shape[1:]), seed, [out / name for name in names], gen.metadata is not None)


def _check_arguments(n: Any, batch_size: Any, seed: Any, fmt: str | None) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LatentdimError(f"the number of samples must be at least 1, got {n}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LatentdimError(f"batch size must be at least 1, got {batch_size}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise LatentdimError(f"seed must be a non-negative integer, got {seed}")
    if fmt is not None and fmt not in FORMATS:
        raise LatentdimError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")


def _write_staged(out: Path, write: Callable[[Path], list[str]]) -> list[str]:
    """Runs ``write(folder)`` in a staging folder inside ``out`` and moves what it wrote into
    ``out``; on any failure nothing is left behind (not even the folders it created)."""
    created = _make_folder(out)
    try:
        staging = Path(tempfile.mkdtemp(dir=out, prefix=".latentdim-sample-"))
    except OSError as err:
        _remove_created(created)
        raise LatentdimError(f"output folder {out} is not writable: {err.strerror or err}") from err
    try:
        names = write(staging)
        for name in names:
            os.replace(staging / name, out / name)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(created)
        if isinstance(err, OSError):
            raise LatentdimError(f"cannot write samples to {out}: {err.strerror or err}") from err
        raise
    staging.rmdir()
    return names


def _write_images(batches: Any, n: int, folder: Path) -> list[str]:
    width = max(5, len(str(n - 1)))
    names: list[str] = []
    tiles: list[np.ndarray] = []
    for batch in batches:
        for image in np.ascontiguousarray(to_levels(batch).transpose(0, 2, 3, 1)):
            name = f"sample_{len(names):0{width}d}.png"
            to_pil(image).save(folder / name, compress_level=1)  # fast: -n 100 in well under 2 s
            names.append(name)
            if len(tiles) < GRID_MAX:
                tiles.append(image)
    to_pil(tile(np.stack(tiles), math.ceil(math.sqrt(len(tiles))), fill=0)).save(folder / "grid.png")
    return [*names, "grid.png"]


def _write_vectors(batches: Any, n: int, d: int, fmt: str, folder: Path, seed: int, model_name: str) -> str:
    if fmt == "npy":
        name = "samples.npy"
        array = np.lib.format.open_memmap(folder / name, mode="w+", dtype=np.float32, shape=(n, d))
        start = 0
        for batch in batches:
            array[start : start + batch.shape[0]] = batch
            start += batch.shape[0]
        array.flush()
        del array
        return name
    name = "samples.h5"
    with h5py.File(folder / name, "w") as f:
        dataset = f.create_dataset(DATASET, shape=(n, d), dtype=np.float32)
        dataset.attrs["seed"] = seed
        dataset.attrs["model"] = model_name
        start = 0
        for batch in batches:
            dataset[start : start + batch.shape[0]] = batch
            start += batch.shape[0]
    return name
