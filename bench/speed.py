"""Training speed: latentdim's loop against a straightforward port of the reference loop (issue 23).

Both train the same model (the papers' ``mlp`` preset, synthetic n = 8 in R^128, capacity 16) with
the papers' schedule (SPEC §4: lambda3 = 2/m doubling every 4R steps, no pressure) and the same
optimisers and losses. The port is the loop as one would first write it from SPEC §4: every
critic batch encoded on its own, ``zero_grad`` + ``backward`` through the whole graph for each
update, and the losses and m_A read on the host after every step. latentdim's loop
(:func:`latentdim.training.train`) encodes the five critic batches in one pass and updates each
network with gradients of exactly its parameters.

Each loop runs in its own process, both at once (side by side, one thread each unless
``--threads``), so machine drift hits both; the table gives steps, wall time, steps/s, the ratio,
m_A at the end and each process's peak resident memory. ``--until-settled`` trains until the
reference stopping rule (no dimension undecided, m_A unchanged for 500 steps) instead of a fixed
number of steps, and so also compares the time to a settled m_A.

``--variant compile=inductor --variant precision=bfloat16`` adds a row of latentdim's loop with
that TrainConfig field set (the flags ``--compile`` and ``--precision``), run at the same time as
the others; its seconds include the compiling.

Usage: python bench/speed.py [--steps 2000] [--until-settled] [--device cpu|cuda] [--seed 0] [--threads 1]
       [--variant FIELD=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

CAPACITY, N, D, SAMPLES = 16, 8, 128, 20_000


def _data(device: str):
    import torch

    from latentdim.data import make_synthetic

    x = make_synthetic(N, d=D, samples=SAMPLES, seed=0)
    return torch.from_numpy((x - x.mean(0)) / x.std(0)).to(device)


def _model(seed: int, device: str):
    import torch

    from latentdim.models import ModelSpec, build_model

    torch.manual_seed(seed)
    return build_model(ModelSpec("mlp", (D,), CAPACITY)).to(device)


def run_latentdim(steps: int, settle: bool, seed: int, device: str, variant: dict | None = None) -> dict:
    from latentdim.models import count_active
    from latentdim.training import TrainConfig, train

    data, model = _data(device), _model(seed, device)
    config = TrainConfig.reference(max_steps=steps, **({} if settle else {"stable_window": 10**9}), **(variant or {}))
    start = time.perf_counter()
    out = train(model, data, config)
    _sync(device)
    return {"steps": out.steps, "seconds": time.perf_counter() - start, "m_active": count_active(model.mask().detach()),
            "stop": out.stop_reason}


def run_port(steps: int, settle: bool, seed: int, device: str) -> dict:
    """SPEC §4 as first written: one update after another, each through backward()."""
    import torch

    from latentdim import losses
    from latentdim.optim import TF1RMSprop
    from latentdim.training import LAMBDA3_CAP, reference_r

    data, model = _data(device), _model(seed, device)
    enc, dec, critic, mask = model.encoder, model.decoder, model.critic, model.mask
    opt_ae = TF1RMSprop(list(enc.parameters()) + list(dec.parameters()), lr=5e-4)
    opt_critic = TF1RMSprop(critic.parameters(), lr=1e-4)
    opt_gen = TF1RMSprop(enc.parameters(), lr=1e-4)
    opt_mask = TF1RMSprop([mask.theta], lr=5e-4)
    every = 4 * reference_r(CAPACITY)
    n, s = data.shape[0], 64

    def batch():
        return data[torch.randint(n, (s,), device=device)]

    def prior(mu):
        return mu * torch.randn(s, CAPACITY, device=device)

    last_m, last_change, stable = None, 0, 500 if settle else 10**9
    start, step = time.perf_counter(), 0
    model.train()
    while step < steps:
        lambda3 = min(LAMBDA3_CAP, 2.0 / CAPACITY * 2.0 ** (step // every))
        mu = mask().detach()
        x = batch()
        codes = enc(x)
        rec = losses.reconstruction(dec(mu * codes), x, "mse")
        model.zero_grad()
        losses.ae_loss(rec, codes, mu).backward()
        opt_ae.step()
        for _ in range(5):
            encoded = (mu * enc(batch())).detach()
            p = prior(mu)
            h_enc, h_prior = critic(encoded), critic(p)
            model.zero_grad()
            losses.critic_loss(h_enc, h_prior, losses.gradient_penalty(critic, p, encoded)).backward()
            opt_critic.step()
        w_value = losses.wasserstein(h_prior, h_enc).item()
        model.zero_grad()
        losses.generator_loss(critic(mu * enc(batch()))).backward()
        opt_gen.step()
        x = batch()
        codes = enc(x).detach()
        mu_g = mask()
        rec_m = losses.reconstruction(dec(mu_g * codes), x, "mse")
        w = losses.wasserstein(critic(prior(mu_g)), critic(mu_g * codes))
        model.zero_grad()
        losses.mask_loss(rec_m, w, mu_g, lambda3, 0.0).backward()
        opt_mask.step()
        mask.project()
        step += 1
        rec_value = rec.item()
        if not (math.isfinite(rec_value) and math.isfinite(w_value)):
            raise SystemExit("the port diverged")
        mu_now = mask().detach()
        m_active = int((mu_now >= 0.1).sum().item())
        undecided = int(((mu_now >= 0.1) & (mu_now < 0.9)).sum().item())
        if m_active != last_m:
            last_m, last_change = m_active, step
        if undecided == 0 and step - last_change >= stable:
            break
    _sync(device)
    return {"steps": step, "seconds": time.perf_counter() - start, "m_active": last_m,
            "stop": "settled" if step < steps else "max_steps"}


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def worker(name: str, steps: int, settle: bool, seed: int, device: str, threads: int, variant: dict) -> None:
    import torch

    torch.set_num_threads(threads)
    from latentdim.optim import TF1RMSprop

    TF1RMSprop([torch.zeros(1, requires_grad=True)], lr=1e-3)  # torch.optim's one-time imports, outside both timings
    result = run_latentdim(steps, settle, seed, device, variant) if name == "latentdim" else run_port(steps, settle, seed, device)
    if device == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    result["peak_rss_mib"] = _peak_rss_mib()
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per loop (the limit with --until-settled)")
    parser.add_argument("--until-settled", action="store_true", help="train until the reference stopping rule (limit 30,000)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per loop")
    parser.add_argument("--variant", action="append", default=[], metavar="FIELD=VALUE",
                        help="also latentdim's loop with this TrainConfig field set (compile=inductor, precision=bfloat16)")
    parser.add_argument("--worker", choices=("latentdim", "port"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = 30_000 if args.until_settled and args.steps == 2000 else args.steps
    if args.worker:
        worker(args.worker, steps, args.until_settled, args.seed, args.device, args.threads,
               dict(v.split("=", 1) for v in args.variant))
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    base = [sys.executable, __file__, "--steps", str(steps), "--device", args.device, "--seed", str(args.seed),
            "--threads", str(args.threads)] + (["--until-settled"] if args.until_settled else [])
    runs = {"port": ["--worker", "port"], "latentdim": ["--worker", "latentdim"]}
    for v in args.variant:
        runs[f"latentdim {v}"] = ["--worker", "latentdim", "--variant", v]
    procs = {name: subprocess.Popen([*base, *extra], stdout=subprocess.PIPE, text=True, env=env)
             for name, extra in runs.items()}  # side by side
    results = {}
    for name, proc in procs.items():
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed")
        results[name] = json.loads(out.strip().splitlines()[-1])
    rate = {name: r["steps"] / r["seconds"] for name, r in results.items()}
    mem = "peak_gpu_mib" if args.device == "cuda" else "peak_rss_mib"
    print(f"synthetic n={N} in R^{D}, capacity {CAPACITY}, papers' schedule, seed {args.seed}, {args.device}, "
          f"{args.threads} thread(s) each, all at once")
    print(f"| loop | steps | stop | seconds | steps/s | ratio | m_A | peak {'GPU' if args.device == 'cuda' else 'RSS'} MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['steps']} | {r['stop']} | {r['seconds']:.1f} | {rate[name]:.1f} | "
              f"{rate[name] / rate['port']:.2f} | {r['m_active']} | {r[mem]:.0f} |")


if __name__ == "__main__":
    main()
