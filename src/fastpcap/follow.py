"""Following a capture while it is written: each bucket's row as soon as the bucket closes.

A classic pcap that ``tcpdump -U`` is writing (or a pcapng that ``dumpcap`` or ``tshark -w``
is writing) is read again whenever it grows, from the end of its last complete record or
block (a partial last one is simply not there yet; pcapng: in the section and with the
interfaces read so far), and its packets
go through the same :class:`~fastpcap.Bucketer` as a whole capture's, so the rows are the
batch rows of the finished file, whatever the timing.  The file may not exist yet, or hold
only part of its header.  Following ends when a given process exits or a stop is asked
for; then the file is read to its end and the last bucket written.

With an *idle close* (``idle_close_ms``), the open bucket is also written once the wall
clock is that long past its end without a packet of a later bucket.  The bucket rule would
put a packet that comes after that with an older time into that bucket (the one holding the
running maximum of times); it is written already, so the packet counts in the next bucket
instead, as if the running maximum had reached the next bucket's start when the row was
written, and one :class:`~fastpcap.errors.LatePacketWarning` at the end counts such packets.
With times in order (a live capture on one interface) nothing changes.  This is
docs/data-model.md, "Following a capture".
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, BinaryIO, Union

import numpy as np

from ._format import GLOBAL_HEADER_SIZE
from ._output import open_live_output
from .api import HostCheck, warn_at_end
from .buckets import Bucketer
from .capture import open_capture
from .errors import CaptureError, LatePacketWarning, unreadable
from .jsonl import format_rows
from .options import BucketSpec
from .pcap import PcapReader
from .pcapng import PcapngReader

if TYPE_CHECKING:
    from .options import BucketOptions, Unpack

PathLike = Union[str, "os.PathLike[str]"]
#: How often the file is looked at when nothing happens (seconds).
DEFAULT_POLL_S = 0.05
#: Bytes read at a time (smaller than a whole capture's reads: a live file grows a little at a time).
_BLOCK_SIZE = 1 << 20
#: What ends a follow besides a process: an event, or a function saying whether to stop.
Stop = Union[threading.Event, Callable[[], bool]]


def follow_rows(
    path: PathLike,
    *,
    pid: int | None = None,
    idle_close_ms: int | None = None,
    stop: Stop | None = None,
    poll_s: float = DEFAULT_POLL_S,
    spec: BucketSpec | None = None,
    **options: Unpack[BucketOptions],
) -> Generator[np.ndarray, None, None]:
    """Follow the classic pcap or pcapng at ``path`` while it is written, yielding arrays of rows
    (``ROW_DTYPE``) as their buckets close.

    The file may not exist yet or hold part of its header.  Following ends when process
    ``pid`` exits or ``stop`` is set (a ``threading.Event``, or a function returning true),
    whichever comes first; then the file is read to its end and the last rows are yielded.
    With neither, it goes on until the caller stops iterating (the open bucket is then not
    yielded).  Without ``idle_close_ms`` the rows are exactly :func:`~fastpcap.iter_rows`'s
    on the finished file; with it, a bucket is also closed once the wall clock is that many
    milliseconds past its end (see the module's docstring for what a later packet with an
    older time then does).  The file is looked at every ``poll_s`` seconds while nothing
    happens.  The bucket options as in :func:`~fastpcap.iter_rows`.  Raises
    :class:`~fastpcap.CaptureError` for a file that is not a classic pcap or pcapng
    (compressed captures cannot be followed), is corrupt, shrinks while followed, or does not
    exist when following ends.
    """
    spec = BucketSpec.make(spec, **options)
    if idle_close_ms is not None and (isinstance(idle_close_ms, bool) or not isinstance(idle_close_ms, int)
                                      or idle_close_ms < 0):
        raise ValueError(f"idle_close_ms must be a non-negative integer or None, not {idle_close_ms!r}")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or pid < 1):
        raise ValueError(f"pid must be a positive integer or None, not {pid!r}")
    if not poll_s > 0:
        raise ValueError(f"poll_s must be a positive number of seconds, not {poll_s!r}")
    return _Follower(os.fspath(path), spec, pid, idle_close_ms, stop, poll_s).rows()


def follow_jsonl(
    path: PathLike,
    output: PathLike | None,
    *,
    append: bool = False,
    pid: int | None = None,
    idle_close_ms: int | None = None,
    stop: Stop | None = None,
    poll_s: float = DEFAULT_POLL_S,
    spec: BucketSpec | None = None,
    **options: Unpack[BucketOptions],
) -> int:
    """:func:`follow_rows` written as JSONL to ``output`` as the rows come: whole lines, each
    batch in one write, flushed; returns the number of rows.  ``output`` ``None`` or ``"-"``
    is stdout; a file is emptied first unless ``append``; a device, FIFO or socket is written
    through; the capture itself is refused (``OSError``); lines written stay if the run fails
    later.  Without ``idle_close_ms``, the finished output holds exactly what
    :func:`~fastpcap.write_jsonl` writes for the finished capture."""
    rows = follow_rows(path, pid=pid, idle_close_ms=idle_close_ms, stop=stop, poll_s=poll_s, spec=spec,
                       **options)
    count = 0
    try:
        with open_live_output(output, append=append, inputs=[path]) as out:
            for block in rows:
                if len(block):
                    out.write(format_rows(block))
                    out.flush()
                    count += len(block)
    finally:
        rows.close()
    return count


class _EndWatch:
    """Whether following should end: process ``pid`` exited (a pidfd where the system has
    them, so that a wait wakes at once when it does) or ``stop`` is set."""

    def __init__(self, pid: int | None, stop: Stop | None) -> None:
        self.pid = pid
        self._stop = stop
        self._pidfd: int | None = None
        self._exited = False
        if pid is not None and hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                self._exited = True
            except OSError:  # an old kernel: ask by signal 0 instead
                pass

    def ended(self) -> bool:
        stop = self._stop
        if stop is not None and (stop.is_set() if isinstance(stop, threading.Event) else stop()):
            return True
        return self.pid is not None and self._pid_exited()

    def _pid_exited(self) -> bool:
        if self._exited:
            return True
        if self._pidfd is not None:
            self._exited = bool(select.select([self._pidfd], [], [], 0)[0])
            return self._exited
        assert self.pid is not None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self._exited = True
        except PermissionError:  # someone else's process, alive
            pass
        else:
            self._exited = _is_zombie(self.pid)
        return self._exited

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the process exits."""
        if self._pidfd is not None and not self._exited:
            select.select([self._pidfd], [], [], seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped (Linux's /proc; elsewhere: no)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class _Follower:
    """The state of one follow: the file, its reader once the header is complete, the
    bucketer, and what the idle close did."""

    def __init__(self, path: str, spec: BucketSpec, pid: int | None, idle_close_ms: int | None,
                 stop: Stop | None, poll_s: float) -> None:
        self.path = path
        self.spec = spec
        self.bucketer = Bucketer(spec)
        self.idle_close_ms = idle_close_ms
        self.idle_close_ns = None if idle_close_ms is None else idle_close_ms * 1_000_000
        self.poll_s = poll_s
        self.watch = _EndWatch(pid, stop)
        self.file: BinaryIO | None = None
        self.reader: PcapReader | PcapngReader | None = None  # once the file header is complete
        self.size_seen = -1  # the file's size when it was last read
        # The idle close: after one, the end of the bucket it wrote (packets whose bucket
        # would be that one or an earlier one are late) and the running maximum of the
        # packets' own times (the bucketer's is raised to the floor).
        self.floor: int | None = None
        self.real_max = 0
        self.late = 0
        self.late_first: tuple[int, int] | None = None  # the first late packet's number and offset

    def rows(self) -> Generator[np.ndarray, None, None]:
        hosts = HostCheck(self.spec)
        for block in self._rows():
            yield hosts.see(block)
        warn_at_end(self.bucketer, self.path, self.reader, hosts)
        if self.late:
            assert self.late_first is not None
            warnings.warn(LatePacketWarning(
                f"{self.path}: {self.late} packet(s) came more than the idle close of {self.idle_close_ms} ms after "
                f"the end of their {self.spec.bucket_ms} ms bucket, whose row was written, and were counted in the "
                f"next row; the first was packet {self.late_first[0]} (byte offset {self.late_first[1]})"),
                stacklevel=2)

    def _rows(self) -> Generator[np.ndarray, None, None]:
        try:
            while True:
                ended = self.watch.ended()  # before reading: what was written by then is read
                yield from self._read_new()
                if ended:
                    break
                if self._idle_due():
                    yield from self._idle_close()
                else:
                    self.watch.wait(self._sleep_s())
            if self.file is None:  # it never appeared: the error a missing capture gets
                raise unreadable(self.path, FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT)))
            yield from self.bucketer.finish()
        except CaptureError as exc:
            if exc.path is None and self.reader is not None and exc.offset is not None:  # the bucket rule's
                raise self.reader.error(exc.offset, exc.problem) from None
            raise
        finally:
            self.watch.close()
            if self.file is not None:
                self.file.close()

    # -- reading ----------------------------------------------------------------------------
    def _read_new(self) -> Iterator[np.ndarray]:
        """The rows that the packets written since the last look close."""
        if self.file is None:
            try:
                self.file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in rows()
            except FileNotFoundError:
                return
            except OSError as exc:
                raise CaptureError(self.path, 0, f"cannot read: {exc.strerror or exc}") from None
        size = os.fstat(self.file.fileno()).st_size
        if size < self.size_seen:
            raise CaptureError(self.path, size, (
                f"the file shrank from {self.size_seen} to {size} bytes while it was followed (it was truncated or "
                "written again from its start)"))
        if size == self.size_seen:
            return
        self.size_seen = size
        if self.reader is None and not self._open_reader():
            return
        assert self.reader is not None
        for chunk in self.reader.chunks(self.reader.end_offset, close=False):
            yield from self._feed(chunk)

    def _open_reader(self) -> bool:
        """Read the file's header, if it is all there; refuse what cannot be followed."""
        assert self.file is not None
        self.file.seek(0)
        reader = open_capture(self.file, block_size=_BLOCK_SIZE, decode=self.spec.decode,
                              tunnels=self.spec.tunnels)
        if reader.compression is not None:
            raise reader.error(0, f"a {reader.compression}-compressed capture cannot be followed; bucketize it "
                                  "once it is complete")
        if isinstance(reader, PcapngReader):
            if not reader.has_section_header:
                return False  # the section header's first 12 bytes are not all there yet
            self.reader = reader  # read from offset 0 (its end_offset), the section header
            return True
        if not isinstance(reader, PcapReader) or reader.header is None:
            return False  # the header is not all there yet
        assert reader.end_offset == GLOBAL_HEADER_SIZE
        self.reader = reader
        return True

    def _feed(self, chunk: np.ndarray) -> Iterator[np.ndarray]:
        if self.floor is not None:
            # Late packets: those whose own running maximum is still before the floor.
            real = np.maximum.accumulate(chunk["t_ns"])
            np.maximum(real, self.real_max, out=real)
            late = int(np.count_nonzero(real < self.floor))
            if late:
                if not self.late:
                    self.late_first = (self.bucketer.packets + 1, int(chunk["offset"][0]))
                self.late += late
            if late < len(chunk):
                self.floor = None  # time has passed the written bucket: nothing more is late
            self.real_max = int(real[-1])
        yield from self.bucketer.feed(chunk)
        yield from self.bucketer.empty_before_open()  # no packet can go into them any more

    # -- the idle close ---------------------------------------------------------------------
    def _open_end(self) -> int | None:
        """The end of the open bucket (ns since the epoch), if there is one."""
        bucketer = self.bucketer
        if bucketer.open_bucket is None or bucketer.origin is None:
            return None
        return bucketer.origin + (bucketer.open_bucket + 1) * bucketer.bucket_ns

    def _idle_due(self) -> bool:
        end = self._open_end()
        return self.idle_close_ns is not None and end is not None and time.time_ns() >= end + self.idle_close_ns

    def _sleep_s(self) -> float:
        end = self._open_end()
        if self.idle_close_ns is None or end is None:
            return self.poll_s
        due_in = (end + self.idle_close_ns - time.time_ns()) / 1e9
        return min(self.poll_s, max(due_in, 0.001))

    def _idle_close(self) -> Iterator[np.ndarray]:
        """Write the open bucket now; the running maximum moves to the next bucket's start."""
        end = self._open_end()
        assert end is not None
        if self.floor is None:
            self.real_max = self.bucketer.max_t_ns
        yield from self.bucketer.close_open()
        self.bucketer.fed_elsewhere(0, end)
        self.floor = end
