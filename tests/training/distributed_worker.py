"""One rank of tests/training/test_distributed.py, started by torchrun: trains a tiny MaskAAE and
saves its weights, mask and outcome to OUT/rank{RANK}.pt."""

import sys

import torch

from latentdim.models import ModelSpec, build_model
from latentdim.settings import for_data
from latentdim.training import TrainConfig, train
from latentdim.training.distributed import join

out, steps = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
world = join(torch.device("cpu"))
g = torch.Generator().manual_seed(1)
x = torch.randn(512, 2, generator=g) @ torch.randn(2, 6, generator=g)  # a 2-d plane in R^6
x = (x - x.mean(0)) / x.std(0)
torch.manual_seed(0)
model = build_model(ModelSpec("mlp", (6,), 4, 32, True))
# every phase in a few hundred steps: warm-up, elimination rounds, the fresh verification (tiny), the refine
# phase's re-standardisation
config = for_data(TrainConfig(batch_size=32, max_steps=steps, warmup_steps=100, plateau_window=100, probe_every=10,
                              probe_window=3, probe_samples=256, eliminate_ramp=30, eliminate_hold=60,
                              settle_window=200, refine_steps=100, restandardise_every=20, verify_steps=200), images=False)
outcome = train(model, x, config, world=world, seed=0)
torch.save({"model": model.state_dict(), "mask": model.mask().detach(), "steps": outcome.steps,
            "rounds": outcome.closing_rounds, "verification": outcome.verification,
            "world": world.size}, f"{out}/rank{world.rank}.pt")
