"""The critic update's gradients in closed form, for the critic every preset but ``mnist`` has.

The WGAN-GP critic loss (SPEC §3) is

    L = mean_i H(e_i) - mean_i H(p_i) + 10 mean_i (||grad_u H(u_i)|| - 1)^2,
    u_i = a_i p_i + (1 - a_i) e_i,

and autograd gets its gradient by a double backward: three forward passes, a backward with
``create_graph`` and a backward through that. For H(x) = w2 . relu(W1 x + b1) + b2 (one hidden
layer, :func:`closed_form_supported`) everything is a few matrix products. With s_i the 0/1
pattern of the hidden units that are on at u_i (PyTorch's ReLU derivative: 0 at exactly 0),

    g_i = grad_u H(u_i) = W1^T (w2 * s_i)              (a constant of u within s_i's region)
    c_i = dL/dg_i = (20 / n) (||g_i|| - 1) g_i / ||g_i||   (0 where g_i = 0, as autograd's norm)
    dL/dW1 = sum over e, p rows of dA_i x_i^T  +  sum_i (w2 * s_i) c_i^T
    dL/dw2 = (1/n) sum_i (relu(A_e,i) - relu(A_p,i))  +  sum_i s_i * (W1 c_i)
    dL/db1 = (1/n) w2 * sum_i (s_e,i - s_p,i),   dL/db2 = 0

where A = W1 x + b1 and dA_i = +-(1/n) w2 * s_i on the encoded (+) and prior (-) rows; the
penalty has no gradient in b1 or through s (piecewise constant), as in autograd. The same
numbers as autograd's up to float rounding (tests/training/test_critic.py checks them against
autograd in float64); about a quarter of the time on the CPU (bench/speed.py).
"""

from __future__ import annotations

import torch
from torch import nn

from latentdim.losses import GP_WEIGHT


def closed_form_supported(critic: nn.Module) -> bool:
    """True for ``Sequential(Linear(m, N), ReLU(), Linear(N, 1))``, the critic of SPEC §5."""
    if not isinstance(critic, nn.Sequential) or len(critic) != 3:
        return False
    first, act, last = critic
    return (isinstance(first, nn.Linear) and isinstance(act, nn.ReLU) and isinstance(last, nn.Linear)
            and last.out_features == 1 and first.bias is not None and last.bias is not None)


def critic_gradients(critic: nn.Sequential, encoded: torch.Tensor, prior: torch.Tensor,
                     a: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The critic loss's gradients in (W1, b1, W2, b2) order, and W = mean H(prior) - mean H(encoded)
    before the update (a 0-dim tensor).

    Args:
        critic: a critic for which :func:`closed_form_supported` holds.
        encoded, prior: (n, m) masked codes and prior draws.
        a: (n, 1) the interpolation weights of the gradient penalty, as
            :func:`latentdim.losses.gradient_penalty` draws them.
    """
    first, _, last = critic
    w1, b1, w2, b2 = first.weight, first.bias, last.weight, last.bias  # (N, m), (N,), (1, N), (1,)
    n, m = encoded.shape
    with torch.no_grad():
        u = a * prior + (1.0 - a) * encoded
        x = torch.cat([encoded, prior, u])  # (3n, m)
        # s_i for every row: 1 where the hidden unit is on (0 at 0, as ReLU's derivative), as floats
        pre = torch.addmm(b1, x, w1.t())  # (3n, N)
        on = torch.gt(pre, 0.0, out=torch.empty_like(pre))
        on_ep, on_u = on[: 2 * n], on[2 * n :]
        # the penalty: g_i = W1^T (w2 * s_i) = s_i (W1 * w2^T), then c_i
        g = on_u @ (w1 * w2.t())  # (n, m)
        norm = g.norm(dim=1, keepdim=True)
        scale = torch.where(norm > 0, (2.0 * GP_WEIGHT / n) * (norm - 1.0) / norm, torch.zeros_like(norm))
        c = scale * g
        # the mean terms: dL/dA_i = sign_i w2 * s_i with sign +1/n (encoded rows), -1/n (prior rows);
        # q_ep = sum_i [sign_i x_i, sign_i] s_i^T gives dL/dW1 and dL/db1 up to the factor w2
        # (products with the (rows, N) patterns on the right: the fast layout for BLAS here)
        sign = torch.cat([torch.full((n, 1), 1.0 / n, dtype=x.dtype, device=x.device),
                          torch.full((n, 1), -1.0 / n, dtype=x.dtype, device=x.device)])
        q_ep = torch.cat([sign * x[: 2 * n], sign], dim=1).t() @ on_ep  # (m + 1, N)
        q_u = c.t() @ on_u  # (m, N): sum_i c_i s_i^T
        grad_w1 = (w2 * (q_ep[:m] + q_u)).t().contiguous()
        grad_b1 = w2[0] * q_ep[m]
        # sum_i sign_i relu(A_i) = sum_i sign_i s_i (W1 x_i + b1): the mean terms' dL/dw2
        w1_t = w1.t()
        mean_w2 = (w1_t * q_ep[:m]).sum(0) + b1 * q_ep[m]  # (N,)
        grad_w2 = (mean_w2 + (w1_t * q_u).sum(0)).unsqueeze(0)
        w_value = -(mean_w2 @ w2[0])  # mean H(prior) - mean H(encoded); b2 cancels
        grad_b2 = torch.zeros_like(b2)
    return [grad_w1, grad_b1, grad_w2, grad_b2], w_value
