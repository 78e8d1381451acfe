"""--jobs N: byte ranges bucketized in parallel processes give exactly the rows of one process.

Ranges are normally at least 32 MiB; these tests shrink them (the workers are forked, so they
see the patched value) to cut small captures into many ranges, including ranges that start
mid-record, hold nothing, end in a partial record or a corrupt one, or whose packets belong in
an earlier range's bucket.
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpcap
from fastpcap import parallel
from fastpcap.jsonl import format_rows

from oracle import oracle
from pcapgen import ACK, SYN, Rec, eth, ipv4, ipv6, pcap, tcp, udp
from strategies import captures, extended_captures, sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from traffic import write_capture  # noqa: E402

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch):
    def shrink(nbytes: int) -> None:
        monkeypatch.setattr(parallel, "MIN_RANGE_BYTES", nbytes)
    return shrink


def run(path: Path, jobs: int, **kw) -> tuple[object, list]:
    """The rows (or the error line) and the warnings of one run."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out: object = b"".join(format_rows(b) for b in fastpcap.iter_rows(path, jobs=jobs, **kw))
        except fastpcap.CaptureError as exc:
            out = str(exc)
    return out, [(w.category.__name__, str(w.message)) for w in caught]


_last_stats: list[dict] = []


@pytest.fixture(autouse=True)
def record_stats(monkeypatch: pytest.MonkeyPatch):
    original = parallel.bucketize_parallel

    def spy(reader, *args, **kw):
        yield from original(reader, *args, **kw)
        stats = dict(reader.split_stats)
        assert stats.pop("crashed") == 0, "a worker process crashed"
        _last_stats.append(stats)

    monkeypatch.setattr(fastpcap.api, "bucketize_parallel", spy)


def test_realistic_capture_every_range_is_spliced(tmp_path: Path, small_ranges) -> None:
    path = tmp_path / "traffic.pcap"
    write_capture(str(path), 60_000, seed=3)
    small_ranges(1 << 20)
    one = run(path, 1)
    for jobs in (2, 3, 7):
        assert run(path, jobs) == one
        stats = _last_stats.pop()
        assert stats == {"ranges": jobs, "spliced": jobs, "walked_here": 0}
    assert one[0] == oracle(path.read_bytes()).jsonl


@pytest.mark.parametrize("splice", [True, False], ids=["spliced", "walked_here"])
def test_progress_moves_while_the_workers_read(tmp_path: Path, small_ranges, monkeypatch: pytest.MonkeyPatch,
                                               splice: bool) -> None:
    """The bar follows the bytes the workers read, before any range is finished, and adds up
    to the file's size exactly once, also when a range is walked again in the main process."""
    path = tmp_path / "traffic.pcap"
    size = write_capture(str(path), 30_000, seed=5)
    small_ranges(1 << 20)
    monkeypatch.setattr(parallel, "PROGRESS_MARGIN", 4096)
    monkeypatch.setattr(parallel, "PROGRESS_INTERVAL_S", 0.01)
    original = parallel._segment

    def slow_to_answer(*args, **kw):  # runs in the (forked) worker, after it read its range
        segment = original(*args, **kw)
        time.sleep(0.5)
        return segment if splice else parallel.Segment(start=None, failed=True)

    monkeypatch.setattr(parallel, "_segment", slow_to_answer)
    told: list[int] = []
    rows = fastpcap.iter_rows(path, jobs=3, progress=told.append)
    first = next(rows)
    before_rows = sum(told)
    assert 0 < before_rows < size  # moved while waiting for the first range (minus its margin)
    rest = [first, *rows]
    assert sum(told) == size and all(n > 0 for n in told)
    assert b"".join(format_rows(b) for b in rest) == oracle(path.read_bytes()).jsonl
    stats = _last_stats.pop()
    assert stats == ({"ranges": 3, "spliced": 3, "walked_here": 0} if splice else
                     {"ranges": 3, "spliced": 0, "walked_here": 3})


def test_nanosecond_big_endian_capture(tmp_path: Path, small_ranges) -> None:
    path = tmp_path / "traffic.pcap"
    write_capture(str(path), 20_000, seed=5, nsec=True)
    small_ranges(1 << 19)
    assert run(path, 4)[0] == run(path, 1)[0]
    assert _last_stats.pop()["spliced"] == 4


def test_clock_going_back_across_a_range_boundary(tmp_path: Path, small_ranges) -> None:
    # The first half runs far ahead (an hour of packets), the second half restarts earlier:
    # all of the second half belongs in the first half's last bucket.
    frame = eth(ipv4(udp(1, 53), proto=17, dst="10.0.0.1"))
    recs = [Rec(T0 + i * 300 * MS, frame) for i in range(2000)]
    recs += [Rec(T0 + i * 7 * MS, eth(ipv4(tcp(2, i % 50, flags=SYN), dst=f"10.0.1.{i % 9}"))) for i in range(2000)]
    path = tmp_path / "back.pcap"
    path.write_bytes(pcap(recs))
    small_ranges(4096)
    for jobs in (2, 5):
        assert run(path, jobs) == run(path, 1)
    assert run(path, 1)[0] == oracle(path.read_bytes()).jsonl


def test_zero_filled_payloads_do_not_fool_the_boundary_search(tmp_path: Path, small_ranges) -> None:
    frame = eth(ipv4(tcp(1, 2, flags=ACK) + bytes(1400)))
    path = tmp_path / "zeros.pcap"
    path.write_bytes(pcap([Rec(T0 + i * MS, frame) for i in range(3000)]))
    small_ranges(64 << 10)
    assert run(path, 6)[0] == run(path, 1)[0]
    assert _last_stats.pop()["spliced"] == 6


def test_corrupt_record_in_a_later_range(tmp_path: Path, small_ranges) -> None:
    frame = eth(ipv4(tcp(flags=SYN)))
    good = pcap([Rec(T0 + i * MS, frame) for i in range(5000)])
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(good + pcap([Rec(T0, bytes(30), incl_len=999_999)])[24:] + bytes(200))
    small_ranges(8192)
    one = run(path, 1)[0]
    assert isinstance(one, str) and f"byte offset {len(good)}" in one and "record 5001 " in one
    assert run(path, 4)[0] == one


@settings(max_examples=sweep(90), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=st.one_of(captures(max_records=60, errors=True), extended_captures(max_records=60)),
       jobs=st.integers(2, 6), size=st.integers(40, 400))
def test_any_capture_any_split(tmp_path: Path, small_ranges, case, jobs: int, size: int) -> None:
    data, kw = case
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    small_ranges(size)
    assert run(path, jobs, **kw) == run(path, 1, **kw)
    _last_stats.clear()


def test_extended_decode_ipv6_destinations_unite_across_ranges(tmp_path: Path, small_ranges) -> None:
    # Few destinations, IPv4 and IPv6, seen on both sides of every range boundary within one
    # bucket: the spliced bucket counts each once (the ranges' sets are united).
    recs = []
    for k in range(3000):
        t = T0 + (k // 40) * 100 * MS + (k % 40) * MS
        if k % 3:
            frame = eth(ipv6(udp(40000 + k % 5, 53 + k % 7), src="fd00::2", dst=f"fd00::{(k % 40) // 4 + 10:x}"),
                        ethertype=0x86DD)
        else:
            frame = eth(ipv4(tcp(flags=SYN | ACK if k % 2 else SYN), dst=f"10.0.0.{(k % 40) // 5}"))
        recs.append(Rec(t, frame))
    path = tmp_path / "v6.pcap"
    path.write_bytes(pcap(recs))
    one = run(path, 1, decode="extended")
    assert one[0] == oracle(path.read_bytes(), decode="extended").jsonl
    for size in (997, 4099, 20011):  # boundaries inside buckets, at many different places
        small_ranges(size)
        for jobs in (2, 5):
            assert run(path, jobs, decode="extended") == one
            stats = _last_stats.pop()
            assert stats["ranges"] > 1 and stats["spliced"] >= 1


def test_streams_and_small_files_use_one_process(tmp_path: Path) -> None:
    path = tmp_path / "small.pcap"
    path.write_bytes(pcap([Rec(T0, eth(ipv4(tcp())))]))
    fastpcap.bucket_rows(path, jobs=8)
    fastpcap.bucket_rows(io.BytesIO(path.read_bytes()), jobs=8)
    assert _last_stats == []


@pytest.mark.once
def test_plan() -> None:
    size = 24 + 100 * (32 << 20)
    assert parallel.plan(size, 4) == [24 + k * 25 * (32 << 20) for k in range(4)] + [size]
    assert parallel.plan(24 + (32 << 20) * 3 // 2, 4) == [24, 24 + (32 << 20) * 3 // 2]
    assert parallel.usable_jobs(3) == 3 and parallel.usable_jobs(None) >= 1


CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
CORPUS_PCAPS = sorted(p.name for p in CORPUS.glob("*") if p.is_file() and p.read_bytes()[:4] in (
    b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")) if CORPUS.exists() else []


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS_PCAPS, reason="the shared capture corpus is not here (a clone without ../shared)")
@pytest.mark.parametrize("decode", ["reference", "extended"])
def test_corpus_captures_split_three_ways(small_ranges, decode: str) -> None:
    # Every classic pcap of the corpus, cut into three ranges wherever it is big enough.
    for name in CORPUS_PCAPS:
        path = CORPUS / name
        small_ranges(max(64, path.stat().st_size // 3))
        assert run(path, 3, decode=decode) == run(path, 1, decode=decode), name
    _last_stats.clear()
