"""What every capture reader shares: the open file, the window of bytes being walked, errors.

The pieces, so that other containers and sources slot in beside them (libpcap's
``savefile.c`` / ``sf-pcap.c`` / ``sf-pcapng.c`` split):

* this module: :class:`CaptureReader`, the base of the readers, and :class:`Window`, the
  bytes of the capture being walked (one reusable buffer, refilled with ``readinto``);
* :mod:`.pcap` and :mod:`.pcapng`: one reader per container, each driving the backend's
  record walker (``walk`` / ``walk_pcapng``) over the window;
* :mod:`.capture`: :func:`~fastpcap.capture.open_capture`, which sniffs compression and
  container from the first bytes and dispatches.

Memory stays bounded: one window (grown only for a single record larger than it, at most
the link type's maximum record size) and one chunk of packet rows at a time.

A corrupt record is handled by :meth:`CaptureReader.corrupt`, whatever the container: an
error, the end of the reading, or a resync (:mod:`.resync`) per the ``on_corrupt`` policy.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, Literal, TypeVar

import numpy as np

from . import _backend
from ._format import DECODED_LINKTYPES, EXTENDED_LINKTYPES
from .errors import CaptureError, CorruptWarning, unreadable
from .options import DECODES, check_on_corrupt, check_tunnels
from .resync import MAX_REPORTED, Scan, resync

if TYPE_CHECKING:
    from .compression import CorruptStream

#: Packets per chunk a reader yields (the walk also stops at a window's end).
DEFAULT_CHUNK_PACKETS = 1 << 14
#: Bytes read from the file at a time.
DEFAULT_BLOCK_SIZE = 4 << 20
#: The smallest window: a whole classic record header, or a pcapng block header.
MIN_BLOCK_SIZE = 16


def is_stream(source: object) -> bool:
    """Whether ``source`` is an open binary file object rather than a path."""
    return hasattr(source, "readinto") and hasattr(source, "read")


def open_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a capture file for reading; a failure is an :class:`UnreadableCaptureError`."""
    try:
        return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the reader
    except OSError as exc:
        raise unreadable(path, exc) from None


_Reader = TypeVar("_Reader", bound="CaptureReader")


class CaptureReader:
    """An open capture; iterate it for chunks of packet rows (``PACKET_DTYPE``).

    Subclasses read one container.  The first bytes are read when the reader is created, so
    a file that is not a capture fails before anything else happens.  A trailing partial
    record (a capture still being written) ends the walk without error.
    """

    #: "pcap" or "pcapng" ("" for a file too short to tell)
    format = ""

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        chunk_packets: int = DEFAULT_CHUNK_PACKETS,
        block_size: int = DEFAULT_BLOCK_SIZE,
        progress: Callable[[int], object] | None = None,
        name: str | None = None,
        compression: str | None = None,
        decode: str = "reference",
        closer: BinaryIO | None = None,
        on_corrupt: str = "error",
        tunnels: str = "outer",
    ) -> None:
        """``source``: a path, or an open binary stream (read, and closed by :meth:`close`
        only if ``closer`` is given: the file under a decompressor, say).  ``name``: the
        capture's name in errors.  ``compression``: what ``source`` was decompressed from.
        ``on_corrupt``: what a corrupt record does (:meth:`corrupt`).  ``tunnels``: ``"inner"``
        (extended decode only) counts the packet inside a tunnel (docs/data-model.md)."""
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {', '.join(DECODES)}, not {decode!r}")
        check_tunnels(tunnels, decode)
        if chunk_packets < 1:
            raise ValueError("chunk_packets must be at least 1")
        if block_size < MIN_BLOCK_SIZE:
            raise ValueError(f"block_size must be at least {MIN_BLOCK_SIZE}")
        #: "error", "stop" or "resync" (docs/data-model.md, "Corrupt records").
        self.on_corrupt = check_on_corrupt(on_corrupt)
        self.chunk_packets = chunk_packets
        self.block_size = block_size
        self._progress = progress
        self._counted = 0  # progress was told of the bytes before this offset (a re-read counts once)
        self._reported = 0  # bytes about to be read that progress was already told of
        #: "reference" (the reference collector's decode) or "extended" (docs/data-model.md).
        self.decode = decode
        self._extended = decode == "extended"
        #: "outer" (count the outer packet) or "inner" (the packet inside a tunnel).
        self.tunnels = tunnels
        self._tunnels = tunnels == "inner"
        #: The compression the capture was read through (``None``: none).
        self.compression = compression
        #: Complete records walked so far.
        self.packets = 0
        #: Offset where the walk stopped: the end of the last complete record.
        self.end_offset = 0
        #: Bytes after ``end_offset`` that do not make a complete record (a partial tail), or
        #: a complete file header when the file is shorter than one.
        self.tail_bytes = 0
        #: Frames counted by size only, per link type fastpcap does not decode.
        self.undecoded: dict[int, int] = {}
        #: With ``jobs`` > 1: how many byte ranges the capture was cut into, how many were
        #: spliced from worker processes, how many were walked again here, and how many of
        #: those because a worker crashed (``None``: one process).
        self.split_stats: dict[str, int] | None = None
        #: The corrupt record the reading stopped at (``on_corrupt="stop"``).
        self.stopped: CaptureError | None = None
        #: Regions skipped by resyncs, and their bytes (``on_corrupt="resync"``); ``skipped``
        #: lists the first :data:`~fastpcap.resync.MAX_REPORTED` as (offset, bytes).
        self.skipped_regions = 0
        self.skipped_bytes = 0
        self.skipped: list[tuple[int, int]] = []
        #: The time of the last packet walked that has one (a resync looks for times near it).
        self.last_t_ns: int | None = None
        self._position = 0  # offset the next read starts from
        self._deferred: CaptureError | None = None  # a read error met after some bytes came
        if is_stream(source):
            self.path = name or str(getattr(source, "name", "<stream>"))
            self._file: BinaryIO | None = source  # type: ignore[assignment]
            self._closer = closer
        else:
            self.path = name or os.fspath(source)  # type: ignore[arg-type]
            self._file = open_file(self.path)
            self._closer = self._file
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        """Read and check the file header."""
        raise NotImplementedError

    @property
    def owned(self) -> bool:
        """Whether the reader opened the file itself (and closes it)."""
        return self._closer is not None

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the packet rows: ``PACKET_DTYPE``, or ``PACKET6_DTYPE`` when extended."""
        impl = _backend.impl
        return impl.PACKET6_DTYPE if self._extended else impl.PACKET_DTYPE

    @property
    def linktypes(self) -> list[int]:
        """The capture's link types (one per interface for pcapng), as far as read."""
        raise NotImplementedError

    def error(self, offset: int, problem: str) -> CaptureError:
        """The error for ``problem`` at ``offset`` of this capture."""
        return CaptureError(self.path, offset, problem, decompressed=self.compression is not None)

    def corrupt(self, error: CaptureError, win: Window, scan: Scan) -> bool:
        """The walk met the corrupt record at ``win.pos`` (``error`` says what is wrong): raise
        ``error`` (``on_corrupt="error"``), or warn and return False, the reading ending there
        (``"stop"``), or move ``win.pos`` to the next plausible record ``scan`` finds, warn
        with the region skipped, and return True (``"resync"``; at the end of the capture if
        there is none)."""
        if self.on_corrupt == "error":
            raise error
        if self.on_corrupt == "stop":
            self._stop(error)
            return False
        start = win.offset
        self._skipped(error, start, win, resync(win, scan))
        return True

    def corrupt_tail(self, error: Callable[[], CaptureError], win: Window, scan: Scan) -> bool:
        """The capture ends inside the record at ``win.pos``: a partial record (a capture
        still being written), unless a plausible record starts inside it, which makes its
        length the corrupt part (``error()`` says so).  With ``on_corrupt`` "stop" or
        "resync", that case is handled as :meth:`corrupt` does; returns True when the walk
        goes on from ``win.pos``."""
        if self.on_corrupt == "error" or not win.left:
            return False
        start = win.pos
        found = resync(win, scan)  # (at the end of the capture: no byte is let go)
        landed, win.pos = win.pos, start
        if not found:
            return False
        problem = error()
        if self.on_corrupt == "stop":
            self._stop(problem)
            return False
        win.pos = landed
        self._skipped(problem, win.base + start, win, True)
        return True

    def _stop(self, error: CaptureError) -> None:
        self.stopped = error
        warnings.warn(CorruptWarning(
            f"{error}; stopped reading there (--on-corrupt stop) after {self.packets} packet(s)",
            kind="stop", offset=error.offset), stacklevel=3)

    def _skipped(self, error: CaptureError, start: int, win: Window, found: bool) -> None:
        """Account for (and report) the region from ``start`` to ``win.offset`` a resync skipped."""
        length = win.offset - start
        self.skipped_regions += 1
        self.skipped_bytes += length
        if len(self.skipped) < MAX_REPORTED:
            self.skipped.append((start, length))
            where = (f"to the next plausible record, at byte offset {win.offset}" if found
                     else "to the end of the capture (no plausible record after it)")
            warnings.warn(CorruptWarning(f"{error}; skipped {length} byte(s) {where} (--on-corrupt resync)",
                                         kind="region", offset=start, skipped_bytes=length, regions=1),
                          stacklevel=3)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes from where the reading is: fewer only at the end of the
        capture (a read error there is raised, the bytes before it being of no use alone)."""
        buf = bytearray(size)
        got = self.fill(memoryview(buf), self._position)
        if got < size and self._deferred is not None:
            self.fill(memoryview(buf)[:0], self._position)  # raises it
        return bytes(buf[:got])

    def fill(self, view: memoryview, offset: int) -> int:
        """Read into ``view`` (whose first byte is at ``offset`` of the capture) until it is
        full or the file ends; returns the bytes read.  A read error after some bytes came is
        raised on the next call, so that those bytes are walked first."""
        if self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            raise deferred
        assert self._file is not None
        got = 0
        readinto = self._file.readinto  # type: ignore[attr-defined]
        while got < len(view):
            try:
                n = readinto(view[got:])
            except Exception as exc:  # noqa: BLE001 - each kind becomes the capture's error
                error = self._read_error(exc, offset + got)
                if error is None:
                    raise
                if not got:
                    raise error from None
                self._deferred = error
                break
            if not n:
                break
            got += n
        self._position += got
        if self._progress is not None and got and self.compression is None:
            new = self.passed(offset + got) if offset <= self._counted else 0
            credit = min(self._reported, new)
            self._reported -= credit
            if new > credit:
                self._progress(new - credit)
        return got

    def passed(self, offset: int) -> int:
        """The bytes before ``offset`` have been read (here or by another process): returns
        how many of them progress had not been told of yet (and does not tell it)."""
        new = max(0, offset - self._counted)
        self._counted = max(self._counted, offset)
        return new

    def reported_elsewhere(self, nbytes: int) -> None:
        """The next ``nbytes`` read were already counted by ``progress`` (by a worker process
        that read them first): do not count them again."""
        self._reported += nbytes

    def _read_error(self, exc: Exception, offset: int) -> CaptureError | None:
        """A failed read as this capture's error at ``offset`` (``None``: not a read error)."""
        from .compression import CorruptStream

        if isinstance(exc, CorruptStream):
            return self._corrupt(exc, offset)
        if isinstance(exc, OSError):
            return unreadable(self.path, exc, offset, decompressed=self.compression is not None)
        return None

    def _corrupt(self, exc: CorruptStream, offset: int) -> CaptureError:
        return corrupt_stream_error(self.path, exc)

    def seek(self, offset: int) -> None:
        """Continue reading from ``offset`` (a seekable file only)."""
        if offset == self._position:
            return
        assert self._file is not None
        try:
            self._file.seek(offset)
        except (OSError, AttributeError) as exc:
            raise ValueError(f"cannot seek {self.path} to {offset}: {exc}") from None
        self._position = offset

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (a seekable file only); the next read continues
        after them."""
        self.seek(offset)
        return self.read(size)

    def close(self) -> None:
        """Close the file, if the reader owns it (iteration stops)."""
        if self._closer is not None:
            self._closer.close()
        self._file = None

    def __enter__(self: _Reader) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def count_walked(self, linktype: int, packets: int) -> None:
        """Count ``packets`` more walked records of ``linktype`` (walked here or elsewhere)."""
        self.packets += packets
        if linktype not in (EXTENDED_LINKTYPES if self._extended else DECODED_LINKTYPES) and packets:
            self.undecoded[linktype] = self.undecoded.get(linktype, 0) + packets

    def _count_chunk(self, packets: np.ndarray) -> None:
        """Count a chunk of walked packets, of any link types."""
        lts = packets["linktype"]
        if len(lts) and not (lts[0] == lts).all():
            for lt, count in zip(*np.unique(lts, return_counts=True)):
                self.count_walked(int(lt), int(count))
        elif len(lts):
            self.count_walked(int(lts[0]), len(lts))


def corrupt_stream_error(path: str, exc: CorruptStream) -> CaptureError:
    """A corrupt compressed stream as the capture's error: the offset in the compressed file
    where the decompressor found it, and how much capture data came out before."""
    from .compression import _RAW_CHUNK

    piece = f"{_RAW_CHUNK >> 20} MiB" if _RAW_CHUNK >= 1 << 20 else f"{_RAW_CHUNK >> 10} KiB"
    where = "" if exc.exact else f"within the {piece} of compressed data up to this offset; "
    return CaptureError(path, exc.compressed_offset,
                        f"{exc} ({where}{exc.decompressed_offset} bytes of capture data came out before it)")


class Window:
    """The part of the capture being walked: ``buf[:filled]`` holds bytes ``base`` onwards,
    the walk is at ``buf[pos]``; ``eof`` once nothing more will come (the file, or its first
    ``end`` bytes, ended)."""

    def __init__(self, reader: CaptureReader, start: int, end: int | None, prefix: bytes = b"") -> None:
        self.reader = reader
        self.end = end
        self.buf = bytearray(max(reader.block_size, len(prefix)))
        self.buf[: len(prefix)] = prefix
        self.base = start
        self.pos = 0
        self.filled = len(prefix)
        self.eof = False
        self._read_more()

    @property
    def offset(self) -> int:
        """Where the walk is, as an offset in the capture."""
        return self.base + self.pos

    @property
    def left(self) -> int:
        """Bytes from the walk's position to the end of what was read."""
        return self.filled - self.pos

    def _read_more(self) -> None:
        room = len(self.buf) - self.filled
        if self.end is not None:
            room = max(0, min(room, self.end - (self.base + self.filled)))
        got = self.reader.fill(memoryview(self.buf)[self.filled:self.filled + room], self.base + self.filled)
        self.filled += got
        self.eof = got < room or room < len(self.buf) - (self.filled - got)

    def refill(self, need: int) -> bool:
        """Keep the bytes from ``pos`` on and read more, making room for ``need`` bytes from
        ``pos``; False (nothing done) when the capture has no more bytes."""
        if self.eof:
            if self.reader._deferred is not None:  # the walk has used every byte that came
                self.reader.fill(memoryview(bytearray(0)), self.offset)
            return False
        left = self.left
        if need > len(self.buf):
            grown = bytearray(need)
            grown[:left] = self.buf[self.pos:self.filled]
            self.buf = grown
        else:
            self.buf[:left] = self.buf[self.pos:self.filled]
        self.base += self.pos
        self.pos = 0
        self.filled = left
        self._read_more()
        return True

    def u32(self, at: int, byteorder: Literal["little", "big"]) -> int:
        """The u32 at ``pos + at``."""
        return int.from_bytes(self.buf[self.pos + at:self.pos + at + 4], byteorder)

    def u16(self, at: int, byteorder: Literal["little", "big"]) -> int:
        """The u16 at ``pos + at``."""
        return int.from_bytes(self.buf[self.pos + at:self.pos + at + 2], byteorder)


def concatenate(chunks: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """``np.concatenate`` that keeps ``dtype`` exactly (numpy's promotion of structured
    dtypes drops their padding, which would change ``PACKET_DTYPE``'s layout)."""
    out = np.zeros(sum(len(c) for c in chunks), dtype=dtype)
    at = 0
    for chunk in chunks:
        out[at:at + len(chunk)] = chunk
        at += len(chunk)
    return out
