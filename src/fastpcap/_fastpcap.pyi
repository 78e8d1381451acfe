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
        values: np.ndarray,  # 1-D uint16 or uint32 (either byte order), or (n, 16) uint8 rows
        buckets: np.ndarray,  # 1-D integers that cast safely to int64, non-decreasing
        valid: np.ndarray,  # 1-D bool or uint8
        out: np.ndarray,  # uint8_t[::1], written
    ) -> None: ...
    def values_in(
        self,
        bucket: int,  # int64_t
    ) -> np.ndarray: ...  # sorted uint32 (16-/32-bit values); (k, 16) uint8 rows, bytewise order (128-bit)
