"""Decompression in a thread of its own, ahead of the walk.

The decompressors (zlib/ISA-L, zstd, xz, bzip2, lz4) release the GIL while they work, so a
thread that decompresses the next pieces while the main thread walks and bucketizes the last
ones makes a compressed capture cost about what its decompression costs alone.

:class:`Prefetched` wraps a decompressed stream (``fastpcap.compression``): a daemon thread,
started at the first read, takes its pieces (at most 4 MiB each) into a queue of
:data:`DEPTH` pieces, so at most ``DEPTH + 2`` pieces are in memory, however large the
capture.  What the readers see does not change: the same bytes, and an error (corrupt data,
a failed read) raised at the same place, after every byte that came before it.  The
compressed bytes each piece took from the file are handed to ``progress`` in the main
thread, when the piece is taken.  :meth:`Prefetched.close` stops the thread and waits for it
before the file is closed (a read of a closed file descriptor in another thread could read
whatever file got the number next); a reader dropped unclosed stops it when collected (the
thread holds no reference to it).

``FASTPCAP_NO_PREFETCH=1`` in the environment decompresses in the main thread instead (for
comparisons: ``benchmarks/compressed.py`` times both); so does a batch that processes several
captures at a time (:func:`allowed`: every CPU is busy then, and the thread would only add
its cost).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from .compression import Pieces, can_seek

#: Pieces decompressed ahead of the one being read.
DEPTH = 2
#: How often a thread blocked on a full queue looks whether it should stop (seconds).
_POLL_S = 0.05
#: What the thread hands over: a piece (its first ``n`` bytes), the compressed bytes read
#: for it, the error met.
_Item = tuple["bytes | bytearray", int, int, "BaseException | None"]


_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("fastpcap_prefetch", default=True)


def enabled() -> bool:
    """Whether compressed captures are decompressed in a thread (``FASTPCAP_NO_PREFETCH``
    unset, and not inside ``allowed(False)``)."""
    return _allowed.get() and not os.environ.get("FASTPCAP_NO_PREFETCH")


@contextlib.contextmanager
def allowed(allow: bool) -> Iterator[None]:
    """While inside (in this thread or task), captures opened use a thread only if ``allow``."""
    token = _allowed.set(allow)
    try:
        yield
    finally:
        _allowed.reset(token)


class CountingSource:
    """The compressed file as the decompressor reads it: counts the bytes taken, for the
    piece they went into (the decompressing thread adds, the main thread reports)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.taken = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.taken += len(data)
        return data

    def readinto(self, view: Any) -> int:
        n = self.raw.readinto(view)  # type: ignore[attr-defined]
        self.taken += n or 0
        return n or 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def seekable(self) -> bool:
        return can_seek(self.raw)

    def take(self) -> int:
        """The bytes read since the last call."""
        n, self.taken = self.taken, 0
        return n

    def close(self) -> None:
        self.raw.close()


class Prefetched(Pieces):
    """A decompressed stream (``read``/``readinto``) whose pieces a thread decompresses ahead.

    ``stream``: the decompressed stream (its ``read_piece()`` gives the next piece, ``b""`` at
    the end); ``source``: the :class:`CountingSource` it reads the compressed bytes from;
    ``progress``: told, in the reading thread, of the compressed bytes behind each piece;
    ``close_source``: whether :meth:`close` closes the file too (the reader opened it).
    ``read()`` of everything hands over the bytes before any error first (``Pieces``).
    """

    DEFERRED = (Exception,)

    def __init__(self, stream: Any, source: CountingSource, progress: Callable[[int], object] | None,
                 *, close_source: bool) -> None:
        self._stream = stream
        self._source = source
        self._progress = progress
        self._close_source = close_source
        self._queue: queue.Queue[_Item] = queue.Queue(DEPTH)
        # Buffers read, for the thread to fill again (a stream that decompresses into a
        # buffer: no piece made, and its memory touched, for every 4 MiB).
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._buffer: bytearray | None = None  # the one being read
        self._stop = threading.Event()
        # A reader dropped without being closed stops the thread too (which holds no
        # reference to this object, so that it can be collected).
        weakref.finalize(self, self._stop.set)
        self._thread: threading.Thread | None = None
        self._pending = memoryview(b"")
        self._error: BaseException | None = None
        self._ended = False
        self._closed = False

    # -- the reading thread ---------------------------------------------------------------
    def read_piece(self) -> memoryview:
        if self._error is not None:
            raise self._error
        if self._ended:
            return memoryview(b"")
        if self._closed:
            raise ValueError("read of a closed capture")
        if self._thread is None:
            self._thread = threading.Thread(target=_decompress, name="fastpcap-decompress", daemon=True,
                                            args=(self._stream, self._source, self._queue, self._free, self._stop))
            self._thread.start()
        if self._buffer is not None:  # read: the thread may fill it again
            self._free.put(self._buffer)
            self._buffer = None
        piece, n, taken, error = self._queue.get()
        if taken and self._progress is not None:
            self._progress(taken)
        if error is not None:
            self._error = error
            self._join()
            raise error
        if not n:
            self._ended = True
            self._join()
            return memoryview(b"")
        if isinstance(piece, bytearray):
            self._buffer = piece
        return memoryview(piece)[:n]

    def _join(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._stop.set()
            while thread.is_alive():
                try:  # make room, in case it waits to put a piece
                    self._queue.get_nowait()
                except queue.Empty:
                    thread.join(_POLL_S)

    def close(self) -> None:
        """Stop the thread (waiting for it), then close the file if it is ours."""
        if self._closed:
            return
        self._closed = True
        self._join()
        self._pending = memoryview(b"")
        if self._close_source:
            self._source.close()


# -- the decompressing thread -------------------------------------------------------------

def _decompress(stream: Any, source: CountingSource, pieces: queue.Queue[_Item],
                free: queue.SimpleQueue[bytearray], stop: threading.Event) -> None:
    """The thread: ``stream``'s pieces into ``pieces`` until the end, an error, or ``stop``;
    into buffers (``free`` ones, else new) where the stream decompresses into a buffer."""
    try:
        size = stream.buffer_size()
        while not stop.is_set():
            piece: bytes | bytearray
            if size:
                try:
                    piece = free.get_nowait()
                except queue.Empty:
                    piece = bytearray(size)
                n = stream.readinto(piece)
            else:
                piece = stream.read_piece()
                n = len(piece)
            if not _put(pieces, (piece, n, source.take(), None), stop) or not n:
                return
    except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, raised there
        _put(pieces, (b"", 0, source.take(), exc), stop)


def _put(pieces: queue.Queue[_Item], item: _Item, stop: threading.Event) -> bool:
    """Queue ``item`` once there is room; False if told to stop first."""
    while not stop.is_set():
        try:
            pieces.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False
