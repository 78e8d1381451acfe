"""Container facts shared by both twins of the core and the readers: one home for each.

The compiled core (``src/_fastpcap.pyx``) keeps its own C enums for the codes below (C code
cannot import Python constants into ``nogil`` loops); ``tests/test_backend.py`` checks that
they are equal.  Nothing here imports numpy.
"""

from __future__ import annotations

from typing import Literal

# -- bits of a packet's ``decoded`` field (docs/data-model.md) ---------------------------
DEC_LINK = 1  # link header decoded: ethertype is valid
DEC_IPV4 = 2  # IPv4 header decoded: ip_proto, src_ip, dst_ip are valid
DEC_PORTS = 4  # TCP or UDP header decoded: ports (and TCP flags) are valid
DEC_IPV6 = 8  # extended decode: IPv6 header decoded (src_ip6, dst_ip6, ip_proto)
DEC_FRAGMENT = 16  # extended decode: a non-first fragment (no ports, no flags)

# -- bits of a packet's ``cls`` field: its class, what each bucket counter counts ---------
CLS_TCP = 1  # IPv4 (or IPv6, extended decode) with protocol 6
CLS_UDP = 2  # ... with protocol 17
CLS_SYN = 4  # TCP with the SYN flag
CLS_FIN = 8  # TCP with the FIN flag
CLS_RST = 16  # TCP with the RST flag
CLS_DNS_QUERY = 32  # UDP with ports decoded and destination port 53
CLS_NEW_FLOW = 64  # TCP with SYN and without ACK

# -- bits of an extended-decode packet's ``encap`` field: the headers its decode walked -----
ENC_VLAN = 1  # 802.1Q, 802.1ad or QinQ (0x9100) tags
ENC_MPLS = 2  # MPLS label stack entries
ENC_PPPOE = 4  # a PPPoE session header
ENC_PBB = 8  # an 802.1ah (PBB) header
ENC_VNTAG = 16  # a VN-Tag
ENC_GRE = 32  # GRE (tunnels="inner"), also set with each of the next three
ENC_PPTP = 64  # enhanced GRE (version 1, PPTP) carrying PPP
ENC_ERSPAN = 128  # ERSPAN type I, II or III inside GRE
ENC_ARUBA = 256  # an IEEE 802.11 frame inside GRE (Aruba's protocol types 0x8200..0x8370)
ENC_VXLAN = 512  # VXLAN (UDP 4789)
ENC_GENEVE = 1024  # GENEVE (UDP 6081)
ENC_GTPU = 2048  # GTP-U (UDP 2152)
ENC_IPIP = 4096  # IP in IP, IPv6 in IP (IP protocols 4 and 41)
ENC_TZSP = 8192  # TZSP (UDP 37008): a frame a remote sniffer captured
#: Each ``encap`` bit's name, in bit order (``fastpcap info`` counts packets by them).
ENC_NAMES = {ENC_VLAN: "vlan", ENC_MPLS: "mpls", ENC_PPPOE: "pppoe", ENC_PBB: "pbb", ENC_VNTAG: "vn-tag",
             ENC_GRE: "gre", ENC_PPTP: "pptp", ENC_ERSPAN: "erspan", ENC_ARUBA: "aruba", ENC_VXLAN: "vxlan",
             ENC_GENEVE: "geneve", ENC_GTPU: "gtp-u", ENC_IPIP: "ip-in-ip", ENC_TZSP: "tzsp"}
#: The tunnels among them: walked only with ``tunnels="inner"``.
ENC_TUNNELS = (ENC_GRE | ENC_PPTP | ENC_ERSPAN | ENC_ARUBA | ENC_VXLAN | ENC_GENEVE | ENC_GTPU | ENC_IPIP
               | ENC_TZSP)

# -- why a walk stopped: the ``status`` the walkers return ------------------------------
WALK_OK = 0  # a partial record or block, the end of the bytes given, or the output full
WALK_BAD_CAPLEN = 1  # a record/packet block claims more captured bytes than its link type allows
WALK_BLOCK = 2  # pcapng: a section header or interface description, for the reader to read
WALK_BAD_INTERFACE = 4  # pcapng: a packet block on an interface the section has not described
WALK_BAD_TIMESTAMP = 5  # pcapng: a packet block whose time does not fit int64 nanoseconds
WALK_SHORT_BLOCK = 6  # pcapng: a total length below the block type's fixed fields
WALK_UNALIGNED_BLOCK = 7  # pcapng: a total length that is not a multiple of 4
WALK_HUGE_BLOCK = 8  # pcapng: a total length above the section's limit
WALK_BAD_TRAILER = 9  # pcapng: the trailing copy of the total length differs
WALK_CAPLEN_BEYOND_BLOCK = 10  # pcapng: a captured length larger than the block holds

# -- classic pcap -------------------------------------------------------------------------
GLOBAL_HEADER_SIZE = 24
RECORD_HEADER_SIZE = 16
#: The four encodings of the two classic-pcap magics: (byte order, nanosecond timestamps).
PCAP_MAGICS: dict[bytes, tuple[Literal["little", "big"], bool]] = {
    bytes.fromhex("d4c3b2a1"): ("little", False),
    bytes.fromhex("4d3cb2a1"): ("little", True),
    bytes.fromhex("a1b2c3d4"): ("big", False),
    bytes.fromhex("a1b23c4d"): ("big", True),
}


def classic_t_ns(ts_sec: int, ts_frac: int, nsec: bool) -> int:
    """A classic record's time in ns (docs/data-model.md, rule 1; the fraction is not normalised)."""
    return ts_sec * 1_000_000_000 + ts_frac * (1 if nsec else 1000)


# -- pcapng -------------------------------------------------------------------------------
SHB = 0x0A0D0D0A  # section header block (the same bytes in either byte order)
IDB = 1  # interface description block
OPB = 2  # packet block (obsolete)
SPB = 3  # simple packet block
EPB = 6  # enhanced packet block
#: The block types the pcapng specification registers (section header apart): interface
#: description, packet (obsolete), simple packet, name resolution, interface statistics,
#: enhanced packet, IRIG timestamp, ARINC 429, systemd journal, decryption secrets, and the
#: two custom blocks.  A resync lands only on one of these (docs/data-model.md).
KNOWN_BLOCK_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x00000BAD, 0x40000BAD})
PCAPNG_MAGIC = SHB.to_bytes(4, "little")
#: The section header's byte-order magic 0x1A2B3C4D as it reads in each byte order.
BYTE_ORDER_MAGICS: dict[bytes, Literal["little", "big"]] = {
    bytes.fromhex("4d3c2b1a"): "little",
    bytes.fromhex("1a2b3c4d"): "big",
}
BLOCK_NAMES = {SHB: "section header block", IDB: "interface description block",
               EPB: "enhanced packet block", SPB: "simple packet block", OPB: "packet block"}
#: The shortest total length of each block type (its fixed fields); 12 for any other type.
MIN_BLOCK_LENGTH = {SHB: 28, IDB: 20, EPB: 32, OPB: 32, SPB: 16}
ANY_MIN_BLOCK_LENGTH = 12
#: The largest block before any interface raises it (libpcap: 16 MiB, or the largest record
#: the section's link types allow plus 1 MiB).
MIN_MAX_BLOCK = 16 << 20
OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14


def block_name(btype: int) -> str:
    return BLOCK_NAMES.get(btype, f"block of type 0x{btype:08x}")


def max_block(linktypes: list[int]) -> int:
    """The largest total length a block of a section with these interfaces may have."""
    return max([MIN_MAX_BLOCK] + [max_caplen(lt) + (1 << 20) for lt in linktypes])


# -- link types ---------------------------------------------------------------------------
LINKTYPE_NAMES = {
    0: "NULL", 1: "EN10MB", 9: "PPP", 10: "FDDI", 50: "PPP_HDLC", 12: "RAW", 14: "RAW", 101: "RAW", 104: "C_HDLC",
    105: "IEEE802_11", 108: "LOOP", 113: "LINUX_SLL", 127: "IEEE802_11_RADIOTAP", 228: "IPV4",
    192: "PPI", 229: "IPV6", 231: "DBUS", 239: "NFLOG", 276: "LINUX_SLL2",
}
#: Link types whose header the walkers decode; frames of any other one count by size only.
DECODED_LINKTYPES = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 276})
#: Link types the extended decode reads: those, and PPP, FDDI, PPP_HDLC, C_HDLC, IEEE 802.11
#: (bare, behind radiotap, behind PPI) and NFLOG.
EXTENDED_LINKTYPES = DECODED_LINKTYPES | frozenset({9, 10, 50, 104, 105, 127, 192, 239})

# libpcap refuses records longer than this (max_snaplen_for_dlt): a corrupt or fuzzed file.
_MAX_CAPLEN_DEFAULT = 262144
_MAX_CAPLEN = {231: 128 << 20, 279: 8 << 20, 249: 1 << 20}  # DBUS, EBHSCR, USBPCAP


def max_caplen(linktype: int) -> int:
    """The largest captured length libpcap accepts for ``linktype``."""
    return _MAX_CAPLEN.get(linktype, _MAX_CAPLEN_DEFAULT)


def linktype_name(linktype: int) -> str:
    """``LINKTYPE_ETHERNET``-style short name, e.g. ``"EN10MB(1)"``."""
    return f"{LINKTYPE_NAMES.get(linktype, 'LINKTYPE')}({linktype})"
