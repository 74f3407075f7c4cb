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

Usage: python bench/manifolds.py [--capacity 16] [--seed 0] [--only NAME ...]
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


CASES = {
    "linear": (5, linear),
    "swissroll": (2, swissroll),
    "scurve": (2, scurve),
    "tanh-mlp": (6, tanh_mlp),
    "synthetic-n4": (4, "synthetic:n=4"),
    "synthetic-d64": (8, "synthetic:n=8,d=64"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capacity", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=list(CASES))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            n, make = CASES[name]
            if callable(make):
                path = Path(tmp) / f"{name}.h5"
                with h5py.File(path, "w") as f:
                    f["X"] = make(np.random.default_rng(1234)).astype(np.float32)
                source = str(path)
            else:
                source = make
            cmd = [sys.executable, "-m", "latentdim", "estimate", source, "--capacity", str(a.capacity), "--seed", str(a.seed), "--json"]
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
