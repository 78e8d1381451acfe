"""Reading pcapng: sections, interfaces, and packet blocks walked by the compiled core.

Packet blocks (enhanced, simple, obsolete) and blocks to skip are walked by the backend's
``walk_pcapng``; section headers and interface descriptions change how the blocks after them
are read, so the walk stops at each and they are read here.  The rules are in
docs/data-model.md ("pcapng").
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import _backend
from .reader import CaptureReader, _Window, linktype_name, max_caplen

SHB = 0x0A0D0D0A
IDB = 1
EPB, SPB, OPB = 6, 3, 2
MAGIC = SHB.to_bytes(4, "little")  # the same in either byte order
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_MIN_MAX_BLOCK = 16 << 20
_NAMES = {SHB: "section header block", IDB: "interface description block",
          EPB: "enhanced packet block", SPB: "simple packet block", OPB: "packet block"}
_U64 = (1 << 64) - 1


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


def is_prefix(head: bytes) -> bool:
    """Whether ``head`` (shorter than 12 bytes) can begin a pcapng file."""
    if not MAGIC.startswith(head[:4]):
        return False
    bom = head[8:12]
    return any(order.startswith(bom) for order in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"))


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
        self._head = self._read(12)
        if len(self._head) < 4:
            self.format = ""  # too short to tell
        if len(self._head) < 12:
            if not is_prefix(self._head):
                raise self.error(0, f"not a capture (starts with {self._head.hex()})")
            self.tail_bytes = len(self._head)
            return
        if self._head[:4] != MAGIC:
            raise self.error(0, f"not a pcapng capture (starts with 0x{self._head[:4].hex()})")
        self._byteorder_at(self._head, 0)  # a bad byte-order magic fails now

    @property
    def linktypes(self) -> list[int]:
        return [i.linktype for i in self.interfaces]

    def _byteorder_at(self, head: bytes, offset: int) -> Literal["little", "big"]:
        bom = head[8:12]
        if bom == b"\x4d\x3c\x2b\x1a":
            return "little"
        if bom == b"\x1a\x2b\x3c\x4d":
            return "big"
        raise self.error(offset, f"section header block with an unknown byte-order magic 0x{bom.hex()}")

    def __iter__(self) -> Iterator[np.ndarray]:
        if len(self._head) < 12 or self._file is None:
            self.close()
            return iter(())
        return self._walk()

    def _walk(self) -> Iterator[np.ndarray]:
        impl = _backend.impl
        byteorder: Literal["little", "big"] = "little"
        section: list[Interface] | None = None  # the current section's interfaces
        arrays: tuple = ()
        max_block = _MIN_MAX_BLOCK
        try:
            win = _Window(self, 0, None, self._head)
            while True:
                if section is None:
                    status = impl.WALK_BLOCK
                    n = 0
                else:
                    out = np.zeros(self.chunk_packets, dtype=self.dtype)
                    pos, n, status = impl.walk_pcapng(win.buf, win.pos, win.filled, out, win.base,
                                                      byteorder == "big", *arrays, max_block)
                    win.pos = pos
                    if n:
                        self.packets += n
                        self._count_undecoded(out[:n])
                        yield out[:n]
                if status == impl.WALK_BLOCK:
                    block = self._control_block(win, byteorder, max_block)
                    if block is None:  # not all in the window yet
                        need = 12 if win.left < 12 else self._length(win, byteorder)
                        if not win.refill(max(need, 12)):
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
                    max_block = max([_MIN_MAX_BLOCK] + [max_caplen(i.linktype) + (1 << 20) for i in section])
                    arrays = _arrays(section)
                    win.pos += length
                    continue
                if status != impl.WALK_OK:
                    raise self.error(win.offset, self._problem(win, byteorder, section or [], max_block, status))
                if n == self.chunk_packets:
                    continue
                # The walk stopped at a block that is not complete in the window.
                need = self._length(win, byteorder) if win.left >= 8 else 8
                if not win.refill(max(need, 8)):
                    break
            self.end_offset, self.tail_bytes = win.offset, win.left
        finally:
            self.close()

    @staticmethod
    def _length(win: _Window, byteorder: Literal["little", "big"]) -> int:
        if win.left >= 12 and win.u32(0, "little") == SHB:
            bom = bytes(win.buf[win.pos + 8:win.pos + 12])
            byteorder = "little" if bom == b"\x4d\x3c\x2b\x1a" else "big"
        return win.u32(4, byteorder) if win.left >= 8 else 8

    def _control_block(self, win: _Window, byteorder: Literal["little", "big"], max_block: int):
        """Read the section header or interface description at the walk's position:
        ``(type, byte order or Interface, length)``, or ``None`` if it is not all there."""
        offset = win.offset
        if win.left < 12:
            return None
        btype = SHB if win.u32(0, "little") == SHB else win.u32(0, byteorder)
        if btype == SHB:
            byteorder = self._byteorder_at(bytes(win.buf[win.pos:win.pos + 12]), offset)
        elif btype != IDB:  # the walker stops only at these two
            raise AssertionError(f"unexpected block type {btype}")
        length = win.u32(4, byteorder)
        minimum = 28 if btype == SHB else 20
        limit = _MIN_MAX_BLOCK if btype == SHB else max_block  # a new section has no interfaces yet
        if length < minimum or length % 4 or length > limit:
            raise self.error(offset, _bad_length(btype, length, minimum, limit))
        if win.left < length:
            return None
        body = bytes(win.buf[win.pos:win.pos + length])
        order = "<" if byteorder == "little" else ">"
        trailer = struct.unpack_from(order + "I", body, length - 4)[0]
        if trailer != length:
            raise self.error(offset, f"{_NAMES[btype]} of {length} bytes ends with a different "
                                     f"length ({trailer}); the file is corrupt")
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
            if code == 0 or at + size > stop:  # opt_endofopt, or an option running past the block
                break
            if code == 9 and size >= 1:
                tsresol = body[at]
            elif code == 14 and size == 8:
                tsoffset = struct.unpack_from(order + "q", body, at)[0]
            at += (size + 3) & ~3
        return IDB, Interface(linktype, snaplen, tsresol, tsoffset), length

    def _problem(self, win: _Window, byteorder: Literal["little", "big"], section: list[Interface],
                 max_block: int, status: int) -> str:
        """Why the walker stopped at the block at ``win.pos`` (it says only the kind)."""
        impl = _backend.impl
        btype, length = win.u32(0, byteorder), win.u32(4, byteorder)
        name = _NAMES.get(btype, f"block of type 0x{btype:08x}")
        if status == impl.WALK_BAD_BLOCK:
            minimum = 32 if btype in (EPB, OPB) else 16 if btype == SPB else 20 if btype == IDB else 12
            if length < minimum or length % 4 or length > max_block:
                return _bad_length(btype, length, minimum, max_block)
            return (f"{name} of {length} bytes ends with a different length "
                    f"({win.u32(length - 4, byteorder)}); the file is corrupt")
        if btype == SPB:
            iface = 0
        elif btype == EPB:
            iface = win.u32(8, byteorder)
        else:  # the obsolete packet block has a 16-bit interface id
            iface = int.from_bytes(win.buf[win.pos + 8:win.pos + 10], byteorder)
        if status == impl.WALK_BAD_INTERFACE:
            return (f"{name} on interface {iface}, but the section describes "
                    f"{len(section)} interface(s); the file is corrupt")
        if status == impl.WALK_BAD_TIMESTAMP:
            ns = section[iface].ns(win.u32(12, byteorder) << 32 | win.u32(16, byteorder))
            return (f"{name} on interface {iface} has a timestamp of {ns} ns since the epoch, "
                    "outside what a signed 64-bit count of nanoseconds holds (years 1677 to 2262)")
        linktype = section[iface].linktype
        if btype == SPB:
            caplen = min(win.u32(8, byteorder), length - 16)
            if section[0].snaplen:
                caplen = min(caplen, section[0].snaplen)
            room = length - 16
        else:
            caplen, room = win.u32(20, byteorder), length - 32
        if caplen > room:
            return f"{name} of {length} bytes is too small for {caplen} bytes of packet data; the file is corrupt"
        return (f"{name} claims {caplen} captured bytes, more than the {max_caplen(linktype)} "
                f"libpcap allows for link type {linktype_name(linktype)}; the file is corrupt")


def _bad_length(btype: int, length: int, minimum: int, max_block: int) -> str:
    name = _NAMES.get(btype, f"block of type 0x{btype:08x}")
    if length % 4 == 0 and length >= minimum:
        why = f"more than the {max_block} allowed"
    elif length < minimum:
        why = f"less than the {minimum} it needs"
    else:
        why = "not a multiple of 4"
    return f"{name} claims a total length of {length} bytes, {why}; the file is corrupt"


def _arrays(section: list[Interface]) -> tuple:
    scales = [i.scale() for i in section]
    return (
        np.array([i.linktype for i in section], dtype=np.uint32),
        np.array([i.snaplen for i in section], dtype=np.uint32),
        np.array([max_caplen(i.linktype) for i in section], dtype=np.uint32),
        np.array([m for m, _, _ in scales], dtype=np.int32),
        np.array([f for _, f, _ in scales], dtype=np.uint64),
        np.array([o for _, _, o in scales], dtype=np.int64),
    )
