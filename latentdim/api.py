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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentdim import losses
from latentdim._version import __version__
from latentdim.checkpoint import checkpoint_bytes, read_checkpoint, save_checkpoint
from latentdim.data import Standardiser
from latentdim.data.stream import BUFFER_BYTES, BlockSampler, StreamedVectors, stream_bytes
from latentdim.errors import LatentdimError, TrainingInterrupted
from latentdim.fileio import atomic_write
from latentdim.metrics import classical_estimates_or_reasons, frechet_distance_samples, nac, precision_recall
from latentdim.metrics.estimators import MAX_POINTS
from latentdim.models import MaskAAE, ModelSpec, active_dims, build_model, chunked, count_active, count_undecided, sample_prior
from latentdim.models.mask import ACTIVE_THRESHOLD
from latentdim.data.sources import LoadedData, load
from latentdim.result import (NO_DIMENSION_LEFT, EstimateResult, EstimateWarning, closing_margin, unsettled_text,
                              verification_margin)
from latentdim.settings import Settings, check_run, for_data, resumed_config, training_config
from latentdim.training.closing import closing_rule_class
from latentdim.training.distributed import World, join
from latentdim.training import StepStats, TrainConfig, TrainOutcome, curves_array, history_array, model_input, train

#: The keyword arguments of :func:`estimate` that make up its :class:`Settings`.
SETTINGS_FIELDS = tuple(Settings.__dataclass_fields__)

#: Samples used for the final diagnostics (reconstruction, W, Frechet distance, NAC).
EVAL_SAMPLES = 5000
#: The pixel-space Frechet distance needs a D x D matrix square root; above this many pixels it is
#: skipped (FID in Inception features is the measure for large images).
MAX_FRECHET_PIXELS = 4096


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
    codes = chunked(model.encoder, x)
    decoded = chunked(model.decoder, mu * codes)
    rec = float(losses.reconstruction(decoded, x, reconstruction))
    z = sample_prior(mu, x.shape[0])
    w = float(losses.wasserstein(model.critic(z), model.critic(mu * codes)))
    out = chunked(model.decoder, z)
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
    model: MaskAAE, data: torch.Tensor | BlockSampler, device: torch.device, weights: Path | None, samples: int,
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
    z = sample_prior(mu, n)
    generated = torch.sigmoid(chunked(model.decoder, z)).cpu().numpy()
    if isinstance(data, BlockSampler):  # streamed images: the same random choice, read in file order
        real = data.take(np.sort(torch.randperm(data.shape[0])[:n].numpy())).cpu().numpy()
    else:
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
    active = active_dims(mu)
    rows = {}
    for j in active:
        z = torch.zeros(len(values), mu.shape[0], device=mu.device)
        z[:, j] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
        rows[j] = torch.sigmoid(chunked(model.decoder, mu * z)).cpu().numpy()
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
    baselines: bool = True,
    resume: str | os.PathLike[str] | None = None,
    checkpoint_steps: int | None = None,
    checkpoint_seconds: float | None = 600.0,
    command: str | None = None,
    fid_weights: str | os.PathLike[str] | None = None,
    fid_samples: int = 10_000,
    overwrite: bool = False,
    max_steps: int | None = None,
    batch_size: int | None = None,
    on_step: Callable[[StepStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_load: Callable[[int, int], None] | None = None,
    on_stage: Callable[..., None] | None = None,
    progress: bool = False,
) -> EstimateResult:
    """Trains a MaskAAE on ``source`` and returns the estimated latent dimension m_A.

    Args:
        source: a folder of images; an HDF5, ``.npy``, ``.npz`` or CSV file; an array-like
            (numpy, torch, nested lists); or ``"synthetic:n=8[,d=..,samples=..,seed=..]"``. Arrays
            of shape (N, d) are vectors; (N, H, W), (N, H, W, C) and (N, C, H, W) are images
            (uint8, or floats in [0, 1]).
        capacity: latent size m to start from; choose it generously above the expected answer.
        key ... batch_size: the run's settings, each documented in :class:`latentdim.settings.Settings`.
        on_step: called with :class:`StepStats` during training (progress display).
        should_stop: polled after every step; True stops training, writes a checkpoint to
            ``out`` (when given) and raises :class:`~latentdim.errors.TrainingInterrupted`.
        on_load: images only: called as ``on_load(done, total)`` while the images are decoded.
        on_stage: called as ``on_stage(text)`` when a slow step outside training starts
            (classical estimators, evaluation, FID, writing the outputs, export), and as
            ``on_stage(text, done, total)`` while one counts items (FID's Inception features).
        progress: show progress on stderr (a live line on a terminal, plain lines in a log), as
            the command line does; ignored when ``on_step`` is given.

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
    given = dict(locals())
    settings = Settings(**{name: given[name] for name in SETTINGS_FIELDS})
    if progress and on_step is None:  # the same call, with the command line's display around it
        from latentdim.progress import run_display

        with run_display() as display:
            return estimate(source, capacity, **vars(settings), on_step=display.on_step, should_stop=should_stop,
                            on_load=on_load or display.on_load, on_stage=on_stage or display.on_stage)

    def stage(*args: Any) -> None:  # (text) or (text, done, total), passed on as they came
        if on_stage is not None:
            on_stage(*args)

    job = _prepare(source, capacity, settings, on_load, stage)
    outcome = _train(job, on_step, should_stop, stage)
    return _finish(job, outcome, stage)


@dataclass
class _Job:
    """One estimate between its preparation and its result."""

    settings: Settings
    data: LoadedData
    config: TrainConfig
    spec: ModelSpec
    model: MaskAAE
    dev: torch.device
    world: World
    saved: dict[str, Any] | None
    out_dir: Path | None
    fid_weights: Path | None
    x: torch.Tensor | BlockSampler  # a BlockSampler: the file streams (data/stream.py)
    standardiser: Standardiser | None
    baselines: dict[str, float | None] | None
    baseline_errors: dict[str, str]

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoint.pt"

    def extra(self) -> dict[str, Any]:
        """What every checkpoint of this run carries besides the weights."""
        return {
            "config": asdict(self.config),
            "standardiser": None if self.standardiser is None else self.standardiser.to_dict(),
            "seed": self.settings.seed,
            "source": self.data.source,
            "baselines": self.baselines,
            "baseline_errors": self.baseline_errors,
        }


def _prepare(
    source: Any, capacity: int, s: Settings, on_load: Callable[[int, int], None] | None, stage: Callable[..., None]
) -> _Job:
    """Everything before training, cheapest checks first: settings, destinations, the data, the
    model, the classical estimators, the output folder."""
    dev = resolve_device(s.device)
    world = join(dev)  # several ranks under torchrun: only rank 0 reads baselines and writes
    if world.parallel:
        dev = torch.device("cuda", world.local_rank) if dev.type == "cuda" else dev
        if not world.main:
            s = replace(s, out=None, export=None, baselines=False)
    saved, out = _resumed(s.resume, s.out, s.max_steps)
    config = training_config(resumed_config(saved) if saved is not None else s.config, use_mask=s.use_mask,
                             max_steps=s.max_steps, batch_size=s.batch_size)
    check_run(capacity, s.checkpoint_steps, s.checkpoint_seconds, s.fid_samples)
    from latentdim.metrics.fid import find_weights

    fid_weights_path = find_weights(s.fid_weights)  # a bad explicit path fails now, not after training
    if config.batch_size % world.size:
        raise LatentdimError(f"--batch-size {config.batch_size} does not split evenly over {world.size} processes; "
                             f"give a multiple of {world.size}")
    if world.main:
        _check_destinations(out, s.export, refuse_earlier_run=saved is None and not s.overwrite)
    data = load(source, s.key, s.preset, s.channels, s.image_size, s.strict, on_load)
    _check_data(data, config.batch_size, dev)
    config = for_data(config, data.images)
    spec = ModelSpec(data.preset, tuple(data.array.shape[1:]), capacity, s.width, s.use_mask, s.depth)
    if saved is not None:
        _check_same_run(saved, spec, s.seed, data.source, Path(out))
    torch.manual_seed(s.seed)
    model = build_model(spec).to(dev)  # before the baselines: a preset that does not fit fails at once
    baseline_values, baseline_errors = _baselines(data.array, saved, s.baselines, s.seed, stage)
    out_dir = prepare_out(out) if world.main else None
    if out_dir is not None:
        # a closing rule's state can hold copies of the networks (an elimination round's start)
        check_room(out_dir, checkpoint_bytes(model) * (1 + closing_rule_class(config).snapshots))
    x, standardiser = _training_tensor(data, dev, s.seed, world.rank, stage)
    return _Job(s, data, config, spec, model, dev, world, saved, out_dir, fid_weights_path, x, standardiser,
                baseline_values, baseline_errors)


def _finish(job: _Job, outcome: TrainOutcome, stage: Callable[..., None]) -> EstimateResult:
    """Evaluation, the result, its warnings, and the files of ``out`` and ``export``."""
    s, model, x = job.settings, job.model, job.x
    n_samples = job.data.array.shape[0]
    if isinstance(x, BlockSampler):  # rows read from the file, chosen without a permutation of all N
        rows = np.sort(np.random.default_rng(s.seed).choice(n_samples, size=min(n_samples, EVAL_SAMPLES), replace=False))
        eval_x = x.take(rows)
    else:
        eval_x = x[torch.randperm(n_samples)[: min(n_samples, EVAL_SAMPLES)].to(job.dev)]
    stage(f"evaluating on {eval_x.shape[0]:,} samples (Frechet distance, precision and recall)")
    diag = evaluate(model, eval_x, job.standardiser, job.config.reconstruction)
    fid = fid_scores(model, x, job.dev, job.fid_weights, s.fid_samples, stage) if job.data.images else None
    result = _result(job, outcome, diag, fid)
    if s.use_mask and result.m_active == 0:
        warnings.warn(NO_DIMENSION_LEFT, EstimateWarning, stacklevel=3)
    if not result.settled:
        warnings.warn(f"m_A {result.m_active}: {unsettled_text(result)}", EstimateWarning, stacklevel=3)
    extra = {**job.extra(), "step": outcome.steps, "finished": True, "result": result.to_dict()}
    if outcome.state is not None:  # stopped at max_steps: keep what a larger --max-steps continues from
        extra.update(finished=False, stopped_at_limit=True,
                     train_state={k: v for k, v in outcome.state.items() if k != "model"})
    if job.out_dir is not None:
        stage(f"writing pictures and report to {job.out_dir}")
        write_outputs(job.out_dir, result, model, job.spec, extra, diag, s.command)
    if s.export is not None:
        from latentdim.export import export_model

        stage(f"exporting the generator to {s.export}")
        export_model(model, job.spec, extra, Path(s.export))
    return result


def _resumed(resume: str | os.PathLike[str] | None, out: Any, max_steps: int | None) -> tuple[dict[str, Any] | None, Any]:
    """``resume``: the interrupted run's checkpoint (None without ``resume``) and the output folder."""
    if resume is None:
        return None, out
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
    return saved, resume_dir


def _check_destinations(out: Any, export: Any, refuse_earlier_run: bool) -> None:
    """Before anything is read: ``out`` can be written (and holds no earlier run when
    ``refuse_earlier_run``), and so can ``export``."""
    check_out(out)
    if refuse_earlier_run:
        check_no_earlier_run(out)
    if export is not None:
        from latentdim.export import check_output_path

        check_output_path(Path(export))  # fail before training, not after


def _check_data(data: LoadedData, batch_size: int, dev: torch.device) -> None:
    n_samples = data.array.shape[0]
    if n_samples < batch_size:
        raise LatentdimError(
            f"{data.source} has {n_samples} samples, fewer than one batch of {batch_size}; "
            "add data or lower --batch-size"
        )
    # uint8 images or float32 vectors, as trained; streamed data: only the training buffer
    check_fits_device(BUFFER_BYTES if _streams(data) else data.array.nbytes, dev, data.source)


def _streams(data: LoadedData) -> bool:
    """Whether training streams the data through a :class:`BlockSampler`: vectors read from the
    file in blocks, and images above the streaming limit (decoded into a temporary file)."""
    return isinstance(data.array, StreamedVectors) or (data.images and data.array.nbytes > stream_bytes())


def _baselines(
    array: np.ndarray, saved: dict[str, Any] | None, wanted: bool, seed: int, stage: Callable[..., None]
) -> tuple[dict[str, float | None] | None, dict[str, str]]:
    """Issue 4: classical estimates on the raw samples in user units; before training, so
    degenerate data fails in seconds rather than after the run. One estimator undefined on the data
    (TwoNN on a lattice) is reported beside the others instead of stopping the run (issue 21). A
    resumed run keeps the values it computed."""
    if not wanted:
        return None, {}
    if saved is not None and saved.get("baselines") is not None:
        return dict(saved["baselines"]), dict(saved.get("baseline_errors") or {})
    n = array.shape[0]
    stage(f"classical estimators (TwoNN, MLE, lPCA) on {min(n, MAX_POINTS):,} samples")
    if isinstance(array, StreamedVectors):  # a random subset read from the file
        array = array.subset(MAX_POINTS, seed)
    return classical_estimates_or_reasons(array.reshape(array.shape[0], -1), seed=seed)


def _training_tensor(data: LoadedData, dev: torch.device, seed: int, rank: int,
                     stage: Callable[..., None]) -> tuple[torch.Tensor | BlockSampler, Standardiser | None]:
    """The data on the device as the model trains on it: uint8 images (batches become [0, 1]
    floats), or standardised vectors with their standardiser; a file larger than memory as a
    :class:`BlockSampler` (data/stream.py)."""
    if isinstance(data.array, StreamedVectors):
        stage(f"standardising {data.array.shape[0]:,} rows, read from {data.source} in blocks")
        standardiser = Standardiser.fit(data.array)
        return BlockSampler(data.array, standardiser.mean, standardiser.std, dev, seed, rank=rank), standardiser
    if _streams(data):
        stage(f"streaming {data.array.shape[0]:,} images ({data.array.nbytes / 2**30:.1f} GiB) "
              f"through a {BUFFER_BYTES // 2**20} MiB buffer")
        return BlockSampler(data.array, None, None, dev, seed, rank=rank), None
    if data.images:
        return torch.from_numpy(np.ascontiguousarray(data.array)).to(dev), None
    standardiser = Standardiser.fit(data.array)
    return torch.from_numpy(standardiser.transform(data.array)).to(dev), standardiser


def _train(job: _Job, on_step: Callable[[StepStats], None] | None, should_stop: Callable[[], bool] | None,
           stage: Callable[..., None]) -> TrainOutcome:
    """Training with checkpoints to the output folder (when there is one), resumed from a saved
    run; an interruption or a second divergence becomes the exception the caller reports."""
    model, spec, checkpoint_path, extra = job.model, job.spec, job.checkpoint_path, job.extra()

    def write_training_checkpoint(state: dict[str, Any]) -> None:
        assert checkpoint_path is not None
        train_state = {k: v for k, v in state.items() if k != "model"}
        save_checkpoint(
            checkpoint_path, model, spec, {**extra, "step": state["step"], "finished": False, "train_state": train_state},
            weights=state["model"],
        )

    saved = job.saved
    resume_state = None if saved is None else {**saved["train_state"], "model": saved["model"]}
    writing = checkpoint_path is not None
    try:
        outcome = train(
            model, job.x, job.config, on_step=on_step, should_stop=should_stop, resume=resume_state,
            on_checkpoint=write_training_checkpoint if writing else None,
            checkpoint_steps=job.settings.checkpoint_steps if writing else None,
            checkpoint_seconds=job.settings.checkpoint_seconds if writing else None,
            world=job.world, seed=job.settings.seed, on_stage=stage,
        )
    except (ValueError, RuntimeError) as e:
        if resume_state is None:
            raise
        raise LatentdimError(f"cannot resume from {checkpoint_path}: it does not fit this model ({type(e).__name__})") from e
    finally:
        if isinstance(job.x, BlockSampler):
            job.x.close()  # its reading thread; evaluation reads its rows directly
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
    return outcome


def _result(job: _Job, outcome: TrainOutcome, diag: dict[str, Any], fid: Any) -> EstimateResult:
    """The :class:`EstimateResult` of a finished training and its diagnostics."""
    model, spec, data = job.model, job.spec, job.data
    mu = model.mask().detach()
    undecided = count_undecided(mu)
    steps_arr, mask_arr = history_array(outcome)
    rounds = [
        {k: round(v, 6) if isinstance(v, float) else [round(c, 6) for c in v] if k == "ablation" else v
         for k, v in r.items()}
        for r in outcome.closing_rounds
    ]
    verification = [{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in outcome.verification]
    # when the fresh verification ran, its refusal is the gap below m_A
    margin = verification_margin(verification) if verification else closing_margin(rounds)
    return EstimateResult(
        m_active=count_active(mu),
        capacity=spec.capacity,
        mask=[round(float(v), 6) for v in mu.cpu()],
        active=active_dims(mu),
        undecided=undecided,
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
        baselines=job.baselines,
        seed=job.settings.seed,
        preset=spec.preset,
        data_shape=list(spec.data_shape),
        source=data.source,
        skipped_files=data.skipped,
        version=__version__,
        device=job.dev.type,
        processes=job.world.size,
        schedule=job.config.schedule,
        use_mask=spec.use_mask,
        covariance=diag["covariance"],
        history_steps=steps_arr,
        history_mask=mask_arr,
        curves=curves_array(outcome),
        closing_rounds=rounds,
        closing_margin=None if margin is None else round(margin, 4),
        verification=verification,
        skipped_examples=data.skipped_examples,
        baseline_errors=job.baseline_errors,
        # the WAE baseline has no mask to settle: it trains to max_steps by design
        settled=not spec.use_mask or (outcome.stop_reason == "settled" and undecided == 0),
        phase="" if outcome.last is None else outcome.last.phase,
        model=model,
        standardiser=job.standardiser,
    )
