# Compiler directives (bounds checks off, cdivision, ...) are set in one place: setup.py.
"""Compiled core of fastpcap: the pcap and pcapng walks, the link/IPv4/IPv6/TCP/UDP decode, and
the distinct-value counter.

Installed as ``fastpcap._fastpcap``; ``fastpcap/_pure.py`` is its pure-Python twin and must
give identical results (same signatures, same dtype, same status codes).  The hot loop runs
over one block of bytes with the GIL released; the caller (``fastpcap.reader``) owns the
block, carries partial records across blocks and turns status codes into exceptions.
"""

from libc.stdint cimport INT64_MIN, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import numpy as np

# One row per packet.  The numpy dtype is derived from this struct (below), so the two
# cannot drift; the twin spells the same dtype out and a test checks they are equal.
ctypedef struct Packet:
    int64_t t_ns
    int64_t offset
    uint32_t caplen
    uint32_t wirelen
    uint32_t src_ip
    uint32_t dst_ip
    uint16_t src_port
    uint16_t dst_port
    uint16_t ethertype
    uint16_t linktype
    uint8_t ip_proto
    uint8_t tcp_flags
    uint8_t decoded
    uint8_t cls  # CLS_* bits: what the bucket counters count (classify())

# The same row for the extended decode, with room for IPv6 addresses.
ctypedef struct Packet6:
    int64_t t_ns
    int64_t offset
    uint32_t caplen
    uint32_t wirelen
    uint32_t src_ip
    uint32_t dst_ip
    uint16_t src_port
    uint16_t dst_port
    uint16_t ethertype
    uint16_t linktype
    uint8_t ip_proto
    uint8_t tcp_flags
    uint8_t decoded
    uint8_t cls  # CLS_* bits: what the bucket counters count (classify())
    uint8_t src_ip6[16]
    uint8_t dst_ip6[16]
    uint16_t encap  # C_ENC_* bits: the encapsulation and tunnel headers walked

# The walkers take either: the kind of row decides the decode (Packet6: extended).
ctypedef fused packet_t:
    Packet
    Packet6

cdef Packet _dummy
cdef Packet6 _dummy6
PACKET_DTYPE = np.asarray(<Packet[:1]>(&_dummy)).dtype
PACKET6_DTYPE = np.asarray(<Packet6[:1]>(&_dummy6)).dtype

# The codes below are fastpcap._format's (the one home of the container facts); C code needs
# its own copy, and tests/test_backend.py checks the two are equal.
cdef enum:
    # Bits of Packet.decoded: how far the decode got (docs/data-model.md).
    C_DEC_LINK = 1    # link header decoded: ethertype is valid
    C_DEC_IPV4 = 2    # IPv4 header decoded: ip_proto, src_ip, dst_ip are valid
    C_DEC_PORTS = 4   # TCP or UDP header decoded: ports (and TCP flags) are valid
    C_DEC_IPV6 = 8    # extended decode: IPv6 header decoded (src_ip6, dst_ip6, ip_proto)
    C_DEC_FRAGMENT = 16  # extended decode: a non-first fragment (no ports, no flags)
    # Why a walk stopped.
    # Bits of Packet.cls: the packet's class, what each bucket counter counts (docs/data-model.md).
    C_CLS_TCP = 1        # IPv4 (or IPv6, extended) with protocol 6
    C_CLS_UDP = 2        # ... with protocol 17
    C_CLS_SYN = 4        # TCP with SYN
    C_CLS_FIN = 8        # TCP with FIN
    C_CLS_RST = 16       # TCP with RST
    C_CLS_DNS_QUERY = 32  # UDP with ports decoded and destination port 53
    C_CLS_NEW_FLOW = 64  # TCP with SYN and not ACK
    # Bits of Packet6.encap: the headers the extended decode walked (docs/data-model.md).
    C_ENC_VLAN = 1       # 802.1Q, 802.1ad, QinQ (0x9100) tags
    C_ENC_MPLS = 2       # MPLS label stack entries
    C_ENC_PPPOE = 4      # a PPPoE session header
    C_ENC_PBB = 8        # an 802.1ah (PBB) header
    C_ENC_VNTAG = 16     # a VN-Tag
    C_ENC_GRE = 32       # GRE (tunnels="inner"), any of the kinds below too
    C_ENC_PPTP = 64      # enhanced GRE (version 1, PPTP), carrying PPP
    C_ENC_ERSPAN = 128   # ERSPAN type I, II or III inside GRE
    C_ENC_ARUBA = 256    # Aruba's 802.11 inside GRE
    C_ENC_VXLAN = 512
    C_ENC_GENEVE = 1024
    C_ENC_GTPU = 2048
    C_ENC_IPIP = 4096    # IP in IP, IPv6 in IP (protocols 4 and 41)
    C_ENC_TZSP = 8192    # TZSP (UDP 37008): a frame a remote sniffer captured
    C_WALK_OK = 0           # a partial record or block, the end of the block, or `out` full
    C_WALK_BAD_CAPLEN = 1   # a captured length above the link type's maximum
    C_WALK_BLOCK = 2        # pcapng: a section header or interface block for the caller to read
    C_WALK_BAD_INTERFACE = 4  # pcapng: a packet block on an interface the section lacks
    C_WALK_BAD_TIMESTAMP = 5  # pcapng: a packet block whose time does not fit int64 nanoseconds
    C_WALK_SHORT_BLOCK = 6  # pcapng: a total length below the block type's fixed fields
    C_WALK_UNALIGNED_BLOCK = 7  # pcapng: a total length that is not a multiple of 4
    C_WALK_HUGE_BLOCK = 8   # pcapng: a total length above the section's limit
    C_WALK_BAD_TRAILER = 9  # pcapng: the trailing copy of the total length differs
    C_WALK_CAPLEN_BEYOND_BLOCK = 10  # pcapng: a captured length larger than the block holds
    # pcapng block types
    C_SHB = 0x0A0D0D0A
    C_IDB = 1
    C_OPB = 2
    C_SPB = 3
    C_EPB = 6
    # The extended decode's bounds (docs/data-model.md): encapsulation headers walked, NFLOG TLVs read.
    C_MAX_HEADERS = 8
    C_MAX_TLVS = 32

DEC_LINK = C_DEC_LINK
DEC_IPV4 = C_DEC_IPV4
DEC_PORTS = C_DEC_PORTS
DEC_IPV6 = C_DEC_IPV6
DEC_FRAGMENT = C_DEC_FRAGMENT
CLS_TCP = C_CLS_TCP
CLS_UDP = C_CLS_UDP
CLS_SYN = C_CLS_SYN
CLS_FIN = C_CLS_FIN
CLS_RST = C_CLS_RST
CLS_DNS_QUERY = C_CLS_DNS_QUERY
CLS_NEW_FLOW = C_CLS_NEW_FLOW
ENC_VLAN = C_ENC_VLAN
ENC_MPLS = C_ENC_MPLS
ENC_PPPOE = C_ENC_PPPOE
ENC_PBB = C_ENC_PBB
ENC_VNTAG = C_ENC_VNTAG
ENC_GRE = C_ENC_GRE
ENC_PPTP = C_ENC_PPTP
ENC_ERSPAN = C_ENC_ERSPAN
ENC_ARUBA = C_ENC_ARUBA
ENC_VXLAN = C_ENC_VXLAN
ENC_GENEVE = C_ENC_GENEVE
ENC_GTPU = C_ENC_GTPU
ENC_IPIP = C_ENC_IPIP
ENC_TZSP = C_ENC_TZSP
WALK_OK = C_WALK_OK
WALK_BAD_CAPLEN = C_WALK_BAD_CAPLEN
WALK_BLOCK = C_WALK_BLOCK
WALK_BAD_INTERFACE = C_WALK_BAD_INTERFACE
WALK_BAD_TIMESTAMP = C_WALK_BAD_TIMESTAMP
WALK_SHORT_BLOCK = C_WALK_SHORT_BLOCK
WALK_UNALIGNED_BLOCK = C_WALK_UNALIGNED_BLOCK
WALK_HUGE_BLOCK = C_WALK_HUGE_BLOCK
WALK_BAD_TRAILER = C_WALK_BAD_TRAILER
WALK_CAPLEN_BEYOND_BLOCK = C_WALK_CAPLEN_BEYOND_BLOCK
#: Link types whose header decode_frame() decodes (the others count by size only).
DECODED_LINKTYPES = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 276})
#: Link types the extended decode reads: those, and PPP, PPP_HDLC, C_HDLC, FDDI and NFLOG.
EXTENDED_LINKTYPES = DECODED_LINKTYPES | frozenset({9, 10, 50, 104, 105, 127, 192, 239})
#: The shortest total length of each pcapng block type (min_block_length below).
MIN_BLOCK_LENGTH = {C_SHB: 28, C_IDB: 20, C_EPB: 32, C_OPB: 32, C_SPB: 16}


cdef inline uint16_t be16(const uint8_t* p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline uint32_t be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint32_t le32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | p[0]


cdef inline void decode_ports(const uint8_t* pl, uint32_t plen, packet_t* r) noexcept nogil:
    """Spec section 2, step 5: ports of TCP (>= 20 bytes) and UDP (>= 8), TCP flags."""
    if r.ip_proto == 6:
        if plen >= 20:
            r.src_port = be16(pl)
            r.dst_port = be16(pl + 2)
            r.tcp_flags = be16(pl + 12) & 0x3F
            r.decoded |= C_DEC_PORTS
    elif r.ip_proto == 17:
        if plen >= 8:
            r.src_port = be16(pl)
            r.dst_port = be16(pl + 2)
            r.decoded |= C_DEC_PORTS


cdef inline uint32_t decode_ipv4(const uint8_t* ip, uint32_t iplen, packet_t* r) noexcept nogil:
    """Spec section 2, steps 3-5, on the bytes after the link header (the extended decode
    also checks the version and gives non-first fragments no ports).  Returns the header
    length when what follows it is the payload's start (0: no header, or a non-first fragment)."""
    cdef uint32_t ihl
    if iplen < 20:
        return 0
    if packet_t is Packet6:
        if ip[0] >> 4 != 4:
            return 0
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20 or iplen < ihl:
        return 0
    r.ip_proto = ip[9]
    r.src_ip = be32(ip + 12)
    r.dst_ip = be32(ip + 16)
    r.decoded |= C_DEC_IPV4
    if packet_t is Packet6:
        if be16(ip + 6) & 0x1FFF:
            r.decoded |= C_DEC_FRAGMENT
            return 0
    decode_ports(ip + ihl, iplen - ihl, r)
    return ihl


cdef inline uint32_t decode_ipv6(const uint8_t* ip, uint32_t iplen, Packet6* r) noexcept nogil:
    """The extended decode's IPv6 header and extension headers (docs/data-model.md).  Returns
    the offset of the payload after them (0: none, a non-first fragment, or one not all captured)."""
    cdef uint32_t at = 40, size
    cdef uint8_t nh
    cdef int i
    if iplen < 40 or ip[0] >> 4 != 6:
        return 0
    for i in range(16):
        r.src_ip6[i] = ip[8 + i]
        r.dst_ip6[i] = ip[24 + i]
    r.decoded |= C_DEC_IPV6
    nh = ip[6]
    while nh == 0 or nh == 43 or nh == 60 or nh == 44 or nh == 51:
        if nh == 44:
            if iplen - at < 8:
                break
            if be16(ip + at + 2) >> 3:  # a non-first fragment: its protocol, no ports
                r.ip_proto = ip[at]
                r.decoded |= C_DEC_FRAGMENT
                return 0
            nh = ip[at]
            at += 8
            continue
        if iplen - at < 2:
            break
        size = (<uint32_t>ip[at + 1] + 2) * 4 if nh == 51 else (<uint32_t>ip[at + 1] + 1) * 8
        if iplen - at < size:
            break
        nh = ip[at]
        at += size
    r.ip_proto = nh
    if nh == 0 or nh == 43 or nh == 60 or nh == 44 or nh == 51:
        return 0  # an extension header not all captured
    decode_ports(ip + at, iplen - at, r)
    return at


cdef inline bint is_inet6(uint32_t family) noexcept nogil:
    # AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
    return family == 10 or family == 24 or family == 28 or family == 30


cdef inline int ppp_protocol(const uint8_t* f, uint32_t caplen, uint32_t* at) noexcept nogil:
    """The PPP protocol field at ``at[0]`` (one byte when odd: field compression; else two) as
    an Ethernet type: 0x0021 IPv4, 0x0057 IPv6, 0x0281/0x0283 MPLS; 0 for any other protocol,
    -1 when the field is not all captured.  ``at[0]`` moves past the field."""
    cdef uint16_t proto
    if caplen - at[0] < 1 or at[0] > caplen:
        return -1
    if f[at[0]] & 1:
        proto = f[at[0]]
        at[0] += 1
    else:
        if caplen - at[0] < 2:
            return -1
        proto = be16(f + at[0])
        at[0] += 2
    if proto == 0x0021:
        return 0x0800
    if proto == 0x0057:
        return 0x86DD
    if proto == 0x0281:
        return 0x8847
    if proto == 0x0283:
        return 0x8848
    return 0


cdef inline uint32_t decode_ip(const uint8_t* f, uint32_t caplen, uint32_t at, uint16_t ethertype,
                               bint tagged, packet_t* r, int* n) noexcept nogil:
    """From the protocol type found at offset ``at``: the encapsulations (extended, ``tagged``
    links: VLAN tags, PPPoE, MPLS, PBB, VN-Tag; ``n[0]`` counts the headers walked, at most
    C_MAX_HEADERS), then IPv4, or IPv6 (extended).  Returns the offset of the IP payload (0:
    none, see decode_ipv4/decode_ipv6)."""
    cdef int t
    cdef uint32_t a
    if packet_t is Packet6:
        if tagged:
            while n[0] < C_MAX_HEADERS and ethertype != 0x0800 and ethertype != 0x86DD:
                if ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100:
                    if caplen - at < 4:
                        break
                    ethertype = be16(f + at + 2)
                    at += 4
                    r.encap |= C_ENC_VLAN
                elif ethertype == 0x8847 or ethertype == 0x8848:  # one MPLS label stack entry
                    if caplen - at < 4:
                        break
                    at += 4
                    if f[at - 2] & 1:  # bottom of stack: the first nibble tells
                        if caplen - at < 1:
                            break
                        if f[at] >> 4 == 4:
                            ethertype = 0x0800
                        elif f[at] >> 4 == 6:
                            ethertype = 0x86DD
                        else:
                            break
                    r.encap |= C_ENC_MPLS
                elif ethertype == 0x8864:  # PPPoE session: 6 bytes, then the PPP protocol
                    if caplen - at < 6:
                        break
                    a = at + 6
                    t = ppp_protocol(f, caplen, &a)
                    if t <= 0:
                        break
                    ethertype = <uint16_t>t
                    at = a
                    r.encap |= C_ENC_PPPOE
                elif ethertype == 0x88E7:  # 802.1ah: I-TAG, customer addresses, type
                    if caplen - at < 18:
                        break
                    ethertype = be16(f + at + 16)
                    at += 18
                    r.encap |= C_ENC_PBB
                elif ethertype == 0x8926:  # VN-Tag: 4 bytes, then the type
                    if caplen - at < 6:
                        break
                    ethertype = be16(f + at + 4)
                    at += 6
                    r.encap |= C_ENC_VNTAG
                else:
                    break
                n[0] += 1
    r.ethertype = ethertype
    if ethertype == 0x0800:
        a = decode_ipv4(f + at, caplen - at, r)
        return at + a if a else 0
    elif packet_t is Packet6:
        if ethertype == 0x86DD:
            a = decode_ipv6(f + at, caplen - at, r)
            return at + a if a else 0
    return 0


cdef inline void decode_network(const uint8_t* f, uint32_t caplen, uint32_t at, uint16_t ethertype,
                                bint tagged, packet_t* r, bint tunnels) noexcept nogil:
    """decode_ip, then (extended, ``tunnels``) the tunnels inside the packet."""
    cdef int n = 0
    cdef uint32_t pay = decode_ip(f, caplen, at, ethertype, tagged, r, &n)
    if packet_t is Packet6:
        if tunnels and pay:
            walk_tunnels(f, caplen, pay, n, r)


cdef inline uint32_t gre_inner(const uint8_t* f, uint32_t caplen, uint32_t at, uint16_t* ty,
                               bint* tagged, uint16_t* enc) noexcept nogil:
    """The GRE header at ``at`` (docs/data-model.md, "Tunnels"): the offset of what it carries,
    its protocol type (0x6558: an Ethernet frame) and its C_ENC_* bits, or 0 when it is not
    walked."""
    cdef uint16_t flags, proto
    cdef uint32_t size = 4
    cdef int t
    if caplen - at < 4:
        return 0
    flags = be16(f + at)
    proto = be16(f + at + 2)
    if flags & 0x4000:  # routing present: not walked
        return 0
    if flags & 0x8000:
        size += 4
    if flags & 0x2000:
        size += 4
    if flags & 0x1000:
        size += 4
    if flags & 7 == 1:  # enhanced GRE (PPTP): PPP, and an acknowledgment number with A
        if proto != 0x880B:
            return 0
        if flags & 0x0080:
            size += 4
        if caplen - at < size:
            return 0
        at += size
        if caplen - at >= 1 and f[at] == 0xFF:
            at += 2
        t = ppp_protocol(f, caplen, &at)
        if t <= 0:
            return 0
        ty[0] = <uint16_t>t
        tagged[0] = True
        enc[0] = C_ENC_GRE | C_ENC_PPTP
        return at
    if flags & 7 != 0 or caplen - at < size:
        return 0
    at += size
    enc[0] = C_ENC_GRE
    if proto == 0x0800 or proto == 0x86DD or proto == 0x6558:
        ty[0] = proto
    elif proto == 0x8847 or proto == 0x8848:
        ty[0] = proto
        tagged[0] = True
    elif proto == 0x88BE or proto == 0x22EB:  # ERSPAN: type I without S (0x88BE), else a header
        if proto == 0x22EB or flags & 0x1000:
            if caplen - at < 2:
                return 0
            if f[at] >> 4 == 1:  # type II: 8 bytes
                size = 8
            elif f[at] >> 4 == 2:  # type III: 12 bytes, 8 more with O; frame type Ethernet
                if caplen - at < 12 or be16(f + at + 10) & 0x7C00:
                    return 0
                size = 20 if f[at + 11] & 1 else 12
            else:
                return 0
            if caplen - at < size:
                return 0
            at += size
        ty[0] = 0x6558
        enc[0] = C_ENC_GRE | C_ENC_ERSPAN
    elif 0x8200 <= proto <= 0x8370 and proto & 0xF == 0:  # Aruba: an 802.11 frame, no FCS
        size = wlan_payload(f + at, caplen - at, caplen - at, False, ty)
        if size <= 1:
            return 0
        tagged[0] = True
        enc[0] = C_ENC_GRE | C_ENC_ARUBA
        return at + size
    else:
        return 0
    return at


cdef inline uint32_t tzsp_inner(const uint8_t* f, uint32_t caplen, uint32_t at, uint16_t* ty,
                                bint* tagged) noexcept nogil:
    """The TZSP header at ``at`` (docs/data-model.md, "Tunnels"): version 1, a received
    packet or one to transmit (types 0, 1), encapsulation 1 (Ethernet) or 18 (IEEE 802.11),
    then the tagged fields up to END.  Returns the offset of what it carries (an 802.11
    frame: its LLC/SNAP payload) and its type, or 0 when it is not walked."""
    cdef uint16_t kind
    cdef uint32_t size
    if caplen - at < 4 or f[at] != 1 or f[at + 1] > 1:
        return 0
    kind = be16(f + at + 2)
    if kind != 1 and kind != 18:
        return 0
    at += 4
    while True:  # each tag moves on at least one byte: the captured bytes end the loop
        if caplen - at < 1:
            return 0  # no END
        if f[at] == 1:  # END
            at += 1
            break
        if f[at] == 0:  # padding
            at += 1
        elif caplen - at < 2 or caplen - at - 2 < f[at + 1]:
            return 0  # a tag runs past the captured bytes
        else:
            at += 2 + <uint32_t>f[at + 1]
    if kind == 1:
        ty[0] = 0x6558
        return at
    size = wlan_payload(f + at, caplen - at, caplen - at, False, ty)  # no FCS, as Aruba's
    if size <= 1:
        return 0
    tagged[0] = True
    return at + size


cdef inline uint32_t udp_inner(const uint8_t* f, uint32_t caplen, uint32_t at, uint16_t port,
                               uint16_t* ty, bint* tagged, uint16_t* enc) noexcept nogil:
    """VXLAN, GENEVE, GTP-U or TZSP at ``at`` (by the UDP destination ``port``): the offset
    of what it carries, its type and its C_ENC_* bit, or 0 when it is not walked."""
    cdef uint32_t size
    cdef uint8_t nxt
    cdef int i
    if port == 37008:  # TZSP
        size = tzsp_inner(f, caplen, at, ty, tagged)
        if size:
            enc[0] = C_ENC_TZSP
        return size
    if port == 4789:  # VXLAN: 8 bytes, then Ethernet
        if caplen - at < 8:
            return 0
        ty[0] = 0x6558
        enc[0] = C_ENC_VXLAN
        return at + 8
    if port == 6081:  # GENEVE: version 0, 8 bytes and the options, the protocol type
        if caplen - at < 8 or f[at] >> 6:
            return 0
        size = 8 + (f[at] & 0x3F) * 4
        if caplen - at < size:
            return 0
        ty[0] = be16(f + at + 2)
        if ty[0] != 0x6558 and ty[0] != 0x0800 and ty[0] != 0x86DD:
            return 0
        enc[0] = C_ENC_GENEVE
        return at + size
    if port == 2152:  # GTP-U: version 1, GTP (not GTP'), a G-PDU
        if caplen - at < 8 or f[at] >> 5 != 1 or not (f[at] & 0x10) or f[at + 1] != 0xFF:
            return 0
        if f[at] & 0x07:  # sequence number, N-PDU number, next extension type
            if caplen - at < 12:
                return 0
            nxt = f[at + 11]
            at += 12
            i = 0
            while nxt:
                if i == C_MAX_HEADERS or caplen - at < 1 or f[at] == 0:
                    return 0
                size = <uint32_t>f[at] * 4
                if caplen - at < size:
                    return 0
                nxt = f[at + size - 1]
                at += size
                i += 1
        else:
            at += 8
        if caplen - at < 1:
            return 0
        if f[at] >> 4 == 4:
            ty[0] = 0x0800
        elif f[at] >> 4 == 6:
            ty[0] = 0x86DD
        else:
            return 0
        enc[0] = C_ENC_GTPU
        return at
    return 0


cdef void walk_tunnels(const uint8_t* f, uint32_t caplen, uint32_t pay, int n, Packet6* r) noexcept nogil:
    """``tunnels="inner"``: while the packet in ``r`` (its payload at ``pay``, ``n`` headers
    walked) carries a tunnel, decode the packet inside; when that one has an IP header it
    becomes the packet (docs/data-model.md, "Tunnels")."""
    cdef Packet6 t
    cdef uint32_t at
    cdef uint16_t ty, enc
    cdef bint tagged
    while n < C_MAX_HEADERS:
        ty = 0
        tagged = False
        at = 0
        if r.ip_proto == 4 or r.ip_proto == 41:  # IP in IP, 6in4 (or IPv6 in IPv6...)
            at = pay
            ty = 0x0800 if r.ip_proto == 4 else 0x86DD
            enc = C_ENC_IPIP
        elif r.ip_proto == 47:
            at = gre_inner(f, caplen, pay, &ty, &tagged, &enc)
        elif r.ip_proto == 17 and r.decoded & C_DEC_PORTS:
            at = udp_inner(f, caplen, pay + 8, r.dst_port, &ty, &tagged, &enc)
        if not at:
            return
        n += 1
        r.encap |= enc
        if ty == 0x6558:  # an Ethernet frame
            if caplen - at < 14:
                return
            ty = be16(f + at + 12)
            at += 14
            tagged = True
        memset(&t, 0, sizeof(t))
        pay = decode_ip(f, caplen, at, ty, tagged, &t, &n)
        r.encap |= t.encap
        if not (t.decoded & (C_DEC_IPV4 | C_DEC_IPV6)):
            return
        r.ethertype = t.ethertype
        r.src_ip = t.src_ip
        r.dst_ip = t.dst_ip
        r.src_port = t.src_port
        r.dst_port = t.dst_port
        r.ip_proto = t.ip_proto
        r.tcp_flags = t.tcp_flags
        r.decoded = (r.decoded & C_DEC_LINK) | t.decoded
        memcpy(r.src_ip6, t.src_ip6, 16)
        memcpy(r.dst_ip6, t.dst_ip6, 16)
        if not pay:
            return


cdef inline uint16_t le16(const uint8_t* p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[1] << 8) | p[0])


cdef inline uint16_t nflog16(const uint8_t* p, bint big) noexcept nogil:
    return be16(p) if big else le16(p)


cdef inline bint llc_snap(const uint8_t* p) noexcept nogil:
    """LLC/SNAP AA AA 03 with the OUI 00-00-00 (RFC 1042) or 00-00-F8 (802.1H)."""
    return p[0] == 0xAA and p[1] == 0xAA and p[2] == 0x03 and p[3] == 0 and p[4] == 0 and (p[5] == 0 or p[5] == 0xF8)


cdef inline uint32_t le_header(const uint8_t* f, uint32_t caplen) noexcept nogil:
    """Radiotap's and PPI's common start: version 0, then at 2 the header's length (LE u16),
    at least 8 bytes and all captured.  Returns that length (0: the header is not there)."""
    cdef uint32_t ln
    if caplen < 8 or f[0] != 0:
        return 0
    ln = le16(f + 2)
    return ln if 8 <= ln <= caplen else 0


cdef inline uint32_t wlan_payload(const uint8_t* f, uint32_t caplen, uint32_t end, bint datapad,
                                  uint16_t* ty) noexcept nogil:
    """An IEEE 802.11 frame (docs/data-model.md, "Extended decode", step 6): a data frame's
    header (24 bytes, the 4th address, QoS control, HT control; rounded up to 4 bytes with
    radiotap's data pad), then LLC/SNAP, its payload ending at ``end``.  Returns 0 when the
    frame is not a data frame whose header is all captured, 1 when nothing follows that is
    walked, else the offset of the payload after LLC/SNAP, whose type goes to ``ty[0]``."""
    cdef uint32_t hdr, qos_at
    cdef uint8_t subtype
    if caplen < 2 or (f[0] & 0x0F) != 0x08:  # version 0, type 2 (data)
        return 0
    subtype = f[0] >> 4
    hdr = qos_at = 30 if (f[1] & 3) == 3 else 24  # the 4th address when both DS bits are set
    if subtype & 8:  # QoS: QoS control, and HT control with the order bit
        hdr += 6 if f[1] & 0x80 else 2
    if datapad:
        hdr = (hdr + 3) & ~(<uint32_t>3)
    if caplen < hdr:
        return 0
    if subtype & 4 or f[1] & 0x40:  # no data, or protected (encrypted)
        return 1
    if subtype & 8 and f[qos_at] & 0x80:  # an A-MSDU: not walked
        return 1
    if end < hdr + 8 or not llc_snap(f + hdr):
        return 1
    ty[0] = be16(f + hdr + 6)
    return hdr + 8


cdef inline void decode_wlan(const uint8_t* f, uint32_t caplen, uint32_t end, bint datapad, Packet6* r,
                             bint tunnels) noexcept nogil:
    """An IEEE 802.11 frame as the link layer (wlan_payload), then the network layer, which
    ends at ``end``."""
    cdef uint16_t ty = 0
    cdef uint32_t at = wlan_payload(f, caplen, end, datapad, &ty)
    if not at:
        return
    r.decoded = C_DEC_LINK
    if at > 1:
        decode_network(f, end, at, ty, True, r, tunnels)


cdef inline void decode_radiotap(const uint8_t* f, uint32_t caplen, Packet6* r, bint tunnels) noexcept nogil:
    """Radiotap (version 0): its length, and from its flags field the data pad and FCS bits;
    then the 802.11 frame."""
    cdef uint32_t ln = le_header(f, caplen), at = 4, fields
    cdef uint8_t flags = 0
    if not ln:
        return
    while f[at + 3] & 0x80:  # another presence word follows
        at += 4
        if at + 4 > ln:
            return
    fields = at + 4
    if f[4] & 2:  # the flags field: after TSFT (8 bytes, 8-aligned) when present
        if f[4] & 1:
            fields = ((fields + 7) & ~(<uint32_t>7)) + 8
        if fields >= ln:
            return
        flags = f[fields]
    caplen -= ln
    decode_wlan(f + ln, caplen, caplen - 4 if flags & 0x10 and caplen >= 4 else caplen, flags & 0x20, r, tunnels)


cdef inline void decode_ppi(const uint8_t* f, uint32_t caplen, Packet6* r, bint tunnels) noexcept nogil:
    """PPI (version 0): its length and link type, then the frame, decoded by that link type
    (any the extended decode reads but PPI)."""
    cdef uint32_t ln = le_header(f, caplen), dlt
    if not ln:
        return
    dlt = le32(f + 4)
    if dlt != 192:  # (not PPI again: the decode does not recurse further)
        decode_frame(f + ln, caplen - ln, dlt, r, tunnels)


cdef inline void decode_more_links(const uint8_t* f, uint32_t caplen, uint32_t linktype,
                                   Packet6* r, bint tunnels) noexcept nogil:
    """The link types only the extended decode reads: PPP (9), PPP_HDLC (50), C_HDLC (104),
    FDDI (10), IEEE802_11 (105), its RADIOTAP (127) and PPI (192) headers, NFLOG (239)
    (docs/data-model.md, "Extended decode")."""
    cdef uint32_t at = 0, ln, ty, plen
    cdef int t, n = 0
    cdef uint16_t tle, tbe, hw = 0
    cdef bint big
    if linktype == 104 or ((linktype == 9 or linktype == 50) and caplen >= 1 and (f[0] == 0x0F or f[0] == 0x8F)):
        if caplen < 4:  # Cisco HDLC: address, control, protocol (an Ethernet type)
            return
        r.decoded = C_DEC_LINK
        t = be16(f + 2)  # IPv4, IPv6, or MPLS (walked); no other encapsulation
        decode_network(f, caplen, 4, <uint16_t>t, t == 0x8847 or t == 0x8848, r, tunnels)
    elif linktype == 9 or linktype == 50:  # PPP: [0xFF 0x03] protocol
        if caplen >= 1 and f[0] == 0xFF:
            at = 2
        t = ppp_protocol(f, caplen, &at)
        if t < 0:
            return
        r.decoded = C_DEC_LINK
        if t > 0:
            decode_network(f, caplen, at, <uint16_t>t, True, r, tunnels)
    elif linktype == 10:  # FDDI: frame control, addresses, then LLC/SNAP
        if caplen < 13:
            return
        r.decoded = C_DEC_LINK
        if (f[0] & 0xF0) == 0x50 and caplen >= 21 and llc_snap(f + 13):
            decode_network(f, caplen, 21, be16(f + 19), True, r, tunnels)
    elif linktype == 105:
        decode_wlan(f, caplen, caplen, False, r, tunnels)
    elif linktype == 127:
        decode_radiotap(f, caplen, r, tunnels)
    elif linktype == 192:
        decode_ppi(f, caplen, r, tunnels)
    elif linktype == 239:  # NFLOG: family, version, resource id, then TLVs
        if caplen < 4:
            return
        r.decoded = C_DEC_LINK
        if caplen < 8:
            return
        tle = le16(f + 6) & 0x7FFF
        tbe = be16(f + 6) & 0x7FFF
        big = (tle == 0 or tle >= 0x100) and tbe >= 1 and tbe < 0x100
        at = 4
        while n < C_MAX_TLVS and at + 4 <= caplen:
            ln = nflog16(f + at, big)
            ty = nflog16(f + at + 2, big) & 0x7FFF
            if ln < 4:
                return
            if ty == 1 and ln >= 6 and caplen - at >= 6:  # NFULA_PACKET_HDR: hw_protocol, network order
                hw = be16(f + at + 4)
            elif ty == 9:  # NFULA_PAYLOAD: the packet, from its network header
                if hw == 0:  # no protocol named: the family's
                    hw = 0x0800 if f[0] == 2 else 0x86DD if f[0] == 10 else 0
                    if hw == 0:
                        return
                plen = ln - 4
                if plen > caplen - at - 4:
                    plen = caplen - at - 4
                decode_network(f, at + 4 + plen, at + 4, hw, False, r, tunnels)
                return
            at += (ln + 3) & ~(<uint32_t>3)
            n += 1


cdef inline void decode_frame(const uint8_t* f, uint32_t caplen, uint32_t linktype,
                              packet_t* r, bint tunnels) noexcept nogil:
    """The link header by link type (docs/data-model.md, "Link types"), then the network."""
    cdef uint32_t le, be
    cdef int v
    if linktype == 1:  # EN10MB
        if caplen < 14:
            return
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 14, be16(f + 12), True, r, tunnels)
    elif linktype == 113:  # LINUX_SLL
        if caplen < 16:
            return
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 16, be16(f + 14), True, r, tunnels)
    elif linktype == 276:  # LINUX_SLL2
        if caplen < 20:
            return
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 20, be16(f), True, r, tunnels)
    elif linktype == 101 or linktype == 12 or linktype == 14:  # RAW
        if caplen < 1:
            return
        r.decoded = C_DEC_LINK
        v = f[0] >> 4
        if v == 4:
            decode_network(f, caplen, 0, 0x0800, False, r, tunnels)
        elif v == 6:
            decode_network(f, caplen, 0, 0x86DD, False, r, tunnels)
    elif linktype == 228:  # IPV4
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 0, 0x0800, False, r, tunnels)
    elif linktype == 229:  # IPV6
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 0, 0x86DD, False, r, tunnels)
    elif linktype == 0 or linktype == 108:  # NULL (either byte order), LOOP (big-endian)
        if caplen < 4:
            return
        r.decoded = C_DEC_LINK
        be = be32(f)
        le = le32(f) if linktype == 0 else be
        if le == 2 or be == 2:
            decode_network(f, caplen, 4, 0x0800, False, r, tunnels)
        elif is_inet6(le) or is_inet6(be):
            decode_network(f, caplen, 4, 0x86DD, False, r, tunnels)
    else:
        if packet_t is Packet6:
            decode_more_links(f, caplen, linktype, r, tunnels)


cdef inline void classify(packet_t* r) noexcept nogil:
    """The packet's class bits from its decoded fields (docs/data-model.md, rule 3)."""
    cdef uint8_t c = 0
    cdef uint8_t f = r.tcp_flags  # 0 unless TCP with ports decoded
    if r.decoded & (C_DEC_IPV4 | C_DEC_IPV6):
        if r.ip_proto == 6:
            c = C_CLS_TCP
            if f & 0x02:
                c |= C_CLS_SYN
                if not (f & 0x10):
                    c |= C_CLS_NEW_FLOW
            if f & 0x01:
                c |= C_CLS_FIN
            if f & 0x04:
                c |= C_CLS_RST
        elif r.ip_proto == 17:
            c = C_CLS_UDP
            if r.decoded & C_DEC_PORTS and r.dst_port == 53:
                c |= C_CLS_DNS_QUERY
    r.cls = c


def walk(const uint8_t[::1] buf, Py_ssize_t start, Py_ssize_t end, packet_t[::1] out,
         int64_t base_offset, bint swapped, bint nsec, uint32_t linktype, uint32_t max_caplen,
         bint tunnels=False):
    """Walk the complete classic-pcap records in ``buf[start:end]``, decoding each into ``out``.

    ``base_offset`` is the file offset of ``buf[0]``; ``swapped`` means the record headers are
    big-endian; ``nsec`` means ``ts_frac`` is nanoseconds; ``tunnels`` (the extended decode's
    rows, ``PACKET6_DTYPE``, only) makes the packet inside a tunnel the packet
    (``tunnels="inner"``, docs/data-model.md).  Stops at the first record that is not complete
    in the block, when ``out`` is full, or at a record whose ``incl_len`` exceeds ``max_caplen``.  Returns ``(pos, n, status)``: the offset in ``buf`` of the first record
    not consumed, the number of packets written to ``out[:n]``, and a ``WALK_*`` status.
    """
    cdef Py_ssize_t pos = start
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t cap = out.shape[0]
    cdef int status = C_WALK_OK
    cdef int64_t frac_ns = 1 if nsec else 1000
    cdef uint32_t ts_sec, ts_frac, incl, orig
    cdef const uint8_t* base
    cdef const uint8_t* p
    cdef packet_t* r
    if start < 0 or end > buf.shape[0] or start > end:
        raise ValueError(f"bad block range [{start}, {end}) for a buffer of {buf.shape[0]} bytes")
    if end - start < 16 or cap == 0:
        return start, 0, C_WALK_OK
    base = &buf[0]
    with nogil:
        while n < cap and end - pos >= 16:
            p = base + pos
            if swapped:
                ts_sec = be32(p)
                ts_frac = be32(p + 4)
                incl = be32(p + 8)
                orig = be32(p + 12)
            else:
                ts_sec = le32(p)
                ts_frac = le32(p + 4)
                incl = le32(p + 8)
                orig = le32(p + 12)
            if incl > max_caplen:
                status = C_WALK_BAD_CAPLEN
                break
            if <Py_ssize_t>incl > end - pos - 16:
                break
            r = &out[n]
            memset(r, 0, sizeof(r[0]))
            r.t_ns = <int64_t>ts_sec * 1000000000 + <int64_t>ts_frac * frac_ns
            r.offset = base_offset + pos
            r.caplen = incl
            r.wirelen = orig
            r.linktype = <uint16_t>linktype
            decode_frame(p + 16, incl, linktype, r, tunnels)
            classify(r)
            pos += 16 + incl
            n += 1
    return pos, n, status


cdef extern from *:
    """
    /* A pcapng timestamp in nanoseconds, exactly (128-bit arithmetic, floor division), or 0
       when it does not fit in an int64: mode 0 multiplies by factor, 1 divides (a factor of
       0, too large for 64 bits, gives 0), 2 is binary (factor is the shift); then + offset_s
       seconds.  The 64 bits are an unsigned count; when that does not fit but the same bits
       read as a signed count do (a writer that stored a negative relative time), the signed
       reading is used. */
    static inline __int128 fp_scale_one(__int128 ts, int32_t mode, uint64_t factor, int64_t offset_s) {
        __int128 ns;
        if (mode == 0) {
            ns = ts * (__int128)factor;
        } else if (mode == 1) {
            if (!factor)
                ns = 0;
            else {
                ns = ts / (__int128)factor;
                if (ts % (__int128)factor != 0 && ts < 0)
                    ns -= 1;
            }
        } else {
            ns = (ts * 1000000000) >> factor;  /* arithmetic: floors, as Python's >> */
        }
        return ns + (__int128)offset_s * 1000000000;
    }
    static inline int fp_fits(__int128 ns) {
        return ns >= (__int128)INT64_MIN && ns <= (__int128)INT64_MAX;
    }
    static inline int fp_scale_ts(uint64_t ts, int32_t mode, uint64_t factor, int64_t offset_s,
                                  int64_t *out) {
        __int128 ns = fp_scale_one((__int128)ts, mode, factor, offset_s);
        if (!fp_fits(ns) && (ts >> 63))
            ns = fp_scale_one((__int128)(int64_t)ts, mode, factor, offset_s);
        if (!fp_fits(ns))
            return 0;
        *out = (int64_t)ns;
        return 1;
    }
    """
    bint fp_scale_ts(uint64_t ts, int32_t mode, uint64_t factor, int64_t offset_s, int64_t* out) noexcept nogil


cdef extern from *:
    """
    #define fp_prefetch(p) __builtin_prefetch(p)
    """
    void fp_prefetch(const void* p) noexcept nogil


cdef inline uint32_t rd32(const uint8_t* p, bint swapped) noexcept nogil:
    return be32(p) if swapped else le32(p)


cdef inline uint16_t rd16(const uint8_t* p, bint swapped) noexcept nogil:
    return be16(p) if swapped else <uint16_t>(p[0] | (<uint16_t>p[1] << 8))


cdef inline uint32_t min_block_length(uint32_t btype) noexcept nogil:
    """The shortest total length a pcapng block of this type can have (its fixed fields)."""
    if btype == C_EPB or btype == C_OPB:
        return 32
    if btype == C_IDB:
        return 20
    if btype == C_SPB:
        return 16
    return 12


def walk_pcapng(const uint8_t[::1] buf, Py_ssize_t start, Py_ssize_t end, packet_t[::1] out,
                int64_t base_offset, bint swapped, const uint32_t[::1] if_linktype,
                const uint32_t[::1] if_snaplen, const uint32_t[::1] if_maxcap,
                const int32_t[::1] if_tsmode, const uint64_t[::1] if_tsfactor,
                const int64_t[::1] if_tsoffset, uint32_t max_block, bint tunnels=False):
    """Walk the complete pcapng blocks of one section in ``buf[start:end]`` into ``out``.

    Packet blocks (enhanced, simple, obsolete) are decoded; other blocks are skipped, but a
    section header or interface description stops the walk (``WALK_BLOCK``: the caller reads
    it and calls again).  ``if_*`` describe the section's interfaces: link type, snap length,
    largest captured length, and how to turn timestamps into ns (``if_tsoffset`` in seconds);
    ``tunnels`` as in :func:`walk`.  Returns ``(pos, n,
    status)`` as :func:`walk` does; ``pos`` is the offset of the block the walk stopped at.
    """
    cdef Py_ssize_t pos = start
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t cap = out.shape[0]
    cdef Py_ssize_t nif = if_linktype.shape[0]
    cdef int status = C_WALK_OK
    cdef uint32_t btype, blen, iface, caplen, orig, room
    cdef uint64_t ts
    cdef int64_t t_ns
    cdef bint timed
    cdef const uint8_t* base
    cdef const uint8_t* p
    cdef const uint8_t* frame
    cdef packet_t* r
    if start < 0 or end > buf.shape[0] or start > end:
        raise ValueError(f"bad block range [{start}, {end}) for a buffer of {buf.shape[0]} bytes")
    if (if_snaplen.shape[0] != nif or if_maxcap.shape[0] != nif or if_tsmode.shape[0] != nif
            or if_tsfactor.shape[0] != nif or if_tsoffset.shape[0] != nif):
        raise ValueError("the interface arrays must have the same length")
    if end - start < 8 or cap == 0:
        return start, 0, C_WALK_OK
    base = &buf[0]
    with nogil:
        while n < cap and end - pos >= 8:
            p = base + pos
            btype = rd32(p, swapped)
            if btype == C_SHB:  # a new section: its byte order is for the caller to read
                status = C_WALK_BLOCK
                break
            blen = rd32(p + 4, swapped)
            if blen < min_block_length(btype):
                status = C_WALK_SHORT_BLOCK
                break
            if blen % 4:
                status = C_WALK_UNALIGNED_BLOCK
                break
            if blen > max_block:
                status = C_WALK_HUGE_BLOCK
                break
            if end - pos < blen:
                break
            if rd32(p + blen - 4, swapped) != blen:
                status = C_WALK_BAD_TRAILER
                break
            if btype == C_IDB:
                status = C_WALK_BLOCK
                break
            if btype == C_EPB or btype == C_OPB:  # enhanced / obsolete packet block
                iface = rd32(p + 8, swapped) if btype == C_EPB else rd16(p + 8, swapped)
                if iface >= nif:
                    status = C_WALK_BAD_INTERFACE
                    break
                caplen = rd32(p + 20, swapped)
                if caplen > blen - 32:
                    status = C_WALK_CAPLEN_BEYOND_BLOCK
                    break
                if caplen > if_maxcap[iface]:
                    status = C_WALK_BAD_CAPLEN
                    break
                orig = rd32(p + 24, swapped)
                ts = (<uint64_t>rd32(p + 12, swapped) << 32) | rd32(p + 16, swapped)
                if not fp_scale_ts(ts, if_tsmode[iface], if_tsfactor[iface], if_tsoffset[iface], &t_ns):
                    status = C_WALK_BAD_TIMESTAMP
                    break
                timed = True
                frame = p + 28
            elif btype == C_SPB:  # simple packet block: interface 0, no timestamp
                if nif == 0:
                    status = C_WALK_BAD_INTERFACE
                    break
                iface = 0
                orig = rd32(p + 8, swapped)
                room = blen - 16
                caplen = orig if orig < room else room
                if if_snaplen[0] and if_snaplen[0] < caplen:
                    caplen = if_snaplen[0]
                if caplen > if_maxcap[0]:
                    status = C_WALK_BAD_CAPLEN
                    break
                timed = False
                frame = p + 12
            else:
                pos += blen
                continue
            r = &out[n]
            memset(r, 0, sizeof(r[0]))
            r.t_ns = t_ns if timed else 0
            r.offset = base_offset + pos
            r.caplen = caplen
            r.wirelen = orig
            r.linktype = <uint16_t>if_linktype[iface]
            decode_frame(frame, caplen, if_linktype[iface], r, tunnels)
            classify(r)
            pos += blen
            n += 1
    return pos, n, status


# -- distinct values per bucket ---------------------------------------------------------
#
# Only the newest bucket's values ever matter (buckets never decrease), so each slot of the
# table carries a one-byte generation stamp instead of its bucket: the generation moves on
# whenever the newest bucket changes, and a slot stamped with another generation counts as
# empty, for lookups and inserts alike.  The closed bucket's entries vanish at once, without
# a pass over the table; the current generation's entries only ever fill empty slots, so they
# form ordinary linear-probing chains and lookups stay exact.  When the stamps run out of
# generations they are cleared (one memset every 254 bucket changes).
#
# A slot is the key and its stamp, packed: 4 + 1 = 5 bytes for 32-bit values, 16 + 1 = 17 for
# 128-bit ones (IPv6 addresses); a probe reads both from one place, so it misses the cache once
# (not twice, as with separate arrays), and the loops prefetch the slot 8 packets ahead.
# The table doubles when the current generation fills 3/4 of it, by realloc and an in-place
# rehash of the current generation only (no second table alive at once), so a bucket of n
# distinct 32-bit values takes 6.7-13.3 bytes per value.  When a clear finds that no
# generation since the previous clear needed a quarter of the table, the table shrinks to
# what they needed: memory follows the recent buckets, not the largest one of the run.
# 16-bit values (ports) use a direct table: one stamp per possible value (64 KiB).

cdef enum:
    C_GEN_MAX = 254  # generations are 1..C_GEN_MAX; 0: a slot unused since the last clear
    C_GEN_PENDING = 255  # while growing: a current key not yet rehashed
    C_MIN_BITS = 12  # a hash table has at least 2**12 slots


ctypedef struct Key128:  # an IPv6 address: its 16 bytes as two words, as they lie in memory
    uint64_t a
    uint64_t b


ctypedef packed struct Slot32:
    uint32_t key
    uint8_t stamp


ctypedef packed struct Slot128:
    Key128 key
    uint8_t stamp


ctypedef fused slot_t:
    Slot32
    Slot128


ctypedef struct Table:
    void* slots  # slot_t per slot; NULL for the direct table
    uint8_t* stamps  # the direct table: a stamp per 16-bit value
    Py_ssize_t cap  # slots: a power of two, 2**bits
    int bits
    Py_ssize_t used  # slots (values) of the current generation
    Py_ssize_t peak  # most slots a generation used since the last clear
    uint8_t gen  # the current generation


cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    # MurmurHash3's 64-bit finaliser
    x ^= x >> 33
    x *= 0xFF51AFD7ED558CCDULL
    x ^= x >> 33
    x *= 0xC4CEB9FE1A85EC53ULL
    x ^= x >> 33
    return x


cdef inline Py_ssize_t home(slot_t* s, int bits) noexcept nogil:
    """The first slot for ``s.key``: the top ``bits`` bits of its hash (Fibonacci hashing for
    32-bit keys; both words mixed for 128-bit ones).  The twin computes the same."""
    if slot_t is Slot32:
        return <Py_ssize_t>((<uint64_t>s.key * 0x9E3779B97F4A7C15ULL) >> (64 - bits))
    else:
        return <Py_ssize_t>(mix64(s.key.a * 0x9E3779B97F4A7C15ULL + s.key.b) >> (64 - bits))


cdef inline bint same(slot_t* x, slot_t* y) noexcept nogil:
    if slot_t is Slot32:
        return x.key == y.key
    else:
        return x.key.a == y.key.a and x.key.b == y.key.b


cdef inline Py_ssize_t limit(Py_ssize_t cap) noexcept nogil:
    """Most slots the current generation may fill: 3/4 of the table."""
    return cap - (cap >> 2)


cdef inline int bits_for(Py_ssize_t n) noexcept nogil:
    """Bits of the smallest table that holds ``n`` keys within the load limit."""
    cdef int bits = C_MIN_BITS
    while limit((<Py_ssize_t>1) << bits) < n:
        bits += 1
    return bits


cdef int table_grow(Table* t, slot_t* slots) noexcept nogil:
    """Double the table in place: realloc, then move the current generation's keys to their
    slots in the larger table (every other slot is cleared).  -1: out of memory (the table is
    unchanged)."""
    cdef Py_ssize_t old = t.cap, cap = old * 2, mask = old * 2 - 1, i, j
    cdef slot_t moving, displaced
    cdef uint8_t gen = t.gen
    slots = <slot_t*>realloc(t.slots, cap * sizeof(slot_t))
    if slots == NULL:
        return -1
    t.slots = slots
    for i in range(old):
        slots[i].stamp = C_GEN_PENDING if slots[i].stamp == gen else 0
    for i in range(old, cap):
        slots[i].stamp = 0
    t.cap = cap
    t.bits += 1
    # A pending slot counts as free: a key that lands on one takes it and carries on with
    # the key it displaced.  Pending slots are all after i, so each key moves exactly once.
    for i in range(old):
        if i + 8 < old and slots[i + 8].stamp == C_GEN_PENDING:
            fp_prefetch(slots + home(&slots[i + 8], t.bits))
        if slots[i].stamp != C_GEN_PENDING:
            continue
        moving = slots[i]
        moving.stamp = gen
        slots[i].stamp = 0
        while True:
            j = home(&moving, t.bits)
            while slots[j].stamp == gen:
                j = (j + 1) & mask
            displaced = slots[j]
            slots[j] = moving
            if displaced.stamp != C_GEN_PENDING:
                break
            moving = displaced
            moving.stamp = gen
    return 0


cdef inline int table_add(Table* t, slot_t* s) noexcept nogil:
    """Add the key of ``s`` to the current generation: 1 if it was not there, 0 if it was,
    -1 when the table cannot grow (out of memory)."""
    cdef slot_t* slots = <slot_t*>t.slots
    cdef Py_ssize_t mask = t.cap - 1
    cdef Py_ssize_t i = home(s, t.bits)
    while slots[i].stamp == t.gen:
        if same(&slots[i], s):
            return 0
        i = (i + 1) & mask
    if t.used >= limit(t.cap):
        if table_grow(t, slots) != 0:
            return -1
        slots = <slot_t*>t.slots
        mask = t.cap - 1
        i = home(s, t.bits)
        while slots[i].stamp == t.gen:
            i = (i + 1) & mask
    s.stamp = t.gen
    slots[i] = s[0]
    t.used += 1
    return 1


cdef void table_next_gen(Table* t, size_t slot_size) noexcept nogil:
    """A new newest bucket: a new generation, empty.  When the generations run out, clear the
    stamps, and shrink a hash table that none of the recent generations needed."""
    cdef Py_ssize_t i, target
    cdef uint8_t* slots
    if t.used > t.peak:
        t.peak = t.used
    t.used = 0
    if t.gen < C_GEN_MAX:
        t.gen += 1
        return
    t.gen = 1
    if t.slots == NULL:
        memset(t.stamps, 0, t.cap)
        return
    target = (<Py_ssize_t>1) << bits_for(t.peak)
    if target * 4 <= t.cap:
        slots = <uint8_t*>realloc(t.slots, target * slot_size)
        if slots != NULL:  # (a failed shrink keeps the larger table)
            t.slots = slots
            t.cap = target
            t.bits = bits_for(t.peak)
    t.peak = 0
    slots = <uint8_t*>t.slots
    for i in range(t.cap):
        slots[i * slot_size + slot_size - 1] = 0  # the stamp is a slot's last byte


def _inputs(values, buckets, valid, out):
    """Check the arguments of ``first_in_bucket``; returns the values (native byte order, rows
    with contiguous bytes), their width in bits, the buckets (contiguous int64) and ``valid``
    (contiguous uint8).  The twin checks the same, in the same order, with the same messages."""
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


def _sorted_rows(rows):
    """(k, 16) uint8 addresses in bytewise (lexicographic) order."""
    halves = rows.view(">u8")
    return rows[np.lexsort((halves[:, 1], halves[:, 0]))]


cdef class DistinctCounter:
    """Marks the first packet of each distinct value within its bucket.

    Buckets must arrive in non-decreasing order, across calls too: the counter keeps the
    newest bucket's values, so the open bucket carries from one chunk to the next.  Values
    are 16-bit (ports: a direct table), 32-bit (IPv4 addresses) or 128-bit ((n, 16) uint8
    rows: IPv6 addresses), hashed; memory follows the distinct values of one bucket (see the
    comment above).  One counter takes one width of values.
    """

    cdef Table _t
    cdef int64_t _newest  # newest bucket seen so far
    cdef int _width  # 16, 32 or 128 once the first values arrive

    def __cinit__(self):
        memset(&self._t, 0, sizeof(Table))
        self._t.gen = 1  # nothing in generation 1 yet: right for any first bucket
        self._width = 0
        self._newest = INT64_MIN  # bucket indexes may be negative (a byte range's stragglers)

    def __dealloc__(self):
        free(self._t.slots)
        free(self._t.stamps)

    cdef int _start(self, int width) except -1:
        """Allocate the table for values of ``width`` bits on first use; refuse another width."""
        if self._width == width:
            return 0
        if self._width:
            raise ValueError(f"this counter takes {self._width}-bit values, not {width}-bit ones")
        if width == 16:
            self._t.stamps = <uint8_t*>calloc(65536, 1)
            self._t.cap = 65536
            self._t.bits = 16
            if self._t.stamps == NULL:
                raise MemoryError()
        else:
            self._t.bits = C_MIN_BITS
            self._t.cap = (<Py_ssize_t>1) << C_MIN_BITS
            self._t.slots = calloc(self._t.cap, sizeof(Slot32) if width == 32 else sizeof(Slot128))
            if self._t.slots == NULL:
                raise MemoryError()
        self._width = width
        return 0

    def first_in_bucket(self, values, buckets, valid, out):
        """Set ``out[i]`` to 1 where ``valid[i]`` and ``values[i]`` is not yet seen in bucket
        ``buckets[i]``, else 0.  ``buckets`` must not decrease, within and across calls.
        ``values``: uint16 or uint32, or (n, 16) uint8 rows (IPv6 addresses)."""
        values, width, buckets, valid = _inputs(values, buckets, valid, out)
        self._check_order(buckets, valid)
        self._start(width)
        if width == 16:
            self._first16(values, buckets, valid, out)
        elif width == 32:
            self._first32(values, buckets, valid, out)
        else:
            self._first128(values, buckets, valid, out)

    cdef int _check_order(self, const int64_t[::1] buckets, const uint8_t[::1] valid) except -1:
        cdef Py_ssize_t i, n = buckets.shape[0]
        cdef bint bad = False
        with nogil:
            for i in range(1, n):
                if buckets[i] < buckets[i - 1]:
                    bad = True
                    break
            for i in range(n):
                if valid[i]:
                    bad = bad or buckets[i] < self._newest
                    break
        if bad:
            raise ValueError("buckets must not decrease")
        return 0

    cdef int _first16(self, const uint16_t[:] values, const int64_t[::1] buckets,
                      const uint8_t[::1] valid, uint8_t[::1] out) except -1:
        cdef Py_ssize_t i, n = buckets.shape[0]
        cdef int64_t newest = self._newest
        cdef uint8_t* stamps = self._t.stamps  # the direct table never moves
        with nogil:
            for i in range(n):
                out[i] = 0
                if valid[i]:
                    if buckets[i] != newest:
                        newest = buckets[i]
                        table_next_gen(&self._t, 0)
                    if stamps[values[i]] != self._t.gen:
                        stamps[values[i]] = self._t.gen
                        self._t.used += 1
                        out[i] = 1
        self._newest = newest
        return 0

    cdef int _first32(self, const uint32_t[:] values, const int64_t[::1] buckets,
                      const uint8_t[::1] valid, uint8_t[::1] out) except -1:
        cdef Py_ssize_t i, n = buckets.shape[0]
        cdef int64_t newest = self._newest
        cdef int added = 0
        cdef Slot32 s
        with nogil:
            for i in range(n):
                out[i] = 0
                if i + 8 < n:  # the slot 8 packets ahead: its cache miss overlaps this one's work
                    s.key = values[i + 8]
                    fp_prefetch(<Slot32*>self._t.slots + home(&s, self._t.bits))
                if valid[i]:
                    if buckets[i] != newest:
                        newest = buckets[i]
                        table_next_gen(&self._t, sizeof(Slot32))
                    s.key = values[i]
                    added = table_add(&self._t, &s)
                    if added < 0:
                        break
                    out[i] = <uint8_t>added
        self._newest = newest
        if added < 0:
            raise MemoryError()
        return 0

    cdef int _first128(self, const uint8_t[:, :] values, const int64_t[::1] buckets,
                       const uint8_t[::1] valid, uint8_t[::1] out) except -1:
        # values' rows have contiguous bytes (checked by _inputs); the rows may be strided
        cdef Py_ssize_t i, n = buckets.shape[0]
        cdef int64_t newest = self._newest
        cdef int added = 0
        cdef Slot128 s
        with nogil:
            for i in range(n):
                out[i] = 0
                if i + 8 < n:
                    memcpy(&s.key, &values[i + 8, 0], sizeof(Key128))
                    fp_prefetch(<Slot128*>self._t.slots + home(&s, self._t.bits))
                if valid[i]:
                    if buckets[i] != newest:
                        newest = buckets[i]
                        table_next_gen(&self._t, sizeof(Slot128))
                    memcpy(&s.key, &values[i, 0], sizeof(Key128))
                    added = table_add(&self._t, &s)
                    if added < 0:
                        break
                    out[i] = <uint8_t>added
        self._newest = newest
        if added < 0:
            raise MemoryError()
        return 0

    def values_in(self, int64_t bucket):
        """The distinct values seen in ``bucket``, sorted, if it is the newest bucket a value
        was seen in; otherwise none.  uint32 for 16- and 32-bit values; (k, 16) uint8 rows in
        bytewise order for 128-bit ones."""
        cdef Py_ssize_t i, n = 0
        cdef uint8_t gen = self._t.gen
        cdef uint8_t[:, ::1] rows
        cdef uint32_t[::1] found
        cdef Slot32* slots32 = <Slot32*>self._t.slots
        cdef Slot128* slots128 = <Slot128*>self._t.slots
        if self._width == 128:
            if bucket != self._newest:
                return np.zeros((0, 16), dtype=np.uint8)
            rows = np.empty((self._t.used, 16), dtype=np.uint8)
            for i in range(self._t.cap):
                if slots128[i].stamp == gen:
                    memcpy(&rows[n, 0], &slots128[i].key, sizeof(Key128))
                    n += 1
            return _sorted_rows(np.asarray(rows))
        if self._width == 0 or bucket != self._newest:
            return np.zeros(0, dtype=np.uint32)
        found = np.empty(self._t.used, dtype=np.uint32)
        if self._width == 16:
            for i in range(65536):
                if self._t.stamps[i] == gen:
                    found[n] = <uint32_t>i
                    n += 1
            return np.asarray(found)
        for i in range(self._t.cap):
            if slots32[i].stamp == gen:
                found[n] = slots32[i].key
                n += 1
        return np.sort(np.asarray(found))
