"""Each packet's class bits (``cls``): what the bucket counters of docs/data-model.md rule 3
count, decided once per packet from its decoded fields.

The compiled walk sets them as it decodes (``classify`` in ``src/_fastpcap.pyx``); this is
the same rule over whole arrays, for the pure-Python twin and for arrays of packets built
outside a walk (``fastpcap.iter_rows`` on an array recomputes them, see :func:`with_classes`).
"""

from __future__ import annotations

import numpy as np

from ._format import (
    CLS_DNS_QUERY,
    CLS_FIN,
    CLS_NEW_FLOW,
    CLS_RST,
    CLS_SYN,
    CLS_TCP,
    CLS_UDP,
    DEC_IPV4,
    DEC_IPV6,
    DEC_PORTS,
)


def classify(packets: np.ndarray) -> np.ndarray:
    """The ``cls`` bits of every packet (uint8), from ``decoded``, ``ip_proto``,
    ``tcp_flags`` and ``dst_port``."""
    dec = packets["decoded"]
    proto = packets["ip_proto"]
    flags = packets["tcp_flags"]  # 0 unless TCP with ports decoded (PACKET_DTYPE's contract)
    ip = (dec & (DEC_IPV4 | DEC_IPV6)) != 0
    tcp = ip & (proto == 6)
    udp = ip & (proto == 17)
    syn = tcp & ((flags & 0x02) != 0)
    cls = tcp.astype(np.uint8) * CLS_TCP
    cls |= udp.astype(np.uint8) * CLS_UDP
    cls |= syn.astype(np.uint8) * CLS_SYN
    cls |= (tcp & ((flags & 0x01) != 0)).astype(np.uint8) * CLS_FIN
    cls |= (tcp & ((flags & 0x04) != 0)).astype(np.uint8) * CLS_RST
    cls |= (udp & ((dec & DEC_PORTS) != 0) & (packets["dst_port"] == 53)).astype(np.uint8) * CLS_DNS_QUERY
    cls |= (syn & ((flags & 0x10) == 0)).astype(np.uint8) * CLS_NEW_FLOW
    return cls


def with_classes(packets: np.ndarray) -> np.ndarray:
    """``packets`` with their ``cls`` field set from their other fields: the same array if
    it already holds exactly those bits, else a copy that does (the caller's is not changed)."""
    cls = classify(packets)
    if np.array_equal(packets["cls"], cls):
        return packets
    packets = packets.copy()
    packets["cls"] = cls
    return packets
