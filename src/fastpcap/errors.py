"""Exceptions and warnings raised by fastpcap."""

from __future__ import annotations

import os


class CaptureError(ValueError):
    """A capture that cannot be read: not a capture, a corrupt record, an unreadable path.

    ``str(err)`` is one line naming the file, the byte offset and the problem, the same line
    the command line prints before exiting with status 2.
    """

    def __init__(self, path: str | os.PathLike[str] | None, offset: int, problem: str,
                 *, decompressed: bool = False) -> None:
        self.path = None if path is None else os.fspath(path)
        self.offset = offset
        self.problem = problem
        #: Whether ``offset`` counts bytes of the decompressed capture (a compressed file).
        self.decompressed = decompressed
        where = "<packets>" if self.path is None else self.path
        of = " of the decompressed capture" if decompressed else ""
        super().__init__(f"{where}: byte offset {offset}{of}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:  # pickled whole (worker processes raise it)
        return type(self), (self.path, self.offset, self.problem), {"decompressed": self.decompressed}


class FastpcapWarning(UserWarning):
    """Base class of the warnings fastpcap emits (at most one of each kind per run)."""


class GapWarning(FastpcapWarning):
    """Empty buckets were not written because a gap exceeded the gap cap (docs/data-model.md, "Gap cap")."""


class LinkTypeWarning(FastpcapWarning):
    """Frames of a link type fastpcap does not decode were counted by size only."""
