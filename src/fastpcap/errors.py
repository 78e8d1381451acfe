"""Exceptions and warnings raised by fastpcap."""

from __future__ import annotations

import errno
import os


class CaptureError(ValueError):
    """A capture that cannot be read: not a capture, a corrupt record, an unreadable path.

    ``str(err)`` is one line naming the file, the byte offset and the problem, the same line
    the command line prints before exiting with status 2 (no offset when the path itself
    cannot be opened: ``offset`` is then ``None``).
    """

    def __init__(self, path: str | os.PathLike[str] | None, offset: int | None, problem: str,
                 *, decompressed: bool = False) -> None:
        self.path = None if path is None else os.fspath(path)
        self.offset = offset
        self.problem = problem
        #: Whether ``offset`` counts bytes of the decompressed capture (a compressed file).
        self.decompressed = decompressed
        where = "<packets>" if self.path is None else self.path
        of = " of the decompressed capture" if decompressed else ""
        at = "" if offset is None else f" byte offset {offset}{of}:"
        ValueError.__init__(self, f"{where}:{at} {problem}")

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:  # pickled whole (worker processes raise it)
        return type(self), (self.path, self.offset, self.problem), {"decompressed": self.decompressed}


class UnreadableCaptureError(CaptureError, OSError):
    """A capture path that cannot be opened or read (missing, a folder, no permission, an I/O
    error): a :class:`CaptureError` that is also an :class:`OSError`, with ``errno``,
    ``strerror`` and ``filename`` set.  For the common causes it is also the matching
    subclass, so ``except FileNotFoundError`` (``PermissionError``, ``IsADirectoryError``,
    ``NotADirectoryError``) catches it.  Use :func:`unreadable` to make one.
    """

    def __init__(self, path: str | os.PathLike[str] | None, offset: int | None, code: int | None, strerror: str,
                 *, decompressed: bool = False) -> None:
        CaptureError.__init__(self, path, offset, f"cannot read: {strerror}", decompressed=decompressed)
        self.errno = code  # type: ignore[misc]
        self.strerror = strerror  # type: ignore[misc]
        self.filename = self.path

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.offset, self.errno, self.strerror),
                {"decompressed": self.decompressed})


class _NotFound(UnreadableCaptureError, FileNotFoundError):
    __doc__ = UnreadableCaptureError.__doc__


class _NoPermission(UnreadableCaptureError, PermissionError):
    __doc__ = UnreadableCaptureError.__doc__


class _IsADirectory(UnreadableCaptureError, IsADirectoryError):
    __doc__ = UnreadableCaptureError.__doc__


class _NotADirectory(UnreadableCaptureError, NotADirectoryError):
    __doc__ = UnreadableCaptureError.__doc__


_BY_ERRNO: dict[int, type[UnreadableCaptureError]] = {
    errno.ENOENT: _NotFound, errno.EACCES: _NoPermission, errno.EPERM: _NoPermission,
    errno.EISDIR: _IsADirectory, errno.ENOTDIR: _NotADirectory,
}


def unreadable(path: str | os.PathLike[str] | None, exc: OSError, offset: int | None = None,
               *, decompressed: bool = False) -> UnreadableCaptureError:
    """The error for ``path`` failing with ``exc`` (when opening it: ``offset`` ``None``;
    when reading at ``offset``)."""
    cls = _BY_ERRNO.get(exc.errno, UnreadableCaptureError) if exc.errno is not None else UnreadableCaptureError
    return cls(path, offset, exc.errno, exc.strerror or str(exc), decompressed=decompressed)


class FastpcapWarning(UserWarning):
    """Base class of the warnings fastpcap emits (at most one of each kind per run, but for
    :class:`CorruptWarning`: one per corrupt region)."""


class GapWarning(FastpcapWarning):
    """Empty buckets were not written because a gap exceeded the gap cap (docs/data-model.md, "Gap cap")."""


class LinkTypeWarning(FastpcapWarning):
    """Frames of a link type fastpcap does not decode were counted by size only."""


class HostAddressWarning(FastpcapWarning):
    """The capture has IP traffic but no packet from the host addresses (``bridge_ip`` or
    ``host_ips``), so every row counts nothing out: most likely the wrong address was given."""


class LatePacketWarning(FastpcapWarning):
    """Following a capture with an idle close, packets came after their bucket had been
    written and were counted in the next row (docs/data-model.md, "Following a capture")."""


class CaptureStartError(OSError):
    """tcpdump could not start capturing (``fastpcap.run_capture``).

    ``str(err)`` is one line saying what is wrong and, when tcpdump said something, its own
    words; ``tcpdump_message`` holds those (one line), ``returncode`` its exit status
    (``None`` if it never ran), ``interface`` and ``pcap_path`` what was asked for.
    """

    def __init__(self, message: str, *, interface: str | None = None, pcap_path: str | None = None,
                 tcpdump_message: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.interface = interface
        self.pcap_path = pcap_path
        self.tcpdump_message = tcpdump_message
        self.returncode = returncode

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return type(self), (self.args[0],), {
            "interface": self.interface, "pcap_path": self.pcap_path,
            "tcpdump_message": self.tcpdump_message, "returncode": self.returncode}


class TcpdumpNotFoundError(CaptureStartError, FileNotFoundError):
    """There is no ``tcpdump`` to run (a ``FileNotFoundError``, as the reference's was)."""


class InterfaceNotFoundError(CaptureStartError):
    """The interface to capture on does not exist (in this network namespace)."""


class CapturePermissionError(CaptureStartError, PermissionError):
    """Capturing on the interface, or writing the capture file, is not permitted."""


class PrivilegeDropError(CapturePermissionError):
    """tcpdump, started as root, switched to its own unprivileged user before creating the
    capture file (its ``-Z`` default), and that user may not write the file's folder."""


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
