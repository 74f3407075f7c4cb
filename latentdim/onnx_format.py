"""What an exported latentdim generator file holds: tensor names and metadata keys.

Shared by :mod:`latentdim.export` (writes the file, needs torch) and :mod:`latentdim.sample`
(reads it, must not need torch), so this module imports nothing heavier than :mod:`json`.

The metadata lives in the ONNX model's ``metadata_props``: every key starts with
:data:`PREFIX` and every value is JSON text, so numbers, lists and ``null`` round-trip exactly.
"""

from __future__ import annotations

import json
from typing import Any

from latentdim.errors import LatentdimError

#: Version of the layout below; a reader refuses files from a newer layout.
FORMAT_VERSION = 1
#: Prefix of every latentdim key in ``metadata_props``.
PREFIX = "latentdim."
#: Graph input: the active latent coordinates, float32 (batch, m_A), z ~ N(0, I).
INPUT_NAME = "z"
#: Graph output: data in the user's units, (batch, d) vectors or (batch, C, H, W) images.
OUTPUT_NAME = "x"

#: The keys an exported file carries (without the prefix), with what each value is.
KEYS = {
    "format_version": "int: FORMAT_VERSION of the writer",
    "version": "str: latentdim version that wrote the file",
    "m_active": "int: m_A, the input size of the graph",
    "capacity": "int: latent size m the model was trained with",
    "active": "list[int]: indices (into 0..m-1) of the active latent coordinates, in input order",
    "mask": "list[float]: all m final mask values mu",
    "use_mask": "bool: False for the WAE-GP baseline (mask fixed at one)",
    "preset": "str: architecture preset (SPEC §5)",
    "data_shape": "list[int]: shape of one output sample, (d,) or (C, H, W)",
    "output": "str: 'vectors' or 'images'",
    "output_dtype": "str: 'float32', or 'uint8' for 0..255 images (export --uint8)",
    "standardisation": "{'mean': [...], 'std': [...]} applied inside the graph (vectors), else null",
    "z_distribution": "str: 'normal', z ~ N(0, I_{m_A})",
    "seed": "int or null: training seed",
    "frechet_distance": "float or null: data-space Frechet distance of the trained model (vectors)",
    "fid": "float or null: FID of the trained model (images)",
}


def encode(values: dict[str, Any]) -> dict[str, str]:
    """Prefixes the keys and JSON-encodes the values, ready for ``metadata_props``."""
    return {PREFIX + key: json.dumps(value) for key, value in values.items()}


def decode(props: dict[str, str], source: str) -> dict[str, Any] | None:
    """The latentdim entries of ``metadata_props``, keys without prefix; None when there are none.

    Args:
        props: the model's metadata as a str -> str mapping.
        source: file name for error messages.

    Raises:
        LatentdimError: an entry is not JSON, or the file comes from a newer format.
    """
    values: dict[str, Any] = {}
    for key, text in props.items():
        if not key.startswith(PREFIX):
            continue
        try:
            values[key[len(PREFIX) :]] = json.loads(text)
        except json.JSONDecodeError as err:
            raise LatentdimError(f"{source} has malformed latentdim metadata in '{key}' ({err.msg})") from err
    if not values:
        return None
    version = values.get("format_version")
    if not isinstance(version, int):
        raise LatentdimError(f"{source} has latentdim metadata without a format version")
    if version > FORMAT_VERSION:
        raise LatentdimError(
            f"{source} was written in latentdim file format {version}, newer than this latentdim "
            f"reads ({FORMAT_VERSION}); upgrade latentdim"
        )
    return values
