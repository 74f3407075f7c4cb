"""latentdim.fileio.atomic_write: the old file or the new one, never half of either."""

from __future__ import annotations

import os
import stat

import pytest

from latentdim.fileio import atomic_write


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "a.bin"
    assert atomic_write(target, lambda f: f.write(b"one")) == target
    atomic_write(target, lambda f: f.write(b"two"))
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no temporary left behind


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"good")

    def half_then_fail(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        target = atomic_write(tmp_path / "report.html", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # 0o666 & ~0o022, not mkstemp's 0o600
