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
    """Base class of the warnings fastpcap emits (at most one of each kind per run, but for
    :class:`CorruptWarning`: one per corrupt region)."""


class GapWarning(FastpcapWarning):
    """Empty buckets were not written because a gap exceeded the gap cap (docs/data-model.md, "Gap cap")."""


class LinkTypeWarning(FastpcapWarning):
    """Frames of a link type fastpcap does not decode were counted by size only."""


class CorruptWarning(FastpcapWarning):
    """A corrupt record met under ``on_corrupt="stop"`` or ``"resync"`` (docs/data-model.md,
    "Corrupt records"): where the reading stopped (``kind`` ``"stop"``), a skipped region
    (``"region"``: ``offset`` and ``skipped_bytes``), or the end of a run that skipped some
    (``"summary"``: ``regions`` and ``skipped_bytes`` in all)."""

    def __init__(self, message: str, *, kind: str, offset: int | None = None, skipped_bytes: int = 0,
                 regions: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.offset = offset
        self.skipped_bytes = skipped_bytes
        self.regions = regions
