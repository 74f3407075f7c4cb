"""Self-describing, atomic checkpoints: one dict from which the model is rebuilt.

The dict holds only tensors and plain Python values so it loads with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from latentdim._version import __version__
from latentdim.errors import LatentdimError
from latentdim.fileio import atomic_write
from latentdim.models import MaskAAE, ModelSpec, build_model

#: 2: the convolutional decoders gained coordinate channels (their weights changed shape).
FORMAT_VERSION = 2
#: Presets whose format-1 weights no longer fit the networks built today.
_CHANGED_IN_2 = ("fmnist", "cifar", "celeba", "conv")


def save_checkpoint(
    path: Path, model: MaskAAE, spec: ModelSpec, extra: dict[str, Any], weights: dict[str, Any] | None = None
) -> None:
    """Writes weights (``model``'s, or ``weights`` when given), the model spec and ``extra``
    (config, step, standardisation, training state...) atomically."""
    state = {
        "format_version": FORMAT_VERSION,
        "latentdim_version": __version__,
        "model_spec": {**asdict(spec), "data_shape": list(spec.data_shape)},
        "model": {k: v.detach().cpu() for k, v in (weights if weights is not None else model.state_dict()).items()},
        **extra,
    }
    atomic_write(Path(path), lambda f: torch.save(state, f))


def checkpoint_bytes(model: MaskAAE) -> int:
    """About how large a training checkpoint of ``model`` is: the weights plus the RMSProp
    accumulators of the four optimisers (the encoder has two: auto-encoder and generator)."""

    def size(module: torch.nn.Module) -> int:
        return sum(t.numel() * t.element_size() for t in module.state_dict().values())

    return 2 * size(model) + size(model.encoder) + 4096


def read_checkpoint(path: Path, device: str = "cpu") -> dict[str, Any]:
    """The checkpoint dict, loaded safely (``weights_only=True``) and checked.

    Raises:
        LatentdimError: missing, empty, truncated or corrupt file, not a latentdim checkpoint, a
            newer or unknown format version, or a format-1 convolutional model (its decoder changed).
    """
    path = Path(path)
    if not path.is_file():
        raise LatentdimError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise LatentdimError(f"{path} is empty, not a latentdim checkpoint")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt file
        raise LatentdimError(f"{path} is not a readable latentdim checkpoint ({type(e).__name__})") from e
    if not isinstance(state, dict) or "format_version" not in state or "model_spec" not in state or "model" not in state:
        raise LatentdimError(f"{path} is not a latentdim checkpoint")
    version = state["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LatentdimError(f"{path} has an unknown checkpoint format {version!r}")
    if version > FORMAT_VERSION:
        raise LatentdimError(
            f"{path} has checkpoint format {version}, newer than this latentdim "
            f"understands ({FORMAT_VERSION}); upgrade latentdim"
        )
    preset = state["model_spec"].get("preset") if isinstance(state["model_spec"], dict) else None
    if version < 2 and preset in _CHANGED_IN_2:
        raise LatentdimError(
            f"{path} was written by latentdim {state.get('latentdim_version', '?')}, whose '{preset}' "
            "decoder had no coordinate channels; this version cannot load it: run estimate again"
        )
    return state


def load_checkpoint(path: Path, device: str = "cpu") -> tuple[MaskAAE, ModelSpec, dict[str, Any]]:
    """Rebuilds the model from a checkpoint written by :func:`save_checkpoint`.

    Raises:
        LatentdimError: see :func:`read_checkpoint`; also a checkpoint whose weights do not fit
            its own model description.
    """
    state = read_checkpoint(path, device)
    try:
        raw = dict(state["model_spec"])
        spec = ModelSpec(**{**raw, "data_shape": tuple(raw["data_shape"])})
        model = build_model(spec)
        model.load_state_dict(state["model"])
    except (TypeError, KeyError, ValueError, RuntimeError) as e:
        raise LatentdimError(f"{path} does not match the model it describes ({type(e).__name__}); it is damaged") from e
    return model.to(device).eval(), spec, state
