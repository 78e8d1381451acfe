"""Where rows are written, without ever destroying what the user pointed at.

* A regular file (new or existing) is replaced atomically: the rows go to a temporary file
  beside it, renamed over it only when the run succeeds, keeping its permissions.  A
  symlink to a regular file stays a symlink: the replace happens on the file it leads to.
* Anything else that can take bytes — a character device (``/dev/null``), a FIFO, a socket,
  ``/dev/stdout`` — is written *through*: opened and streamed to, never replaced.  A block
  device or a directory is refused.
* An output that is the capture being read (the same file, however it is spelled or linked,
  or the file behind stdin/stdout) is refused before anything is read.
* With ``append``, rows are added to the file in place; if the run fails for any reason (a
  full disk during the last write included), the file is truncated back to its length
  before the run, or removed if the run created it.

Every write goes straight to the file descriptor (no buffer left to flush at close), so a
failure surfaces inside the ``with`` block, where it can be undone.  Errors are
:class:`OSError` whose ``filename`` is the output the user named, never a temporary file.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO, Union, cast

PathLike = Union[str, "os.PathLike[str]"]

#: A link leading here is a view of an open file descriptor (``/dev/stdout`` and friends).
_FD_LINK = re.compile(r"^/(?:proc/(?:self|thread-self|\d+)/fd|dev/fd)/(\d+)$")
_MAX_LINKS = 40  # as the kernel's limit on symlinks followed in one lookup


class OutputError(OSError):
    """An output that fastpcap refuses or cannot write; ``filename`` is the output named."""


class RawWriter:
    """``write`` straight to a file descriptor, looping over short writes (no buffering)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        while view:
            view = view[os.write(self.fd, view):]
        return size

    def flush(self) -> None:
        """Nothing is ever buffered."""

    def fileno(self) -> int:
        return self.fd


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def resolve(path: PathLike) -> tuple[str, int | None]:
    """Follow the symlinks of ``path``'s last component: ``(final path, fd)`` where ``fd`` is
    set when the chain leads to a view of one of this process's descriptors (/dev/stdout)."""
    current = os.fspath(path)
    for _ in range(_MAX_LINKS):
        match = _FD_LINK.match(current)
        if match and (current.startswith(("/dev/fd/", "/proc/self/", "/proc/thread-self/"))
                      or current.startswith(f"/proc/{os.getpid()}/")):
            return current, int(match.group(1))
        try:
            target = os.readlink(current)
        except OSError:  # not a link (or nothing there): the end of the chain
            return current, None
        current = os.path.join(os.path.dirname(current), target)
    raise OutputError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path))


def _identity(source: object) -> tuple[int, int] | None:
    """(device, inode) of a capture source: a path, or a stream with a file descriptor."""
    try:
        if isinstance(source, (str, os.PathLike)):
            st = os.stat(source)
        elif hasattr(source, "fileno"):
            st = os.fstat(source.fileno())
        else:
            return None
    except (OSError, ValueError):  # a missing input is the reader's error to report
        return None
    if not stat.S_ISREG(st.st_mode):
        return None  # a pipe or a device is not a file an output could overwrite
    return st.st_dev, st.st_ino


def check_not_input(output: PathLike | None, inputs: Iterable[object]) -> None:
    """Refuse an output that is one of the captures being read (by device and inode)."""
    if output is None or os.fspath(output) == "-":
        name = "<stdout>"
        out = _identity(sys.stdout) if sys.stdout is not None else None
    else:
        name = os.fspath(output)
        out = _identity(name)
    if out is None:
        return
    for source in inputs:
        if _identity(source) == out:
            raise OutputError(errno.EINVAL, "it is the capture being read (fastpcap never overwrites its input)",
                              name)


#: Output compression by the file name's last suffix, as pandas and shell users expect.
COMPRESSION_SUFFIXES = {".gz": "gzip", ".zst": "zstd", ".xz": "xz", ".bz2": "bzip2", ".lz4": "lz4"}
#: The suffix of each compression (the inverse of :data:`COMPRESSION_SUFFIXES`).
SUFFIX_OF = {kind: suffix for suffix, kind in COMPRESSION_SUFFIXES.items()}


def compression_of(path: PathLike | None) -> str | None:
    """The compression an output's name asks for (``rows.jsonl.gz``: gzip), if any."""
    if path is None or os.fspath(path) == "-":
        return None
    return COMPRESSION_SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower())


@contextmanager
def compressing(out: BinaryIO, kind: str | None) -> Iterator[BinaryIO]:
    """Write through a ``kind`` compressor (one member, frame or stream) into ``out``; the
    end of the stream is written when the block ends without an exception.  Appending a
    member to an existing compressed file gives a valid file of several members.

    When the block fails, the compressor is closed there, with ``out`` cut off from it
    first: it writes nothing more, then or ever.  Left open, it would write its end when
    it is collected (``close()`` in its finalizer), which may be long after ``out``'s file
    descriptor was closed and its number given to another file -- in a batch, the next
    capture's output, which began with the failed one's compressed rows."""
    if kind is None:
        yield out
        return
    gate = _Gate(out)
    sink = cast(BinaryIO, gate)
    writer: BinaryIO
    if kind == "gzip":
        try:
            from isal import igzip as gzip  # ISA-L's deflate: several times faster than zlib's
        except ImportError:  # pragma: no cover - isal has wheels for the common platforms
            import gzip  # type: ignore[no-redef]
        writer = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1 if gzip.__name__ != "gzip" else 6,
                               mtime=0)  # type: ignore[assignment]
    elif kind == "zstd":
        import zstandard

        writer = zstandard.ZstdCompressor(level=3).stream_writer(sink, closefd=False)  # type: ignore[assignment]
    elif kind == "xz":
        import lzma

        writer = lzma.LZMAFile(sink, "wb")  # type: ignore[assignment]
    elif kind == "bzip2":
        import bz2

        writer = bz2.BZ2File(sink, "wb")  # type: ignore[assignment]
    elif kind == "lz4":
        import lz4.frame

        writer = lz4.frame.LZ4FrameFile(sink, "wb")  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown compression {kind!r}; use one of {', '.join(SUFFIX_OF)}")
    try:
        yield writer
    except BaseException:
        gate.shut()
        with suppress(Exception):  # (what it would have written goes nowhere)
            writer.close()
        raise
    writer.close()  # the stream's end (closing a wrapper leaves `out` open)


class _Gate:
    """``out`` as a compressor sees it, until :meth:`shut`: then what it writes is dropped."""

    def __init__(self, out: BinaryIO) -> None:
        self._out: BinaryIO | None = out
        self.name = getattr(out, "name", "")  # gzip puts it in the member's header

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._out is None:
            return memoryview(data).nbytes
        return self._out.write(data)

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    def writable(self) -> bool:
        return True

    def shut(self) -> None:
        self._out = None


@contextmanager
def open_output(path: PathLike | None, *, append: bool = False, inputs: Iterable[object] = (),
                compression: str | None = "auto") -> Iterator[BinaryIO]:
    """A binary file to write rows to: stdout for ``None`` or ``"-"``; see the module's
    docstring for what each kind of ``path`` gets.  ``inputs`` are the captures being read:
    an output that is one of them is refused.  ``compression``: ``"auto"`` compresses as the
    file name's suffix says (``.gz``, ``.zst``, ``.xz``, ``.bz2``, ``.lz4``), ``None`` never,
    or a compression's name."""
    kind = compression_of(path) if compression == "auto" else compression
    if kind is not None and kind not in SUFFIX_OF:
        raise ValueError(f"unknown compression {kind!r}; use one of {', '.join(SUFFIX_OF)}")
    with _open_output(path, append=append, inputs=inputs) as out, compressing(out, kind) as writer:
        yield writer


@contextmanager
def open_live_output(path: PathLike | None, *, append: bool = False,
                     inputs: Iterable[object] = ()) -> Iterator[BinaryIO]:
    """A file that whole lines are added to as they are made (rows of a capture being
    followed), each write reaching it at once: stdout for ``None`` or ``"-"`` (flushed at
    every ``flush``); a device, FIFO, socket or descriptor view written through, as by
    :func:`open_output`; a regular file opened for appending (created with its folders if
    missing) and, without ``append``, emptied first, as the shell's ``>`` does.  Lines written
    stay whatever happens later: a reader may already have used them (a file created for a run
    that fails before writing anything is removed).  The capture being
    read is refused, also when it does not exist yet (by name); so is a compressed name
    (a compressed stream cannot be read line by line while it is written)."""
    if compression_of(path) is not None:
        raise OutputError(errno.EINVAL, "rows written as they are made cannot be compressed (the name ends "
                                        f"{os.path.splitext(os.fspath(path))[1]})", os.fspath(path))  # type: ignore[arg-type]
    check_not_input(path, inputs)
    if path is None or os.fspath(path) == "-":
        with _open_output(path, append=True, inputs=()) as out:
            yield out
        return
    name = os.fspath(path)
    target, fd_view, st = _locate(name)
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and os.path.realpath(target) == os.path.realpath(source):
            raise OutputError(errno.EINVAL, "it is the capture being read (fastpcap never overwrites its input)",
                              name)
    if _is_through(fd_view, st):
        with _through(name, target, fd_view, st) as out:
            yield out
        return
    try:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise OutputError(exc.errno, exc.strerror, name) from None
    writer = _named(RawWriter(fd), name)
    try:
        if not append:
            try:
                os.ftruncate(fd, 0)
            except OSError as exc:
                raise OutputError(exc.errno, exc.strerror, name) from None
        yield writer
    except BaseException:
        if st is None and not writer.tell():  # created for a run that failed before its first row
            _unlink(target)
        raise
    finally:
        os.close(fd)


@contextmanager
def _open_output(path: PathLike | None, *, append: bool, inputs: Iterable[object]) -> Iterator[BinaryIO]:
    check_not_input(path, inputs)
    if path is None or os.fspath(path) == "-":
        if sys.stdout is None:  # started with stdout closed (`>&-`)
            raise OutputError(errno.EBADF, "stdout is closed", "<stdout>")
        out = _named(sys.stdout.buffer, "<stdout>")
        yield out
        out.flush()
        return
    name = os.fspath(path)
    target, fd_view, st = _locate(name)
    if _is_through(fd_view, st):
        with _through(name, target, fd_view, st) as out:
            yield out
        return
    folder = os.path.dirname(target) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(exc.errno, exc.strerror, name) from None
    manager = _appended(name, target, st) if append else _replaced(name, target, folder, st)
    with manager as out:
        yield out


def _locate(name: str) -> tuple[str, int | None, os.stat_result | None]:
    """Where the output ``name`` leads: the final path, the descriptor it views (if any) and
    what is there (``None``: nothing yet)."""
    target, fd_view = resolve(name)
    try:
        return target, fd_view, os.stat(target)
    except FileNotFoundError:
        return target, fd_view, None
    except OSError as exc:
        raise OutputError(exc.errno, exc.strerror, name) from None


def _is_through(fd_view: int | None, st: os.stat_result | None) -> bool:
    """Whether an output is written through (a descriptor view, or there and not a regular file)."""
    return fd_view is not None or (st is not None and not stat.S_ISREG(st.st_mode))


@contextmanager
def _through(name: str, target: str, fd_view: int | None, st: os.stat_result | None) -> Iterator[BinaryIO]:
    """Stream into what is not a regular file: a device, a FIFO, a socket, a descriptor."""
    mode = st.st_mode if st is not None else 0
    if stat.S_ISDIR(mode):
        raise OutputError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if stat.S_ISBLK(mode):
        raise OutputError(errno.EINVAL, "is a block device (fastpcap writes rows to files, character "
                                        "devices, FIFOs and sockets only)", name)
    sock = None
    try:
        if fd_view is not None:
            fd = os.dup(fd_view)  # shares the offset (and O_APPEND) of the descriptor it views
        elif stat.S_ISSOCK(mode):
            import socket

            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(target)
            fd = os.dup(sock.fileno())
        else:
            fd = os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OutputError(exc.errno, exc.strerror, name) from None
    finally:
        if sock is not None:
            sock.close()
    try:
        yield _named(RawWriter(fd), name)
    finally:
        os.close(fd)


@contextmanager
def _appended(name: str, target: str, st: os.stat_result | None) -> Iterator[BinaryIO]:
    """Append in place; on any failure, truncate back (or remove what this run created)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o666)
    except OSError as exc:
        raise OutputError(exc.errno, exc.strerror, name) from None
    try:
        size = os.fstat(fd).st_size
        try:
            yield _named(RawWriter(fd), name)
            try:
                os.fsync(fd)
            except OSError as exc:
                raise OutputError(exc.errno, exc.strerror, name) from None
        except BaseException:
            if st is None and size == 0:
                _unlink(target)
            else:
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


@contextmanager
def _replaced(name: str, target: str, folder: str, st: os.stat_result | None) -> Iterator[BinaryIO]:
    """Write a temporary file beside ``target`` and rename it over ``target`` at the end."""
    if st is not None and not os.access(target, os.W_OK):
        # The shell's `>` would refuse a file we may not write to; so do we.
        raise OutputError(errno.EACCES, os.strerror(errno.EACCES), name)
    fd, tmp = _create_beside(name, target, folder)
    closed = False
    try:
        yield _named(RawWriter(fd), name)
        try:
            os.fsync(fd)
            os.fchmod(fd, stat.S_IMODE(st.st_mode) if st is not None else _default_mode())
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:  # keep the owner when root replaces someone's file
                    os.fchown(fd, st.st_uid, st.st_gid)
                except OSError:
                    pass
            closed = True
            os.close(fd)
            os.replace(tmp, target)
        except OSError as exc:
            raise OutputError(exc.errno, exc.strerror, name) from None
    except BaseException:
        if not closed:
            os.close(fd)
        _unlink(tmp)
        raise


def _named(writer: RawWriter | BinaryIO, name: str) -> BinaryIO:
    """The writer, whose errors name the output rather than a descriptor or temporary file."""
    return _NamedWriter(writer, name)  # type: ignore[return-value]


class _NamedWriter:
    """What an output is to its writers: ``write`` (errors naming the output), ``tell`` (the
    bytes written so far: pyarrow's Parquet writer asks), ``flush``."""

    closed = False

    def __init__(self, writer: RawWriter | BinaryIO, name: str) -> None:
        self._writer = writer
        self.name = name
        self._written = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            n = self._writer.write(data)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) and self.name == "<stdout>":
                raise  # the reader of stdout went away: not an error worth reporting
            raise OutputError(exc.errno, exc.strerror, self.name) from None
        self._written += n
        return n

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        try:
            self._writer.flush()
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) and self.name == "<stdout>":
                raise
            raise OutputError(exc.errno, exc.strerror, self.name) from None

    def writable(self) -> bool:
        return True


def _create_beside(name: str, target: str, folder: str) -> tuple[int, str]:
    """A new, private file next to ``target`` (what ``tempfile.mkstemp`` does, without the
    cost of importing ``tempfile`` at every start)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{os.path.basename(target)}.{os.urandom(6).hex()}.part")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(exc.errno, exc.strerror, name) from None
    raise OutputError(errno.EEXIST, f"no free temporary name beside {target}", name)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
