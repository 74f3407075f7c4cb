"""Shared helpers for tests that drive the command line through Typer's CliRunner."""

import re

from typer.testing import CliRunner

from latentdim.cli import app

runner = CliRunner()


def run(*args, env=None):
    """Invokes ``latentdim ARGS...`` in-process; paths may be passed as Path objects; ``env``
    (e.g. ``{"COLUMNS": "200"}``) is set for the call."""
    return runner.invoke(app, [str(a) for a in args], env=env)


#: A progress line as a log gets it (stderr not a terminal): "[0:00:03] classical estimators ...".
PROGRESS_LINE = re.compile(r"^\[\d+:\d\d:\d\d\] ")


def one_error_line(result) -> str:
    """Asserts the run failed the way bad input must: exit code 2, one ``error:`` line, no traceback
    (progress lines of the steps that ran before it are not errors)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not PROGRESS_LINE.match(ln)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    return lines[0]
