"""Live capture end to end, on a real bridge: run_capture/stop_capture, bucketize --follow and
fastpcap capture --netflow, every counter checked against the traffic sent.

Per backend, a quiet lab (tests/netns_lab.py: a bridge with 10.200.0.1 in a "host" namespace,
a "guest" namespace at 10.200.0.2 on a veth pair, static neighbours and no rate limit on
ICMP errors, so that nothing is on the wire but the test's packets and the kernels' direct
answers) carries, between those two addresses only:

* from the guest, ``N_UDP`` DNS queries to 10.200.0.1:53 (nobody listens: each gets an ICMP
  port unreachable) and ``N_TCP`` connection attempts to a closed port (each SYN gets a
  RST/ACK, the connect is refused);
* a pause of ``GAP_S`` (empty buckets);
* the same from the host to the guest.

Recording it at once:

* ``fastpcap.run_capture`` (the reference's tcpdump command), followed by
  ``bucketize --follow --pid <tcpdump>`` and by ``bucketize --follow --idle-close 1500``
  (started before the file exists, ended by SIGTERM);
* ``fastpcap capture --netflow`` (SIGINT ends it), followed by
  ``bucketize --follow --idle-close 200``;
* ``fastpcap capture --netflow`` with bucket options (50 ms buckets, the guest as the host
  address, the extended decode, no gap cap, a monotonic origin);
* Wireshark's ``dumpcap`` writing pcapng, followed by ``bucketize --follow --pid <dumpcap>``.

Checked: stop_capture returns 0; every counter of the batch rows of both captures equals what
was sent (bytes and distinct destinations per bucket against tshark); --follow and --netflow
write exactly the batch rows (with the options: bucketize's rows with the same options; the
pcapng follower: bucketize's rows of the finished pcapng); the idle-close followers write rows with the same totals, and
exactly the batch rows unless they warned of late packets.  The delay from each bucket's end
to its row appearing in the idle-close outputs is measured and reported (run with ``-s`` to
see it), with only a sanity bound.  Needs root, iproute2, tcpdump, tshark and dumpcap (see
netns_lab.check_netns_available).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import fastpcap

from conftest import cli_env
from netns_lab import (
    BRIDGE,
    BUCKET_NS,
    COUNTERS,
    GUEST_IP,
    HOST_IP,
    PCAP_HEADER,
    check_netns_available,
    in_netns,
    lab,
    once_per_backend,
    record_frames,
    stop_process,
    tshark_buckets,
    tshark_frames,
    wait_for,
)
from pcapgen import dns_query

pytestmark = pytest.mark.netns

N_UDP = 6  # DNS queries from each side
N_TCP = 4  # connection attempts to a closed port from each side
CLOSED_PORT = 9
SEND_INTERVAL_S = 0.025
GAP_S = 0.35
#: Every packet on the wire: each query and its ICMP error, each SYN and its RST, both ways.
TOTAL_PACKETS = 2 * (2 * N_UDP + 2 * N_TCP)
IDLE_CLOSE_MS = {"api": 1500, "cli": 200}  # reference tcpdump (buffered ~1 s), --immediate-mode
#: The bucket options of the second fastpcap capture, and the same as API options.
OPTS_FLAGS = ("--bucket-ms", "50", "--host-ip", GUEST_IP, "--decode", "extended", "--max-gap", "none",
              "--t-mono-origin-ns", "7")
OPTS = dict(bucket_ms=50, host_ips=[GUEST_IP], decode="extended", max_gap_s=None, t_mono_origin_ns=7)
SANITY_DELAY_S = 60


class LineTimes:
    """When each line of a growing file first appeared (wall clock, ns), looked at every 2 ms."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[bytes, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        data = b""
        while not self._stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                data = self.path.read_bytes()
            now = time.time_ns()
            lines = data.splitlines(keepends=True)
            for line in lines[len(self.seen):]:
                if line.endswith(b"\n"):
                    self.seen.append((line, now))
            self._stop.wait(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Follower:
    proc: subprocess.Popen
    out: Path
    times: LineTimes | None = None
    status: int | None = None
    stderr: str = ""


@dataclass
class Session:
    workdir: Path
    pcaps: dict[str, Path]
    stop_status: int | None = None
    handle: fastpcap.CaptureHandle | None = None
    handle_stderr: str = ""
    refused: dict[str, int] = field(default_factory=dict)
    cli_capture: Follower | None = None
    opts_capture: Follower | None = None  # fastpcap capture --netflow with bucket options
    followers: dict[str, Follower] = field(default_factory=dict)
    duration_run: subprocess.CompletedProcess | None = None
    dumpcap_pcapng: Path | None = None  # what dumpcap wrote (pcapng), followed as it grew
    dumpcap_status: int | None = None


def _fastpcap(backend: str, *args: object, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fastpcap", *map(str, args)], env=cli_env(backend),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def _send(ns: str, dst: str) -> int:
    """From namespace ``ns`` to ``dst``: N_UDP DNS queries and N_TCP connects to a closed port,
    interleaved; returns the connects refused (each one SYN answered by a RST)."""
    refused = 0
    with in_netns(ns):
        for i in range(max(N_UDP, N_TCP)):
            if i < N_UDP:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(dns_query(f"q{i}.example.test", ident=i), (dst, 53))
            time.sleep(SEND_INTERVAL_S)
            if i < N_TCP:
                try:
                    socket.create_connection((dst, CLOSED_PORT), timeout=10).close()
                except ConnectionRefusedError:
                    refused += 1
            time.sleep(SEND_INTERVAL_S)
    return refused


def _capture_dir(folder: Path | None = None) -> Path:
    """A folder (new, or ``folder`` made) that tcpdump can write after dropping to its own
    user, on any build of it."""
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="fastpcap-live-"))
    else:
        folder.mkdir(mode=0o700)
    with contextlib.suppress(KeyError):
        user = pwd.getpwnam("tcpdump")
        os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


def _take_session(backend: str, workdir: Path, capdir: Path) -> Session:
    pcaps = {"api": capdir / "api.pcap", "cli": capdir / "cli.pcap", "opts": capdir / "opts.pcap"}
    session = Session(workdir=workdir, pcaps=pcaps)
    with contextlib.ExitStack() as stack:
        the_lab = stack.enter_context(lab(f"live-{backend}", quiet=True))

        def follower(name: str, pcap: Path, *args: object) -> Follower:
            out = workdir / f"{name}.jsonl"
            proc = _fastpcap(backend, "bucketize", "--follow", pcap, "-o", out, *args)
            stack.callback(stop_process, proc)
            f = Follower(proc, out, LineTimes(out) if "--idle-close" in args else None)
            if f.times is not None:
                stack.callback(f.times.stop)
            session.followers[name] = f
            return f

        # Idle-close followers first: their captures do not exist yet.
        for name in ("api", "cli"):
            follower(f"idle-{name}", pcaps[name], "--idle-close", IDLE_CLOSE_MS[name])

        with in_netns(the_lab.host):  # tcpdump runs where the bridge is
            handle = fastpcap.run_capture(BRIDGE, pcaps["api"])
            session.handle = handle
            stack.callback(fastpcap.stop_capture, handle)
            cli_out = workdir / "capture-netflow.jsonl"
            capture = _fastpcap(backend, "capture", "-i", BRIDGE, "-w", pcaps["cli"], "--netflow", cli_out)
            stack.callback(stop_process, capture, signal.SIGINT)
            session.cli_capture = Follower(capture, cli_out)
            opts_out = workdir / "capture-netflow-options.jsonl"
            opts = _fastpcap(backend, "capture", "-i", BRIDGE, "-w", pcaps["opts"], "--netflow", opts_out,
                             *OPTS_FLAGS)
            stack.callback(stop_process, opts, signal.SIGINT)
            session.opts_capture = Follower(opts, opts_out)
            ng = session.dumpcap_pcapng = workdir / "dumpcap.pcapng"  # (root-owned: dumpcap does not drop)
            dumpcap = subprocess.Popen(["dumpcap", "-q", "-i", BRIDGE, "-w", str(ng)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            stack.callback(stop_process, dumpcap, signal.SIGINT)
        follower("dumpcap", ng, "--pid", dumpcap.pid)  # (started before dumpcap creates the file)
        follower("pid", pcaps["api"], "--pid", handle.proc.pid)
        # The CLI's tcpdump is listening once it has written the file's header.
        for name in ("cli", "opts"):
            wait_for(lambda name=name: pcaps[name].exists() and pcaps[name].stat().st_size >= PCAP_HEADER, 20,
                     "fastpcap capture's tcpdump to start")
        # dumpcap is capturing once it has written the section header and the interface's
        wait_for(lambda: ng.exists() and ng.stat().st_size >= 48, 20, "dumpcap to start")

        session.refused["guest"] = _send(the_lab.guest, HOST_IP)
        time.sleep(GAP_S)
        session.refused["host"] = _send(the_lab.host, GUEST_IP)

        # tcpdump hands packets over in kernel buffer blocks; stop once all are on disk.
        for pcap in pcaps.values():
            wait_for(lambda pcap=pcap: len(record_frames(pcap)) >= TOTAL_PACKETS, 20,
                     f"{TOTAL_PACKETS} packets in {pcap.name}", interval=0.05)
        wait_for(lambda: len(fastpcap.read_packets(ng)) >= TOTAL_PACKETS, 20, f"{TOTAL_PACKETS} packets in {ng.name}",
                 interval=0.05)
        dumpcap.send_signal(signal.SIGINT)  # it ends its file (statistics blocks) and exits
        _, err = dumpcap.communicate(timeout=60)
        session.dumpcap_status = dumpcap.returncode

        session.stop_status = fastpcap.stop_capture(handle)
        assert handle.proc.stderr is not None
        session.handle_stderr = handle.proc.stderr.read().decode()
        handle.proc.stderr.close()
        for done in (session.cli_capture, session.opts_capture):
            done.proc.send_signal(signal.SIGINT)
            _, err = done.proc.communicate(timeout=60)
            done.status, done.stderr = done.proc.returncode, err.decode()
        for name, f in session.followers.items():
            if name not in ("pid", "dumpcap"):  # those end by themselves, the capture having exited
                f.proc.send_signal(signal.SIGTERM)
            _, err = f.proc.communicate(timeout=60)
            f.status, f.stderr = f.proc.returncode, err.decode()
            if f.times is not None:
                f.times.stop()

        # A capture that ends on its own after --duration, on the now silent bridge.
        with in_netns(the_lab.host):
            session.duration_run = subprocess.run(
                [sys.executable, "-m", "fastpcap", "capture", "-i", BRIDGE, "-w", capdir / "quiet.pcap",
                 "--duration", "0.5", "--netflow", workdir / "quiet.jsonl", "--quiet"],
                env=cli_env(backend), capture_output=True, timeout=60)
    return session


@pytest.fixture(scope="module")
def _sessions() -> dict:
    return {}


@pytest.fixture(scope="module")
def _capdir():
    folder = _capture_dir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def netns_available() -> None:
    check_netns_available(("ip", "tcpdump", "tshark", "dumpcap"))


@pytest.fixture
def session(netns_available, _sessions: dict, _capdir: Path, backend: str, tmp_path_factory) -> Session:
    """The session for the backend under test, taken on first use."""
    return once_per_backend(_sessions, backend, lambda: _take_session(
        backend, tmp_path_factory.mktemp(f"live-{backend}"), _capture_dir(_capdir / backend)))


def _batch(session: Session, name: str) -> bytes:
    out = session.workdir / f"batch-{name}.jsonl"
    if not out.exists():
        fastpcap.write_jsonl(session.pcaps[name], out)
    return out.read_bytes()


def _rows(jsonl: bytes) -> list[dict]:
    return [json.loads(line) for line in jsonl.splitlines()]


def _total(rows: list[dict], key: str) -> int:
    return sum(row[key] for row in rows)


# -- the tests --------------------------------------------------------------------------------


def test_stop_capture_returns_0_and_tcpdump_kept_everything(session: Session) -> None:
    assert session.stop_status == 0
    handle = session.handle
    assert handle is not None and handle.bridge == BRIDGE and handle.pcap_path == session.pcaps["api"]
    assert handle.startup_message.startswith(f"tcpdump: listening on {BRIDGE}, link-type EN10MB")
    assert f"{TOTAL_PACKETS} packets captured" in session.handle_stderr
    assert "0 packets dropped by kernel" in session.handle_stderr


@pytest.mark.parametrize("name", ["api", "cli"])
def test_every_counter_equals_what_was_sent(session: Session, name: str) -> None:
    """The batch rows of each capture: totals against the traffic, each bucket against tshark."""
    assert session.refused == {"guest": N_TCP, "host": N_TCP}
    rows = _rows(_batch(session, name))
    per_side = 2 * N_UDP + 2 * N_TCP  # each side: its queries and SYNs, its answers to the other's
    want = {"pkts_in": per_side, "pkts_out": per_side, "syn_count": 2 * N_TCP, "tcp_new_flows": 2 * N_TCP,
            "rst_count": 2 * N_TCP, "fin_count": 0, "tcp_count": 4 * N_TCP, "udp_count": 2 * N_UDP,
            "dns_query_count": 2 * N_UDP}
    assert {key: _total(rows, key) for key in want} == want
    # Sizes, and distinct destinations per bucket, against tshark's decode of the same file.
    frames = tshark_frames(session.pcaps[name])
    assert len(frames) == TOTAL_PACKETS
    assert _total(rows, "bytes_out") == sum(f.cap_len for f in frames if f.src == HOST_IP)
    assert _total(rows, "bytes_in") == sum(f.cap_len for f in frames if f.src != HOST_IP)
    expected = tshark_buckets(frames, uniques=True)
    keys = (*COUNTERS, "unique_dst_ips", "unique_dst_ports")
    for row in rows:
        counted = expected.get(row["t_wall_ns"], {})
        assert {k: row[k] for k in keys} == {k: counted.get(k, 0) for k in keys}, row["t_wall_ns"]
    assert set(expected) <= {row["t_wall_ns"] for row in rows}
    walls = [row["t_wall_ns"] for row in rows]
    assert walls == list(range(walls[0], walls[-1] + 1, BUCKET_NS))  # every bucket, empty ones too
    assert any(row["pkts_in"] + row["pkts_out"] == 0 for row in rows)  # the pause


def test_follow_with_pid_writes_the_batch_rows(session: Session) -> None:
    f = session.followers["pid"]
    assert f.status == 0 and f.stderr == "", f.stderr
    assert f.out.read_bytes() == _batch(session, "api")


def test_follow_of_a_pcapng_that_dumpcap_writes(session: Session) -> None:
    f = session.followers["dumpcap"]
    assert session.dumpcap_status == 0 and session.dumpcap_pcapng is not None
    assert f.status == 0 and f.stderr == "", f.stderr
    with fastpcap.open_capture(session.dumpcap_pcapng) as reader:
        assert reader.format == "pcapng" and sum(len(chunk) for chunk in reader) == TOTAL_PACKETS
    got = f.out.read_bytes()
    assert got == fastpcap.format_rows(fastpcap.bucket_rows(session.dumpcap_pcapng))
    rows = _rows(got)
    assert _total(rows, "pkts_in") + _total(rows, "pkts_out") == TOTAL_PACKETS
    assert _total(rows, "pkts_out") == TOTAL_PACKETS // 2  # the host's half (bridge 10.200.0.1)


def test_capture_netflow_writes_the_batch_rows(session: Session) -> None:
    capture = session.cli_capture
    assert capture is not None and capture.status == 0, capture.stderr if capture else None
    assert capture.out.read_bytes() == _batch(session, "cli")
    lines = capture.stderr.splitlines()
    assert lines[0] == (f"fastpcap: capturing on {BRIDGE} into {session.pcaps['cli']} and its rows into "
                        f"{capture.out}; Ctrl-C stops")
    assert lines[1].startswith(f"fastpcap: tcpdump: {TOTAL_PACKETS} packets captured, ")
    assert ", 0 packets dropped by kernel" in lines[1]
    assert lines[2] == f"fastpcap: wrote {len(_rows(_batch(session, 'cli')))} row(s) to {capture.out}"
    assert len(lines) == 3


def test_capture_netflow_with_bucket_options(session: Session) -> None:
    # the rows bucketize writes for the capture with the same options: 50 ms buckets, the
    # guest's packets counted as "out"
    capture = session.opts_capture
    assert capture is not None and capture.status == 0, capture.stderr if capture else None
    out = capture.out.read_bytes()
    assert out == fastpcap.format_rows(fastpcap.bucket_rows(session.pcaps["opts"], **OPTS))
    rows = _rows(out)
    walls = [row["t_wall_ns"] for row in rows]
    assert walls == list(range(walls[0], walls[-1] + 1, 50_000_000))
    assert [row["t_mono_ns"] for row in rows] == [w - 7 for w in walls]
    frames = tshark_frames(session.pcaps["opts"])
    assert _total(rows, "pkts_out") == sum(f.src == GUEST_IP for f in frames) == TOTAL_PACKETS // 2
    assert out != _batch(session, "cli")


def test_capture_duration_ends_by_itself(session: Session) -> None:
    run = session.duration_run
    assert run is not None and run.returncode == 0 and run.stderr == b"", run.stderr if run else None
    assert (session.workdir / "quiet.jsonl").read_bytes() == b""  # nothing was sent: no rows


@pytest.mark.parametrize("name", ["api", "cli"])
def test_idle_close_rows_and_their_delay(session: Session, name: str) -> None:
    f = session.followers[f"idle-{name}"]
    assert f.status == 0, f.stderr
    got, batch = f.out.read_bytes(), _batch(session, name)
    late = [line for line in f.stderr.splitlines() if "came more than the idle close" in line]
    assert f.stderr.count("\n") == len(late) <= 1, f.stderr
    if not late:
        assert got == batch
    else:  # packets that reached the file after their bucket was written moved to the next row
        assert got != batch
    rows = _rows(got)
    for key in (*COUNTERS,):
        assert _total(rows, key) == _total(_rows(batch), key), key
    # The delay from each bucket's end to its row in OUT (the last row comes at the SIGTERM).
    assert f.times is not None
    seen = dict(f.times.seen)
    delays = []
    for line in got.splitlines(keepends=True)[:-1]:
        row = json.loads(line)
        delay_s = (seen[line] - (row["t_wall_ns"] + BUCKET_NS)) / 1e9
        assert 0 < delay_s < SANITY_DELAY_S
        delays.append(delay_s)
    # The row before the pause: no later packet for GAP_S, so closed on idle if that comes first.
    before_pause = next(i for i, row in enumerate(rows) if row["pkts_in"] + row["pkts_out"] == 0) - 1
    print(f"\n[{name} capture, --idle-close {IDLE_CLOSE_MS[name]} ms] delay from a bucket's end to its row in OUT, "
          f"{len(delays)} rows before the last: min {min(delays):.3f} s, median {statistics.median(delays):.3f} s, "
          f"max {max(delays):.3f} s; the row before the {GAP_S} s pause: {delays[before_pause]:.3f} s; "
          f"late-packet warning: {bool(late)}")
