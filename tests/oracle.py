"""A deliberately naive, sequential oracle for the bucketize contract.

Written straight from ``../shared/spec/semantics.md`` (plus the decisions listed in
``oracle()``'s docstring), without looking at fastpcap's implementation, so that the
two can be compared in differential tests.  Clarity over speed: one Python loop over
records, one dict per bucket, ``json.dumps(row)`` per row.  Standard library only.

    >>> oracle_jsonl(b"")
    b''
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

__all__ = ["OracleError", "OracleResult", "oracle", "oracle_jsonl", "LINKTYPE_MAX_INCL_LEN"]


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
    first_cut_offset: int | None = None
    undecoded_linktype: int | None = None
    truncated_tail: bool = False


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


def decode_ethernet(frame: bytes) -> dict:
    """Spec section 2.  Returns a dict with "size" and whatever was decoded among
    "ip_proto", "src_ip", "dst_ip" (dotted strings), "src_port", "dst_port", "tcp_flags"."""
    d = {"size": len(frame)}
    # 1. too short for an Ethernet header: size only
    if len(frame) < 14:
        return d
    # 2. only plain IPv4 (0x0800) is decoded; VLAN, IPv6, ARP, ...: size only
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype != 0x0800:
        return d
    # 3. IPv4 header sanity: only length and IHL are checked
    ip = frame[14:]
    if len(ip) < 20:
        return d
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20 or len(ip) < ihl:
        return d
    # 4. addresses and protocol; the payload keeps any Ethernet padding
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
# Record walk
# ---------------------------------------------------------------------------


def walk(data: bytes, result: OracleResult):
    """Yield ``(packet_number, header_offset, t_ns, frame, linktype)`` for every complete
    record (spec section 1).  Sets ``result.truncated_tail`` / raises OracleError."""
    data = bytes(data)

    # --- global header -----------------------------------------------------
    if len(data) < GLOBAL_HEADER_SIZE:
        if len(data) >= 4 and data[:4] in MAGIC_ENCODINGS:
            return  # a valid magic, header still being written: zero packets
        if any(enc.startswith(data) for enc in MAGIC_ENCODINGS):
            return  # empty file, or a prefix of a valid magic: zero packets
        raise OracleError(0, f"not a pcap file: bad magic {data[:4].hex()} (short file)")
    magic = data[:4]
    if magic not in MAGIC_ENCODINGS:
        raise OracleError(0, f"not a pcap file: bad magic {magic.hex()}")
    bo, nsec = MAGIC_ENCODINGS[magic]
    _magic, _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(
        bo + "IHHiIII", data[:GLOBAL_HEADER_SIZE]
    )
    linktype = network & 0x03FFFFFF
    if linktype != LINKTYPE_ETHERNET:
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
    """Bucketize a whole pcap file held in memory, per the contract.

    Decisions beyond the spec text:

    * Magics 0xA1B2C3D4 / 0xA1B23C4D in either byte order; a byte-swapped file has every
      header and record-header field big-endian.  Short files (< 24 bytes) that are a
      prefix of a valid magic, or start with a valid magic, hold zero packets; anything
      else raises OracleError(offset=0).  ``truncated_tail`` stays False for a short
      global header (it is not a record).
    * link type = network & 0x03FFFFFF; only link type 1 is decoded, others count size
      only (in direction) and set ``undecoded_linktype``.
    * incl_len above libpcap's maximum for the link type raises OracleError at that
      record header's offset, checked as soon as a complete record header is present.
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

    origin = None  # ns, first packet floored to bucket_ns
    running_max = None  # ns
    open_idx = None  # index of the open bucket
    open_bucket = None

    def emit(idx: int, bucket: dict) -> None:
        result.rows.append(make_row(bucket, origin + idx * bucket_ns, bucket_ns, t_mono_origin_ns))

    for number, offset, t_ns, frame, linktype in walk(data, result):
        result.packets += 1
        if linktype == LINKTYPE_ETHERNET:
            d = decode_ethernet(frame)
        else:
            d = {"size": len(frame)}  # not decoded: size only, direction "in"

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

    if open_bucket is not None:
        emit(open_idx, open_bucket)

    result.jsonl = b"".join(json.dumps(row).encode() + b"\n" for row in result.rows)
    return result


def oracle_jsonl(data: bytes, **kw) -> bytes:
    return oracle(data, **kw).jsonl
