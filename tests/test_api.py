"""The Python API: arrays in, a typed result out, nothing printed."""

import json

import numpy as np
import pytest
import torch

import latentdim
from latentdim.training import TrainConfig
from elimhelpers import elim_config

TINY = TrainConfig(max_steps=5, batch_size=16)


def test_estimate_on_an_array_prints_nothing(capsys):
    x = np.random.default_rng(0).normal(size=(100, 6)).astype("float32")
    result = latentdim.estimate(x, capacity=3, config=TINY, width=16)
    assert isinstance(result, latentdim.EstimateResult)
    assert result.capacity == 3 and len(result.mask) == 3 and result.source == "array"
    assert result.m_active == len(result.active) == sum(v >= 0.1 for v in result.mask)
    assert result.covariance.shape == (3, 3)
    json.dumps(result.to_dict())  # JSON-able
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_generated_data_is_in_user_units():
    # Data far from the origin: if generation were not mapped back through the standardisation,
    # the Frechet distance would include ||mean||^2 ~ 1e6 * d.
    x = 1000.0 + np.random.default_rng(1).normal(size=(200, 4)).astype("float32")
    result = latentdim.estimate(x, capacity=2, config=TINY, width=16)
    assert result.frechet_distance < 100.0


def test_baselines_and_precision_recall():
    # 200 points uniform on a random 2-D plane in R^6: every local PCA finds exactly 2 nonzero
    # eigenvalues, so lPCA is 2 (closed form); TwoNN and MLE are statistical, near 2.
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T
    x = (rng.uniform(size=(200, 2)) @ basis).astype("float32")
    result = latentdim.estimate(x, capacity=3, config=TINY, width=16)
    assert set(result.baselines) == {"twonn", "mle", "lpca"}
    assert result.baselines["lpca"] == 2.0
    assert 1.5 < result.baselines["twonn"] < 2.5 and 1.5 < result.baselines["mle"] < 2.5
    assert 0.0 <= result.precision <= 1.0 and 0.0 <= result.recall <= 1.0
    skipped = latentdim.estimate(x, capacity=3, config=TINY, width=16, baselines=False)
    assert skipped.baselines is None and skipped.to_dict()["baselines"] is None


def test_constant_data_fails_before_training_unless_baselines_are_skipped():
    x = np.ones((100, 3), dtype="float32")
    steps = []
    with pytest.raises(latentdim.LatentdimError, match="no-baselines"):
        latentdim.estimate(x, capacity=2, config=TINY, width=16, on_step=steps.append)
    assert steps == []
    assert latentdim.estimate(x, capacity=2, config=TINY, width=16, baselines=False).baselines is None


def test_bad_capacity_and_too_few_samples():
    x = np.zeros((10, 3), dtype="float32")
    with pytest.raises(latentdim.LatentdimError, match="capacity"):
        latentdim.estimate(x, capacity=0)
    with pytest.raises(latentdim.LatentdimError, match="fewer than one batch"):
        latentdim.estimate(x, capacity=2)


def test_out_must_be_a_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(latentdim.LatentdimError, match="not a folder"):
        latentdim.estimate(np.zeros((100, 3)), capacity=2, out=f, config=TINY)


@pytest.mark.slow
def test_estimate_reports_how_sharp_an_elimination_ended():
    from latentdim.result import closing_margin

    config = elim_config(warmup_steps=300, verify=False)
    result = latentdim.estimate("synthetic:n=2,d=8,samples=256", capacity=4, width=16, baselines=False, config=config)
    assert result.verification == []
    last = result.closing_rounds[-1]
    assert not last["kept"] and last["k"] == 1 and last["allowance"] > 0
    assert result.closing_margin == round(closing_margin(result.closing_rounds), 4)
    assert result.closing_margin <= (last["error"] - last["limit"]) / last["allowance"] + 1e-4
    assert json.loads(json.dumps(result.to_dict()))["closing_margin"] == result.closing_margin


@pytest.mark.slow
def test_a_fresh_verification_decides_m_a_and_its_margin():
    """The same run with the vectors' default fresh verification: it starts from elimination's
    m_A, m_A is its last kept size (the mask closed to match), and the margin is its refusal's."""
    config = elim_config(warmup_steps=300)
    result = latentdim.estimate("synthetic:n=2,d=8,samples=256", capacity=4, width=16, baselines=False, config=config)
    records = result.verification
    assert records and records[0]["limit"] is None
    # elimination's m: the capacity less the dims of its kept rounds
    assert records[0]["k"] == 4 - sum(len(r["dims"]) for r in result.closing_rounds if r["kept"])
    kept = [r["k"] for r in records if r["kept"]]
    assert result.m_active == min(kept) == len(result.active)
    if not records[-1]["kept"]:
        last = records[-1]
        assert last["k"] == result.m_active - 1
        expected = (last["error"] - last["limit"]) / last["allowance"]
        assert result.closing_margin == pytest.approx(expected, abs=1e-4)
    assert json.loads(json.dumps(result.to_dict()))["verification"] == records


@pytest.mark.slow
def test_a_full_dimensional_gaussian_keeps_every_dimension():
    """N(0, I_4) in R^4 at capacity 8, with the default rule (elimination, Adam auto-encoder):
    removing any of the four dimensions loses a quarter of what the code explains, far over the
    2% budget, while the four spurious codes cost nothing, so m_A must be 4."""
    x = np.random.default_rng(3).normal(size=(2000, 4)).astype("float32")
    config = TrainConfig(warmup_steps=200, plateau_window=200, probe_every=10, probe_window=3,
                         probe_samples=256, eliminate_hold=100, eliminate_ramp=20, refine_steps=20, max_steps=3000)
    result = latentdim.estimate(x, capacity=8, width=64, seed=0, baselines=False, config=config)
    assert result.stop_reason == "settled"
    assert result.m_active == 4
    opened = result.closing_rounds[0]["open"]  # 8, less any dim whose initial mu was below 0.1
    assert sum(r["k"] for r in result.closing_rounds if r["kept"]) == opened - 4  # the spurious ones went
    assert result.closing_margin is not None and result.closing_margin >= 1  # a clear gap below 4


@pytest.mark.slow
def test_a_pressure_that_closes_every_dimension_is_not_silent():
    """Only the closing pressure (loss budget 0) can close every dimension; the API warns and the
    table says so, instead of reporting m_A = 0 as an answer."""
    from rich.console import Console

    from latentdim.cli import result_table

    x = np.random.default_rng(4).normal(size=(256, 3)).astype("float32")
    config = TrainConfig(loss_budget=0.0, closing_pressure=1e4, lr_mask=0.1, warmup_steps=0, max_steps=300,
                         batch_size=32)
    with pytest.warns(UserWarning, match="no dimension was left open"):
        result = latentdim.estimate(x, capacity=3, width=16, baselines=False, config=config)
    assert result.m_active == 0
    console = Console(width=300, record=True)
    console.print(result_table(result))
    assert "no dimension was left open" in console.export_text()


def test_the_package_root_lists_its_lazy_names_without_importing_torch():
    import subprocess
    import sys

    code = "import sys, latentdim; d = dir(latentdim); print('estimate' in d, 'EstimateResult' in d, 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["True", "True", "False"], proc.stderr
    assert set(latentdim.__all__) <= set(dir(latentdim))


def test_the_sampling_function_the_changelog_names_exists():
    import inspect

    from latentdim.metrics.fid import compute_fid
    from latentdim.sample import sample

    assert "on_progress" in inspect.signature(sample).parameters
    assert "on_progress" in inspect.signature(compute_fid).parameters


def test_estimate_takes_the_common_settings_as_keywords_and_gives_back_the_model():
    # Issue 21, item 6: no TrainConfig import for the common settings; the result can encode,
    # decode and sample with the trained model.
    import latentdim

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 5)) * [1, 2, 3, 4, 5] + 10).astype("float32")
    result = latentdim.estimate(x, 3, max_steps=7, batch_size=16, width=16, baselines=False)
    assert result.steps == 7 and result.model is not None
    codes = result.encode(x[:10])
    assert codes.shape == (10, result.m_active) and codes.dtype == np.float32
    samples = result.sample(6, seed=1)
    assert samples.shape == (6, 5)
    np.testing.assert_array_equal(samples, result.sample(6, seed=1))  # seeded
    # decode(encode(x)) is the reconstruction through the active dims (the exported generator's
    # input): the model's own path with the inactive codes zeroed
    model = result.model
    with torch.no_grad():
        std = result.standardiser.transform(x[:10])
        mu = model.mask()
        mu = mu * (mu >= 0.1)
        direct = result.standardiser.inverse(model.decoder(mu * model.encoder(torch.from_numpy(std))).numpy())
    np.testing.assert_allclose(result.decode(codes), direct, rtol=1e-5, atol=1e-5)
    with pytest.raises(latentdim.LatentdimError, match=r"needs \(N, "):
        result.decode(np.zeros((2, result.m_active + 1)))
    assert "model" not in result.to_dict() and "standardiser" not in result.to_dict()
    with pytest.raises(latentdim.LatentdimError, match="max_steps must be an integer"):
        latentdim.estimate(x, 3, max_steps=2.5)


def test_the_scikit_learn_style_estimator_follows_scikit_dimension():
    import latentdim

    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    est = latentdim.MaskAAE(capacity=3, max_steps=5, batch_size=16, width=16)
    assert "MaskAAE" in dir(latentdim) and repr(est) == "MaskAAE(capacity=3, max_steps=5, batch_size=16, width=16)"
    assert est.fit(x) is est
    assert est.dimension_ == est.result_.m_active == sum(v >= 0.1 for v in est.result_.mask)
    assert est.transform(x[:4]).shape == (4, est.dimension_)
    clone = latentdim.MaskAAE(**est.get_params())
    assert clone.fit_transform(x) == est.dimension_  # the same seed repeats the run
    with pytest.raises(ValueError, match="no parameter 'capacty'"):
        est.set_params(capacty=4)


def test_progress_true_shows_the_command_lines_display_and_changes_nothing(capsys):
    import latentdim

    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    quiet = latentdim.estimate(x, 3, max_steps=30, batch_size=16, width=16, baselines=False)
    assert capsys.readouterr().err == ""
    shown = latentdim.estimate(x, 3, max_steps=30, batch_size=16, width=16, baselines=False, progress=True)
    err = capsys.readouterr().err
    assert "training: warm-up" in err and "step 30" in err and "evaluating on 200 samples" in err
    assert shown.mask == quiet.mask and shown.steps == quiet.steps == 30
