"""The MaskAAE training loop (SPEC §4).

One step is: 1 auto-encoder update, ``critic_steps`` critic updates, 1 generator (encoder)
update and 1 mask update, each on a fresh batch, in that order (:meth:`Run.sgd_step`). After it,
in :func:`train`: the divergence check (:meth:`Run.check_finite`), the probe, the closing rule,
the schedule and the refine phase's re-standardisation (:meth:`Run.probe_and_close`), the history
(:meth:`Run.record`), checkpoints (:meth:`Run.checkpoint`) and progress.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from latentdim import losses
from latentdim.data.stream import BlockSampler
from latentdim.models import MaskAAE
from latentdim.models.mask import active_count, sample_prior, undecided_count
from latentdim.optim import TF1RMSprop
from latentdim.training.closing import ClosingRule, closing_rule_class
from latentdim.training.codes import model_input, restandardise_codes
from latentdim.training.config import VECTOR_LR_MASK, TrainConfig
from latentdim.training.critic import closed_form_supported, critic_gradients
from latentdim.training.distributed import World
from latentdim.training.phases import Phase
from latentdim.training.probe import Probe
from latentdim.training.schedule import MaskSchedule
from latentdim.training.state import cpu_copy, rng_state, set_rng_state


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
    stop_reason: str  # "settled", "max_steps", "interrupted" or "diverged"
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
    # closing="eliminate" with verify: the fresh verification's sizes (training/verify.py)
    verification: list[dict[str, Any]] = field(default_factory=list)
    # stop_reason "max_steps" with on_checkpoint: the training state at the limit, from which a
    # run with a larger max_steps continues as if it had not stopped
    state: dict[str, Any] | None = None


def _update(opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter], world: World) -> None:
    # autograd.grad w.r.t. exactly these parameters: other networks on the path get no stray grads
    _apply(opt, list(torch.autograd.grad(loss, params)), params, world)


def _apply(opt: torch.optim.Optimizer, grads: list[torch.Tensor], params: list[nn.Parameter], world: World) -> None:
    # with several ranks, the gradients averaged over them (training/distributed.py)
    for p, g in zip(params, world.average(grads)):
        p.grad = g
    opt.step()


def _parameter_sum(params: list[nn.Parameter]) -> torch.Tensor:
    # finite only if every parameter is (inf and nan propagate; an overflow of finite weights near
    # 1e38 is a divergence too): one reduction per tensor, no bool temporaries
    return torch.stack([p.detach().sum() for p in params]).sum()


class Run:
    """One training run: the model and its optimisers, the schedule, the probe and the closing
    rule, and what a checkpoint carries (:meth:`capture`, :meth:`restore`)."""

    def __init__(self, model: MaskAAE, data: torch.Tensor, config: TrainConfig, world: World | None = None) -> None:
        self.model, self.data, self.config = model, data, config
        self.world = world or World()
        self.batch_size = self.world.share(config.batch_size)  # this rank's part of each batch
        mask = model.mask
        self.capacity = mask.theta.shape[0]
        self.ae_params = list(model.encoder.parameters()) + list(model.decoder.parameters())
        self.enc_params, self.critic_params = list(model.encoder.parameters()), list(model.critic.parameters())
        self.all_params = list(model.parameters())
        self.closed_form_critic = config.critic_update == "closed_form" and closed_form_supported(model.critic)
        self.optimisers = self._optimisers()
        self.schedule = MaskSchedule(config, self.capacity, use_mask=mask.enabled)
        # the step's passes, once the schedule checked the config (TrainConfig.compile): compiled wrappers sharing the model's parameters
        compiled = (lambda m: torch.compile(m, backend=config.compile)) if config.compile else (lambda m: m)
        self.enc, self.dec, self.critic = compiled(model.encoder), compiled(model.decoder), compiled(model.critic)
        self.rec_kind = config.reconstruction or "mse"
        self.device = data.device
        self.outcome = TrainOutcome(steps=0, seconds=0.0, stop_reason="max_steps", last=None)
        self.step, self.seconds_before, self.retries = 0, 0.0, 0
        self.curve_sums: list[Any] = [0.0, 0.0, 0]  # reconstruction and W summed since the last history point, and the count
        latentdim_mask = mask.enabled and config.schedule == "latentdim"
        probing = bool(config.loss_budget) or bool(config.warmup_plateau)
        self.probe = Probe(data, config, self.rec_kind, self.world) if probing and latentdim_mask else None
        self.rule: ClosingRule | None = closing_rule_class(config)(config) if latentdim_mask else None
        if self.rule is not None and self.rule.needs_budget and (self.probe is None or not config.loss_budget):
            raise ValueError(f"closing={self.rule.name!r} needs a loss budget (TrainConfig.loss_budget > 0)")
        # the mask after the last step (before that step's closing moves) and its counts: set by
        # read_step, read by probe_and_close, record and stats
        self.mu_now, self.m_active, self.undecided = mask().detach(), 0, 0
        self.last_good: dict[str, Any] = {}  # the state a divergence rolls back to (train sets it)
        self.last_checkpoint_time = 0.0
        self.start = time.perf_counter()
        self.seed = 0  # the run's seed (train sets it): the fresh verification's networks and split
        self.stage: Callable[[str], None] = lambda text: None  # a slow step inside training starts (train sets it)
        self.should_stop: Callable[[], bool] | None = None  # train's should_stop, polled inside each fresh network too

    def _optimisers(self) -> dict[str, torch.optim.Optimizer]:
        """SPEC §4's four optimisers (the auto-encoder's Adam when ``ae_optimiser`` says so)."""
        cfg, mask = self.config, self.model.mask
        ae = torch.optim.Adam(self.ae_params, lr=cfg.lr_ae, foreach=True) if cfg.ae_optimiser == "adam" else TF1RMSprop(self.ae_params, lr=cfg.lr_ae)
        optimisers = {
            "ae": ae,
            "critic": TF1RMSprop(self.critic_params, lr=cfg.lr_critic),
            "generator": TF1RMSprop(self.enc_params, lr=cfg.lr_generator),
        }
        if mask.enabled:
            optimisers["mask"] = TF1RMSprop([mask.theta], lr=cfg.lr_mask or VECTOR_LR_MASK)
        return optimisers

    def batch(self, size: int | None = None) -> torch.Tensor:
        if isinstance(self.data, BlockSampler):  # a file larger than memory, streamed
            return self.data.draw(size or self.batch_size)
        n = self.data.shape[0]
        return model_input(self.data[torch.randint(n, (size or self.batch_size,), device=self.device)])

    def sgd_step(self) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        """SPEC §4's step; returns the reconstruction loss, W (0-dim tensors, still on the
        device: the step reads nothing back, so a GPU runs it without waiting), lambda3 and beta."""
        if self.config.precision == "bfloat16":  # TrainConfig.precision
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return self._sgd_step()
        return self._sgd_step()

    def _sgd_step(self) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        model, cfg, schedule = self.model, self.config, self.schedule
        enc, dec, critic, mask = self.enc, self.dec, self.critic, model.mask
        opt = self.optimisers
        lambda3, beta = schedule.lambda3(self.step), schedule.beta()
        mu = mask().detach()

        # 1. auto-encoder: reconstruction + variance penalty on (nearly) closed dims
        x = self.batch()
        codes = enc(x)
        rec = losses.reconstruction(dec(mu * codes), x, self.rec_kind)
        _update(opt["ae"], losses.ae_loss(rec, codes, mu), self.ae_params, self.world)

        # 2. critic (WGAN-GP) between masked codes and the masked prior
        # The encoder does not change during the critic updates, so their fresh batches are encoded
        # in one forward pass (the same numbers as one pass per batch, at a fraction of the cost).
        with torch.no_grad():
            encoded_all = (mu * enc(self.batch(cfg.critic_steps * self.batch_size))).split(self.batch_size)
        for encoded in encoded_all:
            p = sample_prior(mu, self.batch_size)
            if self.closed_form_critic:  # the same gradients without the double backward (training/critic.py)
                a = torch.rand(self.batch_size, 1, device=p.device, dtype=p.dtype)  # as gradient_penalty draws it
                # under bfloat16 autocast, in float32 as the optimiser's state (.float() is encoded itself otherwise)
                with torch.autocast(self.device.type, enabled=False) if cfg.precision == "bfloat16" else nullcontext():
                    grads, w_critic = critic_gradients(model.critic, encoded.float(), p, a)
                _apply(opt["critic"], grads, self.critic_params, self.world)
                continue
            h_enc, h_prior = critic(encoded), critic(p)
            penalty = losses.gradient_penalty(critic, p, encoded)
            _update(opt["critic"], losses.critic_loss(h_enc, h_prior, penalty), self.critic_params, self.world)
            w_critic = losses.wasserstein(h_prior, h_enc).detach()

        # 3. generator: the encoder learns to fool the critic
        _update(opt["generator"], losses.generator_loss(critic(mu * enc(self.batch()))), self.enc_params, self.world)

        # 4. mask: reconstruction, W and the polariser (plus latentdim's closing pressure)
        if "mask" in opt and not schedule.mask_frozen:
            x = self.batch()
            with torch.no_grad():
                codes = enc(x)
            mu_g = mask()
            rec_m = losses.reconstruction(dec(mu_g * codes), x, self.rec_kind)
            w = losses.wasserstein(critic(sample_prior(mu_g, self.batch_size)), critic(mu_g * codes))
            _update(opt["mask"], losses.mask_loss(rec_m, w, mu_g, lambda3, beta), [mask.theta], self.world)
            mask.project()
        return rec, w_critic, lambda3, beta

    def read_step(self, rec: torch.Tensor, w: torch.Tensor) -> tuple[float, float, bool]:
        """The step's numbers on the host in one transfer (on a GPU, the loop's one wait per
        step): the reconstruction loss, W, whether they and every parameter are finite; and the
        mask after the step with its m_A and undecided count (``mu_now``, ``m_active``,
        ``undecided``, read by :meth:`probe_and_close`, :meth:`record` and :meth:`stats`)."""
        mu = self.model.mask().detach()
        rec_value, w_value, total, m_active, undecided = torch.stack([
            rec.detach().float(), w.float(), _parameter_sum(self.all_params).float(),
            active_count(mu).float(), undecided_count(mu).float(),
        ]).tolist()
        self.mu_now, self.m_active, self.undecided = mu, int(m_active), int(undecided)
        return rec_value, w_value, math.isfinite(rec_value) and math.isfinite(w_value) and math.isfinite(total)

    def check_finite(self, finite: bool) -> str:
        """"ok" after a finite step (``finite``: the losses and parameters, on every rank). A
        non-finite loss or parameter rolls back to ``last_good`` the first time every learning
        rate is halved and training goes on ("retry"), the second time it stops ("stop", stop
        reason "diverged")."""
        if finite:
            return "ok"
        if self.retries >= 1:
            self.outcome.stop_reason = "diverged"
            self.restore(self.last_good)  # leave the model at its last good state
            return "stop"
        self.restore(self.last_good)
        self.retries = 1
        for opt in self.optimisers.values():
            for group in opt.param_groups:
                group["lr"] *= 0.5
        return "retry"

    def probe_and_close(self) -> bool:
        """The probe step's warm-up plateau and closing rule, the schedule, the closing rule's
        follow-up and the refine phase's re-standardisation; True when training is over."""
        cfg, schedule, step = self.config, self.schedule, self.step
        if self.probe is not None and step % cfg.probe_every == 0:
            if schedule.phase == Phase.WARMUP and cfg.warmup_plateau and not schedule.plateaued:
                schedule.plateaued = self.probe.plateaued(self.model)
            elif self.rule is not None and schedule.phase in (Phase.CLOSE, Phase.HOLD):
                self.rule.on_probe(self, step)
        done = schedule.observe(step, self.m_active, self.undecided)
        if self.rule is not None:
            self.rule.after_observe(self, step)
        # Refine phase only: re-standardising while the mask still moves let dims on their way
        # out (mu 0.1-0.2) carry information again (docs/log/mask-dynamics.md).
        every = cfg.restandardise_every
        if every and schedule.phase == Phase.REFINE and (step - schedule.phase_start) % every == 0:
            restandardise_codes(self.model, self.batch(min(self.data.shape[0], 1024)))
            self.world.same_weights(self.model)  # each rank read its own batch: rank 0's codes
        return done

    def record(self, rec_value: float, w_value: float, done: bool) -> None:
        """The curves' sums every step; the mask history and the curves' means at history steps
        (after :meth:`probe_and_close`)."""
        sums, out, step = self.curve_sums, self.outcome, self.step
        sums[0] += rec_value
        sums[1] += w_value
        sums[2] += 1
        if step % self.config.history_every == 0 or done or step == 1 or step >= self.config.max_steps:
            out.history_steps.append(step)
            out.history_mask.append(self.mu_now.cpu().tolist())  # the mask before this step's closing moves
            out.history_rec.append(sums[0] / max(1, sums[2]))
            out.history_w.append(sums[1] / max(1, sums[2]))
            out.history_phase.append(str(self.schedule.phase))
            sums[:] = [0.0, 0.0, 0]

    def networks(self) -> dict[str, Any]:
        """Weights and optimiser states: what an elimination round rolls back to, and part of
        every training-state capture."""
        return cpu_copy({"model": self.model.state_dict(), "optimisers": {k: o.state_dict() for k, o in self.optimisers.items()}})

    def roll_back(self, saved: dict[str, Any]) -> None:
        """Weights and optimiser states back to ``saved`` (an elimination round's start, or a
        checkpoint by :meth:`restore`)."""
        self.model.load_state_dict(saved["model"])
        for name, opt in self.optimisers.items():
            opt.load_state_dict(saved["optimisers"][name])

    def capture(self) -> dict[str, Any]:
        """The full training state (tensors on the CPU), from which :meth:`restore` continues."""
        out = self.outcome
        return self.networks() | cpu_copy({
            "step": self.step,
            "schedule": self.schedule.state(),
            "rng": rng_state(self.device),
            "history_steps": list(out.history_steps),
            "history_mask": [list(row) for row in out.history_mask],
            "history_curves": {"rec": list(out.history_rec), "w": list(out.history_w),
                               "phase": list(out.history_phase), "sums": list(self.curve_sums)},
            "seconds": self.seconds_before + time.perf_counter() - self.start,
            "retries": self.retries,
            "probe": None if self.probe is None else self.probe.state(),
            "closing": None if self.rule is None else self.rule.state(),
        })

    def restore(self, state: dict[str, Any]) -> None:
        if set(state["optimisers"]) != set(self.optimisers):
            raise ValueError("the saved optimiser states do not match this model (mask on/off)")
        self.roll_back(state)
        self.schedule.load(state["schedule"])
        set_rng_state(state["rng"], self.device)
        self.step, self.retries = int(state["step"]), int(state.get("retries", 0))
        if self.probe is not None and state.get("probe") is not None:
            self.probe.load(state["probe"])
        rule_state = state.get("closing", state.get("elimination"))  # "elimination": checkpoints before the rules' interface
        if self.rule is not None and rule_state is not None:
            self.rule.load(cpu_copy(rule_state))
        out = self.outcome
        out.history_steps[:] = list(state["history_steps"])
        out.history_mask[:] = [list(row) for row in state["history_mask"]]
        curves = state.get("history_curves")  # absent in checkpoints written before the curves
        if curves is not None:
            out.history_rec[:], out.history_w[:] = list(curves["rec"]), list(curves["w"])
            out.history_phase[:], self.curve_sums[:] = list(curves["phase"]), list(curves["sums"])
        else:
            out.history_rec[:] = out.history_w[:] = out.history_phase[:] = []
            self.curve_sums[:] = [0.0, 0.0, 0]
        # (learning rates come back with the optimiser states: a rolled-back run keeps its halved rates)

    def exchange(self, finite: bool, should_stop: Callable[[], bool] | None,
                 every_steps: int | None, every_seconds: float | None) -> tuple[bool, bool, bool]:
        """After a step: (finite, interrupted, checkpoint due), agreed by every rank in one
        exchange, so that they all roll back, stop and checkpoint at the same step. Finite: the
        losses and every parameter (:meth:`read_step`); due: every ``every_steps`` steps or
        ``every_seconds`` seconds."""
        wants_stop = should_stop is not None and should_stop()
        due = (every_steps is not None and self.step % every_steps == 0) or (
            every_seconds is not None and time.perf_counter() - self.last_checkpoint_time >= every_seconds
        )
        infinite, interrupted, due = self.world.any([not finite, wants_stop, due], self.device)
        return not infinite, interrupted, due

    def verify_next(self, on_checkpoint: Callable[[dict[str, Any]], None] | None) -> bool:
        """The verify phase: the closing rule's next fresh network (:mod:`.verify`), then a
        checkpoint (a size takes seconds to minutes); True when asked to stop (every rank agrees)."""
        assert self.rule is not None
        self.rule.verify_next(self)
        self.checkpoint(True, on_checkpoint)
        wants_stop = self.should_stop is not None and self.should_stop()
        return self.world.any([wants_stop], self.device)[0]

    def checkpoint(self, due: bool, on_checkpoint: Callable[[dict[str, Any]], None] | None) -> None:
        """When ``due`` (on some rank) or interrupted: the training state becomes the rollback
        target and goes to ``on_checkpoint``."""
        now = time.perf_counter()
        if due:
            self.last_good = self.capture()
            self.last_checkpoint_time = now
            if on_checkpoint is not None:
                on_checkpoint(self.last_good)

    def finish(self, keep_state: bool, on_step: Callable[[StepStats], None] | None) -> TrainOutcome:
        """The outcome once the loop is over (with ``keep_state``, a run at its step limit keeps
        the state a larger limit continues from); the last statistics go to ``on_step``."""
        outcome = self.outcome
        outcome.steps = self.step
        if outcome.stop_reason == "max_steps" and keep_state:
            outcome.state = self.capture()
        if self.rule is not None:
            outcome.closing_rounds = [dict(r) for r in self.rule.rounds]
            outcome.verification = [dict(r) for r in self.rule.verification]
        outcome.seconds = self.seconds_before + time.perf_counter() - self.start
        if on_step is not None and outcome.last is not None:
            on_step(outcome.last)
        self.model.eval()
        return outcome

    def stats(self, rec_value: float, w_value: float, lambda3: float, beta: float) -> StepStats:
        return StepStats(self.step, rec_value, w_value, self.m_active, self.undecided, lambda3, beta,
                         str(self.schedule.phase), self.schedule.steps_left(self.step))


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
    world: World | None = None,
    seed: int = 0,
    on_stage: Callable[[str], None] | None = None,
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
        world, seed: several ranks (torchrun): this process's place among them and the seed the
            ranks above 0 draw their own batches from (:mod:`latentdim.training.distributed`);
            the seed also draws the fresh verification's networks (:mod:`.verify`).
        on_stage: called with a line of text when a slow step inside training starts (each
            network the fresh verification trains).

    Returns:
        The step count, wall time, why training stopped ("settled", "max_steps", "interrupted"
        or "diverged"), the last statistics and the mask history.

    Divergence: a non-finite loss or parameter after a step rolls everything back to the last
    checkpointed state (in memory; the start of training if there was none) and training
    continues with all learning rates halved; a second divergence stops it ("diverged").

    Randomness comes from torch's global generator: seed it before building the model.
    """
    run = Run(model, data, config, world)
    run.seed, run.should_stop = seed, should_stop
    if on_stage is not None:
        run.stage = on_stage
    outcome = run.outcome
    if resume is not None:
        run.restore(resume)
        run.seconds_before = float(resume.get("seconds", 0.0))
    run.world.same_weights(model)
    run.world.seed_stream(seed + run.step)  # ranks above 0 draw their own batches (rank 0: unchanged)
    model.train()
    run.last_good = run.capture()  # rollback target until the first checkpoint
    run.last_checkpoint_time = time.perf_counter()
    while run.step < config.max_steps:
        if run.schedule.phase == Phase.VERIFY:  # between steps: one size of the fresh verification
            if run.verify_next(on_checkpoint):
                outcome.stop_reason = "interrupted"
                break
            continue
        rec, w, lambda3, beta = run.sgd_step()
        run.step += 1
        rec_value, w_value, finite = run.read_step(rec, w)
        finite, interrupted, due = run.exchange(finite, should_stop, checkpoint_steps, checkpoint_seconds)
        verdict = run.check_finite(finite)
        if verdict == "stop":
            break
        if verdict == "retry":
            continue
        done = run.probe_and_close()
        run.record(rec_value, w_value, done)
        if done or interrupted:
            outcome.stop_reason = "interrupted" if interrupted else "settled"
        outcome.last = stats = run.stats(rec_value, w_value, lambda3, beta)
        if not done:
            run.checkpoint(due or interrupted, on_checkpoint)
        if on_step is not None and (run.step % report_every == 0 or done or interrupted):
            on_step(stats)
        if done or interrupted:
            break
    return run.finish(keep_state=on_checkpoint is not None, on_step=on_step)


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
