"""pixels: the one path from images in [0, 1] to 8-bit levels and grids."""

import numpy as np

from latentdim.pixels import tile, to_levels


def test_levels_round_clip_and_nan():
    k = np.arange(256)
    assert np.array_equal(to_levels((k / 255.0).astype(np.float32)), k.astype(np.uint8))  # k / 255 -> k exactly
    got = to_levels(np.array([-0.5, 1.5, np.nan, 0.5, 0.25 / 255, 0.75 / 255], dtype=np.float32))
    assert got.tolist() == [0, 255, 0, 128, 0, 1]  # clipped; NaN -> 0; 127.5 -> 128 (ties to even); nearest level
    u = np.array([3, 200], dtype=np.uint8)
    assert to_levels(u) is u


def test_tile_places_each_tile_by_hand():
    tiles = np.stack([np.full((2, 3, 1), v, dtype=np.uint8) for v in (10, 20, 30)])
    grid = tile(tiles, cols=2, pad=1, fill=255)
    assert grid.shape == (2 * 2 + 3, 2 * 3 + 3, 1)
    assert (grid[1:3, 1:4] == 10).all() and (grid[1:3, 5:8] == 20).all() and (grid[4:6, 1:4] == 30).all()
    assert (grid[4:6, 5:8] == 255).all() and (grid[0] == 255).all()  # the empty cell and the border stay fill
    assert (tile(tiles, cols=3, fill=0) == np.concatenate(list(tiles), axis=1)).all()  # no pad: side by side
