"""m_A, steps and wall time of `latentdim estimate` on the synthetic cases of the core issue.

Runs the real command (`latentdim estimate ... --json`) once per case and seed, one after another
so the runs do not compete for the CPU, and prints a table. The accuracy targets: synthetic n=8 at
capacity 16 gives m_A in [8, 10] and n=16 at capacity 32 in [15, 18] for every seed; the
`--no-mask` baseline keeps all m; each masked run settles in under 5 minutes on a 2-core CPU.

Usage: python bench/accuracy.py [--seeds 0 1 2] [--baseline-steps 2000] [-- extra estimate options]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = [(8, 16, (8, 10)), (16, 32, (15, 18))]


def run(args: list[str]) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "latentdim", "estimate", *args, "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, nargs="+", default=[n for n, _, _ in CASES], help="which cases (true n) to run")
    ap.add_argument("--baseline-steps", type=int, default=2000, help="steps of the --no-mask run (0 skips it)")
    ap.add_argument("extra", nargs="*", help="options passed to every estimate call (after --)")
    a = ap.parse_args()

    rows = []
    for n, m, (lo, hi) in CASES:
        if n not in a.n:
            continue
        source = f"synthetic:n={n}"
        for seed in a.seeds:
            r, wall = run([source, "--capacity", str(m), "--seed", str(seed), *a.extra])
            ok = lo <= r["m_active"] <= hi and wall < 300  # the whole command, data to result
            rows.append((source, m, "MaskAAE", seed, r["m_active"], r["undecided"], r["steps"], r["stop_reason"], r["seconds"], wall, r["frechet_distance"], "ok" if ok else "MISS"))
            print(*rows[-1], sep="\t", file=sys.stderr, flush=True)
        if a.baseline_steps:
            r, wall = run([source, "--capacity", str(m), "--no-mask", "--max-steps", str(a.baseline_steps), *a.extra])
            ok = r["m_active"] == m
            rows.append((source, m, "WAE (--no-mask)", 0, r["m_active"], r["undecided"], r["steps"], r["stop_reason"], r["seconds"], wall, r["frechet_distance"], "ok" if ok else "MISS"))
            print(*rows[-1], sep="\t", file=sys.stderr, flush=True)

    header = ("source", "m", "model", "seed", "m_A", "undecided", "steps", "stop", "train s", "wall s", "FD", "target")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{c:.1f}" if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(cells) + " |")
    for n, m, _ in CASES:
        if n not in a.n:
            continue
        walls = [r[9] for r in rows if r[0] == f"synthetic:n={n}" and r[2] == "MaskAAE"]
        print(f"synthetic:n={n} m={m}: median wall {statistics.median(walls):.1f} s over {len(walls)} seeds")


if __name__ == "__main__":
    main()
