"""Where a trained image model's Frechet distance comes from: the latent prior or the decoder.

For each checkpoint (from `latentdim estimate ... --out DIR`, with or without `--no-mask`) the
decoder is fed three kinds of codes, and the pixel Frechet distance (FD) and precision / recall of
its images against real ones are printed:

- prior: mu * z, z ~ N(0, I), what `latentdim sample` draws;
- Gaussian fit: a normal distribution with the mean and covariance of the encoded real images on
  the active dimensions (how far a better-matched prior would get);
- real codes: the encoded real images themselves, i.e. reconstructions (the decoder's own floor).

It also prints the range of the active codes' standard deviations (1 where the aggregate
posterior matches the prior's scale) and, with `--draws K`, the spread of the prior's FD over K
draws of samples and real images. docs/mask-dynamics.md ("Why MaskAAE's samples lose at
capacity 64") has the figures this produced.

Usage: python bench/fd_anatomy.py DATA.h5 CHECKPOINT [CHECKPOINT ...] [--samples 5000] [--draws 0]
       DATA.h5: the HDF5 image array the models were trained on (uint8 (N, H, W[, C]) or
       (N, C, H, W); the first dataset unless --key).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import torch

from latentdim.checkpoint import load_checkpoint
from latentdim.metrics.frechet import frechet_distance_samples
from latentdim.metrics.precision_recall import precision_recall
from latentdim.models.mask import ACTIVE_THRESHOLD


def load_images(path: str, key: str | None, shape: tuple[int, ...]) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] in the model's layout."""
    with h5py.File(path, "r") as f:
        x = np.asarray(f[key if key is not None else next(iter(f.keys()))])
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    c, h, w = shape
    if x.ndim == 3:
        return x[:, None]
    return x if x.shape[1:] == (c, h, w) else x.transpose(0, 3, 1, 2)


@torch.no_grad()
def decode(model, z: np.ndarray) -> np.ndarray:
    parts = [torch.sigmoid(model.decoder(torch.from_numpy(p).float())) for p in np.array_split(z, max(1, len(z) // 500))]
    return torch.cat(parts).numpy().reshape(len(z), -1)


def scores(generated: np.ndarray, real: np.ndarray) -> str:
    precision, recall = precision_recall(real, generated)
    return f"{frechet_distance_samples(generated, real):.2f} ({precision:.2f} / {recall:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--key", default=None)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=0, help="also the prior's FD over this many draws")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print("| checkpoint | active | code std | FD prior (prec / rec) | FD Gaussian fit | FD real codes |"
          + (" prior FD over draws |" if args.draws else ""))
    print("| --- | --- | --- | --- | --- | --- |" + (" --- |" if args.draws else ""))
    for path in args.checkpoints:
        model, spec, _ = load_checkpoint(Path(path))
        x = load_images(args.data, args.key, tuple(spec.data_shape))
        rng = np.random.default_rng(0)
        real_x = x[rng.permutation(len(x))[: args.samples]]
        real = real_x.reshape(len(real_x), -1)
        n = len(real)
        mu = model.mask().numpy()
        active = mu >= ACTIVE_THRESHOLD
        codes = torch.cat([model.encoder(torch.from_numpy(p)) for p in np.array_split(real_x, max(1, n // 500))]).numpy()
        a = codes[:, active].astype(np.float64)
        std = a.std(0)

        def embed(z_active: np.ndarray) -> np.ndarray:
            z = np.zeros((len(z_active), len(mu)), dtype=np.float32)
            z[:, active] = z_active
            return z * mu

        prior = scores(decode(model, embed(rng.standard_normal((n, int(active.sum()))))), real)
        fit = scores(decode(model, embed(rng.multivariate_normal(a.mean(0), np.cov(a, rowvar=False), n))), real)
        own = scores(decode(model, embed(a)), real)
        row = f"| {path} | {int(active.sum())} | {std.min():.2f}-{std.max():.2f} | {prior} | {fit} | {own} |"
        if args.draws:
            fds = []
            for k in range(args.draws):
                g = np.random.default_rng(100 + k)
                other = x[g.permutation(len(x))[:n]].reshape(n, -1)
                fds.append(frechet_distance_samples(decode(model, embed(g.standard_normal((n, int(active.sum()))))), other))
            row += f" {min(fds):.2f}-{max(fds):.2f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
