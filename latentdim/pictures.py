"""The pictures a run writes to its output folder: numpy arrays in, PNG files out.

* :func:`image_grid` / :func:`save_sample_grid`: generated images tiled on a white background.
* :func:`save_reconstruction_grid`: real images each directly above their reconstruction.
* :func:`labelled_grid` / :func:`save_traversal_grid`: rows of images scaled up and labelled; the
  latent traversals of an image model.
* :func:`save_training_curves`: reconstruction and W over training with the phases shaded.
* :func:`save_closing_curve`: the held-out error after each elimination round against the
  dimensions it left open.
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
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from PIL import Image

from latentdim.errors import LatentdimError
from latentdim.fileio import atomic_write
from latentdim.metrics._validate import active_indices
from latentdim.pixels import tile, to_levels, to_pil

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
    cols = _grid_columns(tiles.shape[0], columns)
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"pad must be an integer >= 0, got {pad!r}")
    return tile(tiles, cols, pad=int(pad))


def save_sample_grid(images: np.ndarray, path: PathLike, columns: int | None = None, scale: int = 1) -> Path:
    """Writes a grid of generated images as a PNG (mode L for 1 channel, RGB for 3).

    Args:
        images: shape (N, C, H, W), see :func:`image_grid`.
        path: the PNG to write; its folder must exist.
        columns: tiles per row; default ``ceil(sqrt(N))``.
        scale: every pixel becomes a ``scale`` x ``scale`` block (nearest neighbour), >= 1.

    Returns:
        The path written.

    Raises:
        ValueError: bad ``images``, ``columns`` or ``scale`` (see :func:`image_grid`).
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    _write_png_array(path, _scaled(image_grid(images, columns), scale))
    return path


def save_reconstruction_grid(
    real: np.ndarray, reconstructed: np.ndarray, path: PathLike, columns: int = 10, scale: int = 1,
    labels: bool = False,
) -> Path:
    """Writes real images each directly above its reconstruction, as a PNG.

    Images go ``columns`` per row in pairs of rows: grid row ``2p`` (rows 1, 3, 5... counting
    from 1) holds real images ``p*columns`` to ``(p+1)*columns - 1`` and row ``2p + 1`` their
    reconstructions, in the same columns. The tiles are laid out as in :func:`image_grid` with
    ``pad=2``; cells past the last image stay white. ``scale`` and ``labels`` are those of
    :func:`labelled_grid` (the rows are labelled "real" and "reconstructed").

    Args:
        real: shape (N, C, H, W), C in (1, 3); uint8 or float in [0, 1].
        reconstructed: the same shape as ``real`` (the dtype may differ).
        path: the PNG to write; its folder must exist.
        columns: images per row, >= 1; capped at N.
        scale: every pixel becomes a ``scale`` x ``scale`` block (nearest neighbour), >= 1.
        labels: a left margin names each row.

    Returns:
        The path written.

    Raises:
        ValueError: bad shapes or dtypes, ``real`` and ``reconstructed`` differ in shape, or a
            bad ``columns`` or ``scale``.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    # uint8 (N, C, H, W): labelled_grid then takes them as they are
    top = _to_uint8_hwc(real, "real").transpose(0, 3, 1, 2)
    bottom = _to_uint8_hwc(reconstructed, "reconstructed").transpose(0, 3, 1, 2)
    if np.shape(real) != np.shape(reconstructed):
        raise ValueError(
            f"real and reconstructed must have the same shape, got {np.shape(real)} and {np.shape(reconstructed)}"
        )
    n = top.shape[0]
    cols = _grid_columns(n, columns)
    rows, names = [], []
    for p in range(math.ceil(n / cols)):
        rows += [top[p * cols : (p + 1) * cols], bottom[p * cols : (p + 1) * cols]]
        names += ["real", "reconstructed"]
    _write_png_array(path, labelled_grid(rows, names if labels else None, scale=scale))
    return path


def grid_scale(height: int, least: int = 64) -> int:
    """The whole factor that shows tiles ``height`` pixels high at least ``least`` pixels high
    (1 for tiles that are already that large)."""
    return max(1, math.ceil(least / max(1, int(height))))


def labelled_grid(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    pad: int = 2,
    scale: int = 1,
) -> np.ndarray:
    """Tiles rows of images into one uint8 picture, optionally scaled up and labelled.

    Row ``i`` holds the images ``rows[i]`` (each (n_i, C, H, W), n_i >= 1, all of one C, H and
    W) from the left; the grid is as wide as the longest row and shorter rows end in white cells.
    Unlabelled, the picture is the one :func:`image_grid` makes of the rows' tiles (with the
    white cells), every pixel then repeated into a ``scale`` x ``scale`` block. Labels go into a
    white margin: ``row_labels`` (one per row) on the left, centred on their row, and
    ``column_labels`` (one per column) above the columns, in dark grey.

    Raises:
        ValueError: no rows, rows that differ in C, H or W, a bad ``pad`` or ``scale``, or label
            counts that do not match the rows or columns.
    """
    if len(rows) == 0:
        raise ValueError("labelled_grid needs at least one row")
    tiles = [_to_uint8_hwc(r, f"rows[{i}]") for i, r in enumerate(rows)]
    shape = tiles[0].shape[1:]
    if any(t.shape[1:] != shape for t in tiles):
        raise ValueError(f"every row's images must have one shape, got {[t.shape[1:] for t in tiles]}")
    cols = max(t.shape[0] for t in tiles)
    blank = np.full((1, *shape), 255, dtype=np.uint8)
    cells = np.concatenate([np.concatenate([t] + [blank] * (cols - t.shape[0])) for t in tiles])
    grid = _scaled(image_grid(cells.transpose(0, 3, 1, 2), cols, pad=pad), scale)
    if row_labels is None and column_labels is None:
        return grid
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"{len(row_labels)} row labels for {len(rows)} rows")
    if column_labels is not None and len(column_labels) != cols:
        raise ValueError(f"{len(column_labels)} column labels for {cols} columns")
    return _add_labels(grid, row_labels, column_labels, shape[0] * scale, shape[1] * scale, pad * scale)


def _add_labels(
    grid: np.ndarray, row_labels: Sequence[str] | None, column_labels: Sequence[str] | None,
    h: int, w: int, pad: int,
) -> np.ndarray:
    """``grid`` with a white margin on the left (row labels) and/or on top (column labels)."""
    from PIL import ImageDraw

    font = _label_font()
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))

    def size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return int(right - left), int(bottom - top)

    margin_left = 8 + max(size(t)[0] for t in row_labels) + 8 if row_labels else 0
    margin_top = 6 + max(size(t)[1] for t in column_labels) + 6 if column_labels else 0
    c = grid.shape[2]
    canvas = Image.new("L" if c == 1 else "RGB", (grid.shape[1] + margin_left, grid.shape[0] + margin_top), "white")
    canvas.paste(Image.fromarray(grid[:, :, 0] if c == 1 else grid), (margin_left, margin_top))
    draw = ImageDraw.Draw(canvas)
    ink = 60 if c == 1 else (60, 60, 60)
    for i, text in enumerate(row_labels or []):
        centre = margin_top + pad + i * (h + pad) + h // 2
        draw.text((margin_left - 8, centre), text, fill=ink, font=font, anchor="rm")
    for j, text in enumerate(column_labels or []):
        centre = margin_left + pad + j * (w + pad) + w // 2
        draw.text((centre, margin_top // 2), text, fill=ink, font=font, anchor="mm")
    out = np.asarray(canvas)
    return out[:, :, None] if c == 1 else out


def _scaled(grid: np.ndarray, scale: int) -> np.ndarray:
    """``grid`` (H, W, C) with every pixel repeated into a ``scale`` x ``scale`` block."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


def _label_font() -> Any:
    """Pillow's own font at 13 pixels (its bitmap font where FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def save_traversal_grid(
    rows: Sequence[np.ndarray], dims: Sequence[int], values: Sequence[float], path: PathLike, scale: int = 1
) -> Path:
    """Writes latent traversals as a PNG: row ``i`` shows ``rows[i]`` (V, C, H, W), the images
    decoded as latent dimension ``dims[i]`` takes the ``values`` (V of them) with every other
    code held still; rows are labelled "dim j", columns by the value.

    Raises:
        ValueError: as :func:`labelled_grid`, or ``dims`` and ``rows`` differ in length.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    if len(dims) != len(rows):
        raise ValueError(f"{len(dims)} dims for {len(rows)} rows")
    grid = labelled_grid(rows, [f"dim {int(j)}" for j in dims], [f"{v:+.1f}" for v in values], scale=scale)
    _write_png_array(path, grid)
    return path


# --------------------------------------------------------------------------------------------
# Training curves and the closing rounds
# --------------------------------------------------------------------------------------------

#: Shading of the schedule's phases in the training curves (close and hold together are the
#: closing), with the words of their legend.
PHASE_SHADES: dict[str, tuple[str, str]] = {
    "warmup": ("#dbe9f6", "warm-up"),
    "close": ("#fbe3c8", "closing"),
    "hold": ("#fbe3c8", "closing"),
    "verify": ("#fbe3c8", "closing"),
    "refine": ("#dcefd9", "refine"),
}
#: The legend's words -> their shade, in PHASE_SHADES' order.
_SHADE_OF: dict[str, str] = {words: colour for colour, words in PHASE_SHADES.values()}


def phase_spans(steps: np.ndarray, phases: Sequence[str]) -> list[tuple[str, float, float]]:
    """Runs of one shaded phase group (:data:`PHASE_SHADES`' words), as (words, first step,
    last step); a run ends where the next begins, so the spans tile the steps."""
    spans: list[tuple[str, float, float]] = []
    for i, phase in enumerate(phases):
        words = PHASE_SHADES.get(str(phase), ("", str(phase)))[1]
        if spans and spans[-1][0] == words:
            spans[-1] = (words, spans[-1][1], float(steps[i]))
        else:
            start = float(steps[i - 1]) if i else float(steps[i])
            spans.append((words, start, float(steps[i])))
    return spans


def save_training_curves(
    steps: np.ndarray, reconstruction: np.ndarray, wasserstein: np.ndarray, phases: Sequence[str],
    path: PathLike, round_steps: Sequence[int] = (), title: str | None = None,
) -> Path:
    """Plots the auto-encoder's reconstruction loss (log scale when positive) and the critic's W
    over training, one panel each, with the phases shaded (warm-up, closing, refine) and the start
    of each elimination round (``round_steps``) as a thin line.

    Args:
        steps: training steps, shape (T,), T >= 1.
        reconstruction, wasserstein: the curves at those steps, shape (T,).
        phases: the schedule's phase at each step (T strings).

    Raises:
        ValueError: lengths that differ, or T == 0.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = _target(path)
    x, rec, w = _float_array(steps, "steps"), _float_array(reconstruction, "reconstruction"), _float_array(wasserstein, "wasserstein")
    if x.ndim != 1 or x.shape[0] == 0 or rec.shape != x.shape or w.shape != x.shape or len(phases) != x.shape[0]:
        raise ValueError(
            f"steps, reconstruction, wasserstein and phases must be 1-D of one length >= 1, got "
            f"{x.shape}, {rec.shape}, {w.shape} and {len(phases)}"
        )
    keep = _evenly_spaced(x.shape[0], MAX_HISTORY_POINTS)
    from matplotlib.patches import Patch

    fig = _new_figure(7.0, 5.0)
    top, bottom = fig.subplots(2, 1, sharex=True)
    spans = phase_spans(x, list(phases))
    for ax, values, label in ((top, rec, "reconstruction loss"), (bottom, w, "critic's W")):
        for words, lo, hi in spans:
            colour = _SHADE_OF.get(words)
            if colour and hi > lo:
                ax.axvspan(lo, hi, color=colour, linewidth=0, zorder=0)
        for s in round_steps:
            ax.axvline(float(s), color="#e39b4b", linewidth=0.5, alpha=0.6, zorder=1)
        ax.plot(x[keep], values[keep], color=ACTIVE_COLOUR, linewidth=1.1, zorder=2)
        ax.set_ylabel(label)
        ax.grid(True, color="0.9", linewidth=0.6, zorder=0)
    finite = rec[np.isfinite(rec)]
    if finite.size and (finite > 0).all():
        top.set_yscale("log")
    bottom.set_xlabel("training step")
    if x[-1] > x[0]:
        bottom.set_xlim(x[0], x[-1])
    shown = dict.fromkeys(words for words, _, _ in spans)
    handles = [Patch(color=colour, label=words) for words, colour in _SHADE_OF.items() if words in shown]
    if handles:
        top.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)
    if title:
        top.set_title(title)
    _save_figure(fig, path)
    return path


def save_closing_curve(
    rounds: Sequence[dict], capacity: int, m_active: int, path: PathLike, title: str | None = None
) -> Path | None:
    """Plots the held-out reconstruction error after each elimination round against the number of
    dimensions that round left open: kept rounds as dots joined in order, refused ones as red
    crosses, each round's limit (the loss budget) as a dashed line through a tick per round, the
    warm-up's best error (where closing started, all the first round's dims open) as a square, and
    m_A as a vertical line.
    Returns None (and writes nothing) when no round has a verdict.

    ``rounds`` are :attr:`latentdim.training.TrainOutcome.closing_rounds`: each with ``open``, ``k``
    and, once its hold ended, ``error``, ``limit`` and ``kept``.
    """
    path = _target(path)
    done = [r for r in rounds if isinstance(r, dict) and r.get("error") is not None and r.get("limit") is not None]
    if not done:
        return None
    after = np.array([int(r["open"]) - int(r["k"]) for r in done], dtype=np.float64)
    error = np.array([float(r["error"]) for r in done])
    limit = np.array([float(r["limit"]) for r in done])
    kept = np.array([bool(r.get("kept")) for r in done])

    # where closing started: every dim of the first round open, at the best error of the warm-up
    start_open = float(done[0]["open"])
    allowance = done[0].get("allowance")
    start = limit[0] - float(allowance) if allowance is not None else None

    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.plot(after, limit, "_--", color="0.35", markersize=10, linewidth=0.9, label="limit (loss budget)")
    path_x, path_y = after[kept], error[kept]
    if start is not None:
        path_x, path_y = np.concatenate([[start_open], path_x]), np.concatenate([[start], path_y])
        ax.plot([start_open], [start], "s", color="0.35", markersize=5, label="warm-up (best error)")
    ax.plot(path_x, path_y, "-", color=ACTIVE_COLOUR, linewidth=1.1)
    ax.plot(after[kept], error[kept], "o", color=ACTIVE_COLOUR, markersize=4, label="kept round")
    if (~kept).any():
        ax.plot(after[~kept], error[~kept], "x", color="#cf222e", markersize=7, mew=1.6, label="refused (rolled back)")
    ax.axvline(m_active, color="#1a7f37", linewidth=1.4, label=f"$m_A$ = {m_active}")
    if (error > 0).all() and (limit > 0).all() and (start is None or start > 0):
        ax.set_yscale("log")
    ax.set_xlim(max(capacity, start_open) + 0.5, max(0.0, min(after.min(), m_active) - 1.5))  # closing runs right to left
    ax.set_xlabel("dimensions open after the round")
    ax.set_ylabel("held-out reconstruction error")
    ax.grid(True, color="0.92", linewidth=0.6, zorder=0)
    ax.legend(loc="upper left", fontsize="small", framealpha=0.9)
    if title:
        ax.set_title(title)
    _save_figure(fig, path)
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
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or floating point in [0, 1], got dtype {arr.dtype}")
    return np.ascontiguousarray(to_levels(arr, np.float64).transpose(0, 2, 3, 1))


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
    image = to_pil(grid)
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


def save_sweep_plot(runs: Sequence[Any], path: PathLike, title: str | None = None) -> Path:
    """The capacity sweep (papers' Figure 4): left, the Frechet distance of MaskAAE and the WAE
    against the capacity (each seed a dot, the median a line; log scale when every value is
    positive); right, MaskAAE's m_A against the capacity, with m_A = capacity dashed.

    Args:
        runs: :class:`latentdim.sweep.SweepRun` records (``capacity``, ``model``, ``m_active``,
            ``frechet_distance``), at least one.
        path: the PNG to write; its folder must exist.
    """
    path = _target(path)
    if not runs:
        raise ValueError("the sweep has no runs to plot")
    fig = _new_figure(9.0, 3.8)
    left, right = fig.subplots(1, 2)
    capacities = sorted({int(r.capacity) for r in runs})
    positive = True
    for model, colour in (("MaskAAE", ACTIVE_COLOUR), ("WAE", "#d62728")):
        mine = [r for r in runs if r.model == model and r.frechet_distance is not None]
        if not mine:
            continue
        left.scatter([r.capacity for r in mine], [r.frechet_distance for r in mine], s=12, color=colour, alpha=0.45)
        left.plot(*_medians_by_capacity(mine, "frechet_distance"), "-o", color=colour, markersize=4, label=model)
        positive = positive and all(r.frechet_distance > 0 for r in mine)
    if positive:
        left.set_yscale("log")
    left.set_xlabel("capacity m")
    left.set_ylabel("Frechet distance (data space)")
    left.legend(frameon=False)
    left.grid(True, color="0.92", linewidth=0.6)
    mask = [r for r in runs if r.model == "MaskAAE"]
    right.plot(capacities, capacities, "--", color="0.6", linewidth=1.0, label="m_A = capacity")
    if mask:
        right.scatter([r.capacity for r in mask], [r.m_active for r in mask], s=12, color=ACTIVE_COLOUR, alpha=0.45)
        right.plot(*_medians_by_capacity(mask, "m_active"), "-o", color=ACTIVE_COLOUR, markersize=4,
                   label="MaskAAE m_A (median)")
    right.set_xlabel("capacity m")
    right.set_ylabel("active dimensions m_A")
    right.legend(frameon=False)
    right.grid(True, color="0.92", linewidth=0.6)
    if title:
        fig.suptitle(title)
    _save_figure(fig, path)
    return path


def _medians_by_capacity(runs: Sequence[Any], field: str) -> tuple[list[int], list[float]]:
    """The capacities that ``runs`` cover, in order, and the median of ``field`` at each."""
    xs = sorted({int(r.capacity) for r in runs})
    return xs, [float(np.median([getattr(r, field) for r in runs if r.capacity == m])) for m in xs]
