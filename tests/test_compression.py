"""Compressed input (src/fastpcap/compression.py): corrupt streams and read sizes.

A corrupt stream must deliver every byte its decoder produced before the corruption, then
raise ``CorruptStream`` naming the compressed offset where the decoder found the problem
and the decompressed bytes delivered before it, whatever sizes the caller reads in.

The reference for "what the decoder produced" and "where it found the problem" is each
library's own incremental decompressor fed the compressed bytes one at a time (zlib for
gzip, lzma, bz2, lz4.frame, zstandard's decompressobj): its output until the call that
fails, and the offset of the byte given in that call.  Feeding one byte at a time is the
finest any caller of these libraries can do, so fastpcap must match it exactly.  A bzip2
block whose CRC fails delivers nothing of itself (libbzip2 checks it after producing it),
so there the reference is the blocks before it, checked separately below.
"""

from __future__ import annotations

import bz2
import gc
import io
import pickle
import random
import weakref
import zlib
from functools import lru_cache

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastpcap import compression
from fastpcap.compression import MAGICS, SNIFF, CorruptStream, open_decompressed

from conftest import one_error_line
from pcapgen import COMPRESSIONS, SYN, Rec, compress, eth, ipv4, pcap, tcp
from strategies import sweep

pytestmark = pytest.mark.once  # nothing here depends on the packet-walking backend

READ_SIZES = (1, 7, 4096, 1 << 20, 8 << 20)
# Checksums on where the format has them optional, so a flipped byte is always found;
# bzip2 -1 (100 kB blocks) so that one stream holds two blocks.
OPTIONS = {"zstd": {"checksum": True}, "lz4": {"content_checksum": True, "block_size": 4},
           "bzip2": {"level": 1}}
MEMBERS = 2


def _payload(size: int) -> bytes:
    """Compressible, not trivially: words from a small vocabulary, some random bytes."""
    rng = random.Random(7)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(300)]
    parts, n = [], 0
    while n < size:
        part = rng.choice(words) + (bytes([rng.randrange(256)]) if rng.random() < 0.1 else b" ")
        parts.append(part)
        n += len(part)
    return b"".join(parts)[:size]


PAYLOAD = _payload(130_000)


def packed(kind: str, members: int = MEMBERS) -> bytes:
    return compress(PAYLOAD, kind, members=members, **OPTIONS.get(kind, {}))


def spans(kind: str, members: int = MEMBERS) -> list[tuple[int, int]]:
    """(start, end) of each member/stream/frame in ``packed(kind, members)``."""
    step = -(-len(PAYLOAD) // members)
    out, at = [], 0
    for i in range(0, len(PAYLOAD), step):
        size = len(compress(PAYLOAD[i:i + step], kind, **OPTIONS.get(kind, {})))
        out.append((at, at + size))
        at += size
    return out


def check_field(kind: str, start: int, end: int) -> tuple[int, int]:
    """(first, last) byte of the integrity check at the end of the member in [start, end)."""
    if kind == "gzip":
        return end - 8, end - 5  # CRC32, before ISIZE
    if kind in ("zstd", "lz4"):
        return end - 4, end - 1  # content checksum
    if kind == "xz":  # the block's CRC64 ends where the index starts (footer: backward size)
        data = packed(kind)[start:end]
        index_size = (int.from_bytes(data[-8:-4], "little") + 1) * 4
        index = end - 12 - index_size
        return index - 8, index - 1
    # bzip2: the stream CRC, the last 32 bits before the padding to a byte
    return end - 3, end - 1


def _new(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()
    return compression._decompressor(kind)


def reference(kind: str, data: bytes) -> tuple[bytes, int | None]:
    """The library's decompressor fed one byte at a time: (its output, the offset of the
    byte given in the call that failed, or None).  Members one after another; after the
    last, bytes that do not start another end the data (zstd: they are an error, found
    at the first byte that cannot begin a frame)."""
    magic = dict(MAGICS)[kind]
    out = bytearray()
    dec = _new(kind)
    at = 0
    while at < len(data):
        try:
            out += dec.decompress(data[at:at + 1])
        except Exception:  # zlib.error, LZMAError, OSError (bz2), RuntimeError (lz4), ZstdError
            return bytes(out), at
        at += 1
        if dec.eof:
            at -= len(dec.unused_data or b"")
            rest = data[at:]
            if len(rest) >= len(magic) and rest.startswith(magic):
                dec = _new(kind)
                continue
            if kind == "zstd":  # zstd fails at the first byte that cannot begin a frame
                for i in range(len(rest)):
                    if not _begins_a_zstd_frame(rest[:i + 1]):
                        return bytes(out), at + i
            break
    return bytes(out), None


def _begins_a_zstd_frame(data: bytes) -> bool:
    """Whether ``data`` can be the start of a zstd frame or a skippable one (magic
    0x184D2A50..5F), as zstd checks the first bytes of a frame it waits for."""
    skippable = bytes([data[0] & 0xF0 if data[0] & 0xF0 == 0x50 else data[0]]) + data[1:]
    return dict(MAGICS)["zstd"].startswith(data[:4]) or b"\x50\x2a\x4d\x18".startswith(skippable[:4])


def read_all(stream, size: int) -> tuple[bytes, CorruptStream | None]:
    """Everything ``stream.readinto`` gives with views of ``size`` bytes, and its error."""
    out = bytearray()
    buf = memoryview(bytearray(size))
    try:
        while n := stream.readinto(buf):
            out += buf[:n]
    except CorruptStream as exc:
        return bytes(out), exc
    return bytes(out), None


def flip(data: bytes, at: int, mask: int = 0x10) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]


class _Pipe(io.RawIOBase):
    """A source that cannot seek and returns short reads of random sizes."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data = io.BytesIO(data)
        self._rng = random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:  # type: ignore[no-untyped-def]
        data = self._data.read(self._rng.randint(1, len(view)))
        view[:len(data)] = data
        return len(data)


# Where each case flips a byte, and the range in which the decoder must find it.
def case(kind: str, name: str) -> tuple[bytes, int, range]:
    (s1, e1), (s2, e2) = spans(kind)
    data = packed(kind)
    if name == "data":  # inside the first member's compressed data
        at = s1 + (e1 - s1) * 2 // 5
        return flip(data, at), at, range(at, e1)
    if name == "check":  # the first member's CRC/check: found at its last byte
        first, last = check_field(kind, s1, e1)
        at = first if kind != "bzip2" else last - 1
        return flip(data, at), at, range(last, last + 1)
    if name == "second":  # inside the second member's data
        at = s2 + (e2 - s2) // 2
        return flip(data, at), at, range(at, e2)
    raise ValueError(name)


CASES = [(kind, name) for kind in COMPRESSIONS for name in ("data", "check", "second")]


@lru_cache(maxsize=None)
def expected(kind: str, name: str) -> tuple[bytes, bytes, int | None]:
    data, _, _ = case(kind, name)
    out, at = reference(kind, data)
    return data, out, at


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_corrupt_stream_delivers_what_the_decoder_produced(kind: str, name: str) -> None:
    data, ref_out, ref_at = expected(kind, name)
    _, flipped, where = case(kind, name)
    assert ref_at is not None, "the reference decoder must find the corruption"
    for size in READ_SIZES:
        out, err = read_all(open_decompressed(io.BytesIO(data), kind), size)
        assert err is not None, size
        # (a) every byte the decoder produced, and nothing else
        assert out == ref_out, (size, len(out), len(ref_out))
        # (b) the same offsets whatever the read size, (c) where the decoder found it
        assert (err.compressed_offset, err.decompressed_offset, err.exact) == (ref_at, len(ref_out), True), size
        assert err.compressed_offset in where, (flipped, err.compressed_offset, where)
        assert str(err) == f"{kind} data is corrupt: {err.problem}" and "\n" not in str(err)
    if name == "second":  # the first member came out whole
        assert out.startswith(PAYLOAD[: -(-len(PAYLOAD) // MEMBERS)])
    if name == "check" and kind != "bzip2":  # the data was all there, only its check failed
        assert out.startswith(PAYLOAD[: -(-len(PAYLOAD) // MEMBERS)])


def test_a_bad_gzip_crc_is_found_at_its_last_byte_after_all_the_data() -> None:
    """The issue's case: a member with a bad CRC delivered nothing and was reported at 0."""
    data = compress(PAYLOAD, "gzip")
    bad = flip(data, len(data) - 8)
    out, err = read_all(open_decompressed(io.BytesIO(bad), "gzip"), 1 << 20)
    assert out == PAYLOAD
    assert err is not None and err.problem == "incorrect data check"
    assert (err.compressed_offset, err.decompressed_offset) == (len(data) - 5, len(PAYLOAD))
    out, err = read_all(open_decompressed(io.BytesIO(flip(data, len(data) - 1)), "gzip"), 4096)
    assert out == PAYLOAD and err is not None and err.problem == "incorrect length check"
    assert err.compressed_offset == len(data) - 1


@pytest.mark.parametrize("name", ["data", "check", "second"])
def test_gzip_without_isal_is_the_same(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """zlib's decompressor is copied before each call: exact even from a pipe."""
    data, ref_out, ref_at = expected("gzip", name)
    monkeypatch.setattr(compression, "_zlib", lambda: zlib)
    for size in (7, 1 << 20):
        stream = open_decompressed(io.BytesIO(data) if size == 7 else _Pipe(data, size), "gzip")  # type: ignore[arg-type]
        assert not isinstance(stream, compression._IsalGzip)
        out, err = read_all(stream, size)
        assert err is not None and out == ref_out
        assert (err.compressed_offset, err.decompressed_offset, err.exact) == (ref_at, len(ref_out), True)


def test_the_error_pickles_whole() -> None:
    err = CorruptStream("xz", "corrupt input data", 12, 34, exact=False)
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.problem, back.compressed_offset, back.decompressed_offset, back.exact) == (
        "xz data is corrupt: corrupt input data", "corrupt input data", 12, 34, False)


def test_gzip_header_errors_are_found_at_their_byte() -> None:
    body = compress(PAYLOAD[:5000], "gzip")
    second = len(body)
    for at, problem in ((2, "unknown compression method"), (3, "unknown header flags set")):
        data = body + flip(body, at, 0x80)  # zlib finds both once it has the two bytes
        for without_isal in (False, True):
            stream = (compression._Incremental(io.BytesIO(data), "gzip") if without_isal
                      else open_decompressed(io.BytesIO(data), "gzip"))
            out, err = read_all(stream, 4096)
            assert out == PAYLOAD[:5000] and err is not None
            assert (err.problem, err.compressed_offset, err.decompressed_offset) == (problem, second + 3, 5000)
            assert reference("gzip", data) == (PAYLOAD[:5000], second + 3)
    # a header CRC (FHCRC) that does not match: found at its second byte
    header = b"\x1f\x8b\x08\x02" + bytes(6)
    good = header + (zlib.crc32(header) & 0xFFFF).to_bytes(2, "little") + body[10:]
    bad = header + ((zlib.crc32(header) + 1) & 0xFFFF).to_bytes(2, "little") + body[10:]
    assert read_all(open_decompressed(io.BytesIO(good), "gzip"), 4096) == (PAYLOAD[:5000], None)
    for stream in (open_decompressed(io.BytesIO(bad), "gzip"), compression._Incremental(io.BytesIO(bad), "gzip")):
        out, err = read_all(stream, 4096)
        assert out == b"" and err is not None and (err.problem, err.compressed_offset) == ("header crc mismatch", 11)


def test_a_corrupt_bzip2_block_delivers_exactly_the_blocks_before_it() -> None:
    data = packed("bzip2", members=1)
    dec, first_block = bz2.BZ2Decompressor(), 0
    for end in range(512, len(data), 512):  # the first block comes out whole, once all of it is in
        first_block = len(dec.decompress(data[end - 512:end]))
        if first_block:
            break
    assert 0 < first_block < len(PAYLOAD)
    bad = flip(data, (end + len(data)) // 2)  # inside the second block
    for size in (7, 1 << 20):
        out, err = read_all(open_decompressed(io.BytesIO(bad), "bzip2"), size)
        assert err is not None and out == PAYLOAD[:first_block]
        assert (err.compressed_offset, err.decompressed_offset) == (reference("bzip2", bad)[1], first_block)


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_input_that_cannot_seek(kind: str, name: str) -> None:
    """From a pipe a decompressor that cannot be copied cannot decode the failing piece again:
    then the error is not exact, but what it says never depends on how the pipe cut the
    data, and the bytes delivered are still only what the decoder produced."""
    data, ref_out, ref_at = expected(kind, name)
    seen = set()
    for seed in (1, 2):
        out, err = read_all(open_decompressed(_Pipe(data, seed), kind), 4096)  # type: ignore[arg-type]
        assert err is not None and ref_out.startswith(out) and err.decompressed_offset == len(out)
        seen.add((out, err.compressed_offset, err.exact))
        if err.exact:
            assert (out, err.compressed_offset) == (ref_out, ref_at)
        else:  # the last byte of the piece (compression._RAW_CHUNK bytes) that failed
            piece = compression._RAW_CHUNK
            assert ref_at is not None and ref_at <= err.compressed_offset < ref_at + piece
            assert err.compressed_offset == min(len(data), (ref_at // piece + 1) * piece) - 1
    assert len(seen) == 1
    if kind == "gzip" and name == "check":  # the gzip trailer is checked outside the decoder
        assert seen.pop()[2]


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_bytes_after_the_last_member(kind: str) -> None:
    data = packed(kind)
    for tail in (b"\0" * 7, b"garbage!", dict(MAGICS)[kind][:-1]):
        out, err = read_all(open_decompressed(io.BytesIO(data + tail), kind), 4096)
        assert out == PAYLOAD
        if kind == "zstd" and not dict(MAGICS)[kind].startswith(tail):  # zstd: an error
            assert err is not None and (err.compressed_offset, err.decompressed_offset) == (len(data), len(PAYLOAD))
        else:
            assert err is None


DATA = st.binary(max_size=3000) | st.builds(lambda n, s: _payload(n)[s:], st.integers(0, 40_000), st.integers(0, 50))


@settings(max_examples=sweep(60), deadline=None)
@given(data=DATA, kind=st.sampled_from(COMPRESSIONS), members=st.integers(1, 3), cut=st.none() | st.floats(0, 1),
       sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=8))
@example(data=b"\0" * 6, kind="zstd", members=1, cut=0.75, sizes=[1])  # zstandard held a byte back
def test_healthy_streams_give_the_same_bytes_whatever_the_reads(data: bytes, kind: str, members: int,
                                                                cut: float | None, sizes: list[int]) -> None:
    packed_ = compress(data, kind, members=members)
    if cut is not None:  # a stream cut short gives what decompressed and no error
        packed_ = packed_[: int(len(packed_) * cut)]
        want, at = reference(kind, packed_)
        assert at is None
    else:
        want = data
    stream = open_decompressed(io.BytesIO(packed_), kind)
    out, i = bytearray(), 0
    while n := stream.readinto(buf := bytearray(sizes[i % len(sizes)])):
        out += buf[:n]
        i += 1
    assert bytes(out) == want
    assert stream.read() == b""


@settings(max_examples=sweep(60), deadline=None)
@given(data=DATA, kind=st.sampled_from(COMPRESSIONS), members=st.integers(1, 3), where=st.floats(0, 1),
       mask=st.integers(1, 255), sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=8))
# the third frame's magic: zstd fails at its last byte, the first that cannot begin a frame
@example(data=bytes(5), kind="zstd", members=3, where=0.75, mask=1, sizes=[1])
# ISA-L rejects this empty dynamic block; zlib waits for more: cut short, no error
@example(data=b"", kind="gzip", members=1, where=0.5, mask=6, sizes=[1])
def test_any_flipped_byte_delivers_what_the_decoder_produced(data: bytes, kind: str, members: int, where: float,
                                                             mask: int, sizes: list[int]) -> None:
    packed_ = compress(data, kind, members=members, **OPTIONS.get(kind, {}))
    at = min(int(len(packed_) * where), len(packed_) - 1)
    if at < SNIFF:  # the magic: not this kind of file any more
        return
    bad = flip(packed_, at, mask)
    want, want_at = reference(kind, bad)
    stream = open_decompressed(io.BytesIO(bad), kind)
    out, i = bytearray(), 0
    try:
        while n := stream.readinto(buf := bytearray(sizes[i % len(sizes)])):
            out += buf[:n]
            i += 1
    except CorruptStream as err:
        assert (err.compressed_offset, err.decompressed_offset, err.exact) == (want_at, len(out), True)
    else:
        assert want_at is None
    assert bytes(out) == want


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_a_closed_stream_is_freed_with_its_decompressor(kind: str) -> None:
    # zstandard's reader takes no part in garbage collection: a reference from it back to
    # the stream made a cycle never freed, ~100 KB per zstd capture opened (found by the
    # fuzzer, fuzz/README.md).  Freed by reference counting alone, without a collection.
    data = compress(bytes(range(256)) * 40, kind)
    for read_all in (True, False):  # to the end, or closed part-way
        stream = open_decompressed(io.BytesIO(data), kind)
        assert stream.read(100 if not read_all else -1)
        stream.close()
        gone = weakref.ref(stream)
        gc.disable()
        try:
            del stream
            assert gone() is None
        finally:
            gc.enable()


def test_an_inexact_error_names_the_piece_it_is_within(cli) -> None:
    """Read from a pipe, an xz stream whose damage its decoder finds late: the line names the
    end of the compressed piece in which it was found, and the piece's size."""
    data = pcap([Rec(1_700_000_000_000_000_000 + i * 1000, eth(ipv4(tcp(40000 + i, 80, flags=SYN))))
                 for i in range(3000)])
    packed = bytearray(compress(data, "xz"))
    packed[len(packed) // 2] ^= 0x55
    proc = cli("bucketize", "-", "-o", "-", input=bytes(packed))
    line = one_error_line(proc)
    assert f"within the {compression._RAW_CHUNK >> 20} MiB of compressed data up to this offset" in line, line
