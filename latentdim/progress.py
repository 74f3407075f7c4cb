"""A rich progress display for training, on stderr so ``--json`` keeps stdout clean."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from latentdim.train import StepStats


@contextmanager
def training_progress(max_steps: int, console: Console | None = None) -> Iterator:
    """Yields an ``on_step`` callback that draws a progress bar from the first training step on.

    The bar appears only once training reports a step, so errors in loading the data are never
    preceded by an empty bar. It runs to ``max_steps``; a run that settles earlier ends before
    the bar fills.
    """
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        TextColumn("step {task.completed:>6.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
    )
    task = None

    def on_step(s: StepStats) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("train", total=max_steps, info="")
        info = (
            f"rec {s.reconstruction:.4f}  W {s.wasserstein:+.3f}  m_A {s.m_active}"
            f" ({s.undecided} undecided)  λ3 {s.lambda3:.3g}  {s.phase}"
        )
        progress.update(task, completed=s.step, info=info)

    try:
        yield on_step
    finally:
        if task is not None:
            progress.stop()


@contextmanager
def loading_progress(console: Console | None = None) -> Iterator:
    """Yields an ``on_progress(done, total)`` callback for decoding images; the bar appears on the
    first call (never for vectors) and is removed when loading is over."""
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]decoding images"), BarColumn(), TextColumn("{task.completed:>7.0f}/{task.total:.0f}"),
        TimeElapsedColumn(), console=console, transient=True,
    )
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("decode", total=total)
        progress.update(task, completed=done)
        if done >= total:
            progress.stop()

    try:
        yield on_progress
    finally:
        if task is not None:
            progress.stop()
