"""Where to read on after a corrupt record (``on_corrupt="resync"``): the next plausible one.

The record walk stops at a record it cannot read, both backends at the same one; the reader
then calls :func:`resync`, which moves the walk's position to the next offset where a
*plausible* record starts, and the walk goes on from there.  The scan is one implementation
in Python and numpy, shared by both backends, so they resync to the same offsets.

The rule (docs/data-model.md, "Corrupt records"), checked at every byte offset after the
corrupt record's first byte, the first offset that passes winning:

* classic pcap: a record header whose fraction is below one second, whose captured length
  is from 1 to the link type's maximum and at most its original length, whose time is
  within a day of the last packet walked before (if any), and whose record is complete;
  then the end of the capture (fewer than 16 bytes after it), or a record header that is
  plausible by the same field checks, with a time within a day of the first one's;
* pcapng: a section header (a known byte-order magic, major version 1), or, inside a
  section, a block of a known type; a total length possible for its type whose trailing
  copy agrees; for a packet block, an interface the section describes, a captured length
  the block holds and the link type allows, and (enhanced and obsolete packet blocks) a
  time int64 nanoseconds hold, within a day of the last timed packet walked before (if
  any); then the end of the capture (fewer than 12 bytes after it), or a block of a known
  type whose leading and trailing lengths agree (or that the end of the capture cuts short).

Memory stays bounded: a step looks at :data:`STEP` offsets, a prefilter tests all of them at
once on their first fields, the few candidates left are checked one by one, and the bytes
before a rejected candidate are let go.  The window grows only to hold one candidate and the
record after it.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from ._format import (
    ANY_MIN_BLOCK_LENGTH,
    BYTE_ORDER_MAGICS,
    EPB,
    IDB,
    KNOWN_BLOCK_TYPES,
    MIN_BLOCK_LENGTH,
    MIN_MAX_BLOCK,
    OPB,
    PCAPNG_MAGIC,
    RECORD_HEADER_SIZE,
    SHB,
    SPB,
    max_block,
    max_caplen,
)

if TYPE_CHECKING:
    from .pcapng import Interface
    from .reader import Window

#: How far a plausible record's time may be from its neighbour's (a day, in ns).
MAX_TIME_JUMP_NS = 86_400 * 1_000_000_000
#: Offsets the scan looks at per step.
STEP = 1 << 16
#: Skipped regions reported one by one (a warning each, and ``fastpcap info``'s list); the
#: rest are counted only, so that a capture of many small regions cannot fill the memory.
MAX_REPORTED = 100

#: A candidate check's verdicts; a positive number instead says how many bytes from the
#: candidate on it needs to decide.
YES = 0
NO = -1

_Order = Literal["little", "big"]


class Scan(Protocol):
    """What :func:`resync` needs to know of a container."""

    #: Bytes a candidate needs before :meth:`candidates` can look at it.
    head: int

    def candidates(self, raw: np.ndarray, span: int) -> np.ndarray:
        """The offsets in ``raw[:span]`` worth a closer look (``raw`` holds ``head - 1``
        bytes more), in order."""

    def check(self, buf: bytearray, at: int, filled: int, eof: bool) -> int:
        """``YES``, ``NO``, or the bytes from ``at`` it needs to decide (only while not ``eof``),
        for the record at ``buf[at]``; ``buf[:filled]`` holds what was read."""


def resync(win: Window, scan: Scan) -> bool:
    """Move ``win.pos`` from the corrupt record there to the next plausible record: True, or
    False if none starts before the end of the capture (``win.pos`` is then at the end)."""
    win.pos += 1
    while True:
        if win.left < scan.head:
            if not win.refill(scan.head):
                win.pos = win.filled
                return False
            continue
        span = min(STEP, win.left - scan.head + 1)
        raw = np.frombuffer(bytes(win.buf[win.pos:win.pos + span + scan.head - 1]), dtype=np.uint8)
        for offset in scan.candidates(raw, span).tolist():
            at = win.pos + offset
            verdict = scan.check(win.buf, at, win.filled, win.eof)
            if verdict == YES:
                win.pos = at
                return True
            if verdict > 0:  # not all there yet: keep the bytes from it on, read, look again
                win.pos = at
                win.refill(verdict)
                break
        else:
            win.pos += span


def _fields(raw: np.ndarray, span: int, dtype: np.dtype, at: int) -> np.ndarray:
    """The u32 at ``at`` of each of the ``span`` offsets of ``raw`` (a view: no copy)."""
    return np.ndarray(span, dtype=dtype, buffer=raw, offset=at, strides=1)


def _near(t: int, near: int | None) -> bool:
    return near is None or abs(t - near) <= MAX_TIME_JUMP_NS


class PcapScan:
    """The rule for classic pcap records."""

    head = RECORD_HEADER_SIZE

    def __init__(self, byteorder: _Order, nsec: bool, linktype: int, after_t_ns: int | None) -> None:
        """``after_t_ns``: the time of the last packet walked before the corrupt record."""
        order = "<" if byteorder == "little" else ">"
        self._header = struct.Struct(order + "IIII")
        self._u32 = np.dtype(order + "u4")
        self._frac_limit = 1_000_000_000 if nsec else 1_000_000
        self._frac_ns = 1 if nsec else 1000
        self._limit = max_caplen(linktype)
        self._after = after_t_ns

    def candidates(self, raw: np.ndarray, span: int) -> np.ndarray:
        sec, frac, incl, orig = (_fields(raw, span, self._u32, at) for at in (0, 4, 8, 12))
        ok = (frac < self._frac_limit) & (incl >= 1) & (incl <= self._limit) & (incl <= orig)
        if self._after is not None:
            t = sec.astype(np.int64) * 1_000_000_000 + frac.astype(np.int64) * self._frac_ns
            ok &= np.abs(t - self._after) <= MAX_TIME_JUMP_NS
        return np.flatnonzero(ok)

    def check(self, buf: bytearray, at: int, filled: int, eof: bool) -> int:
        first = self._plausible(buf, at, self._after)
        if first is None:
            return NO
        t, incl = first
        size = RECORD_HEADER_SIZE + incl
        if filled - at < size:  # the record must be complete
            return NO if eof else size + RECORD_HEADER_SIZE
        if filled - at < size + RECORD_HEADER_SIZE:  # the capture ends within the next header
            return YES if eof else size + RECORD_HEADER_SIZE
        return YES if self._plausible(buf, at + size, t) is not None else NO

    def _plausible(self, buf: bytearray, at: int, near: int | None) -> tuple[int, int] | None:
        """(time, captured length) of the record header at ``at`` if it is plausible."""
        sec, frac, incl, orig = self._header.unpack_from(buf, at)
        if not (frac < self._frac_limit and 1 <= incl <= self._limit and incl <= orig):
            return None
        t = sec * 1_000_000_000 + frac * self._frac_ns
        return (t, incl) if _near(t, near) else None


class PcapngScan:
    """The rule for pcapng blocks, in the section the corrupt block was in."""

    head = 12  # block type, total length, and a section header's byte-order magic

    def __init__(self, byteorder: _Order, section: list[Interface] | None, limit: int,
                 after_t_ns: int | None) -> None:
        """``section``: its interfaces (``None``: no section has begun); ``limit``: its
        largest block; ``after_t_ns``: the time of the last timed packet walked before."""
        self._order = byteorder
        self._u32 = np.dtype(("<" if byteorder == "little" else ">") + "u4")
        self._section = section
        self._limit = limit
        self._after = after_t_ns
        self._known = np.array(sorted(KNOWN_BLOCK_TYPES), dtype=np.uint32)

    def candidates(self, raw: np.ndarray, span: int) -> np.ndarray:
        btype, length = (_fields(raw, span, self._u32, at) for at in (0, 4))
        ok = btype == SHB  # (the same bytes in either byte order)
        if self._section is not None:
            ok |= (np.isin(btype, self._known) & (length % 4 == 0) & (length >= ANY_MIN_BLOCK_LENGTH)
                   & (length <= self._limit))
        return np.flatnonzero(ok)

    def check(self, buf: bytearray, at: int, filled: int, eof: bool) -> int:
        framed = _framing(buf, at, self._order, self._section is not None, self._limit)
        if framed is None:
            return NO
        btype, order, length = framed
        if filled - at < length:
            return NO if eof else length + self.head
        if _u32(buf, at + length - 4, order) != length or not self._content(buf, at, btype, order, length):
            return NO
        # The block after it, read as the walk would read it after this one.
        limit = self._limit
        if btype == SHB:
            limit = MIN_MAX_BLOCK
        elif btype == IDB:
            assert self._section is not None
            limit = max_block([i.linktype for i in self._section] + [_u16(buf, at + 8, order)])
        if filled - at < length + self.head:
            return YES if eof else length + self.head
        after = _framing(buf, at + length, order, True, limit)
        if after is None:
            return NO
        _, after_order, after_length = after
        if filled - at < length + after_length:  # the capture may end inside it
            return YES if eof else length + after_length
        return YES if _u32(buf, at + length + after_length - 4, after_order) == after_length else NO

    def _content(self, buf: bytearray, at: int, btype: int, order: _Order, length: int) -> bool:
        """Whether the fields of a framed block are what the walk accepts (and its time near)."""
        if btype == SHB:
            return _u16(buf, at + 12, order) == 1
        section = self._section
        assert section is not None
        if btype in (EPB, OPB):
            iface = _u32(buf, at + 8, order) if btype == EPB else _u16(buf, at + 8, order)
            if iface >= len(section):
                return False
            caplen = _u32(buf, at + 20, order)
            if caplen > length - 32 or caplen > max_caplen(section[iface].linktype):
                return False
            t = section[iface].walk_ns(_u32(buf, at + 12, order) << 32 | _u32(buf, at + 16, order))
            return t is not None and _near(t, self._after)
        if btype == SPB:
            if not section:
                return False
            caplen = min(_u32(buf, at + 8, order), length - 16)
            if section[0].snaplen:
                caplen = min(caplen, section[0].snaplen)
            return caplen <= max_caplen(section[0].linktype)
        return True


def _framing(buf: bytearray, at: int, order: _Order, in_section: bool,
             limit: int) -> tuple[int, _Order, int] | None:
    """(type, byte order, total length) of the block at ``at`` if its type is known and its
    total length possible for it (a section header sets its own byte order and limit)."""
    if buf[at:at + 4] == PCAPNG_MAGIC:
        bom = BYTE_ORDER_MAGICS.get(bytes(buf[at + 8:at + 12]))
        if bom is None:
            return None
        btype, order, limit = SHB, bom, MIN_MAX_BLOCK
    elif in_section:
        btype = _u32(buf, at, order)
        if btype not in KNOWN_BLOCK_TYPES:
            return None
    else:
        return None
    length = _u32(buf, at + 4, order)
    if length % 4 or not MIN_BLOCK_LENGTH.get(btype, ANY_MIN_BLOCK_LENGTH) <= length <= limit:
        return None
    return btype, order, length


def _u32(buf: bytearray, at: int, order: _Order) -> int:
    return int.from_bytes(buf[at:at + 4], order)


def _u16(buf: bytearray, at: int, order: _Order) -> int:
    return int.from_bytes(buf[at:at + 2], order)
