"""The MaskAAE training loop (SPEC §4) and latentdim's mask schedule.

One step is: 1 auto-encoder update, ``critic_steps`` critic updates, 1 generator (encoder)
update and 1 mask update, each on a fresh batch, in that order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from latentdim import losses
from latentdim.models import MaskAAE, count_active, count_undecided
from latentdim.models.mask import ACTIVE_THRESHOLD
from latentdim.optim import TF1RMSprop

LAMBDA3_CAP = 2048.0  # SPEC §4
NO_MASK_MAX_STEPS = 10_000  # step budget of the --no-mask baseline, which has no mask to settle
LOSS_BUDGET = 0.02  # latentdim.estimate's loss budget (TrainConfig.loss_budget)
IMAGE_ELIMINATE_HOLD, VECTOR_ELIMINATE_HOLD = 1000, 500  # TrainConfig.eliminate_hold chosen by estimate
VECTOR_LR_MASK = 4e-3  # SPEC §4 says 5e-4; 8x faster closes as surely in a fraction of the steps
IMAGE_LR_MASK = 1e-3  # images: a slower wave, so the loss budget's lag costs fewer dimensions


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run.

    The defaults are latentdim's schedule (docs/mask-dynamics.md); :meth:`reference` gives the
    papers' (SPEC §4).
    """

    batch_size: int = 64  # SPEC §4
    lr_ae: float = 5e-4  # SPEC §4
    lr_critic: float = 1e-4  # SPEC §4
    lr_generator: float = 1e-4  # SPEC §4
    # Mask learning rate. None: chosen from the data by latentdim.estimate (IMAGE_LR_MASK for images,
    # VECTOR_LR_MASK for vectors; train() itself reads None as VECTOR_LR_MASK); docs/mask-dynamics.md.
    lr_mask: float | None = None
    critic_steps: int = 5  # critic updates per step (SPEC §4)
    # Optimiser of the auto-encoder update: "rmsprop" (SPEC §4, TF1 semantics) or "adam" (PyTorch's,
    # betas 0.9 / 0.999). None: chosen from the data by latentdim.estimate ("adam" for vectors: a
    # 5-code fit of a curved 4-dim manifold reaches a third of RMSProp's error in 10,000 steps, and
    # closing verdicts compare adapted errors; "rmsprop" for images, as validated); train() itself
    # reads None as "rmsprop". docs/accuracy.md.
    ae_optimiser: str | None = None
    # "mse" for standardised vectors, "bce" for images in [0, 1]; None: chosen from the data by
    # latentdim.estimate (train() itself reads None as "mse").
    reconstruction: str | None = None
    schedule: str = "latentdim"  # "latentdim" (closing pressure, then polariser) or "reference" (SPEC §4)
    warmup_steps: int = 500  # latentdim schedule: mask frozen while the auto-encoder starts
    closing_pressure: float = 5.0  # beta of the closing phase (latentdim schedule only)
    # lambda3 during warm-up and closing (None: 2/m, SPEC §4's start). Half of beta: the net push
    # on a fully open dim is half that on a half-open one, which stops the open mu drifting down
    # until a needed dim falls below 0.1 (docs/mask-dynamics.md).
    closing_polariser: float | None = 2.5
    settle_window: int = 1500  # closing phase ends once m_A is unchanged for this many steps
    # ... or once closing costs reconstruction: the held-out reconstruction error (a fixed probe
    # set, every probe_every steps, median of the last probe_window) has risen above its best value
    # of the phase by this fraction of the gap between the no-information reconstruction (every
    # sample reconstructed as the data mean) and that best value. None: chosen from the data by
    # latentdim.estimate (LOSS_BUDGET); 0: off. docs/accuracy.md says why one budget serves
    # vectors and images; docs/mask-dynamics.md ("Natural images") has the image measurements.
    loss_budget: float | None = None
    # ... and never by less than this many times the probe's own step-to-step noise, measured over
    # the last plateau_window of warm-up: where the code explains little (a smooth spot on a dark
    # background), 2% of the gap is below the noise of training and the budget tripped on noise.
    budget_noise: float = 3.0
    # When the budget trips, first hold the mask still this many steps: closing a dimension the
    # data do not need costs reconstruction only until the networks adapt (a transient), closing a
    # needed one costs it for good. Closing resumes if the error is back within budget. 0: no hold.
    # (The closing pressure's trips; elimination rounds hold eliminate_hold steps.)
    budget_hold: int = 500
    # How dimensions close: "pressure" (the closing pressure beta on every mu, the mask learned) or
    # "eliminate" (needs a loss budget): rounds that each ramp the k dims whose removal costs the
    # probe least down to zero over eliminate_ramp steps, hold eliminate_hold steps, and keep the
    # round only if the error is still within budget, else roll the networks back to the round's
    # start and halve k; a failed round of one is retried with the next-cheapest dimension
    # eliminate_retries times (the cheapest at once is not always the cheapest once the networks
    # adapt), then closing ends. None: chosen by latentdim.estimate ("eliminate" with a loss budget).
    closing: str | None = None
    eliminate_ramp: int = 250
    eliminate_fraction: float = 0.25  # a round closes at most this share of the open dims (>= 1)
    eliminate_retries: int = 1
    # A round's hold. None: chosen from the data by latentdim.estimate (IMAGE_ELIMINATE_HOLD, since
    # a spurious dimension of an image can take more than 500 steps to be absorbed: rendered
    # blob-size with 500 ended one too high on seeds 0 and 1, with 1000 right; VECTOR_ELIMINATE_HOLD
    # for vectors, whose Adam-trained auto-encoder adapts faster: the same m_A as 1000 on 19 of 24
    # benchmark manifolds in 40% fewer steps, docs/accuracy.md). train() reads None as 1000.
    eliminate_hold: int | None = None
    # Warm-up lasts at least warmup_steps and, when True, until the probe's reconstruction has
    # plateaued: improved by less than plateau_tolerance of the gap over the last plateau_window
    # steps (at most max_warmup_steps). None: chosen by latentdim.estimate (on).
    warmup_plateau: bool | None = None
    plateau_window: int = 1000
    plateau_tolerance: float = 0.01
    max_warmup_steps: int = 20000
    probe_every: int = 50
    probe_samples: int = 1024
    probe_window: int = 5
    polish_double_every: int = 50  # polish phase: lambda3 doubles this often (steps)
    stable_window: int = 500  # polish ends once no dim is undecided and m_A is unchanged this long
    refine_steps: int = 1000  # latentdim schedule: mask frozen at the end while the networks adapt
    max_steps: int = 50000  # hard limit on steps (Fashion-MNIST at width 64 closed by 36,000)
    history_every: int = 50  # record the mask every this many steps
    restandardise_every: int = 100  # refine phase: re-standardise the codes this often (0 = never)

    @classmethod
    def reference(cls, **overrides: Any) -> TrainConfig:
        """The papers' method: mask rate 5e-4, no closing pressure, lambda3 doubling every 4R steps."""
        values = dict(
            lr_mask=5e-4, ae_optimiser="rmsprop", schedule="reference", closing_pressure=0.0, closing_polariser=None, max_steps=500_000,
            warmup_steps=0, refine_steps=0, restandardise_every=0,
        )
        return cls(**{**values, **overrides})


def reference_r(capacity: int) -> int:
    """SPEC §4: R = 75 if m <= 20 else min(10000, floor(1125 m / 10)); lambda3 doubles every 4R."""
    return 75 if capacity <= 20 else min(10000, (1125 * capacity) // 10)


class MaskSchedule:
    """Decides lambda3 (polariser weight), beta (closing pressure), whether the mask trains, and
    when training is over.

    ``reference`` (SPEC §4): lambda3 = 2/m doubling every 4R steps up to 2048, no pressure; stop
    once no dimension is undecided and m_A has held for ``stable_window`` steps.

    ``latentdim`` runs four phases, five with a loss budget (docs/mask-dynamics.md):

    - *warmup* (``warmup_steps``): the mask is frozen while the auto-encoder learns to use every
      latent coordinate, so the pressure does not close a dimension before it was ever used;
    - *close*: the closing pressure beta acts, lambda3 stays small, until m_A has not changed for
      ``settle_window`` steps;
    - *hold* (with a loss budget): when the budget trips, the mask is frozen for
      ``budget_hold`` steps; closing resumes if the error comes back within budget, else ends;
    - *polish*: beta is dropped and lambda3 doubles every ``polish_double_every`` steps so the
      polariser snaps each mu to 0 or 1, until no dimension is undecided and m_A has held for
      ``stable_window`` steps;
    - *refine* (``refine_steps``): the mask is frozen again while the networks adapt to its final
      scale, which the pressure had shrunk; this is what generation quality needs.

    With ``closing="eliminate"`` (images by default) close and hold are instead the two halves of
    each elimination round (:class:`_Elimination`: the mask is set, not trained, in both), and the
    last round goes straight to refine, every mu being 0 or 0.993 already.
    """

    def __init__(self, config: TrainConfig, capacity: int, use_mask: bool = True) -> None:
        if config.schedule not in ("latentdim", "reference"):
            raise ValueError(f"unknown schedule {config.schedule!r}")
        if config.closing not in (None, "pressure", "eliminate"):
            raise ValueError(f"unknown closing {config.closing!r}")
        if config.ae_optimiser not in (None, "rmsprop", "adam"):
            raise ValueError(f"unknown ae_optimiser {config.ae_optimiser!r}")
        self.config = config
        self.lambda3_start = 2.0 / capacity
        self.lambda3_close = config.closing_polariser if config.closing_polariser is not None else self.lambda3_start
        self.double_every = 4 * reference_r(capacity)
        self.use_mask = use_mask
        if config.schedule == "reference":
            self.phase = "reference"
        else:
            self.phase = "warmup" if config.warmup_steps > 0 else "close"
        self.phase_start = 0
        self.plateaued = False  # set by the probe when warmup_plateau is on
        self.last_m_active: int | None = None
        self.last_change = 0
        self.eliminate = config.closing == "eliminate" and config.schedule == "latentdim"

    @property
    def mask_frozen(self) -> bool:
        """True in the phases where the mask takes no update."""
        return self.phase in ("warmup", "hold", "refine") or (self.eliminate and self.phase == "close")

    def lambda3(self, step: int) -> float:
        """Polariser weight at ``step``."""
        if self.phase in ("warmup", "close", "hold"):
            return self.lambda3_close
        if self.phase == "reference":
            doublings = step // self.double_every
            return min(LAMBDA3_CAP, self.lambda3_start * 2.0 ** min(doublings, 64))
        # polish (and refine, where the value only shows in the progress display)
        doublings = (step - self.phase_start) // self.config.polish_double_every + 1
        return min(LAMBDA3_CAP, self.lambda3_close * 2.0 ** min(doublings, 64))

    def beta(self) -> float:
        """Closing-pressure weight in the current phase."""
        return self.config.closing_pressure if self.phase == "close" and not self.eliminate else 0.0

    def steps_left(self, step: int, hold_steps: int) -> int | None:
        """Steps left in the current phase when its length is known (an upper bound for a warm-up
        that waits for a plateau), never past ``max_steps``; None for the phases that end on the
        mask (close under the pressure, polish, reference)."""
        cfg = self.config
        length = {
            "warmup": cfg.max_warmup_steps if cfg.warmup_plateau else cfg.warmup_steps,
            "close": cfg.eliminate_ramp if self.eliminate else None,
            "hold": hold_steps if self.eliminate else cfg.budget_hold,
            "refine": cfg.refine_steps,
        }.get(self.phase)
        if length is None:
            return None
        return max(0, min(length - (step - self.phase_start), cfg.max_steps - step))

    def _enter(self, phase: str, step: int) -> None:
        self.phase, self.phase_start = phase, step

    def end_closing(self, step: int) -> None:
        """Closing now costs more reconstruction than the budget allows: go on to polish."""
        if self.phase in ("close", "hold"):
            self._enter("polish", step)

    def end_elimination(self, step: int) -> None:
        """Elimination is over (every mu is 0 or decided): the networks adapt to the final mask."""
        self._enter("refine", step)

    def next_round(self, step: int) -> None:
        """Elimination: a round ended; the next one starts closing."""
        self._enter("close", step)

    def hold(self, step: int) -> None:
        """The budget tripped: freeze the mask and see whether the cost lasts."""
        self._enter("hold", step)

    def resume_closing(self, step: int) -> None:
        """The cost was a transient: close again; the hold does not count toward the settle window."""
        self.last_change += step - self.phase_start
        self._enter("close", step)

    def observe(self, step: int, m_active: int, undecided: int) -> bool:
        """Feeds the mask state after ``step`` steps; returns True when training is over."""
        if m_active != self.last_m_active:
            self.last_m_active, self.last_change = m_active, step
        held = step - self.last_change
        in_phase = step - self.phase_start
        cfg = self.config
        if not self.use_mask:
            return False  # nothing to settle: the WAE baseline trains to max_steps
        if self.phase == "warmup":
            if in_phase >= cfg.warmup_steps and (not cfg.warmup_plateau or self.plateaued or in_phase >= cfg.max_warmup_steps):
                self._enter("close", step)
                self.last_change = step  # the settle window counts from here
            return False
        if self.phase == "close":
            if held >= cfg.settle_window and not self.eliminate:
                self._enter("polish", step)
            return False
        if self.phase == "hold":
            return False  # the probe decides (train)
        if self.phase == "refine":
            return in_phase >= cfg.refine_steps
        settled = undecided == 0 and held >= cfg.stable_window
        if self.phase == "reference":
            return settled
        if settled and in_phase >= cfg.stable_window:  # polish
            if cfg.refine_steps <= 0:
                return True
            self._enter("refine", step)
        return False


@dataclass
class StepStats:
    """What the progress display shows after a step."""

    step: int
    reconstruction: float
    wasserstein: float
    m_active: int
    undecided: int
    lambda3: float
    beta: float
    phase: str
    # steps this phase has left, when its length is known (an elimination round's ramp and hold,
    # refine); for a warm-up that waits for a plateau, at most this many; None when unknown
    phase_left: int | None = None


@dataclass
class TrainOutcome:
    """What training produced besides the model weights."""

    steps: int
    seconds: float
    stop_reason: str  # "settled", "max_steps" or "interrupted"
    last: StepStats | None
    history_steps: list[int] = field(default_factory=list)
    history_mask: list[list[float]] = field(default_factory=list)
    # the training curves at the same steps: the auto-encoder's reconstruction loss and the
    # critic's W, each the mean over the steps since the previous point, and the phase there
    history_rec: list[float] = field(default_factory=list)
    history_w: list[float] = field(default_factory=list)
    history_phase: list[str] = field(default_factory=list)
    # closing="eliminate": each round's step, open dims, k, dims tried, their ablation costs, the
    # error after the hold, the limit and whether the round was kept
    closing_rounds: list[dict[str, Any]] = field(default_factory=list)
    # stop_reason "max_steps" with on_checkpoint: the training state at the limit, from which a
    # run with a larger max_steps continues as if it had not stopped
    state: dict[str, Any] | None = None


def _latent_layers(model: MaskAAE) -> tuple[nn.Linear, nn.Linear]:
    """The encoder's last linear layer (-> codes) and the decoder's first (codes ->)."""
    enc = [mod for mod in model.encoder.modules() if isinstance(mod, nn.Linear)][-1]
    dec = [mod for mod in model.decoder.modules() if isinstance(mod, nn.Linear)][0]
    m = model.mask.theta.shape[0]
    if enc.out_features != m or dec.in_features != m:
        raise ValueError("the encoder must end and the decoder start with a linear layer of the latent size")
    return enc, dec


@torch.no_grad()
def restandardise_codes(model: MaskAAE, x: torch.Tensor, min_mu: float = 0.1) -> None:
    """Rescales each active latent coordinate to zero mean and unit variance over ``x``, and
    compensates in the decoder's first layer, so reconstructions are unchanged.

    Why: while the closing pressure shrinks the mask, the auto-encoder update (rate 5e-4, weight of
    the reconstruction) grows the codes by 1/mu to keep reconstructing, faster than the generator
    update (rate 1e-4) pulls them back to the N(0, I) prior; W then rises and generation suffers.
    This exact reparametrisation removes that mismatch of the first two moments:
    E'_j = (E_j - m_j) / s_j, W'_d[:, j] = s_j W_d[:, j], b'_d = b_d + W_d (mu * m).
    Dimensions with mu < ``min_mu`` are left alone: their variance penalty is removing them.

    Args:
        model: the model, changed in place.
        x: a batch of training data (n, ...), n >= 2.
    """
    enc, dec = _latent_layers(model)
    was_training = model.training
    model.eval()  # use running statistics, not this batch's, in any batch norm
    codes = model.encoder(x)
    model.train(was_training)
    mu = model.mask()
    mean, std = codes.mean(0), codes.std(0)
    keep = (mu >= min_mu) & (std > 1e-6)
    scale = torch.where(keep, std, torch.ones_like(std))
    shift = torch.where(keep, mean, torch.zeros_like(mean))
    dec.bias += dec.weight @ (mu * shift)
    dec.weight *= scale  # column j scaled by s_j
    enc.weight /= scale[:, None]
    enc.bias.sub_(shift).div_(scale)


def model_input(x: torch.Tensor) -> torch.Tensor:
    """Training data as the model sees it: uint8 images (the compact cache) become floats in [0, 1];
    float data passes through."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def _update(opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter]) -> None:
    # autograd.grad w.r.t. exactly these parameters: other networks on the path get no stray grads.
    grads = torch.autograd.grad(loss, params)
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()


#: Schedule attributes that a training-state checkpoint carries (MaskSchedule.__init__ sets the rest).
_SCHEDULE_FIELDS = ("phase", "phase_start", "last_m_active", "last_change", "plateaued")


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _cpu_copy(value: Any) -> Any:
    """A deep copy with every tensor cloned to the CPU (so later updates cannot change it)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return value


def _all_finite(params: list[nn.Parameter]) -> bool:
    return bool(torch.stack([p.detach().isfinite().all() for p in params]).all())


class _Probe:
    """The closing phase's loss budget: the reconstruction error on a fixed probe set (chosen with
    its own seeded generator, so torch's random stream is untouched), in eval mode.

    ``over_budget`` is True once the median of the last ``probe_window`` probes exceeds the best
    median of the closing phase by ``loss_budget * (r0 - best)``, where ``r0`` is the error of
    reconstructing every probe sample as the probe mean (a model that keeps no information).
    """

    def __init__(self, data: torch.Tensor, config: TrainConfig, kind: str) -> None:
        n = data.shape[0]
        rows = np.sort(np.random.default_rng(0).choice(n, size=min(n, config.probe_samples), replace=False))
        self.x = model_input(data[torch.from_numpy(rows).to(data.device)])
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
        return total / len(self.x)

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


#: Elimination sets every open dimension to this theta when it starts (mu = 1 - e^-5 = 0.993, the
#: top of SPEC §2's initial draw), so the draw no longer orders anything.
ELIMINATE_OPEN_THETA = 5.0


class _Elimination:
    """Closing by verified elimination (``TrainConfig.closing == "eliminate"``), used for images.

    Why (docs/mask-dynamics.md): under the closing pressure the order in which dimensions close
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

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.started = False
        self.k = 0
        self.chosen: list[int] = []
        self.start_mu: list[float] = []
        self.values: list[float] = []  # probe errors in this round's hold
        self.failed: list[int] = []  # dims whose removal alone failed since the last kept round
        self.best = math.inf
        self.snapshot: dict[str, Any] | None = None
        self.rounds: list[dict[str, Any]] = []  # what each round did (for reports and docs)

    @torch.no_grad()
    def begin(self, model: MaskAAE, probe: _Probe) -> None:
        """End of warm-up: equalise the open mu (an exact reparametrisation), set the baseline."""
        _, dec = _latent_layers(model)
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

    def start_round(self, model: MaskAAE, probe: _Probe, step: int, snapshot: dict[str, Any]) -> bool:
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
        ``threshold(gap, best)`` is the probe's limit (:meth:`_Probe.threshold`)."""
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

    def state(self) -> dict[str, Any]:
        fields = ("started", "k", "chosen", "start_mu", "values", "failed", "best", "snapshot", "rounds")
        return {f: getattr(self, f) for f in fields}

    def load(self, state: dict[str, Any]) -> None:
        for f, v in state.items():
            setattr(self, f, v)


def train(
    model: MaskAAE,
    data: torch.Tensor,
    config: TrainConfig,
    on_step: Callable[[StepStats], None] | None = None,
    report_every: int = 25,
    should_stop: Callable[[], bool] | None = None,
    resume: dict[str, Any] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_steps: int | None = None,
    checkpoint_seconds: float | None = None,
) -> TrainOutcome:
    """Trains ``model`` in place on ``data`` with the loop of SPEC §4.

    Args:
        model: a freshly built MaskAAE on the same device as ``data`` (or, with ``resume``, one
            of the same spec; its weights are replaced by the saved ones).
        data: training samples (N, ...) already scaled for the model: standardised vectors, or
            images as uint8 (converted to [0, 1] batch by batch) or floats in [0, 1]; N must be at
            least one batch.
        config: hyper-parameters and schedule.
        on_step: called with the latest statistics every ``report_every`` steps and at the end.
        report_every: how often ``on_step`` is called.
        should_stop: polled after every step; True ends training early ("interrupted"); the
            training state at that step is then passed to ``on_checkpoint``.
        resume: a training state from ``on_checkpoint`` to continue from. On the CPU the
            continued run is step for step the run that was not interrupted.
        on_checkpoint: receives the full training state (weights, the four optimiser states,
            schedule, step, random-number state, mask history; tensors on the CPU) every
            ``checkpoint_steps`` steps and/or ``checkpoint_seconds`` seconds, and when
            interrupted.
        checkpoint_steps, checkpoint_seconds: how often to checkpoint (None: never on that count).

    Returns:
        The step count, wall time, why training stopped ("settled", "max_steps", "interrupted"
        or "diverged"), the last statistics and the mask history.

    Divergence: a non-finite loss or parameter after a step rolls everything back to the last
    checkpointed state (in memory; the start of training if there was none) and training
    continues with all learning rates halved; a second divergence stops it ("diverged").

    Randomness comes from torch's global generator: seed it before building the model.
    """
    enc, dec, critic, mask = model.encoder, model.decoder, model.critic, model.mask
    capacity = mask.theta.shape[0]
    ae_params = list(enc.parameters()) + list(dec.parameters())
    enc_params, critic_params = list(enc.parameters()), list(critic.parameters())
    all_params = list(model.parameters())
    optimisers = {
        "ae": torch.optim.Adam(ae_params, lr=config.lr_ae) if config.ae_optimiser == "adam" else TF1RMSprop(ae_params, lr=config.lr_ae),
        "critic": TF1RMSprop(critic_params, lr=config.lr_critic),
        "generator": TF1RMSprop(enc_params, lr=config.lr_generator),
    }
    if mask.enabled:
        optimisers["mask"] = TF1RMSprop([mask.theta], lr=config.lr_mask or VECTOR_LR_MASK)
    opt_ae, opt_critic, opt_gen = optimisers["ae"], optimisers["critic"], optimisers["generator"]
    opt_mask = optimisers.get("mask")
    schedule = MaskSchedule(config, capacity, use_mask=mask.enabled)
    rec_kind = config.reconstruction or "mse"
    hold_steps = config.eliminate_hold or IMAGE_ELIMINATE_HOLD

    n, s = data.shape[0], config.batch_size
    device = data.device

    def batch(size: int = s) -> torch.Tensor:
        return model_input(data[torch.randint(n, (size,), device=device)])

    def prior(mu: torch.Tensor) -> torch.Tensor:
        return mu * torch.randn(s, capacity, device=device)

    outcome = TrainOutcome(steps=0, seconds=0.0, stop_reason="max_steps", last=None)
    step, seconds_before, retries = 0, 0.0, 0
    curve_sums: list[Any] = [0.0, 0.0, 0]  # reconstruction and W summed since the last history point, and the count
    probing = bool(config.loss_budget) or bool(config.warmup_plateau)
    probe = _Probe(data, config, rec_kind) if probing and mask.enabled and config.schedule == "latentdim" else None
    elim = None
    if schedule.eliminate and mask.enabled:
        if probe is None or not config.loss_budget:
            raise ValueError("closing='eliminate' needs a loss budget (TrainConfig.loss_budget > 0)")
        elim = _Elimination(config)

    def capture() -> dict[str, Any]:
        return networks() | _cpu_copy({
            "step": step,
            "schedule": {f: getattr(schedule, f) for f in _SCHEDULE_FIELDS},
            "rng": _rng_state(device),
            "history_steps": list(outcome.history_steps),
            "history_mask": [list(row) for row in outcome.history_mask],
            "history_curves": {"rec": list(outcome.history_rec), "w": list(outcome.history_w),
                               "phase": list(outcome.history_phase), "sums": list(curve_sums)},
            "seconds": seconds_before + time.perf_counter() - start,
            "retries": retries,
            "probe": None if probe is None else probe.state(),
            "elimination": None if elim is None else elim.state(),
        })

    def networks() -> dict[str, Any]:
        """Weights and optimiser states: what an elimination round rolls back to, and part of
        every training-state capture."""
        return _cpu_copy({"model": model.state_dict(), "optimisers": {k: o.state_dict() for k, o in optimisers.items()}})

    def roll_back(saved: dict[str, Any]) -> None:
        """Weights and optimiser states back to ``saved`` (an elimination round's start, or a
        checkpoint by ``restore``)."""
        model.load_state_dict(saved["model"])
        for name, opt in optimisers.items():
            opt.load_state_dict(saved["optimisers"][name])

    def restore(state: dict[str, Any]) -> None:
        nonlocal step, retries
        if set(state["optimisers"]) != set(optimisers):
            raise ValueError("the saved optimiser states do not match this model (mask on/off)")
        roll_back(state)
        for f in _SCHEDULE_FIELDS:
            setattr(schedule, f, state["schedule"][f])
        _set_rng_state(state["rng"], device)
        step, retries = int(state["step"]), int(state.get("retries", 0))
        if probe is not None and state.get("probe") is not None:
            probe.load(state["probe"])
        if elim is not None and state.get("elimination") is not None:
            elim.load(_cpu_copy(state["elimination"]))
        outcome.history_steps[:] = list(state["history_steps"])
        outcome.history_mask[:] = [list(row) for row in state["history_mask"]]
        curves = state.get("history_curves")  # absent in checkpoints written before the curves
        if curves is not None:
            outcome.history_rec[:], outcome.history_w[:] = list(curves["rec"]), list(curves["w"])
            outcome.history_phase[:], curve_sums[:] = list(curves["phase"]), list(curves["sums"])
        else:
            outcome.history_rec[:] = outcome.history_w[:] = outcome.history_phase[:] = []
            curve_sums[:] = [0.0, 0.0, 0]
        # (learning rates come back with the optimiser states: a rolled-back run keeps its halved rates)

    start = time.perf_counter()
    if resume is not None:
        restore(resume)
        seconds_before = float(resume.get("seconds", 0.0))
    model.train()
    last_good = capture()  # rollback target until the first checkpoint
    last_checkpoint_time = time.perf_counter()
    while step < config.max_steps:
        lambda3, beta = schedule.lambda3(step), schedule.beta()
        mu = mask().detach()

        # 1. auto-encoder: reconstruction + variance penalty on (nearly) closed dims
        x = batch()
        codes = enc(x)
        rec = losses.reconstruction(dec(mu * codes), x, rec_kind)
        _update(opt_ae, losses.ae_loss(rec, codes, mu), ae_params)

        # 2. critic (WGAN-GP) between masked codes and the masked prior
        # The encoder does not change during the critic updates, so their fresh batches are encoded
        # in one forward pass (the same numbers as one pass per batch, at a fraction of the cost).
        with torch.no_grad():
            encoded_all = (mu * enc(batch(config.critic_steps * s))).split(s)
        for encoded in encoded_all:
            p = prior(mu)
            h_enc, h_prior = critic(encoded), critic(p)
            penalty = losses.gradient_penalty(critic, p, encoded)
            _update(opt_critic, losses.critic_loss(h_enc, h_prior, penalty), critic_params)
        w_value = float(losses.wasserstein(h_prior, h_enc).detach())

        # 3. generator: the encoder learns to fool the critic
        _update(opt_gen, losses.generator_loss(critic(mu * enc(batch()))), enc_params)

        # 4. mask: reconstruction, W and the polariser (plus latentdim's closing pressure)
        if opt_mask is not None and not schedule.mask_frozen:
            x = batch()
            with torch.no_grad():
                codes = enc(x)
            mu_g = mask()
            rec_m = losses.reconstruction(dec(mu_g * codes), x, rec_kind)
            w = losses.wasserstein(critic(prior(mu_g)), critic(mu_g * codes))
            _update(opt_mask, losses.mask_loss(rec_m, w, mu_g, lambda3, beta), [mask.theta])
            mask.project()

        step += 1
        rec_value = float(rec.detach())
        if not (math.isfinite(w_value) and math.isfinite(rec_value) and _all_finite(all_params)):
            if retries >= 1:
                outcome.stop_reason = "diverged"
                restore(last_good)  # leave the model at its last good state
                break
            restore(last_good)
            retries = 1
            for opt in optimisers.values():
                for group in opt.param_groups:
                    group["lr"] *= 0.5
            continue
        curve_sums[0] += rec_value
        curve_sums[1] += w_value
        curve_sums[2] += 1
        mu_now = mask().detach()
        m_active, undecided = count_active(mu_now), count_undecided(mu_now)
        if probe is not None and step % config.probe_every == 0:
            if schedule.phase == "warmup" and config.warmup_plateau and not schedule.plateaued:
                schedule.plateaued = probe.plateaued(model)
            elif elim is not None:
                if schedule.phase == "hold":
                    elim.values.append(probe.measure(model))
                    if step - schedule.phase_start >= hold_steps and len(elim.values) >= config.probe_window:
                        kept = elim.verdict(probe.threshold, probe.r0)
                        if not kept:
                            assert elim.snapshot is not None
                            roll_back(elim.snapshot)
                            elim.k = max(1, elim.k // 2)
                        elim.snapshot = None
                        if elim.exhausted():
                            schedule.end_elimination(step)
                        else:
                            schedule.next_round(step)
            elif schedule.phase in ("close", "hold") and config.loss_budget:
                over = probe.over_budget(model, step)
                if schedule.phase == "close" and over:
                    schedule.hold(step)
                if schedule.phase == "hold" and step - schedule.phase_start >= config.budget_hold:
                    if not over:
                        schedule.resume_closing(step)
                    else:
                        schedule.end_closing(step)
        done = schedule.observe(step, m_active, undecided)
        if elim is not None and schedule.phase in ("close", "hold"):
            if not elim.started:
                elim.begin(model, probe)
            if schedule.phase == "close" and not elim.chosen:
                if not elim.start_round(model, probe, step, networks()):
                    schedule.end_elimination(step)
            if schedule.phase == "close" and elim.ramp(model, step - schedule.phase_start):
                schedule.hold(step)
        # Refine phase only: re-standardising while the mask still moves let dims on their way
        # out (mu 0.1-0.2) carry information again (docs/mask-dynamics.md).
        every = config.restandardise_every
        if every and schedule.phase == "refine" and (step - schedule.phase_start) % every == 0:
            restandardise_codes(model, batch(min(n, 1024)))
        if step % config.history_every == 0 or done or step == 1 or step >= config.max_steps:
            outcome.history_steps.append(step)
            outcome.history_mask.append(mu_now.cpu().tolist())
            outcome.history_rec.append(curve_sums[0] / max(1, curve_sums[2]))
            outcome.history_w.append(curve_sums[1] / max(1, curve_sums[2]))
            outcome.history_phase.append(schedule.phase)
            curve_sums[:] = [0.0, 0.0, 0]
        if done:
            outcome.stop_reason = "settled"
        interrupted = should_stop is not None and should_stop()
        if interrupted:
            outcome.stop_reason = "interrupted"
        stats = StepStats(step, rec_value, w_value, m_active, undecided, lambda3, beta, schedule.phase,
                          schedule.steps_left(step, hold_steps))
        outcome.last = stats
        now = time.perf_counter()
        due = (checkpoint_steps is not None and step % checkpoint_steps == 0) or (
            checkpoint_seconds is not None and now - last_checkpoint_time >= checkpoint_seconds
        )
        if (due or interrupted) and not done:
            last_good = capture()
            last_checkpoint_time = now
            if on_checkpoint is not None:
                on_checkpoint(last_good)
        if on_step is not None and (step % report_every == 0 or done or interrupted):
            on_step(stats)
        if done or interrupted:
            break
    outcome.steps = step
    if outcome.stop_reason == "max_steps" and on_checkpoint is not None:
        outcome.state = capture()
    if elim is not None:
        outcome.closing_rounds = [dict(r) for r in elim.rounds]
    outcome.seconds = seconds_before + time.perf_counter() - start
    if on_step is not None and outcome.last is not None:
        on_step(outcome.last)
    model.eval()
    return outcome


def history_array(outcome: TrainOutcome) -> tuple[np.ndarray, np.ndarray]:
    """The mask history as arrays: steps (T,) and mask values (T, m)."""
    return np.asarray(outcome.history_steps, dtype=np.int64), np.asarray(outcome.history_mask, dtype=np.float32)


def curves_array(outcome: TrainOutcome) -> dict[str, np.ndarray]:
    """The training curves at the mask history's steps: ``rec`` and ``w`` (T,) float arrays and
    ``phase`` (T,) strings. A run resumed from a checkpoint written before the curves were
    recorded has fewer points than steps: the curves then start at the resume."""
    t = len(outcome.history_rec)
    return {
        "steps": np.asarray(outcome.history_steps[len(outcome.history_steps) - t :], dtype=np.int64),
        "rec": np.asarray(outcome.history_rec, dtype=np.float64),
        "w": np.asarray(outcome.history_w, dtype=np.float64),
        "phase": np.asarray(outcome.history_phase, dtype=str),
    }
