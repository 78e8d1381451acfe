"""Reading pcapng: sections, interfaces, and packet blocks walked by the backend's
``walk_pcapng``.

Packet blocks (enhanced, simple, obsolete) and blocks to skip are walked by the core; section
headers and interface descriptions change how the blocks after them are read, so the walk
stops at each and they are read here.  The rules are in docs/data-model.md ("pcapng"); a
corrupt block is an error, or what ``on_corrupt`` says.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import _backend
from ._format import (
    ANY_MIN_BLOCK_LENGTH,
    BYTE_ORDER_MAGICS,
    EPB,
    IDB,
    MIN_BLOCK_LENGTH,
    MIN_MAX_BLOCK,
    OPT_ENDOFOPT,
    OPT_IF_TSOFFSET,
    OPT_IF_TSRESOL,
    PCAPNG_MAGIC,
    SHB,
    SPB,
    WALK_BAD_CAPLEN,
    WALK_BAD_INTERFACE,
    WALK_BAD_TIMESTAMP,
    WALK_BAD_TRAILER,
    WALK_BLOCK,
    WALK_CAPLEN_BEYOND_BLOCK,
    WALK_HUGE_BLOCK,
    WALK_OK,
    WALK_SHORT_BLOCK,
    WALK_UNALIGNED_BLOCK,
    block_name,
    linktype_name,
    max_block,
    max_caplen,
)
from .errors import CaptureError
from .reader import CaptureReader, Window
from .resync import PcapngScan

_U64 = (1 << 64) - 1
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class Interface:
    """An interface a section describes: its link type and how its timestamps read."""

    linktype: int
    snaplen: int
    tsresol: int = 6  # if_tsresol: below 128, 10^-v s; otherwise 2^-(v-128) s
    tsoffset: int = 0  # if_tsoffset, seconds

    def scale(self) -> tuple[int, int, int]:
        """(mode, factor, offset s) for the walker: ns = ts*factor (mode 0), ts//factor
        (mode 1; factor 0, too large for 64 bits, means 0), or (ts*10^9) >> factor (mode 2);
        then + offset seconds.  The walker computes it exactly, and refuses a time that does
        not fit in an int64."""
        v = self.tsresol
        if v >= 128:
            return 2, v - 128, self.tsoffset
        if v <= 9:
            return 0, 10 ** (9 - v), self.tsoffset
        factor = 10 ** (v - 9)
        return 1, factor if factor <= _U64 else 0, self.tsoffset

    def ns(self, ts: int) -> int:
        """A timestamp of this interface in nanoseconds since the epoch, exactly, read as an
        unsigned count (the walker also tries a signed reading when this does not fit)."""
        mode, factor, offset = self.scale()
        if mode == 0:
            scaled = ts * factor
        elif mode == 1:
            scaled = ts // factor if factor else 0
        else:
            scaled = (ts * 1_000_000_000) >> factor
        return scaled + offset * 1_000_000_000

    def walk_ns(self, ts: int) -> int | None:
        """A timestamp of this interface in nanoseconds as the walker reads it: unsigned, or
        signed when that does not fit an int64 and the top bit is set; ``None`` if neither
        fits (the walker refuses the block)."""
        ns = self.ns(ts)
        if not _I64_MIN <= ns <= _I64_MAX and ts >> 63:
            ns = self.ns(ts - (1 << 64))
        return ns if _I64_MIN <= ns <= _I64_MAX else None


def is_prefix(head: bytes) -> bool:
    """Whether ``head`` (shorter than 12 bytes) can begin a pcapng file."""
    if not PCAPNG_MAGIC.startswith(head[:4]):
        return False
    bom = head[8:12]
    return any(order.startswith(bom) for order in BYTE_ORDER_MAGICS)


def length_problem(status: int, btype: int, length: int, limit: int) -> str:
    """The words for a block whose total length is impossible."""
    minimum = MIN_BLOCK_LENGTH.get(btype, ANY_MIN_BLOCK_LENGTH)
    why = {WALK_SHORT_BLOCK: f"less than the {minimum} it needs", WALK_UNALIGNED_BLOCK: "not a multiple of 4",
           WALK_HUGE_BLOCK: f"more than the {limit} allowed"}[status]
    return f"{block_name(btype)} claims a total length of {length} bytes, {why}; the file is corrupt"


def check_length(btype: int, length: int, limit: int) -> int:
    """The walker's status for a block's total length: ``WALK_OK`` or what is wrong."""
    if length < MIN_BLOCK_LENGTH.get(btype, ANY_MIN_BLOCK_LENGTH):
        return WALK_SHORT_BLOCK
    if length % 4:
        return WALK_UNALIGNED_BLOCK
    if length > limit:
        return WALK_HUGE_BLOCK
    return WALK_OK


class PcapngReader(CaptureReader):
    """An open pcapng capture; iterate it for chunks of packet rows (``PACKET_DTYPE``).

    ``sections`` counts the section headers read so far, ``interfaces`` lists every
    interface described so far (all sections), ``byteorders`` the sections' byte orders.
    """

    format = "pcapng"

    def _start(self) -> None:
        self.sections = 0
        self.interfaces: list[Interface] = []
        self.byteorders: list[str] = []
        #: What the walk reads the next block with: the section's byte order and its
        #: interfaces (``None`` before the first section header); see :meth:`chunks`.
        self.state: State = ("little", None)
        #: Offset of the first packet block, section header or interface description the
        #: walk met (``None``: none yet): where a walk from a guessed boundary really begins.
        self.first_block: int | None = None
        self._head = self.read(12)
        if len(self._head) < 4:
            self.format = ""  # too short to tell
        if len(self._head) < 12:
            if not is_prefix(self._head):
                raise self.error(0, f"not a capture (starts with {self._head.hex()})")
            self.tail_bytes = len(self._head)
            return
        if self._head[:4] != PCAPNG_MAGIC:
            raise self.error(0, f"not a pcapng capture (starts with 0x{self._head[:4].hex()})")
        self._byteorder_at(self._head, 0)  # a bad byte-order magic fails now

    @property
    def linktypes(self) -> list[int]:
        return [i.linktype for i in self.interfaces]

    @property
    def has_section_header(self) -> bool:
        """Whether the file began with a section header's first 12 bytes (what the walk
        starts from; a capture just created may not hold them yet)."""
        return len(self._head) >= 12

    def _byteorder_at(self, head: bytes, offset: int) -> Literal["little", "big"]:
        bom = head[8:12]
        if bom in BYTE_ORDER_MAGICS:
            return BYTE_ORDER_MAGICS[bom]
        raise self.error(offset, f"section header block with an unknown byte-order magic 0x{bom.hex()}")

    def __iter__(self) -> Iterator[np.ndarray]:
        if len(self._head) < 12 or self._file is None:
            self.close()
            return iter(())
        return self.chunks(0)

    def first_packet(self) -> tuple[int, State] | None:
        """The first packet's time in ns and the state (:attr:`state`) its block was read
        in, read by a reader of its own (this one's reading does not move); ``None`` if the
        capture holds no packet or something before the first one is not right."""
        try:
            with PcapngReader(self.path, chunk_packets=1, decode=self.decode) as probe:
                for chunk in probe:
                    return int(chunk["t_ns"][0]), probe.state
        except CaptureError:
            pass
        return None

    def chunks(self, start: int, stop: int | None = None, end: int | None = None,
               *, close: bool = True) -> Iterator[np.ndarray]:
        """Yield chunks of packets from the block at file offset ``start``, read in
        :attr:`state` (the state the walk left at ``start``, or one a boundary guess assumes).

        The walk ends at the first packet block, section header or interface description
        that starts at or after ``stop`` (``end_offset`` is then its offset), or where the
        file (or its first ``end`` bytes) ends.  Closes the file at the end unless ``close``
        is false.  ``start`` must be a block boundary; a start other than 0 needs a seekable
        file.
        """
        if len(self._head) < 12 or self._file is None:
            raise ValueError("the capture has no section header to walk from")
        if start == 0 and self._position == len(self._head):
            return self._walk(Window(self, 0, end, self._head), stop, close)
        self.seek(start)
        return self._walk(Window(self, start, end), stop, close)

    def _walk(self, win: Window, stop: int | None, close: bool) -> Iterator[np.ndarray]:
        impl = _backend.impl
        byteorder, interfaces = self.state
        section = None if interfaces is None else list(interfaces)  # the current section's interfaces
        arrays = _arrays(section or [])
        limit = MIN_MAX_BLOCK if section is None else max_block([i.linktype for i in section])
        reached_stop = False
        try:
            while True:
                past_stop = False  # the walk reached a block of the next range
                if section is None:
                    status = WALK_BLOCK
                    n = 0
                else:
                    out = np.zeros(self.chunk_packets, dtype=self.dtype)
                    pos, n, status = impl.walk_pcapng(win.buf, win.pos, win.filled, out, win.base,
                                                      byteorder == "big", *arrays, limit, self._tunnels)
                    win.pos = pos
                    if stop is not None and n and int(out["offset"][n - 1]) >= stop:
                        keep = int(np.searchsorted(out["offset"][:n], stop))
                        win.pos = int(out["offset"][keep]) - win.base  # end at the first packet past it
                        n, status, past_stop = keep, WALK_OK, True
                    if n and self.first_block is None:
                        self.first_block = int(out["offset"][0])
                    if n:
                        self._count_chunk(out[:n])
                        self._last_timed(out[:n], win, byteorder)
                        yield out[:n]
                if past_stop or (stop is not None and win.offset >= stop and status != WALK_OK):
                    reached_stop = True  # (at a packet, control or corrupt block of the next range)
                    break
                if status == WALK_BLOCK:
                    if self.first_block is None:
                        self.first_block = win.offset
                    try:
                        block = self._control_block(win, byteorder, limit)
                    except CaptureError as bad:  # a corrupt section header or interface description
                        ends = _at_section_header(win)  # (a corrupt section header ends its section)
                        if not self.corrupt(bad, win, self._scan(byteorder, None if ends else section, limit)):
                            break
                        section = None if ends else section
                        continue
                    if block is None:  # not all in the window yet
                        need = 12 if win.left < 12 else self._length(win, byteorder)
                        if not win.refill(max(need, 12)):
                            ends = _at_section_header(win)
                            if self._corrupt_tail(win, byteorder, None if ends else section, limit):
                                section = None if ends else section
                                continue
                            break
                        continue
                    kind, value, length = block
                    if kind == SHB:
                        byteorder, section = value, []
                        self.sections += 1
                        self.byteorders.append(byteorder)
                    else:
                        assert section is not None
                        section.append(value)
                        self.interfaces.append(value)
                    limit = max_block([i.linktype for i in section])
                    arrays = _arrays(section)
                    self.state = (byteorder, tuple(section))
                    win.pos += length
                    continue
                if status != WALK_OK:
                    error = self.error(win.offset, self._problem(win, byteorder, section or [], limit, status))
                    if not self.corrupt(error, win, self._scan(byteorder, section, limit)):
                        break
                    continue
                if n == self.chunk_packets:
                    continue
                # The walk stopped at a block that is not complete in the window.
                need = self._length(win, byteorder) if win.left >= 8 else 8
                if not win.refill(max(need, 8)):
                    ends = _at_section_header(win)
                    if self._corrupt_tail(win, byteorder, None if ends else section, limit):
                        section = None if ends else section
                        continue
                    break
            # (stopped at a corrupt block: what follows it is not a tail)
            self.end_offset, self.tail_bytes = win.offset, 0 if self.stopped or reached_stop else win.left
        finally:
            self.state = (byteorder, None if section is None else tuple(section))
            if close:
                self.close()

    def walked_elsewhere(self, packets: int, end_offset: int, tail_bytes: int, last_t_ns: int | None, *,
                         undecoded: dict[int, int], state: State, sections: int, byteorders: list[str],
                         interfaces: list[Interface]) -> int:
        """Account for ``packets`` packets walked by another process, up to ``end_offset``
        (and a partial block of ``tail_bytes`` after it): ``undecoded`` of them per link type
        counted by size only, ``last_t_ns`` the last timed one's time; the section headers
        (their byte orders) and interface descriptions it read, and the ``state`` it ended
        in.  Returns the bytes read there that progress has not been told of (see
        :meth:`passed`)."""
        self.packets += packets
        for linktype, count in undecoded.items():
            self.undecoded[linktype] = self.undecoded.get(linktype, 0) + count
        self.sections += sections
        self.byteorders += byteorders
        self.interfaces += interfaces
        self.state = state
        self.end_offset, self.tail_bytes = end_offset, tail_bytes
        if last_t_ns is not None:
            self.last_t_ns = last_t_ns
        return self.passed(end_offset + tail_bytes)

    def _scan(self, byteorder: Literal["little", "big"], section: list[Interface] | None,
              limit: int) -> PcapngScan:
        """The resync rule in ``section`` (``None``: none, only a section header will do)."""
        return PcapngScan(byteorder, section, limit, self.last_t_ns)

    def _corrupt_tail(self, win: Window, byteorder: Literal["little", "big"], section: list[Interface] | None,
                      limit: int) -> bool:
        """The capture ends inside the block at the walk's position: see :meth:`corrupt_tail`."""
        def error() -> CaptureError:
            btype = SHB if win.u32(0, "little") == SHB else win.u32(0, byteorder)
            return self.error(win.offset, (
                f"{block_name(btype)} claims a total length of {self._length(win, byteorder)} bytes, but the "
                f"capture ends {win.left} bytes after its start, and a plausible block starts before that; "
                "the file is corrupt"))

        return self.corrupt_tail(error, win, self._scan(byteorder, section, limit))

    def _last_timed(self, packets: np.ndarray, win: Window, byteorder: Literal["little", "big"]) -> None:
        """Remember the time of the last of ``packets`` (just walked, their blocks still in the
        window) that is not from a simple packet block, which has no time."""
        at = packets["offset"] - win.base
        raw = np.frombuffer(win.buf, dtype=np.uint8)
        try:
            lsb = raw[at + (3 if byteorder == "big" else 0)]
            rest = [raw[at + k] for k in ((0, 1, 2) if byteorder == "big" else (1, 2, 3))]
            timed = np.flatnonzero((lsb != SPB) | (rest[0] != 0) | (rest[1] != 0) | (rest[2] != 0))
        finally:
            del raw  # (the window's buffer must not stay exported)
        if len(timed):
            self.last_t_ns = int(packets["t_ns"][timed[-1]])

    @staticmethod
    def _length(win: Window, byteorder: Literal["little", "big"]) -> int:
        if win.left >= 12 and win.u32(0, "little") == SHB:
            byteorder = BYTE_ORDER_MAGICS.get(bytes(win.buf[win.pos + 8:win.pos + 12]), "big")
        return win.u32(4, byteorder) if win.left >= 8 else 8

    def _control_block(self, win: Window, byteorder: Literal["little", "big"], limit: int):
        """Read the section header or interface description at the walk's position:
        ``(type, byte order or Interface, length)``, or ``None`` if it is not all there."""
        offset = win.offset
        if win.left < 12:
            return None
        btype = SHB if win.u32(0, "little") == SHB else win.u32(0, byteorder)
        if btype == SHB:
            byteorder = self._byteorder_at(bytes(win.buf[win.pos:win.pos + 12]), offset)
            limit = MIN_MAX_BLOCK  # a new section has no interfaces yet
        elif btype != IDB:  # the walker stops only at these two
            raise AssertionError(f"unexpected block type {btype}")
        length = win.u32(4, byteorder)
        status = check_length(btype, length, limit)
        if status != WALK_OK:
            raise self.error(offset, length_problem(status, btype, length, limit))
        if win.left < length:
            return None
        body = bytes(win.buf[win.pos:win.pos + length])
        order = "<" if byteorder == "little" else ">"
        trailer = struct.unpack_from(order + "I", body, length - 4)[0]
        if trailer != length:
            raise self.error(offset, _trailer_problem(btype, length, trailer))
        if btype == SHB:
            major, minor = struct.unpack_from(order + "HH", body, 12)
            if major != 1:
                raise self.error(offset, f"pcapng version {major}.{minor} is not supported (only 1.x)")
            return SHB, byteorder, length
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 8)
        tsresol, tsoffset = 6, 0
        at, stop = 16, length - 4
        while at + 4 <= stop:  # options: code, length, value padded to 4 bytes
            code, size = struct.unpack_from(order + "HH", body, at)
            at += 4
            if code == OPT_ENDOFOPT or at + size > stop:  # the end, or an option running past the block
                break
            if code == OPT_IF_TSRESOL and size >= 1:
                tsresol = body[at]
            elif code == OPT_IF_TSOFFSET and size == 8:
                tsoffset = struct.unpack_from(order + "q", body, at)[0]
            at += (size + 3) & ~3
        return IDB, Interface(linktype, snaplen, tsresol, tsoffset), length

    def _problem(self, win: Window, byteorder: Literal["little", "big"], section: list[Interface],
                 limit: int, status: int) -> str:
        """Words for the status the walker stopped with at the block at ``win.pos`` (the
        walker says what is wrong; the block's fields say the numbers)."""
        btype, length = win.u32(0, byteorder), win.u32(4, byteorder)
        name = block_name(btype)
        if status in (WALK_SHORT_BLOCK, WALK_UNALIGNED_BLOCK, WALK_HUGE_BLOCK):
            return length_problem(status, btype, length, limit)
        if status == WALK_BAD_TRAILER:
            return _trailer_problem(btype, length, win.u32(length - 4, byteorder))
        iface = 0 if btype == SPB else win.u32(8, byteorder) if btype == EPB else win.u16(8, byteorder)
        if status == WALK_BAD_INTERFACE:
            return (f"{name} on interface {iface}, but the section describes "
                    f"{len(section)} interface(s); the file is corrupt")
        if status == WALK_BAD_TIMESTAMP:
            ns = section[iface].ns(win.u32(12, byteorder) << 32 | win.u32(16, byteorder))
            return (f"{name} on interface {iface} has a timestamp of {ns} ns since the epoch, "
                    "outside what a signed 64-bit count of nanoseconds holds (years 1677 to 2262)")
        if status == WALK_CAPLEN_BEYOND_BLOCK:
            return (f"{name} of {length} bytes is too small for {win.u32(20, byteorder)} bytes of "
                    "packet data; the file is corrupt")
        assert status == WALK_BAD_CAPLEN, status
        linktype = section[iface].linktype
        if btype == SPB:  # what the block holds of the original length
            caplen = min(win.u32(8, byteorder), length - 16, section[0].snaplen or length)
        else:
            caplen = win.u32(20, byteorder)
        return (f"{name} claims {caplen} captured bytes, more than the {max_caplen(linktype)} "
                f"libpcap allows for link type {linktype_name(linktype)}; the file is corrupt")


def _at_section_header(win: Window) -> bool:
    """Whether the block at the walk's position is a section header (by its type alone)."""
    return win.left >= 4 and win.u32(0, "little") == SHB


def _trailer_problem(btype: int, length: int, trailer: int) -> str:
    return f"{block_name(btype)} of {length} bytes ends with a different length ({trailer}); the file is corrupt"


#: A section's byte order and its interfaces (``None``: no section has begun).
State = tuple[Literal["little", "big"], "tuple[Interface, ...] | None"]

_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _arrays(section: list[Interface]) -> _Arrays:
    """The walker's description of a section's interfaces: link type, snap length, largest
    captured length, and the timestamp scale (mode, factor, offset in seconds)."""
    scales = [i.scale() for i in section]
    return (
        np.array([i.linktype for i in section], dtype=np.uint32),
        np.array([i.snaplen for i in section], dtype=np.uint32),
        np.array([max_caplen(i.linktype) for i in section], dtype=np.uint32),
        np.array([m for m, _, _ in scales], dtype=np.int32),
        np.array([f for _, f, _ in scales], dtype=np.uint64),
        np.array([o for _, _, o in scales], dtype=np.int64),
    )

