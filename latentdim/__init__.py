"""latentdim: how many latent dimensions does your data really have?

Trains a MaskAAE (an adversarial auto-encoder whose learnable mask switches spurious latent
dimensions off) and reports the active dimension m_A. See ``latentdim.estimate``.
"""

__version__ = "0.1.0"

from latentdim.api import EstimateResult, estimate  # noqa: E402
from latentdim.errors import LatentdimError  # noqa: E402

__all__ = ["EstimateResult", "LatentdimError", "__version__", "estimate"]
