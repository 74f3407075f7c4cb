"""m_A on data of known intrinsic dimension: scikit-dimension's 24 benchmark manifolds, the papers'
synthetic process and a family of bent high-dimensional manifolds (the accuracy issue's table).

Every case runs the real command, `latentdim estimate FILE --capacity C --seed S --json`, on an
HDF5 file written on the fly (nothing is committed), and the table shows the true dimension beside
m_A for each seed and the classical estimators (TwoNN, MLE, lPCA, from the first seed's run). A
case is *right* when |m_A - ID| <= max(1, round(0.2 ID)) for every seed.

Suites:
- `skdim`: `skdim.datasets.BenchmarkManifolds(random_state=0)`, 10,000 samples each, capacity
  max(2 ID, ID + 8) rounded up to a multiple of 8. Several are closed or one-sided manifolds that
  a continuous encoder needs one coordinate more for (the 10-sphere M1, the cube surfaces M10*,
  the closed helix M5a, the Moebius band M11); the tolerance admits that one.
- `synthetic`: the papers' process (SPEC §6), n = 8, 16, 32 at capacity 2n.
- `family`: z from N(0, I_d) (`gauss`) or U[0, 1]^d (`cube`), 10,000 samples, placed in R^D by a
  random orthonormal frame and bent by two invertible residual maps y -> y + tanh(s W y) / s
  (spectral norm of W 0.8 < 1, so each map is a bijection of R^D; s sets the tanh's inputs to
  order one, so the bend is strong), then rotated at random. Its ID is exactly d. This is the
  regime where TwoNN and MLE underestimate.

Usage: python bench/benchmark.py [--suite skdim synthetic family] [--only NAME ...]
       [--seeds 0 1 2] [--jobs 2] [--csv bench/out/benchmark.csv] [--log runs.jsonl]
       [-- extra estimate options]
`--jobs N` runs N estimates at a time with the cores split between them (`--threads` overrides).
To time another version side by side, run a second copy at once with `--python` naming the
interpreter of a virtual environment where that version is installed. With two jobs on a
2-core machine the three suites take several hours; `--only` picks cases by name.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

SAMPLES = 10_000


@dataclass(frozen=True)
class Case:
    name: str
    suite: str
    intrinsic: int
    ambient: int
    capacity: int
    source: str  # "synthetic:..." or "" for data written by make()


def capacity_for(intrinsic: int) -> int:
    """The issue's capacity: max(2 ID, ID + 8) rounded up to a multiple of 8."""
    c = max(2 * intrinsic, intrinsic + 8)
    return -(-c // 8) * 8


def skdim_truth() -> dict[str, tuple[int, int]]:
    import skdim

    return {k: (d, dim) for k, (d, dim, _) in skdim.datasets.BenchmarkManifolds(random_state=0)._dict_truth.items()}


def skdim_data(name: str) -> np.ndarray:
    """One benchmark manifold, generated alone from random_state=0 (so it does not depend on which
    other cases run)."""
    import skdim

    bm = skdim.datasets.BenchmarkManifolds(random_state=0)
    d, dim, _ = bm._dict_truth[name]
    return bm.dict_gen[name](n=SAMPLES, dim=dim, d=d)


#: The bent high-dimensional family: (kind, d, D).
FAMILY = [
    ("gauss", 10, 100), ("cube", 16, 100), ("gauss", 24, 200), ("cube", 32, 200),
    ("gauss", 40, 500), ("cube", 50, 500), ("gauss", 50, 1000), ("gauss", 75, 1000), ("cube", 100, 1000),
]


def family_name(kind: str, d: int, ambient: int) -> str:
    return f"{kind}-{d}-in-{ambient}"


def bent(kind: str, d: int, ambient: int, seed: int = 0, samples: int = SAMPLES) -> np.ndarray:
    """A d-dimensional Gaussian or cube, in R^ambient, bent by two invertible residual maps."""
    rng = np.random.default_rng([seed, d, ambient, kind == "cube"])
    z = rng.normal(size=(samples, d)) if kind == "gauss" else rng.uniform(size=(samples, d))
    z = (z - z.mean(0)) / z.std(0)
    frame, _ = np.linalg.qr(rng.normal(size=(ambient, d)))
    y = z @ frame.T  # (N, D): each coordinate has variance about d / D
    for _ in range(2):
        w = rng.normal(size=(ambient, ambient))
        w *= 0.8 / np.linalg.norm(w, 2)  # Lipschitz 0.8 < 1: y -> y + tanh(s W y) / s is invertible
        s = 1.0 / np.sqrt((y @ w.T).var(0).mean())  # tanh's inputs of order one: a strong bend
        y = y + np.tanh(s * (y @ w.T) + rng.normal(size=ambient)) / s
    rotation, _ = np.linalg.qr(rng.normal(size=(ambient, ambient)))
    return y @ rotation.T


def cases(suites: list[str]) -> list[Case]:
    out: list[Case] = []
    if "skdim" in suites:
        for name, (d, dim) in skdim_truth().items():
            out.append(Case(name, "skdim", d, dim, capacity_for(d), ""))
    if "synthetic" in suites:
        for n in (8, 16, 32):
            out.append(Case(f"synthetic-n{n}", "synthetic", n, 128, 2 * n, f"synthetic:n={n}"))
    if "family" in suites:
        for kind, d, ambient in FAMILY:
            out.append(Case(family_name(kind, d, ambient), "family", d, ambient, capacity_for(d), ""))
    return out


def make(case: Case) -> np.ndarray:
    if case.suite == "skdim":
        return skdim_data(case.name)
    kind, d, _, ambient = case.name.split("-")
    return bent(kind, int(d), int(ambient))


def tolerance(intrinsic: int) -> int:
    return max(1, round(0.2 * intrinsic))


def run(case: Case, path: str, seed: int, threads: int, extra: list[str], baselines: bool, python: str) -> dict:
    cmd = [python, "-m", "latentdim", "estimate", path, "--capacity", str(case.capacity),
           "--seed", str(seed), "--json", *([] if baselines else ["--no-baselines"]), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    # outside the checkout, so `-m latentdim` imports the interpreter's installed version, not ./latentdim
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}", "wall": wall}
    r = json.loads(proc.stdout)
    r["wall"] = wall
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", nargs="+", default=["skdim", "synthetic", "family"], choices=["skdim", "synthetic", "family"])
    ap.add_argument("--only", nargs="*", help="case names (see the table); default every case of the suites")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="estimates run at a time (the cores are split between them)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter whose latentdim runs the estimates (default this one)")
    ap.add_argument("--threads", type=int, help="threads per estimate (default: the cores divided by --jobs)")
    ap.add_argument("--csv", default="bench/out/benchmark.csv", help="where the table goes as CSV")
    ap.add_argument("--log", help="also append each run's JSON result to this file as it finishes (one line per run)")
    ap.add_argument("extra", nargs="*", help="options passed to every estimate call (after --)")
    a = ap.parse_args()

    chosen = [c for c in cases(a.suite) if not a.only or c.name in a.only]
    if a.only and len(chosen) != len(set(a.only)):
        known = ", ".join(c.name for c in cases(a.suite))
        raise SystemExit(f"unknown case in --only; the cases are: {known}")
    threads = a.threads or max(1, (os.cpu_count() or 1) // a.jobs)
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for case in chosen:
            if case.source:
                paths[case.name] = case.source
                continue
            paths[case.name] = str(Path(tmp) / f"{case.name}.h5")
            with h5py.File(paths[case.name], "w") as f:
                f["X"] = make(case).astype(np.float32)
        jobs = [(c, s) for c in chosen for s in a.seeds]

        def one(job: tuple[Case, int]) -> None:
            case, seed = job
            r = run(case, paths[case.name], seed, threads, a.extra, baselines=seed == a.seeds[0], python=a.python)
            results[(case.name, seed)] = r
            if a.log:
                with open(a.log, "a") as f:
                    f.write(json.dumps({"case": case.name, "ID": case.intrinsic, "seed": seed, **r}) + "\n")
            got = r.get("m_active", r.get("error"))
            print(f"{case.name}\tID {case.intrinsic}\tseed {seed}\tm_A {got}\tsteps {r.get('steps')}\t{r['wall']:.0f} s",
                  file=sys.stderr, flush=True)

        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            list(pool.map(one, jobs))

    header = ["suite", "case", "ID", "D", "capacity", *[f"m_A seed {s}" for s in a.seeds], "right", "TwoNN", "MLE",
              "lPCA", "median steps", "median s"]
    rows = []
    for case in chosen:
        rs = [results[(case.name, s)] for s in a.seeds]
        ms = [r.get("m_active") for r in rs]
        right = all(m is not None and abs(m - case.intrinsic) <= tolerance(case.intrinsic) for m in ms)
        base = rs[0].get("baselines") or {}
        steps = [r["steps"] for r in rs if "steps" in r]
        rows.append([
            case.suite, case.name, case.intrinsic, case.ambient, case.capacity,
            *[m if m is not None else "error" for m in ms], "yes" if right else "NO",
            *[f"{base[k]:.1f}" if base.get(k) is not None else "-" for k in ("twonn", "mle", "lpca")],
            int(statistics.median(steps)) if steps else "-", f"{statistics.median(r['wall'] for r in rs):.0f}",
        ])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    for suite in a.suite:
        mine = [r for r in rows if r[0] == suite]
        if mine:
            print(f"{suite}: right on every seed in {sum(r[5 + len(a.seeds)] == 'yes' for r in mine)} of {len(mine)} cases")
    for (name, seed), r in sorted(results.items()):
        if "error" in r:
            print(f"{name} seed {seed}: {r['error']}")
    Path(a.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(a.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    print(f"wrote {a.csv}")


if __name__ == "__main__":
    main()
