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
draws of samples and real images. docs/log/mask-dynamics.md ("Why MaskAAE's samples lose at
capacity 64") has the figures this produced.

Usage: python bench/fd_anatomy.py DATA CHECKPOINT [CHECKPOINT ...] [--samples 5000] [--draws 0]
       DATA: the image folder or HDF5 image array the models were trained on (read as
       `latentdim estimate` reads it, at the checkpoint's size and channels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from latentdim.models import chunked as _chunked
from latentdim.checkpoint import load_checkpoint
from latentdim.data.images import load_images
from latentdim.metrics.frechet import frechet_distance_samples
from latentdim.metrics.precision_recall import precision_recall
from latentdim.models.mask import ACTIVE_THRESHOLD


@torch.no_grad()
def decode(model, z: np.ndarray) -> np.ndarray:
    """Images in [0, 1], one flattened row per code."""
    return torch.sigmoid(_chunked(model.decoder, torch.from_numpy(z))).numpy().reshape(len(z), -1)


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
    data: dict[tuple[int, ...], np.ndarray] = {}  # read once per (channels, size)
    for path in args.checkpoints:
        model, spec, _ = load_checkpoint(Path(path))
        c, size = spec.data_shape[0], spec.data_shape[1]
        if (c, size) not in data:
            images = load_images(args.data, key=args.key, channels=c, size=size).images
            data[c, size] = np.asarray(images, dtype=np.float32) / 255.0
        x = data[c, size]
        rng = np.random.default_rng(0)
        real_x = x[rng.permutation(len(x))[: args.samples]]
        real = real_x.reshape(len(real_x), -1)
        n = len(real)
        mu = model.mask().numpy()
        active = mu >= ACTIVE_THRESHOLD
        codes = _chunked(model.encoder, torch.from_numpy(real_x)).numpy()
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
