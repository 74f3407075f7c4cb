"""HDF5 vectors larger than memory (data/stream.py): blocks, the standardiser's passes, the sampler."""

import h5py
import numpy as np
import pytest
import torch

from latentdim import estimate
from latentdim.data import Standardiser
from latentdim.data.stream import BlockSampler, StreamedVectors
from latentdim.data.vectors import load_source
from latentdim.errors import LatentdimError


@pytest.fixture
def h5(tmp_path):
    x = (np.arange(600 * 3, dtype=np.float32).reshape(600, 3) % 97) * np.array([1.0, 0.5, 2.0], dtype=np.float32) + 3
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["X"] = x
    return path, x


def test_large_files_stream_small_ones_load(h5, monkeypatch):
    path, x = h5
    assert isinstance(load_source(path).x, np.ndarray)
    monkeypatch.setenv("LATENTDIM_STREAM_BYTES", str(x.nbytes - 1))
    data = load_source(path)
    assert isinstance(data.x, StreamedVectors) and data.x.shape == (600, 3) and data.x.nbytes == x.nbytes
    assert data.source == f"{path}:X"


def test_streamed_reads_are_the_files_rows(h5):
    path, x = h5
    s = StreamedVectors(str(path), "X", x.shape, "x")
    np.testing.assert_array_equal(s[10:20], x[10:20])
    np.testing.assert_array_equal(s[np.array([0, 5, 599])], x[[0, 5, 599]])
    with pytest.raises(ValueError):
        s[np.array([5, 0])]  # h5py reads increasing rows only
    sub = s.subset(50, seed=1)
    assert sub.shape == (50, 3) and len({tuple(r) for r in sub.tolist()}) <= 50


def test_a_nan_in_a_block_is_named(tmp_path):
    x = np.ones((100, 2), dtype=np.float32)
    x[70, 1] = np.nan
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["X"] = x
    s = StreamedVectors(str(tmp_path / "bad.h5"), "X", x.shape, "bad.h5:X")
    np.testing.assert_array_equal(s[0:50], x[0:50])
    with pytest.raises(LatentdimError, match="bad.h5:X has 1 NaN or infinite values in rows 50-99"):
        s[50:100]


def test_standardiser_passes_over_blocks_match_numpy(h5, monkeypatch):
    path, x = h5
    monkeypatch.setattr("latentdim.data.vectors.CHUNK_ROWS", 64)  # many blocks
    fit = Standardiser.fit(StreamedVectors(str(path), "X", x.shape, "x"))
    np.testing.assert_allclose(fit.mean, x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(fit.std, x.astype(np.float64).std(0), rtol=1e-6)


def test_sampler_buffer_is_bounded_and_refreshed(h5):
    path, x = h5
    s = StreamedVectors(str(path), "X", x.shape, "x")
    mean, std = x.mean(0), x.std(0)
    # 4 blocks of 30 rows: buffer_bytes = 4 * 30 rows * 3 columns * 4 bytes
    sampler = BlockSampler(s, mean, std, torch.device("cpu"), seed=0, buffer_bytes=4 * 30 * 12, blocks=4)
    try:
        assert sampler.block_rows == 30 and sampler.buffer.shape == (120, 3)
        rows = {tuple(np.round(r, 4)) for r in ((x - mean) / std).tolist()}
        assert all(tuple(np.round(r, 4)) in rows for r in sampler.buffer.tolist())  # standardised rows of the file
        before = sampler.buffer.clone()
        torch.manual_seed(0)
        sampler.draw(30)  # one block's worth of rows drawn: the next draw swaps the oldest block
        assert torch.equal(sampler.buffer, before)
        sampler.draw(1)
        assert not torch.equal(sampler.buffer[:30], before[:30]) and torch.equal(sampler.buffer[30:], before[30:])
        np.testing.assert_allclose(sampler.take(np.array([3, 4])).numpy(), (x[[3, 4]] - mean) / std, rtol=1e-6)
    finally:
        sampler.close()


def test_sampler_repeats_for_a_seed(h5):
    path, x = h5
    s = StreamedVectors(str(path), "X", x.shape, "x")
    draws = []
    for _ in range(2):
        sampler = BlockSampler(s, x.mean(0), x.std(0), torch.device("cpu"), seed=3, buffer_bytes=4 * 30 * 12, blocks=4)
        torch.manual_seed(0)
        draws.append(torch.cat([sampler.draw(25) for _ in range(20)]))
        sampler.close()
    assert torch.equal(draws[0], draws[1])


def test_estimate_streams_a_file(h5, monkeypatch, tmp_path):
    path, x = h5
    monkeypatch.setenv("LATENTDIM_STREAM_BYTES", "1000")
    result = estimate(path, capacity=4, max_steps=60, baselines=True, seed=0, out=tmp_path / "run")
    assert result.steps == 60 and result.data_shape == [3] and result.baselines is not None
    assert (tmp_path / "run" / "result.json").exists()


# Images above the streaming limit: decoded into a temporary file, streamed as uint8 rows.


def _image_file(tmp_path, n=300):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 1, 16, 16), dtype=np.uint8)
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
    return path, images


def test_release_hands_back_pages_and_keeps_the_data(tmp_path):
    from latentdim.data.stream import release

    mm = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.uint8, shape=(64, 4096))
    mm[:] = np.arange(64, dtype=np.uint8)[:, None]
    release(mm, 0, 64)  # dropped from this process; the file keeps the bytes
    np.testing.assert_array_equal(mm[:, 0], np.arange(64))
    release(mm[8:], 3, 9)  # a view at an offset: rows 11-16 of the file
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy")[:, 5], np.arange(64))
    release(np.zeros((4, 4), dtype=np.uint8), 0, 4)  # not a memory map: nothing happens


def test_scattered_rows_are_read_in_groups_and_handed_back(tmp_path, monkeypatch):
    from latentdim.data import stream

    mm = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.uint8, shape=(64, 4096))
    mm[:] = np.arange(64, dtype=np.uint8)[:, None]
    calls = []
    monkeypatch.setattr(stream, "release", lambda a, start, stop: calls.append((start, stop)))
    monkeypatch.setattr(stream, "RELEASE_BYTES", 10 * 4096)  # a group spans at most 10 rows
    rows = np.array([0, 3, 9, 10, 30, 31, 63])
    np.testing.assert_array_equal(stream.read_rows(mm, rows), mm[rows])
    assert calls == [(0, 10), (10, 11), (30, 32), (63, 64)]  # rows 0-9, 10-19, 30-39, 60-69
    calls.clear()
    np.testing.assert_array_equal(stream.read_rows(mm, slice(5, 9)), mm[5:9])
    assert calls == [(5, 9)]


def test_image_sampler_gives_model_inputs_of_the_stored_rows(tmp_path):
    _, images = _image_file(tmp_path)
    sampler = BlockSampler(images, None, None, torch.device("cpu"), seed=0, buffer_bytes=4 * 20 * 256, blocks=4)
    try:
        assert sampler.block_rows == 20 and sampler.buffer.dtype == torch.uint8
        batch = sampler.draw(32)
        assert batch.shape == (32, 1, 16, 16) and batch.dtype == torch.float32
        stored = {r.tobytes() for r in images}
        assert all((b * 255).round().to(torch.uint8).numpy().tobytes() in stored for b in batch)
        rows = np.array([3, 7, 299])
        np.testing.assert_allclose(sampler.take(rows).numpy(), images[rows] / 255.0, rtol=0, atol=1e-7)
    finally:
        sampler.close()


def test_large_images_decode_to_a_temporary_file_and_stream(tmp_path, monkeypatch):
    from latentdim.data.images import load_images

    path, images = _image_file(tmp_path)
    assert not isinstance(load_images(str(path)).images, np.memmap)  # small: in memory
    monkeypatch.setenv("LATENTDIM_STREAM_BYTES", str(images.nbytes - 1))
    data = load_images(str(path))
    assert isinstance(data.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(data.images), images)
    seen = []
    result = estimate(path, capacity=4, max_steps=30, seed=0, baselines=False, out=tmp_path / "run",
                      on_stage=lambda *a: seen.append(a[0]))
    assert result.steps == 30 and result.data_shape == [1, 16, 16]
    assert any(text.startswith("streaming 300 images") for text in seen)
    assert (tmp_path / "run" / "result.json").exists()
