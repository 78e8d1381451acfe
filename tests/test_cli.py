"""The command line, run as a user runs it: a fresh interpreter, real files, exit statuses."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SAMPLE, T0, episode, leftovers, one_error_line, run_on_a_terminal
from oracle import oracle
from pcapgen import Rec, pcap


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "episode.pcap"
    path.write_bytes(episode())
    return path


def test_writes_the_specs_rows(cli, capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    proc = cli("bucketize", capture, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"" and proc.stderr == b""  # no progress bar: stderr is not a terminal
    assert out.read_bytes() == oracle(capture.read_bytes()).jsonl


def test_stdout_by_default_and_with_dash(cli, capture: Path) -> None:
    expected = oracle(capture.read_bytes()).jsonl
    assert cli("bucketize", capture, check=True).stdout == expected
    assert cli("bucketize", capture, "-o", "-", check=True).stdout == expected


def test_reads_stdin(cli, capture: Path, tmp_path: Path) -> None:
    data = capture.read_bytes()
    assert cli("bucketize", "-", input=data, check=True).stdout == oracle(data).jsonl
    out = tmp_path / "rows.jsonl"
    cli("bucketize", "-", "-o", out, input=data + data[24:44], check=True)  # a partial record
    assert out.read_bytes() == oracle(data).jsonl
    line = one_error_line(cli("bucketize", "-", input=b"garbage!" * 10))
    assert line == "fastpcap: error: <stdin>: byte offset 0: not a capture (unknown magic 0x67617262)"


def test_options(cli, capture: Path) -> None:
    proc = cli("bucketize", capture, "--bucket-ms", "7", "--bridge-ip", "10.200.0.3",
               "--t-mono-origin-ns", str(T0 + 1), "--max-gap", "none", check=True)
    assert proc.stdout == oracle(capture.read_bytes(), bucket_ms=7, bridge_ip="10.200.0.3",
                                 t_mono_origin_ns=T0 + 1, max_gap_s=None).jsonl


def test_jobs_does_not_change_the_rows(cli, capture: Path) -> None:
    expected = oracle(capture.read_bytes()).jsonl
    for jobs in ("1", "2", "8"):
        assert cli("bucketize", capture, "--jobs", jobs, check=True).stdout == expected


def test_sample_capture_in_the_repo(cli, tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl"
    cli("bucketize", SAMPLE, "-o", out, check=True)
    assert out.read_bytes() == oracle(SAMPLE.read_bytes()).jsonl
    rows = [json.loads(line) for line in out.read_bytes().splitlines()]
    total = {key: sum(row[key] for row in rows) for key in ("pkts_in", "pkts_out", "dns_query_count",
                                                            "tcp_new_flows", "rst_count", "fin_count")}
    # The episode examples/record_sample.py records: 3 DNS lookups, 4 downloads (a SYN and a
    # FIN each way), a sweep of 16 closed ports (each answered by a RST), 10 UDP beacons.
    assert total == {"pkts_in": 51, "pkts_out": 45, "dns_query_count": 3, "tcp_new_flows": 20,
                     "rst_count": 16, "fin_count": 8}
    assert len(rows) == 26


def test_append(cli, capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    out.write_bytes(b"kept\n")
    cli("bucketize", capture, "-o", out, "--append", check=True)
    cli("bucketize", capture, "-o", out, "--append", check=True)
    rows = oracle(capture.read_bytes()).jsonl
    assert out.read_bytes() == b"kept\n" + rows + rows


def test_replacing_is_atomic_and_keeps_the_mode(cli, capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    out.write_bytes(b"old\n")
    out.chmod(0o640)
    cli("bucketize", capture, "-o", out, check=True)
    assert out.read_bytes() == oracle(capture.read_bytes()).jsonl
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_new_output_gets_the_usual_mode_and_parent_folders(cli, capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "rows.jsonl"
    cli("bucketize", capture, "-o", out, check=True)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


BAD_INPUTS = {
    "text": (lambda: b"this is not a capture\n" * 4, 0, "not a capture (unknown magic 0x74686973)"),
    "short_garbage": (lambda: b"PK\x03", 0, "not a capture (starts with 504b03)"),
    "pcapng_bad_byte_order": (lambda: bytes.fromhex("0a0d0d0a") + bytes(24), 0,
                              "section header block with an unknown byte-order magic 0x00000000"),
    "huge_record": (lambda: episode(40) + pcap([Rec(T0 + 10**9, b"x", incl_len=262145)])[24:],
                    len(episode(40)), "claims 262145 captured bytes, more than the 262144 libpcap allows"),
}


@pytest.mark.parametrize("append", [False, True], ids=["replace", "append"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exit_2_one_line_output_untouched(cli, tmp_path: Path, case: str, append: bool) -> None:
    make, offset, problem = BAD_INPUTS[case]
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(make())
    out = tmp_path / "rows.jsonl"
    out.write_bytes(b"previous\n")
    proc = cli("bucketize", bad, "-o", out, *(["--append"] if append else []))
    line = one_error_line(proc)
    assert line.startswith(f"fastpcap: error: {bad}: byte offset {offset}: ")
    assert problem in line
    assert out.read_bytes() == b"previous\n"
    assert leftovers(tmp_path) == []


def test_unreadable_paths(cli, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pcap"
    line = one_error_line(cli("bucketize", missing, "-o", tmp_path / "o.jsonl"))
    assert line == f"fastpcap: error: {missing}: cannot read: No such file or directory"
    assert not (tmp_path / "o.jsonl").exists()
    empty = tmp_path / "empty"  # a folder is an archive (tests/test_batch.py): this one has no captures
    empty.mkdir()
    proc = cli("bucketize", empty, "-o", tmp_path / "out")
    warning, summary = proc.stderr.decode().splitlines()
    assert proc.returncode == 0 and warning == f"fastpcap: warning: no captures found in {empty}"
    assert summary.startswith("fastpcap: 0 captures: 0 written, 0 up to date, 0 failed; 0 packets, 0 B in ")


def test_unwritable_output(cli, capture: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    line = one_error_line(cli("bucketize", capture, "-o", blocker / "rows.jsonl"))
    assert "cannot write" in line and str(blocker) in line


@pytest.mark.parametrize("args", [
    ["--bucket-ms", "0"], ["--bucket-ms", "1.5"], ["--bridge-ip", "10.200.0.256"],
    ["--max-gap", "-1"], ["--max-gap", "forever"], ["--jobs", "0"], ["--t-mono-origin-ns", "x"],
])
def test_usage_errors(cli, capture: Path, args: list[str]) -> None:
    proc = cli("bucketize", capture, *args)
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert b"usage:" in proc.stderr


def test_help_explains_every_option(cli) -> None:
    text = cli("bucketize", "--help", check=True).stdout.decode()
    for option in ("INPUT", "-o OUT", "--bucket-ms", "--bridge-ip", "--t-mono-origin-ns",
                   "--max-gap", "--append", "--jobs", "--quiet", "Exit status"):
        assert option in text
    assert "bucketize" in cli("--help", check=True).stdout.decode()


def test_gap_warning_and_max_gap_none(cli, tmp_path: Path) -> None:
    path = tmp_path / "gap.pcap"
    data = episode(20, gap_s=5000)
    path.write_bytes(data)
    proc = cli("bucketize", path, check=True)
    assert proc.stdout == oracle(data).jsonl
    err = proc.stderr.decode()
    assert err.startswith(f"fastpcap: warning: {path}: the gap cap of 3600 s cut 1 gap(s) holding ")
    assert err.count("\n") == 1
    proc = cli("bucketize", path, "--max-gap", "none", check=True)
    assert proc.stdout == oracle(data, max_gap_s=None).jsonl and proc.stderr == b""
    proc = cli("bucketize", path, "--max-gap", "5000.5", check=True)
    assert proc.stdout == oracle(data, max_gap_s=None).jsonl and proc.stderr == b""


@pytest.mark.once
def test_console_script(capture: Path) -> None:
    script = shutil.which("fastpcap", path=os.path.dirname(sys.executable)) or shutil.which("fastpcap")
    assert script, "the `fastpcap` console script is not installed"
    proc = subprocess.run([script, "bucketize", str(capture)], capture_output=True, check=True)
    assert proc.stdout == oracle(capture.read_bytes()).jsonl
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout.startswith("fastpcap ")


def test_version_says_what_a_bug_report_needs(cli, backend: str) -> None:
    import numpy

    import fastpcap

    proc = cli("--version", check=True)
    assert proc.stdout.decode() == (
        f"fastpcap {fastpcap.__version__} (backend {backend}; numpy {numpy.__version__}; "
        f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
        f"{platform.machine()})\n")
    assert proc.stderr == b""


@pytest.mark.parametrize("size", [(24, 100), (0, 0)], ids=["sized", "unsized"])
def test_progress_on_a_terminal_and_quiet(backend: str, tmp_path: Path, size: tuple[int, int]) -> None:
    big = tmp_path / "big.pcap"
    big.write_bytes(episode(20_000))
    args = ["bucketize", str(big), "-o", str(tmp_path / "o.jsonl")]
    status, seen = run_on_a_terminal(args, backend, size)
    assert status == 0
    assert b"big.pcap: " in seen and b"%|" in seen, seen
    status, seen = run_on_a_terminal([*args, "--quiet"], backend, size)
    assert status == 0 and seen == b""


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                             (signal.SIGPIPE, 141)], ids=["INT", "TERM", "HUP", "PIPE"])
def test_interrupted_run_leaves_the_output(backend: str, tmp_path: Path, sig: int, status: int) -> None:
    # A FIFO whose writer stalls mid-capture: the run is interrupted while reading.
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    out = tmp_path / "rows.jsonl"
    out.write_bytes(b"previous\n")
    env = dict(os.environ)
    env.pop("FASTPCAP_NO_EXTENSIONS", None)
    if backend == "python":
        env["FASTPCAP_NO_EXTENSIONS"] = "1"
    for append in ([], ["--append"]):
        proc = subprocess.Popen([sys.executable, "-m", "fastpcap", "bucketize", str(fifo), "-o", str(out),
                                 *append], stderr=subprocess.PIPE, env=env)
        with open(fifo, "wb") as writer:
            writer.write(episode(30))
            writer.flush()
            time.sleep(1.5)  # the reader has started and is waiting for more
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == status, err
        if sig == signal.SIGPIPE:  # as `cat` whose reader went away: nothing to say
            assert err == b""
        else:
            assert err.decode().startswith("fastpcap: error: ") and err.count(b"\n") == 1, err
        assert out.read_bytes() == b"previous\n"
        assert leftovers(tmp_path) == []


def test_other_warnings_are_shown_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library's own warning during a run (Dask's, say) is shown once, after the run (a
    regression: shown inside the recording block, it was recorded again, endlessly)."""
    import warnings

    from fastpcap import cli as cli_module

    def warn_and_succeed(args, spec):  # type: ignore[no-untyped-def]
        warnings.warn("port 8787 is already in use", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli_module, "_bucketize", warn_and_succeed)
    with pytest.warns(UserWarning, match="port 8787") as shown:
        assert cli_module.main(["bucketize", "x.pcap"]) == 0
    assert len(shown) == 1
