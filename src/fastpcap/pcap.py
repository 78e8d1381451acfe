"""Reading classic pcap: the global header, then records walked by the backend's ``walk``.

The rules (docs/data-model.md, "Classic pcap"): a 24-byte global header in either byte
order with microsecond or nanosecond timestamps, then 16-byte record headers each followed
by its captured bytes.  A record longer than libpcap allows for the link type is corrupt
(an error, or what ``on_corrupt`` says); a record cut short by the end of the file is a
partial tail (a capture still being written).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import _backend
from ._format import (
    GLOBAL_HEADER_SIZE,
    PCAP_MAGICS,
    RECORD_HEADER_SIZE,
    WALK_BAD_CAPLEN,
    WALK_OK,
    classic_t_ns,
    linktype_name,
    max_caplen,
)
from .errors import CaptureError
from .reader import CaptureReader, Window
from .resync import PcapScan


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


def parse_header(data: bytes, path: str | None = None) -> PcapHeader | None:
    """Parse the first bytes of a capture.

    Returns ``None`` when the bytes are the beginning of a valid header (a capture that has
    just started: it holds no packets yet); raises :class:`CaptureError` when they cannot be.
    """
    magic = data[:4]
    if len(magic) < 4:
        if any(m.startswith(magic) for m in PCAP_MAGICS):
            return None
        raise CaptureError(path, 0, f"not a capture (starts with {magic.hex() or 'nothing'})")
    if magic not in PCAP_MAGICS:
        raise CaptureError(path, 0, f"not a capture (unknown magic 0x{magic.hex()})")
    if len(data) < GLOBAL_HEADER_SIZE:
        return None
    byteorder, nsec = PCAP_MAGICS[magic]
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(
        ("<" if byteorder == "little" else ">") + "HHiIII", data[4:GLOBAL_HEADER_SIZE]
    )
    return PcapHeader(byteorder, nsec, (major, minor), snaplen, network & 0x03FFFFFF, network)


class PcapReader(CaptureReader):
    """An open classic-pcap capture; iterate it for chunks of packet rows (``PACKET_DTYPE``).

    ``source`` is a path or an open binary stream of a classic pcap (use
    :func:`~fastpcap.open_capture` for any capture).
    """

    format = "pcap"

    def _start(self) -> None:
        self.end_offset = GLOBAL_HEADER_SIZE
        head = self.read(GLOBAL_HEADER_SIZE)
        self.header = parse_header(head, self.path)
        if len(head) < 4:
            self.format = ""  # too short to tell
        if self.header is None:
            self.end_offset = 0
            self.tail_bytes = len(head)

    @property
    def linktypes(self) -> list[int]:
        return [] if self.header is None else [self.header.linktype]

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.header is None:
            self.close()
            return iter(())
        return self.chunks(GLOBAL_HEADER_SIZE)

    def first_timestamp(self) -> int | None:
        """The first record's time in ns, if the file holds a complete first record header
        (a seekable file: the reading continues from where it was)."""
        if self.header is None:
            return None
        head = self.read_at(GLOBAL_HEADER_SIZE, RECORD_HEADER_SIZE)
        if len(head) < RECORD_HEADER_SIZE:
            return None
        sec, frac = struct.unpack(("<" if self.header.byteorder == "little" else ">") + "II", head[:8])
        return classic_t_ns(sec, frac, self.header.nsec)

    def chunks(self, start: int, stop: int | None = None, end: int | None = None,
               *, close: bool = True) -> Iterator[np.ndarray]:
        """Yield chunks of packets from the record at file offset ``start``.

        The walk stops before the first record that starts at or after ``stop`` (then
        ``end_offset`` is that record's offset), or where the file (or its first ``end``
        bytes) ends: ``end_offset`` is then where the partial tail starts, and
        ``tail_bytes`` its length.  ``packets`` counts on from its current value, so record
        numbers in errors are the file's.  Closes the file at the end unless ``close`` is
        false.  ``start`` must be a record boundary; a start other than where the reading is
        needs a seekable file.
        """
        header = self.header
        if header is None or self._file is None:
            raise ValueError("the capture has no header to walk from")
        self.seek(start)
        impl = _backend.impl
        limit = max_caplen(header.linktype)
        try:
            win = Window(self, start, end)
            while True:
                out = np.zeros(self.chunk_packets, dtype=self.dtype)
                pos, n, status = impl.walk(win.buf, win.pos, win.filled, out, win.base, header.swapped,
                                           header.nsec, header.linktype, limit, self._tunnels)
                win.pos = pos
                if stop is not None and win.offset >= stop and n:
                    keep = int(np.searchsorted(out["offset"][:n], stop))
                    if keep < n:  # stop inside this chunk: end at the first record past it
                        win.pos = int(out["offset"][keep]) - win.base
                        n = keep
                        status = WALK_OK
                if n:
                    self.count_walked(header.linktype, n)
                    self.last_t_ns = int(out["t_ns"][n - 1])
                    yield out[:n]
                if status == WALK_BAD_CAPLEN:
                    error = self.error(win.offset, (
                        f"record {self.packets + 1} claims {win.u32(8, header.byteorder)} captured bytes, "
                        f"more than the {limit} libpcap allows for link type "
                        f"{linktype_name(header.linktype)}; the file is corrupt"))
                    if not self.corrupt(error, win, self._scan()):
                        self.end_offset, self.tail_bytes = win.offset, 0
                        return
                if stop is not None and win.offset >= stop:
                    self.end_offset, self.tail_bytes = win.offset, 0
                    return
                if status == WALK_BAD_CAPLEN:
                    continue  # walk on from the record the resync found
                if n == self.chunk_packets:
                    continue
                # The walk stopped at a record that is not complete in the window.
                need = RECORD_HEADER_SIZE
                if win.left >= RECORD_HEADER_SIZE:
                    need += win.u32(8, header.byteorder)
                if not win.refill(need):
                    if self.corrupt_tail(lambda: self._tail_error(win), win, self._scan()):
                        continue
                    self.end_offset, self.tail_bytes = win.offset, 0 if self.stopped else win.left
                    return
        finally:
            if close:
                self.close()

    def _scan(self) -> PcapScan:
        """The resync rule for this capture's records, after the last packet walked."""
        assert self.header is not None
        return PcapScan(self.header.byteorder, self.header.nsec, self.header.linktype, self.last_t_ns)

    def _tail_error(self, win: Window) -> CaptureError:
        assert self.header is not None
        return self.error(win.offset, (
            f"record {self.packets + 1} claims {win.u32(8, self.header.byteorder)} captured bytes, but the "
            f"capture ends {win.left - RECORD_HEADER_SIZE} bytes after its header, and a plausible record "
            "starts before that; the file is corrupt"))

    def walked_elsewhere(self, packets: int, end_offset: int, tail_bytes: int,
                         last_t_ns: int | None = None) -> int:
        """Account for ``packets`` records walked by another process, up to ``end_offset``
        (and a partial record of ``tail_bytes`` after it); ``last_t_ns`` is the last one's
        time.  Returns the bytes read there that progress has not been told of (see
        :meth:`passed`)."""
        assert self.header is not None
        self.count_walked(self.header.linktype, packets)
        self.end_offset, self.tail_bytes = end_offset, tail_bytes
        if packets and last_t_ns is not None:
            self.last_t_ns = last_t_ns
        return self.passed(end_offset + tail_bytes)
