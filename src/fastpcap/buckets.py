"""The bucket rule (docs/data-model.md, rules 3 and 4), vectorised with numpy and shared by both backends.

Packets arrive in chunks.  Within a chunk, every packet's bucket is the one holding the
running maximum of timestamps so far (``np.maximum.accumulate`` then ``np.floor_divide``);
bucket indexes never decrease, so each bucket is one run of consecutive packets and its
counters are ``np.add.reduceat`` over the runs.  Distinct destinations are counted the same
way, over flags that the backend's ``DistinctCounter`` sets on each value's first packet in
its bucket (O(n) in both backends).  The last bucket of a chunk stays *open*: its
counters, and the values the counters remember, carry into the next chunk, so a capture
gives the same rows whatever its chunking.  Closed buckets go to a *sink*: the
:class:`RowWriter` writes them as rows with the empty buckets between them, unless the gap
is longer than the gap cap (``fastpcap.parallel`` gives byte ranges a sink that collects the
buckets instead, and splices them through the public methods of the open bucket below).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from . import _backend
from ._format import (
    CLS_DNS_QUERY,
    CLS_FIN,
    CLS_NEW_FLOW,
    CLS_RST,
    CLS_SYN,
    CLS_TCP,
    CLS_UDP,
    DEC_IPV4,
    DEC_IPV6,
    DEC_PORTS,
)
from .errors import CaptureError
from .options import INT64_MAX, INT64_MIN, BucketSpec
from .rows import ROW_DTYPE, ROW_FIELDS

if TYPE_CHECKING:
    from .options import BucketOptions, Unpack

_NFIELDS = len(ROW_FIELDS)
_C = {name: i for i, name in enumerate(ROW_FIELDS)}  # column of each field in a row
#: Rows per array yielded (gaps without a cap can hold billions of empty rows).
ROWS_PER_BLOCK = 1 << 16
#: Packets per step of :meth:`Bucketer.feed` (larger arrays are fed in steps): a run's
#: counters are summed in 16-bit fields.
MAX_FEED = (1 << 16) - 1
_EMPTY = np.zeros(0, dtype=np.uint32)
_EMPTY6 = np.zeros((0, 16), dtype=np.uint8)


class DistinctSets(NamedTuple):
    """One bucket's distinct destinations (what splicing byte ranges unites)."""

    ips: np.ndarray  #: IPv4 addresses, sorted uint32
    ports: np.ndarray  #: ports, sorted uint32
    ips6: np.ndarray  #: IPv6 addresses, (k, 16) uint8 rows in bytewise order (extended decode)

    @classmethod
    def of(cls, packets: np.ndarray) -> DistinctSets:
        """The distinct destinations of ``packets`` (any run of packet rows)."""
        dec = packets["decoded"]
        ips6 = _EMPTY6
        if "dst_ip6" in packets.dtype.names:  # type: ignore[operator]  # the extended decode
            ips6 = np.unique(packets["dst_ip6"][(dec & DEC_IPV6) != 0], axis=0).reshape(-1, 16)
        return cls(np.unique(packets["dst_ip"][(dec & DEC_IPV4) != 0]),
                   np.unique(packets["dst_port"][(dec & DEC_PORTS) != 0].astype(np.uint32)), ips6)

    def union(self, other: DistinctSets) -> DistinctSets:
        """Both buckets' values together."""
        ips6 = np.concatenate((self.ips6, other.ips6)).reshape(-1, 16)
        return DistinctSets(np.union1d(self.ips, other.ips).astype(np.uint32),
                            np.union1d(self.ports, other.ports).astype(np.uint32),
                            np.unique(ips6, axis=0) if len(ips6) else _EMPTY6)

    def sizes(self) -> tuple[int, int]:
        """(distinct destination ips, distinct destination ports), as in a row."""
        return len(self.ips) + len(self.ips6), len(self.ports)


def _halves(addresses: np.ndarray) -> np.ndarray:
    """(n, 16) address bytes as (n, 2) big-endian 64-bit halves."""
    return np.ascontiguousarray(addresses).view(">u8").reshape(len(addresses), 2).astype(np.uint64)


@dataclass
class GapStats:
    """What the gap cap removed in one run."""

    gaps_cut: int = 0
    rows_cut: int = 0
    first_packet: int | None = None  # 1-based number of the packet after the first cut gap
    first_offset: int | None = None  # its record's byte offset in the file


class Bucketer:
    """Turns chunks of packets into rows; carries the open bucket between chunks.

    ``feed`` yields the rows that the packets close; ``finish`` yields the rest.  Each array
    yielded has ``ROW_DTYPE`` and at most ``ROWS_PER_BLOCK`` rows.
    """

    def __init__(self, spec: BucketSpec | None = None, /, *, first_t_ns: int | None = None,
                 sink: BucketSink | None = None, **options: Unpack[BucketOptions]) -> None:
        """``spec`` (or the bucket options as keywords, see :class:`~fastpcap.BucketSpec`)
        says how packets make rows.  ``first_t_ns``: the capture's first timestamp, when the
        packets fed are not the capture's first (a byte range of it); it fixes the buckets'
        origin.  ``sink``: where closed buckets go (default: a :class:`RowWriter`, whose
        rows ``feed`` and ``finish`` yield).  Packets of ``PACKET6_DTYPE`` (the extended
        decode) count IPv6 too."""
        self.spec = spec = BucketSpec.make(spec, **options)
        self.bucket_ms = spec.bucket_ms
        self.bucket_ns = spec.bucket_ns
        hosts4, hosts6 = spec.hosts()
        self._hosts4 = np.array(hosts4, dtype=np.uint32)
        self._hosts6 = np.array(hosts6, dtype=np.uint64).reshape(-1, 2)  # each as two big-endian halves
        self._wire = spec.size == "wire"
        self.t_mono_origin_ns = spec.t_mono_origin_ns
        self.max_gap_ns = spec.max_gap_ns
        self.sink: BucketSink = sink if sink is not None else RowWriter(spec)
        self.packets = 0  # packets fed so far
        self._origin: int | None = None  # start of bucket 0: the first packet's time, floored
        if first_t_ns is not None:
            self.set_origin(first_t_ns)
        self._runmax = 0  # running maximum of t_ns
        # The open bucket: its index, its counters (a row without times), its first packet.
        self._open: int | None = None
        self._open_row = np.zeros(_NFIELDS, dtype=np.int64)
        self._open_first = (0, 0)
        # Distinct destinations per bucket; they remember the open bucket's values.
        self._ips = _backend.impl.DistinctCounter()
        self._ports = _backend.impl.DistinctCounter()
        self._ips6 = _backend.impl.DistinctCounter()  # IPv6 destinations (128-bit values)

    @property
    def gaps(self) -> GapStats:
        """What the gap cap removed so far (the :class:`RowWriter`'s)."""
        return self.sink.gaps if isinstance(self.sink, RowWriter) else GapStats()

    @property
    def rows(self) -> int:
        """Rows yielded so far (the :class:`RowWriter`'s)."""
        return self.sink.rows if isinstance(self.sink, RowWriter) else 0

    def set_origin(self, first_t_ns: int) -> None:
        """Fix the buckets' origin from the capture's first timestamp (before any packet)."""
        if self.packets:
            raise ValueError("the origin is fixed by the first packet fed")
        self._origin = first_t_ns - first_t_ns % self.bucket_ns

    # -- input ---------------------------------------------------------------------------
    def feed(self, packets: np.ndarray) -> Iterator[np.ndarray]:
        """Add a chunk of packets (``PACKET_DTYPE``, in capture order)."""
        n = len(packets)
        if n == 0:
            return
        if n > MAX_FEED:
            for at in range(0, n, MAX_FEED):
                yield from self.feed(packets[at:at + MAX_FEED])
            return
        t = packets["t_ns"].astype(np.int64, copy=False)
        origin, runmax = self._origin, self._runmax
        if self.packets == 0:
            runmax = int(t[0])
            if origin is None:
                origin = runmax - runmax % self.bucket_ns
        assert origin is not None  # fixed by the first packet (or the caller) before any other
        tmax = np.maximum.accumulate(t)
        np.maximum(tmax, runmax, out=tmax)
        self._check_times(packets, tmax, origin)
        self._origin, self._runmax = origin, int(tmax[-1])
        idx = np.floor_divide(tmax - origin, self.bucket_ns)

        starts = np.concatenate(([0], np.flatnonzero(idx[1:] != idx[:-1]) + 1))
        buckets = idx[starts]
        merged = self._open is not None and buckets[0] == self._open
        self._before_reduce(packets, starts, merged)
        rows = self._reduce(packets, idx, starts)
        first_no = self.packets + starts + 1
        first_off = packets["offset"][starts]
        if merged:
            rows[0] += self._open_row
            first_no[0], first_off[0] = self._open_first
        elif self._open is not None:
            yield from self.close_open()
        # Every run but the last is closed; the last becomes the open bucket.
        if len(starts) > 1:
            yield from self.write_closed(buckets[:-1], rows[:-1], first_no[:-1], first_off[:-1])
        self.open_with(int(buckets[-1]), rows[-1], int(first_no[-1]), int(first_off[-1]))
        self.packets += n

    def _before_reduce(self, packets: np.ndarray, starts: np.ndarray, merged: bool) -> None:
        """Called in :meth:`feed` before the distinct counters take the chunk's packets
        (``starts``: where each bucket's run begins; ``merged``: whether the first run
        continues the open bucket).  For subclasses; does nothing."""

    def _check_times(self, packets: np.ndarray, tmax: np.ndarray, origin: int) -> None:
        """Refuse times whose buckets int64 nanoseconds cannot hold (every one a capture can
        hold either works or is this error, naming the packet)."""
        bucket_ns, tmo = self.bucket_ns, self.t_mono_origin_ns
        if self.packets == 0:
            if origin < INT64_MIN:
                raise self._time_error(packets, 0, (
                    f"its timestamp, {int(packets['t_ns'][0])} ns since the epoch, falls in a bucket that would "
                    "start before the earliest time a signed 64-bit count of nanoseconds holds"))
            if origin - tmo < INT64_MIN:
                raise self._time_error(packets, 0, self._mono_problem(origin))
        if origin + INT64_MAX < int(tmax[-1]):  # the span from the first bucket overflows
            i = int(np.argmax(tmax > origin + INT64_MAX))
            raise self._time_error(packets, i, (
                f"its timestamp, {int(packets['t_ns'][i])} ns since the epoch, is more than 2**63 ns (about 292 "
                f"years) after the start of the capture's first bucket ({origin} ns)"))
        last_start = origin + (int(tmax[-1]) - origin) // bucket_ns * bucket_ns
        if last_start - tmo > INT64_MAX:
            starts = origin + (tmax - origin) // bucket_ns * bucket_ns
            i = int(np.argmax(starts > tmo + INT64_MAX))
            raise self._time_error(packets, i, self._mono_problem(int(starts[i])))

    def _mono_problem(self, start: int) -> str:
        return (f"its bucket starts at {start} ns, which minus t_mono_origin_ns ({self.t_mono_origin_ns}) does "
                "not fit in the signed 64-bit t_mono_ns")

    def _time_error(self, packets: np.ndarray, i: int, problem: str) -> CaptureError:
        return CaptureError(None, int(packets["offset"][i]), f"packet {self.packets + i + 1}: {problem}")

    def finish(self) -> Iterator[np.ndarray]:
        """Write the open bucket, if any."""
        if self._open is not None:
            yield from self.close_open()

    def empty_before_open(self) -> Iterator[np.ndarray]:
        """Yield now the empty rows between the last bucket written and the open one, which
        would otherwise come with the open bucket's own row (following a capture, they are
        final as soon as a later bucket has opened); the gap cap applies as it would then.
        Only with the default sink (a :class:`RowWriter`)."""
        if self._open is not None and self._origin is not None and isinstance(self.sink, RowWriter):
            yield from self.sink.empty_before(self._origin, self._open, *self._open_first)

    # -- the open bucket, for splicing (fastpcap.parallel) -----------------------------------
    @property
    def open_bucket(self) -> int | None:
        """The index of the open bucket (``None`` before any packet)."""
        return self._open

    @property
    def open_first(self) -> tuple[int, int]:
        """The open bucket's first packet: its number and its record's byte offset."""
        return self._open_first

    @property
    def open_row(self) -> np.ndarray:
        """The open bucket's counters (a row of ``ROW_FIELDS`` without its times)."""
        return self._open_row

    def open_sets(self) -> DistinctSets:
        """The open bucket's distinct destinations: IPv4 addresses and ports (sorted uint32
        arrays), IPv6 addresses ((k, 16) uint8 rows in bytewise order; extended decode)."""
        if self._open is None:
            return DistinctSets(_EMPTY, _EMPTY, _EMPTY6)
        ips6 = self._ips6.values_in(self._open)  # (a counter never fed gives a flat array)
        return DistinctSets(self._ips.values_in(self._open), self._ports.values_in(self._open),
                            ips6 if len(ips6) else _EMPTY6)

    def close_open(self) -> Iterator[np.ndarray]:
        """Close the open bucket: hand it to the sink."""
        assert self._open is not None
        bucket, first = self._open, self._open_first
        self._open = None
        yield from self.write_closed(np.array([bucket]), self._open_row[None, :], np.array([first[0]]),
                                     np.array([first[1]]))

    def open_with(self, bucket: int, row: np.ndarray, first_no: int, first_off: int) -> None:
        """Make ``bucket`` (counters ``row``, first packet ``first_no`` at ``first_off``) the
        open bucket (the one before must be closed, or be this one)."""
        self._open = bucket
        self._open_row = row.copy()
        self._open_first = (first_no, first_off)

    def learn_open_sets(self, sets: DistinctSets) -> None:
        """Teach the distinct counters the open bucket's destinations (found elsewhere):
        they are its values from now on."""
        assert self._open is not None
        known: list[tuple[Any, np.ndarray]] = [
            (self._ips, sets.ips.astype(np.uint32)), (self._ports, sets.ports.astype(np.uint16)),
            (self._ips6, sets.ips6)]
        for counter, values in known:
            if not len(values):
                continue
            marks = np.empty(len(values), dtype=np.uint8)
            counter.first_in_bucket(values, np.full(len(values), self._open, dtype=np.int64),
                                    np.ones(len(values), dtype=np.uint8), marks)

    @property
    def origin(self) -> int | None:
        """The start of bucket 0 (``None`` until the first packet or ``first_t_ns`` fixes it)."""
        return self._origin

    @property
    def max_t_ns(self) -> int:
        """The latest timestamp fed so far (the running maximum)."""
        return self._runmax

    def fed_elsewhere(self, packets: int, max_t_ns: int) -> None:
        """Count ``packets`` bucketized elsewhere, the latest at ``max_t_ns``."""
        self.packets += packets
        self._runmax = max(self._runmax, max_t_ns)

    def write_closed(self, buckets: np.ndarray, rows: np.ndarray, first_no: np.ndarray,
                     first_off: np.ndarray) -> Iterator[np.ndarray]:
        """Hand closed buckets to the sink: non-empty ones, increasing, after those before."""
        assert self._origin is not None  # set by the first packet, before any bucket closes
        yield from self.sink.closed(self._origin, buckets, rows, first_no, first_off)

    def _reduce(self, packets: np.ndarray, idx: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Per-run counters (docs/data-model.md, rule 3), as rows of ``_NFIELDS`` int64 without times.

        Each packet's class bits (``cls``, set by the walk) and its "out" bit make one byte;
        two lookup tables spread that byte over two uint64 lanes of four 16-bit counters
        each, so two ``np.add.reduceat`` give all eight counters of every run (a run holds
        at most ``MAX_FEED`` packets: no counter overflows its 16 bits)."""
        rows = np.zeros((len(starts), _NFIELDS), dtype=np.int64)
        dec = packets["decoded"]
        ip = (dec & DEC_IPV4) != 0
        extended = "dst_ip6" in packets.dtype.names  # type: ignore[operator]
        ip6 = (dec & DEC_IPV6) != 0 if extended else None
        if len(self._hosts4) == 1:
            out = ip & (packets["src_ip"] == self._hosts4[0])
        elif not len(self._hosts4):
            out = np.zeros(len(packets), dtype=bool)
        else:
            out = ip & np.isin(packets["src_ip"], self._hosts4)
        if ip6 is not None and len(self._hosts6):
            src6 = _halves(packets["src_ip6"])
            out |= ip6 & (src6[:, None, :] == self._hosts6[None, :, :]).all(axis=2).any(axis=1)
        code = packets["cls"] | (out.view(np.uint8) << _OUT_SHIFT)
        for lane, fields in zip(_LANES, _LANE_FIELDS):
            sums = np.add.reduceat(lane.take(code), starts)
            for k, name in enumerate(fields):
                rows[:, _C[name]] = (sums >> np.uint64(16 * k)) & np.uint64(0xFFFF)
        size = packets["wirelen" if self._wire else "caplen"]
        total_bytes = np.add.reduceat(size, starts, dtype=np.int64)
        bytes_out = np.add.reduceat(size * out, starts, dtype=np.int64)
        rows[:, _C["pkts_in"]] = np.diff(np.append(starts, len(packets))) - rows[:, _C["pkts_out"]]
        rows[:, _C["bytes_out"]] = bytes_out
        rows[:, _C["bytes_in"]] = total_bytes - bytes_out
        # Distinct destinations: count each value's first packet in its bucket.
        new = np.empty(len(packets), dtype=np.uint8)
        self._ips.first_in_bucket(packets["dst_ip"], idx, ip.view(np.uint8), new)
        rows[:, _C["unique_dst_ips"]] = np.add.reduceat(new, starts, dtype=np.int64)
        if ip6 is not None and ip6.any():
            self._ips6.first_in_bucket(packets["dst_ip6"], idx, ip6.view(np.uint8), new)
            rows[:, _C["unique_dst_ips"]] += np.add.reduceat(new, starts, dtype=np.int64)
        ports = ((dec & DEC_PORTS) != 0).view(np.uint8)
        self._ports.first_in_bucket(packets["dst_port"], idx, ports, new)
        rows[:, _C["unique_dst_ports"]] = np.add.reduceat(new, starts, dtype=np.int64)
        return rows


#: Where a packet's "out" bit sits beside its class bits (``CLS_*`` use bits 0-6).
_OUT_SHIFT = 7


def _lanes() -> tuple[tuple[np.ndarray, ...], tuple[tuple[str, ...], ...]]:
    """For every byte ``cls | out << 7``: two uint64 words holding, in 16-bit fields, 1 for
    each counter that the packet counts in."""
    bits = {"tcp_count": CLS_TCP, "udp_count": CLS_UDP, "syn_count": CLS_SYN, "fin_count": CLS_FIN,
            "rst_count": CLS_RST, "dns_query_count": CLS_DNS_QUERY, "tcp_new_flows": CLS_NEW_FLOW,
            "pkts_out": 1 << _OUT_SHIFT}
    names = tuple(bits)
    fields = (names[:4], names[4:])
    code = np.arange(256, dtype=np.uint64)
    lanes = []
    for group in fields:
        lane = np.zeros(256, dtype=np.uint64)
        for k, name in enumerate(group):
            lane |= ((code & np.uint64(bits[name])) != 0).astype(np.uint64) << np.uint64(16 * k)
        lanes.append(lane)
    return tuple(lanes), fields


_LANES, _LANE_FIELDS = _lanes()


class BucketSink(Protocol):
    """Where a :class:`Bucketer` hands the buckets it closes: non-empty ones, in increasing
    order, each with its counters and its first packet's number and byte offset."""

    def closed(self, origin: int, buckets: np.ndarray, rows: np.ndarray, first_no: np.ndarray,
               first_off: np.ndarray) -> Iterator[np.ndarray]: ...


class RowWriter:
    """Closed buckets as rows (``ROW_DTYPE``, at most ``ROWS_PER_BLOCK`` a block): their
    times and ``bucket_ms`` filled in, with the empty buckets between them, except inside a
    gap longer than the gap cap (docs/data-model.md, "Gap cap"), which :attr:`gaps` counts."""

    def __init__(self, spec: BucketSpec) -> None:
        self.bucket_ms = spec.bucket_ms
        self.bucket_ns = spec.bucket_ns
        self.t_mono_origin_ns = spec.t_mono_origin_ns
        self.max_gap_ns = spec.max_gap_ns
        self.gaps = GapStats()
        self.rows = 0  # rows yielded so far
        self._last: int | None = None  # index of the last bucket written

    def closed(self, origin: int, buckets: np.ndarray, rows: np.ndarray, first_no: np.ndarray,
               first_off: np.ndarray) -> Iterator[np.ndarray]:
        """Yield closed buckets' rows, with the empty buckets the gap cap lets through."""
        prev = buckets[0] if self._last is None else self._last + 1
        gaps = np.diff(np.concatenate(([prev], buckets + 1))) - 1
        fill = gaps
        if self.max_gap_ns is not None:
            # gaps * bucket_ns > max_gap_ns, without overflowing int64
            cut = gaps > self.max_gap_ns // self.bucket_ns
            if cut.any():
                fill = np.where(cut, 0, gaps)
                where = np.flatnonzero(cut)
                if self.gaps.gaps_cut == 0:
                    self.gaps.first_packet = int(first_no[where[0]])
                    self.gaps.first_offset = int(first_off[where[0]])
                self.gaps.gaps_cut += len(where)
                self.gaps.rows_cut += int(gaps[where].sum())
        self._last = int(buckets[-1])

        ends = np.cumsum(fill + 1)  # one past each real row's position among the rows written
        total = int(ends[-1])
        for lo in range(0, total, ROWS_PER_BLOCK):
            hi = min(lo + ROWS_PER_BLOCK, total)
            r = np.arange(lo, hi)
            k = np.searchsorted(ends, r, side="right")  # which closed bucket's segment r is in
            at = ends[k] - 1  # position of that bucket's own row
            block = np.zeros((hi - lo, _NFIELDS), dtype=np.int64)
            real = r == at
            block[real] = rows[k[real]]
            start = origin + (buckets[k] - (at - r)) * self.bucket_ns
            block[:, _C["t_wall_ns"]] = start
            block[:, _C["t_mono_ns"]] = start - self.t_mono_origin_ns
            block[:, _C["bucket_ms"]] = self.bucket_ms
            self.rows += hi - lo
            yield block.view(ROW_DTYPE).reshape(hi - lo)

    def empty_before(self, origin: int, bucket: int, first_no: int, first_off: int) -> Iterator[np.ndarray]:
        """Yield the empty rows between the last bucket written and ``bucket`` (whose first
        packet is number ``first_no`` at ``first_off``) now; :meth:`closed` then writes
        ``bucket`` without them.  A gap longer than the gap cap is cut, as in :meth:`closed`."""
        if self._last is None or bucket - self._last <= 1:
            return
        gap = bucket - self._last - 1
        if self.max_gap_ns is not None and gap > self.max_gap_ns // self.bucket_ns:
            if self.gaps.gaps_cut == 0:
                self.gaps.first_packet, self.gaps.first_offset = first_no, first_off
            self.gaps.gaps_cut += 1
            self.gaps.rows_cut += gap
        else:
            for lo in range(0, gap, ROWS_PER_BLOCK):
                n = min(ROWS_PER_BLOCK, gap - lo)
                block = np.zeros((n, _NFIELDS), dtype=np.int64)
                start = origin + (self._last + 1 + lo + np.arange(n)) * self.bucket_ns
                block[:, _C["t_wall_ns"]] = start
                block[:, _C["t_mono_ns"]] = start - self.t_mono_origin_ns
                block[:, _C["bucket_ms"]] = self.bucket_ms
                self.rows += n
                yield block.view(ROW_DTYPE).reshape(n)
        self._last = bucket - 1
