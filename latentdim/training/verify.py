"""Fresh verification of a vector m_A (docs/accuracy.md, "Fresh verification").

Elimination shrinks a code that was learnt wide, and its networks only adapt locally within a
round's hold: on manifolds whose chart needs periodic functions of the codes (scikit-dimension's
M4, M6, M8) or on closed curves it stops above the dimension, although a network trained from
scratch at the true code size reconstructs within the budget. So once elimination ends at m, the
smaller code sizes m - 1, m - 2, ... are checked with plain auto-encoders trained afresh at that
size (three hidden layers of 256; no mask, no critic: this only asks how many codes the data
needs). A size is accepted while its held-out error, as a fraction of the data's variance, stays
within half of elimination's loss budget (``TrainConfig.verify_budget_scale``):
``best + budget * (1 - best)``, where ``best`` is the lowest fresh error so far (1 is the error of
no code at all, so ``1 - best`` is the explained part). The first size over the limit ends the
check, and the mask closes that many more dimensions, cheapest first, before the networks adapt
in the refine phase. The check first tries m + 1 (below the capacity): when E(m) is over the
limit of E(m + 1), elimination closed a needed dimension (a capacity that leaves little room
loosens its budget), so the check goes up while one code fewer is over the limit of the next
size, and the mask reopens that many, the last closed first; otherwise it goes down as above, the
same count as without the step. Errors as fractions of the variance of standardised data make the
verdict free of the data's units; the capacity enters only as the ceiling of the upward step
(the check starts at elimination's m), and the held-out split is a fixed fraction of the samples.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from latentdim.data.stream import BlockSampler
from latentdim.models import active_dims

#: Held-out fraction of the samples the fresh errors are measured on.
HELD_OUT = 0.1
#: At most this many samples train and judge the fresh networks.
MAX_SAMPLES = 10_000
#: Training steps of each fresh network unless TrainConfig.verify_steps says otherwise: 5,000 at
#: Adam 1e-3 fit M4's tight codes as well as 10,000 at 5e-4, in half the time (docs/accuracy.md);
#: the tests lower it (tiny runs, few steps).
DEFAULT_STEPS = 5_000
#: A fresh training asks whether to stop (Ctrl-C, SIGTERM) this often, in steps.
POLL_EVERY = 100
#: At most this many sizes are trained at once (one worker process each, :class:`FreshWorkers`).
MAX_AT_ONCE = 4
#: Fresh networks of fewer steps than this train in the estimate's process: a worker takes about
#: 2 s to start, as long as 1,000 steps.
WORKERS_FROM_STEPS = 1_000


@dataclass(frozen=True)
class FreshConfig:
    """The fresh auto-encoders: ``depth`` hidden layers of ``width`` (ReLU) on each side, Adam at
    ``lr`` with a cosine decay over ``steps`` steps of ``batch`` samples."""

    depth: int = 3
    width: int = 256
    steps: int = DEFAULT_STEPS
    batch: int = 64
    lr: float = 1e-3  # 5e-4 left M4's 5-code fit over the limit on seeds 1 and 2 (docs/accuracy.md)


def _mlp(n_in: int, n_out: int, depth: int, width: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    h = n_in
    for _ in range(depth):
        layers += [nn.Linear(h, width), nn.ReLU()]
        h = width
    return nn.Sequential(*layers, nn.Linear(h, n_out))


def split(x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) rows of ``x`` (at most :data:`MAX_SAMPLES` of them, chosen by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(x.shape[0], generator=g)[:MAX_SAMPLES].to(x.device)
    n_eval = max(1, int(len(order) * HELD_OUT))
    return x[order[n_eval:]], x[order[:n_eval]]


def fresh_error(train: torch.Tensor, held_out: torch.Tensor, k: int, cfg: FreshConfig, seed: int,
                should_stop: Callable[[], bool] | None = None) -> float | None:
    """Held-out reconstruction error of an auto-encoder with ``k`` codes trained afresh on
    ``train``, as a fraction of the held-out variance (1: no better than the mean). None when
    ``should_stop`` (polled every :data:`POLL_EVERY` steps) asked to stop first."""
    if k < 1:
        return 1.0
    d = train.shape[1]
    with torch.random.fork_rng(devices=[train.device] if train.device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = nn.Sequential(_mlp(d, k, cfg.depth, cfg.width), _mlp(k, d, cfg.depth, cfg.width)).to(train.device)
        # foreach: one kernel per step and op over all the tensors, the same numbers as the
        # per-tensor loop (bitwise, checked) and 15% faster on one CPU thread; fused=True would
        # be faster still but rounds differently, moving the fresh errors
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, foreach=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
        g = torch.Generator(device=train.device).manual_seed(seed)
        for i in range(cfg.steps):
            if should_stop is not None and i % POLL_EVERY == 0 and should_stop():
                return None
            b = train[torch.randint(train.shape[0], (cfg.batch,), generator=g, device=train.device)]
            loss = (net(b) - b).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            err = (net(held_out) - held_out).pow(2).mean() / held_out.var(dim=0).mean()
    return float(err)


def one_thread_error(train: torch.Tensor, held_out: torch.Tensor, k: int, cfg: FreshConfig, seed: int,
                     should_stop: Callable[[], bool] | None = None) -> float | None:
    """:func:`fresh_error` on one CPU thread (on a GPU: as it is), the numbers a worker process
    (:class:`FreshWorkers`) gives: the verdict does not depend on the thread count, and at 256
    wide one thread is also the faster (6.8 s against 8.1 s for two 1,000-step networks on this
    2-core machine)."""
    if train.device.type != "cpu":
        return fresh_error(train, held_out, k, cfg, seed, should_stop)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fresh_error(train, held_out, k, cfg, seed, should_stop)
    finally:
        torch.set_num_threads(threads)


class WorkerFailed(RuntimeError):
    """A worker process of :class:`FreshWorkers` died or could not start."""


class FreshWorkers:
    """Worker processes that train fresh networks at once, one size each on one CPU thread
    (``python -m latentdim.training._fresh_worker``): the numbers of :func:`one_thread_error`.

    Processes, because threads share Python's lock (two sizes on two threads took 1.38x one
    size's time, on two processes 1.0x); plain subprocesses, not :mod:`multiprocessing`, so a
    user's script without ``if __name__ == "__main__"`` is never run again in a child. They run
    in a session of their own, so Ctrl-C reaches the estimate alone, which stops them; they exit
    when their input closes, also if the estimate is killed. Use as a context manager."""

    def __init__(self, n: int, train: torch.Tensor, held_out: torch.Tensor) -> None:
        self._data = pickle.dumps((train.cpu(), held_out.cpu()), protocol=pickle.HIGHEST_PROTOCOL)
        self._logs = [tempfile.TemporaryFile() for _ in range(n)]
        self._procs: list[subprocess.Popen] = []
        try:
            for log in self._logs:
                self._procs.append(subprocess.Popen(
                    [sys.executable, "-m", "latentdim.training._fresh_worker"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=log, start_new_session=True))
        except OSError as exc:
            self.close()
            raise WorkerFailed(f"could not start a worker process: {exc}") from exc
        self._fed = [False] * n

    def __enter__(self) -> FreshWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def errors(self, ks: Sequence[int], cfg: FreshConfig, seed: int,
               should_stop: Callable[[], bool] | None = None) -> dict[int, float] | None:
        """:func:`one_thread_error` of each size in ``ks`` (at most one per worker), trained at
        once; None when ``should_stop`` (asked every 0.2 s) said stop first (the workers are then
        stopped). Raises :class:`WorkerFailed` when a worker died."""
        if len(ks) > len(self._procs):
            raise ValueError(f"{len(ks)} sizes for {len(self._procs)} workers")
        answers: dict[int, Any] = {}

        def ask(i: int, k: int) -> None:
            proc = self._procs[i]
            try:
                assert proc.stdin is not None and proc.stdout is not None
                if not self._fed[i]:
                    proc.stdin.write(self._data)
                    self._fed[i] = True
                pickle.dump((k, cfg, seed), proc.stdin)
                proc.stdin.flush()
                answers[k] = pickle.load(proc.stdout)
            except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
                answers[k] = ("died", f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=ask, args=(i, k), daemon=True) for i, k in enumerate(ks)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                if should_stop is not None and should_stop():
                    self.close()
                    return None
                t.join(0.2)
        out: dict[int, float] = {}
        for i, k in enumerate(ks):
            status, value = answers[k]
            if status != "ok":
                raise WorkerFailed(f"the worker training {k} codes failed: {value}; its output: {self._log(i)}")
            out[k] = float(value)
        return out

    def _log(self, i: int) -> str:
        log = self._logs[i]
        log.seek(0)
        text = log.read().decode("utf-8", "replace").strip()
        return text[-2000:] or "(none)"

    def close(self) -> None:
        """Stops the workers (killed if still training) and frees their pipes."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        self._procs = []
        for log in self._logs:
            log.close()
        self._logs = []


def at_once(device: torch.device, parallel: bool, steps: int) -> int:
    """How many sizes the check trains at once: one per CPU thread the estimate may use (at most
    :data:`MAX_AT_ONCE`), each in a worker process; 1 (in the estimate's own process) on a GPU,
    with several ranks (each rank is a process already) or for networks shorter than
    :data:`WORKERS_FROM_STEPS` steps."""
    if device.type != "cpu" or parallel or steps < WORKERS_FROM_STEPS:
        return 1
    return max(1, min(torch.get_num_threads(), MAX_AT_ONCE))


def limit(best: float, budget: float) -> float:
    """The largest fresh error accepted: within ``budget`` of the explained part ``1 - best``."""
    return best + budget * (1.0 - best)


def planned(records: list[dict[str, Any]], m: int, capacity: int) -> list[int]:
    """The sizes the check asks for next, in order, as long as it goes on in the direction it is
    going ([] once it is over): ``m`` first; then ``m + 1`` (the upward step, below the capacity
    only); up again while each size was needed; else down from the smallest size tried."""
    if not records:
        return [m, m + 1] if m < capacity else list(range(m, 0, -1))
    ups = [r for r in records if r.get("up")]
    if m < capacity and not ups:
        return [m + 1]
    if ups and ups[-1]["kept"]:
        return list(range(ups[-1]["k"] + 1, capacity + 1))
    if any(r["kept"] for r in ups):
        return []  # went up and stopped
    last = records[-1]
    if not last.get("up") and (not last["kept"] or last["k"] <= 1):
        return []  # a size refused on the way down, or one code reached
    return list(range(min(r["k"] for r in records) - 1, 0, -1))


def advance(records: list[dict[str, Any]], m: int, budget: float, error: Callable[[int], float | None],
            capacity: int | None = None) -> bool:
    """One size of the check (the first of :func:`planned`). Appends its record and returns True
    once the check is over; ``error(k)`` None (interrupted): nothing appended, False.

    - ``m`` itself: k, its error; limit and allowance None, kept.
    - Up (``m + 1``, ...; up to ``capacity``, None: ``m``, no upward step): ``up`` True, k, its
      error, the limit :func:`limit` of it, the allowance (limit minus error), ``below`` (the error
      of one code fewer) and kept: needed, as ``below`` is over the limit. Elimination can stop
      below the dimension where closing a needed dimension cost less than its budget (a capacity
      that leaves little room loosens the budget, docs/accuracy.md), and a network trained afresh
      shows the code missing.
    - Down (when the upward step found nothing, from ``m - 1``): k, its error, the limit of the
      lowest error of the sizes kept on the way down, the allowance (limit minus that error) and
      kept: within the limit. The first size refused ends the check, as one code does."""
    capacity = m if capacity is None else capacity
    sizes = planned(records, m, capacity)
    if not sizes:
        return True
    k = sizes[0]
    e = error(k)
    if e is None:
        return False
    if not records:
        records.append({"k": k, "error": e, "limit": None, "allowance": None, "kept": True})
    elif k > m:
        below = next(r["error"] for r in records if r["k"] == k - 1)
        lim = limit(e, budget)
        records.append({"k": k, "up": True, "error": e, "limit": lim, "allowance": lim - e, "below": below, "kept": below > lim})
    else:
        best = min(r["error"] for r in records if r["kept"] and not r.get("up"))
        lim = limit(best, budget)
        records.append({"k": k, "error": e, "limit": lim, "allowance": lim - best, "kept": e <= lim})
    return not planned(records, m, capacity)


def verified(records: list[dict[str, Any]]) -> int:
    """The count the check arrived at: the largest size found needed on the way up, else the
    smallest size kept on the way down."""
    ups = [r["k"] for r in records if r.get("up") and r["kept"]]
    return max(ups) if ups else min(r["k"] for r in records if r["kept"] and not r.get("up"))


def verify_sizes(error: Callable[[int], float], m: int, budget: float, capacity: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """The whole check at once (:func:`advance` until it is over): the count and the records.
    Never below 1, never above ``capacity`` (None: ``m``, the check only goes down)."""
    records: list[dict[str, Any]] = []
    while not advance(records, m, budget, error, capacity):
        pass
    return verified(records), records


def sample(data: Any, seed: int) -> torch.Tensor:
    """The rows the fresh networks see: the training tensor itself (:func:`split` picks at most
    :data:`MAX_SAMPLES`), or a seeded random subset read from a file streamed from disk."""
    if isinstance(data, BlockSampler):
        n = data.shape[0]
        return data.take(np.sort(np.random.default_rng(seed).choice(n, size=min(n, MAX_SAMPLES), replace=False)))
    return data


@torch.no_grad()
def close_cheapest(model: nn.Module, probe: Any, n: int) -> list[int]:
    """Closes ``n`` open dimensions of ``model``'s mask (theta set to 0), one at a time, each the
    one whose removal raises the probe's error least given those closed before it (the order
    elimination's rounds use); returns them in the order closed. Never closes the last one."""
    closed: list[int] = []
    for _ in range(n):
        open_dims = active_dims(model.mask().detach())
        if len(open_dims) <= 1:
            break
        costs = probe.ablation_costs(model, open_dims)
        j = min(open_dims, key=lambda d: costs[d])
        model.mask.theta[j] = 0.0
        closed.append(j)
    return closed


@torch.no_grad()
def reopen_latest(model: nn.Module, rounds: list[dict[str, Any]], n: int) -> list[int]:
    """Opens ``n`` closed dimensions of ``model``'s mask (theta set to the open value elimination
    gives), the last closed first: elimination's kept rounds (``rounds``) from the last back, each
    round's dimensions from its costliest; then any other closed ones. Returns them in order."""
    from latentdim.training.closing import ELIMINATE_OPEN_THETA

    closed = set(range(model.mask.theta.shape[0])) - set(active_dims(model.mask().detach()))
    order = [j for r in reversed(rounds) if r.get("kept") for j in reversed(r["dims"])]
    order += sorted(closed - set(order))
    opened = [j for j in order if j in closed][:n]
    for j in opened:
        model.mask.theta[j] = ELIMINATE_OPEN_THETA
    return opened


class Verification:
    """The fresh verification as the loop runs it (:class:`~latentdim.training.closing.Elimination`
    in the *verify* phase, between training steps): :meth:`step` trains the next sizes, as many
    at once as :func:`at_once` allows (the ones past a refusal are thrown away), and the loop
    checkpoints after it, so an interruption loses at most the sizes in progress and a resumed
    run goes on from the sizes done (they are in :attr:`records`, part of the closing rule's
    checkpointed state); no training step is taken and no random number drawn from torch's
    stream meanwhile, so a resumed run is the uninterrupted one. Every size trains on one CPU
    thread (:func:`one_thread_error`), so the verdict is the same however many train at once.
    With several ranks every rank trains the same fresh networks (no rank waits on a collective
    for minutes) and rank 0's count is the one acted on."""

    def __init__(self, m: int, records: list[dict[str, Any]] | None = None) -> None:
        self.m = m  # elimination's m_A: the check starts here
        self.records: list[dict[str, Any]] = records or []
        self._split: tuple[torch.Tensor, torch.Tensor] | None = None  # (train, held-out), drawn once
        self._workers_failed = ""  # why the worker processes could not be used, once they failed

    def step(self, run: Any) -> bool:
        """The next sizes (``run`` is the loop's :class:`~latentdim.training.loop.Run`); True once
        the check is over and the mask closed the dimensions it showed the data do not need."""
        cfg = run.config
        if self._split is None:
            self._split = split(sample(run.data, run.seed), run.seed)
        train_x, held_out = self._split
        fresh = FreshConfig(steps=cfg.verify_steps or DEFAULT_STEPS)
        should_stop = None if run.world.parallel else run.should_stop  # ranks must train the same sizes
        n = 1 if self._workers_failed else at_once(train_x.device, run.world.parallel, fresh.steps)
        ks = planned(self.records, self.m, run.capacity)[:n]
        codes = " and ".join(str(j) for j in ks) if len(ks) > 1 else str(ks[0])
        run.stage(f"verifying m_A {self.m}: {'plain auto-encoders' if len(ks) > 1 else 'a plain auto-encoder'} "
                  f"with {codes} code{'s' if ks != [1] else ''}, trained afresh "
                  f"({fresh.steps:,} steps{', at once' if len(ks) > 1 else ''})")
        errors = self._errors(ks, train_x, held_out, fresh, run.seed, should_stop)
        if errors is None:
            return False
        budget = (cfg.loss_budget or 0.0) * cfg.verify_budget_scale
        for _ in errors:  # the sizes in order, as advance asks for them
            if advance(self.records, self.m, budget, errors.__getitem__, run.capacity):
                change = int(run.world.agree(float(verified(self.records) - self.m), held_out.device))
                if change < 0:
                    close_cheapest(run.model, run.probe, -change)
                elif change > 0:
                    reopen_latest(run.model, run.rule.rounds, change)
                return True
        return False

    def _errors(self, ks: list[int], train_x: torch.Tensor, held_out: torch.Tensor, fresh: FreshConfig, seed: int,
                should_stop: Callable[[], bool] | None) -> dict[int, float] | None:
        """The fresh errors of the sizes ``ks`` (by size): at once in worker processes when there
        are several, else (or when the workers fail: then only the first) in this process."""
        if len(ks) > 1:
            try:
                with FreshWorkers(len(ks), train_x, held_out) as workers:
                    return workers.errors(ks, fresh, seed, should_stop)
            except WorkerFailed as exc:  # the same numbers here, one size at a time
                self._workers_failed = str(exc)
                warnings.warn(f"the fresh verification trains one size at a time: {exc}", RuntimeWarning, stacklevel=2)
        e = one_thread_error(train_x, held_out, ks[0], fresh, seed, should_stop)
        return None if e is None else {ks[0]: e}
