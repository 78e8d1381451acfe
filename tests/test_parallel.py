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
from pcapgen import (
    ACK,
    SYN,
    Rec,
    custom_block,
    dsb,
    epb,
    eth,
    idb,
    ipv4,
    ipv6,
    isb,
    nrb,
    pcap,
    pcapng,
    shb,
    spb,
    tcp,
    ts_units,
    udp,
)
from strategies import captures, extended_captures, pcapng_captures, sweep

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


@settings(max_examples=sweep(150), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(case=st.one_of(captures(max_records=60, errors=True), extended_captures(max_records=60),
                      pcapng_captures(max_records=60, errors=True)),
       jobs=st.integers(2, 6), size=st.integers(40, 400))
def test_any_capture_any_split(tmp_path: Path, small_ranges, case, jobs: int, size: int) -> None:
    # classic pcap and pcapng (told apart by their first bytes), either decode, corrupt ones too
    data, kw = case
    path = tmp_path / "c.cap"
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


# -- pcapng: split at block boundaries, each range walked in the section state in force there

def _frame(i: int) -> bytes:
    if i % 3:
        return eth(ipv4(tcp(1000 + i % 7, 80 + i % 5, flags=SYN if i % 11 == 0 else ACK), dst=f"10.0.{i % 4}.{i % 13}"))
    return eth(ipv4(udp(53, 2000 + i % 9), proto=17, dst="10.200.0.1"))


def _section(t0: int, n: int, *, byteorder: str, mid_idb: bool) -> list[bytes]:
    """A section: an Ethernet interface in microseconds and a raw-IP one in 2^-20 s with an
    offset, packets on both with other blocks between them, an Ethernet interface in
    nanoseconds described halfway (``mid_idb``), and simple packet blocks at the end."""
    bo = {"byteorder": byteorder}
    blocks = [shb(**bo), nrb(**bo), idb(1, **bo), idb(101, tsresol=128 + 20, tsoffset=5, **bo)]
    ifaces = [(None, 0), (128 + 20, 5)]
    for i in range(n):
        if mid_idb and i == n // 2:
            blocks.append(idb(1, tsresol=9, **bo))
            ifaces.append((9, 0))
        iface = i % len(ifaces)
        tsresol, tsoffset = ifaces[iface]
        t = t0 + i * 3 * MS + (i % 4) * 1000
        if tsresol == 128 + 20:  # (a time in 2^-20 s: whatever the reader makes of it)
            units = (t - tsoffset * 1_000_000_000) * (1 << 20) // 1_000_000_000
        else:
            units = ts_units(t, tsresol=tsresol, tsoffset=tsoffset)
        frame = _frame(i)
        blocks.append(epb(iface, units,
                          frame[14:] if iface == 1 else frame, **bo))
        if i % 50 == 7:
            blocks.append([isb(0, **bo), dsb(**bo), custom_block(b"abc", **bo), nrb(**bo)][i // 50 % 4])
    blocks += [spb(_frame(i), **bo) for i in range(5)]
    return blocks


def _pcapng(path: Path, *, sections: int = 1, mid_idb: bool = False, n: int = 3000) -> int:
    blocks = []
    for k in range(sections):
        blocks += _section(T0 + k * 4000 * MS, n, byteorder=("little", "big")[k % 2], mid_idb=mid_idb)
    path.write_bytes(pcapng(blocks))
    return path.stat().st_size


def test_pcapng_one_section_every_range_is_spliced(tmp_path: Path, small_ranges) -> None:
    path = tmp_path / "one.pcapng"
    size = _pcapng(path, n=6000)
    small_ranges(size // 7)
    one = run(path, 1)
    assert one[0] == oracle(path.read_bytes()).jsonl
    for jobs in (2, 3, 7):
        assert run(path, jobs) == one
        assert _last_stats.pop() == {"ranges": jobs, "spliced": jobs, "walked_here": 0}


@pytest.mark.parametrize("sections,mid_idb", [(1, True), (3, False), (4, True)])
def test_pcapng_sections_and_interfaces_described_mid_file(tmp_path: Path, small_ranges, sections: int,
                                                           mid_idb: bool) -> None:
    # A range that starts after a later section header or interface description than the
    # first packet's is walked here; every other is spliced.
    path = tmp_path / "many.pcapng"
    size = _pcapng(path, sections=sections, mid_idb=mid_idb)
    one = run(path, 1)
    assert one[0] == oracle(path.read_bytes()).jsonl
    for jobs in (2, 3, 8):
        small_ranges(size // jobs)
        assert run(path, jobs) == one
        stats = _last_stats.pop()
        assert stats["ranges"] == jobs and stats["spliced"] >= 1
        assert stats["spliced"] + stats["walked_here"] == jobs


def test_pcapng_progress_counts_every_byte_once(tmp_path: Path, small_ranges) -> None:
    path = tmp_path / "p.pcapng"
    size = _pcapng(path, sections=2, mid_idb=True)
    small_ranges(size // 5)
    for jobs in (1, 3, 5):
        told: list[int] = []
        rows = b"".join(format_rows(b) for b in fastpcap.iter_rows(path, jobs=jobs, progress=told.append))
        assert sum(told) == size and rows == run(path, 1)[0]
    _last_stats.clear()


@pytest.mark.parametrize("on_corrupt", ["error", "stop", "resync"])
@pytest.mark.parametrize("bad", ["trailer", "interface", "length"])
def test_pcapng_corrupt_block_in_a_later_range(tmp_path: Path, small_ranges, on_corrupt: str, bad: str) -> None:
    path = tmp_path / "c.pcapng"
    _pcapng(path, sections=3)
    data = bytearray(path.read_bytes())
    good = len(data) * 3 // 4  # (in the third section, little-endian)
    at = next(a for a in range(good - good % 4, len(data), 4)
              if data[a:a + 4] == b"\x06\0\0\0" and int.from_bytes(data[a + 4:a + 8], "little") < 400)
    length = int.from_bytes(data[at + 4:at + 8], "little")
    if bad == "trailer":
        data[at + length - 4:at + length] = (length + 4).to_bytes(4, "little")
    elif bad == "interface":
        data[at + 8:at + 12] = (7).to_bytes(4, "little")
    else:
        data[at + 4:at + 8] = (length + 2).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    one = run(path, 1, on_corrupt=on_corrupt)
    if on_corrupt == "error":
        assert isinstance(one[0], str) and f"byte offset {at}" in one[0]
    else:
        assert one[1] and f"{at}" in one[1][0][1]
    for jobs in (2, 4):
        small_ranges(len(data) // jobs)
        assert run(path, jobs, on_corrupt=on_corrupt) == one
    _last_stats.clear()


CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
CORPUS_PCAPS = sorted(p.name for p in CORPUS.glob("*") if p.is_file() and p.read_bytes()[:4] in (
    b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")) if CORPUS.exists() else []
CORPUS_PCAPNGS = sorted(p.name for p in CORPUS.glob("*") if p.is_file()
                        and p.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a") if CORPUS.exists() else []


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


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS_PCAPNGS, reason="the shared capture corpus is not here (a clone without ../shared)")
@pytest.mark.parametrize("jobs", [2, 3])
def test_corpus_pcapngs_split(small_ranges, jobs: int) -> None:
    # Every pcapng of the corpus, cut into ranges wherever it is big enough.
    for name in CORPUS_PCAPNGS:
        path = CORPUS / name
        small_ranges(max(64, path.stat().st_size // jobs))
        for on_corrupt in ("error", "resync"):
            assert run(path, jobs, on_corrupt=on_corrupt) == run(path, 1, on_corrupt=on_corrupt), name
    _last_stats.clear()
