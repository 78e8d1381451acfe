#!/usr/bin/env python3
"""Deterministic synthetic traffic: classic pcap files of any size for benchmarks.

A few hundred hosts behind a sandbox bridge (10.200.0.1 is the host side): mostly TCP with
every flag mix, UDP with plenty of DNS queries, some ICMP, ARP and IPv6, 60-1514-byte frames,
about 5000 packets per 100 ms, timestamps mostly increasing with rare small steps back.
The same arguments always give the same bytes.  Built with numpy a batch at a time, so
gigabytes take seconds and memory stays flat.

    python benchmarks/traffic.py OUT.pcap --packets 2000000 [--seed 0] [--nsec]
"""

from __future__ import annotations

import argparse
import struct
import sys

import numpy as np

BATCH = 100_000
T0_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
PACKETS_PER_100MS = 5000
BRIDGE = 0x0AC80001  # 10.200.0.1

# (kind, share): what the batch is made of
KINDS = {"tcp": 0.70, "udp": 0.20, "icmp": 0.05, "arp": 0.03, "ipv6": 0.02}
TCP_FLAGS = np.array([0x10, 0x18, 0x10, 0x18, 0x02, 0x12, 0x11, 0x04, 0x14, 0x19, 0x01, 0x38, 0x3F, 0x00, 0xC2])
TCP_FLAG_P = np.array([30, 25, 10, 8, 5, 5, 4, 3, 3, 2, 1, 1, 1, 1, 1], dtype=float)
SERVICES = np.array([80, 443, 53, 22, 25, 8080, 3389, 445, 123, 6667])


def _batch(rng: np.random.Generator, n: int, first_t_ns: int, nsec: bool,
           random_payload: bool = False) -> tuple[bytes, int]:
    kinds = rng.choice(len(KINDS), size=n, p=list(KINDS.values()))
    tcp, udp, icmp, arp, ipv6 = (kinds == k for k in range(len(KINDS)))
    ip4 = tcp | udp | icmp

    # Frame sizes: bimodal (acks/queries vs. full segments), 60..1514 bytes.
    small = rng.random(n) < 0.7
    size = np.where(small, rng.integers(60, 130, n), rng.integers(600, 1515, n))
    size[arp] = 60
    size[udp & small] = np.maximum(size[udp & small], 14 + 20 + 8)
    size[ipv6] = np.maximum(size[ipv6], 14 + 40 + 8)
    size[tcp] = np.maximum(size[tcp], 14 + 20 + 20)

    # Timestamps: ~20 µs apart on average, rare small steps back.
    gaps = rng.exponential(100_000_000 / PACKETS_PER_100MS, n).astype(np.int64)
    gaps[rng.random(n) < 0.001] *= -1
    t = first_t_ns + np.cumsum(gaps)
    if not nsec:
        t -= t % 1000

    hosts = 0x0A000000 + rng.integers(0, 300, n) * 7 + 2  # a few hundred guests
    out = rng.random(n) < 0.4  # host side -> guest
    src = np.where(out, BRIDGE, hosts)
    dst = np.where(out, hosts, np.where(rng.random(n) < 0.7, BRIDGE, 0x08080808 + rng.integers(0, 50, n)))
    ephemeral = rng.integers(32768, 61000, n)
    service = SERVICES[rng.integers(0, len(SERVICES), n)]
    sport = np.where(out, service, ephemeral)
    dport = np.where(out, ephemeral, service)
    dns = udp & (rng.random(n) < 0.5)
    dport[dns & ~out] = 53
    sport[dns & out] = 53
    flags = TCP_FLAGS[rng.choice(len(TCP_FLAGS), size=n, p=TCP_FLAG_P / TCP_FLAG_P.sum())]

    rec_len = 16 + size
    starts = np.concatenate(([0], np.cumsum(rec_len)[:-1]))
    buf = np.zeros(int(rec_len.sum()), dtype=np.uint8)
    if random_payload:  # random bytes after the record header and the 54 bytes of headers
        buf[:] = rng.integers(0, 256, size=len(buf), dtype=np.uint8)
        for k in range(16 + 54):
            at = starts[rec_len > k] + k
            buf[at] = 0

    def put(at: np.ndarray, values: np.ndarray, width: int, big: bool = True) -> None:
        values = values.astype(np.uint64)
        for i in range(width):
            shift = 8 * (width - 1 - i) if big else 8 * i
            buf[at + i] = (values >> np.uint64(shift)) & np.uint64(0xFF)

    sec, frac = np.divmod(t, 1_000_000_000)
    put(starts, sec, 4, big=False)
    put(starts + 4, frac if nsec else frac // 1000, 4, big=False)
    put(starts + 8, size, 4, big=False)
    put(starts + 12, size, 4, big=False)
    f = starts + 16
    put(f, np.full(n, 0x020000000001), 6)          # dst MAC
    put(f + 6, np.full(n, 0x020000000002), 6)      # src MAC
    ethertype = np.select([ip4, arp, ipv6], [0x0800, 0x0806, 0x86DD])
    put(f + 12, ethertype, 2)
    ip = f[ip4] + 14
    put(ip, np.full(len(ip), 0x45), 1)
    put(ip + 2, size[ip4] - 14, 2)
    put(ip + 8, np.full(len(ip), 64), 1)
    put(ip + 9, np.select([tcp[ip4], udp[ip4]], [6, 17], 1), 1)
    put(ip + 12, src[ip4], 4)
    put(ip + 16, dst[ip4], 4)
    l4 = f[tcp | udp] + 34
    put(l4, sport[tcp | udp], 2)
    put(l4 + 2, dport[tcp | udp], 2)
    put(f[tcp] + 34 + 12, 0x5000 | flags[tcp], 2)
    put(f[udp] + 34 + 4, size[udp] - 34, 2)
    put(f[icmp] + 34, np.full(int(icmp.sum()), 0x0800), 2)
    put(f[arp] + 14, np.full(int(arp.sum()), 0x0001080006040001), 8)
    put(f[ipv6] + 14, np.full(int(ipv6.sum()), 0x60000000), 4)
    put(f[ipv6] + 20, np.full(int(ipv6.sum()), 0x1140), 2)  # UDP, hop limit 64
    return buf.tobytes(), int(t.max())


def write_capture(path: str, packets: int, *, seed: int = 0, nsec: bool = False, random_payload: bool = False) -> int:
    """Write ``packets`` packets of synthetic traffic to ``path``; returns the file size.
    ``random_payload``: the bytes after the headers are random instead of zero (captures
    that compress like real traffic, ~1x, not ~50x)."""
    rng = np.random.default_rng(seed)
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    size = 24
    t = T0_NS
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, 1))
        for start in range(0, packets, BATCH):
            data, t = _batch(rng, min(BATCH, packets - start), t, nsec, random_payload)
            f.write(data)
            size += len(data)
    return size


def convert(source: str, target: str, *, container: str = "pcap", linktype: int = 1,
            compression: str | None = None) -> int:
    """Rewrite the Ethernet capture ``source`` (from :func:`write_capture`) as ``container``
    ("pcap" or "pcapng", nanosecond timestamps), with ``linktype`` 1 (Ethernet) or 113
    (Linux cooked: the 14-byte Ethernet header becomes a 16-byte SLL one), compressed with
    ``compression`` ("gzip", "zstd" or None).  The same packets, for benchmarking each reader.
    Returns the size written."""
    with open(source, "rb") as f:
        data = f.read()
    magic, = struct.unpack_from("<I", data, 0)
    frac_ns = 1 if magic == 0xA1B23C4D else 1000
    parts = []
    if container == "pcapng":
        parts.append(struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28))
        opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)  # if_tsresol 10^-9
        parts.append(struct.pack("<IIHHI", 1, 20 + len(opts), linktype, 0, 262144) + opts
                     + struct.pack("<I", 20 + len(opts)))
    else:
        parts.append(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if linktype == 113:
            sll = struct.pack(">HHH8sH", 0, 1, 6, frame[6:12] + b"\0\0", int.from_bytes(frame[12:14], "big"))
            frame = sll + frame[14:]
            orig += 2
        t_ns = sec * 1_000_000_000 + frac * frac_ns
        if container == "pcapng":
            pad = b"\0" * (-len(frame) % 4)
            total = 32 + len(frame) + len(pad)
            parts.append(struct.pack("<IIIIIII", 6, total, 0, t_ns >> 32, t_ns & 0xFFFFFFFF, len(frame), orig)
                         + frame + pad + struct.pack("<I", total))
        else:
            parts.append(struct.pack("<IIII", *divmod(t_ns, 1_000_000_000), len(frame), orig) + frame)
    body = b"".join(parts)
    if compression == "gzip":
        import gzip

        body = gzip.compress(body, compresslevel=1, mtime=0)
    elif compression == "zstd":
        import zstandard

        body = zstandard.ZstdCompressor(level=1).compress(body)
    elif compression is not None:
        raise ValueError(f"unknown compression {compression!r}")
    with open(target, "wb") as f:
        f.write(body)
    return len(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nsec", action="store_true", help="nanosecond timestamps")
    args = parser.parse_args(argv)
    size = write_capture(args.output, args.packets, seed=args.seed, nsec=args.nsec)
    print(f"{args.output}: {args.packets} packets, {size} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
