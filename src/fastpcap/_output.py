"""Output files that are never left half-written.

A new output goes to a temporary file beside the target and is renamed over it only when
the run succeeds, so a failed or interrupted run leaves the previous file as it was.  An
appended output is truncated back to its previous length if the run fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def open_output(path: str | os.PathLike[str] | None, *, append: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write rows to: stdout for ``None`` or ``"-"``.

    Parent folders are created.  Without ``append`` the file is replaced atomically when the
    block ends without an exception; with ``append`` the rows are added to it in place.
    """
    if path is None or os.fspath(path) == "-":
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if append:
        existed = target.exists()
        with open(target, "ab") as out:
            size = out.tell()
            try:
                yield out
                out.flush()
            except BaseException:
                if existed:
                    out.truncate(size)
                else:
                    target.unlink(missing_ok=True)
                raise
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        try:
            mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            mode = _default_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
