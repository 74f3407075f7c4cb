"""Where a source becomes training data: vectors or images, decided once (:func:`load`).

A source is a folder of images; an HDF5, ``.npy``, ``.npz`` or CSV file; an array-like; built-in
synthetic data; or a :class:`~latentdim.data.VectorData`. Arrays of rank 2 are vectors, of rank 3
or 4 images; a folder holds images; an HDF5 dataset says which by its shape and type.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from latentdim.data.arrays import array_file_kind, read_array_file
from latentdim.data.vectors import SYNTHETIC_PREFIX, VectorData, as_array, from_array, load_source
from latentdim.errors import LatentdimError
from latentdim.models import is_image_preset
from latentdim.models.conv import IMAGE_PRESETS, check_image_shape, conv_levels


@dataclass
class LoadedData:
    """Training data as it reaches the model, with what :func:`estimate` reports about it."""

    array: np.ndarray  # (N, d) float32 vectors, or (N, C, H, W) uint8 images
    source: str
    preset: str
    skipped: int = 0  # unreadable image files skipped
    skipped_examples: list[str] = field(default_factory=list)

    @property
    def images(self) -> bool:
        return self.array.ndim == 4


def is_image_source(source: Any, key: str | None) -> bool:
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = os.fspath(source)
    if isinstance(source, str) and source.startswith(SYNTHETIC_PREFIX):
        return False
    if os.path.isdir(path):
        return True
    if os.path.isfile(path) and h5py_is_hdf5(path):
        from latentdim.data.images import is_image_hdf5

        return is_image_hdf5(path, key)
    return False


def h5py_is_hdf5(path: str) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


def default_conv_size(native: tuple[int, int, int]) -> int:
    """The ``conv`` preset's resolution for data of native shape (C, H, W): the shorter side when the
    preset takes it, else the nearest of 16, 32, 64, 128 below it (at least 16)."""
    side = min(native[1:])
    if 8 <= side <= 128 and conv_levels(side) >= 1:
        return side
    for size in (128, 64, 32, 16):
        if side >= size:
            return size
    return 16


def plan_images(
    preset: str, native: tuple[int, int, int], channels: int | None, image_size: int | None
) -> tuple[str, tuple[int, int, int]]:
    """The preset and the (C, S, S) shape images are converted to.

    ``auto`` maps 28x28x1 to ``mnist``, 32x32x3 to ``cifar``, 64x64x3 to ``celeba`` and anything
    else to ``conv`` at :func:`default_conv_size`. A named preset converts the images to its own
    channels and resolution (``--channels`` / ``--image-size`` override; the preset checks the
    result).
    """
    if preset not in ("auto", *IMAGE_PRESETS):
        raise LatentdimError(f"preset '{preset}' is for vectors; images take one of: auto, {', '.join(IMAGE_PRESETS)}")
    c = channels or native[0]
    if preset == "auto":
        size = image_size or min(native[1:])
        for name in ("mnist", "cifar", "celeba"):
            if IMAGE_PRESETS[name][1] == (c, size, size):
                return name, (c, size, size)
        size = image_size or default_conv_size(native)
        return "conv", (c, size, size)
    fixed = IMAGE_PRESETS[preset][1]
    if fixed is None:
        size = image_size or default_conv_size(native)
        return preset, (c, size, size)
    return preset, (channels or fixed[0], image_size or fixed[1], image_size or fixed[2])


def load(
    source: Any, key: str | None, preset: str, channels: int | None, image_size: int | None, strict: bool,
    on_load: Callable[[int, int], None] | None = None,
) -> LoadedData:
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8):
        raise LatentdimError(f"image_size (--image-size) must be an integer of at least 8, got {image_size!r}")
    if channels is not None and channels not in (1, 3):
        raise LatentdimError(f"channels (--channels) must be 1 or 3, got {channels!r}")
    array, what = read_array(source, key)
    if (array is not None and array.ndim in (3, 4)) or (array is None and is_image_source(source, key)):
        from latentdim.data.images import inspect_image_array, inspect_images, load_images

        if array is not None:
            found = inspect_image_array(array, what, channels)
        else:
            found = inspect_images(source, key=key, channels=channels)  # a folder's headers, read once
        native = found.native_shape
        name, shape = plan_images(preset, native, channels, image_size)
        problem = check_image_shape(name, shape)
        if problem is not None:  # before decoding every file, not after
            raise LatentdimError(problem)
        # colour by the file headers: let the loader find gray pictures saved as RGB
        from_data = channels is None and preset in ("auto", "conv") and shape[0] == 3
        data = load_images(found, channels=None if from_data else shape[0], size=shape[1], strict=strict, on_progress=on_load)
        if data.images.shape[1] != shape[0]:  # every pixel was gray: plan for one channel
            name, shape = plan_images(preset, (1, *native[1:]), 1, image_size)
            assert data.images.shape[1:] == shape  # the size does not depend on the channels
        return LoadedData(data.images, data.source, name, data.skipped, list(data.skipped_examples))
    if image_size is not None or channels is not None:
        raise LatentdimError("image_size and channels (--image-size, --channels) apply to images (a folder or an image array), not vectors")
    if isinstance(source, VectorData):
        vectors = source
    elif array is not None:
        vectors = from_array(array, what)
    else:
        vectors = load_source(source, key=key)
    return LoadedData(vectors.x, vectors.source, choose_preset(preset, vectors.x.shape[1:]))


def read_array(source: Any, key: str | None) -> tuple[np.ndarray | None, str]:
    """An in-memory array-like or a .npy / .npz / CSV file as an array (its rank then says vectors
    or images); ``(None, "")`` for the other sources (folders, HDF5, synthetic data)."""
    if isinstance(source, VectorData):
        return None, ""
    if not isinstance(source, (str, os.PathLike)):
        if key is not None:
            raise LatentdimError("key applies to HDF5 and .npz files, not to an array in memory; drop it")
        return as_array(source), "array"
    if isinstance(source, str) and source.startswith(SYNTHETIC_PREFIX):
        return None, ""
    if array_file_kind(source) is None or os.path.isdir(source):
        return None, ""
    return read_array_file(source, key)


def choose_preset(preset: str, data_shape: tuple[int, ...]) -> str:
    """``auto`` picks ``mlp`` for vectors; an image preset on vectors is an error."""
    if preset == "auto":
        return "mlp"
    if is_image_preset(preset):
        raise LatentdimError(
            f"preset '{preset}' needs images (a folder or an HDF5 array (N, H, W[, C])); "
            f"this data holds vectors of shape {data_shape}: use --preset mlp or auto"
        )
    return preset
