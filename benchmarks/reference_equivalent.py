#!/usr/bin/env python3
"""The reference collector's algorithm, runnable: what fastpcap is measured against.

The reference (``shared/seed/000_5da441862a52af4e.txt``, a module that lost its line
breaks) cannot be imported as it is, so this is its algorithm rewritten as a standalone
program with the same structure and therefore the same costs:

* ``_iter_pcap``: the file read with ``f.read`` a record at a time, each 16-byte record
  header unpacked with ``struct.unpack``; the frame is the ``incl_len`` captured bytes;
* ``_decode``: one dict per frame, IPs as dotted strings, ports and flags via ``struct``;
* ``bucketize``: one dict per bucket with two sets for the distinct counts, a ``while`` loop
  that flushes every bucket up to the packet's (empty ones included: no gap cap);
* ``_flush``: ``json.dumps(row)`` per row, appended to a line-buffered text file.

Semantics are those of the contract (``docs/data-model.md``) for what the reference reads:
little-endian classic pcap, microsecond or nanosecond magic, Ethernet frames.  On such files
its output equals ``fastpcap bucketize IN -o OUT --max-gap none`` byte for byte
(``benchmarks/test_bench.py`` checks this on the synthetic traffic).

    python benchmarks/reference_equivalent.py IN.pcap OUT.jsonl [--append]

OUT is replaced unless ``--append`` is given (the reference's ``bucketize`` always appends).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
from pathlib import Path

SOURCE = "bridge_pcap"
AVAILABLE_IN_DEPLOYMENT = True

GLOBAL_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D


def _iter_pcap(path: Path):
    """Yield ``(t_ns, frame)`` for each complete record of a little-endian classic pcap."""
    with path.open("rb") as f:
        header = f.read(GLOBAL_HEADER_LEN)
        if len(header) < GLOBAL_HEADER_LEN:
            return  # empty, or a capture whose header is still being written
        (magic,) = struct.unpack("<I", header[:4])
        if magic == MAGIC_USEC:
            frac_to_ns = 1000
        elif magic == MAGIC_NSEC:
            frac_to_ns = 1
        else:
            raise ValueError(f"{path}: not a little-endian classic pcap (magic 0x{magic:08x})")
        while True:
            record = f.read(RECORD_HEADER_LEN)
            if len(record) < RECORD_HEADER_LEN:
                return  # end of file, or a partial record header
            ts_sec, ts_frac, incl_len, _orig_len = struct.unpack("<IIII", record)
            frame = f.read(incl_len)
            if len(frame) < incl_len:
                return  # a partial record: the capture is still being written
            yield ts_sec * 1_000_000_000 + ts_frac * frac_to_ns, frame


def _decode(frame: bytes) -> dict:
    """Ethernet / IPv4 / TCP or UDP, as far as the frame allows, into a flat dict."""
    d: dict = {"size": len(frame)}
    if len(frame) < 14:
        return d
    (ethertype,) = struct.unpack(">H", frame[12:14])
    d["ethertype"] = ethertype
    if ethertype != 0x0800:
        return d  # ARP, IPv6, VLAN tags...: size only
    ip = frame[14:]
    if len(ip) < 20:
        return d
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20 or len(ip) < ihl:
        return d
    proto = ip[9]
    d["ip_proto"] = proto
    d["src_ip"] = ".".join(str(octet) for octet in ip[12:16])
    d["dst_ip"] = ".".join(str(octet) for octet in ip[16:20])
    l4 = ip[ihl:]
    if proto == 6 and len(l4) >= 20:
        src_port, dst_port, _seq, _ack, offset_flags = struct.unpack(">HHIIH", l4[:14])
        d["src_port"] = src_port
        d["dst_port"] = dst_port
        d["tcp_flags"] = offset_flags & 0x3F
    elif proto == 17 and len(l4) >= 8:
        src_port, dst_port, _length, _checksum = struct.unpack(">HHHH", l4[:8])
        d["src_port"] = src_port
        d["dst_port"] = dst_port
    return d


def _new_bucket() -> dict:
    return {
        "pkts_in": 0, "pkts_out": 0, "bytes_in": 0, "bytes_out": 0,
        "syn_count": 0, "fin_count": 0, "rst_count": 0,
        "udp_count": 0, "tcp_count": 0, "dns_query_count": 0,
        "dst_ips": set(), "dst_ports": set(), "tcp_new_flows": 0,
    }


def _add(bucket: dict, d: dict, bridge_ip: str) -> None:
    size = d["size"]
    if d.get("src_ip") == bridge_ip:
        bucket["pkts_out"] += 1
        bucket["bytes_out"] += size
    else:
        bucket["pkts_in"] += 1
        bucket["bytes_in"] += size
    proto = d.get("ip_proto")
    if proto == 6:
        bucket["tcp_count"] += 1
        flags = d.get("tcp_flags", 0)
        if flags & 0x02:
            bucket["syn_count"] += 1
            if not flags & 0x10:
                bucket["tcp_new_flows"] += 1
        if flags & 0x01:
            bucket["fin_count"] += 1
        if flags & 0x04:
            bucket["rst_count"] += 1
    elif proto == 17:
        bucket["udp_count"] += 1
        if d.get("dst_port") == 53:
            bucket["dns_query_count"] += 1
    if "dst_ip" in d:
        bucket["dst_ips"].add(d["dst_ip"])
    if "dst_port" in d:
        bucket["dst_ports"].add(d["dst_port"])


def _flush(out, bucket: dict, start_ns: int, bucket_ns: int, t_mono_origin_ns: int) -> None:
    row = {
        "t_mono_ns": start_ns - t_mono_origin_ns,
        "t_wall_ns": start_ns,
        "source": SOURCE,
        "available_in_deployment": AVAILABLE_IN_DEPLOYMENT,
        "bucket_ms": bucket_ns // 1_000_000,
    }
    for key in ("pkts_in", "pkts_out", "bytes_in", "bytes_out", "syn_count", "fin_count",
                "rst_count", "udp_count", "tcp_count", "dns_query_count"):
        row[key] = bucket[key]
    row["unique_dst_ips"] = len(bucket["dst_ips"])
    row["unique_dst_ports"] = len(bucket["dst_ports"])
    row["tcp_new_flows"] = bucket["tcp_new_flows"]
    out.write(json.dumps(row) + "\n")


def bucketize(pcap_path: Path, netflow_path: Path, *, bucket_ms: int = 100,
              t_mono_origin_ns: int = 0, bridge_ip: str = "10.200.0.1") -> int:
    """Append one row per ``bucket_ms`` bucket of ``pcap_path`` to ``netflow_path``."""
    pcap_path, netflow_path = Path(pcap_path), Path(netflow_path)
    if not pcap_path.exists():
        return 0
    bucket_ns = bucket_ms * 1_000_000
    netflow_path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    start: int | None = None
    bucket = _new_bucket()
    with netflow_path.open("a", buffering=1) as out:
        for t_ns, frame in _iter_pcap(pcap_path):
            d = _decode(frame)
            if start is None:
                start = t_ns - t_ns % bucket_ns  # epoch-aligned origin
            # A later packet closes every bucket before its own, empty ones included; an
            # earlier one (out of order) stays in the open bucket.
            while t_ns >= start + bucket_ns:
                _flush(out, bucket, start, bucket_ns, t_mono_origin_ns)
                written += 1
                bucket = _new_bucket()
                start += bucket_ns
            _add(bucket, d, bridge_ip)
        if start is not None:  # the open bucket holds at least the packet that opened it
            _flush(out, bucket, start, bucket_ns, t_mono_origin_ns)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--append", action="store_true", help="append to OUTPUT (else it is replaced)")
    parser.add_argument("--bucket-ms", type=int, default=100)
    parser.add_argument("--bridge-ip", default="10.200.0.1")
    parser.add_argument("--t-mono-origin-ns", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.append:
        try:
            os.unlink(args.output)
        except FileNotFoundError:
            pass
    bucketize(args.input, args.output, bucket_ms=args.bucket_ms,
              t_mono_origin_ns=args.t_mono_origin_ns, bridge_ip=args.bridge_ip)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
