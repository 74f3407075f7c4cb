"""A rich progress display for training, on stderr so ``--json`` keeps stdout clean."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from latentdim.train import StepStats


@contextmanager
def training_progress(max_steps: int, console: Console | None = None) -> Iterator:
    """Yields an ``on_step`` callback that updates a progress bar until the block ends.

    The bar runs to ``max_steps``; a run that settles earlier simply ends before it fills.
    """
    console = console or Console(stderr=True)
    columns = (
        TextColumn("[bold]training"),
        BarColumn(),
        TextColumn("step {task.completed:>6.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=max_steps, info="")

        def on_step(s: StepStats) -> None:
            info = (
                f"rec {s.reconstruction:.4f}  W {s.wasserstein:+.3f}  m_A {s.m_active}"
                f" ({s.undecided} undecided)  λ3 {s.lambda3:.3g}  {s.phase}"
            )
            progress.update(task, completed=s.step, info=info)

        yield on_step
