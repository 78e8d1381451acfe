"""Opening any capture: compression and container told apart by their first bytes.

:func:`open_capture` is libpcap's ``savefile.c``: it looks at the first bytes, puts a
decompressor in front of the file if they are a compression's magic, and hands the stream to
the reader of its container (:class:`~fastpcap.pcap.PcapReader` or
:class:`~fastpcap.pcapng.PcapngReader`).  :func:`iter_packets` and :func:`read_packets` are
the packet-level API on top.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

import numpy as np

from . import _backend, prefetch
from ._format import PCAP_MAGICS, PCAPNG_MAGIC
from .compression import SNIFF, CorruptStream, can_seek, detect, open_decompressed, started_compression
from .errors import unreadable
from .pcap import PcapReader
from .pcapng import PcapngReader, is_prefix
from .reader import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CHUNK_PACKETS,
    CaptureReader,
    concatenate,
    corrupt_stream_error,
    is_stream,
    open_file,
)


def open_capture(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_packets: int = DEFAULT_CHUNK_PACKETS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Callable[[int], object] | None = None,
    decode: str = "reference",
    on_corrupt: str = "error",
    tunnels: str = "outer",
) -> CaptureReader:
    """Open any capture fastpcap reads: classic pcap or pcapng, plain or compressed (gzip,
    zstd, xz, bzip2, lz4), told apart by their first bytes.

    ``source`` is a path or an open binary stream.  Raises :class:`~fastpcap.CaptureError`
    for what is not a capture or cannot be read.  ``progress``, if given, is called with the
    number of bytes of the file read each time it reads.  ``decode="extended"`` gives rows of
    ``PACKET6_DTYPE`` with the extended decode (docs/data-model.md); with it,
    ``tunnels="inner"`` counts the innermost packet of a tunnel.  ``on_corrupt``: what a
    corrupt record does, ``"error"`` (raise), ``"stop"`` (end the reading there) or
    ``"resync"`` (read on from the next plausible record), each with a
    :class:`~fastpcap.CorruptWarning` (docs/data-model.md, "Corrupt records").
    """
    raw: BinaryIO
    if is_stream(source):
        raw = cast(BinaryIO, source)
        name = str(getattr(source, "name", "<stream>"))
        owned = False
    else:
        name = os.fspath(source)  # type: ignore[arg-type]
        raw = open_file(name)
        owned = True
    closer: Any = raw if owned else None
    try:
        stream = _Sniffer(raw, name, progress)
        prefix = stream.peek(SNIFF)
        compression = detect(prefix)
        started = started_compression(prefix)
        if compression is None and started is not None:
            # The whole file is the start of a compressed stream (a compressor that has just
            # begun writing): like a capture that has just begun, it holds no packets yet.
            stream.start_counting()
            compression, stream = started, _Sniffer(io.BytesIO(b""), name, None)  # type: ignore[arg-type]
        elif compression is not None:
            if prefetch.enabled():  # decompressed by a thread, which counts the bytes it reads
                counting = prefetch.CountingSource(stream)  # type: ignore[arg-type]
                ahead = prefetch.Prefetched(open_decompressed(counting, compression), counting,  # type: ignore[arg-type]
                                            progress, close_source=owned)
                closer = ahead  # stops the thread, then closes the file if it is ours
                stream = _Sniffer(ahead, name, None)  # type: ignore[arg-type]
            else:
                stream.start_counting()
                stream = _Sniffer(open_decompressed(stream, compression), name, None)  # type: ignore[arg-type]
        head = stream.peek(4)
        kind: type[CaptureReader]
        if head and head[:4] == PCAPNG_MAGIC[: len(head)] and (len(head) == 4 or is_prefix(head)):
            kind = PcapngReader
        else:
            kind = PcapReader
        # An uncompressed capture's reader counts the bytes it reads, from the first (each
        # once, whatever it re-reads); a compressed one's are counted as they leave the file.
        # Closing the reader closes the file under the decompressor too, if it opened it.
        return kind(stream, chunk_packets=chunk_packets, block_size=block_size,  # type: ignore[arg-type]
                    name=name, compression=compression, decode=decode, closer=closer,
                    progress=progress if compression is None else None, on_corrupt=on_corrupt,
                    tunnels=tunnels)
    except BaseException:
        if closer is not None:
            closer.close()
        raise


def sniff(path: str | os.PathLike[str]) -> bool:
    """Whether a file's first bytes are a capture's: a classic pcap or pcapng magic, plain or
    inside any compression fastpcap reads.  A compressed file whose first bytes cannot be
    decompressed, or a file that cannot be read, counts as a capture: reading it will say
    what is wrong, where ignoring it would hide it."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF)
            kind = detect(head)
            if kind is not None:
                f.seek(0)
                head = open_decompressed(f, kind).read(4)  # type: ignore[arg-type]
    except (OSError, CorruptStream):
        return True
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


class _Sniffer:
    """A stream whose first bytes can be looked at before it is read.  After
    :meth:`start_counting`, ``progress`` is told of every byte read from ``raw`` (peeked
    ones included)."""

    def __init__(self, raw: BinaryIO, name: str, progress: Callable[[int], object] | None) -> None:
        self.raw = raw
        self.name = name
        self._progress: Callable[[int], object] | None = None
        self._will_count = progress
        self._ahead = b""

    def start_counting(self) -> None:
        self._progress = self._will_count
        if self._progress is not None and self._ahead:
            self._progress(len(self._ahead))

    def peek(self, size: int) -> bytes:
        while len(self._ahead) < size:
            try:
                more = self.raw.read(size - len(self._ahead))
            except CorruptStream as exc:
                raise corrupt_stream_error(self.name, exc) from None
            except OSError as exc:
                raise unreadable(self.name, exc, len(self._ahead)) from None
            if not more:
                break
            self._ahead += more
        return self._ahead[:size]

    def readinto(self, view) -> int:  # type: ignore[no-untyped-def]
        if self._ahead:  # counted, if at all, by start_counting
            n = min(len(view), len(self._ahead))
            view[:n] = self._ahead[:n]
            self._ahead = self._ahead[n:]
            return n
        n = self.raw.readinto(view)  # type: ignore[attr-defined]
        if self._progress is not None and n:
            self._progress(n)
        return n

    def read(self, size: int = -1) -> bytes:
        if self._ahead:  # counted, if at all, by start_counting
            data = self._ahead if size < 0 else self._ahead[:size]
            self._ahead = self._ahead[len(data):]
            return data
        data = self.raw.read(size)
        if self._progress is not None and data:
            self._progress(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._ahead = b""
        return self.raw.seek(offset, whence)

    def seekable(self) -> bool:
        return can_seek(self.raw)

    def close(self) -> None:
        self.raw.close()


def iter_packets(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_packets: int = DEFAULT_CHUNK_PACKETS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    decode: str = "reference",
    on_corrupt: str = "error",
    tunnels: str = "outer",
) -> Iterator[np.ndarray]:
    """Yield the packets of a capture as chunks of rows of ``PACKET_DTYPE``.

    Any capture :func:`open_capture` reads; ``path`` may also be an open binary stream
    (stdin, a pipe), read to its end.

    Each chunk holds at most ``chunk_packets`` rows and is a new array the caller may keep.
    Raises :class:`~fastpcap.CaptureError` for a file that is not a capture, a corrupt
    record (unless ``on_corrupt``, as in :func:`open_capture`, says otherwise), or an
    unreadable path.  ``decode``, ``tunnels``: as in :func:`open_capture`.  See
    ``docs/data-model.md`` for the fields.
    """
    with open_capture(path, chunk_packets=chunk_packets, block_size=block_size, decode=decode,
                      on_corrupt=on_corrupt, tunnels=tunnels) as reader:
        yield from reader


def read_packets(path: str | os.PathLike[str] | BinaryIO, *, decode: str = "reference",
                 on_corrupt: str = "error", tunnels: str = "outer") -> np.ndarray:
    """All packets of a capture in one array of ``PACKET_DTYPE``.

    Holds the whole capture in memory (48 bytes per packet); use :func:`iter_packets` to
    stream a large one.
    """
    impl = _backend.impl
    dtype = impl.PACKET6_DTYPE if decode == "extended" else impl.PACKET_DTYPE
    return concatenate(list(iter_packets(path, decode=decode, on_corrupt=on_corrupt, tunnels=tunnels)), dtype)
