"""fastpcap: packet captures to time-bucketed traffic features, fast and exactly.

The record walk and decode run in a compiled core (``fastpcap._fastpcap``) or, where it is
not built, in a pure-Python twin with identical results; :data:`BACKEND` says which.

The names below are imported when first used (``import fastpcap`` itself loads neither
numpy nor the core), so that the command line starts fast and Ctrl-C during start-up is
handled like at any other moment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api import bucket_frame, bucket_rows, bucket_table, bucketize, iter_rows, write_jsonl, write_parquet
    from .batch import BatchResult, bucketize_many
    from .buckets import Bucketer
    from .capture import iter_packets, open_capture, read_packets
    from .errors import (
        CaptureError,
        CapturePermissionError,
        CaptureStartError,
        CorruptWarning,
        FastpcapWarning,
        GapWarning,
        HostAddressWarning,
        InterfaceNotFoundError,
        LatePacketWarning,
        LinkTypeWarning,
        PrivilegeDropError,
        TcpdumpNotFoundError,
        UnreadableCaptureError,
    )
    from .follow import follow_jsonl, follow_rows
    from .jsonl import format_rows
    from .lifecycle import CaptureHandle, run_capture, stop_capture
    from .options import BucketSpec
    from .pcap import PcapHeader, PcapReader
    from .pcapng import PcapngReader
    from .reader import CaptureReader
    from .rows import ROW_DTYPE, ROW_FIELDS

#: Where each public name lives.
_HOMES = {
    "bucket_rows": "api", "bucketize": "api", "iter_rows": "api", "write_jsonl": "api", "write_parquet": "api",
    "bucket_table": "api", "bucket_frame": "api", "bucketize_many": "batch", "BatchResult": "batch",
    "ROW_DTYPE": "rows", "ROW_FIELDS": "rows", "Bucketer": "buckets",
    "CaptureError": "errors", "CorruptWarning": "errors", "FastpcapWarning": "errors", "GapWarning": "errors",
    "LinkTypeWarning": "errors",
    "UnreadableCaptureError": "errors", "HostAddressWarning": "errors",
    "LatePacketWarning": "errors", "CaptureStartError": "errors", "TcpdumpNotFoundError": "errors",
    "InterfaceNotFoundError": "errors", "CapturePermissionError": "errors", "PrivilegeDropError": "errors",
    "run_capture": "lifecycle", "stop_capture": "lifecycle", "CaptureHandle": "lifecycle",
    "follow_rows": "follow", "follow_jsonl": "follow",
    "format_rows": "jsonl",
    "BucketSpec": "options",
    "PcapngReader": "pcapng", "PcapHeader": "pcap", "PcapReader": "pcap", "CaptureReader": "reader",
    "iter_packets": "capture", "open_capture": "capture", "read_packets": "capture",
}
#: Submodules reachable as attributes (``fastpcap.api``), as after an eager import.
_SUBMODULES = frozenset({"api", "archive", "batch", "buckets", "capture", "classes", "cli", "cli_live",
                         "compression", "errors", "follow", "info", "jsonl", "lifecycle", "manifest", "options",
                         "parallel", "parquet", "pcap", "pcapng", "progress", "reader", "resync", "rows"})
#: Names whose value comes from the core (the same in both backends).
_CORE = ("PACKET_DTYPE", "PACKET6_DTYPE", "DEC_LINK", "DEC_IPV4", "DEC_PORTS", "DEC_IPV6", "DEC_FRAGMENT",
         "CLS_TCP", "CLS_UDP", "CLS_SYN", "CLS_FIN", "CLS_RST", "CLS_DNS_QUERY", "CLS_NEW_FLOW",
         "ENC_VLAN", "ENC_MPLS", "ENC_PPPOE", "ENC_PBB", "ENC_VNTAG", "ENC_GRE", "ENC_PPTP", "ENC_ERSPAN",
         "ENC_ARUBA", "ENC_VXLAN", "ENC_GENEVE", "ENC_GTPU", "ENC_IPIP", "ENC_TZSP")

__all__ = [
    "BACKEND", "PACKET_DTYPE", "PACKET6_DTYPE", "ROW_DTYPE", "ROW_FIELDS", "DEC_LINK", "DEC_IPV4",
    "DEC_PORTS", "DEC_IPV6", "DEC_FRAGMENT", "CLS_TCP", "CLS_UDP", "CLS_SYN", "CLS_FIN", "CLS_RST",
    "CLS_DNS_QUERY", "CLS_NEW_FLOW",
    "ENC_VLAN", "ENC_MPLS", "ENC_PPPOE", "ENC_PBB", "ENC_VNTAG", "ENC_GRE", "ENC_PPTP", "ENC_ERSPAN", "ENC_ARUBA",
    "ENC_VXLAN", "ENC_GENEVE", "ENC_GTPU", "ENC_IPIP", "ENC_TZSP",
    "BatchResult", "BucketSpec", "Bucketer", "CaptureError", "CaptureReader", "CorruptWarning",
    "FastpcapWarning", "GapWarning",
    "HostAddressWarning", "LinkTypeWarning", "PcapHeader", "PcapReader", "PcapngReader", "UnreadableCaptureError",
    "bucket_frame", "bucket_rows", "bucket_table",
    "bucketize", "bucketize_many", "format_rows", "iter_packets", "iter_rows", "open_capture", "read_packets",
    "write_jsonl", "write_parquet", "__version__",
    "CaptureHandle", "CapturePermissionError", "CaptureStartError", "InterfaceNotFoundError", "LatePacketWarning",
    "PrivilegeDropError", "TcpdumpNotFoundError", "follow_jsonl", "follow_rows", "run_capture", "stop_capture",
]


def __getattr__(name: str) -> Any:
    if name == "BACKEND":  # always the backend the functions would use right now
        from . import _backend

        return _backend.name()
    if name in _CORE:
        from . import _backend

        value = getattr(_backend.impl, name)
    elif name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    elif name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'fastpcap' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
