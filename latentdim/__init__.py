"""latentdim: how many latent dimensions does your data really have?

Trains a MaskAAE (an adversarial auto-encoder whose learnable mask switches spurious latent
dimensions off) and reports the active dimension m_A. See :func:`latentdim.estimate`.

The heavy parts (torch) are imported on first use, so ``latentdim sample`` runs where only
onnxruntime is installed.
"""

from typing import Any

from latentdim._version import __version__
from latentdim.errors import LatentdimError

__all__ = ["EstimateResult", "LatentdimError", "MaskAAE", "TrainConfig", "__version__", "estimate"]


#: Names :func:`__getattr__` imports from :mod:`latentdim.api` on first use.
_LAZY = ("EstimateResult", "TrainConfig", "estimate")


def __getattr__(name: str) -> Any:
    # PEP 562: `latentdim.estimate` imports the training stack only when it is asked for.
    if name == "MaskAAE":  # the scikit-learn style estimator, not the torch module of latentdim.models
        from latentdim.estimator import MaskAAE

        return MaskAAE
    if name in _LAZY:
        from latentdim import api

        return getattr(api, name)
    raise AttributeError(f"module 'latentdim' has no attribute {name!r}")


def __dir__() -> list[str]:
    # PEP 562: dir() and tab completion list the lazy names too, without importing torch.
    return sorted({*globals(), *_LAZY, "MaskAAE"})
