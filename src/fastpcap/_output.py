"""Output files that are never left half-written.

A new output goes to a temporary file beside the target and is renamed over it only when
the run succeeds, so a failed or interrupted run leaves the previous file as it was.  An
appended output is truncated back to its previous length if the run fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    if append:
        existed = os.path.exists(target)
        with open(target, "ab") as out:
            size = out.tell()
            try:
                yield out
                out.flush()
            except BaseException:
                if existed:
                    out.truncate(size)
                else:
                    _unlink(target)
                raise
        return
    fd, tmp = _create_beside(target, folder)
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
        _unlink(tmp)
        raise


def _create_beside(target: str, folder: str) -> tuple[int, str]:
    """A new, private file next to ``target`` (what ``tempfile.mkstemp`` does, without the
    cost of importing ``tempfile`` at every start)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{os.path.basename(target)}.{os.urandom(6).hex()}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
