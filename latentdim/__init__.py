"""latentdim: how many latent dimensions does your data really have?

Trains a MaskAAE (an adversarial auto-encoder whose learnable mask switches spurious latent
dimensions off) and reports the active dimension m_A. See :func:`latentdim.estimate`.

The heavy parts (torch) are imported on first use, so ``latentdim sample`` runs where only
onnxruntime is installed.
"""

from typing import Any

from latentdim.errors import LatentdimError

__version__ = "0.1.0"

__all__ = ["EstimateResult", "LatentdimError", "__version__", "estimate"]


def __getattr__(name: str) -> Any:
    # PEP 562: `latentdim.estimate` imports the training stack only when it is asked for.
    if name in ("estimate", "EstimateResult"):
        from latentdim import api

        return getattr(api, name)
    raise AttributeError(f"module 'latentdim' has no attribute {name!r}")
