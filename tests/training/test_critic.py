"""The critic update's closed-form gradients (training/critic.py) against a hand computation and
against autograd's double backward, and their use in the loop."""

import pytest
import torch
from torch import nn

from latentdim import losses
from latentdim.data import make_synthetic
from latentdim.models import ModelSpec, build_model
from latentdim.models.conv import critic as deep_critic
from latentdim.models.mlp import mlp_critic
from latentdim.training import TrainConfig, train
from latentdim.training.critic import closed_form_supported, critic_gradients
from latentdim.training.loop import Run


def _autograd(critic, encoded, prior, a):
    """The loop's autograd path, with the penalty's interpolation weights given."""
    h_enc, h_prior = critic(encoded), critic(prior)
    u = (a * prior + (1.0 - a) * encoded).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(u).sum(), u, create_graph=True)
    penalty = ((grad.norm(dim=1) - 1.0) ** 2).mean()
    loss = losses.critic_loss(h_enc, h_prior, penalty)
    return torch.autograd.grad(loss, list(critic.parameters())), losses.wasserstein(h_prior, h_enc).detach()


def test_hand_computed_two_unit_critic():
    # H(x) = 2 relu(x) + 3 relu(-x) + 0.5; e = 1, p = -2, a = 0.5 so u = -0.5.
    # H(e) = 2.5, H(p) = 6.5: W = 4. At u only the second unit is on: g = -3, ||g|| = 3,
    # penalty 10 (3 - 1)^2 = 40 and dL/dg = 20 (3 - 1) / 3 * (-3) = -40.
    # dL/dW1 = [2, 0] (e row) + [0, 6] (p row: -1 * 3 * -2) + [0, 3 * -40]  = [2, -114]
    # dL/db1 = [2, 0] + [0, -3]; dL/dw2 = relu(A_e) - relu(A_p) + s_u * (W1 c) = [1, -2] + [0, 40]
    critic = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        critic[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        critic[0].bias.zero_()
        critic[2].weight.copy_(torch.tensor([[2.0, 3.0]]))
        critic[2].bias.fill_(0.5)
    e, p, a = (torch.tensor([[v]], dtype=torch.float64) for v in (1.0, -2.0, 0.5))
    (gw1, gb1, gw2, gb2), w = critic_gradients(critic, e, p, a)
    assert float(w) == 4.0
    assert gw1.tolist() == [[2.0], [-114.0]]
    assert gb1.tolist() == [2.0, -3.0]
    assert gw2.tolist() == [[1.0, 38.0]]
    assert gb2.tolist() == [0.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_autograd_double_backward(seed):
    torch.manual_seed(seed)
    critic = mlp_critic(6, 64).double()
    with torch.no_grad():
        critic[0].bias[:16] -= 100.0  # units that are never on
    encoded, prior = torch.randn(32, 6, dtype=torch.float64), torch.randn(32, 6, dtype=torch.float64)
    prior[0] = 0.0  # a row where every hidden unit is off... (with encoded[0] = 0 below)
    encoded[0] = 0.0
    with torch.no_grad():
        critic[0].bias[16:] = -critic[0].bias[16:].abs()  # ... so its penalty gradient is 0
    a = torch.rand(32, 1, dtype=torch.float64)
    expected, w_expected = _autograd(critic, encoded, prior, a)
    got, w = critic_gradients(critic, encoded, prior, a)
    assert torch.allclose(w, w_expected, rtol=1e-12, atol=1e-12)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)


def test_which_critics_have_the_closed_form():
    assert closed_form_supported(mlp_critic(16, 1024))
    assert closed_form_supported(deep_critic(16, 64, depth=1))
    assert not closed_form_supported(deep_critic(16, 64, depth=4))  # the mnist preset: autograd
    assert not closed_form_supported(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)))
    model = build_model(ModelSpec("mlp", (8,), 4, width=16))
    assert Run(model, torch.zeros(64, 8), TrainConfig()).closed_form_critic
    assert not Run(model, torch.zeros(64, 8), TrainConfig(critic_update="autograd")).closed_form_critic
    with pytest.raises(ValueError, match="critic_update"):
        Run(model, torch.zeros(64, 8), TrainConfig(critic_update="fast"))


def test_training_with_either_update_follows_the_same_path():
    # Same random draws in the same order; only float rounding differs, which 40 steps do not grow
    # beyond a few parts per million of the weights.
    x = make_synthetic(2, d=8, samples=256, seed=0)
    x = torch.from_numpy((x - x.mean(0)) / x.std(0))
    weights = {}
    for update in ("closed_form", "autograd"):
        torch.manual_seed(0)
        model = build_model(ModelSpec("mlp", (8,), 4, width=16))
        train(model, x, TrainConfig(max_steps=40, batch_size=32, warmup_steps=5, critic_update=update))
        weights[update] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.allclose(weights["closed_form"], weights["autograd"], rtol=1e-4, atol=1e-5)
