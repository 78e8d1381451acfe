"""Following a capture while it is written (fastpcap.follow_rows, bucketize --follow).

The file is written by the test a piece at a time from inside the follower's own stop check
(called once per look at the file, before it reads), so every interleaving of writes and
reads is exact and repeatable, without threads or sleeps: after each piece, the rows yielded
so far must be exactly the closed buckets of what the file holds.  The idle-close tests use
timestamps from 2023 (the wall clock is always far past their buckets: a bucket is closed at
the first look without new packets) or a day ahead (never closed on idle).  Whole-process
runs end the follow by a process exiting and by signals; their results do not depend on
timing.  No root needed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fastpcap
from fastpcap import LatePacketWarning

from conftest import cli_env, episode, leftovers, one_error_line
from oracle import capture_records, oracle
from pcapgen import SYN, Rec, compress, epb, eth, idb, ipv4, isb, nrb, pcap, pcapng, shb, tcp, udp

T0 = 1_680_000_000_000_000_000  # 2023: every bucket ended long ago
MS = 1_000_000
HEADER = 24


def _frame(i: int) -> bytes:
    if i % 3 == 0:
        return eth(ipv4(udp(40000 + i, 53), src="10.200.0.2", dst="10.200.0.1", proto=17))
    return eth(ipv4(tcp(40000 + i, 80 + i % 4, flags=SYN), src="10.200.0.1", dst=f"10.200.0.{2 + i % 5}"))


def capture_at(times_ms: list[int], t0: int = T0) -> bytes:
    return pcap([Rec(t0 + t * MS, _frame(i)) for i, t in enumerate(times_ms)])


class Pieces:
    """The follower's stop check: each call writes the next piece of the capture (``None``:
    nothing yet, the file need not exist), and says stop once everything is written.  It also
    records, at each call, the bytes written before it and the rows yielded so far."""

    def __init__(self, path: Path, pieces: list[bytes | None]) -> None:
        self.path = path
        self.pieces = list(pieces)
        self.written = 0
        self.rows: list[np.ndarray] = []  # filled by the consumer
        self.log: list[tuple[int, int]] = []  # (bytes written before the call, rows yielded by then)

    def __call__(self) -> bool:
        self.log.append((self.written, sum(len(r) for r in self.rows)))
        if not self.pieces:
            return True
        piece = self.pieces.pop(0)
        if piece is not None:
            with open(self.path, "ab") as f:
                f.write(piece)
            self.written += len(piece)
        return False


def follow(path: Path, pieces: list[bytes | None], **kw) -> tuple[np.ndarray, Pieces]:
    writer = Pieces(path, pieces)
    for block in fastpcap.follow_rows(path, stop=writer, poll_s=0.001, **kw):
        writer.rows.append(block)
    rows = np.concatenate(writer.rows) if writer.rows else np.zeros(0, dtype=fastpcap.ROW_DTYPE)
    return rows, writer


def split(data: bytes, cuts: list[int]) -> list[bytes | None]:
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def random_cuts(data: bytes, seed: int, n: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1, len(data)) for _ in range(n)]


DATA = episode(120, gap_s=2)  # 13 ms apart, 2 s of silence half-way: empty rows in the middle
CUTS = {
    "whole": [],
    "header-byte-by-byte": [1, 2, 3, 4, 5, 10, 23, 24, 30, 39, 40, 41],
    "random-small": random_cuts(DATA, 1, 300),
    "random-large": random_cuts(DATA, 2, 12),
    "one-record-at-a-time": list(range(HEADER, len(DATA), len(DATA) // 120)),
}


def _pcapng_episode() -> bytes:
    """DATA's packets as dumpcap might write them: a little-endian section with a µs interface
    (and a name resolution and statistics block), then a big-endian section whose second
    interface counts nanoseconds, described after the first packets of the section."""
    records = capture_records(DATA)
    half = len(records) // 2
    blocks = [shb(), idb(1), nrb()]
    blocks += [epb(0, r.t_ns // 1000, r.frame) for r in records[:half]]
    blocks += [isb(0, records[half - 1].t_ns // 1000), shb(byteorder="big"), idb(1, byteorder="big")]
    blocks += [epb(0, r.t_ns // 1000, r.frame, byteorder="big") for r in records[half:half + 10]]
    blocks += [idb(1, tsresol=9, byteorder="big")]
    blocks += [epb(1, r.t_ns, r.frame, byteorder="big") for r in records[half + 10:]]
    return pcapng(blocks)


DATA_NG = _pcapng_episode()
NG_CUTS = {
    "whole": [],
    "header-byte-by-byte": list(range(1, 60)),
    "random-small": random_cuts(DATA_NG, 4, 300),
    "random-large": random_cuts(DATA_NG, 5, 12),
}


@pytest.mark.parametrize(("data", "cuts"),
                         [(DATA, c) for c in CUTS.values()] + [(DATA_NG, c) for c in NG_CUTS.values()],
                         ids=list(CUTS) + [f"pcapng-{k}" for k in NG_CUTS])
def test_rows_close_as_the_file_grows_and_end_as_the_batch(tmp_path: Path, data: bytes, cuts: list[int]) -> None:
    path = tmp_path / "live.pcap"
    pieces: list[bytes | None] = [None, None, *split(data, cuts)]  # the file does not exist at first
    rows, writer = follow(path, pieces)
    assert fastpcap.format_rows(rows) == oracle(data).jsonl
    # At every look, the rows yielded are the buckets closed by what the file held: all the
    # batch rows of that prefix but its last (the open bucket).
    for written, yielded in writer.log:
        prefix_rows = len(oracle(data[:written]).rows)
        assert yielded == max(prefix_rows - 1, 0), (written, yielded, prefix_rows)
    assert writer.log[-1][1] == len(oracle(data).rows) - 1  # the last bucket is written at the end


def test_rows_are_those_of_iter_rows_with_options(tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    options = {"bucket_ms": 7, "bridge_ip": "10.200.0.2", "t_mono_origin_ns": 5, "max_gap_s": 1}
    with pytest.warns(fastpcap.GapWarning):
        rows, _ = follow(path, split(DATA, random_cuts(DATA, 3, 40)), **options)
    with pytest.warns(fastpcap.GapWarning):
        want = fastpcap.bucket_rows(path, **options)
    np.testing.assert_array_equal(rows, want)


@pytest.mark.parametrize("content", [b"", DATA[:1], DATA[:HEADER - 1], DATA[:HEADER], DATA[:HEADER + 10]],
                         ids=["empty", "1-byte", "header-less-1", "header", "partial-record"])
def test_no_complete_packet_no_rows(tmp_path: Path, content: bytes) -> None:
    rows, _ = follow(tmp_path / "live.pcap", [content])
    assert len(rows) == 0


def test_a_file_that_never_appears_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "never.pcap"
    with pytest.raises(fastpcap.CaptureError, match="never.pcap: cannot read: No such file"):
        follow(path, [None, None])


@pytest.mark.parametrize("kind", ["gzip", "not-a-capture"])
def test_what_cannot_be_followed_is_an_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x"
    if kind == "gzip":
        data, match = compress(DATA, "gzip"), "gzip-compressed capture cannot be followed"
    else:
        data, match = b"hello world, this is text", "not a capture"
    with pytest.raises(fastpcap.CaptureError, match=match):
        follow(path, [data])


def test_a_file_that_shrinks_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    steps = iter([lambda: path.write_bytes(DATA[:500]), lambda: path.write_bytes(DATA[:HEADER])])

    def stop() -> bool:
        step = next(steps, None)
        if step is None:
            return True
        step()
        return False

    with pytest.raises(fastpcap.CaptureError, match=f"offset {HEADER}: the file shrank from 500 to {HEADER} bytes"):
        for _ in fastpcap.follow_rows(path, stop=stop, poll_s=0.001):
            pass


def test_a_corrupt_record_is_an_error_after_the_rows_before_it(tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    bad = DATA + b"\xff" * 16  # a record header claiming 4 GiB
    writer = Pieces(path, split(bad, [len(DATA) // 2, len(DATA)]))
    got = []
    with pytest.raises(fastpcap.CaptureError, match=f"byte offset {len(DATA)}: record 121 claims"):
        for block in fastpcap.follow_rows(path, stop=writer, poll_s=0.001):
            got.append(block)
    assert sum(len(b) for b in got) == len(oracle(DATA).rows) - 1  # all closed before it


# -- the idle close ---------------------------------------------------------------------------


def test_idle_close_late_packet_goes_into_the_next_row_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    first = capture_at([10, 20])  # bucket 0, closed on idle after this piece
    late = capture_at([30, 150, 160])[HEADER:]  # 30 ms is bucket 0's: late; then bucket 1
    with pytest.warns(LatePacketWarning) as caught:
        rows, writer = follow(path, [first, late], idle_close_ms=0)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "1 packet(s) came more than the idle close of 0 ms after the end of their 100 ms bucket" in message
    assert f"the first was packet 3 (byte offset {len(first)})" in message
    assert [int(r["pkts_in"] + r["pkts_out"]) for r in rows] == [2, 3]
    assert [int(r["t_wall_ns"]) for r in rows] == [T0, T0 + 100 * MS]
    # The batch rule puts the late packet into bucket 0; the totals are the same.
    batch = oracle(first + late).rows
    assert [r["pkts_in"] + r["pkts_out"] for r in batch] == [3, 2]
    for key in ("pkts_in", "pkts_out", "bytes_in", "bytes_out", "syn_count", "udp_count", "tcp_count",
                "dns_query_count", "tcp_new_flows"):
        assert int(rows[key].sum()) == sum(r[key] for r in batch), key
    # Bucket 0 was written after the first piece, before the late packet was there.
    assert (len(first), 1) in writer.log


def test_idle_close_counts_every_late_packet_in_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    pieces = [capture_at([10]), capture_at([50, 60])[HEADER:], capture_at([120])[HEADER:],
              capture_at([110, 130, 450])[HEADER:]]
    with pytest.warns(LatePacketWarning, match=r": 5 packet\(s\) .* the first was packet 2 ") as caught:
        rows, _ = follow(path, pieces, idle_close_ms=5)
    assert len(caught) == 1
    # Each piece's bucket is written on idle before the next piece comes.  Bucket 0: 10.  Late
    # 50, 60 (bucket 0's) -> bucket 1.  Late 120 (bucket 1's, written) -> bucket 2.  Late 110,
    # 130 -> bucket 3; 450 -> bucket 4.
    assert [int(r["pkts_in"] + r["pkts_out"]) for r in rows] == [1, 2, 1, 2, 1]


def test_idle_close_with_times_in_order_changes_nothing(tmp_path: Path) -> None:
    """Each piece ends a bucket (as a live capture's packets all come before the idle close):
    every row is written on idle, and the rows are the batch rows, gaps and all."""
    groups = [[5, 20, 99], [100, 180], [420, 430], [3000, 3001, 3099]]  # buckets 0, 1, 4, 30
    pieces: list[bytes | None] = [capture_at(g)[0 if i == 0 else HEADER:] for i, g in enumerate(groups)]
    with pytest.warns(fastpcap.GapWarning):
        rows, writer = follow(tmp_path / "live.pcap", pieces, idle_close_ms=0, max_gap_s=1)
    with pytest.warns(fastpcap.GapWarning):
        want = fastpcap.bucket_rows(tmp_path / "live.pcap", max_gap_s=1)
    np.testing.assert_array_equal(rows, want)
    # ...and each bucket was written before the next piece came (buckets 0, 1, 2-4, 30).
    assert [yielded for _, yielded in writer.log] == [0, 1, 2, 5, 6]


def test_no_idle_close_before_the_bucket_has_ended(tmp_path: Path) -> None:
    """Times a day ahead: the wall clock never passes their buckets, so only packets close
    them, exactly as without an idle close."""
    future = time.time_ns() + 86_400 * 10**9
    data = capture_at([i * 7 for i in range(60)], t0=future - future % (100 * MS))
    rows, writer = follow(tmp_path / "live.pcap", split(data, random_cuts(data, 4, 30)), idle_close_ms=0)
    assert fastpcap.format_rows(rows) == oracle(data).jsonl
    for written, yielded in writer.log:
        assert yielded == max(len(oracle(data[:written]).rows) - 1, 0)


@pytest.mark.once
@pytest.mark.parametrize(("kw", "match"), [
    ({"idle_close_ms": -1}, "idle_close_ms"), ({"idle_close_ms": 1.5}, "idle_close_ms"),
    ({"idle_close_ms": True}, "idle_close_ms"), ({"pid": 0}, "pid"), ({"poll_s": 0}, "poll_s"),
    ({"bucket_ms": 0}, "bucket_ms"),
])
def test_bad_arguments_raise_at_once(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fastpcap.follow_rows("does-not-matter.pcap", **kw)


# -- ended by a process, an event ------------------------------------------------------------

WRITER = """
import sys, time
data = open(sys.argv[1], "rb").read()
time.sleep(0.2)  # the follower starts before the file exists
with open(sys.argv[2], "wb") as f:
    for i in range(0, len(data), 301):
        f.write(data[i:i + 301])
        f.flush()
        time.sleep(0.002)
"""


def _start_writer(tmp_path: Path, data: bytes, target: Path) -> subprocess.Popen:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    return subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(target)])


def test_ends_when_the_process_exits_having_read_everything(tmp_path: Path) -> None:
    target = tmp_path / "live.pcap"
    writer = _start_writer(tmp_path, DATA, target)
    try:
        rows = list(fastpcap.follow_rows(target, pid=writer.pid))
    finally:
        writer.wait(timeout=60)
    assert fastpcap.format_rows(np.concatenate(rows)) == oracle(DATA).jsonl


def test_ends_when_the_event_is_set(tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    path.write_bytes(DATA)
    stop = threading.Event()
    rows = []
    for block in fastpcap.follow_rows(path, stop=stop):
        rows.append(block)
        if sum(len(b) for b in rows) == len(oracle(DATA).rows) - 1:
            stop.set()  # all but the open bucket are out: end, and get the last one
    assert fastpcap.format_rows(np.concatenate(rows)) == oracle(DATA).jsonl


def test_a_pid_that_has_exited_reads_what_is_there(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "done.pcap"
    path.write_bytes(DATA)
    assert fastpcap.format_rows(np.concatenate(list(fastpcap.follow_rows(path, pid=gone.pid)))) == oracle(DATA).jsonl


def test_follow_jsonl_writes_the_batch_bytes(tmp_path: Path) -> None:
    target = tmp_path / "live.pcap"
    out = tmp_path / "rows.jsonl"
    out.write_bytes(b"old rows\n")
    writer = _start_writer(tmp_path, DATA, target)
    try:
        n = fastpcap.follow_jsonl(target, out, pid=writer.pid)
    finally:
        writer.wait(timeout=60)
    assert out.read_bytes() == oracle(DATA).jsonl and n == len(oracle(DATA).rows)
    assert fastpcap.follow_jsonl(target, out, append=True, stop=lambda: True) == n
    assert out.read_bytes() == oracle(DATA).jsonl * 2


# -- the command line -------------------------------------------------------------------------


def _popen(backend: str, *args: str | os.PathLike[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fastpcap", *map(str, args)], env=cli_env(backend),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.parametrize("data", [DATA, DATA_NG], ids=["pcap", "pcapng"])
def test_cli_follow_with_pid_equals_bucketize(backend: str, cli, tmp_path: Path, data: bytes) -> None:
    target = tmp_path / "live.pcap"
    out = tmp_path / "follow.jsonl"
    writer = _start_writer(tmp_path, data, target)
    try:
        proc = _popen(backend, "bucketize", "--follow", target, "-o", out, "--pid", writer.pid)
        _, err = proc.communicate(timeout=120)
    finally:
        writer.wait(timeout=60)
    assert proc.returncode == 0 and err == b"", err
    cli("bucketize", target, "-o", tmp_path / "batch.jsonl", check=True)
    assert out.read_bytes() == (tmp_path / "batch.jsonl").read_bytes() == oracle(data).jsonl
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_cli_follow_ends_on_a_signal_with_the_last_row(backend: str, tmp_path: Path, sig: int) -> None:
    path = tmp_path / "live.pcap"
    path.write_bytes(DATA)
    out = tmp_path / "follow.jsonl"
    out.write_bytes(b"previous\n" * 3)  # emptied first
    want = oracle(DATA)
    proc = _popen(backend, "bucketize", "--follow", path, "-o", out)
    try:
        deadline = time.monotonic() + 60
        while _lines(out) != len(want.rows) - 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for the closed rows (not a timing check)
        assert out.read_bytes() == b"".join(want.jsonl.splitlines(keepends=True)[:-1])
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and err == b"", err
    assert out.read_bytes() == want.jsonl


def test_cli_follow_appends_and_writes_through_a_fifo(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "done.pcap"
    path.write_bytes(DATA)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "rows.jsonl"
    out.write_bytes(b"previous\n")
    proc = _popen(backend, "bucketize", "--follow", path, "-o", out, "--append", "--pid", gone.pid)
    assert proc.communicate(timeout=60)[1] == b"" and proc.returncode == 0
    assert out.read_bytes() == b"previous\n" + oracle(DATA).jsonl

    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    proc = _popen(backend, "bucketize", "--follow", path, "-o", fifo, "--pid", gone.pid)
    assert proc.communicate(timeout=60)[1] == b"" and proc.returncode == 0
    reader.join(timeout=60)
    assert got == [oracle(DATA).jsonl]
    assert fifo.is_fifo()


def test_cli_follow_to_stdout(cli, tmp_path: Path) -> None:
    path = tmp_path / "done.pcap"
    path.write_bytes(DATA)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    proc = cli("bucketize", "--follow", path, "--pid", gone.pid, check=True)
    assert proc.stdout == oracle(DATA).jsonl


def test_cli_follow_never_overwrites_its_input(cli, tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"  # not there yet
    line = one_error_line(cli("bucketize", "--follow", path, "-o", path, "--pid", "1"))
    assert "it is the capture being read" in line and not path.exists()
    path.write_bytes(DATA)
    link = tmp_path / "link.jsonl"
    os.link(path, link)
    line = one_error_line(cli("bucketize", "--follow", path, "-o", link, "--pid", "1"))
    assert "it is the capture being read" in line and path.read_bytes() == DATA


def test_cli_follow_errors_are_one_line(cli, tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    missing = tmp_path / "missing.pcap"
    line = one_error_line(cli("bucketize", "--follow", missing, "-o", tmp_path / "o.jsonl", "--pid", gone.pid))
    assert f"{missing}: cannot read: No such file or directory" in line
    assert not (tmp_path / "o.jsonl").exists()  # created for the run, removed as nothing was written
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(compress(DATA, "gzip"))
    line = one_error_line(cli("bucketize", "--follow", gz, "-o", tmp_path / "o.jsonl", "--pid", gone.pid))
    assert "gzip-compressed capture cannot be followed" in line


def test_cli_follow_idle_close_and_its_warning(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    out = tmp_path / "rows.jsonl"
    first, late = capture_at([10, 20]), capture_at([30, 150])[HEADER:]
    path.write_bytes(first)
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    proc = _popen(backend, "bucketize", "--follow", path, "-o", out, "--pid", holder.pid, "--idle-close", "0")
    try:
        deadline = time.monotonic() + 60
        while _lines(out) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # bucket 0 (2023) is written on idle
        with open(path, "ab") as f:
            f.write(late)  # its packet at 30 ms comes late
        while _lines(out) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        holder.communicate(b"", timeout=60)  # the "capture" ends
        _, err = proc.communicate(timeout=60)
    finally:
        for p in (holder, proc):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["t_wall_ns"], r["pkts_in"] + r["pkts_out"]) for r in rows] == [(T0, 2), (T0 + 100 * MS, 2)]
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fastpcap: warning: {path}: 1 packet(s) came more than "), err


@pytest.mark.once
@pytest.mark.parametrize("args", [
    ["--pid", "1"], ["--idle-close", "5"], ["--follow", "a.pcap", "b.pcap"], ["--follow", "-"],
    ["--follow", "--format", "parquet"], ["--follow", "--jobs", "2"], ["--follow", "-o", "rows.jsonl.gz"],
    ["--follow", "--idle-close", "-1"], ["--follow", "--pid", "0"], ["--follow", "--on-corrupt", "resync"],
])
def test_cli_follow_usage_errors(cli, tmp_path: Path, args: list[str]) -> None:
    if "a.pcap" not in args and "-" not in args:
        args = [*args, str(tmp_path / "in.pcap")]
    proc = cli("bucketize", *args)
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr, proc.stderr
    assert b"usage:" in proc.stderr
