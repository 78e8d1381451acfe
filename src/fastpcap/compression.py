"""Compressed captures: detected by their first bytes, decompressed as a stream.

gzip, xz and bzip2 come with Python (gzip through ``isal``'s faster inflate where it is
installed); zstd and lz4 with the ``zstandard`` and ``lz4`` packages.  Each is read through
an incremental decompressor whose output is bounded per call, so memory stays flat however
well the data compresses.  A stream that ends early (a capture still being written through a
compressor) simply ends, keeping everything that decompressed; concatenated members, streams
or frames are read one after another; bytes after the last one that do not start another
are ignored (zstd: an error).

Corrupt data raises :class:`CorruptStream`, after every byte the decompressor produced before
it has been delivered.  The libraries drop the output of a call that fails, so the failing
stretch is decoded again, in small pieces and then byte by byte (:class:`_Stream`): from a
``copy()`` of the decompressor taken before the call (zlib), else from the start of the
member, stream or frame, read again from the file (which must then be able to seek).
Compressed bytes are read in pieces of a fixed size, so what is delivered and the offsets of
the error never depend on how the caller or the operating system cut the reads.
"""

from __future__ import annotations

import re
import weakref
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

#: (name, magic bytes) of each compression fastpcap reads.
MAGICS: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("xz", b"\xfd7zXZ\x00"),
    ("bzip2", b"BZh"),
    ("lz4", b"\x04\x22\x4d\x18"),
)
#: Bytes needed to tell them apart.
SNIFF = max(len(magic) for _, magic in MAGICS)
#: Compressed bytes per read (and per decompressor call): few calls, so that a decompressing
#: thread seldom waits for the GIL between them (``fastpcap.prefetch``).
_RAW_CHUNK = 1 << 22
_OUT_CHUNK = 1 << 22
# Pieces in which a failing stretch is fed again: coarse first, then byte by byte.
_REPLAY_STEPS = (256, 1)


def detect(prefix: bytes) -> str | None:
    """The compression whose magic ``prefix`` starts with, if any."""
    for name, magic in MAGICS:
        if prefix.startswith(magic):
            return name
    return None


def started_compression(data: bytes) -> str | None:
    """The compression whose magic ``data`` (a whole, short file) is the beginning of."""
    for name, magic in MAGICS:
        if data and len(data) < len(magic) and magic.startswith(data):
            return name
    return None


class CorruptStream(ValueError):
    """The compressed data is corrupt (not merely cut short).

    ``str(err)`` says what is wrong in one line ("gzip data is corrupt: incorrect data
    check"); ``problem`` is the part after the colon.  ``compressed_offset`` is the offset
    in the compressed input of the byte at which the decompressor found the problem: the
    byte whose arrival makes it fail when it is given the data one byte at a time (a gzip
    CRC that does not match: the CRC's last byte).  ``decompressed_offset`` counts the
    decompressed bytes delivered before the error; they are all the decompressor produced.
    Both are ``exact`` unless the input could not be read again to find the byte: read from
    a pipe, an error that neither zlib's ``copy()`` nor the gzip trailer check catches (in
    ISA-L's deflate, xz, bzip2, lz4, zstd).  Then ``compressed_offset`` is the last byte of
    the 4 MiB piece in which the problem was found, and the output of the failing call (at
    most 4 MiB) is missing; both still do not depend on how the reads were cut.
    """

    def __init__(self, kind: str, problem: str, compressed_offset: int, decompressed_offset: int,
                 *, exact: bool = True) -> None:
        self.kind = kind
        self.problem = problem
        self.compressed_offset = compressed_offset
        self.decompressed_offset = decompressed_offset
        self.exact = exact
        super().__init__(f"{kind} data is corrupt: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (a worker process raises it)
        args = (self.kind, self.problem, self.compressed_offset, self.decompressed_offset)
        return type(self), args, {"exact": self.exact}


def open_decompressed(raw: BinaryIO, kind: str) -> BinaryIO:
    """A binary stream (``read``/``readinto``) of the decompressed bytes of ``raw``."""
    if kind == "zstd":
        return _Zstd(raw)  # type: ignore[return-value]
    if kind == "gzip" and _zlib() is not zlib:
        return _IsalGzip(raw)  # type: ignore[return-value]
    return _Incremental(raw, kind)  # type: ignore[return-value]


class _Failed(Exception):
    """Raised inside a stream's decode loop: the decompressor rejected its input.  ``offset``
    is set where the stream itself knows the failing byte (a gzip trailer it checks)."""

    def __init__(self, problem: str, offset: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.offset = offset


@dataclass
class _Checkpoint:
    """Where decoding can start again: the compressed ``offset`` and decompressed ``produced``
    counts there, and what the stream needs to restart (``state``; ``data``: the compressed
    bytes from ``offset`` on, when they are kept in memory)."""

    offset: int
    produced: int
    state: Any = None
    data: bytes | None = None


class _Replay:
    """The input while a failing stretch is decoded again: pieces of the usual size up to
    ``safe`` (decoded without error before), then pieces of ``step`` bytes up to ``end``."""

    def __init__(self, data: bytes | None, start: int, safe: int, end: int, step: int) -> None:
        self.data = data
        self.start = start
        self.safe = safe
        self.end = end
        self.step = step


def can_seek(raw: object) -> bool:
    """Whether the file object ``raw`` says it can seek (one without ``seekable``, or closed: no)."""
    try:
        return bool(raw.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


class Pieces:
    """``read``/``readinto`` over the pieces of bytes ``read_piece()`` gives (empty at the end):
    the decompressed streams, and ``fastpcap.prefetch``'s thread-fed one.  ``read()`` of
    everything that meets an error of a ``DEFERRED`` type after some bytes returns those
    bytes first; the error comes at the next read."""

    DEFERRED: tuple[type[BaseException], ...] = ()
    _pending: memoryview

    def read_piece(self) -> bytes | memoryview:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, view: Any) -> int:
        view = memoryview(view).cast("B")
        if not self._pending:
            self._pending = memoryview(self.read_piece())
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        if size is not None and size >= 0:
            buf = bytearray(size)
            return bytes(buf[: self.readinto(buf)])
        parts = [bytes(self._pending)]
        self._pending = memoryview(b"")
        try:
            while piece := self.read_piece():
                parts.append(bytes(piece))  # (a copy: a piece's buffer may be filled again)
        except self.DEFERRED:
            if any(parts):  # these first: the next read raises the error
                return b"".join(parts)
            raise
        return b"".join(parts)


class _Stream(Pieces):
    """What the readers need of a stream: ``readinto`` and ``read``, over ``_decode()``.

    Subclasses decode in ``_decode()``, taking compressed bytes with ``_read()``, raising
    :class:`_Failed` when the decompressor fails, moving ``_ok`` on as the decompressor
    gets through its input without error, and setting ``_checkpoint`` wherever they can
    start decoding again (``_restore`` does).  On a failure the stream restores the
    last checkpoint and decodes on, skipping what it delivered already, with the bytes after
    the last ones decoded without error fed in small pieces: what the failing call produced
    comes out, and the failure shows at the byte that causes it.
    """

    DEFERRED = (CorruptStream,)

    kind = ""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._pending = memoryview(b"")
        self._error: CorruptStream | None = None
        self.delivered = 0  # decompressed bytes returned so far
        self._produced = 0  # decompressed bytes produced by the decoder (a replay repeats some)
        self._pos = 0  # compressed bytes read so far: the offset of the next one
        self._raw_pos = 0  # the same, in ``raw`` (they differ while a replay reads from memory)
        self._ok = 0  # the bytes before this offset were all decoded without error
        self._replay: _Replay | None = None
        self._checkpoint = _Checkpoint(0, 0)

    # -- for the subclasses ------------------------------------------------------------

    def _decode(self) -> bytes:
        """The next decompressed bytes; ``b""`` at the end."""
        raise NotImplementedError

    def _restore(self, checkpoint: _Checkpoint) -> None:
        """Put the decoder back where ``checkpoint`` was taken."""
        raise NotImplementedError

    def _read(self, size: int) -> bytes:
        """Up to ``size`` compressed bytes: ``size`` unless the input ends."""
        replay = self._replay
        if replay is None:
            data = self.raw.read(size)
            if data and len(data) < size:  # a pipe, or the sniffer's first bytes: fill the piece
                parts = [data]
                got = len(data)
                while got < size and (more := self.raw.read(size - got)):
                    parts.append(more)
                    got += len(more)
                data = b"".join(parts)
            self._raw_pos += len(data)
        else:
            if self._pos >= replay.end:  # past the failing stretch, and no failure (zlib took
                self._replay = None  # what ISA-L did not): decode on as usual
                return self._read(size)
            size = min(size, replay.safe - self._pos) if self._pos < replay.safe else replay.step
            size = min(size, replay.end - self._pos)
            if replay.data is not None:
                at = self._pos - replay.start
                data = replay.data[at:at + size]
            else:
                data = self.raw.read(size)
                while len(data) < size and (more := self.raw.read(size - len(data))):
                    data += more
                self._raw_pos += len(data)
        self._pos += len(data)
        return data

    # -- the stream --------------------------------------------------------------------

    def _chunk(self) -> bytes:
        if self._error is not None:
            raise self._error
        while True:
            try:
                out = self._decode()
            except _Failed as failed:
                if failed.offset is None and self._start_replay():
                    continue
                raise self._fail(failed.problem, failed.offset, exact=True) from None
            start = self._produced
            self._produced += len(out)
            if start < self.delivered:  # a replay passing what was delivered already
                out = out[self.delivered - start:]
                if not out:
                    continue
            self.delivered += len(out)
            return out

    def _start_replay(self) -> bool:
        """Restore the checkpoint and decode again, more finely than the last time; False
        when this cannot be done (the input cannot be read again) or was done byte by byte."""
        replay = self._replay
        if replay is None:
            step, end = _REPLAY_STEPS[0], self._pos
        elif replay.step == _REPLAY_STEPS[-1]:
            return False
        else:
            step, end = _REPLAY_STEPS[_REPLAY_STEPS.index(replay.step) + 1], replay.end
        checkpoint = self._checkpoint
        safe = max(self._ok, checkpoint.offset)
        if checkpoint.data is not None:  # the input of the failing call: the file is read on after it
            end = min(end, checkpoint.offset + len(checkpoint.data))
        else:
            try:
                self.raw.seek(checkpoint.offset - self._raw_pos, 1)
            except (OSError, ValueError, AttributeError):
                return False
            self._raw_pos = checkpoint.offset
        self._replay = _Replay(checkpoint.data, checkpoint.offset, safe, end, step)
        self._pos = self._ok = checkpoint.offset
        self._produced = checkpoint.produced
        self._restore(checkpoint)
        return True

    def _fail(self, problem: str, offset: int | None, *, exact: bool) -> CorruptStream:
        replay = self._replay
        if offset is None:
            offset = self._pos - 1
            exact = replay is not None and replay.step == 1 and offset >= replay.safe
        if self._produced < self.delivered:  # the replay failed before what the first run delivered
            exact = False
        self._error = CorruptStream(self.kind, problem, max(offset, 0), self.delivered, exact=exact)
        return self._error

    def read_piece(self) -> bytes:
        """The next piece of decompressed bytes as the decompressor gives it (at most 4 MiB),
        ``b""`` at the end (what ``read`` and ``readinto`` read; ``fastpcap.prefetch`` takes
        them one by one: do not mix the two)."""
        return self._chunk()

    def buffer_size(self) -> int:
        """The size of the buffers to ``readinto`` if it decompresses straight into them (no
        piece made and copied; ``fastpcap.prefetch`` then hands over buffers, not pieces),
        else 0."""
        return 0

    def close(self) -> None:
        self.raw.close()


class _Incremental(_Stream):
    """gzip (zlib), xz, bzip2 and lz4 through their decompressor objects, ``max_length`` at
    a time.

    zlib's decompressor is copied before each call (cheap: its state and 32 KiB window), so
    a failing call is fed again byte by byte from memory.  The others cannot be copied:
    they decode again from the start of the stream (lz4: frame), read again from the file.
    bzip2 checks a block's CRC after the block's output, in the call that produces its end:
    a corrupt block delivers none of that call's output, so all blocks before it come out
    and of the corrupt one only what came out in calls before (a block larger than 4 MiB
    decompressed).
    """

    def __init__(self, raw: BinaryIO, kind: str) -> None:
        super().__init__(raw)
        self.kind = kind
        self._magic = dict(MAGICS)[kind]
        self._errors = _errors(kind)
        self._copyable = kind == "gzip"  # zlib's decompressor: isal's is _IsalGzip
        self._dec = _decompressor(kind)
        self._input = b""  # compressed bytes read but not yet given to the decompressor
        self._done = False

    def _restore(self, checkpoint: _Checkpoint) -> None:
        self._dec = checkpoint.state.copy() if self._copyable else _decompressor(self.kind)
        self._input = b""
        self._done = False

    def _decode(self) -> bytes:
        while not self._done:
            dec = self._dec
            if getattr(dec, "eof", False):  # a member/stream/frame ended: another one?
                rest = (dec.unused_data or b"") + self._input
                while len(rest) < len(self._magic) and (more := self._read(_RAW_CHUNK)):
                    rest += more
                if not rest.startswith(self._magic):
                    self._done = True
                    break
                self._dec, self._input = _decompressor(self.kind), rest
                if not self._copyable:
                    self._checkpoint = _Checkpoint(self._pos - len(rest), self._produced)
                continue
            if self._needs_input() and not self._input:
                self._input = self._read(_RAW_CHUNK)
                if not self._input:  # the compressed data ends here, perhaps early
                    self._done = True
                    break
            data, self._input = self._input, b""
            if self._copyable:
                self._checkpoint = _Checkpoint(self._pos - len(data), self._produced, dec.copy(), data)
            try:
                out = dec.decompress(data, _OUT_CHUNK)
            except self._errors as exc:
                raise _Failed(_problem(exc)) from None
            if self.kind == "gzip":
                self._input = dec.unconsumed_tail
            if dec.eof:
                self._ok = self._pos - len(dec.unused_data or b"") - len(self._input)
            elif self.kind == "gzip" or dec.needs_input:
                self._ok = self._pos - len(self._input)
            if out:
                return out
        return b""

    def _needs_input(self) -> bool:
        if self.kind == "gzip":
            return not self._dec.unconsumed_tail
        return bool(self._dec.needs_input)


class _IsalGzip(_Stream):
    """gzip through ISA-L's inflate, whose decompressor cannot be copied.

    The member header and trailer are read here and the deflate data given to ISA-L raw, so
    a CRC or length that does not match (the common sign of corruption) fails after all the
    member's output and at zlib's byte: the CRC's last byte, the length's last byte.  An
    error inside the deflate data is found again from the member's start (read again from
    the file) with zlib, copied before each call, so that it shows where zlib finds it
    (ISA-L may find it a few bytes later): the same bytes and offsets with ISA-L or without.
    """

    kind = "gzip"
    _HEADER, _DEFLATE, _TRAILER, _NEXT, _DONE = range(5)

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        from isal import igzip_lib

        self._igzip = igzip_lib
        self._inflate_errors = (cast(type[BaseException], igzip_lib.error), zlib.error)
        self._input = b""
        self._restore(self._checkpoint)

    def _restore(self, checkpoint: _Checkpoint) -> None:
        self._input = b""
        if checkpoint.state is not None:  # a copy of zlib's inflate, in a replay
            dec, out = checkpoint.state
            self._dec: Any = dec.copy()
            self._member_out = out
            self._state = self._DEFLATE
        else:
            self._state = self._HEADER
            self._dec = None
            self._member_out = 0

    def _inflate(self) -> Any:
        if self._replay is not None:
            return _ZlibInflate()
        return self._igzip.IgzipDecompressor(flag=self._igzip.DECOMP_GZIP_NO_HDR)

    def _need(self, size: int) -> bool:
        """Whether ``size`` bytes are at hand in ``_input`` (reading more as needed)."""
        while len(self._input) < size:
            more = self._read(_RAW_CHUNK)
            if not more:
                return False
            self._input += more
        return True

    def _here(self) -> int:
        """The compressed offset of ``_input[0]``."""
        return self._pos - len(self._input)

    def _decode(self) -> bytes:
        while True:
            state = self._state
            if state == self._HEADER:
                if not self._header():
                    self._state = self._DONE
                    continue
                self._dec = self._inflate()
                self._member_out = 0
                self._state = self._DEFLATE
            elif state == self._DEFLATE:
                dec = self._dec
                if dec.eof:
                    self._input = dec.unused_data + self._input
                    self._state = self._TRAILER
                    continue
                if dec.needs_input:
                    if not self._input:
                        self._input = self._read(_RAW_CHUNK)
                    if not self._input:
                        self._state = self._DONE
                        continue
                data, self._input = self._input, b""
                copyable = isinstance(dec, _ZlibInflate)
                if copyable:
                    saved = (dec.copy(), self._member_out)
                    self._checkpoint = _Checkpoint(self._pos - len(data), self._produced, saved, data)
                try:
                    out = dec.decompress(data, _OUT_CHUNK)
                except self._inflate_errors as exc:
                    raise _Failed(_problem(exc)) from None
                self._member_out += len(out)
                if copyable:
                    self._input = dec.unconsumed_tail
                if dec.eof:
                    self._ok = self._pos - len(dec.unused_data) - len(self._input)
                elif dec.needs_input:
                    self._ok = self._pos - len(self._input)
                if out:
                    return out
            elif state == self._TRAILER:
                if not self._need(4):
                    self._state = self._DONE
                    continue
                if int.from_bytes(self._input[:4], "little") != self._dec.crc:
                    raise _Failed("incorrect data check", self._here() + 3)
                if not self._need(8):
                    self._state = self._DONE
                    continue
                if int.from_bytes(self._input[4:8], "little") != self._member_out & 0xFFFFFFFF:
                    raise _Failed("incorrect length check", self._here() + 7)
                self._input = self._input[8:]
                self._state = self._NEXT
            elif state == self._NEXT:  # another member, or bytes that are ignored
                magic = dict(MAGICS)["gzip"]
                self._need(len(magic))
                if not self._input.startswith(magic):
                    self._state = self._DONE
                    continue
                self._checkpoint = _Checkpoint(self._here(), self._produced)
                self._state = self._HEADER
            else:
                return b""

    def _header(self) -> bool:
        """Read a member header (RFC 1952) as zlib does; False if the data ends in it."""
        start = self._here()
        if not self._need(4):  # zlib reads the method and the flags together
            return False
        if self._input[2] != 8:
            raise _Failed("unknown compression method", start + 3)
        flags = self._input[3]
        if flags & 0xE0:
            raise _Failed("unknown header flags set", start + 3)
        if not self._need(10):
            return False
        crc = zlib.crc32(self._input[:10])
        self._input = self._input[10:]
        if flags & 4:  # FEXTRA
            if not self._need(2):
                return False
            size = 2 + int.from_bytes(self._input[:2], "little")
            while size:
                if not self._need(1):
                    return False
                take = self._input[:size]
                crc = zlib.crc32(take, crc)
                self._input = self._input[len(take):]
                size -= len(take)
        for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
            while flags & flag:
                if not self._need(1):
                    return False
                end = self._input.find(b"\0")
                take = self._input if end < 0 else self._input[:end + 1]
                crc = zlib.crc32(take, crc)
                self._input = self._input[len(take):]
                if end >= 0:
                    break
        if flags & 2:  # FHCRC
            if not self._need(2):
                return False
            if int.from_bytes(self._input[:2], "little") != crc & 0xFFFF:
                raise _Failed("header crc mismatch", self._here() + 1)
            self._input = self._input[2:]
        return True


class _ZlibInflate:
    """zlib's raw inflate with what :class:`_IsalGzip` uses of ISA-L's: ``crc``, ``needs_input``
    (always: the input it did not take is ``unconsumed_tail``)."""

    needs_input = True

    def __init__(self, dec: Any = None, crc: int = 0) -> None:
        self._dec = zlib.decompressobj(wbits=-15) if dec is None else dec
        self.crc = crc

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._dec.decompress(data, max_length)
        self.crc = zlib.crc32(out, self.crc)
        return out

    @property
    def eof(self) -> bool:
        return bool(self._dec.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._dec.unused_data)

    @property
    def unconsumed_tail(self) -> bytes:
        return bytes(self._dec.unconsumed_tail)

    def copy(self) -> _ZlibInflate:
        return _ZlibInflate(self._dec.copy(), self.crc)


class _Zstd(_Stream):
    """zstd through ``zstandard``'s stream reader (bounded reads, frame after frame).

    zstd decodes a block once all of it is there, and a corrupt block delivers nothing; the
    blocks before it all come out.  The reader cannot be copied: a failure is found again by
    reading the input again from its start (zstd decodes at GB/s).
    """

    kind = "zstd"

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        import zstandard

        self._zstandard = zstandard
        self._error_type = zstandard.ZstdError
        self._failed: _Failed | None = None
        self._seekable: bool | None = None
        self._restore(self._checkpoint)

    def _restore(self, checkpoint: _Checkpoint) -> None:
        # the reader reads through _read, ``read_size`` at a time
        self._reader = self._zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, _Source(self)), read_size=_RAW_CHUNK, read_across_frames=True)

    def _decode(self) -> bytes:
        failed, self._failed = self._failed, None
        if failed is not None:  # a direct read failed: the replay starts from here
            raise failed
        try:
            if self._replay is not None:  # one input read at a time: its output is not lost
                return self._reader.read1(_OUT_CHUNK)
            return self._reader.read(_OUT_CHUNK)
        except self._error_type as exc:
            raise _Failed(_problem(exc)) from None

    def readinto(self, view: Any) -> int:
        """Decompressed bytes straight into ``view``, when the input can be read again: no
        piece of bytes made and copied (a third of the cost of reading a capture that
        compresses badly, past the decompression itself).  What comes out before an error
        and where it is found do not depend on the reads then, the failing stretch being
        decoded again finely from the file (``_Stream``); from a pipe, pieces of
        ``_OUT_CHUNK`` as the other streams, so that they do not either.  A view smaller than
        ``_OUT_CHUNK`` takes the pieces too: ``zstandard``'s reader, its input at an end inside
        a frame (a stream cut short), returns 0 with decoded bytes still held that did not fit
        the last view (found by the property tests: 1-byte reads lost a byte)."""
        view = memoryview(view).cast("B")
        if (self._pending or self._replay is not None or self._error is not None or len(view) < _OUT_CHUNK
                or not self._direct()):
            return super().readinto(view)
        try:
            n: int = self._reader.readinto(view)
        except self._error_type as exc:  # what it wrote into view is not counted: decoded again
            self._failed = _Failed(_problem(exc))
            return super().readinto(view)
        self._produced += n
        self.delivered += n
        return n

    def buffer_size(self) -> int:
        return _OUT_CHUNK if self._direct() else 0

    def _direct(self) -> bool:
        if self._seekable is None:
            self._seekable = can_seek(self.raw)
        return self._seekable


class _Source:
    """The compressed input of a stream, as the file object zstandard's reader reads.

    It refers to the stream weakly: the stream owns zstandard's reader, which owns this, and
    zstandard's reader takes no part in garbage collection, so a strong reference back would
    make a cycle that is never freed -- with the decompressor and its window, ~100 KB for
    every zstd capture opened (found by fuzzing: a process reading many captures grew)."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = weakref.ref(stream)

    def read(self, size: int) -> bytes:
        stream = self._stream()
        assert stream is not None, "zstandard's reader outlived its stream"
        stream._ok = stream._pos  # the reader asks for more once it got through what it had
        return stream._read(size)


def _problem(exc: BaseException) -> str:
    """What the library says is wrong, without its prefixes ("Error -3 while ...: ")."""
    text = str(exc)
    for prefix in ("zstd decompress error: ", "LZ4F_decompress failed with code: "):
        text = text.replace(prefix, "")
    text = re.sub(r"^Error -?\d+ (while decompressing data: )?", "", text)  # zlib's and isal's
    if text.startswith("ERROR_"):  # lz4's error names: ERROR_contentChecksum_invalid
        text = text[6:].replace("_", " ")
    if text[1:2].islower():  # "Corrupt input data" reads on after the colon
        text = text[:1].lower() + text[1:]
    return text or type(exc).__name__


def _zlib() -> Any:
    """Intel ISA-L's zlib-compatible inflate when ``isal`` is installed (2-3x faster), else zlib."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:  # pragma: no cover - isal has wheels for the common platforms
        return zlib


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "xz":
        import lzma

        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    if kind == "bzip2":
        import bz2

        return bz2.BZ2Decompressor()
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor()
    raise ValueError(f"unknown compression {kind!r}")


def _errors(kind: str) -> tuple[type[BaseException], ...]:
    if kind == "gzip":
        return (zlib.error,)
    if kind == "xz":
        import lzma

        return (lzma.LZMAError,)
    if kind == "bzip2":
        return (OSError, ValueError)
    return (RuntimeError, ValueError)  # lz4
