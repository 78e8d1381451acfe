"""The capture lifecycle: run_capture / stop_capture as the reference's, and their errors.

A stand-in ``tcpdump`` first on PATH (a small script that records its arguments and behaves
as told: listens until SIGINT, ignores SIGINT, fails with tcpdump's own words) pins down the
command line, the handle, the stop protocol and the error for each way tcpdump fails, without
root.  The real tcpdump then confirms the messages that matter: a missing interface, and no
right to capture.  The real capture on a bridge is in test_live_capture.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import fastpcap
from fastpcap import lifecycle

from conftest import one_error_line, require_root
from netns_lab import unavailable

pytestmark = pytest.mark.once  # nothing here depends on the backend

FAKE = textwrap.dedent("""\
    #!{python}
    import json, os, signal, sys, time
    behaviour = {behaviour!r}
    with open({record!r}, "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\\n")
    path = sys.argv[sys.argv.index("-w") + 1]
    if behaviour.startswith("fail:"):
        sys.stderr.write(behaviour[5:].replace("PATH", path))
        sys.exit(1)
    if behaviour == "silent":
        time.sleep(60)
        sys.exit(0)
    if behaviour == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *a: (sys.stderr.write("1 packet captured\\n"), sys.exit(0)))
    open(path, "wb").close()
    sys.stderr.write("tcpdump: listening on " + sys.argv[2] + ", link-type EN10MB (Ethernet), snapshot length "
                     + sys.argv[sys.argv.index("-s") + 1] + " bytes\\n")
    sys.stderr.flush()
    while True:
        time.sleep(0.05)
""")


@pytest.fixture
def fake_tcpdump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put a stand-in tcpdump first on PATH; returns a function that sets how it behaves
    and the file where it records its arguments."""
    folder = tmp_path / "bin"
    folder.mkdir()
    record = tmp_path / "argv.jsonl"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")

    def make(behaviour: str = "listen") -> Path:
        script = folder / "tcpdump"
        script.write_text(FAKE.format(python=sys.executable, behaviour=behaviour, record=str(record)))
        script.chmod(0o755)
        return record

    return make


def _argv(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_runs_the_references_command_and_stops_with_sigint(fake_tcpdump, tmp_path: Path) -> None:
    record = fake_tcpdump()
    pcap = tmp_path / "episodes" / "ep1" / "bridge.pcap"  # parent folders are created
    before = time.monotonic_ns()
    handle = fastpcap.run_capture("br-malware", pcap)
    after = time.monotonic_ns()
    try:
        assert isinstance(handle, fastpcap.CaptureHandle)
        assert isinstance(handle.proc, subprocess.Popen) and handle.proc.poll() is None
        assert handle.pcap_path == pcap and isinstance(handle.pcap_path, Path)
        assert handle.bridge == "br-malware"
        assert before <= handle.started_mono_ns <= after
        assert handle.startup_message.startswith("tcpdump: listening on br-malware")
        assert pcap.exists()  # returned once tcpdump had created it and was listening
    finally:
        status = fastpcap.stop_capture(handle)
    assert status == 0 and handle.proc.returncode == 0
    assert handle.proc.stderr is not None and handle.proc.stderr.read() == b"1 packet captured\n"
    handle.proc.stderr.close()
    assert _argv(record) == [["-i", "br-malware", "-U", "-s", "262144", "-w", str(pcap)]]
    assert fastpcap.stop_capture(handle) == 0  # stopping again only says how it ended


def test_snaplen_bpf_and_immediate_mode(fake_tcpdump, tmp_path: Path) -> None:
    record = fake_tcpdump()
    pcap = str(tmp_path / "x.pcap")  # a str is fine too
    with fastpcap.run_capture("eth9", pcap, snaplen=96, bpf="udp port 53 or tcp") as handle:
        assert handle.startup_message.endswith("snapshot length 96 bytes\n")
    assert handle.proc.returncode == 0  # the context manager stopped it
    with fastpcap.run_capture("eth9", pcap, immediate=True) as second:
        pass
    for h in (handle, second):
        h.proc.stderr.close()  # type: ignore[union-attr]
    assert _argv(record) == [["-i", "eth9", "-U", "-s", "96", "-w", pcap, "udp port 53 or tcp"],
                             ["-i", "eth9", "-U", "-s", "262144", "-w", pcap, "--immediate-mode"]]
    assert lifecycle.tcpdump_args("br0", "f.pcap", bpf="") == ["tcpdump", "-i", "br0", "-U", "-s", "262144",
                                                               "-w", "f.pcap"]


def test_a_tcpdump_that_ignores_sigint_is_killed(fake_tcpdump, tmp_path: Path) -> None:
    fake_tcpdump("stubborn")
    handle = fastpcap.run_capture("br0", tmp_path / "x.pcap")
    assert fastpcap.stop_capture(handle, timeout_s=0.3) == -9
    handle.proc.stderr.close()  # type: ignore[union-attr]


def test_missing_tcpdump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(fastpcap.TcpdumpNotFoundError) as caught:
        fastpcap.run_capture("br0", tmp_path / "x.pcap")
    assert isinstance(caught.value, FileNotFoundError)  # what the reference raised
    assert isinstance(caught.value, fastpcap.CaptureStartError)
    assert str(caught.value) == "tcpdump not found on PATH; install it (apt-get install tcpdump) to capture on br0"


@pytest.mark.parametrize(("said", "kind", "words"), [
    ("tcpdump: br9: No such device exists\n(No such device exists)\n", fastpcap.InterfaceNotFoundError,
     "interface br9 not found; tcpdump said: tcpdump: br9: No such device exists (No such device exists)"),
    ("tcpdump: br9: You don't have permission to perform this capture on that device\n"
     "(socket: Operation not permitted)\n", fastpcap.CapturePermissionError,
     "no permission to capture on br9: run as root, or give tcpdump the CAP_NET_RAW capability; tcpdump said: "
     "tcpdump: br9: You don't have permission to perform this capture on that device (socket: Operation not "
     "permitted)"),
    ("tcpdump: can't parse filter expression: syntax error\n", fastpcap.CaptureStartError,
     "tcpdump exited 1 before capturing on br9; tcpdump said: tcpdump: can't parse filter expression: syntax "
     "error"),
    ("tcpdump: PATH: Read-only file system\n", fastpcap.CaptureStartError, "tcpdump cannot create PATH; "),
])
def test_each_failure_is_one_line_with_tcpdumps_words(fake_tcpdump, tmp_path: Path, said: str, kind: type,
                                                      words: str) -> None:
    fake_tcpdump("fail:" + said)
    pcap = tmp_path / "x.pcap"
    with pytest.raises(fastpcap.CaptureStartError) as caught:
        fastpcap.run_capture("br9", pcap)
    error = caught.value
    assert type(error) is kind
    assert words.replace("PATH", str(pcap)) in str(error) and "\n" not in str(error)
    assert error.returncode == 1 and error.interface == "br9" and error.pcap_path == str(pcap)
    assert error.tcpdump_message == " ".join(said.replace("PATH", str(pcap)).split("\n")).strip()


def test_privilege_drop_is_named(fake_tcpdump, tmp_path: Path) -> None:
    """What tcpdump says when, started as root, it has switched to its own user before creating
    the file and that user may not write the folder (tcpdump: FILE: Permission denied)."""
    fake_tcpdump("fail:tcpdump: PATH: Permission denied\n")
    pcap = tmp_path / "root-only" / "x.pcap"
    with pytest.raises(fastpcap.CapturePermissionError) as caught:
        fastpcap.run_capture("br0", pcap)
    message = str(caught.value)
    if os.geteuid() == 0:
        assert type(caught.value) is fastpcap.PrivilegeDropError
        assert message.startswith(f"tcpdump cannot create {pcap}: started as root, it switches to its own user")
        assert f"chown tcpdump {pcap.parent})" in message
    else:
        assert type(caught.value) is fastpcap.CapturePermissionError
        assert message.startswith(f"tcpdump cannot create {pcap}: permission denied")
    assert message.endswith(f"; tcpdump said: tcpdump: {pcap}: Permission denied")


def test_a_tcpdump_that_never_listens_times_out_and_is_stopped(fake_tcpdump, tmp_path: Path) -> None:
    record = fake_tcpdump("silent")
    with pytest.raises(fastpcap.CaptureStartError, match="did not start listening on br0 within 0.3 s"):
        fastpcap.run_capture("br0", tmp_path / "x.pcap", start_timeout_s=0.3)
    assert len(_argv(record)) == 1
    # It was stopped: no process of that script is left.
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "bin" / "tcpdump")], capture_output=True, text=True)
    assert left.stdout == ""


def test_the_cli_says_what_is_missing(cli, fake_tcpdump, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    line = one_error_line(cli("capture", "-i", "br0", "-w", tmp_path / "x.pcap", env={"PATH": str(empty)}))
    assert line == "fastpcap: error: tcpdump not found on PATH; install it (apt-get install tcpdump) to capture on br0"
    fake_tcpdump("fail:tcpdump: nosuch9: No such device exists\n(No such device exists)\n")
    line = one_error_line(cli("capture", "-i", "nosuch9", "-w", tmp_path / "x.pcap", "--netflow",
                              tmp_path / "rows.jsonl", env={"PATH": os.environ["PATH"]}))
    assert line.startswith("fastpcap: error: interface nosuch9 not found; tcpdump said: tcpdump: nosuch9: ")
    assert not (tmp_path / "rows.jsonl").exists()


def test_the_cli_reports_a_tcpdump_that_dies(cli, fake_tcpdump, tmp_path: Path) -> None:
    """A tcpdump that ends with an error while capturing (here: killed) is a one-line error."""
    fake_tcpdump("stubborn")
    proc = cli("capture", "-i", "br0", "-w", tmp_path / "x.pcap", "--duration", "0.2", "-q",
               env={"PATH": os.environ["PATH"]})
    line = one_error_line(proc)
    assert line == "fastpcap: error: tcpdump exited -9 while capturing on br0"


def test_the_cli_capture_and_its_stop(cli, fake_tcpdump, tmp_path: Path) -> None:
    record = fake_tcpdump()
    pcap = tmp_path / "x.pcap"
    proc = cli("capture", "-i", "br0", "-w", pcap, "--duration", "0.2", "--snaplen", "128", "--bpf", "udp",
               env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().splitlines() == [
        f"fastpcap: capturing on br0 into {pcap}; stopping after 0.2 s", "fastpcap: tcpdump: 1 packet captured"]
    assert _argv(record) == [["-i", "br0", "-U", "-s", "128", "-w", str(pcap), "--immediate-mode", "udp"]]
    proc = cli("capture", "-i", "br0", "-w", pcap, "--duration", "0.2", "-q", env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 0 and proc.stderr == b""


@pytest.mark.parametrize("args", [
    [], ["-i", "br0"], ["-w", "x.pcap"], ["-i", "br0", "-w", "x.pcap", "--duration", "0"],
    ["-i", "br0", "-w", "x.pcap", "--duration", "soon"], ["-i", "br0", "-w", "x.pcap", "--snaplen", "0"],
    ["-i", "br0", "-w", "x.pcap", "--idle-close", "10"], ["-i", "br0", "-w", "x.pcap", "--netflow", "r.jsonl.gz"],
    ["-i", "br0", "-w", "x.pcap", "--netflow", "x.pcap"],
    ["-i", "br0", "-w", "x.pcap", "--bucket-ms", "50"],  # bucket options without --netflow
    ["-i", "br0", "-w", "x.pcap", "--decode", "extended"], ["-i", "br0", "-w", "x.pcap", "--host-ip", "10.0.0.1"],
    ["-i", "br0", "-w", "x.pcap", "--netflow", "r.jsonl", "--bucket-ms", "0"],
    ["-i", "br0", "-w", "x.pcap", "--netflow", "r.jsonl", "--tunnels", "inner"],  # (needs --decode extended)
    ["-i", "br0", "-w", "x.pcap", "--netflow", "r.jsonl", "--on-corrupt", "stop"],  # not a capture option
])
def test_capture_usage_errors(cli, fake_tcpdump, tmp_path: Path, args: list[str]) -> None:
    record = fake_tcpdump()
    proc = cli("capture", *args, env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 2 and b"usage:" in proc.stderr and b"Traceback" not in proc.stderr
    assert not record.exists()  # tcpdump was not started


# -- the real tcpdump -----------------------------------------------------------------------


def _real_tcpdump() -> str:
    path = shutil.which("tcpdump")
    if path is None:
        unavailable("tcpdump is not installed")
    require_root("capturing with the real tcpdump")
    return path


def test_real_tcpdump_missing_interface(cli, tmp_path: Path) -> None:
    _real_tcpdump()
    with pytest.raises(fastpcap.InterfaceNotFoundError) as caught:
        fastpcap.run_capture("fpnosuch0", tmp_path / "x.pcap")
    assert "tcpdump said: tcpdump: fpnosuch0: No such device exists" in str(caught.value)
    line = one_error_line(cli("capture", "-i", "fpnosuch0", "-w", tmp_path / "x.pcap"))
    assert line.startswith("fastpcap: error: interface fpnosuch0 not found; tcpdump said: tcpdump: fpnosuch0: ")


def test_real_tcpdump_without_the_right_to_capture(tmp_path: Path) -> None:
    """Root without CAP_NET_RAW (dropped from the bounding set) may not open the capture."""
    _real_tcpdump()
    if shutil.which("setpriv") is None:
        unavailable("setpriv (util-linux) is not installed")
    code = ("import fastpcap\n"
            "try:\n"
            f"    fastpcap.run_capture('lo', {str(tmp_path / 'x.pcap')!r})\n"
            "except fastpcap.CaptureStartError as e:\n"
            "    print(type(e).__name__); print(e)\n")
    proc = subprocess.run(["setpriv", "--bounding-set=-net_raw,-net_admin", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60)
    kind, message = proc.stdout.splitlines()
    assert kind == "CapturePermissionError", proc.stdout + proc.stderr
    assert message.startswith("no permission to capture on lo: run as root, or give tcpdump the CAP_NET_RAW "
                              "capability; tcpdump said: tcpdump: lo: You don't have permission")
