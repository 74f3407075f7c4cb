"""The mask schedule: lambda3, beta, whether the mask trains, and the moves between phases."""

from __future__ import annotations

from typing import Any

from latentdim.training.closing import closing_rule_class
from latentdim.training.config import LAMBDA3_CAP, PRECISIONS, TrainConfig, compile_backend_problem, reference_r
from latentdim.training.phases import FROZEN, Phase


class MaskSchedule:
    """Decides lambda3 (polariser weight), beta (closing pressure), whether the mask trains, and
    when training is over.

    ``reference`` (SPEC §4): lambda3 = 2/m doubling every 4R steps up to 2048, no pressure; stop
    once no dimension is undecided and m_A has held for ``stable_window`` steps.

    ``latentdim`` (docs/design.md): *warmup* (``warmup_steps``, and with ``warmup_plateau`` until
    the probe has plateaued) with the mask frozen while the auto-encoder learns to use every latent
    coordinate; *close* and *hold*, whose meaning the closing rule gives
    (:mod:`latentdim.training.closing`: the pressure closes with beta in *close* and verifies a
    tripped budget in *hold*; elimination ramps a round's dims down in *close* and verifies it in
    *hold*); *polish* (the pressure only): beta is dropped and lambda3 doubles every
    ``polish_double_every`` steps until no dimension is undecided and m_A has held for
    ``stable_window`` steps; *refine* (``refine_steps``): the mask is frozen while the networks
    adapt to its final scale.
    """

    #: Attributes that a training-state checkpoint carries (``__init__`` sets the rest).
    FIELDS = ("phase", "phase_start", "last_m_active", "last_change", "plateaued")

    def __init__(self, config: TrainConfig, capacity: int, use_mask: bool = True) -> None:
        if config.schedule not in ("latentdim", "reference"):
            raise ValueError(f"unknown schedule {config.schedule!r}")
        if config.ae_optimiser not in (None, "rmsprop", "adam"):
            raise ValueError(f"unknown ae_optimiser {config.ae_optimiser!r}")
        if config.compile is not None and (problem := compile_backend_problem(config.compile)):
            raise ValueError(problem)
        if config.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {config.precision!r} (float32 or bfloat16)")
        if config.critic_update not in ("closed_form", "autograd"):
            raise ValueError(f"unknown critic_update {config.critic_update!r} (closed_form or autograd)")
        rule = closing_rule_class(config)  # also checks the name
        self.config = config
        self.lambda3_start = 2.0 / capacity
        self.lambda3_close = config.closing_polariser if config.closing_polariser is not None else self.lambda3_start
        self.double_every = 4 * reference_r(capacity)
        self.use_mask = use_mask
        if config.schedule == "reference":
            self.phase = Phase.REFERENCE
        else:
            self.phase = Phase.WARMUP if config.warmup_steps > 0 else Phase.CLOSE
        self.phase_start = 0
        self.plateaued = False  # set by the probe when warmup_plateau is on
        self.last_m_active: int | None = None
        self.last_change = 0
        self.rule = rule if config.schedule == "latentdim" else None

    @property
    def mask_frozen(self) -> bool:
        """True in the phases where the mask takes no update."""
        closing_frozen = self.phase == Phase.CLOSE and self.rule is not None and not self.rule.mask_trains
        return self.phase in FROZEN or closing_frozen

    def lambda3(self, step: int) -> float:
        """Polariser weight at ``step``."""
        if self.phase in (Phase.WARMUP, Phase.CLOSE, Phase.HOLD):
            return self.lambda3_close
        if self.phase == Phase.REFERENCE:
            doublings = step // self.double_every
            return min(LAMBDA3_CAP, self.lambda3_start * 2.0 ** min(doublings, 64))
        # polish (and refine, where the value only shows in the progress display)
        doublings = (step - self.phase_start) // self.config.polish_double_every + 1
        return min(LAMBDA3_CAP, self.lambda3_close * 2.0 ** min(doublings, 64))

    def beta(self) -> float:
        """Closing-pressure weight in the current phase."""
        pressure = self.phase == Phase.CLOSE and self.rule is not None and self.rule.pressure
        return self.config.closing_pressure if pressure else 0.0

    def steps_left(self, step: int) -> int | None:
        """Steps left in the current phase when its length is known (an upper bound for a warm-up
        that waits for a plateau), never past ``max_steps``; None for the phases that end on the
        mask (close under the pressure, polish, reference)."""
        cfg = self.config
        length = {
            Phase.WARMUP: cfg.max_warmup_steps if cfg.warmup_plateau else cfg.warmup_steps,
            Phase.REFINE: cfg.refine_steps,
        }.get(self.phase)
        if self.rule is not None and self.phase in (Phase.CLOSE, Phase.HOLD):
            length = self.rule.phase_length(cfg, self.phase == Phase.HOLD)
        if length is None:
            return None
        return max(0, min(length - (step - self.phase_start), cfg.max_steps - step))

    def _enter(self, phase: Phase, step: int) -> None:
        self.phase, self.phase_start = phase, step

    def end_closing(self, step: int) -> None:
        """Closing now costs more reconstruction than the budget allows: go on to polish."""
        if self.phase in (Phase.CLOSE, Phase.HOLD):
            self._enter(Phase.POLISH, step)

    def end_elimination(self, step: int) -> None:
        """Elimination is over (every mu is 0 or decided): the networks adapt to the final mask."""
        self._enter(Phase.REFINE, step)

    def verify(self, step: int) -> None:
        """Elimination's rounds are over: the fresh verification checks the count (mask frozen)."""
        self._enter(Phase.VERIFY, step)

    def next_round(self, step: int) -> None:
        """Elimination: a round ended; the next one starts closing."""
        self._enter(Phase.CLOSE, step)

    def hold(self, step: int) -> None:
        """Freeze the mask and verify what closing did."""
        self._enter(Phase.HOLD, step)

    def resume_closing(self, step: int) -> None:
        """The cost was a transient: close again; the hold does not count toward the settle window."""
        self.last_change += step - self.phase_start
        self._enter(Phase.CLOSE, step)

    def observe(self, step: int, m_active: int, undecided: int) -> bool:
        """Feeds the mask state after ``step`` steps; returns True when training is over."""
        if m_active != self.last_m_active:
            self.last_m_active, self.last_change = m_active, step
        held = step - self.last_change
        in_phase = step - self.phase_start
        cfg = self.config
        if not self.use_mask:
            return False  # nothing to settle: the WAE baseline trains to max_steps
        if self.phase == Phase.WARMUP:
            if in_phase >= cfg.warmup_steps and (not cfg.warmup_plateau or self.plateaued or in_phase >= cfg.max_warmup_steps):
                self._enter(Phase.CLOSE, step)
                self.last_change = step  # the settle window counts from here
            return False
        if self.phase == Phase.CLOSE:
            if held >= cfg.settle_window and self.rule is not None and self.rule.pressure:
                self._enter(Phase.POLISH, step)
            return False
        if self.phase in (Phase.HOLD, Phase.VERIFY):
            return False  # the closing rule decides
        if self.phase == Phase.REFINE:
            return in_phase >= cfg.refine_steps
        settled = undecided == 0 and held >= cfg.stable_window
        if self.phase == Phase.REFERENCE:
            return settled
        if settled and in_phase >= cfg.stable_window:  # polish
            if cfg.refine_steps <= 0:
                return True
            self._enter(Phase.REFINE, step)
        return False

    def state(self) -> dict[str, Any]:
        """What a checkpoint carries (the phase as its plain value)."""
        return {f: (str(v) if isinstance(v, Phase) else v) for f in self.FIELDS for v in [getattr(self, f)]}

    def load(self, state: dict[str, Any]) -> None:
        for f in self.FIELDS:
            setattr(self, f, state[f])
        self.phase = Phase(self.phase)
