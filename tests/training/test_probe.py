"""The held-out probe: r0, the budget's limit, the plateau and the noise floor."""

import numpy as np
import pytest
import torch

from latentdim.training import MaskSchedule, TrainConfig


def test_probe_r0_is_the_reconstruction_of_the_mean():
    from latentdim.training import Probe

    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.5], [0.0, 0.5]])
    cfg = TrainConfig(probe_samples=4)
    # MSE: reconstructing every row as the column means leaves the (population) column variances.
    assert Probe(x, cfg, "mse").r0 == pytest.approx(float(x.var(0, unbiased=False).mean()))
    # BCE: column means 0.5 and 0.75; closed form -mean(x log p + (1 - x) log(1 - p)).
    import math

    col0 = -math.log(0.5)
    col1 = -(0.5 * (1.0 * math.log(0.75) + 0.0 * math.log(0.25)) + 0.5 * (0.5 * math.log(0.75) + 0.5 * math.log(0.25)))
    assert Probe(x, cfg, "bce").r0 == pytest.approx((col0 + col1) / 2, rel=1e-5)


class _FixedRec(torch.nn.Module):
    """A stand-in 'model' reconstructing x as a * x: its error on the probe is (1 - a)^2 mean(x^2)."""

    def __init__(self):
        super().__init__()
        self.mask = lambda: torch.ones(1)
        self.encoder = lambda x: x
        self.a = 0.0
        self.decoder = lambda codes: self.a * codes


def test_probe_fires_when_the_median_rises_by_the_budget_of_the_gap():
    from latentdim.training import Probe

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    cfg = TrainConfig(probe_samples=64, probe_window=3, loss_budget=0.1)
    probe = Probe(x, cfg, "mse")
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
    from latentdim.training import Probe

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    cfg = TrainConfig(probe_samples=64, probe_window=1, probe_every=50, plateau_window=100, plateau_tolerance=0.05)
    probe = Probe(x, cfg, "mse")
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
    from latentdim.training import Probe

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    cfg = TrainConfig(probe_samples=64, probe_window=1, loss_budget=0.01, plateau_window=500, probe_every=50)
    probe = Probe(x, cfg, "mse")
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
    short = Probe(x, cfg, "mse")
    short.warmup_values = [0.5, 0.6]
    assert short.warmup_noise() == 0.0  # too few probes: the budget alone decides


def test_loss_budget_limit_by_hand():
    """r0 reconstructs every probe sample as the probe mean; the limit is best + max(budget x gap,
    budget_noise x noise), gap = r0 - best."""
    from latentdim.training import Probe

    x = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    probe = Probe(x, TrainConfig(probe_samples=2, loss_budget=0.02, budget_noise=3.0), "mse")
    assert probe.r0 == pytest.approx(2.5)  # mean of (0-1)^2, (0-2)^2, (2-1)^2, (4-2)^2
    probe.noise = 0.001
    assert probe.threshold(gap=1.0, best=0.1) == pytest.approx(0.1 + 0.02)  # 2% of the gap binds
    assert probe.threshold(gap=0.1, best=0.1) == pytest.approx(0.1 + 0.003)  # 3 x the noise binds
    # BCE: the mean image as logits, so r0 is the entropy of the mean pixel
    y = torch.tensor([[0.0], [1.0]])
    assert Probe(y, TrainConfig(probe_samples=2), "bce").r0 == pytest.approx(np.log(2.0), rel=1e-6)
