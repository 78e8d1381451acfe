"""Self-checks of tests/oracle.py against expectations worked out by hand from the spec.

These tests exercise only the oracle and the pcapgen builders; they never import fastpcap.
"""

from __future__ import annotations

import json
import struct

import pytest

from oracle import OracleError, oracle, oracle_jsonl
from pcapgen import ACK, FIN, RST, SYN, Rec, arp, dns_query, eth, ipv4, ipv6, pcap, tcp, udp, vlan

T = 1_700_000_000_000_000_000  # a multiple of 100 ms (and of 1 s)
MS = 1_000_000
S = 1_000_000_000

KEYS = [
    "t_mono_ns", "t_wall_ns", "source", "available_in_deployment", "bucket_ms",
    "pkts_in", "pkts_out", "bytes_in", "bytes_out",
    "syn_count", "fin_count", "rst_count", "udp_count", "tcp_count", "dns_query_count",
    "unique_dst_ips", "unique_dst_ports", "tcp_new_flows",
]
COUNTERS = KEYS[5:]


def row(start, bucket_ms=100, origin=0, **counts):
    r = {"t_mono_ns": start - origin, "t_wall_ns": start, "source": "bridge_pcap",
         "available_in_deployment": True, "bucket_ms": bucket_ms}
    for k in COUNTERS:
        r[k] = counts.pop(k, 0)
    assert not counts, counts
    return r


def tcp_frame(src="10.200.0.2", dst="8.8.8.8", sport=40000, dport=80, flags=SYN):
    return eth(ipv4(tcp(sport, dport, flags=flags), src=src, dst=dst, proto=6))


def udp_frame(src="10.200.0.2", dst="10.200.0.1", sport=5000, dport=53, payload=b""):
    return eth(ipv4(udp(sport, dport, payload=payload), src=src, dst=dst, proto=17))


# --------------------------------------------------------------------------- rows


def test_one_bucket_direction_syn_dns_distinct_counts():
    p1 = tcp_frame(flags=SYN)  # in, new flow, dst 8.8.8.8:80
    p2 = tcp_frame(src="10.200.0.1", dst="10.200.0.2", sport=80, dport=40000, flags=SYN | ACK)  # out
    p3 = udp_frame(payload=dns_query("example.com"))  # in, DNS, dst 10.200.0.1:53
    p4 = tcp_frame(sport=40001, dport=53, flags=FIN | ACK)  # TCP to 53: not DNS; port 53 shared
    p5 = eth(arp(), ethertype=0x0806)  # non-IP: in, size only
    assert [len(p) for p in (p1, p2, p3, p4, p5)] == [54, 54, 71, 54, 42]
    data = pcap([(T + 1 * MS, p1), (T + 2 * MS, p2), (T + 3 * MS, p3), (T + 4 * MS, p4), (T + 5 * MS, p5)])
    r = oracle(data)
    assert r.packets == 5
    assert r.rows == [row(T, pkts_in=4, pkts_out=1, bytes_in=54 + 71 + 54 + 42, bytes_out=54,
                          syn_count=2, fin_count=1, udp_count=1, tcp_count=3, dns_query_count=1,
                          unique_dst_ips=3, unique_dst_ports=3, tcp_new_flows=1)]
    assert list(r.rows[0]) == KEYS
    assert (r.gaps_cut, r.rows_cut, r.first_cut_packet, r.first_cut_offset) == (0, 0, None, None)
    assert r.undecoded_linktype is None and r.truncated_tail is False


def test_jsonl_format_is_json_dumps():
    data = pcap([(T + 5 * MS, tcp_frame(flags=RST))])
    line = (
        '{"t_mono_ns": 1700000000000000000, "t_wall_ns": 1700000000000000000, "source": "bridge_pcap", '
        '"available_in_deployment": true, "bucket_ms": 100, "pkts_in": 1, "pkts_out": 0, "bytes_in": 54, '
        '"bytes_out": 0, "syn_count": 0, "fin_count": 0, "rst_count": 1, "udp_count": 0, "tcp_count": 1, '
        '"dns_query_count": 0, "unique_dst_ips": 1, "unique_dst_ports": 1, "tcp_new_flows": 0}\n'
    )
    assert oracle_jsonl(data) == line.encode()
    assert oracle(data).jsonl == b"".join(json.dumps(x).encode() + b"\n" for x in oracle(data).rows)


def test_flags_rules():
    frames = [
        tcp_frame(flags=SYN | ACK | FIN | RST),  # syn, fin, rst; not new
        tcp_frame(flags=0xFC0 | SYN),  # bits above 0x3F ignored: plain SYN -> new flow
        tcp_frame(flags=0x0C0),  # ECE|CWR only: masked to 0
    ]
    r = oracle(pcap([(T + i * MS, f) for i, f in enumerate(frames)]))
    assert r.rows == [row(T, pkts_in=3, bytes_in=3 * 54, syn_count=2, fin_count=1, rst_count=1,
                          tcp_count=3, unique_dst_ips=1, unique_dst_ports=1, tcp_new_flows=1)]


def test_short_headers_padding_and_unchecked_fields():
    short_tcp = eth(ipv4(b"\x00" * 19, proto=6, dst="1.1.1.1"))  # tcp_count, flags 0, no port
    short_udp = eth(ipv4(b"\x00\x35\x00\x35", proto=17, dst="1.1.1.2"))  # udp_count, no port, no DNS
    # 5 UDP bytes + Ethernet padding to 60: padding stays in the payload -> ports decoded (53 -> DNS)
    padded_udp = eth(ipv4(b"\x00\x35\x00\x35\x00", proto=17, dst="1.1.1.3")).ljust(60, b"\0")
    bad_ihl = eth(ipv4(tcp(dport=81), proto=6, ihl=4, dst="1.1.1.4"))  # stops at step 3: nothing
    long_ihl = eth(ipv4(b"\x00" * 3, proto=6, ihl=6, dst="1.1.1.5"))  # len(ip) < ihl: nothing
    v6_in_v4 = eth(ipv4(udp(1, 0), proto=17, version=6, total_length=1, frag_offset=77,
                        more_fragments=True, dst="1.1.1.6"))  # version/len/frag not checked; port 0
    icmp = eth(ipv4(b"\x08\x00" + b"\x00" * 6, proto=1, dst="1.1.1.1"))  # ip only
    bare_ip = eth(ipv4(b"", proto=6, dst="1.1.1.7"))  # exactly 20 IP bytes: decoded, TCP with flags 0
    frames = [short_tcp, short_udp, padded_udp, bad_ihl, long_ihl, v6_in_v4, icmp, bare_ip]
    sizes = [len(f) for f in frames]
    assert sizes == [53, 38, 60, 54, 37, 42, 42, 34]
    r = oracle(pcap([(T + i * MS, f) for i, f in enumerate(frames)]))
    assert r.rows == [row(T, pkts_in=8, bytes_in=sum(sizes), udp_count=3, tcp_count=2, dns_query_count=1,
                          unique_dst_ips=5, unique_dst_ports=2)]


def test_non_ipv4_frames_are_size_only_even_from_bridge():
    frames = [
        vlan(ipv4(tcp(flags=SYN), src="10.200.0.1", proto=6)),
        eth(ipv6(udp(dport=53)), ethertype=0x86DD),
        b"\x01\x02\x03",  # shorter than an Ethernet header
        tcp_frame(src="10.200.0.1")[:20],  # truncated inside the IP header
    ]
    sizes = [len(f) for f in frames]
    r = oracle(pcap([(T + i * MS, f) for i, f in enumerate(frames)]))
    assert r.rows == [row(T, pkts_in=4, bytes_in=sum(sizes))]


def test_bridge_ip_parameter_and_sizes_use_captured_length():
    f = tcp_frame(src="192.168.1.10", flags=ACK)
    data = pcap([Rec(T, f, orig_len=1500)])
    assert oracle(data).rows == [row(T, pkts_in=1, bytes_in=54, tcp_count=1, unique_dst_ips=1, unique_dst_ports=1)]
    assert oracle(data, bridge_ip="192.168.1.10").rows == [
        row(T, pkts_out=1, bytes_out=54, tcp_count=1, unique_dst_ips=1, unique_dst_ports=1)]


# ------------------------------------------------------------------------ buckets


def test_empty_bucket_and_out_of_order_packet():
    a = eth(arp(), ethertype=0x0806)  # 42 bytes, size only
    data = pcap([(T + 10 * MS, a), (T - 50 * MS, a), (T + 250 * MS, a), (T + 150 * MS, a), (T + 299 * MS, a)])
    r = oracle(data)
    # packet 2 is earlier than the origin but the running max keeps it in bucket 0;
    # packet 4 (150 ms) arrives after 250 ms opened bucket 2 -> stays in bucket 2.
    assert r.rows == [
        row(T, pkts_in=2, bytes_in=84),
        row(T + 100 * MS),
        row(T + 200 * MS, pkts_in=3, bytes_in=126),
    ]


def test_bucket_boundaries_origin_and_t_mono():
    a = eth(arp(), ethertype=0x0806)
    t0 = T + 123_456_789
    data = pcap([Rec(t0 - t0 % 1000, a), Rec(T + 200 * MS, a), Rec(T + 300 * MS - 1000, a)], nsec=False)
    r = oracle(data, t_mono_origin_ns=T - 5)
    assert [x["t_wall_ns"] for x in r.rows] == [T + 100 * MS, T + 200 * MS]
    assert [x["t_mono_ns"] for x in r.rows] == [100 * MS + 5, 200 * MS + 5]
    assert [x["pkts_in"] for x in r.rows] == [1, 2]
    # bucket_ms=7: origin is the first t_ns floored to a multiple of 7 ms since the epoch
    r7 = oracle(data, bucket_ms=7)
    origin = (t0 - t0 % 1000) // (7 * MS) * (7 * MS)
    assert r7.rows[0]["t_wall_ns"] == origin and r7.rows[0]["bucket_ms"] == 7
    last = (T + 300 * MS - 1000 - origin) // (7 * MS)
    assert len(r7.rows) == last + 1
    assert [x["t_wall_ns"] for x in r7.rows] == [origin + i * 7 * MS for i in range(last + 1)]
    assert sum(x["pkts_in"] for x in r7.rows) == 3


def _gap_capture():
    a = eth(arp(), ethertype=0x0806)
    times = [T, T + 1100 * MS, T + 2300 * MS, T + 2500 * MS, T + 10 * S]
    return a, pcap([(t, a) for t in times])


def test_gap_cap_cuts_and_counts():
    a, data = _gap_capture()
    rec = 16 + len(a)
    r = oracle(data, max_gap_s=1)
    # bucket 0 -> 11: 10 empties * 100 ms = 1 s <= 1 s: kept.  11 -> 23: 11 empties: cut.
    # 23 -> 25: 1 empty: kept.  25 -> 100: 74 empties: cut.
    idx = list(range(12)) + [23, 24, 25, 100]
    assert [x["t_wall_ns"] for x in r.rows] == [T + i * 100 * MS for i in idx]
    assert [x["pkts_in"] for x in r.rows] == [1] + [0] * 10 + [1, 1, 0, 1, 1]
    assert (r.gaps_cut, r.rows_cut) == (2, 85)
    assert (r.first_cut_packet, r.first_cut_offset) == (3, 24 + 2 * rec)

    none = oracle(data, max_gap_s=None)
    assert len(none.rows) == 101 and none.gaps_cut == 0 and none.first_cut_packet is None
    assert oracle(data).jsonl == none.jsonl  # default 3600 s changes nothing here

    zero = oracle(data, max_gap_s=0)
    assert [x["t_wall_ns"] for x in zero.rows] == [T + i * 100 * MS for i in (0, 11, 23, 25, 100)]
    assert (zero.gaps_cut, zero.rows_cut, zero.first_cut_packet, zero.first_cut_offset) == (4, 96, 2, 24 + rec)

    assert oracle(data, max_gap_s=1.0).jsonl == r.jsonl
    assert len(oracle(data, max_gap_s=1.09999).rows) == len(r.rows)  # floor: still < 11 buckets
    assert len(oracle(data, max_gap_s=7.4).rows) == 101


def test_gap_cap_float_is_exact_decimal():
    a = eth(arp(), ethertype=0x0806)
    data = pcap([(T, a), (T + 400 * MS, a)])  # 3 empty buckets = 0.3 s exactly
    assert len(oracle(data, max_gap_s=0.3).rows) == 5  # 0.3 means 3/10, not the double below it
    r = oracle(data, max_gap_s=0.29)
    assert len(r.rows) == 2 and (r.gaps_cut, r.rows_cut, r.first_cut_packet) == (1, 3, 2)


# ------------------------------------------------------------------- record walk


def test_empty_and_short_files():
    for data in [b"", b"\xd4", b"\xd4\xc3\xb2", b"\xa1\xb2\x3c", b"\x4d\x3c\xb2\xa1", pcap([])[:23],
                 b"\xa1\xb2\xc3\xd4" + b"\xff" * 10, pcap([])]:
        r = oracle(data)
        assert (r.rows, r.jsonl, r.packets, r.truncated_tail) == ([], b"", 0, False), data


@pytest.mark.parametrize("data", [b"\x00", b"\xd4\xc3\xb2\xa2", b"\xa1\xb2\xc3\xd5\x00", b"GIF89a" * 10,
                                  b"\x0a\x0d\x0d\x0a" + b"\x00" * 40, b"\xd4\xc3\xb2"[::-1]])
def test_bad_magic_is_an_error_at_offset_0(data):
    with pytest.raises(OracleError) as e:
        oracle(data)
    assert e.value.offset == 0 and "magic" in e.value.problem


def test_oversized_incl_len_error_at_record_offset():
    f = tcp_frame()
    good = [(T, f), (T + MS, f)]
    bad_at = 24 + 2 * (16 + len(f))
    for tail_frame in (b"\x00" * 40, b""):  # data present or cut short: the header decides
        data = pcap(good + [Rec(T + 2 * MS, tail_frame, incl_len=262145)])
        with pytest.raises(OracleError) as e:
            oracle(data)
        assert e.value.offset == bad_at
    # the limit itself is fine; a cut-short record with a legal incl_len is a truncated tail
    r = oracle(pcap(good + [Rec(T + 2 * MS, b"\x00" * 10, incl_len=262144)]))
    assert r.packets == 2 and r.truncated_tail
    # link type 249 (USBPCAP) allows up to 1 MiB; 231 (DBUS) 128 MiB
    big = pcap([Rec(T, b"\x00" * 262145)], linktype=249)
    assert oracle(big).packets == 1
    with pytest.raises(OracleError) as e:
        oracle(pcap([Rec(T, f), Rec(T, b"", incl_len=1048577)], linktype=249))
    assert e.value.offset == 24 + 16 + len(f)
    assert oracle(pcap([Rec(T, b"", incl_len=134217728)], linktype=231)).truncated_tail
    # only a complete header is checked: a partial header with a huge incl_len is a tail
    hdr = struct.pack("<IIII", 0, 0, 0xFFFFFFFF, 0)
    r = oracle(pcap(good, tail=hdr[:12]))
    assert r.packets == 2 and r.truncated_tail


def test_truncated_tail():
    f = tcp_frame()
    complete = pcap([(T, f), (T + 150 * MS, f)])
    full = oracle(complete)
    assert not full.truncated_tail and full.packets == 2 and len(full.rows) == 2
    next_rec = pcap([(T + 300 * MS, f)])[24:]
    for cut in (1, 15, 16, 17, len(next_rec) - 1):
        r = oracle(complete + next_rec[:cut])
        assert r.truncated_tail and r.packets == 2 and r.jsonl == full.jsonl, cut
    r = oracle(complete + next_rec)
    assert not r.truncated_tail and r.packets == 3 and len(r.rows) == 4


def test_byte_order_and_nanosecond_files_agree():
    frames = [tcp_frame(flags=SYN), udp_frame(), tcp_frame(src="10.200.0.1", flags=RST)]
    recs = [Rec(T + 7 * MS + 3000, frames[0]), Rec(T + 180 * MS, frames[1]), Rec(T + 420 * MS, frames[2])]
    ref = oracle(pcap(recs))
    assert len(ref.rows) == 5
    for byteorder in ("little", "big"):
        for nsec in (False, True):
            data = pcap(recs, byteorder=byteorder, nsec=nsec)
            assert oracle(data).jsonl == ref.jsonl, (byteorder, nsec)
    assert pcap(recs, byteorder="big")[:4] == b"\xa1\xb2\xc3\xd4"
    assert pcap(recs, nsec=True)[:4] == b"\x4d\x3c\xb2\xa1"


def test_nanosecond_resolution_and_unnormalised_frac():
    a = eth(arp(), ethertype=0x0806)
    # ns file: 1 ns before a boundary vs on it
    r = oracle(pcap([(T + 100 * MS - 1, a), (T + 100 * MS, a)], nsec=True))
    assert [x["t_wall_ns"] for x in r.rows] == [T, T + 100 * MS]
    # µs file with ts_frac >= 1e6: t = sec*1e9 + frac*1000, no normalisation
    sec = T // S
    r = oracle(pcap([(T, a), Rec(0, a, ts_sec=sec, ts_frac=1_250_000)]))
    assert [x["t_wall_ns"] for x in r.rows] == [T + i * 100 * MS for i in range(13)]
    # ts_sec above 2**31 is unsigned
    hi = (2**32 - 1) * S
    r = oracle(pcap([(hi, a)]))
    assert r.rows[0]["t_wall_ns"] == hi


def test_other_link_types_count_size_only():
    f = tcp_frame(src="10.200.0.1", flags=SYN)  # would be "out" + SYN if decoded as Ethernet
    r = oracle(pcap([(T, f), (T + MS, b"\x45")], linktype=101))
    assert r.undecoded_linktype == 101
    assert r.rows == [row(T, pkts_in=2, bytes_in=55)]
    # upper bits of the network field (FCS info) are masked off: still Ethernet
    r = oracle(pcap([(T, f)], linktype=0x1000_0001))
    assert r.undecoded_linktype is None and r.rows[0]["pkts_out"] == 1
    assert oracle(pcap([], linktype=113)).undecoded_linktype == 113


def test_bad_parameters():
    with pytest.raises(ValueError):
        oracle(b"", bucket_ms=0)
    with pytest.raises(ValueError):
        oracle(b"", max_gap_s=-1)


def test_pcapgen_rejects_sub_microsecond_in_usec_file():
    with pytest.raises(ValueError):
        pcap([(T + 1, b"")])
    assert len(pcap([(T + 1, b"")], nsec=True)) == 24 + 16
