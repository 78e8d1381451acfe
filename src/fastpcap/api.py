"""The Python API: packets to rows, and the drop-in ``bucketize``."""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO, Union, cast

import numpy as np

from ._format import linktype_name
from ._output import check_not_input, open_output
from .buckets import ROW_DTYPE, Bucketer
from .capture import open_capture
from .classes import with_classes
from .errors import CaptureError, CorruptWarning, GapWarning, HostAddressWarning, LinkTypeWarning
from .jsonl import write_rows
from .options import BucketSpec, Seconds
from .parallel import bucketize_parallel, splits_worthwhile, usable_jobs
from .reader import CaptureReader, concatenate, is_stream

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .options import BucketOptions, Unpack

PathLike = Union[str, "os.PathLike[str]"]
#: A capture path or open binary stream, an array of packets (``PACKET_DTYPE``), or an
#: iterable of such arrays.
PacketSource = Union[PathLike, BinaryIO, np.ndarray, Iterable[np.ndarray]]


def iter_rows(
    source: PacketSource,
    *,
    spec: BucketSpec | None = None,
    jobs: int | None = 1,
    progress: Callable[[int], object] | None = None,
    **options: Unpack[BucketOptions],
) -> Generator[np.ndarray, None, None]:
    """Bucketize ``source`` into rows (``ROW_DTYPE``), streamed as arrays of rows.

    ``source`` is a capture path or an open binary stream of one (read in chunks, so memory
    stays bounded), an array of packets, or an iterable of arrays of packets in capture order.
    The bucket options (``bucket_ms``, ``bridge_ip``, ``t_mono_origin_ns``, ``max_gap_s``,
    ``host_ips``, ``size``, ``decode``, ``tunnels``, ``on_corrupt``: see :class:`~fastpcap.BucketSpec`) are
    keywords, or a ``spec`` (keywords then replace its values).  ``jobs`` processes share a
    large capture file (``None``: one per CPU); the rows are the same as with one.  Arguments
    and the capture header are checked now; a corrupt record raises
    :class:`~fastpcap.CaptureError` when the iteration reaches it, or with ``on_corrupt``
    ``"stop"`` ends the rows there, or with ``"resync"`` is skipped, each with a
    :class:`~fastpcap.CorruptWarning`.  At the end, one :class:`~fastpcap.GapWarning` if the
    gap cap cut anything, one :class:`~fastpcap.LinkTypeWarning` if frames were counted by
    size only, and one :class:`~fastpcap.CorruptWarning` with the bytes skipped in all if a
    resync skipped any.  ``progress``, if given, is called with the number of bytes read each
    time it reads.
    """
    spec = BucketSpec.make(spec, **options)
    _refuse_many(source)
    bucketer = Bucketer(spec)
    hosts = HostCheck(spec)
    if isinstance(source, (str, os.PathLike)) or is_stream(source):
        reader = open_capture(cast("PathLike | BinaryIO", source), progress=progress, decode=spec.decode,
                              on_corrupt=spec.on_corrupt, tunnels=spec.tunnels)
        if splits_worthwhile(reader, usable_jobs(jobs)):
            blocks = bucketize_parallel(reader, bucketer, usable_jobs(jobs), progress)
        else:
            blocks = _feed(reader, bucketer)
        return _rows(blocks, bucketer, reader.path, reader, hosts)
    chunks = (source,) if isinstance(source, np.ndarray) else cast("Iterable[np.ndarray]", source)
    # Packets from elsewhere: their class bits are recomputed (the walks set them as they decode).
    return _rows(_feed(map(with_classes, chunks), bucketer), bucketer, None, None, hosts)


def _refuse_many(source: object) -> None:
    """A list of paths is an archive's job, not one capture's."""
    if isinstance(source, (list, tuple)) and source and all(
            isinstance(s, (str, bytes, os.PathLike)) for s in source):
        raise TypeError("source must be one capture (a path, a stream or packets), not a list of paths; "
                        "fastpcap.bucketize_many() processes many captures")


def _feed(chunks: Iterable[np.ndarray], bucketer: Bucketer) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield from bucketer.feed(chunk)


class HostCheck:
    """Whether a capture had IP traffic but no packet from the host addresses, from its rows
    (a destination is counted for every IP packet; "out" only for the hosts' packets)."""

    def __init__(self, spec: BucketSpec) -> None:
        self.hosts = ", ".join(spec.host_ips) if spec.host_ips is not None else spec.bridge_ip
        self.ip = self.out = False

    def see(self, rows: np.ndarray) -> np.ndarray:
        if not self.out and len(rows):
            self.ip = self.ip or bool(rows["unique_dst_ips"].any())
            self.out = bool(rows["pkts_out"].any())
        return rows

    def warning(self, where: str) -> HostAddressWarning | None:
        if not self.ip or self.out:
            return None
        return HostAddressWarning(
            f"{where}: no IP packet came from the host address {self.hosts}, so every row counts 0 "
            "packets out; if the capture's own address is another, give it with --bridge-ip or "
            "--host-ip (bridge_ip=, host_ips=)")


def _rows(blocks: Iterator[np.ndarray], bucketer: Bucketer, path: str | None,
          reader: CaptureReader | None, hosts: HostCheck) -> Generator[np.ndarray, None, None]:
    try:
        for block in itertools.chain(blocks, bucketer.finish()):
            yield hosts.see(block)
    except CaptureError as exc:
        if exc.path is None and reader is not None and exc.offset is not None:  # the bucket rule's error here
            raise reader.error(exc.offset, exc.problem) from None
        raise
    finally:
        if reader is not None:
            reader.close()
    warn_at_end(bucketer, path, reader, hosts)


def warn_at_end(bucketer: Bucketer, path: str | None, reader: CaptureReader | None,
                hosts: HostCheck | None = None) -> None:
    """The warnings of a finished run: one if the gap cap cut anything, one if frames were
    counted by size only, one if ``hosts`` saw IP traffic but none from the host addresses."""
    where = "<packets>" if path is None else path
    gaps = bucketer.gaps
    if gaps.gaps_cut:
        warnings.warn(GapWarning(
            f"{where}: the gap cap of {_seconds(bucketer.max_gap_ns)} s cut {gaps.gaps_cut} "
            f"gap(s) holding {gaps.rows_cut} empty {bucketer.bucket_ms} ms bucket(s); the first "
            f"one ends at packet {gaps.first_packet} (byte offset {gaps.first_offset}); "
            "max_gap_s=None (--max-gap none) writes them all"), stacklevel=3)
    if reader is not None and reader.undecoded:
        kinds = ", ".join(f"{count} frame(s) of link type {linktype_name(lt)}"
                          for lt, count in sorted(reader.undecoded.items()))
        warnings.warn(LinkTypeWarning(
            f"{where}: {kinds} counted by size only (fastpcap does not decode "
            f"{'this link type' if len(reader.undecoded) == 1 else 'these link types'})"), stacklevel=3)
    if hosts is not None and (warning := hosts.warning(where)) is not None:
        warnings.warn(warning, stacklevel=3)
    if reader is not None and reader.skipped_regions:
        regions, skipped = reader.skipped_regions, reader.skipped_bytes
        shown = f" (the first {len(reader.skipped)} reported one by one)" if len(reader.skipped) < regions else ""
        warnings.warn(CorruptWarning(
            f"{where}: skipped {regions} corrupt region(s), {skipped} byte(s) in all{shown} (--on-corrupt resync)",
            kind="summary", skipped_bytes=skipped, regions=regions), stacklevel=3)


def _seconds(ns: int | None) -> str:
    whole, frac = divmod(ns or 0, 1_000_000_000)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") if frac else str(whole)


def bucket_rows(source: PacketSource, *, spec: BucketSpec | None = None, jobs: int | None = 1,
                **options: Unpack[BucketOptions]) -> np.ndarray:
    """All rows of ``source`` in one array of ``ROW_DTYPE`` (see :func:`iter_rows`)."""
    return concatenate(list(iter_rows(source, spec=spec, jobs=jobs, **options)), ROW_DTYPE)


def write_jsonl(
    source: PacketSource,
    output: PathLike | None,
    *,
    append: bool = False,
    spec: BucketSpec | None = None,
    jobs: int | None = 1,
    progress: Callable[[int], object] | None = None,
    compression: str | None = "auto",
    **options: Unpack[BucketOptions],
) -> int:
    """Bucketize ``source`` and write its rows as JSONL; returns the number of rows written.

    ``output`` ``None`` or ``"-"`` is stdout; the bucket options, ``spec``, ``jobs`` and
    ``progress`` as in :func:`iter_rows`.  Without ``append`` a file is replaced atomically
    at the end of a successful run; with it, rows are appended and a failed run truncates
    the file back.  Either way a failed run leaves the previous contents intact.  A
    character device, FIFO or socket is written through, never replaced; an output that is
    the capture being read is refused (``OSError``) before anything is read.  ``compression``:
    ``"auto"`` compresses as the output's name says (``rows.jsonl.gz``: gzip; also ``.zst``,
    ``.xz``, ``.bz2``, ``.lz4``), ``None`` never, or a compression's name.
    """
    spec = BucketSpec.make(spec, **options)
    inputs = [source] if isinstance(source, (str, os.PathLike)) or is_stream(source) else []
    check_not_input(output, inputs)
    rows = iter_rows(source, spec=spec, jobs=jobs, progress=progress)
    try:
        with open_output(output, append=append, inputs=inputs, compression=compression) as out:
            return write_rows(rows, out)
    finally:
        rows.close()


def write_parquet(
    source: PacketSource,
    output: PathLike | None,
    *,
    append: bool = False,
    spec: BucketSpec | None = None,
    jobs: int | None = 1,
    progress: Callable[[int], object] | None = None,
    **options: Unpack[BucketOptions],
) -> int:
    """Bucketize ``source`` and write its rows as one Parquet file (docs/data-model.md,
    "Parquet"); returns the number of rows.  As :func:`write_jsonl`, atomically; a Parquet
    file cannot be appended to (``append`` is refused).  Needs pyarrow
    (``pip install 'fastpcap[parquet]'``)."""
    from .parquet import metadata, require
    from .parquet import write_parquet as write

    if append:
        raise ValueError("a Parquet file cannot be appended to; write a new one (or use JSONL)")
    require()
    spec = BucketSpec.make(spec, **options)
    inputs = [source] if isinstance(source, (str, os.PathLike)) or is_stream(source) else []
    check_not_input(output, inputs)
    rows = iter_rows(source, spec=spec, jobs=jobs, progress=progress)
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", None)
    try:
        with open_output(output, inputs=inputs, compression=None) as out:
            return write(rows, out, metadata(spec, None if name is None else str(name)))
    finally:
        rows.close()


def bucket_table(source: PacketSource, *, spec: BucketSpec | None = None, jobs: int | None = 1,
                 **options: Unpack[BucketOptions]) -> pa.Table:
    """The rows of ``source`` as a ``pyarrow.Table``: the JSONL's keys as columns, in its
    order (int64 counts, string ``source``, bool ``available_in_deployment``), with the
    Parquet files' metadata.  Needs pyarrow (``pip install 'fastpcap[parquet]'``)."""
    from .parquet import metadata, require, table

    require()
    spec = BucketSpec.make(spec, **options)
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    rows = iter_rows(source, spec=spec, jobs=jobs)
    try:
        return table(rows, metadata(spec, None if name is None else str(name)))
    finally:
        rows.close()


def bucket_frame(source: PacketSource, *, spec: BucketSpec | None = None, jobs: int | None = 1,
                 **options: Unpack[BucketOptions]) -> pd.DataFrame:
    """The rows of ``source`` as a ``pandas.DataFrame`` (columns as :func:`bucket_table`'s).
    Needs pandas and pyarrow (``pip install 'fastpcap[pandas]'``)."""
    from .parquet import require

    require("pandas", "pandas")
    return bucket_table(source, spec=spec, jobs=jobs, **options).to_pandas()


def bucketize(
    pcap_path: PathLike,
    netflow_path: PathLike,
    *,
    bucket_ms: int = BucketSpec.bucket_ms,
    t_mono_origin_ns: int = BucketSpec.t_mono_origin_ns,
    bridge_ip: str = BucketSpec.bridge_ip,
    max_gap_s: Seconds = BucketSpec.max_gap_s,
) -> int:
    """Drop-in replacement for the reference collector's ``bucketize`` (docs/data-model.md).

    Reads the capture at ``pcap_path`` and **appends** one JSONL row per ``bucket_ms`` bucket
    to ``netflow_path``, creating its parent folders; returns the number of rows written.  A
    missing capture returns 0 and creates nothing.  A capture that cannot be read raises
    :class:`~fastpcap.CaptureError` and leaves ``netflow_path`` as it was.
    """
    if not os.path.exists(pcap_path):
        return 0
    return write_jsonl(pcap_path, netflow_path, append=True, bucket_ms=bucket_ms,
                       bridge_ip=bridge_ip, t_mono_origin_ns=t_mono_origin_ns, max_gap_s=max_gap_s)
