"""The Python API: arrays in, a typed result out, nothing printed."""

import json

import numpy as np
import pytest

import latentdim
from latentdim.train import TrainConfig

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
