"""Decompression in a thread ahead of the walk (src/fastpcap/prefetch.py).

The thread must change nothing but the time taken: the same packets, rows, progress and
errors with it as without it (``FASTPCAP_NO_PREFETCH=1``) for every compression; it is
stopped and joined whenever the reading ends (the end, an error, ``--on-corrupt stop``, a
consumer that stops early, a reader dropped unclosed); and it decompresses only a bounded
number of pieces ahead of the reader.
"""

from __future__ import annotations

import gc
import io
import random
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastpcap
from fastpcap import compression, prefetch
from fastpcap.jsonl import format_rows

from conftest import MS, T0, one_error_line
from pcapgen import COMPRESSIONS, Rec, compress, eth, ipv4, pcap, tcp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from traffic import write_capture  # noqa: E402

pytestmark = pytest.mark.once  # the thread sits under the walk, whichever backend walks

THREAD = "fastpcap-decompress"
# Checksums where the format has them optional, so that damage to the data is always found.
OPTIONS = {"zstd": {"checksum": True}, "lz4": {"content_checksum": True}}


_EARLIER: set[threading.Thread] = set()


@pytest.fixture(autouse=True)
def _earlier_threads() -> None:
    """Threads of readers that other tests in this process left to the collector do not count."""
    gc.collect()
    _EARLIER.clear()
    _EARLIER.update(decompressing())


def decompressing() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD and t not in _EARLIER]


def no_thread_left(within: float = 0.0) -> bool:
    deadline = time.monotonic() + within
    while decompressing():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def thread_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FASTPCAP_NO_PREFETCH", raising=False)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """~2.3 MB of synthetic traffic: several 4 MiB-pieces' worth of nothing, but many of
    the small pieces the tests below cut it into."""
    path = tmp_path_factory.mktemp("traffic") / "t.pcap"
    write_capture(str(path), 6000, seed=3)
    return path.read_bytes()


def small_pieces(monkeypatch: pytest.MonkeyPatch, size: int = 1 << 14) -> None:
    """Compressed reads and decompressed pieces of ``size`` bytes: many trips through the queue."""
    monkeypatch.setattr(compression, "_RAW_CHUNK", size)
    monkeypatch.setattr(compression, "_OUT_CHUNK", size)


def everything(source: Path | bytes, monkeypatch: pytest.MonkeyPatch, *, thread: bool) -> tuple:
    """What a run gives: packets, rows, progress (compressed bytes counted), and how many
    times the thread ran; from the file, or from a stream (stdin, say) for ``bytes``."""
    if thread:
        monkeypatch.delenv("FASTPCAP_NO_PREFETCH", raising=False)
    else:
        monkeypatch.setenv("FASTPCAP_NO_PREFETCH", "1")
    started = []
    real = prefetch._decompress
    monkeypatch.setattr(prefetch, "_decompress", lambda *args: started.append(1) or real(*args))

    def opened() -> Path | io.BytesIO:
        return source if isinstance(source, Path) else io.BytesIO(source)

    packets = np.concatenate(list(fastpcap.iter_packets(opened(), block_size=1 << 16))).tobytes()
    counted: list[int] = []
    rows = format_rows(np.concatenate(list(fastpcap.iter_rows(opened(), progress=counted.append))))
    assert no_thread_left()
    return packets, rows, sum(counted), len(started)


@pytest.mark.parametrize("pieces", ["4MiB", "16KiB"])
@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_the_same_with_the_thread_and_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, traffic: bytes,
                                              kind: str, pieces: str) -> None:
    if pieces == "16KiB":
        small_pieces(monkeypatch)
    path = tmp_path / f"t.pcap.{kind}"
    path.write_bytes(compress(traffic, kind, members=3))
    for source in (path, path.read_bytes()):
        with_thread = everything(source, monkeypatch, thread=True)
        without = everything(source, monkeypatch, thread=False)
        assert (with_thread[3], without[3]) == (2, 0)
        assert with_thread[:3] == without[:3]
        if isinstance(source, Path):
            assert with_thread[2] == path.stat().st_size
    assert with_thread[1] == format_rows(fastpcap.bucket_rows(io.BytesIO(traffic)))


def spoilt(kind: str, how: str) -> bytes:
    """A compressed capture (3,000 packets) whose compressed data is damaged: a byte near
    its end (gzip's length, zstd's, lz4's and bzip2's checksum, xz's footer), or 64 bytes
    in the middle."""
    data = pcap([Rec(T0 + i * MS, eth(ipv4(tcp(40000 + i % 999, 80, flags=2)))) for i in range(3000)])
    packed = bytearray(compress(data, kind, **OPTIONS.get(kind, {})))
    if how == "end":
        packed[-2] ^= 0xFF
    else:
        at = len(packed) // 2
        packed[at:at + 64] = random.Random(5).randbytes(64)
    return bytes(packed)


@pytest.mark.parametrize("how", ["end", "middle"])
@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_corrupt_data_is_the_same_one_line_error(cli, tmp_path: Path, kind: str, how: str) -> None:
    path = tmp_path / f"c.pcap.{kind}"
    path.write_bytes(spoilt(kind, how))
    out = tmp_path / "rows.jsonl"
    for args, stdin in (((path,), None), (("-",), path.read_bytes())):
        on = cli("bucketize", *args, "-o", out, input=stdin, env={"FASTPCAP_NO_PREFETCH": ""})
        off = cli("bucketize", *args, "-o", out, input=stdin, env={"FASTPCAP_NO_PREFETCH": "1"})
        if kind == "bzip2" and how == "middle":  # damage that makes bzip2 wait for more data:
            assert (on.returncode, on.stderr) == (off.returncode, off.stderr) == (0, b"")  # cut short
            continue
        line = one_error_line(on)
        assert line == one_error_line(off)
        assert "byte offset " in line and f"{args[0] if stdin is None else '<stdin>'}: " in line
        assert not out.exists()


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_corrupt_data_is_the_same_exception(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"c.pcap.{kind}"
    path.write_bytes(spoilt(kind, "end"))
    got = []
    for flag in ("", "1"):
        monkeypatch.setenv("FASTPCAP_NO_PREFETCH", flag)
        walked = []
        with pytest.raises(fastpcap.CaptureError) as err:
            for chunk in fastpcap.iter_packets(path):
                walked.append(chunk.tobytes())
        got.append((b"".join(walked), str(err.value), err.value.offset))
        assert no_thread_left()
    assert got[0] == got[1]


def test_closing_early_joins_the_thread(thread_on: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        traffic: bytes) -> None:
    small_pieces(monkeypatch)  # the queue is full long before the capture ends
    path = tmp_path / "t.pcap.zst"
    path.write_bytes(compress(traffic, "zstd"))
    # A reader closed after one chunk: the thread is gone when close() returns.
    reader = fastpcap.open_capture(path, block_size=1 << 16)
    chunks = iter(reader)
    next(chunks)
    assert decompressing()
    reader.close()
    assert no_thread_left()
    # A consumer that stops iterating: closing the generator closes the reader.
    packets = fastpcap.iter_packets(path)
    next(packets)
    packets.close()
    assert no_thread_left()


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the file closed unclosed, as without the thread
def test_a_reader_dropped_unclosed_stops_its_thread(thread_on: None, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, traffic: bytes) -> None:
    """The thread holds no reference to the reader's stream: collected, it stops the thread
    (which would otherwise wait for room in the queue for ever, holding the file open)."""
    small_pieces(monkeypatch)
    path = tmp_path / "t.pcap.zst"
    path.write_bytes(compress(traffic, "zstd"))
    reader = fastpcap.open_capture(path)
    assert decompressing()  # started by the first bytes' look
    del reader
    assert no_thread_left(within=2.0)


def test_on_corrupt_stop_joins_the_thread(cli, thread_on: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          traffic: bytes) -> None:
    small_pieces(monkeypatch)
    spoiled = bytearray(traffic)
    spoiled[24 + 8:24 + 12] = (1 << 30).to_bytes(4, "little")  # the first record claims 1 GiB
    path = tmp_path / "t.pcap.gz"
    path.write_bytes(compress(bytes(spoiled), "gzip"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(fastpcap.bucket_rows(path, on_corrupt="stop")) == 0
    assert any("stopped reading there" in str(w.message) for w in caught)
    assert no_thread_left()
    on = cli("bucketize", path, "--on-corrupt", "stop", env={"FASTPCAP_NO_PREFETCH": ""})
    off = cli("bucketize", path, "--on-corrupt", "stop", env={"FASTPCAP_NO_PREFETCH": "1"})
    assert on.returncode == off.returncode == 0
    assert (on.stdout, on.stderr) == (off.stdout, off.stderr) and b"stopped reading there" in on.stderr


def test_the_thread_reads_a_bounded_stretch_ahead(thread_on: None, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """However fast it decompresses and however slowly the reader reads, the thread holds
    at most DEPTH pieces in the queue and one in the making: the file is not read ahead
    further (random payloads: the compressed file is about the capture's size)."""
    piece = 1 << 16
    small_pieces(monkeypatch, piece)
    plain = tmp_path / "t.pcap"
    write_capture(str(plain), 6000, seed=4, random_payload=True)
    packed = compress(plain.read_bytes(), "gzip", level=1)
    assert len(packed) > 30 * piece
    with io.BytesIO(packed) as raw, fastpcap.open_capture(raw, block_size=1 << 16) as reader:
        chunks = iter(reader)
        next(chunks)
        time.sleep(0.5)  # time to read the whole file, were it not held back
        ahead = raw.tell()
        assert ahead <= (prefetch.DEPTH + 4) * piece, ahead
        rest = sum(len(chunk) for chunk in chunks)
    assert rest > 0 and no_thread_left()


def test_a_batch_runs_the_thread_only_one_capture_at_a_time(thread_on: None, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, traffic: bytes) -> None:
    """With several captures at a time every CPU is busy: their workers decompress inline."""
    from fastpcap import batch

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.pcap.zst").write_bytes(compress(traffic, "zstd"))
    threads: list[object] = []  # the readers that decompressed in a thread

    class Counted(prefetch.Prefetched):
        def __init__(self, *args, **kw) -> None:
            super().__init__(*args, **kw)
            threads.append(self)

    monkeypatch.setattr(prefetch, "Prefetched", Counted)
    monkeypatch.setattr(batch, "_pool", lambda workers, inherited=(): batch._in_process)  # (in this process)
    for jobs, want in ((1, 2), (2, 0)):
        threads.clear()
        result = fastpcap.bucketize_many([folder], tmp_path / f"out{jobs}", jobs=jobs, force=True)
        assert result.status == 0 and len(threads) == want
    assert (tmp_path / "out1" / "a.jsonl").read_bytes() == (tmp_path / "out2" / "a.jsonl").read_bytes()
    with fastpcap.open_capture(folder / "a.pcap.zst") as reader:  # outside a batch: the thread again
        assert sum(len(c) for c in reader) and len(threads) == 1
