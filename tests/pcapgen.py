"""Builders for hand-made pcap captures, plus Hypothesis strategies.

Byte builders (standard library only)::

    frame = eth(ipv4(tcp(40000, 80, flags=SYN), src="10.200.0.2", dst="8.8.8.8"))
    data = pcap([Rec(1_700_000_000_000_000_000, frame), (1_700_000_000_050_000_000, frame)])

Conventions
-----------
* Addresses are given as strings ("10.200.0.1", "fd00::1") or as raw ``bytes``.
* ``ipv4()`` computes a correct header checksum over the header it builds (including
  options), whatever the other fields say.  ``tcp()``/``udp()`` leave their checksums 0
  (nothing in the contract reads them).
* ``ipv4(ihl=None)`` (the default) derives the IHL from the options, zero-padding them to
  a multiple of 4 bytes.  An explicit ``ihl`` is written as given and the options are
  used exactly as given (no padding), so the header may be inconsistent on purpose.
* ``tcp(data_offset=...)`` zero-pads the header up to ``data_offset * 4`` bytes when that
  is more than 20; a smaller value is written into the field but the header stays 20.

Hypothesis strategies (hypothesis is imported lazily, on first use):
``frames()``, ``records(max_size=...)``, ``captures()``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterable

__all__ = [
    "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS",
    "BRIDGE_IP", "MAGIC_USEC", "MAGIC_NSEC",
    "mac", "eth", "vlan", "ipv4", "ipv6", "tcp", "udp", "dns_query", "arp",
    "Rec", "global_header", "record_bytes", "pcap",
    "frames", "records", "captures",
]

FIN, SYN, RST, PSH, ACK, URG = 1, 2, 4, 8, 16, 32
ECE, CWR, NS = 64, 128, 256

BRIDGE_IP = "10.200.0.1"
MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D

_U32 = 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Layer builders
# ---------------------------------------------------------------------------


def mac(n: int) -> bytes:
    """A locally administered unicast MAC address 02:xx:xx:xx:xx:xx numbered ``n``."""
    if not 0 <= n < 1 << 40:
        raise ValueError("mac number out of range")
    return ((0x02 << 40) | n).to_bytes(6, "big")


def _addr4(a) -> bytes:
    if isinstance(a, (bytes, bytearray)):
        if len(a) != 4:
            raise ValueError("IPv4 address must be 4 bytes")
        return bytes(a)
    return ipaddress.IPv4Address(a).packed


def _addr6(a) -> bytes:
    if isinstance(a, (bytes, bytearray)):
        if len(a) != 16:
            raise ValueError("IPv6 address must be 16 bytes")
        return bytes(a)
    return ipaddress.IPv6Address(a).packed


def eth(payload: bytes = b"", *, ethertype: int = 0x0800, dst: bytes = mac(1), src: bytes = mac(2)) -> bytes:
    """Ethernet II frame (no FCS)."""
    return bytes(dst) + bytes(src) + struct.pack(">H", ethertype) + bytes(payload)


def vlan(
    payload: bytes = b"",
    *,
    vid: int = 1,
    inner_ethertype: int = 0x0800,
    pcp: int = 0,
    dei: int = 0,
    tpid: int = 0x8100,
    dst: bytes = mac(1),
    src: bytes = mac(2),
) -> bytes:
    """802.1Q-tagged Ethernet frame: dst, src, TPID (0x8100), TCI, inner ethertype, payload."""
    tci = ((pcp & 7) << 13) | ((dei & 1) << 12) | (vid & 0x0FFF)
    return bytes(dst) + bytes(src) + struct.pack(">HHH", tpid, tci, inner_ethertype) + bytes(payload)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(
    payload: bytes = b"",
    *,
    src="10.200.0.2",
    dst="10.200.0.1",
    proto: int = 6,
    ihl: int | None = None,
    options: bytes = b"",
    version: int = 4,
    total_length: int | None = None,
    frag_offset: int = 0,
    more_fragments: bool = False,
    dont_fragment: bool = False,
    ttl: int = 64,
    ident: int = 0,
    tos: int = 0,
) -> bytes:
    """IPv4 packet.  ``ihl`` in 32-bit words (None: 5 + padded options); ``frag_offset`` in
    8-byte units; ``total_length`` None: the real length (masked to 16 bits).  The header
    checksum is computed."""
    options = bytes(options)
    if ihl is None:
        if len(options) % 4:
            options += b"\0" * (4 - len(options) % 4)
        ihl = 5 + len(options) // 4
        if ihl > 15:
            raise ValueError("options too long for IPv4")
    header_len = 20 + len(options)
    if total_length is None:
        total_length = (header_len + len(payload)) & 0xFFFF
    flags_frag = (0x4000 if dont_fragment else 0) | (0x2000 if more_fragments else 0) | (frag_offset & 0x1FFF)
    hdr = struct.pack(
        ">BBHHHBBH4s4s",
        ((version & 0xF) << 4) | (ihl & 0xF),
        tos & 0xFF,
        total_length & 0xFFFF,
        ident & 0xFFFF,
        flags_frag,
        ttl & 0xFF,
        proto & 0xFF,
        0,
        _addr4(src),
        _addr4(dst),
    ) + options
    csum = _checksum(hdr)
    hdr = hdr[:10] + struct.pack(">H", csum) + hdr[12:]
    return hdr + bytes(payload)


def ipv6(payload: bytes = b"", *, src="fd00::2", dst="fd00::1", next_header: int = 17, hop_limit: int = 64) -> bytes:
    """IPv6 packet (fixed 40-byte header, no extension headers)."""
    return (
        struct.pack(">IHBB", 6 << 28, len(payload) & 0xFFFF, next_header & 0xFF, hop_limit & 0xFF)
        + _addr6(src)
        + _addr6(dst)
        + bytes(payload)
    )


def tcp(
    sport: int = 40000,
    dport: int = 80,
    *,
    flags: int = SYN,
    payload: bytes = b"",
    data_offset: int = 5,
    seq: int = 0,
    ack: int = 0,
    window: int = 65535,
) -> bytes:
    """TCP segment.  ``flags`` is the 12-bit field below the data offset (0..0xFFF:
    reserved bits, NS, CWR, ECE, URG, ACK, PSH, RST, SYN, FIN).  Checksum 0."""
    if not 0 <= flags <= 0xFFF:
        raise ValueError("tcp flags must be 0..0xFFF")
    off_flags = ((data_offset & 0xF) << 12) | flags
    hdr = struct.pack(">HHIIHHHH", sport, dport, seq & _U32, ack & _U32, off_flags, window, 0, 0)
    if data_offset * 4 > 20:
        hdr += b"\0" * (data_offset * 4 - 20)
    return hdr + bytes(payload)


def udp(sport: int = 40000, dport: int = 53, *, payload: bytes = b"") -> bytes:
    """UDP datagram (length field filled in, checksum 0)."""
    return struct.pack(">HHHH", sport, dport, (8 + len(payload)) & 0xFFFF, 0) + bytes(payload)


def dns_query(name: str = "example.com", *, qtype: int = 1, ident: int = 0x1234) -> bytes:
    """A DNS query message (RD set, one question, class IN)."""
    qname = b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.split(".") if label) + b"\0"
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)


def arp(*, op: int = 1, sha: bytes = mac(2), spa="10.200.0.2", tha: bytes = b"\0" * 6, tpa="10.200.0.1") -> bytes:
    """ARP payload for Ethernet/IPv4 (28 bytes); wrap with ``eth(..., ethertype=0x0806)``."""
    return struct.pack(">HHBBH", 1, 0x0800, 6, 4, op) + bytes(sha) + _addr4(spa) + bytes(tha) + _addr4(tpa)


# ---------------------------------------------------------------------------
# pcap file builder
# ---------------------------------------------------------------------------


@dataclass
class Rec:
    """One pcap record.  ``t_ns`` must be a whole microsecond for microsecond files
    (``pcap()`` raises ValueError otherwise) unless both ``ts_sec`` and ``ts_frac`` are
    given, which are then written raw (e.g. ts_frac >= 1e6 in a µs file)."""

    t_ns: int
    frame: bytes
    orig_len: int | None = None  # default len(frame)
    incl_len: int | None = None  # override the header's incl_len (corrupt records)
    ts_sec: int | None = None  # raw timestamp overrides
    ts_frac: int | None = None


def _bo(byteorder: str) -> str:
    if byteorder in ("little", "<"):
        return "<"
    if byteorder in ("big", ">"):
        return ">"
    raise ValueError("byteorder must be 'little' or 'big'")


def global_header(
    *,
    byteorder: str = "little",
    nsec: bool = False,
    linktype: int = 1,
    snaplen: int = 262144,
    version=(2, 4),
    thiszone: int = 0,
    sigfigs: int = 0,
) -> bytes:
    """The 24-byte pcap global header: magic, version, thiszone, sigfigs, snaplen, network.
    ``linktype`` is the raw 32-bit network field."""
    return struct.pack(
        _bo(byteorder) + "IHHiIII",
        MAGIC_NSEC if nsec else MAGIC_USEC,
        version[0],
        version[1],
        thiszone,
        sigfigs,
        snaplen & _U32,
        linktype & _U32,
    )


def _as_rec(r) -> Rec:
    if isinstance(r, Rec):
        return r
    t_ns, frame = r
    return Rec(t_ns, frame)


def record_bytes(rec: Rec | tuple, *, byteorder: str = "little", nsec: bool = False) -> bytes:
    """One record: 16-byte header + captured bytes."""
    rec = _as_rec(rec)
    frame = bytes(rec.frame)
    if rec.ts_sec is not None and rec.ts_frac is not None:
        ts_sec, ts_frac = rec.ts_sec, rec.ts_frac
    else:
        if rec.t_ns < 0:
            raise ValueError(f"negative timestamp {rec.t_ns}")
        if nsec:
            ts_sec, ts_frac = divmod(rec.t_ns, 1_000_000_000)
        else:
            if rec.t_ns % 1000:
                raise ValueError(f"t_ns {rec.t_ns} is not a whole microsecond (µs file)")
            ts_sec, ts_frac = divmod(rec.t_ns // 1000, 1_000_000)
        if rec.ts_sec is not None:
            ts_sec = rec.ts_sec
        if rec.ts_frac is not None:
            ts_frac = rec.ts_frac
    incl_len = len(frame) if rec.incl_len is None else rec.incl_len
    orig_len = len(frame) if rec.orig_len is None else rec.orig_len
    for name, v in (("ts_sec", ts_sec), ("ts_frac", ts_frac), ("incl_len", incl_len), ("orig_len", orig_len)):
        if not 0 <= v <= _U32:
            raise ValueError(f"{name}={v} does not fit in an unsigned 32-bit field")
    return struct.pack(_bo(byteorder) + "IIII", ts_sec, ts_frac, incl_len, orig_len) + frame


def pcap(
    records: Iterable[Rec | tuple] = (),
    *,
    byteorder: str = "little",
    nsec: bool = False,
    linktype: int = 1,
    snaplen: int = 262144,
    version=(2, 4),
    tail: bytes = b"",
) -> bytes:
    """A whole classic pcap file: global header + records + raw ``tail`` bytes."""
    parts = [global_header(byteorder=byteorder, nsec=nsec, linktype=linktype, snaplen=snaplen, version=version)]
    for r in records:
        parts.append(record_bytes(r, byteorder=byteorder, nsec=nsec))
    parts.append(bytes(tail))
    return b"".join(parts)


# ---------------------------------------------------------------------------
# Hypothesis strategies
# ---------------------------------------------------------------------------

ADDR_POOL = ["10.200.0.1", "10.200.0.2", "10.200.0.3", "8.8.8.8", "192.168.1.10", "0.0.0.0", "255.255.255.255"]
PORT_POOL = [0, 53, 80, 443, 40000, 40001, 65535]
FLAG_POOL = [
    SYN, SYN | ACK, ACK, FIN, FIN | ACK, RST, RST | ACK, PSH | ACK, 0, URG,
    SYN | FIN, SYN | RST, SYN | ECE | CWR, SYN | ACK | ECE, 0x3F, 0xFF, 0xFFF, 0x100, 0x40 | SYN,
]
OTHER_PROTOS = [0, 1, 2, 4, 41, 47, 50, 58, 132, 255]

_CACHE: dict = {}


def _hyp():
    """Build (once) and return the dict of strategy factories; imports hypothesis lazily."""
    if _CACHE:
        return _CACHE
    from hypothesis import strategies as st

    def weighted(draw, choices):
        """choices: list of (weight, value) -> a drawn value, shrinking towards the first."""
        flat = [v for w, v in choices for _ in range(w)]
        return draw(st.sampled_from(flat))

    def _addr_impl(draw):
        kind = weighted(draw, [(3, "bridge"), (6, "pool"), (1, "any")])
        if kind == "bridge":
            return BRIDGE_IP
        if kind == "pool":
            return draw(st.sampled_from(ADDR_POOL))
        return draw(st.binary(min_size=4, max_size=4))

    def port(draw):
        if weighted(draw, [(8, "pool"), (2, "any")]) == "pool":
            return draw(st.sampled_from(PORT_POOL))
        return draw(st.integers(0, 65535))

    def udp_dport(draw):
        kind = weighted(draw, [(5, "dns"), (2, "zero"), (5, "other")])
        if kind == "dns":
            return 53
        if kind == "zero":
            return 0
        return port(draw)

    def tcp_flags(draw):
        if weighted(draw, [(4, "pool"), (1, "any")]) == "pool":
            return draw(st.sampled_from(FLAG_POOL))
        return draw(st.integers(0, 0xFFF))

    def small_payload(draw, max_size=24):
        return draw(st.binary(max_size=max_size))

    def tcp_segment(draw):
        data_offset = weighted(draw, [(8, 5), (1, 8), (1, "any")])
        if data_offset == "any":
            data_offset = draw(st.integers(0, 15))
        return tcp(
            port(draw), port(draw), flags=tcp_flags(draw), payload=small_payload(draw),
            data_offset=data_offset, seq=draw(st.integers(0, _U32)), ack=0,
        )

    def udp_datagram(draw):
        dport = udp_dport(draw)
        if dport == 53 and draw(st.booleans()):
            payload = dns_query(draw(st.sampled_from(["example.com", "a.b", "x" * 20 + ".org"])))
        else:
            payload = small_payload(draw)
        return udp(port(draw), dport, payload=payload)

    def transport(draw, proto):
        if proto == 6:
            return tcp_segment(draw)
        if proto == 17:
            return udp_datagram(draw)
        return small_payload(draw, 40)

    def ip_fields(draw):
        version = weighted(draw, [(12, 4), (1, "any")])
        if version == "any":
            version = draw(st.integers(0, 15))
        total_length = None if weighted(draw, [(9, True), (1, False)]) else draw(st.integers(0, 0xFFFF))
        return dict(src=_addr_impl(draw), dst=_addr_impl(draw), version=version, total_length=total_length,
                    ttl=draw(st.integers(0, 255)), ident=draw(st.integers(0, 0xFFFF)))

    def maybe_pad(draw, frame):
        kind = weighted(draw, [(6, "none"), (2, "min60"), (2, "extra")])
        if kind == "min60":
            return frame.ljust(60, b"\0")
        if kind == "extra":
            return frame + draw(st.binary(min_size=1, max_size=30))
        return frame

    def f_tcp(draw):
        return maybe_pad(draw, eth(ipv4(tcp_segment(draw), proto=6, **ip_fields(draw))))

    def f_udp(draw):
        return maybe_pad(draw, eth(ipv4(udp_datagram(draw), proto=17, **ip_fields(draw))))

    def f_options(draw):
        ihl = draw(st.integers(6, 15))
        proto = draw(st.sampled_from([6, 17, 6, 17, 1]))
        opts = draw(st.binary(min_size=(ihl - 5) * 4, max_size=(ihl - 5) * 4))
        return maybe_pad(draw, eth(ipv4(transport(draw, proto), proto=proto, ihl=ihl, options=opts, **ip_fields(draw))))

    def f_bad_ihl(draw):
        ihl = draw(st.integers(0, 4))
        proto = draw(st.sampled_from([6, 17]))
        return maybe_pad(draw, eth(ipv4(transport(draw, proto), proto=proto, ihl=ihl, **ip_fields(draw))))

    def f_ihl_too_long(draw):
        # IHL says more header than the frame holds (len(ip) < ihl*4)
        ihl = draw(st.integers(6, 15))
        extra = draw(st.binary(max_size=(ihl - 5) * 4 - 1))
        proto = draw(st.sampled_from([6, 17]))
        return eth(ipv4(extra, proto=proto, ihl=ihl, **ip_fields(draw)))

    def f_short_tcp(draw):
        return maybe_pad(draw, eth(ipv4(draw(st.binary(max_size=19)), proto=6, **ip_fields(draw))))

    def f_short_udp(draw):
        return maybe_pad(draw, eth(ipv4(draw(st.binary(max_size=7)), proto=17, **ip_fields(draw))))

    def f_other_proto(draw):
        proto = draw(st.sampled_from(OTHER_PROTOS))
        return maybe_pad(draw, eth(ipv4(small_payload(draw, 40), proto=proto, **ip_fields(draw))))

    def f_fragment(draw):
        proto = draw(st.sampled_from([6, 17]))
        first = draw(st.booleans())
        body = transport(draw, proto) if first else small_payload(draw, 40)
        return maybe_pad(draw, eth(ipv4(
            body, proto=proto, more_fragments=first or draw(st.booleans()),
            frag_offset=0 if first else draw(st.integers(1, 0x1FFF)), **ip_fields(draw),
        )))

    def f_vlan(draw):
        proto = draw(st.sampled_from([6, 17]))
        inner = ipv4(transport(draw, proto), proto=proto, **ip_fields(draw))
        return vlan(inner, vid=draw(st.integers(0, 4095)), tpid=draw(st.sampled_from([0x8100, 0x8100, 0x88A8])))

    def f_ipv6(draw):
        nh = draw(st.sampled_from([6, 17, 58]))
        return eth(ipv6(transport(draw, nh), next_header=nh), ethertype=0x86DD)

    def f_arp(draw):
        return maybe_pad(draw, eth(arp(op=draw(st.sampled_from([1, 2])), spa=_addr_impl(draw), tpa=_addr_impl(draw)),
                                   ethertype=0x0806))

    def f_random(draw):
        return draw(st.binary(max_size=80))

    def f_eth_random(draw):
        # an arbitrary ethertype with arbitrary payload (sometimes 0x0800 with garbage)
        et = draw(st.sampled_from([0x0800, 0x0800, 0x86DD, 0x8100, 0x0806, 0x88CC, 0x0000, 0xFFFF]))
        return eth(draw(st.binary(max_size=60)), ethertype=et)

    whole = [
        (30, f_tcp), (20, f_udp), (6, f_options), (3, f_bad_ihl), (3, f_ihl_too_long),
        (4, f_short_tcp), (4, f_short_udp), (5, f_other_proto), (4, f_fragment),
        (3, f_vlan), (3, f_ipv6), (3, f_arp), (2, f_random), (2, f_eth_random),
    ]

    @st.composite
    def frames_(draw):
        if weighted(draw, [(9, False), (1, True)]):
            # truncated: any frame cut at any byte (including inside the Ethernet header)
            f = weighted(draw, whole)(draw)
            return f[: draw(st.integers(0, len(f)))]
        return weighted(draw, whole)(draw)

    # ----------------------------------------------------------------- records
    T_MAX_NS = _U32 * 1_000_000_000 + 999_999_999
    BASES_S = [1_700_000_000, 1_000_000_000, 0, 86_400 * 365, 2**31 - 1, 4_000_000_000]

    @st.composite
    def records_(draw, max_size=20, nsec=False, bucket_ms=100, allow_huge=True, cap_ns=None, frames=None):
        frame_st = frames_() if frames is None else frames
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
                kind = weighted(draw, steps)
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
            extra = weighted(draw, [(20, None), (2, "snapped"), (1, "weird_frac")])
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

    # ---------------------------------------------------------------- captures
    MAX_GAPS = [None, 0, 1, 2.5, 5, 3600]

    @st.composite
    def captures_(draw, max_records=20, errors=False, linktypes=(1,)):
        kw = {
            "bucket_ms": weighted(draw, [(6, 100), (2, 1), (2, 7), (2, 1000)]),
            "bridge_ip": weighted(draw, [(4, BRIDGE_IP), (1, "10.200.0.2"), (1, "192.168.1.10")]),
            "t_mono_origin_ns": weighted(draw, [(4, 0), (1, 1_700_000_000_000_000_000), (1, "any")]),
            "max_gap_s": draw(st.sampled_from(MAX_GAPS)),
        }
        if kw["t_mono_origin_ns"] == "any":
            kw["t_mono_origin_ns"] = draw(st.integers(-(2**40), 2**62))
        byteorder = draw(st.sampled_from(["little", "big"]))
        nsec = draw(st.booleans())
        linktype = draw(st.sampled_from(list(linktypes)))
        shape = weighted(draw, [(16, "normal"), (2, "tail"), (1, "short")] + ([(2, "error")] if errors else []))
        if shape == "short":
            header = global_header(byteorder=byteorder, nsec=nsec, linktype=linktype)
            return header[: draw(st.integers(0, 23))], kw
        cap_ns = None
        if kw["max_gap_s"] is not None:
            from fractions import Fraction

            cap_ns = int(Fraction(str(kw["max_gap_s"])) * 1_000_000_000)
        recs = draw(records_(max_size=max_records, nsec=nsec, bucket_ms=kw["bucket_ms"],
                             allow_huge=kw["max_gap_s"] is not None, cap_ns=cap_ns))
        tail = b""
        if shape == "tail":
            # a partial trailing record: header or data cut short
            last = recs[-1].t_ns if recs else 1_700_000_000_000_000_000
            whole_rec = record_bytes(Rec(last - last % 1000, draw(frames_())), byteorder=byteorder, nsec=nsec)
            tail = whole_rec[: draw(st.integers(1, len(whole_rec) - 1))]
        data = pcap(recs, byteorder=byteorder, nsec=nsec, linktype=linktype, tail=tail)
        if shape == "error":
            kind = draw(st.sampled_from(["magic", "incl_len", "short_magic"]))
            if kind == "magic":
                bad = draw(st.binary(min_size=4, max_size=4).filter(
                    lambda m: m not in (struct.pack("<I", MAGIC_USEC), struct.pack(">I", MAGIC_USEC),
                                        struct.pack("<I", MAGIC_NSEC), struct.pack(">I", MAGIC_NSEC))))
                data = bad + data[4:]
            elif kind == "short_magic":
                data = draw(st.binary(min_size=1, max_size=23).filter(
                    lambda b: not any(m.startswith(b[:4]) for m in (
                        struct.pack("<I", MAGIC_USEC), struct.pack(">I", MAGIC_USEC),
                        struct.pack("<I", MAGIC_NSEC), struct.pack(">I", MAGIC_NSEC)))))
            else:
                incl = draw(st.integers(262145, _U32))
                data += record_bytes(Rec(0, draw(st.binary(max_size=40)), incl_len=incl),
                                     byteorder=byteorder, nsec=nsec)
        return data, kw

    _CACHE.update(frames=frames_, records=records_, captures=captures_)
    return _CACHE


def frames():
    """Strategy: Ethernet frames, mostly well-formed IPv4 TCP/UDP, plus every awkward case
    the decoder must survive (options, bad/long IHL, short transport headers, other
    protocols, fragments, padding, truncation, VLAN, IPv6, ARP, random bytes)."""
    return _hyp()["frames"]()


def records(max_size: int = 20, *, nsec: bool = False, bucket_ms: int = 100, allow_huge: bool = True,
            cap_ns: int | None = None, frames=None):
    """Strategy: lists of Rec with mostly increasing timestamps (small steps, equal,
    backwards, on boundaries, multi-bucket gaps, rare day-long jumps when ``allow_huge``,
    rare ts_frac >= 1 s).  µs-exact unless ``nsec``.  Gaps scale with ``bucket_ms``;
    ``cap_ns`` adds jumps of exactly cap and cap+1 empty buckets."""
    return _hyp()["records"](max_size=max_size, nsec=nsec, bucket_ms=bucket_ms, allow_huge=allow_huge,
                             cap_ns=cap_ns, frames=frames)


def captures(max_records: int = 20, *, errors: bool = False, linktypes=(1,)):
    """Strategy: ``(file_bytes, oracle_kwargs)``.  Either byte order, µs or ns, sometimes a
    partial trailing record or an empty/short header.  With ``errors=True`` some files are
    invalid (bad magic, short non-magic file, oversized incl_len) and must raise.  Day-long
    jumps only appear when ``max_gap_s`` is not None, so the row count stays small."""
    return _hyp()["captures"](max_records=max_records, errors=errors, linktypes=tuple(linktypes))
