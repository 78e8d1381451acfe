"""Pure-Python twin of the compiled core (``src/_fastpcap.pyx``).

Same names, same signatures, same dtype, same status codes, identical results.  The record
headers are walked with one small Python loop per record (``incl_len`` decides where the next
one starts, so this part is inherently sequential); the decode is then done for the whole
chunk at once with numpy gathers over the frame offsets.
"""

from __future__ import annotations

import struct

import numpy as np

PACKET_DTYPE = np.dtype(
    {
        "names": [
            "t_ns", "offset", "caplen", "wirelen", "src_ip", "dst_ip", "src_port", "dst_port",
            "ethertype", "linktype", "ip_proto", "tcp_flags", "decoded",
        ],
        "formats": ["<i8", "<i8", "<u4", "<u4", "<u4", "<u4", "<u2", "<u2", "<u2", "<u2", "u1", "u1", "u1"],
        "offsets": [0, 8, 16, 20, 24, 28, 32, 34, 36, 38, 40, 41, 42],
        "itemsize": 48,
    }
)

DEC_LINK = 1
DEC_IPV4 = 2
DEC_PORTS = 4

WALK_OK = 0
WALK_BAD_CAPLEN = 1

LINKTYPE_ETHERNET = 1

_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct(">I")


def walk(buf, start: int, end: int, out: np.ndarray, base_offset: int, swapped: bool,
         nsec: bool, linktype: int, max_caplen: int) -> tuple[int, int, int]:
    """Walk the complete classic-pcap records in ``buf[start:end]``, decoding each into ``out``.

    See the compiled core for the contract; this twin returns the same ``(pos, n, status)``.
    """
    size = len(buf)
    if start < 0 or end > size or start > end:
        raise ValueError(f"bad block range [{start}, {end}) for a buffer of {size} bytes")
    if out.dtype != PACKET_DTYPE or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous array of PACKET_DTYPE")
    # The one sequential part: each record's length says where the next one starts.
    incl_at = (_U32_BE if swapped else _U32_LE).unpack_from
    cap = len(out)
    offsets: list[int] = []
    append = offsets.append
    pos = start
    n = 0
    status = WALK_OK
    while n < cap and end - pos >= 16:
        incl = incl_at(buf, pos + 8)[0]
        if incl > max_caplen:
            status = WALK_BAD_CAPLEN
            break
        following = pos + 16 + incl
        if following > end:
            break
        append(pos)
        pos = following
        n += 1
    if n == 0:
        return pos, 0, status

    # Everything else at once: gather the 16-byte record headers, then decode the frames.
    b = np.frombuffer(buf, dtype=np.uint8, count=end)
    off = np.array(offsets, dtype=np.int64)
    h = b[off[:, None] + np.arange(16)].view(">u4" if swapped else "<u4").astype(np.int64)
    rec = out[:n]
    rec["t_ns"] = h[:, 0] * 1_000_000_000 + h[:, 1] * (1 if nsec else 1000)
    rec["offset"] = off + base_offset
    rec["caplen"] = h[:, 2]
    rec["wirelen"] = h[:, 3]
    rec["linktype"] = linktype & 0xFFFF
    for name in ("src_ip", "dst_ip", "src_port", "dst_port", "ethertype", "ip_proto",
                 "tcp_flags", "decoded"):
        rec[name] = 0
    if linktype == LINKTYPE_ETHERNET:
        _decode_ethernet(b, off + 16, h[:, 2], rec)
    return pos, n, status


def _decode_ethernet(b: np.ndarray, frame: np.ndarray, caplen: np.ndarray, rec: np.ndarray) -> None:
    """Spec section 2 for every frame at once: ``frame`` holds the frames' offsets in ``b``."""

    def u8(at: np.ndarray) -> np.ndarray:
        return b[at].astype(np.int64)

    def be16(at: np.ndarray) -> np.ndarray:
        return (u8(at) << 8) | u8(at + 1)

    def be32(at: np.ndarray) -> np.ndarray:
        return (be16(at) << 16) | be16(at + 2)

    # Step 1-2: Ethernet header.
    link = np.flatnonzero(caplen >= 14)
    ethertype = be16(frame[link] + 12)
    rec["ethertype"][link] = ethertype
    rec["decoded"][link] = DEC_LINK
    ip4 = link[ethertype == 0x0800]

    # Step 3: an IPv4 header that fits, with a sane IHL.
    iplen = caplen[ip4] - 14
    ip4, iplen = ip4[iplen >= 20], iplen[iplen >= 20]
    ip = frame[ip4] + 14
    ihl = (u8(ip) & 0x0F) * 4
    ok = (ihl >= 20) & (iplen >= ihl)
    idx, ip, ihl, iplen = ip4[ok], ip[ok], ihl[ok], iplen[ok]

    # Step 4: protocol and addresses.
    proto = u8(ip + 9)
    rec["ip_proto"][idx] = proto
    rec["src_ip"][idx] = be32(ip + 12)
    rec["dst_ip"][idx] = be32(ip + 16)
    rec["decoded"][idx] |= DEC_IPV4

    # Step 5: TCP/UDP ports and TCP flags when the header fits.
    pl = ip + ihl
    plen = iplen - ihl
    tcp = (proto == 6) & (plen >= 20)
    l4 = tcp | ((proto == 17) & (plen >= 8))
    rec["src_port"][idx[l4]] = be16(pl[l4])
    rec["dst_port"][idx[l4]] = be16(pl[l4] + 2)
    rec["decoded"][idx[l4]] |= DEC_PORTS
    rec["tcp_flags"][idx[tcp]] = be16(pl[tcp] + 12) & 0x3F


class DistinctCounter:
    """Marks the first packet of each distinct value within its bucket (twin of the compiled
    ``DistinctCounter``).  Buckets must not decrease, within and across calls; the values
    of the newest bucket are kept, so the open bucket carries from one chunk to the next.
    One counter takes one width of values."""

    def __init__(self) -> None:
        self._newest = np.iinfo(np.int64).min  # bucket indexes may be negative
        self._seen = np.zeros(0, dtype=np.uint64)  # sorted values seen in bucket _newest
        self._width = 0

    def first_in_bucket(self, values: np.ndarray, buckets: np.ndarray, valid: np.ndarray,
                        out: np.ndarray) -> None:
        """Set ``out[i]`` to 1 where ``valid[i]`` and ``values[i]`` is not yet seen in bucket
        ``buckets[i]``, else 0.  ``buckets`` must not decrease, within and across calls."""
        n = len(buckets)
        if len(values) != n or len(valid) != n or len(out) != n:
            raise ValueError("values, buckets, valid and out must have the same length")
        if n > 1 and (np.diff(buckets) < 0).any():
            raise ValueError("buckets must not decrease")
        at = np.flatnonzero(valid)
        if len(at) and buckets[at[0]] < self._newest:
            raise ValueError("buckets must not decrease")
        width = {np.dtype(np.uint16): 16, np.dtype(np.uint32): 32}[np.asarray(values).dtype.newbyteorder("=")]
        if self._width and width != self._width:
            raise ValueError(f"this counter takes {self._width}-bit values, not {width}-bit ones")
        self._width = width
        out[:] = 0
        if not len(at):
            return
        b = np.asarray(buckets)[at]
        v = np.asarray(values)[at].astype(np.uint64)
        run = np.concatenate(([0], np.cumsum(b[1:] != b[:-1]))).astype(np.uint64)
        _, first = np.unique((run << np.uint64(32)) | v, return_index=True)
        new = np.zeros(len(at), dtype=bool)
        new[first] = True
        carried = b == self._newest
        if carried.any():
            new[carried] &= ~np.isin(v[carried], self._seen)
        out[at[new]] = 1
        last = b[-1]
        seen_last = np.unique(v[b == last])
        self._seen = np.union1d(self._seen, seen_last) if last == self._newest else seen_last
        self._newest = int(last)

    def values_in(self, bucket: int) -> np.ndarray:
        """The distinct values seen in ``bucket``, sorted (uint32), if it is the newest bucket
        a value was seen in; otherwise none."""
        if bucket != self._newest:
            return np.zeros(0, dtype=np.uint32)
        return self._seen.astype(np.uint32)
