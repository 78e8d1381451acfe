"""One hand-made capture per rule of the spec, with the expected rows worked out by hand.

Every case is also checked byte for byte against the oracle (tests/oracle.py), on both backends
(the autouse ``backend`` fixture), through the same path the command line takes.
"""

from __future__ import annotations

import json
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

import fastpcap

from oracle import oracle
from pcapgen import ACK, FIN, PSH, RST, SYN, URG, Rec, arp, eth, ipv4, ipv6, pcap, tcp, udp, vlan

T0 = 1_700_000_000_000_000_000  # a multiple of 100 ms
MS = 1_000_000
US = 1_000
HOST = "10.200.0.1"
GUEST = "10.200.0.2"


def run(tmp_path: Path, data: bytes, **kw) -> list[dict]:
    """fastpcap's rows for ``data``, after checking its JSONL equals the oracle's."""
    path = tmp_path / "capture.pcap"
    path.write_bytes(data)
    out = tmp_path / "rows.jsonl"
    fastpcap.write_jsonl(path, out, **kw)
    got = out.read_bytes()
    assert got == oracle(data, **kw).jsonl
    return [json.loads(line) for line in got.splitlines()]


def counters(row: dict) -> dict:
    """A row without its times and constants, zeros dropped: what the tests spell out."""
    skip = {"t_mono_ns", "t_wall_ns", "source", "available_in_deployment", "bucket_ms"}
    return {k: v for k, v in row.items() if k not in skip and v}


def syn_frame(src=GUEST, dst=HOST, sport=40000, dport=80, flags=SYN) -> bytes:
    return eth(ipv4(tcp(sport, dport, flags=flags), src=src, dst=dst))


def test_row_format_and_defaults(tmp_path: Path) -> None:
    frame = syn_frame()
    rows = run(tmp_path, pcap([(T0 + 5 * MS, frame)]))
    assert rows == [{
        "t_mono_ns": T0, "t_wall_ns": T0, "source": "bridge_pcap", "available_in_deployment": True,
        "bucket_ms": 100, "pkts_in": 1, "pkts_out": 0, "bytes_in": len(frame), "bytes_out": 0,
        "syn_count": 1, "fin_count": 0, "rst_count": 0, "udp_count": 0, "tcp_count": 1,
        "dns_query_count": 0, "unique_dst_ips": 1, "unique_dst_ports": 1, "tcp_new_flows": 1,
    }]


def test_direction_is_by_bridge_source_address(tmp_path: Path) -> None:
    out = eth(ipv4(udp(53, 40000), src=HOST, dst=GUEST, proto=17))
    inbound = eth(ipv4(udp(40000, 53), src=GUEST, dst=HOST, proto=17))
    arp_frame = eth(arp(spa=HOST), ethertype=0x0806)  # non-IP from the host: still "in"
    rows = run(tmp_path, pcap([(T0, out), (T0 + US, inbound), (T0 + 2 * US, arp_frame)]), )
    assert counters(rows[0]) == {
        "pkts_in": 2, "pkts_out": 1, "bytes_in": len(inbound) + len(arp_frame), "bytes_out": len(out),
        "udp_count": 2, "dns_query_count": 1, "unique_dst_ips": 2, "unique_dst_ports": 2,
    }
    rows = run(tmp_path, pcap([(T0, out), (T0 + US, inbound)]), bridge_ip=GUEST)
    assert (rows[0]["pkts_in"], rows[0]["pkts_out"]) == (1, 1)
    assert (rows[0]["bytes_in"], rows[0]["bytes_out"]) == (len(out), len(inbound))


def test_tcp_flag_counters(tmp_path: Path) -> None:
    frames = [
        syn_frame(flags=SYN),                # new flow
        syn_frame(flags=SYN | ACK),          # SYN but not a new flow
        syn_frame(flags=FIN | ACK),
        syn_frame(flags=RST),
        syn_frame(flags=RST | ACK | PSH | URG),
        syn_frame(flags=0x3F),               # every classic flag: SYN+ACK so not new
        syn_frame(flags=0xFC0 | SYN),        # high bits (NS/CWR/ECE/reserved) are masked off
    ]
    rows = run(tmp_path, pcap([(T0 + i * US, f) for i, f in enumerate(frames)]))
    c = counters(rows[0])
    assert (c["syn_count"], c["tcp_new_flows"], c["fin_count"], c["rst_count"], c["tcp_count"]) == (4, 2, 2, 3, 7)


def test_dns_only_for_udp_to_port_53(tmp_path: Path) -> None:
    frames = [
        eth(ipv4(udp(40000, 53), proto=17)),                 # query
        eth(ipv4(udp(53, 40000), proto=17)),                 # answer: source port 53 only
        eth(ipv4(tcp(40000, 53, flags=ACK), proto=6)),  # DNS over TCP: not counted
        eth(ipv4(udp(40000, 53)[:6], proto=17)),   # UDP header cut short: no port, no DNS
    ]
    rows = run(tmp_path, pcap([(T0 + i * US, f) for i, f in enumerate(frames)]))
    c = counters(rows[0])
    assert c["dns_query_count"] == 1
    assert c["udp_count"] == 3 and c["tcp_count"] == 1
    assert c["unique_dst_ports"] == 2  # {53, 40000}: TCP and UDP share one set


def test_distinct_counts(tmp_path: Path) -> None:
    frames = [
        eth(ipv4(udp(1, 0), dst="1.1.1.1", proto=17)),       # port 0 counts
        eth(ipv4(udp(1, 0), dst="1.1.1.1", proto=17)),
        eth(ipv4(tcp(1, 0, flags=ACK), dst="2.2.2.2")),
        eth(ipv4(b"\x08\x00" + bytes(6), proto=1, dst="3.3.3.3")),  # ICMP: an IP, no port
        eth(ipv4(tcp(1, 9)[:19], proto=6, dst="4.4.4.4")),          # short TCP: an IP, no port
    ]
    rows = run(tmp_path, pcap([(T0 + i * US, f) for i, f in enumerate(frames)]))
    assert (rows[0]["unique_dst_ips"], rows[0]["unique_dst_ports"]) == (4, 1)


def test_empty_buckets_between_packets_are_rows_of_zeros(tmp_path: Path) -> None:
    frame = syn_frame()
    rows = run(tmp_path, pcap([(T0 + 50 * MS, frame), (T0 + 350 * MS, frame)]))
    assert [r["t_wall_ns"] for r in rows] == [T0 + i * 100 * MS for i in range(4)]
    assert [r["pkts_in"] for r in rows] == [1, 0, 0, 1]
    assert all(not counters(r) for r in rows[1:3])


def test_packet_exactly_on_a_boundary_opens_the_next_bucket(tmp_path: Path) -> None:
    frame = syn_frame()
    rows = run(tmp_path, pcap([(T0, frame), (T0 + 100 * MS - 1000, frame), (T0 + 100 * MS, frame)]))
    assert [r["pkts_in"] for r in rows] == [2, 1]
    assert rows[1]["t_wall_ns"] == T0 + 100 * MS


def test_origin_is_epoch_aligned(tmp_path: Path) -> None:
    rows = run(tmp_path, pcap([(T0 + 123_456_000, syn_frame())]), bucket_ms=7)
    start = (T0 + 123_456_000) // (7 * MS) * (7 * MS)
    assert rows[0]["t_wall_ns"] == start and rows[0]["bucket_ms"] == 7


def test_out_of_order_packet_stays_in_the_open_bucket(tmp_path: Path) -> None:
    a, b = syn_frame(dport=1), syn_frame(dport=2)
    data = pcap([(T0 + 10 * MS, a), (T0 + 250 * MS, a), (T0 + 20 * MS, b), (T0 + 260 * MS, a)])
    rows = run(tmp_path, data)
    # The late packet (t=20 ms) arrives while bucket 2 is open: it counts there, bucket 0 stays closed.
    assert [r["pkts_in"] for r in rows] == [1, 0, 3]
    assert rows[2]["unique_dst_ports"] == 2


def test_running_maximum_not_previous_timestamp(tmp_path: Path) -> None:
    frame = syn_frame()
    # 5 ms, 305 ms, then 150 ms and 250 ms: both late packets belong to bucket 3.
    data = pcap([(T0 + 5 * MS, frame), (T0 + 305 * MS, frame), (T0 + 150 * MS, frame),
                 (T0 + 250 * MS, frame), (T0 + 320 * MS, frame)])
    assert [r["pkts_in"] for r in run(tmp_path, data)] == [1, 0, 0, 4]


def test_equal_timestamps(tmp_path: Path) -> None:
    frame = syn_frame()
    assert [r["pkts_in"] for r in run(tmp_path, pcap([(T0, frame)] * 5))] == [5]


def test_runts_count_by_size_only(tmp_path: Path) -> None:
    frames = [b"", b"\x01", bytes(13), eth()[:14]]  # 0..14 bytes; the last is a bare header
    rows = run(tmp_path, pcap([(T0 + i * US, f) for i, f in enumerate(frames)]))
    assert counters(rows[0]) == {"pkts_in": 4, "bytes_in": 0 + 1 + 13 + 14}


def test_non_ipv4_ethertypes_count_by_size_only(tmp_path: Path) -> None:
    frames = [
        vlan(ipv4(tcp(flags=SYN), src=HOST)),                  # 802.1Q-tagged IPv4
        eth(ipv6(udp(40000, 53)), ethertype=0x86DD),           # IPv6 DNS query
        eth(arp(), ethertype=0x0806),
    ]
    rows = run(tmp_path, pcap([(T0 + i * US, f) for i, f in enumerate(frames)]))
    assert counters(rows[0]) == {"pkts_in": 3, "bytes_in": sum(map(len, frames))}


@pytest.mark.parametrize("ihl_words", [0, 1, 4])
def test_bad_ihl_stops_the_decode(tmp_path: Path, ihl_words: int) -> None:
    frame = eth(ipv4(tcp(flags=SYN), ihl=ihl_words, src=HOST))
    rows = run(tmp_path, pcap([(T0, frame)]))
    assert counters(rows[0]) == {"pkts_in": 1, "bytes_in": len(frame)}


def test_ihl_longer_than_the_data_stops_the_decode(tmp_path: Path) -> None:
    frame = eth(ipv4(b"", ihl=15, src=HOST))[: 14 + 40]  # says 60 bytes, has 40
    rows = run(tmp_path, pcap([(T0, frame)]))
    assert counters(rows[0]) == {"pkts_in": 1, "bytes_in": len(frame)}


def test_ipv4_header_shorter_than_20_bytes(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(), src=HOST))[: 14 + 19]
    assert counters(run(tmp_path, pcap([(T0, frame)]))[0]) == {"pkts_in": 1, "bytes_in": 33}


def test_ipv4_options_move_the_transport_header(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(1, 2, flags=SYN), options=b"\x01" * 8, src=HOST))  # IHL 7
    c = counters(run(tmp_path, pcap([(T0, frame)]))[0])
    assert c["syn_count"] == 1 and c["tcp_new_flows"] == 1 and c["pkts_out"] == 1


def test_short_tcp_header_counts_tcp_without_flags_or_port(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(1, 2, flags=SYN)[:19], proto=6))
    assert counters(run(tmp_path, pcap([(T0, frame)]))[0]) == {
        "pkts_in": 1, "bytes_in": len(frame), "tcp_count": 1, "unique_dst_ips": 1}


def test_short_udp_header_counts_udp_without_port(tmp_path: Path) -> None:
    frame = eth(ipv4(udp(1, 53)[:7], proto=17))
    assert counters(run(tmp_path, pcap([(T0, frame)]))[0]) == {
        "pkts_in": 1, "bytes_in": len(frame), "udp_count": 1, "unique_dst_ips": 1}


def test_version_nibble_and_fragments_are_not_checked(tmp_path: Path) -> None:
    frames = [
        eth(ipv4(tcp(1, 2, flags=SYN), version=6)),                   # says IPv6, decoded as IPv4
        eth(ipv4(tcp(1, 3, flags=SYN), frag_offset=100)),             # non-first fragment
        eth(ipv4(udp(1, 53), more_fragments=True, total_length=9999, proto=17)),  # wrong total length
    ]
    c = counters(run(tmp_path, pcap([(T0 + i * US, f) for i, f in enumerate(frames)]))[0])
    assert (c["syn_count"], c["tcp_new_flows"], c["dns_query_count"], c["unique_dst_ports"]) == (2, 2, 1, 3)


def test_ethernet_padding_is_part_of_the_payload(tmp_path: Path) -> None:
    # A 20-byte IPv4 header and a 6-byte UDP "header", padded to the 60-byte minimum frame:
    # the padding makes the UDP header long enough to decode, exactly as in the reference.
    frame = eth(ipv4(udp(1, 53)[:6], proto=17, total_length=26) + bytes(20))
    assert len(frame) == 60
    c = counters(run(tmp_path, pcap([(T0, frame)]))[0])
    assert c["dns_query_count"] == 1 and c["bytes_in"] == 60


def test_sizes_use_the_captured_length(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(flags=SYN) + bytes(1400)))
    cut = Rec(T0, frame[:96], orig_len=len(frame))  # snaplen 96
    c = counters(run(tmp_path, pcap([cut], snaplen=96))[0])
    assert c["bytes_in"] == 96 and c["syn_count"] == 1


def test_snaplen_cut_inside_the_ip_header(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(flags=SYN)))
    cut = Rec(T0, frame[:30], orig_len=len(frame))
    assert counters(run(tmp_path, pcap([cut]))[0]) == {"pkts_in": 1, "bytes_in": 30}


@pytest.mark.parametrize("cut", [1, 15, 16, 20, 115])
def test_truncated_tail_is_not_an_error(tmp_path: Path, cut: int) -> None:
    # The last record (16-byte header + 100 bytes) is cut after `cut` bytes, as in a capture
    # tcpdump -U is still writing: the complete records before it all count.
    partial = pcap([Rec(T0 + 2000, bytes(100))])[24:][:cut]
    frame = syn_frame()
    rows = run(tmp_path, pcap([(T0, frame), (T0 + 1000, frame)], tail=partial))
    assert [r["pkts_in"] for r in rows] == [2]


def test_microsecond_nanosecond_and_big_endian_files_agree(tmp_path: Path) -> None:
    frames = [syn_frame(), eth(ipv4(udp(40000, 53), src=HOST, proto=17)), syn_frame(flags=RST)]
    recs = [Rec(T0 + i * 70 * MS + 123_000, f) for i, f in enumerate(frames)]
    expected = run(tmp_path, pcap(recs))
    for byteorder in ("little", "big"):
        for nsec in (False, True):
            assert run(tmp_path, pcap(recs, byteorder=byteorder, nsec=nsec)) == expected


def test_nanosecond_timestamps_are_exact(tmp_path: Path) -> None:
    frame = syn_frame()
    data = pcap([(T0 + 100 * MS - 1, frame), (T0 + 100 * MS, frame)], nsec=True)
    assert [r["pkts_in"] for r in run(tmp_path, data)] == [1, 1]


def test_fraction_is_not_normalised(tmp_path: Path) -> None:
    # ts_frac >= 1e6 in a µs file (seen in the wild): t = sec*1e9 + frac*1000, as written.
    frame = syn_frame()
    sec = T0 // 10**9
    rows = run(tmp_path, pcap([Rec(0, frame, ts_sec=sec, ts_frac=0),
                               Rec(0, frame, ts_sec=sec, ts_frac=1_500_000)]))
    assert [r["pkts_in"] for r in rows] == [1] + [0] * 14 + [1]


def test_clock_jump_of_days_with_and_without_the_gap_cap(tmp_path: Path) -> None:
    frame = syn_frame()
    day = 86_400 * 10**9
    data = pcap([(T0, frame), (T0 + 3 * day + 250 * MS, frame), (T0 + 3 * day + 260 * MS, frame)])
    with pytest.warns(fastpcap.GapWarning, match=r"cut 1 gap\(s\) holding 2592001 empty 100 ms") as w:
        rows = run(tmp_path, data)
    assert "packet 2 (byte offset " in str(w[0].message)
    assert [r["t_wall_ns"] for r in rows] == [T0, T0 + 3 * day + 200 * MS]
    assert [r["pkts_in"] for r in rows] == [1, 2]
    # Without the cap (the reference's behaviour): every empty bucket, here at 1-hour buckets.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all without the cap...
        warnings.simplefilter("ignore", fastpcap.HostAddressWarning)  # ...but the address one (no packet is out)
        rows = run(tmp_path, data, max_gap_s=None, bucket_ms=3_600_000)
    assert len(rows) == 3 * 24 + 1 and [r["pkts_in"] for r in rows if r["pkts_in"]] == [1, 2]


def test_gap_cap_boundary_is_inclusive(tmp_path: Path) -> None:
    frame = syn_frame()
    data = pcap([(T0, frame), (T0 + 1100 * MS, frame)])  # 10 empty buckets = exactly 1 s
    assert len(run(tmp_path, data, max_gap_s=1)) == 12
    with pytest.warns(fastpcap.GapWarning, match="holding 10 empty"):
        assert len(run(tmp_path, data, max_gap_s=0.999)) == 2
    assert len(run(tmp_path, data, max_gap_s=Decimal("1.0"))) == 12


def test_gap_cap_zero_writes_no_empty_rows(tmp_path: Path) -> None:
    frame = syn_frame()
    data = pcap([(T0, frame), (T0 + 100 * MS, frame), (T0 + 300 * MS, frame), (T0 + 700 * MS, frame)])
    with pytest.warns(fastpcap.GapWarning, match=r"cut 2 gap\(s\) holding 4 empty"):
        rows = run(tmp_path, data, max_gap_s=0)
    assert [r["t_wall_ns"] - T0 for r in rows] == [0, 100 * MS, 300 * MS, 700 * MS]


def test_t_mono_origin(tmp_path: Path) -> None:
    rows = run(tmp_path, pcap([(T0 + 150 * MS, syn_frame())]), t_mono_origin_ns=T0 + 10**9)
    assert rows[0]["t_mono_ns"] == 100 * MS - 10**9 and rows[0]["t_wall_ns"] == T0 + 100 * MS


def test_unknown_link_types_count_by_size_only(tmp_path: Path) -> None:
    frame = eth(ipv4(tcp(flags=SYN), src=HOST))  # LINKTYPE_USER0: would decode if it were Ethernet
    with pytest.warns(fastpcap.LinkTypeWarning, match=r"2 frame\(s\) of link type LINKTYPE\(147\)"):
        rows = run(tmp_path, pcap([(T0, frame), (T0 + US, frame)], linktype=147))
    assert counters(rows[0]) == {"pkts_in": 2, "bytes_in": 2 * len(frame)}


def test_fcs_bits_of_the_link_type_field_are_ignored(tmp_path: Path) -> None:
    # tcpdump's heapoverflow test file has 0x30000001: Ethernet with reserved bits set.
    rows = run(tmp_path, pcap([(T0, syn_frame())], linktype=0x30000001))
    assert rows[0]["syn_count"] == 1
