"""A deliberately naive, sequential oracle for the bucketize contract.

Written straight from ``../shared/spec/semantics.md`` and the section "Containers,
compression and link types" of ``docs/data-model.md`` (plus the decisions listed in
``oracle()``'s docstring), without looking at fastpcap's implementation, so that the
two can be compared in differential tests.  Clarity over speed: the whole file is held
in memory (decompressed if need be), one Python loop over records or blocks, one dict
per bucket, ``json.dumps(row)`` per row.  Standard library only, plus ``zstandard`` and
``lz4.frame``, imported only when a zstd or lz4 file has to be decompressed.

    >>> oracle_jsonl(b"")
    b''

The opt-in "Extended decode" of ``docs/data-model.md`` (VLAN/QinQ tags, the IPv4 version
check and fragments, IPv6 with its extension headers, host addresses of either family,
wire sizes) is ``oracle(data, decode="extended", host_ips=[...], size="wire")``;
``decode_packet(frame, linktype, extended)`` exposes the per-packet decode of either mode.

The corrupt-record policies of ``docs/data-model.md`` ("Corrupt records") are
``oracle(data, on_corrupt="stop" | "resync")``: the resync tries every byte offset after the
corrupt record's first one, naively, with the checks the doc lists (``pcap_plausible``,
``pcapng_plausible``); ``result.skipped`` lists the regions, ``result.stopped_at`` the offset
a stop ended at.
"""

from __future__ import annotations

import bz2
import ipaddress
import json
import lzma
import math
import struct
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

__all__ = [
    "OracleError", "OracleResult", "oracle", "oracle_jsonl", "decompress", "walk",
    "decode_frame", "LINKTYPE_MAX_INCL_LEN", "DECODED_LINKTYPES", "EXTENDED_LINKTYPES", "COMPRESSION_MAGICS",
    "decode_packet", "walk_records", "capture_records", "Record", "parse_host_ips",
    "DECODES", "SIZES", "VLAN_TPIDS", "IPV6_EXT_HEADERS", "ON_CORRUPT", "pcap_plausible", "pcapng_plausible",
    "DEC_LINK", "DEC_IPV4", "DEC_PORTS", "DEC_IPV6", "DEC_FRAGMENT",
]


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

GLOBAL_HEADER_SIZE = 24
RECORD_HEADER_SIZE = 16

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D

# The four byte encodings of a valid magic -> (struct byte-order prefix, nanosecond?)
MAGIC_ENCODINGS = {
    struct.pack("<I", MAGIC_USEC): ("<", False),
    struct.pack(">I", MAGIC_USEC): (">", False),
    struct.pack("<I", MAGIC_NSEC): ("<", True),
    struct.pack(">I", MAGIC_NSEC): (">", True),
}

LINKTYPE_ETHERNET = 1

# libpcap's per-link-type maximum for a record's incl_len; every other link type: 262144.
LINKTYPE_MAX_INCL_LEN = {
    231: 134217728,  # LINKTYPE_DBUS
    279: 8388608,  # LINKTYPE_EBHSCR
    249: 1048576,  # LINKTYPE_USBPCAP
}
DEFAULT_MAX_INCL_LEN = 262144

# Link types whose header is decoded (data-model.md, "Link types").  Every other link type
# counts by size only and is reported in ``OracleResult.undecoded``.
LINKTYPE_NULL = 0
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD = (12, 14)
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
DECODED_LINKTYPES = frozenset({1, 113, 276, 101, 12, 14, 228, 229, 0, 108})
# ... and those the extended decode adds (data-model.md, "Extended decode", step 6)
LINKTYPE_PPP, LINKTYPE_FDDI, LINKTYPE_PPP_HDLC, LINKTYPE_C_HDLC, LINKTYPE_NFLOG = 9, 10, 50, 104, 239
LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP, LINKTYPE_PPI = 105, 127, 192
EXTENDED_LINKTYPES = DECODED_LINKTYPES | {LINKTYPE_PPP, LINKTYPE_FDDI, LINKTYPE_PPP_HDLC, LINKTYPE_C_HDLC,
                                          LINKTYPE_NFLOG, LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP, LINKTYPE_PPI}

# Compression, detected by the first bytes (data-model.md, "Compression").
COMPRESSION_MAGICS = {
    "gzip": b"\x1f\x8b",
    "zstd": b"\x28\xb5\x2f\xfd",
    "xz": b"\xfd\x37\x7a\x58\x5a\x00",
    "bzip2": b"\x42\x5a\x68",
    "lz4": b"\x04\x22\x4d\x18",
}
DECOMPRESS_CHUNK = 1 << 16

# pcapng (data-model.md, "pcapng")
SHB_TYPE = b"\x0a\x0d\x0d\x0a"  # the same bytes in both byte orders
BYTE_ORDER_MAGIC = 0x1A2B3C4D
BOM_ENCODINGS = {struct.pack("<I", BYTE_ORDER_MAGIC): "<", struct.pack(">I", BYTE_ORDER_MAGIC): ">"}
BT_IDB, BT_PB, BT_SPB, BT_EPB = 1, 2, 3, 6
PACKET_BLOCKS = (BT_PB, BT_SPB, BT_EPB)
MAX_BLOCK_LEN = 16 * 1024 * 1024
BLOCK_SLACK = 1024 * 1024  # "the largest record the section's link types allow, plus 1 MiB"
# smallest total length of each block type whose body is read: 12 + the fixed body fields
MIN_BLOCK_LEN = {
    "SHB": 12 + 16,  # BOM, major, minor, section length
    BT_IDB: 12 + 8,  # link type, reserved, snap length
    BT_EPB: 12 + 20,  # interface, ts high, ts low, captured length, original length
    BT_PB: 12 + 20,  # interface (u16), drops (u16), ts high, ts low, captured, original
    BT_SPB: 12 + 4,  # original length
}
BLOCK_NAMES = {BT_IDB: "IDB", BT_PB: "packet block", BT_SPB: "SPB", BT_EPB: "EPB"}
OPT_ENDOFOPT, OPT_IF_TSRESOL, OPT_IF_TSOFFSET = 0, 9, 14

# Corrupt records (data-model.md, "Corrupt records")
ON_CORRUPT = ("error", "stop", "resync")
DAY_NS = 86_400 * 1_000_000_000  # how far a plausible record's time may be from its neighbour's
KNOWN_BLOCK_TYPES = frozenset(range(1, 11)) | {0xBAD, 0x40000BAD}  # besides the SHB

SOURCE = "bridge_pcap"
AVAILABLE_IN_DEPLOYMENT = True

# TCP flag bits (spec section 2, step 5)
FIN, SYN, RST, PSH, ACK, URG = 1, 2, 4, 8, 16, 32


# ---------------------------------------------------------------------------
# Public result types
# ---------------------------------------------------------------------------


class OracleError(Exception):
    """The input is not a capture the contract accepts."""

    def __init__(self, offset: int, problem: str):
        super().__init__(f"at byte offset {offset}: {problem}")
        self.offset = offset
        self.problem = problem


@dataclass
class OracleResult:
    rows: list = field(default_factory=list)  # list[dict], in emission order
    jsonl: bytes = b""
    packets: int = 0
    gaps_cut: int = 0
    rows_cut: int = 0
    first_cut_packet: int | None = None
    first_cut_offset: int | None = None  # pcapng: the packet's block; compressed: decompressed bytes
    undecoded_linktype: int | None = None  # classic pcap only: the header's link type if not decoded
    truncated_tail: bool = False  # a partial record / block (not a partial first header) ended the walk
    format: str = ""  # "pcap", "pcapng", or "" (no bytes, or fewer than the 4 magic bytes)
    compression: str | None = None  # "gzip", "zstd", "xz", "bzip2", "lz4" or None
    undecoded: dict = field(default_factory=dict)  # {link type: frames counted by size only}
    linktypes: list = field(default_factory=list)  # classic: [header's]; pcapng: every IDB's, in order
    truncated_stream: bool = False  # the compressed stream ended before its end marker
    int64_times: bool = True  # refuse a packet time int64 ns cannot hold (off: frames only)
    on_corrupt: str = "error"  # "error", "stop" or "resync"
    skipped: list = field(default_factory=list)  # resync: [(offset, length)] of each skipped region
    stopped_at: int | None = None  # stop: the corrupt record's offset


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def max_incl_len(linktype: int) -> int:
    return LINKTYPE_MAX_INCL_LEN.get(linktype, DEFAULT_MAX_INCL_LEN)


def max_gap_to_ns(max_gap_s) -> int | None:
    """Seconds (None, int, float, Fraction, Decimal) -> exact integer nanoseconds, floored.

    Floats go through ``str()`` so that 0.3 means 3/10 s exactly (300000000 ns), not the
    binary double just below it.  ``+inf`` behaves like None (no cap).
    """
    if max_gap_s is None:
        return None
    if isinstance(max_gap_s, float):
        if math.isnan(max_gap_s):
            raise ValueError("max_gap_s must not be NaN")
        if math.isinf(max_gap_s):
            if max_gap_s > 0:
                return None
            raise ValueError("max_gap_s must not be negative")
        seconds = Fraction(str(max_gap_s))
    elif isinstance(max_gap_s, Decimal):
        seconds = Fraction(max_gap_s)
    elif isinstance(max_gap_s, (int, Fraction)):
        seconds = Fraction(max_gap_s)
    else:
        raise TypeError(f"max_gap_s must be None or a number, not {type(max_gap_s).__name__}")
    if seconds < 0:
        raise ValueError("max_gap_s must not be negative")
    return math.floor(seconds * 1_000_000_000)


def dotted(addr4: bytes) -> str:
    return ".".join(str(b) for b in addr4)


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


# ---------------------------------------------------------------------------
# Decode: link layer (data-model.md "Link types"), then spec section 2 from step 3
# ---------------------------------------------------------------------------


def decode_ipv4(ip: bytes, d: dict) -> dict:
    """Spec section 2, steps 3-5, on the bytes where the IPv4 header should start."""
    # 3. IPv4 header sanity: only length and IHL are checked
    if len(ip) < 20:
        return d
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20 or len(ip) < ihl:
        return d
    # 4. addresses and protocol; the payload keeps any link-layer padding
    d["ip_proto"] = ip[9]
    d["src_ip"] = dotted(ip[12:16])
    d["dst_ip"] = dotted(ip[16:20])
    payload = ip[ihl:]
    # 5. ports (and TCP flags) only when the transport header is complete
    if ip[9] == 6 and len(payload) >= 20:
        d["src_port"] = (payload[0] << 8) | payload[1]
        d["dst_port"] = (payload[2] << 8) | payload[3]
        d["tcp_flags"] = ((payload[12] << 8) | payload[13]) & 0x3F
    elif ip[9] == 17 and len(payload) >= 8:
        d["src_port"] = (payload[0] << 8) | payload[1]
        d["dst_port"] = (payload[2] << 8) | payload[3]
    return d


def decode_ethernet(frame: bytes) -> dict:
    """Spec section 2.  Returns a dict with "size" and whatever was decoded among
    "ip_proto", "src_ip", "dst_ip" (dotted strings), "src_port", "dst_port", "tcp_flags"."""
    return decode_frame(frame, LINKTYPE_ETHERNET)


def link_ipv4_offset(frame: bytes, linktype: int) -> int | None:
    """Where the IPv4 header starts in ``frame`` for ``linktype``, or None when the frame
    carries no IPv4 by the link type's rule (or is shorter than its link header, or the
    link type is not decoded)."""
    n = len(frame)
    if linktype == LINKTYPE_ETHERNET:
        if n >= 14 and (frame[12] << 8 | frame[13]) == 0x0800:
            return 14
        return None
    if linktype == LINKTYPE_LINUX_SLL:
        if n >= 16 and (frame[14] << 8 | frame[15]) == 0x0800:
            return 16
        return None
    if linktype == LINKTYPE_LINUX_SLL2:
        if n >= 20 and (frame[0] << 8 | frame[1]) == 0x0800:
            return 20
        return None
    if linktype == LINKTYPE_RAW or linktype in LINKTYPE_RAW_BSD:
        if n >= 1 and frame[0] >> 4 == 4:
            return 0
        return None
    if linktype == LINKTYPE_IPV4:
        return 0
    if linktype == LINKTYPE_NULL:
        # address family in the capturing host's byte order: AF_INET (2) read either way
        if n >= 4 and frame[:4] in (b"\x02\x00\x00\x00", b"\x00\x00\x00\x02"):
            return 4
        return None
    if linktype == LINKTYPE_LOOP:
        if n >= 4 and frame[:4] == b"\x00\x00\x00\x02":
            return 4
        return None
    return None  # IPV6 (229) and every link type not decoded


def decode_frame(frame: bytes, linktype: int) -> dict:
    """The decode of one frame: {"size": len(frame)} plus whatever spec section 2 steps
    3-5 found after the link header (see ``decode_ipv4``)."""
    d = {"size": len(frame)}
    off = link_ipv4_offset(frame, linktype)
    if off is None:
        return d
    return decode_ipv4(frame[off:], d)


# ---------------------------------------------------------------------------
# Extended decode (data-model.md, "Extended decode (opt-in)")
# ---------------------------------------------------------------------------

DECODES = ("reference", "extended")
SIZES = ("captured", "wire")

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad, old QinQ
AF_INET6_FAMILIES = frozenset({10, 24, 28, 30})  # Linux, BSDs, FreeBSD, macOS

# IPv6 extension headers the walk follows: next-header value -> name
IPV6_HOPOPTS, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_AH, IPV6_DSTOPTS = 0, 43, 44, 51, 60
IPV6_EXT_HEADERS = {IPV6_HOPOPTS: "hopopts", IPV6_ROUTING: "routing", IPV6_FRAGMENT: "fragment",
                    IPV6_AH: "ah", IPV6_DSTOPTS: "dstopts"}

# bits of ``decoded`` (data-model.md; DEC_IPV6 and DEC_FRAGMENT only in extended mode)
DEC_LINK, DEC_IPV4, DEC_PORTS, DEC_IPV6, DEC_FRAGMENT = 1, 2, 4, 8, 16


def _be16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def link_layer(frame: bytes, linktype: int, extended: bool):
    """The link layer of ``frame``: ``(ethertype, network_offset, walked)``, or None when
    the link header is not all there or the link type is not decoded (size only).

    ``ethertype`` is the link's protocol type (Ethernet type, SLL protocol) -- with
    ``extended``, the innermost one after the VLAN tags -- and for the other link types
    0x0800 / 0x86DD when the link says IPv4 / IPv6 (RAW: the version nibble; NULL/LOOP: the
    address family), else 0.  IPV4 (228) and IPV6 (229) always say 0x0800 / 0x86DD."""
    n = len(frame)
    if linktype in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
        # (where the protocol type is, where the header ends)
        type_at, off = {LINKTYPE_ETHERNET: (12, 14), LINKTYPE_LINUX_SLL: (14, 16),
                        LINKTYPE_LINUX_SLL2: (0, 20)}[linktype]
        if n < off:
            return None
        ethertype = _be16(frame, type_at)
        if extended:  # 1. the encapsulation walk
            return walk_encapsulations(frame, ethertype, off)
        return ethertype, off, ()
    if linktype == LINKTYPE_RAW or linktype in LINKTYPE_RAW_BSD:
        if n < 1:
            return None
        version = frame[0] >> 4
        return (ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0), 0, ()
    if linktype == LINKTYPE_IPV4:
        return ETHERTYPE_IPV4, 0, ()
    if linktype == LINKTYPE_IPV6:
        return ETHERTYPE_IPV6, 0, ()
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            return None
        if linktype == LINKTYPE_NULL:  # the capturing host's byte order: either reading
            families = {struct.unpack("<I", frame[:4])[0], struct.unpack(">I", frame[:4])[0]}
        else:  # LOOP: big-endian
            families = {struct.unpack(">I", frame[:4])[0]}
        if 2 in families:
            return ETHERTYPE_IPV4, 4, ()
        if families & AF_INET6_FAMILIES:
            return ETHERTYPE_IPV6, 4, ()
        return 0, 4, ()
    return None


# The encapsulation walk of the extended decode (data-model.md, "Extended decode", step 1)
MAX_HEADERS = 8
PPP_TYPES = {0x0021: ETHERTYPE_IPV4, 0x0057: ETHERTYPE_IPV6, 0x0281: 0x8847, 0x0283: 0x8848}
ETHERTYPE_PPPOE, ETHERTYPE_PBB, ETHERTYPE_VNTAG = 0x8864, 0x88E7, 0x8926
ETHERTYPE_MPLS = (0x8847, 0x8848)
# bits of an extended-decode packet's ``encap`` (data-model.md, "Extended decode")
ENC_VLAN, ENC_MPLS, ENC_PPPOE, ENC_PBB, ENC_VNTAG = 1, 2, 4, 8, 16
ENC_GRE, ENC_PPTP, ENC_ERSPAN, ENC_ARUBA = 32, 64, 128, 256
ENC_VXLAN, ENC_GENEVE, ENC_GTPU, ENC_IPIP, ENC_TZSP = 512, 1024, 2048, 4096, 8192


def ppp_protocol(frame: bytes, at: int):
    """The PPP protocol field at ``at``: ``(protocol, offset after it)``, or None when it is not
    all captured.  One byte when that byte is odd (field compression), else two, big-endian."""
    if at >= len(frame):
        return None
    if frame[at] & 1:
        return frame[at], at + 1
    if len(frame) - at < 2:
        return None
    return _be16(frame, at), at + 2


def walk_encapsulations(frame: bytes, ethertype: int, off: int, limit: int = MAX_HEADERS):
    """``(ethertype, network_offset, walked)`` after walking VLAN tags, PPPoE, MPLS label
    stack entries, PBB and VN-Tag headers, at most ``limit`` of them; ``walked`` holds each
    header's ENC_* bit, in order."""
    n = len(frame)
    walked: tuple[int, ...] = ()
    while len(walked) < limit:
        rest = n - off
        if ethertype in VLAN_TPIDS and rest >= 4:
            ethertype, off, kind = _be16(frame, off + 2), off + 4, ENC_VLAN
        elif ethertype == ETHERTYPE_PBB and rest >= 18:
            ethertype, off, kind = _be16(frame, off + 16), off + 18, ENC_PBB
        elif ethertype == ETHERTYPE_VNTAG and rest >= 6:
            ethertype, off, kind = _be16(frame, off + 4), off + 6, ENC_VNTAG
        elif ethertype == ETHERTYPE_PPPOE and rest >= 6:
            field = ppp_protocol(frame, off + 6)
            if field is None or field[0] not in PPP_TYPES:
                break
            ethertype, off, kind = PPP_TYPES[field[0]], field[1], ENC_PPPOE
        elif ethertype in ETHERTYPE_MPLS and rest >= 4:
            bottom = frame[off + 2] & 1
            off += 4
            if bottom:
                if off >= n or frame[off] >> 4 not in (4, 6):
                    break
                ethertype = ETHERTYPE_IPV4 if frame[off] >> 4 == 4 else ETHERTYPE_IPV6
            kind = ENC_MPLS
        else:
            break
        walked += (kind,)
    return ethertype, off, walked


def more_links(frame: bytes, linktype: int):
    """The link types only the extended decode reads (step 6): ``(ethertype, network_offset,
    headers, network_end)``, or None when the link header is not there."""
    n = len(frame)
    if linktype == LINKTYPE_C_HDLC or (linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC) and n >= 1
                                       and frame[0] in (0x0F, 0x8F)):
        if n < 4:
            return None
        protocol = _be16(frame, 2)
        if protocol not in ETHERTYPE_MPLS:  # only MPLS is walked after Cisco HDLC
            return protocol, 4, (), n
        return (*walk_encapsulations(frame, protocol, 4), n)
    if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
        field = ppp_protocol(frame, 2 if n >= 1 and frame[0] == 0xFF else 0)
        if field is None:
            return None
        if field[0] not in PPP_TYPES:
            return 0, field[1], (), n
        return (*walk_encapsulations(frame, PPP_TYPES[field[0]], field[1]), n)
    if linktype == LINKTYPE_FDDI:
        if n < 13:
            return None
        if frame[0] >> 4 == 5 and n >= 21 and _llc_snap(frame, 13):
            return (*walk_encapsulations(frame, _be16(frame, 19), 21), n)
        return 0, 13, (), n
    if linktype == LINKTYPE_IEEE802_11:
        return _wlan(frame, 0, n, False)
    if linktype == LINKTYPE_RADIOTAP:
        length = _header_length(frame)
        if length is None:
            return None
        last = 4  # the last presence word: bit 31 says another follows
        while frame[last + 3] & 0x80:
            last += 4
            if last + 4 > length:
                return None
        flags = 0
        if frame[4] & 2:  # the flags field, after TSFT (8 bytes aligned to 8) if present
            at = last + 4
            if frame[4] & 1:
                at = (at + 7) // 8 * 8 + 8
            if at >= length:
                return None
            flags = frame[at]
        end = n - 4 if flags & 0x10 and n - length >= 4 else n  # the FCS at the end
        return _wlan(frame, length, end, bool(flags & 0x20))
    if linktype == LINKTYPE_PPI:
        length = _header_length(frame)
        if length is None:
            return None
        dlt = struct.unpack("<I", frame[4:8])[0]
        if dlt == LINKTYPE_PPI:  # the frame by its link type, but not PPI again
            return None
        link = link_layer(frame[length:], dlt, True)
        if link is not None:
            return link[0], link[1] + length, link[2], n
        more = more_links(frame[length:], dlt)
        return None if more is None else (more[0], more[1] + length, more[2], more[3] + length)
    if linktype == LINKTYPE_NFLOG:
        if n < 4:
            return None
        if n < 8:
            return 0, 4, (), n
        little, big = struct.unpack("<H", frame[6:8])[0] & 0x7FFF, struct.unpack(">H", frame[6:8])[0] & 0x7FFF
        order = ">" if (little == 0 or little > 0xFF) and 1 <= big <= 0xFF else "<"
        at, hw_protocol = 4, 0
        for _ in range(32):
            if n - at < 4:
                break
            length, tlv_type = struct.unpack(order + "HH", frame[at : at + 4])
            if length < 4:
                break
            if tlv_type & 0x7FFF == 1 and length >= 6 and n - at >= 6:  # the packet header
                hw_protocol = _be16(frame, at + 4)
            if tlv_type & 0x7FFF == 9:
                kind = hw_protocol or {2: ETHERTYPE_IPV4, 10: ETHERTYPE_IPV6}.get(frame[0])
                if kind is None:
                    break
                return kind, at + 4, (), min(at + length, n)
            at += (length + 3) // 4 * 4
        return 0, 4, (), n
    return None


def _llc_snap(frame: bytes, at: int) -> bool:
    """LLC/SNAP ``AA AA 03`` with the OUI 00-00-00 or 00-00-F8 at ``frame[at:]``."""
    return frame[at : at + 3] == b"\xaa\xaa\x03" and frame[at + 3 : at + 6] in (b"\0\0\0", b"\0\0\xf8")


def _header_length(frame: bytes) -> int | None:
    """Radiotap's and PPI's common start: version 0, then at 2 the header's length (LE u16),
    at least 8 bytes and all captured; None when the header is not there."""
    if len(frame) < 8 or frame[0] != 0:
        return None
    length = struct.unpack("<H", frame[2:4])[0]
    return length if 8 <= length <= len(frame) else None


def _wlan(frame: bytes, at: int, end: int, datapad: bool):
    """An IEEE 802.11 frame at ``frame[at:]`` whose payload ends at ``end``: more_links's
    tuple for a data frame whose header is all there, else None."""
    found = _wlan_payload(frame, at, end, datapad)
    if found is None:
        return None
    kind, off = found
    if kind is None:
        return 0, off, (), end
    return (*walk_encapsulations(frame[:end], kind, off), end)


def _wlan_payload(frame: bytes, at: int, end: int, datapad: bool):
    """An IEEE 802.11 frame at ``frame[at:]`` whose payload ends at ``end``: None unless it is
    a data frame whose header is all captured; else ``(type, offset)`` of the payload after
    LLC/SNAP, the type None when there is none to walk (no data, protected, an A-MSDU, no
    LLC/SNAP; the offset then is the header's end)."""
    w = frame[at:]
    if len(w) < 2 or w[0] & 0x0F != 0x08:  # version 0, type 2: data
        return None
    subtype, four = w[0] >> 4, w[1] & 3 == 3
    header = qos_at = 30 if four else 24
    if subtype & 8:  # QoS control, then HT control when the order bit is set
        header += 6 if w[1] & 0x80 else 2
    if datapad:
        header = (header + 3) // 4 * 4
    if len(w) < header:
        return None
    if subtype & 4 or w[1] & 0x40 or (subtype & 8 and w[qos_at] & 0x80):  # no data, protected, A-MSDU
        return None, at + header
    if end - at < header + 8 or not _llc_snap(w, header):
        return None, at + header
    return _be16(frame, at + header + 6), at + header + 8


def _transport(payload: bytes, proto: int, p: dict) -> None:
    """Spec section 2 step 5: ports (and TCP flags) when the transport header is all there."""
    if proto == 6 and len(payload) >= 20:
        p["src_port"], p["dst_port"] = _be16(payload, 0), _be16(payload, 2)
        p["tcp_flags"] = _be16(payload, 12) & 0x3F
        p["decoded"] |= DEC_PORTS
    elif proto == 17 and len(payload) >= 8:
        p["src_port"], p["dst_port"] = _be16(payload, 0), _be16(payload, 2)
        p["decoded"] |= DEC_PORTS


def _decode_ipv4_extended(ip: bytes, p: dict) -> None:
    """Extended step 2: spec section 2 steps 3-5 plus the version check (4) and non-first
    fragments (fragment offset != 0: protocol and addresses, no ports, no flags)."""
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20 or len(ip) < ihl:
        return
    p["ip_version"] = 4
    p["ip_proto"] = ip[9]
    p["src"] = ipaddress.IPv4Address(ip[12:16])
    p["dst"] = ipaddress.IPv4Address(ip[16:20])
    p["decoded"] |= DEC_IPV4
    if _be16(ip, 6) & 0x1FFF:
        p["fragment"] = True
        p["decoded"] |= DEC_FRAGMENT
        return
    p["transport_offset"] = p["network_offset"] + ihl
    _transport(ip[ihl:], ip[9], p)


def _decode_ipv6(ip: bytes, p: dict) -> None:
    """Extended step 3: the fixed header (all 40 bytes, version 6), then the extension
    header walk, then the transport as in spec section 2 step 5.  The payload length field
    is not checked (like IPv4's total length): the transport is read from the captured
    bytes after the last extension header, link-layer padding included."""
    if len(ip) < 40 or ip[0] >> 4 != 6:
        return
    p["ip_version"] = 6
    p["src"] = ipaddress.IPv6Address(ip[8:24])
    p["dst"] = ipaddress.IPv6Address(ip[24:40])
    p["decoded"] |= DEC_IPV6
    nh = ip[6]
    off = 40
    chain = []
    while nh in IPV6_EXT_HEADERS:
        rest = len(ip) - off
        if nh == IPV6_FRAGMENT:
            hlen = 8
        elif rest < 2:
            hlen = None  # its length byte is not even captured
        elif nh == IPV6_AH:
            hlen = (ip[off + 1] + 2) * 4
        else:  # hop-by-hop, routing, destination options
            hlen = (ip[off + 1] + 1) * 8
        if hlen is None or rest < hlen:
            # not all captured: the walk ends with protocol = this header's type
            p["ip_proto"] = nh
            p["ext_headers"] = tuple(chain)
            p["ext_truncated"] = True
            return
        chain.append(nh)
        if nh == IPV6_FRAGMENT and _be16(ip, off + 2) >> 3:
            # a non-first fragment: protocol = its next header, no ports
            p["ip_proto"] = ip[off]
            p["ext_headers"] = tuple(chain)
            p["fragment"] = True
            p["decoded"] |= DEC_FRAGMENT
            return
        nh = ip[off]
        off += hlen
    p["ip_proto"] = nh
    p["ext_headers"] = tuple(chain)
    p["transport_offset"] = p["network_offset"] + off
    _transport(ip[off:], nh, p)


def decode_packet(frame: bytes, linktype: int, extended: bool, tunnels: bool = False) -> dict:
    """The decode of one frame, in either mode, as a dict:

    * ``size`` (captured length), ``linktype``, ``decoded`` (DEC_* bits);
    * ``ethertype`` (see ``link_layer``; None when the link header is not there),
      ``vlan_tags`` (how many were skipped), ``network_offset`` (where the network layer
      starts, after the link header and tags; None without a link header);
    * ``ip_version`` (4, 6 or None), ``src``/``dst`` (``ipaddress`` objects or None),
      ``ip_proto`` (IPv4 protocol / the IPv6 walk's last next header, or None);
    * ``transport_offset`` (where the transport header is read, after the IP header and the
      extension headers walked; None when the decode did not get there: no IP, a non-first
      fragment, a truncated extension header);
    * ``src_port``/``dst_port``/``tcp_flags`` (None unless decoded; flags only for TCP);
    * ``fragment`` (a non-first fragment), ``ext_headers`` (the IPv6 extension headers
      walked, all captured) and ``ext_truncated`` (the walk ended on a header not all
      captured);
    * ``encap``: the ENC_* bits of the encapsulation and tunnel headers walked (extended).

    With ``extended`` False this is the reference decode (``decode_frame``): no tags, the
    version nibble not checked (``ip_version`` 4 means "decoded as IPv4"), no IPv6, no
    fragment awareness.  With ``tunnels`` (extended only: ``tunnels="inner"``) the innermost
    packet of the tunnels it carries replaces the IP fields (``walk_tunnels``)."""
    frame = bytes(frame)
    p = {"size": len(frame), "linktype": linktype, "decoded": 0, "ethertype": None, "vlan_tags": 0,
         "network_offset": None, "transport_offset": None, "ip_version": None, "src": None, "dst": None,
         "ip_proto": None, "src_port": None, "dst_port": None, "tcp_flags": None, "fragment": False,
         "ext_headers": (), "ext_truncated": False, "encap": 0}
    link = link_layer(frame, linktype, extended)
    if link is None and extended:
        more = more_links(frame, linktype)
        if more is not None:
            link = more[:3]
            frame = frame[: more[3]]  # NFLOG: the payload TLV's value ends the network layer
    if link is None:
        return p
    ethertype, off, walked = link
    p.update(ethertype=ethertype, vlan_tags=len(walked), network_offset=off, decoded=DEC_LINK,
             encap=_bits(walked))
    if not extended:
        d = decode_frame(frame, linktype)
        if "src_ip" in d:
            p["transport_offset"] = off + (frame[off] & 0x0F) * 4
            p["ip_version"] = 4
            p["ip_proto"] = d["ip_proto"]
            p["src"] = ipaddress.IPv4Address(d["src_ip"])
            p["dst"] = ipaddress.IPv4Address(d["dst_ip"])
            p["decoded"] |= DEC_IPV4
        if "src_port" in d:
            p["src_port"], p["dst_port"] = d["src_port"], d["dst_port"]
            p["tcp_flags"] = d.get("tcp_flags")
            p["decoded"] |= DEC_PORTS
        return p
    net = frame[off:]
    if ethertype == ETHERTYPE_IPV4:
        _decode_ipv4_extended(net, p)
    elif ethertype == ETHERTYPE_IPV6:
        _decode_ipv6(net, p)
    if tunnels:
        walk_tunnels(frame, p)
    return p


# Tunnels (data-model.md, "Tunnels"): tunnels="inner"
ETHERTYPE_BRIDGING = 0x6558  # transparent Ethernet bridging: an Ethernet frame follows
GRE_PPP, ERSPAN_II, ERSPAN_III = 0x880B, 0x88BE, 0x22EB
ARUBA_TYPES = frozenset(range(0x8200, 0x8371, 0x10))  # Aruba's GRE protocol types: IEEE 802.11
VXLAN_PORT, GENEVE_PORT, GTPU_PORT, TZSP_PORT = 4789, 6081, 2152, 37008
TZSP_ETHERNET, TZSP_IEEE_802_11 = 1, 18  # the TZSP encapsulations walked
IP_FIELDS = ("ethertype", "ip_version", "src", "dst", "ip_proto", "src_port", "dst_port", "tcp_flags",
             "fragment", "ext_headers", "ext_truncated", "network_offset", "transport_offset")


def _gre(frame: bytes, at: int):
    """The GRE header at ``at``: (type, offset of what it carries, encapsulations walked?,
    ENC_* bits)."""
    n = len(frame)
    if n - at < 4:
        return None
    flags, proto = _be16(frame, at), _be16(frame, at + 2)
    version = flags & 0x7
    if flags & 0x4000:  # routing: not walked
        return None
    length = 4 + sum(4 for bit in (0x8000, 0x2000, 0x1000) if flags & bit)
    if version == 1:
        if proto != GRE_PPP:
            return None
        if flags & 0x0080:  # acknowledgment number
            length += 4
        if n - at < length:
            return None
        off = at + length
        if off < n and frame[off] == 0xFF:  # address and control
            off += 2
        field = ppp_protocol(frame, off)
        if field is None or field[0] not in PPP_TYPES:
            return None
        return PPP_TYPES[field[0]], field[1], True, ENC_GRE | ENC_PPTP
    if version != 0 or n - at < length:
        return None
    off = at + length
    if proto in (ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_BRIDGING):
        return proto, off, False, ENC_GRE
    if proto in ETHERTYPE_MPLS:
        return proto, off, True, ENC_GRE
    if proto in ARUBA_TYPES:  # an IEEE 802.11 frame without FCS: its LLC/SNAP payload
        payload = _wlan_payload(frame, off, n, False)
        if payload is None or payload[0] is None:
            return None
        return payload[0], payload[1], True, ENC_GRE | ENC_ARUBA
    if proto == ERSPAN_II and not flags & 0x1000:  # type I: the frame right away
        return ETHERTYPE_BRIDGING, off, False, ENC_GRE | ENC_ERSPAN
    if proto in (ERSPAN_II, ERSPAN_III):
        if n - off < 2:
            return None
        version = frame[off] >> 4
        if version == 1:
            length = 8
        elif version == 2:
            if n - off < 12 or (_be16(frame, off + 10) >> 10) & 0x1F:  # frame type: Ethernet only
                return None
            length = 12 + (8 if frame[off + 11] & 1 else 0)
        else:
            return None
        if n - off < length:
            return None
        return ETHERTYPE_BRIDGING, off + length, False, ENC_GRE | ENC_ERSPAN
    return None


def _tzsp(frame: bytes, at: int):
    """TZSP at ``at``: version 1, type 0 (received) or 1 (to transmit), encapsulation Ethernet
    or IEEE 802.11, tagged fields (0 padding and 1 END one byte each; any other: tag, length,
    value) up to END, after which the frame starts."""
    header = frame[at : at + 4]
    if len(header) < 4 or header[0] != 1 or header[1] not in (0, 1):
        return None
    encapsulation = _be16(header, 2)
    if encapsulation not in (TZSP_ETHERNET, TZSP_IEEE_802_11):
        return None
    off = at + 4
    while True:
        if off >= len(frame):
            return None  # the tags end without END
        tag = frame[off]
        if tag == 1:
            off += 1
            break
        if tag == 0:
            off += 1
            continue
        if off + 2 > len(frame) or off + 2 + frame[off + 1] > len(frame):
            return None  # this tag's length or value is not all captured
        off += 2 + frame[off + 1]
    if encapsulation == TZSP_ETHERNET:
        return ETHERTYPE_BRIDGING, off, False, ENC_TZSP
    payload = _wlan_payload(frame, off, len(frame), False)  # no FCS, like Aruba's
    if payload is None or payload[0] is None:
        return None
    return payload[0], payload[1], True, ENC_TZSP


def _udp_tunnel(frame: bytes, at: int, port: int):
    """VXLAN, GENEVE, GTP-U or TZSP at ``at`` (the UDP payload), by destination ``port``."""
    n = len(frame)
    if port == TZSP_PORT:
        return _tzsp(frame, at)
    if port == VXLAN_PORT:
        return (ETHERTYPE_BRIDGING, at + 8, False, ENC_VXLAN) if n - at >= 8 else None
    if port == GENEVE_PORT:
        if n - at < 8 or frame[at] >> 6 != 0:
            return None
        length = 8 + 4 * (frame[at] & 0x3F)
        proto = _be16(frame, at + 2)
        if n - at < length or proto not in (ETHERTYPE_BRIDGING, ETHERTYPE_IPV4, ETHERTYPE_IPV6):
            return None
        return proto, at + length, False, ENC_GENEVE
    if port == GTPU_PORT:
        if n - at < 8 or frame[at] >> 5 != 1 or not frame[at] & 0x10 or frame[at + 1] != 0xFF:
            return None
        off = at + 8
        if frame[at] & 0x07:
            if n - at < 12:
                return None
            following = frame[at + 11]
            off = at + 12
            extensions = 0
            while following:
                if extensions == MAX_HEADERS or off >= n or frame[off] == 0 or n - off < 4 * frame[off]:
                    return None
                length = 4 * frame[off]
                following = frame[off + length - 1]
                off += length
                extensions += 1
        if off >= n or frame[off] >> 4 not in (4, 6):
            return None
        return (ETHERTYPE_IPV4 if frame[off] >> 4 == 4 else ETHERTYPE_IPV6), off, False, ENC_GTPU
    return None


def walk_tunnels(frame: bytes, p: dict) -> None:
    """While the packet ``p`` carries a tunnel and fewer than MAX_HEADERS headers were walked
    (the link's encapsulations, each tunnel, the encapsulations inside), decode the packet
    inside; when it has an IP header, its fields replace ``p``'s (else ``p`` stays).
    ``p["headers"]``: the headers walked when it stopped (from the first tunnel on)."""
    headers = p["headers"] = p["vlan_tags"]
    while p["transport_offset"] is not None and headers < MAX_HEADERS:
        at = p["transport_offset"]
        proto = p["ip_proto"]
        if proto == 4:
            found = ETHERTYPE_IPV4, at, False, ENC_IPIP
        elif proto == 41:
            found = ETHERTYPE_IPV6, at, False, ENC_IPIP
        elif proto == 47:
            found = _gre(frame, at)
        elif proto == 17 and p["dst_port"] is not None:
            found = _udp_tunnel(frame, at + 8, p["dst_port"])
        else:
            found = None
        if found is None:
            return
        headers += 1
        p["headers"] = headers
        kind, off, walk, bits = found
        p["encap"] |= bits
        if kind == ETHERTYPE_BRIDGING:
            if len(frame) - off < 14:
                return
            kind, off, walk = _be16(frame, off + 12), off + 14, True
        if walk:
            kind, off, walked = walk_encapsulations(frame, kind, off, MAX_HEADERS - headers)
            headers += len(walked)
            p["headers"] = headers
            p["encap"] |= _bits(walked)
        inner = {"decoded": 0, "ethertype": kind, "network_offset": off, "transport_offset": None,
                 "ip_version": None, "src": None, "dst": None, "ip_proto": None, "src_port": None,
                 "dst_port": None, "tcp_flags": None, "fragment": False, "ext_headers": (), "ext_truncated": False}
        if kind == ETHERTYPE_IPV4:
            _decode_ipv4_extended(frame[off:], inner)
        elif kind == ETHERTYPE_IPV6:
            _decode_ipv6(frame[off:], inner)
        if inner["ip_version"] is None:
            return
        p.update({name: inner[name] for name in IP_FIELDS})
        p["decoded"] = DEC_LINK | inner["decoded"]
        p["tunnels"] = p.get("tunnels", 0) + 1
        p["headers"] = headers


def _bits(walked: tuple[int, ...]) -> int:
    bits = 0
    for bit in walked:
        bits |= bit
    return bits


def parse_host_ips(host_ips) -> frozenset:
    """``host_ips`` (strings or ``ipaddress`` objects, IPv4 or IPv6) -> a set of
    ``(version, packed)`` keys.  An address that does not parse is a ValueError."""
    if isinstance(host_ips, (str, bytes)):
        raise TypeError("host_ips must be a list of addresses, not a single string")
    keys = set()
    for h in host_ips:
        a = h if isinstance(h, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else ipaddress.ip_address(h)
        keys.add((a.version, a.packed))
    return frozenset(keys)


def _addr_key(a) -> tuple:
    return (a.version, a.packed)


def packet_contribution(p: dict) -> dict:
    """``decode_packet``'s result in the form ``accumulate`` takes: "ip_proto", "src_ip",
    "dst_ip" (``(version, packed)`` keys: IPv4 and IPv6 addresses are distinct), ports and
    flags, present only when decoded."""
    d = {"size": p["size"]}
    if p["ip_version"] is not None:
        d["ip_proto"] = p["ip_proto"]
        d["src_ip"] = _addr_key(p["src"])
        d["dst_ip"] = _addr_key(p["dst"])
    if p["src_port"] is not None:
        d["src_port"], d["dst_port"] = p["src_port"], p["dst_port"]
    if p["tcp_flags"] is not None:
        d["tcp_flags"] = p["tcp_flags"]
    return d


def new_bucket() -> dict:
    return {
        "pkts_in": 0,
        "pkts_out": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "syn_count": 0,
        "fin_count": 0,
        "rst_count": 0,
        "udp_count": 0,
        "tcp_count": 0,
        "dns_query_count": 0,
        "dst_ips": set(),
        "dst_ports": set(),
        "tcp_new_flows": 0,
    }


def accumulate(bucket: dict, d: dict, bridge_ip: str, *, size: int | None = None, out: bool | None = None) -> None:
    """Spec section 3: one packet's contribution to its bucket.  ``size`` overrides
    ``d["size"]`` (wire sizes), ``out`` the direction rule ``src_ip == bridge_ip`` (host
    addresses)."""
    if size is None:
        size = d["size"]
    if out is None:
        out = "src_ip" in d and d["src_ip"] == bridge_ip
    if out:
        bucket["pkts_out"] += 1
        bucket["bytes_out"] += size
    else:
        bucket["pkts_in"] += 1
        bucket["bytes_in"] += size

    proto = d.get("ip_proto")
    if proto == 6:
        bucket["tcp_count"] += 1
        flags = d.get("tcp_flags", 0)  # short TCP header: flags 0
        if flags & SYN:
            bucket["syn_count"] += 1
            if not flags & ACK:
                bucket["tcp_new_flows"] += 1
        if flags & FIN:
            bucket["fin_count"] += 1
        if flags & RST:
            bucket["rst_count"] += 1
    elif proto == 17:
        bucket["udp_count"] += 1
        if "dst_port" in d and d["dst_port"] == 53:
            bucket["dns_query_count"] += 1

    if "dst_ip" in d:  # reached step 4
        bucket["dst_ips"].add(d["dst_ip"])
    if "dst_port" in d:  # decoded ports (TCP and UDP share the set)
        bucket["dst_ports"].add(d["dst_port"])


def make_row(bucket: dict, bucket_start_ns: int, bucket_ns: int, t_mono_origin_ns: int) -> dict:
    """Spec section 5: keys in exactly this order."""
    return {
        "t_mono_ns": bucket_start_ns - t_mono_origin_ns,
        "t_wall_ns": bucket_start_ns,
        "source": SOURCE,
        "available_in_deployment": AVAILABLE_IN_DEPLOYMENT,
        "bucket_ms": bucket_ns // 1_000_000,
        "pkts_in": bucket["pkts_in"],
        "pkts_out": bucket["pkts_out"],
        "bytes_in": bucket["bytes_in"],
        "bytes_out": bucket["bytes_out"],
        "syn_count": bucket["syn_count"],
        "fin_count": bucket["fin_count"],
        "rst_count": bucket["rst_count"],
        "udp_count": bucket["udp_count"],
        "tcp_count": bucket["tcp_count"],
        "dns_query_count": bucket["dns_query_count"],
        "unique_dst_ips": len(bucket["dst_ips"]),
        "unique_dst_ports": len(bucket["dst_ports"]),
        "tcp_new_flows": bucket["tcp_new_flows"],
    }


# ---------------------------------------------------------------------------
# Compression (one layer, decompressed fully in memory)
# ---------------------------------------------------------------------------


def detect_compression(data: bytes) -> str | None:
    for kind, magic in COMPRESSION_MAGICS.items():
        if data.startswith(magic):
            return kind
    return None


def _new_decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor()
    raise ValueError(kind)


def _inflate(kind: str, raw: bytes, fine_from: int | None):
    """Feed ``raw`` to a streaming decompressor: chunks of DECOMPRESS_CHUNK bytes, then one
    byte at a time from ``fine_from`` on (if given).  Concatenated streams (members,
    frames) are decoded one after the other; after the last one only zero bytes may follow.

    Returns ``(output, status, error_pos, message)`` with status "complete", "truncated"
    or "error"; error_pos is where the failing piece of input started."""
    magic = COMPRESSION_MAGICS[kind]
    out = bytearray()
    pos = 0
    d = _new_decompressor(kind)
    while True:
        if pos >= len(raw):
            return bytes(out), "truncated", None, None
        if fine_from is None:
            step = DECOMPRESS_CHUNK
        elif pos >= fine_from:
            step = 1
        else:
            step = min(DECOMPRESS_CHUNK, fine_from - pos)
        piece = raw[pos : pos + step]
        try:
            out += d.decompress(piece)
        except Exception as exc:  # zlib.error, OSError (bz2), LZMAError, ZstdError, RuntimeError (lz4)
            return bytes(out), "error", pos, f"{type(exc).__name__}: {exc}"
        pos += len(piece)
        if d.eof:
            pos -= len(d.unused_data or b"")  # lz4: None when there is none
            rest = raw[pos:]
            if not rest or not rest.strip(b"\0"):
                return bytes(out), "complete", None, None
            if rest.startswith(magic) or magic.startswith(rest):
                d = _new_decompressor(kind)  # another member / frame / stream
                continue
            return bytes(out), "error", pos, "data after the end of the compressed stream"


def decompress(kind: str, raw: bytes):
    """Decompress one layer of ``kind``.  Returns ``(capture_bytes, truncated, error)``:
    ``truncated`` when the stream ended before its end marker (whatever came out so far is
    the capture), ``error`` a message when the data is corrupt (the capture is then what
    came out before the corruption was detected, input fed one byte at a time around it)."""
    out, status, err_pos, msg = _inflate(kind, raw, None)
    if status == "error":
        fine = _inflate(kind, raw, err_pos)
        if fine[1] == "error":
            out, status, err_pos, msg = fine
    return out, status == "truncated", (msg if status == "error" else None)


# ---------------------------------------------------------------------------
# Corrupt records (data-model.md, "Corrupt records")
# ---------------------------------------------------------------------------


def next_plausible(data: bytes, pos: int, plausible) -> int | None:
    """The first offset after ``pos`` where ``plausible(offset)`` holds: every one is tried."""
    for q in range(pos + 1, len(data)):
        if plausible(q):
            return q
    return None


def on_corrupt(result: OracleResult, data: bytes, pos: int, problem: str, plausible) -> int | None:
    """The policy for the corrupt record at ``pos``: raise (error), None (stop: the walk ends
    there), or the offset the walk goes on from (resync; the end of the data if no
    plausible record follows)."""
    if result.on_corrupt == "error":
        raise OracleError(pos, problem)
    if result.on_corrupt == "stop":
        result.stopped_at = pos
        return None
    q = next_plausible(data, pos, plausible)
    q = len(data) if q is None else q
    result.skipped.append((pos, q - pos))
    return q


def cut_short(result: OracleResult, data: bytes, pos: int, plausible, *, tail: bool = True) -> int | None:
    """A record at ``pos`` that the end of the data cuts short: a partial tail (the walk ends;
    ``truncated_tail`` = ``tail``), unless, under stop or resync, a plausible record starts
    inside it: then it is a corrupt record."""
    if result.on_corrupt != "error" and next_plausible(data, pos, plausible) is not None:
        return on_corrupt(result, data, pos, "cut short around a plausible record", plausible)
    result.truncated_tail = tail
    return None


def _pcap_header(data: bytes, q: int, bo: str, nsec: bool, limit: int):
    """(t_ns, incl_len) of the record header at ``q`` if it passes the field checks."""
    if len(data) - q < RECORD_HEADER_SIZE:
        return None
    sec, frac, incl, orig = struct.unpack(bo + "IIII", data[q : q + RECORD_HEADER_SIZE])
    if frac >= (1_000_000_000 if nsec else 1_000_000) or not 1 <= incl <= orig or incl > limit:
        return None
    return sec * 1_000_000_000 + frac * (1 if nsec else 1000), incl


def pcap_plausible(data: bytes, q: int, bo: str, nsec: bool, limit: int, last_t: int | None) -> bool:
    """A plausible classic record at ``q``: its header's fields, its time near ``last_t``,
    complete, and then the end (< 16 bytes) or a header as plausible, its time near."""
    first = _pcap_header(data, q, bo, nsec, limit)
    if first is None:
        return False
    t, incl = first
    if last_t is not None and abs(t - last_t) > DAY_NS:
        return False
    end = q + RECORD_HEADER_SIZE + incl
    if end > len(data):
        return False
    if len(data) - end < RECORD_HEADER_SIZE:
        return True
    after = _pcap_header(data, end, bo, nsec, limit)
    return after is not None and abs(after[0] - t) <= DAY_NS


def _pcapng_framing(data: bytes, q: int, bo: str, in_section: bool, limit: int):
    """(type, byte order, total length) of a block at ``q`` of a known type with a possible
    total length, else None (a section header: its own byte order and 16 MiB)."""
    if len(data) - q < 12:
        return None
    if data[q : q + 4] == SHB_TYPE:
        sbo = BOM_ENCODINGS.get(data[q + 8 : q + 12])
        if sbo is None:
            return None
        btype, lim, min_len = "SHB", MAX_BLOCK_LEN, MIN_BLOCK_LEN["SHB"]
    elif in_section:
        sbo = bo
        (btype,) = struct.unpack(bo + "I", data[q : q + 4])
        if btype not in KNOWN_BLOCK_TYPES:
            return None
        lim, min_len = limit, MIN_BLOCK_LEN.get(btype, 12)
    else:
        return None
    (length,) = struct.unpack(sbo + "I", data[q + 4 : q + 8])
    if length % 4 or length < min_len or length > lim:
        return None
    return btype, sbo, length


def pcapng_plausible(data: bytes, q: int, bo: str, interfaces, last_t: int | None) -> bool:
    """A plausible pcapng block at ``q`` in a section of byte order ``bo`` and these
    ``interfaces`` (None: no section yet); ``last_t``: the last EPB / packet block's time."""
    ifaces = interfaces or []
    limit = block_limit(ifaces)
    framed = _pcapng_framing(data, q, bo, interfaces is not None, limit)
    if framed is None:
        return False
    btype, sbo, length = framed
    if q + length > len(data) or struct.unpack(sbo + "I", data[q + length - 4 : q + length])[0] != length:
        return False
    body = data[q + 8 : q + length - 4]
    after_limit = limit
    if btype == "SHB":
        if struct.unpack(sbo + "H", body[4:6])[0] != 1:
            return False
        after_limit = MAX_BLOCK_LEN
    elif btype == BT_IDB:
        after_limit = block_limit(ifaces + [parse_idb(body, sbo)])
    elif btype in (BT_EPB, BT_PB):
        if btype == BT_EPB:
            iface_id, ts_hi, ts_lo, caplen = struct.unpack(sbo + "IIII", body[:16])
        else:
            iface_id, _drops, ts_hi, ts_lo, caplen = struct.unpack(sbo + "HHIII", body[:16])
        if iface_id >= len(ifaces):
            return False
        if caplen > len(body) - 20 or caplen > max_incl_len(ifaces[iface_id].linktype):
            return False
        t = pcapng_t_ns(ts_hi << 32 | ts_lo, ifaces[iface_id])
        if not INT64_MIN <= t <= INT64_MAX or (last_t is not None and abs(t - last_t) > DAY_NS):
            return False
    elif btype == BT_SPB:
        if not ifaces:
            return False
        caplen = min(struct.unpack(sbo + "I", body[:4])[0], len(body) - 4)
        if ifaces[0].snaplen:
            caplen = min(caplen, ifaces[0].snaplen)
        if caplen > max_incl_len(ifaces[0].linktype):
            return False
    r = q + length
    if len(data) - r < 12:
        return True
    after = _pcapng_framing(data, r, sbo, True, after_limit)
    if after is None:
        return False
    _, abo, alen = after
    return r + alen > len(data) or struct.unpack(abo + "I", data[r + alen - 4 : r + alen])[0] == alen


# ---------------------------------------------------------------------------
# Record walk: classic pcap
# ---------------------------------------------------------------------------


def walk_pcap(data: bytes, result: OracleResult):
    """Yield ``(packet_number, header_offset, t_ns, frame, linktype, orig_len)`` for every complete
    record (spec section 1).  Sets ``result.truncated_tail`` / raises OracleError."""
    # --- global header -----------------------------------------------------
    if len(data) < GLOBAL_HEADER_SIZE:
        return  # a valid magic (checked by ``walk``), header still being written: zero packets
    bo, nsec = MAGIC_ENCODINGS[data[:4]]
    _magic, _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(
        bo + "IHHiIII", data[:GLOBAL_HEADER_SIZE]
    )
    linktype = network & 0x03FFFFFF
    result.linktypes.append(linktype)
    if linktype not in DECODED_LINKTYPES:
        result.undecoded_linktype = linktype  # a header property: set even with 0 packets
    limit = max_incl_len(linktype)
    frac_mult = 1 if nsec else 1000

    # --- records -------------------------------------------------------------
    pos = GLOBAL_HEADER_SIZE
    number = 0
    last_t = None  # the last packet's time (a resync looks for times near it)

    def plausible(q: int) -> bool:
        return pcap_plausible(data, q, bo, nsec, limit, last_t)

    while pos < len(data):
        if len(data) - pos < RECORD_HEADER_SIZE:
            result.truncated_tail = True  # partial record header
            return
        ts_sec, ts_frac, incl_len, orig_len = struct.unpack(
            bo + "IIII", data[pos : pos + RECORD_HEADER_SIZE]
        )
        if incl_len > limit:
            pos = on_corrupt(result, data, pos, f"record incl_len {incl_len} exceeds the maximum {limit} "
                             f"for link type {linktype}", plausible)
            if pos is None:
                return
            continue
        start = pos + RECORD_HEADER_SIZE
        if len(data) - start < incl_len:
            pos = cut_short(result, data, pos, plausible)  # partial record data
            if pos is None:
                return
            continue
        number += 1
        t_ns = ts_sec * 1_000_000_000 + ts_frac * frac_mult
        last_t = t_ns
        yield number, pos, t_ns, data[start : start + incl_len], linktype, orig_len
        pos = start + incl_len


# ---------------------------------------------------------------------------
# Record walk: pcapng
# ---------------------------------------------------------------------------


@dataclass
class Interface:
    linktype: int
    snaplen: int
    units_per_s: int = 1_000_000  # if_tsresol; default 10^-6 s
    offset_s: int = 0  # if_tsoffset


def parse_idb(body: bytes, bo: str) -> Interface:
    """Link type, snap length and the options if_tsresol (code 9, one byte) and if_tsoffset
    (code 14, i64 seconds).  Options are walked until opt_endofopt or the end of the body;
    an option with another length than its own is ignored, an option running past the end
    of the body ends the walk (no error: the doc lists none), a repeated option: the last
    one wins."""
    linktype, _reserved, snaplen = struct.unpack(bo + "HHI", body[:8])
    iface = Interface(linktype, snaplen)
    pos = 8
    while len(body) - pos >= 4:
        code, length = struct.unpack(bo + "HH", body[pos : pos + 4])
        if code == OPT_ENDOFOPT:
            break
        value = body[pos + 4 : pos + 4 + length]
        if len(value) < length:
            break
        if code == OPT_IF_TSRESOL and length == 1:
            v = value[0]
            iface.units_per_s = 2 ** (v - 128) if v >= 128 else 10**v
        elif code == OPT_IF_TSOFFSET and length == 8:
            iface.offset_s = struct.unpack(bo + "q", value)[0]
        pos += 4 + length + (-length % 4)
    return iface


def pcapng_t_ns(ts: int, iface: Interface) -> int:
    """ts (in if_tsresol units) -> ns since the epoch, exactly, floored.  The 64 bits are an
    unsigned count; if that gives a time int64 cannot hold and the top bit is set, the bits
    are read as a signed count instead (data-model.md).  May still not fit: the caller
    refuses that."""
    def ns(units: int) -> int:
        return units * 1_000_000_000 // iface.units_per_s + iface.offset_s * 1_000_000_000

    t = ns(ts)
    if not INT64_MIN <= t <= INT64_MAX and ts >= 1 << 63:
        t = ns(ts - (1 << 64))
    return t


def block_limit(interfaces: list[Interface]) -> int:
    """The largest total length a block of a section may have (libpcap's rule): 16 MiB, or
    the largest record any of the section's interfaces' link types allows plus 1 MiB, if
    that is larger."""
    return max([MAX_BLOCK_LEN] + [max_incl_len(i.linktype) + BLOCK_SLACK for i in interfaces])


def walk_pcapng(data: bytes, result: OracleResult):
    """Yield ``(packet_number, block_offset, t_ns, frame, linktype, orig_len)`` for every
    packet block (EPB, SPB, obsolete PB) of a pcapng file.  Checks that need only the block's
    type and length (and, for an SHB, its byte-order magic) are made as soon as those
    bytes are there; the rest once the whole block is.  A block cut short ends the walk
    (``truncated_tail`` unless it is the first SHB).  A corrupt block: ``on_corrupt``."""
    n = len(data)
    pos = 0
    number = 0
    bo = "<"
    interfaces: list[Interface] | None = None  # the section's (None: no section header read yet)
    last_t = None  # the last EPB / packet block's time (a resync looks for times near it)

    def err(problem: str):
        raise OracleError(pos, problem)

    def plausible(q: int) -> bool:
        return pcapng_plausible(data, q, bo, interfaces, last_t)

    if n >= 12 and data[8:12] not in BOM_ENCODINGS:  # not a capture: an error whatever the policy
        raise OracleError(0, f"pcapng: section header with a bad byte-order magic {data[8:12].hex()}")
    while pos < n:
        rem = n - pos
        try:
            if rem < 8 or (data[pos : pos + 4] == SHB_TYPE and rem < 12):
                raise _CutShort
            is_shb = data[pos : pos + 4] == SHB_TYPE
            if is_shb:
                bom = data[pos + 8 : pos + 12]
                if bom not in BOM_ENCODINGS:
                    err(f"pcapng: section header with a bad byte-order magic {bom.hex()}")
                sbo = BOM_ENCODINGS[bom]
                btype = struct.unpack(sbo + "I", data[pos : pos + 4])[0]
                length = struct.unpack(sbo + "I", data[pos + 4 : pos + 8])[0]
                limit, name, min_len = MAX_BLOCK_LEN, "SHB", MIN_BLOCK_LEN["SHB"]
            else:
                sbo = bo
                btype, length = struct.unpack(bo + "II", data[pos : pos + 8])
                name = BLOCK_NAMES.get(btype, f"block of type 0x{btype:08x}")
                min_len = MIN_BLOCK_LEN.get(btype, 12)
                limit = block_limit(interfaces or [])

            # --- checks on the block header alone ---------------------------------------
            if length < 12:
                err(f"pcapng: {name} total length {length} is below 12")
            if length % 4:
                err(f"pcapng: {name} total length {length} is not a multiple of 4")
            if length > limit:
                err(f"pcapng: {name} total length {length} is above the maximum {limit}")
            if length < min_len:
                err(f"pcapng: {name} total length {length} is too short for its fields ({min_len})")
            if rem < length:
                raise _CutShort

            # --- the whole block is here ------------------------------------------------
            trailer = struct.unpack(sbo + "I", data[pos + length - 4 : pos + length])[0]
            if trailer != length:
                err(f"pcapng: {name} total length {length} differs from the trailing copy {trailer}")
            body = data[pos + 8 : pos + length - 4]

            packet = None
            if is_shb:
                major, _minor = struct.unpack(sbo + "HH", body[4:8])
                if major != 1:
                    err(f"pcapng: section header major version {major}, not 1")
                bo = sbo
                interfaces = []  # a new section forgets the previous one's interfaces
            elif btype == BT_IDB:
                iface = parse_idb(body, bo)
                assert interfaces is not None  # (the walk starts at a section header)
                interfaces.append(iface)
                result.linktypes.append(iface.linktype)
            elif btype in PACKET_BLOCKS:
                ifaces = interfaces or []
                if btype == BT_EPB:
                    iface_id, ts_hi, ts_lo, caplen, orig = struct.unpack(bo + "IIIII", body[:20])
                    holds = len(body) - 20
                elif btype == BT_PB:
                    iface_id, _drops, ts_hi, ts_lo, caplen, orig = struct.unpack(bo + "HHIIII", body[:20])
                    holds = len(body) - 20
                else:  # SPB
                    iface_id = 0
                    (orig,) = struct.unpack(bo + "I", body[:4])
                    holds = len(body) - 4
                if iface_id >= len(ifaces):
                    err(f"pcapng: {name} on interface {iface_id}, which the section has not described "
                        f"({len(ifaces)} interfaces)")
                iface = ifaces[iface_id]
                if btype == BT_SPB:
                    caplen = min(orig, holds)
                    if iface.snaplen:
                        caplen = min(caplen, iface.snaplen)
                    frame = body[4 : 4 + caplen]
                    t_ns = 0  # no timestamp: counts in the open bucket (running maximum)
                else:
                    if caplen > holds:
                        err(f"pcapng: {name} captured length {caplen} is larger than the block holds ({holds})")
                    frame = body[20 : 20 + caplen]
                    t_ns = pcapng_t_ns(ts_hi << 32 | ts_lo, iface)
                    if result.int64_times and not INT64_MIN <= t_ns <= INT64_MAX:
                        err(f"pcapng: {name} timestamp {t_ns} ns does not fit in an int64")
                lmax = max_incl_len(iface.linktype)
                if caplen > lmax:
                    err(f"pcapng: {name} captured length {caplen} exceeds the maximum {lmax} "
                        f"for link type {iface.linktype}")
                packet = (t_ns, frame, iface.linktype, orig)
                if btype != BT_SPB:
                    last_t = t_ns
            # anything else (NRB, ISB, DSB, custom, unknown): skipped by its length
        except OracleError as exc:
            if data[pos : pos + 4] == SHB_TYPE:
                interfaces = None  # a corrupt section header ends its section
            nxt = on_corrupt(result, data, pos, exc.problem, plausible)
        except _CutShort:
            if data[pos : pos + 4] == SHB_TYPE:
                interfaces = None
            nxt = cut_short(result, data, pos, plausible, tail=pos > 0)
        else:
            if packet is not None:
                number += 1
                yield (number, pos, *packet)
            nxt = pos + length
        if nxt is None:
            return
        pos = nxt


class _CutShort(Exception):
    """The end of the data cuts the block short."""


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------


def walk(data: bytes, result: OracleResult):
    """Yield ``(packet_number, offset, t_ns, frame, linktype)`` from a classic pcap or a
    pcapng file (already decompressed), setting ``result.format``."""
    for number, offset, t_ns, frame, linktype, _orig_len in walk_records(data, result):
        yield number, offset, t_ns, frame, linktype


@dataclass
class Record:
    """One packet of a capture, as the record walk finds it."""

    number: int  # 1-based, as tshark's frame.number
    offset: int  # record header / packet block (decompressed bytes)
    t_ns: int
    frame: bytes  # the captured bytes
    linktype: int
    orig_len: int  # the original (wire) length field: classic orig_len, EPB/PB/SPB original length


def capture_records(data: bytes) -> list[Record]:
    """Every packet of a capture (compressed or not, classic pcap or pcapng), in file order.
    Raises OracleError like ``oracle`` (but for times int64 ns cannot hold: they are kept as
    they are); a partial tail or truncated stream ends the list."""
    result = OracleResult(int64_times=False)
    data = bytes(data)
    kind = detect_compression(data)
    problem = None
    if kind is not None:
        data, _truncated, problem = decompress(kind, data)
    records = [Record(*t) for t in walk_records(data, result)]
    if problem is not None:
        raise OracleError(len(data), f"corrupt {kind} data: {problem}")
    return records


def walk_records(data: bytes, result: OracleResult):
    """``walk`` with the original length: yield ``(packet_number, offset, t_ns, frame,
    linktype, orig_len)``."""
    data = bytes(data)
    if not data:
        return
    head = data[:4]
    if head in MAGIC_ENCODINGS:
        result.format = "pcap"
        yield from walk_pcap(data, result)
    elif head == SHB_TYPE:
        result.format = "pcapng"
        yield from walk_pcapng(data, result)
    elif len(head) < 4 and (any(m.startswith(head) for m in MAGIC_ENCODINGS) or SHB_TYPE.startswith(head)):
        return  # the beginning of a magic: a capture that just started, zero packets
    else:
        raise OracleError(0, f"not a capture: unknown magic {head.hex()}")


# ---------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------


def oracle(
    data: bytes,
    *,
    bucket_ms: int = 100,
    bridge_ip: str = "10.200.0.1",
    t_mono_origin_ns: int = 0,
    max_gap_s: int | float | None = 3600,
    decode: str = "reference",
    host_ips: list[str] | None = None,
    size: str = "captured",
    on_corrupt: str = "error",
    tunnels: str = "outer",
) -> OracleResult:
    """Bucketize a whole capture held in memory, per the contract.

    ``decode="extended"`` applies data-model.md's "Extended decode (opt-in)" (see
    ``decode_packet``); ``host_ips`` (IPv4 and/or IPv6 addresses) replaces ``bridge_ip``
    for the direction (default: ``[bridge_ip]``); ``size="wire"`` counts the original
    length in ``bytes_in``/``bytes_out``; ``tunnels="inner"`` (extended only) counts the
    innermost packet of tunnels (``walk_tunnels``).  The defaults are the reference, unchanged.
    ``on_corrupt="stop"``/``"resync"``: data-model.md's "Corrupt records" (only records and
    blocks: corrupt compressed data, a bad magic and the bucket rule's errors still raise).

    Decisions beyond the spec text:

    * Classic magics 0xA1B2C3D4 / 0xA1B23C4D in either byte order; a byte-swapped file has
      every header and record-header field big-endian.  Short files (< 24 bytes) that are
      a prefix of a valid magic, or start with a valid magic, hold zero packets.
      ``truncated_tail`` stays False for a short global header (it is not a record).
    * Container by the first 4 bytes: a classic magic, or the SHB type 0A0D0D0A (pcapng).
      ``format`` is "" only when fewer than 4 bytes say nothing yet (zero packets if they
      begin a magic, else an error at offset 0 mentioning "magic").
    * Compression by magic on the raw bytes, one layer only (compressed content must be a
      capture).  A file of 1..n-1 bytes that begins a compression magic holds zero packets
      (``compression`` None, ``format`` "").  Concatenated members/frames/streams are all
      decoded; after the last only zero bytes may follow, anything else is corrupt.  A
      stream that ends early gives what came out (``truncated_stream``); corrupt data
      raises at offset = decompressed bytes produced before the decoder noticed (input fed
      byte by byte around the fault) -- unless the walk of those bytes raised first.
    * link type = network & 0x03FFFFFF (classic).  Decoded link types: see
      DECODED_LINKTYPES; others count size only (in direction), appear in ``undecoded``
      (only when they had frames) and, for classic pcap, set ``undecoded_linktype`` (even
      with 0 packets; None for pcapng).
    * incl_len above libpcap's maximum for the link type raises OracleError at that
      record header's offset, checked as soon as a complete record header is present.
    * pcapng: header checks (length < 12, not a multiple of 4, above the limit, below the
      fixed fields of SHB/IDB/EPB/PB/SPB; the SHB's byte-order magic) as soon as the
      8 (SHB: 12) header bytes are there; trailer, SHB version, interface, captured length
      only once the whole block is.  SPB: captured length = min(original length, snap
      length if not 0, bytes held), also checked against the link type's maximum.
    * t_ns uses unsigned ts fields, no normalisation of ts_frac.
    * direction "out" iff the decoded dotted-quad src string equals ``bridge_ip``.
    * max_gap_s: None (or +inf) = no cap; otherwise exact ns, floored; negative/NaN ->
      ValueError.  A gap is a jump of at least one empty bucket; a jump with zero empty
      buckets is never "cut".

    Decisions for the extended decode, host addresses and wire sizes (where the doc is
    silent):

    * VLAN tags (0x8100, 0x88A8, 0x9100, any order and mix) are skipped only after the
      Ethernet, SLL and SLL2 headers; a tag type with fewer than 4 bytes after it stays the
      ethertype (size only).  Nothing else is walked (MPLS, PPPoE, LLC/SNAP: size only).
    * IPv4 (ethertype 0x0800, RAW version 4, IPV4 link type, NULL/LOOP AF_INET) needs
      version nibble 4 -- also on link type IPV4 (228), whose other packets count by size
      only.  IPv6 comes only from ethertype 0x86DD, RAW version 6, link type IPV6, and
      NULL (either byte order) / LOOP (big-endian) families 10, 24, 28, 30; an IPv6 packet
      behind an "IPv4" link (or the reverse) fails the version check: size only.
    * IPv6 payload length (like IPv4 total length) is not checked: the transport header is
      read from every captured byte after the last extension header, padding included.  The
      fragment header must be all 8 bytes captured before its offset is read; a fragment
      header with offset 0 (an atomic or first fragment) is skipped like any other.
    * A truncated extension header, or a non-first fragment, still counts its destination
      address in unique_dst_ips (DEC_IPV6 is set) and its protocol in tcp/udp_count.
    * unique_dst_ips keys are (IP version, address bytes): 10.0.0.1 and ::ffff:10.0.0.1
      are two addresses.  host_ips match by family and value (ipaddress parsing, so
      "FD00:0::1" is fd00::1); an IPv4-mapped IPv6 host matches only IPv6 sources.
      Unparseable host addresses (or, in extended mode without host_ips, an unparseable
      bridge_ip) raise ValueError.  ``host_ips=[]`` makes every packet "in".
    * With decode="reference", host_ips changes only the direction: out iff the decoded
      IPv4 source is one of the IPv4 hosts (IPv6 hosts never match: no IPv6 is decoded).
      Without host_ips the reference's string comparison with bridge_ip is kept.
    * size="wire" takes each record's original-length field as written (classic
      orig_len; EPB/PB original length; SPB original length), even when it is smaller
      than the captured length.
    """
    if isinstance(bucket_ms, bool) or not isinstance(bucket_ms, int) or bucket_ms <= 0:
        raise ValueError(f"bucket_ms must be a positive integer, got {bucket_ms!r}")
    bucket_ns = bucket_ms * 1_000_000
    max_gap_ns = max_gap_to_ns(max_gap_s)
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {DECODES}, got {decode!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if tunnels not in ("outer", "inner") or (tunnels == "inner" and decode != "extended"):
        raise ValueError(f"tunnels must be 'outer', or 'inner' with the extended decode, got {tunnels!r}")
    extended = decode == "extended"
    wire = size == "wire"
    if host_ips is not None:
        hosts = parse_host_ips(host_ips)
    elif extended:
        hosts = parse_host_ips([bridge_ip])
    else:
        hosts = None  # the reference's rule: the dotted source string equals bridge_ip

    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
    result = OracleResult(on_corrupt=on_corrupt)

    data = bytes(data)
    pending_error = None
    kind = detect_compression(data)
    if kind is not None:
        result.compression = kind
        data, result.truncated_stream, problem = decompress(kind, data)
        if problem is not None:
            pending_error = OracleError(len(data), f"corrupt {kind} data: {problem}")
    elif 0 < len(data) < 6 and any(
        m.startswith(data) and len(data) < len(m) for m in COMPRESSION_MAGICS.values()
    ) and not (data[:4] in MAGIC_ENCODINGS or data[:4] == SHB_TYPE):
        data = b""  # the first bytes of a compressed file still being written: zero packets

    origin = None  # ns, first packet floored to bucket_ns
    running_max = None  # ns
    open_idx = None  # index of the open bucket
    open_bucket = None

    def emit(idx: int, bucket: dict) -> None:
        result.rows.append(make_row(bucket, origin + idx * bucket_ns, bucket_ns, t_mono_origin_ns))

    for number, offset, t_ns, frame, linktype, orig_len in walk_records(data, result):
        result.packets += 1
        if extended:
            d = packet_contribution(decode_packet(frame, linktype, True, tunnels == "inner"))
            out = "src_ip" in d and d["src_ip"] in hosts
        else:
            d = decode_frame(frame, linktype)
            if hosts is None:
                out = None  # accumulate's own rule
            else:
                out = "src_ip" in d and (4, bytes(map(int, d["src_ip"].split(".")))) in hosts
        if linktype not in (EXTENDED_LINKTYPES if extended else DECODED_LINKTYPES):
            result.undecoded[linktype] = result.undecoded.get(linktype, 0) + 1

        if origin is None:
            origin = t_ns - (t_ns % bucket_ns)
            if origin < INT64_MIN or not INT64_MIN <= origin - t_mono_origin_ns <= INT64_MAX:
                raise OracleError(offset, "the first bucket starts before int64 can hold")
            running_max = t_ns
            open_idx = 0
            open_bucket = new_bucket()
        else:
            running_max = max(running_max, t_ns)
            if running_max - origin > INT64_MAX:
                raise OracleError(offset, "more than 2**63 - 1 ns after the first bucket's start")
            idx = (running_max - origin) // bucket_ns
            if origin + idx * bucket_ns - t_mono_origin_ns > INT64_MAX:
                raise OracleError(offset, "t_mono_ns does not fit in an int64")
            if idx > open_idx:
                emit(open_idx, open_bucket)
                empties = idx - open_idx - 1
                if empties > 0:
                    if max_gap_ns is None or empties * bucket_ns <= max_gap_ns:
                        for k in range(open_idx + 1, idx):
                            emit(k, new_bucket())
                    else:
                        result.gaps_cut += 1
                        result.rows_cut += empties
                        if result.first_cut_packet is None:
                            result.first_cut_packet = number
                            result.first_cut_offset = offset
                open_idx = idx
                open_bucket = new_bucket()

        accumulate(open_bucket, d, bridge_ip, size=orig_len if wire else None, out=out)

    if pending_error is not None:
        raise pending_error

    if open_bucket is not None:
        emit(open_idx, open_bucket)

    result.jsonl = b"".join(json.dumps(row).encode() + b"\n" for row in result.rows)
    return result


def oracle_jsonl(data: bytes, **kw) -> bytes:
    return oracle(data, **kw).jsonl
