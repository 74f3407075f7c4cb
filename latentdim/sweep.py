"""``latentdim sweep``: MaskAAE and the WAE baseline at several capacities and seeds (the papers'
Figure 4: the WAE's Frechet distance is lowest near the data's dimension and rises on both sides,
MaskAAE's stays flat once the capacity is enough, and its m_A stays put).

Each (capacity, seed, model) is one :func:`latentdim.estimate`; with ``jobs`` > 1 they run in that
many processes at once (one thread each unless ``threads`` says otherwise), and a CPU run's numbers
do not depend on which process ran it.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from latentdim.errors import LatentdimError

#: Settings that belong to one run and make no sense across a sweep.
PER_RUN = ("out", "export", "resume", "overwrite", "use_mask", "seed", "command", "baselines")


@dataclass(frozen=True)
class SweepRun:
    """One estimate of the sweep."""

    capacity: int
    seed: int
    model: str  # "MaskAAE" or "WAE"
    m_active: int
    frechet_distance: float | None
    reconstruction_error: float
    wasserstein: float
    steps: int
    seconds: float
    settled: bool


@dataclass
class SweepResult:
    """Every run, and per capacity the summary: MaskAAE's m_A as median and range over the seeds,
    and each model's median Frechet distance."""

    source: str
    capacities: list[int]
    seeds: list[int]
    runs: list[SweepRun] = field(default_factory=list)

    def summary(self) -> list[dict[str, Any]]:
        rows = []
        for m in self.capacities:
            mask = [r for r in self.runs if r.capacity == m and r.model == "MaskAAE"]
            wae = [r for r in self.runs if r.capacity == m and r.model == "WAE"]
            m_a = [r.m_active for r in mask]
            rows.append({
                "capacity": m,
                "m_active_median": statistics.median(m_a) if m_a else None,
                "m_active_min": min(m_a) if m_a else None,
                "m_active_max": max(m_a) if m_a else None,
                "fd_maskaae": _median_fd(mask),
                "fd_wae": _median_fd(wae),
                "settled": all(r.settled for r in mask),
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "capacities": self.capacities, "seeds": self.seeds,
                "summary": self.summary(), "runs": [asdict(r) for r in self.runs]}


def _median_fd(runs: list[SweepRun]) -> float | None:
    values = [r.frechet_distance for r in runs if r.frechet_distance is not None]
    return statistics.median(values) if values else None


def parse_list(text: str, name: str, least: int) -> list[int]:
    """"4,8,16" -> [4, 8, 16]; each an integer >= ``least``, no repeats (one clear line otherwise)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LatentdimError(f"--{name} takes integers separated by commas (e.g. 4,8,16), got {text!r}") from None
    if not values or any(v < least for v in values) or len(set(values)) != len(values):
        raise LatentdimError(f"--{name} needs distinct integers >= {least}, got {text!r}")
    return values


def _one(source: Any, capacity: int, seed: int, use_mask: bool, settings: dict[str, Any], threads: int | None) -> SweepRun:
    """One estimate (in this process or a worker)."""
    import warnings

    import torch

    from latentdim.api import estimate
    from latentdim.result import EstimateWarning

    if threads is not None:
        torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)  # the sweep's table says it (settled column)
        r = estimate(source, capacity, seed=seed, use_mask=use_mask, baselines=False, **settings)
    return SweepRun(capacity, seed, "MaskAAE" if use_mask else "WAE", r.m_active, r.frechet_distance,
                    r.reconstruction_error, r.wasserstein, r.steps, r.seconds, r.settled)


def sweep(
    source: Any,
    capacities: Sequence[int],
    seeds: Sequence[int] = (0,),
    *,
    wae: bool = True,
    jobs: int = 1,
    threads: int | None = None,
    on_run: Callable[[SweepRun, int, int], None] | None = None,
    on_start: Callable[[int, int, str], None] | None = None,
    **settings: Any,
) -> SweepResult:
    """Estimates at every capacity and seed with MaskAAE and (``wae``) the WAE baseline.

    Args:
        source: as for :func:`latentdim.estimate` (with ``jobs`` > 1, something a worker process
            can receive: a path, a ``synthetic:`` string or an array).
        capacities, seeds: the grid; each run is seeded by its seed.
        wae: also train the WAE baseline (``--no-mask``) at every capacity and seed.
        jobs: runs at once, each in its own process.
        threads: torch threads per run (default 1 with ``jobs`` > 1, else torch's own setting).
        on_run: called as ``on_run(run, done, total)`` as each run finishes.
        on_start: called as ``on_start(capacity, seed, model)`` as each run starts (``jobs`` 1 only:
            workers start theirs on their own).
        **settings: the fields of :class:`latentdim.settings.Settings` shared by every run, except
            the per-run ones (:data:`PER_RUN`).

    Returns:
        A :class:`SweepResult` with the runs in grid order (capacity, seed, MaskAAE before WAE).
    """
    bad = [name for name in settings if name in PER_RUN]
    if bad:
        raise LatentdimError(f"{', '.join(bad)} belong to one run, not to a sweep; the sweep trains each capacity and seed itself")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise LatentdimError(f"jobs (--jobs) must be an integer of at least 1, got {jobs!r}")
    grid = [(m, s, use_mask) for m in capacities for s in seeds for use_mask in ((True, False) if wae else (True,))]
    if jobs > 1 and threads is None:
        threads = 1
    runs: list[SweepRun] = []
    if jobs == 1:
        for m, s, use_mask in grid:
            if on_start is not None:
                on_start(m, s, "MaskAAE" if use_mask else "WAE")
            runs.append(_one(source, m, s, use_mask, settings, threads))
            if on_run is not None:
                on_run(runs[-1], len(runs), len(grid))
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=min(jobs, len(grid)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_one, source, m, s, use_mask, settings, threads) for m, s, use_mask in grid]
            done = 0
            for future in futures:  # in grid order; a failed run raises its error here
                runs.append(future.result())
                done += 1
                if on_run is not None:
                    on_run(runs[-1], done, len(grid))
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "array"
    return SweepResult(name, list(capacities), list(seeds), runs)


def write_sweep(result: SweepResult, out: Path) -> dict[str, Path]:
    """``sweep.csv`` (one row per run), ``sweep.json`` and ``sweep.png`` (Frechet distance and
    m_A against capacity) in ``out`` (created)."""
    import csv
    import io
    import json

    from latentdim import pictures
    from latentdim.fileio import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["capacity", "seed", "model", "m_active", "frechet_distance", "reconstruction_error", "wasserstein",
                     "steps", "seconds", "settled"])
    for r in result.runs:
        writer.writerow([r.capacity, r.seed, r.model, r.m_active, "" if r.frechet_distance is None else f"{r.frechet_distance:.6g}",
                         f"{r.reconstruction_error:.6g}", f"{r.wasserstein:.6g}", r.steps, f"{r.seconds:.1f}", r.settled])
    files = {"csv": out / "sweep.csv", "json": out / "sweep.json", "plot": out / "sweep.png"}
    atomic_write(files["csv"], lambda f: f.write(text.getvalue().encode()))
    payload = (json.dumps(result.to_dict(), indent=2) + "\n").encode()
    atomic_write(files["json"], lambda f: f.write(payload))
    pictures.save_sweep_plot(result.runs, files["plot"], title=f"capacity sweep of {result.source}")
    return files
