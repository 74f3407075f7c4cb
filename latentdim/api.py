"""``latentdim.estimate``: the library entry point for scripts and pipelines.

The data path reads in one direction: source -> validated vectors -> standardised tensor ->
training -> evaluation -> :class:`EstimateResult` (-> files in ``out``).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentdim import losses
from latentdim.checkpoint import atomic_write, save_checkpoint
from latentdim.data import Standardiser, VectorData, from_array, load_source
from latentdim.errors import LatentdimError
from latentdim.metrics import classical_estimates, frechet_distance_samples, nac, precision_recall
from latentdim.models import MaskAAE, ModelSpec, build_model, count_active, count_undecided
from latentdim.models.mask import ACTIVE_THRESHOLD
from latentdim.train import NO_MASK_MAX_STEPS, StepStats, TrainConfig, TrainOutcome, history_array, train

#: Samples used for the final diagnostics (reconstruction, W, Frechet distance, NAC).
EVAL_SAMPLES = 5000


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
    precision: float | None  # improved precision (k = 3) of generated vs real, same space as the Frechet distance
    recall: float | None  # improved recall (k = 3) of generated vs real
    baselines: dict[str, float] | None  # classical estimates {"twonn", "mle", "lpca"}; None when skipped
    seed: int
    preset: str
    source: str
    version: str
    device: str
    schedule: str  # "latentdim" or "reference"
    use_mask: bool  # False for the --no-mask (WAE-GP) baseline
    covariance: np.ndarray | None = field(default=None, repr=False)  # full normalised |cov| (m, m)
    history_steps: np.ndarray | None = field(default=None, repr=False)  # (T,)
    history_mask: np.ndarray | None = field(default=None, repr=False)  # (T, m)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (arrays excluded)."""
        skip = {"covariance", "history_steps", "history_mask"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is present; ``cuda`` without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise LatentdimError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
        return torch.device("cuda")
    raise LatentdimError(f"unknown device '{device}'; use auto, cpu or cuda")


def _load(source: Any, key: str | None) -> VectorData:
    if isinstance(source, VectorData):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_source(source, key=key)
    return from_array(source)


def choose_preset(preset: str, data_shape: tuple[int, ...]) -> str:
    """``auto`` picks the preset from the data's shape (vectors -> ``mlp``)."""
    if preset != "auto":
        return preset
    if len(data_shape) == 1:
        return "mlp"
    raise LatentdimError(f"no preset for samples of shape {data_shape} yet; vectors (N, d) are supported")


@torch.no_grad()
def evaluate(model: MaskAAE, data: torch.Tensor, standardiser: Standardiser, reconstruction: str) -> dict[str, Any]:
    """Final diagnostics on ``data`` (N, d), standardised, at most :data:`EVAL_SAMPLES` rows.

    Returns reconstruction error, W, the data-space Frechet distance between generated and real
    vectors (SPEC §7), improved precision and recall of generated against real in the same space
    (None with 3 or fewer rows), NAC over the active dims and the full normalised covariance matrix.
    """
    model.eval()
    mu = model.mask()
    codes = model.encoder(data)
    rec = float(losses.reconstruction(model.decoder(mu * codes), data, reconstruction))
    z = mu * torch.randn(data.shape[0], mu.shape[0], device=data.device)
    w = float(losses.wasserstein(model.critic(z), model.critic(mu * codes)))
    generated = standardiser.inverse(model.decoder(z).cpu().numpy())
    real = standardiser.inverse(data.cpu().numpy())
    fd = frechet_distance_samples(generated, real) if data.shape[0] >= 2 else None
    # k = 3 needs a 3rd neighbour besides the point itself.
    precision, recall = precision_recall(real, generated) if data.shape[0] > 3 else (None, None)
    nac_value, matrix = nac(codes.cpu().numpy().astype(np.float64), (mu >= ACTIVE_THRESHOLD).cpu().numpy())
    return {
        "reconstruction_error": rec, "wasserstein": w, "frechet_distance": fd, "precision": precision, "recall": recall,
        "nac": nac_value, "covariance": matrix,
    }


def prepare_out(out: str | os.PathLike[str] | None) -> Path | None:
    """Creates the output folder up front so a bad path fails before training, not after."""
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise LatentdimError(f"--out {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentdimError(f"cannot create output folder {path}: {e.strerror}") from e
    if not os.access(path, os.W_OK):
        raise LatentdimError(f"output folder {path} is not writable")
    return path


def write_outputs(out: Path, result: EstimateResult, model: MaskAAE, spec: ModelSpec, extra: dict[str, Any]) -> None:
    """``result.json``, ``checkpoint.pt``, ``mask_history.csv`` and ``covariance.npy`` in ``out``."""
    save_checkpoint(out / "checkpoint.pt", model, spec, extra)
    payload = (json.dumps(result.to_dict(), indent=2) + "\n").encode()
    atomic_write(out / "result.json", lambda f: f.write(payload))
    if result.covariance is not None:
        atomic_write(out / "covariance.npy", lambda f: np.save(f, result.covariance))
    if result.history_steps is not None:
        rows = [["step"] + [f"mu_{j}" for j in range(result.capacity)]]
        rows += [[int(s)] + [f"{v:.6g}" for v in mu] for s, mu in zip(result.history_steps, result.history_mask)]

        def write_csv(f: Any) -> None:
            import io

            text = io.StringIO()
            csv.writer(text).writerows(rows)
            f.write(text.getvalue().encode())

        atomic_write(out / "mask_history.csv", write_csv)


def estimate(
    source: Any,
    capacity: int = 64,
    *,
    key: str | None = None,
    preset: str = "auto",
    use_mask: bool = True,
    seed: int = 0,
    device: str = "auto",
    config: TrainConfig | None = None,
    width: int | None = None,
    out: str | os.PathLike[str] | None = None,
    export: str | os.PathLike[str] | None = None,
    on_step: Callable[[StepStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    baselines: bool = True,
) -> EstimateResult:
    """Trains a MaskAAE on ``source`` and returns the estimated latent dimension m_A.

    Args:
        source: a path to an HDF5 file, ``"synthetic:n=8[,d=..,samples=..,seed=..]"``, or an
            array-like of shape (N, d).
        capacity: latent size m to start from; choose it generously above the expected answer.
        key: dataset name inside an HDF5 file (optional when it holds exactly one).
        preset: architecture preset (SPEC §5), or ``"auto"`` to choose from the data's shape.
        use_mask: False trains the WAE-GP baseline (mask fixed at one).
        seed: seeds model initialisation and training; a CPU run is repeatable.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        config: training hyper-parameters and schedule; defaults to ``TrainConfig()`` (with
            ``max_steps=10000`` for the mask-free baseline, which has nothing to settle).
        width: hidden-layer width override (small models for tests and quick looks).
        out: folder for ``result.json``, the checkpoint and the mask history.
        export: ONNX file for the masked generator (see :mod:`latentdim.export`).
        on_step: called with :class:`StepStats` during training (progress display).
        should_stop: polled every step; True stops training early.
        baselines: also compute the classical estimators TwoNN, MLE and lPCA on up to 5,000 raw
            samples (seeded by ``seed``), to show beside m_A.

    Returns:
        An :class:`EstimateResult`. Nothing is printed.

    Raises:
        LatentdimError: bad source, bad settings, or too little data (the classical estimators
            need 3 distinct samples; ``baselines=False`` skips them).
    """
    from latentdim import __version__

    if config is None:
        config = TrainConfig() if use_mask else TrainConfig(max_steps=NO_MASK_MAX_STEPS)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise LatentdimError(f"capacity must be a positive integer, got {capacity!r}")
    if config.batch_size < 1:
        raise LatentdimError(f"batch size must be at least 1, got {config.batch_size}")
    if config.max_steps < 1:
        raise LatentdimError(f"max steps must be at least 1, got {config.max_steps}")
    dev = resolve_device(device)
    out_dir = prepare_out(out)
    if export is not None:
        from latentdim.export import check_output_path

        check_output_path(Path(export))  # fail before training, not after
    data = _load(source, key)
    n_samples = data.x.shape[0]
    if n_samples < config.batch_size:
        raise LatentdimError(
            f"{data.source} has {n_samples} samples, fewer than one batch of {config.batch_size}; "
            "add data or lower --batch-size"
        )
    spec = ModelSpec(choose_preset(preset, data.x.shape[1:]), tuple(data.x.shape[1:]), capacity, width, use_mask)
    # Issue 4: classical estimates on the raw samples in user units; before training, so degenerate
    # data fails in seconds rather than after the run.
    baseline_values = classical_estimates(data.x.reshape(n_samples, -1), seed=seed) if baselines else None
    standardiser = Standardiser.fit(data.x)
    x = torch.from_numpy(standardiser.transform(data.x)).to(dev)

    torch.manual_seed(seed)
    model = build_model(spec).to(dev)
    outcome: TrainOutcome = train(model, x, config, on_step=on_step, should_stop=should_stop)

    eval_idx = torch.randperm(n_samples)[: min(n_samples, EVAL_SAMPLES)].to(dev)
    diag = evaluate(model, x[eval_idx], standardiser, config.reconstruction)
    mu = model.mask().detach()
    steps_arr, mask_arr = history_array(outcome)
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
        precision=diag["precision"],
        recall=diag["recall"],
        baselines=baseline_values,
        seed=seed,
        preset=spec.preset,
        source=data.source,
        version=__version__,
        device=dev.type,
        schedule=config.schedule,
        use_mask=use_mask,
        covariance=diag["covariance"],
        history_steps=steps_arr,
        history_mask=mask_arr,
    )
    extra = {
        "config": asdict(config),
        "standardiser": standardiser.to_dict(),
        "step": outcome.steps,
        "seed": seed,
        "source": data.source,
        "result": result.to_dict(),
    }
    if out_dir is not None:
        write_outputs(out_dir, result, model, spec, extra)
    if export is not None:
        from latentdim.export import export_model

        export_model(model, spec, extra, Path(export))
    return result
