"""Training: the loop (:mod:`.loop`), its phases and schedule (:mod:`.phases`, :mod:`.schedule`),
the closing rules (:mod:`.closing`), the held-out probe (:mod:`.probe`) and the settings
(:mod:`.config`). docs/design.md says how they fit together."""

from latentdim.training.closing import CLOSING_RULES, ELIMINATE_OPEN_THETA, ClosingRule, Elimination, Pressure
from latentdim.training.codes import model_input, restandardise_codes
from latentdim.training.config import (
    IMAGE_ELIMINATE_HOLD,
    IMAGE_LR_MASK,
    LAMBDA3_CAP,
    LOSS_BUDGET,
    NO_MASK_MAX_STEPS,
    VECTOR_ELIMINATE_HOLD,
    VECTOR_LR_MASK,
    TrainConfig,
    reference_r,
)
from latentdim.training.loop import StepStats, TrainOutcome, curves_array, history_array, train
from latentdim.training.phases import Phase
from latentdim.training.probe import Probe
from latentdim.training.schedule import MaskSchedule

__all__ = [
    "CLOSING_RULES", "ELIMINATE_OPEN_THETA", "IMAGE_ELIMINATE_HOLD", "IMAGE_LR_MASK", "LAMBDA3_CAP", "LOSS_BUDGET",
    "NO_MASK_MAX_STEPS", "VECTOR_ELIMINATE_HOLD", "VECTOR_LR_MASK", "ClosingRule", "Elimination", "MaskSchedule",
    "Phase", "Pressure", "Probe", "StepStats", "TrainConfig", "TrainOutcome", "curves_array", "history_array",
    "model_input", "reference_r", "restandardise_codes", "train",
]
