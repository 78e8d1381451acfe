"""The extended decode (docs/data-model.md): both backends against the oracle, and the options."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpcap
from fastpcap import _backend
from fastpcap.reader import concatenate

from oracle import OracleError, oracle
from pcapgen import SYN, Rec, eth, ipv4, ipv6, ipv6_ext, pcap, qinq, tcp, udp
from strategies import extended_captures, sweep

T0 = 1_700_000_000_000_000_000
COMPILED = _backend.IMPLEMENTATIONS.get("cython")
PURE = _backend.IMPLEMENTATIONS["python"]


def rows_or_offset(data: bytes, **kw) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastpcap.FastpcapWarning)
        try:
            return fastpcap.format_rows(fastpcap.bucket_rows(io.BytesIO(data), **kw))
        except fastpcap.CaptureError as exc:
            return exc.offset


def oracle_or_offset(data: bytes, **kw) -> object:
    try:
        return oracle(data, **kw).jsonl
    except OracleError as exc:
        return exc.offset


@settings(max_examples=sweep(300), suppress_health_check=[HealthCheck.too_slow])
@given(case=extended_captures())
def test_rows_equal_the_oracle(case) -> None:
    data, kw = case
    assert rows_or_offset(data, **kw) == oracle_or_offset(data, **kw)


@pytest.mark.once
@pytest.mark.skipif(COMPILED is None, reason="the compiled core is not built")
@settings(max_examples=sweep(300), suppress_health_check=[HealthCheck.too_slow])
@given(case=extended_captures(), chunk=st.integers(1, 30))
def test_compiled_and_twin_decode_identically(case, chunk: int) -> None:
    data, _ = case
    outs = []
    for impl in (COMPILED, PURE):
        previous, _backend.impl = _backend.impl, impl
        try:
            with fastpcap.open_capture(io.BytesIO(data), chunk_packets=chunk, decode="extended") as reader:
                chunks = list(reader)
            outs.append(concatenate(chunks, impl.PACKET6_DTYPE).tobytes())
        except fastpcap.CaptureError as exc:
            outs.append(exc.offset)
        finally:
            _backend.impl = previous
    assert outs[0] == outs[1]


def one_row(frames: list[bytes], **kw) -> dict:
    data = pcap([Rec(T0 + i * 1000, f) for i, f in enumerate(frames)])
    rows = rows_or_offset(data, **kw)
    assert rows == oracle_or_offset(data, **kw)
    return json.loads(rows)


def test_qinq_and_ipv6_are_counted_only_when_extended() -> None:
    frames = [qinq(ipv4(tcp(1, 80, flags=SYN), src="10.200.0.1")),
              eth(ipv6(udp(1, 53), src="fd00::1", dst="fd00::2", next_header=17), ethertype=0x86DD)]
    reference = one_row(frames)
    extended = one_row(frames, decode="extended", host_ips=["10.200.0.1", "fd00::1"])
    assert (reference["syn_count"], reference["dns_query_count"], reference["pkts_out"]) == (0, 0, 0)
    assert (extended["syn_count"], extended["dns_query_count"], extended["pkts_out"]) == (1, 1, 2)
    assert extended["unique_dst_ips"] == 2 and extended["udp_count"] == 1 and extended["tcp_count"] == 1


def test_fragments_and_extension_headers() -> None:
    first = ipv6_ext(44, tcp(1, 2, flags=SYN), next_header=6, offset=0, more=True)
    later = ipv6_ext(44, tcp(1, 2, flags=SYN), next_header=6, offset=8)
    frames = [eth(ipv6(first, next_header=44), ethertype=0x86DD),
              eth(ipv6(later, next_header=44), ethertype=0x86DD),
              eth(ipv4(tcp(1, 3, flags=SYN), frag_offset=100))]
    row = one_row(frames, decode="extended")
    assert (row["tcp_count"], row["syn_count"], row["unique_dst_ports"]) == (3, 1, 1)
    packets = fastpcap.read_packets(io.BytesIO(pcap([Rec(T0, f) for f in frames])), decode="extended")
    assert list(packets["decoded"] & fastpcap.DEC_FRAGMENT) == [0, fastpcap.DEC_FRAGMENT, fastpcap.DEC_FRAGMENT]
    assert bytes(packets["src_ip6"][0]) == bytes.fromhex("fd00" + "00" * 13 + "02")


def test_size_wire() -> None:
    frame = eth(ipv4(tcp()))
    data = pcap([Rec(T0, frame[:40], orig_len=1500)])
    row = json.loads(rows_or_offset(data, size="wire"))
    assert row["bytes_in"] == 1500
    assert json.loads(rows_or_offset(data))["bytes_in"] == 40


def test_host_ips_empty_means_everything_is_in() -> None:
    row = one_row([eth(ipv4(tcp(), src="10.200.0.1"))], host_ips=[])
    assert (row["pkts_in"], row["pkts_out"]) == (1, 0)


def test_cli_options(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.pcap"
    data = pcap([Rec(T0, qinq(ipv4(udp(5, 53), proto=17, src="10.9.9.9"))),
                 Rec(T0 + 1000, eth(ipv6(tcp(flags=SYN), src="fd00::7", next_header=6), ethertype=0x86DD))])
    path.write_bytes(data)
    kw = dict(decode="extended", host_ips=["10.9.9.9", "fd00::7"], size="wire")
    proc = cli("bucketize", path, "--decode", "extended", "--host-ip", "10.9.9.9", "--host-ip", "fd00::7",
               "--size", "wire", check=True)
    assert proc.stdout == oracle(data, **kw).jsonl
    assert json.loads(proc.stdout)["pkts_out"] == 2
    bad = cli("bucketize", path, "--host-ip", "not-an-ip")
    assert bad.returncode == 2 and b"not an IPv4 or IPv6 address" in bad.stderr
    assert cli("bucketize", path, "--decode", "fancy").returncode == 2


def test_extended_decode_runs_in_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastpcap import parallel

    monkeypatch.setattr(parallel, "MIN_RANGE_BYTES", 64)
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap([Rec(T0 + i * 10**6, eth(ipv6(udp(1, i), next_header=17), ethertype=0x86DD))
                           for i in range(200)]))
    with fastpcap.open_capture(path, decode="extended") as reader:
        assert not parallel.splits_worthwhile(reader, 4)
    assert rows_or_offset(path.read_bytes(), decode="extended") == fastpcap.format_rows(
        fastpcap.bucket_rows(path, decode="extended", jobs=4))
    assert np.array_equal(fastpcap.bucket_rows(path, jobs=4), fastpcap.bucket_rows(path))
