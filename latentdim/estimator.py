"""``latentdim.MaskAAE``: :func:`latentdim.estimate` as a scikit-learn style estimator, with the
conventions of scikit-dimension's global estimators (``fit(X)`` returns the estimator, the
estimate is ``dimension_``), so it drops into code written for ``skdim.id.TwoNN()`` and the like.

    >>> est = latentdim.MaskAAE(capacity=32).fit(X)          # doctest: +SKIP
    >>> est.dimension_, est.result_.settled                  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


class MaskAAE:
    """Estimates the latent dimension of ``X`` by training a MaskAAE (see :func:`latentdim.estimate`).

    Args:
        capacity: latent size to start from; choose it well above the dimension you expect.
        max_steps, batch_size: training length and batch (None: :class:`latentdim.TrainConfig`'s).
        seed: seeds initialisation and training (a CPU run repeats exactly).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        width: hidden-layer width override (small models for quick looks).
        baselines: also compute TwoNN, MLE and lPCA (in ``result_.baselines``).
        progress: show progress on stderr.

    Attributes (after :meth:`fit`):
        dimension_: the estimated latent dimension m_A (an int).
        result_: the full :class:`latentdim.EstimateResult` (mask, diagnostics, ``settled``, and
            ``encode`` / ``decode`` / ``sample`` with the trained model).
    """

    def __init__(
        self,
        capacity: int = 64,
        *,
        max_steps: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        device: str = "auto",
        width: int | None = None,
        baselines: bool = False,
        progress: bool = False,
    ) -> None:
        self.capacity = capacity
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.width = width
        self.baselines = baselines
        self.progress = progress

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (scikit-learn's ``clone`` and grid searches use these)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters if name != "self"}

    def set_params(self, **params: Any) -> MaskAAE:
        known = self.get_params()
        for name, value in params.items():
            if name not in known:
                raise ValueError(f"MaskAAE has no parameter {name!r}; it has: {', '.join(known)}")
            setattr(self, name, value)
        return self

    def fit(self, X: Any, y: Any = None) -> MaskAAE:  # noqa: N803 - scikit-learn's name
        """Trains on ``X`` (N, d) vectors or (N, H, W[, C]) / (N, C, H, W) images; ``y`` is ignored."""
        from latentdim.api import estimate

        self.result_ = estimate(
            X, self.capacity, max_steps=self.max_steps, batch_size=self.batch_size, seed=self.seed,
            device=self.device, width=self.width, baselines=self.baselines, progress=self.progress,
        )
        self.dimension_ = int(self.result_.m_active)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> int:  # noqa: N803
        """:meth:`fit` and return ``dimension_`` (scikit-dimension's convention)."""
        return self.fit(X).dimension_

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        """The codes of ``X`` on the active dimensions, (N, dimension_)."""
        if not hasattr(self, "result_"):
            from latentdim.errors import LatentdimError

            raise LatentdimError("this MaskAAE is not fitted yet; call fit(X) first")
        return self.result_.encode(X)

    def __repr__(self) -> str:
        defaults = {n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items() if n != "self"}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k]]
        return f"MaskAAE({', '.join(changed)})"
