"""What ``latentdim`` shows while it works, on stderr so ``--json`` keeps stdout clean."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Column
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:  # `latentdim sample` uses this module and must run without torch
    from latentdim.training import StepStats


#: Without a terminal (a log file, a pipe), a training line at most this often (and at every
#: change of phase), so a log shows how a run goes without a line per step.
PLAIN_EVERY_SECONDS = 30.0

#: What each phase of the schedule does, for the progress line.
PHASE_WORDS = {
    "warmup": "warm-up (all dims open, until the fit plateaus)",
    "close": "closing",
    "hold": "checking a closing round",
    "verify": "verifying m_A with auto-encoders trained afresh",
    "polish": "polishing the mask",
    "refine": "refining (mask frozen)",
    "reference": "the papers' schedule",
}


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RunDisplay:
    """What a run shows while it works: a bar while images are decoded, a training line, and for
    each slow step around training (classical estimators, evaluation, FID, pictures) a line naming
    it, with a bar when it counts items.

    On a terminal these are rich live lines, one at a time (rich allows one live display): step
    lines vanish when the next part starts; the training line stays, showing where training
    ended. Training has no bar (a run ends when its mask settles, not at ``max_steps``): the line
    names the phase first, so it is never cut off, with an estimate of the phase's time left when
    its length is known, then step, rate and losses. Without a terminal (a log) the same facts
    come as plain lines: each step around training once as it starts, and a training line at most
    every :data:`PLAIN_EVERY_SECONDS` and at every change of phase. Nothing is shown before the
    first report, so an error in the arguments is never preceded by a bar.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: tuple[object, Progress, TaskID] | None = None
        self._start = time.monotonic()
        self._rate: tuple[float, int] | None = None  # (time, step) of the first report
        self._plain_last: tuple[float, str] | None = None  # (time, phase) of the last plain line
        self._plain_pending: tuple[str, str] | None = None  # (phase, line) held back
        self._stage: str | None = None

    @property
    def plain(self) -> bool:
        return not self.console.is_terminal

    def on_load(self, done: int, total: int) -> None:
        """``on_load`` of :func:`latentdim.api.estimate`: images decoded so far."""
        self.on_stage("decoding images", done, total)

    def on_stage(self, text: str, done: int | None = None, total: int | None = None) -> None:
        """``on_stage`` of :func:`latentdim.api.estimate`: a slow step began (or counted ``done`` of
        ``total`` items); the line stays until another step, training or :meth:`close`."""
        if self.plain:
            self._flush_plain()
            if text != self._stage:
                self._stage = text
                self._print_plain(text + (f" ({total:,})" if total is not None else ""))
            return
        counted = total is not None
        columns = [SpinnerColumn(), TextColumn(f"[bold]{text}")]
        if counted:
            columns += [BarColumn(), TextColumn("{task.completed:>7.0f}/{task.total:.0f}")]
        progress, task = self._switch(("stage", text, counted), lambda: Progress(
            *columns, TimeElapsedColumn(), console=self.console, transient=True
        ), total)
        if counted:
            progress.update(task, completed=done or 0)

    def phase_text(self, s: StepStats) -> str:
        """The phase in words with its time left (from the step rate measured so far), if known."""
        words = PHASE_WORDS.get(s.phase, s.phase)
        now = time.monotonic()
        if self._rate is None:
            self._rate = (now, s.step)
        t0, step0 = self._rate
        rate = (s.step - step0) / (now - t0) if now > t0 and s.step > step0 else None
        if s.phase_left is None or rate is None:
            return words
        left = _clock(s.phase_left / rate)
        return f"{words}, {'at most ' if s.phase == 'warmup' else ''}{left} left"

    def step_text(self, s: StepStats) -> str:
        return (
            f"step {s.step:,}  m_A {s.m_active} ({s.undecided} undecided)  rec {s.reconstruction:.4f}"
            f"  W {s.wasserstein:+.3f}"
        )

    def on_step(self, s: StepStats) -> None:
        """``on_step`` of :func:`latentdim.api.estimate`: the training line."""
        phase = self.phase_text(s)
        if self.plain:
            self._stage = None
            now = time.monotonic()
            last = self._plain_last
            line = f"training: {phase}; {self.step_text(s)}"
            if last is None or last[1] != s.phase or now - last[0] >= PLAIN_EVERY_SECONDS:
                self._plain_last = (now, s.phase)
                self._plain_pending = None
                self._print_plain(line)
            else:
                self._plain_pending = (s.phase, line)
            return
        progress, task = self._switch("training", lambda: Progress(
            SpinnerColumn(finished_text=" "),
            TimeElapsedColumn(),
            # one column, phase first: a narrow terminal cuts the numbers at the end, not the phase
            TextColumn("[bold]{task.fields[phase]}[/]  {task.fields[info]}",
                       table_column=Column(no_wrap=True, overflow="ellipsis")),
            console=self.console,
        ), None, phase="", info="")
        progress.update(task, phase=phase, info=self.step_text(s))

    def close(self) -> None:
        """Stops the live line, if any (the training line stays on screen); in a log, writes the
        last training report if it was held back."""
        self._flush_plain()
        if self._live is not None:
            self._live[1].stop()
            self._live = None

    def _flush_plain(self) -> None:
        if self._plain_pending is not None:
            (phase, line), self._plain_pending = self._plain_pending, None
            self._plain_last = (time.monotonic(), phase)
            self._print_plain(line)

    def _print_plain(self, text: str) -> None:
        self.console.print(f"[{_clock(time.monotonic() - self._start)}] {text}", markup=False, highlight=False,
                           soft_wrap=True)

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
def run_display(console: Console | None = None) -> Iterator[RunDisplay]:
    """A :class:`RunDisplay`, closed on the way out (also on errors and Ctrl-C)."""
    display = RunDisplay(console)
    try:
        yield display
    finally:
        display.close()
