"""Each loss of SPEC §3 on tiny fixed tensors against values computed by hand."""

import math

import torch
from torch import nn

from latentdim import losses


def test_closed_variance_penalty_uses_biased_variance_and_delta():
    codes = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # each column: mean 1, biased variance 1
    mu = torch.tensor([0.0, 1.0])  # delta = exp(-10 mu^2) = [1, e^-10]
    expected = (1.0 + math.exp(-10.0)) / 2.0
    assert math.isclose(float(losses.closed_variance_penalty(codes, mu)), expected, rel_tol=1e-6)


def test_ae_loss_weights_penalty_by_100():
    codes = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    mu = torch.tensor([0.0, 0.0])  # delta = 1 for both columns: penalty = mean(1, 1) = 1
    assert math.isclose(float(losses.ae_loss(torch.tensor(0.5), codes, mu)), 0.5 + 100.0, rel_tol=1e-6)


def test_delta_is_constant_for_gradients():
    mu = torch.tensor([0.3, 0.6], requires_grad=True)
    codes = torch.tensor([[0.0, 1.0], [2.0, 3.0]], requires_grad=True)
    _, grad_mu = torch.autograd.grad(losses.closed_variance_penalty(codes, mu), [codes, mu], allow_unused=True)
    assert grad_mu is None


def test_mask_loss_terms():
    mu = torch.tensor([0.5, 1.0])
    # 1000 * 0.01 + (1 + 0.5)^2 + 2 * (0.25 + 0) + 3 * 1.5
    value = losses.mask_loss(torch.tensor(0.01), torch.tensor(0.5), mu, lambda3=2.0, closing_pressure=3.0)
    assert math.isclose(float(value), 10.0 + 2.25 + 0.5 + 4.5, rel_tol=1e-6)
    papers = losses.mask_loss(torch.tensor(0.01), torch.tensor(0.5), mu, lambda3=2.0)
    assert math.isclose(float(papers), 12.75, rel_tol=1e-6)


def test_critic_generator_and_wasserstein():
    h_enc = torch.tensor([[1.0], [3.0]])  # mean 2
    h_prior = torch.tensor([[5.0], [7.0]])  # mean 6
    assert float(losses.critic_loss(h_enc, h_prior, torch.tensor(0.5))) == 2.0 - 6.0 + 10.0 * 0.5
    assert float(losses.generator_loss(h_enc)) == -2.0
    assert float(losses.wasserstein(h_prior, h_enc)) == 4.0


def test_gradient_penalty_of_linear_critic():
    # A linear critic has gradient w everywhere, so the penalty is (||w|| - 1)^2 = (5 - 1)^2.
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    prior, encoded = torch.randn(8, 2), torch.randn(8, 2)
    assert math.isclose(float(losses.gradient_penalty(critic, prior, encoded).detach()), 16.0, rel_tol=1e-5)


def test_reconstruction_kinds():
    x = torch.tensor([[1.0, 0.0]])
    logits = torch.zeros(1, 2)  # sigmoid(0) = 0.5: BCE is log 2 for either target
    assert math.isclose(float(losses.reconstruction(logits, x, "bce")), math.log(2.0), rel_tol=1e-6)
    assert math.isclose(float(losses.reconstruction(torch.tensor([[3.0, 1.0]]), x, "mse")), (4.0 + 1.0) / 2, rel_tol=1e-6)
