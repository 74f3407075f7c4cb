"""The held-out probe: the reconstruction error that closing verdicts and the warm-up's plateau read."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from latentdim import losses
from latentdim.data.stream import BlockSampler
from latentdim.models import MaskAAE
from latentdim.training.codes import model_input
from latentdim.training.config import TrainConfig
from latentdim.training.distributed import World


class Probe:
    """The closing phase's loss budget: the reconstruction error on a fixed probe set (chosen with
    its own seeded generator, so torch's random stream is untouched), in eval mode.

    ``over_budget`` is True once the median of the last ``probe_window`` probes exceeds the best
    median of the closing phase by ``loss_budget * (r0 - best)``, where ``r0`` is the error of
    reconstructing every probe sample as the probe mean (a model that keeps no information).
    """

    def __init__(self, data: torch.Tensor, config: TrainConfig, kind: str, world: World | None = None) -> None:
        self.world = world or World()  # several ranks: each error is rank 0's number
        n = data.shape[0]
        rows = np.sort(np.random.default_rng(0).choice(n, size=min(n, config.probe_samples), replace=False))
        self.x = data.take(rows) if isinstance(data, BlockSampler) else model_input(data[torch.from_numpy(rows).to(data.device)])
        self.kind, self.config = kind, config
        mean = self.x.mean(0, keepdim=True).expand_as(self.x)
        if kind == "bce":
            mean = torch.logit(mean.clamp(1e-6, 1 - 1e-6))  # the loss takes logits
        self.r0 = float(losses.reconstruction(mean, self.x, kind))
        self.values: list[float] = []  # closing phase
        self.warmup_values: list[float] = []
        self.best = math.inf
        self.noise: float | None = None  # the probe's noise, from the end of warm-up

    def _codes(self, model: MaskAAE) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(masked codes, images) of the probe set in batches of 256 (call under no_grad, eval)."""
        mu = model.mask()
        return [(mu * model.encoder(xb), xb) for xb in self.x.split(256)]

    def _error(self, model: MaskAAE, codes: list[tuple[torch.Tensor, torch.Tensor]], drop: int | None = None) -> float:
        """Mean reconstruction error over the probe set from ``codes``, code ``drop`` set to 0."""
        total = 0.0
        for z, xb in codes:
            if drop is not None:
                z = z.clone()
                z[:, drop] = 0.0
            total += float(losses.reconstruction(model.decoder(z), xb, self.kind)) * len(xb)
        return self.world.agree(total / len(self.x), self.x.device)

    @torch.no_grad()
    def measure(self, model: MaskAAE) -> float:
        """The reconstruction error on the probe set, in eval mode."""
        was_training = model.training
        model.eval()
        error = self._error(model, self._codes(model))
        model.train(was_training)
        return error

    def plateaued(self, model: MaskAAE) -> bool:
        """Warm-up: True once the median error improved by less than ``plateau_tolerance`` of the
        gap to r0 over the last ``plateau_window`` steps."""
        cfg = self.config
        self.warmup_values.append(self.measure(model))
        lag = cfg.plateau_window // cfg.probe_every
        if len(self.warmup_values) < lag + cfg.probe_window:
            return False
        now = float(np.median(self.warmup_values[-cfg.probe_window :]))
        then = float(np.median(self.warmup_values[-lag - cfg.probe_window : -lag]))
        return then - now < cfg.plateau_tolerance * (self.r0 - now)

    def warmup_noise(self) -> float:
        """Robust standard deviation of one probe around the trend: the MAD of the differences of
        successive warm-up probes (the last plateau_window of them) over sqrt(2); 0 with too few."""
        tail = np.asarray(self.warmup_values[-(self.config.plateau_window // self.config.probe_every) - 1 :])
        if len(tail) < 6:
            return 0.0
        diff = np.diff(tail)
        return float(1.4826 * np.median(np.abs(diff - np.median(diff))) / math.sqrt(2))

    def over_budget(self, model: MaskAAE, step: int) -> bool:
        if self.noise is None:
            self.noise = self.warmup_noise()
        self.values.append(self.measure(model))
        window = self.values[-self.config.probe_window :]
        if len(window) < self.config.probe_window:
            return False
        current = float(np.median(window))
        self.best = min(self.best, current)
        gap = self.r0 - self.best  # what the code explains; <= 0: nothing yet, no budget to spend
        return gap > 0 and current > self.threshold(gap)

    def threshold(self, gap: float, best: float | None = None) -> float:
        best = self.best if best is None else best
        return best + max((self.config.loss_budget or 0.0) * gap, self.config.budget_noise * (self.noise or 0.0))

    @torch.no_grad()
    def ablation_costs(self, model: MaskAAE, dims: list[int]) -> dict[int, float]:
        """How much the probe error rises when each of ``dims`` alone is set to zero (eval mode)."""
        was_training = model.training
        model.eval()
        codes = self._codes(model)
        base = self._error(model, codes)
        costs = {j: self._error(model, codes, drop=j) - base for j in dims}
        model.train(was_training)
        return costs

    def state(self) -> dict[str, Any]:
        return {"values": list(self.values), "warmup_values": list(self.warmup_values), "best": self.best,
                "noise": self.noise}

    def load(self, state: dict[str, Any]) -> None:
        self.values, self.best = list(state["values"]), float(state["best"])
        self.warmup_values = list(state.get("warmup_values", []))
        self.noise = state.get("noise")
