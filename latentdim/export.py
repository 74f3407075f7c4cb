"""ONNX export of the masked generator (SPEC §2 "Generation").

The exported graph takes only the m_A active latent coordinates::

    z (batch, m_A) ~ N(0, I)  ->  z @ S  ->  decoder (eval)  ->  output head  ->  x

S is a constant (m_A, m) matrix whose row i holds mu[active[i]] at column active[i]: it scatters
the active coordinates into the capacity-m latent with the mask folded in, and leaves the
inactive coordinates at exactly 0. The output head maps the decoder's output to the user's units:
``x * std + mean`` for standardised vectors (``reconstruction == "mse"``), a sigmoid for images
whose decoder outputs logits (``"bce"``), optionally followed by 0..255 uint8 RGB for
torch-fidelity (``uint8=True``).

Layers, from the graph up: :func:`masked_generator` builds the torch module,
:func:`write_onnx` writes any such module with metadata, :func:`export_model` exports an in-memory
trained model (what ``estimate --export`` needs), :func:`export_onnx` exports a checkpoint or an
``--out`` folder.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from latentdim import onnx_format
from latentdim._version import __version__
from latentdim.checkpoint import load_checkpoint
from latentdim.data.vectors import unstandardise
from latentdim.errors import LatentdimError
from latentdim.fileio import atomic_write
from latentdim.models import MaskAAE, ModelSpec, count_active
from latentdim.models.mask import active_dims

#: ONNX operator set of the exported graph; onnxruntime >= 1.12 runs it.
OPSET = 17
#: Name of the checkpoint inside an ``estimate --out`` folder (see latentdim.api.write_outputs).
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class ExportInfo:
    """What :func:`export_onnx` wrote."""

    path: Path  # the ONNX file
    m_active: int  # input size of the graph
    capacity: int  # latent size m of the trained model
    active: list[int]  # latent coordinates fed by the input, in input order
    kind: str  # "vectors" or "images"
    output_shape: tuple[int, ...]  # shape of one output sample
    output_dtype: str  # "float32" or "uint8"
    metadata: dict[str, Any]  # the latentdim metadata, keys without prefix, values decoded


class Destandardise(nn.Module):
    """x * std + mean: standardised vectors back to the user's units (Standardiser.inverse)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unstandardise(x, self.mean, self.std)


class Uint8RGB(nn.Module):
    """Images in [0, 1] (batch, C, H, W) -> uint8 0..255 (batch, 3, H, W), gray repeated to RGB.

    torch-fidelity feeds a generator's output straight into its Inception network, which asserts
    dtype uint8 and has 3 input channels; SPEC §7 repeats grayscale to 3 channels the same way.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        # Round, not truncate: 0.5 / 255 above a level maps to the next one, as PIL does.
        return torch.clamp(torch.round(x * 255.0), 0.0, 255.0).to(torch.uint8)


class MaskedGenerator(nn.Module):
    """z (batch, m_A) -> data in the user's units; the module that is exported."""

    def __init__(
        self, decoder: nn.Module, scatter: torch.Tensor, active: list[int], data_shape: tuple[int, ...], head: nn.Module
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.active = list(active)  # latent coordinate fed by each input column
        self.register_buffer("scatter", scatter)
        self.data_shape = tuple(data_shape)
        self.head = head

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        latent = z @ self.scatter  # (batch, m): mu_j z_i at j = active[i], exactly 0 elsewhere
        x = self.decoder(latent).reshape(-1, *self.data_shape)
        return self.head(x)


def scatter_matrix(mu: torch.Tensor, active: list[int]) -> torch.Tensor:
    """The (m_A, m) matrix S with S[i, active[i]] = mu[active[i]] and zeros elsewhere.

    Args:
        mu: mask values, shape (m,).
        active: indices of the active coordinates, length m_A.
    """
    scatter = torch.zeros(len(active), mu.shape[0], dtype=torch.float32)
    rows = torch.arange(len(active))
    cols = torch.as_tensor(active, dtype=torch.long)
    scatter[rows, cols] = mu.detach().float().cpu()[cols]
    return scatter


def output_head(
    reconstruction: str, data_shape: tuple[int, ...], standardiser: dict[str, Any] | None, uint8: bool
) -> tuple[nn.Module, str, str, tuple[int, ...]]:
    """The graph's last step, chosen by the training loss and the data's shape.

    Returns:
        (head, kind, dtype, output_shape): kind "vectors" or "images", dtype "float32" or "uint8",
        output_shape the shape of one output sample.

    Raises:
        LatentdimError: a combination latentdim does not know how to map back to user units, or
            ``uint8`` for a model that does not make images.
    """
    if len(data_shape) == 1:
        kind = "vectors"
    elif len(data_shape) == 3:
        kind = "images"
    else:
        raise LatentdimError(f"cannot export a model of data shape {data_shape}; vectors (d,) or images (C, H, W) only")
    if uint8 and kind != "images":
        raise LatentdimError("--uint8 applies to image models only; this model makes vectors")
    if reconstruction == "mse":
        if kind != "vectors":
            raise LatentdimError("an image model trained with the mse loss has no mapping back to pixel values")
        if not standardiser:
            raise LatentdimError(
                "the checkpoint holds no standardisation, so vectors cannot be mapped back to your units"
            )
        mean, std = np.asarray(standardiser["mean"]), np.asarray(standardiser["std"])
        if mean.shape != tuple(data_shape) or std.shape != tuple(data_shape):
            raise LatentdimError(
                f"the checkpoint's standardisation has {mean.shape[0]} columns, the data {data_shape[0]}"
            )
        return Destandardise(mean, std), kind, "float32", tuple(data_shape)
    if reconstruction == "bce":
        # SPEC §3: the decoder outputs logits; the sigmoid lives in the loss during training.
        if uint8:
            if data_shape[0] not in (1, 3):
                raise LatentdimError(f"--uint8 makes RGB images from 1 or 3 channels; this model makes {data_shape[0]}")
            return nn.Sequential(nn.Sigmoid(), Uint8RGB()), kind, "uint8", (3, *data_shape[1:])
        return nn.Sigmoid(), kind, "float32", tuple(data_shape)
    raise LatentdimError(f"unknown reconstruction loss '{reconstruction}' in the checkpoint")


def masked_generator(
    decoder: nn.Module, mu: torch.Tensor, data_shape: tuple[int, ...], head: nn.Module
) -> MaskedGenerator:
    """The masked generator of SPEC §2 on the active coordinates, on CPU in eval mode.

    Args:
        decoder: D, (batch, m) -> (batch, *data_shape) or anything of that many values per row.
            It is copied, so the caller's model keeps its device and mode.
        mu: mask values, shape (m,); coordinates with mu >= 0.1 become the input.
        data_shape: shape of one decoder output sample.
        head: maps the decoder's output to the user's units (see :func:`output_head`).

    Raises:
        LatentdimError: no coordinate is active (m_A = 0): there is nothing to sample.
    """
    mu = mu.detach().float().cpu()
    active = active_dims(mu)
    if not active:
        raise LatentdimError("the mask closed every latent dimension (m_A = 0), so there is no generator to export")
    generator = MaskedGenerator(copy.deepcopy(decoder).cpu(), scatter_matrix(mu, active), active, data_shape, head)
    return generator.eval()


def write_onnx(generator: nn.Module, input_size: int, output: Path, metadata: dict[str, Any]) -> None:
    """Exports ``generator`` (z (batch, input_size) -> x) to ``output`` with ``metadata``.

    The batch axis is dynamic; ``onnx.checker`` runs before anything is written, and the file
    appears atomically (never partial).

    Raises:
        LatentdimError: ``output`` is a folder, its folder does not exist or is not writable.
    """
    output = Path(output)
    check_output_path(output)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False) warns it is deprecated; it needs no onnxscript.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            generator,
            (torch.zeros(2, input_size),),
            buffer,
            dynamo=False,
            input_names=[onnx_format.INPUT_NAME],
            output_names=[onnx_format.OUTPUT_NAME],
            dynamic_axes={onnx_format.INPUT_NAME: {0: "batch"}, onnx_format.OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
        )
    model = onnx.load_from_string(buffer.getvalue())

    model.producer_name = "latentdim"
    model.producer_version = __version__
    model.doc_string = "latentdim masked generator: z (batch, m_A) ~ N(0, I) -> data (see metadata_props latentdim.*)"
    onnx.helper.set_model_props(model, onnx_format.encode(metadata))
    onnx.checker.check_model(model, full_check=True)
    payload = model.SerializeToString()
    try:
        atomic_write(output, lambda f: f.write(payload))
    except OSError as err:
        raise LatentdimError(f"cannot write {output}: {err.strerror or err}") from err


def check_output_path(output: Path) -> None:
    """Fails early, before any work, if ``output`` cannot become a file."""
    if output.is_dir():
        raise LatentdimError(f"{output} is a folder; give a file name such as {output / 'model.onnx'}")
    parent = output.parent
    if not parent.is_dir():
        raise LatentdimError(f"cannot write {output}: folder {parent} does not exist")


def export_model(
    model: MaskAAE, spec: ModelSpec, state: dict[str, Any], output: Path, *, uint8: bool = False
) -> ExportInfo:
    """Exports a trained model to ONNX: the entry point for ``estimate ... --export``.

    Args:
        model: the trained MaskAAE (any device, any mode; it is not changed).
        spec: its :class:`ModelSpec`.
        state: the checkpoint dict, or the ``extra`` dict given to ``save_checkpoint``; read keys:
            ``config`` (``reconstruction``), ``standardiser``, ``seed``, ``result``
            (``frechet_distance``, ``fid``). Missing keys give null metadata.
        output: the ONNX file to write.
        uint8: image models only: output uint8 0..255 RGB (batch, 3, H, W) for torch-fidelity.

    Returns:
        An :class:`ExportInfo`.

    Raises:
        LatentdimError: m_A = 0, a model whose output latentdim cannot map back to user units,
            ``uint8`` for a vector model, or an output path that cannot be written.
    """

    check_output_path(Path(output))
    config = state.get("config") or {}
    result = state.get("result") or {}
    reconstruction = config.get("reconstruction", "mse")
    standardiser = state.get("standardiser")
    head, kind, dtype, shape = output_head(reconstruction, spec.data_shape, standardiser, uint8)
    mu = model.mask().detach().float().cpu()
    generator = masked_generator(model.decoder, mu, spec.data_shape, head)
    active = generator.active
    standardisation = None
    if kind == "vectors":
        standardisation = {key: [float(v) for v in standardiser[key]] for key in ("mean", "std")}
    metadata = {
        "format_version": onnx_format.FORMAT_VERSION,
        "version": __version__,
        "m_active": count_active(mu),
        "capacity": spec.capacity,
        "active": active,
        "mask": [float(v) for v in mu],
        "use_mask": spec.use_mask,
        "preset": spec.preset,
        "data_shape": list(shape),
        "output": kind,
        "output_dtype": dtype,
        "standardisation": standardisation,
        "z_distribution": "normal",
        "seed": state.get("seed"),
        "frechet_distance": result.get("frechet_distance"),
        "fid": result.get("fid"),
    }
    write_onnx(generator, len(active), Path(output), metadata)
    return ExportInfo(Path(output), len(active), spec.capacity, active, kind, shape, dtype, metadata)


def resolve_checkpoint(run_dir_or_checkpoint: Path) -> Path:
    """An ``estimate --out`` folder -> its checkpoint.pt; a file -> itself.

    Raises:
        LatentdimError: the path does not exist, or the folder holds no checkpoint.
    """
    path = Path(run_dir_or_checkpoint)
    if path.is_dir():
        checkpoint = path / CHECKPOINT_NAME
        if not checkpoint.is_file():
            raise LatentdimError(
                f"{path} holds no {CHECKPOINT_NAME}; pass the --out folder of `latentdim estimate` or a checkpoint file"
            )
        return checkpoint
    if not path.exists():
        raise LatentdimError(f"no such file or folder: {path}")
    return path


def export_onnx(run_dir_or_checkpoint: Path, output: Path, *, uint8: bool = False) -> ExportInfo:
    """Exports the masked generator of a trained run to an ONNX file.

    Args:
        run_dir_or_checkpoint: the ``--out`` folder of ``latentdim estimate`` (holding
            checkpoint.pt), or the checkpoint file itself.
        output: the ONNX file to write (replaced atomically if it exists).
        uint8: image models only: output uint8 0..255 RGB (batch, 3, H, W), the form
            torch-fidelity's ``GenerativeModelONNX`` needs.

    Returns:
        An :class:`ExportInfo`: input size m_A, output shape and dtype, the metadata written.

    Raises:
        LatentdimError: missing or unreadable checkpoint, m_A = 0, ``uint8`` for a vector model,
            or an output path that cannot be written. No file is left at ``output`` on failure.
    """
    checkpoint = resolve_checkpoint(run_dir_or_checkpoint)
    check_output_path(Path(output))
    model, spec, state = load_checkpoint(checkpoint)
    return export_model(model, spec, state, Path(output), uint8=uint8)
