"""Compressed captures: detected by their first bytes, decompressed as a stream.

gzip, xz and bzip2 come with Python (gzip through ``isal``'s faster inflate where it is
installed); zstd and lz4 with the ``zstandard`` and ``lz4`` packages.  Each is read through
an incremental decompressor whose output is bounded per call, so memory stays flat however
well the data compresses.  A stream that ends early (a capture
still being written through a compressor) simply ends, keeping everything that decompressed;
concatenated members, streams or frames are read one after another; bytes after the last one
that do not start another are ignored (zstd: an error).
"""

from __future__ import annotations

from typing import Any, BinaryIO

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
_RAW_CHUNK = 1 << 16
_OUT_CHUNK = 1 << 22


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
    """The compressed data is corrupt (not merely cut short)."""


def open_decompressed(raw: BinaryIO, kind: str) -> BinaryIO:
    """A binary stream (``read``/``readinto``) of the decompressed bytes of ``raw``."""
    if kind == "zstd":
        return _Zstd(raw)  # type: ignore[return-value]
    return _Incremental(raw, kind)  # type: ignore[return-value]


class _Stream:
    """What the readers need of a stream: ``readinto`` and ``read``, over ``_chunk()``."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._pending = memoryview(b"")

    def _chunk(self) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, view: Any) -> int:
        view = memoryview(view).cast("B")
        if not self._pending:
            self._pending = memoryview(self._chunk())
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
        while chunk := self._chunk():
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self.raw.close()


class _Incremental(_Stream):
    """gzip, xz, bzip2 and lz4 through their decompressor objects, ``max_length`` at a time."""

    def __init__(self, raw: BinaryIO, kind: str) -> None:
        super().__init__(raw)
        self.kind = kind
        self._magic = dict(MAGICS)[kind]
        self._errors = _errors(kind)
        self._dec = _decompressor(kind)
        self._input = b""  # compressed bytes read but not yet given to the decompressor
        self._done = False

    def _chunk(self) -> bytes:
        while not self._done:
            dec = self._dec
            if getattr(dec, "eof", False):  # a member/stream/frame ended: another one?
                rest = (dec.unused_data or b"") + self._input
                while len(rest) < len(self._magic) and (more := self.raw.read(_RAW_CHUNK)):
                    rest += more
                if not rest.startswith(self._magic):
                    self._done = True
                    break
                self._dec, self._input = _decompressor(self.kind), rest
                continue
            if self._needs_input() and not self._input:
                self._input = self.raw.read(_RAW_CHUNK)
                if not self._input:  # the compressed data ends here, perhaps early
                    self._done = True
                    break
            data, self._input = self._input, b""
            try:
                out = dec.decompress(data, _OUT_CHUNK)
            except self._errors as exc:
                raise CorruptStream(f"{self.kind} data is corrupt: {exc}") from None
            if self.kind == "gzip":
                self._input = dec.unconsumed_tail
            if out:
                return out
        return b""

    def _needs_input(self) -> bool:
        if self.kind == "gzip":
            return not self._dec.unconsumed_tail
        return bool(self._dec.needs_input)


class _Zstd(_Stream):
    """zstd through ``zstandard``'s stream reader (bounded reads, frame after frame)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        import zstandard

        self._error = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_size=_RAW_CHUNK, read_across_frames=True)

    def _chunk(self) -> bytes:
        try:
            return self._reader.read(_OUT_CHUNK)
        except self._error as exc:
            raise CorruptStream(f"zstd data is corrupt: {exc}") from None


def _zlib() -> Any:
    """Intel ISA-L's zlib-compatible inflate when ``isal`` is installed (2-3x faster), else zlib."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:  # pragma: no cover - isal has wheels for the common platforms
        import zlib

        return zlib


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return _zlib().decompressobj(wbits=31)
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
        import zlib

        return (zlib.error, _zlib().error)
    if kind == "xz":
        import lzma

        return (lzma.LZMAError,)
    if kind == "bzip2":
        return (OSError, ValueError)
    return (RuntimeError, ValueError)  # lz4
