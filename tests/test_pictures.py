"""latentdim.pictures: image grids, reconstruction grids, mask history and covariance heat map PNGs."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from latentdim import pictures
from latentdim.pictures import (
    image_grid,
    save_covariance_heatmap,
    save_mask_history,
    save_reconstruction_grid,
    save_sample_grid,
)


def distinct_uint8(n: int, c: int, h: int, w: int) -> np.ndarray:
    """(n, c, h, w) uint8 images, every tile different, none of them white (255)."""
    return (np.arange(n * c * h * w).reshape(n, c, h, w) % 250).astype(np.uint8)


def tile(grid: np.ndarray, k: int, cols: int, h: int, w: int, pad: int = 2) -> np.ndarray:
    """Tile k of a grid, (h, w, C), at the offset image_grid documents."""
    r, q = divmod(k, cols)
    top, left = pad + r * (h + pad), pad + q * (w + pad)
    return grid[top : top + h, left : left + w]


def open_png(path) -> Image.Image:
    image = Image.open(path)
    image.load()
    assert image.format == "PNG"
    return image


def only_png(folder, name: str) -> None:
    """The folder holds exactly the finished file: no temporary left behind."""
    assert sorted(os.listdir(folder)) == [name]


# --- image_grid ------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize(("n", "columns", "pad", "rows", "cols"), [(7, None, 2, 3, 3), (5, 2, 1, 3, 2), (1, None, 0, 1, 1), (4, 10, 3, 1, 4)])
def test_image_grid_shape_and_tiles(c, n, columns, pad, rows, cols):
    h, w = 4, 5
    images = distinct_uint8(n, c, h, w)
    grid = image_grid(images, columns, pad=pad)
    assert grid.dtype == np.uint8
    assert grid.shape == (rows * h + pad * (rows + 1), cols * w + pad * (cols + 1), c)
    for k in range(n):
        np.testing.assert_array_equal(tile(grid, k, cols, h, w, pad), images[k].transpose(1, 2, 0))
    # Everything outside the tiles (gaps, border, empty cells) is white.
    covered = np.zeros(grid.shape[:2], dtype=bool)
    for k in range(n):
        r, q = divmod(k, cols)
        covered[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = True
    assert (grid[~covered] == 255).all()


def test_image_grid_float_rounding_and_clipping():
    values = np.array([0.0, 0.5, 1.0, -0.3, 1.7, 0.2, np.nan, 1 / 255 * 0.49], dtype=np.float32)
    images = values.reshape(1, 1, 1, 8)
    grid = image_grid(images, pad=0)
    # clip to [0, 1], x255, np.rint: 0.5 -> 127.5 -> 128; 0.2 -> 51; NaN -> 0.
    assert grid[0, :, 0].tolist() == [0, 128, 255, 0, 255, 51, 0, 0]


def test_image_grid_default_columns():
    assert image_grid(distinct_uint8(10, 1, 2, 2), pad=0).shape == (3 * 2, 4 * 2, 1)  # 4 columns, 3 rows


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((2, 3, 4), np.uint8), ((2, 2, 4, 4), np.uint8), ((2, 4, 4, 4), np.float32), ((0, 1, 4, 4), np.uint8), ((1, 1, 4, 4), np.int64)],
)
def test_image_grid_rejects_bad_images(shape, dtype):
    with pytest.raises(ValueError):
        image_grid(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("kwargs", [{"columns": 0}, {"columns": 1.5}, {"pad": -1}])
def test_image_grid_rejects_bad_layout(kwargs):
    with pytest.raises(ValueError):
        image_grid(distinct_uint8(3, 1, 2, 2), **kwargs)


# --- PNG grids -------------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "mode"), [(1, "L"), (3, "RGB")])
def test_save_sample_grid_png(tmp_path, c, mode):
    images = np.random.default_rng(0).random((6, c, 8, 7)).astype(np.float32)
    written = save_sample_grid(images, str(tmp_path / "samples.png"), columns=3)
    assert written == tmp_path / "samples.png"
    image = open_png(written)
    assert image.mode == mode
    assert image.size == (3 * 7 + 2 * 4, 2 * 8 + 2 * 3)  # (width, height)
    pixels = np.asarray(image).reshape(image.size[1], image.size[0], c)
    np.testing.assert_array_equal(pixels, image_grid(images, 3))
    only_png(tmp_path, "samples.png")


def test_save_sample_grid_replaces_existing_file(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    save_sample_grid(distinct_uint8(4, 3, 3, 3), path)
    assert open_png(path).size == (2 * 3 + 2 * 3, 2 * 3 + 2 * 3)
    only_png(tmp_path, "grid.png")


def test_missing_folder_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        save_sample_grid(distinct_uint8(1, 1, 2, 2), tmp_path / "nope" / "grid.png")
    assert not (tmp_path / "nope").exists()


def test_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_sample_grid(distinct_uint8(1, 1, 2, 2), tmp_path / "grid.png")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("c", [1, 3])
def test_reconstruction_grid_pairs_rows(tmp_path, c):
    n, h, w, columns = 7, 3, 4, 3
    real = distinct_uint8(n, c, h, w)
    recon = (real.astype(np.float64) + 1.0) / 255.0  # float input: each pixel one level above real
    path = save_reconstruction_grid(real, recon, tmp_path / "recon.png", columns=columns)
    image = open_png(path)
    assert image.mode == ("L" if c == 1 else "RGB")
    rows = 2 * 3  # 3 pairs of rows of 3
    assert image.size == (columns * w + 2 * (columns + 1), rows * h + 2 * (rows + 1))
    grid = np.asarray(image).reshape(image.size[1], image.size[0], c)
    for k in range(n):
        pair, col = divmod(k, columns)
        real_tile = tile(grid, (2 * pair) * columns + col, columns, h, w)
        recon_tile = tile(grid, (2 * pair + 1) * columns + col, columns, h, w)
        np.testing.assert_array_equal(real_tile, real[k].transpose(1, 2, 0))
        np.testing.assert_array_equal(recon_tile, real[k].transpose(1, 2, 0) + 1)
    # The two cells after image 6 in the last pair of rows are white.
    for k in (2 * 2 * columns + 1, 2 * 2 * columns + 2, 5 * columns + 1, 5 * columns + 2):
        assert (tile(grid, k, columns, h, w) == 255).all()
    only_png(tmp_path, "recon.png")


def test_reconstruction_grid_caps_columns(tmp_path):
    path = save_reconstruction_grid(distinct_uint8(2, 1, 3, 3), distinct_uint8(2, 1, 3, 3), tmp_path / "r.png")
    assert open_png(path).size == (2 * 3 + 2 * 3, 2 * 3 + 2 * 3)


@pytest.mark.parametrize(
    ("real", "recon"),
    [((2, 1, 3, 3), (2, 1, 3, 4)), ((2, 1, 3, 3), (3, 1, 3, 3)), ((2, 2, 3, 3), (2, 2, 3, 3)), ((2, 3, 3), (2, 3, 3))],
)
def test_reconstruction_grid_rejects_bad_shapes(tmp_path, real, recon):
    with pytest.raises(ValueError):
        save_reconstruction_grid(np.zeros(real, np.float32), np.zeros(recon, np.float32), tmp_path / "r.png")
    assert os.listdir(tmp_path) == []


# --- mask history ----------------------------------------------------------------------------


def test_mask_history_png(tmp_path):
    steps = np.arange(0, 5000, 10)
    t = steps[:, None] / 5000.0
    rates = np.array([0.0, 0.0, 3.0, 8.0, 0.5, 20.0])
    mask = np.clip(0.9 * np.exp(-rates * t) + 0.05, 0, 1)  # dims 0, 1, 4 stay above 0.1
    path = save_mask_history(steps, mask, tmp_path / "mask_history.png", title="MNIST")
    image = open_png(path)
    assert 500 <= image.size[0] <= 800 and 350 <= image.size[1] <= 550
    only_png(tmp_path, "mask_history.png")


def test_mask_history_single_step_many_dims(tmp_path):
    mask = np.random.default_rng(1).random((1, 300))
    mask[0, :5] = np.nan  # NaN counts as closed, must not break the plot
    path = save_mask_history(np.array([0]), mask, str(tmp_path / "m.png"), threshold=0.5)
    open_png(path)
    only_png(tmp_path, "m.png")


def test_mask_history_long_and_wide(tmp_path):
    steps = np.arange(6000)
    mask = np.linspace(1.0, 0.0, 6000)[:, None] * np.linspace(0.0, 1.0, 512)[None, :]
    open_png(save_mask_history(steps, mask, tmp_path / "m.png"))


def test_mask_history_all_closed_and_all_open(tmp_path):
    open_png(save_mask_history(np.arange(3), np.zeros((3, 4)), tmp_path / "closed.png"))
    open_png(save_mask_history(np.arange(3), np.ones((3, 4)), tmp_path / "open.png"))


@pytest.mark.parametrize(
    ("steps", "mask"),
    [
        (np.arange(3), np.zeros(3)),
        (np.arange(3)[:, None], np.zeros((3, 2))),
        (np.arange(4), np.zeros((3, 2))),
        (np.arange(0), np.zeros((0, 2))),
        (np.arange(3), np.zeros((3, 0))),
        (np.arange(3), np.zeros((3, 2, 1))),
    ],
)
def test_mask_history_rejects_bad_shapes(tmp_path, steps, mask):
    with pytest.raises(ValueError):
        save_mask_history(steps, mask, tmp_path / "m.png")


# --- covariance heat map ---------------------------------------------------------------------


def covariance(m: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).random((m, m))
    matrix = (a + a.T) / 2
    np.fill_diagonal(matrix, 1.0)
    return matrix


def test_heatmap_full_and_active(tmp_path):
    full = open_png(save_covariance_heatmap(covariance(12), tmp_path / "full.png"))
    mask = np.zeros(12, dtype=bool)
    mask[[1, 4, 9]] = True
    sub = open_png(save_covariance_heatmap(covariance(12), tmp_path / "mask.png", active=mask, title="t"))
    listed = open_png(save_covariance_heatmap(covariance(12), tmp_path / "list.png", active=[9, 1, 4]))
    assert full.size[0] > 300 and sub.size == listed.size
    assert sorted(os.listdir(tmp_path)) == ["full.png", "list.png", "mask.png"]


def test_heatmap_nan_and_many_dims(tmp_path):
    matrix = covariance(200)
    matrix[7, :] = matrix[:, 7] = np.nan  # a constant dimension
    open_png(save_covariance_heatmap(matrix, tmp_path / "nan.png"))
    open_png(save_covariance_heatmap(matrix, tmp_path / "nan_active.png", active=np.arange(0, 200, 2)))


def test_heatmap_nan_is_grey(tmp_path):
    matrix = np.full((2, 2), np.nan)
    image = np.asarray(open_png(save_covariance_heatmap(matrix, tmp_path / "h.png")).convert("RGB"))
    grey = tuple(int(pictures.NAN_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    assert (np.abs(image.astype(int) - grey).max(axis=2) <= 2).sum() > 1000


@pytest.mark.parametrize(("m", "active"), [(5, []), (5, np.zeros(5, dtype=bool)), (0, None)])
def test_heatmap_no_active_dimensions(tmp_path, m, active):
    image = open_png(save_covariance_heatmap(np.zeros((m, m)), tmp_path / "h.png", active=active))
    assert image.size[0] > 100
    only_png(tmp_path, "h.png")


@pytest.mark.parametrize(
    ("matrix", "active"),
    [
        (np.zeros((3, 4)), None),
        (np.zeros(3), None),
        (np.zeros((3, 3, 3)), None),
        (np.zeros((3, 3)), np.ones(4, dtype=bool)),
        (np.zeros((3, 3)), [0, 3]),
        (np.zeros((3, 3)), [-1]),
        (np.zeros((3, 3)), [1, 1]),
        (np.zeros((3, 3)), [0.5]),
        (np.zeros((3, 3)), [[0, 1]]),
    ],
)
def test_heatmap_rejects_bad_input(tmp_path, matrix, active):
    with pytest.raises(ValueError):
        save_covariance_heatmap(matrix, tmp_path / "h.png", active=active)
    assert os.listdir(tmp_path) == []


# --- imports ---------------------------------------------------------------------------------


def test_no_torch_and_no_pyplot(tmp_path):
    """Importing needs neither torch nor matplotlib; drawing imports matplotlib but never pyplot."""
    code = f"""
import sys
import numpy as np
import latentdim.pictures as p
assert not [m for m in ('torch', 'matplotlib') if m in sys.modules], 'imported at import time'
p.save_mask_history(np.arange(2), np.ones((2, 2)), {str(tmp_path / "m.png")!r})
p.save_covariance_heatmap(np.eye(2), {str(tmp_path / "h.png")!r})
bad = [m for m in ('torch', 'matplotlib.pyplot') if m in sys.modules]
assert not bad, bad
"""
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert sorted(os.listdir(tmp_path)) == ["h.png", "m.png"]


@pytest.mark.parametrize(("k", "step"), [(1, 1), (12, 1), (13, 2), (24, 2), (25, 5), (60, 5), (61, 10), (200, 20), (512, 50)])
def test_heatmap_tick_step(k, step):
    positions = pictures._tick_positions(k, 12)
    assert len(positions) <= 12 and positions[0] == 0
    assert np.all(np.diff(positions) == step)


# --- labelled grids, traversals, training curves, closing rounds ------------------------------


def test_labelled_grid_unlabelled_is_the_image_grid_scaled_up():
    from latentdim.pictures import labelled_grid

    a, b = distinct_uint8(3, 1, 2, 3), distinct_uint8(2, 1, 2, 3)
    grid = labelled_grid([a, b], scale=3)
    white = np.full((1, 1, 2, 3), 255, np.uint8)
    expected = image_grid(np.concatenate([a, b, white]), 3)  # the short row ends in a white cell
    np.testing.assert_array_equal(grid, np.repeat(np.repeat(expected, 3, axis=0), 3, axis=1))


def test_labelled_grid_puts_labels_in_a_white_margin():
    from latentdim.pictures import labelled_grid

    rows = [np.full((2, 3, 4, 4), 200, np.uint8)] * 2
    plain = labelled_grid(rows, scale=2)
    grid = labelled_grid(rows, ["real", "reconstructed"], ["a", "b"], scale=2)
    top, left = grid.shape[0] - plain.shape[0], grid.shape[1] - plain.shape[1]
    assert top > 0 and left > 0 and grid.shape[2] == 3
    np.testing.assert_array_equal(grid[top:, left:], plain)
    assert (grid[top:, :left] < 128).any() and (grid[:top, left:] < 128).any()  # ink in both margins
    with pytest.raises(ValueError, match="row labels"):
        labelled_grid(rows, ["one"])
    with pytest.raises(ValueError, match="column labels"):
        labelled_grid(rows, None, ["a"])
    with pytest.raises(ValueError, match="scale"):
        labelled_grid(rows, scale=0)


def test_reconstruction_grid_scaled_and_labelled(tmp_path):
    real = distinct_uint8(4, 1, 3, 3)
    plain = np.asarray(open_png(save_reconstruction_grid(real, real, tmp_path / "a.png", columns=2)))
    image = open_png(save_reconstruction_grid(real, real, tmp_path / "b.png", columns=2, scale=2, labels=True))
    pixels = np.asarray(image)
    left = pixels.shape[1] - 2 * plain.shape[1]
    assert pixels.shape[0] == 2 * plain.shape[0] and left > 0
    np.testing.assert_array_equal(pixels[:, left:], np.repeat(np.repeat(plain, 2, axis=0), 2, axis=1))


def test_traversal_grid_rows_per_dim(tmp_path):
    from latentdim.pictures import save_traversal_grid

    rows = [np.zeros((5, 1, 4, 4), np.float32), np.ones((5, 1, 4, 4), np.float32)]
    image = open_png(save_traversal_grid(rows, [3, 0], [-2, -1, 0, 1, 2], tmp_path / "t.png", scale=2))
    assert image.size[0] > 2 * (5 * 4 + 6 * 2) and image.size[1] > 2 * (2 * 4 + 3 * 2)
    with pytest.raises(ValueError, match="dims"):
        save_traversal_grid(rows, [3], [0.0] * 5, tmp_path / "u.png")


def test_phase_spans_group_close_and_hold():
    from latentdim.pictures import phase_spans

    steps = np.array([1, 50, 100, 150, 200, 250])
    phases = ["warmup", "warmup", "close", "hold", "close", "refine"]
    assert phase_spans(steps, phases) == [("warm-up", 1, 50), ("closing", 50, 200), ("refine", 200, 250)]


def test_training_curves_and_closing_curve_write_pngs(tmp_path):
    from latentdim.pictures import save_closing_curve, save_training_curves

    steps = np.arange(1, 101) * 10
    phases = ["warmup"] * 40 + ["close", "hold"] * 20 + ["refine"] * 20
    path = save_training_curves(steps, np.linspace(1, 0.1, 100), np.linspace(2, 0, 100), phases, tmp_path / "l.png",
                                round_steps=[410, 500])
    assert open_png(path).size == (round(110 * 7.0), round(110 * 5.0))
    with pytest.raises(ValueError, match="one length"):
        save_training_curves(steps, np.ones(3), np.ones(100), phases, tmp_path / "bad.png")
    assert save_closing_curve([{"open": 8, "k": 2}], 8, 8, tmp_path / "c.png") is None  # no verdict yet
    assert not (tmp_path / "c.png").exists()
    rounds = [
        {"open": 8, "k": 2, "error": 0.10, "limit": 0.12, "kept": True},
        {"open": 6, "k": 1, "error": 0.11, "limit": 0.12, "kept": True},
        {"open": 5, "k": 1, "error": 0.30, "limit": 0.12, "kept": False},
    ]
    assert open_png(save_closing_curve(rounds, 8, 5, tmp_path / "c.png")).size == (660, 440)
