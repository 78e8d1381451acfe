"""The Python API: packets to rows, and the drop-in ``bucketize``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import BinaryIO, Union, cast

import numpy as np

from ._output import open_output
from .buckets import ROW_DTYPE, Bucketer
from .errors import GapWarning, LinkTypeWarning
from .jsonl import write_rows
from .parallel import bucketize_parallel, splits_worthwhile, usable_jobs
from .reader import DECODES, CaptureReader, concatenate, is_stream, linktype_name, open_capture

PathLike = Union[str, "os.PathLike[str]"]
#: A capture path or open binary stream, an array of packets (``PACKET_DTYPE``), or an
#: iterable of such arrays.
PacketSource = Union[PathLike, BinaryIO, np.ndarray, Iterable[np.ndarray]]


def iter_rows(
    source: PacketSource,
    *,
    bucket_ms: int = 100,
    bridge_ip: str = "10.200.0.1",
    t_mono_origin_ns: int = 0,
    max_gap_s: int | float | str | None = 3600,
    jobs: int | None = 1,
    progress: Callable[[int], object] | None = None,
    decode: str = "reference",
    host_ips: Sequence[str] | None = None,
    size: str = "captured",
) -> Generator[np.ndarray, None, None]:
    """Bucketize ``source`` into rows (``ROW_DTYPE``), streamed as arrays of rows.

    ``source`` is a capture path or an open binary stream of one (read in chunks, so memory
    stays bounded), an array of packets, or an iterable of arrays of packets in capture order.
    ``jobs`` processes share a large capture file (``None``: one per CPU); the rows are the
    same as with one.  Arguments and the capture header are checked now; a corrupt record
    raises :class:`~fastpcap.CaptureError` when the iteration reaches it.  At the end, one
    :class:`~fastpcap.GapWarning` if the gap cap cut anything and one
    :class:`~fastpcap.LinkTypeWarning` if frames were counted by size only.  ``progress``, if
    given, is called with the number of bytes read each time it reads.

    ``decode="extended"`` decodes VLAN tags, IPv6 and fragments (docs/data-model.md: it
    changes rows of captures the reference reads); ``host_ips`` lists the addresses whose
    packets are "out" (IPv4 or IPv6; default: ``bridge_ip``); ``size="wire"`` counts original
    lengths instead of captured ones.
    """
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {', '.join(DECODES)}, not {decode!r}")
    bucketer = Bucketer(bucket_ms=bucket_ms, bridge_ip=bridge_ip, t_mono_origin_ns=t_mono_origin_ns,
                        max_gap_s=max_gap_s, host_ips=host_ips, size=size)  # checked before opening
    if isinstance(source, (str, os.PathLike)) or is_stream(source):
        reader = open_capture(cast("PathLike | BinaryIO", source), progress=progress, decode=decode)
        if splits_worthwhile(reader, usable_jobs(jobs)):
            blocks = bucketize_parallel(reader, bucketer, usable_jobs(jobs), progress)
        else:
            blocks = _feed(reader, bucketer)
        return _rows(blocks, bucketer, reader.path, reader)
    chunks = (source,) if isinstance(source, np.ndarray) else cast("Iterable[np.ndarray]", source)
    return _rows(_feed(chunks, bucketer), bucketer, None, None)


def _feed(chunks: Iterable[np.ndarray], bucketer: Bucketer) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield from bucketer.feed(chunk)


def _rows(blocks: Iterator[np.ndarray], bucketer: Bucketer, path: str | None,
          reader: CaptureReader | None) -> Generator[np.ndarray, None, None]:
    try:
        yield from blocks
        yield from bucketer.finish()
    finally:
        if reader is not None:
            reader.close()
    where = "<packets>" if path is None else path
    gaps = bucketer.gaps
    if gaps.gaps_cut:
        warnings.warn(GapWarning(
            f"{where}: the gap cap of {_seconds(bucketer.max_gap_ns)} s cut {gaps.gaps_cut} "
            f"gap(s) holding {gaps.rows_cut} empty {bucketer.bucket_ms} ms bucket(s); the first "
            f"one ends at packet {gaps.first_packet} (byte offset {gaps.first_offset}); "
            "max_gap_s=None (--max-gap none) writes them all"), stacklevel=2)
    if reader is not None and reader.undecoded:
        kinds = ", ".join(f"{count} frame(s) of link type {linktype_name(lt)}"
                          for lt, count in sorted(reader.undecoded.items()))
        warnings.warn(LinkTypeWarning(
            f"{where}: {kinds} counted by size only (fastpcap does not decode "
            f"{'this link type' if len(reader.undecoded) == 1 else 'these link types'})"), stacklevel=2)


def _seconds(ns: int | None) -> str:
    whole, frac = divmod(ns or 0, 1_000_000_000)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") if frac else str(whole)


def bucket_rows(
    source: PacketSource,
    *,
    bucket_ms: int = 100,
    bridge_ip: str = "10.200.0.1",
    t_mono_origin_ns: int = 0,
    max_gap_s: int | float | str | None = 3600,
    jobs: int | None = 1,
    decode: str = "reference",
    host_ips: Sequence[str] | None = None,
    size: str = "captured",
) -> np.ndarray:
    """All rows of ``source`` in one array of ``ROW_DTYPE`` (see :func:`iter_rows`)."""
    blocks = list(iter_rows(source, bucket_ms=bucket_ms, bridge_ip=bridge_ip, jobs=jobs,
                            t_mono_origin_ns=t_mono_origin_ns, max_gap_s=max_gap_s,
                            decode=decode, host_ips=host_ips, size=size))
    return concatenate(blocks, ROW_DTYPE)


def write_jsonl(
    source: PacketSource,
    output: PathLike | None,
    *,
    append: bool = False,
    bucket_ms: int = 100,
    bridge_ip: str = "10.200.0.1",
    t_mono_origin_ns: int = 0,
    max_gap_s: int | float | str | None = 3600,
    jobs: int | None = 1,
    progress: Callable[[int], object] | None = None,
    decode: str = "reference",
    host_ips: Sequence[str] | None = None,
    size: str = "captured",
) -> int:
    """Bucketize ``source`` and write its rows as JSONL; returns the number of rows written.

    ``output`` ``None`` or ``"-"`` is stdout; ``jobs``, ``decode``, ``host_ips`` and ``size``
    as in :func:`iter_rows`.  Without ``append`` the file is replaced
    atomically at the end of a successful run; with it, rows are appended and a failed run
    truncates the file back.  Either way a failed run leaves the previous contents intact.
    """
    rows = iter_rows(source, bucket_ms=bucket_ms, bridge_ip=bridge_ip, jobs=jobs,
                     t_mono_origin_ns=t_mono_origin_ns, max_gap_s=max_gap_s, progress=progress,
                     decode=decode, host_ips=host_ips, size=size)
    try:
        with open_output(output, append=append) as out:
            return write_rows(rows, out)
    finally:
        rows.close()


def bucketize(
    pcap_path: PathLike,
    netflow_path: PathLike,
    *,
    bucket_ms: int = 100,
    t_mono_origin_ns: int = 0,
    bridge_ip: str = "10.200.0.1",
    max_gap_s: int | float | None = 3600,
) -> int:
    """Drop-in replacement for the reference collector's ``bucketize`` (spec section 6).

    Reads the capture at ``pcap_path`` and **appends** one JSONL row per ``bucket_ms`` bucket
    to ``netflow_path``, creating its parent folders; returns the number of rows written.  A
    missing capture returns 0 and creates nothing.  A capture that cannot be read raises
    :class:`~fastpcap.CaptureError` and leaves ``netflow_path`` as it was.
    """
    if not os.path.exists(pcap_path):
        return 0
    return write_jsonl(pcap_path, netflow_path, append=True, bucket_ms=bucket_ms,
                       bridge_ip=bridge_ip, t_mono_origin_ns=t_mono_origin_ns, max_gap_s=max_gap_s)
