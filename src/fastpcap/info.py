"""``fastpcap info``: what a capture holds, like capinfos, read with the same walk as bucketize."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, BinaryIO

import numpy as np

from ._format import DEC_IPV4, DEC_IPV6, ENC_NAMES, linktype_name
from .capture import open_capture
from .errors import CaptureError
from .pcap import PcapReader

#: The keys of one file's JSON object, in order.
FIELDS = (
    "path", "format", "compression", "byteorder", "linktypes", "snaplen", "packets", "bytes",
    "wire_bytes", "first_ns", "last_ns", "duration_s", "packets_per_s", "out_of_order",
    "ipv4", "ipv6", "arp", "other", "tcp", "udp", "icmp", "encapsulations", "tunnels", "tail_bytes", "skipped_regions",
    "skipped_bytes", "skipped", "stopped", "error",
)


def capture_info(source: str | os.PathLike[str] | BinaryIO,
                 progress: Callable[[int], object] | None = None, *,
                 on_corrupt: str = "error", tunnels: str = "outer") -> dict[str, Any]:
    """Summarise a capture: container, link types, counts, time span, protocol mix.

    A capture that turns out to be corrupt part-way is summarised up to the corrupt record
    and its ``error`` says where and why (``on_corrupt="stop"``: ``stopped`` says it
    instead); with ``on_corrupt="resync"`` it is summarised without the regions a resync
    skipped: ``skipped_regions`` and ``skipped_bytes`` count them, ``skipped`` lists the
    first 100 as ``[offset, bytes]``.  One that cannot be opened raises
    :class:`~fastpcap.CaptureError`.  ``first_ns``/``last_ns`` are the earliest and latest
    timestamps (``None`` without packets).  The protocol mix comes from the extended decode
    (VLAN tags stripped, IPv6 decoded): ``tcp``/``udp``/``icmp`` count IPv4 and IPv6 packets
    (ICMP and ICMPv6); with ``tunnels="inner"``, of the innermost packets of tunnels.
    ``encapsulations`` counts the packets whose decode walked each kind of header (the
    ``encap`` bits, by name: ``vlan``, ``mpls``, ... ``ip-in-ip``); tunnels are walked, and
    so counted, only with ``tunnels="inner"`` (``tunnels`` says which it was).
    """
    reader = open_capture(source, progress=progress, decode="extended", on_corrupt=on_corrupt, tunnels=tunnels)
    info: dict[str, Any] = dict.fromkeys(FIELDS, 0)
    info.update(path=reader.path, format=reader.format, compression=reader.compression,
                first_ns=None, last_ns=None, error=None, tunnels=tunnels)
    encap_counts = np.zeros(16, dtype=np.int64)  # packets with each bit of ``encap``
    runmax: int | None = None
    try:
        for chunk in reader:
            t = chunk["t_ns"]
            lo, hi = int(t.min()), int(t.max())
            info["first_ns"] = lo if info["first_ns"] is None else min(info["first_ns"], lo)
            info["last_ns"] = hi if info["last_ns"] is None else max(info["last_ns"], hi)
            running = np.maximum.accumulate(t)
            if runmax is not None:
                np.maximum(running, runmax, out=running)
            info["out_of_order"] += int((t < running).sum())
            runmax = int(running[-1])
            info["packets"] += len(chunk)
            info["bytes"] += int(chunk["caplen"].sum(dtype=np.int64))
            info["wire_bytes"] += int(chunk["wirelen"].sum(dtype=np.int64))
            ethertype = chunk["ethertype"]
            decoded = chunk["decoded"]
            ipv4 = (decoded & DEC_IPV4) != 0
            ipv6 = (decoded & DEC_IPV6) != 0
            info["ipv4"] += int(ipv4.sum())
            info["ipv6"] += int((ipv6 | (~ipv4 & (ethertype == 0x86DD))).sum())
            info["arp"] += int((ethertype == 0x0806).sum())
            proto = chunk["ip_proto"]
            ip = ipv4 | ipv6
            info["tcp"] += int((ip & (proto == 6)).sum())
            info["udp"] += int((ip & (proto == 17)).sum())
            info["icmp"] += int((ipv4 & (proto == 1) | ipv6 & (proto == 58)).sum())
            encap = chunk["encap"]
            if encap.any():
                encap_counts += np.unpackbits(encap.astype("<u2").view(np.uint8).reshape(-1, 2), axis=1,
                                              bitorder="little").sum(axis=0, dtype=np.int64)
    except CaptureError as exc:
        info["error"] = str(exc)
    finally:
        reader.close()
    info["other"] = info["packets"] - info["ipv4"] - info["ipv6"] - info["arp"]
    info["encapsulations"] = {name: int(encap_counts[bit.bit_length() - 1]) for bit, name in ENC_NAMES.items()}
    info["tail_bytes"] = reader.tail_bytes
    info["skipped_regions"], info["skipped_bytes"] = reader.skipped_regions, reader.skipped_bytes
    info["skipped"] = [list(region) for region in reader.skipped]
    info["stopped"] = None if reader.stopped is None else str(reader.stopped)
    info["linktypes"] = [linktype_name(lt) for lt in reader.linktypes]
    if isinstance(reader, PcapReader):
        header = reader.header
        info["byteorder"] = None if header is None else header.byteorder
        info["snaplen"] = None if header is None else header.snaplen
    else:
        orders = sorted(set(reader.byteorders))  # type: ignore[attr-defined]
        info["byteorder"] = orders[0] if len(orders) == 1 else ("mixed" if orders else None)
        snaplens = sorted({i.snaplen for i in reader.interfaces})  # type: ignore[attr-defined]
        info["snaplen"] = snaplens[0] if len(snaplens) == 1 else (snaplens or None)
    if info["first_ns"] is not None:
        span = info["last_ns"] - info["first_ns"]
        info["duration_s"] = span / 1e9
        info["packets_per_s"] = info["packets"] / (span / 1e9) if span else None
    else:
        info["duration_s"] = info["packets_per_s"] = None
    return info


def to_json(info: dict[str, Any]) -> str:
    """One file's summary as a JSON object (one line)."""
    return json.dumps({key: info[key] for key in FIELDS})


def _time(ns: int | None) -> str:
    if ns is None:
        return "n/a"
    seconds, frac = divmod(ns, 1_000_000_000)
    try:
        stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns since the epoch"
    return f"{stamp}.{frac:09d} UTC"


def _linktypes(names: list[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:  # in order of first appearance, with how many interfaces have each
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name if n == 1 else f"{name} ({n} interfaces)" for name, n in counts.items()) or "n/a"


def _encapsulations(counts: dict[str, int], tunnels: str) -> str:
    seen = ", ".join(f"{_ENC_LABELS.get(name, name)} {n:,}" for name, n in counts.items() if n) or "none"
    return seen + (" (tunnels not walked: --tunnels inner counts them)" if tunnels == "outer" else "")


_ENC_LABELS = {"vlan": "VLAN", "mpls": "MPLS", "pppoe": "PPPoE", "pbb": "PBB", "vn-tag": "VN-Tag", "gre": "GRE",
               "pptp": "PPTP", "erspan": "ERSPAN", "aruba": "Aruba 802.11", "vxlan": "VXLAN", "geneve": "GENEVE",
               "gtp-u": "GTP-U", "ip-in-ip": "IP in IP", "tzsp": "TZSP"}


def to_text(info: dict[str, Any]) -> str:
    """One file's summary as capinfos-like lines."""
    fmt = info["format"] or "unknown (too short)"
    if info["byteorder"]:
        fmt += f", {info['byteorder']}-endian"
    if info["compression"]:
        fmt += f", {info['compression']}-compressed"
    snaplen = info["snaplen"]
    lines = [
        ("File", info["path"]),
        ("Format", fmt),
        ("Link types", _linktypes(info["linktypes"])),
        ("Snap length", "n/a" if snaplen is None else snaplen if not isinstance(snaplen, list)
         else ", ".join(map(str, snaplen))),
        ("Packets", f"{info['packets']:,}"),
        ("Bytes", f"{info['bytes']:,} captured, {info['wire_bytes']:,} on the wire"),
        ("First packet", _time(info["first_ns"])),
        ("Last packet", _time(info["last_ns"])),
        ("Duration", "n/a" if info["duration_s"] is None else f"{info['duration_s']:.9f} s"),
        ("Packet rate", "n/a" if info["packets_per_s"] is None else f"{info['packets_per_s']:,.1f} packets/s"),
        ("Out of order", f"{info['out_of_order']:,} packets earlier than one before them"),
        ("Network", f"IPv4 {info['ipv4']:,}, IPv6 {info['ipv6']:,}, ARP {info['arp']:,}, other {info['other']:,}"),
        ("Transport", f"TCP {info['tcp']:,}, UDP {info['udp']:,}, ICMP/ICMPv6 {info['icmp']:,}"),
        ("Encapsulation", _encapsulations(info["encapsulations"], info["tunnels"])),
        ("Tail", f"{info['tail_bytes']:,} bytes after the last complete record (still being written?)"
         if info["tail_bytes"] else "complete"),
    ]
    if info["skipped_regions"]:
        listed = "; ".join(f"{size:,} at byte offset {offset:,}" for offset, size in info["skipped"])
        more = info["skipped_regions"] - len(info["skipped"])
        lines.append(("Skipped", f"{info['skipped_bytes']:,} corrupt bytes in {info['skipped_regions']:,} "
                                 f"region(s): {listed}{f'; and {more:,} more' if more else ''}"))
    if info["stopped"]:
        lines.append(("Stopped", info["stopped"]))
    if info["error"]:
        lines.append(("Error", info["error"]))
    return "\n".join(f"{label + ':':<16}{value}" for label, value in lines)
