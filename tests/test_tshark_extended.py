"""The oracle's extended decode against tshark, packet by packet: the public corpus, and
generated frames.

``tests/oracle.py``'s ``decode_packet(frame, linktype, extended=True)`` (data-model.md,
"Extended decode (opt-in)") is compared with Wireshark's dissection of every packet of every
corpus capture that tshark reads completely (MANIFEST ``packets`` numeric) and whose link
types are all ones the decode reads (Ethernet, Linux cooked v1/v2, raw IP, IPv4, IPv6,
NULL, LOOP, and PPP, PPP_HDLC, C_HDLC, FDDI, NFLOG).  The encapsulations the decode walks
(VLAN tags, PPPoE, MPLS, PBB, VN-Tag) are compared like any link: no allow-list entry
excuses an IP header tshark finds behind them.  This checks the *oracle*, independently of
fastpcap: another test compares fastpcap with the oracle.

What is compared, for the **outermost** IP header only (tunnels -- GRE, IP-in-IP, 6in4,
VXLAN, Geneve, ERSPAN, TZSP, ICMP errors -- have inner IP layers that we do not decode):

* whether there is an IP layer, its version, source and destination addresses;
* the protocol: IPv4's protocol field, or for IPv6 the next header left after the
  extension headers the decode walks (hop-by-hop, routing, destination options, fragment,
  AH), found from tshark's chain of extension-header layers in ``frame.protocols``;
* whether it is a non-first fragment (IPv4 fragment offset, IPv6 fragment header offset);
* ports, when tshark's layer right after that IP header (and its extension headers) is TCP
  or UDP, from the first ``tcp.*``/``udp.*`` occurrence (that layer is the first TCP/UDP
  layer of the packet), and TCP's six classic flags (tshark's ``tcp.flags`` holds 12 bits:
  masked with 0x3F).  When the outer protocol is neither, ports are not compared with
  tshark (an ICMP error's inner header or a tunnel's inner transport would come first) --
  the oracle must simply have none.

tshark prints every occurrence of each field (``-E occurrence=a``) rather than only the first:
the outer layer's values are the first ones, but an IPv6 extension chain may hold several
headers of a kind, and the n-th layer of a kind owns the n-th value of its field (see
``tshark_view``, which also says how an IP layer tshark rejected or could not finish is
read).

tshark runs with IP and IPv6 reassembly off (``ip.defragment``/``ipv6.defragment``: with
reassembly on, the last fragment carries the reassembled datagram's transport and the first
one none) and without TCP reassembly or analysis (speed only).  Ports are never
reinterpreted by heuristics: they only pick the dissector *above* TCP/UDP, which adds inner
layers after the ones compared.  Its preferences come from an empty configuration folder,
so a developer's own Wireshark profile cannot change the result.

Differences that are not bugs form a documented allow-list: ALLOWED (per file and frame,
empty so far) and KNOWN_DIFFERENCES (per well-defined condition, each predicate's docstring
being the reason).  Both must still be needed by the corpus, so the list cannot go stale.

The corpus holds few IPv6 extension headers and none cut short, so
``test_generated_frames_agree_with_tshark`` also runs tshark on frames of
``strategies.extended_linktype_frames`` (tag stacks, random extension chains cut anywhere,
fragments, bad versions, short or lying headers, every link type the decode reads).  Those
frames are odd on purpose: GENERATED_DIFFERENCES adds the conditions that only they need
(partial transport headers, IP length fields shorter than the packet, NULL family 10, AH
with length 0, IPv4 options cut short).
"""

from __future__ import annotations

import atexit
import csv
import ipaddress
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle import (
    ARUBA_TYPES,
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
    MAX_HEADERS,
    capture_records,
    decode_packet,
    more_links,
)

pytestmark = pytest.mark.once

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
MANIFEST_PATH = CORPUS / "MANIFEST.tsv"
TSHARK = shutil.which("tshark")

# link types decode_packet reads: EN10MB, LINUX_SLL, LINUX_SLL2, RAW (101, 12, 14), IPV4,
# IPV6, NULL, LOOP, and those only the extended decode reads: PPP, FDDI, PPP_HDLC, C_HDLC, NFLOG
DECODED = {1, 113, 276, 101, 12, 14, 228, 229, 0, 108, 9, 10, 50, 104, 105, 127, 192, 239}


def _manifest() -> list[dict]:
    if not MANIFEST_PATH.exists():
        return []
    with open(MANIFEST_PATH, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _selected(entry: dict) -> bool:
    linktypes = {int(x) for x in re.findall(r"\((\d+)\)", entry["linktype"])}
    return entry["packets"].isdigit() and bool(linktypes) and linktypes <= DECODED


FILES = [e["file"] for e in _manifest() if _selected(e)]

# ---------------------------------------------------------------------------------- tshark

FIELDS = [
    "frame.number", "frame.protocols",
    "ip.src", "ip.dst", "ip.proto", "ip.frag_offset",
    "ipv6.src", "ipv6.dst", "ipv6.nxt",
    "ipv6.hopopts.nxt", "ipv6.routing.nxt", "ipv6.dstopts.nxt", "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset",
    "ah.next_header",
    "tcp.srcport", "tcp.dstport", "tcp.flags",
    "udp.srcport", "udp.dstport",
    "_ws.malformed", "_ws.short", "_ws.unreassembled",
]
PREFS = {
    "ip.defragment": "FALSE",
    "ipv6.defragment": "FALSE",
    "tcp.desegment_tcp_streams": "FALSE",
    "tcp.analyze_sequence_numbers": "FALSE",
}
# heuristic dissectors of the Ethernet trailer (bytes after the IP length) that tshark may
# list after the layer in which an exception stopped the dissection of the IP packet
TRAILER_LAYERS = {"f5ethtrailer", "vssmonitoring", "eth.trailer", "ethertype"}
# the extension-header layers tshark names in frame.protocols that the decode walks:
# layer -> (its next-header value in the previous header, the field holding its own next
# header, the protocol's short name in tshark's exception texts)
EXT_LAYERS = {
    "ipv6.hopopts": (0, "ipv6.hopopts.nxt", "IPv6 Hop-by-Hop"),
    "ipv6.routing": (43, "ipv6.routing.nxt", "IPv6 Routing"),
    "ipv6.fraghdr": (44, "ipv6.fraghdr.nxt", "IPv6 Fragment"),
    "ah": (51, "ah.next_header", "AH"),
    "ipv6.dstopts": (60, "ipv6.dstopts.nxt", "IPv6 Destination"),
}

_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1))
_JOBS: dict = {}
_LOCK = threading.Lock()
_CONFIG: list = []  # [an empty Wireshark configuration folder], made on first use


def _config_dir() -> str:
    with _LOCK:
        if not _CONFIG:
            _CONFIG.append(tempfile.mkdtemp(prefix="fastpcap-wireshark-config-"))
            atexit.register(shutil.rmtree, _CONFIG[0], True)
    return _CONFIG[0]


def _run_tshark(path: Path) -> dict[int, dict[str, list[str]]]:
    """frame number -> {field: [every occurrence, in tree order]} for the whole file."""
    cmd = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
           "-E", "separator=/t", "-E", "header=n"]
    for k, v in PREFS.items():
        cmd += ["-o", f"{k}:{v}"]
    for f in FIELDS:
        cmd += ["-e", f]
    empty = _config_dir()
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=empty, XDG_CONFIG_HOME=empty, HOME=empty)
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"tshark failed on {path.name}: {proc.stderr.decode(errors='replace')}")
    out = {}
    for line in proc.stdout.decode().splitlines():
        values = line.split("\t")
        assert len(values) == len(FIELDS), line
        row = {f: (v.split(",") if v else []) for f, v in zip(FIELDS, values)}
        out[int(row["frame.number"][0])] = row
    return out


def prefetch(names) -> None:
    """Start tshark on these corpus files in a thread pool (each at most once per session)."""
    with _LOCK:
        for name in names:
            if name not in _JOBS:
                _JOBS[name] = _POOL.submit(_run_tshark, CORPUS / name)


def tshark_fields(name: str):
    """tshark's output for corpus file ``name``, run at most once per session."""
    prefetch([name])
    return _JOBS[name].result()


@pytest.fixture(scope="session")
def tshark_prefetch(request):
    """Start tshark on every corpus file a selected test of this module will compare."""
    names = set()
    for item in request.session.items:
        if item.module.__name__ != __name__:
            continue
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("name"):
            names.add(spec.params["name"])
        elif item.originalname == "test_every_known_difference_is_needed":
            names.update(FILES)
    prefetch([n for n in FILES if n in names])  # in the order the tests ask for them


def tshark_view(row: dict[str, list[str]]) -> dict:
    """The outermost IP layer of one tshark row, in decode_packet's terms.

    * The outer IP layer is the first "ip" or "ipv6" in ``frame.protocols``.  It counts as
      decoded only when tshark shows both its addresses: the destination is the last field
      of both fixed headers, so this means "the fixed header is all there and tshark
      accepted it" (a bogus IPv4 header length or version, or a header cut short, leave an
      "ip" layer without addresses).  One exception: tshark's IPv4 dissector hands a
      version-6 packet to its IPv6 dissector ("ip:ipv6"): the view is then that IPv6 layer
      (``dispatched``).
    * IPv6: the chain of extension-header layers right after it that the decode walks gives
      the protocol, each layer's next header taken from its own occurrence of the field.  A
      layer whose next header tshark did not show, or in which tshark's dissection stopped
      with an exception (the packet's last layer but Ethernet trailers, named by
      ``_ws.malformed`` "[Malformed Packet: NAME]" or "[Malformed Packet: NAME: why]", by
      ``_ws.unreassembled`` "[BoundError Unreassembled Packet: NAME]" in a first fragment,
      or by ``_ws.short`` "[Packet size limited during capture: NAME truncated]"), was not
      all there: the protocol is that header's type, as in the decode -- or its next header
      (``ip_proto_alt``): tshark also raises the exception in the last complete header's
      dissector when too few bytes are left for the next one.  A fragment header with an
      offset ends the chain.
    * Ports and flags: from the first tcp/udp occurrence when the layer right after the IP
      header (and its extension headers) is tcp/udp."""
    layers = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
    view = {"layers": layers, "ip_version": None, "before_ip": [], "src": None, "dst": None, "ip_proto": None,
            "fragment": False, "next_layer": None, "src_port": None, "dst_port": None, "tcp_flags": None,
            "dispatched": False, "ext_layers": [], "ext_truncated": False, "ip_proto_alt": None}
    ip_at = next((i for i, layer in enumerate(layers) if layer in ("ip", "ipv6")), None)
    if ip_at is None:
        return view

    def first(field, conv=int):
        values = row[field]
        return conv(values[0]) if values else None

    if layers[ip_at] == "ip" and not (row["ip.src"] and row["ip.dst"]):
        if layers[ip_at + 1 : ip_at + 2] != ["ipv6"]:
            return view  # tshark did not accept (or did not see all of) the IPv4 header
        view["dispatched"] = True
        ip_at += 1
    view["before_ip"] = layers[:ip_at]
    at = ip_at + 1
    if layers[ip_at] == "ip":
        view.update(ip_version=4, src=first("ip.src", ipaddress.IPv4Address),
                    dst=first("ip.dst", ipaddress.IPv4Address), ip_proto=first("ip.proto"),
                    fragment=bool(first("ip.frag_offset")))
    else:
        if not (row["ipv6.src"] and row["ipv6.dst"]):
            return view  # the 40-byte header is not all there
        view.update(ip_version=6, src=first("ipv6.src", ipaddress.IPv6Address),
                    dst=first("ipv6.dst", ipaddress.IPv6Address), ip_proto=first("ipv6.nxt"))
        while at < len(layers) and layers[at] in EXT_LAYERS:
            layer = layers[at]
            own_type, nxt_field, short_name = EXT_LAYERS[layer]
            k = layers[:at].count(layer)  # this layer's occurrence among the packet's layers
            values = row[nxt_field]
            view["ext_layers"].append(own_type)
            at += 1
            exceptions = ",".join(row["_ws.malformed"] + row["_ws.short"] + row["_ws.unreassembled"])
            name = re.escape(short_name)
            stopped = all(x in TRAILER_LAYERS for x in layers[at:]) and re.search(
                rf"\[(Malformed Packet|BoundError Unreassembled Packet|Unreassembled Packet): {name}[]:]"
                rf"|\[Packet size limited during capture: {name} truncated\]", exceptions) is not None
            if k >= len(values) or stopped:
                # tshark raises the exception of a header that is not all there in that
                # header's dissector -- or, when a complete one is followed by too few bytes
                # for the next header, still in its own: the next header is then the answer
                view.update(ip_proto=own_type, ext_truncated=True,
                            ip_proto_alt=int(values[k]) if k < len(values) else None)
                break
            view["ip_proto"] = int(values[k])
            if layer == "ipv6.fraghdr":
                offsets = row["ipv6.fraghdr.offset"]
                if k < len(offsets) and int(offsets[k]):
                    view["fragment"] = True
                    break
    if at < len(layers):
        view["next_layer"] = layers[at]
    if view["fragment"] or view["ext_truncated"]:
        return view
    if view["next_layer"] == "tcp":
        view["src_port"], view["dst_port"] = first("tcp.srcport"), first("tcp.dstport")
        flags = first("tcp.flags", lambda v: int(v, 16))
        view["tcp_flags"] = None if flags is None else flags & 0x3F
    elif view["next_layer"] == "udp":
        view["src_port"], view["dst_port"] = first("udp.srcport"), first("udp.dstport")
    return view


# ------------------------------------------------------------------------- comparison

COMPARED = ["ip_version", "src", "dst", "ip_proto", "fragment", "src_port", "dst_port", "tcp_flags"]
PORT_KEYS = {"src_port", "dst_port", "tcp_flags"}

# (file, frame) -> why the oracle and tshark legitimately differ on that one packet.  Empty:
# every difference found so far falls under one of the conditions of KNOWN_DIFFERENCES.
ALLOWED: dict[tuple[str, int], str] = {}


def _null_header_without_a_family(ours, theirs, frame, diff):
    """NULL/LOOP header holding neither AF_INET (2) nor an IPv6 family (10, 24, 28, 30) in
    either byte order: the decode's link type table says size only; tshark reads values
    above 1500 as an Ethernet type (e.g. "0f 00 08 00" -> 0x0800: IPv4)."""
    return (ours["linktype"] in (0, 108) and ours["ethertype"] == 0 and ours["ip_version"] is None
            and theirs["before_ip"] in (["null"], ["null", "ethertype"]) and theirs["ip_version"] is not None)


def _ipv4_type_with_version_6(ours, theirs, frame, diff):
    """An IPv4 link type (Ethernet/SLL type 0x0800, NULL AF_INET...) whose packet has
    version nibble 6: the extended decode counts it by size only (data-model.md step 2:
    IPv4 needs version 4; IPv6 comes only from IPv6 link types); tshark's IPv4 dissector
    flags the bogus version and hands the packet to its IPv6 dissector."""
    off = ours["network_offset"]
    return (ours["ethertype"] == 0x0800 and ours["ip_version"] is None and off is not None and len(frame) > off
            and frame[off] >> 4 == 6 and theirs["dispatched"] and theirs["ip_version"] == 6)


def _tcp_data_offset_below_5(ours, theirs, frame, diff):
    """A TCP header whose data offset is below 5 (fewer than 20 bytes): tshark reports the
    ports, then stops at the bogus header length before the flags; the decode (spec section
    2 step 5, unchanged in the extended decode) reads the flags of any TCP header with 20
    captured bytes, whatever its data offset says."""
    if set(diff) != {"tcp_flags"} or ours["ip_proto"] != 6 or theirs["tcp_flags"] is not None:
        return False
    return ours["transport_offset"] is not None and frame[ours["transport_offset"] + 12] >> 4 < 5


def _ipv4_header_length_beyond_capture(ours, theirs, frame, diff):
    """An IPv4 header (version 4, 20 bytes captured) whose IHL runs past the captured bytes:
    the decode stops (spec section 2 step 3, unchanged in the extended decode); tshark shows
    the addresses of the fixed 20 bytes and flags the header as cut short."""
    off = ours["network_offset"]
    return (ours["ethertype"] == 0x0800 and ours["ip_version"] is None and off is not None
            and len(frame) - off >= 20 and frame[off] >> 4 == 4 and (frame[off] & 0x0F) * 4 > len(frame) - off
            and theirs["ip_version"] == 4)


# The documented allow-list of conditions: (name, predicate).  Each predicate's docstring
# is the reason; a condition that no packet of the corpus needs any more fails
# test_every_known_difference_is_needed.
KNOWN_DIFFERENCES = [
    ("NULL/LOOP header without a known address family", _null_header_without_a_family),
    ("IPv4 link type carrying version 6", _ipv4_type_with_version_6),
    ("TCP data offset below 5", _tcp_data_offset_below_5),
    ("IPv4 header length beyond the captured bytes", _ipv4_header_length_beyond_capture),
]


def known_difference(ours: dict, theirs: dict, frame: bytes, diff: dict) -> str | None:
    """The name of the KNOWN_DIFFERENCES condition explaining ``diff``, or None."""
    for name, predicate in KNOWN_DIFFERENCES:
        if predicate(ours, theirs, frame, diff):
            return name
    return None


def differences(ours: dict, theirs: dict) -> dict:
    """{field: (oracle's, tshark's)} for every compared field that differs.  Ports and
    flags are compared too when tshark has no TCP/UDP layer right after the outer IP
    header: the oracle must then have none either.  When tshark stopped in an extension
    header, the protocol may also be that header's next header, provided the decode walked
    the same chain up to and including it (see ``tshark_view``)."""
    diff = {k: (ours[k], theirs[k]) for k in COMPARED if ours[k] != theirs[k]}
    chain = theirs["ext_layers"]
    if ("ip_proto" in diff and theirs["ip_proto_alt"] is not None and ours["ip_proto"] == theirs["ip_proto_alt"]
            and tuple(ours["ext_headers"][: len(chain)]) == tuple(chain)):
        del diff["ip_proto"]
    return diff


_RESULTS: dict = {}


def compare_file(name: str) -> dict:
    """Compare every packet of corpus file ``name`` (cached for the session).  Returns
    {"packets", "bad": [...], "explained": [...], "allowed_used": set, "stats": Counter}."""
    if name in _RESULTS:
        return _RESULTS[name]
    records = capture_records((CORPUS / name).read_bytes())
    fields = tshark_fields(name)
    assert len(fields) == len(records), f"tshark read {len(fields)} packets, the oracle {len(records)}"
    result = {"packets": len(records), "bad": [], "explained": [], "allowed_used": set(), "stats": Counter()}
    for rec in records:
        ours = decode_packet(rec.frame, rec.linktype, True)
        theirs = tshark_view(fields[rec.number])
        stats = result["stats"]
        stats["packets"] += 1
        stats[f"ipv{ours['ip_version']}" if ours["ip_version"] else "no ip"] += 1
        stats["vlan tagged"] += ours["vlan_tags"] > 0
        stats["ipv6 extension headers"] += bool(ours["ext_headers"])
        stats["non-first fragments"] += ours["fragment"]
        stats["with ports"] += ours["src_port"] is not None
        stats["tunnelled (inner ip)"] += sum(x in ("ip", "ipv6") for x in theirs["layers"]) > 1
        diff = differences(ours, theirs)
        if not diff:
            continue
        entry = (rec.number, rec.linktype, ":".join(theirs["layers"]), diff)
        why = ALLOWED.get((name, rec.number))
        if why is not None:
            result["allowed_used"].add((name, rec.number))
        else:
            why = known_difference(ours, theirs, rec.frame, diff)
        if why is None:
            result["bad"].append(entry)
        else:
            result["explained"].append(entry + (why,))
    _RESULTS[name] = result
    return result


needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


def listed(bad: list) -> str:
    """Unexplained mismatches for an assertion message: the first 20, and how many in all."""
    return "\n".join(map(str, bad[:20])) + (f"\n... {len(bad)} in all" if len(bad) > 20 else "")


@needs_tshark
@pytest.mark.corpus
@pytest.mark.parametrize("name", FILES or [None], ids=FILES or ["no-corpus"])
def test_extended_decode_agrees_with_tshark(name, tshark_prefetch):
    if name is None:
        pytest.skip(f"the shared capture corpus is not here ({CORPUS})")
    result = compare_file(name)
    stale = {k for k in ALLOWED if k[0] == name} - result["allowed_used"]
    assert not stale, f"ALLOWED entries no longer needed: {sorted(stale)}"
    bad = result["bad"]
    assert not bad, listed(bad)


@needs_tshark
@pytest.mark.corpus
def test_every_known_difference_is_needed(tshark_prefetch):
    """Each condition of KNOWN_DIFFERENCES explains at least one packet of the corpus, and
    every ALLOWED key names a selected file (so the allow-list cannot go stale)."""
    if not FILES:
        pytest.skip(f"the shared capture corpus is not here ({CORPUS})")
    used = {e[-1] for name in FILES for e in compare_file(name)["explained"]}
    unused = [name for name, _ in KNOWN_DIFFERENCES if name not in used]
    assert not unused, f"conditions no packet needs any more: {unused}"
    assert {k[0] for k in ALLOWED} <= set(FILES)


# ------------------------------------------------------------------- generated captures
# The corpus holds few IPv6 extension headers and no truncated ones, so the oracle is also
# compared with tshark on frames strategies.extended_linktype_frames() makes: random VLAN tag
# stacks, extension-header chains (cut anywhere), fragments, bad versions, short headers,
# lying length fields, on every link type the extended decode reads.  Those frames are odd
# on purpose, so GENERATED_DIFFERENCES explains more differences there (and only there).


def _be16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def _partial_transport_header(ours, theirs, frame, diff):
    """A TCP/UDP header with fewer than 20/8 captured bytes: the decode reads no ports (spec
    section 2 step 5); tshark shows whatever fields are there (ports from 4 bytes, TCP
    flags from 14)."""
    t = ours["transport_offset"]
    if t is None or ours["ip_proto"] not in (6, 17) or ours["src_port"] is not None or not set(diff) <= PORT_KEYS:
        return False
    seg = frame[t:]
    if len(seg) >= (20 if ours["ip_proto"] == 6 else 8):
        return False
    readable = {
        "src_port": _be16(seg, 0) if len(seg) >= 2 else None,
        "dst_port": _be16(seg, 2) if len(seg) >= 4 else None,
        "tcp_flags": _be16(seg, 12) & 0x3F if len(seg) >= 14 and ours["ip_proto"] == 6 else None,
    }
    return all(theirs[k] in (None, readable[k]) for k in diff)


def _ip_length_field_ends_early(ours, theirs, frame, diff):
    """The IPv4 total length (or 40 + the IPv6 payload length) ends before the captured
    bytes do: tshark dissects only that much (the rest is a trailer), while the decode reads
    every captured byte -- IPv4: spec section 2, the total length is not checked and padding
    is payload; IPv6: the same by the oracle's decision (the doc says "captured").
    Explained only when the decode of the packet cut at that length agrees with tshark."""
    off = ours["network_offset"]
    if ours["ip_version"] is None or off is None:
        return False
    net = frame[off:]
    end = _be16(net, 2) if ours["ip_version"] == 4 else 40 + _be16(net, 4)
    if end >= len(net):
        return False
    cut_frame = frame[: off + end]
    cut = decode_packet(cut_frame, ours["linktype"], True)
    rest = differences(cut, theirs)
    return not rest or _partial_transport_header(cut, theirs, cut_frame, rest)


def _ipv4_options_cut(ours, theirs, frame, diff):
    """An IPv4 header whose options (IHL above 5) are not all captured: the decode needs the
    IHL's bytes (spec section 2 step 3: size only); tshark shows the 20 fixed bytes'
    fields before it stops in the options."""
    off = ours["network_offset"]
    net = frame[off:] if off is not None else b""
    return (ours["ethertype"] == 0x0800 and ours["ip_version"] is None and 20 <= len(net) < (net[0] & 0x0F) * 4
            and net[0] >> 4 == 4 and theirs["ip_version"] == 4
            and (theirs["src"].packed, theirs["dst"].packed, theirs["ip_proto"]) == (net[12:16], net[16:20], net[9]))


def _ah_length_0(ours, theirs, frame, diff):
    """An IPv6 AH whose length byte is 0: the decode skips (0 + 2) * 4 = 8 bytes, as the
    doc's formula says; tshark reads AH's 12 fixed bytes (next header, length, reserved,
    SPI, sequence number) whatever the length says, and stops there when fewer follow."""
    chain = theirs["ext_layers"]
    if not (theirs["ext_truncated"] and chain and chain[-1] == 51
            and tuple(ours["ext_headers"][: len(chain)]) == tuple(chain)):
        return False
    at = ours["network_offset"] + 40  # find that AH: walk the headers before it
    for kind in chain[:-1]:
        at += 8 if kind == 44 else (frame[at + 1] + 2) * 4 if kind == 51 else (frame[at + 1] + 1) * 8
    return frame[at + 1] == 0


def _nflog_tlvs_big_endian_in_a_little_endian_file(ours, theirs, frame, diff):
    """NFLOG TLVs written big-endian in a little-endian file (the generated pcapng): the TLV
    lengths and types are in the capturing host's byte order, which tshark (like libpcap)
    takes to be the file's; the decode reads the order from the first TLV's type
    (data-model.md, "Extended decode", step 6), which here says big-endian.  On real
    captures the two agree: the kernel's TLVs are in the order of the host that wrote the file."""
    return (ours["linktype"] == 239 and len(frame) >= 8 and frame[6] == 0 and 1 <= frame[7]
            and theirs["ip_version"] is None)


def _nflog_payload_cut_short(ours, theirs, frame, diff):
    """An NFLOG payload TLV longer than the captured bytes (a snap length cut it), or
    followed by bytes that are not a TLV (a length below 4, or beyond the captured bytes: the
    generated frames' padding): tshark reads every TLV before it dissects the (last) payload,
    and drops it in both cases;
    the decode reads the network header from the first payload TLV, from what is captured,
    as it does for every other link type."""
    if ours["linktype"] != 239 or ours["ip_version"] is None or theirs["ip_version"] is not None:
        return False
    at = 4
    while len(frame) - at >= 4:
        length, kind = struct.unpack("<HH", frame[at : at + 4])
        if length < 4:
            return False
        if kind & 0x7FFF == 9:
            if at + length > len(frame):
                return True
            return _nflog_bad_tlv_after(frame, at + (length + 3) // 4 * 4)
        at += (length + 3) // 4 * 4
    return False


def _nflog_bad_tlv_after(frame, at):
    """Whether a TLV of length below 4, or one longer than the bytes left, follows (from
    ``at``, little-endian TLVs)."""
    while len(frame) - at >= 4:
        length = struct.unpack("<H", frame[at : at + 2])[0]
        if length < 4 or length > len(frame) - at:
            return True
        at += (length + 3) // 4 * 4
    return False


def _null_family_10(ours, theirs, frame, diff):
    """NULL/LOOP address family 10 (Linux's AF_INET6): data-model.md lists it among the
    IPv6 families (10, 24, 28, 30); tshark's NULL dissector knows only the BSD values 24,
    28 and 30 and shows the packet as data."""
    fam = frame[:4]
    return (ours["linktype"] in (0, 108) and ours["ip_version"] == 6 and theirs["ip_version"] is None
            and (fam == b"\0\0\0\x0a" or (ours["linktype"] == 0 and fam == b"\x0a\0\0\0")))


def _radiotap_or_ppi_version_not_0(ours, theirs, frame, diff):
    """A radiotap or PPI header whose version byte is not 0: data-model.md reads version 0
    only (the one both formats define; another version's fields cannot be trusted), and the
    decode stops there, while tshark dissects the header whatever its version says (and not
    always as it would version 0's: a radiotap flags field, for one, is then not read, which
    moves the 802.11 payload by the data pad)."""
    return (ours["linktype"] in (127, 192) and bool(frame) and frame[0] != 0 and ours["ip_version"] is None
            and not ours["ethertype"])


def _llc_ip_sap(ours, theirs, frame, diff):
    """An IEEE 802.11 or FDDI payload whose LLC header is not LLC/SNAP but names IP's own SAP
    (DSAP 0x06): data-model.md walks LLC/SNAP only (RFC 1042, what IP over 802 networks
    uses), tshark's LLC dissector hands SAP 0x06 to IP.  Explained only when the decode
    found the link header and no LLC/SNAP after it, and the byte there is 0x06."""
    if ours["linktype"] not in (10, 105, 127, 192) or ours["ip_version"] is not None:
        return False
    layers = ":".join(theirs["layers"])
    if "llc:ip" not in layers:  # (also llc:ipv6)
        return False
    link = more_links(frame, ours["linktype"])
    return link is not None and link[0] == 0 and link[1] < len(frame) and frame[link[1]] == 0x06


GENERATED_DIFFERENCES = [
    ("LLC with IP's SAP 0x06, not LLC/SNAP", _llc_ip_sap),
    ("radiotap/PPI header version not 0", _radiotap_or_ppi_version_not_0),
    ("TCP/UDP header not all captured", _partial_transport_header),
    ("IP length field shorter than the captured packet", _ip_length_field_ends_early),
    ("NULL/LOOP family 10", _null_family_10),
    ("NFLOG payload TLV cut short, or followed by a TLV shorter than 4 or beyond the frame",
     _nflog_payload_cut_short),
    ("NFLOG TLVs in the other byte order than the file's", _nflog_tlvs_big_endian_in_a_little_endian_file),
    ("IPv6 AH with length 0", _ah_length_0),
    ("IPv4 options not all captured", _ipv4_options_cut),
]


def compare_generated(pairs) -> tuple[list, Counter]:
    """Write ``(linktype, frame)`` pairs as one pcapng (one interface per link type), run
    tshark on it, compare every packet.  Returns (unexplained mismatches, Counter of
    explanations)."""
    from pcapgen import epb, idb, pcapng, shb

    linktypes = sorted({lt for lt, _ in pairs})
    blocks = [shb()] + [idb(lt) for lt in linktypes]
    blocks += [epb(linktypes.index(lt), 1_700_000_000_000_000 + i, f) for i, (lt, f) in enumerate(pairs)]
    with tempfile.TemporaryDirectory(prefix="fastpcap-tshark-") as tmp:
        path = Path(tmp) / "generated.pcapng"
        path.write_bytes(pcapng(blocks))
        fields = _run_tshark(path)
    assert len(fields) == len(pairs)
    bad, why = [], Counter()
    for number, (lt, frame) in enumerate(pairs, 1):
        ours = decode_packet(frame, lt, True)
        theirs = tshark_view(fields[number])
        diff = differences(ours, theirs)
        if not diff:
            continue
        reason = known_difference(ours, theirs, frame, diff) or next(
            (name for name, pred in GENERATED_DIFFERENCES if pred(ours, theirs, frame, diff)), None)
        if reason is None:
            bad.append((number, lt, frame.hex(), ":".join(theirs["layers"]), diff))
        else:
            why[reason] += 1
    return bad, why


# The generated comparisons draw fixed examples (derandomize), so that a run of the suite
# is the same every time: random examples find, now and then (about one run in 70 this
# stop), another corner where tshark and the data model part -- each a question of which
# rule is right, settled by a fix or by a documented difference above, not a regression.
# FASTPCAP_TSHARK_EXPLORE=1 draws random examples; sweep with --hypothesis-seed=N.
EXPLORE = bool(os.environ.get("FASTPCAP_TSHARK_EXPLORE"))

GENERATED_LINKTYPES = (1, 1, 1, 113, 276, 101, 229, 0, 108, 228, 9, 10, 50, 104, 105, 127, 192, 239)


def _generated_frames():
    """Lists of (link type, frame) pairs, Ethernet the most often."""
    from strategies import extended_linktype_frames

    pair = st.sampled_from(GENERATED_LINKTYPES).flatmap(
        lambda lt: st.tuples(st.just(lt), extended_linktype_frames(lt)))
    return st.lists(pair, min_size=1, max_size=300)


@needs_tshark
@settings(max_examples=8, deadline=None, derandomize=not EXPLORE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pairs=_generated_frames())
def test_generated_frames_agree_with_tshark(pairs):
    """One tshark run per example (a pcapng of up to 300 frames on up to 7 interfaces)."""
    bad, _why = compare_generated(pairs)
    assert not bad, "\n".join(map(str, bad[:10]))


# ------------------------------------------------------------------ tunnels="inner"
# With tunnels="inner" the decode's packet is the innermost IP header reached through the
# tunnels it walks (data-model.md, "Tunnels").  tshark's counterpart: the last IP layer of
# the packet's leading run of tunnel and link layers (an ICMP error's quoted header, or a
# tunnel the decode does not walk -- L2TP, Teredo, CAPWAP -- ends the run, and so
# leaves the outer header), its fields being that layer's occurrence of ip.*/ipv6.*, and the
# ports of the TCP/UDP layer right after it.  Only packets that one side or the other sees
# as tunnelled are compared here; the others are the outer comparison's.

# (nrup: a GTP-U header's NR RAN Container, which tshark shows as a layer of its own
# between gtp and the packet inside)
TUNNEL_RUN = {"eth", "ethertype", "vlan", "ieee8021ad", "ieee8021ah", "vntag", "mpls", "pppoes", "ppp", "gre",
              "erspan", "vxlan", "geneve", "gtp", "nrup", "tzsp", "udp", "wlan", "llc",
              "ip", "ipv6"} | set(EXT_LAYERS)

# tshark's layers for each bit of a packet's encap (the oracle's ENC_* bits); PPTP, Aruba and
# IP-in-IP are pairs of layers (tshark_encap)
TSHARK_ENCAP = {"vlan": ENC_VLAN, "ieee8021ad": ENC_VLAN, "mpls": ENC_MPLS, "pppoes": ENC_PPPOE, "ieee8021ah": ENC_PBB,
                "vntag": ENC_VNTAG, "gre": ENC_GRE, "erspan": ENC_ERSPAN, "vxlan": ENC_VXLAN, "geneve": ENC_GENEVE,
                "gtp": ENC_GTPU, "tzsp": ENC_TZSP}


def tshark_encap(layers: list[str]) -> int:
    """The ENC_* bits of the headers tshark shows in ``layers`` (frame.protocols)."""
    bits = 0
    for layer, following in zip(layers, layers[1:] + [""]):
        bits |= TSHARK_ENCAP.get(layer, 0)
        if layer == "gre" and following == "ppp":
            bits |= ENC_PPTP
        elif layer == "gre" and following == "wlan":
            bits |= ENC_ARUBA
        elif layer in ("ip", "ipv6") and following in ("ip", "ipv6"):
            bits |= ENC_IPIP
    return bits


def tshark_inner_view(row: dict[str, list[str]]) -> dict | None:
    """The innermost IP layer of the leading run of TUNNEL_RUN layers, in decode_packet's
    terms (None: that run has at most one IP layer, the outer one)."""
    layers = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
    run = []
    for layer in layers:
        # an NR RAN Container of a PDU type tshark's NR-U dissector does not know shows as
        # "gtp:data", and the packet inside follows
        if layer not in TUNNEL_RUN and not (layer == "data" and run[-1:] == ["gtp"]):
            break
        run.append(layer)
    # an IPv4 layer tshark rejected for its version 6 and handed to IPv6 ("ip:ipv6", no
    # ip.src) is not a layer of its own
    rejected = layers.count("ip") - len(row["ip.src"])
    ips = []
    for i, layer in enumerate(run):
        if layer == "ip" and rejected > 0 and run[i + 1 : i + 2] == ["ipv6"]:
            rejected -= 1
            continue
        if layer in ("ip", "ipv6"):
            ips.append(i)
    if len(ips) < 2:
        return None
    at = ips[-1]
    kind = layers[at]
    k = sum(1 for i in ips[:-1] if layers[i] == kind)
    view = {"layers": layers, "ip_layers": len(ips), "ip_version": None, "src": None, "dst": None, "ip_proto": None,
            "fragment": False, "src_port": None, "dst_port": None, "tcp_flags": None, "ext": False}

    def nth(field, index, conv=int):
        values = row[field]
        return conv(values[index]) if index < len(values) else None

    if kind == "ip":
        view.update(ip_version=4, src=nth("ip.src", k, ipaddress.IPv4Address),
                    dst=nth("ip.dst", k, ipaddress.IPv4Address),
                    ip_proto=nth("ip.proto", k), fragment=bool(nth("ip.frag_offset", k)))
    else:
        view.update(ip_version=6, src=nth("ipv6.src", k, ipaddress.IPv6Address),
                    dst=nth("ipv6.dst", k, ipaddress.IPv6Address), ip_proto=nth("ipv6.nxt", k))
    following = layers[at + 1] if at + 1 < len(layers) else None
    if following in EXT_LAYERS:
        view["ext"] = True  # an inner IPv6 extension chain: addresses only
    elif following in ("tcp", "udp") and not view["fragment"]:
        j = layers[: at + 1].count(following)
        view["src_port"], view["dst_port"] = nth(f"{following}.srcport", j), nth(f"{following}.dstport", j)
        if following == "tcp":
            flags = nth("tcp.flags", j, lambda v: int(v, 16))
            view["tcp_flags"] = None if flags is None else flags & 0x3F
    return view


def inner_differences(ours: dict, theirs: dict | None) -> dict:
    """{field: (oracle's, tshark's)} for the innermost packet (see tshark_inner_view); an
    inner IPv6 extension chain compares the addresses only."""
    if theirs is None:
        return {"tunnelled": (ours.get("tunnels", 0), 0)} if ours.get("tunnels") else {}
    keys = ["ip_version", "src", "dst"] if theirs["ext"] else COMPARED
    return {k: (ours[k], theirs[k]) for k in keys if ours[k] != theirs[k]}


def compare_inner(records, fields) -> tuple[list, Counter]:
    """Compare the innermost packets of ``records`` ((number, linktype, frame)) with tshark's
    ``fields``: (unexplained mismatches, Counter of what was compared and explained)."""
    bad, stats = [], Counter()
    for number, linktype, frame in records:
        ours = decode_packet(frame, linktype, True, tunnels=True)
        layers = fields[number]["frame.protocols"][0].split(":") if fields[number]["frame.protocols"] else []
        seen = tshark_encap(layers)
        if ours["encap"] & ~seen:  # an encapsulation walked that tshark does not see
            if _stops_at_nr_ran_container(layers):  # (behind it: see _gtpu_nr_ran_container)
                stats["encapsulations behind a GTP-U NR RAN Container"] += 1
            else:
                bad.append((number, linktype, frame.hex(), ":".join(layers), {"encap": (ours["encap"], seen)}))
        stats.update(f"encap {bit:#06x}" for bit in (1 << i for i in range(14)) if ours["encap"] & bit)
        theirs = tshark_inner_view(fields[number])
        if theirs is None and not ours.get("tunnels"):
            continue
        stats["tunnelled packets compared"] += 1
        diff = inner_differences(ours, theirs)
        if not diff:
            continue
        reason = next((name for name, pred in INNER_DIFFERENCES if pred(ours, theirs, frame, diff, layers)), None)
        if reason is None:
            bad.append((number, linktype, frame.hex(), ":".join(fields[number]["frame.protocols"]), diff))
        else:
            stats[reason] += 1
    return bad, stats


def _header_bound(ours, theirs, frame, diff, layers):
    """The decode walked MAX_HEADERS (8) headers -- the link's encapsulations, each tunnel,
    the encapsulations inside -- and stopped there (data-model.md, "Tunnels": the bound
    keeps crafted packets from looping); tshark walks on to a deeper IP header."""
    return (ours.get("headers", 0) >= MAX_HEADERS and theirs is not None
            and theirs["ip_layers"] > ours.get("tunnels", 0) + 1)


def _stops_at_nr_ran_container(layers: list[str]) -> bool:
    """tshark's dissection ends in a GTP-U header's NR RAN Container (``gtp:nrup``)."""
    return len(layers) >= 2 and layers[-2:] == ["gtp", "nrup"]


def _gtpu_nr_ran_container(ours, theirs, frame, diff, layers):
    """A GTP-U G-PDU with an NR RAN Container extension header (type 0x84): tshark hands
    what follows it to its NR-U dissector (``gtp:nrup``) and shows no packet inside; the
    decode walks the extension headers by their length fields to the T-PDU, which follows
    them in every G-PDU (3GPP TS 29.281; the NR-U frame is inside its extension header),
    and on into the tunnels that packet carries.  Explained only when tshark's dissection
    ends there and the decode walked more tunnels than tshark shows IP layers before it."""
    shown = theirs["ip_layers"] if theirs is not None else 1
    return _stops_at_nr_ran_container(layers) and ours.get("tunnels", 0) >= shown


def _aruba_amsdu(ours, theirs, frame, diff, layers):
    """An Aruba GRE packet whose IEEE 802.11 frame is an A-MSDU (the A-MSDU bit, bit 7 of
    QoS control): several packets in one frame, which the decode does not walk
    (data-model.md, "Tunnels", Aruba row) -- the packet stays the one carrying the GRE --
    while tshark dissects the A-MSDU's subframes (each one's LLC, and what that names).
    Explained only when tshark shows the 802.11 frame behind GRE, and the same frame with
    the A-MSDU bit clear is walked."""
    at = ours["transport_offset"]
    if ours["ip_proto"] != 47 or at is None or "gre:wlan" not in ":".join(layers) or len(frame) - at < 4:
        return False
    flags, proto = struct.unpack(">HH", frame[at : at + 4])
    if flags & 0x7 or proto not in ARUBA_TYPES:
        return False
    wlan = at + 4 + sum(4 for bit in (0x8000, 0x2000, 0x1000) if flags & bit)
    return _amsdu_walked_without_its_bit(ours, frame, wlan, ENC_ARUBA)


def _amsdu_walked_without_its_bit(ours, frame, wlan, bit):
    """The IEEE 802.11 frame at ``wlan`` is a QoS data frame with the A-MSDU bit, and the
    same frame with that bit clear is walked (its tunnel's ``bit`` set)."""
    if len(frame) - wlan < 2 or frame[wlan] & 0x0F != 0x08 or not frame[wlan] & 0x80:  # a QoS data frame
        return False
    qos = wlan + (30 if frame[wlan + 1] & 3 == 3 else 24)
    if qos >= len(frame) or not frame[qos] & 0x80:
        return False
    cleared = bytearray(frame)
    cleared[qos] &= 0x7F
    return bool(decode_packet(bytes(cleared), ours["linktype"], True, tunnels=True)["encap"] & bit)


def _tzsp_amsdu(ours, theirs, frame, diff, layers):
    """As _aruba_amsdu, for the IEEE 802.11 frame (encapsulation 18) of a TZSP header the
    decode stopped at (version 1, type 0 or 1, its tags up to END): tshark dissects the
    A-MSDU's subframes.  Explained only when tshark shows the 802.11 frame behind TZSP."""
    at = ours["transport_offset"]
    if ours["ip_proto"] != 17 or ours["dst_port"] != 37008 or at is None or "tzsp:wlan" not in ":".join(layers):
        return False
    at += 8
    if len(frame) - at < 4 or frame[at] != 1 or frame[at + 1] > 1 or frame[at + 2 : at + 4] != b"\x00\x12":
        return False
    at += 4
    while at < len(frame) and frame[at] != 1:  # the tags, to END
        at += 1 if frame[at] == 0 else 2 + (frame[at + 1] if at + 1 < len(frame) else 0)
    return at < len(frame) and _amsdu_walked_without_its_bit(ours, frame, at + 1, ENC_TZSP)


def _tzsp_other_header(ours, theirs, frame, diff, layers):
    """A TZSP header of a version other than 1, or of type 2 (reserved) or 3 (configuration),
    or any type but 0 and 1 (a packet received, one to transmit) and 4 and 5 (keepalive, port
    opener): the decode does not walk it (data-model.md, "Tunnels", TZSP row), tshark reads
    the tags and dissects what follows whatever the version, for every type but 4 and 5.
    Explained only when the decode stopped at UDP to 37008, tshark shows TZSP there, and the
    same frame with version 1 and type 0 is walked."""
    at = ours["transport_offset"]
    if ours["ip_proto"] != 17 or ours["dst_port"] != 37008 or at is None or len(frame) - at < 12:
        return False
    if "udp:tzsp:" not in ":".join(layers):
        return False
    version, kind = frame[at + 8], frame[at + 9]
    if (version == 1 and kind in (0, 1)) or kind in (4, 5):
        return False
    fixed = bytearray(frame)
    fixed[at + 8 : at + 10] = b"\x01\x00"
    return bool(decode_packet(bytes(fixed), ours["linktype"], True, tunnels=True)["encap"] & ENC_TZSP)


INNER_DIFFERENCES = [
    ("8 headers walked (the bound)", _header_bound),
    ("GTP-U with an NR RAN Container extension", _gtpu_nr_ran_container),
    ("Aruba 802.11 A-MSDU (not walked)", _aruba_amsdu),
    ("TZSP of another version or type (not walked)", _tzsp_other_header),
    ("TZSP 802.11 A-MSDU (not walked)", _tzsp_amsdu),
]


@needs_tshark
@pytest.mark.corpus
@pytest.mark.parametrize("name", FILES or [None], ids=FILES or ["no-corpus"])
def test_innermost_packets_agree_with_tshark(name, tshark_prefetch):
    if name is None:
        pytest.skip(f"the shared capture corpus is not here ({CORPUS})")
    records = [(r.number, r.linktype, r.frame) for r in capture_records((CORPUS / name).read_bytes())]
    bad, _stats = compare_inner(records, tshark_fields(name))
    assert not bad, listed(bad)


def _tunnel_pairs():
    from strategies import tunnel_frames

    return st.lists(tunnel_frames(clean=True), min_size=1, max_size=200)


@needs_tshark
@settings(max_examples=8, deadline=None, derandomize=not EXPLORE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames=_tunnel_pairs())
def test_generated_tunnels_agree_with_tshark(frames):
    """One tshark run per example: Ethernet frames with 1-3 tunnels of every kind, random
    tunnel headers around well-formed packets (odd packets are compared outside tunnels,
    above; the decode of a packet inside a tunnel is the same code)."""
    from pcapgen import Rec, pcap

    with tempfile.TemporaryDirectory(prefix="fastpcap-tshark-") as tmp:
        path = Path(tmp) / "tunnels.pcap"
        path.write_bytes(pcap([Rec(1_700_000_000_000_000_000 + i * 1000, f) for i, f in enumerate(frames)]))
        fields = _run_tshark(path)
    bad, _stats = compare_inner([(i + 1, 1, f) for i, f in enumerate(frames)], fields)
    assert not bad, "\n".join(map(str, bad[:10]))
