"""Reading classic pcap files: the global header, then records a block at a time.

The pieces, so that other containers and sources slot in beside them:

* a *byte source*: a binary file object read with ``readinto`` into one reusable block;
* the *record walker* (``walk`` of the active backend): decodes the complete records of a
  block into packet rows and says where it stopped, so a record cut by the block's end is
  carried to the next block;
* the *decoder per link type*, chosen inside the walker from the header's link type.

Memory stays bounded: one block (grown only for a single record larger than it, at most the
link type's maximum record size) and one chunk of packet rows at a time.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np

from . import _backend
from .errors import CaptureError

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

#: Link types the walker decodes; frames of any other link type count by size only.
DECODED_LINKTYPES = frozenset({1})

LINKTYPE_NAMES = {
    0: "NULL", 1: "EN10MB", 101: "RAW", 105: "IEEE802_11", 108: "LOOP", 113: "LINUX_SLL",
    127: "IEEE802_11_RADIOTAP", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2",
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
        raise CaptureError(path, 0, f"not a pcap capture (starts with {magic.hex() or 'nothing'})")
    if magic not in _MAGICS:
        raise CaptureError(path, 0, f"not a pcap capture (unknown magic 0x{magic.hex()})")
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


class PcapReader:
    """An open classic-pcap capture; iterate it for chunks of packet rows (``PACKET_DTYPE``).

    The header is read when the reader is created, so a file that is not a capture fails
    before anything else happens.  Iterating streams the records; a trailing partial record
    (a capture still being written) ends the walk without error.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        chunk_packets: int = DEFAULT_CHUNK_PACKETS,
        block_size: int = DEFAULT_BLOCK_SIZE,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        if chunk_packets < 1:
            raise ValueError("chunk_packets must be at least 1")
        if block_size < RECORD_HEADER_SIZE:
            raise ValueError(f"block_size must be at least {RECORD_HEADER_SIZE}")
        self.chunk_packets = chunk_packets
        self.block_size = block_size
        self._progress = progress
        #: Complete records walked so far.
        self.packets = 0
        #: File offset where the walk stopped: the end of the last complete record.
        self.end_offset = GLOBAL_HEADER_SIZE
        #: Bytes after ``end_offset`` that do not make a complete record (a partial tail), or
        #: a complete global header when the file is shorter than one.
        self.tail_bytes = 0
        self._position = 0  # file offset the next read starts from
        #: With ``jobs`` > 1: how many byte ranges the capture was cut into, how many were
        #: spliced from worker processes, how many were walked again here, and how many of
        #: those because a worker crashed (``None``: one process).
        self.split_stats: dict[str, int] | None = None
        if is_stream(source):
            # An open binary stream (stdin, a pipe, a decompressor): read, never closed here.
            self.path = str(getattr(source, "name", "<stream>"))
            self._file: BinaryIO | None = source  # type: ignore[assignment]
            self._owned = False
        else:
            self.path = os.fspath(source)  # type: ignore[arg-type]
            self._file = _open(self.path)
            self._owned = True
        try:
            head = self._read(GLOBAL_HEADER_SIZE)
            self.header = parse_header(head, self.path)
        except BaseException:
            self.close()
            raise
        if self.header is None:
            self.end_offset = 0
            self.tail_bytes = len(head)

    def _read(self, size: int) -> bytes:
        assert self._file is not None
        parts = []
        while size > 0:
            try:
                part = self._file.read(size)
            except OSError as exc:
                raise CaptureError(self.path, 0, f"cannot read: {exc.strerror or exc}") from None
            if not part:
                break
            parts.append(part)
            size -= len(part)
        data = b"".join(parts)
        self._position += len(data)
        if self._progress is not None and data:
            self._progress(len(data))
        return data

    def _fill(self, view: memoryview, offset: int) -> int:
        """Read into ``view`` until it is full or the file ends; returns the bytes read."""
        assert self._file is not None
        got = 0
        while got < len(view):
            try:
                n = self._file.readinto(view[got:])  # type: ignore[attr-defined]
            except OSError as exc:
                raise CaptureError(self.path, offset + got, f"cannot read: {exc.strerror or exc}") from None
            if not n:
                break
            got += n
        self._position += got
        if self._progress is not None and got:
            self._progress(got)
        return got

    def close(self) -> None:
        """Close the file, if the reader opened it (iteration stops)."""
        if self._file is not None and self._owned:
            self._file.close()
        self._file = None

    def __enter__(self) -> PcapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        buf = bytearray(self.block_size)
        base = start  # file offset of buf[0]
        filled = self._fill(memoryview(buf)[: self._room(len(buf), base, end)], base)
        eof = filled < len(buf)
        pos = 0
        try:
            while True:
                out = np.zeros(self.chunk_packets, dtype=impl.PACKET_DTYPE)
                pos, n, status = impl.walk(buf, pos, filled, out, base, header.swapped,
                                           header.nsec, header.linktype, limit)
                if stop is not None and base + pos >= stop and n:
                    keep = int(np.searchsorted(out["offset"][:n], stop))
                    if keep < n:  # stop inside this chunk: end at the first record past it
                        pos = int(out["offset"][keep]) - base
                        n = keep
                        status = impl.WALK_OK
                if n:
                    self.packets += n
                    yield out[:n]
                if status == impl.WALK_BAD_CAPLEN:
                    incl = int.from_bytes(buf[pos + 8:pos + 12], header.byteorder)
                    raise CaptureError(
                        self.path, base + pos,
                        f"record {self.packets + 1} claims {incl} captured bytes, more than the "
                        f"{limit} libpcap allows for link type {linktype_name(header.linktype)}; "
                        "the file is corrupt",
                    )
                if stop is not None and base + pos >= stop:
                    self.end_offset = base + pos
                    self.tail_bytes = 0
                    return
                if n == self.chunk_packets:
                    continue
                # The walk stopped at a record that is not complete in this block.
                left = filled - pos
                if eof:
                    self.end_offset = base + pos
                    self.tail_bytes = left
                    return
                need = RECORD_HEADER_SIZE
                if left >= RECORD_HEADER_SIZE:
                    need += int.from_bytes(buf[pos + 8:pos + 12], header.byteorder)
                if need > len(buf):
                    grown = bytearray(need)
                    grown[:left] = buf[pos:filled]
                    buf = grown
                else:
                    buf[:left] = buf[pos:filled]
                base += pos
                pos = 0
                room = self._room(len(buf) - left, base + left, end)
                got = self._fill(memoryview(buf)[left:left + room], base + left)
                filled = left + got
                eof = got < room or room < len(buf) - left
        finally:
            if close:
                self.close()

    @staticmethod
    def _room(size: int, offset: int, end: int | None) -> int:
        """How much of a buffer of ``size`` bytes at file ``offset`` may be filled."""
        return size if end is None else max(0, min(size, end - offset))


def iter_packets(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_packets: int = DEFAULT_CHUNK_PACKETS,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[np.ndarray]:
    """Yield the packets of a classic pcap file as chunks of rows of ``PACKET_DTYPE``.

    ``path`` may also be an open binary file object (stdin, a pipe), read to its end.

    Each chunk holds at most ``chunk_packets`` rows and is a new array the caller may keep.
    Raises :class:`~fastpcap.CaptureError` for a file that is not a capture, a corrupt
    record, or an unreadable path.  See ``docs/data-model.md`` for the fields.
    """
    with PcapReader(path, chunk_packets=chunk_packets, block_size=block_size) as reader:
        yield from reader


def read_packets(path: str | os.PathLike[str] | BinaryIO) -> np.ndarray:
    """All packets of a classic pcap file in one array of ``PACKET_DTYPE``.

    Holds the whole capture in memory (48 bytes per packet); use :func:`iter_packets` to
    stream a large one.
    """
    return concatenate(list(iter_packets(path)), _backend.impl.PACKET_DTYPE)


def concatenate(chunks: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """``np.concatenate`` that keeps ``dtype`` exactly (numpy's promotion of structured
    dtypes drops their padding, which would change ``PACKET_DTYPE``'s layout)."""
    out = np.zeros(sum(len(c) for c in chunks), dtype=dtype)
    at = 0
    for chunk in chunks:
        out[at:at + len(chunk)] = chunk
        at += len(chunk)
    return out
