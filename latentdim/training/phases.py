"""The phases of training (:class:`MaskSchedule` moves between them)."""

from __future__ import annotations

from enum import Enum


class Phase(str, Enum):
    """Where training is; the value is what progress, curves and checkpoints show."""

    WARMUP = "warmup"  # mask frozen, every dim open, the auto-encoder learns
    CLOSE = "close"  # dims close (the closing rule says how)
    HOLD = "hold"  # mask frozen while a closing step is verified
    VERIFY = "verify"  # mask frozen while fresh auto-encoders check elimination's count (vectors)
    POLISH = "polish"  # the polariser snaps each mu to 0 or 1 (the pressure only)
    REFINE = "refine"  # mask frozen at the end while the networks adapt
    REFERENCE = "reference"  # the papers' schedule, one phase

    def __str__(self) -> str:
        return self.value

    __hash__ = str.__hash__  # so a str-keyed table ("warmup": ...) finds a Phase


#: The phases in which the mask takes no update whatever the closing rule.
FROZEN = (Phase.WARMUP, Phase.HOLD, Phase.VERIFY, Phase.REFINE)
