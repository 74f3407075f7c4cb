"""The tiny elimination setting shared by the training and API tests."""

from latentdim.training import TrainConfig


def elim_config(**overrides):
    """Closing by elimination on a small MLP: short warm-up, probe, rounds and refine."""
    values = dict(closing="eliminate", loss_budget=0.05, warmup_steps=60, warmup_plateau=False, probe_every=10, probe_window=3,
                  probe_samples=128, eliminate_hold=40, eliminate_ramp=20, refine_steps=10, max_steps=2000,
                  batch_size=32, history_every=10)
    return TrainConfig(**{**values, **overrides})
