"""Closing rules: how the open latent dimensions are closed once warm-up is over.

A rule is a small class behind one interface (:class:`ClosingRule`); the loop calls
:meth:`~ClosingRule.on_probe` at every probe step of the *close* and *hold* phases and
:meth:`~ClosingRule.after_observe` after the schedule has seen each step's mask. Its class
attributes tell :class:`~latentdim.training.schedule.MaskSchedule` whether the mask learns and the
pressure acts while it closes, and the output folder's room check how many copies of the networks
its state holds. Adding a rule: one class here and its entry in :data:`CLOSING_RULES` (making it
the default is :func:`latentdim.settings.for_data`'s choice).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from latentdim.models import MaskAAE
from latentdim.models.mask import ACTIVE_THRESHOLD, active_dims
from latentdim.training.codes import latent_layers
from latentdim.training.config import IMAGE_ELIMINATE_HOLD, TrainConfig
from latentdim.training.phases import Phase
from latentdim.training.probe import Probe
from latentdim.training.verify import Verification


class ClosingRule:
    """The interface. ``run`` is the loop's state (:class:`latentdim.training.loop.Run`): its
    ``model``, ``probe``, ``schedule``, ``networks()`` and ``roll_back()``."""

    name: ClassVar[str]
    mask_trains: ClassVar[bool]  # the mask takes its gradient update in the close phase
    pressure: ClassVar[bool]  # the closing pressure beta acts in the close phase (and polish follows)
    needs_budget: ClassVar[bool] = False
    snapshots: ClassVar[int] = 0  # copies of the networks its state (and so each checkpoint) holds

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.rounds: list[dict[str, Any]] = []  # what each closing round did (for reports)

    @classmethod
    def phase_length(cls, config: TrainConfig, hold: bool) -> int | None:
        """Length of the close (``hold`` False) or hold phase when known in advance, else None."""
        return None

    def on_probe(self, run: Any, step: int) -> None:
        """A probe step in the close or hold phase."""

    def after_observe(self, run: Any, step: int) -> None:
        """After the schedule saw this step's mask."""

    def verify_next(self, run: Any) -> None:
        """Between steps in the verify phase, which only a rule that enters it sees."""
        run.schedule.end_elimination(run.step)

    @property
    def verification(self) -> list[dict[str, Any]]:
        """The fresh verification's records (:mod:`latentdim.training.verify`); [] without one."""
        return []

    def state(self) -> dict[str, Any] | None:
        return None

    def load(self, state: dict[str, Any]) -> None:
        pass


class Pressure(ClosingRule):
    """The closing pressure: beta sum(mu) on the learned mask (docs/log/mask-dynamics.md). With a loss
    budget, the probe going over it freezes the mask for ``budget_hold`` steps (*hold*): closing
    resumes if the error is back within budget, else it ends and polish follows."""

    name, mask_trains, pressure = "pressure", True, True

    @classmethod
    def phase_length(cls, config: TrainConfig, hold: bool) -> int | None:
        return config.budget_hold if hold else None

    def on_probe(self, run: Any, step: int) -> None:
        if not self.config.loss_budget:
            return
        schedule = run.schedule
        over = run.probe.over_budget(run.model, step)
        if schedule.phase == Phase.CLOSE and over:
            schedule.hold(step)
        if schedule.phase == Phase.HOLD and step - schedule.phase_start >= self.config.budget_hold:
            if not over:
                schedule.resume_closing(step)
            else:
                schedule.end_closing(step)


#: Elimination sets every open dimension to this theta when it starts (mu = 1 - e^-5 = 0.993, the
#: top of SPEC §2's initial draw), so the draw no longer orders anything.
ELIMINATE_OPEN_THETA = 5.0


class Elimination(ClosingRule):
    """Closing by verified elimination (``TrainConfig.closing == "eliminate"``), the default.

    Why (docs/log/mask-dynamics.md): under the closing pressure the order in which dimensions close
    follows the initial mask draw (RMSProp moves every theta by about its learning rate a step,
    whatever it carries), and the polish then snaps half-open dimensions by their mu, not by what
    they carry. Here the order is set by need and every closure is checked once the networks have
    adapted: when warm-up ends, every open mu is set to 0.993 (the decoder's first layer
    compensates exactly); each round ramps to zero the ``k`` open dimensions whose removal costs
    the probe least, holds the mask ``eliminate_hold`` steps, and keeps the round if the probe's
    error is within the loss budget of its best; otherwise the networks are rolled back to the
    round's start and ``k`` is halved. A failed round of one dimension is tried again with the
    next-cheapest dimension ``eliminate_retries`` times; then closing ends.
    """

    name, mask_trains, pressure, needs_budget, snapshots = "eliminate", False, False, True, 1  # the round's start

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.hold_steps = self.phase_length(config, hold=True)
        self.started = False
        self.k = 0
        self.chosen: list[int] = []
        self.start_mu: list[float] = []
        self.values: list[float] = []  # probe errors in this round's hold
        self.failed: list[int] = []  # dims whose removal alone failed since the last kept round
        self.best = math.inf
        self.snapshot: dict[str, Any] | None = None
        self.check: Verification | None = None  # the fresh verification, once the rounds are over

    @classmethod
    def phase_length(cls, config: TrainConfig, hold: bool) -> int | None:
        return (config.eliminate_hold or IMAGE_ELIMINATE_HOLD) if hold else config.eliminate_ramp

    def on_probe(self, run: Any, step: int) -> None:
        """In a round's hold: record the probe; once the hold is over, the verdict (a refused
        round rolls the networks back and halves k) and the next round or the end."""
        schedule = run.schedule
        if schedule.phase != Phase.HOLD:
            return
        self.values.append(run.probe.measure(run.model))
        if step - schedule.phase_start < self.hold_steps or len(self.values) < self.config.probe_window:
            return
        if not self.verdict(run.probe.threshold, run.probe.r0):
            assert self.snapshot is not None
            run.roll_back(self.snapshot)
            self.k = max(1, self.k // 2)
        self.snapshot = None
        if self.exhausted():
            self.finish(run, step)
        else:
            schedule.next_round(step)

    def after_observe(self, run: Any, step: int) -> None:
        """Warm-up just ended: begin; in the close phase: choose a round's dims and ramp them."""
        schedule = run.schedule
        if schedule.phase not in (Phase.CLOSE, Phase.HOLD):
            return
        if not self.started:
            self.begin(run.model, run.probe)
        if schedule.phase == Phase.CLOSE and not self.chosen:
            if not self.start_round(run.model, run.probe, step, run.networks()):
                self.finish(run, step)
        if schedule.phase == Phase.CLOSE and self.ramp(run.model, step - schedule.phase_start):
            schedule.hold(step)

    @torch.no_grad()
    def begin(self, model: MaskAAE, probe: Probe) -> None:
        """End of warm-up: equalise the open mu (an exact reparametrisation), set the baseline."""
        _, dec = latent_layers(model)
        mu = model.mask()
        is_open = mu >= ACTIVE_THRESHOLD
        if not bool(is_open.any()):  # every draw below 0.1 (1 in 50 for one dim): keep the largest, m_A is never 0
            is_open = mu == mu.max()
        theta = torch.where(is_open, torch.full_like(mu, ELIMINATE_OPEN_THETA), torch.zeros_like(mu))
        new_mu = 1.0 - torch.exp(-theta)
        dec.weight *= torch.where(is_open, mu / new_mu, torch.ones_like(mu))  # column j: mu_j W_j = mu'_j W'_j
        model.mask.theta.copy_(theta)
        probe.noise = probe.warmup_noise()
        tail = probe.warmup_values[-self.config.probe_window :]
        self.best = float(np.median(tail)) if tail else probe.measure(model)
        self.k = max(1, int(int(is_open.sum()) * self.config.eliminate_fraction))
        self.started = True

    def start_round(self, model: MaskAAE, probe: Probe, step: int, snapshot: dict[str, Any]) -> bool:
        """Chooses the dims to close; False when nothing is left to try (one open dim)."""
        mu = model.mask().detach()
        open_dims = [j for j in range(mu.shape[0]) if float(mu[j]) >= ACTIVE_THRESHOLD]
        if len(open_dims) <= 1:
            return False
        self.k = min(self.k, max(1, int(len(open_dims) * self.config.eliminate_fraction)), len(open_dims) - 1)
        costs = probe.ablation_costs(model, open_dims)
        order = sorted((j for j in open_dims if j not in self.failed), key=lambda j: costs[j])
        if not order:
            return False
        self.chosen = order[: self.k]
        self.start_mu = [float(mu[j]) for j in self.chosen]
        self.values = []
        self.snapshot = snapshot
        self.rounds.append({"step": step, "open": len(open_dims), "k": self.k, "dims": list(self.chosen),
                            "ablation": [costs[j] for j in self.chosen]})
        return True

    @torch.no_grad()
    def ramp(self, model: MaskAAE, t: int) -> bool:
        """Sets the chosen dims' mu to start * (1 - t / ramp); True once they are at zero."""
        frac = min(1.0, t / max(1, self.config.eliminate_ramp))
        for j, mu0 in zip(self.chosen, self.start_mu):
            target = mu0 * (1.0 - frac)
            model.mask.theta[j] = -math.log1p(-target) if target > 0 else 0.0
        return frac >= 1.0

    def verdict(self, threshold: Callable[[float, float], float], r0: float) -> bool:
        """End of a round's hold: True to keep it (the median error is within budget).
        ``threshold(gap, best)`` is the probe's limit (:meth:`Probe.threshold`)."""
        current = float(np.median(self.values[-self.config.probe_window :]))
        limit = threshold(r0 - self.best, self.best)
        keep = current <= limit
        self.rounds[-1].update(error=current, limit=limit, allowance=limit - self.best, kept=keep)
        if keep:
            self.best = min(self.best, current)
            self.failed = []
        elif len(self.chosen) == 1:
            self.failed += self.chosen
        self.chosen, self.start_mu = [], []
        return keep

    def exhausted(self) -> bool:
        """True once a round of one dimension has failed and its retries are used up."""
        return len(self.failed) > self.config.eliminate_retries

    def finish(self, run: Any, step: int) -> None:
        """The rounds are over. With ``config.verify`` (and more than one dimension open) the
        verify phase follows: the fresh verification (:mod:`latentdim.training.verify`) closes
        the open dimensions that plain auto-encoders trained afresh show the data do not need.
        Then the networks adapt to the final mask (refine)."""
        m = len(active_dims(run.model.mask().detach()))
        if self.config.verify and (m > 1 or m < run.capacity):
            self.check = Verification(m)
            run.schedule.verify(step)
        else:
            run.schedule.end_elimination(step)

    def verify_next(self, run: Any) -> None:
        """The verify phase (between training steps): the fresh verification's next size; once
        it is over, the refine phase."""
        assert self.check is not None
        if self.check.step(run):
            run.schedule.end_elimination(run.step)

    @property
    def verification(self) -> list[dict[str, Any]]:
        """The fresh verification's records so far ([] before it or without it)."""
        return [] if self.check is None else self.check.records

    def state(self) -> dict[str, Any]:
        fields = ("started", "k", "chosen", "start_mu", "values", "failed", "best", "snapshot", "rounds")
        check = None if self.check is None else {"m": self.check.m, "records": [dict(r) for r in self.check.records]}
        return {**{f: getattr(self, f) for f in fields}, "check": check}

    def load(self, state: dict[str, Any]) -> None:
        for f, v in state.items():
            if f != "check":
                setattr(self, f, v)
        check = state.get("check")  # absent in checkpoints from before the fresh verification
        self.check = None if check is None else Verification(int(check["m"]), [dict(r) for r in check["records"]])


#: The closing rules by their ``TrainConfig.closing`` name (None reads as "pressure").
CLOSING_RULES: dict[str, type[ClosingRule]] = {rule.name: rule for rule in (Pressure, Elimination)}


def closing_rule_class(config: TrainConfig) -> type[ClosingRule]:
    """The rule ``config.closing`` names; ValueError for an unknown name."""
    name = config.closing or "pressure"
    if name not in CLOSING_RULES:
        raise ValueError(f"unknown closing {config.closing!r}")
    return CLOSING_RULES[name]
