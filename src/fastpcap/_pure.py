"""Pure-Python twin of the compiled core (``src/_fastpcap.pyx``).

Same names, same signatures, same dtype, same status codes, identical results.  The record
headers are walked with one small Python loop per record (``incl_len`` decides where the next
one starts, so this part is inherently sequential); the decode is then done for the whole
chunk at once with numpy gathers over the frame offsets.
"""

from __future__ import annotations

import struct

import numpy as np

from ._format import (  # the compiled core exports the same names, with the same values
    ANY_MIN_BLOCK_LENGTH,
    DEC_FRAGMENT,
    DEC_IPV4,
    DEC_IPV6,
    DEC_LINK,
    DEC_PORTS,
    EPB,
    IDB,
    MIN_BLOCK_LENGTH,
    OPB,
    SHB,
    SPB,
    WALK_BAD_CAPLEN,
    WALK_BAD_INTERFACE,
    WALK_BAD_TIMESTAMP,
    WALK_BAD_TRAILER,
    WALK_BLOCK,
    WALK_CAPLEN_BEYOND_BLOCK,
    WALK_HUGE_BLOCK,
    WALK_OK,
    WALK_SHORT_BLOCK,
    WALK_UNALIGNED_BLOCK,
)

__all__ = [  # the compiled core's names, exactly (tests/test_backend.py checks)
    "DECODED_LINKTYPES", "DEC_FRAGMENT", "DEC_IPV4", "DEC_IPV6", "DEC_LINK", "DEC_PORTS", "DistinctCounter",
    "MIN_BLOCK_LENGTH", "PACKET6_DTYPE", "PACKET_DTYPE", "WALK_BAD_CAPLEN", "WALK_BAD_INTERFACE",
    "WALK_BAD_TIMESTAMP", "WALK_BAD_TRAILER", "WALK_BLOCK", "WALK_CAPLEN_BEYOND_BLOCK", "WALK_HUGE_BLOCK",
    "WALK_OK", "WALK_SHORT_BLOCK", "WALK_UNALIGNED_BLOCK", "walk", "walk_pcapng",
]

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

PACKET6_DTYPE = np.dtype(
    {
        "names": [
            "t_ns", "offset", "caplen", "wirelen", "src_ip", "dst_ip", "src_port", "dst_port",
            "ethertype", "linktype", "ip_proto", "tcp_flags", "decoded", "src_ip6", "dst_ip6",
        ],
        "formats": ["<i8", "<i8", "<u4", "<u4", "<u4", "<u4", "<u2", "<u2", "<u2", "<u2", "u1", "u1", "u1",
                    ("u1", (16,)), ("u1", (16,))],
        "offsets": [0, 8, 16, 20, 24, 28, 32, 34, 36, 38, 40, 41, 42, 43, 59],
        "itemsize": 80,
    }
)

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
    if out.dtype not in (PACKET_DTYPE, PACKET6_DTYPE) or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous array of PACKET_DTYPE or PACKET6_DTYPE")
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
    _clear_decode(rec)
    decode_frames(b, off + 16, h[:, 2], linktype, rec)
    return pos, n, status


_U32x2_LE = struct.Struct("<II")
_U32x2_BE = struct.Struct(">II")


def _scale_ts(ts: int, mode: int, factor: int, offset_s: int) -> int | None:
    """Interface time units to ns, exactly as the compiled core does; ``None`` when the
    time does not fit in an int64 (read unsigned, then, if the top bit is set, signed)."""
    ns = _scale_one(ts, mode, factor, offset_s)
    if not -(1 << 63) <= ns < (1 << 63) and ts >> 63:
        ns = _scale_one(ts - (1 << 64), mode, factor, offset_s)
    return ns if -(1 << 63) <= ns < (1 << 63) else None


def _scale_one(ts: int, mode: int, factor: int, offset_s: int) -> int:
    if mode == 0:
        ns = ts * factor
    elif mode == 1:
        ns = ts // factor if factor else 0
    else:
        ns = (ts * 1_000_000_000) >> factor
    return ns + offset_s * 1_000_000_000


def walk_pcapng(buf, start: int, end: int, out: np.ndarray, base_offset: int, swapped: bool,
                if_linktype: np.ndarray, if_snaplen: np.ndarray, if_maxcap: np.ndarray,
                if_tsmode: np.ndarray, if_tsfactor: np.ndarray, if_tsoffset: np.ndarray,
                max_block: int) -> tuple[int, int, int]:
    """Walk the complete pcapng blocks of one section in ``buf[start:end]`` into ``out``.

    See the compiled core for the contract; this twin returns the same ``(pos, n, status)``.
    """
    size = len(buf)
    if start < 0 or end > size or start > end:
        raise ValueError(f"bad block range [{start}, {end}) for a buffer of {size} bytes")
    nif = len(if_linktype)
    if not (len(if_snaplen) == len(if_maxcap) == len(if_tsmode) == len(if_tsfactor) == len(if_tsoffset) == nif):
        raise ValueError("the interface arrays must have the same length")
    if out.dtype not in (PACKET_DTYPE, PACKET6_DTYPE) or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous array of PACKET_DTYPE or PACKET6_DTYPE")
    u32 = (_U32_BE if swapped else _U32_LE).unpack_from
    u16 = struct.Struct(">H" if swapped else "<H").unpack_from
    pair = (_U32x2_BE if swapped else _U32x2_LE).unpack_from
    maxcap = [int(v) for v in if_maxcap]
    snap0 = int(if_snaplen[0]) if nif else 0
    cap = len(out)
    pos = start
    status = WALK_OK
    found: list[tuple[int, int, int, int, int, int]] = []  # block offset, frame offset, caplen, orig, iface, t_ns
    while len(found) < cap and end - pos >= 8:
        btype, blen = pair(buf, pos)
        if btype == SHB:
            status = WALK_BLOCK
            break
        if blen < MIN_BLOCK_LENGTH.get(btype, ANY_MIN_BLOCK_LENGTH):
            status = WALK_SHORT_BLOCK
            break
        if blen % 4:
            status = WALK_UNALIGNED_BLOCK
            break
        if blen > max_block:
            status = WALK_HUGE_BLOCK
            break
        if end - pos < blen:
            break
        if u32(buf, pos + blen - 4)[0] != blen:
            status = WALK_BAD_TRAILER
            break
        if btype == IDB:
            status = WALK_BLOCK
            break
        if btype in (EPB, OPB):
            iface = u32(buf, pos + 8)[0] if btype == EPB else u16(buf, pos + 8)[0]
            if iface >= nif:
                status = WALK_BAD_INTERFACE
                break
            caplen = u32(buf, pos + 20)[0]
            if caplen > blen - 32:
                status = WALK_CAPLEN_BEYOND_BLOCK
                break
            if caplen > maxcap[iface]:
                status = WALK_BAD_CAPLEN
                break
            high, low = pair(buf, pos + 12)
            t_ns = _scale_ts(high << 32 | low, int(if_tsmode[iface]), int(if_tsfactor[iface]),
                             int(if_tsoffset[iface]))
            if t_ns is None:
                status = WALK_BAD_TIMESTAMP
                break
            found.append((pos, pos + 28, caplen, u32(buf, pos + 24)[0], iface, t_ns))
        elif btype == SPB:
            if nif == 0:
                status = WALK_BAD_INTERFACE
                break
            orig = u32(buf, pos + 8)[0]
            caplen = min(orig, blen - 16)
            if snap0 and snap0 < caplen:
                caplen = snap0
            if caplen > maxcap[0]:
                status = WALK_BAD_CAPLEN
                break
            found.append((pos, pos + 12, caplen, orig, 0, 0))
        pos += blen
    n = len(found)
    if n == 0:
        return pos, 0, status
    f = np.array(found, dtype=np.int64).reshape(n, 6)
    rec = out[:n]
    rec["t_ns"] = f[:, 5]
    rec["offset"] = f[:, 0] + base_offset
    rec["caplen"] = f[:, 2]
    rec["wirelen"] = f[:, 3]
    linktype = np.asarray(if_linktype, dtype=np.int64)[f[:, 4]]
    rec["linktype"] = linktype & 0xFFFF
    _clear_decode(rec)
    decode_frames(np.frombuffer(buf, dtype=np.uint8, count=end), f[:, 1], f[:, 2], linktype, rec)
    return pos, n, status


def _clear_decode(rec: np.ndarray) -> None:
    """Zero what the decode fills (the walk may be given a reused array)."""
    for name in rec.dtype.names or ():
        if name not in ("t_ns", "offset", "caplen", "wirelen", "linktype"):
            rec[name] = 0


def decode_frames(b: np.ndarray, frame: np.ndarray, caplen: np.ndarray,
                  linktype: int | np.ndarray, rec: np.ndarray) -> None:
    """The link header by link type (docs/data-model.md, "Link types"), then the network
    layer, for every frame at once: ``frame`` holds the frames' offsets in ``b``; ``linktype``
    is one link type or one per frame.  ``rec``'s decode fields must be zero; rows of
    ``PACKET6_DTYPE`` get the extended decode."""
    n = len(frame)
    net_at = np.full(n, -1, dtype=np.int64)  # where the network layer starts in b
    net_type = np.zeros(n, dtype=np.int64)  # its protocol type (Ethernet type values)
    tagged = np.zeros(n, dtype=bool)  # links whose type may be a VLAN tag's
    if isinstance(linktype, (int, np.integer)):
        groups = [(int(linktype), np.arange(n))]
    else:
        groups = [(int(lt), np.flatnonzero(linktype == lt)) for lt in np.unique(linktype)]
    for lt, idx in groups:
        link = _LINKS.get(lt)
        if link is not None:
            link(b, frame[idx], caplen[idx], idx, rec, net_at, net_type, tagged)
    end = frame + caplen
    extended = rec.dtype.names is not None and "dst_ip6" in rec.dtype.names
    if extended:  # strip VLAN tags while 4 more bytes are there
        while True:
            tag = np.flatnonzero(tagged & np.isin(net_type, _VLAN_TYPES) & (end - net_at >= 4))
            if not len(tag):
                break
            net_type[tag] = _be16(b, net_at[tag] + 2)
            net_at[tag] += 4
    known = net_at >= 0
    rec["ethertype"][known] = net_type[known]
    _decode_ipv4(b, np.where(known & (net_type == 0x0800), net_at, -1), end, rec, extended)
    if extended:
        _decode_ipv6(b, np.where(known & (net_type == 0x86DD), net_at, -1), end, rec)


_VLAN_TYPES = [0x8100, 0x88A8, 0x9100]


def _be16(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (b[at].astype(np.int64) << 8) | b[at + 1]


def _be32(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (_be16(b, at) << 16) | _be16(b, at + 2)


def _le32(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (_be16(b, at + 2).astype(np.uint16).byteswap().astype(np.int64) << 16
            | _be16(b, at).astype(np.uint16).byteswap())


def _typed_link(header: int, type_at: int):
    """A link with a fixed header whose big-endian u16 at ``type_at`` is an Ethernet type."""

    def decode(b, frame, caplen, idx, rec, net_at, net_type, tagged) -> None:
        ok = caplen >= header
        frame, idx = frame[ok], idx[ok]
        rec["decoded"][idx] = DEC_LINK
        net_type[idx] = _be16(b, frame + type_at)
        net_at[idx] = frame + header
        tagged[idx] = True

    return decode


def _raw(b, frame, caplen, idx, rec, net_at, net_type, tagged) -> None:
    ok = caplen >= 1
    frame, idx = frame[ok], idx[ok]
    version = b[frame] >> 4
    rec["decoded"][idx] = DEC_LINK
    for v, kind in ((4, 0x0800), (6, 0x86DD)):
        net_type[idx[version == v]] = kind
        net_at[idx[version == v]] = frame[version == v]


def _fixed(kind: int):
    """A link type that is the network layer itself (IPV4, IPV6)."""

    def decode(b, frame, caplen, idx, rec, net_at, net_type, tagged) -> None:
        rec["decoded"][idx] = DEC_LINK
        net_type[idx] = kind
        net_at[idx] = frame

    return decode


_INET6 = [10, 24, 28, 30]  # AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS


def _family_link(either_order: bool):
    """NULL (address family in the writer's byte order) or LOOP (big-endian)."""

    def decode(b, frame, caplen, idx, rec, net_at, net_type, tagged) -> None:
        ok = caplen >= 4
        frame, idx = frame[ok], idx[ok]
        be = _be32(b, frame)
        le = _le32(b, frame) if either_order else be
        rec["decoded"][idx] = DEC_LINK
        ip4 = (le == 2) | (be == 2)
        ip6 = ~ip4 & (np.isin(le, _INET6) | np.isin(be, _INET6))
        for sel, kind in ((ip4, 0x0800), (ip6, 0x86DD)):
            net_type[idx[sel]] = kind
            net_at[idx[sel]] = frame[sel] + 4

    return decode


_LINKS = {
    1: _typed_link(14, 12),     # EN10MB
    113: _typed_link(16, 14),   # LINUX_SLL
    276: _typed_link(20, 0),    # LINUX_SLL2
    101: _raw, 12: _raw, 14: _raw,
    228: _fixed(0x0800),        # IPV4
    229: _fixed(0x86DD),        # IPV6
    0: _family_link(True),      # NULL
    108: _family_link(False),   # LOOP
}
#: Link types whose header is decoded (the others count by size only).
DECODED_LINKTYPES = frozenset(_LINKS)


def _decode_ports(b: np.ndarray, idx: np.ndarray, pl: np.ndarray, plen: np.ndarray, proto: np.ndarray,
                  rec: np.ndarray) -> None:
    """Spec section 2, step 5: ports of TCP (>= 20 bytes) and UDP (>= 8), TCP flags."""
    tcp = (proto == 6) & (plen >= 20)
    l4 = tcp | ((proto == 17) & (plen >= 8))
    rec["src_port"][idx[l4]] = _be16(b, pl[l4])
    rec["dst_port"][idx[l4]] = _be16(b, pl[l4] + 2)
    rec["decoded"][idx[l4]] |= DEC_PORTS
    rec["tcp_flags"][idx[tcp]] = _be16(b, pl[tcp] + 12) & 0x3F


def _decode_ipv4(b: np.ndarray, ip_at: np.ndarray, frame_end: np.ndarray, rec: np.ndarray,
                 extended: bool = False) -> None:
    """Spec section 2, steps 3-5, for every packet with an IPv4 header at ``ip_at`` >= 0 (the
    extended decode also checks the version and gives non-first fragments no ports)."""
    # Step 3: an IPv4 header that fits, with a sane IHL.
    cand = np.flatnonzero(ip_at >= 0)
    ip = ip_at[cand]
    iplen = frame_end[cand] - ip
    fits = iplen >= 20
    cand, ip, iplen = cand[fits], ip[fits], iplen[fits]
    if extended:
        v4 = (b[ip] >> 4) == 4
        cand, ip, iplen = cand[v4], ip[v4], iplen[v4]
    ihl = (b[ip].astype(np.int64) & 0x0F) * 4
    ok = (ihl >= 20) & (iplen >= ihl)
    idx, ip, ihl, iplen = cand[ok], ip[ok], ihl[ok], iplen[ok]

    # Step 4: protocol and addresses.
    proto = b[ip + 9].astype(np.int64)
    rec["ip_proto"][idx] = proto
    rec["src_ip"][idx] = _be32(b, ip + 12)
    rec["dst_ip"][idx] = _be32(b, ip + 16)
    rec["decoded"][idx] |= DEC_IPV4
    if extended:
        frag = (_be16(b, ip + 6) & 0x1FFF) != 0
        rec["decoded"][idx[frag]] |= DEC_FRAGMENT
        whole = ~frag
        idx, ip, ihl, iplen, proto = idx[whole], ip[whole], ihl[whole], iplen[whole], proto[whole]

    # Step 5: TCP/UDP ports and TCP flags when the header fits.
    _decode_ports(b, idx, ip + ihl, iplen - ihl, proto, rec)


_EXTENSIONS = [0, 43, 60, 44, 51]  # hop-by-hop, routing, destination options, fragment, AH


def _decode_ipv6(b: np.ndarray, ip_at: np.ndarray, frame_end: np.ndarray, rec: np.ndarray) -> None:
    """The extended decode's IPv6 header and extension headers, for every packet at once."""
    cand = np.flatnonzero(ip_at >= 0)
    ip = ip_at[cand]
    iplen = frame_end[cand] - ip
    ok = iplen >= 40
    cand, ip, iplen = cand[ok], ip[ok], iplen[ok]
    ok = (b[ip] >> 4) == 6
    idx, ip, iplen = cand[ok], ip[ok], iplen[ok]
    span = np.arange(16)
    rec["src_ip6"][idx] = b[ip[:, None] + 8 + span]
    rec["dst_ip6"][idx] = b[ip[:, None] + 24 + span]
    rec["decoded"][idx] |= DEC_IPV6
    nh = b[ip + 6].astype(np.int64)
    at = np.full(len(idx), 40, dtype=np.int64)
    walking = np.ones(len(idx), dtype=bool)  # still following extension headers
    fragment = np.zeros(len(idx), dtype=bool)
    while True:
        k = np.flatnonzero(walking & np.isin(nh, _EXTENSIONS))
        if not len(k):
            break
        left = iplen[k] - at[k]
        is_frag = nh[k] == 44
        # fragment header: 8 bytes; a non-zero offset ends the walk
        f = k[is_frag & (left >= 8)]
        offset = _be16(b, ip[f] + at[f] + 2) >> 3
        nxt = b[ip[f] + at[f]].astype(np.int64)
        later = offset != 0
        fragment[f[later]] = True
        walking[f[later]] = False
        nh[f] = nxt
        at[f[~later]] += 8
        walking[k[is_frag & (left < 8)]] = False
        # the others: their size is in their second byte
        o = k[~is_frag]
        short = iplen[o] - at[o] < 2
        walking[o[short]] = False
        o = o[~short]
        second = b[ip[o] + at[o] + 1].astype(np.int64)
        size = np.where(nh[o] == 51, (second + 2) * 4, (second + 1) * 8)
        fits = iplen[o] - at[o] >= size
        walking[o[~fits]] = False
        o, size = o[fits], size[fits]
        nh[o] = b[ip[o] + at[o]].astype(np.int64)
        at[o] += size
    rec["ip_proto"][idx] = nh
    rec["decoded"][idx[fragment]] |= DEC_FRAGMENT
    done = ~fragment & ~np.isin(nh, _EXTENSIONS)
    _decode_ports(b, idx[done], ip[done] + at[done], iplen[done] - at[done], nh[done], rec)


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
