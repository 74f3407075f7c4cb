"""Fresh verification (training/verify.py): the rule on fixed error curves, and the fresh error."""

import math

import pytest
import torch

from latentdim.models import ModelSpec, build_model
from latentdim.training import verify
from latentdim.training.verify import (
    FreshConfig,
    FreshWorkers,
    WorkerFailed,
    at_once,
    close_cheapest,
    fresh_error,
    limit,
    one_thread_error,
    split,
    verify_sizes,
)


def test_limit_is_the_budget_of_the_explained_part():
    # best 0.1 explains 0.9 of the variance; 2% of it is 0.018
    assert limit(0.1, 0.02) == pytest.approx(0.118)
    assert limit(0.0, 0.01) == pytest.approx(0.01)


def curve(values):
    calls = []

    def error(k):
        calls.append(k)
        return values[k]

    return error, calls


def test_verify_sizes_accepts_while_within_the_budget_of_the_best_so_far():
    # from m = 5: limit 0.001 + 0.02 * 0.999 = 0.02098 for every size (best stays 0.001)
    error, calls = curve({5: 0.001, 4: 0.01, 3: 0.0205, 2: 0.5, 1: 0.9})
    k, records = verify_sizes(error, 5, 0.02)
    assert k == 3
    assert calls == [5, 4, 3, 2]  # stops at the first refusal
    assert [r["kept"] for r in records] == [True, True, True, False]
    assert records[0]["limit"] is None
    assert records[1]["limit"] == pytest.approx(0.02098)


def test_verify_sizes_moves_the_reference_to_a_lower_error():
    # a fresh network at m fits worse than at m - 1 (0.03 vs 0.001): the limit follows the best
    error, _ = curve({4: 0.03, 3: 0.001, 2: 0.025, 1: 0.5})
    k, records = verify_sizes(error, 4, 0.02)
    # at 3: limit 0.03 + 0.02 * 0.97 = 0.0494, kept, best 0.001; at 2: limit 0.02098 < 0.025
    assert k == 3
    assert records[2]["limit"] == pytest.approx(0.001 + 0.02 * 0.999)


def test_verify_sizes_never_goes_below_one():
    error, calls = curve({2: 0.0, 1: 0.0})
    k, _ = verify_sizes(error, 2, 0.02)
    assert k == 1 and calls == [2, 1]


def test_the_check_goes_up_while_one_code_fewer_is_over_the_limit():
    # E(k): elimination stopped at 3 of a 5-dimensional curve. limit(E(4)) = 0.02 + 0.01 * 0.98 =
    # 0.0298 < E(3) 0.09: 4 needed; limit(E(5)) = 0.005 + 0.01 * 0.995 = 0.01495 < E(4) 0.02: 5
    # needed; limit(E(6)) = 0.0049 + 0.01 * 0.9951 = 0.014851 > E(5): 6 not. Nothing goes down.
    curve = {2: 0.3, 3: 0.09, 4: 0.02, 5: 0.005, 6: 0.0049, 7: 0.0048}
    asked = []
    k, records = verify_sizes(lambda j: asked.append(j) or curve[j], 3, 0.01, capacity=8)
    assert k == 5 and asked == [3, 4, 5, 6]
    assert [(r["k"], r.get("up", False), r["kept"]) for r in records] == [(3, False, True), (4, True, True), (5, True, True), (6, True, False)]
    assert records[1]["limit"] == pytest.approx(0.0298) and records[1]["below"] == 0.09
    assert records[3]["limit"] == pytest.approx(0.014851)
    # up to the capacity and no further
    assert verify_sizes(curve.get, 3, 0.01, capacity=4)[0] == 4


def test_when_one_more_code_adds_nothing_the_check_goes_down_as_before():
    curve = {6: 0.0019, 5: 0.002, 4: 0.003, 3: 0.005, 2: 0.04692}
    down, down_records = verify_sizes(curve.get, 5, 0.01)  # no upward step (capacity m)
    k, records = verify_sizes(curve.get, 5, 0.01, capacity=10)
    assert k == down == 3
    assert records[1] == {"k": 6, "up": True, "error": 0.0019, "limit": pytest.approx(0.011881),
                          "allowance": pytest.approx(0.009981), "below": 0.002, "kept": False}
    assert [r for r in records if not r.get("up")] == down_records


def test_reopen_latest_opens_the_last_closed_first():
    model = build_model(ModelSpec("mlp", (6,), 5, width=8))
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([5.0, 0.0, 0.0, 0.0, 0.0]))
    rounds = [{"dims": [3, 1], "kept": True}, {"dims": [2], "kept": False}, {"dims": [4, 2], "kept": True}]
    # the last kept round's costliest (2), then 4, then the first kept round's 1
    assert verify.reopen_latest(model, rounds, 3) == [2, 4, 1]
    assert model.mask.theta.tolist() == [5.0, 5.0, 5.0, 0.0, 5.0]
    assert verify.reopen_latest(model, [], 5) == [3]  # only what is closed


def test_split_is_seeded_and_disjoint():
    x = torch.arange(200.0).reshape(100, 2)
    tr, ev = split(x, 0)
    assert ev.shape[0] == 10 and tr.shape[0] == 90
    assert set(tr[:, 0].tolist()).isdisjoint(ev[:, 0].tolist())
    assert torch.equal(split(x, 0)[1], ev)


def test_fresh_error_of_no_code_is_one_and_of_enough_codes_small():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 2, generator=g)
    x = z @ torch.randn(2, 4, generator=g)  # a 2-d linear subspace of R^4
    x = (x - x.mean(0)) / x.std(0)
    tr, ev = split(x, 0)
    cfg = FreshConfig(depth=1, width=32, steps=600, batch=64, lr=3e-3)
    assert fresh_error(tr, ev, 0, cfg, 0) == 1.0
    two = fresh_error(tr, ev, 2, cfg, 0)
    one = fresh_error(tr, ev, 1, cfg, 0)
    assert two < 0.05
    # one code cannot hold two independent directions: at least the smaller principal part is lost
    eig = torch.linalg.eigvalsh(torch.cov(ev.T))
    assert one > 0.5 * float(eig[-2] / eig.sum())
    assert math.isfinite(one) and fresh_error(tr, ev, 2, cfg, 0) == two  # seeded: the same twice



def test_fresh_error_is_a_plain_adam_autoencoder_written_out():
    """The reference: the same auto-encoder trained with Adam's per-tensor loop (torch's default on
    a CPU), written out here; fresh_error's foreach Adam must give the same number, bit for bit."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 5, generator=g) @ torch.randn(5, 7, generator=g)
    tr, ev = split(x, 2)
    cfg = FreshConfig(depth=2, width=16, steps=120, batch=32, lr=2e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        enc = [torch.nn.Linear(7, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)]
        dec = [torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 7)]
        net = torch.nn.Sequential(torch.nn.Sequential(*enc), torch.nn.Sequential(*dec))
        opt = torch.optim.Adam(net.parameters(), lr=2e-3, foreach=False)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 120)
        gb = torch.Generator().manual_seed(2)
        for _ in range(120):
            b = tr[torch.randint(tr.shape[0], (32,), generator=gb)]
            loss = (net(b) - b).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            want = float((net(ev) - ev).pow(2).mean() / ev.var(dim=0).mean())
    assert fresh_error(tr, ev, 3, cfg, 2) == want

class FixedCosts:
    """A probe whose ablation costs are fixed numbers (what closing one dimension would cost)."""

    def __init__(self, costs):
        self.costs, self.asked = costs, []

    def ablation_costs(self, model, dims):
        self.asked.append(list(dims))
        return {j: self.costs[j] for j in dims}


def test_close_cheapest_closes_in_the_order_of_cost_and_keeps_one_open():
    model = build_model(ModelSpec("mlp", (6,), 4, width=8))
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([5.0, 5.0, 0.0, 5.0]))  # dim 2 already closed
    probe = FixedCosts({0: 0.5, 1: 0.1, 3: 0.3})
    assert close_cheapest(model, probe, 1) == [1]
    assert model.mask.theta.tolist() == [5.0, 0.0, 0.0, 5.0]
    assert probe.asked == [[0, 1, 3]]  # only the open dims are weighed
    # asked for more than can go: the last open dimension stays
    assert close_cheapest(model, probe, 5) == [3]
    assert model.mask.theta.tolist() == [5.0, 0.0, 0.0, 0.0]


def _plane_run(**kw):
    """A tiny MaskAAE on a 2-d plane in R^6 through every phase in a few hundred steps (the
    distributed test's settings), with 200-step fresh networks."""
    from latentdim.settings import for_data
    from latentdim.training import TrainConfig, train

    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 2, generator=g) @ torch.randn(2, 6, generator=g)
    x = (x - x.mean(0)) / x.std(0)
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (6,), 4, 32, True))
    config = for_data(TrainConfig(batch_size=32, max_steps=900, warmup_steps=100, plateau_window=100, probe_every=10,
                                  probe_window=3, probe_samples=256, eliminate_ramp=30, eliminate_hold=60,
                                  settle_window=200, refine_steps=100, restandardise_every=20, verify_steps=200),
                      images=False)
    outcome = train(model, x, config, seed=0, **kw)
    return model, outcome


def test_an_interrupted_verification_resumes_to_the_uninterrupted_run():
    model, outcome = _plane_run()
    assert outcome.stop_reason == "settled"
    # it ran: m kept, m + 1 not needed (a plane in R^6 at capacity 4), then down to a refusal or one code
    ks = [r["k"] for r in outcome.verification]
    assert len(ks) >= 3 and ks[1] == ks[0] + 1 and outcome.verification[1]["up"] and not outcome.verification[1]["kept"]
    assert ks[2:] == list(range(ks[0] - 1, ks[-1] - 1, -1))

    stages, saved = [], []

    def stop_at_the_second_size():
        return sum("trained afresh" in s for s in stages) >= 2

    _, cut = _plane_run(on_stage=stages.append, should_stop=stop_at_the_second_size, on_checkpoint=saved.append)
    assert cut.stop_reason == "interrupted"
    state = saved[-1]
    assert state["schedule"]["phase"] == "verify"
    assert len(state["closing"]["check"]["records"]) == 1  # the size in progress is not recorded

    resumed_model, resumed = _plane_run(resume=state)
    assert resumed.stop_reason == "settled" and resumed.steps == outcome.steps
    assert resumed.verification == outcome.verification
    for name, t in model.state_dict().items():
        assert torch.equal(t, resumed_model.state_dict()[name]), name


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def _subspace(n=800):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, generator=g) @ torch.randn(3, 6, generator=g)
    return split((x - x.mean(0)) / x.std(0), 0)


def test_workers_give_the_numbers_of_one_thread_here(two_threads):
    tr, ev = _subspace()
    cfg = FreshConfig(depth=2, width=32, steps=150, batch=32)
    with FreshWorkers(3, tr, ev) as workers:
        got = workers.errors([4, 3, 2], cfg, 5)
        again = workers.errors([1], cfg, 5)  # a worker keeps its data for the next size
    want = {k: one_thread_error(tr, ev, k, cfg, 5) for k in (4, 3, 2, 1)}
    assert {**got, **again} == want
    assert torch.get_num_threads() == 2  # one_thread_error puts the thread count back


def test_a_failing_worker_says_why_and_a_stop_kills_the_workers():
    tr, ev = _subspace(200)
    with FreshWorkers(1, tr, ev) as workers, pytest.raises(WorkerFailed, match="width|Linear|negative|-1"):
        workers.errors([2], FreshConfig(width=-1, steps=10), 0)
    with FreshWorkers(2, tr, ev) as workers:
        procs = list(workers._procs)
        asked = []
        assert workers.errors([2, 1], FreshConfig(steps=10_000_000), 0, should_stop=lambda: asked.append(1) or len(asked) > 3) is None
        assert all(p.poll() is not None for p in procs)  # stopped, not left training


def test_at_once_is_one_per_cpu_thread_and_one_on_a_gpu_with_ranks_or_short_networks(two_threads):
    cpu = torch.device("cpu")
    assert at_once(cpu, False, 5000) == 2
    assert at_once(torch.device("cuda"), False, 5000) == 1
    assert at_once(cpu, True, 5000) == 1  # several ranks
    assert at_once(cpu, False, verify.WORKERS_FROM_STEPS - 1) == 1
    torch.set_num_threads(16)
    assert at_once(cpu, False, 5000) == verify.MAX_AT_ONCE


def test_sizes_trained_at_once_give_the_run_one_at_a_time_gives(two_threads, monkeypatch):
    model, outcome = _plane_run()  # 200-step networks: one at a time, here
    monkeypatch.setattr(verify, "WORKERS_FROM_STEPS", 0)
    stages = []
    at_once_model, at_once_outcome = _plane_run(on_stage=stages.append)
    assert any("at once" in s for s in stages)
    assert at_once_outcome.verification == outcome.verification and at_once_outcome.steps == outcome.steps
    for name, t in model.state_dict().items():
        assert torch.equal(t, at_once_model.state_dict()[name]), name


def test_when_the_workers_fail_the_check_goes_on_here_with_the_same_numbers(two_threads, monkeypatch):
    _, outcome = _plane_run()
    monkeypatch.setattr(verify, "WORKERS_FROM_STEPS", 0)

    def no_workers(*args, **kwargs):
        raise WorkerFailed("could not start a worker process: test")

    monkeypatch.setattr(verify, "FreshWorkers", no_workers)
    with pytest.warns(RuntimeWarning, match="one size at a time"):
        _, fallback = _plane_run()
    assert fallback.verification == outcome.verification
