"""Beyond classic Ethernet pcap: pcapng, compression and link types (docs/data-model.md).

The same packets must give the same rows whatever the container, byte order, timestamp
resolution or compression; conversions are made by independent tools (Wireshark's editcap,
the gzip/xz/bzip2/zstd/lz4 command-line programs) as well as by the test builders.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import fastpcap
from fastpcap.info import capture_info

from conftest import CORPUS
from oracle import OracleError, oracle
from pcapgen import (
    ACK,
    SYN,
    Rec,
    block,
    compress,
    custom_block,
    epb,
    eth,
    idb,
    ipv4,
    isb,
    loop,
    nrb,
    null,
    opb,
    pcap,
    pcapng,
    shb,
    sll,
    sll2,
    spb,
    tcp,
    udp,
)
from strategies import compressed, pcapng_captures, pcapng_twins, sweep

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "examples" / "sample.pcap"
TOOLS = ("editcap", "gzip", "xz", "bzip2", "zstd", "lz4")


def rows_of(data: bytes, tmp_path: Path, name: str = "c", **kw) -> bytes:
    path = tmp_path / name
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastpcap.FastpcapWarning)
        return fastpcap.format_rows(fastpcap.bucket_rows(path, **kw))


def expected(data: bytes, **kw) -> bytes:
    return oracle(data, **kw).jsonl


def assert_like_the_oracle(data: bytes, tmp_path: Path, **kw) -> None:
    """fastpcap's rows are the oracle's, or both fail at the same byte offset."""
    try:
        want: object = expected(data, **kw)
    except OracleError as exc:
        want = exc.offset
    try:
        got: object = rows_of(data, tmp_path, **kw)
    except fastpcap.CaptureError as exc:
        got = exc.offset
    assert got == want


def frame(i: int = 0, **kw) -> bytes:
    return eth(ipv4(tcp(40000 + i, 80, flags=SYN), src="10.200.0.2", dst=f"10.0.0.{i % 7}", **kw))


# -- pcapng --------------------------------------------------------------------------------

def test_pcapng_equals_classic(tmp_path: Path) -> None:
    recs = [Rec(T0 + i * 37 * MS, frame(i)) for i in range(20)]
    classic = rows_of(pcap(recs), tmp_path)
    for byteorder in ("little", "big"):
        for tsresol in (None, 9, 6, 128 + 30):
            blocks = [shb(byteorder=byteorder), idb(1, tsresol=tsresol, byteorder=byteorder)]
            units = {None: 10**6, 9: 10**9, 6: 10**6, 158: 2**30}[tsresol]
            for r in recs:
                blocks.append(epb(0, -(-r.t_ns * units // 10**9), r.frame, byteorder=byteorder))
            assert rows_of(pcapng(blocks), tmp_path) == classic, (byteorder, tsresol)


def test_pcapng_timestamps_offset_and_binary_resolution(tmp_path: Path) -> None:
    data = pcapng([shb(), idb(1, tsresol=128 + 10, tsoffset=1_700_000_000),
                   epb(0, 1024 * 5 + 512, frame())])  # 5.5 s after the offset, in 1/1024 s
    packets = fastpcap.read_packets(_write(tmp_path, data))
    assert list(packets["t_ns"]) == [1_700_000_005_500_000_000]


def test_pcapng_block_kinds(tmp_path: Path) -> None:
    data = pcapng([
        shb(), nrb(), idb(1, snaplen=40), custom_block(b"x" * 5), isb(0),
        epb(0, (T0 // 1000) + 1, frame(1)),
        spb(frame(2)),                        # no timestamp: t_ns 0, cut to snaplen 40
        opb(0, (T0 // 1000) + 2, frame(3)),   # the obsolete packet block
        block(0x12345678, b"\0" * 8),         # unknown: skipped
    ])
    packets = fastpcap.read_packets(_write(tmp_path, data))
    assert list(packets["t_ns"]) == [T0 + 1000, 0, T0 + 2000]
    assert list(packets["caplen"]) == [len(frame(1)), 40, len(frame(3))]
    assert list(packets["wirelen"]) == [len(frame(1)), len(frame(2)), len(frame(3))]
    assert rows_of(data, tmp_path) == expected(data)


def test_pcapng_sections_with_other_byte_orders_and_link_types(tmp_path: Path) -> None:
    raw = ipv4(udp(40000, 53), proto=17, src="10.200.0.1")
    data = pcapng([
        shb(byteorder="little"), idb(1), idb(101),
        epb(0, T0 // 1000, frame(1)), epb(1, T0 // 1000 + 10, raw),
        shb(byteorder="big"), idb(113, byteorder="big"),
        epb(0, T0 // 1000 + 20, sll(ipv4(tcp(flags=SYN | ACK), src="10.200.0.1")), byteorder="big"),
    ])
    packets = fastpcap.read_packets(_write(tmp_path, data))
    assert list(packets["linktype"]) == [1, 101, 113]
    assert list(packets["decoded"] & fastpcap.DEC_PORTS) == [fastpcap.DEC_PORTS] * 3
    rows = json.loads(rows_of(data, tmp_path).splitlines()[0])
    assert (rows["pkts_out"], rows["dns_query_count"], rows["syn_count"], rows["tcp_new_flows"]) == (2, 1, 2, 1)
    assert rows_of(data, tmp_path) == expected(data)
    with fastpcap.open_capture(_write(tmp_path, data)) as reader:
        list(reader)
        assert (reader.format, reader.sections, reader.byteorders) == ("pcapng", 2, ["little", "big"])
        assert reader.linktypes == [1, 101, 113]


PCAPNG_ERRORS = {
    "length not a multiple of 4": (lambda: pcapng([shb(), idb(), block(6, b"\0" * 21)]), 48,
                                   "claims a total length of 33 bytes, not a multiple of 4"),
    "trailer differs": (lambda: pcapng([shb(), idb(), epb(0, 1, frame(), trailing_length=99)]), 48,
                        "ends with a different length (99)"),
    "missing interface": (lambda: pcapng([shb(), idb(), epb(3, 1, frame())]), 48,
                          "enhanced packet block on interface 3, but the section describes 1 interface(s)"),
    "caplen beyond block": (lambda: pcapng([shb(), idb(), epb(0, 1, frame(), caplen=65536)]), 48,
                            "is too small for 65536 bytes of packet data"),
    "bad byte-order magic": (lambda: pcapng([shb(), idb(), shb(bom=b"abcd")]), 48,
                             "unknown byte-order magic 0x61626364"),
    "version 2": (lambda: pcapng([shb(version=(2, 0))]), 0, "pcapng version 2.0 is not supported"),
    "block too short": (lambda: pcapng([shb(), idb(), block(6, b"", total_length=8)]), 48,
                        "enhanced packet block claims a total length of 8 bytes, less than the 32 it needs"),
}


@pytest.mark.parametrize("case", sorted(PCAPNG_ERRORS))
def test_pcapng_errors(tmp_path: Path, case: str) -> None:
    make, offset, problem = PCAPNG_ERRORS[case]
    data = make()
    with pytest.raises(OracleError) as oracle_error:
        oracle(data)
    with pytest.raises(fastpcap.CaptureError) as err:
        fastpcap.read_packets(_write(tmp_path, data))
    assert err.value.offset == oracle_error.value.offset == offset
    assert problem in str(err.value)


def test_pcapng_partial_tail_and_prefixes(tmp_path: Path) -> None:
    whole = pcapng([shb(), idb(), epb(0, T0 // 1000, frame(1)), epb(0, T0 // 1000 + 1, frame(2))])
    for cut in (0, 3, 11, 20, 27, 40, len(whole) - 1):
        data = whole[:cut]
        assert rows_of(data, tmp_path) == expected(data)
    packets = fastpcap.read_packets(_write(tmp_path, whole[:-5]))
    assert len(packets) == 1


@settings(max_examples=sweep(100), suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(twins=pcapng_twins())
def test_pcapng_twins_give_the_classic_rows(tmp_path: Path, twins) -> None:
    ng, classic = twins
    assert rows_of(ng, tmp_path, "a") == rows_of(classic, tmp_path, "b") == expected(classic)


@settings(max_examples=sweep(150), suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=pcapng_captures(errors=True))
def test_any_pcapng_equals_the_oracle(tmp_path: Path, case) -> None:
    assert_like_the_oracle(case[0] if isinstance(case, tuple) else case, tmp_path)


# -- link types ---------------------------------------------------------------------------

LINK_CASES = {
    113: lambda p: sll(p), 276: lambda p: sll2(p), 101: lambda p: p, 12: lambda p: p, 14: lambda p: p,
    228: lambda p: p, 0: lambda p: null(p), 108: lambda p: loop(p),
}


@pytest.mark.parametrize("linktype", sorted(LINK_CASES))
def test_link_types_find_ipv4(tmp_path: Path, linktype: int) -> None:
    wrap = LINK_CASES[linktype]
    packets = [ipv4(tcp(1, 2, flags=SYN), src="10.200.0.1"), ipv4(udp(3, 53), proto=17)]
    data = pcap([Rec(T0 + i * MS, wrap(p)) for i, p in enumerate(packets)], linktype=linktype)
    row = json.loads(rows_of(data, tmp_path))
    assert (row["pkts_out"], row["syn_count"], row["dns_query_count"], row["unique_dst_ports"]) == (1, 1, 1, 2)
    assert rows_of(data, tmp_path) == expected(data)


def test_null_in_either_byte_order_and_ipv6_families(tmp_path: Path) -> None:
    payload = ipv4(tcp(flags=SYN))
    data = pcap([Rec(T0, null(payload, byteorder="big")), Rec(T0 + 1000, null(payload, byteorder="little")),
                 Rec(T0 + 2000, null(b"\x60" + bytes(39), family=28))], linktype=0)
    packets = fastpcap.read_packets(_write(tmp_path, data))
    assert list(packets["ethertype"]) == [0x0800, 0x0800, 0x86DD]
    assert list(packets["tcp_flags"]) == [SYN, SYN, 0]


def test_short_link_headers_count_by_size(tmp_path: Path) -> None:
    data = pcap([Rec(T0, sll(ipv4(tcp()))[:15]), Rec(T0 + 1000, b"")], linktype=113)
    assert list(fastpcap.read_packets(_write(tmp_path, data))["decoded"]) == [0, 0]
    assert rows_of(data, tmp_path) == expected(data)


def test_link_type_warning_names_each_unknown_link_type(tmp_path: Path) -> None:
    data = pcapng([shb(), idb(147), idb(1), idb(9), epb(0, 1, b"ab"), epb(1, 2, frame()), epb(2, 3, b"c"),
                   epb(0, 4, b"d")])
    with pytest.warns(fastpcap.LinkTypeWarning, match=r": 1 frame\(s\) of link type PPP\(9\), 2 frame\(s\) "
                                                      r"of link type LINKTYPE\(147\) counted by size only"):
        fastpcap.bucket_rows(_write(tmp_path, data))


# -- compression --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["gzip", "zstd", "xz", "bzip2", "lz4"])
def test_compressed_captures_give_the_same_rows(tmp_path: Path, kind: str) -> None:
    data = SAMPLE.read_bytes()
    plain = rows_of(data, tmp_path, "plain")
    assert rows_of(compress(data, kind), tmp_path, "packed") == plain
    assert rows_of(compress(data, kind, members=3), tmp_path, "members") == plain
    with fastpcap.open_capture(tmp_path / "packed") as reader:
        assert (reader.compression, reader.format) == (kind, "pcap")


def test_gzip_without_isal_gives_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zlib

    from fastpcap import compression

    packed = compress(SAMPLE.read_bytes(), "gzip", members=2)
    with_isal = rows_of(packed, tmp_path)
    monkeypatch.setattr(compression, "_zlib", lambda: zlib)
    assert rows_of(packed, tmp_path) == with_isal == rows_of(SAMPLE.read_bytes(), tmp_path)
    cut = packed[: len(packed) // 2]
    assert rows_of(cut, tmp_path) == expected(cut)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "xz", "bzip2", "lz4"])
def test_truncated_compressed_capture_is_not_an_error(tmp_path: Path, kind: str) -> None:
    packed = compress(SAMPLE.read_bytes(), kind)
    cut = packed[: len(packed) * 2 // 3]
    assert rows_of(cut, tmp_path) == expected(cut)


def test_corrupt_compressed_data_is_an_error(cli, tmp_path: Path) -> None:
    packed = bytearray(compress(SAMPLE.read_bytes(), "gzip"))
    packed[len(packed) // 2: len(packed) // 2 + 64] = bytes(64)
    path = tmp_path / "corrupt.pcap.gz"
    path.write_bytes(bytes(packed))
    # The bytes that came out before the decompressor noticed include garbage: the walk may
    # stop at a record it makes first; either way, one error.
    with pytest.raises(fastpcap.CaptureError, match="gzip data is corrupt|the file is corrupt"):
        fastpcap.bucket_rows(path)
    proc = cli("bucketize", path, "-o", tmp_path / "out.jsonl")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert proc.stderr.decode().startswith(f"fastpcap: error: {path}: byte offset ")


@settings(max_examples=sweep(100), suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=compressed(pcapng_captures()))
def test_any_compressed_capture_equals_the_oracle(tmp_path: Path, data) -> None:
    assert_like_the_oracle(data[0] if isinstance(data, tuple) else data, tmp_path)


def test_stdin_takes_compressed_pcapng(cli, tmp_path: Path) -> None:
    ng = pcapng([shb(), idb(), *[epb(0, T0 // 1000 + i * 40_000, frame(i)) for i in range(9)]])
    proc = cli("bucketize", "-", input=compress(ng, "zstd"), check=True)
    assert proc.stdout == expected(ng)


# -- independent tools --------------------------------------------------------------------

def _tool_missing() -> str | None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    return f"missing: {', '.join(missing)} (Debian: wireshark-common, xz-utils, bzip2, zstd, lz4)" if missing else None


SOURCES = [SAMPLE] + [CORPUS / n for n in ("pcapplusplus__DnsPackets.pcap", "tcpdump__mptcp-v0.pcap",
                                           "pcapplusplus__sll.pcap", "nfstream__anyconnect-vpn.pcap")
                      if (CORPUS / n).exists()]


@pytest.mark.skipif(_tool_missing() is not None, reason=str(_tool_missing()))
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_conversions_by_independent_tools(tmp_path: Path, source: Path) -> None:
    reference = rows_of(source.read_bytes(), tmp_path, "source")
    made = {}
    for fmt in ("pcapng", "nsecpcap", "pcap"):
        made[fmt] = tmp_path / f"x.{fmt}"
        subprocess.run(["editcap", "-F", fmt, str(source), str(made[fmt])], check=True, capture_output=True)
    for fmt, path in made.items():
        assert rows_of(path.read_bytes(), tmp_path, "conv") == reference, fmt
    for tool, args in (("gzip", ["-c"]), ("xz", ["-c", "-T1"]), ("bzip2", ["-c"]), ("zstd", ["-c", "-q"]),
                       ("lz4", ["-c", "-q"])):
        packed = subprocess.run([tool, *args, str(made["pcapng"])], check=True, capture_output=True).stdout
        assert rows_of(packed, tmp_path, "packed") == reference, tool


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "capture"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["gzip", "zstd", "xz", "lz4"])
@pytest.mark.parametrize("block", [1 << 10, 1 << 16, 4 << 20])
def test_corrupt_stream_walks_every_byte_before_it(tmp_path: Path, kind: str, block: int) -> None:
    """A compressed capture whose trailer check is wrong: every packet that decompressed is
    walked (iter_packets yields them, info counts them), then one error names the compressed
    offset, the same whatever the reader's block size."""
    from fastpcap.compression import CorruptStream, open_decompressed

    data = pcap([Rec(T0 + i * MS, eth(ipv4(tcp(40000 + i, 80, flags=2)))) for i in range(3000)])
    options = {"zstd": {"checksum": True}, "lz4": {"content_checksum": True}}.get(kind, {})
    packed = bytearray(compress(data, kind, **options))
    packed[-2] ^= 0xFF  # inside the trailer's check
    path = tmp_path / f"c.pcap.{kind}"
    path.write_bytes(packed)
    stream = open_decompressed(io.BytesIO(bytes(packed)), kind)
    assert stream.read() == data  # every byte came out; the next read says what is wrong
    with pytest.raises(CorruptStream) as reference:
        stream.read()
    walked = []
    with pytest.raises(fastpcap.CaptureError) as err:
        for chunk in fastpcap.iter_packets(path, block_size=block):
            walked.append(len(chunk))
    assert sum(walked) == 3000
    assert err.value.offset == reference.value.compressed_offset
    assert str(err.value) == (f"{path}: byte offset {reference.value.compressed_offset}: {reference.value} "
                              f"({reference.value.decompressed_offset} bytes of capture data came out before it)")
    info = capture_info(path)
    assert info["packets"] == 3000 and info["error"] == str(err.value)
