"""Wall time of the whole `latentdim sample model.onnx -n 100 -o DIR` process (issue 5's benchmark).

Two lines:

- ``mnist``: the SPEC §5 ``mnist`` preset at FULL width (decoder FC1024 x 4, 28x28x1 output,
  sigmoid in the graph), capacity 16 with the mask set by hand to m_A = 10. The model is
  untrained: it is built, saved as a checkpoint the way ``estimate`` saves one and exported with
  ``latentdim export``. Sampling time depends on the graph's shape, not on its weights, so training
  would not change it. Issue 5's target: median < 2 s.
- ``mlp`` (vectors): a vector model trained briefly (`latentdim estimate synthetic:n=8 --capacity
  16`, full-width ``mlp`` preset, ``--steps`` steps), exported. The target is stated for the image
  preset only, so this line has none.

For each, `latentdim sample` runs once as a warm-up (file cache, onnxruntime's first load), then
``--runs`` times as a fresh process, one after another; the table gives the median, min and max.

Usage: python bench/sample_speed.py [--runs 5] [--n 100] [--steps 20] [--lines mnist,mlp] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

#: Issue 5: `latentdim sample` of 100 images from the mnist preset in under this many seconds.
TARGET_S = 2.0
LINES = ("mnist", "mlp")


def latentdim_command() -> list[str]:
    """The installed `latentdim` script beside this Python, else `python -m latentdim`."""
    script = Path(sys.executable).with_name("latentdim")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "latentdim"]


def check(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return wall


def mnist_checkpoint(path: Path, capacity: int = 16, m_active: int = 10) -> None:
    """An untrained full-width mnist-preset checkpoint with m_A = m_active (theta 3 open, 0 closed)."""
    import torch

    from latentdim.checkpoint import save_checkpoint
    from latentdim.models import ModelSpec, build_model
    from latentdim.training import TrainConfig

    torch.manual_seed(0)
    spec = ModelSpec("mnist", (1, 28, 28), capacity)  # width None: the preset's own 1024
    model = build_model(spec).eval()
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([3.0] * m_active + [0.0] * (capacity - m_active)))
    extra = {"config": asdict(TrainConfig(reconstruction="bce")), "standardiser": None, "seed": 0, "result": {}}
    save_checkpoint(path, model, spec, extra)


def time_sampling(cli: list[str], model: Path, work: Path, n: int, runs: int) -> list[float]:
    check([*cli, "sample", str(model), "-n", str(n), "-o", str(work / "warmup")])
    return [check([*cli, "sample", str(model), "-n", str(n), "-o", str(work / f"s{i}")]) for i in range(runs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed sample runs (the median is reported)")
    ap.add_argument("--n", type=int, default=100, help="samples per run")
    ap.add_argument("--steps", type=int, default=20,
                    help="training steps of the mlp model (about 2 s each on a busy 2-core CPU)")
    ap.add_argument("--lines", default=",".join(LINES), help=f"comma-separated subset of {', '.join(LINES)}")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp folder)")
    a = ap.parse_args()
    lines = [x.strip() for x in a.lines.split(",") if x.strip()]
    unknown = sorted(set(lines) - set(LINES))
    if unknown:
        ap.error(f"unknown line(s) {', '.join(unknown)}; choose from {', '.join(LINES)}")

    cli = latentdim_command()
    work = a.keep or Path(tempfile.mkdtemp(prefix="latentdim-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        if "mnist" in lines:
            folder = work / "mnist"
            folder.mkdir(exist_ok=True)
            mnist_checkpoint(folder / "checkpoint.pt")
            check([*cli, "export", str(folder), "-o", str(folder / "model.onnx")])
            walls = time_sampling(cli, folder / "model.onnx", folder, a.n, a.runs)
            rows.append(("mnist (full width, untrained, m=16, m_A=10, 1x28x28 PNG)", walls, TARGET_S))
        if "mlp" in lines:
            folder = work / "mlp"
            check([*cli, "estimate", "synthetic:n=8", "--capacity", "16", "--max-steps", str(a.steps),
                   "--device", "cpu", "--out", str(folder / "run"), "--force", "--json"])
            check([*cli, "export", str(folder / "run"), "-o", str(folder / "model.onnx")])
            walls = time_sampling(cli, folder / "model.onnx", folder, a.n, a.runs)
            rows.append((f"mlp (vectors d=128, synthetic:n=8, m=16, {a.steps} steps, samples.h5)", walls, None))
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print("preset\tn\tmedian_s\tmin_s\tmax_s\truns\ttarget\tstatus")
    for name, walls, target in rows:
        median = statistics.median(walls)
        target_s, status = ("-", "-") if target is None else (f"< {target:g} s", "OK" if median < target else "MISS")
        print(f"{name}\t{a.n}\t{median:.3f}\t{min(walls):.3f}\t{max(walls):.3f}\t{len(walls)}\t{target_s}\t{status}")


if __name__ == "__main__":
    main()
