"""``latentdim.estimate``: the library entry point for scripts and pipelines.

The data path reads in one direction: source -> validated vectors -> standardised tensor ->
training -> evaluation -> :class:`EstimateResult` (-> files in ``out``).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentdim import losses
from latentdim._version import __version__
from latentdim.checkpoint import checkpoint_bytes, read_checkpoint, save_checkpoint
from latentdim.data import Standardiser, VectorData, from_array, load_source
from latentdim.data.arrays import array_file_kind, read_array_file
from latentdim.data.vectors import SYNTHETIC_PREFIX, as_array
from latentdim.errors import LatentdimError, TrainingInterrupted
from latentdim.fileio import atomic_write
from latentdim.metrics import classical_estimates_or_reasons, frechet_distance_samples, nac, precision_recall
from latentdim.metrics.estimators import MAX_POINTS
from latentdim.models import MaskAAE, ModelSpec, build_model, count_active, count_undecided, is_image_preset
from latentdim.models.conv import IMAGE_PRESETS, check_image_shape, conv_levels
from latentdim.models.mask import ACTIVE_THRESHOLD
from latentdim.report import closing_margin
from latentdim.train import IMAGE_ELIMINATE_HOLD, IMAGE_LR_MASK, LOSS_BUDGET, VECTOR_ELIMINATE_HOLD, NO_MASK_MAX_STEPS, VECTOR_LR_MASK, StepStats, TrainConfig, TrainOutcome, curves_array, history_array, model_input, train

#: What the table and a warning say when the mask ended with no dimension open, which only the
#: closing pressure (--loss-budget 0) can do: elimination never removes the last dimension.
NO_DIMENSION_LEFT = (
    "no dimension was left open: the closing pressure closed every one, which says nothing about the "
    "data's dimension; run with the default loss budget (closing in verified rounds)"
)

class EstimateWarning(UserWarning):
    """m_A that is not an answer: nothing left open, or training that did not settle. The command
    line shows these in its table instead."""


def unsettled_text(result: EstimateResult) -> str | None:
    """Why ``result`` is not an answer yet (None when it settled), with what to do about it."""
    if result.settled:
        return None
    how = f"stopped at the step limit ({result.steps:,} steps)" if result.stop_reason == "max_steps" else result.stop_reason
    undecided = f", {result.undecided} dimension(s) undecided" if result.undecided else ""
    again = " (a larger max_steps with resume continues it)" if result.stop_reason == "max_steps" else ""
    return f"not settled: {how} in phase '{result.phase}'{undecided}; m_A may still change{again}"


#: Samples used for the final diagnostics (reconstruction, W, Frechet distance, NAC).
EVAL_SAMPLES = 5000
#: The pixel-space Frechet distance needs a D x D matrix square root; above this many pixels it is
#: skipped (FID in Inception features is the measure for large images).
MAX_FRECHET_PIXELS = 4096


@dataclass
class EstimateResult:
    """What one ``estimate`` run found. ``to_dict`` gives the JSON the CLI prints."""

    m_active: int  # number of mask values >= 0.1: the estimated latent dimension
    capacity: int  # latent size m the model started with
    mask: list[float]  # final mask values mu, one per latent dimension
    active: list[int]  # indices of the active dimensions
    undecided: int  # active dims with mu < 0.9 (0 when the mask has settled)
    steps: int  # training steps run
    seconds: float  # wall time of training
    stop_reason: str  # "settled", "max_steps", "interrupted" or "diverged"
    reconstruction_error: float  # on up to 5,000 training samples, in the loss's units
    wasserstein: float  # the critic's W estimate between encoded data and the masked prior
    frechet_distance: float | None  # generated vs real, data space (SPEC §7)
    nac: float | None  # normalised absolute covariance over active dims (SPEC §7)
    fid: float | None  # images: FID of generated vs training images (Inception pool3); None: see fid_reason
    kid_mean: float | None  # images: KID (same features), mean over subsets
    kid_std: float | None
    fid_samples: int  # images per side used for FID / KID (0 when not computed)
    fid_reason: str | None  # why fid is None (vectors, or the Inception weights are missing)
    precision: float | None  # improved precision (k = 3) of generated vs real, same space as the Frechet distance
    recall: float | None  # improved recall (k = 3) of generated vs real
    baselines: dict[str, float | None] | None  # classical estimates {"twonn", "mle", "lpca"}; None when skipped; a value is None when undefined (see baseline_errors)
    seed: int
    preset: str
    data_shape: list[int]  # shape of one sample as the model sees it: [d] or [C, H, W]
    source: str
    skipped_files: int  # unreadable image files skipped while loading (image folders; 0 otherwise)
    version: str
    device: str
    schedule: str  # "latentdim" or "reference"
    use_mask: bool  # False for the --no-mask (WAE-GP) baseline
    covariance: np.ndarray | None = field(default=None, repr=False)  # full normalised |cov| (m, m)
    history_steps: np.ndarray | None = field(default=None, repr=False)  # (T,)
    history_mask: np.ndarray | None = field(default=None, repr=False)  # (T, m)
    # the training curves (:func:`latentdim.train.curves_array`): steps, rec, w and phase, (T,) each
    curves: dict[str, np.ndarray] | None = field(default=None, repr=False)
    files: dict[str, str] = field(default_factory=dict)  # what was written to ``out``: name -> path
    # images (elimination): one entry per round: step, open dims, k, dims tried, their ablation
    # costs, the held-out error after the hold, the budget's limit, and whether it was kept
    closing_rounds: list[dict[str, Any]] = field(default_factory=list)
    # images: how far over the loss budget the refused last removals went, in allowances of it
    # (>= 1: a clear gap below m_A; a fraction: nearby counts fit about as well); None otherwise
    closing_margin: float | None = None
    # image folders: the first few skipped files, "relative/path: why" (skipped_files counts all)
    skipped_examples: list[str] = field(default_factory=list)
    # classical estimators undefined on this data: name -> why (its value in baselines is None)
    baseline_errors: dict[str, str] = field(default_factory=dict)
    # False when training ended before the mask settled (the --max-steps limit) or with dims
    # undecided: m_A is then a snapshot, not an answer (see ``phase`` and :func:`unsettled_text`)
    settled: bool = True
    phase: str = ""  # the schedule's phase when training ended: warmup, close, hold, polish, refine, ...
    # the trained MaskAAE (torch module, eval mode) and the vectors' standardiser: what encode,
    # decode and sample use; not part of the JSON
    model: MaskAAE | None = field(default=None, repr=False, compare=False)
    standardiser: Standardiser | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (arrays and the model excluded)."""
        skip = {"covariance", "history_steps", "history_mask", "curves", "model", "standardiser"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def _fitted(self) -> MaskAAE:
        if self.model is None:
            raise LatentdimError("this result holds no model (it was read back from JSON); run estimate again")
        return self.model

    @torch.no_grad()
    def encode(self, x: Any) -> np.ndarray:
        """The codes of ``x`` (samples in the units and shape the model was trained on) on the
        active dimensions: an (N, m_A) float32 array on the scale of the prior N(0, I), so
        ``decode(encode(x))`` reconstructs ``x``."""
        model = self._fitted()
        device = next(model.parameters()).device
        if self.standardiser is not None:
            rows = self.standardiser.transform(from_array(x, "x").x)
        else:
            images = as_array(x, "x")
            if images.shape[1:] != tuple(self.data_shape):
                raise LatentdimError(f"x has images of shape {images.shape[1:]}; this model takes {tuple(self.data_shape)} (N, C, H, W)")
            rows = images
        codes = _chunked(model.encoder, model_input(torch.as_tensor(np.ascontiguousarray(rows)).to(device)))
        return codes[:, self.active].cpu().numpy()  # unmasked, like the generator's input z ~ N(0, I)

    @torch.no_grad()
    def decode(self, z: Any) -> np.ndarray:
        """Data from codes ``z`` (N, m_A) on the active dimensions: vectors in the data's units,
        images (N, C, H, W) in [0, 1]. This is the exported generator (:mod:`latentdim.export`),
        run in torch on the CPU."""
        from latentdim.export import masked_generator, output_head

        model = self._fitted()
        codes = np.asarray(z, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != len(self.active):
            raise LatentdimError(f"z has shape {codes.shape}; it needs (N, {len(self.active)}), one value per active dimension")
        shape = tuple(self.data_shape)
        if self.standardiser is None:  # images: the decoder gives logits (SPEC §3)
            head, *_ = output_head("bce", shape, None, uint8=False)
        else:
            head, *_ = output_head("mse", shape, self.standardiser.to_dict(), uint8=False)
        generator = masked_generator(model.decoder, model.mask(), shape, head)
        return generator(torch.from_numpy(np.ascontiguousarray(codes))).numpy()

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` new samples from the generator: z ~ N(0, I) on the active dimensions, decoded."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise LatentdimError(f"n must be a non-negative integer, got {n!r}")
        z = np.random.default_rng(seed).standard_normal((n, len(self.active))).astype(np.float32)
        return self.decode(z)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is present; ``cuda`` without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise LatentdimError("device 'cuda' (--device cuda) was asked for but no CUDA GPU is available; use cpu or auto")
        return torch.device("cuda")
    raise LatentdimError(f"unknown device '{device}'; use auto, cpu or cuda")


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


def _is_image_source(source: Any, key: str | None) -> bool:
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


def _default_conv_size(native: tuple[int, int, int]) -> int:
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
    else to ``conv`` at :func:`_default_conv_size`. A named preset converts the images to its own
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
        size = image_size or _default_conv_size(native)
        return "conv", (c, size, size)
    fixed = IMAGE_PRESETS[preset][1]
    if fixed is None:
        size = image_size or _default_conv_size(native)
        return preset, (c, size, size)
    return preset, (channels or fixed[0], image_size or fixed[1], image_size or fixed[2])


def _load(
    source: Any, key: str | None, preset: str, channels: int | None, image_size: int | None, strict: bool,
    on_load: Callable[[int, int], None] | None = None,
) -> LoadedData:
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8):
        raise LatentdimError(f"image_size (--image-size) must be an integer of at least 8, got {image_size!r}")
    if channels is not None and channels not in (1, 3):
        raise LatentdimError(f"channels (--channels) must be 1 or 3, got {channels!r}")
    array, what = _read_array(source, key)
    if (array is not None and array.ndim in (3, 4)) or (array is None and _is_image_source(source, key)):
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


def _read_array(source: Any, key: str | None) -> tuple[np.ndarray | None, str]:
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


def _chunked(net: torch.nn.Module, x: torch.Tensor, rows: int = 500) -> torch.Tensor:
    """``net(x)`` in pieces of ``rows`` (eval mode, so batch norm does not care): convolutional
    activations of 5,000 images at once would take gigabytes."""
    return torch.cat([net(part) for part in x.split(rows)])


@torch.no_grad()
def evaluate(model: MaskAAE, data: torch.Tensor, standardiser: Standardiser | None, reconstruction: str) -> dict[str, Any]:
    """Final diagnostics on ``data``: at most :data:`EVAL_SAMPLES` rows as the model sees them
    (standardised vectors, or uint8 / [0, 1] images).

    Returns reconstruction error, W, the Frechet distance between generated and real data in
    data space (SPEC §7: user units for vectors, pixels in [0, 1] for images of up to
    :data:`MAX_FRECHET_PIXELS` values), improved precision and recall of generated against real
    in the same space (None with 3 or fewer rows), NAC over the active dims and the full
    normalised covariance matrix, plus ``generated`` and ``reconstructed`` samples in user units.
    """
    model.eval()
    x = model_input(data)
    mu = model.mask()
    codes = _chunked(model.encoder, x)
    decoded = _chunked(model.decoder, mu * codes)
    rec = float(losses.reconstruction(decoded, x, reconstruction))
    z = mu * torch.randn(x.shape[0], mu.shape[0], device=x.device)
    w = float(losses.wasserstein(model.critic(z), model.critic(mu * codes)))
    out = _chunked(model.decoder, z)
    if standardiser is None:  # images: the decoder gives logits (SPEC §3)
        generated, reconstructed, real = (torch.sigmoid(out).cpu().numpy(), torch.sigmoid(decoded).cpu().numpy(), x.cpu().numpy())
    else:
        generated = standardiser.inverse(out.cpu().numpy())
        reconstructed = standardiser.inverse(decoded.cpu().numpy())
        real = standardiser.inverse(x.cpu().numpy())
    flat_gen, flat_real = generated.reshape(len(generated), -1), real.reshape(len(real), -1)
    small = flat_real.shape[1] <= MAX_FRECHET_PIXELS or standardiser is not None
    fd = frechet_distance_samples(flat_gen, flat_real) if x.shape[0] >= 2 and small else None
    # k = 3 needs a 3rd neighbour besides the point itself.
    precision, recall = precision_recall(flat_real, flat_gen) if x.shape[0] > 3 and small else (None, None)
    nac_value, matrix = nac(codes.cpu().numpy().astype(np.float64), (mu >= ACTIVE_THRESHOLD).cpu().numpy())
    return {
        "reconstruction_error": rec, "wasserstein": w, "frechet_distance": fd, "precision": precision, "recall": recall,
        "nac": nac_value, "covariance": matrix, "generated": generated, "reconstructed": reconstructed, "real": real,
    }


#: Files a run writes into its output folder (their stale temporaries are removed at start).
OUTPUT_FILES = (
    "checkpoint.pt", "result.json", "mask_history.csv", "mask_history.png", "covariance.npy", "covariance.png",
    "samples.png", "reconstructions.png", "report.html", "losses.csv", "losses.png", "closing.png", "traversals.png",
)


@torch.no_grad()
def fid_scores(
    model: MaskAAE, data: torch.Tensor, device: torch.device, weights: Path | None, samples: int,
    on_stage: Callable[..., None] | None = None,
) -> Any:
    """FID and KID (SPEC §7) of ``samples`` generated images against as many training images
    (a seeded-by-the-global-generator random subset). Returns a :class:`~latentdim.metrics.fid.FidResult`;
    without weights (and offline) its ``fid`` is None and ``reason`` says how to supply them.
    ``on_stage(text, done, total)`` is called as the Inception features are computed."""
    from latentdim.metrics.fid import FidResult, compute_fid, missing_weights_reason, online

    n = min(samples, data.shape[0])
    if weights is None:
        # compute_fid would find no file either; it downloads one only when online.
        if not online():
            return FidResult(fid=None, kid_mean=None, kid_std=None, samples=0, reason=missing_weights_reason(), weights=None)
    model.eval()
    mu = model.mask()
    z = mu * torch.randn(n, mu.shape[0], device=device)
    generated = torch.sigmoid(_chunked(model.decoder, z)).cpu().numpy()
    real = model_input(data[torch.randperm(data.shape[0], device=data.device)[:n]]).cpu().numpy()
    on_progress = None if on_stage is None else lambda done, total: on_stage("FID: Inception features", done, total)
    return compute_fid(generated, real, weights=weights, device=device.type, on_progress=on_progress)


def check_out(out: str | os.PathLike[str] | None) -> None:
    """Checks up front, creating nothing, that the output folder exists or can be created, so a
    bad path fails before the data are read, not after training."""
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise LatentdimError(f"--out {path} exists and is not a folder")
    ancestor = path.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise LatentdimError(f"cannot create output folder {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise LatentdimError(f"cannot create output folder {path}: {ancestor} is not writable")


def check_no_earlier_run(out: str | os.PathLike[str] | None) -> None:
    """Refuses, deleting nothing, an output folder that already holds a run's files, so a second
    run does not silently replace the first one's results.

    Raises:
        LatentdimError: if ``out`` holds any of :data:`OUTPUT_FILES`.
    """
    if out is None:
        return
    path = Path(out)
    found = [name for name in OUTPUT_FILES if (path / name).exists()]
    if found:
        raise LatentdimError(
            f"--out {path} already holds a run ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}); "
            f"choose another folder, add --force to replace that run, or use --resume {path} if it was interrupted"
        )


def prepare_out(out: str | os.PathLike[str] | None) -> Path | None:
    """Creates the output folder once the data have loaded and the model is built (so bad input
    leaves no empty folder behind) and removes temporaries that a killed run left behind
    (``.NAME.*.tmp`` of our own files)."""
    if out is None:
        return None
    check_out(out)
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentdimError(f"cannot create output folder {path}: {e.strerror}") from e
    if not os.access(path, os.W_OK):
        raise LatentdimError(f"output folder {path} is not writable")
    for name in OUTPUT_FILES:
        for stale in path.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
    return path


def _check_same_run(saved: dict[str, Any], spec: ModelSpec, seed: int, source: str, folder: Path) -> None:
    """--resume: the command must describe the run that was interrupted."""
    stored = saved["model_spec"]
    mine = {"capacity": spec.capacity, "preset": spec.preset, "width": spec.width, "use_mask": spec.use_mask,
            "data_shape": list(spec.data_shape), "depth": spec.depth}
    for name, value in [*mine.items(), ("seed", seed), ("source", source)]:
        theirs = saved.get(name) if name in ("seed", "source") else stored.get(name)
        if theirs != value:
            raise LatentdimError(
                f"--resume {folder}: that run has {name} {theirs!r}, this command gives {value!r}; "
                "repeat the original command with --resume"
            )


def check_fits_device(nbytes: int, dev: torch.device, source: str) -> None:
    """Training keeps the whole data set on the device: on a GPU with less free memory than the
    data, say so in one line instead of a CUDA out-of-memory traceback."""
    if dev.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(dev)
    if nbytes > free:
        raise LatentdimError(
            f"{source} takes {nbytes / 2**30:.1f} GiB on the device, more than the GPU's "
            f"{free / 2**30:.1f} GiB free; use --device cpu, a smaller --image-size, or fewer samples"
        )


def check_room(out: Path, needed: int) -> None:
    """Preflight: the output folder has room for a checkpoint being replaced (old + new)."""
    import shutil

    free = shutil.disk_usage(out).free
    if free < 2 * needed:
        raise LatentdimError(
            f"output folder {out} has {free / 2**20:.0f} MiB free; checkpoints of this model need about "
            f"{2 * needed / 2**20:.0f} MiB; free some space or choose another --out"
        )


#: Images in the sample grid and real/reconstructed pairs in the reconstruction grid.
GRID_SAMPLES, GRID_PAIRS = 64, 30
#: Latent traversals: each active dimension (at most TRAVERSAL_DIMS, those that change the image
#: most) takes TRAVERSAL_STEPS values evenly from -TRAVERSAL_SPAN to +TRAVERSAL_SPAN.
TRAVERSAL_DIMS, TRAVERSAL_STEPS, TRAVERSAL_SPAN = 16, 9, 2.5


@torch.no_grad()
def traversals(model: MaskAAE, most: int = TRAVERSAL_DIMS) -> tuple[list[int], np.ndarray, list[np.ndarray]]:
    """Latent traversals of an image model: every other code at the prior's mean (0), one active
    dimension j at each of the values, decoded through the masked decoder. Returns the dims
    shown (at most ``most``, those whose traversal changes the image most, strongest first), the
    values, and per dim the decoded images (V, C, H, W) in [0, 1]."""
    model.eval()
    mu = model.mask().detach()
    values = np.linspace(-TRAVERSAL_SPAN, TRAVERSAL_SPAN, TRAVERSAL_STEPS)
    active = [int(j) for j in torch.nonzero(mu >= ACTIVE_THRESHOLD).flatten().cpu()]
    rows = {}
    for j in active:
        z = torch.zeros(len(values), mu.shape[0], device=mu.device)
        z[:, j] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
        rows[j] = torch.sigmoid(_chunked(model.decoder, mu * z)).cpu().numpy()
    strength = {j: float(np.std(images, axis=0).mean()) for j, images in rows.items()}
    dims = sorted(active, key=lambda j: -strength[j])[:most]
    return dims, values, [rows[j] for j in dims]


def _write_curves(out: Path, result: EstimateResult, files: dict[str, Path]) -> None:
    """``losses.csv`` and ``losses.png`` (the training curves) and, after an elimination,
    ``closing.png`` (held-out error against open dims)."""
    from latentdim import pictures

    curves = result.curves
    if curves is not None and len(curves["steps"]):
        rows = [["step", "phase", "reconstruction", "wasserstein"]]
        rows += [[int(s), str(p), f"{r:.6g}", f"{w:.6g}"]
                 for s, p, r, w in zip(curves["steps"], curves["phase"], curves["rec"], curves["w"])]
        files["losses"] = out / "losses.csv"
        atomic_write(files["losses"], lambda f: f.write(_csv_bytes(rows)))
        files["losses_plot"] = pictures.save_training_curves(
            curves["steps"], curves["rec"], curves["w"], list(curves["phase"]), out / "losses.png",
            round_steps=[int(r["step"]) for r in result.closing_rounds],
            title="training curves" + (f" (means over each {int(np.median(np.diff(curves['steps'])))} steps)"
                                       if len(curves["steps"]) > 2 else ""),
        )
    closing = pictures.save_closing_curve(
        result.closing_rounds, result.capacity, result.m_active, out / "closing.png",
        title="held-out reconstruction along the closing rounds",
    )
    if closing is not None:
        files["closing_plot"] = closing


def _csv_bytes(rows: list[list[Any]]) -> bytes:
    import io

    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


def write_outputs(
    out: Path, result: EstimateResult, model: MaskAAE, spec: ModelSpec, extra: dict[str, Any], diag: dict[str, Any],
    command: str | None = None,
) -> None:
    """Writes everything a run leaves in ``out`` and lists it in ``result.files``:
    ``result.json``, ``checkpoint.pt``, ``mask_history.csv`` and ``.png``, ``losses.csv`` and
    ``.png`` (training curves), ``closing.png`` (after an elimination), ``covariance.npy`` and its
    heat map ``covariance.png``, for images ``samples.png`` (generated), ``reconstructions.png``
    (labelled real rows over their reconstructions) and ``traversals.png``, and ``report.html`` (all of it
    in one self-contained page, with ``command``)."""
    from latentdim import pictures

    files: dict[str, Path] = {"checkpoint": out / "checkpoint.pt"}
    save_checkpoint(files["checkpoint"], model, spec, extra)
    if result.covariance is not None:
        files["covariance"] = out / "covariance.npy"
        atomic_write(files["covariance"], lambda f: np.save(f, result.covariance))
        active = np.asarray(result.active, dtype=np.int64)
        files["covariance_heatmap"] = pictures.save_covariance_heatmap(
            result.covariance, out / "covariance.png", active=active,
            title=f"normalised |covariance| of the codes, {len(active)} active dims",
        )
    if result.history_steps is not None and len(result.history_steps):
        rows = [["step"] + [f"mu_{j}" for j in range(result.capacity)]]
        rows += [[int(s)] + [f"{v:.6g}" for v in mu] for s, mu in zip(result.history_steps, result.history_mask)]
        files["mask_history"] = out / "mask_history.csv"
        atomic_write(files["mask_history"], lambda f: f.write(_csv_bytes(rows)))
        files["mask_history_plot"] = pictures.save_mask_history(
            result.history_steps, result.history_mask, out / "mask_history.png", threshold=ACTIVE_THRESHOLD,
            title=f"mask values over training (capacity {result.capacity})",
        )
    _write_curves(out, result, files)
    if len(spec.data_shape) == 3:
        scale = pictures.grid_scale(spec.data_shape[1])
        files["samples"] = pictures.save_sample_grid(diag["generated"][:GRID_SAMPLES], out / "samples.png", scale=scale)
        files["reconstructions"] = pictures.save_reconstruction_grid(
            diag["real"][:GRID_PAIRS], diag["reconstructed"][:GRID_PAIRS], out / "reconstructions.png",
            scale=scale, labels=True,
        )
        dims, values, rows = traversals(model)
        if dims:
            files["traversals"] = pictures.save_traversal_grid(rows, dims, list(values), out / "traversals.png", scale=scale)
    files["result"] = out / "result.json"
    files["report"] = out / "report.html"
    result.files = {name: str(path) for name, path in files.items()}
    written = {path.name for path in files.values()}
    for name in OUTPUT_FILES:  # an earlier run's pictures (overwrite=True) would pass for this one's
        if name not in written:
            (out / name).unlink(missing_ok=True)
    payload = (json.dumps(result.to_dict(), indent=2) + "\n").encode()
    atomic_write(files["result"], lambda f: f.write(payload))
    from latentdim.report import pictures_from_files, write_report

    write_report(files["report"], result.to_dict(), pictures_from_files(result.to_dict()), command=command)


def estimate(
    source: Any,
    capacity: int = 64,
    *,
    key: str | None = None,
    preset: str = "auto",
    channels: int | None = None,
    image_size: int | None = None,
    strict: bool = False,
    use_mask: bool = True,
    seed: int = 0,
    device: str = "auto",
    config: TrainConfig | None = None,
    width: int | None = None,
    depth: int | None = None,
    out: str | os.PathLike[str] | None = None,
    export: str | os.PathLike[str] | None = None,
    on_step: Callable[[StepStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    baselines: bool = True,
    on_load: Callable[[int, int], None] | None = None,
    resume: str | os.PathLike[str] | None = None,
    checkpoint_steps: int | None = None,
    checkpoint_seconds: float | None = 600.0,
    command: str | None = None,
    fid_weights: str | os.PathLike[str] | None = None,
    fid_samples: int = 10_000,
    on_stage: Callable[..., None] | None = None,
    overwrite: bool = False,
    max_steps: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> EstimateResult:
    """Trains a MaskAAE on ``source`` and returns the estimated latent dimension m_A.

    Args:
        source: a folder of images; an HDF5, ``.npy``, ``.npz`` or CSV file; an array-like
            (numpy, torch, nested lists); or ``"synthetic:n=8[,d=..,samples=..,seed=..]"``. Arrays
            of shape (N, d) are vectors; (N, H, W), (N, H, W, C) and (N, C, H, W) are images
            (uint8, or floats in [0, 1]).
        capacity: latent size m to start from; choose it generously above the expected answer.
        key: dataset inside an HDF5 file, or array inside an ``.npz`` (optional when it holds
            exactly one).
        preset: architecture preset (SPEC §5: ``mlp``, ``mnist``, ``fmnist``, ``cifar``,
            ``celeba``, or ``conv`` for images of other sizes), or ``"auto"`` to choose from the
            data's shape.
        channels: images only: 1 or 3 to force grayscale or colour (default: from the data, or
            the preset's).
        image_size: images only: resize and centre-crop to this square size (default: the
            preset's resolution).
        strict: images only: an unreadable file is an error instead of being skipped and counted.
        use_mask: False trains the WAE-GP baseline (mask fixed at one).
        seed: seeds model initialisation and training; a CPU run is repeatable.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        config: training hyper-parameters and schedule; defaults to ``TrainConfig()`` (with
            ``max_steps=10000`` for the mask-free baseline, which has nothing to settle).
        width: hidden-layer width override (small models for tests and quick looks).
        depth: vectors: hidden layers of the encoder and decoder (default 1, the papers').
        out: folder for ``result.json``, the checkpoint, the mask history and the pictures.
        export: ONNX file for the masked generator (see :mod:`latentdim.export`).
        on_step: called with :class:`StepStats` during training (progress display).
        should_stop: polled after every step; True stops training, writes a checkpoint to
            ``out`` (when given) and raises :class:`~latentdim.errors.TrainingInterrupted`.
        on_load: images only: called as ``on_load(done, total)`` while the images are decoded.
        baselines: also compute the classical estimators TwoNN, MLE and lPCA on up to 5,000 raw
            samples (seeded by ``seed``), to show beside m_A.
        resume: an output folder of an interrupted run: training continues from its
            ``checkpoint.pt`` with that run's settings, and the outputs go to that folder. The
            other arguments must describe the same run (source, capacity, seed, preset, width,
            mask); a CPU run then ends exactly as the uninterrupted one would have.
        checkpoint_steps, checkpoint_seconds: with ``out``, write ``checkpoint.pt`` (weights,
            optimiser states, schedule, random-number state) every this many steps / seconds
            (None: not on that count). Default: every 10 minutes.
        command: the command line, recorded in ``report.html``.
        fid_weights: images: the FID Inception weights file (torch-fidelity's
            ``weights-inception-2015-12-05-6726825d.pth``); default ``$LATENTDIM_FID_WEIGHTS`` or the
            torch hub cache, downloaded there when the machine is online. Without it ``fid`` is
            None and ``fid_reason`` says how to supply it.
        fid_samples: images: generated and real images compared by FID / KID (fewer when the
            data has fewer). Inception on a CPU takes about half a second an image.
        on_stage: called as ``on_stage(text)`` when a slow step outside training starts
            (classical estimators, evaluation, FID, writing the outputs, export), and as
            ``on_stage(text, done, total)`` while one counts items (FID's Inception features).
        max_steps, batch_size: shortcuts for the same fields of ``config`` (they override it;
            with ``resume``, a larger ``max_steps`` continues a run that stopped at its limit).
        progress: show progress on stderr (a live line on a terminal, plain lines in a log), as
            the command line does; ignored when ``on_step`` is given.
        overwrite: replace the files of an earlier run in ``out`` (those of :data:`OUTPUT_FILES`
            that this run does not write are removed once it has written its own). Without it, an
            ``out`` that already holds a run is refused before anything is read or written.

    Returns:
        An :class:`EstimateResult`. Nothing is printed.

    Raises:
        LatentdimError: bad source, bad settings, too little data (the classical estimators
            need 3 distinct samples; ``baselines=False`` skips them; one that is undefined on the
            data is None in ``baselines`` with its reason in ``baseline_errors``), no room for checkpoints,
            a checkpoint that cannot be resumed, an ``out`` that holds an earlier run (without
            ``overwrite`` or ``resume``), or training that diverged twice.
        TrainingInterrupted: ``should_stop`` returned True.
    """
    arguments = dict(locals())  # first: the arguments exactly as given (progress=True repeats the call)
    if progress and on_step is None:  # the same call, with the command line's display around it
        from latentdim.progress import run_display

        with run_display() as display:
            return estimate(**{**arguments, "progress": False, "on_step": display.on_step,
                               "on_load": on_load or display.on_load, "on_stage": on_stage or display.on_stage})

    def stage(*args: Any) -> None:  # (text) or (text, done, total), passed on as they came
        if on_stage is not None:
            on_stage(*args)

    saved = None
    if resume is not None:
        resume_dir = Path(resume)
        if out is not None and Path(out).resolve() != resume_dir.resolve():
            raise LatentdimError("resume (--resume) continues in the interrupted run's own folder; drop out (--out) or give the same folder")
        saved = read_checkpoint(resume_dir / "checkpoint.pt")
        if "train_state" in saved and saved.get("stopped_at_limit"):
            limit = int(saved["step"])
            if max_steps is None or max_steps <= limit:
                raise LatentdimError(
                    f"the run in {resume_dir} stopped at its step limit ({limit:,}) before it settled; "
                    f"to continue it, give a larger --max-steps (max_steps=) than {limit:,}"
                )
        elif saved.get("finished", True) or "train_state" not in saved:
            raise LatentdimError(
                f"the run in {resume_dir} finished (step {saved.get('step', '?')}); nothing to resume; "
                "start a new run with another --out"
            )
        out = resume_dir
        # a run saved by an earlier latentdim lacks the closing fields: it closed under the
        # pressure (no closing field) or by elimination without a retry (no eliminate_retries),
        # holding its rounds budget_hold steps (no eliminate_hold)
        old = {"closing": "pressure", "eliminate_retries": 0, "eliminate_hold": saved["config"].get("budget_hold", 500),
               "ae_optimiser": "rmsprop"}
        config = TrainConfig(**{**old, **saved["config"]})
    if config is None:
        config = TrainConfig() if use_mask else TrainConfig(max_steps=NO_MASK_MAX_STEPS)
    for name, value in (("max_steps", max_steps), ("batch_size", batch_size)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise LatentdimError(f"{name} must be an integer, got {value!r}")
            config = replace(config, **{name: value})
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise LatentdimError(f"capacity must be a positive integer, got {capacity!r}")
    if config.batch_size < 1:
        raise LatentdimError(f"batch size must be at least 1, got {config.batch_size}")
    if config.max_steps < 1:
        raise LatentdimError(f"max steps must be at least 1, got {config.max_steps}")
    if checkpoint_steps is not None and checkpoint_steps < 1:
        raise LatentdimError(f"checkpoint interval must be at least 1 step, got {checkpoint_steps}")
    if checkpoint_seconds is not None and not checkpoint_seconds > 0:
        raise LatentdimError(f"checkpoint interval must be positive, got {checkpoint_seconds} s")
    if isinstance(fid_samples, bool) or not isinstance(fid_samples, int) or fid_samples < 2:
        raise LatentdimError(f"fid_samples (--fid-samples) must be an integer of at least 2, got {fid_samples!r}")
    from latentdim.metrics.fid import find_weights

    fid_weights_path = find_weights(fid_weights)  # a bad explicit path fails now, not after training
    dev = resolve_device(device)
    check_out(out)
    if saved is None and not overwrite:
        check_no_earlier_run(out)
    if export is not None:
        from latentdim.export import check_output_path

        check_output_path(Path(export))  # fail before training, not after
    data = _load(source, key, preset, channels, image_size, strict, on_load)
    n_samples = data.array.shape[0]
    if n_samples < config.batch_size:
        raise LatentdimError(
            f"{data.source} has {n_samples} samples, fewer than one batch of {config.batch_size}; "
            "add data or lower --batch-size"
        )
    check_fits_device(data.array.nbytes, dev, data.source)  # uint8 images or float32 vectors, as trained
    if config.reconstruction is None:  # SPEC §3: BCE with a sigmoid decoder for images, MSE for vectors
        config = replace(config, reconstruction="bce" if data.images else "mse")
    # One closing rule for vectors and images (docs/accuracy.md): once the auto-encoder has
    # converged, dimensions are switched off in rounds, each kept only while the held-out
    # reconstruction keeps all but LOSS_BUDGET of what the code explains. A budget of 0 falls back
    # to the closing pressure.
    if config.loss_budget is None:
        config = replace(config, loss_budget=LOSS_BUDGET)
    if config.warmup_plateau is None:
        config = replace(config, warmup_plateau=True)
    # The pressure's closing wave (--loss-budget 0): slower for images, so the m_A it stops at
    # depends less on the capacity (docs/mask-dynamics.md).
    if config.lr_mask is None:
        config = replace(config, lr_mask=IMAGE_LR_MASK if data.images else VECTOR_LR_MASK)
    if config.closing is None:
        config = replace(config, closing="eliminate" if config.loss_budget else "pressure")
    # The verdicts compare adapted errors, so how well the auto-encoder fits a tight code decides
    # them: Adam fits curved vector manifolds several times better than SPEC §4's RMSProp in the
    # same steps (docs/accuracy.md); images keep the RMSProp they were validated with.
    if config.ae_optimiser is None:
        config = replace(config, ae_optimiser="rmsprop" if data.images else "adam")
    if config.eliminate_hold is None:
        config = replace(config, eliminate_hold=IMAGE_ELIMINATE_HOLD if data.images else VECTOR_ELIMINATE_HOLD)
    spec = ModelSpec(data.preset, tuple(data.array.shape[1:]), capacity, width, use_mask, depth)
    if saved is not None:
        _check_same_run(saved, spec, seed, data.source, Path(out))
    torch.manual_seed(seed)
    model = build_model(spec).to(dev)  # before the baselines: a preset that does not fit fails at once
    # Issue 4: classical estimates on the raw samples in user units; before training, so degenerate
    # data fails in seconds rather than after the run. One estimator undefined on the data (TwoNN on
    # a lattice) is reported beside the others instead of stopping the run (issue 21).
    baseline_values: dict[str, float | None] | None = None
    baseline_errors: dict[str, str] = {}
    if saved is not None and baselines and saved.get("baselines") is not None:
        baseline_values = dict(saved["baselines"])
        baseline_errors = dict(saved.get("baseline_errors") or {})
    elif baselines:
        stage(f"classical estimators (TwoNN, MLE, lPCA) on {min(n_samples, MAX_POINTS):,} samples")
        baseline_values, baseline_errors = classical_estimates_or_reasons(data.array.reshape(n_samples, -1), seed=seed)
    out_dir = prepare_out(out)
    if out_dir is not None:
        # an elimination round's checkpoint also holds the round's starting weights and optimisers
        check_room(out_dir, checkpoint_bytes(model) * (2 if config.closing == "eliminate" else 1))
    if data.images:
        standardiser = None
        x = torch.from_numpy(np.ascontiguousarray(data.array)).to(dev)  # uint8; batches become [0, 1] floats
    else:
        standardiser = Standardiser.fit(data.array)
        x = torch.from_numpy(standardiser.transform(data.array)).to(dev)

    extra = {
        "config": asdict(config),
        "standardiser": None if standardiser is None else standardiser.to_dict(),
        "seed": seed,
        "source": data.source,
        "baselines": baseline_values,
        "baseline_errors": baseline_errors,
    }
    checkpoint_path = None if out_dir is None else out_dir / "checkpoint.pt"

    def write_training_checkpoint(state: dict[str, Any]) -> None:
        if checkpoint_path is None:
            return
        train_state = {k: v for k, v in state.items() if k != "model"}
        save_checkpoint(
            checkpoint_path, model, spec, {**extra, "step": state["step"], "finished": False, "train_state": train_state},
            weights=state["model"],
        )

    resume_state = None if saved is None else {**saved["train_state"], "model": saved["model"]}
    try:
        outcome: TrainOutcome = train(
            model, x, config, on_step=on_step, should_stop=should_stop, resume=resume_state,
            on_checkpoint=write_training_checkpoint if checkpoint_path is not None else None,
            checkpoint_steps=checkpoint_steps if checkpoint_path is not None else None,
            checkpoint_seconds=checkpoint_seconds if checkpoint_path is not None else None,
        )
    except (ValueError, RuntimeError) as e:
        if resume_state is None:
            raise
        raise LatentdimError(f"cannot resume from {checkpoint_path}: it does not fit this model ({type(e).__name__})") from e
    if outcome.stop_reason == "interrupted":
        raise TrainingInterrupted(outcome.steps, None if checkpoint_path is None else str(checkpoint_path))
    if outcome.stop_reason == "diverged":
        where = (
            f"the last good checkpoint is {checkpoint_path}" if checkpoint_path is not None and checkpoint_path.exists()
            else "no checkpoint was written"
        )
        raise LatentdimError(
            f"training diverged (a non-finite loss or weight) at step {outcome.steps + 1}, again after rolling back "
            f"and halving the learning rates; {where}; try a lower --batch-size or a smaller --closing-pressure"
        )

    eval_idx = torch.randperm(n_samples)[: min(n_samples, EVAL_SAMPLES)].to(dev)
    stage(f"evaluating on {eval_idx.shape[0]:,} samples (Frechet distance, precision and recall)")
    diag = evaluate(model, x[eval_idx], standardiser, config.reconstruction)
    fid = fid_scores(model, x, dev, fid_weights_path, fid_samples, stage) if data.images else None
    mu = model.mask().detach()
    steps_arr, mask_arr = history_array(outcome)
    rounds = [
        {k: round(v, 6) if isinstance(v, float) else [round(c, 6) for c in v] if k == "ablation" else v
         for k, v in r.items()}
        for r in outcome.closing_rounds
    ]
    result = EstimateResult(
        m_active=count_active(mu),
        capacity=capacity,
        mask=[round(float(v), 6) for v in mu.cpu()],
        active=[int(j) for j in torch.nonzero(mu >= ACTIVE_THRESHOLD).flatten().cpu()],
        undecided=count_undecided(mu),
        steps=outcome.steps,
        seconds=round(outcome.seconds, 3),
        stop_reason=outcome.stop_reason,
        reconstruction_error=diag["reconstruction_error"],
        wasserstein=diag["wasserstein"],
        frechet_distance=diag["frechet_distance"],
        nac=diag["nac"],
        fid=None if fid is None else fid.fid,
        kid_mean=None if fid is None else fid.kid_mean,
        kid_std=None if fid is None else fid.kid_std,
        fid_samples=0 if fid is None or fid.fid is None else fid.samples,
        fid_reason="FID applies to images; vectors get the data-space Frechet distance" if fid is None else fid.reason,
        precision=diag["precision"],
        recall=diag["recall"],
        baselines=baseline_values,
        seed=seed,
        preset=spec.preset,
        data_shape=list(spec.data_shape),
        source=data.source,
        skipped_files=data.skipped,
        version=__version__,
        device=dev.type,
        schedule=config.schedule,
        use_mask=use_mask,
        covariance=diag["covariance"],
        history_steps=steps_arr,
        history_mask=mask_arr,
        curves=curves_array(outcome),
        closing_rounds=rounds,
        closing_margin=None if (margin := closing_margin(rounds)) is None else round(margin, 4),
        skipped_examples=data.skipped_examples,
        baseline_errors=baseline_errors,
        # the WAE baseline has no mask to settle: it trains to max_steps by design
        settled=not use_mask or (outcome.stop_reason == "settled" and count_undecided(mu) == 0),
        phase="" if outcome.last is None else outcome.last.phase,
        model=model,
        standardiser=standardiser,
    )
    if use_mask and result.m_active == 0:
        warnings.warn(NO_DIMENSION_LEFT, EstimateWarning, stacklevel=2)
    if not result.settled:
        warnings.warn(f"m_A {result.m_active}: {unsettled_text(result)}", EstimateWarning, stacklevel=2)
    extra = {**extra, "step": outcome.steps, "finished": True, "result": result.to_dict()}
    if outcome.state is not None:  # stopped at max_steps: keep what a larger --max-steps continues from
        extra.update(finished=False, stopped_at_limit=True,
                     train_state={k: v for k, v in outcome.state.items() if k != "model"})
    if out_dir is not None:
        stage(f"writing pictures and report to {out_dir}")
        write_outputs(out_dir, result, model, spec, extra, diag, command)
    if export is not None:
        from latentdim.export import export_model

        stage(f"exporting the generator to {export}")
        export_model(model, spec, extra, Path(export))
    return result
