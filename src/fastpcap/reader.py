"""Reading captures: classic pcap and pcapng, plain or compressed, a block at a time.

The pieces, so that other containers and sources slot in beside them:

* a *byte source*: a binary stream read with ``readinto`` into one reusable window
  (:class:`_Window`), the file itself or a decompressor over it (:mod:`.compression`);
* a *record walker* per container (``walk`` and ``walk_pcapng`` of the active backend):
  decodes the complete records of a window into packet rows and says where it stopped, so
  a record cut by the window's end is carried to the next one;
* the *decoder per link type*, chosen inside the walker for each packet.

:func:`open_capture` sniffs compression and container from the first bytes and returns a
:class:`PcapReader` or a :class:`~fastpcap.pcapng.PcapngReader`.  Memory stays bounded: one
window (grown only for a single record larger than it, at most the link type's maximum
record size) and one chunk of packet rows at a time.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal, TypeVar, cast

import numpy as np

from . import _backend, _pure
from .compression import CorruptStream
from .errors import CaptureError
from .options import DECODES

#: Packets per chunk yielded by :func:`iter_packets` (the walk also stops at a block's end).
DEFAULT_CHUNK_PACKETS = 1 << 14
#: Bytes read from the file at a time.
DEFAULT_BLOCK_SIZE = 4 << 20

GLOBAL_HEADER_SIZE = 24
RECORD_HEADER_SIZE = 16

# The four encodings of the two classic-pcap magics: (byte order, nanosecond timestamps).
_MAGICS: dict[bytes, tuple[Literal["little", "big"], bool]] = {
    bytes.fromhex("d4c3b2a1"): ("little", False),
    bytes.fromhex("4d3cb2a1"): ("little", True),
    bytes.fromhex("a1b2c3d4"): ("big", False),
    bytes.fromhex("a1b23c4d"): ("big", True),
}

#: Link types whose header the walker decodes; frames of any other one count by size only.
DECODED_LINKTYPES = _pure.DECODED_LINKTYPES

LINKTYPE_NAMES = {
    0: "NULL", 1: "EN10MB", 9: "PPP", 12: "RAW", 14: "RAW", 101: "RAW", 104: "C_HDLC",
    105: "IEEE802_11", 108: "LOOP", 113: "LINUX_SLL", 127: "IEEE802_11_RADIOTAP", 228: "IPV4",
    229: "IPV6", 231: "DBUS", 239: "NFLOG", 276: "LINUX_SLL2",
}

# libpcap refuses records longer than this (max_snaplen_for_dlt): a corrupt or fuzzed file.
_MAX_CAPLEN_DEFAULT = 262144
_MAX_CAPLEN = {231: 128 << 20, 279: 8 << 20, 249: 1 << 20}  # DBUS, EBHSCR, USBPCAP


def max_caplen(linktype: int) -> int:
    """The largest ``incl_len`` libpcap accepts for ``linktype``."""
    return _MAX_CAPLEN.get(linktype, _MAX_CAPLEN_DEFAULT)


def linktype_name(linktype: int) -> str:
    """``LINKTYPE_ETHERNET``-style short name, e.g. ``"EN10MB(1)"``."""
    return f"{LINKTYPE_NAMES.get(linktype, 'LINKTYPE')}({linktype})"


@dataclass(frozen=True)
class PcapHeader:
    """The classic-pcap global header."""

    byteorder: Literal["little", "big"]
    nsec: bool  # timestamps' fraction is nanoseconds (else microseconds)
    version: tuple[int, int]
    snaplen: int
    linktype: int  # the link type proper (low 26 bits of the header's network field)
    network: int  # the header's whole network field, FCS bits included

    @property
    def swapped(self) -> bool:
        """Whether the header and record fields are big-endian."""
        return self.byteorder == "big"


def parse_header(data: bytes, path: str | os.PathLike[str] | None = None) -> PcapHeader | None:
    """Parse the first bytes of a capture.

    Returns ``None`` when the bytes are the beginning of a valid header (a capture that has
    just started: it holds no packets yet); raises :class:`CaptureError` when they cannot be.
    """
    magic = data[:4]
    if len(magic) < 4:
        if any(m.startswith(magic) for m in _MAGICS):
            return None
        raise CaptureError(path, 0, f"not a capture (starts with {magic.hex() or 'nothing'})")
    if magic not in _MAGICS:
        raise CaptureError(path, 0, f"not a capture (unknown magic 0x{magic.hex()})")
    if len(data) < GLOBAL_HEADER_SIZE:
        return None
    byteorder, nsec = _MAGICS[magic]
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(
        ("<" if byteorder == "little" else ">") + "HHiIII", data[4:GLOBAL_HEADER_SIZE]
    )
    return PcapHeader(byteorder, nsec, (major, minor), snaplen, network & 0x03FFFFFF, network)


def is_stream(source: object) -> bool:
    """Whether ``source`` is an open binary file object rather than a path."""
    return hasattr(source, "readinto") and hasattr(source, "read")


def _open(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by PcapReader.close
    except OSError as exc:
        raise CaptureError(path, 0, f"cannot read: {exc.strerror or exc}") from None


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
    ) -> None:
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {', '.join(DECODES)}, not {decode!r}")
        if chunk_packets < 1:
            raise ValueError("chunk_packets must be at least 1")
        if block_size < RECORD_HEADER_SIZE:
            raise ValueError(f"block_size must be at least {RECORD_HEADER_SIZE}")
        self.chunk_packets = chunk_packets
        self.block_size = block_size
        self._progress = progress
        #: "reference" (the spec's decode) or "extended" (docs/data-model.md).
        self.decode = decode
        self._extended = decode == "extended"
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
        self._position = 0  # offset the next read starts from
        self._closer: BinaryIO | None = None  # what close() closes, when not _file itself
        #: With ``jobs`` > 1: how many byte ranges the capture was cut into, how many were
        #: spliced from worker processes, how many were walked again here, and how many of
        #: those because a worker crashed (``None``: one process).
        self.split_stats: dict[str, int] | None = None
        if is_stream(source):
            # An open binary stream (stdin, a pipe, a decompressor): read, never closed here.
            self.path = name or str(getattr(source, "name", "<stream>"))
            self._file: BinaryIO | None = source  # type: ignore[assignment]
            self._owned = False
        else:
            self.path = name or os.fspath(source)  # type: ignore[arg-type]
            self._file = _open(self.path)
            self._owned = True
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        """Read and check the file header."""
        raise NotImplementedError

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

    def _read(self, size: int) -> bytes:
        assert self._file is not None
        parts = []
        got = 0
        while got < size:
            part = self._guarded(self._file.read, size - got, self._position + got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        data = b"".join(parts)
        self._position += len(data)
        if self._progress is not None and data and self.compression is None:
            self._progress(len(data))
        return data

    def _fill(self, view: memoryview, offset: int) -> int:
        """Read into ``view`` (whose first byte is at ``offset`` of the capture) until it is
        full or the file ends; returns the bytes read."""
        assert self._file is not None
        got = 0
        readinto = self._file.readinto  # type: ignore[attr-defined]
        while got < len(view):
            n = self._guarded(readinto, view[got:], offset + got)
            if not n:
                break
            got += n
        self._position += got
        if self._progress is not None and got and self.compression is None:
            self._progress(got)
        return got

    def _guarded(self, read: Callable, arg: object, offset: int):  # type: ignore[type-arg]
        """``read(arg)``, its failures as errors at ``offset``, where the reading stopped."""
        try:
            return read(arg)
        except CorruptStream as exc:
            raise self.error(offset, str(exc)) from None
        except OSError as exc:
            raise self.error(offset, f"cannot read: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Close the file, if the reader opened it (iteration stops)."""
        if self._file is not None and self._owned:
            (self._closer or self._file).close()
        self._file = None

    def __enter__(self: _Reader) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _count_undecoded(self, packets: np.ndarray) -> None:
        lts = packets["linktype"]
        if len(lts) and not (lts[0] == lts).all():
            for lt, count in zip(*np.unique(lts, return_counts=True)):
                self._count_linktype(int(lt), int(count))
        elif len(lts):
            self._count_linktype(int(lts[0]), len(lts))

    def _count_linktype(self, linktype: int, count: int) -> None:
        if linktype not in DECODED_LINKTYPES:
            self.undecoded[linktype] = self.undecoded.get(linktype, 0) + count


class _Window:
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
        got = self.reader._fill(memoryview(self.buf)[self.filled:self.filled + room], self.base + self.filled)
        self.filled += got
        self.eof = got < room or room < len(self.buf) - (self.filled - got)

    def refill(self, need: int) -> bool:
        """Keep the bytes from ``pos`` on and read more, making room for ``need`` bytes from
        ``pos``; False (nothing done) when the capture has no more bytes."""
        if self.eof:
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


class PcapReader(CaptureReader):
    """An open classic-pcap capture; iterate it for chunks of packet rows (``PACKET_DTYPE``).

    ``source`` is a path or an open binary stream of a classic pcap (use
    :func:`open_capture` for any capture).
    """

    format = "pcap"

    def _start(self) -> None:
        self.end_offset = GLOBAL_HEADER_SIZE
        head = self._read(GLOBAL_HEADER_SIZE)
        self.header = parse_header(head, self.path)
        if len(head) < 4:
            self.format = ""  # too short to tell
        if self.header is None:
            self.end_offset = 0
            self.tail_bytes = len(head)

    @property
    def linktypes(self) -> list[int]:
        return [] if self.header is None else [self.header.linktype]

    @property
    def undecoded_linktype(self) -> int | None:
        """The capture's link type if fastpcap counts its frames by size only, else ``None``."""
        if self.header is None or self.header.linktype in DECODED_LINKTYPES:
            return None
        return self.header.linktype

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.header is None:
            self.close()
            return iter(())
        return self.walk(GLOBAL_HEADER_SIZE)

    def walk(self, start: int, stop: int | None = None, end: int | None = None,
             *, close: bool = True) -> Iterator[np.ndarray]:
        """Yield chunks of packets from the record at file offset ``start``.

        The walk stops before the first record that starts at or after ``stop`` (then
        ``end_offset`` is that record's offset), or where the file (or its first ``end``
        bytes) ends: ``end_offset`` is then where the partial tail starts, and
        ``tail_bytes`` its length.  ``packets`` counts on from its current value, so record
        numbers in errors are the file's.  Closes the file at the end unless ``close`` is
        false.  ``start`` must be a record boundary.
        """
        header = self.header
        if header is None or self._file is None:
            raise ValueError("the capture has no header to walk from")
        if start != self._position:
            try:
                self._file.seek(start)
            except (OSError, AttributeError) as exc:
                raise ValueError(f"cannot seek {self.path} to {start}: {exc}") from None
            self._position = start
        impl = _backend.impl
        limit = max_caplen(header.linktype)
        counted = self.packets
        try:
            win = _Window(self, start, end)
            while True:
                out = np.zeros(self.chunk_packets, dtype=self.dtype)
                pos, n, status = impl.walk(win.buf, win.pos, win.filled, out, win.base, header.swapped,
                                           header.nsec, header.linktype, limit)
                win.pos = pos
                if stop is not None and win.offset >= stop and n:
                    keep = int(np.searchsorted(out["offset"][:n], stop))
                    if keep < n:  # stop inside this chunk: end at the first record past it
                        win.pos = int(out["offset"][keep]) - win.base
                        n = keep
                        status = impl.WALK_OK
                if n:
                    self.packets += n
                    yield out[:n]
                if status == impl.WALK_BAD_CAPLEN:
                    raise self.error(win.offset, (
                        f"record {self.packets + 1} claims {win.u32(8, header.byteorder)} captured bytes, "
                        f"more than the {limit} libpcap allows for link type "
                        f"{linktype_name(header.linktype)}; the file is corrupt"))
                if stop is not None and win.offset >= stop:
                    self.end_offset, self.tail_bytes = win.offset, 0
                    return
                if n == self.chunk_packets:
                    continue
                # The walk stopped at a record that is not complete in the window.
                need = RECORD_HEADER_SIZE
                if win.left >= RECORD_HEADER_SIZE:
                    need += win.u32(8, header.byteorder)
                if not win.refill(need):
                    self.end_offset, self.tail_bytes = win.offset, win.left
                    return
        finally:
            self._count_linktype(header.linktype, self.packets - counted)
            if close:
                self.close()


def open_capture(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_packets: int = DEFAULT_CHUNK_PACKETS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Callable[[int], object] | None = None,
    decode: str = "reference",
) -> CaptureReader:
    """Open any capture fastpcap reads: classic pcap or pcapng, plain or compressed (gzip,
    zstd, xz, bzip2, lz4), told apart by their first bytes.

    ``source`` is a path or an open binary stream.  Raises :class:`~fastpcap.CaptureError`
    for what is not a capture or cannot be read.  ``progress``, if given, is called with the
    number of bytes of the file read each time it reads.  ``decode="extended"`` gives rows of
    ``PACKET6_DTYPE`` with the extended decode (docs/data-model.md).
    """
    from .compression import SNIFF, detect, open_decompressed, started_compression
    from .pcapng import MAGIC as PCAPNG_MAGIC
    from .pcapng import PcapngReader
    from .pcapng import is_prefix as pcapng_prefix

    raw: BinaryIO
    if is_stream(source):
        raw = cast(BinaryIO, source)
        name = str(getattr(source, "name", "<stream>"))
        owned = False
    else:
        name = os.fspath(source)  # type: ignore[arg-type]
        raw = _open(name)
        owned = True
    try:
        stream = _Sniffer(raw, name, progress)
        prefix = stream.peek(SNIFF)
        compression = detect(prefix)
        started = started_compression(prefix)
        if compression is None and started is not None:
            # The whole file is the start of a compressed stream (a compressor that has just
            # begun writing): like a capture that has just begun, it holds no packets yet.
            compression, stream = started, _Sniffer(io.BytesIO(b""), name, None)  # type: ignore[arg-type]
        elif compression is not None:
            stream = _Sniffer(open_decompressed(stream, compression), name, None)  # type: ignore[arg-type]
        head = stream.peek(4)
        kind: type[CaptureReader]
        if head and head[:4] == PCAPNG_MAGIC[: len(head)] and (len(head) == 4 or pcapng_prefix(head)):
            kind = PcapngReader
        else:
            kind = PcapReader
        reader = kind(stream, chunk_packets=chunk_packets, block_size=block_size,  # type: ignore[arg-type]
                      name=name, compression=compression, decode=decode)
    except BaseException:
        if owned:
            raw.close()
        raise
    reader._owned = owned
    reader._closer = raw  # closing the reader closes the file under the decompressor too
    return reader


class _Sniffer:
    """A stream whose first bytes can be looked at before it is read."""

    def __init__(self, raw: BinaryIO, name: str, progress: Callable[[int], object] | None) -> None:
        self.raw = raw
        self.name = name
        self._progress = progress
        self._ahead = b""

    def peek(self, size: int) -> bytes:
        while len(self._ahead) < size:
            try:
                more = self.raw.read(size - len(self._ahead))
                if self._progress is not None and more:
                    self._progress(len(more))
            except CorruptStream as exc:
                raise CaptureError(self.name, len(self._ahead), str(exc), decompressed=True) from None
            except OSError as exc:
                raise CaptureError(self.name, 0, f"cannot read: {exc.strerror or exc}") from None
            if not more:
                break
            self._ahead += more
        return self._ahead[:size]

    def readinto(self, view) -> int:  # type: ignore[no-untyped-def]
        if self._ahead:  # counted when peeked
            n = min(len(view), len(self._ahead))
            view[:n] = self._ahead[:n]
            self._ahead = self._ahead[n:]
            return n
        n = self.raw.readinto(view)  # type: ignore[attr-defined]
        if self._progress is not None and n:
            self._progress(n)
        return n

    def read(self, size: int = -1) -> bytes:
        if self._ahead:  # counted when peeked
            data = self._ahead if size < 0 else self._ahead[:size]
            self._ahead = self._ahead[len(data):]
            return data
        data = self.raw.read(size)
        if self._progress is not None and data:
            self._progress(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._ahead = b""
        return self.raw.seek(offset, whence)

    def close(self) -> None:
        self.raw.close()


def iter_packets(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_packets: int = DEFAULT_CHUNK_PACKETS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    decode: str = "reference",
) -> Iterator[np.ndarray]:
    """Yield the packets of a capture as chunks of rows of ``PACKET_DTYPE``.

    Any capture :func:`open_capture` reads; ``path`` may also be an open binary stream
    (stdin, a pipe), read to its end.

    Each chunk holds at most ``chunk_packets`` rows and is a new array the caller may keep.
    Raises :class:`~fastpcap.CaptureError` for a file that is not a capture, a corrupt
    record, or an unreadable path.  See ``docs/data-model.md`` for the fields.
    """
    with open_capture(path, chunk_packets=chunk_packets, block_size=block_size, decode=decode) as reader:
        yield from reader


def read_packets(path: str | os.PathLike[str] | BinaryIO, *, decode: str = "reference") -> np.ndarray:
    """All packets of a capture in one array of ``PACKET_DTYPE``.

    Holds the whole capture in memory (48 bytes per packet); use :func:`iter_packets` to
    stream a large one.
    """
    impl = _backend.impl
    dtype = impl.PACKET6_DTYPE if decode == "extended" else impl.PACKET_DTYPE
    return concatenate(list(iter_packets(path, decode=decode)), dtype)


def concatenate(chunks: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """``np.concatenate`` that keeps ``dtype`` exactly (numpy's promotion of structured
    dtypes drops their padding, which would change ``PACKET_DTYPE``'s layout)."""
    out = np.zeros(sum(len(c) for c in chunks), dtype=dtype)
    at = 0
    for chunk in chunks:
        out[at:at + len(chunk)] = chunk
        at += len(chunk)
    return out
