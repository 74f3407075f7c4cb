"""Image data: a folder of image files or an HDF5 image array, decoded once into uint8 (N, C, S, S).

Everything that reaches training is a compact uint8 array of shape (N, C, S, S) with C in (1, 3)
(:class:`ImageData`). It is allocated once, before decoding, and becomes a temporary
:class:`numpy.memmap` when it would take more than a quarter of the free memory or more than the
streaming limit (:func:`latentdim.data.stream.stream_bytes`, 256 MiB), so a data set larger than
memory still loads (the temporary file lives in ``TMPDIR`` and is unlinked at once); each chunk
written is handed back to the kernel (:func:`latentdim.data.stream.release`), and training then
streams the file through a bounded buffer.

**Folders.** Every file below the folder, recursively, whose extension (any case) is one of
:data:`IMAGE_EXTENSIONS`, in the order of its relative POSIX path (plain string order). Names
starting with ``.`` (files and folders) are ignored, and so are files with other extensions;
links to folders are not followed (links to files are). A
first pass reads only the file headers (size and mode); a second decodes each image once.

* Channels: with ``channels=None`` the data is colour (C = 3) when any image is colour (modes
  RGB, RGBA, CMYK, YCbCr, ..., or a palette image whose palette holds a non-gray entry), else
  gray (C = 1). The decision reads headers only, so a file whose header reads but whose pixels
  do not still counts; then, if every decoded image has R = G = B at every pixel (gray pictures
  saved as RGB, as many exports are), the data is gray after all and C = 1 (the same bytes as
  ``channels=1``). Gray images forced to 3 channels repeat their value; colour images forced to
  1 channel use Pillow's ``"L"`` conversion (ITU-R 601-2 luma).
* Modes: palette images become RGBA first; any alpha (and PNG single-colour transparency) is
  composited over white; ``"1"`` (bilevel) becomes 0/255; 16-bit gray (``"I;16"`` and
  variants, and 32-bit ``"I"``, which older Pillows use for 16-bit PNGs) is divided by 257,
  rounded and clipped to 0..255; float (``"F"``) images whose values all lie in [0, 1] are
  scaled by 255, other float images are taken as 0..255 intensities, and both are rounded and
  clipped (a float image holding NaN or infinity counts as unreadable). EXIF orientation is not
  applied: pixels are used as stored. GIF and multi-page TIFF files give their first frame.
* Size: with ``size=None`` the target side S is the shorter side of the most common image size
  (ties go to the size met first in file order). An image that is not S x S is scaled so its
  shorter side is S and centre-cropped to S x S (Pillow bicubic resampling of the centred
  square); an image that already is S x S keeps its bytes. Large JPEGs are decoded at a reduced
  scale (Pillow's ``draft``) when that still leaves the shorter side at least S.
* Unreadable files (unknown format, corrupt or truncated data, no permission) are skipped and
  counted in :attr:`ImageData.skipped`, or raise with ``strict=True``. Truncated files always
  count as corrupt: ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is held False while loading. A
  file above Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) always raises.

**HDF5.** The chosen dataset (``key``, with the semantics of the vector loader) must have one of
the layouts (N, H, W), (N, H, W, C) or (N, C, H, W) with C in (1, 3, 4); see
:func:`_image_layout` for how channels-first and channels-last are told apart. A fourth channel
(alpha) is dropped. Values: uint8 as is; bool as 0/255; uint16 divided by 257 and rounded; other
integer types must lie in 0..255; floats must lie in [0, 1] and become ``round(x * 255)``. The
array is read in chunks of rows (at most 64 MiB of float64 each), so a file larger than memory
can be converted, and resized with the same rule as folder images.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import h5py
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from latentdim.data.stream import release, stream_bytes
from latentdim.data.vectors import CHUNK_ROWS, HDF5_READ_ERRORS, hdf5_read_error, open_dataset
from latentdim.errors import LatentdimError

# File extensions (lower case, no dot) that a folder scan picks up.
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp")
# Smallest side the decoded images may have; the convolutional models need a few halvings.
MIN_IMAGE_SIZE = 8
# Above this share of the free memory, the decoded array goes into a temporary memory map.
MEMMAP_RAM_FRACTION = 0.25
# Upper bound on one chunk of an HDF5 image array, counted as float64 (the widest working copy).
CHUNK_BYTES = 64 * 2**20
# How many "relative/path: reason" examples of skipped files ImageData keeps.
MAX_SKIPPED_EXAMPLES = 5
# Decoded folder images are handed back to the kernel this many at a time (a memory-mapped array).
_RELEASE_ROWS = 1024
# How many times on_progress is called over a whole load, at most (plus the final call).
_PROGRESS_CALLS = 200

ProgressCallback = Callable[[int, int], None]

# Exceptions Pillow raises for files it cannot decode: unknown formats (UnidentifiedImageError
# is an OSError), corrupt or truncated data, unreadable files. Fuzzed files are known to raise
# the others from inside the decoders.
_UNREADABLE: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
# Palette layouts read from the header without decoding; others fall back to getpalette().
_PALETTE_RAWMODES = frozenset({"RGB", "RGBA", "RGBX", "BGR", "BGRA", "BGRX"})
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_LAYOUTS = "(N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3, 4"
_IMAGE_CHANNELS = (1, 3, 4)


@dataclass
class ImageData:
    """Decoded images and where they came from."""

    # (N, C, H, W) uint8, C in (1, 3), H == W == the target size; may be an np.memmap.
    images: np.ndarray
    source: str  # the folder path as given, or "PATH:DATASET" for HDF5
    # (C, H, W) before resizing: C is the output channel count, (H, W) the native image size
    # (for folders, the most common size).
    native_shape: tuple[int, int, int]
    skipped: int = 0  # unreadable image files skipped (folders only)
    skipped_examples: list[str] = field(default_factory=list)  # first <= 5 "rel/path: reason"


# ---------------------------------------------------------------------------------------------
# Arguments and sources


def _check_channels(channels: int | None) -> None:
    if channels is None:
        return
    if isinstance(channels, bool) or channels not in (1, 3):
        raise LatentdimError(f"channels must be 1 (gray) or 3 (colour), got {channels!r}")


def _check_size(size: int | None) -> None:
    if size is None:
        return
    if (
        isinstance(size, bool)
        or not isinstance(size, (int, np.integer))
        or size < MIN_IMAGE_SIZE
    ):
        raise LatentdimError(
            f"image size must be a whole number of pixels, at least {MIN_IMAGE_SIZE}, "
            f"got {size!r}; pass --image-size {MIN_IMAGE_SIZE} or more"
        )


def _has_image_extension(name: str) -> bool:
    stem, dot, ext = name.rpartition(".")
    return bool(dot) and bool(stem) and ext.lower() in IMAGE_EXTENSIONS


def _resolve(source: str | os.PathLike[str]) -> tuple[str, str]:
    """Returns ``("folder" | "hdf5", path)`` for a source, or raises a one-line error."""
    path = os.fspath(source)
    if not os.path.exists(path):
        raise LatentdimError(f"no such file or folder: {path}")
    if os.path.isdir(path):
        return "folder", path
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as err:
        raise LatentdimError(f"cannot read {path}: {err}") from err
    if is_hdf5:
        return "hdf5", path
    if _has_image_extension(os.path.basename(path)):
        raise LatentdimError(
            f"{path} is a single image file; pass the folder that holds the images"
        )
    raise LatentdimError(f"{path} is neither a folder of images nor an HDF5 file")


def _too_small(where: str, height: int, width: int) -> LatentdimError:
    return LatentdimError(
        f"the images of {where} are {height} x {width} pixels, smaller than {MIN_IMAGE_SIZE}; "
        f"pass --image-size {MIN_IMAGE_SIZE} or more to enlarge them"
    )


# ---------------------------------------------------------------------------------------------
# The output array


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as file:
            text = file.read().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _available_ram() -> int | None:
    """Bytes of memory available now: MemAvailable (Linux), else free pages; capped by cgroup."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        available = None
    if available is None:
        try:
            pages = os.sysconf("SC_AVPHYS_PAGES")
            page_size = os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
        if pages <= 0 or page_size <= 0:
            return None
        available = pages * page_size
    # A container's memory limit (cgroup v2) can be far below what the host reports.
    limit = _read_int("/sys/fs/cgroup/memory.max")
    used = _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        available = min(available, max(limit - used, 0))
    return available


def _ram_budget_bytes() -> int | None:
    """The largest decoded array kept in memory: a quarter of the available RAM (None: unknown)."""
    available = _available_ram()
    return None if available is None else int(available * MEMMAP_RAM_FRACTION)


def _temporary_memmap(shape: tuple[int, ...]) -> np.ndarray:
    nbytes = math.prod(shape)
    folder = tempfile.gettempdir()
    # TemporaryFile is unlinked at once on POSIX; the mapping keeps the space until it is freed.
    with tempfile.TemporaryFile(prefix="latentdim-images-") as file:
        try:
            if hasattr(os, "posix_fallocate"):
                # Reserve the blocks now: a full disk later would kill the process with SIGBUS.
                os.posix_fallocate(file.fileno(), 0, nbytes)
            else:  # pragma: no cover - non-POSIX
                file.truncate(nbytes)
        except OSError as err:
            raise LatentdimError(
                f"the decoded images need {nbytes / 2**30:.1f} GiB, more than a quarter of the "
                f"free memory, and the temporary folder {folder} cannot hold them "
                f"({err.strerror or err}); set TMPDIR to a folder with more free space "
                "or pass a smaller --image-size"
            ) from err
        return np.memmap(file, dtype=np.uint8, mode="r+", shape=shape)


def _allocate(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised uint8 array of ``shape``, in memory or (above a quarter of the free memory
    or the streaming limit) in a temporary memory map."""
    budget = _ram_budget_bytes()
    nbytes = math.prod(shape)
    if nbytes > stream_bytes() or (budget is not None and nbytes > budget):
        return _temporary_memmap(shape)
    return np.empty(shape, dtype=np.uint8)


class _Progress:
    """Calls ``on_progress(done, total)`` about :data:`_PROGRESS_CALLS` times, and at the end."""

    def __init__(self, on_progress: ProgressCallback | None, total: int) -> None:
        self._callback = on_progress
        self._total = total
        self._step = max(1, total // _PROGRESS_CALLS)
        self._next = self._step

    def update(self, done: int) -> None:
        if self._callback is not None and (done >= self._next or done >= self._total):
            self._callback(done, self._total)
            self._next = done + self._step


# ---------------------------------------------------------------------------------------------
# One image


@contextlib.contextmanager
def _truncated_images_are_errors() -> Iterator[None]:
    """Holds ``ImageFile.LOAD_TRUNCATED_IMAGES`` False, so a truncated file fails to load.

    Also silences Pillow's warnings (e.g. "Corrupt EXIF data" from a broken file): a file is
    either read or skipped and counted, and a warning would be one more line on stderr.
    """
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _bomb_error(display: str, size: tuple[int, int] | None, detail: str = "") -> LatentdimError:
    limit = Image.MAX_IMAGE_PIXELS
    if size is not None:
        pixels = f"{size[0]} x {size[1]} pixels"
    else:
        found = _BOMB_PIXELS.search(detail)
        pixels = f"{found.group(1)} pixels" if found else "too many pixels"
    return LatentdimError(
        f"{display} has {pixels}, above Pillow's decompression-bomb limit of {limit}; "
        "remove it or resize it"
    )


def _open_image(path: str, display: str) -> Image.Image:
    """Opens an image lazily (header only); raises LatentdimError above the bomb limit.

    Pillow only warns between ``MAX_IMAGE_PIXELS`` and twice that; here both are an error, so a
    huge file is never decoded and never skipped silently.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as err:
        raise _bomb_error(display, None, str(err)) from err
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
        size = image.size
        image.close()
        raise _bomb_error(display, size)
    return image


def _palette_is_colour(image: Image.Image) -> bool:
    """Whether a palette image's palette holds any entry with r, g, b not all equal."""
    entries = None
    palette = image.palette
    if palette is not None:
        rawmode = palette.rawmode or palette.mode
        data = palette.palette
        if rawmode in _PALETTE_RAWMODES and isinstance(data, (bytes, bytearray)):
            step = len(rawmode)
            flat = np.frombuffer(bytes(data), dtype=np.uint8)
            entries = flat[: len(flat) // step * step].reshape(-1, step)[:, :3]
    if entries is None:
        values = image.getpalette("RGB")  # decodes the image; only for unusual palette layouts
        if values is None:
            return False
        entries = np.asarray(values, dtype=np.uint8).reshape(-1, 3)
    return bool(np.any(entries[:, 0] != entries[:, 1]) or np.any(entries[:, 1] != entries[:, 2]))


def _is_colour(image: Image.Image) -> bool:
    mode = image.mode
    if mode in _GRAY_MODES or mode.startswith("I;"):
        return False
    if mode in ("P", "PA"):
        return _palette_is_colour(image)
    return True


def _over_white(image: Image.Image) -> Image.Image:
    """Composites an LA or RGBA image over white: LA -> L, RGBA -> RGB (exact integer rounding)."""
    pixels = np.asarray(image).astype(np.uint32)
    colour, alpha = pixels[..., :-1], pixels[..., -1:]
    blended = ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    if blended.shape[-1] == 1:
        blended = blended[..., 0]
    return Image.fromarray(np.ascontiguousarray(blended))


def _wide_gray_to_l(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) gray to 8 bits: round(x / 257), clipped to 0..255."""
    pixels = np.asarray(image).astype(np.int64)
    return Image.fromarray(np.clip((pixels + 128) // 257, 0, 255).astype(np.uint8))


def _float_to_l(image: Image.Image) -> Image.Image:
    """Float gray to 8 bits: values all in [0, 1] are scaled by 255, others taken as 0..255."""
    pixels = np.asarray(image, dtype=np.float64)
    if not np.all(np.isfinite(pixels)):
        raise ValueError("float image holds NaN or infinite values")
    if pixels.size and pixels.min() >= 0.0 and pixels.max() <= 1.0:
        pixels = pixels * 255.0
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def _to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Converts a loaded image of any mode to ``"L"`` (channels 1) or ``"RGB"`` (channels 3)."""
    mode = image.mode
    if mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA"):
        image = _over_white(image.convert("RGBA"))
    elif mode in ("L", "RGB") and image.info.get("transparency") is not None:
        image = _over_white(image.convert("LA" if mode == "L" else "RGBA"))
    elif mode in ("LA", "La"):
        image = _over_white(image.convert("LA"))
    elif mode in ("RGBA", "RGBa"):
        image = _over_white(image.convert("RGBA"))
    elif mode == "F":
        image = _float_to_l(image)
    elif mode == "I" or mode.startswith("I;"):
        image = _wide_gray_to_l(image)
    elif mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX ...
    if channels == 1 and image.mode == "RGB":
        image = image.convert("L")
    elif channels == 3 and image.mode == "L":
        image = image.convert("RGB")
    return image


def _fit(image: Image.Image, size: int) -> Image.Image:
    """Scales the shorter side to ``size`` and centre-crops to ``size`` x ``size``.

    Done in one bicubic resampling of the centred square (no rounding of an intermediate size);
    an image that already is ``size`` x ``size`` is returned as it is.
    """
    width, height = image.size
    if (width, height) == (size, size):
        return image
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return image.resize(
        (size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )


def _chw(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _decode_file(path: str, display: str, channels: int, size: int) -> np.ndarray:
    """Decodes one image file into a (channels, size, size) uint8 array."""
    with _open_image(path, display) as image:
        width, height = image.size
        side = min(width, height)
        if image.format == "JPEG" and side >= 2 * size:
            # Let libjpeg scale down by 2, 4 or 8 while the shorter side stays >= size.
            image.draft(None, (math.ceil(width * size / side), math.ceil(height * size / side)))
        image.load()
        return _chw(_fit(_to_channels(image, channels), size))


def _reason(err: BaseException) -> str:
    """One short line saying why a file could not be read."""
    if isinstance(err, UnidentifiedImageError):
        return "not a recognised image (unknown format or corrupt header)"
    if isinstance(err, OSError) and err.strerror and err.filename:
        return err.strerror
    text = " ".join(str(err).split())
    if not text:
        text = type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------------------------------------
# Folders


def _list_image_files(folder: str) -> tuple[list[str], int]:
    """Relative POSIX paths of the image files below ``folder``, sorted; and the file count."""
    try:
        os.listdir(folder)
    except OSError as err:
        raise LatentdimError(f"cannot read folder {folder}: {err.strerror or err}") from err
    images: list[str] = []
    files = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        relative_root = os.path.relpath(root, folder)
        for name in names:
            if name.startswith("."):
                continue
            files += 1
            if _has_image_extension(name):
                relative = name if relative_root == "." else os.path.join(relative_root, name)
                images.append(PurePath(relative).as_posix())
    images.sort()
    return images, files


@dataclass
class _Scan:
    """What the header pass over a folder found."""

    folder: str
    files: list[str]  # every image file, relative POSIX path, sorted
    readable: list[int]  # indices into files whose header could be read
    sizes: list[tuple[int, int]]  # (width, height) of each readable file
    colour: bool  # whether any readable file is colour
    skipped: int
    examples: list[tuple[int, str]]  # (index, "rel: reason") of the first skipped files
    first_error: LatentdimError | None = None  # what --strict raises: the first unreadable file

    def common_size(self) -> tuple[int, int]:
        """(width, height) met most often; ties go to the size met first."""
        return Counter(self.sizes).most_common(1)[0][0]


def _strict_error(path: str, err: BaseException) -> LatentdimError:
    """The one line ``strict`` raises for an unreadable file."""
    return LatentdimError(
        f"cannot read image {path}: {_reason(err)}; remove the file or drop --strict"
    )


def _none_readable(scan: _Scan, examples: list[tuple[int, str]]) -> LatentdimError:
    first = min(examples)[1] if examples else "?"
    return LatentdimError(
        f"none of the {len(scan.files)} image files below {scan.folder} could be read; "
        f"first: {first}"
    )


def _scan_folder(folder: str) -> _Scan:
    """Lists the image files and reads their headers (size and mode), decoding no pixels.
    Unreadable files are counted (the first one's error kept for ``strict``)."""
    files, total = _list_image_files(folder)
    if total == 0:
        raise LatentdimError(f"folder {folder} holds no files")
    if not files:
        raise LatentdimError(
            f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found below {folder}"
        )
    scan = _Scan(folder, files, [], [], False, 0, [])
    for index, relative in enumerate(files):
        path = os.path.join(folder, relative)
        try:
            with _open_image(path, path) as image:
                size = image.size
                colour = _is_colour(image)
        except _UNREADABLE as err:
            if scan.first_error is None:
                scan.first_error = _strict_error(path, err)
            scan.skipped += 1
            if len(scan.examples) < MAX_SKIPPED_EXAMPLES:
                scan.examples.append((index, f"{relative}: {_reason(err)}"))
            continue
        scan.readable.append(index)
        scan.sizes.append(size)
        scan.colour = scan.colour or colour
    if not scan.readable:
        raise _none_readable(scan, scan.examples)
    return scan


def _load_folder(
    folder: str,
    channels: int | None,
    size: int | None,
    strict: bool,
    on_progress: ProgressCallback | None,
    scan: _Scan | None = None,
) -> ImageData:
    with _truncated_images_are_errors():
        if scan is None:
            scan = _scan_folder(folder)
        if strict and scan.first_error is not None:
            raise scan.first_error
        out_channels = channels if channels is not None else (3 if scan.colour else 1)
        width, height = scan.common_size()
        target = size if size is not None else min(width, height)
        if target < MIN_IMAGE_SIZE:
            raise _too_small(folder, height, width)
        target = int(target)
        total = len(scan.readable)
        out = _allocate((total, out_channels, target, target))
        # colour by the headers; the pixels may still all be gray (R = G = B), checked as decoded
        all_gray = channels is None and out_channels == 3
        progress = _Progress(on_progress, total)
        filled = 0
        skipped = scan.skipped
        examples = list(scan.examples)
        late: list[tuple[int, str]] = []
        for done, index in enumerate(scan.readable, start=1):
            relative = scan.files[index]
            path = os.path.join(folder, relative)
            try:
                out[filled] = _decode_file(path, path, out_channels, target)
            except _UNREADABLE as err:
                if strict:
                    raise _strict_error(path, err) from err
                skipped += 1
                if len(late) < MAX_SKIPPED_EXAMPLES:
                    late.append((index, f"{relative}: {_reason(err)}"))
            else:
                if all_gray:
                    rgb = out[filled]
                    all_gray = bool(np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[1], rgb[2]))
                filled += 1
                if filled % _RELEASE_ROWS == 0:
                    release(out, filled - _RELEASE_ROWS, filled)
            progress.update(done)
    examples = sorted(examples + late)[:MAX_SKIPPED_EXAMPLES]
    if filled == 0:
        raise _none_readable(scan, examples)
    images = out if filled == total else out[:filled]
    if all_gray:  # a compact copy of the first channel (on disk again when large), in chunks
        gray = _allocate((len(images), 1, target, target))
        for start in range(0, len(images), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, len(images))
            gray[start:stop] = images[start:stop, :1]
            release(images, start, stop)
            release(gray, start, stop)
        images, out_channels = gray, 1
    return ImageData(
        images=images,
        source=folder,
        native_shape=(out_channels, height, width),
        skipped=skipped,
        skipped_examples=[text for _, text in examples],
    )


# ---------------------------------------------------------------------------------------------
# HDF5


def _rank_error(what: str, shape: tuple[int, ...]) -> LatentdimError:
    return LatentdimError(
        f"{what} has shape {shape}; images need {_LAYOUTS}, vectors need (N, d)"
    )


@dataclass(frozen=True)
class _Layout:
    """How an HDF5 image array is laid out."""

    order: str  # "NHW", "NHWC" or "NCHW"
    stored_channels: int  # 1, 3 or 4 (a fourth channel is alpha and is dropped)
    height: int
    width: int

    @property
    def channels(self) -> int:
        """Channels after dropping alpha: 1 or 3."""
        return min(self.stored_channels, 3)


def _image_layout(dataset: h5py.Dataset, what: str) -> _Layout:
    """Checks an HDF5 image array's rank, dtype and size, and tells its layout.

    Rank 3 is (N, H, W). Rank 4 is channels-last (N, H, W, C) when only ``shape[-1]`` is in
    (1, 3, 4), channels-first (N, C, H, W) when only ``shape[1]`` is. When both are, the layout
    whose spatial part is square wins, channels-first when both or neither are square (the
    PyTorch convention).
    """
    shape = tuple(dataset.shape or ())
    if len(shape) not in (3, 4):
        raise _rank_error(what, shape)
    kind = dataset.dtype.kind
    if kind not in "biuf":
        raise LatentdimError(
            f"{what} has dtype {dataset.dtype}; image arrays must hold uint8, uint16, bool, "
            "other integers in 0..255, or floats in [0, 1]"
        )
    if len(shape) == 3:
        layout = _Layout("NHW", 1, shape[1], shape[2])
    else:
        first, last = shape[1] in _IMAGE_CHANNELS, shape[-1] in _IMAGE_CHANNELS
        if first and last:
            channels_first = shape[2] == shape[3] or shape[1] != shape[2]
        elif first or last:
            channels_first = first
        else:
            raise LatentdimError(
                f"{what} has shape {shape}; a 4-D image array needs its channels (1, 3 or 4) "
                "first, (N, C, H, W), or last, (N, H, W, C)"
            )
        if channels_first:
            layout = _Layout("NCHW", shape[1], shape[2], shape[3])
        else:
            layout = _Layout("NHWC", shape[3], shape[1], shape[2])
    if shape[0] == 0:
        raise LatentdimError(f"{what} is empty (shape {shape}); it needs at least one image")
    if layout.height == 0 or layout.width == 0:
        raise LatentdimError(f"{what} has shape {shape}; its images have no pixels")
    return layout


def _first_bad(block: np.ndarray, bad: np.ndarray, first_row: int) -> tuple[Any, int]:
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return block[index].item(), first_row + index[0]


def _to_uint8(block: np.ndarray, what: str, first_row: int) -> np.ndarray:
    """Converts a chunk of an HDF5 image array to uint8, checking the value ranges."""
    dtype = block.dtype
    if dtype == np.uint8:
        return block
    if dtype.kind == "b":
        return block.astype(np.uint8) * np.uint8(255)
    if dtype.kind == "f":
        # NaN fails both comparisons, so it is caught here too.
        bad = ~((block >= 0) & (block <= 1))
        if bad.any():
            value, row = _first_bad(block, bad, first_row)
            raise LatentdimError(
                f"{what} holds {value!r} in image {row}; float images must lie in [0, 1]: "
                "scale to [0, 1] or store uint8"
            )
        work = block.astype(np.float64 if dtype.itemsize >= 8 else np.float32)
        return np.rint(work * 255).astype(np.uint8)
    if dtype.kind == "u" and dtype.itemsize == 2:
        return ((block.astype(np.uint32) + 128) // 257).astype(np.uint8)
    bad = (block < 0) | (block > 255)
    if bad.any():
        value, row = _first_bad(block, bad, first_row)
        raise LatentdimError(
            f"{what} holds {value!r} in image {row}; integer images must lie in 0..255 "
            "(or be uint16): store uint8, or floats in [0, 1]"
        )
    return block.astype(np.uint8)


def _to_nchw(block: np.ndarray, layout: _Layout) -> np.ndarray:
    """A chunk in its stored layout to (n, C, H, W), alpha dropped."""
    if layout.order == "NHW":
        return block[:, None]
    if layout.order == "NHWC":
        block = block.transpose(0, 3, 1, 2)
    return block[:, :3]


def _reshape_image(pixels: np.ndarray, channels: int, size: int) -> np.ndarray:
    """One (C, H, W) uint8 image to (channels, size, size), as folder images are."""
    if pixels.shape[0] == 1:
        image = Image.fromarray(np.ascontiguousarray(pixels[0]))
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))
    return _chw(_fit(_to_channels(image, channels), size))


def _load_hdf5_images(
    path: str,
    key: str | None,
    channels: int | None,
    size: int | None,
    on_progress: ProgressCallback | None,
) -> ImageData:
    with open_dataset(path, key) as (dataset, what):
        return _convert_array(dataset, what, channels, size, on_progress)


def _convert_array(
    dataset: Any, what: str, channels: int | None, size: int | None, on_progress: ProgressCallback | None
) -> ImageData:
    """An image array (an HDF5 dataset or a NumPy array) to uint8 (N, C, S, S), chunk by chunk."""
    if dataset.ndim == 2:
        raise LatentdimError(
            f"{what} has shape {tuple(dataset.shape)}, which is vector data, not images; "
            f"images need {_LAYOUTS}"
        )
    layout = _image_layout(dataset, what)
    out_channels = channels if channels is not None else layout.channels
    height, width = layout.height, layout.width
    target = size if size is not None else min(height, width)
    if target < MIN_IMAGE_SIZE:
        raise _too_small(what, height, width)
    target = int(target)
    total = dataset.shape[0]
    out = _allocate((total, out_channels, target, target))
    as_is = out_channels == layout.channels and (height, width) == (target, target)
    per_image = layout.stored_channels * height * width * 8
    rows = max(1, min(CHUNK_ROWS, CHUNK_BYTES // per_image))
    progress = _Progress(on_progress, total)
    for start in range(0, total, rows):
        stop = min(start + rows, total)
        try:
            stored = dataset[start:stop]
        except HDF5_READ_ERRORS as err:
            raise hdf5_read_error(what, err) from err
        block = _to_uint8(_to_nchw(stored, layout), what, start)
        if as_is:
            out[start:stop] = block
        else:
            for offset, pixels in enumerate(block):
                out[start + offset] = _reshape_image(pixels, out_channels, target)
        release(dataset, start, stop)  # a memory-mapped .npy source
        release(out, start, stop)
        progress.update(stop)
    return ImageData(images=out, source=what, native_shape=(out_channels, height, width))


# ---------------------------------------------------------------------------------------------
# Public API


def is_image_hdf5(path: str | os.PathLike[str], key: str | None = None) -> bool:
    """Tells whether the chosen dataset of an HDF5 file holds images or vectors.

    Args:
        path: Path to an HDF5 file.
        key: Dataset inside the file; needed only when the file holds more than one.

    Returns:
        True when the dataset has rank 3 or 4 (an image array), False for rank 2 (vectors).

    Raises:
        LatentdimError: If the file cannot be opened, the dataset cannot be chosen, or its rank
            is 0, 1 or 5 or more (the message names the accepted layouts).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LatentdimError(f"no such HDF5 file: {path}")
    with open_dataset(path, key) as (dataset, what):
        shape = tuple(dataset.shape or ())
    if len(shape) == 2:
        return False
    if len(shape) in (3, 4):
        return True
    raise _rank_error(what, shape)


@dataclass(frozen=True)
class ImageSource:
    """A folder or HDF5 image array whose shape is known (:func:`inspect_images`); pass it to
    :func:`load_images` so a folder's headers are read once, not twice."""

    path: str
    key: str | None
    native_shape: tuple[int, int, int]  # (C, H, W), as native_image_shape
    scan: _Scan | None = field(default=None, repr=False)  # folders: what the header pass found
    array: Any = field(default=None, repr=False, compare=False)  # in-memory (or .npy) image arrays


def native_image_shape(
    source: str | os.PathLike[str], key: str | None = None, channels: int | None = None
) -> tuple[int, int, int]:
    """The (C, H, W) of image data, without decoding every pixel: see :func:`inspect_images`."""
    return inspect_images(source, key, channels).native_shape


def inspect_images(
    source: str | os.PathLike[str], key: str | None = None, channels: int | None = None
) -> ImageSource:
    """The (C, H, W) of image data, without decoding every pixel, as an :class:`ImageSource`.

    For folders it comes from the file headers (Pillow's lazy open: size and mode): C is 3 when
    any image is colour, else 1, and (H, W) is the most common size; unreadable files are left
    out. For HDF5 it comes from the dataset's shape (an alpha channel is not counted).

    Args:
        source: A folder of image files or an HDF5 file.
        key: Dataset inside the HDF5 file; needed only when it holds more than one.
        channels: 1 or 3 to force C; None to decide from the data.

    Returns:
        An :class:`ImageSource` whose ``native_shape`` is ``(C, H, W)`` with C in (1, 3).

    Raises:
        LatentdimError: If the source does not exist, a folder is empty or holds no readable
            image file, an image exceeds Pillow's decompression-bomb limit, the HDF5 dataset
            cannot be chosen or is not an image array of a known layout, or ``channels`` is
            not 1 or 3.
    """
    _check_channels(channels)
    kind, path = _resolve(source)
    if kind == "folder":
        if key is not None:
            raise LatentdimError("--key applies to HDF5 files only, not to image folders")
        with _truncated_images_are_errors():
            scan = _scan_folder(path)
        width, height = scan.common_size()
        decided = 3 if scan.colour else 1
        return ImageSource(path, None, (channels if channels is not None else decided, height, width), scan)
    with open_dataset(path, key) as (dataset, what):
        layout = _image_layout(dataset, what)
    return ImageSource(path, key, (channels if channels is not None else layout.channels, layout.height, layout.width))


def inspect_image_array(array: Any, what: str = "array", channels: int | None = None) -> ImageSource:
    """:func:`inspect_images` for an image array in memory (a NumPy array, or a memory-mapped
    ``.npy``) of one of the HDF5 layouts; ``what`` names it in messages and in the result."""
    _check_channels(channels)
    layout = _image_layout(array, what)
    return ImageSource(what, None, (channels if channels is not None else layout.channels, layout.height, layout.width),
                       array=array)


def load_images(
    source: str | os.PathLike[str] | ImageSource,
    key: str | None = None,
    channels: int | None = None,
    size: int | None = None,
    strict: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImageData:
    """Decodes a folder of image files or an HDF5 image array into uint8 (N, C, S, S).

    See the module docstring for the exact conversion rules.

    Args:
        source: A folder path or an HDF5 file path, or an :class:`ImageSource` from
            :func:`inspect_images` (a folder's headers are then not read again).
        key: Dataset inside the HDF5 file; needed only when it holds more than one. Not allowed
            for folders, nor with an :class:`ImageSource` (it holds its key).
        channels: None to decide from the data (folders: 3 if any image is colour, unless
            every decoded pixel has R = G = B; HDF5: the stored channels), or 1 or 3 to force.
        size: None to keep the native size (its shorter side, for non-square images; for
            folders of mixed sizes, the most common size's shorter side), or the side S >= 8
            that every image is scaled and centre-cropped to.
        strict: Folders only: an unreadable image file raises instead of being skipped.
        on_progress: Called as ``on_progress(done, total)`` now and then while decoding
            (about 200 times in all, and once at the end).

    Returns:
        :class:`ImageData`; its ``images`` is a :class:`numpy.memmap` on a temporary file
        when the array is bigger than a quarter of the available memory.

    Raises:
        LatentdimError: If an argument is invalid, the source does not exist or is neither a
            folder nor an HDF5 file, a folder is empty, holds no image file or no readable one,
            a file exceeds the decompression-bomb limit, a file is unreadable with ``strict``,
            the HDF5 dataset is not an image array of a known layout or holds values out of
            range, or the images are smaller than 8 pixels and no ``size`` is given.
    """
    _check_channels(channels)
    _check_size(size)
    if isinstance(source, ImageSource):
        if key is not None:
            raise ValueError("an ImageSource holds its key; pass key=None")
        if source.scan is not None:
            return _load_folder(source.path, channels, size, strict, on_progress, source.scan)
        if source.array is not None:
            return _convert_array(source.array, source.path, channels, size, on_progress)
        return _load_hdf5_images(source.path, source.key, channels, size, on_progress)
    kind, path = _resolve(source)
    if kind == "folder":
        if key is not None:
            raise LatentdimError("--key applies to HDF5 files only, not to image folders")
        return _load_folder(path, channels, size, strict, on_progress)
    return _load_hdf5_images(path, key, channels, size, on_progress)
