#!/usr/bin/env python3
"""Record ``examples/sample.pcap``: a short, sandbox-like episode captured by a real tcpdump.

Needs root, iproute2 and tcpdump.  It builds a private bridge (10.200.0.1, the host side, as in
the sandbox) in a network namespace, puts a "guest" (10.200.0.2) behind it in another, and
records the guest doing what a small malware sample might: DNS lookups against a resolver on
the host, a few HTTP-like downloads, a port sweep of the host, and UDP beacons.  Only the
namespaces' own addresses ever see traffic.  Usage: ``sudo python3 examples/record_sample.py OUT``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

HOST_NS = f"fp-sample-host-{os.getpid()}"
GUEST_NS = f"fp-sample-guest-{os.getpid()}"

HOST_SERVICES = textwrap.dedent("""
    import socket, threading
    def dns():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("10.200.0.1", 53))
        while True:
            q, peer = s.recvfrom(2048)
            # a minimal answer: the query echoed back with the response bit set
            s.sendto(q[:2] + b"\\x81\\x80" + q[4:], peer)
    def http():
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("10.200.0.1", 8080)); srv.listen(16)
        while True:
            c, _ = srv.accept()
            c.recv(4096)
            c.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\n" + b"x" * 6000)
            c.close()
    threading.Thread(target=dns, daemon=True).start()
    http()
""")

GUEST_EPISODE = textwrap.dedent("""
    import socket, struct, time
    def query(name, ident):
        q = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0\\0\\1\\0\\1"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        s.sendto(q, ("10.200.0.1", 53))
        try: s.recv(2048)
        except OSError: pass
        s.close()
    for i, name in enumerate(["update.example.com", "cdn.example.net", "c2.example.org"]):
        query(name, i + 1); time.sleep(0.15)
    for i in range(4):
        c = socket.create_connection(("10.200.0.1", 8080), timeout=2)
        c.sendall(b"GET /payload%d HTTP/1.0\\r\\n\\r\\n" % i)
        while c.recv(65536): pass
        c.close(); time.sleep(0.2)
    for port in range(20, 36):
        s = socket.socket(); s.settimeout(0.5)
        try: s.connect(("10.200.0.1", port))
        except OSError: pass
        s.close(); time.sleep(0.02)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(10):
        b.sendto(b"beacon %d" % i, ("10.200.0.1", 4444)); time.sleep(0.1)
""")


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def main(out: str) -> None:
    sh("ip", "netns", "add", HOST_NS)
    sh("ip", "netns", "add", GUEST_NS)
    procs: list[subprocess.Popen] = []
    try:
        sh("ip", "-n", HOST_NS, "link", "add", "br-malware", "type", "bridge")
        sh("ip", "-n", HOST_NS, "addr", "add", "10.200.0.1/24", "dev", "br-malware")
        sh("ip", "-n", HOST_NS, "link", "set", "br-malware", "up")
        sh("ip", "link", "add", "vh", "netns", HOST_NS, "type", "veth", "peer", "name", "eth0",
           "netns", GUEST_NS)
        sh("ip", "-n", HOST_NS, "link", "set", "vh", "master", "br-malware", "up")
        sh("ip", "-n", GUEST_NS, "addr", "add", "10.200.0.2/24", "dev", "eth0")
        sh("ip", "-n", GUEST_NS, "link", "set", "eth0", "up")
        # IPv6 would add router/neighbour chatter that says nothing about the guest.
        for ns, dev in ((HOST_NS, "br-malware"), (GUEST_NS, "eth0")):
            sh("ip", "netns", "exec", ns, "sysctl", "-q", f"net.ipv6.conf.{dev}.disable_ipv6=1")
        time.sleep(1.0)  # let the bridge port reach forwarding
        procs.append(subprocess.Popen(["ip", "netns", "exec", HOST_NS, sys.executable, "-c",
                                       HOST_SERVICES]))
        dump = subprocess.Popen(["ip", "netns", "exec", HOST_NS, "tcpdump", "-i", "br-malware",
                                 "-U", "-n", "-Z", "root", "-w", out], stderr=subprocess.PIPE)
        procs.append(dump)
        assert dump.stderr is not None
        while b"listening on" not in dump.stderr.readline():
            pass
        time.sleep(0.3)
        sh("ip", "netns", "exec", GUEST_NS, sys.executable, "-c", GUEST_EPISODE)
        time.sleep(0.3)
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["ip", "netns", "del", GUEST_NS])
        subprocess.run(["ip", "netns", "del", HOST_NS])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
