"""The extended decode (docs/data-model.md): both backends against the oracle, and the options."""

from __future__ import annotations

import io
import ipaddress
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

from conftest import CORPUS
from oracle import OracleError, capture_records, decode_packet, oracle
from pcapgen import (
    ACK,
    SYN,
    Rec,
    arp,
    chdlc,
    erspan2,
    erspan3,
    eth,
    fddi,
    geneve,
    gre,
    gtpu,
    ipv4,
    ipv6,
    ipv6_ext,
    mpls,
    nflog,
    pbb,
    pcap,
    ppi,
    ppp,
    pppoe,
    qinq,
    radiotap,
    tag_stack,
    tcp,
    tzsp,
    udp,
    vlan,
    vlan_tags,
    vntag,
    vxlan,
    wlan,
)
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
    # ... and each packet's encap bits are the oracle's decode's
    data, _ = case
    outs: list = []
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
    if isinstance(outs[0], bytes):
        got = np.frombuffer(outs[0], dtype=PURE.PACKET6_DTYPE)["encap"].tolist()
        assert got == [decode_packet(r.frame, r.linktype, True)["encap"] for r in capture_records(data)]


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


def test_extended_decode_splits_across_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (tests/test_parallel.py checks the splice itself: IPv6 destinations united across ranges)
    from fastpcap import parallel

    monkeypatch.setattr(parallel, "MIN_RANGE_BYTES", 64)
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap([Rec(T0 + i * 10**6, eth(ipv6(udp(1, i), next_header=17), ethertype=0x86DD))
                           for i in range(200)]))
    with fastpcap.open_capture(path, decode="extended") as reader:
        assert parallel.splits_worthwhile(reader, 4)
    assert rows_or_offset(path.read_bytes(), decode="extended") == fastpcap.format_rows(
        fastpcap.bucket_rows(path, decode="extended", jobs=4))
    assert np.array_equal(fastpcap.bucket_rows(path, jobs=4), fastpcap.bucket_rows(path))


def test_tunnels_split_across_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the workers walk with tunnels="inner" too: split rows are the oracle's inner rows
    # (with the outer packets' rows the test fails: they differ in every counter)
    from fastpcap import parallel

    monkeypatch.setattr(parallel, "MIN_RANGE_BYTES", 64)
    path = tmp_path / "t.pcap"
    data = pcap([Rec(T0 + i * 3 * 10**6, EVERY_TUNNEL[i % len(EVERY_TUNNEL)]) for i in range(300)])
    path.write_bytes(data)
    kw = dict(decode="extended", tunnels="inner")
    with fastpcap.open_capture(path, **kw) as reader:
        assert parallel.splits_worthwhile(reader, 4)
    inner = oracle(data, **kw).jsonl
    assert inner != oracle(data, decode="extended").jsonl
    assert fastpcap.format_rows(fastpcap.bucket_rows(path, jobs=4, **kw)) == inner


# -- encapsulations and the link types only the extended decode reads (issue 12) ------------

def decode_both(frames: list[bytes], linktype: int = 1, tunnels: str = "outer") -> np.ndarray:
    """The extended decode of ``frames`` (a classic pcap of ``linktype``) by both backends,
    which must agree byte for byte, and whose rows must be the oracle's."""
    data = pcap([Rec(T0 + i * 1000, f) for i, f in enumerate(frames)], linktype=linktype)
    outs = []
    for impl in [i for i in (COMPILED, PURE) if i is not None]:
        previous, _backend.impl = _backend.impl, impl
        try:
            outs.append(fastpcap.read_packets(io.BytesIO(data), decode="extended", tunnels=tunnels))
        finally:
            _backend.impl = previous
    assert all(o.tobytes() == outs[0].tobytes() for o in outs)
    kw = dict(decode="extended", tunnels=tunnels)
    assert rows_or_offset(data, **kw) == oracle_or_offset(data, **kw)
    return outs[0]


def summary(p) -> tuple:
    """(decoded, ethertype, ip_proto, src, dst, src_port, dst_port, tcp_flags) of one packet."""
    if p["decoded"] & fastpcap.DEC_IPV6:
        src, dst = str(ipaddress.IPv6Address(bytes(p["src_ip6"]))), str(ipaddress.IPv6Address(bytes(p["dst_ip6"])))
    elif p["decoded"] & fastpcap.DEC_IPV4:
        src, dst = str(ipaddress.IPv4Address(int(p["src_ip"]))), str(ipaddress.IPv4Address(int(p["dst_ip"])))
    else:
        src = dst = None
    return (int(p["decoded"]), hex(p["ethertype"]), int(p["ip_proto"]), src, dst, int(p["src_port"]),
            int(p["dst_port"]), int(p["tcp_flags"]))


L, V4, V6, P = fastpcap.DEC_LINK, fastpcap.DEC_IPV4, fastpcap.DEC_IPV6, fastpcap.DEC_PORTS
SYN_IN = ipv4(tcp(40000, 443, flags=SYN), src="10.1.2.3", dst="10.9.8.7")
DNS6 = ipv6(udp(5353, 53), src="2001:db8::1", dst="2001:db8::2", next_header=17)
SYN_ROW = (L | V4 | P, "0x800", 6, "10.1.2.3", "10.9.8.7", 40000, 443, SYN)
DNS6_ROW = (L | V6 | P, "0x86dd", 17, "2001:db8::1", "2001:db8::2", 5353, 53, 0)


def test_encapsulations_inside_ethernet() -> None:
    frames = [
        vlan_tags(pppoe(SYN_IN), tags=[(0x88A8, 10), (0x8100, 20)], inner_ethertype=0x8864),  # QinQ, PPPoE
        eth(pppoe(DNS6, protocol=0x57, compressed=True), ethertype=0x8864),  # PPP field compression
        eth(pppoe(b"\x01\x02\x00\x04", protocol=0xC021), ethertype=0x8864),  # LCP: not IP
        eth(mpls(SYN_IN, labels=(100, 200)), ethertype=0x8847),  # two labels, then nibble 4
        eth(mpls(DNS6, labels=(3,)), ethertype=0x8848),  # multicast, nibble 6
        eth(mpls(b"\x00\x00\x00\x00" + eth(SYN_IN), labels=(7,)), ethertype=0x8847),  # a pseudowire
        eth(pbb(vlan_tags(SYN_IN, tags=[(0x8100, 5)])[14:], ethertype=0x8100), ethertype=0x88E7),  # PBB, tag
        eth(vntag(DNS6, ethertype=0x86DD), ethertype=0x8926),  # VN-Tag
        eth(pppoe(mpls(SYN_IN), protocol=0x0281), ethertype=0x8864),  # PPPoE, PPP MPLS, IPv4
        eth(mpls(SYN_IN)[:4], ethertype=0x8847),  # bottom of stack, nothing after it
        eth(pbb(SYN_IN)[:17], ethertype=0x88E7),  # PBB header cut short
    ]
    got = [summary(p) for p in decode_both(frames)]
    assert got == [
        SYN_ROW, DNS6_ROW,
        (L, "0x8864", 0, None, None, 0, 0, 0),
        SYN_ROW, DNS6_ROW,
        (L, "0x8847", 0, None, None, 0, 0, 0),
        SYN_ROW, DNS6_ROW, SYN_ROW,
        (L, "0x8847", 0, None, None, 0, 0, 0),
        (L, "0x88e7", 0, None, None, 0, 0, 0),
    ]
    # encap: the headers walked (an MPLS entry or PPPoE header the walk stops at is not)
    E = fastpcap
    assert decode_both(frames)["encap"].tolist() == [
        E.ENC_VLAN | E.ENC_PPPOE, E.ENC_PPPOE, 0, E.ENC_MPLS, E.ENC_MPLS, 0, E.ENC_PBB | E.ENC_VLAN, E.ENC_VNTAG,
        E.ENC_PPPOE | E.ENC_MPLS, 0, 0,
    ]
    sll_frames = [vlan_tags(pppoe(SYN_IN), tags=[], inner_ethertype=0x8864, linktype=lt) for lt in (113, 276)]
    assert [summary(decode_both([f], lt)[0]) for f, lt in zip(sll_frames, (113, 276))] == [SYN_ROW, SYN_ROW]


def test_the_encapsulation_walk_is_bounded() -> None:
    # 8 headers (VLAN tags, MPLS labels) are walked; a 9th leaves the frame size only
    eight = vlan_tags(SYN_IN, tags=[(0x8100, i) for i in range(8)])
    nine = vlan_tags(SYN_IN, tags=[(0x8100, i) for i in range(9)])
    labels = eth(mpls(SYN_IN, labels=range(9)), ethertype=0x8847)
    mixed = vlan_tags(mpls(SYN_IN, labels=range(7)), tags=[(0x8100, 1)], inner_ethertype=0x8847)
    got = [summary(p) for p in decode_both([eight, nine, labels, mixed])]
    assert got == [SYN_ROW, (L, "0x8100", 0, None, None, 0, 0, 0), (L, "0x8847", 0, None, None, 0, 0, 0), SYN_ROW]


def test_ppp_and_cisco_hdlc_link_types() -> None:
    dns4 = ipv4(udp(1000, 53), proto=17, src="192.0.2.1", dst="192.0.2.53")
    dns4_row = (L | V4 | P, "0x800", 17, "192.0.2.1", "192.0.2.53", 1000, 53, 0)
    ppp_frames = [
        ppp(dns4),  # FF 03 00 21
        ppp(dns4, framed=False, compressed=True),  # 21
        ppp(DNS6, protocol=0x57, framed=True, compressed=True),  # FF 03 57
        ppp(mpls(SYN_IN), protocol=0x0281),  # MPLS
        ppp(b"\x01\x01\x00\x04", protocol=0xC021),  # LCP
        chdlc(SYN_IN, address=0x8F),  # Cisco HDLC framing in a PPP link type
        b"\xff\x03\x00",  # protocol field cut short: no link header
    ]
    expected = [dns4_row, dns4_row, DNS6_ROW, SYN_ROW, (L, "0x0", 0, None, None, 0, 0, 0), SYN_ROW,
                (0, "0x0", 0, None, None, 0, 0, 0)]
    for linktype in (9, 50):
        assert [summary(p) for p in decode_both(ppp_frames, linktype)] == expected
    hdlc = [chdlc(SYN_IN), chdlc(DNS6, protocol=0x86DD), chdlc(mpls(DNS6, labels=(16, 17)), protocol=0x8847),
            chdlc(b"\0" * 20, protocol=0x8035), chdlc(SYN_IN)[:3]]
    assert [summary(p) for p in decode_both(hdlc, 104)] == [
        SYN_ROW, DNS6_ROW, DNS6_ROW, (L, "0x8035", 0, None, None, 0, 0, 0), (0, "0x0", 0, None, None, 0, 0, 0)]


def test_fddi_link_type() -> None:
    frames = [fddi(SYN_IN), fddi(DNS6, ethertype=0x86DD, fc=0x57, oui=b"\0\0\xf8"),
              fddi(mpls(SYN_IN), ethertype=0x8847),
              fddi(SYN_IN, fc=0x41),  # not an LLC frame
              fddi(SYN_IN, oui=b"\x00\x00\x0c"),  # a vendor's protocol id, not an Ethernet type
              fddi(SYN_IN)[:20], fddi(SYN_IN)[:12]]
    assert [summary(p) for p in decode_both(frames, 10)] == [
        SYN_ROW, DNS6_ROW, SYN_ROW, (L, "0x0", 0, None, None, 0, 0, 0), (L, "0x0", 0, None, None, 0, 0, 0),
        (L, "0x0", 0, None, None, 0, 0, 0), (0, "0x0", 0, None, None, 0, 0, 0)]


def test_ieee802_11_link_types() -> None:
    nothing, absent = (L, "0x0", 0, None, None, 0, 0, 0), (0, "0x0", 0, None, None, 0, 0, 0)
    bare = [wlan(SYN_IN), wlan(DNS6, ethertype=0x86DD, subtype=8, ds=3, oui=b"\0\0\xf8"),  # QoS, 4 addresses
            wlan(SYN_IN, subtype=8, order=True),  # HT control
            wlan(mpls(SYN_IN), ethertype=0x8847),  # an encapsulation walked after LLC/SNAP
            wlan(SYN_IN, protected=True), wlan(SYN_IN, subtype=8, amsdu=True), wlan(SYN_IN, subtype=4),
            wlan(SYN_IN, llc=False), wlan(SYN_IN, frame_type=0),  # management: not decoded
            wlan(SYN_IN)[:23]]  # the header not all there
    assert [summary(p) for p in decode_both(bare, 105)] == [
        SYN_ROW, DNS6_ROW, SYN_ROW, SYN_ROW, nothing, nothing, nothing, nothing, absent, absent]
    padded = wlan(SYN_IN, subtype=8, pad=2)  # a 26-byte header padded to 28
    tapped = [radiotap(wlan(SYN_IN)), radiotap(padded, flags=0x20, tsft=True, extra_words=2),
              radiotap(wlan(SYN_IN) + b"FCS!", flags=0x10, tsft=True),
              radiotap(wlan(ipv4(udp(40000, 53), proto=17)[:24]) + b"FCS!", flags=0x10),  # ports only with the FCS
              radiotap(padded),  # no data-pad flag: LLC/SNAP is not where the header ends
              radiotap(wlan(SYN_IN), version=1), radiotap(wlan(SYN_IN))[:7]]
    assert [summary(p) for p in decode_both(tapped, 127)] == [
        SYN_ROW, SYN_ROW, SYN_ROW, (L | V4, "0x800", 17, "10.200.0.2", "10.200.0.1", 0, 0, 0), nothing, absent,
        absent]
    ppis = [ppi(wlan(SYN_IN)), ppi(eth(DNS6, ethertype=0x86DD), dlt=1, fields=bytes(20)), ppi(SYN_IN, dlt=101),
            ppi(ppi(wlan(SYN_IN)), dlt=192), ppi(wlan(SYN_IN), dlt=147), ppi(wlan(SYN_IN), version=1)]
    assert [summary(p) for p in decode_both(ppis, 192)] == [SYN_ROW, DNS6_ROW, SYN_ROW, absent, absent, absent]


def test_nflog_link_type() -> None:
    udp4 = ipv4(udp(7, 9), proto=17, src="10.0.0.1", dst="10.0.0.2")
    frames = [
        nflog(SYN_IN),  # little-endian TLVs: packet header, prefix, payload
        nflog(DNS6, family=10, byteorder="big"),
        nflog(family=2, tlvs=[(1, b"\x08\x00\x03\x00"), (9, udp4[:27]), (11, b"\0\0\0\1")]),  # payload ends the IP
        nflog(family=2, tlvs=[(1, b"\x08\x00\x03\x00"), (9, udp4), (11, b"\0\0\0\1")]),
        nflog(SYN_IN, family=7),  # not IPv4 or IPv6
        nflog(family=2, tlvs=[(1, b"\x08\x00\x03\x00")]),  # no payload TLV
        nflog(family=2, tlvs=[(4, b"\0\0\0\1")] * 40 + [(9, SYN_IN)]),  # beyond the 32 TLVs read
        nflog(family=2, tlvs=[(4, b"\0\0\0\1")] * 31 + [(9, SYN_IN)]),  # the 32nd
        nflog(SYN_IN)[:3],
        # the packet header's hw_protocol names the payload's protocol, whatever the family
        nflog(SYN_IN, family=7, hw_protocol=0x0800),  # a bridge family log
        nflog(DNS6, family=2, hw_protocol=0x86DD),
        nflog(SYN_IN, family=10, hw_protocol=0x0800),
        nflog(SYN_IN, family=2, hw_protocol=0x86DD),  # the protocol named is not what follows
        nflog(SYN_IN, family=2, hw_protocol=0x0806),  # ARP: not IP
        nflog(SYN_IN, family=10, hw_protocol=0),  # 0: the family's (IPv6), which is not what follows
        nflog(family=2, tlvs=[(1, b"\x86"), (9, SYN_IN)]),  # a packet header too short: the family's
        nflog(family=2, tlvs=[(9, SYN_IN), (1, b"\x86\xdd\x03\x00")]),  # one after the payload: not read
    ]
    assert [summary(p) for p in decode_both(frames, 239)] == [
        SYN_ROW, DNS6_ROW,
        (L | V4, "0x800", 17, "10.0.0.1", "10.0.0.2", 0, 0, 0),
        (L | V4 | P, "0x800", 17, "10.0.0.1", "10.0.0.2", 7, 9, 0),
        (L, "0x0", 0, None, None, 0, 0, 0), (L, "0x0", 0, None, None, 0, 0, 0), (L, "0x0", 0, None, None, 0, 0, 0),
        SYN_ROW, (0, "0x0", 0, None, None, 0, 0, 0),
        SYN_ROW, DNS6_ROW, SYN_ROW,
        (L, "0x86dd", 0, None, None, 0, 0, 0), (L, "0x806", 0, None, None, 0, 0, 0),
        (L, "0x86dd", 0, None, None, 0, 0, 0),
        SYN_ROW, SYN_ROW]


@pytest.mark.parametrize("linktype", [9, 10, 50, 104, 239])
def test_new_link_types_are_size_only_in_the_reference_decode(linktype: int) -> None:
    frame = {9: ppp(SYN_IN), 50: ppp(SYN_IN), 104: chdlc(SYN_IN), 10: fddi(SYN_IN), 239: nflog(SYN_IN)}[linktype]
    data = pcap([Rec(T0, frame)], linktype=linktype)
    with pytest.warns(fastpcap.LinkTypeWarning, match=f"\\({linktype}\\)"):
        reference = fastpcap.bucket_rows(io.BytesIO(data))
    assert fastpcap.read_packets(io.BytesIO(data))["decoded"][0] == 0
    assert (reference["syn_count"][0], reference["tcp_count"][0]) == (0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastpcap.LinkTypeWarning)
        extended = fastpcap.bucket_rows(io.BytesIO(data), decode="extended")
    assert (extended["syn_count"][0], extended["tcp_count"][0]) == (1, 1)
    assert linktype in _backend.impl.EXTENDED_LINKTYPES and linktype not in _backend.impl.DECODED_LINKTYPES


# -- tunnels="inner" (docs/data-model.md, "Tunnels") -----------------------------------------

OUTER4 = dict(src="192.0.2.1", dst="192.0.2.2")
OUTER6 = dict(src="2001:db8:f::1", dst="2001:db8:f::2")


def over4(payload: bytes, proto: int, **kw) -> bytes:
    """``payload`` of IP protocol ``proto`` in an outer IPv4 packet in Ethernet."""
    return eth(ipv4(payload, proto=proto, **{**OUTER4, **kw}))


def over_udp(payload: bytes, port: int) -> bytes:
    return over4(udp(50000, port, payload=payload), 17)


def outer_row(proto: int, ports: tuple[int, int] | None = None) -> tuple:
    decoded = L | V4 | (P if ports else 0)
    return (decoded, "0x800", proto, "192.0.2.1", "192.0.2.2", *(ports or (0, 0)), 0)


EVERY_TUNNEL = [
    over4(gre(SYN_IN), 47),  # GRE, IPv4
    over4(gre(DNS6, protocol=0x86DD, checksum=True, key=9, seq=3), 47),  # GRE with C, K, S
    over4(gre(eth(SYN_IN), protocol=0x6558, key=1), 47),  # transparent Ethernet bridging
    over4(gre(vlan_tags(SYN_IN, tags=[(0x8100, 5), (0x8100, 6)]), protocol=0x6558), 47),  # ... with VLAN tags
    over4(gre(mpls(SYN_IN, labels=(17, 18)), protocol=0x8847), 47),  # MPLS in GRE
    over4(gre(eth(SYN_IN), protocol=0x88BE), 47),  # ERSPAN type I: no header
    over4(gre(erspan2(vlan(SYN_IN)), protocol=0x88BE, seq=7), 47),  # ERSPAN type II, a VLAN tag
    over4(gre(erspan3(eth(DNS6, ethertype=0x86DD)), protocol=0x22EB, seq=7), 47),  # ERSPAN type III
    over4(gre(erspan3(eth(SYN_IN), platform=b"\x1c" * 8), protocol=0x22EB, seq=7), 47),  # ... with O
    over4(gre(b"\xff\x03\x00\x21" + SYN_IN, protocol=0x880B, version=1, key=0x10001, seq=1, ack=1), 47),  # PPTP
    over4(gre(b"\x21" + SYN_IN, protocol=0x880B, version=1, key=0x10001), 47),  # PPTP, compressed PPP
    over_udp(vxlan(eth(SYN_IN)), 4789),  # VXLAN
    over_udp(geneve(eth(DNS6, ethertype=0x86DD), options=b"\x01\x02\x03\x04\x05"), 6081),  # GENEVE, options
    over_udp(geneve(SYN_IN, protocol=0x0800), 6081),  # GENEVE carrying IPv4 directly
    over_udp(gtpu(SYN_IN), 2152),  # GTP-U
    over_udp(gtpu(DNS6, seq=5, extensions=[(0x85, b"\x01"), (0x40, b"\x02\x03\x04\x05")]), 2152),  # extensions
    over4(SYN_IN, 4),  # IP in IP
    over4(DNS6, 41),  # 6in4
    eth(ipv6(SYN_IN, next_header=4, **OUTER6), ethertype=0x86DD),  # IPv4 in IPv6
    eth(ipv6(ipv6_ext(60, DNS6, next_header=41), next_header=60, **OUTER6), ethertype=0x86DD),  # after options
    eth(ipv6(gre(SYN_IN), next_header=47, **OUTER6), ethertype=0x86DD),  # GRE over IPv6
    over_udp(vxlan(over_udp(vxlan(eth(SYN_IN)), 4789)), 4789),  # a tunnel in a tunnel
    over4(gre(wlan(SYN_IN), protocol=0x8200), 47),  # Aruba: IEEE 802.11, LLC/SNAP
    over4(gre(wlan(DNS6, ethertype=0x86DD, subtype=8, ds=3, order=True), protocol=0x8370, key=5), 47),  # QoS, 4 addr.
    over4(gre(wlan(tag_stack()[1] + SYN_IN, ethertype=0x8100), protocol=0x82A0), 47),  # ... a VLAN tag after LLC/SNAP
    over_udp(tzsp(vlan(SYN_IN), tags=[0, (10, b"\xc4"), (60, b"\x02" * 6)]), 37008),  # TZSP: Ethernet, a tag
    over_udp(tzsp(wlan(DNS6, ethertype=0x86DD, subtype=8), encapsulation=18, kind=1), 37008),  # TZSP: 802.11
]
EVERY_INNER = [SYN_ROW, DNS6_ROW, SYN_ROW, SYN_ROW, SYN_ROW, SYN_ROW, SYN_ROW, DNS6_ROW, SYN_ROW, SYN_ROW,
               SYN_ROW, SYN_ROW, DNS6_ROW, SYN_ROW, SYN_ROW, DNS6_ROW, SYN_ROW, DNS6_ROW, SYN_ROW, DNS6_ROW,
               SYN_ROW, SYN_ROW, SYN_ROW, DNS6_ROW, SYN_ROW, SYN_ROW, DNS6_ROW]
_GRE, _VLAN = fastpcap.ENC_GRE, fastpcap.ENC_VLAN
_ERSPAN = _GRE | fastpcap.ENC_ERSPAN
EVERY_ENCAP = [_GRE, _GRE, _GRE, _GRE | _VLAN, _GRE | fastpcap.ENC_MPLS, _ERSPAN, _ERSPAN | _VLAN, _ERSPAN, _ERSPAN,
               *[_GRE | fastpcap.ENC_PPTP] * 2,
               fastpcap.ENC_VXLAN, fastpcap.ENC_GENEVE, fastpcap.ENC_GENEVE, fastpcap.ENC_GTPU, fastpcap.ENC_GTPU,
               *[fastpcap.ENC_IPIP] * 4, _GRE, fastpcap.ENC_VXLAN, *[_GRE | fastpcap.ENC_ARUBA] * 2,
               _GRE | fastpcap.ENC_ARUBA | _VLAN, fastpcap.ENC_TZSP | _VLAN, fastpcap.ENC_TZSP]


def test_every_tunnel_gives_its_inner_packet() -> None:
    inner = decode_both(EVERY_TUNNEL, tunnels="inner")
    assert [summary(p) for p in inner] == EVERY_INNER
    assert inner["encap"].tolist() == EVERY_ENCAP  # the tunnels and encapsulations walked
    # tunnels="outer" (the default) counts the outer packet: the same packets as without the option
    outer = decode_both(EVERY_TUNNEL)
    assert outer.tobytes() == decode_both(EVERY_TUNNEL, tunnels="outer").tobytes()
    assert summary(outer[0]) == outer_row(47) and summary(outer[11]) == outer_row(17, (50000, 4789))
    assert summary(outer[18])[1:3] == ("0x86dd", 4)


def test_what_stays_the_outer_packet() -> None:
    arp_frame = eth(arp(), ethertype=0x0806)
    frames = [
        over_udp(vxlan(arp_frame), 4789),  # the inner frame is not IP
        over_udp(vxlan(eth(SYN_IN)[:33]), 4789),  # the inner IPv4 header cut short
        over_udp(vxlan(eth(SYN_IN)[:13]), 4789),  # the inner Ethernet header cut short
        over4(gre(SYN_IN, routing=True), 47),  # GRE with routing: not walked
        over4(gre(SYN_IN, version=2), 47),  # an unknown GRE version
        over4(gre(SYN_IN, protocol=0x0806), 47),  # a protocol type we do not go on from
        over4(gre(erspan2(eth(SYN_IN), version=3), protocol=0x88BE, seq=1), 47),  # ERSPAN version 3
        over4(gre(erspan3(eth(SYN_IN), frame_type=2), protocol=0x22EB), 47),  # ERSPAN III: not Ethernet
        over4(gre(SYN_IN, key=1)[:7], 47),  # the GRE header cut short
        over4(gre(b"\xff\x03\xc0\x21\x01", protocol=0x880B, version=1, key=1), 47),  # PPTP carrying LCP
        over_udp(geneve(eth(SYN_IN), version=1), 6081),  # GENEVE version 1
        over_udp(geneve(SYN_IN, protocol=0x0806), 6081),  # GENEVE, another protocol type
        over_udp(gtpu(SYN_IN, message=1), 2152),  # GTP-U echo request, not a G-PDU
        over_udp(gtpu(SYN_IN, version=2), 2152),  # GTPv2
        over_udp(gtpu(b"\x10" + SYN_IN[1:]), 2152),  # a G-PDU that is not IP
        over_udp(gtpu(SYN_IN, extensions=[(0x85, b"")] * 9), 2152),  # 9 extension headers
        eth(ipv4(udp(4789, 50000, payload=vxlan(eth(SYN_IN))), proto=17, **OUTER4)),  # VXLAN only by destination
        over4(SYN_IN, 4, frag_offset=10),  # a non-first fragment: no tunnel walk
        over4(gre(wlan(SYN_IN, protected=True), protocol=0x8200), 47),  # Aruba: a protected 802.11 frame
        over4(gre(wlan(SYN_IN, frame_type=0), protocol=0x8200), 47),  # Aruba: a management frame
        over4(gre(wlan(SYN_IN, llc=False), protocol=0x8200), 47),  # Aruba: no LLC/SNAP
        over4(gre(wlan(SYN_IN), protocol=0x8201), 47),  # not one of Aruba's protocol types
        over4(gre(wlan(SYN_IN), protocol=0x9000), 47),  # (nor this: tshark shows its data only)
    ]
    got = [summary(p) for p in decode_both(frames, tunnels="inner")]
    gre_row, udp_row = outer_row(47), outer_row(17, (50000, 4789))
    assert got == [
        udp_row, udp_row, udp_row,
        gre_row, gre_row, gre_row, gre_row, gre_row, gre_row, gre_row,
        outer_row(17, (50000, 6081)), outer_row(17, (50000, 6081)),
        *[outer_row(17, (50000, 2152))] * 4,
        outer_row(17, (4789, 50000)),
        (L | V4 | fastpcap.DEC_FRAGMENT, "0x800", 4, "192.0.2.1", "192.0.2.2", 0, 0, 0),
        *[gre_row] * 5,
    ]


def test_tzsp_header_and_tags() -> None:
    # TZSP (UDP 37008): version 1, type 0 or 1, encapsulation 1 (Ethernet) or 18 (802.11),
    # tagged fields up to END (0: padding, 1: END, one byte each; others: tag, length, value)
    long_tag = (83, b"sensor in the attic" * 13)  # 247 bytes of value
    walked = [
        over_udp(tzsp(eth(SYN_IN)), 37008),  # no tags: END right away
        over_udp(tzsp(eth(SYN_IN), tags=[0] * 5 + [(41, b"\x05\xdc"), (18, b"\x06"), long_tag]), 37008),
        over_udp(tzsp(eth(SYN_IN), tags=[(7, b""), 0, (0x9F, b"\x01")]), 37008),  # an empty value; 01 as a value
        over_udp(tzsp(vlan(DNS6, inner_ethertype=0x86DD), kind=1), 37008),  # a packet to transmit, a VLAN tag
        over_udp(tzsp(wlan(SYN_IN, ds=3), encapsulation=18), 37008),  # 802.11, four addresses
        over_udp(tzsp(over_udp(tzsp(eth(DNS6, ethertype=0x86DD)), 37008)), 37008),  # TZSP in TZSP
    ]
    got = decode_both(walked, tunnels="inner")
    assert [summary(p) for p in got] == [SYN_ROW, SYN_ROW, SYN_ROW, DNS6_ROW, SYN_ROW, DNS6_ROW]
    assert got["encap"].tolist() == [fastpcap.ENC_TZSP] * 3 + [fastpcap.ENC_TZSP | _VLAN] + [fastpcap.ENC_TZSP] * 2
    udp_row = outer_row(17, (50000, 37008))
    not_walked = [
        over_udp(tzsp(eth(SYN_IN), version=2), 37008),  # another version
        over_udp(tzsp(eth(SYN_IN), version=0), 37008),
        over_udp(tzsp(eth(SYN_IN), kind=3), 37008),  # configuration
        over_udp(tzsp(eth(SYN_IN), kind=4), 37008),  # keepalive: no packet
        over_udp(tzsp(eth(SYN_IN), kind=5), 37008),  # port opener
        over_udp(tzsp(SYN_IN, encapsulation=7), 37008),  # raw IP: an encapsulation not walked
        over_udp(tzsp(wlan(SYN_IN), encapsulation=119), 37008),  # 802.11 with a Prism header
        over_udp(tzsp(wlan(SYN_IN), encapsulation=0x0112), 37008),  # (18 in the low byte only)
        over_udp(tzsp(tags=[0, 0, (10, b"\xc4")], end=False), 37008),  # the tags end without END
        over_udp(tzsp(tags=[(60, b"\x02" * 6)], end=False)[:-1], 37008),  # a tag's value cut short
        over_udp(tzsp(tags=[0], end=False) + b"\x3c", 37008),  # a tag without its length
        over_udp(b"\x01\x00\x00", 37008),  # the header cut short
        over_udp(tzsp(wlan(SYN_IN, protected=True), encapsulation=18), 37008),  # 802.11: protected
        over_udp(tzsp(wlan(SYN_IN, llc=False), encapsulation=18), 37008),  # 802.11: no LLC/SNAP
        over_udp(tzsp(wlan(SYN_IN, frame_type=0), encapsulation=18), 37008),  # 802.11: management
        over_udp(tzsp(wlan(SYN_IN, subtype=8, amsdu=True), encapsulation=18), 37008),  # 802.11: an A-MSDU
        over_udp(tzsp(wlan(SYN_IN)[:20], encapsulation=18), 37008),  # the 802.11 header cut short
        eth(ipv4(udp(37008, 50000, payload=tzsp(eth(SYN_IN))), proto=17, **OUTER4)),  # only by destination
    ]
    got = decode_both(not_walked, tunnels="inner")
    assert [summary(p) for p in got[:-1]] == [udp_row] * (len(not_walked) - 1)
    assert summary(got[-1]) == outer_row(17, (37008, 50000))
    assert not got["encap"].any()  # a header not walked sets no bit
    # the walk stopping inside: the Ethernet frame cut short, or not IP, after a walked header
    stopped = [over_udp(tzsp(eth(SYN_IN)[:13]), 37008), over_udp(tzsp(eth(arp(), ethertype=0x0806)), 37008)]
    got = decode_both(stopped, tunnels="inner")
    assert [summary(p) for p in got] == [udp_row] * 2 and got["encap"].tolist() == [fastpcap.ENC_TZSP] * 2
    # every frame agrees with the oracle (docs/data-model.md), field by field
    for frame, p in zip(walked + not_walked + stopped, decode_both(walked + not_walked + stopped, tunnels="inner")):
        assert int(p["encap"]) == decode_packet(frame, 1, True, True)["encap"]


def test_tzsp_counts_against_the_bound() -> None:
    # each TZSP header is one header of the 8: VLAN tags + TZSP headers
    def nested(tags: int, depth: int) -> bytes:
        packet = eth(SYN_IN)
        for i in range(depth):
            packet = eth(ipv4(udp(50000, 37008, payload=tzsp(packet)), proto=17, src=f"10.0.0.{i + 1}",
                              dst="10.0.0.99"))
        return vlan_tags(packet[14:], tags=[(0x8100, i) for i in range(tags)])

    got = [summary(p) for p in decode_both([nested(0, 8), nested(0, 9), nested(2, 6), nested(3, 6)],
                                           tunnels="inner")]
    last_outer = (L | V4 | P, "0x800", 17, "10.0.0.1", "10.0.0.99", 50000, 37008, 0)
    assert got == [SYN_ROW, last_outer, SYN_ROW, last_outer]


def test_a_real_tzsp_stream() -> None:
    # a MikroTik stream (from the shared corpus) of five HTTP segments, sent to UDP 31337:
    # not walked there (TZSP is recognised by the destination port 37008 only); with the
    # port set to 37008, the packets inside (tshark -d udp.port==31337,tzsp shows the same)
    path = CORPUS / "filesamples__simple_http_tzsp.pcapng"
    if not path.exists():
        pytest.skip(f"the shared capture corpus is not here ({CORPUS})")
    frames = [r.frame for r in capture_records(path.read_bytes())]
    assert all(f[36:38] == (31337).to_bytes(2, "big") for f in frames)
    assert not decode_both(frames, tunnels="inner")["encap"].any()
    moved = [f[:36] + (37008).to_bytes(2, "big") + f[38:] for f in frames]
    got = decode_both(moved, tunnels="inner")
    client, server = "192.168.88.123", "192.168.88.249"
    assert [summary(p)[2:] for p in got] == [
        (6, client, server, 55264, 56789, 0x18), (6, server, client, 56789, 55264, 0x18),
        (6, client, server, 55270, 56789, 0x18), (6, server, client, 56789, 55270, 0x18),
        (6, server, client, 56789, 55270, 0x19),
    ]
    assert got["encap"].tolist() == [fastpcap.ENC_TZSP] * 5


def test_inner_packets_as_far_as_decoded() -> None:
    frag = ipv4(tcp(1, 2, flags=SYN), src="10.1.2.3", dst="10.9.8.7", frag_offset=3)
    frames = [
        over_udp(vxlan(eth(SYN_IN[:30])), 4789),  # inner IPv4 header, TCP cut short: no ports
        over4(frag, 4),  # the inner packet is a non-first fragment: its addresses, no ports
        over4(SYN_IN, 4, more_fragments=True),  # the outer packet is a first fragment: walked
        over4(ipv4(SYN_IN, proto=4, src="10.5.5.5", dst="10.6.6.6"), 4),  # IP in IP in IP: the innermost
    ]
    got = [summary(p) for p in decode_both(frames, tunnels="inner")]
    assert got == [
        (L | V4, "0x800", 6, "10.1.2.3", "10.9.8.7", 0, 0, 0),
        (L | V4 | fastpcap.DEC_FRAGMENT, "0x800", 6, "10.1.2.3", "10.9.8.7", 0, 0, 0),
        SYN_ROW, SYN_ROW,
    ]


def test_the_tunnel_walk_is_bounded() -> None:
    # every tunnel and every encapsulation header counts against the one bound of 8 headers
    def nest(depth: int) -> bytes:
        packet = SYN_IN
        for i in range(depth):
            packet = ipv4(packet, proto=4, src=f"10.0.0.{i + 1}", dst="10.0.0.99")
        return eth(packet)

    got = [summary(p) for p in decode_both([nest(8), nest(9)], tunnels="inner")]
    assert got[0] == SYN_ROW  # 8 tunnels: all walked
    assert got[1] == (L | V4, "0x800", 4, "10.0.0.1", "10.0.0.99", 0, 0, 0)  # the 9th is not
    tagged = vlan_tags(ipv4(SYN_IN, proto=4, **OUTER4), tags=[(0x8100, i) for i in range(7)])
    too_many = vlan_tags(ipv4(SYN_IN, proto=4, **OUTER4), tags=[(0x8100, i) for i in range(8)])
    vxlan_tags = [over_udp(vxlan(vlan_tags(SYN_IN, tags=[(0x8100, i) for i in range(k)])), 4789) for k in (7, 8)]
    got = [summary(p) for p in decode_both([tagged, too_many, *vxlan_tags], tunnels="inner")]
    assert got == [SYN_ROW, (L | V4, "0x800", 4, "192.0.2.1", "192.0.2.2", 0, 0, 0),
                   SYN_ROW, outer_row(17, (50000, 4789))]


def test_tunnels_change_what_is_counted_but_not_the_sizes() -> None:
    frames = [over_udp(vxlan(eth(SYN_IN)), 4789), over4(ipv4(tcp(443, 40000, flags=SYN | ACK), src="10.9.8.7",
                                                              dst="10.200.0.1"), 4)]
    outer = one_row(frames, decode="extended")
    inner = one_row(frames, decode="extended", tunnels="inner")
    assert (outer["tcp_count"], outer["udp_count"], outer["syn_count"], outer["tcp_new_flows"]) == (0, 1, 0, 0)
    assert (inner["tcp_count"], inner["udp_count"], inner["syn_count"], inner["tcp_new_flows"]) == (2, 0, 2, 1)
    assert inner["unique_dst_ips"] == 2 and outer["unique_dst_ips"] == 1
    assert inner["bytes_in"] + inner["bytes_out"] == outer["bytes_in"] + outer["bytes_out"] == sum(map(len, frames))
    packets = decode_both(frames, tunnels="inner")
    assert list(packets["caplen"]) == list(packets["wirelen"]) == [len(f) for f in frames]


def test_tunnels_option(cli, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tunnels: 'inner' needs the extended decode"):
        fastpcap.BucketSpec(tunnels="inner")
    with pytest.raises(ValueError, match="tunnels must be one of outer, inner"):
        fastpcap.BucketSpec(decode="extended", tunnels="deep")
    with pytest.raises(ValueError, match="needs the extended decode"):
        fastpcap.open_capture(io.BytesIO(pcap([])), tunnels="inner")
    spec = fastpcap.BucketSpec(decode="extended", tunnels="inner")
    assert spec.to_dict()["tunnels"] == "inner" and fastpcap.BucketSpec().to_dict()["tunnels"] == "outer"
    path = tmp_path / "t.pcap"
    data = pcap([Rec(T0 + i * 1000, f) for i, f in enumerate(EVERY_TUNNEL)])
    path.write_bytes(data)
    proc = cli("bucketize", path, "--decode", "extended", "--tunnels", "inner", check=True)
    assert proc.stdout == oracle(data, decode="extended", tunnels="inner").jsonl
    assert json.loads(proc.stdout)["syn_count"] == EVERY_INNER.count(SYN_ROW) == 19
    bad = cli("bucketize", path, "--tunnels", "inner")
    assert bad.returncode == 2 and b"--tunnels: 'inner' needs the extended decode" in bad.stderr
    assert b"Traceback" not in bad.stderr and bad.stderr.splitlines()[-1].startswith(b"fastpcap bucketize: error:")
    info = cli("info", "--json", "--tunnels", "inner", path, check=True)
    assert json.loads(info.stdout)["tcp"] == 19
    assert json.loads(cli("info", "--json", path, check=True).stdout)["tcp"] == 0
