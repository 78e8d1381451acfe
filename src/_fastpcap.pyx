# Compiler directives (bounds checks off, cdivision, ...) are set in one place: setup.py.
"""Compiled core of fastpcap: the pcap and pcapng walks, the link/IPv4/IPv6/TCP/UDP decode, and
the distinct-value counter.

Installed as ``fastpcap._fastpcap``; ``fastpcap/_pure.py`` is its pure-Python twin and must
give identical results (same signatures, same dtype, same status codes).  The hot loop runs
over one block of bytes with the GIL released; the caller (``fastpcap.reader``) owns the
block, carries partial records across blocks and turns status codes into exceptions.
"""

from libc.stdint cimport INT64_MIN, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

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
    uint8_t src_ip6[16]
    uint8_t dst_ip6[16]

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

DEC_LINK = C_DEC_LINK
DEC_IPV4 = C_DEC_IPV4
DEC_PORTS = C_DEC_PORTS
DEC_IPV6 = C_DEC_IPV6
DEC_FRAGMENT = C_DEC_FRAGMENT
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


cdef inline void decode_ipv4(const uint8_t* ip, uint32_t iplen, packet_t* r) noexcept nogil:
    """Spec section 2, steps 3-5, on the bytes after the link header (the extended decode
    also checks the version and gives non-first fragments no ports)."""
    cdef uint32_t ihl
    if iplen < 20:
        return
    if packet_t is Packet6:
        if ip[0] >> 4 != 4:
            return
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20 or iplen < ihl:
        return
    r.ip_proto = ip[9]
    r.src_ip = be32(ip + 12)
    r.dst_ip = be32(ip + 16)
    r.decoded |= C_DEC_IPV4
    if packet_t is Packet6:
        if be16(ip + 6) & 0x1FFF:
            r.decoded |= C_DEC_FRAGMENT
            return
    decode_ports(ip + ihl, iplen - ihl, r)


cdef inline void decode_ipv6(const uint8_t* ip, uint32_t iplen, Packet6* r) noexcept nogil:
    """The extended decode's IPv6 header and extension headers (docs/data-model.md)."""
    cdef uint32_t at = 40, size
    cdef uint8_t nh
    cdef int i
    if iplen < 40 or ip[0] >> 4 != 6:
        return
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
                return
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
        return  # an extension header not all captured
    decode_ports(ip + at, iplen - at, r)


cdef inline bint is_inet6(uint32_t family) noexcept nogil:
    # AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
    return family == 10 or family == 24 or family == 28 or family == 30


cdef inline void decode_network(const uint8_t* f, uint32_t caplen, uint32_t at, uint16_t ethertype,
                                bint tagged, packet_t* r) noexcept nogil:
    """From the protocol type found at offset ``at``: VLAN tags (extended, ``tagged`` links),
    then IPv4, or IPv6 (extended)."""
    if packet_t is Packet6:
        if tagged:
            while (ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100) and caplen - at >= 4:
                ethertype = be16(f + at + 2)
                at += 4
    r.ethertype = ethertype
    if ethertype == 0x0800:
        decode_ipv4(f + at, caplen - at, r)
    elif packet_t is Packet6:
        if ethertype == 0x86DD:
            decode_ipv6(f + at, caplen - at, r)


cdef inline void decode_frame(const uint8_t* f, uint32_t caplen, uint32_t linktype,
                              packet_t* r) noexcept nogil:
    """The link header by link type (docs/data-model.md, "Link types"), then the network."""
    cdef uint32_t le, be
    cdef int v
    if linktype == 1:  # EN10MB
        if caplen < 14:
            return
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 14, be16(f + 12), True, r)
    elif linktype == 113:  # LINUX_SLL
        if caplen < 16:
            return
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 16, be16(f + 14), True, r)
    elif linktype == 276:  # LINUX_SLL2
        if caplen < 20:
            return
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 20, be16(f), True, r)
    elif linktype == 101 or linktype == 12 or linktype == 14:  # RAW
        if caplen < 1:
            return
        r.decoded = C_DEC_LINK
        v = f[0] >> 4
        if v == 4:
            decode_network(f, caplen, 0, 0x0800, False, r)
        elif v == 6:
            decode_network(f, caplen, 0, 0x86DD, False, r)
    elif linktype == 228:  # IPV4
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 0, 0x0800, False, r)
    elif linktype == 229:  # IPV6
        r.decoded = C_DEC_LINK
        decode_network(f, caplen, 0, 0x86DD, False, r)
    elif linktype == 0 or linktype == 108:  # NULL (either byte order), LOOP (big-endian)
        if caplen < 4:
            return
        r.decoded = C_DEC_LINK
        be = be32(f)
        le = le32(f) if linktype == 0 else be
        if le == 2 or be == 2:
            decode_network(f, caplen, 4, 0x0800, False, r)
        elif is_inet6(le) or is_inet6(be):
            decode_network(f, caplen, 4, 0x86DD, False, r)


def walk(const uint8_t[::1] buf, Py_ssize_t start, Py_ssize_t end, packet_t[::1] out,
         int64_t base_offset, bint swapped, bint nsec, uint32_t linktype, uint32_t max_caplen):
    """Walk the complete classic-pcap records in ``buf[start:end]``, decoding each into ``out``.

    ``base_offset`` is the file offset of ``buf[0]``; ``swapped`` means the record headers are
    big-endian; ``nsec`` means ``ts_frac`` is nanoseconds.  Stops at the first record that is
    not complete in the block, when ``out`` is full, or at a record whose ``incl_len`` exceeds
    ``max_caplen``.  Returns ``(pos, n, status)``: the offset in ``buf`` of the first record
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
            decode_frame(p + 16, incl, linktype, r)
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
                const int64_t[::1] if_tsoffset, uint32_t max_block):
    """Walk the complete pcapng blocks of one section in ``buf[start:end]`` into ``out``.

    Packet blocks (enhanced, simple, obsolete) are decoded; other blocks are skipped, but a
    section header or interface description stops the walk (``WALK_BLOCK``: the caller reads
    it and calls again).  ``if_*`` describe the section's interfaces: link type, snap length,
    largest captured length, and how to turn timestamps into ns (``if_tsoffset`` in seconds).  Returns ``(pos, n,
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
            decode_frame(frame, caplen, if_linktype[iface], r)
            pos += blen
            n += 1
    return pos, n, status


# -- distinct values per bucket ---------------------------------------------------------


ctypedef fused value_t:
    uint16_t
    uint32_t


cdef class DistinctCounter:
    """Marks the first packet of each distinct value within its bucket.

    Buckets must arrive in non-decreasing order, across calls too: the counter remembers, for
    every value, the last bucket it was seen in, so the open bucket carries from one chunk to
    the next.  16-bit values (ports) use a direct table of 65536 stamps; 32-bit values
    (addresses) a hash table whose entries of closed buckets, which can never matter again,
    are dropped whenever it grows, so its size follows the distinct values of one bucket.
    One counter takes one width of values.
    """

    cdef uint32_t* _keys
    cdef int64_t* _stamps  # bucket a key was last seen in; INT64_MIN: empty slot
    cdef Py_ssize_t _mask  # capacity - 1 (capacity is a power of two)
    cdef Py_ssize_t _used
    cdef int64_t* _direct  # 16-bit values: stamp per value
    cdef int64_t _newest  # newest bucket seen so far
    cdef int _width  # 16 or 32 once the first values arrive

    def __cinit__(self):
        self._keys = NULL
        self._stamps = NULL
        self._direct = NULL
        self._used = 0
        self._width = 0
        self._newest = INT64_MIN  # bucket indexes may be negative (a byte range's stragglers)

    def __dealloc__(self):
        free(self._keys)
        free(self._stamps)
        free(self._direct)

    cdef int _alloc(self, Py_ssize_t capacity) except -1:
        cdef Py_ssize_t i
        keys = <uint32_t*>malloc(capacity * sizeof(uint32_t))
        stamps = <int64_t*>malloc(capacity * sizeof(int64_t))
        if keys == NULL or stamps == NULL:
            free(keys)
            free(stamps)
            raise MemoryError()
        for i in range(capacity):
            stamps[i] = INT64_MIN
        free(self._keys)
        free(self._stamps)
        self._keys = keys
        self._stamps = stamps
        self._mask = capacity - 1
        self._used = 0
        return 0

    cdef int _start(self, int width) except -1:
        """Allocate the table for values of ``width`` bits on first use; refuse another width."""
        cdef Py_ssize_t i
        if self._width == width:
            return 0
        if self._width:
            raise ValueError(f"this counter takes {self._width}-bit values, not {width}-bit ones")
        if width == 16:
            self._direct = <int64_t*>malloc(65536 * sizeof(int64_t))
            if self._direct == NULL:
                raise MemoryError()
            for i in range(65536):
                self._direct[i] = INT64_MIN
        else:
            self._alloc(1 << 12)
        self._width = width
        return 0

    cdef inline Py_ssize_t _slot(self, uint32_t key) noexcept nogil:
        # Fibonacci hashing, then linear probing.
        cdef Py_ssize_t i = <Py_ssize_t>((<uint64_t>key * <uint64_t>11400714819323198485ULL) >> 40) & self._mask
        while self._stamps[i] != INT64_MIN and self._keys[i] != key:
            i = (i + 1) & self._mask
        return i

    cdef int _grow(self) except -1:
        """Rebuild keeping only the newest bucket's keys; double if they still fill it."""
        cdef Py_ssize_t old_cap = self._mask + 1
        cdef Py_ssize_t i, j, live = 0
        cdef uint32_t* old_keys = self._keys
        cdef int64_t* old_stamps = self._stamps
        for i in range(old_cap):
            if old_stamps[i] == self._newest:
                live += 1
        new_cap = old_cap
        while live * 4 >= new_cap:
            new_cap *= 2
        self._keys = NULL
        self._stamps = NULL
        try:
            self._alloc(new_cap)
        except MemoryError:
            self._keys = old_keys
            self._stamps = old_stamps
            raise
        for i in range(old_cap):
            if old_stamps[i] == self._newest:
                j = self._slot(old_keys[i])
                self._keys[j] = old_keys[i]
                self._stamps[j] = self._newest
                self._used += 1
        free(old_keys)
        free(old_stamps)
        return 0

    def first_in_bucket(self, const value_t[:] values, const int64_t[::1] buckets,
                        const uint8_t[:] valid, uint8_t[::1] out):
        """Set ``out[i]`` to 1 where ``valid[i]`` and ``values[i]`` is not yet seen in bucket
        ``buckets[i]``, else 0.  ``buckets`` must not decrease, within and across calls."""
        cdef Py_ssize_t n = buckets.shape[0]
        cdef Py_ssize_t i, slot
        cdef uint32_t key
        cdef int64_t bucket
        cdef int64_t* direct
        if values.shape[0] != n or valid.shape[0] != n or out.shape[0] != n:
            raise ValueError("values, buckets, valid and out must have the same length")
        for i in range(1, n):
            if buckets[i] < buckets[i - 1]:
                raise ValueError("buckets must not decrease")
        for i in range(n):
            if valid[i]:
                if buckets[i] < self._newest:
                    raise ValueError("buckets must not decrease")
                break
        if value_t is uint16_t:
            self._start(16)
            direct = self._direct
            with nogil:
                for i in range(n):
                    out[i] = 0
                    if valid[i]:
                        bucket = buckets[i]
                        self._newest = bucket
                        if direct[values[i]] != bucket:
                            direct[values[i]] = bucket
                            out[i] = 1
        else:
            self._start(32)
            for i in range(n):
                out[i] = 0
                if not valid[i]:
                    continue
                bucket = buckets[i]
                self._newest = bucket
                key = values[i]
                slot = self._slot(key)
                if self._stamps[slot] == bucket:
                    continue
                out[i] = 1
                if self._stamps[slot] == INT64_MIN:
                    self._used += 1
                self._keys[slot] = key
                self._stamps[slot] = bucket
                if self._used * 2 > self._mask + 1:
                    self._grow()

    def values_in(self, int64_t bucket):
        """The distinct values seen in ``bucket``, sorted (uint32), if it is the newest bucket
        a value was seen in; otherwise none."""
        cdef Py_ssize_t i, n = 0
        if self._width == 0 or bucket != self._newest:
            return np.zeros(0, dtype=np.uint32)
        if self._width == 16:
            found = np.empty(65536, dtype=np.uint32)
            for i in range(65536):
                if self._direct[i] == self._newest:
                    found[n] = i
                    n += 1
            return found[:n]
        found = np.empty(self._mask + 1, dtype=np.uint32)
        for i in range(self._mask + 1):
            if self._stamps[i] == self._newest:
                found[n] = self._keys[i]
                n += 1
        return np.sort(found[:n])
