"""A run's settings: defaults and checks, once, for the command line and :func:`latentdim.estimate`.

:func:`training_config` turns options into a :class:`~latentdim.training.TrainConfig`,
:func:`for_data` fills in what depends on the data (vectors or images), :func:`check_run` checks
the rest of a run's numbers, and :func:`resumed_config` reads the settings of an interrupted run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from latentdim.errors import LatentdimError
from latentdim.training import (
    IMAGE_ELIMINATE_HOLD,
    IMAGE_LR_MASK,
    LOSS_BUDGET,
    NO_MASK_MAX_STEPS,
    VECTOR_ELIMINATE_HOLD,
    VECTOR_LR_MASK,
    TrainConfig,
)
from latentdim.training.config import PRECISIONS, compile_backend_problem


@dataclass
class Settings:
    """What a run is asked to do besides its data and callbacks; the fields are the keyword
    arguments of :func:`latentdim.estimate` (most are also ``latentdim estimate`` options).

    Attributes:
        key: dataset inside an HDF5 file, or array inside an ``.npz`` (optional when it holds one).
        preset: architecture (SPEC §5): ``mlp``, ``mnist``, ``fmnist``, ``cifar``, ``celeba``,
            ``conv`` (images of other sizes), or ``auto`` (from the data's shape).
        channels: images: 1 or 3 to force grayscale or colour (default: from the data, or the preset's).
        image_size: images: resize and centre-crop to this square size (default: the preset's).
        strict: images: an unreadable file is an error instead of being skipped and counted.
        use_mask: False trains the WAE-GP baseline (mask fixed at one).
        seed: seeds initialisation and training; a CPU run is repeatable.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        config: training hyper-parameters and schedule (default ``TrainConfig()``, with
            ``max_steps=10000`` for the mask-free baseline, which has nothing to settle).
        width: hidden-layer width override (small models for tests and quick looks).
        depth: vectors: hidden layers of the encoder and decoder (default 1, the papers').
        out: folder for ``result.json``, the checkpoint, the mask history, the pictures and ``report.html``.
        export: ONNX file for the masked generator (see :mod:`latentdim.export`).
        baselines: also compute TwoNN, MLE and lPCA on up to 5,000 raw samples (seeded by ``seed``),
            shown beside m_A.
        resume: the output folder of an interrupted run: training continues from its
            ``checkpoint.pt`` with that run's settings, and the outputs go to that folder. The other
            settings must describe the same run; a CPU run then ends exactly as the uninterrupted
            one would have.
        checkpoint_steps, checkpoint_seconds: with ``out``, write ``checkpoint.pt`` every this many
            steps / seconds (None: not on that count). Default: every 10 minutes.
        command: the command line, recorded in ``report.html``.
        fid_weights: images: the FID Inception weights (torch-fidelity's
            ``weights-inception-2015-12-05-6726825d.pth``); default ``$LATENTDIM_FID_WEIGHTS`` or
            the torch hub cache, downloaded there when online. Without them ``fid`` is None and
            ``fid_reason`` says how to supply them.
        fid_samples: images: generated and real images compared by FID / KID (fewer when the data
            has fewer); Inception on a CPU takes about half a second an image.
        overwrite: replace the files of an earlier run in ``out`` (those this run does not write are
            removed once it has written its own; ``--force``). Without it, an ``out`` that holds a
            run is refused before anything is read or written.
        max_steps, batch_size: shortcuts for the same fields of ``config`` (they override it; with
            ``resume``, a larger ``max_steps`` continues a run that stopped at its limit).
    """

    key: str | None = None
    preset: str = "auto"
    channels: int | None = None
    image_size: int | None = None
    strict: bool = False
    use_mask: bool = True
    seed: int = 0
    device: str = "auto"
    config: TrainConfig | None = None
    width: int | None = None
    depth: int | None = None
    out: str | os.PathLike[str] | None = None
    export: str | os.PathLike[str] | None = None
    baselines: bool = True
    resume: str | os.PathLike[str] | None = None
    checkpoint_steps: int | None = None
    checkpoint_seconds: float | None = 600.0
    command: str | None = None
    fid_weights: str | os.PathLike[str] | None = None
    fid_samples: int = 10_000
    overwrite: bool = False
    max_steps: int | None = None
    batch_size: int | None = None


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LatentdimError(f"{name} must be an integer, got {value!r}")
    return value


def training_config(
    config: TrainConfig | None = None, *, use_mask: bool = True, schedule: str | None = None,
    batch_size: int | None = None, max_steps: int | None = None,
    closing_pressure: float | None = None, loss_budget: float | None = None, verify: bool = True,
    compile: str | None = None, precision: str | None = None,
) -> TrainConfig:
    """``config`` (default: the ``schedule``'s, with the WAE baseline's step budget under
    ``use_mask=False``) with the options that are not None on top, checked."""
    if schedule == "reference" and (closing_pressure is not None or loss_budget is not None):
        raise LatentdimError("--closing-pressure and --loss-budget apply to the latentdim schedule only; drop them or use --schedule latentdim")
    if config is None:
        config = TrainConfig.reference() if schedule == "reference" else TrainConfig()
        if not use_mask:
            config = replace(config, max_steps=NO_MASK_MAX_STEPS)
    for name, value in (("max_steps", max_steps), ("batch_size", batch_size)):
        if value is not None:
            config = replace(config, **{name: _integer(name, value)})
    if closing_pressure is not None:
        if closing_pressure < 0:
            raise LatentdimError(f"--closing-pressure must be >= 0, got {closing_pressure}")
        config = replace(config, closing_pressure=closing_pressure)
    if loss_budget is not None:
        if not 0 <= loss_budget < 1:
            raise LatentdimError(f"--loss-budget must be in [0, 1), got {loss_budget}")
        config = replace(config, loss_budget=loss_budget)  # 0: off (None means "the default for the data")
    if not verify:
        config = replace(config, verify=False)  # True leaves the data's default (on for vectors)
    if compile is not None:
        if problem := compile_backend_problem(compile):
            raise LatentdimError(f"--compile: {problem}")
        config = replace(config, compile=compile)
    if precision is not None:
        if precision not in PRECISIONS:
            raise LatentdimError(f"--precision must be float32 or bfloat16, got {precision!r}")
        config = replace(config, precision=precision)
    if config.batch_size < 1:
        raise LatentdimError(f"batch size must be at least 1, got {config.batch_size}")
    if config.max_steps < 1:
        raise LatentdimError(f"max steps must be at least 1, got {config.max_steps}")
    return config


def for_data(config: TrainConfig, images: bool) -> TrainConfig:
    """The fields left None in ``config`` chosen for vectors or images (docs/design.md)."""
    chosen: dict[str, Any] = {
        # SPEC §3: BCE with a sigmoid decoder for images, MSE for vectors
        "reconstruction": "bce" if images else "mse",
        # One closing rule for vectors and images (docs/accuracy.md): once the auto-encoder has
        # converged, dimensions are switched off in rounds, each kept only while the held-out
        # reconstruction keeps all but LOSS_BUDGET of what the code explains. A budget of 0 falls
        # back to the closing pressure.
        "loss_budget": LOSS_BUDGET,
        "warmup_plateau": True,
        # The pressure's closing wave (--loss-budget 0): slower for images, so the m_A it stops at
        # depends less on the capacity (docs/log/mask-dynamics.md).
        "lr_mask": IMAGE_LR_MASK if images else VECTOR_LR_MASK,
    }
    config = replace(config, **{k: v for k, v in chosen.items() if getattr(config, k) is None})
    later: dict[str, Any] = {
        "closing": "eliminate" if config.loss_budget else "pressure",
        # The verdicts compare adapted errors, so how well the auto-encoder fits a tight code
        # decides them: Adam fits curved vector manifolds several times better than SPEC §4's
        # RMSProp in the same steps (docs/accuracy.md); images keep the RMSProp they were validated with.
        "ae_optimiser": "rmsprop" if images else "adam",
        "eliminate_hold": IMAGE_ELIMINATE_HOLD if images else VECTOR_ELIMINATE_HOLD,
        "verify": not images,
    }
    return replace(config, **{k: v for k, v in later.items() if getattr(config, k) is None})


def check_run(capacity: Any, checkpoint_steps: int | None, checkpoint_seconds: float | None, fid_samples: Any) -> None:
    """The numbers of a run outside its training config."""
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise LatentdimError(f"capacity must be a positive integer, got {capacity!r}")
    if checkpoint_steps is not None and checkpoint_steps < 1:
        raise LatentdimError(f"checkpoint interval must be at least 1 step, got {checkpoint_steps}")
    if checkpoint_seconds is not None and not checkpoint_seconds > 0:
        raise LatentdimError(f"checkpoint interval must be positive, got {checkpoint_seconds} s")
    if isinstance(fid_samples, bool) or not isinstance(fid_samples, int) or fid_samples < 2:
        raise LatentdimError(f"fid_samples (--fid-samples) must be an integer of at least 2, got {fid_samples!r}")


def resumed_config(saved: dict[str, Any]) -> TrainConfig:
    """The config of the run a checkpoint was saved from. A run saved by an earlier latentdim lacks
    the closing fields: it closed under the pressure (no closing field) or by elimination without a
    retry (no eliminate_retries), holding its rounds budget_hold steps (no eliminate_hold)."""
    old = {"closing": "pressure", "eliminate_retries": 0, "eliminate_hold": saved["config"].get("budget_hold", 500),
           "ae_optimiser": "rmsprop"}
    return TrainConfig(**{**old, **saved["config"]})
