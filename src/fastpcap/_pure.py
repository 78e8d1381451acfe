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
    CLS_DNS_QUERY,
    CLS_FIN,
    CLS_NEW_FLOW,
    CLS_RST,
    CLS_SYN,
    CLS_TCP,
    CLS_UDP,
    DEC_FRAGMENT,
    DEC_IPV4,
    DEC_IPV6,
    DEC_LINK,
    DEC_PORTS,
    ENC_ARUBA,
    ENC_ERSPAN,
    ENC_GENEVE,
    ENC_GRE,
    ENC_GTPU,
    ENC_IPIP,
    ENC_MPLS,
    ENC_PBB,
    ENC_PPPOE,
    ENC_PPTP,
    ENC_TZSP,
    ENC_VLAN,
    ENC_VNTAG,
    ENC_VXLAN,
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
from .classes import classify

__all__ = [  # the compiled core's names, exactly (tests/test_backend.py checks)
    "CLS_DNS_QUERY", "CLS_FIN", "CLS_NEW_FLOW", "CLS_RST", "CLS_SYN", "CLS_TCP", "CLS_UDP",
    "DECODED_LINKTYPES", "DEC_FRAGMENT", "DEC_IPV4", "DEC_IPV6", "DEC_LINK", "DEC_PORTS", "DistinctCounter",
    "ENC_ARUBA", "ENC_ERSPAN", "ENC_GENEVE", "ENC_GRE", "ENC_GTPU", "ENC_IPIP", "ENC_MPLS", "ENC_PBB", "ENC_PPPOE",
    "ENC_PPTP", "ENC_TZSP", "ENC_VLAN", "ENC_VNTAG", "ENC_VXLAN",
    "EXTENDED_LINKTYPES", "MIN_BLOCK_LENGTH", "PACKET6_DTYPE", "PACKET_DTYPE", "WALK_BAD_CAPLEN", "WALK_BAD_INTERFACE",
    "WALK_BAD_TIMESTAMP", "WALK_BAD_TRAILER", "WALK_BLOCK", "WALK_CAPLEN_BEYOND_BLOCK", "WALK_HUGE_BLOCK",
    "WALK_OK", "WALK_SHORT_BLOCK", "WALK_UNALIGNED_BLOCK", "walk", "walk_pcapng",
]

PACKET_DTYPE = np.dtype(
    {
        "names": [
            "t_ns", "offset", "caplen", "wirelen", "src_ip", "dst_ip", "src_port", "dst_port",
            "ethertype", "linktype", "ip_proto", "tcp_flags", "decoded", "cls",
        ],
        "formats": ["<i8", "<i8", "<u4", "<u4", "<u4", "<u4", "<u2", "<u2", "<u2", "<u2", "u1", "u1", "u1", "u1"],
        "offsets": [0, 8, 16, 20, 24, 28, 32, 34, 36, 38, 40, 41, 42, 43],
        "itemsize": 48,
    }
)

PACKET6_DTYPE = np.dtype(
    {
        "names": [
            "t_ns", "offset", "caplen", "wirelen", "src_ip", "dst_ip", "src_port", "dst_port",
            "ethertype", "linktype", "ip_proto", "tcp_flags", "decoded", "cls", "src_ip6", "dst_ip6", "encap",
        ],
        "formats": ["<i8", "<i8", "<u4", "<u4", "<u4", "<u4", "<u2", "<u2", "<u2", "<u2", "u1", "u1", "u1", "u1",
                    ("u1", (16,)), ("u1", (16,)), "<u2"],
        "offsets": [0, 8, 16, 20, 24, 28, 32, 34, 36, 38, 40, 41, 42, 43, 44, 60, 76],
        "itemsize": 80,
    }
)

_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct(">I")


def walk(buf, start: int, end: int, out: np.ndarray, base_offset: int, swapped: bool,
         nsec: bool, linktype: int, max_caplen: int, tunnels: bool = False) -> tuple[int, int, int]:
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
    decode_frames(b, off + 16, h[:, 2], linktype, rec, tunnels)
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
                max_block: int, tunnels: bool = False) -> tuple[int, int, int]:
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
    decode_frames(np.frombuffer(buf, dtype=np.uint8, count=end), f[:, 1], f[:, 2], linktype, rec, tunnels)
    return pos, n, status


def _clear_decode(rec: np.ndarray) -> None:
    """Zero what the decode fills (the walk may be given a reused array)."""
    for name in rec.dtype.names or ():
        if name not in ("t_ns", "offset", "caplen", "wirelen", "linktype"):
            rec[name] = 0


def decode_frames(b: np.ndarray, frame: np.ndarray, caplen: np.ndarray,
                  linktype: int | np.ndarray, rec: np.ndarray, tunnels: bool = False) -> None:
    """The link header by link type (docs/data-model.md, "Link types"), then the network
    layer, for every frame at once: ``frame`` holds the frames' offsets in ``b``; ``linktype``
    is one link type or one per frame.  ``rec``'s decode fields must be zero; rows of
    ``PACKET6_DTYPE`` get the extended decode, and with ``tunnels`` the packets inside tunnels
    (docs/data-model.md, "Tunnels")."""
    n = len(frame)
    net_at = np.full(n, -1, dtype=np.int64)  # where the network layer starts in b
    net_type = np.zeros(n, dtype=np.int64)  # its protocol type (Ethernet type values)
    tagged = np.zeros(n, dtype=bool)  # links whose type may be an encapsulation's
    end = frame + caplen  # where the network layer ends (NFLOG: its payload TLV)
    extended = rec.dtype.names is not None and "dst_ip6" in rec.dtype.names
    if isinstance(linktype, (int, np.integer)):
        groups = [(int(linktype), np.arange(n))]
    else:
        groups = [(int(lt), np.flatnonzero(linktype == lt)) for lt in np.unique(linktype)]
    for lt, idx in groups:
        link = _LINKS.get(lt) or (_MORE_LINKS.get(lt) if extended else None)
        if link is not None:
            link(b, frame[idx], caplen[idx], idx, rec, net_at, net_type, tagged, end)
    used = np.zeros(n, dtype=np.int64)  # encapsulation and tunnel headers walked
    encap = np.zeros(n, dtype=np.int64)  # their ENC_* bits
    if extended:
        _walk_encapsulations(b, net_at, net_type, end, tagged, used, encap)
    pay = _decode_ip(b, net_at, net_type, end, rec, extended)
    if extended and tunnels:
        _walk_tunnels(b, pay, end, used, encap, rec)
    if extended:
        rec["encap"] = encap
    rec["cls"] = classify(rec)


def _decode_ip(b: np.ndarray, net_at: np.ndarray, net_type: np.ndarray, end: np.ndarray, rec: np.ndarray,
               extended: bool) -> np.ndarray:
    """The network layer's type, then IPv4 (or IPv6, extended); returns where each packet's IP
    payload starts (-1: none)."""
    known = net_at >= 0
    rec["ethertype"][known] = net_type[known]
    pay = _decode_ipv4(b, np.where(known & (net_type == 0x0800), net_at, -1), end, rec, extended)
    if extended:
        pay6 = _decode_ipv6(b, np.where(known & (net_type == 0x86DD), net_at, -1), end, rec)
        pay = np.maximum(pay, pay6)
    return pay


#: The fields a tunnel's inner packet replaces (docs/data-model.md, "Tunnels").
_INNER_FIELDS = ("ethertype", "src_ip", "dst_ip", "src_port", "dst_port", "ip_proto", "tcp_flags", "src_ip6",
                 "dst_ip6")
_UDP_TUNNELS = [4789, 6081, 2152, 37008]  # VXLAN, GENEVE, GTP-U, TZSP (UDP destination ports)


def _walk_tunnels(b: np.ndarray, pay: np.ndarray, end: np.ndarray, used: np.ndarray, encap: np.ndarray,
                  rec: np.ndarray) -> None:
    """``tunnels="inner"``: one tunnel per packet per round, while the packet (its IP payload
    at ``pay``) carries one and fewer than _MAX_HEADERS headers were walked; an inner packet
    with an IP header becomes the packet."""
    live = np.flatnonzero(pay >= 0)
    while len(live):
        proto = rec["ip_proto"][live].astype(np.int64)
        udp = (proto == 17) & ((rec["decoded"][live] & DEC_PORTS) != 0) & np.isin(rec["dst_port"][live], _UDP_TUNNELS)
        live = live[np.isin(proto, [4, 41, 47]) | udp]
        live = live[used[live] < _MAX_HEADERS]
        found = [(int(i), *header) for i in live
                 if (header := _tunnel_inner(b, int(rec["ip_proto"][i]), int(rec["dst_port"][i]), int(pay[i]),
                                            int(end[i]))) is not None]
        if not found:
            return
        k, at, ty, tag, enc = (np.array(col, dtype=np.int64) for col in zip(*found))
        tagged = tag.astype(bool)
        used[k] += 1
        encap[k] |= enc
        eth = ty == 0x6558  # an Ethernet frame: its type, then the usual walk
        keep = ~eth | (end[k] - at >= 14)
        k, at, ty, tagged, eth = k[keep], at[keep], ty[keep], tagged[keep], eth[keep]
        ty[eth] = _be16(b, at[eth] + 12)
        at[eth] += 14
        tagged[eth] = True
        inner = np.zeros(len(k), dtype=rec.dtype)
        sub_used, sub_encap = used[k], encap[k]
        _walk_encapsulations(b, at, ty, end[k], tagged, sub_used, sub_encap)
        used[k], encap[k] = sub_used, sub_encap
        inner_pay = _decode_ip(b, at, ty, end[k], inner, True)
        got = (inner["decoded"] & (DEC_IPV4 | DEC_IPV6)) != 0
        k, inner, inner_pay = k[got], inner[got], inner_pay[got]
        for name in _INNER_FIELDS:
            rec[name][k] = inner[name]
        rec["decoded"][k] = (rec["decoded"][k] & DEC_LINK) | inner["decoded"]
        pay[k] = inner_pay
        live = k[inner_pay >= 0]


_Tunnel = tuple[int, int, int, int]


def _tunnel_inner(b: np.ndarray, proto: int, port: int, pay: int, end: int) -> _Tunnel | None:
    """The tunnel header at ``pay`` (IP protocol ``proto``; UDP: destination ``port``): where
    the packet it carries starts, its type (0x6558: an Ethernet frame), whether
    encapsulations may follow and its ENC_* bits; ``None`` when it is not walked."""
    if proto == 4:
        return pay, 0x0800, 0, ENC_IPIP
    if proto == 41:
        return pay, 0x86DD, 0, ENC_IPIP
    if proto == 47:
        return _gre_inner(b, pay, end)
    return _udp_inner(b, pay + 8, end, port)


def _u16(b: np.ndarray, at: int) -> int:
    return int(b[at]) << 8 | int(b[at + 1])


def _gre_inner(b: np.ndarray, at: int, end: int) -> _Tunnel | None:
    if end - at < 4:
        return None
    flags, proto = _u16(b, at), _u16(b, at + 2)
    if flags & 0x4000:  # routing present: not walked
        return None
    size = 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    version = flags & 7
    if version == 1:  # enhanced GRE (PPTP): PPP, and an acknowledgment number with A
        if proto != 0x880B:
            return None
        size += 4 if flags & 0x0080 else 0
        if end - at < size:
            return None
        at += size
        if end - at >= 1 and b[at] == 0xFF:
            at += 2
        if end - at < 1:
            return None
        if b[at] & 1:
            ppp, at = int(b[at]), at + 1
        elif end - at < 2:
            return None
        else:
            ppp, at = _u16(b, at), at + 2
        kind = int(_ppp_types(np.array([ppp]))[0])
        return (at, kind, 1, ENC_GRE | ENC_PPTP) if kind else None
    if version != 0 or end - at < size:
        return None
    at += size
    if proto in (0x0800, 0x86DD, 0x6558):
        return at, proto, 0, ENC_GRE
    if proto in (0x8847, 0x8848):
        return at, proto, 1, ENC_GRE
    if 0x8200 <= proto <= 0x8370 and proto & 0xF == 0:  # Aruba: an IEEE 802.11 frame, no FCS
        return _wlan_inner(b, at, end, ENC_GRE | ENC_ARUBA)
    if proto not in (0x88BE, 0x22EB):
        return None
    if proto == 0x22EB or flags & 0x1000:  # ERSPAN type II or III (type I: no header)
        if end - at < 2:
            return None
        if b[at] >> 4 == 1:
            size = 8
        elif b[at] >> 4 == 2:
            if end - at < 12 or _u16(b, at + 10) & 0x7C00:
                return None
            size = 20 if b[at + 11] & 1 else 12
        else:
            return None
        if end - at < size:
            return None
        at += size
    return at, 0x6558, 0, ENC_GRE | ENC_ERSPAN


def _wlan_inner(b: np.ndarray, at: int, end: int, enc: int) -> _Tunnel | None:
    """The 802.11 frame (no FCS) at ``at`` in a tunnel whose ENC_* bits are ``enc`` (Aruba's
    GRE, TZSP), as the link decode reads one (``_wlan_at``): where its LLC/SNAP payload
    starts and its type, or ``None`` when it has none."""
    one = np.array([at], dtype=np.int64)
    scratch = np.zeros(1, dtype=PACKET6_DTYPE)
    net_at, net_type = np.full(1, -1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    tagged, net_end = np.zeros(1, dtype=bool), np.array([end], dtype=np.int64)
    _wlan_at(b, one, net_end - one, np.zeros(1, dtype=np.int64), scratch, net_at, net_type, tagged, net_end.copy(),
             np.zeros(1, dtype=bool), net_end)
    if net_at[0] < 0:
        return None
    return int(net_at[0]), int(net_type[0]), 1, enc


def _tzsp_inner(b: np.ndarray, at: int, end: int) -> _Tunnel | None:
    """TZSP: version 1, type 0 or 1 (a packet received, one to transmit), encapsulation 1
    (Ethernet) or 18 (IEEE 802.11), the tagged fields up to END, then the frame."""
    if end - at < 4 or b[at] != 1 or b[at + 1] > 1:
        return None
    kind = _u16(b, at + 2)
    if kind not in (1, 18):
        return None
    at += 4
    while True:  # each tag moves on at least one byte: the captured bytes end the loop
        if end - at < 1:
            return None  # no END
        tag = int(b[at])
        if tag == 1:  # END
            at += 1
            break
        if tag == 0:  # padding
            at += 1
        elif end - at < 2 or end - at - 2 < int(b[at + 1]):
            return None  # a tag runs past the captured bytes
        else:
            at += 2 + int(b[at + 1])
    if kind == 1:
        return at, 0x6558, 0, ENC_TZSP
    return _wlan_inner(b, at, end, ENC_TZSP)


def _udp_inner(b: np.ndarray, at: int, end: int, port: int) -> _Tunnel | None:
    if port == 37008:
        return _tzsp_inner(b, at, end)
    if port == 4789:  # VXLAN
        return (at + 8, 0x6558, 0, ENC_VXLAN) if end - at >= 8 else None
    if port == 6081:  # GENEVE
        if end - at < 8 or b[at] >> 6:
            return None
        size = 8 + (int(b[at]) & 0x3F) * 4
        kind = _u16(b, at + 2)
        if end - at < size or kind not in (0x6558, 0x0800, 0x86DD):
            return None
        return at + size, kind, 0, ENC_GENEVE
    # GTP-U: version 1, GTP, a G-PDU
    if end - at < 8 or b[at] >> 5 != 1 or not b[at] & 0x10 or b[at + 1] != 0xFF:
        return None
    if b[at] & 0x07:
        if end - at < 12:
            return None
        nxt = int(b[at + 11])
        at += 12
        for _ in range(_MAX_HEADERS + 1):
            if not nxt:
                break
            if _ == _MAX_HEADERS or end - at < 1 or b[at] == 0:
                return None
            size = int(b[at]) * 4
            if end - at < size:
                return None
            nxt = int(b[at + size - 1])
            at += size
    else:
        at += 8
    if end - at < 1:
        return None
    version = b[at] >> 4
    if version == 4:
        return at, 0x0800, 0, ENC_GTPU
    if version == 6:
        return at, 0x86DD, 0, ENC_GTPU
    return None


_MAX_HEADERS = 8  # encapsulation headers the extended decode walks, at most (a crafted stack ends)
_MAX_TLVS = 32  # NFLOG TLVs read, at most, looking for the payload


def _ppp_types(proto: np.ndarray) -> np.ndarray:
    """PPP protocols as Ethernet types (0: a protocol we do not go on from)."""
    return np.select([proto == 0x0021, proto == 0x0057, proto == 0x0281, proto == 0x0283],
                     [0x0800, 0x86DD, 0x8847, 0x8848], 0)


def _ppp_protocol(b: np.ndarray, at: np.ndarray, end: np.ndarray):
    """The PPP protocol field at ``at`` (one byte when odd, else two): (captured, type, after)."""
    has = end - at >= 1
    first = np.zeros(len(at), dtype=np.int64)
    first[has] = b[at[has]]
    one = has & (first & 1 == 1)
    two = has & ~one & (end - at >= 2)
    proto = first.copy()
    proto[two] = _be16(b, at[two])
    return one | two, _ppp_types(proto), at + np.where(one, 1, 2)


def _walk_encapsulations(b: np.ndarray, net_at: np.ndarray, net_type: np.ndarray, end: np.ndarray,
                         tagged: np.ndarray, used: np.ndarray, encap: np.ndarray) -> None:
    """The extended decode's walk through VLAN tags, PPPoE, MPLS, PBB and VN-Tag headers: one
    header per frame per round, while a frame has walked fewer than _MAX_HEADERS headers
    (``used``, counted on; ``encap``: the ENC_* bits of the headers walked, added to)."""
    walking = tagged & (net_at >= 0)
    for _ in range(_MAX_HEADERS):
        k = np.flatnonzero(walking & np.isin(net_type, _ENCAPSULATIONS) & (used < _MAX_HEADERS))
        if not len(k):
            break
        t, at = net_type[k], net_at[k]
        left = end[k] - at
        new_t, new_at = t.copy(), at.copy()
        stop = np.zeros(len(k), dtype=bool)
        for types, size, type_at in ((_VLAN_TYPES, 4, 2), ([0x88E7], 18, 16), ([0x8926], 6, 4)):
            sel = np.isin(t, types)
            ok = sel & (left >= size)
            new_t[ok] = _be16(b, at[ok] + type_at)
            new_at[ok] = at[ok] + size
            stop |= sel & ~ok
        # MPLS: one label stack entry; after the bottom one, the first nibble tells
        sel = np.isin(t, [0x8847, 0x8848])
        ok = sel & (left >= 4)
        stop |= sel & ~ok
        new_at[ok] = at[ok] + 4
        bos = np.zeros(len(k), dtype=bool)
        bos[ok] = (b[at[ok] + 2] & 1) == 1
        more = bos & (left >= 5)
        stop |= bos & ~more
        nibble = np.zeros(len(k), dtype=np.int64)
        nibble[more] = b[at[more] + 4] >> 4
        new_t[more & (nibble == 4)] = 0x0800
        new_t[more & (nibble == 6)] = 0x86DD
        stop |= more & (nibble != 4) & (nibble != 6)
        # PPPoE session: 6 bytes, then the PPP protocol
        pppoe = np.flatnonzero((t == 0x8864) & (left >= 6))
        stop[t == 0x8864] = True
        captured, ppp, after = _ppp_protocol(b, at[pppoe] + 6, end[k[pppoe]])
        good = captured & (ppp != 0)
        stop[pppoe[good]] = False
        new_t[pppoe[good]] = ppp[good]
        new_at[pppoe[good]] = after[good]
        walking[k[stop]] = False
        go = k[~stop]
        net_type[go] = new_t[~stop]
        net_at[go] = new_at[~stop]
        used[go] += 1
        t = t[~stop]
        encap[go] |= np.select([np.isin(t, _VLAN_TYPES), t == 0x8864, t == 0x88E7, t == 0x8926],
                               [ENC_VLAN, ENC_PPPOE, ENC_PBB, ENC_VNTAG], ENC_MPLS)


_VLAN_TYPES = [0x8100, 0x88A8, 0x9100]
_ENCAPSULATIONS = _VLAN_TYPES + [0x8847, 0x8848, 0x8864, 0x88E7, 0x8926]


def _be16(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (b[at].astype(np.int64) << 8) | b[at + 1]


def _be32(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (_be16(b, at) << 16) | _be16(b, at + 2)


def _le16(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return b[at].astype(np.int64) | (b[at + 1].astype(np.int64) << 8)


def _le32(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    return (_be16(b, at + 2).astype(np.uint16).byteswap().astype(np.int64) << 16
            | _be16(b, at).astype(np.uint16).byteswap())


def _typed_link(header: int, type_at: int):
    """A link with a fixed header whose big-endian u16 at ``type_at`` is an Ethernet type."""

    def decode(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
        ok = caplen >= header
        frame, idx = frame[ok], idx[ok]
        rec["decoded"][idx] = DEC_LINK
        net_type[idx] = _be16(b, frame + type_at)
        net_at[idx] = frame + header
        tagged[idx] = True

    return decode


def _raw(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    ok = caplen >= 1
    frame, idx = frame[ok], idx[ok]
    version = b[frame] >> 4
    rec["decoded"][idx] = DEC_LINK
    for v, kind in ((4, 0x0800), (6, 0x86DD)):
        net_type[idx[version == v]] = kind
        net_at[idx[version == v]] = frame[version == v]


def _fixed(kind: int):
    """A link type that is the network layer itself (IPV4, IPV6)."""

    def decode(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
        rec["decoded"][idx] = DEC_LINK
        net_type[idx] = kind
        net_at[idx] = frame

    return decode


_INET6 = [10, 24, 28, 30]  # AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS


def _family_link(either_order: bool):
    """NULL (address family in the writer's byte order) or LOOP (big-endian)."""

    def decode(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
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


def _chdlc(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    ok = caplen >= 4
    frame, idx = frame[ok], idx[ok]
    rec["decoded"][idx] = DEC_LINK
    net_type[idx] = _be16(b, frame + 2)
    net_at[idx] = frame + 4
    tagged[idx] = np.isin(net_type[idx], [0x8847, 0x8848])  # IPv4, IPv6, or MPLS (walked)


def _ppp(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    first = np.full(len(frame), -1, dtype=np.int64)
    has = caplen >= 1
    first[has] = b[frame[has]]
    cisco = (first == 0x0F) | (first == 0x8F)
    _chdlc(b, frame[cisco], caplen[cisco], idx[cisco], rec, net_at, net_type, tagged, end)
    frame, caplen, idx, first = frame[~cisco], caplen[~cisco], idx[~cisco], first[~cisco]
    captured, ppp, after = _ppp_protocol(b, frame + np.where(first == 0xFF, 2, 0), frame + caplen)
    rec["decoded"][idx[captured]] = DEC_LINK
    go = captured & (ppp != 0)
    net_type[idx[go]] = ppp[go]
    net_at[idx[go]] = after[go]
    tagged[idx[go]] = True


def _fddi(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    ok = caplen >= 13
    frame, caplen, idx = frame[ok], caplen[ok], idx[ok]
    rec["decoded"][idx] = DEC_LINK
    snap = ((b[frame] & 0xF0) == 0x50) & (caplen >= 21)
    frame, idx = frame[snap], idx[snap]
    snap = _llc_snap(b, frame + 13)
    frame, idx = frame[snap], idx[snap]
    net_type[idx] = _be16(b, frame + 19)
    net_at[idx] = frame + 21
    tagged[idx] = True


def _nflog16(b: np.ndarray, at: np.ndarray, big: np.ndarray) -> np.ndarray:
    return np.where(big, _be16(b, at), _le16(b, at))


def _nflog(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    ok = caplen >= 4
    frame, caplen, idx = frame[ok], caplen[ok], idx[ok]
    rec["decoded"][idx] = DEC_LINK
    ok = caplen >= 8
    frame, caplen, idx = frame[ok], caplen[ok], idx[ok]
    # the payload's protocol when no packet header names one: the family's (0: not decoded)
    family = b[frame].astype(np.int64)
    by_family = np.where(family == 2, 0x0800, np.where(family == 10, 0x86DD, 0))
    hw = np.zeros(len(frame), dtype=np.int64)  # the packet header's hw_protocol (0: none yet)
    tle = _le16(b, frame + 6) & 0x7FFF
    tbe = _be16(b, frame + 6) & 0x7FFF
    big = ((tle == 0) | (tle >= 0x100)) & (tbe >= 1) & (tbe < 0x100)
    at = frame + 4
    fend = frame + caplen
    live = np.ones(len(frame), dtype=bool)
    for _ in range(_MAX_TLVS):
        k = np.flatnonzero(live & (fend - at >= 4))
        if not len(k):
            break
        ln = _nflog16(b, at[k], big[k])
        ty = _nflog16(b, at[k] + 2, big[k]) & 0x7FFF
        bad = ln < 4
        header = k[~bad & (ty == 1) & (ln >= 6) & (fend[k] - at[k] >= 6)]  # NFULA_PACKET_HDR
        hw[header] = _be16(b, at[header] + 4)
        pay = ~bad & (ty == 9)
        kind = np.where(hw[k] != 0, hw[k], by_family[k])
        p = k[pay & (kind != 0)]
        net_at[idx[p]] = at[p] + 4
        net_type[idx[p]] = kind[pay & (kind != 0)]
        end[idx[p]] = np.minimum(at[p] + ln[pay & (kind != 0)], fend[p])
        live[k[bad | pay]] = False
        rest = ~bad & ~pay
        at[k[rest]] += (ln[rest] + 3) & ~3


def _llc_snap(b: np.ndarray, at: np.ndarray) -> np.ndarray:
    """LLC/SNAP AA AA 03 with the OUI 00-00-00 or 00-00-F8 at each of ``at``."""
    llc = b[at[:, None] + np.arange(6)]
    return ((llc[:, 0] == 0xAA) & (llc[:, 1] == 0xAA) & (llc[:, 2] == 0x03) & (llc[:, 3] == 0) & (llc[:, 4] == 0)
            & ((llc[:, 5] == 0) | (llc[:, 5] == 0xF8)))


def _wlan_at(b, frame, caplen, idx, rec, net_at, net_type, tagged, end, datapad, net_end) -> None:
    """IEEE 802.11 frames at ``frame`` (``caplen`` bytes each; radiotap's ``datapad``; the
    network layer ending at ``net_end``): a data frame's header, then LLC/SNAP."""
    ok = caplen >= 2
    frame, caplen, idx, datapad, net_end = frame[ok], caplen[ok], idx[ok], datapad[ok], net_end[ok]
    fc0, fc1 = b[frame].astype(np.int64), b[frame + 1].astype(np.int64)
    ok = (fc0 & 0x0F) == 0x08  # version 0, type 2 (data)
    frame, caplen, idx, datapad, net_end, fc0, fc1 = (a[ok] for a in (frame, caplen, idx, datapad, net_end, fc0, fc1))
    subtype = fc0 >> 4
    four = (fc1 & 3) == 3
    qos = (subtype & 8) != 0
    hdr = 24 + np.where(four, 6, 0) + np.where(qos, np.where(fc1 & 0x80, 6, 2), 0)
    hdr = np.where(datapad, (hdr + 3) & ~3, hdr)
    ok = caplen >= hdr
    frame, idx, net_end, fc1, subtype, four, qos, hdr = (a[ok] for a in (frame, idx, net_end, fc1, subtype, four,
                                                                         qos, hdr))
    rec["decoded"][idx] = DEC_LINK
    go = ((subtype & 4) == 0) & ((fc1 & 0x40) == 0)  # data, not protected
    amsdu = np.zeros(len(frame), dtype=bool)
    amsdu[qos] = (b[frame[qos] + np.where(four[qos], 30, 24)] & 0x80) != 0
    go &= ~amsdu & (net_end - frame >= hdr + 8)
    frame, idx, net_end, hdr = frame[go], idx[go], net_end[go], hdr[go]
    go = _llc_snap(b, frame + hdr)
    frame, idx, net_end, hdr = frame[go], idx[go], net_end[go], hdr[go]
    net_type[idx] = _be16(b, frame + hdr + 6)
    net_at[idx] = frame + hdr + 8
    tagged[idx] = True
    end[idx] = net_end


def _wlan(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    _wlan_at(b, frame, caplen, idx, rec, net_at, net_type, tagged, end, np.zeros(len(frame), dtype=bool),
             frame + caplen)


def _le_header(b, frame, caplen, idx):
    """Radiotap's and PPI's common start: version 0, then at 2 the header's length (LE u16),
    at least 8 bytes and all captured.  ``(frame, caplen, idx, length)`` of the frames whose
    header is there."""
    ok = caplen >= 8
    frame, caplen, idx = frame[ok], caplen[ok], idx[ok]
    ok = b[frame] == 0
    frame, caplen, idx = frame[ok], caplen[ok], idx[ok]
    ln = _le16(b, frame + 2)
    ok = (ln >= 8) & (ln <= caplen)
    return frame[ok], caplen[ok], idx[ok], ln[ok]


def _radiotap(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    frame, caplen, idx, ln = _le_header(b, frame, caplen, idx)
    at = np.full(len(frame), 4, dtype=np.int64)  # the last presence word
    live = (b[frame + 7] & 0x80) != 0
    bad = np.zeros(len(frame), dtype=bool)
    while live.any():
        k = np.flatnonzero(live)
        at[k] += 4
        over = at[k] + 4 > ln[k]
        bad[k[over]] = True
        live[k[over]] = False
        k = k[~over]
        live[k] = (b[frame[k] + at[k] + 3] & 0x80) != 0
    present = b[frame + 4].astype(np.int64)
    has_flags = (present & 2) != 0
    fields = np.where(present & 1, ((at + 4 + 7) & ~7) + 8, at + 4)  # after TSFT
    bad |= has_flags & (fields >= ln)
    frame, caplen, idx, ln, has_flags, fields = (a[~bad] for a in (frame, caplen, idx, ln, has_flags, fields))
    flags = np.where(has_flags, b[frame + np.where(has_flags, fields, 0)], 0)
    wlan_len = caplen - ln
    fcs = ((flags & 0x10) != 0) & (wlan_len >= 4)
    _wlan_at(b, frame + ln, wlan_len, idx, rec, net_at, net_type, tagged, end, (flags & 0x20) != 0,
             frame + ln + wlan_len - np.where(fcs, 4, 0))


def _ppi(b, frame, caplen, idx, rec, net_at, net_type, tagged, end) -> None:
    frame, caplen, idx, ln = _le_header(b, frame, caplen, idx)
    frame, caplen, dlt = frame + ln, caplen - ln, _le32(b, frame + 4)
    for lt in np.unique(dlt):  # the frame by its link type: any the extended decode reads but PPI
        link = None if lt == 192 else _LINKS.get(int(lt)) or _MORE_LINKS.get(int(lt))
        if link is not None:
            m = dlt == lt
            link(b, frame[m], caplen[m], idx[m], rec, net_at, net_type, tagged, end)


#: The link types only the extended decode reads (docs/data-model.md, "Extended decode").
_MORE_LINKS = {
    9: _ppp, 50: _ppp,          # PPP, PPP_HDLC (Cisco HDLC when the first byte says so)
    104: _chdlc,                # C_HDLC
    10: _fddi,                  # FDDI with LLC/SNAP
    105: _wlan,                 # IEEE 802.11 data frames with LLC/SNAP
    127: _radiotap,             # radiotap, then IEEE 802.11
    192: _ppi,                  # PPI, then the frame by its link type
    239: _nflog,                # NFLOG
}
EXTENDED_LINKTYPES = DECODED_LINKTYPES | frozenset(_MORE_LINKS)


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
                 extended: bool = False) -> np.ndarray:
    """Spec section 2, steps 3-5, for every packet with an IPv4 header at ``ip_at`` >= 0 (the
    extended decode also checks the version and gives non-first fragments no ports).  Returns
    where each packet's payload starts (-1: no header, or a non-first fragment)."""
    pay = np.full(len(ip_at), -1, dtype=np.int64)
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
    pay[idx] = ip + ihl
    return pay


_EXTENSIONS = [0, 43, 60, 44, 51]  # hop-by-hop, routing, destination options, fragment, AH


def _decode_ipv6(b: np.ndarray, ip_at: np.ndarray, frame_end: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """The extended decode's IPv6 header and extension headers, for every packet at once.
    Returns where each packet's payload starts after them (-1: none, a non-first fragment,
    or an extension header not all captured)."""
    pay = np.full(len(ip_at), -1, dtype=np.int64)
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
    pay[idx[done]] = ip[done] + at[done]
    return pay


# -- distinct values per bucket ---------------------------------------------------------
#
# The compiled counter's table, in numpy arrays (see the comment in src/_fastpcap.pyx): open
# addressing with linear probing, a one-byte generation stamp per slot (another generation
# counts as empty), doubling at 3/4 full, shrinking at a clear of the stamps; the same hash.
# The keys and stamps are two arrays here (4 + 1 or 16 + 1 bytes a slot, as in the compiled
# table), and a growth copies the current generation's keys out before the arrays grow in
# place (``ndarray.resize``: realloc), so it briefly needs 3 more bytes per 32-bit key.
#
# Packets are taken a block at a time.  Within a block, the first packet of each (bucket,
# value) comes from one stable sort; only the block's first bucket can be the open one, so
# only its values are looked up in the table, and only the last bucket's values are added.
# Lookups and inserts probe all their keys at once, one slot further each round; keys that
# reach the same free slot in the same round are told apart by writing them all and reading
# back which one landed.  O(n) expected, like the compiled loop (a sort of at most a block).

_INT64_MIN = -(1 << 63)
_GEN_MAX = 254  # generations are 1..254; 0: a slot unused since the last clear
_MIN_BITS = 12  # a hash table has at least 2**12 slots
_BLOCK = 1 << 16  # packets taken at once: bounds the temporaries, whatever a call's size
_FIB = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def _limit(cap: int) -> int:
    """Most slots the current generation may fill: 3/4 of the table."""
    return cap - (cap >> 2)


def _bits_for(n: int) -> int:
    """Bits of the smallest table that holds ``n`` keys within the load limit."""
    bits = _MIN_BITS
    while _limit(1 << bits) < n:
        bits += 1
    return bits


def _inputs(values, buckets, valid, out) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Check the arguments of ``first_in_bucket``; returns the values (native byte order, rows
    with contiguous bytes), their width in bits, the buckets (contiguous int64) and ``valid``
    (contiguous uint8).  The compiled core checks the same, in the same order, with the same messages."""
    values = np.asarray(values)
    kind = values.dtype
    if values.ndim == 1 and kind.kind == "u" and kind.itemsize in (2, 4):
        width = kind.itemsize * 8
        if not kind.isnative:
            values = values.astype(kind.newbyteorder("="))
    elif values.ndim == 2 and kind == np.uint8 and values.shape[1] == 16:
        width = 128
        if values.strides[1] != 1:
            values = np.ascontiguousarray(values)
    else:
        raise TypeError("values must be a 1-D uint16 or uint32 array, or an (n, 16) uint8 array of "
                        f"addresses, not {kind} of shape {values.shape}")
    buckets = np.asarray(buckets)
    if buckets.ndim != 1 or buckets.dtype.kind not in "iu" or not np.can_cast(buckets.dtype, np.int64):
        raise TypeError(f"buckets must be a 1-D int64 array, not {buckets.dtype} of shape {buckets.shape}")
    buckets = np.ascontiguousarray(buckets, dtype=np.int64)
    valid = np.asarray(valid)
    if valid.ndim != 1 or valid.dtype not in (np.uint8, np.bool_):
        raise TypeError(f"valid must be a 1-D bool or uint8 array, not {valid.dtype} of shape {valid.shape}")
    valid = np.ascontiguousarray(valid).view(np.uint8)
    if (not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.ndim != 1
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise TypeError("out must be a writable, contiguous 1-D uint8 array")
    if len(values) != len(buckets) or len(valid) != len(buckets) or len(out) != len(buckets):
        raise ValueError("values, buckets, valid and out must have the same length")
    return values, width, buckets, valid


def _sorted_rows(rows: np.ndarray) -> np.ndarray:
    """(k, 16) uint8 addresses in bytewise (lexicographic) order."""
    halves = rows.view(">u8")
    return rows[np.lexsort((halves[:, 1], halves[:, 0]))]


class _Direct:
    """16-bit values: a generation stamp per possible value."""

    def __init__(self) -> None:
        self.stamps = np.zeros(1 << 16, dtype=np.uint8)
        self.gen = 1
        self.used = 0

    def contains(self, keys: np.ndarray) -> np.ndarray:
        return self.stamps[keys] == self.gen

    def add(self, keys: np.ndarray) -> None:
        """Add keys that are distinct and not in the current generation."""
        self.stamps[keys] = self.gen
        self.used += len(keys)

    def next_gen(self) -> None:
        self.used = 0
        if self.gen < _GEN_MAX:
            self.gen += 1
            return
        self.gen = 1
        self.stamps[:] = 0

    def values(self) -> np.ndarray:
        return np.flatnonzero(self.stamps == self.gen).astype(np.uint32)


class _Hashed:
    """32-bit keys (uint32) or 128-bit ones (two uint64 words per key, as the 16 bytes lie in
    memory: the compiled table's words), in a generation-stamped linear-probing table."""

    def __init__(self, wide: bool) -> None:
        self.wide = wide
        self.bits = _MIN_BITS
        cap = 1 << _MIN_BITS
        self.keys = np.zeros((cap, 2), dtype=np.uint64) if wide else np.zeros(cap, dtype=np.uint32)
        self.stamps = np.zeros(cap, dtype=np.uint8)
        self.gen = 1
        self.used = 0  # slots of the current generation
        self.peak = 0  # most slots a generation used since the last clear

    def _home(self, keys: np.ndarray) -> np.ndarray:
        """Each key's first slot: the compiled core's hash."""
        if self.wide:
            x = keys[:, 0] * _FIB + keys[:, 1]
            x ^= x >> _S33
            x *= _MIX1
            x ^= x >> _S33
            x *= _MIX2
            x ^= x >> _S33
        else:
            x = keys.astype(np.uint64) * _FIB
        return (x >> np.uint64(64 - self.bits)).astype(np.intp)

    def _equal(self, slots: np.ndarray, keys: np.ndarray) -> np.ndarray:
        found = self.keys[slots]
        return (found == keys).all(axis=1) if self.wide else found == keys

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Which keys are in the current generation."""
        found = np.zeros(len(keys), dtype=bool)
        which = np.arange(len(keys))
        slots = self._home(keys)
        mask = len(self.stamps) - 1
        while len(which):
            taken = self.stamps[slots] == self.gen
            hit = taken & self._equal(slots, keys[which])
            found[which[hit]] = True
            more = taken & ~hit
            which, slots = which[more], (slots[more] + 1) & mask
        return found

    def add(self, keys: np.ndarray) -> None:
        """Add keys that are distinct and not in the current generation."""
        if self.used + len(keys) > _limit(len(self.stamps)):
            self._grow(self.used + len(keys))
        for lo in range(0, len(keys), _BLOCK):
            self._place(keys[lo:lo + _BLOCK])

    def _place(self, keys: np.ndarray) -> None:
        which = np.arange(len(keys))
        slots = self._home(keys)
        mask = len(self.stamps) - 1
        while len(which):
            free = np.flatnonzero(self.stamps[slots] != self.gen)
            at, mine = slots[free], which[free]
            # Keys that reach one free slot together: all are written, one lands (which one
            # does not matter); the others try the next slot with the keys that found it taken.
            if self.wide:
                tag = mine.astype(np.uint64)  # the keys' numbers stand in for the wide keys
                self.keys[at, 0] = tag
                won = self.keys[at, 0] == tag
                self.keys[at[won]] = keys[mine[won]]
            else:
                self.keys[at] = keys[mine]
                won = self.keys[at] == keys[mine]
            self.stamps[at[won]] = self.gen
            more = np.ones(len(which), dtype=bool)
            more[free[won]] = False
            which, slots = which[more], (slots[more] + 1) & mask
        self.used += len(keys)

    def _resize(self, bits: int) -> None:
        """Grow or shrink the arrays in place (realloc; nothing else refers to them), every
        slot empty."""
        cap = 1 << bits
        self.keys.resize((cap, 2) if self.wide else cap, refcheck=False)
        self.stamps.resize(cap, refcheck=False)
        self.stamps[:] = 0
        self.bits = bits

    def _grow(self, need: int) -> None:
        live = self.keys[self.stamps == self.gen]
        self._resize(_bits_for(need))
        self.used = 0
        for lo in range(0, len(live), _BLOCK):
            self._place(live[lo:lo + _BLOCK])

    def next_gen(self) -> None:
        """A new newest bucket: a new generation, empty.  When the generations run out, clear
        the stamps, and shrink a table that none of the recent generations needed."""
        self.peak = max(self.peak, self.used)
        self.used = 0
        if self.gen < _GEN_MAX:
            self.gen += 1
            return
        self.gen = 1
        bits = _bits_for(self.peak)
        if (1 << bits) * 4 <= len(self.stamps):
            self._resize(bits)
        self.peak = 0
        self.stamps[:] = 0

    def values(self) -> np.ndarray:
        live = self.keys[self.stamps == self.gen]
        return _sorted_rows(live.view(np.uint8)) if self.wide else np.sort(live)


class DistinctCounter:
    """Marks the first packet of each distinct value within its bucket (twin of the compiled
    ``DistinctCounter``).  Buckets must not decrease, within and across calls; the values
    of the newest bucket are kept, so the open bucket carries from one chunk to the next.
    Values are uint16, uint32 or (n, 16) uint8 rows (IPv6 addresses); one counter takes one
    width of values."""

    def __init__(self) -> None:
        self._newest = _INT64_MIN  # bucket indexes may be negative
        self._width = 0
        self._table: _Direct | _Hashed | None = None

    def first_in_bucket(self, values: np.ndarray, buckets: np.ndarray, valid: np.ndarray,
                        out: np.ndarray) -> None:
        """Set ``out[i]`` to 1 where ``valid[i]`` and ``values[i]`` is not yet seen in bucket
        ``buckets[i]``, else 0.  ``buckets`` must not decrease, within and across calls.
        ``values``: uint16 or uint32, or (n, 16) uint8 rows (IPv6 addresses)."""
        values, width, buckets, valid = _inputs(values, buckets, valid, out)
        self._check_order(buckets, valid)
        if self._width != width:
            if self._width:
                raise ValueError(f"this counter takes {self._width}-bit values, not {width}-bit ones")
            self._table = _Direct() if width == 16 else _Hashed(width == 128)
            self._width = width
        out[:] = 0
        for lo in range(0, len(buckets), _BLOCK):
            hi = lo + _BLOCK
            self._block(values[lo:hi], buckets[lo:hi], valid[lo:hi], out[lo:hi])

    def _check_order(self, buckets: np.ndarray, valid: np.ndarray) -> None:
        bad = len(buckets) > 1 and bool((buckets[1:] < buckets[:-1]).any())
        first = int(np.argmax(valid != 0)) if len(valid) else 0
        if len(valid) and valid[first] and buckets[first] < self._newest:
            bad = True
        if bad:
            raise ValueError("buckets must not decrease")

    def _block(self, values: np.ndarray, buckets: np.ndarray, valid: np.ndarray, out: np.ndarray) -> None:
        at = np.flatnonzero(valid)
        if not len(at):
            return
        b = buckets[at]
        v = np.ascontiguousarray(values[at]).view(np.uint64) if self._width == 128 else values[at]
        new = self._firsts(b, v)
        table = self._table
        assert table is not None
        if b[0] == self._newest:  # the open bucket goes on: drop the values it already has
            first_run = np.flatnonzero(new[:np.searchsorted(b, b[0], side="right")])
            new[first_run[table.contains(v[first_run])]] = False
        last = int(b[-1])
        if last != self._newest:
            table.next_gen()
            self._newest = last
        start = int(np.searchsorted(b, last))
        table.add(v[start + np.flatnonzero(new[start:])])
        out[at[new]] = 1

    def _firsts(self, b: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The first packet of each (bucket, value), by one stable sort (``b`` sorted)."""
        n = len(b)
        runs = b[0] != b[-1]
        if self._width == 128:
            order = np.lexsort((v[:, 1], v[:, 0], b) if runs else (v[:, 1], v[:, 0]))
            ordered = v[order]
            differs = (ordered[1:] != ordered[:-1]).any(axis=1)
            if runs:
                ordered_b = b[order]
                differs |= ordered_b[1:] != ordered_b[:-1]
        else:
            key = v.astype(np.uint64)
            if runs:  # (run number, value): the run number fits in 32 bits (a block is smaller)
                run = np.zeros(n, dtype=np.uint64)
                np.cumsum(b[1:] != b[:-1], out=run[1:])
                key |= run << np.uint64(32)
            order = np.argsort(key, kind="stable")
            ordered = key[order]
            differs = ordered[1:] != ordered[:-1]
        first = np.ones(n, dtype=bool)
        first[1:] = differs
        new = np.zeros(n, dtype=bool)
        new[order[first]] = True
        return new

    def values_in(self, bucket: int) -> np.ndarray:
        """The distinct values seen in ``bucket``, sorted, if it is the newest bucket a value
        was seen in; otherwise none.  uint32 for 16- and 32-bit values; (k, 16) uint8 rows in
        bytewise order for 128-bit ones."""
        if self._width == 128:
            if bucket != self._newest:
                return np.zeros((0, 16), dtype=np.uint8)
        elif self._width == 0 or bucket != self._newest:
            return np.zeros(0, dtype=np.uint32)
        assert self._table is not None
        return self._table.values()
