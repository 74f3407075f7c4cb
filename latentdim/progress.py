"""What ``latentdim`` shows while it works, on stderr so ``--json`` keeps stdout clean."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:  # `latentdim sample` uses this module and must run without torch
    from latentdim.train import StepStats


class RunDisplay:
    """One live line at a time: a bar while images are decoded, the training bar, and for each slow
    step around training (classical estimators, evaluation, FID, pictures) a line naming it, with
    a bar when it counts items and the time it has taken so far.

    rich allows one live display at a time, so each part stops the one before. Step lines vanish
    when the next part starts; the training bar stays, showing where training ended. Nothing is
    drawn before the first report, so an error in the arguments is never preceded by a bar.
    """

    def __init__(self, max_steps: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.max_steps = max_steps
        self._live: tuple[object, Progress, TaskID] | None = None

    def on_load(self, done: int, total: int) -> None:
        """``on_load`` of :func:`latentdim.api.estimate`: images decoded so far."""
        self.on_stage("decoding images", done, total)

    def on_stage(self, text: str, done: int | None = None, total: int | None = None) -> None:
        """``on_stage`` of :func:`latentdim.api.estimate`: a slow step began (or counted ``done`` of
        ``total`` items); the line stays until another step, training or :meth:`close`."""
        counted = total is not None
        columns = [SpinnerColumn(), TextColumn(f"[bold]{text}")]
        if counted:
            columns += [BarColumn(), TextColumn("{task.completed:>7.0f}/{task.total:.0f}")]
        progress, task = self._switch(("stage", text, counted), lambda: Progress(
            *columns, TimeElapsedColumn(), console=self.console, transient=True
        ), total)
        if counted:
            progress.update(task, completed=done or 0)

    def on_step(self, s: StepStats) -> None:
        """``on_step`` of :func:`latentdim.api.estimate`: the training bar, to ``max_steps`` (a run
        that settles earlier ends before the bar fills)."""
        progress, task = self._switch("training", lambda: Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            TextColumn("step {task.completed:>6.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
        ), self.max_steps, info="")
        info = (
            f"rec {s.reconstruction:.4f}  W {s.wasserstein:+.3f}  m_A {s.m_active}"
            f" ({s.undecided} undecided)  λ3 {s.lambda3:.3g}  {s.phase}"
        )
        progress.update(task, completed=s.step, info=info)

    def close(self) -> None:
        """Stops the live line, if any (the training bar stays on screen)."""
        if self._live is not None:
            self._live[1].stop()
            self._live = None

    def _switch(self, kind: object, make, total: int | None, **fields) -> tuple[Progress, TaskID]:  # noqa: ANN001
        if self._live is not None and self._live[0] == kind:
            return self._live[1], self._live[2]
        self.close()
        progress = make()
        progress.start()
        task = progress.add_task(str(kind), total=total, **fields)
        self._live = (kind, progress, task)
        return progress, task


@contextmanager
def run_display(max_steps: int, console: Console | None = None) -> Iterator[RunDisplay]:
    """A :class:`RunDisplay`, closed on the way out (also on errors and Ctrl-C)."""
    display = RunDisplay(max_steps, console)
    try:
        yield display
    finally:
        display.close()
