"""The pictures a run writes to its output folder: numpy arrays in, PNG files out.

* :func:`image_grid` / :func:`save_sample_grid`: generated images tiled on a white background.
* :func:`save_reconstruction_grid`: real images each directly above their reconstruction.
* :func:`save_mask_history`: the mask values mu over training, like Figure 5 of the MaskAAE paper.
* :func:`save_covariance_heatmap`: the normalised absolute covariance of the codes, like
  Figures 10-13 of the paper (see :mod:`latentdim.metrics.covariance`).

This module imports numpy and Pillow only (never torch). matplotlib is imported inside the
plotting functions, and used through :class:`matplotlib.figure.Figure` and the Agg canvas directly:
no pyplot, so no global figure state and no GUI backend is ever selected.

Every file is written atomically: into a temporary file beside the target, then renamed over it,
so a reader never sees a half-written PNG. The target's folder must already exist.

Bad arguments (wrong ndim, shape or channel count) are programmer errors and raise
:class:`ValueError`, not :class:`latentdim.LatentdimError`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image

from latentdim.errors import LatentdimError
from latentdim.fileio import atomic_write
from latentdim.metrics._validate import active_indices

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Anything :class:`pathlib.Path` accepts.
PathLike = Union[str, os.PathLike]

#: Resolution of the matplotlib figures, in dots per inch.
DPI = 110
#: Colour of the dimensions that are still open at the end of training.
ACTIVE_COLOUR = "#1f77b4"
#: Colour of the dimensions the mask has closed.
CLOSED_COLOUR = "#c8c8c8"
#: Colour of NaN entries (e.g. a constant dimension) in the covariance heat map.
NAN_COLOUR = "#9e9e9e"
#: A mask line is drawn through at most this many (evenly spaced) steps, so long runs stay fast.
MAX_HISTORY_POINTS = 2000
#: The heat map labels at most this many ticks per axis.
MAX_TICKS = 12


# --------------------------------------------------------------------------------------------
# Image grids
# --------------------------------------------------------------------------------------------


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles images row by row into one uint8 picture with white gaps between the tiles.

    Tile ``k`` lies in grid row ``k // cols`` and column ``k % cols``, with its top-left pixel at
    ``(pad + row * (H + pad), pad + col * (W + pad))``. Cells past the last image stay white.

    Float images are clipped to [0, 1], then scaled by 255 and rounded to the nearest level with
    :func:`numpy.rint` (ties to even), so 0.5 -> 127.5 -> 128; NaN becomes 0. uint8 images are
    copied unchanged.

    Args:
        images: shape (N, C, H, W), N >= 1, C in (1, 3); dtype uint8 or floating.
        columns: tiles per row; default ``ceil(sqrt(N))``. Capped at N, so a short batch does
            not get a wide white margin.
        pad: white (255) pixels between tiles and around the border, >= 0.

    Returns:
        uint8 array of shape ``(rows*H + pad*(rows+1), cols*W + pad*(cols+1), C)`` with
        ``cols = min(columns, N)`` and ``rows = ceil(N / cols)``.

    Raises:
        ValueError: wrong ndim, channel count or dtype, N == 0, or a bad ``columns`` or ``pad``.
    """
    tiles = _to_uint8_hwc(images, "images")
    n, h, w, c = tiles.shape
    cols = _grid_columns(n, columns)
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"pad must be an integer >= 0, got {pad!r}")
    rows = math.ceil(n / cols)
    canvas = np.full((rows * h + pad * (rows + 1), cols * w + pad * (cols + 1), c), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, q = divmod(k, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        canvas[top : top + h, left : left + w] = tile
    return canvas


def save_sample_grid(images: np.ndarray, path: PathLike, columns: int | None = None) -> Path:
    """Writes a grid of generated images as a PNG (mode L for 1 channel, RGB for 3).

    Args:
        images: shape (N, C, H, W), see :func:`image_grid`.
        path: the PNG to write; its folder must exist.
        columns: tiles per row; default ``ceil(sqrt(N))``.

    Returns:
        The path written.

    Raises:
        ValueError: bad ``images`` or ``columns`` (see :func:`image_grid`).
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    grid = image_grid(images, columns)
    _write_png_array(path, grid)
    return path


def save_reconstruction_grid(
    real: np.ndarray, reconstructed: np.ndarray, path: PathLike, columns: int = 10
) -> Path:
    """Writes real images each directly above its reconstruction, as a PNG.

    Images go ``columns`` per row in pairs of rows: grid row ``2p`` (rows 1, 3, 5... counting
    from 1) holds real images ``p*columns`` to ``(p+1)*columns - 1`` and row ``2p + 1`` their
    reconstructions, in the same columns. The tiles are laid out as in :func:`image_grid` with
    ``pad=2``; cells past the last image stay white.

    Args:
        real: shape (N, C, H, W), C in (1, 3); uint8 or float in [0, 1].
        reconstructed: the same shape as ``real`` (the dtype may differ).
        path: the PNG to write; its folder must exist.
        columns: images per row, >= 1; capped at N.

    Returns:
        The path written.

    Raises:
        ValueError: bad shapes or dtypes, ``real`` and ``reconstructed`` differ in shape, or a
            bad ``columns``.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    top = _to_uint8_hwc(real, "real")
    bottom = _to_uint8_hwc(reconstructed, "reconstructed")
    if np.shape(real) != np.shape(reconstructed):
        raise ValueError(
            f"real and reconstructed must have the same shape, got {np.shape(real)} and {np.shape(reconstructed)}"
        )
    n = top.shape[0]
    cols = _grid_columns(n, columns)
    pairs = math.ceil(n / cols)
    # Pad both to whole rows with white tiles, then interleave row by row: real, reconstructed.
    blank = np.full((pairs * cols - n, *top.shape[1:]), 255, dtype=np.uint8)
    top = np.concatenate([top, blank]).reshape(pairs, 1, cols, *top.shape[1:])
    bottom = np.concatenate([bottom, blank]).reshape(pairs, 1, cols, *bottom.shape[1:])
    tiles = np.concatenate([top, bottom], axis=1).reshape(-1, *blank.shape[1:])
    grid = image_grid(tiles.transpose(0, 3, 1, 2), cols)
    _write_png_array(path, grid)
    return path


# --------------------------------------------------------------------------------------------
# Mask history
# --------------------------------------------------------------------------------------------


def save_mask_history(
    steps: np.ndarray,
    mask: np.ndarray,
    path: PathLike,
    threshold: float = 0.1,
    title: str | None = None,
) -> Path:
    """Plots the mask values over training, one line per latent dimension (paper, Figure 5).

    Dimensions still open at the last step (final mu >= ``threshold``) are drawn in one strong
    colour on top of the closed ones in light grey; a dashed line marks the threshold and a legend
    says ``m_A = K of m active``. With a single step (T == 1) each dimension is a marker. Long
    histories are drawn through at most :data:`MAX_HISTORY_POINTS` evenly spaced steps (the first
    and last always included). A NaN final value counts as closed.

    Args:
        steps: training steps, shape (T,), T >= 1.
        mask: mask values mu in [0, 1], shape (T, m), m >= 1; row t belongs to ``steps[t]``.
        path: the PNG to write; its folder must exist.
        threshold: a dimension with final mu >= threshold is active.
        title: optional title above the plot.

    Returns:
        The path written.

    Raises:
        ValueError: ``steps`` not 1-D, ``mask`` not 2-D, their lengths differ, T == 0 or m == 0,
            or ``threshold`` is not a finite number.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    x = _float_array(steps, "steps")
    mu = _float_array(mask, "mask")
    if x.ndim != 1:
        raise ValueError(f"steps must have shape (T,), got {x.shape}")
    if mu.ndim != 2:
        raise ValueError(f"mask must have shape (T, m), got {mu.shape}")
    if mu.shape[0] != x.shape[0]:
        raise ValueError(f"mask has {mu.shape[0]} rows but there are {x.shape[0]} steps")
    if x.shape[0] == 0 or mu.shape[1] == 0:
        raise ValueError(f"mask history is empty: shape {mu.shape}")
    if not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    threshold = float(threshold)

    active = mu[-1] >= threshold  # NaN compares False: closed
    keep = _evenly_spaced(x.shape[0], MAX_HISTORY_POINTS)
    x, mu = x[keep], mu[keep]

    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    _draw_mask_lines(ax, x, mu[:, ~active], CLOSED_COLOUR, width=0.8, zorder=1)
    _draw_mask_lines(ax, x, mu[:, active], ACTIVE_COLOUR, width=1.3, zorder=2)
    ax.axhline(threshold, color="0.25", linestyle="--", linewidth=1.0, zorder=3)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if hi > lo:
        ax.set_xlim(lo, hi)
    else:
        ax.set_xlim(lo - 1.0, lo + 1.0)
    ax.set_ylim(-0.03, 1.03)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step")
    ax.set_ylabel(r"mask value $\mu$")
    if title:
        ax.set_title(title)
    ax.grid(True, color="0.92", linewidth=0.6, zorder=0)
    _mask_legend(ax, int(active.sum()), active.size, threshold)
    _save_figure(fig, path)
    return path


def _draw_mask_lines(ax: Axes, x: np.ndarray, mu: np.ndarray, colour: str, width: float, zorder: int) -> None:
    """Draws each column of ``mu`` (T, k) against ``x`` (T,): one LineCollection, or markers if T == 1."""
    if mu.shape[1] == 0:
        return
    if x.shape[0] == 1:
        ax.scatter(np.full(mu.shape[1], x[0]), mu[0], s=14, color=colour, zorder=zorder, linewidths=0)
        return
    from matplotlib.collections import LineCollection

    # segments (k, T, 2): line j runs through (x[t], mu[t, j]).
    segments = np.stack([np.broadcast_to(x[:, None], mu.shape), mu], axis=-1).transpose(1, 0, 2)
    ax.add_collection(LineCollection(segments, colors=colour, linewidths=width, zorder=zorder), autolim=False)


def _mask_legend(ax: Axes, k: int, m: int, threshold: float) -> None:
    """Legend with the active, closed and threshold styles, titled ``m_A = k of m active``."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=ACTIVE_COLOUR, linewidth=1.3, label=f"active ({k})"),
        Line2D([], [], color=CLOSED_COLOUR, linewidth=1.3, label=f"closed ({m - k})"),
        Line2D([], [], color="0.25", linestyle="--", linewidth=1.0, label=f"threshold {threshold:g}"),
    ]
    # A fixed location: "best" would test every one of up to 512 lines for overlap.
    ax.legend(
        handles=handles,
        title=f"$m_A$ = {k} of {m} active",
        loc="center right",
        fontsize="small",
        title_fontsize="small",
        framealpha=0.9,
    )


def _evenly_spaced(n: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` evenly spaced items of ``n``, the first and last included."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.intp))


# --------------------------------------------------------------------------------------------
# Covariance heat map
# --------------------------------------------------------------------------------------------


def save_covariance_heatmap(
    matrix: np.ndarray,
    path: PathLike,
    active: np.ndarray | Sequence[int] | None = None,
    title: str | None = None,
) -> Path:
    """Heat map of the normalised absolute covariance of the codes (paper, Figures 10-13).

    ``matrix`` is shown as given (absolute values) on a fixed 0..1 colour scale with a colour
    bar; values above 1 saturate. Normally it comes from
    :func:`latentdim.metrics.covariance.normalised_abs_covariance`. NaN or inf entries (e.g. a
    constant dimension) are drawn in grey. With ``active``, only the active dimensions'
    sub-matrix is drawn, its ticks labelled with the original indices (at most
    :data:`MAX_TICKS` per axis). An empty active set or m == 0 writes a small picture that says
    "no active dimensions".

    Args:
        matrix: shape (m, m), values in [0, 1].
        path: the PNG to write; its folder must exist.
        active: which dimensions to show: a boolean mask of length m or integer indices in
            [0, m) without repeats (shown in ascending order); ``None`` means all m.
        title: title above the plot; default none, or ``"active dimensions: K of m"`` when
            ``active`` is given.

    Returns:
        The path written.

    Raises:
        ValueError: ``matrix`` not square 2-D, or ``active`` of the wrong length, dtype or range,
            or with repeats.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    values = _float_array(matrix, "matrix")
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"matrix must be square with shape (m, m), got {values.shape}")
    m = values.shape[0]
    try:
        idx = active_indices(active, m)  # the rules of metrics.nac
    except LatentdimError as e:
        raise ValueError(str(e)) from None
    if title is None and active is not None:
        title = f"active dimensions: {idx.size} of {m}"

    if idx.size == 0:
        fig = _message_figure("no active dimensions", title)
    else:
        fig = _heatmap_figure(np.abs(values[np.ix_(idx, idx)]), idx, title)
    _save_figure(fig, path)
    return path


def _heatmap_figure(values: np.ndarray, labels: np.ndarray, title: str | None) -> Figure:
    """The heat map of ``values`` (k, k), ticks labelled with ``labels`` (k,)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=NAN_COLOUR)
    fig = _new_figure(5.6, 4.6)
    ax = fig.add_subplot()
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal"
    )
    colourbar = fig.colorbar(image, ax=ax)
    colourbar.set_label("normalised |covariance|")
    positions = _tick_positions(labels.size, MAX_TICKS)
    tick_labels = [str(int(i)) for i in labels[positions]]
    ax.set_xticks(positions, tick_labels, rotation=90 if labels.size > 1 and labels.max() >= 100 else 0)
    ax.set_yticks(positions, tick_labels)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("latent dimension")
    if title:
        ax.set_title(title)
    return fig


def _message_figure(message: str, title: str | None) -> Figure:
    """A small figure that only says ``message`` (and ``title`` above it)."""
    fig = _new_figure(4.0, 2.0)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize="large", transform=ax.transAxes)
    if title:
        ax.set_title(title)
    return fig


def _tick_positions(k: int, most: int) -> np.ndarray:
    """Every ``step``-th of k positions from 0, at most ``most`` ticks; ``step`` is 1, 2 or 5 x 10^j."""
    least = max(1, math.ceil(k / most))
    step = min(f * 10**j for j in range(len(str(least)) + 1) for f in (1, 2, 5) if f * 10**j >= least)
    return np.arange(0, k, step)


# --------------------------------------------------------------------------------------------
# Helpers: validation, conversion, atomic writing
# --------------------------------------------------------------------------------------------


def _to_uint8_hwc(images: np.ndarray, name: str) -> np.ndarray:
    """Validates (N, C, H, W) images and returns them as uint8 (N, H, W, C); see :func:`image_grid`."""
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {arr.shape}")
    n, c, h, w = arr.shape
    if c not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels (axis 1), got {c} in shape {arr.shape}")
    if n == 0 or h == 0 or w == 0:
        raise ValueError(f"{name} must hold at least one non-empty image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr
    elif np.issubdtype(arr.dtype, np.floating):
        scaled = np.clip(np.nan_to_num(arr.astype(np.float64), nan=0.0), 0.0, 1.0) * 255.0
        out = np.rint(scaled).astype(np.uint8)
    else:
        raise ValueError(f"{name} must be uint8 or floating point in [0, 1], got dtype {arr.dtype}")
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


def _grid_columns(n: int, columns: int | None) -> int:
    """Tiles per row for n tiles: ``ceil(sqrt(n))`` by default, ``columns`` capped at n otherwise."""
    if columns is None:
        return math.ceil(math.sqrt(n))
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns must be an integer >= 1, got {columns!r}")
    return min(int(columns), n)


def _float_array(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as a float64 array; a ValueError naming ``name`` if it is not numeric."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric: {e}") from None


def _target(path: PathLike) -> Path:
    """``path`` as a Path whose folder exists (it is never created)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    return path


def _write_png_array(path: Path, grid: np.ndarray) -> None:
    """Writes a uint8 (H, W, C) array as a PNG: mode L for C == 1, RGB for C == 3."""
    image = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    atomic_write(path, lambda f: image.save(f, format="PNG"))


def _new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure on an Agg canvas (no pyplot), laid out with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig: Figure, path: Path) -> None:
    """Renders ``fig`` to PNG in memory, then writes it atomically to ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = buffer.getvalue()
    atomic_write(path, lambda f: f.write(data))
