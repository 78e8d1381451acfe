"""``fastpcap info``: checked against Wireshark's capinfos on the corpus, and on hand-made files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

import fastpcap
from fastpcap.info import FIELDS, capture_info, to_text
from fastpcap.pcapng import Interface

from conftest import CORPUS
from oracle import decode_packet
from pcapgen import (
    Rec,
    compress,
    epb,
    eth,
    gre,
    idb,
    ipv4,
    mpls,
    pcap,
    pcapng,
    shb,
    tcp,
    tzsp,
    udp,
    vlan_tags,
    vxlan,
    wlan,
)

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def test_counts_and_protocol_mix(tmp_path: Path) -> None:
    frames = [eth(ipv4(tcp(flags=2))), eth(ipv4(udp(1, 53), proto=17)), eth(ipv4(b"\x08" + bytes(7), proto=1)),
              eth(b"\x60" + bytes(39), ethertype=0x86DD), eth(bytes(28), ethertype=0x0806), b"\x01\x02"]
    recs = [Rec(T0 + i * MS, f, orig_len=len(f) + 10) for i, f in enumerate(frames)]
    recs.insert(3, Rec(T0, frames[0]))  # out of order
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap(recs, snaplen=1500) + b"\x01\x02\x03")
    info = capture_info(path)
    assert list(info) == list(FIELDS)
    assert (info["format"], info["compression"], info["byteorder"], info["linktypes"], info["snaplen"]) == (
        "pcap", None, "little", ["EN10MB(1)"], 1500)
    assert (info["packets"], info["ipv4"], info["ipv6"], info["arp"], info["other"]) == (7, 4, 1, 1, 1)
    assert (info["tcp"], info["udp"], info["icmp"], info["out_of_order"], info["tail_bytes"]) == (2, 1, 1, 1, 3)
    assert info["bytes"] == sum(len(r.frame) for r in recs)
    assert info["wire_bytes"] == info["bytes"] + 60  # six frames cut by 10 bytes
    assert (info["first_ns"], info["last_ns"], info["duration_s"]) == (T0, T0 + 5 * MS, 0.005)
    assert info["error"] is None
    text = to_text(info)
    assert "Packets:        7" in text and "Tail:           3 bytes" in text and "2023-11-14 22:13:20" in text


def test_encapsulation_counts(cli, tmp_path: Path) -> None:
    syn = ipv4(tcp(flags=2))
    frames = [
        vlan_tags(syn, tags=[(0x8100, 1), (0x88A8, 2)]),  # two tags: one packet with VLAN
        eth(mpls(syn, labels=(1, 2)), ethertype=0x8847),
        eth(ipv4(udp(5, 4789, payload=vxlan(vlan_tags(syn, tags=[(0x8100, 3)]))), proto=17)),  # VXLAN, a tag inside
        eth(ipv4(gre(wlan(syn), protocol=0x8200), proto=47)),  # Aruba
        eth(ipv4(syn, proto=4)),  # IP in IP
        eth(ipv4(udp(5, 37008, payload=tzsp(wlan(syn), encapsulation=18)), proto=17)),  # TZSP, an 802.11 frame
        eth(syn),
    ]
    path = tmp_path / "e.pcap"
    path.write_bytes(pcap([Rec(T0 + i * MS, f) for i, f in enumerate(frames)]))
    outer, inner = capture_info(path)["encapsulations"], capture_info(path, tunnels="inner")["encapsulations"]
    assert {k: v for k, v in outer.items() if v} == {"vlan": 1, "mpls": 1}
    assert {k: v for k, v in inner.items() if v} == {"vlan": 2, "mpls": 1, "vxlan": 1, "gre": 1, "aruba": 1,
                                                      "ip-in-ip": 1, "tzsp": 1}
    for counts, tunnels in ((outer, False), (inner, True)):  # the oracle's decode, packet by packet
        bits = [decode_packet(f, 1, True, tunnels)["encap"] for f in frames]
        assert list(counts.values()) == [sum(1 for b in bits if b & (1 << i)) for i in range(14)]
    text = cli("info", path, check=True).stdout.decode()
    assert "Encapsulation:  VLAN 1, MPLS 1 (tunnels not walked: --tunnels inner counts them)" in text
    text = cli("info", "--tunnels", "inner", path, check=True).stdout.decode()
    assert "Encapsulation:  VLAN 2, MPLS 1, GRE 1, Aruba 802.11 1, VXLAN 1, IP in IP 1, TZSP 1\n" in text
    assert json.loads(cli("info", "--json", path, check=True).stdout)["tunnels"] == "outer"


def test_pcapng_compressed_and_corrupt(cli, tmp_path: Path) -> None:
    ng = pcapng([shb(byteorder="big"), idb(1, byteorder="big"), idb(113, byteorder="big"),
                 epb(0, T0 // 1000, eth(ipv4(tcp())), byteorder="big")])
    good = tmp_path / "good.pcapng.xz"
    good.write_bytes(compress(ng, "xz"))
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(ng + epb(7, 1, b"x", byteorder="big"))
    proc = cli("info", "--json", good, bad)
    assert proc.returncode == 2  # one of them is corrupt
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert (first["format"], first["compression"], first["byteorder"], first["linktypes"]) == (
        "pcapng", "xz", "big", ["EN10MB(1)", "LINUX_SLL(113)"])
    assert first["packets"] == 1 and first["error"] is None
    assert second["packets"] == 1 and "on interface 7" in second["error"]
    assert cli("info", good, check=True).stdout.decode().startswith(f"File:           {good}\n")


def test_unreadable_file(cli, tmp_path: Path) -> None:
    proc = cli("info", tmp_path / "missing.pcap")
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().startswith("fastpcap: error: ") and b"Traceback" not in proc.stderr


MANIFEST = CORPUS / "MANIFEST.tsv"


def _corpus() -> list[str]:
    if not MANIFEST.exists():
        return []
    with open(MANIFEST, newline="") as f:
        return [row["file"] for row in csv.DictReader(f, delimiter="\t") if row["packets"].isdigit()]


@pytest.mark.corpus
@pytest.mark.skipif(not MANIFEST.exists() and not os.environ.get("FASTPCAP_REQUIRE_CORPUS"),
                    reason="the shared capture corpus is not here (a clone without ../shared)")
@pytest.mark.skipif(shutil.which("capinfos") is None, reason="capinfos (Debian: wireshark-common) is missing")
@pytest.mark.parametrize("name", _corpus())
def test_matches_capinfos(name: str) -> None:
    path = CORPUS / name
    fields = subprocess.run(["capinfos", "-T", "-r", "-S", "-c", "-a", "-e", "-d", str(path)],
                            capture_output=True, text=True, check=True).stdout.rstrip("\n").split("\t")
    _, packets, data_size, earliest, latest = fields
    info = capture_info(path)
    if ".-" in earliest + latest:  # capinfos cannot print a fraction of a second >= 1 s
        assert info["packets"] == int(packets) and info["error"] is None
        return
    if earliest == "n/a":
        assert (info["packets"], info["first_ns"], info["error"]) == (int(packets), None, None)
        return
    first, last = _ns(earliest), _ns(latest)
    if all(-(2**63) <= t < 2**63 for t in (first, last)):
        assert (info["packets"], info["error"]) == (int(packets), None)
        assert info["wire_bytes"] == int(data_size)  # capinfos's data size sums original lengths
        assert (info["first_ns"], info["last_ns"]) == (first, last)
        return
    # Times beyond int64 ns (before 1677, after 2262): compare with tshark packet by packet.
    expected, offending = _int64_times(path)
    assert info["packets"] == len(expected)
    assert (info["first_ns"], info["last_ns"]) == ((min(expected), max(expected)) if expected else (None, None))
    if offending is None:
        assert info["error"] is None and len(expected) == int(packets)
        assert fastpcap.read_packets(path)["t_ns"].tolist() == expected
    else:  # fastpcap stops with an error at the first packet int64 ns cannot hold either way
        assert "outside what a signed 64-bit count of nanoseconds holds" in info["error"]
        assert f"{offending} ns since the epoch" in info["error"]


def _int64_times(path: Path) -> tuple[list[int], int | None]:
    """tshark's packet times as fastpcap reads them (docs/data-model.md, pcapng): the
    unsigned count when its time fits int64 ns, else the same bits read as a signed count
    (2**64 units earlier) when that fits; ``offending`` is the first time neither fits."""
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "frame.interface_id"], capture_output=True, text=True, check=True).stdout
    with fastpcap.open_capture(path) as reader:
        try:
            for _ in reader:  # reads the interfaces' resolutions (fastpcap's IDB parse, tested elsewhere)
                pass
        except fastpcap.CaptureError:
            pass
        units = [Interface(0, 0, i.tsresol).ns(1 << 64) for i in reader.interfaces]  # type: ignore[attr-defined]
    times: list[int] = []
    for line in out.splitlines():
        text, iface = line.split("\t")
        t = _ns(text)
        if not -(2**63) <= t < 2**63:
            t -= units[int(iface)]
            if not -(2**63) <= t < 2**63:
                return times, _ns(text)
        times.append(t)
    return times, None


def _ns(text: str) -> int:
    return int(Decimal(text) * 1_000_000_000)


def test_info_command_prints_every_file(cli, tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    a.write_bytes(pcap([Rec(T0, eth(ipv4(tcp())))]))
    b.write_bytes(pcap([]))
    out = cli("info", a, b, check=True).stdout.decode()
    assert out.count("File:") == 2 and "Packets:        0" in out and "First packet:   n/a" in out
    with fastpcap.open_capture(a) as reader:
        assert reader.format == "pcap"


@pytest.mark.once
@pytest.mark.parametrize(("data", "fmt"), [(b"", ""), (b"\x0a\x0d", ""), (b"\xd4\xc3\xb2", ""),
                                           (bytes.fromhex("0a0d0d0a"), "pcapng"), (pcap([])[:10], "pcap")])
def test_format_of_files_too_short_to_tell(tmp_path: Path, data: bytes, fmt: str) -> None:
    path = tmp_path / "short"
    path.write_bytes(data)
    info = capture_info(path)
    assert (info["format"], info["packets"], info["error"]) == (fmt, 0, None)


def test_info_reads_stdin(cli, tmp_path: Path) -> None:
    data = pcap([Rec(T0 + i * MS, eth(ipv4(tcp(flags=2)))) for i in range(5)])
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    from_stdin = json.loads(cli("info", "--json", "-", input=data, check=True).stdout)
    from_file = json.loads(cli("info", "--json", path, check=True).stdout)
    assert from_stdin["path"] == "<stdin>" and from_stdin["packets"] == 5
    assert {k: v for k, v in from_stdin.items() if k != "path"} == {k: v for k, v in from_file.items() if k != "path"}
