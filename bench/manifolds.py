"""m_A on known-dimension data other than the built-in synthetic process.

Each data set is made on the fly (nothing is committed), written to a temporary HDF5 file and
passed to the real command, `latentdim estimate FILE --capacity M --json`. The table shows the
true dimension n beside m_A, so a method tuned on `synthetic:` alone shows up here.

| name | n | how it is made |
| --- | --- | --- |
| linear | 5 | z ~ N(0, I_5) times a random 5 x 30 matrix, plus noise of std 0.01 |
| swissroll | 2 | the swiss roll (t, h) -> (t cos t, h, t sin t), rotated into R^20, noise 0.01 |
| scurve | 2 | the S-curve, rotated into R^20, noise 0.01 |
| tanh-mlp | 6 | z ~ N(0, I_6) through a random 3-layer tanh network to R^64 |
| synthetic-n4 | 4 | synthetic:n=4 (the papers' process with another n) |
| synthetic-d64 | 8 | synthetic:n=8,d=64 |
| blob | 2 | 28x28 uint8 images of a Gaussian spot (std 2.5 px) at a uniform position (x, y) |
| blob-size | 3 | the spot with its std uniform in [1.5, 3.5] px as a third factor |
| bar | 3 | a bar 14 px long at a uniform centre (x, y) and angle in [0, pi); the angle is a circle (0 and pi draw the same bar), which a continuous encoder needs 2 coordinates for, so an auto-encoder answers 4 |
| two-blobs | 4 | two spots at independent uniform positions |
| blob-colour | 3 | 32x32 RGB: a spot (std 3 px) at (x, y) whose colour runs from red to blue with a third factor |
| blob-64 | 2 | 64x64 gray: a spot (std 5 px) at (x, y) |

The image cases are written as uint8 arrays, so `estimate` treats them as images (binary
cross-entropy, the image closing rule): (N, 28, 28) -> preset `mnist`, blob-colour's (N, 32, 32, 3)
-> `cifar`, blob-64's (N, 64, 64) -> `conv`. The full-width presets take about a second a step on
one CPU thread: use `--width 64` on a CPU.

Usage: python bench/manifolds.py [--capacity 16] [--seed 0] [--width W] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

SAMPLES = 20000


def rotate_into(x: np.ndarray, d: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Embeds (N, k) data isometrically into R^d by a random orthonormal frame, plus noise."""
    q, _ = np.linalg.qr(rng.normal(size=(d, x.shape[1])))
    return x @ q.T + noise * rng.normal(size=(x.shape[0], d))


def linear(rng):
    return rng.normal(size=(SAMPLES, 5)) @ rng.normal(size=(5, 30)) + 0.01 * rng.normal(size=(SAMPLES, 30))


def swissroll(rng):
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=SAMPLES))
    h = 21 * rng.uniform(size=SAMPLES)
    return rotate_into(np.stack([t * np.cos(t), h, t * np.sin(t)], 1), 20, rng, 0.01)


def scurve(rng):
    t = 3 * np.pi * (rng.uniform(size=SAMPLES) - 0.5)
    h = 2 * rng.uniform(size=SAMPLES)
    return rotate_into(np.stack([np.sin(t), h, np.sign(t) * (np.cos(t) - 1)], 1), 20, rng, 0.01)


def tanh_mlp(rng):
    x = rng.normal(size=(SAMPLES, 6))
    for fan_in, fan_out in ((6, 64), (64, 64), (64, 64)):
        x = np.tanh(x @ (rng.normal(size=(fan_in, fan_out)) * 1.5 / np.sqrt(fan_in)) + 0.1 * rng.normal(size=fan_out))
    return x


GRID = np.mgrid[0:28, 0:28].astype(np.float32)  # (2, 28, 28): row, column coordinates


def spots(centres: np.ndarray, std: np.ndarray, size: int = 28) -> np.ndarray:
    """(N, size, size) float images of Gaussian spots at centres (N, 2) with stds (N,)."""
    grid = GRID if size == 28 else np.mgrid[0:size, 0:size].astype(np.float32)
    d2 = ((grid[None] - centres[:, :, None, None]) ** 2).sum(1)
    return np.exp(-d2 / (2 * std[:, None, None] ** 2))


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(255 * images), 0, 255).astype(np.uint8)


def blob(rng):
    return to_uint8(spots(rng.uniform(7, 21, size=(SAMPLES, 2)), np.full(SAMPLES, 2.5)))


def blob_size(rng):
    return to_uint8(spots(rng.uniform(7, 21, size=(SAMPLES, 2)), rng.uniform(1.5, 3.5, size=SAMPLES)))


def bar(rng):
    centre = rng.uniform(9, 19, size=(SAMPLES, 2))
    angle = rng.uniform(0, np.pi, size=SAMPLES)
    direction = np.stack([np.sin(angle), np.cos(angle)], 1)
    rel = GRID[None] - centre[:, :, None, None]  # (N, 2, 28, 28)
    along = np.clip((rel * direction[:, :, None, None]).sum(1), -7, 7)  # projection onto the bar, clipped to its ends
    d2 = ((rel - along[:, None] * direction[:, :, None, None]) ** 2).sum(1)
    return to_uint8(np.exp(-d2 / (2 * 1.2**2)))


def two_blobs(rng):
    first = spots(rng.uniform(7, 21, size=(SAMPLES, 2)), np.full(SAMPLES, 2.0))
    second = spots(rng.uniform(7, 21, size=(SAMPLES, 2)), np.full(SAMPLES, 2.0))
    return to_uint8(np.maximum(first, second))


def blob_colour(rng):
    spot = spots(rng.uniform(8, 24, size=(SAMPLES, 2)), np.full(SAMPLES, 3.0), size=32)
    t = rng.uniform(size=(SAMPLES, 1))
    colour = (1 - t) * np.array([0.9, 0.2, 0.1]) + t * np.array([0.1, 0.3, 0.9])  # (N, 3)
    return to_uint8(spot[..., None] * colour[:, None, None, :])  # (N, 32, 32, 3)


def blob_64(rng):
    return to_uint8(spots(rng.uniform(16, 48, size=(SAMPLES, 2)), np.full(SAMPLES, 5.0), size=64))


CASES = {
    "linear": (5, linear),
    "swissroll": (2, swissroll),
    "scurve": (2, scurve),
    "tanh-mlp": (6, tanh_mlp),
    "synthetic-n4": (4, "synthetic:n=4"),
    "synthetic-d64": (8, "synthetic:n=8,d=64"),
    "blob": (2, blob),
    "blob-size": (3, blob_size),
    "bar": (3, bar),
    "two-blobs": (4, two_blobs),
    "blob-colour": (3, blob_colour),
    "blob-64": (2, blob_64),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capacity", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, help="passed to estimate --width (a narrower preset)")
    ap.add_argument("--only", nargs="*", default=list(CASES), choices=list(CASES))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            n, make = CASES[name]
            if callable(make):
                path = Path(tmp) / f"{name}.h5"
                with h5py.File(path, "w") as f:
                    x = make(np.random.default_rng(1234))
                    f["X"] = x if x.dtype == np.uint8 else x.astype(np.float32)
                source = str(path)
            else:
                source = make
            cmd = [sys.executable, "-m", "latentdim", "estimate", source, "--capacity", str(a.capacity), "--seed", str(a.seed), "--json"]
            if a.width is not None:
                cmd += ["--width", str(a.width)]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"{name}: {proc.stderr}")
            r = json.loads(proc.stdout)
            rows.append((name, n, a.capacity, a.seed, r["m_active"], r["undecided"], r["steps"], r["stop_reason"], f"{wall:.0f}"))
            print(*rows[-1], sep="\t", file=sys.stderr, flush=True)
    print("| data | true n | m | seed | m_A | undecided | steps | stop | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
