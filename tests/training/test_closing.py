"""Closing by verified elimination: its start, its rounds, retries, rollback and resume."""

import numpy as np
import pytest
import torch

from latentdim.data import make_synthetic
from latentdim.models import ModelSpec, build_model, count_active
from latentdim.training import train
from elimhelpers import elim_config as _elim_config


def _elim_data():
    x = make_synthetic(2, d=8, samples=256, seed=0)
    return torch.from_numpy((x - x.mean(0)) / x.std(0))


def test_elimination_needs_a_loss_budget():
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    with pytest.raises(ValueError, match="loss budget"):
        train(model, _elim_data(), _elim_config(loss_budget=0.0))


def test_elimination_start_keeps_one_dimension_open_when_every_draw_closed():
    from latentdim.training import Elimination, Probe

    x = _elim_data()
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 3, width=16)).eval()
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([0.02, 0.09, 0.05]))  # mu 0.020, 0.086, 0.049: all below 0.1
    cfg = _elim_config()
    Elimination(cfg).begin(model, Probe(x, cfg, "mse"))
    mu = model.mask().detach()
    assert [float(v) > 0.9 for v in mu] == [False, True, False] and count_active(mu) == 1


def test_elimination_start_equalises_the_open_mask_exactly():
    from latentdim.training import ELIMINATE_OPEN_THETA, Elimination, Probe

    x = _elim_data()
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16)).eval()
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([0.3, 1.0, 2.5, 0.05]))  # mu 0.26, 0.63, 0.92, 0.049
        before = model.decoder(model.mask() * model.encoder(x))
        before_without_3 = model.decoder(model.mask() * torch.tensor([1.0, 1, 1, 0]) * model.encoder(x))
    cfg = _elim_config()
    elim = Elimination(cfg)
    elim.begin(model, Probe(x, cfg, "mse"))
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
    from latentdim.training import Elimination, Probe

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
    probe = Probe(x, cfg, "mse")
    elim = Elimination(cfg)
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
    from latentdim.training import Elimination

    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    with torch.no_grad():
        model.mask.theta.fill_(5.0)
    elim = Elimination(_elim_config(eliminate_retries=retries))
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
    from latentdim.training import Elimination

    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    with torch.no_grad():
        model.mask.theta.fill_(5.0)
    elim = Elimination(_elim_config(eliminate_retries=1, eliminate_fraction=1.0))
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


@pytest.mark.slow
def test_elimination_end_to_end_keeps_rounds_within_budget_and_rolls_back_the_rest():
    from latentdim.training import ELIMINATE_OPEN_THETA

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


@pytest.mark.slow
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
    assert states and states[-1]["step"] == stop_at and states[-1]["closing"]["snapshot"] is not None
    model, out, _ = _elim_run(cfg, resume=states[-1])
    assert out.steps == ref_out.steps and out.closing_rounds == ref_out.closing_rounds
    assert (out.history_rec, out.history_w, out.history_phase) == (ref_out.history_rec, ref_out.history_w, ref_out.history_phase)
    for (name, a), (_, b) in zip(model.state_dict().items(), ref_model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
