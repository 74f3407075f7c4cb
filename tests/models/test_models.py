"""The mask parameterisation and projection (SPEC §2) and the mlp preset."""

import math

import pytest
import torch

from latentdim.errors import LatentdimError
from latentdim.models import Mask, ModelSpec, build_model, count_active, count_undecided


def test_mask_is_one_minus_exp_minus_theta():
    mask = Mask(4)
    with torch.no_grad():
        mask.theta.copy_(torch.tensor([0.0, 0.1, 1.0, 5.0]))
    expected = torch.tensor([0.0, 1 - math.exp(-0.1), 1 - math.exp(-1.0), 1 - math.exp(-5.0)])
    torch.testing.assert_close(mask(), expected)


def test_mask_initialisation_range():
    torch.manual_seed(0)
    theta = Mask(10000).theta.detach()
    assert float(theta.min()) >= 0.0 and float(theta.max()) <= 5.0
    assert abs(float(theta.mean()) - 2.5) < 0.1  # Uniform[0, 5]


def test_projection_clamps_theta_at_zero_and_can_reopen():
    mask = Mask(3)
    with torch.no_grad():
        mask.theta.copy_(torch.tensor([-0.5, 0.2, 3.0]))
    mask.project()
    torch.testing.assert_close(mask.theta.detach(), torch.tensor([0.0, 0.2, 3.0]))


def test_counts():
    mu = torch.tensor([0.0, 0.0999, 0.1, 0.5, 0.8999, 0.9, 0.99])
    assert count_active(mu) == 5  # mu >= 0.1
    assert count_undecided(mu) == 3  # 0.1 <= mu < 0.9


def test_disabled_mask_is_ones_and_frozen():
    mask = Mask(5, enabled=False)
    torch.testing.assert_close(mask(), torch.ones(5))
    assert not mask.theta.requires_grad


def test_mlp_shapes():
    model = build_model(ModelSpec("mlp", (7,), 3, width=8))
    x = torch.randn(2, 7)
    codes = model.encoder(x)
    assert codes.shape == (2, 3)
    assert model.decoder(codes).shape == (2, 7)
    assert model.critic(codes).shape == (2, 1)


def test_bad_specs():
    with pytest.raises(LatentdimError, match="capacity"):
        build_model(ModelSpec("mlp", (7,), 0))
    with pytest.raises(LatentdimError, match="width"):
        build_model(ModelSpec("mlp", (7,), 2, width=0))
    with pytest.raises(LatentdimError, match="unknown preset"):
        build_model(ModelSpec("nope", (7,), 2))
    with pytest.raises(LatentdimError, match="needs vectors"):
        build_model(ModelSpec("mlp", (1, 28, 28), 2))


def test_mlp_depth_adds_hidden_layers_and_depth_one_is_the_papers_network():
    torch.manual_seed(0)
    plain = build_model(ModelSpec("mlp", (8,), 4, width=16))
    torch.manual_seed(0)
    one = build_model(ModelSpec("mlp", (8,), 4, width=16, depth=1))
    for (name, a), (_, b) in zip(plain.state_dict().items(), one.state_dict().items()):
        assert torch.equal(a, b), name  # same layers in the same order: the same initial weights
    deep = build_model(ModelSpec("mlp", (8,), 4, width=16, depth=3))
    linears = [m for m in deep.encoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 16), (16, 16), (16, 4)]
    assert deep.decoder(torch.zeros(2, 4)).shape == (2, 8)
    with pytest.raises(LatentdimError, match="at least 1"):
        build_model(ModelSpec("mlp", (8,), 4, depth=0))
    with pytest.raises(LatentdimError, match="applies to vectors"):
        build_model(ModelSpec("mnist", (1, 28, 28), 4, depth=2))
