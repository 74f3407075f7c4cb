"""Data for latentdim: HDF5 vectors, the built-in synthetic process (SPEC §6), validation."""

from latentdim.data.synthetic import make_synthetic
from latentdim.data.vectors import (
    Standardiser,
    VectorData,
    from_array,
    load_source,
    parse_synthetic_spec,
)

__all__ = [
    "Standardiser",
    "VectorData",
    "from_array",
    "load_source",
    "make_synthetic",
    "parse_synthetic_spec",
]
