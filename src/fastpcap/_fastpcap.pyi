"""Type stubs for the compiled core (src/_fastpcap.pyx); fastpcap/_pure.py is its twin."""

import numpy as np

PACKET_DTYPE: np.dtype
DEC_LINK: int
DEC_IPV4: int
DEC_PORTS: int
WALK_OK: int
WALK_BAD_CAPLEN: int
LINKTYPE_ETHERNET: int

def walk(
    buf: bytes | bytearray | memoryview,  # const uint8_t[::1]
    start: int,
    end: int,
    out: np.ndarray,  # Packet[::1], PACKET_DTYPE
    base_offset: int,
    swapped: bool,
    nsec: bool,
    linktype: int,
    max_caplen: int,
) -> tuple[int, int, int]: ...

class DistinctCounter:
    def __init__(self) -> None: ...
    def first_in_bucket(
        self,
        values: np.ndarray,  # const uint16_t[:] or const uint32_t[:]
        buckets: np.ndarray,  # const int64_t[::1]
        valid: np.ndarray,  # const uint8_t[:]
        out: np.ndarray,  # uint8_t[::1]
    ) -> None: ...
