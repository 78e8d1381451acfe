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
"""

from __future__ import annotations

import bz2
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
    "decode_frame", "LINKTYPE_MAX_INCL_LEN", "DECODED_LINKTYPES", "COMPRESSION_MAGICS",
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


def wrap_int64(x: int) -> int:
    return ((x + (1 << 63)) % (1 << 64)) - (1 << 63)


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


def accumulate(bucket: dict, d: dict, bridge_ip: str) -> None:
    """Spec section 3: one packet's contribution to its bucket."""
    size = d["size"]
    if "src_ip" in d and d["src_ip"] == bridge_ip:
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
# Record walk: classic pcap
# ---------------------------------------------------------------------------


def walk_pcap(data: bytes, result: OracleResult):
    """Yield ``(packet_number, header_offset, t_ns, frame, linktype)`` for every complete
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
    while pos < len(data):
        if len(data) - pos < RECORD_HEADER_SIZE:
            result.truncated_tail = True  # partial record header
            return
        ts_sec, ts_frac, incl_len, _orig_len = struct.unpack(
            bo + "IIII", data[pos : pos + RECORD_HEADER_SIZE]
        )
        if incl_len > limit:
            raise OracleError(
                pos, f"record incl_len {incl_len} exceeds the maximum {limit} for link type {linktype}"
            )
        start = pos + RECORD_HEADER_SIZE
        if len(data) - start < incl_len:
            result.truncated_tail = True  # partial record data
            return
        number += 1
        t_ns = ts_sec * 1_000_000_000 + ts_frac * frac_mult
        yield number, pos, t_ns, data[start : start + incl_len], linktype
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
    """ts (in if_tsresol units) -> ns since the epoch, exactly, floored, wrapped to int64."""
    return wrap_int64(ts * 1_000_000_000 // iface.units_per_s + iface.offset_s * 1_000_000_000)


def block_limit(interfaces: list[Interface]) -> int:
    """The largest total length a block of a section may have (libpcap's rule): 16 MiB, or
    the largest record any of the section's interfaces' link types allows plus 1 MiB, if
    that is larger."""
    return max([MAX_BLOCK_LEN] + [max_incl_len(i.linktype) + BLOCK_SLACK for i in interfaces])


def walk_pcapng(data: bytes, result: OracleResult):
    """Yield ``(packet_number, block_offset, t_ns, frame, linktype)`` for every packet
    block (EPB, SPB, obsolete PB) of a pcapng file.  Checks that need only the block's
    type and length (and, for an SHB, its byte-order magic) are made as soon as those
    bytes are there; the rest once the whole block is.  A block cut short ends the walk
    (``truncated_tail`` unless it is the first SHB)."""
    n = len(data)
    pos = 0
    number = 0
    bo = "<"
    interfaces: list[Interface] = []

    def err(problem: str):
        raise OracleError(pos, problem)

    def partial():
        result.truncated_tail = pos > 0

    while pos < n:
        rem = n - pos
        if rem < 8:
            return partial()
        is_shb = data[pos : pos + 4] == SHB_TYPE
        if is_shb:
            if rem < 12:
                return partial()
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
            limit = block_limit(interfaces)

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
            return partial()

        # --- the whole block is here ------------------------------------------------
        trailer = struct.unpack(sbo + "I", data[pos + length - 4 : pos + length])[0]
        if trailer != length:
            err(f"pcapng: {name} total length {length} differs from the trailing copy {trailer}")
        body = data[pos + 8 : pos + length - 4]

        if is_shb:
            major, _minor = struct.unpack(sbo + "HH", body[4:8])
            if major != 1:
                err(f"pcapng: section header major version {major}, not 1")
            bo = sbo
            interfaces = []  # a new section forgets the previous one's interfaces
        elif btype == BT_IDB:
            iface = parse_idb(body, bo)
            interfaces.append(iface)
            result.linktypes.append(iface.linktype)
        elif btype in PACKET_BLOCKS:
            if btype == BT_EPB:
                iface_id, ts_hi, ts_lo, caplen, _orig = struct.unpack(bo + "IIIII", body[:20])
                holds = len(body) - 20
            elif btype == BT_PB:
                iface_id, _drops, ts_hi, ts_lo, caplen, _orig = struct.unpack(bo + "HHIIII", body[:20])
                holds = len(body) - 20
            else:  # SPB
                iface_id = 0
                (orig,) = struct.unpack(bo + "I", body[:4])
                holds = len(body) - 4
            if iface_id >= len(interfaces):
                err(f"pcapng: {name} on interface {iface_id}, which the section has not described "
                    f"({len(interfaces)} interfaces)")
            iface = interfaces[iface_id]
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
            lmax = max_incl_len(iface.linktype)
            if caplen > lmax:
                err(f"pcapng: {name} captured length {caplen} exceeds the maximum {lmax} "
                    f"for link type {iface.linktype}")
            number += 1
            yield number, pos, t_ns, frame, iface.linktype
        # anything else (NRB, ISB, DSB, custom, unknown): skipped by its length
        pos += length


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------


def walk(data: bytes, result: OracleResult):
    """Yield ``(packet_number, offset, t_ns, frame, linktype)`` from a classic pcap or a
    pcapng file (already decompressed), setting ``result.format``."""
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
) -> OracleResult:
    """Bucketize a whole capture held in memory, per the contract.

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
    """
    if isinstance(bucket_ms, bool) or not isinstance(bucket_ms, int) or bucket_ms <= 0:
        raise ValueError(f"bucket_ms must be a positive integer, got {bucket_ms!r}")
    bucket_ns = bucket_ms * 1_000_000
    max_gap_ns = max_gap_to_ns(max_gap_s)

    result = OracleResult()

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

    for number, offset, t_ns, frame, linktype in walk(data, result):
        result.packets += 1
        d = decode_frame(frame, linktype)
        if linktype not in DECODED_LINKTYPES:
            result.undecoded[linktype] = result.undecoded.get(linktype, 0) + 1

        if origin is None:
            origin = t_ns - (t_ns % bucket_ns)
            running_max = t_ns
            open_idx = 0
            open_bucket = new_bucket()
        else:
            running_max = max(running_max, t_ns)
            idx = (running_max - origin) // bucket_ns
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

        accumulate(open_bucket, d, bridge_ip)

    if pending_error is not None:
        raise pending_error

    if open_bucket is not None:
        emit(open_idx, open_bucket)

    result.jsonl = b"".join(json.dumps(row).encode() + b"\n" for row in result.rows)
    return result


def oracle_jsonl(data: bytes, **kw) -> bytes:
    return oracle(data, **kw).jsonl
