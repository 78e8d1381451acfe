"""Hypothesis strategies for whole captures, built on the byte builders of ``pcapgen``.

Entry points (each returns a strategy)::

    frames()                      Ethernet frames, well-formed and awkward
    records(max_size=...)         lists of pcapgen.Rec with realistic and hostile clocks
    captures(...)                 (classic pcap bytes, oracle kwargs)
    linktype_frames(linktype)     frames behind another link header
    pcapng_twins(...)             (pcapng bytes, classic pcap bytes) holding the same packets
    pcapng_captures(...)          (pcapng bytes, oracle kwargs)
    compressed(strategy, ...)     what ``strategy`` draws, compressed (or not), maybe cut
    corrupted(strategy, ...)      what ``strategy`` draws, with records damaged (resync tests)
    extended_frames()             frames for the extended decode (VLAN stacks, IPv6 chains)
    extended_linktype_frames(lt)  the same behind another link header
    extended_captures(...)        (pcap or pcapng bytes, oracle kwargs with decode="extended")

The pieces they draw from are plain functions of ``draw`` (``_weighted``, ``_f_tcp``...),
called inside the composites, so each entry point draws exactly what it drew when these
strategies lived in one closure in pcapgen.  pcapgen itself stays importable without
Hypothesis: the tests that only build bytes do not need it.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction

from hypothesis import strategies as st

from pcapgen import (
    _U32,
    _U64,
    ACK,
    AF_INET,
    AF_INET6_FAMILIES,
    BRIDGE_IP,
    BT_EPB,
    BT_IDB,
    BT_ISB,
    BT_NRB,
    BT_PB,
    BT_SPB,
    COMPRESSIONS,
    CWR,
    ECE,
    EPB_FLAGS,
    FIN,
    IF_FCSLEN,
    IF_NAME,
    IF_TSOFFSET,
    IF_TSRESOL,
    LINK_HEADER_LEN,
    MAGIC_NSEC,
    MAGIC_USEC,
    OPT_COMMENT,
    PPP_PROTOCOLS,
    PSH,
    RST,
    SYN,
    URG,
    VLAN_TPIDS,
    Rec,
    _bo,
    _pad4,
    arp,
    block,
    chdlc,
    compress,
    custom_block,
    dns_query,
    dsb,
    epb,
    erspan2,
    erspan3,
    eth,
    fddi,
    geneve,
    global_header,
    gre,
    gtpu,
    icmpv6,
    idb,
    ipv4,
    ipv6,
    ipv6_exts,
    isb,
    loop,
    mac,
    mpls,
    nflog,
    nrb,
    null,
    opb,
    options,
    pbb,
    pcap,
    pcapng,
    ppi,
    ppp,
    pppoe,
    radiotap,
    record_bytes,
    record_offsets,
    shb,
    sll,
    sll2,
    spb,
    tag_stack,
    tcp,
    ts_units,
    tzsp,
    udp,
    units_per_second,
    vlan,
    vlan_tags,
    vntag,
    vxlan,
    wlan,
)

#: How many examples each property test draws, relative to the number written at the test:
#: ``FASTPCAP_SWEEP`` (default 0.25) keeps the README's test command to a few minutes, and
#: ``.ci/run`` adds a full pass of the property tests at ``FASTPCAP_SWEEP=1``.
SWEEP = float(os.environ.get("FASTPCAP_SWEEP", "0.25"))


def sweep(examples: int) -> int:
    """The ``max_examples`` of a property test written for ``examples`` at full sweep (at least 10)."""
    return max(10, round(examples * SWEEP))


__all__ = [
    "frames", "records", "captures", "linktype_frames", "pcapng_twins", "pcapng_captures", "compressed", "corrupted",
    "extended_frames", "extended_linktype_frames", "extended_captures", "encapsulated_frames", "MORE_LINKTYPES",
    "tunnel_frames", "TUNNEL_KINDS",
    "ADDR_POOL", "PORT_POOL", "FLAG_POOL", "OTHER_PROTOS", "TWIN_LINKTYPES", "CAPTURE_LINKTYPES", "KNOWN_MAGICS",
    "EXT_LINKTYPES", "V4_POOL", "V6_POOL", "HOST_IP_POOL", "SWEEP", "sweep",
]

# ---------------------------------------------------------------------------
# Pools and weights shared by the strategies
# ---------------------------------------------------------------------------

ADDR_POOL = ["10.200.0.1", "10.200.0.2", "10.200.0.3", "8.8.8.8", "192.168.1.10", "0.0.0.0", "255.255.255.255"]
PORT_POOL = [0, 53, 80, 443, 40000, 40001, 65535]
FLAG_POOL = [
    SYN, SYN | ACK, ACK, FIN, FIN | ACK, RST, RST | ACK, PSH | ACK, 0, URG,
    SYN | FIN, SYN | RST, SYN | ECE | CWR, SYN | ACK | ECE, 0x3F, 0xFF, 0xFFF, 0x100, 0x40 | SYN,
]
OTHER_PROTOS = [0, 1, 2, 4, 41, 47, 50, 58, 132, 255]
# link types pcapng_twins() draws from (one per file) and pcapng_captures() mixes
TWIN_LINKTYPES = (1, 1, 1, 113, 276, 101, 12, 14, 228, 229, 0, 108, 147, 105)
CAPTURE_LINKTYPES = (1, 1, 113, 276, 101, 228, 229, 0, 108, 12, 14, 147, 9, 249, 231)

# Every magic a reader recognises by its first bytes: classic pcap (4 encodings), the
# pcapng SHB type, and the compression formats.
KNOWN_MAGICS = tuple(struct.pack(bo + "I", m) for bo in "<>" for m in (MAGIC_USEC, MAGIC_NSEC)) + (
    b"\x0a\x0d\x0d\x0a", b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\xfd\x37\x7a\x58\x5a\x00", b"BZh",
    b"\x04\x22\x4d\x18")


def _begins_a_magic(b: bytes) -> bool:
    """True when ``b`` and some known magic agree on their common length (one begins the other)."""
    return any(m[: len(b)] == b[: len(m)] for m in KNOWN_MAGICS)


def _weighted(draw, choices):
    """choices: list of (weight, value) -> a drawn value, shrinking towards the first."""
    flat = [v for w, v in choices for _ in range(w)]
    return draw(st.sampled_from(flat))


# ---------------------------------------------------------------------------
# Ethernet frames
# ---------------------------------------------------------------------------


def _addr(draw):
    kind = _weighted(draw, [(3, "bridge"), (6, "pool"), (1, "any")])
    if kind == "bridge":
        return BRIDGE_IP
    if kind == "pool":
        return draw(st.sampled_from(ADDR_POOL))
    return draw(st.binary(min_size=4, max_size=4))


def _port(draw):
    if _weighted(draw, [(8, "pool"), (2, "any")]) == "pool":
        return draw(st.sampled_from(PORT_POOL))
    return draw(st.integers(0, 65535))


def _udp_dport(draw):
    kind = _weighted(draw, [(5, "dns"), (2, "zero"), (5, "other")])
    if kind == "dns":
        return 53
    if kind == "zero":
        return 0
    return _port(draw)


def _tcp_flags(draw):
    if _weighted(draw, [(4, "pool"), (1, "any")]) == "pool":
        return draw(st.sampled_from(FLAG_POOL))
    return draw(st.integers(0, 0xFFF))


def _small_payload(draw, max_size=24):
    return draw(st.binary(max_size=max_size))


def _tcp_segment(draw):
    data_offset = _weighted(draw, [(8, 5), (1, 8), (1, "any")])
    if data_offset == "any":
        data_offset = draw(st.integers(0, 15))
    return tcp(
        _port(draw), _port(draw), flags=_tcp_flags(draw), payload=_small_payload(draw),
        data_offset=data_offset, seq=draw(st.integers(0, _U32)), ack=0,
    )


def _udp_datagram(draw):
    dport = _udp_dport(draw)
    if dport == 53 and draw(st.booleans()):
        payload = dns_query(draw(st.sampled_from(["example.com", "a.b", "x" * 20 + ".org"])))
    else:
        payload = _small_payload(draw)
    return udp(_port(draw), dport, payload=payload)


def _transport(draw, proto):
    if proto == 6:
        return _tcp_segment(draw)
    if proto == 17:
        return _udp_datagram(draw)
    return _small_payload(draw, 40)


def _ip_fields(draw):
    version = _weighted(draw, [(12, 4), (1, "any")])
    if version == "any":
        version = draw(st.integers(0, 15))
    total_length = None if _weighted(draw, [(9, True), (1, False)]) else draw(st.integers(0, 0xFFFF))
    return dict(src=_addr(draw), dst=_addr(draw), version=version, total_length=total_length,
                ttl=draw(st.integers(0, 255)), ident=draw(st.integers(0, 0xFFFF)))


def _maybe_pad(draw, frame):
    kind = _weighted(draw, [(6, "none"), (2, "min60"), (2, "extra")])
    if kind == "min60":
        return frame.ljust(60, b"\0")
    if kind == "extra":
        return frame + draw(st.binary(min_size=1, max_size=30))
    return frame


def _f_tcp(draw):
    return _maybe_pad(draw, eth(ipv4(_tcp_segment(draw), proto=6, **_ip_fields(draw))))


def _f_udp(draw):
    return _maybe_pad(draw, eth(ipv4(_udp_datagram(draw), proto=17, **_ip_fields(draw))))


def _f_options(draw):
    ihl = draw(st.integers(6, 15))
    proto = draw(st.sampled_from([6, 17, 6, 17, 1]))
    opts = draw(st.binary(min_size=(ihl - 5) * 4, max_size=(ihl - 5) * 4))
    return _maybe_pad(draw, eth(ipv4(_transport(draw, proto), proto=proto, ihl=ihl, options=opts, **_ip_fields(draw))))


def _f_bad_ihl(draw):
    ihl = draw(st.integers(0, 4))
    proto = draw(st.sampled_from([6, 17]))
    return _maybe_pad(draw, eth(ipv4(_transport(draw, proto), proto=proto, ihl=ihl, **_ip_fields(draw))))


def _f_ihl_too_long(draw):
    # IHL says more header than the frame holds (len(ip) < ihl*4)
    ihl = draw(st.integers(6, 15))
    extra = draw(st.binary(max_size=(ihl - 5) * 4 - 1))
    proto = draw(st.sampled_from([6, 17]))
    return eth(ipv4(extra, proto=proto, ihl=ihl, **_ip_fields(draw)))


def _f_short_tcp(draw):
    return _maybe_pad(draw, eth(ipv4(draw(st.binary(max_size=19)), proto=6, **_ip_fields(draw))))


def _f_short_udp(draw):
    return _maybe_pad(draw, eth(ipv4(draw(st.binary(max_size=7)), proto=17, **_ip_fields(draw))))


def _f_other_proto(draw):
    proto = draw(st.sampled_from(OTHER_PROTOS))
    return _maybe_pad(draw, eth(ipv4(_small_payload(draw, 40), proto=proto, **_ip_fields(draw))))


def _f_fragment(draw):
    proto = draw(st.sampled_from([6, 17]))
    first = draw(st.booleans())
    body = _transport(draw, proto) if first else _small_payload(draw, 40)
    return _maybe_pad(draw, eth(ipv4(
        body, proto=proto, more_fragments=first or draw(st.booleans()),
        frag_offset=0 if first else draw(st.integers(1, 0x1FFF)), **_ip_fields(draw),
    )))


def _f_vlan(draw):
    proto = draw(st.sampled_from([6, 17]))
    inner = ipv4(_transport(draw, proto), proto=proto, **_ip_fields(draw))
    return vlan(inner, vid=draw(st.integers(0, 4095)), tpid=draw(st.sampled_from([0x8100, 0x8100, 0x88A8])))


def _f_ipv6(draw):
    nh = draw(st.sampled_from([6, 17, 58]))
    return eth(ipv6(_transport(draw, nh), next_header=nh), ethertype=0x86DD)


def _f_arp(draw):
    return _maybe_pad(draw, eth(arp(op=draw(st.sampled_from([1, 2])), spa=_addr(draw), tpa=_addr(draw)),
                                ethertype=0x0806))


def _f_random(draw):
    return draw(st.binary(max_size=80))


def _f_eth_random(draw):
    # an arbitrary ethertype with arbitrary payload (sometimes 0x0800 with garbage)
    et = draw(st.sampled_from([0x0800, 0x0800, 0x86DD, 0x8100, 0x0806, 0x88CC, 0x0000, 0xFFFF]))
    return eth(draw(st.binary(max_size=60)), ethertype=et)


FRAME_KINDS = [
    (30, _f_tcp), (20, _f_udp), (6, _f_options), (3, _f_bad_ihl), (3, _f_ihl_too_long),
    (4, _f_short_tcp), (4, _f_short_udp), (5, _f_other_proto), (4, _f_fragment),
    (3, _f_vlan), (3, _f_ipv6), (3, _f_arp), (2, _f_random), (2, _f_eth_random),
]


@st.composite
def frames(draw):
    """Strategy: Ethernet frames, mostly well-formed IPv4 TCP/UDP, plus every awkward case
    the decoder must survive (options, bad/long IHL, short transport headers, other
    protocols, fragments, padding, truncation, VLAN, IPv6, ARP, random bytes)."""
    if _weighted(draw, [(9, False), (1, True)]):
        # truncated: any frame cut at any byte (including inside the Ethernet header)
        f = _weighted(draw, FRAME_KINDS)(draw)
        return f[: draw(st.integers(0, len(f)))]
    return _weighted(draw, FRAME_KINDS)(draw)


_frames = frames  # for records(), whose ``frames`` argument hides the name


# ---------------------------------------------------------------------------
# Records and classic pcap captures
# ---------------------------------------------------------------------------

T_MAX_NS = _U32 * 1_000_000_000 + 999_999_999
BASES_S = [1_700_000_000, 1_000_000_000, 0, 86_400 * 365, 2**31 - 1, 4_000_000_000]


@st.composite
def records(draw, max_size: int = 20, *, nsec: bool = False, bucket_ms: int = 100, allow_huge: bool = True,
            cap_ns: int | None = None, frames=None):
    """Strategy: lists of Rec with mostly increasing timestamps (small steps, equal,
    backwards, on boundaries, multi-bucket gaps, rare day-long jumps when ``allow_huge``,
    rare ts_frac >= 1 s).  µs-exact unless ``nsec``.  Gaps scale with ``bucket_ms``;
    ``cap_ns`` adds jumps of exactly cap and cap+1 empty buckets."""
    frame_st = _frames() if frames is None else frames
    bucket_ns = bucket_ms * 1_000_000
    unit = 1 if nsec else 1000
    t_max = T_MAX_NS if nsec else T_MAX_NS - 999
    n = draw(st.integers(0, max_size))
    base_s = draw(st.sampled_from(BASES_S))
    t = base_s * 1_000_000_000 + draw(st.integers(0, 999_999)) * 1000
    if nsec and draw(st.booleans()):
        t += draw(st.integers(0, 999))
    steps = [(24, "small"), (5, "equal"), (5, "back"), (5, "boundary"), (4, "gap"), (1, "far_back")]
    if allow_huge:
        steps.append((1, "huge"))
    if cap_ns is not None and cap_ns // bucket_ns <= 5000:
        steps.append((3, "cap_edge"))
    origin = None
    running_max = None
    out = []
    for i in range(n):
        if i > 0:
            kind = _weighted(draw, steps)
            if kind == "small":
                t += draw(st.integers(0, max(1, bucket_ns * 6 // 10) // unit)) * unit
            elif kind == "back":
                t -= draw(st.integers(1, 3 * bucket_ns // unit)) * unit
            elif kind == "far_back":
                t -= draw(st.integers(1, 5000)) * 86_400 * 1_000_000_000
            elif kind == "boundary":
                b = draw(st.sampled_from([bucket_ns, 1_000_000, 7_000_000, 100_000_000, 1_000_000_000]))
                t = (t // b + draw(st.integers(0, 2))) * b
            elif kind == "gap":
                t += draw(st.integers(2, 30)) * bucket_ns + draw(st.integers(0, bucket_ns // unit - 1)) * unit
            elif kind == "huge":
                t += draw(st.integers(1, 5000)) * 86_400 * 1_000_000_000 + draw(st.integers(0, 999_999)) * 1000
            elif kind == "cap_edge":
                # the next packet opens a bucket with exactly cap or cap+1 empty buckets before it
                empties = cap_ns // bucket_ns + draw(st.sampled_from([0, 1]))
                idx = (running_max - origin) // bucket_ns
                t = origin + (idx + empties + 1) * bucket_ns + draw(st.integers(0, bucket_ns // unit - 1)) * unit
            if nsec and draw(st.integers(0, 9)) == 0:
                t = t - t % 1000 + draw(st.integers(0, 999))
            t = min(max(t, 0), t_max)
        frame = draw(frame_st)
        rec = Rec(t, frame)
        extra = _weighted(draw, [(20, None), (2, "snapped"), (1, "weird_frac")])
        if extra == "snapped":
            rec.orig_len = len(frame) + draw(st.integers(1, 1500))
        elif extra == "weird_frac":
            # ts_frac beyond one second (no normalisation), bounded to ~3 s extra
            rec.ts_sec = t // 1_000_000_000
            if nsec:
                rec.ts_frac = draw(st.integers(1_000_000_000, 4_000_000_000))
            else:
                rec.ts_frac = draw(st.integers(1_000_000, 3_000_000))
            rec.t_ns = rec.ts_sec * 1_000_000_000 + rec.ts_frac * unit
        if origin is None:
            origin = rec.t_ns - rec.t_ns % bucket_ns
            running_max = rec.t_ns
        running_max = max(running_max, rec.t_ns)
        out.append(rec)
    return out


MAX_GAPS = [None, 0, 1, 2.5, 5, 3600]


def captures(max_records: int = 20, *, errors: bool = False, linktypes=(1,)):
    """Strategy: ``(file_bytes, oracle_kwargs)``.  Either byte order, µs or ns, sometimes a
    partial trailing record or an empty/short header.  With ``errors=True`` some files are
    invalid (bad magic, short non-magic file, oversized incl_len) and must raise.  Day-long
    jumps only appear when ``max_gap_s`` is not None, so the row count stays small."""
    return _captures(max_records=max_records, errors=errors, linktypes=tuple(linktypes))


@st.composite
def _captures(draw, max_records, errors, linktypes):
    kw = {
        "bucket_ms": _weighted(draw, [(6, 100), (2, 1), (2, 7), (2, 1000)]),
        "bridge_ip": _weighted(draw, [(4, BRIDGE_IP), (1, "10.200.0.2"), (1, "192.168.1.10")]),
        "t_mono_origin_ns": _weighted(draw, [(4, 0), (1, 1_700_000_000_000_000_000), (1, "any")]),
        "max_gap_s": draw(st.sampled_from(MAX_GAPS)),
    }
    if kw["t_mono_origin_ns"] == "any":
        kw["t_mono_origin_ns"] = draw(st.integers(-(2**40), 2**62))
    byteorder = draw(st.sampled_from(["little", "big"]))
    nsec = draw(st.booleans())
    linktype = draw(st.sampled_from(list(linktypes)))
    shape = _weighted(draw, [(16, "normal"), (2, "tail"), (1, "short")] + ([(2, "error")] if errors else []))
    if shape == "short":
        header = global_header(byteorder=byteorder, nsec=nsec, linktype=linktype)
        return header[: draw(st.integers(0, 23))], kw
    cap_ns = None
    if kw["max_gap_s"] is not None:
        cap_ns = int(Fraction(str(kw["max_gap_s"])) * 1_000_000_000)
    recs = draw(records(max_size=max_records, nsec=nsec, bucket_ms=kw["bucket_ms"],
                        allow_huge=kw["max_gap_s"] is not None, cap_ns=cap_ns))
    tail = b""
    if shape == "tail":
        # a partial trailing record: header or data cut short
        last = recs[-1].t_ns if recs else 1_700_000_000_000_000_000
        whole_rec = record_bytes(Rec(last - last % 1000, draw(frames())), byteorder=byteorder, nsec=nsec)
        tail = whole_rec[: draw(st.integers(1, len(whole_rec) - 1))]
    data = pcap(recs, byteorder=byteorder, nsec=nsec, linktype=linktype, tail=tail)
    if shape == "error":
        kind = draw(st.sampled_from(["magic", "incl_len", "short_magic"]))
        if kind == "magic":
            bad = draw(st.binary(min_size=4, max_size=4).filter(lambda m: not _begins_a_magic(m)))
            data = bad + data[4:]
        elif kind == "short_magic":
            data = draw(st.binary(min_size=1, max_size=23).filter(lambda b: not _begins_a_magic(b[:4])))
        else:
            incl = draw(st.integers(262145, _U32))
            data += record_bytes(Rec(0, draw(st.binary(max_size=40)), incl_len=incl),
                                 byteorder=byteorder, nsec=nsec)
    return data, kw


# ---------------------------------------------------------------------------
# Other link types
# ---------------------------------------------------------------------------


def _ipv4_for_link(draw):
    """An IPv4 packet (no link header) as _f_tcp/_f_udp build them."""
    return draw(st.sampled_from([_f_tcp, _f_udp, _f_other_proto]))(draw)[14:]


def _null_family(draw, ethertype, loopback):
    if ethertype == 0x0800:
        return AF_INET
    if ethertype == 0x86DD:
        return draw(st.sampled_from(AF_INET6_FAMILIES))
    return _other_family(draw, loopback)


def _other_family(draw, loopback):
    # neither byte order reads 2 (NULL); for LOOP also 0x02000000 (little-endian AF_INET)
    pool = [0, 1, 7, 17, 23, 10, 24, 28, 30, 0x200, 0x20000, 0xFFFFFFFF]
    if loopback:
        pool.append(0x02000000)
    return draw(st.sampled_from(pool))


def _wrap(draw, linktype, net, ethertype):
    if linktype == 113:
        return sll(net, protocol=ethertype, pkttype=draw(st.sampled_from([0, 0, 1, 2, 3, 4])),
                   hatype=draw(st.sampled_from([1, 1, 772, 776, 0xFFFF])),
                   addr=draw(st.sampled_from([mac(2), b"", b"\x01" * 8, b"\x02\x03"])))
    if linktype == 276:
        return sll2(net, protocol=ethertype, ifindex=draw(st.sampled_from([1, 2, 0xFFFFFFFF])),
                    pkttype=draw(st.sampled_from([0, 0, 1, 4])), hatype=draw(st.sampled_from([1, 1, 772])),
                    addr=draw(st.sampled_from([mac(2), b""])))
    if linktype == 0:
        return null(net, family=_null_family(draw, ethertype, False),
                    byteorder=draw(st.sampled_from(["little", "big"])))
    if linktype == 108:
        return loop(net, family=_null_family(draw, ethertype, True))
    return net  # RAW 101/12/14, IPV4 228, IPV6 229: no link header


def _other_protocol(draw, linktype):
    """A frame whose link says "not IPv4" although an IPv4 packet follows."""
    net = _ipv4_for_link(draw)
    if linktype in (113, 276):
        proto = draw(st.sampled_from([0x86DD, 0x0806, 0x8100, 0x0004, 0x0001, 0x88CC, 0x0801, 0x0008, 0x0000]))
        return _wrap(draw, linktype, net, proto)
    if linktype == 0:
        return null(net, family=_other_family(draw, False), byteorder=draw(st.sampled_from(["little", "big"])))
    if linktype == 108:
        return loop(net, family=_other_family(draw, True))
    if linktype in (101, 12, 14):
        v = draw(st.sampled_from([6, 0, 5, 15]))
        return bytes([(v << 4) | (net[0] & 0x0F)]) + net[1:]
    if linktype == 228:  # always IPv4, whatever the version nibble says
        v = draw(st.sampled_from([6, 0, 15]))
        return bytes([(v << 4) | (net[0] & 0x0F)]) + net[1:]
    return net  # 229: an IPv4 packet on an IPv6 link: size only


@st.composite
def linktype_frames(draw, linktype: int):
    """Strategy: frames for ``linktype``.  For the decoded link types, the network layer of
    ``frames()`` (IPv4 TCP/UDP/odd cases, IPv6, ARP, VLAN, garbage) behind that link's
    header with the matching protocol/family, plus frames shorter than the link header and
    non-IPv4 protocols (other SLL protocols, NULL/LOOP families, RAW version nibbles) that
    still carry an IPv4 packet.  Ethernet: ``frames()`` itself.  Other link types:
    anything (Ethernet frames, bare IPv4, random bytes), which must count by size only."""
    if linktype == 1:
        return draw(frames())
    if linktype not in LINK_HEADER_LEN:
        # not decoded: anything, including what would decode as Ethernet or IPv4
        kind = _weighted(draw, [(3, "eth"), (2, "ip"), (1, "random")])
        if kind == "eth":
            return draw(frames())
        if kind == "ip":
            return _ipv4_for_link(draw)
        return draw(st.binary(max_size=80))
    kind = _weighted(draw, [(16, "net"), (2, "short"), (3, "other")])
    if kind == "short":
        h = LINK_HEADER_LEN[linktype]
        if h == 0:
            return draw(st.binary(max_size=19))
        whole = _wrap(draw, linktype, b"", 0x0800)
        if draw(st.booleans()):
            return whole[: draw(st.integers(0, h - 1))]
        return draw(st.binary(max_size=h - 1))
    if kind == "other":
        return _other_protocol(draw, linktype)
    f = draw(frames())
    if len(f) < 14:
        return _wrap(draw, linktype, f, 0x0800)  # garbage where the IPv4 header should be
    return _wrap(draw, linktype, f[14:], (f[12] << 8) | f[13])


# ---------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------

RESOLUTIONS = [None, 6, 9, 3, 0, 1, 7, 10, 12, 15, 128 + 30, 128 + 20, 128 + 10, 128 + 32, 128, 128 + 3]


def _representable(times, tsresol, tsoffset):
    try:
        for t in times:
            ts_units(t, tsresol=tsresol, tsoffset=tsoffset)
    except ValueError:
        return False
    return True


def _offset(draw, times):
    kind = _weighted(draw, [(6, "zero"), (2, "below"), (1, "negative")])
    if kind == "below" and times and min(times) >= 1_000_000_000:
        return draw(st.integers(0, min(times) // 1_000_000_000))
    if kind == "negative":
        return -draw(st.integers(1, 10**9))
    return 0


def _junk_block(draw, bo, n_ifaces):
    kind = draw(st.sampled_from(["nrb", "isb", "custom", "dsb", "unknown"]))
    if kind == "nrb":
        return nrb(byteorder=bo)
    if kind == "isb":  # interface statistics, sometimes for an interface nobody described
        return isb(draw(st.integers(0, n_ifaces + 1)), draw(st.integers(0, _U32)), byteorder=bo,
                   options=options((OPT_COMMENT, b"stats"), byteorder=bo) if draw(st.booleans()) else b"")
    if kind == "custom":
        return custom_block(draw(st.binary(max_size=20)), copy=draw(st.booleans()), byteorder=bo)
    if kind == "dsb":
        return dsb(byteorder=bo)
    btype = draw(st.sampled_from([0x80000001, 0x00000007, 0x00000008, 0x0000000B, 0x12345678, 0x00000204]))
    return block(btype, _pad4(draw(st.binary(max_size=24))), byteorder=bo)


def _maybe_junk(draw, out, bo, n_ifaces, weight=6):
    while draw(st.integers(0, weight)) == weight:  # (shrinks towards no junk)
        out.append(_junk_block(draw, bo, n_ifaces))


def _idb_options(draw, bo, tsresol, tsoffset):
    opts = []
    if tsresol is not None:
        opts.append((IF_TSRESOL, bytes([tsresol])))
    if tsoffset is not None:
        opts.append((IF_TSOFFSET, struct.pack(_bo(bo) + "q", tsoffset)))
    if draw(st.booleans()):
        opts.append((IF_NAME, draw(st.sampled_from([b"eth0", b"br0", b"", b"x" * 9]))))
    if draw(st.integers(0, 3)) == 3:
        opts.append((IF_FCSLEN, b"\x04"))
    if draw(st.integers(0, 3)) == 3:
        opts.append((OPT_COMMENT, draw(st.binary(max_size=11))))
    opts = draw(st.permutations(opts))
    return options(*opts, byteorder=bo, end=draw(st.integers(0, 4)) < 4)


def _packet_options(draw, bo):
    if draw(st.integers(0, 4)) < 4:
        return b""
    opts = [(EPB_FLAGS, struct.pack(_bo(bo) + "I", draw(st.sampled_from([0, 1, 2, 0x01000000]))))]
    if draw(st.booleans()):
        opts.append((OPT_COMMENT, draw(st.binary(max_size=9))))
    return options(*opts, byteorder=bo)


def _plan_section(draw, n_pkts, max_ifaces):
    """Interleave IDBs and packets: returns (events, n_ifaces) with events "idb" or
    ("pkt", index_in_section, iface); interface k is described before its packets."""
    max_ifaces = draw(st.integers(1, max_ifaces))
    events = ["idb"]
    described = 1
    for i in range(n_pkts):
        if described < max_ifaces and draw(st.integers(0, 3)) == 3:
            events.append("idb")
            described += 1
        events.append(("pkt", i, draw(st.integers(0, described - 1))))
    if described < max_ifaces and draw(st.booleans()):
        events.append("idb")
        described += 1
    return events, described


def _split(draw, n, max_sections=3):
    k = draw(st.integers(1, max_sections))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=k - 1, max_size=k - 1)))
    bounds = [0] + cuts + [n]
    return [(bounds[i], bounds[i + 1]) for i in range(k)]


@st.composite
def pcapng_twins(draw, max_records: int = 20, *, linktypes=None, allow_huge: bool = False, bucket_ms: int = 100):
    """Strategy: ``(pcapng_bytes, pcap_bytes)`` holding the same packets (same t_ns, frames,
    order): a nanosecond classic pcap (either byte order) with one link type, and a pcapng
    split into 1-3 sections of random byte order, each with 1-3 IDBs of that link type
    (some described mid-section), per-interface if_tsresol/if_tsoffset chosen so every
    timestamp is exact, EPBs and some obsolete PBs, with and without options, NRB/ISB/DSB/
    custom/unknown blocks sprinkled in.  Both must give identical rows.  Day-long jumps
    only with ``allow_huge`` (then use a gap cap)."""
    lt = draw(st.sampled_from(list(linktypes or TWIN_LINKTYPES)))
    recs = draw(records(max_size=max_records, nsec=True, bucket_ms=bucket_ms, allow_huge=allow_huge,
                        frames=linktype_frames(lt)))
    classic = pcap(recs, byteorder=draw(st.sampled_from(["little", "big"])), nsec=True, linktype=lt)
    blocks = []
    for lo, hi in _split(draw, len(recs)):
        part = recs[lo:hi]
        bo = draw(st.sampled_from(["little", "big"]))
        shb_opts = options((OPT_COMMENT, b"twin"), (2, b"hw"), byteorder=bo) if draw(st.booleans()) else b""
        blocks.append(shb(byteorder=bo, version=(1, draw(st.sampled_from([0, 0, 2]))), options=shb_opts,
                          section_length=draw(st.sampled_from([-1, -1, 0]))))
        _maybe_junk(draw, blocks, bo, 0)
        events, n_if = _plan_section(draw, len(part), 3)
        times = {k: [part[e[1]].t_ns for e in events if e != "idb" and e[2] == k] for k in range(n_if)}
        params = []
        for k in range(n_if):
            off = _offset(draw, times[k])
            fits = [r for r in RESOLUTIONS if _representable(times[k], r, off)]
            if not fits:
                off = 0
                fits = [r for r in RESOLUTIONS if _representable(times[k], r, 0)]
            res = draw(st.sampled_from(fits))
            params.append((res, off))
        next_if = 0
        for e in events:
            if e == "idb":
                res, off = params[next_if]
                opts = _idb_options(draw, bo, res, off if (off or draw(st.booleans())) else None)
                snaplen = draw(st.sampled_from([0, 262144, 65535]))
                blocks.append(idb(lt, snaplen=snaplen, options=opts, byteorder=bo))
                next_if += 1
            else:
                _, i, k = e
                r = part[i]
                res, off = params[k]
                ts = ts_units(r.t_ns, tsresol=res, tsoffset=off)
                if _weighted(draw, [(8, "epb"), (2, "opb")]) == "epb":
                    blocks.append(epb(k, ts, r.frame, orig_len=r.orig_len, options=_packet_options(draw, bo),
                                      byteorder=bo))
                else:
                    blocks.append(opb(k, ts, r.frame, orig_len=r.orig_len, drops=draw(st.integers(0, 3)),
                                      options=_packet_options(draw, bo), byteorder=bo))
            _maybe_junk(draw, blocks, bo, next_if)
    return pcapng(blocks), classic


def _kw(draw):
    kw = {
        "bucket_ms": _weighted(draw, [(6, 100), (2, 1), (2, 7), (2, 1000)]),
        "bridge_ip": _weighted(draw, [(4, BRIDGE_IP), (1, "10.200.0.2"), (1, "192.168.1.10")]),
        "t_mono_origin_ns": _weighted(draw, [(4, 0), (1, 1_700_000_000_000_000_000), (1, "any")]),
        "max_gap_s": draw(st.sampled_from(MAX_GAPS)),
    }
    if kw["t_mono_origin_ns"] == "any":
        kw["t_mono_origin_ns"] = draw(st.integers(-(2**40), 2**62))
    return kw


def _error_block(draw, kind, bo, n_ifaces, ts):
    """One bad block (or bad block start) of ``kind``; n_ifaces: the section's interfaces."""
    B = _bo(bo)
    if kind == "len_small":
        btype = draw(st.sampled_from([BT_EPB, BT_IDB, 0x80000001, BT_SPB]))
        return struct.pack(B + "II", btype, draw(st.sampled_from([0, 4, 8]))) + draw(st.binary(max_size=12))
    if kind == "len_mod4":
        body = draw(st.binary(min_size=1, max_size=30).filter(lambda b: len(b) % 4))
        return block(draw(st.sampled_from([BT_EPB, 0x80000001, BT_NRB])), body, byteorder=bo)
    if kind == "len_huge":
        btype = draw(st.sampled_from([0x80000001, BT_NRB, BT_ISB, BT_EPB]))
        length = draw(st.sampled_from([16 * 1024 * 1024 + 4, 0x7FFFFFFC, 0xFFFFFFFC, 200 * 1024 * 1024]))
        return struct.pack(B + "II", btype, length) + draw(st.binary(max_size=40))
    if kind == "trailer":
        good = epb(0, ts, b"\x00" * draw(st.integers(0, 20)), byteorder=bo) if n_ifaces else nrb(byteorder=bo)
        bad = (struct.unpack(B + "I", good[-4:])[0] + draw(st.sampled_from([4, -4, 1, 1 << 20]))) & _U32
        return good[:-4] + struct.pack(B + "I", bad)
    if kind == "no_iface":
        if n_ifaces == 0 and draw(st.booleans()):
            return spb(b"\x00" * 20, byteorder=bo)
        k = n_ifaces + draw(st.integers(0, 3))
        if draw(st.booleans()):
            return opb(k, ts, b"\x00" * 20, byteorder=bo)
        return epb(k, ts, b"\x00" * 20, byteorder=bo)
    if kind == "caplen":
        frame = draw(st.binary(max_size=24))
        return epb(0, ts, frame, caplen=len(_pad4(frame)) + draw(st.integers(1, 70000)), byteorder=bo)
    if kind == "caplen_max":
        return epb(0, ts, b"\x00" * 262145, byteorder=bo)
    if kind == "short_fields":
        btype = draw(st.sampled_from([BT_EPB, BT_PB, BT_IDB, BT_SPB]))
        size = {BT_EPB: 16, BT_PB: 16, BT_IDB: 4, BT_SPB: 0}[btype]
        return block(btype, bytes(draw(st.integers(0, size // 4)) * 4), byteorder=bo)
    if kind == "bom":
        bom = draw(st.binary(min_size=4, max_size=4).filter(
            lambda b: b not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d")))
        return shb(byteorder=bo, bom=bom)
    if kind == "major":
        return shb(byteorder=bo, version=(draw(st.sampled_from([2, 0, 0xFFFF])), 0))
    raise AssertionError(kind)


ERROR_KINDS = ["len_small", "len_mod4", "len_huge", "trailer", "no_iface", "caplen", "caplen_max",
               "short_fields", "bom", "major"]


@st.composite
def pcapng_captures(draw, max_records: int = 20, *, errors: bool = False, linktypes=None):
    """Strategy: ``(file_bytes, oracle_kwargs)`` for arbitrary pcapng files: 1-3 sections,
    interfaces of mixed link types (CAPTURE_LINKTYPES), any if_tsresol/if_tsoffset/snap
    length, EPB/PB/SPB (SPB only when a gap cap is set: its t_ns is 0), junk blocks, a
    partial trailing block or a cut first SHB.  ``errors=True`` adds corrupt files: bad
    block lengths, mismatched trailer, packets on undescribed interfaces, captured length
    larger than the block or the link type allows, fields missing, bad byte-order magic,
    major version other than 1."""
    kw = _kw(draw)
    pool = list(linktypes or CAPTURE_LINKTYPES)
    shape = _weighted(draw, [(16, "normal"), (2, "tail"), (1, "short")] + ([(4, "error")] if errors else []))
    if shape == "short":
        whole = shb(byteorder=draw(st.sampled_from(["little", "big"])))
        return whole[: draw(st.integers(0, len(whole) - 1))], kw
    cap_ns = None
    if kw["max_gap_s"] is not None:
        cap_ns = int(Fraction(str(kw["max_gap_s"])) * 1_000_000_000)
    recs = draw(records(max_size=max_records, nsec=True, bucket_ms=kw["bucket_ms"],
                        allow_huge=kw["max_gap_s"] is not None, cap_ns=cap_ns, frames=st.just(b"")))
    spb_ok = kw["max_gap_s"] is not None  # t_ns 0 next to 2023 timestamps: needs the cap
    blocks = []
    last = None  # (byteorder, number of interfaces) of the last section
    for lo, hi in _split(draw, len(recs)):
        part = recs[lo:hi]
        bo = draw(st.sampled_from(["little", "big"]))
        blocks.append(shb(byteorder=bo, version=(1, draw(st.sampled_from([0, 0, 2])))))
        _maybe_junk(draw, blocks, bo, 0)
        events, n_if = _plan_section(draw, len(part), 4)
        times = {k: [part[e[1]].t_ns for e in events if e != "idb" and e[2] == k] for k in range(n_if)}
        params = []
        for k in range(n_if):
            off = _weighted(draw, [(6, 0), (1, "small"), (1, "negative")])
            if off == "small":
                off = draw(st.integers(0, 10**6))
                if times[k] and min(times[k]) < off * 1_000_000_000:
                    off = 0
            elif off == "negative":
                off = -draw(st.integers(1, 10**6))
            top = max(times[k], default=0) - off * 1_000_000_000
            fits = [r for r in RESOLUTIONS if top * units_per_second(r) // 1_000_000_000 <= _U64]
            params.append((draw(st.sampled_from(pool)), draw(st.sampled_from(fits)), off,
                           draw(st.sampled_from([0, 0, 0, 16, 64, 65535, 262144]))))
        ifaces = []
        for e in events:
            if e == "idb":
                lt, res, off, snaplen = params[len(ifaces)]
                ifaces.append(params[len(ifaces)])
                blocks.append(idb(lt, snaplen=snaplen, options=_idb_options(draw, bo, res, off or None),
                                  byteorder=bo))
            else:
                _, i, k = e
                r = part[i]
                lt, res, off, snaplen = ifaces[k]
                ts = (r.t_ns - off * 1_000_000_000) * units_per_second(res) // 1_000_000_000
                kind = _weighted(draw, [(8, "epb"), (2, "opb")] + ([(2, "spb")] if spb_ok else []))
                if kind == "spb":
                    lt = ifaces[0][0]
                frame = draw(linktype_frames(lt))
                orig = _weighted(draw, [(8, None), (2, "more"), (1, "less")])
                if orig == "more":
                    orig = len(frame) + draw(st.integers(1, 1500))
                elif orig == "less":
                    orig = draw(st.integers(0, len(frame)))
                if kind == "epb":
                    blocks.append(epb(k, ts, frame, orig_len=orig, options=_packet_options(draw, bo), byteorder=bo))
                elif kind == "opb":
                    blocks.append(opb(k, ts, frame, orig_len=orig, byteorder=bo))
                else:
                    blocks.append(spb(frame, orig_len=orig, byteorder=bo))
            _maybe_junk(draw, blocks, bo, len(ifaces))
        last = (bo, len(ifaces))
    tail = b""
    if shape == "tail":
        bo, n_if = last
        whole = draw(st.sampled_from(["epb", "idb", "junk", "shb"]))
        if whole == "epb" and n_if:
            whole = epb(0, draw(st.integers(0, _U32)), draw(linktype_frames(ifaces[0][0])), byteorder=bo)
        elif whole == "idb":
            whole = idb(draw(st.sampled_from(pool)), byteorder=bo)
        elif whole == "shb":
            whole = shb(byteorder=draw(st.sampled_from(["little", "big"])))
        else:
            whole = _junk_block(draw, bo, n_if)
        tail = whole[: draw(st.integers(1, len(whole) - 1))]
    elif shape == "error":
        kind = draw(st.sampled_from(ERROR_KINDS))
        bo, n_if = last
        if kind == "caplen" and n_if == 0:
            blocks.append(idb(1, byteorder=bo))
        if kind == "caplen_max":  # a fresh section with one Ethernet interface
            blocks += [shb(byteorder=bo), idb(1, byteorder=bo), epb(0, 0, b"\x00" * 262145, byteorder=bo)]
        else:
            if kind == "no_iface" and draw(st.integers(0, 2)) == 2:
                blocks.append(shb(byteorder=bo))  # a new section that describes no interface
                n_if = 0
            bad = _error_block(draw, kind, bo, max(n_if, 1) if kind == "caplen" else n_if,
                               draw(st.integers(0, _U32)))
            if kind in ("bom", "major") and draw(st.booleans()):
                blocks[0] = bad  # the very first section header
            else:
                blocks.append(bad)
        if draw(st.booleans()):
            blocks.append(nrb(byteorder=bo))
    return pcapng(blocks, tail=tail), kw


@st.composite
def compressed(draw, data_strategy, *, truncate: bool = True, multi: bool = False, corrupt: bool = False):
    """Strategy: what ``data_strategy`` draws (bytes, or a tuple whose first item is the
    bytes), compressed as gzip, zstd (with or without content size / checksum), xz, bzip2 or
    lz4 (or left alone), and with ``truncate`` sometimes cut short anywhere.  ``multi``:
    sometimes several concatenated members/frames/streams.  ``corrupt``: sometimes one
    byte of the compressed data changed (the error offset then depends on how far the
    decoder got: the oracle feeds it byte by byte around the fault)."""
    value = draw(data_strategy)
    data, rest = (value[0], value[1:]) if isinstance(value, tuple) else (value, None)
    kind = _weighted(draw, [(5, None)] + [(2, k) for k in COMPRESSIONS])
    if kind is not None:
        opts = {}
        if kind == "zstd":
            opts["content_size"] = draw(st.booleans())
            opts["checksum"] = draw(st.booleans())
        if kind == "lz4" and draw(st.booleans()):
            opts["block_size"] = 4  # lz4.frame.BLOCKSIZE_MAX64KB
            opts["content_checksum"] = True
        members = draw(st.integers(2, 3)) if multi and draw(st.integers(0, 3)) == 3 else 1
        data = compress(data, kind, members=members, **opts)
        if truncate and _weighted(draw, [(4, False), (1, True)]):
            data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
        if corrupt and data and _weighted(draw, [(2, False), (1, True)]):
            where = draw(st.integers(0, len(data) - 1))
            data = data[:where] + bytes([data[where] ^ draw(st.integers(1, 255))]) + data[where + 1 :]
    return data if rest is None else (data, *rest)


CORRUPTIONS = [(4, "length"), (3, "insert"), (1, "zeros"), (2, "overwrite"), (2, "delete")]


@st.composite
def corrupted(draw, data_strategy, *, max_corruptions: int = 3):
    """Strategy: what ``data_strategy`` draws (an uncompressed capture's bytes, or a tuple
    whose first item is them) damaged 1 to ``max_corruptions`` times, after its file header
    (classic) or first 12 bytes (pcapng): a record's or block's length field overwritten
    (garbage above any link type's maximum, any 32-bit value, or a few bytes off), random
    bytes (up to 2,100) or zeros inserted at a record boundary or anywhere, a stretch
    overwritten with random bytes, or a stretch deleted.  A gap cap of none in the oracle
    keyword arguments becomes 3600 s."""
    value = draw(data_strategy)
    data, rest = (value[0], value[1:]) if isinstance(value, tuple) else (value, None)
    buf = bytearray(data)
    ng = buf[:4] == b"\x0a\x0d\x0d\x0a"
    lo = 12 if ng else 24
    for _ in range(draw(st.integers(1, max_corruptions))):
        if len(buf) < lo:
            break
        kind = _weighted(draw, CORRUPTIONS)
        records = record_offsets(bytes(buf))
        if kind == "length" and not records:
            kind = "overwrite"
        if kind in ("length", "insert", "zeros") and records and draw(st.booleans()):
            at = draw(st.sampled_from(records))[0]  # a record boundary
        else:
            at = draw(st.integers(lo, len(buf)))
        if kind == "length":
            at = draw(st.sampled_from(records))[0] + (4 if ng else 8)
            old = int.from_bytes(buf[at:at + 4], "little")
            new = _weighted(draw, [(2, "huge"), (2, "any"), (1, "near")])
            if new == "huge":
                new = draw(st.integers(128 << 20 | 1, _U32))
            elif new == "any":
                new = draw(st.integers(0, _U32))
            else:
                new = max(0, min(_U32, old + draw(st.sampled_from([-8, -4, -1, 1, 4, 8]))))
            # (the byte order of the field does not matter: any value is a corruption)
            buf[at:at + 4] = new.to_bytes(4, "little")
        elif kind == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=2100))
        elif kind == "zeros":
            buf[at:at] = bytes(draw(st.integers(1, 300)))
        elif kind == "overwrite":
            junk = draw(st.binary(min_size=1, max_size=64))
            buf[at:at + len(junk)] = junk
        else:
            del buf[at:at + draw(st.integers(1, 200))]
    data = bytes(buf)
    if rest and isinstance(rest[0], dict) and rest[0].get("max_gap_s", 0) is None:
        # A damaged clock with no gap cap would be billions of empty rows.
        rest = ({**rest[0], "max_gap_s": 3600}, *rest[1:])
    return data if rest is None else (data, *rest)


# ---------------------------------------------------------------------------
# The extended decode (data-model.md "Extended decode")
# ---------------------------------------------------------------------------

EXT_LINKTYPES = (1, 113, 276, 101, 229, 0, 9, 10, 50, 104, 105, 127, 192, 239)  # what extended_captures() draws from
V4_POOL = ["10.200.0.1", "10.200.0.2", "8.8.8.8", "192.168.1.10", "0.0.0.1"]
V6_POOL = ["fd00::1", "fd00::2", "2001:db8::1", "::ffff:10.200.0.1", "::1", "fe80::1", "::"]
# host_ips candidates: the bridge, two IPv6 hosts, a second IPv4 host, a mapped address and
# a non-canonical spelling of fd00::1
HOST_IP_POOL = ["10.200.0.1", "fd00::1", "10.200.0.2", "fd00::2", "::ffff:10.200.0.1", "FD00:0::1"]


def _ext_port(draw):
    return draw(st.sampled_from(PORT_POOL)) if draw(st.integers(0, 4)) else draw(st.integers(0, 65535))


def _ext_flags(draw):
    return draw(st.sampled_from(FLAG_POOL)) if draw(st.integers(0, 4)) else draw(st.integers(0, 0xFFF))


def _ext_transport(draw, proto):
    """A transport payload for ``proto``; sometimes cut short of its header."""
    if proto == 6:
        seg = tcp(_ext_port(draw), _ext_port(draw), flags=_ext_flags(draw), payload=draw(st.binary(max_size=12)))
        short = 20
    elif proto == 17:
        dport = _weighted(draw, [(3, 53), (1, 0), (3, "any")])
        seg = udp(_ext_port(draw), _ext_port(draw) if dport == "any" else dport, payload=draw(st.binary(max_size=12)))
        short = 8
    elif proto == 58:
        return icmpv6(draw(st.sampled_from([128, 129, 135, 1])), payload=draw(st.binary(max_size=12)))
    else:
        return draw(st.binary(max_size=24))
    if _weighted(draw, [(8, False), (1, True)]):
        seg = seg[: draw(st.integers(0, short - 1))]
    return seg


def _v4(draw):
    return draw(st.sampled_from(V4_POOL)) if draw(st.integers(0, 5)) else draw(st.binary(min_size=4, max_size=4))


def _v6(draw):
    return draw(st.sampled_from(V6_POOL)) if draw(st.integers(0, 5)) else draw(st.binary(min_size=16, max_size=16))


def _net_ipv4(draw):
    proto = _weighted(draw, [(4, 6), (3, 17), (1, 1), (1, 47), (1, 4), (1, 41), (1, 50)])
    kind = _weighted(draw, [(10, "plain"), (3, "bad_version"), (2, "first_frag"), (3, "frag"),
                            (1, "options"), (1, "bad_ihl")])
    kw = dict(src=_v4(draw), dst=_v4(draw), proto=proto, ident=draw(st.integers(0, 0xFFFF)))
    body = _ext_transport(draw, proto)
    if kind == "bad_version":
        kw["version"] = draw(st.integers(0, 15).filter(lambda v: v != 4))
    elif kind == "first_frag":
        kw["more_fragments"] = True
    elif kind == "frag":  # non-first: often looks like a TCP/UDP header with SYN, port 53...
        kw["frag_offset"] = draw(st.sampled_from([1, 185, 0x1FFF, draw(st.integers(1, 0x1FFF))]))
        kw["more_fragments"] = draw(st.booleans())
    elif kind == "options":
        kw["options"] = draw(st.binary(min_size=1, max_size=40))
    elif kind == "bad_ihl":
        kw["ihl"] = draw(st.sampled_from([0, 4, 15]))
    if draw(st.integers(0, 5)) == 0:
        kw["dont_fragment"] = True
    return 0x0800, ipv4(body, **kw)


EXT_CHOICES = [(3, "hopopts"), (2, "routing"), (3, "dstopts"), (3, "fragment"), (2, "ah")]


def _net_ipv6(draw):
    proto = _weighted(draw, [(4, 6), (3, 17), (2, 58), (1, 59), (1, 50), (1, 4), (1, 41)])
    payload = _ext_transport(draw, proto)
    n = _weighted(draw, [(3, 0), (3, 1), (2, 2), (1, 3), (1, 4)])
    headers = []
    for _ in range(n):
        kind = _weighted(draw, EXT_CHOICES)
        kw = {}
        if kind == "fragment":
            kw["offset"] = _weighted(draw, [(2, 0), (2, "any")])
            if kw["offset"] == "any":
                kw["offset"] = draw(st.integers(1, 0x1FFF))
            kw["more"] = draw(st.booleans())
            kw["ident"] = draw(st.integers(0, _U32))
        elif kind == "ah":
            kw["length"] = _weighted(draw, [(3, 1), (2, 4), (1, "any")])
            if kw["length"] == "any":
                kw["length"] = draw(st.integers(0, 255))
        else:
            kw["length"] = _weighted(draw, [(3, 0), (2, 1), (1, "any")])
            if kw["length"] == "any":
                kw["length"] = draw(st.integers(0, 255))
        headers.append((kind, kw))
    first, body = ipv6_exts(payload, headers, next_header=proto)
    pkt = ipv6(body, src=_v6(draw), dst=_v6(draw), next_header=first, hop_limit=draw(st.integers(0, 255)))
    kind = _weighted(draw, [(10, "plain"), (3, "cut_in_chain"), (1, "bad_version"), (1, "short")])
    if kind == "cut_in_chain":  # truncated inside (or just after) the extension headers
        pkt = pkt[: draw(st.integers(40, max(40, len(pkt) - len(payload))))]
    elif kind == "bad_version":
        pkt = bytes([(draw(st.sampled_from([0, 4, 5, 15])) << 4) | (pkt[0] & 0x0F)]) + pkt[1:]
    elif kind == "short":
        pkt = pkt[: draw(st.integers(0, 39))]
    elif draw(st.integers(0, 7)) == 0:  # a lying payload length
        pkt = pkt[:4] + struct.pack(">H", draw(st.integers(0, 0xFFFF))) + pkt[6:]
    return 0x86DD, pkt


def _net_other(draw):
    kind = _weighted(draw, [(2, "arp"), (1, "random"), (1, "v4_as_v6"), (1, "v6_as_v4")])
    if kind == "arp":
        return 0x0806, arp()
    if kind == "random":
        return draw(st.sampled_from([0x0800, 0x86DD, 0x88CC, 0x8847])), draw(st.binary(max_size=60))
    if kind == "v4_as_v6":  # an IPv4 packet where the link says IPv6
        return 0x86DD, _net_ipv4(draw)[1]
    return 0x0800, _net_ipv6(draw)[1]  # an IPv6 packet where the link says IPv4


def _network(draw):
    return _weighted(draw, [(8, _net_ipv4), (8, _net_ipv6), (1, _net_other)])(draw)


def _tags(draw):
    n = _weighted(draw, [(6, 0), (3, 1), (3, 2), (1, 3)])
    return [(draw(st.sampled_from(VLAN_TPIDS)), draw(st.integers(0, 4095))) for _ in range(n)]


def _maybe_cut(draw, frame):
    kind = _weighted(draw, [(14, "none"), (3, "pad"), (2, "cut")])
    if kind == "pad":
        return frame.ljust(60, b"\0") if draw(st.booleans()) else frame + draw(st.binary(min_size=1, max_size=16))
    if kind == "cut":
        return frame[: draw(st.integers(0, len(frame)))]
    return frame


@st.composite
def extended_frames(draw):
    """Strategy: Ethernet frames for the extended decode: 0-3 stacked VLAN tags (0x8100,
    0x88A8, 0x9100) before IPv4 (good, bad version nibbles, first and non-first fragments,
    options, bad IHL, short transport headers) or IPv6 (random chains of hop-by-hop,
    routing, destination options, fragment (offset 0 or not) and AH headers of random
    lengths, sometimes cut inside the chain, bad version nibbles, short headers, lying
    payload lengths) carrying TCP, UDP (often port 53), ICMPv6 or other protocols, plus
    ARP, garbage and cross-family packets; sometimes padded or truncated anywhere.
    Addresses come from small pools (V4_POOL, V6_POOL) holding the host addresses
    10.200.0.1 and fd00::1."""
    ethertype, net = _network(draw)
    return _maybe_cut(draw, vlan_tags(net, tags=_tags(draw), inner_ethertype=ethertype))


@st.composite
def extended_linktype_frames(draw, linktype: int):
    """Strategy: ``extended_frames()``'s packets behind the link header of ``linktype``
    (1, 113, 276 with VLAN tags, and a quarter of them inside other encapsulations; 101/12/14/
    228/229 bare; 0/108 with AF_INET, an IPv6 family or another one; PPP, PPP_HDLC, C_HDLC,
    FDDI and NFLOG, MORE_LINKTYPES, with encapsulations too)."""
    ethertype, net = _network(draw)
    if linktype in (1, 113, 276):
        if draw(st.integers(0, 3)) == 0:  # PPPoE, MPLS, PBB, VN-Tag and VLAN tags mixed
            ethertype, net = _encapsulate(draw, ethertype, net)
        return _maybe_cut(draw, vlan_tags(net, tags=_tags(draw), inner_ethertype=ethertype, linktype=linktype))
    if linktype in (101, 12, 14, 228, 229):
        return _maybe_cut(draw, net)
    if linktype in (0, 108):
        if ethertype == 0x0800:
            family = 2
        elif ethertype == 0x86DD:
            family = draw(st.sampled_from(AF_INET6_FAMILIES))
        else:
            family = draw(st.sampled_from([0, 7, 17, 0xFFFF]))
        if linktype == 0:
            return _maybe_cut(draw, null(net, family=family, byteorder=draw(st.sampled_from(["little", "big"]))))
        return _maybe_cut(draw, loop(net, family=family))
    if linktype in MORE_LINKTYPES:
        return _maybe_cut(draw, _more_link_frame(draw, linktype, ethertype, net))
    raise ValueError(f"no extended frames for link type {linktype}")


MORE_LINKTYPES = (9, 10, 50, 104, 105, 127, 192, 239)  # the link types only the extended decode reads


def _encapsulate(draw, ethertype: int, net: bytes):
    """0-3 encapsulation headers (PPPoE, MPLS, PBB, VN-Tag, VLAN) around ``net`` of type
    ``ethertype``, sometimes with a PPP protocol or MPLS payload we do not go on from:
    ``(outer type, bytes)``."""
    for _ in range(_weighted(draw, [(3, 0), (4, 1), (2, 2), (1, 3)])):
        kind = draw(st.sampled_from(["pppoe", "mpls", "pbb", "vntag", "vlan"]))
        if kind == "pppoe" and ethertype in PPP_PROTOCOLS:
            proto = (PPP_PROTOCOLS[ethertype] if draw(st.integers(0, 5))
                     else draw(st.sampled_from([0xC021, 0x8021, 0x21])))
            net, ethertype = pppoe(net, protocol=proto, compressed=proto < 0x100 and draw(st.booleans())), 0x8864
        elif kind == "mpls" and ethertype in (0x0800, 0x86DD, 0x8847, 0x8848):
            stack = mpls(labels=draw(st.lists(st.integers(0, 0xFFFFF), min_size=1, max_size=3)))
            if ethertype in (0x8847, 0x8848):  # on top of a stack: no bottom-of-stack bit
                stack = stack[:-2] + bytes([stack[-2] & 0xFE]) + stack[-1:]
            net, ethertype = stack + net, draw(st.sampled_from([0x8847, 0x8848]))
        elif kind == "pbb":
            net, ethertype = pbb(net, ethertype=ethertype), 0x88E7
        elif kind == "vntag":
            net, ethertype = vntag(net, ethertype=ethertype), 0x8926
        else:
            outer, tag_bytes = tag_stack([(draw(st.sampled_from(VLAN_TPIDS)), draw(st.integers(0, 4095)))], ethertype)
            net, ethertype = tag_bytes + net, outer
    return ethertype, net


@st.composite
def encapsulated_frames(draw, linktype: int = 1):
    """Strategy: ``extended_frames()``'s packets inside 0-3 encapsulation headers (PPPoE,
    MPLS label stacks, PBB, VN-Tag, VLAN tags in any mix) behind Ethernet, SLL or SLL2."""
    ethertype, net = _encapsulate(draw, *_network(draw))
    return _maybe_cut(draw, vlan_tags(net, tags=[], inner_ethertype=ethertype, linktype=linktype))


def _more_link_frame(draw, linktype: int, ethertype: int, net: bytes) -> bytes:
    if linktype == 239:
        family = {0x0800: 2, 0x86DD: 10}.get(ethertype, draw(st.sampled_from([0, 7, 2, 10])))
        if draw(st.integers(0, 4)) == 0:  # a family that does not say (bridge: 7), or says otherwise
            family = draw(st.sampled_from([0, 7, 2, 10]))
        # the packet header's hw_protocol: None the family's, 0 none, or a protocol right or wrong
        hw = draw(st.sampled_from([None, None, None, 0, ethertype, 0x0800, 0x86DD, 0x0806]))
        kind = _weighted(draw, [(6, "plain"), (1, "no_payload"), (1, "zero_length"), (1, "garbage")])
        if kind == "no_payload":
            return nflog(family=family, tlvs=[(1, b"\x08\x00\x03\x00")])
        if kind == "zero_length":
            return nflog(family=family, tlvs=[(1, b""), (9, net)])[:8] + b"\x00\x00\x09\x00" + net
        if kind == "garbage":
            return nflog(family=family)[:4] + draw(st.binary(max_size=40))
        return nflog(net, family=family, byteorder=draw(st.sampled_from(["little", "big"])),
                     prefix=draw(st.binary(max_size=9)), hw_protocol=hw)
    ethertype, net = _encapsulate(draw, ethertype, net)
    if linktype == 104 or (linktype in (9, 50) and draw(st.integers(0, 5)) == 0):
        return chdlc(net, protocol=ethertype, address=draw(st.sampled_from([0x0F, 0x8F])))
    if linktype in (9, 50):
        proto = PPP_PROTOCOLS.get(ethertype, draw(st.sampled_from([0xC021, 0x8021, 0x0031])))
        return ppp(net, protocol=proto, framed=draw(st.booleans()), compressed=proto < 0x100 and draw(st.booleans()))
    if linktype == 105:
        return _wlan_frame(draw, ethertype, net)
    if linktype == 127:
        flags = _weighted(draw, [(3, None), (2, 0), (2, 0x10), (2, 0x20), (1, 0x30), (1, 0x02)])
        padded = flags is not None and flags & 0x20
        frame = _wlan_frame(draw, ethertype, net, padded=bool(padded))
        if flags is not None and flags & 0x10:
            frame += draw(st.binary(min_size=4, max_size=4))  # the FCS
        return radiotap(frame, flags=flags, tsft=draw(st.booleans()), extra_words=_weighted(draw, [(6, 0), (1, 1),
                        (1, 2)]), fields=draw(st.binary(max_size=6)), version=_weighted(draw, [(12, 0), (1, 1)]))
    if linktype == 192:
        kind = _weighted(draw, [(6, 105), (2, 1), (1, 101), (1, 147)])  # 147: not decoded
        if kind == 1:
            frame = vlan_tags(net, tags=_tags(draw), inner_ethertype=ethertype)
        elif kind == 105:
            frame = _wlan_frame(draw, ethertype, net)
        else:
            frame = net
        return ppi(frame, dlt=kind, version=_weighted(draw, [(12, 0), (1, 1)]))
    return fddi(net, ethertype=ethertype, fc=_weighted(draw, [(8, 0x50), (1, 0x57), (1, 0x41)]),
                oui=_weighted(draw, [(8, b"\0\0\0"), (1, b"\0\0\xf8"), (1, b"\0\x0c\x0c")]))


def _wlan_frame(draw, ethertype: int, net: bytes, padded: bool = False) -> bytes:
    """An 802.11 frame carrying ``net``: mostly data and QoS data frames (any DS bits, HT
    control, sometimes protected, an A-MSDU, no data, not LLC/SNAP), sometimes management
    or control frames or another version; ``padded``: radiotap's data pad after the header."""
    subtype = _weighted(draw, [(4, 0), (4, 8), (1, 4), (1, 12), (1, 1), (1, 10)])
    ds = draw(st.integers(0, 3))
    order = subtype & 8 and draw(st.integers(0, 3)) == 0
    header = (30 if ds == 3 else 24) + ((6 if order else 2) if subtype & 8 else 0)
    return wlan(net, ethertype=ethertype, subtype=subtype, ds=ds, order=bool(order),
                protected=draw(st.integers(0, 9)) == 0, amsdu=bool(subtype & 8) and draw(st.integers(0, 9)) == 0,
                frame_type=_weighted(draw, [(12, 2), (1, 0), (1, 1)]), version=_weighted(draw, [(15, 0), (1, 1)]),
                oui=_weighted(draw, [(8, b"\0\0\0"), (1, b"\0\0\xf8"), (1, b"\0\x0c\x0c")]),
                llc=draw(st.integers(0, 11)) > 0, pad=-header % 4 if padded else 0)


def _host_ips(draw):
    kind = _weighted(draw, [(1, None), (1, "empty"), (3, "v4"), (3, "v6"), (4, "both")])
    if kind is None:
        return None
    if kind == "empty":
        return []
    pool = {"v4": [h for h in HOST_IP_POOL if "." in h and ":" not in h],
            "v6": [h for h in HOST_IP_POOL if ":" in h],
            "both": HOST_IP_POOL}[kind]
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    if kind == "both" and not any(":" in h for h in chosen):
        chosen.append("fd00::1")
    if kind == "both" and all(":" in h for h in chosen):
        chosen.append("10.200.0.1")
    return chosen


def extended_captures(max_records: int = 20, *, linktypes=EXT_LINKTYPES):
    """Strategy: ``(file_bytes, oracle_kwargs)`` with ``decode="extended"``, a random
    ``host_ips`` list (IPv4 only, IPv6 only, both, empty, or absent: the bridge IP) and
    ``size`` "captured" or "wire"; classic pcap (either byte order, µs or ns) with one link
    type, or pcapng with one or two interfaces (EPB and obsolete PB), link types from
    ``linktypes`` (default EXT_LINKTYPES), original lengths equal to, above or
    below the captured length."""
    return _extended_captures(max_records=max_records, linktypes=tuple(linktypes))


@st.composite
def _extended_captures(draw, max_records, linktypes):
    kw = {
        "bucket_ms": _weighted(draw, [(6, 100), (2, 1), (2, 1000)]),
        "bridge_ip": _weighted(draw, [(4, BRIDGE_IP), (1, "10.200.0.2")]),
        "max_gap_s": draw(st.sampled_from([None, 0, 5, 3600])),
        "decode": "extended",
        "host_ips": _host_ips(draw),
        "size": draw(st.sampled_from(["captured", "wire"])),
    }
    if kw["host_ips"] is None:
        del kw["host_ips"]
    pool = list(linktypes)
    container = draw(st.sampled_from(["pcap", "pcapng"]))
    lts = [draw(st.sampled_from(pool))]
    if container == "pcapng" and draw(st.booleans()):
        lts.append(draw(st.sampled_from(pool)))
    nsec = container == "pcapng" or draw(st.booleans())
    recs = draw(records(max_size=max_records, nsec=nsec, bucket_ms=kw["bucket_ms"],
                        allow_huge=kw["max_gap_s"] is not None, frames=st.just(b"")))
    ifaces = []
    for r in recs:
        k = draw(st.integers(0, len(lts) - 1))
        ifaces.append(k)
        r.frame = draw(extended_linktype_frames(lts[k]))
        orig = _weighted(draw, [(6, "same"), (3, "more"), (1, "less")])
        r.orig_len = (None if orig == "same" else len(r.frame) + draw(st.integers(1, 9000)) if orig == "more"
                      else draw(st.integers(0, len(r.frame))))
    if container == "pcap":
        data = pcap(recs, byteorder=draw(st.sampled_from(["little", "big"])), nsec=nsec, linktype=lts[0])
    else:
        bo = draw(st.sampled_from(["little", "big"]))
        blocks = [shb(byteorder=bo)] + [idb(lt, tsresol=9, byteorder=bo) for lt in lts]
        for r, k in zip(recs, ifaces):
            ts = ts_units(r.t_ns, tsresol=9)
            if draw(st.integers(0, 4)):
                blocks.append(epb(k, ts, r.frame, orig_len=r.orig_len, byteorder=bo))
            else:
                blocks.append(opb(k, ts, r.frame, orig_len=r.orig_len, byteorder=bo))
        data = pcapng(blocks)
    return data, kw


# ---------------------------------------------------------------------------
# Tunnels (data-model.md "Tunnels": tunnels="inner")
# ---------------------------------------------------------------------------

TUNNEL_KINDS = ("gre", "gre_eth", "gre_mpls", "erspan1", "erspan2", "erspan3", "pptp", "aruba", "vxlan", "geneve",
                "gtpu", "tzsp", "ipip", "6in4")
#: Aruba's GRE protocol types (an IEEE 802.11 frame), and a neighbour that is not one.
ARUBA_TYPES = (0x8200, 0x8210, 0x82F0, 0x8370, 0x8201)


#: TZSP tags whose value tshark reads with a size of its own, stopping (malformed) at a
#: channel (18) of 0 bytes or a time stamp (82) of fewer than 4 (data-model.md, "Tunnels",
#: TZSP): drawn with their usual sizes only, other tags with any length.
TZSP_SIZED_TAGS = {18: 1, 82: 8}


def _tzsp_tags(draw) -> list:
    """A TZSP tag list (before END): padding (0), and tags with a length and a value."""
    tag = st.one_of(
        st.just(0),
        st.tuples(st.integers(2, 255).filter(lambda t: t not in TZSP_SIZED_TAGS), st.binary(max_size=10)),
        st.sampled_from(sorted(TZSP_SIZED_TAGS)).map(lambda t: (t, b"\x07" * TZSP_SIZED_TAGS[t])),
    )
    return draw(st.lists(tag, max_size=6))


def _tzsp(draw, ethertype: int, net: bytes, framed) -> bytes:
    """``net`` in TZSP: mostly version 1, a packet received or to transmit, in Ethernet
    (``framed()``) or an IEEE 802.11 frame (``_wlan_frame``); sometimes another version, type
    or encapsulation (raw IP, Prism), or a tag list without END (the frame's bytes read as tags)."""
    encapsulation = _weighted(draw, [(6, 1), (6, 18), (1, 7), (1, 119)])
    if encapsulation == 1:
        inner = framed()
    elif encapsulation == 7 and ethertype in (0x0800, 0x86DD):
        inner = net
    else:
        inner = _wlan_frame(draw, ethertype, net)
    return tzsp(inner, encapsulation=encapsulation, tags=_tzsp_tags(draw), end=draw(st.integers(0, 15)) > 0,
                version=_weighted(draw, [(14, 1), (1, 0), (1, 2)]),
                kind=_weighted(draw, [(8, 0), (4, 1), (1, 2), (1, 3), (1, 4)]))


def _tunnel(draw, ethertype: int, net: bytes, kind: str, clean: bool = False) -> tuple[int, bytes]:
    """``net`` (of type ``ethertype``) inside one tunnel of ``kind``, with random flags,
    keys, options and extension headers, in an outer IPv4 or IPv6 packet: ``(0x0800 or
    0x86DD, bytes)``.  A tunnel that cannot carry ``ethertype`` carries it in Ethernet.
    ``clean``: the outer IPv4 packet is never a fragment."""
    def framed() -> bytes:
        return vlan_tags(net, tags=_tags(draw), inner_ethertype=ethertype)

    ip_kind = ethertype if ethertype in (0x0800, 0x86DD) else None
    opt = lambda: draw(st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)))  # noqa: E731
    if kind in ("ipip", "6in4") and ip_kind is not None:
        payload, proto = net, 4 if ip_kind == 0x0800 else 41
    elif kind == "gre" and ip_kind is not None:
        payload, proto = gre(net, protocol=ip_kind, checksum=draw(st.booleans()), key=opt(), seq=opt()), 47
    elif kind == "gre_mpls" and ip_kind is not None:
        payload, proto = gre(mpls(net, labels=draw(st.lists(st.integers(16, 0xFFFFF), min_size=1, max_size=3))),
                             protocol=0x8847, key=opt()), 47
    elif kind == "pptp" and ip_kind is not None:
        field = b"\x21" if ip_kind == 0x0800 else b"\x00\x57"
        ppp_frame = (b"\xff\x03" if draw(st.booleans()) else b"") + field + net
        payload = gre(ppp_frame, protocol=0x880B, version=1, key=draw(st.integers(0, 0xFFFFFFFF)), seq=opt(),
                      ack=opt())
        proto = 47
    elif kind == "erspan1":
        payload, proto = gre(framed(), protocol=0x88BE), 47
    elif kind == "erspan2":
        payload, proto = gre(erspan2(framed(), session=draw(st.integers(0, 1023))), protocol=0x88BE,
                             seq=draw(st.integers(0, 0xFFFFFFFF))), 47
    elif kind == "erspan3":
        platform = draw(st.one_of(st.none(), st.binary(min_size=8, max_size=8)))
        payload, proto = gre(erspan3(framed(), platform=platform), protocol=0x22EB,
                             seq=draw(st.integers(0, 0xFFFFFFFF))), 47
    elif kind == "aruba":
        payload, proto = gre(_wlan_frame(draw, ethertype, net), protocol=draw(st.sampled_from(ARUBA_TYPES)),
                             key=opt()), 47
    elif kind == "vxlan":
        payload, proto = udp(draw(st.integers(4790, 65535)), 4789, payload=vxlan(framed())), 17
    elif kind == "geneve":
        options = draw(st.binary(max_size=12))
        if ip_kind is not None and draw(st.booleans()):
            inner = geneve(net, protocol=ip_kind, options=options)
        else:
            inner = geneve(framed(), options=options)
        payload, proto = udp(draw(st.integers(6082, 65535)), 6081, payload=inner), 17
    elif kind == "tzsp":
        payload, proto = udp(draw(st.integers(37009, 65535)), 37008, payload=_tzsp(draw, ethertype, net, framed)), 17
    elif kind == "gtpu" and ip_kind is not None:
        extensions = draw(st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=6)), max_size=3))
        seq = draw(st.one_of(st.none(), st.integers(0, 0xFFFF)))
        payload, proto = udp(2152, 2152, payload=gtpu(net, seq=seq, extensions=extensions)), 17
    else:  # GRE transparent Ethernet bridging carries anything
        payload, proto = gre(framed(), protocol=0x6558, key=opt()), 47
    if draw(st.booleans()):
        return 0x0800, ipv4(payload, proto=proto, src=draw(st.sampled_from(V4_POOL)),
                            dst=draw(st.sampled_from(V4_POOL)),
                            more_fragments=not clean and draw(st.integers(0, 9)) == 0)
    return 0x86DD, ipv6(payload, next_header=proto, src=draw(st.sampled_from(V6_POOL)),
                        dst=draw(st.sampled_from(V6_POOL)))


def _clean_network(draw) -> tuple[int, bytes]:
    """A well-formed IPv4 or IPv6 packet (lengths right, headers whole) carrying TCP, UDP or
    another protocol, addresses and ports from the pools."""
    proto = draw(st.sampled_from([6, 6, 17, 17, 1, 58, 50]))
    ports = draw(st.sampled_from(PORT_POOL)), draw(st.sampled_from(PORT_POOL))
    body = draw(st.binary(max_size=8))
    if proto == 6:
        payload = tcp(*ports, flags=draw(st.sampled_from(FLAG_POOL)), payload=body)
    elif proto == 17:
        payload = udp(*ports, payload=body)
    else:
        payload = bytes(8) + body
    if draw(st.booleans()):
        return 0x0800, ipv4(payload, proto=proto, src=draw(st.sampled_from(V4_POOL)),
                            dst=draw(st.sampled_from(V4_POOL)))
    return 0x86DD, ipv6(payload, next_header=proto, src=draw(st.sampled_from(V6_POOL)),
                        dst=draw(st.sampled_from(V6_POOL)))


@st.composite
def tunnel_frames(draw, clean: bool = False):
    """Strategy: Ethernet frames whose packet is ``extended_frames()``'s inside 1-3 tunnels
    (TUNNEL_KINDS: GRE with IPv4/IPv6, Ethernet, MPLS, ERSPAN I/II/III, PPTP's PPP, Aruba's
    IEEE 802.11; VXLAN, GENEVE, GTP-U, TZSP with Ethernet or IEEE 802.11; IP-in-IP, 6in4),
    with VLAN tags around the inner Ethernet frames; sometimes padded or cut anywhere.
    ``clean``: the innermost packet is well-formed (``_clean_network``) and the frame whole
    -- the odd packets are the outer decode's business; the tunnels' headers stay random."""
    ethertype, net = _clean_network(draw) if clean else _network(draw)
    for _ in range(_weighted(draw, [(6, 1), (3, 2), (1, 3)])):
        ethertype, net = _tunnel(draw, ethertype, net, draw(st.sampled_from(TUNNEL_KINDS)), clean)
    frame = vlan_tags(net, tags=_tags(draw), inner_ethertype=ethertype)
    return frame if clean else _maybe_cut(draw, frame)
