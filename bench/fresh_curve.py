"""Fresh errors E(k): the held-out error of plain auto-encoders trained from scratch with k codes
(latentdim.training.verify.fresh_error, the numbers the fresh verification reads), on one case of
bench/benchmark.py, as a fraction of the data's variance. One JSON line per size.

Usage: python bench/fresh_curve.py M4_Nonlinear 7 6 5 4 3 [--steps 5000] [--width 256] [--depth 3] [--seed 0]
(docs/accuracy.md, "Fresh verification", has the curves it measured.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import cases, make  # noqa: E402

from latentdim.training import verify  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", help="a case name of bench/benchmark.py (skdim or family)")
    ap.add_argument("sizes", type=int, nargs="+", help="code sizes k")
    ap.add_argument("--steps", type=int, default=verify.DEFAULT_STEPS)
    ap.add_argument("--width", type=int, default=verify.FreshConfig.width)
    ap.add_argument("--depth", type=int, default=verify.FreshConfig.depth)
    ap.add_argument("--lr", type=float, default=verify.FreshConfig.lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    found = [c for c in cases(["skdim", "family"]) if c.name == a.case]
    if not found:
        raise SystemExit(f"unknown case {a.case!r}; the cases are: {', '.join(c.name for c in cases(['skdim', 'family']))}")
    case = found[0]
    x = make(case).astype(np.float32)
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)  # latentdim's standardisation
    train_x, held_out = verify.split(torch.from_numpy(x), a.seed)
    cfg = verify.FreshConfig(depth=a.depth, width=a.width, steps=a.steps, lr=a.lr)
    for k in a.sizes:
        start = time.perf_counter()
        err = verify.fresh_error(train_x, held_out, k, cfg, a.seed)
        print(json.dumps({"case": case.name, "ID": case.intrinsic, "k": k, "error": round(err, 5), "steps": a.steps,
                          "width": a.width, "depth": a.depth, "lr": a.lr, "seed": a.seed,
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
