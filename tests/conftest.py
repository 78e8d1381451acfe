"""Test helpers; the `backend` fixture that runs everything on both twins is in ../conftest.py."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from hypothesis import settings

from pcapgen import ACK, SYN, Rec, eth, ipv4, pcap, tcp, udp
from strategies import sweep

# No deadlines: speed is measured by the benchmarks, never by a timed test (a loaded machine
# would make a deadline fail for nothing).  Tests that name no example count draw sweep(100).
settings.register_profile("fastpcap", deadline=None, max_examples=sweep(100))
settings.load_profile("fastpcap")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture
def cli(backend: str):
    """Run ``python -m fastpcap ARGS...`` in a fresh interpreter on the backend under test."""

    def run(*args: str | os.PathLike[str], input: bytes | None = None, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([sys.executable, "-m", "fastpcap", *map(str, args)], input=input,
                              capture_output=True, env={**cli_env(backend), **(env or {})}, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"fastpcap {args} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    return run


def require_root(what: str) -> None:
    """Skip a test that needs root (mknod, mount), or fail when CI demands it
    (FASTPCAP_REQUIRE_ROOT=1: .ci/run runs as root, so these checks must run there)."""
    if os.geteuid() == 0:
        return
    if os.environ.get("FASTPCAP_REQUIRE_ROOT") == "1":
        pytest.fail(f"{what} needs root, and FASTPCAP_REQUIRE_ROOT=1 forbids skipping it", pytrace=False)
    pytest.skip(f"{what} needs root")


def cli_env(backend: str) -> dict[str, str]:
    """The environment that runs ``python -m fastpcap`` on ``backend``."""
    env = dict(os.environ)
    env.pop("FASTPCAP_NO_EXTENSIONS", None)
    if backend == "python":
        env["FASTPCAP_NO_EXTENSIONS"] = "1"
    return env


T0 = 1_700_000_000_000_000_000
MS = 1_000_000
SAMPLE = REPO / "examples" / "sample.pcap"


def episode(n: int = 50, gap_s: int = 0) -> bytes:
    """A small sandbox-like classic pcap: DNS queries to the bridge and SYN/ACKs from it,
    13 ms apart (``gap_s`` seconds of silence half-way)."""
    recs = []
    for i in range(n):
        t = T0 + i * 13 * MS + (gap_s * 10**9 if i >= n // 2 else 0)
        if i % 4 == 0:
            frame = eth(ipv4(udp(40000 + i, 53), src="10.200.0.2", dst="10.200.0.1", proto=17))
        else:
            frame = eth(ipv4(tcp(8080, 40000 + i, flags=SYN | ACK), src="10.200.0.1",
                             dst=f"10.200.0.{2 + i % 3}"))
        recs.append(Rec(t, frame))
    return pcap(recs)


def read_all(impl, data: bytes, chunk: int, block: int, on_corrupt: str = "error"):
    """Every packet the backend ``impl`` reads out of ``data`` (any container, any
    compression) with this chunking and corrupt-record policy, the error if any, and the
    reader's view of the capture: for comparing backends and chunkings."""
    import io
    import warnings

    import fastpcap
    from fastpcap import _backend
    from fastpcap.reader import concatenate

    previous = _backend.impl
    _backend.impl = impl
    chunks = []
    reader = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastpcap.CorruptWarning)
            reader = fastpcap.open_capture(io.BytesIO(data), chunk_packets=chunk, block_size=block,
                                           on_corrupt=on_corrupt)
            chunks.extend(reader)
        error = None
    except fastpcap.CaptureError as exc:
        error = (exc.offset, exc.problem)
    finally:
        _backend.impl = previous
    packets = concatenate(chunks, impl.PACKET_DTYPE).tobytes()
    seen = reader and (reader.format, reader.packets, reader.end_offset, reader.tail_bytes, reader.linktypes,
                       reader.undecoded, reader.skipped, reader.skipped_bytes,
                       reader.stopped and reader.stopped.offset)
    return packets, error, seen


def one_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The one error line of a run that must fail with status 2 and no traceback."""
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastpcap: error: ")
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden files (temporary outputs) left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def run_on_a_terminal(args: list[str], backend: str, size: tuple[int, int]) -> tuple[int, bytes]:
    """Run the CLI with stderr on a pseudo-terminal of ``size`` (rows, columns; (0, 0) is what
    a bare pty reports); returns (status, what the terminal got)."""
    env = dict(os.environ)
    env.pop("FASTPCAP_NO_EXTENSIONS", None)
    if backend == "python":
        env["FASTPCAP_NO_EXTENSIONS"] = "1"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "fastpcap", *args], stdout=subprocess.DEVNULL,
                            stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=30), seen
