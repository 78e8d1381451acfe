"""Many cores, one file: byte ranges of a capture bucketized in parallel, spliced exactly.

The file is cut into ``jobs`` byte ranges.  Each worker process finds the first record
boundary at or after its range's start (a scan for a chain of plausible record headers),
walks records until the first one that starts at or after the next range's start, and
bucketizes them on its own: same origin as the whole capture, its own running maximum.

A pcapng capture is cut the same way at block boundaries.  A block is read in the state of
its section (byte order, interfaces), so a worker walks from its guessed boundary in the
state in force at the capture's first packet (section headers and interface descriptions it
meets update it as in one process); its range begins at the first packet block, section
header or interface description it meets (other blocks change nothing) and ends before the
first one at or after the next range's start.  The main process knows the state in force
where the previous range ended, and splices a range only if it was walked from that state.

The main process then splices the ranges in order onto one :class:`Bucketer`: counters of a
bucket that straddles two ranges add, its distinct sets are united (IPv6 destinations too,
under the extended decode), and packets that arrived while an earlier range's last bucket
was the newest are counted in it (the running-maximum rule).  Every guess is checked: a
range is spliced only if it starts exactly where the previous one ended, its walk raised
nothing, at most one of its buckets falls into the previous range's open bucket, and
(pcapng) it was walked in the section state in force there.  Otherwise the main process
walks that range itself, from the boundary it knows, with the same bucketer.  So the rows
are byte-identical to one process's, whatever the file holds; a bad guess costs time, never
correctness.

Workers treat a corrupt record as an error whatever ``on_corrupt`` says: their range is then
walked here, where the policy applies exactly as in one process (a resync looks for times
near the last packet before the corrupt one, which the reader knows even when a worker
walked it; after a stop, no later range is used).
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _backend
from ._format import (
    GLOBAL_HEADER_SIZE,
    MIN_MAX_BLOCK,
    RECORD_HEADER_SIZE,
    max_block,
    max_caplen,
)
from .buckets import Bucketer, DistinctSets
from .errors import CaptureError
from .options import BucketSpec
from .pcap import PcapReader
from .pcapng import PcapngReader, State
from .reader import CaptureReader
from .resync import YES, PcapngScan
from .rows import ROW_FIELDS

#: Ranges smaller than this are not worth a process of their own.
MIN_RANGE_BYTES = 32 << 20
#: Consecutive plausible record headers that make a boundary guess.
SYNC_CHAIN = 16
#: How far past a range's start to look for a record boundary before giving up.
SYNC_SCAN_BYTES = 16 << 20
_SCAN_WINDOW = 1 << 16
_DAY = 86_400


def plan(size: int, jobs: int, head: int = GLOBAL_HEADER_SIZE) -> list[int]:
    """Nominal range starts for a file of ``size`` bytes whose records start after ``head``
    bytes, plus ``size`` at the end."""
    jobs = max(1, min(jobs, (size - head) // MIN_RANGE_BYTES))
    body = size - head
    return [head + body * k // jobs for k in range(jobs)] + [size]


def usable_jobs(jobs: int | None) -> int:
    """``jobs`` or, for ``None``, the CPUs this process may run on."""
    if jobs is not None:
        return max(1, jobs)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class Segment:
    """What a worker found in its byte range."""

    start: int | None  # the record boundary it started from (None: found none)
    end: int = 0  # first record boundary at or after the next range's start (or the tail)
    tail_bytes: int = 0
    packets: int = 0
    max_t_ns: int = 0
    last_t_ns: int | None = None  # the time of its last packet
    buckets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    first_no: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    first_off: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    first_sets: DistinctSets | None = None  # its first and last buckets' distinct destinations
    last_sets: DistinctSets | None = None
    failed: bool = False  # its walk raised (the main process walks it again for the error)
    crashed: str | None = None  # an unexpected exception in the worker (a bug: reported)
    pcapng: PcapngPart | None = None  # (pcapng) the state it assumed, and what it read


@dataclass
class PcapngPart:
    """What a worker's range of a pcapng capture assumed and read besides packets."""

    assumed: State  # the section state it walked from (checked against the one in force there)
    state: State  # the one it ended in
    undecoded: dict[int, int]
    sections: int
    byteorders: list[str]
    interfaces: list


_IPS, _PORTS = ROW_FIELDS.index("unique_dst_ips"), ROW_FIELDS.index("unique_dst_ports")


class _Collector:
    """A sink that keeps the buckets a worker closes, for the main process to splice."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def closed(self, origin: int, buckets: np.ndarray, rows: np.ndarray, first_no: np.ndarray,
               first_off: np.ndarray) -> Iterator[np.ndarray]:
        self.parts.append((buckets.copy(), rows.copy(), first_no.copy(), first_off.copy()))
        return iter(())


class _SegmentBucketer(Bucketer):
    """A worker's bucketer: collects its buckets, and keeps its first bucket's distinct values
    (the splice may have to unite them with the previous range's last bucket's)."""

    def __init__(self, spec: BucketSpec, first_t_ns: int) -> None:
        self.collector = _Collector()
        super().__init__(spec, first_t_ns=first_t_ns, sink=self.collector)
        self.first_sets: DistinctSets | None = None

    def _before_reduce(self, packets: np.ndarray, starts: np.ndarray, merged: bool) -> None:
        """Before the counters move past it, keep the first bucket's distinct values."""
        if self.first_sets is not None or (len(starts) == 1 and (self.open_bucket is None or merged)):
            return  # already kept, or the first bucket is still open
        if self.open_bucket is not None and not merged:
            self.first_sets = self.open_sets()  # the first bucket was the open one
            return
        run0 = DistinctSets.of(packets[:int(starts[1])])
        self.first_sets = self.open_sets().union(run0) if merged else run0

    def finish(self) -> Iterator[np.ndarray]:
        if self.first_sets is None and self.open_bucket is not None:
            self.first_sets = self.open_sets()
        yield from super().finish()


def can_splice(bucketer: Bucketer, buckets: np.ndarray) -> bool:
    """Whether a segment whose (non-empty) buckets are ``buckets`` can be spliced on.

    Its packets that arrived while the bucketer's open bucket was the newest belong in that
    bucket: at most one of its buckets may be at or before the open one (more would need
    distinct sets the segment does not carry).
    """
    open_ = bucketer.open_bucket
    return open_ is None or len(buckets) == 0 or int((buckets <= open_).sum()) <= 1


def splice(bucketer: Bucketer, segment: Segment) -> Iterator[np.ndarray]:
    """Continue ``bucketer`` with a segment bucketized on its own (same origin, a fresh
    running maximum); yields the rows this closes, like ``feed``.  The segment's first bucket
    continues (or arrived late into) the open bucket when it is at or before it: counters
    add, distinct sets unite."""
    buckets = segment.buckets
    if not len(buckets):
        return
    if not can_splice(bucketer, buckets):
        raise ValueError("segment cannot be spliced: feed its packets instead")
    assert segment.first_sets is not None and segment.last_sets is not None  # it has buckets
    rows = segment.rows.copy()
    first_no = segment.first_no + bucketer.packets
    first_off = segment.first_off
    last_sets = segment.last_sets
    open_ = bucketer.open_bucket
    if open_ is not None and buckets[0] <= open_:
        merged_sets = bucketer.open_sets().union(segment.first_sets)
        merged_row = bucketer.open_row + rows[0]
        merged_row[_IPS], merged_row[_PORTS] = merged_sets.sizes()
        bucketer.open_with(open_, merged_row, *bucketer.open_first)
        if len(buckets) == 1:
            last_sets = merged_sets
        else:
            yield from bucketer.close_open()
            bucketer.open_with(int(buckets[-1]), rows[-1], int(first_no[-1]), int(first_off[-1]))
            if len(buckets) > 2:
                yield from bucketer.write_closed(buckets[1:-1], rows[1:-1], first_no[1:-1], first_off[1:-1])
    else:
        if open_ is not None:
            yield from bucketer.close_open()
        if len(buckets) > 1:
            yield from bucketer.write_closed(buckets[:-1], rows[:-1], first_no[:-1], first_off[:-1])
        bucketer.open_with(int(buckets[-1]), rows[-1], int(first_no[-1]), int(first_off[-1]))
    bucketer.fed_elsewhere(segment.packets, segment.max_t_ns)
    bucketer.learn_open_sets(last_sets)


def find_record_start(reader: PcapReader, offset: int, stop: int, end: int, first_sec: int) -> int | None:
    """The first offset in ``[offset, stop)`` that starts a chain of plausible records."""
    header = reader.header
    assert header is not None
    order = "<" if header.byteorder == "little" else ">"
    unpack = struct.Struct(order + "IIII").unpack_from
    frac_limit = 1_000_000_000 if header.nsec else 1_000_000
    limit = max_caplen(header.linktype)
    u32 = np.dtype(order + "u4")

    def plausible(sec: int, frac: int, incl: int, orig: int, prev_sec: int) -> bool:
        return (frac < frac_limit and incl <= limit and incl <= orig < (1 << 24)
                and (incl or sec) != 0 and abs(sec - prev_sec) <= _DAY)

    pos = offset
    scanned = 0
    while pos < min(stop, end) and scanned < SYNC_SCAN_BYTES:
        window = reader.read_at(pos, min(end - pos, _SCAN_WINDOW + SYNC_CHAIN * (limit + RECORD_HEADER_SIZE)))
        span = min(len(window) - RECORD_HEADER_SIZE + 1, _SCAN_WINDOW, stop - pos)
        if span <= 0:
            break
        # Prefilter every offset at once: a fraction in range and incl_len <= orig_len <= 16 MiB.
        raw = np.frombuffer(window, dtype=np.uint8)
        fields = [np.ndarray(span, dtype=u32, buffer=raw, offset=k, strides=1) for k in (4, 8, 12)]
        frac, incl, orig = (np.array(a) for a in fields)
        candidates = np.flatnonzero((frac < frac_limit) & (incl <= limit) & (incl <= orig) & (orig < (1 << 24)))
        for c in candidates.tolist():
            q, prev, ok = c, first_sec, 0
            while ok < SYNC_CHAIN and q + RECORD_HEADER_SIZE <= len(window):
                sec, frac_q, incl_q, orig_q = unpack(window, q)
                if not plausible(sec, frac_q, incl_q, orig_q, prev if ok else sec):
                    break
                if ok == 0 and sec + _DAY < first_sec:
                    break
                prev, ok, q = sec, ok + 1, q + RECORD_HEADER_SIZE + incl_q
            else:
                # A full chain, or one that runs to the end of what was read.
                if ok and (ok == SYNC_CHAIN or pos + q >= end or q + RECORD_HEADER_SIZE > len(window)):
                    return pos + c
        pos += span
        scanned += span
    return None


def _worker(conn, *args: object) -> None:
    """Process entry point: bucketize one range and send the Segment back."""
    # Ctrl-C and SIGTERM are the main process's to handle; it stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        segment = _segment(*args)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the main process walks the range itself instead
        segment = Segment(start=None, failed=True, crashed=f"{type(exc).__name__}: {exc}")
    conn.send(segment)
    conn.close()


def find_block_start(reader: PcapngReader, offset: int, stop: int, end: int, state: State) -> int | None:
    """The first 4-byte aligned offset in ``[offset, stop)`` where a block the walk would
    accept in ``state`` starts, and the block after it is framed right too (a guess: the
    main process checks it against where the previous range really ended)."""
    byteorder, interfaces = state
    section = None if interfaces is None else list(interfaces)
    limit = MIN_MAX_BLOCK if section is None else max_block([i.linktype for i in section])
    scan = PcapngScan(byteorder, section, limit, None)
    pos = offset + (-offset) % 4  # (blocks are a multiple of 4 bytes long, from offset 0)
    scanned = 0
    while pos < min(stop, end) and scanned < SYNC_SCAN_BYTES:
        # (the window holds two typical blocks past the offsets scanned; a candidate whose
        # blocks are longer is read again on its own, as long as they are)
        window = reader.read_at(pos, min(end - pos, 2 * _SCAN_WINDOW))
        span = min(len(window) - scan.head + 1, _SCAN_WINDOW, stop - pos)
        if span <= 0:
            break
        for c in scan.candidates(np.frombuffer(window, dtype=np.uint8), span).tolist():
            if c % 4:
                continue
            verdict = scan.check(window, c, len(window), pos + len(window) >= end)  # type: ignore[arg-type]
            if verdict > 0:  # its blocks go on past the window
                whole = reader.read_at(pos + c, min(end - pos - c, verdict))
                verdict = scan.check(whole, 0, len(whole), pos + c + len(whole) >= end)  # type: ignore[arg-type]
            if verdict == YES:
                return pos + c
        span = span - span % 4 or span
        pos += span
        scanned += span
    return None


def _segment(path: str, backend: str, first: bool, first_t_ns: int, start: int, stop: int,
             end: int, spec: BucketSpec, read: Any = None, k: int = 0, assumed: State | None = None) -> Segment:
    """Bucketize the records from about ``start`` to about ``stop``; ``read[k]`` (shared
    memory, if given) counts the bytes read, for the main process's progress bar.
    ``assumed``: (pcapng) the section state to walk from (``None``: a classic pcap)."""
    _backend.use(backend)

    def progress(n: int) -> None:
        read[k] += n

    opener = PcapReader if assumed is None else PcapngReader
    with opener(path, decode=spec.decode, tunnels=spec.tunnels, progress=None if read is None else progress) as reader:
        if isinstance(reader, PcapngReader):
            assert assumed is not None
            if not first:
                reader.state = assumed
            begin = start if first else find_block_start(reader, start, stop, end, assumed)
            walk_from = begin
            assumed = reader.state
        elif first:
            begin = walk_from = start
        else:
            begin = walk_from = find_record_start(reader, start, stop, end, first_t_ns // 1_000_000_000)
        if begin is None or walk_from is None:
            return Segment(start=None)
        bucketer = _SegmentBucketer(spec, first_t_ns)
        try:
            for chunk in reader.chunks(walk_from, stop=stop, end=end):
                for _ in bucketer.feed(chunk):
                    pass
            last_sets = bucketer.open_sets()
            for _ in bucketer.finish():
                pass
        except CaptureError:
            return Segment(start=begin, failed=True)
    part = None
    if isinstance(reader, PcapngReader):
        assert assumed is not None
        if not first:  # (a range begins at its first block that is not skipped)
            begin = reader.first_block
        part = PcapngPart(assumed, reader.state, dict(reader.undecoded), reader.sections,
                          reader.byteorders, reader.interfaces)
    parts = bucketer.collector.parts
    if not parts:
        return Segment(start=begin, end=reader.end_offset, tail_bytes=reader.tail_bytes, pcapng=part)
    return Segment(
        start=begin, end=reader.end_offset, tail_bytes=reader.tail_bytes,
        packets=bucketer.packets, max_t_ns=bucketer.max_t_ns, last_t_ns=reader.last_t_ns,
        buckets=np.concatenate([p[0] for p in parts]), rows=np.concatenate([p[1] for p in parts]),
        first_no=np.concatenate([p[2] for p in parts]), first_off=np.concatenate([p[3] for p in parts]),
        first_sets=bucketer.first_sets or last_sets, last_sets=last_sets, pcapng=part,
    )


def splits_worthwhile(reader: CaptureReader, jobs: int) -> bool:
    """Whether the capture behind ``reader`` is a seekable file large enough to split: a
    classic pcap or pcapng, not compressed (compressed streams cannot be split)."""
    if isinstance(reader, PcapReader):
        readable = reader.header is not None
    else:
        readable = isinstance(reader, PcapngReader) and reader.format == "pcapng" and not reader.tail_bytes
    if jobs < 2 or not readable or not reader.owned or reader.compression is not None:
        return False
    try:
        size = os.path.getsize(reader.path)
    except OSError:
        return False
    return len(plan(size, jobs, _head(reader))) > 2


def _head(reader: CaptureReader) -> int:
    """Where the records of the capture behind ``reader`` may start."""
    return 0 if isinstance(reader, PcapngReader) else GLOBAL_HEADER_SIZE


def bucketize_parallel(reader: CaptureReader, bucketer: Bucketer, jobs: int,
                       progress: Callable[[int], object] | None = None) -> Iterator[np.ndarray]:
    """Rows of the capture behind ``reader`` (freshly opened), bucketized by ``jobs``
    processes onto ``bucketer`` (new).  Walks a range in this process wherever a worker's
    guess does not check out.  ``reader`` must be one :func:`splits_worthwhile` accepts."""
    assert isinstance(reader, (PcapReader, PcapngReader))
    size = os.path.getsize(reader.path)
    head = _head(reader)
    assumed: State | None = None  # (pcapng) the section state the workers walk from
    if isinstance(reader, PcapngReader):
        first = reader.first_packet()
        first_t_ns, assumed = (None, None) if first is None else first
    else:
        first_t_ns = reader.first_timestamp()
    if first_t_ns is None:  # (no packet, or a problem before the first: one range, here)
        reader.split_stats = {"ranges": 1, "spliced": 0, "walked_here": 1, "crashed": 0}
        yield from _walk_here(reader, bucketer, head, None, size)
        return
    bucketer.set_origin(first_t_ns)
    starts = plan(size, jobs, head)
    stats = reader.split_stats = {"ranges": len(starts) - 1, "spliced": 0, "walked_here": 0,
                                  "crashed": 0}
    import multiprocessing  # here, not at the top: one-process runs need not import it

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    # Plain processes and pipes, one per range: nothing to deadlock on when stopping early.
    workers = []
    bar = _RangeProgress(context, starts, progress)
    try:
        for k in range(len(starts) - 1):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_worker, daemon=True, args=(
                send, reader.path, _backend.name(), k == 0, first_t_ns, starts[k], starts[k + 1],
                size, bucketer.spec, bar.read, k, assumed))
            process.start()
            send.close()
            workers.append((process, receive))
        boundary = head
        for k, (process, receive) in enumerate(workers):
            stop = None if k == len(workers) - 1 else starts[k + 1]
            while not receive.poll(PROGRESS_INTERVAL_S):
                bar.tick()
            try:
                segment: Segment = receive.recv()
            except EOFError:  # the worker died: do its range here
                segment = Segment(start=None, failed=True, crashed="the worker process died")
            stats["crashed"] += segment.crashed is not None
            receive.close()
            process.join()
            # (a partial last record may hide a corrupt length: the policy decides, here)
            tail_to_check = segment.tail_bytes and reader.on_corrupt != "error"
            # (pcapng: walked in the section state in force at its start)
            same_state = segment.pcapng is None or segment.pcapng.assumed == getattr(reader, "state", None)
            if (segment.start == boundary and not segment.failed and not tail_to_check and same_state
                    and can_splice(bucketer, segment.buckets)):
                yield from splice(bucketer, segment)
                stats["spliced"] += 1
                bar.done(k, _walked_elsewhere(reader, segment))
                boundary = segment.end
            else:
                reader.reported_elsewhere(bar.done(k, 0))
                yield from _walk_here(reader, bucketer, boundary, stop, size)
                boundary = reader.end_offset
                stats["walked_here"] += 1
                if reader.stopped is not None:  # on_corrupt="stop": nothing after it counts
                    break
    finally:
        for process, receive in workers:
            if process.is_alive():
                process.terminate()
            process.join()
            receive.close()
        reader.close()


#: How often the main process looks at the workers' byte counts while it waits (seconds).
PROGRESS_INTERVAL_S = 0.1
#: A range's live count stops this far short of its planned length: its records end beyond
#: it or short of it by less than a record, and the final figure comes with the range's rows.
PROGRESS_MARGIN = 1 << 20


class _RangeProgress:
    """The progress callback fed with the bytes the workers read, while they read them.

    Each worker adds what it reads to its slot of ``read`` (shared memory, no lock: one
    writer per slot).  Until a range is done, at most its planned length less
    :data:`PROGRESS_MARGIN` is reported for it; :meth:`done` reports the rest.
    """

    def __init__(self, context: Any, starts: list[int], progress: Callable[[int], object] | None) -> None:
        self.progress = progress
        n = len(starts) - 1
        self.read = None if progress is None else context.RawArray("q", n)
        self.caps = [max(0, starts[k + 1] - starts[k] - PROGRESS_MARGIN) for k in range(n)]
        self.reported = [0] * n
        self.finished = [False] * n

    def tick(self) -> None:
        if self.progress is None or self.read is None:
            return
        for k, cap in enumerate(self.caps):
            if not self.finished[k]:
                now = min(self.read[k], cap)
                if now > self.reported[k]:
                    self.progress(now - self.reported[k])
                    self.reported[k] = now

    def done(self, k: int, total: int) -> int:
        """Range ``k`` is finished: report the rest of its ``total`` bytes (0 when this
        process reads the range again); returns what was reported for it before."""
        self.finished[k] = True
        if self.progress is not None and total > self.reported[k]:
            self.progress(total - self.reported[k])
        return self.reported[k]


def _walked_elsewhere(reader: PcapReader | PcapngReader, segment: Segment) -> int:
    """Account in ``reader`` for a range a worker walked; returns its bytes progress has not
    been told of."""
    if isinstance(reader, PcapReader):
        return reader.walked_elsewhere(segment.packets, segment.end, segment.tail_bytes, segment.last_t_ns)
    part = segment.pcapng
    assert part is not None
    return reader.walked_elsewhere(segment.packets, segment.end, segment.tail_bytes, segment.last_t_ns,
                                   undecoded=part.undecoded, state=part.state, sections=part.sections,
                                   byteorders=part.byteorders, interfaces=part.interfaces)


def _walk_here(reader: PcapReader | PcapngReader, bucketer: Bucketer, start: int, stop: int | None,
               end: int) -> Iterator[np.ndarray]:
    reader.packets = bucketer.packets
    for chunk in reader.chunks(start, stop=stop, end=end, close=False):
        yield from bucketer.feed(chunk)
