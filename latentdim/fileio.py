"""One way to write a file so that a crash never leaves half of it: :func:`atomic_write`.

Torch-free on purpose: the pictures and the report use it without importing torch.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, Callable


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Calls ``write(file_object)`` on a temporary file beside ``path``, fsyncs, then renames it
    over ``path``; returns ``path``.

    A crash leaves either the old file or the new one, never a partial file at ``path``; a failure
    inside ``write`` removes the temporary file and leaves any old ``path`` untouched. The
    temporary file is named ``.NAME.XXXXXXXX.tmp`` (``api.prepare_out`` clears stale ones) and
    created with mode 0o666 minus the umask, so the result has the permissions of any file the
    user writes (``tempfile.mkstemp`` would leave it 0o600).
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
