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

* Other link types: ``sll()``, ``sll2()``, ``null()``, ``loop()`` build the link header in
  front of a payload; ``link(linktype, packet, ethertype=...)`` picks the right one.
* pcapng: ``shb()``, ``idb()``, ``epb()``, ``spb()``, ``opb()``, ``isb()``, ``nrb()``,
  ``dsb()``, ``custom_block()`` build one block each (frames zero-padded to 4; every
  length/field overridable), ``block()`` any raw block (body NOT padded, ``total_length``
  and ``trailing_length`` overridable), ``pcapng(blocks)`` joins them, and
  ``pcapng_file(records, ...)`` is the one-section, one-interface shortcut.  Timestamps
  are given in the interface's units; ``ts_units(t_ns, tsresol=, tsoffset=)`` converts.
* ``compress(data, kind)`` for kind in COMPRESSIONS (zstandard/lz4 imported lazily).

* Extended decode: ``vlan_tags(payload, tags=[(tpid, vid), ...], linktype=1|113|276)``
  stacks 0..n VLAN tags (``qinq()`` is the two-tag shortcut, ``tag_stack()`` the raw
  bytes); ``ipv6_ext(kind, payload, next_header=, length=, offset=, more=)`` builds one
  IPv6 extension header (hop-by-hop, routing, destination options, fragment, AH) and
  ``ipv6_exts(payload, [kind | (kind, kwargs), ...], next_header=)`` a chain;
  ``icmpv6()`` an ICMPv6 message.

Hypothesis strategies (hypothesis is imported lazily, on first use):
``frames()``, ``records(max_size=...)``, ``captures()``, ``linktype_frames(linktype)``,
``pcapng_twins()``, ``pcapng_captures()``, ``compressed(strategy)``; for the extended
decode ``extended_frames()``, ``extended_linktype_frames(linktype)`` and
``extended_captures()``.
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
    "TPID_8021Q", "TPID_8021AD", "TPID_QINQ_OLD", "VLAN_TPIDS", "tag_stack", "vlan_tags", "qinq",
    "IPV6_EXT_KINDS", "ipv6_ext", "ipv6_exts", "icmpv6",
    "Rec", "global_header", "record_bytes", "pcap",
    "AF_INET", "AF_INET6_FAMILIES", "LINK_HEADER_LEN", "DECODED_LINKTYPES", "sll", "sll2", "null", "loop", "link",
    "SHB_TYPE", "BYTE_ORDER_MAGIC", "BT_IDB", "BT_PB", "BT_SPB", "BT_NRB", "BT_ISB", "BT_EPB", "BT_DSB",
    "BT_CB_COPY", "BT_CB_NOCOPY", "OPT_ENDOFOPT", "OPT_COMMENT", "IF_NAME", "IF_TSRESOL", "IF_TSOFFSET",
    "option", "options", "block", "shb", "idb", "epb", "spb", "opb", "isb", "nrb", "dsb", "custom_block",
    "pcapng", "pcapng_file", "units_per_second", "ts_units", "tsresol_option", "tsoffset_option",
    "COMPRESSIONS", "compress",
    "frames", "records", "captures", "linktype_frames", "pcapng_twins", "pcapng_captures", "compressed",
    "extended_frames", "extended_linktype_frames", "extended_captures", "EXT_LINKTYPES", "HOST_IP_POOL",
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


# --- VLAN / QinQ tag stacks and IPv6 extension headers (extended decode) -------------

TPID_8021Q, TPID_8021AD, TPID_QINQ_OLD = 0x8100, 0x88A8, 0x9100
VLAN_TPIDS = (TPID_8021Q, TPID_8021AD, TPID_QINQ_OLD)


def tag_stack(tags: Iterable = ((TPID_8021Q, 1),), inner_ethertype: int = 0x0800) -> tuple[int, bytes]:
    """A stack of VLAN tags, outermost first, each ``(tpid, vid)`` or ``(tpid, vid, pcp,
    dei)``.  Returns ``(outer_type, tag_bytes)``: the type the link header must carry (the
    first TPID, or ``inner_ethertype`` when there are no tags) and the 4 bytes per tag (TCI,
    then the next TPID or ``inner_ethertype``) that go between the link header and the
    network layer."""
    tags = [tuple(t) for t in tags]
    out = b""
    for i, t in enumerate(tags):
        tpid, vid, pcp, dei = (tuple(t) + (0, 0))[:4]
        nxt = tags[i + 1][0] if i + 1 < len(tags) else inner_ethertype
        out += struct.pack(">HH", ((pcp & 7) << 13) | ((dei & 1) << 12) | (vid & 0x0FFF), nxt & 0xFFFF)
    return (tags[0][0] if tags else inner_ethertype) & 0xFFFF, out


def vlan_tags(
    payload: bytes = b"",
    *,
    tags: Iterable = ((TPID_8021AD, 100), (TPID_8021Q, 200)),
    inner_ethertype: int = 0x0800,
    linktype: int = 1,
    dst: bytes = mac(1),
    src: bytes = mac(2),
) -> bytes:
    """A frame with 0..n stacked VLAN tags (outermost first, see ``tag_stack``) before
    ``payload``, behind an Ethernet (1), LINUX_SLL (113) or LINUX_SLL2 (276) header."""
    outer, tag_bytes = tag_stack(tags, inner_ethertype)
    body = tag_bytes + bytes(payload)
    if linktype == 1:
        return eth(body, ethertype=outer, dst=dst, src=src)
    if linktype == 113:
        return sll(body, protocol=outer, addr=src)
    if linktype == 276:
        return sll2(body, protocol=outer, addr=src)
    raise ValueError(f"VLAN tags only behind Ethernet, SLL or SLL2, not link type {linktype}")


def qinq(
    payload: bytes = b"",
    *,
    outer_vid: int = 100,
    inner_vid: int = 200,
    outer_tpid: int = TPID_8021AD,
    inner_tpid: int = TPID_8021Q,
    inner_ethertype: int = 0x0800,
    dst: bytes = mac(1),
    src: bytes = mac(2),
) -> bytes:
    """A QinQ Ethernet frame: outer tag (802.1ad by default), inner 802.1Q tag, payload."""
    return vlan_tags(payload, tags=((outer_tpid, outer_vid), (inner_tpid, inner_vid)),
                     inner_ethertype=inner_ethertype, dst=dst, src=src)


IPV6_EXT_KINDS = {"hopopts": 0, "hbh": 0, "routing": 43, "fragment": 44, "ah": 51, "dstopts": 60}


def _ext_kind(kind) -> int:
    if isinstance(kind, int):
        if kind not in IPV6_EXT_KINDS.values():
            raise ValueError(f"not an IPv6 extension header the decode walks: {kind}")
        return kind
    return IPV6_EXT_KINDS[kind]


def ipv6_ext(
    kind,
    payload: bytes = b"",
    *,
    next_header: int = 6,
    length: int | None = None,
    offset: int = 0,
    more: bool = False,
    ident: int = 0x12345678,
    routing_type: int = 0,
    segments_left: int = 0,
    spi: int = 0x100,
    seq: int = 1,
    body: bytes | None = None,
) -> bytes:
    """One IPv6 extension header followed by ``payload``.  ``kind``: "hopopts" (or "hbh",
    0), "routing" (43), "dstopts" (60), "fragment" (44), "ah" (51).  ``length`` is the raw
    byte 1 of the header:

    * hop-by-hop / routing / destination options: the header is ``(length + 1) * 8`` bytes
      (default 0: 8 bytes); options are one PadN filling the header, the routing header has
      ``routing_type``/``segments_left`` and zeros;
    * AH: ``(length + 2) * 4`` bytes (default 1: 12 bytes: SPI, sequence, no ICV; more is a
      zero ICV);
    * fragment: always 8 bytes; ``length`` is written in its reserved byte (default 0);
      ``offset`` in 8-byte units (13 bits), ``more`` the M flag.

    ``body`` (not for fragment headers): the bytes after the next-header and length bytes,
    exactly as given -- a header whose length byte says more (or less) than it holds.  Cut
    the packet to truncate a header."""
    k = _ext_kind(kind)
    nh = next_header & 0xFF
    if body is not None and k != 44:
        ln = (1 if k == 51 else 0) if length is None else length
        return bytes([nh, ln & 0xFF]) + bytes(body) + bytes(payload)
    if k == 44:
        hdr = struct.pack(">BBHI", nh, (length or 0) & 0xFF, ((offset & 0x1FFF) << 3) | (1 if more else 0),
                          ident & _U32)
    elif k == 51:
        ln = 1 if length is None else length
        size = (ln + 2) * 4
        hdr = struct.pack(">BBHII", nh, ln & 0xFF, 0, spi & _U32, seq & _U32)
        hdr = (hdr + b"\0" * max(0, size - 12))[: max(size, 2)]
    else:
        ln = 0 if length is None else length
        size = (ln + 1) * 8
        if k == 43:
            body = bytes([routing_type & 0xFF, segments_left & 0xFF]) + b"\0" * (size - 4)
        else:  # PadN options (Pad1 for a last single byte) filling the header
            body, left = b"", size - 2
            while left:
                chunk = min(left, 257) if left != 258 else 256
                body += b"\0" if chunk == 1 else bytes([1, chunk - 2]) + b"\0" * (chunk - 2)
                left -= chunk
        hdr = bytes([nh, ln & 0xFF]) + body
    return hdr + bytes(payload)


def ipv6_exts(payload: bytes = b"", headers: Iterable = (), *, next_header: int = 6) -> tuple[int, bytes]:
    """A chain of extension headers, outermost first: each ``kind`` or ``(kind, kwargs)``
    for ``ipv6_ext``.  Returns ``(first_next_header, bytes)``: the value for the IPv6
    header's next-header field and the chain followed by ``payload`` (whose protocol is
    ``next_header``)."""
    items = [(h, {}) if not isinstance(h, tuple) else h for h in headers]
    data, nh = bytes(payload), next_header
    for kind, kw in reversed(items):
        data = ipv6_ext(kind, data, next_header=nh, **kw)
        nh = _ext_kind(kind)
    return nh, data


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


def icmpv6(type_: int = 128, code: int = 0, *, payload: bytes = b"\x00\x01\x00\x01") -> bytes:
    """ICMPv6 message (checksum 0): type (128 echo request), code, then ``payload``."""
    return struct.pack(">BBH", type_ & 0xFF, code & 0xFF, 0) + bytes(payload)


def dns_query(name: str = "example.com", *, qtype: int = 1, ident: int = 0x1234) -> bytes:
    """A DNS query message (RD set, one question, class IN)."""
    qname = b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.split(".") if label) + b"\0"
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)


def arp(*, op: int = 1, sha: bytes = mac(2), spa="10.200.0.2", tha: bytes = b"\0" * 6, tpa="10.200.0.1") -> bytes:
    """ARP payload for Ethernet/IPv4 (28 bytes); wrap with ``eth(..., ethertype=0x0806)``."""
    return struct.pack(">HHBBH", 1, 0x0800, 6, 4, op) + bytes(sha) + _addr4(spa) + bytes(tha) + _addr4(tpa)


# ---------------------------------------------------------------------------
# Link-layer builders (other link types)
# ---------------------------------------------------------------------------

AF_INET = 2
AF_INET6_FAMILIES = (10, 24, 28, 30)  # Linux, BSDs, FreeBSD, macOS

# link type -> bytes of link header before the network layer (the decoded ones)
LINK_HEADER_LEN = {1: 14, 113: 16, 276: 20, 0: 4, 108: 4, 101: 0, 12: 0, 14: 0, 228: 0, 229: 0}
DECODED_LINKTYPES = tuple(LINK_HEADER_LEN)


def _hwaddr(addr: bytes, halen: int | None) -> tuple[int, bytes]:
    addr = bytes(addr)
    if len(addr) > 8:
        raise ValueError("link-layer address longer than 8 bytes")
    return (len(addr) if halen is None else halen), addr.ljust(8, b"\0")


def sll(
    payload: bytes = b"",
    *,
    protocol: int = 0x0800,
    pkttype: int = 0,
    hatype: int = 1,
    addr: bytes = mac(2),
    halen: int | None = None,
) -> bytes:
    """LINUX_SLL (113) frame: 16-byte header (packet type, ARPHRD type, address length,
    8 address bytes, protocol, all big-endian) + payload."""
    halen, addr8 = _hwaddr(addr, halen)
    return struct.pack(">HHH", pkttype & 0xFFFF, hatype & 0xFFFF, halen & 0xFFFF) + addr8 + \
        struct.pack(">H", protocol & 0xFFFF) + bytes(payload)


def sll2(
    payload: bytes = b"",
    *,
    protocol: int = 0x0800,
    ifindex: int = 1,
    hatype: int = 1,
    pkttype: int = 0,
    addr: bytes = mac(2),
    halen: int | None = None,
) -> bytes:
    """LINUX_SLL2 (276) frame: 20-byte header (protocol, reserved, interface index, ARPHRD
    type, packet type, address length, 8 address bytes, all big-endian) + payload."""
    halen, addr8 = _hwaddr(addr, halen)
    return struct.pack(">HHIHBB", protocol & 0xFFFF, 0, ifindex & _U32, hatype & 0xFFFF, pkttype & 0xFF,
                       halen & 0xFF) + addr8 + bytes(payload)


def null(payload: bytes = b"", *, family: int = AF_INET, byteorder: str = "little") -> bytes:
    """NULL (0) frame: the address family as a u32 in the capturing host's byte order."""
    return struct.pack(_bo(byteorder) + "I", family & _U32) + bytes(payload)


def loop(payload: bytes = b"", *, family: int = AF_INET) -> bytes:
    """LOOP (108) frame: the address family as a big-endian u32."""
    return struct.pack(">I", family & _U32) + bytes(payload)


def link(linktype: int, packet: bytes = b"", *, ethertype: int = 0x0800, byteorder: str = "little") -> bytes:
    """Wrap a network-layer ``packet`` of protocol ``ethertype`` in the link header of
    ``linktype`` (one of DECODED_LINKTYPES).  NULL/LOOP use AF_INET for 0x0800, 24 for
    0x86DD and family 0 otherwise; raw link types return the packet unchanged."""
    if linktype == 1:
        return eth(packet, ethertype=ethertype)
    if linktype == 113:
        return sll(packet, protocol=ethertype)
    if linktype == 276:
        return sll2(packet, protocol=ethertype)
    if linktype in (0, 108):
        family = AF_INET if ethertype == 0x0800 else 24 if ethertype == 0x86DD else 0
        return null(packet, family=family, byteorder=byteorder) if linktype == 0 else loop(packet, family=family)
    if linktype in (101, 12, 14, 228, 229):
        return bytes(packet)
    raise ValueError(f"no link header builder for link type {linktype}")


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
# pcapng builders (dumb and explicit: every length and field can be overridden)
# ---------------------------------------------------------------------------

SHB_TYPE = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
BT_IDB, BT_PB, BT_SPB, BT_NRB, BT_ISB, BT_EPB, BT_DSB = 1, 2, 3, 4, 5, 6, 0x0A
BT_CB_COPY, BT_CB_NOCOPY = 0x00000BAD, 0x40000BAD
OPT_ENDOFOPT, OPT_COMMENT = 0, 1
IF_NAME, IF_DESCRIPTION, IF_TSRESOL, IF_FCSLEN, IF_TSOFFSET = 2, 3, 9, 13, 14
EPB_FLAGS = 2
_U64 = (1 << 64) - 1


def _pad4(b: bytes) -> bytes:
    b = bytes(b)
    return b + b"\0" * (-len(b) % 4)


def option(code: int, value: bytes = b"", *, byteorder: str = "little", length: int | None = None) -> bytes:
    """One option: code (u16), length (u16, default len(value)), value zero-padded to 4."""
    value = bytes(value)
    return struct.pack(_bo(byteorder) + "HH", code & 0xFFFF,
                       (len(value) if length is None else length) & 0xFFFF) + _pad4(value)


def options(*opts, byteorder: str = "little", end: bool = True) -> bytes:
    """An option list from ``(code, value)`` pairs, ended by opt_endofopt when ``end``
    (and there is at least one option)."""
    out = b"".join(option(code, value, byteorder=byteorder) for code, value in opts)
    if end and opts:
        out += option(OPT_ENDOFOPT, byteorder=byteorder)
    return out


def block(btype: int, body: bytes = b"", *, byteorder: str = "little", total_length: int | None = None,
          trailing_length: int | None = None) -> bytes:
    """A raw block: type, total length (default 12 + len(body)), body as given (NOT padded),
    trailing copy of the total length (default the same as the leading one)."""
    body = bytes(body)
    total = 12 + len(body) if total_length is None else total_length
    trailer = total if trailing_length is None else trailing_length
    bo = _bo(byteorder)
    return struct.pack(bo + "II", btype & _U32, total & _U32) + body + struct.pack(bo + "I", trailer & _U32)


def shb(*, byteorder: str = "little", version=(1, 0), options: bytes = b"", section_length: int = -1,
        bom: int | bytes | None = None, **kw) -> bytes:
    """Section Header Block.  ``bom``: the byte-order magic (an int written in ``byteorder``
    or 4 raw bytes; default 0x1A2B3C4D).  ``kw``: ``block()``'s length overrides."""
    bo = _bo(byteorder)
    if bom is None:
        bom = BYTE_ORDER_MAGIC
    bom_bytes = bytes(bom) if isinstance(bom, (bytes, bytearray)) else struct.pack(bo + "I", bom & _U32)
    body = bom_bytes + struct.pack(bo + "HHq", version[0] & 0xFFFF, version[1] & 0xFFFF, section_length)
    body += bytes(options)
    return block(SHB_TYPE, body, byteorder=byteorder, **kw)


def tsresol_option(tsresol: int, *, byteorder: str = "little") -> bytes:
    return option(IF_TSRESOL, bytes([tsresol]), byteorder=byteorder)


def tsoffset_option(tsoffset: int, *, byteorder: str = "little") -> bytes:
    return option(IF_TSOFFSET, struct.pack(_bo(byteorder) + "q", tsoffset), byteorder=byteorder)


def idb(linktype: int = 1, *, snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None,
        options: bytes = b"", byteorder: str = "little", **kw) -> bytes:
    """Interface Description Block.  Options: if_tsresol (when given), if_tsoffset (when
    given), then the raw ``options`` bytes, then opt_endofopt if any option was written."""
    bo = _bo(byteorder)
    opts = b""
    if tsresol is not None:
        opts += tsresol_option(tsresol, byteorder=byteorder)
    if tsoffset is not None:
        opts += tsoffset_option(tsoffset, byteorder=byteorder)
    opts += bytes(options)
    if opts:
        opts += option(OPT_ENDOFOPT, byteorder=byteorder)
    body = struct.pack(bo + "HHI", linktype & 0xFFFF, 0, snaplen & _U32) + opts
    return block(BT_IDB, body, byteorder=byteorder, **kw)


def epb(iface: int, ts_units: int, frame: bytes, *, orig_len: int | None = None, caplen: int | None = None,
        options: bytes = b"", byteorder: str = "little", **kw) -> bytes:
    """Enhanced Packet Block: interface, timestamp (in the interface's units) split high/low,
    captured length (default len(frame)), original length (default len(frame)), the frame
    zero-padded to 4, raw ``options``."""
    frame = bytes(frame)
    body = struct.pack(_bo(byteorder) + "IIIII", iface & _U32, (ts_units >> 32) & _U32, ts_units & _U32,
                       (len(frame) if caplen is None else caplen) & _U32,
                       (len(frame) if orig_len is None else orig_len) & _U32) + _pad4(frame) + bytes(options)
    return block(BT_EPB, body, byteorder=byteorder, **kw)


def spb(frame: bytes, *, orig_len: int | None = None, byteorder: str = "little", **kw) -> bytes:
    """Simple Packet Block: original length (default len(frame)) and the frame padded to 4."""
    frame = bytes(frame)
    body = struct.pack(_bo(byteorder) + "I", (len(frame) if orig_len is None else orig_len) & _U32) + _pad4(frame)
    return block(BT_SPB, body, byteorder=byteorder, **kw)


def opb(iface: int, ts_units: int, frame: bytes, *, drops: int = 0, orig_len: int | None = None,
        caplen: int | None = None, options: bytes = b"", byteorder: str = "little", **kw) -> bytes:
    """Obsolete Packet Block (type 2): interface (u16), drops (u16), then as ``epb``."""
    frame = bytes(frame)
    body = struct.pack(_bo(byteorder) + "HHIIII", iface & 0xFFFF, drops & 0xFFFF, (ts_units >> 32) & _U32,
                       ts_units & _U32, (len(frame) if caplen is None else caplen) & _U32,
                       (len(frame) if orig_len is None else orig_len) & _U32) + _pad4(frame) + bytes(options)
    return block(BT_PB, body, byteorder=byteorder, **kw)


def isb(iface: int, ts_units: int = 0, *, options: bytes = b"", byteorder: str = "little") -> bytes:
    """Interface Statistics Block (skipped by readers of packets)."""
    body = struct.pack(_bo(byteorder) + "III", iface & _U32, (ts_units >> 32) & _U32, ts_units & _U32)
    return block(BT_ISB, body + bytes(options), byteorder=byteorder)


def nrb(records=((1, bytes([10, 200, 0, 1]) + b"bridge\0"),), *, options: bytes = b"",
        byteorder: str = "little") -> bytes:
    """Name Resolution Block from ``(record_type, value)`` pairs (ended by nrb_record_end)."""
    bo = _bo(byteorder)
    body = b"".join(struct.pack(bo + "HH", t, len(v)) + _pad4(v) for t, v in records) + struct.pack(bo + "HH", 0, 0)
    return block(BT_NRB, body + bytes(options), byteorder=byteorder)


def dsb(data: bytes = b"CLIENT_RANDOM x y\n", *, secrets_type: int = 0x544C534B, byteorder: str = "little") -> bytes:
    """Decryption Secrets Block."""
    body = struct.pack(_bo(byteorder) + "II", secrets_type, len(data)) + _pad4(data)
    return block(BT_DSB, body, byteorder=byteorder)


def custom_block(data: bytes = b"", *, pen: int = 32473, copy: bool = True, byteorder: str = "little") -> bytes:
    """Custom Block (0x00000BAD, or 0x40000BAD when it must not be copied)."""
    body = struct.pack(_bo(byteorder) + "I", pen) + _pad4(data)
    return block(BT_CB_COPY if copy else BT_CB_NOCOPY, body, byteorder=byteorder)


def pcapng(blocks: Iterable[bytes] = (), *, tail: bytes = b"") -> bytes:
    """A pcapng file: the blocks joined, then raw ``tail`` bytes."""
    return b"".join(bytes(b) for b in blocks) + bytes(tail)


def units_per_second(tsresol: int | None) -> int:
    """if_tsresol -> timestamp units per second (None: the default 10^-6)."""
    if tsresol is None:
        return 1_000_000
    return 2 ** (tsresol - 128) if tsresol >= 128 else 10**tsresol


def ts_units(t_ns: int, *, tsresol: int | None = None, tsoffset: int = 0) -> int:
    """The timestamp (in units of ``tsresol``) a reader converts back to exactly ``t_ns``
    with ``floor(ts * 10^9 / units) + tsoffset * 10^9``; ValueError when there is none
    (or it does not fit in 64 bits)."""
    units = units_per_second(tsresol)
    x = t_ns - tsoffset * 1_000_000_000
    if x < 0:
        raise ValueError(f"t_ns {t_ns} is before if_tsoffset {tsoffset} s")
    ts = -((-x * units) // 1_000_000_000)  # ceil
    if ts > _U64 or ts * 1_000_000_000 // units != x:
        raise ValueError(f"t_ns {t_ns} is not representable with if_tsresol {tsresol} and if_tsoffset {tsoffset}")
    return ts


def pcapng_file(
    records: Iterable[Rec | tuple] = (),
    *,
    byteorder: str = "little",
    linktype: int = 1,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    version=(1, 0),
    tail: bytes = b"",
) -> bytes:
    """One section, one interface, one EPB per record (``Rec.incl_len`` overrides the
    captured length field, ``Rec.orig_len`` the original length).  Timestamps must be
    exactly representable (see ``ts_units``)."""
    blocks = [shb(byteorder=byteorder, version=version),
              idb(linktype, snaplen=snaplen, tsresol=tsresol, tsoffset=tsoffset, byteorder=byteorder)]
    for r in records:
        r = _as_rec(r)
        blocks.append(epb(0, ts_units(r.t_ns, tsresol=tsresol, tsoffset=tsoffset or 0), r.frame,
                          orig_len=r.orig_len, caplen=r.incl_len, byteorder=byteorder))
    return pcapng(blocks, tail=tail)


# ---------------------------------------------------------------------------
# Compression
# ---------------------------------------------------------------------------

COMPRESSIONS = ("gzip", "zstd", "xz", "bzip2", "lz4")


def compress(data: bytes, kind: str | None, *, level: int | None = None, members: int = 1, **options) -> bytes:
    """``data`` compressed as ``kind`` (None: unchanged).  ``members`` > 1 splits the data
    into that many consecutive streams (gzip members, zstd/lz4 frames, xz/bzip2 streams)
    and concatenates them.  zstd ``options``: ``content_size=False`` for a streaming frame
    header, ``checksum=True`` for a content checksum; lz4: any ``lz4.frame.compress``
    keyword (``block_size``, ``content_checksum``...)."""
    data = bytes(data)
    if kind is None:
        return data
    if members > 1:
        step = -(-len(data) // members) or 1
        parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        return b"".join(compress(p, kind, level=level, **options) for p in parts)
    if kind == "gzip":
        import gzip

        return gzip.compress(data, compresslevel=6 if level is None else level, mtime=0)
    if kind == "bzip2":
        import bz2

        return bz2.compress(data, 9 if level is None else level)
    if kind == "xz":
        import lzma

        return lzma.compress(data, format=lzma.FORMAT_XZ, preset=1 if level is None else level)
    if kind == "zstd":
        import zstandard

        cctx = zstandard.ZstdCompressor(level=3 if level is None else level,
                                        write_content_size=options.get("content_size", True),
                                        write_checksum=options.get("checksum", False))
        if options.get("content_size", True):
            return cctx.compress(data)
        cobj = cctx.compressobj()
        return cobj.compress(data) + cobj.flush()
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.compress(data, compression_level=0 if level is None else level, **options)
    raise ValueError(f"unknown compression {kind!r}")


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
# link types pcapng_twins() draws from (one per file) and pcapng_captures() mixes
TWIN_LINKTYPES = (1, 1, 1, 113, 276, 101, 12, 14, 228, 229, 0, 108, 147, 105)
CAPTURE_LINKTYPES = (1, 1, 113, 276, 101, 228, 229, 0, 108, 12, 14, 147, 9, 249, 231)

_CACHE: dict = {}

# Every magic a reader recognises by its first bytes: classic pcap (4 encodings), the
# pcapng SHB type, and the compression formats.
KNOWN_MAGICS = tuple(struct.pack(bo + "I", m) for bo in "<>" for m in (MAGIC_USEC, MAGIC_NSEC)) + (
    b"\x0a\x0d\x0d\x0a", b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\xfd\x37\x7a\x58\x5a\x00", b"BZh",
    b"\x04\x22\x4d\x18")


def _begins_a_magic(b: bytes) -> bool:
    """True when ``b`` and some known magic agree on their common length (one begins the other)."""
    return any(m[: len(b)] == b[: len(m)] for m in KNOWN_MAGICS)


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
                bad = draw(st.binary(min_size=4, max_size=4).filter(lambda m: not _begins_a_magic(m)))
                data = bad + data[4:]
            elif kind == "short_magic":
                data = draw(st.binary(min_size=1, max_size=23).filter(lambda b: not _begins_a_magic(b[:4])))
            else:
                incl = draw(st.integers(262145, _U32))
                data += record_bytes(Rec(0, draw(st.binary(max_size=40)), incl_len=incl),
                                     byteorder=byteorder, nsec=nsec)
        return data, kw

    # ------------------------------------------------------------ other link types
    def _ipv4_for_link(draw):
        """An IPv4 packet (no link header) as f_tcp/f_udp build them."""
        return draw(st.sampled_from([f_tcp, f_udp, f_other_proto]))(draw)[14:]

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
    def linktype_frames_(draw, linktype):
        if linktype == 1:
            return draw(frames_())
        if linktype not in LINK_HEADER_LEN:
            # not decoded: anything, including what would decode as Ethernet or IPv4
            kind = weighted(draw, [(3, "eth"), (2, "ip"), (1, "random")])
            if kind == "eth":
                return draw(frames_())
            if kind == "ip":
                return _ipv4_for_link(draw)
            return draw(st.binary(max_size=80))
        kind = weighted(draw, [(16, "net"), (2, "short"), (3, "other")])
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
        f = draw(frames_())
        if len(f) < 14:
            return _wrap(draw, linktype, f, 0x0800)  # garbage where the IPv4 header should be
        return _wrap(draw, linktype, f[14:], (f[12] << 8) | f[13])

    # ------------------------------------------------------------ pcapng
    RESOLUTIONS = [None, 6, 9, 3, 0, 1, 7, 10, 12, 15, 128 + 30, 128 + 20, 128 + 10, 128 + 32, 128, 128 + 3]

    def representable(times, tsresol, tsoffset):
        try:
            for t in times:
                ts_units(t, tsresol=tsresol, tsoffset=tsoffset)
        except ValueError:
            return False
        return True

    def _offset(draw, times):
        kind = weighted(draw, [(6, "zero"), (2, "below"), (1, "negative")])
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
    def pcapng_twins_(draw, max_records=20, linktypes=None, allow_huge=False, bucket_ms=100):
        lt = draw(st.sampled_from(list(linktypes or TWIN_LINKTYPES)))
        recs = draw(records_(max_size=max_records, nsec=True, bucket_ms=bucket_ms, allow_huge=allow_huge,
                             frames=linktype_frames_(lt)))
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
                fits = [r for r in RESOLUTIONS if representable(times[k], r, off)]
                if not fits:
                    off = 0
                    fits = [r for r in RESOLUTIONS if representable(times[k], r, 0)]
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
                    if weighted(draw, [(8, "epb"), (2, "opb")]) == "epb":
                        blocks.append(epb(k, ts, r.frame, orig_len=r.orig_len, options=_packet_options(draw, bo),
                                          byteorder=bo))
                    else:
                        blocks.append(opb(k, ts, r.frame, orig_len=r.orig_len, drops=draw(st.integers(0, 3)),
                                          options=_packet_options(draw, bo), byteorder=bo))
                _maybe_junk(draw, blocks, bo, next_if)
        return pcapng(blocks), classic

    def _kw(draw):
        kw = {
            "bucket_ms": weighted(draw, [(6, 100), (2, 1), (2, 7), (2, 1000)]),
            "bridge_ip": weighted(draw, [(4, BRIDGE_IP), (1, "10.200.0.2"), (1, "192.168.1.10")]),
            "t_mono_origin_ns": weighted(draw, [(4, 0), (1, 1_700_000_000_000_000_000), (1, "any")]),
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
    def pcapng_captures_(draw, max_records=20, errors=False, linktypes=None):
        kw = _kw(draw)
        pool = list(linktypes or CAPTURE_LINKTYPES)
        shape = weighted(draw, [(16, "normal"), (2, "tail"), (1, "short")] + ([(4, "error")] if errors else []))
        if shape == "short":
            whole = shb(byteorder=draw(st.sampled_from(["little", "big"])))
            return whole[: draw(st.integers(0, len(whole) - 1))], kw
        cap_ns = None
        if kw["max_gap_s"] is not None:
            from fractions import Fraction

            cap_ns = int(Fraction(str(kw["max_gap_s"])) * 1_000_000_000)
        recs = draw(records_(max_size=max_records, nsec=True, bucket_ms=kw["bucket_ms"],
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
                off = weighted(draw, [(6, 0), (1, "small"), (1, "negative")])
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
                    kind = weighted(draw, [(8, "epb"), (2, "opb")] + ([(2, "spb")] if spb_ok else []))
                    if kind == "spb":
                        lt = ifaces[0][0]
                    frame = draw(linktype_frames_(lt))
                    orig = weighted(draw, [(8, None), (2, "more"), (1, "less")])
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
                whole = epb(0, draw(st.integers(0, _U32)), draw(linktype_frames_(ifaces[0][0])), byteorder=bo)
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
    def compressed_(draw, data_strategy, truncate=True, multi=False, corrupt=False):
        value = draw(data_strategy)
        data, rest = (value[0], value[1:]) if isinstance(value, tuple) else (value, None)
        kind = weighted(draw, [(5, None)] + [(2, k) for k in COMPRESSIONS])
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
            if truncate and weighted(draw, [(4, False), (1, True)]):
                data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
            if corrupt and data and weighted(draw, [(2, False), (1, True)]):
                where = draw(st.integers(0, len(data) - 1))
                data = data[:where] + bytes([data[where] ^ draw(st.integers(1, 255))]) + data[where + 1 :]
        return data if rest is None else (data, *rest)

    _CACHE.update(frames=frames_, records=records_, captures=captures_, linktype_frames=linktype_frames_,
                  pcapng_twins=pcapng_twins_, pcapng_captures=pcapng_captures_, compressed=compressed_)
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


def linktype_frames(linktype: int):
    """Strategy: frames for ``linktype``.  For the decoded link types, the network layer of
    ``frames()`` (IPv4 TCP/UDP/odd cases, IPv6, ARP, VLAN, garbage) behind that link's
    header with the matching protocol/family, plus frames shorter than the link header and
    non-IPv4 protocols (other SLL protocols, NULL/LOOP families, RAW version nibbles) that
    still carry an IPv4 packet.  Ethernet: ``frames()`` itself.  Other link types:
    anything (Ethernet frames, bare IPv4, random bytes), which must count by size only."""
    return _hyp()["linktype_frames"](linktype)


def pcapng_twins(max_records: int = 20, *, linktypes=None, allow_huge: bool = False, bucket_ms: int = 100):
    """Strategy: ``(pcapng_bytes, pcap_bytes)`` holding the same packets (same t_ns, frames,
    order): a nanosecond classic pcap (either byte order) with one link type, and a pcapng
    split into 1-3 sections of random byte order, each with 1-3 IDBs of that link type
    (some described mid-section), per-interface if_tsresol/if_tsoffset chosen so every
    timestamp is exact, EPBs and some obsolete PBs, with and without options, NRB/ISB/DSB/
    custom/unknown blocks sprinkled in.  Both must give identical rows.  Day-long jumps
    only with ``allow_huge`` (then use a gap cap)."""
    return _hyp()["pcapng_twins"](max_records=max_records, linktypes=linktypes, allow_huge=allow_huge,
                                  bucket_ms=bucket_ms)


def pcapng_captures(max_records: int = 20, *, errors: bool = False, linktypes=None):
    """Strategy: ``(file_bytes, oracle_kwargs)`` for arbitrary pcapng files: 1-3 sections,
    interfaces of mixed link types (CAPTURE_LINKTYPES), any if_tsresol/if_tsoffset/snap
    length, EPB/PB/SPB (SPB only when a gap cap is set: its t_ns is 0), junk blocks, a
    partial trailing block or a cut first SHB.  ``errors=True`` adds corrupt files: bad
    block lengths, mismatched trailer, packets on undescribed interfaces, captured length
    larger than the block or the link type allows, fields missing, bad byte-order magic,
    major version other than 1."""
    return _hyp()["pcapng_captures"](max_records=max_records, errors=errors, linktypes=linktypes)


def compressed(data_strategy, *, truncate: bool = True, multi: bool = False, corrupt: bool = False):
    """Strategy: what ``data_strategy`` draws (bytes, or a tuple whose first item is the
    bytes), compressed as gzip, zstd (with or without content size / checksum), xz, bzip2 or
    lz4 (or left alone), and with ``truncate`` sometimes cut short anywhere.  ``multi``:
    sometimes several concatenated members/frames/streams.  ``corrupt``: sometimes one
    byte of the compressed data changed (the error offset then depends on how far the
    decoder got: the oracle feeds it byte by byte around the fault)."""
    return _hyp()["compressed"](data_strategy, truncate=truncate, multi=multi, corrupt=corrupt)


# ---------------------------------------------------------------------------
# Hypothesis strategies for the extended decode (data-model.md "Extended decode")
# ---------------------------------------------------------------------------

EXT_LINKTYPES = (1, 113, 276, 101, 229, 0)  # the link types extended_captures() draws from
V4_POOL = ["10.200.0.1", "10.200.0.2", "8.8.8.8", "192.168.1.10", "0.0.0.1"]
V6_POOL = ["fd00::1", "fd00::2", "2001:db8::1", "::ffff:10.200.0.1", "::1", "fe80::1", "::"]
# host_ips candidates: the bridge, two IPv6 hosts, a second IPv4 host, a mapped address and
# a non-canonical spelling of fd00::1
HOST_IP_POOL = ["10.200.0.1", "fd00::1", "10.200.0.2", "fd00::2", "::ffff:10.200.0.1", "FD00:0::1"]

_EXT_CACHE: dict = {}


def _hyp_ext():
    """Build (once) and return the extended strategies; imports hypothesis lazily."""
    if _EXT_CACHE:
        return _EXT_CACHE
    from hypothesis import strategies as st

    base = _hyp()
    records_ = base["records"]

    def weighted(draw, choices):
        flat = [v for w, v in choices for _ in range(w)]
        return draw(st.sampled_from(flat))

    def port(draw):
        return draw(st.sampled_from(PORT_POOL)) if draw(st.integers(0, 4)) else draw(st.integers(0, 65535))

    def flags(draw):
        return draw(st.sampled_from(FLAG_POOL)) if draw(st.integers(0, 4)) else draw(st.integers(0, 0xFFF))

    def transport(draw, proto):
        """A transport payload for ``proto``; sometimes cut short of its header."""
        if proto == 6:
            seg = tcp(port(draw), port(draw), flags=flags(draw), payload=draw(st.binary(max_size=12)))
            short = 20
        elif proto == 17:
            dport = weighted(draw, [(3, 53), (1, 0), (3, "any")])
            seg = udp(port(draw), port(draw) if dport == "any" else dport, payload=draw(st.binary(max_size=12)))
            short = 8
        elif proto == 58:
            return icmpv6(draw(st.sampled_from([128, 129, 135, 1])), payload=draw(st.binary(max_size=12)))
        else:
            return draw(st.binary(max_size=24))
        if weighted(draw, [(8, False), (1, True)]):
            seg = seg[: draw(st.integers(0, short - 1))]
        return seg

    def v4(draw):
        return draw(st.sampled_from(V4_POOL)) if draw(st.integers(0, 5)) else draw(st.binary(min_size=4, max_size=4))

    def v6(draw):
        return draw(st.sampled_from(V6_POOL)) if draw(st.integers(0, 5)) else draw(st.binary(min_size=16, max_size=16))

    def net_ipv4(draw):
        proto = weighted(draw, [(4, 6), (3, 17), (1, 1), (1, 47), (1, 4), (1, 41), (1, 50)])
        kind = weighted(draw, [(10, "plain"), (3, "bad_version"), (2, "first_frag"), (3, "frag"),
                               (1, "options"), (1, "bad_ihl")])
        kw = dict(src=v4(draw), dst=v4(draw), proto=proto, ident=draw(st.integers(0, 0xFFFF)))
        body = transport(draw, proto)
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

    def net_ipv6(draw):
        proto = weighted(draw, [(4, 6), (3, 17), (2, 58), (1, 59), (1, 50), (1, 4), (1, 41)])
        payload = transport(draw, proto)
        n = weighted(draw, [(3, 0), (3, 1), (2, 2), (1, 3), (1, 4)])
        headers = []
        for _ in range(n):
            kind = weighted(draw, EXT_CHOICES)
            kw = {}
            if kind == "fragment":
                kw["offset"] = weighted(draw, [(2, 0), (2, "any")])
                if kw["offset"] == "any":
                    kw["offset"] = draw(st.integers(1, 0x1FFF))
                kw["more"] = draw(st.booleans())
                kw["ident"] = draw(st.integers(0, _U32))
            elif kind == "ah":
                kw["length"] = weighted(draw, [(3, 1), (2, 4), (1, "any")])
                if kw["length"] == "any":
                    kw["length"] = draw(st.integers(0, 255))
            else:
                kw["length"] = weighted(draw, [(3, 0), (2, 1), (1, "any")])
                if kw["length"] == "any":
                    kw["length"] = draw(st.integers(0, 255))
            headers.append((kind, kw))
        first, body = ipv6_exts(payload, headers, next_header=proto)
        pkt = ipv6(body, src=v6(draw), dst=v6(draw), next_header=first, hop_limit=draw(st.integers(0, 255)))
        kind = weighted(draw, [(10, "plain"), (3, "cut_in_chain"), (1, "bad_version"), (1, "short")])
        if kind == "cut_in_chain":  # truncated inside (or just after) the extension headers
            pkt = pkt[: draw(st.integers(40, max(40, len(pkt) - len(payload))))]
        elif kind == "bad_version":
            pkt = bytes([(draw(st.sampled_from([0, 4, 5, 15])) << 4) | (pkt[0] & 0x0F)]) + pkt[1:]
        elif kind == "short":
            pkt = pkt[: draw(st.integers(0, 39))]
        elif draw(st.integers(0, 7)) == 0:  # a lying payload length
            pkt = pkt[:4] + struct.pack(">H", draw(st.integers(0, 0xFFFF))) + pkt[6:]
        return 0x86DD, pkt

    def net_other(draw):
        kind = weighted(draw, [(2, "arp"), (1, "random"), (1, "v4_as_v6"), (1, "v6_as_v4")])
        if kind == "arp":
            return 0x0806, arp()
        if kind == "random":
            return draw(st.sampled_from([0x0800, 0x86DD, 0x88CC, 0x8847])), draw(st.binary(max_size=60))
        if kind == "v4_as_v6":  # an IPv4 packet where the link says IPv6
            return 0x86DD, net_ipv4(draw)[1]
        return 0x0800, net_ipv6(draw)[1]  # an IPv6 packet where the link says IPv4

    def network(draw):
        return weighted(draw, [(8, net_ipv4), (8, net_ipv6), (1, net_other)])(draw)

    def tags(draw):
        n = weighted(draw, [(6, 0), (3, 1), (3, 2), (1, 3)])
        return [(draw(st.sampled_from(VLAN_TPIDS)), draw(st.integers(0, 4095))) for _ in range(n)]

    def maybe_cut(draw, frame):
        kind = weighted(draw, [(14, "none"), (3, "pad"), (2, "cut")])
        if kind == "pad":
            return frame.ljust(60, b"\0") if draw(st.booleans()) else frame + draw(st.binary(min_size=1, max_size=16))
        if kind == "cut":
            return frame[: draw(st.integers(0, len(frame)))]
        return frame

    @st.composite
    def extended_frames_(draw):
        ethertype, net = network(draw)
        return maybe_cut(draw, vlan_tags(net, tags=tags(draw), inner_ethertype=ethertype))

    @st.composite
    def extended_linktype_frames_(draw, linktype):
        ethertype, net = network(draw)
        if linktype in (1, 113, 276):
            return maybe_cut(draw, vlan_tags(net, tags=tags(draw), inner_ethertype=ethertype, linktype=linktype))
        if linktype in (101, 12, 14, 228, 229):
            return maybe_cut(draw, net)
        if linktype in (0, 108):
            if ethertype == 0x0800:
                family = 2
            elif ethertype == 0x86DD:
                family = draw(st.sampled_from(AF_INET6_FAMILIES))
            else:
                family = draw(st.sampled_from([0, 7, 17, 0xFFFF]))
            if linktype == 0:
                return maybe_cut(draw, null(net, family=family, byteorder=draw(st.sampled_from(["little", "big"]))))
            return maybe_cut(draw, loop(net, family=family))
        raise ValueError(f"no extended frames for link type {linktype}")

    def host_ips(draw):
        kind = weighted(draw, [(1, None), (1, "empty"), (3, "v4"), (3, "v6"), (4, "both")])
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

    @st.composite
    def extended_captures_(draw, max_records=20, linktypes=EXT_LINKTYPES):
        kw = {
            "bucket_ms": weighted(draw, [(6, 100), (2, 1), (2, 1000)]),
            "bridge_ip": weighted(draw, [(4, BRIDGE_IP), (1, "10.200.0.2")]),
            "max_gap_s": draw(st.sampled_from([None, 0, 5, 3600])),
            "decode": "extended",
            "host_ips": host_ips(draw),
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
        recs = draw(records_(max_size=max_records, nsec=nsec, bucket_ms=kw["bucket_ms"],
                             allow_huge=kw["max_gap_s"] is not None, frames=st.just(b"")))
        ifaces = []
        for r in recs:
            k = draw(st.integers(0, len(lts) - 1))
            ifaces.append(k)
            r.frame = draw(extended_linktype_frames_(lts[k]))
            orig = weighted(draw, [(6, "same"), (3, "more"), (1, "less")])
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

    _EXT_CACHE.update(extended_frames=extended_frames_, extended_linktype_frames=extended_linktype_frames_,
                      extended_captures=extended_captures_)
    return _EXT_CACHE


def extended_frames():
    """Strategy: Ethernet frames for the extended decode: 0-3 stacked VLAN tags (0x8100,
    0x88A8, 0x9100) before IPv4 (good, bad version nibbles, first and non-first fragments,
    options, bad IHL, short transport headers) or IPv6 (random chains of hop-by-hop,
    routing, destination options, fragment (offset 0 or not) and AH headers of random
    lengths, sometimes cut inside the chain, bad version nibbles, short headers, lying
    payload lengths) carrying TCP, UDP (often port 53), ICMPv6 or other protocols, plus
    ARP, garbage and cross-family packets; sometimes padded or truncated anywhere.
    Addresses come from small pools (V4_POOL, V6_POOL) holding the host addresses
    10.200.0.1 and fd00::1."""
    return _hyp_ext()["extended_frames"]()


def extended_linktype_frames(linktype: int):
    """Strategy: ``extended_frames()``'s packets behind the link header of ``linktype``
    (1, 113, 276 with VLAN tags; 101/12/14/228/229 bare; 0/108 with AF_INET, an IPv6 family
    or another one)."""
    return _hyp_ext()["extended_linktype_frames"](linktype)


def extended_captures(max_records: int = 20, *, linktypes=EXT_LINKTYPES):
    """Strategy: ``(file_bytes, oracle_kwargs)`` with ``decode="extended"``, a random
    ``host_ips`` list (IPv4 only, IPv6 only, both, empty, or absent: the bridge IP) and
    ``size`` "captured" or "wire"; classic pcap (either byte order, µs or ns) with one link
    type, or pcapng with one or two interfaces (EPB and obsolete PB), link types from
    ``linktypes`` (default 1, 113, 276, 101, 229, 0), original lengths equal to, above or
    below the captured length."""
    return _hyp_ext()["extended_captures"](max_records=max_records, linktypes=tuple(linktypes))
