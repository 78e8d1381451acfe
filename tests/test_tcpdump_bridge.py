"""End to end: a real tcpdump on a real Linux bridge, then fastpcap on what it wrote.

Per backend, the test builds a throw-away lab out of two network namespaces -- "host" with
a bridge carrying 10.200.0.1/24 (the sandbox's host side) and "guest" (10.200.0.2/24)
plugged into it through a veth pair -- and records the bridge with
``tcpdump -i <bridge> -U -w <file>``, exactly as the sandbox does.  The guest sends DNS-like
UDP queries to 10.200.0.1:53 (nobody listens: the host answers ICMP port unreachable), one
TCP connection to a server in the host namespace (a few bytes each way, then FIN/FIN) and one
TCP connect to a closed port (RST).  While tcpdump is still writing, the CLI and the API read
the growing file.  Then tcpdump is stopped with SIGINT and the final capture is checked
against the oracle (tests/oracle.py) and against totals counted independently by tshark.

Only addresses inside the namespaces created here ever receive traffic.  Namespaces and
processes are removed even when something fails, and their names carry the pid, so parallel
runs do not clash.

Needs root, iproute2, tcpdump and tshark; skipped otherwise, unless FASTPCAP_REQUIRE_NETNS=1
(set in CI), which turns every such skip into a failure.

The capture is taken once per backend (not once per module): the mid-flight check has to
run the backend's CLI on a file that tcpdump is still writing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import fastpcap

try:
    from oracle import oracle_jsonl
except ImportError:  # tests/ not on sys.path (e.g. another import mode)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from oracle import oracle_jsonl

from netns_lab import (
    BRIDGE,
    BUCKET_NS,
    COUNTERS,
    HOST_IP,
    PCAP_HEADER,
    Frame,
    check_netns_available,
    once_per_backend,
)
from netns_lab import lab as _lab
from netns_lab import record_frames as _record_frames
from netns_lab import stop_process as _stop
from netns_lab import tshark_buckets as _tshark_buckets
from netns_lab import tshark_frames as _tshark_frames
from netns_lab import wait_for as _wait_for

pytestmark = pytest.mark.netns

TCP_PORT = 8080  # a server in the host namespace accepts one connection here
CLOSED_PORT = 8081  # nothing listens here: the connect is answered with RST
DNS_QUERIES = 25  # at least this many UDP datagrams to HOST_IP:53...
DNS_INTERVAL_S = 0.03  # ...one every 30 ms, until the mid-flight reads are done
QUIET_GAP_S = 0.35  # silence between the DNS burst and the TCP part: empty buckets


# --------------------------------------------------------------------------------------
# The traffic
# --------------------------------------------------------------------------------------

SERVER = textwrap.dedent(f"""
    import socket, sys
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(({HOST_IP!r}, {TCP_PORT}))
    srv.listen(1)
    srv.settimeout(20)
    print("ready", flush=True)
    conn, _ = srv.accept()
    conn.settimeout(10)
    data = b""
    while len(data) < 5:
        chunk = conn.recv(5 - len(data))
        if not chunk:
            break
        data += chunk
    conn.sendall(b"pong:" + data)
    conn.close()
    srv.close()
    print("served", data.decode(), flush=True)
""")

DNS_SENDER = textwrap.dedent(f"""
    import socket, struct, sys, threading, time
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    qname = b"".join(bytes([len(p)]) + p for p in b"example.test".split(b".")) + b"\\0"
    sent = 0
    # At least {DNS_QUERIES}, then on until stdin closes (the mid-flight reads are done).
    while sent < {DNS_QUERIES} or not stop.is_set():
        # header: id, flags (RD), 1 question; question: qname, type A, class IN
        s.sendto(struct.pack("!HHHHHH", sent, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1),
                 ({HOST_IP!r}, 53))
        sent += 1
        time.sleep({DNS_INTERVAL_S})
    s.close()
    print("sent", sent, flush=True)
""")

TCP_CLIENT = textwrap.dedent(f"""
    import socket
    c = socket.create_connection(({HOST_IP!r}, {TCP_PORT}), timeout=10)
    c.sendall(b"hello")
    reply = b""
    while True:
        chunk = c.recv(100)
        if not chunk:
            break
        reply += chunk
    c.close()
    assert reply == b"pong:hello", reply
    try:
        socket.create_connection(({HOST_IP!r}, {CLOSED_PORT}), timeout=10).close()
    except ConnectionRefusedError:
        print("refused", flush=True)
    else:
        raise SystemExit("connect to the closed port succeeded")
""")


# --------------------------------------------------------------------------------------
# One capture (per backend), with the mid-flight reads
# --------------------------------------------------------------------------------------


@dataclass(repr=False)
class Capture:
    pcap: Path
    tcpdump_stderr: str = ""
    mid_size: int = 0  # file size just before the mid-flight reads
    mid_cli: subprocess.CompletedProcess | None = None
    mid_cli_out: bytes = b""
    mid_api_rows: np.ndarray | None = None
    mid_api_error: BaseException | None = None
    mid_still_sending: bool = False  # the DNS sender was still running after both reads
    dns_sent: int = 0  # DNS-like queries the guest sent

    _frames: list | None = None

    def frames(self) -> list[Frame]:
        """tshark's view of the final capture (one tshark run per capture)."""
        if self._frames is None:
            self._frames = _tshark_frames(self.pcap)
        return self._frames

    def __repr__(self) -> str:
        return f"Capture({str(self.pcap)!r})"


def _has_tcp_rst(path: Path) -> bool:
    """Whether the capture file already holds the RST that ends the traffic (used only to
    know when to stop tcpdump; the checks count with tshark)."""
    for frame in _record_frames(path):
        if len(frame) >= 54 and frame[12:14] == b"\x08\x00" and frame[23] == 6:
            tcp = frame[14 + (frame[14] & 0x0F) * 4:]
            if len(tcp) >= 14 and tcp[13] & 0x04:
                return True
    return False


def _take_capture(tag: str, workdir: Path, cli) -> Capture:
    pcap = workdir / "bridge.pcap"
    cap = Capture(pcap=pcap)
    err_path = workdir / "tcpdump.stderr"
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(_lab(tag))
        nullout = stack.enter_context(open(os.devnull, "wb"))

        # The TCP server, listening before any traffic is recorded.
        server = subprocess.Popen(lab.exec_argv(lab.host, sys.executable, "-c", SERVER),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stack.callback(_stop, server)
        line = server.stdout.readline()
        assert line.strip() == "ready", f"TCP server did not start: {line!r} {server.stderr.read()}"

        # tcpdump, exactly as the sandbox runs it; wait until it really listens.
        err_file = stack.enter_context(open(err_path, "wb"))
        tcpdump = subprocess.Popen(
            lab.exec_argv(lab.host, "tcpdump", "-i", BRIDGE, "-U", "-w", str(pcap), "-Z", "root", "-n"),
            stdin=subprocess.DEVNULL, stdout=nullout, stderr=err_file)
        stack.callback(_stop, tcpdump, signal.SIGINT)

        def listening() -> bool:
            if tcpdump.poll() is not None:
                raise RuntimeError(f"tcpdump exited {tcpdump.returncode}: {err_path.read_text()}")
            return b"listening on" in err_path.read_bytes()

        _wait_for(listening, 10, "tcpdump to report 'listening on'")
        _wait_for(lambda: pcap.exists() and pcap.stat().st_size >= PCAP_HEADER, 10,
                  "tcpdump to write the pcap header")

        # DNS-like queries, spread out so that the file grows while it is read below.
        sender = subprocess.Popen(lab.exec_argv(lab.guest, sys.executable, "-c", DNS_SENDER),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        stack.callback(_stop, sender)
        _wait_for(lambda: len(_record_frames(pcap)) >= 3, 10, "the first packets in the capture")

        # Mid-flight: tcpdump is running and the guest is still sending.
        cap.mid_size = pcap.stat().st_size
        cap.mid_cli = cli("bucketize", pcap, "-o", workdir / "midflight.jsonl")
        with contextlib.suppress(FileNotFoundError):
            cap.mid_cli_out = (workdir / "midflight.jsonl").read_bytes()
        try:
            cap.mid_api_rows = fastpcap.bucket_rows(pcap)
        except Exception as exc:  # reported by test_midflight_reads_of_the_growing_file
            cap.mid_api_error = exc
        cap.mid_still_sending = sender.poll() is None

        out, err = sender.communicate(timeout=30)  # closes its stdin: stop sending
        assert sender.returncode == 0 and out.split()[:1] == ["sent"], (out, err)
        cap.dns_sent = int(out.split()[1])

        time.sleep(QUIET_GAP_S)  # a few empty buckets between the two parts

        client = subprocess.run(lab.exec_argv(lab.guest, sys.executable, "-c", TCP_CLIENT),
                                capture_output=True, text=True, timeout=30)
        assert client.returncode == 0 and client.stdout.strip() == "refused", (
            client.stdout, client.stderr)
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0 and out.split()[-2:] == ["served", "hello"], (out, err)

        # libpcap (TPACKET_V3) hands packets to tcpdump a ring block at a time, on a timer of
        # about a second, and tcpdump drops what is still in the ring when SIGINT arrives: a
        # fixed sleep here loses the tail.  Stop only once the last packet, the RST, is on disk.
        _wait_for(lambda: _has_tcp_rst(pcap), 10, "the final RST to reach the capture file",
                  interval=0.05)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
        err_file.close()
        cap.tcpdump_stderr = err_path.read_text()
        assert tcpdump.returncode == 0, f"tcpdump exited {tcpdump.returncode}: {cap.tcpdump_stderr}"
        report = dict(reversed(line.split(" packets ", 1)) for line in
                      cap.tcpdump_stderr.splitlines() if " packets " in line)
        assert report.get("dropped by kernel") == "0", cap.tcpdump_stderr
        assert report.get("captured") == report.get("received by filter"), (
            f"tcpdump did not write every packet it received: {cap.tcpdump_stderr}")
    return cap


@pytest.fixture(scope="module")
def netns_available() -> None:
    """Skip (or fail under FASTPCAP_REQUIRE_NETNS=1) when the lab cannot be built here."""
    check_netns_available()


@pytest.fixture(scope="module")
def _captures() -> dict:
    return {}


@pytest.fixture
def capture(netns_available, _captures: dict, backend: str, cli, tmp_path_factory) -> Capture:
    """The capture for the backend under test, taken on first use (with its mid-flight reads)."""
    return once_per_backend(_captures, backend,
                            lambda: _take_capture(backend, tmp_path_factory.mktemp(f"bridge-{backend}"), cli))


# --------------------------------------------------------------------------------------
# Independent counts with tshark
# --------------------------------------------------------------------------------------


def _parse(jsonl: bytes) -> list[dict]:
    return [json.loads(line) for line in jsonl.splitlines()]


def _total(rows, key: str) -> int:
    return int(sum(int(row[key]) for row in rows))


# --------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------


def test_midflight_reads_of_the_growing_file(capture: Capture, tmp_path: Path) -> None:
    """While tcpdump -U was writing, the CLI and the API read the file without error."""
    proc = capture.mid_cli
    assert proc is not None
    assert proc.returncode == 0, f"CLI failed on the growing file: {proc.stderr.decode()}"
    assert capture.mid_api_error is None, f"bucket_rows failed on the growing file: {capture.mid_api_error!r}"
    assert capture.mid_still_sending, "the reads did not overlap the traffic (sender already done)"
    assert capture.pcap.stat().st_size > capture.mid_size, "the file did not grow after the reads"

    mid_cli_rows = _parse(capture.mid_cli_out)
    mid_api_rows = capture.mid_api_rows
    assert _total(mid_cli_rows, "pkts_in") + _total(mid_cli_rows, "pkts_out") >= 3
    assert int(mid_api_rows["pkts_in"].sum() + mid_api_rows["pkts_out"].sum()) >= 3
    assert _total(mid_cli_rows, "dns_query_count") >= 1

    # The growing file was a prefix of the final one: every mid-flight row but the last (whose
    # bucket may have been still filling) is the final capture's row, and the last one cannot
    # hold more than the final row of its bucket.
    final_out = tmp_path / "final.jsonl"
    fastpcap.bucketize(capture.pcap, final_out)
    final_rows = _parse(final_out.read_bytes())
    for mid in (mid_cli_rows, [dict(zip(r.dtype.names, map(int, r))) for r in mid_api_rows]):
        assert 1 <= len(mid) <= len(final_rows)
        for got, want in zip(mid[:-1], final_rows):
            assert {k: got[k] for k in got if k in want} == {k: want[k] for k in got if k in want}
        last, want = mid[-1], final_rows[len(mid) - 1]
        assert last["t_wall_ns"] == want["t_wall_ns"]
        for key in ("pkts_in", "pkts_out", "bytes_in", "bytes_out", "udp_count",
                    "dns_query_count", "tcp_count"):
            assert 0 <= last[key] <= want[key], key
    assert _total(mid_cli_rows, "pkts_in") + _total(mid_cli_rows, "pkts_out") < len(capture.frames())


def test_dropin_rows_equal_the_oracle(capture: Capture, tmp_path: Path) -> None:
    """bucketize() appends exactly the oracle's JSONL and returns its row count."""
    data = capture.pcap.read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1"), "expected tcpdump's microsecond pcap"
    expected = oracle_jsonl(data)
    assert expected.count(b"\n") >= 5

    out = tmp_path / "nested" / "netflow.jsonl"
    n = fastpcap.bucketize(capture.pcap, out)
    assert out.read_bytes() == expected
    assert n == expected.count(b"\n")

    # It appends: a second run adds the same rows after the first ones.
    assert fastpcap.bucketize(capture.pcap, out) == n
    assert out.read_bytes() == expected + expected


def test_totals_match_tshark(capture: Capture, tmp_path: Path) -> None:
    """Totals over the rows, and each bucket's counters, equal what tshark counts."""
    out = tmp_path / "netflow.jsonl"
    fastpcap.bucketize(capture.pcap, out)
    rows = _parse(out.read_bytes())
    frames = capture.frames()

    # tcpdump's own report: nothing was lost, and tshark read as many packets as it wrote.
    report = capture.tcpdump_stderr.splitlines()
    assert "0 packets dropped by kernel" in report, capture.tcpdump_stderr
    assert f"{len(frames)} packets captured" in report, capture.tcpdump_stderr

    outgoing = [f for f in frames if f.src == HOST_IP]
    tcp_flags = [f.tcp_flags for f in frames if f.tcp_flags is not None]
    assert _total(rows, "pkts_in") + _total(rows, "pkts_out") == len(frames)
    assert _total(rows, "bytes_in") + _total(rows, "bytes_out") == sum(f.cap_len for f in frames)
    assert _total(rows, "pkts_out") == len(outgoing)
    assert _total(rows, "bytes_out") == sum(f.cap_len for f in outgoing)
    assert _total(rows, "udp_count") == sum(f.proto == 17 for f in frames)
    assert _total(rows, "tcp_count") == sum(f.proto == 6 for f in frames)
    assert _total(rows, "dns_query_count") == sum(f.udp_dport == 53 for f in frames) == capture.dns_sent
    assert capture.dns_sent >= DNS_QUERIES
    assert _total(rows, "tcp_new_flows") == sum(fl & 0x12 == 0x02 for fl in tcp_flags) >= 2
    assert _total(rows, "syn_count") == sum(bool(fl & 0x02) for fl in tcp_flags) >= 3
    assert _total(rows, "rst_count") == sum(bool(fl & 0x04) for fl in tcp_flags) >= 1
    assert _total(rows, "fin_count") == sum(bool(fl & 0x01) for fl in tcp_flags) >= 2
    # Both directions were seen, and the host's ICMP port-unreachable answers count as out.
    assert 0 < len(outgoing) < len(frames)
    assert any(f.proto == 1 for f in outgoing)

    # Per bucket, every counter, from tshark's timestamps and decode.
    expected = _tshark_buckets(frames)
    got = {row["t_wall_ns"]: row for row in rows}
    assert set(expected) <= set(got)
    for start, row in got.items():
        want = expected.get(start, Counter())
        assert {k: row[k] for k in COUNTERS} == {k: want[k] for k in COUNTERS}, start


def test_cli_output_equals_the_dropin(capture: Capture, cli, tmp_path: Path) -> None:
    """`python -m fastpcap bucketize` writes the same bytes as the drop-in."""
    dropin = tmp_path / "dropin.jsonl"
    n = fastpcap.bucketize(capture.pcap, dropin)
    out = tmp_path / "cli.jsonl"
    proc = cli("bucketize", capture.pcap, "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    assert out.read_bytes() == dropin.read_bytes()
    assert out.read_bytes().count(b"\n") == n
    assert proc.stdout == b""  # rows went to the file, not stdout


def test_buckets_form_a_gapless_100ms_grid(capture: Capture, tmp_path: Path) -> None:
    """bucket_ms is 100 everywhere and the buckets are consecutive 100 ms steps."""
    out = tmp_path / "netflow.jsonl"
    fastpcap.bucketize(capture.pcap, out)
    rows = _parse(out.read_bytes())
    walls = [row["t_wall_ns"] for row in rows]
    assert all(row["bucket_ms"] == 100 for row in rows)
    assert all(w % BUCKET_NS == 0 for w in walls)
    assert [b - a for a, b in itertools.pairwise(walls)] == [BUCKET_NS] * (len(walls) - 1)
    assert all(row["t_mono_ns"] == row["t_wall_ns"] for row in rows)  # t_mono_origin_ns=0
    # The capture spans from the first packet's bucket to the last one's...
    first, last = capture.frames()[0].t_ns, max(f.t_ns for f in capture.frames())
    assert walls[0] == first - first % BUCKET_NS
    assert walls[-1] == last - last % BUCKET_NS
    # ...and the quiet pause between the DNS burst and the TCP part left empty rows.
    assert any(row["pkts_in"] + row["pkts_out"] == 0 for row in rows)
