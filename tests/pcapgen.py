"""Builders for hand-made pcap captures.

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

The Hypothesis strategies built on these are in ``strategies.py``; this module does not
import Hypothesis, so the tests that only build bytes run without it.
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
    "COMPRESSIONS", "compress", "record_offsets",
    "PPP_PROTOCOLS", "ppp_field", "pppoe", "mpls", "pbb", "vntag", "chdlc", "ppp", "fddi", "nflog",
    "wlan", "radiotap", "ppi",
    "gre", "erspan2", "erspan3", "vxlan", "geneve", "gtpu", "tzsp",
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


def record_offsets(data: bytes) -> list[tuple[int, int]]:
    """``(offset, length)`` of each record (classic pcap, after the global header) or block
    (pcapng) of a well-formed uncompressed capture, in order, as far as whole ones go: where
    to aim a corruption."""
    out = []
    if data[:4] == SHB_TYPE.to_bytes(4, "little"):
        pos, bo = 0, "<"
        while len(data) - pos >= 12:
            if data[pos:pos + 4] == SHB_TYPE.to_bytes(4, "little"):
                bo = "<" if data[pos + 8:pos + 12] == struct.pack("<I", BYTE_ORDER_MAGIC) else ">"
            (length,) = struct.unpack_from(bo + "I", data, pos + 4)
            if length < 12 or pos + length > len(data):
                break
            out.append((pos, length))
            pos += length
        return out
    bo = ">" if data[:4] in (struct.pack(">I", MAGIC_USEC), struct.pack(">I", MAGIC_NSEC)) else "<"
    pos = 24
    while len(data) - pos >= 16:
        (incl,) = struct.unpack_from(bo + "I", data, pos + 8)
        if pos + 16 + incl > len(data):
            break
        out.append((pos, 16 + incl))
        pos += 16 + incl
    return out


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


# -- encapsulations and link types of the extended decode (docs/data-model.md) ------------

PPP_PROTOCOLS = {0x0800: 0x0021, 0x86DD: 0x0057, 0x8847: 0x0281, 0x8848: 0x0283}


def ppp_field(protocol: int, *, compressed: bool = False) -> bytes:
    """A PPP protocol field: one byte when ``compressed`` (protocol field compression)."""
    return bytes([protocol & 0xFF]) if compressed else struct.pack(">H", protocol)


def pppoe(payload: bytes = b"", *, protocol: int = 0x0021, session: int = 0x1234, compressed: bool = False) -> bytes:
    """A PPPoE session header (version/type 0x11, code 0, session, length) and PPP protocol:
    the bytes after Ethernet type 0x8864."""
    field = ppp_field(protocol, compressed=compressed)
    return struct.pack(">BBHH", 0x11, 0, session, len(field) + len(payload)) + field + bytes(payload)


def mpls(payload: bytes = b"", *, labels=(16,), ttl: int = 64) -> bytes:
    """An MPLS label stack (outermost first, bottom-of-stack bit on the last): the bytes after
    Ethernet type 0x8847."""
    out = b""
    for i, label in enumerate(labels):
        out += struct.pack(">I", (label & 0xFFFFF) << 12 | (1 << 8 if i == len(labels) - 1 else 0) | ttl)
    return out + bytes(payload)


def pbb(payload: bytes = b"", *, ethertype: int = 0x0800, isid: int = 0x10203,
        dst: bytes = mac(3), src: bytes = mac(4)) -> bytes:
    """An 802.1ah I-TAG, customer addresses and type: the bytes after Ethernet type 0x88E7."""
    return struct.pack(">I", isid & 0xFFFFFF) + bytes(dst) + bytes(src) + struct.pack(">H", ethertype) + bytes(payload)


def vntag(payload: bytes = b"", *, ethertype: int = 0x0800, tag: int = 0x00010002) -> bytes:
    """A VN-Tag and type: the bytes after Ethernet type 0x8926."""
    return struct.pack(">IH", tag, ethertype) + bytes(payload)


def chdlc(payload: bytes = b"", *, protocol: int = 0x0800, address: int = 0x0F) -> bytes:
    """A C_HDLC (104) frame: address, control 0, protocol."""
    return struct.pack(">BBH", address, 0, protocol) + bytes(payload)


def ppp(payload: bytes = b"", *, protocol: int = 0x0021, framed: bool = True, compressed: bool = False) -> bytes:
    """A PPP (9) / PPP_HDLC (50) frame: address 0xFF and control 0x03 when ``framed``, then the
    protocol field."""
    return (b"\xff\x03" if framed else b"") + ppp_field(protocol, compressed=compressed) + bytes(payload)


def fddi(payload: bytes = b"", *, ethertype: int = 0x0800, fc: int = 0x50, oui: bytes = b"\0\0\0") -> bytes:
    """An FDDI (10) frame: frame control, addresses, LLC/SNAP header with ``oui`` and type."""
    return bytes([fc]) + mac(1) + mac(2) + b"\xaa\xaa\x03" + bytes(oui) + struct.pack(">H", ethertype) + bytes(payload)


def wlan(payload: bytes = b"", *, ethertype: int = 0x0800, subtype: int = 0, ds: int = 1, protected: bool = False,
         order: bool = False, amsdu: bool = False, frame_type: int = 2, version: int = 0, oui: bytes = b"\0\0\0",
         llc: bool = True, pad: int = 0) -> bytes:
    """An IEEE 802.11 (105) frame: frame control (``frame_type`` 2 data; ``subtype`` 8-15
    QoS: QoS control, with ``amsdu`` its A-MSDU bit; ``order`` adds HT control to a QoS
    frame), duration, three addresses (four when ``ds`` is 3: to and from the DS), sequence
    control, ``pad`` zero bytes (radiotap's data pad), then LLC/SNAP with ``oui`` and
    ``ethertype`` (``llc``) and ``payload``."""
    fc0 = (subtype & 0xF) << 4 | (frame_type & 3) << 2 | (version & 3)
    fc1 = (ds & 3) | (0x40 if protected else 0) | (0x80 if order else 0)
    out = bytes([fc0, fc1]) + b"\0\0" + mac(1) + mac(2) + mac(3) + b"\x10\x00"
    if ds & 3 == 3:
        out += mac(4)
    if subtype & 8:
        out += bytes([0x80 if amsdu else 0, 0])
        if order:
            out += b"\0\0\0\0"
    out += bytes(pad)
    if llc:
        out += b"\xaa\xaa\x03" + bytes(oui) + struct.pack(">H", ethertype)
    return out + bytes(payload)


def radiotap(frame: bytes = b"", *, flags: int | None = None, tsft: bool = False, extra_words: int = 0,
             fields: bytes = b"", version: int = 0) -> bytes:
    """A radiotap (127) header before ``frame``: presence words (``extra_words`` more after
    the first, chained by bit 31), TSFT (8 bytes, 8-aligned) when ``tsft``, the flags byte
    when ``flags`` is given (0x10: FCS at the end, 0x20: data pad), then ``fields`` (as
    other fields' bytes) and padding to 4 bytes."""
    present = (1 if tsft else 0) | (2 if flags is not None else 0) | (0x80000000 if extra_words else 0)
    words = [present] + [0x80000000] * (extra_words - 1) + ([0] if extra_words else [])
    body = b"".join(struct.pack("<I", w) for w in words)
    at = 4 + len(body)
    if tsft:
        body += bytes(-(at) % 8) + struct.pack("<Q", 123456789)
    if flags is not None:
        body += bytes([flags & 0xFF])
    body += bytes(fields)
    body += bytes(-(4 + len(body)) % 4)
    return struct.pack("<BBH", version, 0, 4 + len(body)) + body + bytes(frame)


def ppi(frame: bytes = b"", *, dlt: int = 105, fields: bytes = b"", version: int = 0) -> bytes:
    """A PPI (192) header (version, flags, length, link type of ``frame``; ``fields`` as its
    field headers' bytes) before ``frame``."""
    return struct.pack("<BBHI", version, 0, 8 + len(fields), dlt) + bytes(fields) + bytes(frame)


def nflog(payload: bytes = b"", *, family: int = 2, byteorder: str = "little", prefix: bytes = b"fw\0",
          hw_protocol: int | None = None, tlvs=None) -> bytes:
    """An NFLOG (239) frame: header, then TLVs (length and type in ``byteorder``, each padded
    to 4 bytes): by default a packet header (``hw_protocol``, by default the family's: 0x0800,
    0x86DD, else 0; hook 3), a prefix, then the payload."""
    bo = _bo(byteorder)
    if hw_protocol is None:
        hw_protocol = {2: 0x0800, 10: 0x86DD}.get(family, 0)
    if tlvs is None:
        tlvs = [(1, struct.pack(">HBx", hw_protocol, 3)), (10, prefix), (9, bytes(payload))]
    out = struct.pack(">BBH", family, 0, 0)
    for kind, value in tlvs:
        tlv = struct.pack(bo + "HH", 4 + len(value), kind) + bytes(value)
        out += tlv + bytes(-len(tlv) % 4)
    return out


# --- tunnels (tunnels="inner", docs/data-model.md "Tunnels") --------------------------

def gre(payload: bytes = b"", *, protocol: int = 0x0800, checksum: bool = False, key: int | None = None,
        seq: int | None = None, routing: bool = False, version: int = 0, ack: int | None = None) -> bytes:
    """A GRE header (RFC 2784/2890; version 1: PPTP's enhanced GRE, ``key`` its payload length
    and call id, ``ack`` its acknowledgment number) and ``payload``: the bytes after IP protocol 47."""
    flags = ((0x8000 if checksum else 0) | (0x4000 if routing else 0) | (0x2000 if key is not None else 0)
             | (0x1000 if seq is not None else 0) | (0x0080 if ack is not None else 0) | (version & 7))
    out = struct.pack(">HH", flags, protocol)
    if checksum or routing:
        out += b"\0\0\0\0"  # checksum and offset (not computed)
    for field in (key, seq, ack):
        if field is not None:
            out += struct.pack(">I", field & 0xFFFFFFFF)
    return out + bytes(payload)


def erspan2(frame: bytes = b"", *, session: int = 1, vlan_id: int = 0, version: int = 1) -> bytes:
    """An ERSPAN type II header (8 bytes: version 1, VLAN, session, index) and the mirrored frame."""
    return struct.pack(">HHI", (version & 0xF) << 12 | (vlan_id & 0xFFF), session & 0x3FF, 7) + bytes(frame)


def erspan3(frame: bytes = b"", *, session: int = 1, platform: bytes | None = None, frame_type: int = 0) -> bytes:
    """An ERSPAN type III header (12 bytes: version 2, ..., frame type, O bit), the 8-byte
    platform-specific sub-header when ``platform`` is given, and the mirrored frame."""
    last = (frame_type & 0x1F) << 10 | (1 if platform is not None else 0)
    out = struct.pack(">HHIHH", 2 << 12, session & 0x3FF, 12345, 0, last)
    if platform is not None:
        out += bytes(platform).ljust(8, b"\0")[:8]
    return out + bytes(frame)


def vxlan(frame: bytes = b"", *, vni: int = 42, flags: int = 0x08) -> bytes:
    """A VXLAN header (flags, VNI) and the Ethernet frame it carries: the bytes after UDP 4789."""
    return struct.pack(">B3xI", flags, (vni & 0xFFFFFF) << 8) + bytes(frame)


def geneve(payload: bytes = b"", *, protocol: int = 0x6558, options: bytes = b"", vni: int = 7,
           version: int = 0) -> bytes:
    """A GENEVE header (version, options length in 4-byte words, protocol type, VNI), its
    options (padded to 4 bytes) and ``payload``: the bytes after UDP 6081."""
    options = bytes(options) + b"\0" * (-len(options) % 4)
    return (struct.pack(">BBHI", (version & 3) << 6 | (len(options) // 4), 0, protocol, (vni & 0xFFFFFF) << 8)
            + options + bytes(payload))


def tzsp(payload: bytes = b"", *, encapsulation: int = 1, tags=(), end: bool = True, version: int = 1,
         kind: int = 0) -> bytes:
    """A TZSP header (``version``, type ``kind``: 0 received, 1 to transmit; ``encapsulation``
    1 Ethernet, 18 IEEE 802.11), its tagged fields and ``payload``: the bytes after UDP 37008.
    Each of ``tags`` is ``0`` (padding, one byte), ``1`` (END, one byte, mid-list) or
    ``(tag, value)`` (tag, length, value); ``end`` closes the list with END."""
    out = struct.pack(">BBH", version & 0xFF, kind & 0xFF, encapsulation & 0xFFFF)
    for tag in tags:
        if isinstance(tag, int):
            out += bytes([tag])
        else:
            number, value = tag
            out += bytes([number & 0xFF, len(value)]) + bytes(value)
    return out + (b"\x01" if end else b"") + bytes(payload)


def gtpu(payload: bytes = b"", *, teid: int = 1, message: int = 0xFF, seq: int | None = None,
         extensions=(), version: int = 1) -> bytes:
    """A GTPv1-U header and ``payload``: the optional fields (sequence number, N-PDU number,
    next extension type) when ``seq`` or ``extensions`` are given, then the extension headers
    (each ``(type, content)``: the content padded to a multiple of 4 bytes with the length
    byte and the next type).  The bytes after UDP 2152."""
    flags = (version & 7) << 5 | 0x10 | (0x02 if seq is not None else 0) | (0x04 if extensions else 0)
    rest = b""
    if seq is not None or extensions:
        rest = struct.pack(">HBB", seq or 0, 0, extensions[0][0] if extensions else 0)
        for i, (_kind, content) in enumerate(extensions):
            following = extensions[i + 1][0] if i + 1 < len(extensions) else 0
            body = bytes(content)
            body += b"\0" * (-(len(body) + 2) % 4)
            rest += bytes([(len(body) + 2) // 4]) + body + bytes([following])
    body = rest + bytes(payload)
    return struct.pack(">BBHI", flags, message & 0xFF, len(body), teid) + body
