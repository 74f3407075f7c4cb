"""RMSProp with TensorFlow-1 semantics (SPEC §4).

PyTorch's RMSprop starts its squared-gradient average at 0 and divides by sqrt(v) + eps; the
reference code's TF1 optimiser starts it at 1.0 and divides by sqrt(v + eps). Starting at 1 makes
the first steps about lr * g instead of about lr / sqrt(1 - rho) ~ 3 lr, which matters for the mask.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class TF1RMSprop(torch.optim.Optimizer):
    """v <- rho v + (1 - rho) g^2;  p <- p - lr g / sqrt(v + eps);  v starts at ``initial_accumulator``.

    Args:
        params: parameters to optimise.
        lr: learning rate.
        rho: decay of the squared-gradient average (TF1 ``decay``; SPEC §4: 0.9).
        eps: added inside the square root (SPEC §4: 1e-10).
        initial_accumulator: starting value of v (TF1: 1.0).
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        rho: float = 0.9,
        eps: float = 1e-10,
        initial_accumulator: float = 1.0,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, initial_accumulator=initial_accumulator))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer API
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            accs = []
            for p in params:
                state = self.state[p]
                if "square_avg" not in state:
                    state["square_avg"] = torch.full_like(p, group["initial_accumulator"])
                accs.append(state["square_avg"])
            rho, eps, lr = group["rho"], group["eps"], group["lr"]
            torch._foreach_mul_(accs, rho)
            torch._foreach_addcmul_(accs, grads, grads, value=1.0 - rho)
            denom = torch._foreach_add(accs, eps)
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)
        return None
