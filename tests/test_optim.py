"""TF1-style RMSProp (SPEC §4) against the update rule written out by hand."""

import math

import torch

from latentdim.optim import TF1RMSprop


def test_first_two_steps_match_tf1_formula():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = TF1RMSprop([p], lr=0.1, rho=0.9, eps=1e-10)
    grads = [torch.tensor([0.5, -3.0]), torch.tensor([0.25, 1.0])]
    expected = [1.0, -2.0]
    v = [1.0, 1.0]  # TF1: the accumulator starts at 1.0
    for g in grads:
        p.grad = g.clone()
        opt.step()
        for i in range(2):
            gi = float(g[i])
            v[i] = 0.9 * v[i] + 0.1 * gi * gi
            expected[i] -= 0.1 * gi / math.sqrt(v[i] + 1e-10)
    torch.testing.assert_close(p.detach(), torch.tensor(expected), rtol=1e-6, atol=1e-7)


def test_first_step_is_smaller_than_pytorch_rmsprop():
    # SPEC §4: PyTorch's accumulator starts at 0, giving a first step of lr / sqrt(1 - alpha).
    a = torch.nn.Parameter(torch.zeros(1))
    b = torch.nn.Parameter(torch.zeros(1))
    ours = TF1RMSprop([a], lr=0.01)
    theirs = torch.optim.RMSprop([b], lr=0.01, alpha=0.9, eps=1e-10)
    for p, opt in ((a, ours), (b, theirs)):
        p.grad = torch.tensor([0.1])
        opt.step()
    # ours: 0.01 * 0.1 / sqrt(0.9 + 0.001); torch: 0.01 * 0.1 / sqrt(0.001)
    assert math.isclose(float(-a.detach()), 0.001 / math.sqrt(0.901), rel_tol=1e-5)
    assert math.isclose(float(-b.detach()), 0.001 / math.sqrt(0.001), rel_tol=1e-4)


def test_parameters_without_grad_are_left_alone():
    p = torch.nn.Parameter(torch.ones(3))
    q = torch.nn.Parameter(torch.ones(3))
    opt = TF1RMSprop([p, q], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    torch.testing.assert_close(q.detach(), torch.ones(3))
    assert "square_avg" not in opt.state[q]
