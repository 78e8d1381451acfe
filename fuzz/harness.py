"""The fuzz target's body: one input -> a capture and options -> both backends -> the same result.

Shared by ``fuzz/fuzz_fastpcap.py`` (atheris) and ``tests/test_fuzz_corpus.py`` (the replay),
so it imports nothing but fastpcap and the standard library (no atheris: the replay runs in
the test environment, and with the debug build in ``.ci/run``).

An input is a 4-byte header that chooses how to read the rest, then the capture bytes::

    byte 0  flags   bit 0: patch the link type (classic pcap: the header's network field;
                           pcapng: every interface description block) with LINKTYPES[byte 1]
                    bit 1: the extended decode (else the reference one)
                    bit 2: count bytes on the wire (size="wire"; else captured bytes)
                    bit 3: compress the capture with COMPRESSIONS[byte 3]
                    bit 4: also summarise it with fastpcap's ``info`` (capture_info)
                    bits 5-7: chunk_packets / block_size of the reader (CHUNKINGS)
    byte 1  the link type to patch in (an index into LINKTYPES)
    byte 2  bits 0-2: bucket_ms (BUCKET_MS); bits 3-4: max_gap_s (GAPS);
            bits 5-6: t_mono_origin_ns (ORIGINS); bit 7: host_ips (HOSTS)
    byte 3  bits 0-2: the compression (an index into COMPRESSIONS);
            bits 3-4: on_corrupt (ON_CORRUPT); bit 5: tunnels="inner" (with the extended
            decode only); bits 6-7: unused

Every value of every byte means something, so no mutation is wasted.  Shorter inputs are
padded with zero bytes (all defaults).

:func:`check` runs the capture on each backend (``fastpcap._backend.use``: both live in one
process, as in the tests' ``backend`` fixture), each time two ways -- the public path
(:func:`fastpcap.iter_rows` on a stream) and the reader + :class:`~fastpcap.Bucketer` with
the chosen chunking, which also gives the packet rows, the reader's and the gap cap's counts
-- and raises :class:`Mismatch` unless the backends give the same bytes (packets, rows,
warnings, info) or the same error message (file offset included), and unless each backend
gives the same rows or error whatever the chunking.  An exception other than
:class:`~fastpcap.CaptureError` escapes, and a warning other than fastpcap's own
(:class:`~fastpcap.FastpcapWarning`: the gap cap's, undecoded link types') raises
:class:`UnexpectedWarning`: for the fuzzer that is a crash, for the replay a failure.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import lz4.frame
import zstandard

from fastpcap import _backend
from fastpcap.api import iter_rows
from fastpcap.buckets import Bucketer
from fastpcap.capture import open_capture
from fastpcap.errors import CaptureError, FastpcapWarning
from fastpcap.info import capture_info
from fastpcap.options import INT64_MAX, INT64_MIN, BucketSpec
from fastpcap.reader import DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_PACKETS

HEADER_SIZE = 4

#: Link types to patch in: every one either decode reads, and undecoded ones with each
#: maximum record size (DBUS 128 MiB, EBHSCR 8 MiB, USBPCAP 1 MiB, the rest 256 KiB); the
#: last ones only fit a classic header's 32-bit network field (FCS bits, reserved bits).
LINKTYPES = (
    1, 0, 12, 14, 101, 108, 113, 228, 229, 276,  # decoded by both
    9, 104, 105, 127, 147, 231, 239, 249, 279, 0xFFFF,  # the extended decode's, or size only
    1 | 0x10000000, 101 | 0x04000000, 0x03FFFFFF,  # classic only: FCS / reserved bits
    10, 50, 192,  # more of the extended decode's (appended: the corpus keeps its meaning)
)
#: (chunk_packets, block_size): the defaults first, then small ones that cut records and
#: blocks across reads and chunks at every place.
CHUNKINGS = (
    (DEFAULT_CHUNK_PACKETS, DEFAULT_BLOCK_SIZE), (1, 16), (2, 17), (3, 64), (7, 61), (16, 256), (1, 4096),
    (DEFAULT_CHUNK_PACKETS, 100),
)
BUCKET_MS = (100, 1, 7, 1000, 1 << 40, 3, 60_000, 100)
GAPS: tuple[Any, ...] = (3600, 0, "0.05", None)
ORIGINS = (0, INT64_MIN, INT64_MAX, 1_700_000_000_000_000_000)
#: (reference decode, extended decode) host_ips; ``None``: the default bridge_ip.
HOSTS: tuple[tuple[Any, Any], ...] = (
    (None, None),
    (("10.200.0.2", "192.168.1.1"), ("10.200.0.2", "fd00::1", "::ffff:10.0.0.1")),
)
COMPRESSIONS = ("gzip", "zstd", "lz4", "bzip2", "xz")
#: What a corrupt record does (the default twice: most inputs keep it).
ON_CORRUPT = ("error", "stop", "resync", "error")
#: Rows compared at most (a gap without a cap at 1 ms buckets can hold 2**63 empty rows).
MAX_ROWS = 1 << 17


@dataclass(frozen=True)
class Case:
    """One decoded input: the capture bytes and how to read them."""

    data: bytes
    spec: BucketSpec
    chunk_packets: int
    block_size: int
    info: bool
    linktype: int | None  # what was patched in (None: the bytes as they came)
    compression: str | None

    def describe(self) -> str:
        return (f"{len(self.data)} capture bytes, linktype patched to {self.linktype}, compression "
                f"{self.compression}, chunk_packets {self.chunk_packets}, block_size {self.block_size}, "
                f"info {self.info}, {self.spec}")


def decode_input(raw: bytes) -> Case:
    """The capture and options an input stands for (see the module's docstring)."""
    head = raw[:HEADER_SIZE].ljust(HEADER_SIZE, b"\0")
    flags, lt_index, opts, comp = head
    body = raw[HEADER_SIZE:]
    extended = bool(flags & 2)
    linktype = LINKTYPES[lt_index % len(LINKTYPES)] if flags & 1 else None
    if linktype is not None:
        body = patch_linktype(body, linktype)
    compression = COMPRESSIONS[(comp & 7) % len(COMPRESSIONS)] if flags & 8 else None
    if compression is not None:
        body = compress(body, compression)
    chunk_packets, block_size = CHUNKINGS[flags >> 5]
    hosts = HOSTS[opts >> 7][extended]
    spec = BucketSpec(
        bucket_ms=BUCKET_MS[opts & 7],
        max_gap_s=GAPS[(opts >> 3) & 3],
        t_mono_origin_ns=ORIGINS[(opts >> 5) & 3],
        host_ips=hosts,
        size="wire" if flags & 4 else "captured",
        decode="extended" if extended else "reference",
        on_corrupt=ON_CORRUPT[(comp >> 3) & 3],
        tunnels="inner" if extended and comp & 32 else "outer",
    )
    return Case(body, spec, chunk_packets, block_size, bool(flags & 16), linktype, compression)


def encode_input(data: bytes, *, linktype: int | None = None, extended: bool = False, wire: bool = False,
                 compression: str | None = None, info: bool = False, chunking: int = 0, bucket_ms: int = 0,
                 gap: int = 0, origin: int = 0, hosts: int = 0, on_corrupt: int = 0, tunnels: bool = False) -> bytes:
    """The input that :func:`decode_input` reads back as ``data`` with these choices
    (indexes into the tables above): for writing seeds."""
    flags = ((linktype is not None) | extended << 1 | wire << 2 | (compression is not None) << 3 | info << 4
             | chunking << 5)
    lt_index = 0 if linktype is None else LINKTYPES.index(linktype)
    comp = (0 if compression is None else COMPRESSIONS.index(compression)) | on_corrupt << 3 | tunnels << 5
    opts = bucket_ms | gap << 3 | origin << 5 | hosts << 7
    return bytes([flags, lt_index, opts, comp]) + data


def linktype_fields(data: bytes) -> tuple[str | None, list[tuple[int, str]]]:
    """Where the link types of ``data`` are, if it starts like a capture: ``("pcap",
    [(20, fmt)])`` for a classic header's network field, ``("pcapng", [(offset, fmt),
    ...])`` for every interface description block that a walk over well-formed pcapng
    blocks reaches (the walk stops at the first bad length), else ``(None, [])``; ``fmt``
    the field's struct format."""
    magic = bytes(data[:4])
    if len(data) >= 24 and magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return "pcap", [(20, "<I")]
    if len(data) >= 24 and magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return "pcap", [(20, ">I")]
    if magic != b"\x0a\x0d\x0d\x0a":
        return None, []
    fields, order, pos = [], "<", 0
    while pos + 12 <= len(data):
        if data[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = ">" if data[pos + 8:pos + 12] == b"\x1a\x2b\x3c\x4d" else "<"
        btype, length = struct.unpack_from(order + "II", data, pos)
        if length < 12 or length % 4 or pos + length > len(data):
            break
        if btype == 1 and length >= 20:
            fields.append((pos + 8, order + "H"))
        pos += length
    return "pcapng", fields


def patch_linktype(data: bytes, linktype: int) -> bytes:
    """``data`` with its link type(s) replaced (:func:`linktype_fields`)."""
    buf = bytearray(data)
    for offset, fmt in linktype_fields(data)[1]:
        struct.pack_into(fmt, buf, offset, linktype & (0xFFFF if fmt.endswith("H") else 0xFFFFFFFF))
    return bytes(buf)


def compress(data: bytes, kind: str) -> bytes:
    """``data`` compressed, the same bytes every time (no time stamps)."""
    if kind == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if kind == "lz4":
        return bytes(lz4.frame.compress(data))
    if kind == "bzip2":
        return bz2.compress(data, 9)
    assert kind == "xz", kind
    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=1)


class Mismatch(AssertionError):
    """The backends (or two chunkings of one backend) disagree on an input."""


@dataclass
class Outcome:
    """What one way of reading a capture gave.  ``rows``: a digest of the rows' bytes
    (``ROW_DTYPE``) yielded before the end or the error, and their count; ``error``: the
    :class:`~fastpcap.CaptureError`'s message (``None``: none); ``truncated``: stopped after
    ``MAX_ROWS`` rows."""

    rows: str = ""
    count: int = 0
    error: str | None = None
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def final(self) -> tuple[Any, ...]:
        """What must not depend on the chunking: all the rows, or the error."""
        return (self.error,) if self.error is not None else (self.rows, self.count)


class UnexpectedWarning(AssertionError):
    """A warning that is not one of fastpcap's own (a numpy overflow, say)."""


@contextmanager
def _warnings_into(outcome: Outcome) -> Iterator[None]:
    """Record the warnings raised inside into ``outcome.warnings``; fastpcap's own
    (:class:`~fastpcap.FastpcapWarning`) only: any other one raises :class:`UnexpectedWarning`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if not issubclass(w.category, FastpcapWarning):
            raise UnexpectedWarning(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})")
        outcome.warnings.append(f"{w.category.__name__}: {w.message}")


def _rows_digest(blocks: Any, outcome: Outcome) -> None:
    digest = hashlib.blake2b(digest_size=16)
    try:
        for block in blocks:
            digest.update(block.tobytes())
            outcome.count += len(block)
            if outcome.count >= MAX_ROWS:
                outcome.truncated = True
                break
    except CaptureError as exc:
        outcome.error = str(exc)
    finally:
        outcome.rows = digest.hexdigest()


def public_path(case: Case) -> Outcome:
    """The rows through :func:`fastpcap.iter_rows` on a stream of the capture."""
    outcome = Outcome()
    with _warnings_into(outcome):
        try:
            rows = iter_rows(io.BytesIO(case.data), spec=case.spec)
        except CaptureError as exc:  # the header is read now
            outcome.error = str(exc)
        else:
            try:
                _rows_digest(rows, outcome)
            finally:
                rows.close()
    return outcome


def reader_path(case: Case) -> Outcome:
    """The packets and rows through the reader and a Bucketer, with the case's chunking
    (what ``iter_rows`` does, with every count kept)."""
    outcome = Outcome()
    packets = hashlib.blake2b(digest_size=16)
    try:
        with _warnings_into(outcome):
            reader = open_capture(io.BytesIO(case.data), chunk_packets=case.chunk_packets,
                                  block_size=case.block_size, decode=case.spec.decode,
                                  on_corrupt=case.spec.on_corrupt, tunnels=case.spec.tunnels)
    except CaptureError as exc:
        outcome.error = str(exc)
        return outcome
    bucketer = Bucketer(case.spec)

    def blocks() -> Any:
        try:
            for chunk in reader:
                packets.update(chunk.tobytes())
                yield from bucketer.feed(chunk)
            yield from bucketer.finish()
        except CaptureError as exc:
            if exc.path is None and exc.offset is not None:  # the bucket rule's error, worded as the public path does
                raise reader.error(exc.offset, exc.problem) from None
            raise

    with reader, _warnings_into(outcome):
        _rows_digest(blocks(), outcome)
    gaps = bucketer.gaps
    outcome.details = {
        "packets": packets.hexdigest(), "reader.packets": reader.packets, "format": reader.format,
        "end_offset": reader.end_offset, "tail_bytes": reader.tail_bytes, "undecoded": reader.undecoded,
        "linktypes": reader.linktypes, "compression": reader.compression, "bucketer.packets": bucketer.packets,
        "skipped": (reader.skipped_regions, reader.skipped_bytes),
        "stopped": None if reader.stopped is None else str(reader.stopped),
        "gaps": (gaps.gaps_cut, gaps.rows_cut, gaps.first_packet, gaps.first_offset),
    }
    if outcome.truncated:  # the reader stopped early: its counts are the chunking's
        outcome.details = {"packets": outcome.details["packets"]}
    return outcome


def info_path(case: Case) -> Outcome:
    """``fastpcap info``'s summary of the capture (the extended decode)."""
    outcome = Outcome()
    with _warnings_into(outcome):
        try:
            outcome.details = capture_info(io.BytesIO(case.data), on_corrupt=case.spec.on_corrupt,
                                           tunnels=case.spec.tunnels)
        except CaptureError as exc:
            outcome.error = str(exc)
    return outcome


def run(case: Case, backend: str) -> dict[str, Outcome]:
    """Every way of reading ``case`` on ``backend``."""
    previous = _backend.use(backend)
    try:
        outcomes = {"public": public_path(case), "reader": reader_path(case)}
        if case.info:
            outcomes["info"] = info_path(case)
        return outcomes
    finally:
        _backend.use(previous)


def check(raw: bytes) -> dict[str, Outcome]:
    """Run one input on both backends; raise :class:`Mismatch` if they (or two chunkings)
    disagree.  Returns the compiled backend's outcomes (the pure twin's without it)."""
    case = decode_input(raw)
    backends = [name for name in ("cython", "python") if name in _backend.IMPLEMENTATIONS]
    results = {name: run(case, name) for name in backends}
    first = results[backends[0]]
    for name in backends[1:]:
        for way, outcome in results[name].items():
            if outcome != first[way]:
                raise Mismatch(f"{backends[0]} and {name} disagree ({way} path) on {case.describe()}:\n"
                               f"  {backends[0]}: {first[way]}\n  {name}: {outcome}")
    for name, outcomes in results.items():
        public, chunked = outcomes["public"], outcomes["reader"]
        if not (public.truncated or chunked.truncated) and public.final() != chunked.final():
            raise Mismatch(f"{name}: the public path and the reader with chunk_packets {case.chunk_packets}, "
                           f"block_size {case.block_size} disagree on {case.describe()}:\n"
                           f"  public: {public}\n  reader: {chunked}")
    return first
