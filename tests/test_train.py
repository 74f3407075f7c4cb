"""The lambda3 schedules, the stopping rule and a tiny end-to-end training run."""

import numpy as np
import pytest
import torch

from latentdim.data import make_synthetic
from latentdim.models import ModelSpec, build_model, count_active
from latentdim.train import LAMBDA3_CAP, MaskSchedule, TrainConfig, reference_r, train
from elimhelpers import elim_config as _elim_config


@pytest.mark.parametrize(("m", "r"), [(16, 75), (20, 75), (21, 2362), (32, 3600), (89, 10000), (128, 10000)])
def test_reference_r(m, r):
    # SPEC §4: R = 75 if m <= 20 else min(10000, floor(1125 m / 10)); 1125 * 89 / 10 = 10012.5 -> capped
    assert reference_r(m) == r


def test_reference_lambda3_doubles_every_4r_and_caps():
    s = MaskSchedule(TrainConfig(schedule="reference"), capacity=16)
    assert s.lambda3(0) == 2 / 16
    assert s.lambda3(299) == 2 / 16
    assert s.lambda3(300) == 2 / 16 * 2
    assert s.lambda3(300 * 5) == 2 / 16 * 32
    assert s.lambda3(300 * 100) == LAMBDA3_CAP  # 2/16 * 2^14 = 2048 is reached after 14 doublings
    assert s.beta() == 0.0


def test_latentdim_schedule_phases():
    cfg = TrainConfig(closing_pressure=5.0, settle_window=10, polish_double_every=4, stable_window=6,
                      warmup_steps=0, refine_steps=0)
    s = MaskSchedule(cfg, capacity=8)
    assert s.phase == "close" and s.beta() == 5.0 and s.lambda3(100) == 2.5  # closing_polariser
    for step, m_active in enumerate([8, 7, 7, 6] + [6] * 9, start=1):
        assert not s.observe(step, m_active, undecided=1)
    assert s.phase == "close"  # m_A last changed at step 4: held 9 < 10 steps
    assert not s.observe(14, 6, undecided=1)
    assert s.phase == "polish" and s.beta() == 0.0
    assert s.lambda3(14) == 2.5 * 2  # the first polish doubling is immediate
    assert s.lambda3(14 + 8) == 2.5 * 8
    assert s.lambda3(14 + 400) == LAMBDA3_CAP
    assert not s.observe(15, 6, undecided=0)  # polish must last stable_window steps
    assert s.observe(20, 6, undecided=0)


def test_warmup_and_refine_freeze_the_mask():
    cfg = TrainConfig(settle_window=10, stable_window=6, warmup_steps=5, refine_steps=7)
    s = MaskSchedule(cfg, capacity=8)
    assert s.phase == "warmup" and s.mask_frozen and s.beta() == 0.0
    assert not any(s.observe(step, 8, 1) for step in range(1, 5))
    assert not s.observe(5, 8, 1)
    assert s.phase == "close" and not s.mask_frozen
    for step in range(6, 15):  # the settle window counts from the end of warm-up, not from step 0
        s.observe(step, 8, 1)
    assert s.phase == "close"
    s.observe(15, 8, 1)
    assert s.phase == "polish"
    assert not s.observe(21, 8, 0)  # settled: on to refine
    assert s.phase == "refine" and s.mask_frozen and s.beta() == 0.0
    assert not s.observe(27, 8, 0)
    assert s.observe(28, 8, 0)


def test_hold_freezes_the_mask_and_does_not_count_toward_the_settle_window():
    cfg = TrainConfig(settle_window=10, warmup_steps=0, closing_pressure=5.0)
    s = MaskSchedule(cfg, capacity=8)
    assert s.phase == "close"
    s.observe(1, 8, 1)  # m_A last changed at step 1
    s.hold(4)  # the budget tripped
    assert s.phase == "hold" and s.mask_frozen and s.beta() == 0.0 and s.lambda3(5) == cfg.closing_polariser
    assert not any(s.observe(step, 8, 1) for step in range(4, 30))  # only the probe ends a hold
    s.resume_closing(30)  # 26 steps of hold: the window now counts as if m_A changed at step 27
    assert s.phase == "close" and s.beta() == 5.0
    s.observe(36, 8, 1)
    assert s.phase == "close"
    s.observe(37, 8, 1)
    assert s.phase == "polish"
    s2 = MaskSchedule(cfg, capacity=8)
    s2.hold(3)
    s2.end_closing(10)  # the cost lasted
    assert s2.phase == "polish" and not s2.mask_frozen


def test_no_mask_never_settles():
    s = MaskSchedule(TrainConfig(), capacity=4, use_mask=False)
    assert not any(s.observe(step, 4, 0) for step in range(1, 5000))


def _tiny_run(seed: int, use_mask: bool = True, steps: int = 30):
    x = make_synthetic(2, d=8, samples=256, seed=0)
    x = (x - x.mean(0)) / x.std(0)
    torch.manual_seed(seed)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16, use_mask=use_mask))
    out = train(model, torch.from_numpy(x), TrainConfig(max_steps=steps, batch_size=32, history_every=10, warmup_steps=5))
    return model, out


def test_tiny_run_end_to_end():
    model, out = _tiny_run(seed=0)
    assert out.steps == 30 and out.stop_reason == "max_steps"
    assert np.isfinite(out.last.reconstruction) and np.isfinite(out.last.wasserstein)
    assert out.history_steps == [1, 10, 20, 30]
    assert all(len(mu) == 4 for mu in out.history_mask)
    assert float(model.mask.theta.detach().min()) >= 0.0  # projected after every mask update
    # The mask moved: theta is trained.
    torch.manual_seed(0)
    initial = build_model(ModelSpec("mlp", (8,), 4, width=16)).mask.theta
    assert not torch.equal(initial, model.mask.theta.detach())


def test_training_curves_are_the_means_of_each_interval_with_the_phase():
    x = make_synthetic(2, d=8, samples=256, seed=0)
    x = (x - x.mean(0)) / x.std(0)
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    seen = []
    out = train(model, torch.from_numpy(x), TrainConfig(max_steps=30, batch_size=32, history_every=10, warmup_steps=5),
                on_step=seen.append, report_every=1)
    per_step = {s.step: s for s in seen}  # the end repeats the last step
    assert out.history_steps == [1, 10, 20, 30]
    for (lo, hi), rec, w, phase in zip([(1, 1), (2, 10), (11, 20), (21, 30)], out.history_rec, out.history_w, out.history_phase):
        assert rec == pytest.approx(np.mean([per_step[t].reconstruction for t in range(lo, hi + 1)]), rel=1e-12)
        assert w == pytest.approx(np.mean([per_step[t].wasserstein for t in range(lo, hi + 1)]), rel=1e-12)
        assert phase == per_step[hi].phase
    assert out.history_phase[0] == "warmup" and out.history_phase[-1] != "warmup"


def test_same_seed_same_mask_and_no_mask_keeps_all():
    a, _ = _tiny_run(seed=3)
    b, _ = _tiny_run(seed=3)
    torch.testing.assert_close(a.mask(), b.mask(), rtol=0, atol=0)
    wae, out = _tiny_run(seed=3, use_mask=False)
    torch.testing.assert_close(wae.mask(), torch.ones(4))
    assert out.last.m_active == 4


def test_reference_config_is_the_papers():
    cfg = TrainConfig.reference()
    assert (cfg.lr_mask, cfg.lr_ae, cfg.lr_critic, cfg.lr_generator) == (5e-4, 5e-4, 1e-4, 1e-4)
    assert cfg.schedule == "reference" and cfg.closing_pressure == 0.0 and cfg.critic_steps == 5
    s = MaskSchedule(cfg, capacity=16)
    assert s.phase == "reference" and s.beta() == 0.0


def test_restandardise_codes_keeps_reconstructions_and_standardises_active_codes():
    from latentdim.train import restandardise_codes

    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (10,), 4, width=16))
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))  # mu = 0, 0.63, 0.86, 0.95
    x = 3.0 * torch.randn(300, 10) + 1.0
    with torch.no_grad():
        closed_before = model.encoder(x)[:, 0].clone()
        rec_before = model.decoder(model.mask() * model.encoder(x))
    restandardise_codes(model, x)
    with torch.no_grad():
        codes = model.encoder(x)
        rec_after = model.decoder(model.mask() * codes)
    torch.testing.assert_close(rec_after, rec_before, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(codes[:, 1:].mean(0), torch.zeros(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(codes[:, 1:].std(0), torch.ones(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(codes[:, 0], closed_before)  # a closed dim is left to its penalty


def test_probe_r0_is_the_reconstruction_of_the_mean():
    from latentdim.train import _Probe

    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.5], [0.0, 0.5]])
    cfg = TrainConfig(probe_samples=4)
    # MSE: reconstructing every row as the column means leaves the (population) column variances.
    assert _Probe(x, cfg, "mse").r0 == pytest.approx(float(x.var(0, unbiased=False).mean()))
    # BCE: column means 0.5 and 0.75; closed form -mean(x log p + (1 - x) log(1 - p)).
    import math

    col0 = -math.log(0.5)
    col1 = -(0.5 * (1.0 * math.log(0.75) + 0.0 * math.log(0.25)) + 0.5 * (0.5 * math.log(0.75) + 0.5 * math.log(0.25)))
    assert _Probe(x, cfg, "bce").r0 == pytest.approx((col0 + col1) / 2, rel=1e-5)


class _FixedRec(torch.nn.Module):
    """A stand-in 'model' reconstructing x as a * x: its error on the probe is (1 - a)^2 mean(x^2)."""

    def __init__(self):
        super().__init__()
        self.mask = lambda: torch.ones(1)
        self.encoder = lambda x: x
        self.a = 0.0
        self.decoder = lambda codes: self.a * codes


def test_probe_fires_when_the_median_rises_by_the_budget_of_the_gap():
    from latentdim.train import _Probe

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    cfg = TrainConfig(probe_samples=64, probe_window=3, loss_budget=0.1)
    probe = _Probe(x, cfg, "mse")
    fake = _FixedRec()
    fired = []
    # the error first improves (a -> 0.9), then worsens step by step
    for a in [0.1, 0.3, 0.5, 0.7, 0.9, 0.9, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5, 0.3, 0.1]:
        fake.a = a
        fired.append(probe.over_budget(fake, 0))
    first = fired.index(True)
    values = probe.values
    best = min(float(np.median(values[i - 2 : i + 1])) for i in range(2, first + 1))
    current = float(np.median(values[first - 2 : first + 1]))
    assert current > best + 0.1 * (probe.r0 - best)
    previous = float(np.median(values[first - 3 : first]))
    assert previous <= best + 0.1 * (probe.r0 - best)
    assert not any(fired[:first])


def test_probe_plateau_waits_for_the_improvement_to_fall_below_the_tolerance():
    from latentdim.train import _Probe

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    cfg = TrainConfig(probe_samples=64, probe_window=1, probe_every=50, plateau_window=100, plateau_tolerance=0.05)
    probe = _Probe(x, cfg, "mse")
    fake = _FixedRec()
    seen = []
    for a in [0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.96, 0.965, 0.966]:  # error (1 - a)^2 E[x^2]
        fake.a = a
        seen.append(probe.plateaued(fake))
    # lag = 2 probes: plateaued once (error two probes ago - error now) < 0.05 (r0 - error now)
    e = [v for v in probe.warmup_values]
    expected = [False, False] + [e[i - 2] - e[i] < 0.05 * (probe.r0 - e[i]) for i in range(2, len(e))]
    assert seen == expected
    assert not any(seen[:5]) and seen[-1]


def test_warmup_plateau_holds_the_mask_until_the_probe_says_so():
    cfg = TrainConfig(warmup_steps=10, warmup_plateau=True, max_warmup_steps=100)
    schedule = MaskSchedule(cfg, capacity=4)
    assert not schedule.observe(10, 4, 0) and schedule.phase == "warmup"  # not plateaued yet
    schedule.plateaued = True
    schedule.observe(11, 4, 0)
    assert schedule.phase == "close"
    capped = MaskSchedule(cfg, capacity=4)
    capped.observe(100, 4, 0)
    assert capped.phase == "close"  # max_warmup_steps ends it regardless


def test_budget_is_never_below_the_probe_noise_of_warm_up():
    """A rise above loss_budget * gap but within budget_noise x the warm-up noise does not trip."""
    from latentdim.train import _Probe

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    cfg = TrainConfig(probe_samples=64, probe_window=1, loss_budget=0.01, plateau_window=500, probe_every=50)
    probe = _Probe(x, cfg, "mse")
    d = 0.01
    probe.warmup_values = [0.5 + (d if i % 2 else -d) for i in range(30)]  # +-d around a flat trend
    # successive differences are +-2d, their median 0 and MAD 2d: sigma = 1.4826 * 2d / sqrt(2)
    sigma = 1.4826 * 2 * d / np.sqrt(2)
    assert probe.warmup_noise() == pytest.approx(sigma)
    fake = _FixedRec()
    fake.a = 0.5
    assert not probe.over_budget(fake, 0)  # first probe: sets best
    best, gap = probe.best, probe.r0 - probe.best
    assert 0.01 * gap < 3 * sigma  # the noise floor is the binding one here
    # error (1 - a)^2 E[x^2]: choose a so the error rises by 2 sigma (no trip), then by 4 sigma (trip)
    ex2 = float((probe.x**2).mean())
    for rise, expected in ((2 * sigma, False), (4 * sigma, True)):
        fake.a = 1 - np.sqrt((best + rise) / ex2)
        assert probe.over_budget(fake, 0) is expected
    short = _Probe(x, cfg, "mse")
    short.warmup_values = [0.5, 0.6]
    assert short.warmup_noise() == 0.0  # too few probes: the budget alone decides


# --- closing="eliminate" (images by default): rounds of verified elimination -----------------------

def _elim_data():
    x = make_synthetic(2, d=8, samples=256, seed=0)
    return torch.from_numpy((x - x.mean(0)) / x.std(0))


def test_elimination_schedule_freezes_the_mask_and_ignores_the_settle_window():
    s = MaskSchedule(_elim_config(warmup_steps=0, settle_window=5), capacity=4)
    assert s.phase == "close" and s.mask_frozen and s.beta() == 0.0
    assert not any(s.observe(step, 4, 0) for step in range(1, 50))
    assert s.phase == "close"  # only the probe's verdicts end a round
    s.hold(50)
    assert s.phase == "hold" and s.mask_frozen
    s.next_round(60)
    assert s.phase == "close"
    s.end_elimination(70)
    assert s.phase == "refine" and not s.observe(71, 4, 0) and s.observe(80, 4, 0)
    with pytest.raises(ValueError, match="closing"):
        MaskSchedule(TrainConfig(closing="sideways"), capacity=4)


def test_elimination_needs_a_loss_budget():
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    with pytest.raises(ValueError, match="loss budget"):
        train(model, _elim_data(), _elim_config(loss_budget=0.0))


def test_loss_budget_limit_by_hand():
    """r0 reconstructs every probe sample as the probe mean; the limit is best + max(budget x gap,
    budget_noise x noise), gap = r0 - best."""
    from latentdim.train import _Probe

    x = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    probe = _Probe(x, TrainConfig(probe_samples=2, loss_budget=0.02, budget_noise=3.0), "mse")
    assert probe.r0 == pytest.approx(2.5)  # mean of (0-1)^2, (0-2)^2, (2-1)^2, (4-2)^2
    probe.noise = 0.001
    assert probe.threshold(gap=1.0, best=0.1) == pytest.approx(0.1 + 0.02)  # 2% of the gap binds
    assert probe.threshold(gap=0.1, best=0.1) == pytest.approx(0.1 + 0.003)  # 3 x the noise binds
    # BCE: the mean image as logits, so r0 is the entropy of the mean pixel
    y = torch.tensor([[0.0], [1.0]])
    assert _Probe(y, TrainConfig(probe_samples=2), "bce").r0 == pytest.approx(np.log(2.0), rel=1e-6)


def test_elimination_start_keeps_one_dimension_open_when_every_draw_closed():
    from latentdim.train import _Elimination, _Probe

    x = _elim_data()
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 3, width=16)).eval()
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([0.02, 0.09, 0.05]))  # mu 0.020, 0.086, 0.049: all below 0.1
    cfg = _elim_config()
    _Elimination(cfg).begin(model, _Probe(x, cfg, "mse"))
    mu = model.mask().detach()
    assert [float(v) > 0.9 for v in mu] == [False, True, False] and count_active(mu) == 1


def test_elimination_start_equalises_the_open_mask_exactly():
    from latentdim.train import ELIMINATE_OPEN_THETA, _Elimination, _Probe

    x = _elim_data()
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16)).eval()
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([0.3, 1.0, 2.5, 0.05]))  # mu 0.26, 0.63, 0.92, 0.049
        before = model.decoder(model.mask() * model.encoder(x))
        before_without_3 = model.decoder(model.mask() * torch.tensor([1.0, 1, 1, 0]) * model.encoder(x))
    cfg = _elim_config()
    elim = _Elimination(cfg)
    elim.begin(model, _Probe(x, cfg, "mse"))
    mu = model.mask().detach()
    open_mu = 1 - np.exp(-ELIMINATE_OPEN_THETA)
    torch.testing.assert_close(mu, torch.tensor([open_mu, open_mu, open_mu, 0.0], dtype=mu.dtype))
    with torch.no_grad():
        after = model.decoder(mu * model.encoder(x))
    # open dims: mu_j W_j = mu'_j W'_j exactly; the dim below 0.1 is closed, which only drops its input
    torch.testing.assert_close(after, before_without_3, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(after, before, atol=1e-5)
    assert elim.k == 1  # a quarter of 3 open dims, at least one


def test_elimination_closes_first_the_dimension_whose_removal_costs_least():
    from latentdim.train import _Elimination, _Probe

    x = _elim_data()
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    dec_first = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)][0]
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    opt = torch.optim.Adam(list(model.encoder.parameters()) + list(model.decoder.parameters()), lr=1e-2)
    for _ in range(300):  # a plain auto-encoder fit, so that the codes carry the data
        opt.zero_grad()
        torch.nn.functional.mse_loss(model.decoder(model.mask().detach() * model.encoder(x)), x).backward()
        opt.step()
    with torch.no_grad():
        dec_first.weight[:, 2] = 0.0  # the decoder ignores dim 2: removing it costs exactly nothing
    cfg = _elim_config(eliminate_fraction=0.25)
    probe = _Probe(x, cfg, "mse")
    elim = _Elimination(cfg)
    elim.begin(model, probe)
    costs = probe.ablation_costs(model, [0, 1, 2, 3])
    assert costs[2] == 0.0 and all(costs[j] > 0.0 for j in (0, 1, 3))
    assert elim.start_round(model, probe, step=0, snapshot={})
    assert elim.chosen == [2] and elim.rounds[0]["open"] == 4
    assert not elim.ramp(model, 10)
    assert float(model.mask().detach()[2]) == pytest.approx((1 - np.exp(-5.0)) / 2)  # half-way down the ramp
    assert elim.ramp(model, 20) and float(model.mask().detach()[2]) == 0.0


class _FixedCosts:
    """A probe stand-in whose ablation costs are fixed: dim j costs COSTS[j]."""
    COSTS = [0.3, 0.1, 0.2, 0.4]

    def ablation_costs(self, model, dims):
        return {j: self.COSTS[j] for j in dims}


def _failed_round(elim, model, error):
    """Starts a round on the fixed costs, ends it with ``error`` against best + 0.1; the verdict."""
    assert elim.start_round(model, _FixedCosts(), step=0, snapshot={})
    chosen = list(elim.chosen)
    elim.values = [error] * 3
    return chosen, elim.verdict(lambda gap, best: best + 0.1, r0=3.0)


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_a_failed_round_of_one_is_retried_with_the_next_cheapest_dimension(retries):
    from latentdim.train import _Elimination

    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    with torch.no_grad():
        model.mask.theta.fill_(5.0)
    elim = _Elimination(_elim_config(eliminate_retries=retries))
    elim.best, elim.k = 1.0, 1
    tried = []
    for _ in range(retries + 1):
        assert not elim.exhausted()
        chosen, kept = _failed_round(elim, model, error=2.0)
        tried += chosen
        assert not kept
    assert tried == [1, 2, 0][: retries + 1]  # cheapest first, then the next-cheapest not yet tried
    assert elim.exhausted()


def test_a_kept_round_gives_the_failed_dimensions_another_chance():
    from latentdim.train import _Elimination

    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    with torch.no_grad():
        model.mask.theta.fill_(5.0)
    elim = _Elimination(_elim_config(eliminate_retries=1, eliminate_fraction=1.0))
    elim.best, elim.k = 1.0, 1
    assert _failed_round(elim, model, error=2.0) == ([1], False)
    assert _failed_round(elim, model, error=1.05) == ([2], True)  # within best + 0.1: kept
    with torch.no_grad():
        model.mask.theta[2] = 0.0  # what the ramp left
    assert not elim.exhausted() and elim.failed == []
    elim.k = 2  # a failed round of several dims uses no retry (the training loop halves k)
    assert _failed_round(elim, model, error=2.0) == ([1, 0], False)
    assert elim.failed == []
    elim.k = 1
    assert _failed_round(elim, model, error=2.0) == ([1], False)  # the networks moved on: dim 1 again
    assert not elim.exhausted()
    assert _failed_round(elim, model, error=2.0) == ([0], False)
    assert elim.exhausted()


def _elim_run(config, should_stop=None, resume=None, seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    states = []
    out = train(model, _elim_data(), config, should_stop=should_stop, resume=resume, on_checkpoint=states.append)
    return model, out, states


def test_elimination_end_to_end_keeps_rounds_within_budget_and_rolls_back_the_rest():
    from latentdim.train import ELIMINATE_OPEN_THETA

    model, out, _ = _elim_run(_elim_config(warmup_steps=300))  # 2-dimensional data, capacity 4
    assert out.stop_reason == "settled" and out.last.m_active == 2
    assert any(not r["kept"] for r in out.closing_rounds)
    rounds = out.closing_rounds
    assert rounds and all("kept" in r for r in rounds)
    for r in rounds:
        assert r["kept"] == (r["error"] <= r["limit"])
        assert r["ablation"] == sorted(r["ablation"])
    # each round starts with the open count the kept rounds before it left
    open_now = rounds[0]["open"]
    for r in rounds:
        assert r["open"] == open_now
        open_now -= r["k"] if r["kept"] else 0
    # closing ends on a failed round of one and its retry with another dim (or with one dim open);
    # a failed round's dims stay open
    last_two = rounds[-2:]
    assert open_now == 1 or (
        all(not r["kept"] and r["k"] == 1 for r in last_two) and last_two[0]["dims"] != last_two[1]["dims"])
    mu = model.mask().detach()
    assert out.last.m_active == open_now == int((mu > 0).sum())
    open_mu = torch.tensor(1 - np.exp(-ELIMINATE_OPEN_THETA), dtype=mu.dtype)
    assert all(float(v) == 0.0 or torch.isclose(v, open_mu) for v in mu)
    for r in rounds:
        if not r["kept"]:
            assert all(torch.isclose(mu[j], open_mu) for j in r["dims"])  # rolled back, re-opened
    # the allowance is the limit over the best error so far, which only a kept round lowers
    best = [r["limit"] - r["allowance"] for r in rounds]
    assert all(r["allowance"] > 0 for r in rounds)
    for r, b, b_next in zip(rounds, best, best[1:]):
        assert b_next == pytest.approx(min(b, r["error"]) if r["kept"] else b)


def test_elimination_resumes_step_for_step():
    cfg = _elim_config()
    ref_model, ref_out, _ = _elim_run(cfg)
    assert len(ref_out.closing_rounds) >= 2
    stop_at = ref_out.closing_rounds[1]["step"] + 25  # inside the second round: a snapshot is held
    polls = []

    def should_stop():  # polled once after every step
        polls.append(1)
        return len(polls) >= stop_at

    _, _, states = _elim_run(cfg, should_stop=should_stop)
    assert states and states[-1]["step"] == stop_at and states[-1]["elimination"]["snapshot"] is not None
    model, out, _ = _elim_run(cfg, resume=states[-1])
    assert out.steps == ref_out.steps and out.closing_rounds == ref_out.closing_rounds
    assert (out.history_rec, out.history_w, out.history_phase) == (ref_out.history_rec, ref_out.history_w, ref_out.history_phase)
    for (name, a), (_, b) in zip(model.state_dict().items(), ref_model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
