"""Data larger than memory: read in blocks, never whole.

A vector dataset whose float32 size is above :data:`STREAM_BYTES` is not loaded: it becomes a
:class:`StreamedVectors` (shape, blocks and rows read on demand, each block checked finite), the
standardiser is fitted in passes over blocks, the classical estimators and the evaluation read a
random subset of rows, and training draws its batches from a :class:`BlockSampler`. Images above
the same size are decoded once into a temporary file (data/images.py) and stream from it through
a :class:`BlockSampler` of uint8 rows; pages of a memory map that have been read or written are
handed back at once (:func:`release`), so the file's pages do not pile up in the process:

- the buffer holds :data:`BUFFER_BLOCKS` blocks of contiguous rows, each starting at a random row
  (:data:`BUFFER_BYTES` in all, standardised float32 on the training device); a batch is rows
  drawn uniformly from the buffer;
- a background thread reads the next block while training runs (reading overlaps training); once
  training has drawn as many rows as a block holds, the oldest block is replaced by the one read
  ahead, so the data flows through the buffer about once per pass over the data.

The memory footprint is the buffer, one block read ahead and one being read (about
``(BUFFER_BLOCKS + 2) / BUFFER_BLOCKS * BUFFER_BYTES``), plus the probe and evaluation subsets:
it does not grow with the file. The blocks' starts come from a generator seeded with the run's
seed, and the swap happens after a fixed number of drawn rows, so a streamed run repeats for a
seed like an in-memory one (a resumed one starts a fresh buffer).
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from latentdim.errors import LatentdimError

if TYPE_CHECKING:  # torch only where training reads the buffer: the readers stay torch-free
    import torch

#: HDF5 vector datasets above this size (as float32) stream; env LATENTDIM_STREAM_BYTES overrides.
STREAM_BYTES = 256 * 2**20
#: The training buffer's size, and how many blocks it holds.
BUFFER_BYTES = 128 * 2**20
# Many small blocks, so that a file stored in some order (sorted by class, by time) is mixed in the
# buffer: 256 places of the file at once, one of them replaced every few steps.
BUFFER_BLOCKS = 256
#: Rows per read in the standardiser's and the checks' passes.
PASS_ROWS = 65536
# read_rows hands a memory map's pages back after every this many bytes of rows it spans.
RELEASE_BYTES = 16 * 2**20


def stream_bytes() -> int:
    """The size above which HDF5 vectors stream (:data:`STREAM_BYTES`, or the environment's)."""
    value = os.environ.get("LATENTDIM_STREAM_BYTES")
    if value is None:
        return STREAM_BYTES
    try:
        return int(value)
    except ValueError:
        raise LatentdimError(f"LATENTDIM_STREAM_BYTES must be a number of bytes, got {value!r}") from None


class StreamedVectors:
    """An (N, d) HDF5 vector dataset read on demand: slices and sorted row indices give float32
    arrays, each checked finite; ``nbytes`` is its size as float32 (not read)."""

    ndim = 2

    def __init__(self, path: str, name: str, shape: tuple[int, int], source: str) -> None:
        self.path, self.name, self.shape, self.source = path, name, (int(shape[0]), int(shape[1])), source
        self.nbytes = self.shape[0] * self.shape[1] * 4
        self.dtype = np.dtype(np.float32)
        self._lock = threading.Lock()  # h5py serialises anyway; one open file per object
        self._file: h5py.File | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:  # picklable (sweep's processes): reopen there
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_file")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock, self._file = threading.Lock(), None

    def _read(self, index: Any, what: str) -> np.ndarray:
        with self._lock:
            if self._file is None:
                self._file = h5py.File(self.path, "r")
            block = np.asarray(self._file[self.name][index], dtype=np.float32)
        if not np.isfinite(block).all():
            bad = int(np.count_nonzero(~np.isfinite(block)))
            raise LatentdimError(f"{self.source} has {bad} NaN or infinite values in {what}; clean or drop those rows")
        return block

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, _ = index.indices(self.shape[0])
            return self._read(index, f"rows {start:,}-{stop - 1:,}")
        rows = np.asarray(index)
        if rows.ndim != 1 or rows.size and np.any(np.diff(rows) <= 0):
            raise ValueError("streamed rows are read by a slice or by increasing row numbers")
        return self._read(rows, f"{rows.size:,} chosen rows")

    def subset(self, n: int, seed: int) -> np.ndarray:
        """``n`` rows chosen at random without replacement (in file order), as float32."""
        rows = np.sort(np.random.default_rng(seed).choice(self.shape[0], size=min(n, self.shape[0]), replace=False))
        return self[rows]


def release(array: Any, start: int, stop: int) -> None:
    """Hands rows ``start:stop`` of a memory-mapped array back to the kernel (``MADV_DONTNEED``):
    the file keeps them (a shared mapping loses nothing) and a later read maps them again, but
    they stop counting in this process's memory. Anything else than a C-contiguous
    :class:`numpy.memmap` is left alone."""
    mm = getattr(array, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or not array.flags.c_contiguous or stop <= start or array.ndim == 0:
        return
    view = np.frombuffer(mm, dtype=np.uint8)
    base = view.ctypes.data  # the mapping's first byte; the array's rows lie at an offset in it
    del view
    row_bytes = array.strides[0]
    first = array.ctypes.data - base + start * row_bytes
    last = array.ctypes.data - base + stop * row_bytes
    page = mmap.PAGESIZE
    begin = first - first % page
    end = min(len(mm), -(-last // page) * page)
    if end > begin:
        mm.madvise(mmap.MADV_DONTNEED, begin, end - begin)


def read_rows(data: Any, index: Any) -> np.ndarray:
    """Rows of ``data`` (a :class:`StreamedVectors`, or an array that may be memory-mapped) as a
    fresh in-memory array: a slice, or increasing row numbers. Scattered rows are read in groups
    spanning at most :data:`RELEASE_BYTES` of the array, each handed back before the next: the
    kernel maps pages around every row it faults in, so reading a random subset of a large
    memory-mapped file in one go would briefly map most of the file."""
    if isinstance(data, StreamedVectors):
        return data[index]
    if isinstance(index, slice):
        start, stop, _ = index.indices(data.shape[0])
        block = np.array(data[index])
        release(data, start, stop)
        return block
    index = np.asarray(index)
    out = np.empty((len(index), *data.shape[1:]), dtype=data.dtype)
    span = max(1, RELEASE_BYTES // max(1, data.strides[0] if data.ndim else 1))
    first = 0
    while first < len(index):
        last = int(np.searchsorted(index, index[first] + span, side="left"))
        last = max(last, first + 1)
        out[first:last] = data[index[first:last]]
        release(data, int(index[first]), int(index[last - 1]) + 1)
        first = last
    return out


class BlockSampler:
    """Training batches from a bounded buffer refilled by a reading thread (see the module's
    docstring): standardised rows of a :class:`StreamedVectors` (``mean``, ``std``), or with
    ``mean=None`` and ``std=None`` uint8 images as stored (batches become [0, 1] floats, as
    :func:`latentdim.training.model_input` makes them); ``shape`` and ``device`` as the training
    tensor's would be."""

    def __init__(self, data: Any, mean: np.ndarray | None, std: np.ndarray | None, device: torch.device, seed: int,
                 buffer_bytes: int = BUFFER_BYTES, blocks: int = BUFFER_BLOCKS, rank: int = 0) -> None:
        self.data, self.device, self.shape = data, device, tuple(data.shape)
        self.mean, self.std = mean, std
        n = self.shape[0]
        row_bytes = int(np.prod(self.shape[1:])) * (4 if mean is not None else np.dtype(data.dtype).itemsize)
        self.block_rows = max(1, min(n // blocks, buffer_bytes // (blocks * row_bytes)))
        self.blocks = blocks
        self._rng = np.random.default_rng([seed, 7] if rank == 0 else [seed, 7, rank])  # torchrun: a buffer per rank
        self._ahead: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        import torch

        self.buffer = torch.cat([self._standardised(self._next_block()) for _ in range(blocks)])
        self._slot, self._drawn = 0, 0
        self._thread = threading.Thread(target=self._read_ahead, name="latentdim-reader", daemon=True)
        self._thread.start()

    def _next_block(self) -> np.ndarray:
        start = int(self._rng.integers(0, self.shape[0] - self.block_rows + 1))
        return read_rows(self.data, slice(start, start + self.block_rows))

    def _standardised(self, block: np.ndarray) -> torch.Tensor:
        """A block as the buffer keeps it: standardised float32 vectors, or uint8 images as stored."""
        import torch

        if self.mean is None:
            return torch.from_numpy(block).to(self.device)
        return torch.from_numpy((block - self.mean) / self.std).to(self.device)

    def _model_input(self, rows: torch.Tensor) -> torch.Tensor:
        from latentdim.training.codes import model_input  # training imports this module

        return model_input(rows)

    def _read_ahead(self) -> None:
        while not self._stop.is_set():
            try:
                item: Any = self._next_block()
            except BaseException as e:  # handed to the training thread, which raises it
                item = e
            while not self._stop.is_set():
                try:
                    self._ahead.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def draw(self, size: int) -> torch.Tensor:
        """``size`` rows drawn uniformly from the buffer (torch's generator, as in memory)."""
        if self._drawn >= self.block_rows:  # the oldest block makes way for the one read ahead
            block = self._ahead.get()
            if isinstance(block, BaseException):
                raise block
            rows = slice(self._slot * self.block_rows, (self._slot + 1) * self.block_rows)
            self.buffer[rows] = self._standardised(block)
            self._slot, self._drawn = (self._slot + 1) % self.blocks, 0
        import torch

        self._drawn += size
        return self._model_input(self.buffer[torch.randint(self.buffer.shape[0], (size,), device=self.device)])

    def take(self, rows: np.ndarray) -> torch.Tensor:
        """Exactly these rows (increasing row numbers) as the model takes them: the probe set,
        evaluation, FID's real images."""
        return self._model_input(self._standardised(read_rows(self.data, np.asarray(rows))))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
