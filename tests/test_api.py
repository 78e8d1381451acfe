"""The Python API: the drop-in's contract, packet arrays, streaming, errors, warnings."""

from __future__ import annotations

import errno
import io
import ipaddress
import pickle
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastpcap
from fastpcap.reader import concatenate

from oracle import oracle
from pcapgen import ACK, SYN, Rec, compress, epb, eth, idb, ipv4, pcap, pcapng, shb, tcp, udp

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
HOST = "10.200.0.1"


def sample_capture(n: int = 10, step_ms: int = 30) -> bytes:
    recs = []
    for i in range(n):
        if i % 3 == 0:
            frame = eth(ipv4(udp(40000 + i, 53), src="10.200.0.2", dst=HOST, proto=17))
        else:
            frame = eth(ipv4(tcp(80, 40000 + i, flags=SYN | ACK), src=HOST, dst=f"10.200.1.{i % 200}"))
        recs.append(Rec(T0 + i * step_ms * MS, frame))
    return pcap(recs)


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "in.pcap"
    path.write_bytes(sample_capture())
    return path


# -- the drop-in ------------------------------------------------------------------------

@pytest.mark.once
def test_bucketize_missing_capture_returns_zero_and_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir" / "netflow.jsonl"
    assert fastpcap.bucketize(tmp_path / "nope.pcap", out) == 0
    assert not (tmp_path / "new").exists()


def test_bucketize_creates_parents_appends_and_returns_rows(capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "episode" / "1" / "netflow.jsonl"
    expected = oracle(capture.read_bytes()).jsonl
    n = fastpcap.bucketize(capture, out)
    assert n == expected.count(b"\n") == 3
    assert out.read_bytes() == expected
    assert fastpcap.bucketize(str(capture), str(out)) == n  # str paths too
    assert out.read_bytes() == expected * 2  # appended, like the reference


def test_bucketize_keyword_arguments(capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "netflow.jsonl"
    kw = dict(bucket_ms=7, t_mono_origin_ns=T0 - 5, bridge_ip="10.200.0.2", max_gap_s=None)
    n = fastpcap.bucketize(capture, out, **kw)
    assert out.read_bytes() == oracle(capture.read_bytes(), **kw).jsonl
    assert n == len(out.read_bytes().splitlines())


def test_bucketize_empty_capture_creates_an_empty_file(tmp_path: Path) -> None:
    pcap_path = tmp_path / "empty.pcap"
    pcap_path.write_bytes(pcap([]))
    out = tmp_path / "netflow.jsonl"
    assert fastpcap.bucketize(pcap_path, out) == 0
    assert out.exists() and out.read_bytes() == b""


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3", pcap([])[:10], pcap([])])
def test_a_capture_that_just_started_has_no_packets(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "start.pcap"
    path.write_bytes(data)
    assert len(fastpcap.read_packets(path)) == 0
    assert len(fastpcap.bucket_rows(path)) == 0


def test_bucketize_bad_capture_raises_and_keeps_the_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"GET / HTTP/1.1\r\n\r\n" + bytes(40))
    out = tmp_path / "netflow.jsonl"
    out.write_bytes(b"previous rows\n")
    with pytest.raises(fastpcap.CaptureError) as err:
        fastpcap.bucketize(bad, out)
    assert isinstance(err.value, ValueError)
    assert str(err.value) == f"{bad}: byte offset 0: not a capture (unknown magic 0x47455420)"
    assert (err.value.path, err.value.offset) == (str(bad), 0)
    assert out.read_bytes() == b"previous rows\n"
    fresh = tmp_path / "fresh" / "netflow.jsonl"
    with pytest.raises(fastpcap.CaptureError):
        fastpcap.bucketize(bad, fresh)
    assert not fresh.exists()


def test_corrupt_record_mid_file_rolls_the_append_back(tmp_path: Path) -> None:
    good = sample_capture(n=400, step_ms=50)  # enough rows to be written before the error
    corrupt_at = len(good)
    data = good + pcap([Rec(T0 + 10**11, bytes(60), incl_len=300_000)])[24:]
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(data)
    out = tmp_path / "netflow.jsonl"
    out.write_bytes(b"previous rows\n")
    with pytest.raises(fastpcap.CaptureError) as err:
        fastpcap.bucketize(path, out)
    assert err.value.offset == corrupt_at
    assert "claims 300000 captured bytes" in str(err.value) and "262144" in str(err.value)
    assert out.read_bytes() == b"previous rows\n"


def test_unreadable_paths_raise_capture_error(tmp_path: Path) -> None:
    """An unopenable path is a CaptureError that is also the OSError a user would catch."""
    missing = tmp_path / "missing.pcap"
    with pytest.raises(FileNotFoundError) as err:
        fastpcap.read_packets(missing)
    assert isinstance(err.value, fastpcap.UnreadableCaptureError) and isinstance(err.value, fastpcap.CaptureError)
    assert str(err.value) == f"{missing}: cannot read: No such file or directory"
    assert (err.value.errno, err.value.filename, err.value.offset) == (errno.ENOENT, str(missing), None)
    again = pickle.loads(pickle.dumps(err.value))  # as a worker process raises it
    assert type(again) is type(err.value) and str(again) == str(err.value) and again.errno == errno.ENOENT
    with pytest.raises(IsADirectoryError, match=r"^[^:]*: cannot read: Is a directory$"):
        fastpcap.bucket_rows(tmp_path)
    plain = tmp_path / "plain.pcap"
    plain.write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        fastpcap.bucket_rows(plain / "inside.pcap")
    with pytest.raises(OSError, match="cannot read"):
        fastpcap.bucket_rows(missing)


# -- packets ------------------------------------------------------------------------------

def test_read_packets_fields(capture: Path) -> None:
    packets = fastpcap.read_packets(capture)
    assert packets.dtype == fastpcap.PACKET_DTYPE and len(packets) == 10
    first, second = packets[0], packets[1]
    assert first["t_ns"] == T0 and first["offset"] == 24
    assert ipaddress.IPv4Address(int(first["src_ip"])) == ipaddress.IPv4Address("10.200.0.2")
    assert (first["ip_proto"], first["src_port"], first["dst_port"]) == (17, 40000, 53)
    assert first["decoded"] == fastpcap.DEC_LINK | fastpcap.DEC_IPV4 | fastpcap.DEC_PORTS
    assert first["cls"] == fastpcap.CLS_UDP | fastpcap.CLS_DNS_QUERY
    assert second["cls"] == fastpcap.CLS_TCP | fastpcap.CLS_SYN  # SYN+ACK: not a new flow
    assert first["ethertype"] == 0x0800 and first["linktype"] == 1
    assert first["caplen"] == first["wirelen"] == 14 + 20 + 8
    assert second["offset"] == 24 + 16 + first["caplen"]
    assert second["tcp_flags"] == SYN | ACK and second["src_ip"] == 0x0AC80001
    assert second["t_ns"] == T0 + 30 * MS


def test_padding_bytes_are_zero(capture: Path) -> None:
    # So that packet arrays from both backends are equal byte for byte.
    raw = fastpcap.read_packets(capture).view(np.uint8).reshape(-1, fastpcap.PACKET_DTYPE.itemsize)
    assert not raw[:, 44:].any()


@pytest.mark.parametrize("chunk", [1, 3, 7, 10, 11])
def test_iter_packets_chunks(capture: Path, chunk: int) -> None:
    chunks = list(fastpcap.iter_packets(capture, chunk_packets=chunk))
    assert [len(c) for c in chunks] == [min(chunk, 10 - i) for i in range(0, 10, chunk)]
    assert concatenate(chunks, fastpcap.PACKET_DTYPE).tobytes() == fastpcap.read_packets(capture).tobytes()


def test_iter_packets_blocks_smaller_than_a_record(tmp_path: Path) -> None:
    big = eth(ipv4(tcp(flags=SYN) + bytes(9000)))
    path = tmp_path / "jumbo.pcap"
    path.write_bytes(pcap([(T0, big), (T0 + MS, big[:100]), (T0 + 2 * MS, big)]))
    for block in (16, 17, 100, 4096):
        got = concatenate(list(fastpcap.iter_packets(path, block_size=block)), fastpcap.PACKET_DTYPE)
        assert got.tobytes() == fastpcap.read_packets(path).tobytes()
        assert list(got["caplen"]) == [len(big), 100, len(big)]


@pytest.mark.once
def test_iter_packets_validates_arguments(capture: Path) -> None:
    with pytest.raises(ValueError):
        next(fastpcap.iter_packets(capture, chunk_packets=0))
    with pytest.raises(ValueError):
        next(fastpcap.iter_packets(capture, block_size=8))


def test_reader_reports_header_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    data = pcap([(T0, eth())], byteorder="big", nsec=True, snaplen=1500, linktype=0x30000001)
    path.write_bytes(data + b"\x00" * 7)
    with fastpcap.PcapReader(path) as reader:
        h = reader.header
        assert (h.byteorder, h.nsec, h.snaplen, h.linktype, h.network, h.version) == (
            "big", True, 1500, 1, 0x30000001, (2, 4))
        assert sum(len(c) for c in reader) == 1
        assert (reader.packets, reader.end_offset, reader.tail_bytes) == (1, len(data), 7)


# -- rows ---------------------------------------------------------------------------------

def test_bucket_rows_from_a_path_an_array_and_chunks(capture: Path) -> None:
    from_path = fastpcap.bucket_rows(capture)
    packets = fastpcap.read_packets(capture)
    assert from_path.dtype == fastpcap.ROW_DTYPE
    assert fastpcap.bucket_rows(packets).tobytes() == from_path.tobytes()
    chunks = [packets[i:i + 2] for i in range(0, len(packets), 2)]
    assert fastpcap.bucket_rows(chunks).tobytes() == from_path.tobytes()
    assert fastpcap.format_rows(from_path) == oracle(capture.read_bytes()).jsonl


def test_packets_built_elsewhere_get_their_classes_recomputed(capture: Path) -> None:
    """An array of packets made outside a walk (``cls`` left zero, or wrong) gives the rows
    its other fields say, and the caller's array is left as it was."""
    from_path = fastpcap.bucket_rows(capture)
    packets = fastpcap.read_packets(capture)
    for wrong in (0, 0xFF):
        mine = packets.copy()
        mine["cls"] = wrong
        assert fastpcap.bucket_rows(mine).tobytes() == from_path.tobytes()
        assert fastpcap.bucket_rows([mine[:4], mine[4:]]).tobytes() == from_path.tobytes()
        assert (mine["cls"] == wrong).all()


def test_one_bucket_of_more_packets_than_a_16_bit_counter_holds() -> None:
    """Counters are summed in 16-bit fields per step of at most 65,535 packets: a bucket of
    200,000 TCP SYNs (one array, fed whole) still counts every one."""
    n = 200_000
    frame = eth(ipv4(tcp(40000, 80, flags=SYN), src=HOST, dst="10.200.1.1"))
    packets = fastpcap.read_packets(io.BytesIO(pcap([Rec(T0, frame)] * 3)))
    packets = np.repeat(packets[:1], n)
    (row,) = fastpcap.bucket_rows(packets)
    assert (row["pkts_out"], row["syn_count"], row["tcp_count"], row["tcp_new_flows"]) == (n, n, n, n)
    assert row["bytes_out"] == n * int(packets["caplen"][0]) and row["pkts_in"] == 0


def test_bucket_rows_of_nothing() -> None:
    rows = fastpcap.bucket_rows(np.zeros(0, dtype=fastpcap.PACKET_DTYPE))
    assert rows.dtype == fastpcap.ROW_DTYPE and len(rows) == 0


@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_open_bucket_carries_across_chunks(tmp_path: Path, chunk: int) -> None:
    # Many packets per bucket, repeated destinations, out-of-order stragglers, gaps: the
    # distinct sets and counters of a bucket split over chunks must add up exactly.
    recs = []
    for i in range(300):
        t = T0 + (i * 7 % 13) * MS + (i // 20) * 100 * MS + (i // 100) * 2_000 * MS
        dst = f"10.0.{i % 5}.{i % 3}"
        recs.append(Rec(t, eth(ipv4(udp(1, i % 7), dst=dst, proto=17))))
    path = tmp_path / "many.pcap"
    path.write_bytes(pcap(recs))
    whole = fastpcap.bucket_rows(fastpcap.read_packets(path))
    assert fastpcap.format_rows(whole) == oracle(path.read_bytes()).jsonl
    chunked = fastpcap.bucket_rows(fastpcap.iter_packets(path, chunk_packets=chunk))
    assert chunked.tobytes() == whole.tobytes()


def test_iter_rows_streams_huge_gaps_in_blocks(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(flags=SYN)))
    path = tmp_path / "gap.pcap"
    gap_rows = 3 * fastpcap.buckets.ROWS_PER_BLOCK + 5
    path.write_bytes(pcap([(T0, frame), (T0 + (gap_rows + 1) * MS, frame)]))
    blocks = list(fastpcap.iter_rows(path, bucket_ms=1, max_gap_s=None))
    assert max(len(b) for b in blocks) <= fastpcap.buckets.ROWS_PER_BLOCK
    rows = np.concatenate(blocks)
    assert len(rows) == gap_rows + 2
    assert (np.diff(rows["t_wall_ns"]) == MS).all()
    assert list(rows["pkts_in"][[0, -1]]) == [1, 1] and rows["pkts_in"][1:-1].sum() == 0


def test_gap_warning_names_packet_and_offset(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(flags=SYN), src="10.200.0.1", dst="10.200.0.2"))
    path = tmp_path / "jump.pcap"
    data = pcap([(T0, frame), (T0 + MS, frame), (T0 + 7200 * 10**9, frame), (T0 + 14400 * 10**9, frame)])
    path.write_bytes(data)
    third = 24 + 2 * (16 + len(frame))
    with pytest.warns(fastpcap.GapWarning) as caught:
        rows = fastpcap.bucket_rows(path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{path}: the gap cap of 3600 s cut 2 gap(s) holding 143998 empty")
    assert f"packet 3 (byte offset {third})" in message
    assert len(rows) == 3


def _warnings_of(source: object, **options: object) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fastpcap.bucket_rows(source, **options)  # type: ignore[arg-type]
    return caught


@pytest.mark.parametrize("jobs", [1, 2])
def test_host_address_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    """IP traffic with no packet from the host addresses: one warning naming them (also when
    the capture is split among processes: the check reads the rows)."""
    monkeypatch.setattr(fastpcap.parallel, "MIN_RANGE_BYTES", 16 << 10)
    def capture(name: str, frames: list[bytes]) -> Path:
        path = tmp_path / name
        path.write_bytes(pcap([Rec(T0 + i * 7 * MS, f) for i, f in enumerate(frames)]))
        return path

    other = capture("other.pcap", [eth(ipv4(tcp(40000 + i, 80, flags=SYN), src="192.168.1.5", dst="192.168.1.9"))
                                   for i in range(3000)])
    caught = _warnings_of(other, jobs=jobs)
    assert [(w.category, str(w.message)) for w in caught] == [(
        fastpcap.HostAddressWarning,
        f"{other}: no IP packet came from the host address 10.200.0.1, so every row counts 0 packets out; if the "
        "capture's own address is another, give it with --bridge-ip or --host-ip (bridge_ip=, host_ips=)")]
    caught = _warnings_of(other, host_ips=["10.0.0.1", "fd00::1"], decode="extended")
    assert [str(w.message).split(", so")[0] for w in caught] == \
        [f"{other}: no IP packet came from the host address 10.0.0.1, fd00::1"]
    assert _warnings_of(other, bridge_ip="192.168.1.5", jobs=jobs) == []  # the right address: silent
    assert _warnings_of(other, host_ips=["10.0.0.1", "192.168.1.5"]) == []
    # one packet out is enough, wherever it is; traffic with no IP at all says nothing
    one_out = capture("one.pcap", [*[eth(ipv4(udp(5, 53), proto=17))] * 2000,
                                   eth(ipv4(udp(53, 5), src="10.200.0.1", dst="10.200.0.2", proto=17))])
    assert _warnings_of(one_out, jobs=jobs) == []
    assert _warnings_of(capture("arp.pcap", [eth(b"\0" * 28, ethertype=0x0806)] * 5)) == []
    assert _warnings_of(capture("empty.pcap", [])) == []


@pytest.mark.parametrize("kind", ["plain", "pcapng", "gzip", "zstd", "stream"])
def test_progress_counts_each_byte_of_the_file_once(tmp_path: Path, kind: str) -> None:
    """``progress`` adds up to the file's size (compressed: the compressed size), although
    the first bytes are looked at before they are read and a classic file's first record
    header is read twice."""
    frames = [eth(ipv4(tcp(40000 + i, 80, flags=SYN))) for i in range(300)]
    if kind == "pcapng":
        data = pcapng([shb(), idb(), *(epb(0, T0 // 1000 + i, f) for i, f in enumerate(frames))])
    else:
        data = pcap([Rec(T0 + i * MS, f) for i, f in enumerate(frames)])
        if kind in ("gzip", "zstd"):
            data = compress(data, kind)
    path = tmp_path / "c"
    path.write_bytes(data)
    told: list[int] = []
    source = io.BytesIO(data) if kind == "stream" else path
    rows = fastpcap.bucket_rows(source, progress=told.append)  # type: ignore[arg-type]
    assert rows["pkts_in"].sum() == 300
    assert sum(told) == len(data) and all(n > 0 for n in told)


def test_header_only_capture_of_an_undecoded_link_type_warns_nothing(tmp_path: Path) -> None:
    """A capture with no frames has nothing counted by size only: no "0 frame(s)" warning."""
    for linktype in (105, 147):  # 802.11, a user link type: both counted by size only
        path = tmp_path / f"lt{linktype}.pcap"
        path.write_bytes(pcap([], linktype=linktype))
        assert _warnings_of(path) == [] and len(fastpcap.bucket_rows(path)) == 0
        path.write_bytes(pcap([Rec(T0, b"\x08" * 40)], linktype=linktype))
        caught = _warnings_of(path)
        assert [w.category for w in caught] == [fastpcap.LinkTypeWarning]
        assert "1 frame(s) of link type" in str(caught[0].message)


def test_argument_validation(capture: Path) -> None:
    for bad in (0, -100, 1.5, True, "100"):
        with pytest.raises((TypeError, ValueError)):
            fastpcap.bucket_rows(capture, bucket_ms=bad)
    for bad_ip in ("10.200.0.01", "10.200.0", "::1", "host"):
        with pytest.raises(ValueError, match="not an IPv4 address"):
            fastpcap.bucket_rows(capture, bridge_ip=bad_ip)
    for bad_gap in (-1, "soon", float("nan")):
        with pytest.raises(ValueError):
            fastpcap.bucket_rows(capture, max_gap_s=bad_gap)
    assert len(fastpcap.bucket_rows(capture, max_gap_s=float("inf"))) == 3


def test_memory_stays_bounded_on_a_large_capture(tmp_path: Path) -> None:
    # ~60 MB of capture through the whole pipeline; Python and numpy allocations (tracked
    # by tracemalloc) must stay at a few blocks and chunks, not grow with the file.
    frame = eth(ipv4(tcp(flags=ACK) + bytes(1400)))
    path = tmp_path / "large.pcap"
    with open(path, "wb") as f:
        f.write(pcap([]))
        for second in range(1000):
            f.write(pcap([Rec(T0 + second * 10**9 + i * 25 * MS, frame) for i in range(40)])[24:])
    size = path.stat().st_size
    assert size > 55e6
    tracemalloc.start()
    try:
        n = fastpcap.write_jsonl(path, tmp_path / "out.jsonl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 10_000
    assert peak < 40e6, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB capture"
