"""Write the fuzzer's seed inputs: small generated captures and small slices of real ones.

    python fuzz/make_seeds.py OUT_DIR [--corpus ../shared/corpus]

Generated captures (tests/pcapgen.py) cover classic pcap (both byte orders, µs and ns) and
pcapng (enhanced, simple and obsolete packet blocks, several interfaces and sections, both
byte orders, if_tsresol and if_tsoffset, blocks to skip) for every decoded link type, with
IPv4/IPv6 TCP and UDP, VLAN tags, fragments and IPv6 extension headers; plus undecoded
link types, time extremes, corrupt lengths and partial tails.  Real captures come from the
shared corpus, cut to their first ``SLICE`` bytes (never whole), and only from the
repositories that put them in the public domain (see LICENSES.md there).
Each capture is written under a few 4-byte input headers (fuzz/harness.py).  The seeds are
not kept in the repository: the fuzzer's merged corpus (fuzz/corpus/) is.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "fuzz"))

from harness import encode_input  # noqa: E402
from pcapgen import (  # noqa: E402
    ACK,
    FIN,
    RST,
    SYN,
    Rec,
    arp,
    dns_query,
    epb,
    eth,
    icmpv6,
    idb,
    ipv4,
    ipv6,
    ipv6_exts,
    isb,
    link,
    nrb,
    opb,
    pcap,
    pcapng,
    shb,
    spb,
    tcp,
    udp,
    vlan_tags,
)

#: Bytes kept of each real capture.
SLICE = 3500
#: Corpus sources whose captures are in the public domain (the Unlicense): slices of them,
#: and mutants of those, may live in this MIT repository without conditions (the others'
#: licences -- BSD, Apache, (L)GPL -- ask for notices or impose their own terms).
PUBLIC_DOMAIN = ("seladb/PcapPlusPlus", "lwerdna/filesamples")
DECODED = (1, 0, 12, 14, 101, 108, 113, 228, 229, 276)
T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def packets(linktype: int) -> list[bytes]:
    """A handful of frames of ``linktype``: IPv4 TCP/UDP/fragment, IPv6 TCP/UDP with
    extension headers and a fragment, and (where the link has a type field) VLAN and ARP."""
    v4 = [
        ipv4(tcp(40000, 80, flags=SYN), src="10.200.0.2", dst="10.200.0.1"),
        ipv4(tcp(80, 40000, flags=SYN | ACK), src="10.200.0.1", dst="10.200.0.2"),
        ipv4(udp(40001, 53, payload=dns_query()), src="10.200.0.1", dst="8.8.8.8", proto=17),
        ipv4(tcp(80, 40000, flags=FIN | RST), src="10.200.0.1", dst="10.0.0.9", options=b"\x01\x01\x01\x01"),
        ipv4(udp(5, 6)[:4], src="10.200.0.1", dst="10.0.0.3", proto=17, frag_offset=8),
    ]
    nh, chain = ipv6_exts(tcp(1, 2, flags=SYN), ["hopopts", ("fragment", {"offset": 0, "more": True}), "dstopts"])
    v6 = [
        ipv6(tcp(40000, 443, flags=SYN), src="fd00::1", dst="fd00::2", next_header=6),
        ipv6(udp(40000, 53, payload=dns_query()), src="fd00::2", dst="fd00::1", next_header=17),
        ipv6(chain, next_header=nh),
        ipv6(ipv6_exts(udp(1, 2), [("fragment", {"offset": 3})], next_header=17)[1], next_header=44),
        ipv6(icmpv6(), next_header=58),
    ]
    frames = [link(linktype, p) for p in v4] + [link(linktype, p, ethertype=0x86DD) for p in v6]
    if linktype in (1, 113, 276):
        frames.append(vlan_tags(ipv4(udp(9, 53), proto=17), linktype=linktype))
        frames.append(vlan_tags(ipv6(tcp(9, 80, flags=SYN), next_header=6), inner_ethertype=0x86DD,
                                linktype=linktype))
    if linktype == 1:
        frames.append(eth(arp(), ethertype=0x0806))
    frames.append(link(linktype, ipv4(b"", proto=6))[:-3] if linktype not in (228, 229) else b"\x45")
    return frames


def records(frames: list[bytes], step_ms: int = 13) -> list[Rec]:
    return [Rec(T0 + i * step_ms * MS, f) for i, f in enumerate(frames)]


def generated() -> Iterator[tuple[str, bytes]]:
    for lt in DECODED:
        frames = packets(lt)
        yield f"pcap-le-us-{lt}", pcap(records(frames), linktype=lt)
        yield f"pcap-be-ns-{lt}", pcap(records(frames, 150), linktype=lt, byteorder="big", nsec=True)
        blocks = [shb(), idb(lt, tsresol=9), idb(lt, snaplen=40)]
        for i, f in enumerate(frames):
            t = T0 + i * 37 * MS
            blocks.append(epb(i % 2, t // 1000 if i % 2 else t, f))
        yield f"pcapng-le-{lt}", pcapng(blocks)
        be = [shb(byteorder="big"), idb(lt, tsresol=131, tsoffset=1_700_000_000, byteorder="big"),
              spb(frames[0], byteorder="big"), opb(0, 5 << 3, frames[1], byteorder="big"),
              isb(0, byteorder="big"), nrb(byteorder="big"), epb(0, 9 << 3, frames[2], byteorder="big")]
        yield f"pcapng-be-{lt}", pcapng(be)
    for lt in (9, 104, 127, 231):  # counted by size only
        yield f"pcap-undecoded-{lt}", pcap(records([b"\xff\x03" + bytes(40)] * 3), linktype=lt)
        yield f"pcapng-undecoded-{lt}", pcapng([shb(), idb(lt), epb(0, T0 // 1000, bytes(30))])
    eth_frames = packets(1)
    # Several sections, byte orders and interfaces in one file.
    yield "pcapng-sections", pcapng([
        shb(), idb(1), epb(0, T0 // 1000, eth_frames[0]),
        shb(byteorder="big"), idb(113, tsresol=3, byteorder="big"), idb(1, byteorder="big"),
        epb(1, T0 // 1000 + 5, eth_frames[1], byteorder="big"), epb(0, T0 // MS + 1, packets(113)[2], byteorder="big"),
    ])
    # Time extremes: near int64's ends, far apart, out of order, tsoffset pushing past them.
    yield "pcap-times", pcap([Rec(0, eth_frames[0], ts_sec=0xFFFFFFFF, ts_frac=0xFFFFFFFF),
                              Rec(0, eth_frames[1], ts_sec=0, ts_frac=999_999),
                              Rec(0, eth_frames[2], ts_sec=7, ts_frac=5_000_000)])
    yield "pcapng-times", pcapng([
        shb(), idb(1, tsresol=9, tsoffset=-9_223_372_036), epb(0, 0, eth_frames[0]),
        epb(0, (1 << 64) - 1, eth_frames[1]), idb(1, tsresol=0), epb(1, 9_223_372_036, eth_frames[2]),
        idb(1, tsresol=255), epb(2, (1 << 63), eth_frames[3]),
    ])
    yield "pcap-gap", pcap([Rec(T0, eth_frames[0]), Rec(T0 + 7200 * 10**9, eth_frames[1]),
                            Rec(T0 + 7200 * 10**9 + 5 * MS, eth_frames[2])])
    # Corrupt: a record claiming too much, a pcapng block with a bad trailer, partial tails.
    yield "pcap-bad-caplen", pcap(records(eth_frames[:2]) + [Rec(T0, eth_frames[2], incl_len=0x7FFFFFFF)])
    yield "pcap-tail", pcap(records(eth_frames[:3]))[:-7]
    yield "pcapng-bad-trailer", pcapng([shb(), idb(1), epb(0, T0 // 1000, eth_frames[0], trailing_length=4)])
    yield "pcapng-tail", pcapng([shb(), idb(1), epb(0, T0 // 1000, eth_frames[0]), epb(0, 1, eth_frames[1])])[:-5]
    yield "pcapng-bad-iface", pcapng([shb(), idb(1), epb(3, T0 // 1000, eth_frames[0])])
    yield "empty", b""
    yield "pcap-header-only", pcap([])


def corpus_slices(corpus: Path) -> Iterator[tuple[str, bytes]]:
    with open(corpus / "MANIFEST.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["source_repo"] in PUBLIC_DOMAIN:
                yield "corpus-" + row["file"], (corpus / row["file"]).read_bytes()[:SLICE]


#: The input headers each capture is written under: defaults; extended decode with small
#: reads and info; wire sizes, 1 ms buckets, no gap cap, hosts; gzip with its own chunking.
VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"extended": True, "chunking": 1, "info": True},
    {"wire": True, "bucket_ms": 1, "gap": 3, "hosts": 1, "chunking": 4},
    {"compression": "gzip", "extended": True, "chunking": 5, "origin": 3},
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    captures = list(generated())
    if (args.corpus / "MANIFEST.tsv").exists():
        captures += list(corpus_slices(args.corpus))
    for i, (name, data) in enumerate(captures):
        for variant in VARIANTS if not name.startswith("corpus-") else VARIANTS[i % 2::2]:
            raw = encode_input(data, **variant)
            (args.out / f"{name}-{hashlib.sha1(raw).hexdigest()[:10]}").write_bytes(raw)
            written += 1
    print(f"{written} seeds from {len(captures)} captures in {args.out}")


if __name__ == "__main__":
    main()
