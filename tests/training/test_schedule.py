"""The mask schedule: lambda3, beta, the phases and the closing rules' registry."""

import pytest

from latentdim.training import LAMBDA3_CAP, MaskSchedule, TrainConfig, reference_r
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


def test_reference_config_is_the_papers():
    cfg = TrainConfig.reference()
    assert (cfg.lr_mask, cfg.lr_ae, cfg.lr_critic, cfg.lr_generator) == (5e-4, 5e-4, 1e-4, 1e-4)
    assert cfg.schedule == "reference" and cfg.closing_pressure == 0.0 and cfg.critic_steps == 5
    s = MaskSchedule(cfg, capacity=16)
    assert s.phase == "reference" and s.beta() == 0.0


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


def test_closing_rules_registry_and_their_phases():
    from latentdim.training import CLOSING_RULES, Elimination, Pressure
    from latentdim.training.closing import closing_rule_class

    assert CLOSING_RULES == {"pressure": Pressure, "eliminate": Elimination}
    assert closing_rule_class(TrainConfig()) is Pressure  # None reads as the pressure
    cfg = TrainConfig(closing="eliminate", warmup_steps=0, eliminate_ramp=250, eliminate_hold=500)
    s = MaskSchedule(cfg, capacity=4)
    assert s.phase == "close" and s.mask_frozen and s.beta() == 0.0  # elimination sets the mask, it does not learn it
    assert s.steps_left(10) == 240  # the ramp
    s.hold(250)
    assert s.steps_left(300) == 450  # the hold
    p = MaskSchedule(TrainConfig(warmup_steps=0, closing_pressure=5.0, budget_hold=300), capacity=4)
    assert p.phase == "close" and not p.mask_frozen and p.beta() == 5.0 and p.steps_left(10) is None
    p.hold(20)
    assert p.steps_left(30) == 290


def test_phase_reads_as_its_value_and_checkpoints_as_plain_text():
    from latentdim.training import Phase

    assert str(Phase.HOLD) == "hold" and f"{Phase.REFINE}" == "refine" and Phase.WARMUP == "warmup"
    assert {"warmup": 1}[Phase.WARMUP] == 1  # str-keyed tables (progress, pictures) find a Phase
    s = MaskSchedule(TrainConfig(warmup_steps=3), capacity=4)
    s.observe(3, 4, 0)
    state = s.state()
    assert state["phase"] == "close" and type(state["phase"]) is str
    again = MaskSchedule(TrainConfig(warmup_steps=3), capacity=4)
    again.load(state)
    assert again.phase is Phase.CLOSE and again.phase_start == 3
