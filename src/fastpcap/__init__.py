"""fastpcap: packet captures to time-bucketed traffic features, fast and exactly.

The record walk and decode run in a compiled core (``fastpcap._fastpcap``) or, where it is
not built, in a pure-Python twin with identical results; :data:`BACKEND` says which.
"""

from __future__ import annotations

from typing import Any

from . import _backend
from .api import bucket_rows, bucketize, iter_rows, write_jsonl
from .buckets import ROW_DTYPE, ROW_FIELDS, Bucketer
from .errors import CaptureError, FastpcapWarning, GapWarning, LinkTypeWarning
from .jsonl import format_rows
from .pcapng import PcapngReader
from .reader import CaptureReader, PcapHeader, PcapReader, iter_packets, open_capture, read_packets

__version__ = "0.1.0"

#: Packet rows produced by the record walk; see docs/data-model.md.
PACKET_DTYPE = _backend.impl.PACKET_DTYPE
#: Packet rows of the extended decode (PACKET_DTYPE's fields, then IPv6 addresses).
PACKET6_DTYPE = _backend.impl.PACKET6_DTYPE
#: Bits of the packets' ``decoded`` field.
DEC_LINK = _backend.impl.DEC_LINK
DEC_IPV4 = _backend.impl.DEC_IPV4
DEC_PORTS = _backend.impl.DEC_PORTS
DEC_IPV6 = _backend.impl.DEC_IPV6
DEC_FRAGMENT = _backend.impl.DEC_FRAGMENT

__all__ = [
    "BACKEND", "PACKET_DTYPE", "PACKET6_DTYPE", "ROW_DTYPE", "ROW_FIELDS", "DEC_LINK", "DEC_IPV4",
    "DEC_PORTS", "DEC_IPV6", "DEC_FRAGMENT",
    "Bucketer", "CaptureError", "CaptureReader", "FastpcapWarning", "GapWarning", "LinkTypeWarning",
    "PcapHeader", "PcapReader", "PcapngReader", "bucket_rows", "bucketize", "format_rows",
    "iter_packets", "iter_rows", "open_capture", "read_packets", "write_jsonl", "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "BACKEND":  # always the backend the functions above would use right now
        return _backend.name()
    raise AttributeError(f"module 'fastpcap' has no attribute {name!r}")
