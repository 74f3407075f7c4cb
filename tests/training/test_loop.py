"""The training loop: a tiny run end to end, the curves, determinism, the code's re-standardisation."""

import numpy as np
import pytest
import torch

from latentdim.data import make_synthetic
from latentdim.models import ModelSpec, build_model
from latentdim.training import TrainConfig, train


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


def test_restandardise_codes_keeps_reconstructions_and_standardises_active_codes():
    from latentdim.training import restandardise_codes

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


def _run_with(steps: int = 60, **fields):
    x = make_synthetic(2, d=8, samples=256, seed=0)
    x = (x - x.mean(0)) / x.std(0)
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    config = TrainConfig(max_steps=steps, batch_size=32, history_every=10, warmup_steps=5, **fields)
    return model, train(model, torch.from_numpy(x), config)


def test_a_traced_step_gives_the_eager_numbers():
    """compile="eager": torch.compile captures the step's networks as graphs and runs them as they
    are (no code generation), so the run must be the eager one bit for bit, the parameters the
    model's own (the compiled wrappers share them)."""
    import torch._dynamo

    eager_model, eager = _run_with()
    torch._dynamo.reset()
    traced_model, traced = _run_with(compile="eager")
    torch._dynamo.reset()
    assert traced.history_mask == eager.history_mask and traced.history_rec == eager.history_rec
    assert traced.history_w == eager.history_w
    for name, t in eager_model.state_dict().items():
        assert torch.equal(t, traced_model.state_dict()[name]), name


def test_bfloat16_runs_the_forward_passes_in_bfloat16_and_keeps_float32_weights():
    model, out = _run_with(precision="bfloat16")
    _, fp32 = _run_with()
    assert out.stop_reason == "max_steps" and np.isfinite(out.last.reconstruction) and np.isfinite(out.last.wasserstein)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert out.history_rec != fp32.history_rec  # autocast was on: bfloat16 rounds differently
    # and it is the same training: the reconstruction curves agree to about bfloat16's precision
    assert np.allclose(out.history_rec, fp32.history_rec, rtol=0.1)


@pytest.mark.parametrize("fields, words", [({"precision": "float16"}, "precision"), ({"compile": "nonsense"}, "compile backend")])
def test_unknown_precision_or_compile_backend_is_refused(fields, words):
    with pytest.raises(ValueError, match=words):
        _run_with(steps=1, **fields)
