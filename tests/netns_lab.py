"""The throw-away network lab the real-capture tests share, and their independent counts.

``lab(tag)`` builds two fresh network namespaces -- "host" with a Linux bridge carrying
10.200.0.1/24 (the sandbox's host side) and "guest" (10.200.0.2/24) plugged into it through
a veth pair -- and removes them on exit, whatever happens; their names carry the pid, so
parallel runs do not clash.  Only addresses inside these namespaces ever receive traffic.
``in_netns(name)`` moves the calling thread into one of them, so that the processes it starts
(tcpdump through ``fastpcap.run_capture``, the command line) and the sockets it opens are
there.  ``check_netns_available()`` skips a test that cannot build the lab, or fails it under
FASTPCAP_REQUIRE_NETNS=1 (set in CI).  tshark decodes the captures independently.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest

HOST_IP = "10.200.0.1"
GUEST_IP = "10.200.0.2"
BRIDGE = "br-malware"
VETH_HOST = "veth-host"
VETH_GUEST = "veth-guest"
BUCKET_NS = 100_000_000
PCAP_HEADER = 24
RECORD_HEADER = 16

REQUIRE_NETNS = os.environ.get("FASTPCAP_REQUIRE_NETNS") == "1"
_RUN_IDS = itertools.count()
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def unavailable(reason: str) -> None:
    """Skip, or fail when CI demands the check (FASTPCAP_REQUIRE_NETNS=1)."""
    if REQUIRE_NETNS:
        pytest.fail(f"netns capture test cannot run: {reason} "
                    "(FASTPCAP_REQUIRE_NETNS=1 forbids skipping it)", pytrace=False)
    pytest.skip(f"netns capture test cannot run: {reason}")


def check_netns_available(tools: tuple[str, ...] = ("ip", "tcpdump", "tshark")) -> None:
    """Skip (or fail under FASTPCAP_REQUIRE_NETNS=1) when the lab cannot be built here."""
    if not sys.platform.startswith("linux"):
        unavailable("network namespaces need Linux")
    if os.geteuid() != 0:
        unavailable("needs root (to create network namespaces and run tcpdump)")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        unavailable(f"missing tool(s): {', '.join(missing)}")
    probe = f"fastpcap-probe-{os.getpid()}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        unavailable(f"`ip netns add` failed: {proc.stderr.strip()}")
    delete_netns(probe)


def once_per_backend(store: dict, backend: str, make: Callable[[], T]) -> T:
    """``make()``'s result for ``backend``, made on first use and kept in ``store`` (a module
    fixture's dict): a capture is taken once per backend, not once per test.  A failure is
    kept too, so that the tests after the first fail at once, naming it."""
    if backend not in store:
        try:
            store[backend] = make()
        except BaseException as exc:
            store[backend] = exc
            raise
    result = store[backend]
    if isinstance(result, BaseException):
        pytest.fail(f"the capture failed earlier: {result!r}", pytrace=False)
    return result  # type: ignore[no-any-return]


def run(*cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a setup command; raise with its stderr if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Poll ``predicate`` until it returns something true; a timeout is an error naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 5) -> None:
    """End a process the test started (by its own handle) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@dataclass
class Lab:
    host: str  # netns names
    guest: str

    def exec_argv(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]


def delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def _mac(ns: str, dev: str) -> str:
    return run("ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/address").stdout.strip()


@contextlib.contextmanager
def lab(tag: str, *, quiet: bool = False) -> Iterator[Lab]:
    """Two fresh namespaces wired as the sandbox's bridge; removed on exit, whatever happens.

    ``quiet``: nothing on the wire but what the test sends and the kernels' direct answers
    to it -- static neighbour entries (no ARP), no multicast snooping on the bridge (no IGMP
    reports) and no rate limit on ICMP errors (every UDP datagram to a closed port gets its
    port-unreachable) -- so packet counts are exact."""
    run_id = f"{os.getpid()}-{next(_RUN_IDS)}-{tag}"
    the_lab = Lab(host=f"fastpcap-host-{run_id}", guest=f"fastpcap-guest-{run_id}")
    with contextlib.ExitStack() as stack:
        for ns in (the_lab.host, the_lab.guest):
            run("ip", "netns", "add", ns)
            stack.callback(delete_netns, ns)
        for ns in (the_lab.host, the_lab.guest):
            # No IPv6: keeps router solicitations and MLD reports out of the capture.  Not
            # needed for correctness (non-IPv4 frames are counted too), so failures are fine.
            for key in ("all", "default"):
                subprocess.run(the_lab.exec_argv(ns, "sysctl", "-qw",
                                                 f"net.ipv6.conf.{key}.disable_ipv6=1"),
                               capture_output=True, timeout=20)
            if quiet:
                run(*the_lab.exec_argv(ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"))
            run("ip", "-n", ns, "link", "set", "lo", "up")
        # (quiet: no multicast snooping, whose join of 224.0.0.106 sends IGMP reports)
        run("ip", "-n", the_lab.host, "link", "add", BRIDGE, "type", "bridge",
            *(("mcast_snooping", "0") if quiet else ()))
        run("ip", "-n", the_lab.host, "link", "add", VETH_HOST, "type", "veth",
            "peer", "name", VETH_GUEST, "netns", the_lab.guest)
        run("ip", "-n", the_lab.host, "link", "set", VETH_HOST, "master", BRIDGE)
        run("ip", "-n", the_lab.host, "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        run("ip", "-n", the_lab.guest, "addr", "add", f"{GUEST_IP}/24", "dev", VETH_GUEST)
        if quiet:
            run("ip", "-n", the_lab.host, "neigh", "replace", GUEST_IP, "lladdr",
                _mac(the_lab.guest, VETH_GUEST), "dev", BRIDGE, "nud", "permanent")
            run("ip", "-n", the_lab.guest, "neigh", "replace", HOST_IP, "lladdr",
                _mac(the_lab.host, BRIDGE), "dev", VETH_GUEST, "nud", "permanent")
        for ns, dev in ((the_lab.host, BRIDGE), (the_lab.host, VETH_HOST), (the_lab.guest, VETH_GUEST)):
            run("ip", "-n", ns, "link", "set", dev, "up")
        # The bridge has carrier once its port is up and forwarding (STP is off).
        wait_for(lambda: "LOWER_UP" in run("ip", "-n", the_lab.host, "link", "show", BRIDGE).stdout,
                 10, f"{BRIDGE} to come up")
        yield the_lab


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Move the calling thread into network namespace ``name`` (``ip netns add``'s) until the
    block ends: the processes it starts and the sockets it opens meanwhile are there."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
        try:
            yield
        finally:
            if libc.setns(own, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back: {os.strerror(err)}")
    finally:
        os.close(own)
        os.close(target)


def record_frames(path: Path) -> list[bytes]:
    """The frames of the complete records in a (possibly growing) little-endian pcap file."""
    data = path.read_bytes() if path.exists() else b""
    pos, frames = PCAP_HEADER, []
    while len(data) - pos >= RECORD_HEADER:
        incl = int.from_bytes(data[pos + 8:pos + 12], "little")
        if len(data) - pos - RECORD_HEADER < incl:
            break
        frames.append(data[pos + RECORD_HEADER:pos + RECORD_HEADER + incl])
        pos += RECORD_HEADER + incl
    return frames


# --------------------------------------------------------------------------------------
# Independent counts with tshark
# --------------------------------------------------------------------------------------


def tshark(pcap: Path, *args: str) -> list[str]:
    proc = subprocess.run(["tshark", "-n", "-r", str(pcap), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"tshark {args} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout.splitlines()


@dataclass
class Frame:
    """One frame as tshark decodes it; the outer (first) header fields only, because ICMP
    errors quote the offending IP/UDP/TCP header and tshark dissects that copy too."""
    t_ns: int
    cap_len: int
    src: str  # outer IPv4 source, "" for non-IPv4 frames
    proto: int | None  # outer IPv4 protocol
    tcp_flags: int | None  # of the outer TCP header
    udp_dport: int | None  # of the outer UDP header
    dst: str = ""  # outer IPv4 destination
    dport: int | None = None  # of the outer TCP or UDP header


TSHARK_FIELDS = ("frame.time_epoch", "frame.cap_len", "ip.src", "ip.proto", "tcp.flags",
                 "udp.dstport", "ip.dst", "tcp.dstport")


def tshark_frames(pcap: Path) -> list[Frame]:
    args = ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for name in TSHARK_FIELDS:
        args += ["-e", name]
    frames = []
    for line in tshark(pcap, *args):
        epoch, cap_len, src, proto, flags, udp_dport, dst, tcp_dport = line.split("\t")
        proto_n = int(proto) if proto else None
        udp = int(udp_dport) if proto_n == 17 and udp_dport else None
        tcp = int(tcp_dport) if proto_n == 6 and tcp_dport else None
        frames.append(Frame(
            t_ns=int(Decimal(epoch) * 1_000_000_000), cap_len=int(cap_len), src=src,
            proto=proto_n,
            tcp_flags=int(flags, 0) if proto_n == 6 and flags else None,
            udp_dport=udp, dst=dst, dport=udp if udp is not None else tcp))
    return frames


COUNTERS = ("pkts_in", "pkts_out", "bytes_in", "bytes_out", "syn_count", "fin_count",
            "rst_count", "udp_count", "tcp_count", "dns_query_count", "tcp_new_flows")


def tshark_buckets(frames: list[Frame], *, uniques: bool = False) -> dict[int, Counter]:
    """tshark's frames counted per 100 ms bucket (keyed by bucket start, ns); with
    ``uniques``, also ``unique_dst_ips`` and ``unique_dst_ports``."""
    buckets: dict[int, Counter] = {}
    seen: dict[int, tuple[set, set]] = {}
    running = frames[0].t_ns
    for f in frames:
        running = max(running, f.t_ns)  # a late packet joins the open bucket
        start = running - running % BUCKET_NS
        c = buckets.setdefault(start, Counter())
        direction = "out" if f.src == HOST_IP else "in"
        c[f"pkts_{direction}"] += 1
        c[f"bytes_{direction}"] += f.cap_len
        c["tcp_count"] += f.proto == 6
        c["udp_count"] += f.proto == 17
        c["dns_query_count"] += f.udp_dport == 53
        flags = f.tcp_flags or 0
        c["syn_count"] += bool(flags & 0x02)
        c["tcp_new_flows"] += bool(flags & 0x02) and not flags & 0x10
        c["fin_count"] += bool(flags & 0x01)
        c["rst_count"] += bool(flags & 0x04)
        if uniques:
            ips, ports = seen.setdefault(start, (set(), set()))
            if f.dst:
                ips.add(f.dst)
            if f.dport is not None:
                ports.add(f.dport)
            c["unique_dst_ips"], c["unique_dst_ports"] = len(ips), len(ports)
    return buckets
