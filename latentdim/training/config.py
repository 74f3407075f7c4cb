"""Training settings: :class:`TrainConfig`, latentdim's defaults and the papers' (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAMBDA3_CAP = 2048.0  # SPEC §4
NO_MASK_MAX_STEPS = 10_000  # step budget of the --no-mask baseline, which has no mask to settle
LOSS_BUDGET = 0.02  # latentdim.estimate's loss budget (TrainConfig.loss_budget)
IMAGE_ELIMINATE_HOLD, VECTOR_ELIMINATE_HOLD = 1000, 500  # TrainConfig.eliminate_hold chosen by estimate
VECTOR_LR_MASK = 4e-3  # SPEC §4 says 5e-4; 8x faster closes as surely in a fraction of the steps
IMAGE_LR_MASK = 1e-3  # images: a slower wave, so the loss budget's lag costs fewer dimensions


#: TrainConfig.precision's values.
PRECISIONS = ("float32", "bfloat16")


def compile_backend_problem(backend: str) -> str | None:
    """Why ``backend`` cannot be TrainConfig.compile (None: it can)."""
    import torch._dynamo

    if backend in torch._dynamo.list_backends(exclude_tags=()):
        return None
    return f"unknown compile backend {backend!r}: use inductor (torch's compiler; cudagraphs on a GPU)"


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run.

    The defaults are latentdim's schedule (docs/log/mask-dynamics.md); :meth:`reference` gives the
    papers' (SPEC §4).
    """

    batch_size: int = 64  # SPEC §4
    lr_ae: float = 5e-4  # SPEC §4
    lr_critic: float = 1e-4  # SPEC §4
    lr_generator: float = 1e-4  # SPEC §4
    # Mask learning rate. None: chosen from the data by latentdim.estimate (IMAGE_LR_MASK for images,
    # VECTOR_LR_MASK for vectors; train() itself reads None as VECTOR_LR_MASK); docs/log/mask-dynamics.md.
    lr_mask: float | None = None
    critic_steps: int = 5  # critic updates per step (SPEC §4)
    # How the critic's gradients are computed: "closed_form" (the loss's gradient written out for
    # the one-hidden-layer critic of every preset but mnist, training/critic.py; the same numbers
    # up to float rounding, about 4x faster) or "autograd" (a double backward through the
    # gradient penalty; always used for other critics).
    critic_update: str = "closed_form"
    # A torch.compile backend for the step's encoder, decoder and critic passes ("inductor":
    # torch's compiler; "cudagraphs" on a GPU; "eager": traced, not compiled, the same numbers,
    # for tests); None: not compiled. Off by default: on this 2-core CPU the compiled step is
    # slower (36.1 against 40.8 steps/s over 6,000 steps, docs/design.md); on a GPU unmeasured.
    compile: str | None = None
    # "bfloat16": the step's forward passes under torch.autocast in bfloat16 (the critic's closed
    # form and the optimisers stay in float32); "float32" (the default): no autocast. On this CPU
    # no faster (41.0 against 40.8 steps/s, docs/design.md); on a GPU unmeasured.
    precision: str = "float32"
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
    # until a needed dim falls below 0.1 (docs/log/mask-dynamics.md).
    closing_polariser: float | None = 2.5
    settle_window: int = 1500  # closing phase ends once m_A is unchanged for this many steps
    # ... or once closing costs reconstruction: the held-out reconstruction error (a fixed probe
    # set, every probe_every steps, median of the last probe_window) has risen above its best value
    # of the phase by this fraction of the gap between the no-information reconstruction (every
    # sample reconstructed as the data mean) and that best value. None: chosen from the data by
    # latentdim.estimate (LOSS_BUDGET); 0: off. docs/accuracy.md says why one budget serves
    # vectors and images; docs/log/mask-dynamics.md ("Natural images") has the image measurements.
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
    # After elimination settles at m (vectors): check m - 1, m - 2, ... with plain auto-encoders
    # trained afresh at that code size, and close the dimensions they show the data do not need
    # (training/verify.py, docs/accuracy.md "Fresh verification"). None: chosen by
    # latentdim.estimate (on for vectors; off for images, whose fresh MLP auto-encoders are not
    # the preset's convolutional networks). Runs after train(), in latentdim.estimate.
    verify: bool | None = None
    # The fresh check's budget, as a fraction of loss_budget (the same budget would accept
    # Mbeta's smallest factors, which carry under 2% of its variance together: docs/accuracy.md).
    verify_budget_scale: float = 0.5
    # each fresh auto-encoder's training (batches of 64, Adam 1e-3, cosine decay); None: verify.DEFAULT_STEPS
    verify_steps: int | None = None
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

