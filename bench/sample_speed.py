"""Wall time of the whole `latentdim sample model.onnx -n 100` process (issue 5's benchmark line).

Trains a vector model briefly (`latentdim estimate synthetic:n=8 --capacity 16`, full-width `mlp`
preset, a few steps: the generator's size, not its quality, sets the time), exports it,
then runs `latentdim sample` as a fresh process several times, one after another, and prints the
median, min and max wall time. The issue's target (< 2 s) is for the `mnist` image preset, which
does not exist yet; this measures the vector path.

Usage: python bench/sample_speed.py [--runs 5] [--n 100] [--steps 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed sample runs (the median is reported)")
    ap.add_argument("--n", type=int, default=100, help="samples per run")
    ap.add_argument("--steps", type=int, default=20, help="training steps (about 2 s each on a busy 2-core CPU)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp folder)")
    a = ap.parse_args()

    cli = latentdim_command()
    work = a.keep or Path(tempfile.mkdtemp(prefix="latentdim-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_dir, model = work / "run", work / "model.onnx"
        check([*cli, "estimate", "synthetic:n=8", "--capacity", "16", "--max-steps", str(a.steps),
               "--device", "cpu", "--out", str(run_dir), "--json"])
        check([*cli, "export", str(run_dir), "-o", str(model)])
        check([*cli, "sample", str(model), "-n", str(a.n), "-o", str(work / "warmup")])  # warm the file cache
        walls = [check([*cli, "sample", str(model), "-n", str(a.n), "-o", str(work / f"s{i}")]) for i in range(a.runs)]
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print("model\tpreset\tn\truns\tmedian_s\tmin_s\tmax_s")
    print(f"synthetic:n=8 m=16\tmlp (vectors, d=128)\t{a.n}\t{a.runs}\t"
          f"{statistics.median(walls):.3f}\t{min(walls):.3f}\t{max(walls):.3f}")


if __name__ == "__main__":
    main()
