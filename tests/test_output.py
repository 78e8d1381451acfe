"""Nothing a user points ``-o`` at is destroyed: the input, devices, FIFOs, sockets, links.

Devices are private nodes made with ``mknod`` in a temporary folder (never /dev/null or
/dev/full themselves); a full disk is a small tmpfs mounted for the test.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fastpcap

from conftest import cli_env, episode, leftovers, one_error_line, require_root
from oracle import oracle

REFUSED = "it is the capture being read (fastpcap never overwrites its input)"


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "c.pcap"
    path.write_bytes(episode(200))
    return path


def rows_of(path: Path) -> bytes:
    return oracle(path.read_bytes()).jsonl


def mknod(path: Path, kind: int, major: int, minor: int) -> Path:
    require_root("making a device node with mknod")
    os.mknod(path, kind | 0o666, os.makedev(major, minor))
    return path


# -- the input is never the output ----------------------------------------------------


@pytest.mark.parametrize("append", [[], ["--append"]], ids=["replace", "append"])
@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink", "relative_link"])
def test_output_that_is_the_input_is_refused(cli, capture: Path, tmp_path: Path, spelling: str,
                                             append: list[str]) -> None:
    before = capture.read_bytes()
    if spelling == "same":
        out = capture
    elif spelling == "dot":
        out = Path(f"{tmp_path}/./sub/../{capture.name}")
        (tmp_path / "sub").mkdir()
    elif spelling == "symlink":
        out = tmp_path / "link.jsonl"
        out.symlink_to(capture)
    elif spelling == "hardlink":
        out = tmp_path / "hard.jsonl"
        os.link(capture, out)
    else:
        (tmp_path / "d").mkdir()
        out = tmp_path / "d" / "rel.jsonl"
        out.symlink_to(Path("..") / capture.name)
    line = one_error_line(cli("bucketize", capture, "-o", out, *append))
    assert line == f"fastpcap: error: {out}: cannot write: {REFUSED}"
    assert capture.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_stdout_that_is_the_input_is_refused(backend: str, capture: Path) -> None:
    before = capture.read_bytes()
    with open(capture, "ab") as stdout:  # `fastpcap bucketize c.pcap >> c.pcap`
        proc = subprocess.run([sys.executable, "-m", "fastpcap", "bucketize", str(capture)], stdout=stdout,
                              stderr=subprocess.PIPE, env=cli_env(backend), timeout=60)
    line = one_error_line(proc)
    assert line == f"fastpcap: error: <stdout>: cannot write: {REFUSED}"
    assert capture.read_bytes() == before


def test_stdin_that_is_the_output_is_refused(backend: str, capture: Path) -> None:
    before = capture.read_bytes()
    with open(capture, "rb") as stdin:  # `fastpcap bucketize - -o c.pcap --append < c.pcap`
        proc = subprocess.run([sys.executable, "-m", "fastpcap", "bucketize", "-", "-o", str(capture),
                               "--append"], stdin=stdin, capture_output=True, env=cli_env(backend), timeout=60)
    assert one_error_line(proc) == f"fastpcap: error: {capture}: cannot write: {REFUSED}"
    assert capture.read_bytes() == before


def test_api_refuses_the_input_as_output(capture: Path) -> None:
    before = capture.read_bytes()
    for call in (lambda: fastpcap.bucketize(capture, capture),
                 lambda: fastpcap.write_jsonl(capture, capture),
                 lambda: fastpcap.write_jsonl(str(capture), capture, append=True)):
        with pytest.raises(OSError, match="capture being read") as info:
            call()
        assert info.value.filename == str(capture)
    assert capture.read_bytes() == before


# -- written through: devices, FIFOs, sockets, descriptors ----------------------------


@pytest.mark.parametrize("append", [[], ["--append"]], ids=["replace", "append"])
def test_character_device_is_written_through(cli, capture: Path, tmp_path: Path, append: list[str]) -> None:
    null = mknod(tmp_path / "null", stat.S_IFCHR, 1, 3)  # what /dev/null is
    proc = cli("bucketize", capture, "-o", null, *append)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(null.stat().st_mode) and null.stat().st_rdev == os.makedev(1, 3)
    assert sorted(os.listdir(tmp_path)) == ["c.pcap", "null"]


def test_full_device_is_an_error_and_stays_a_device(cli, capture: Path, tmp_path: Path) -> None:
    full = mknod(tmp_path / "full", stat.S_IFCHR, 1, 7)  # what /dev/full is
    line = one_error_line(cli("bucketize", capture, "-o", full))
    assert line == f"fastpcap: error: {full}: cannot write: No space left on device"
    assert stat.S_ISCHR(full.stat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["c.pcap", "full"]


def test_info_to_a_full_device(backend: str, capture: Path, tmp_path: Path) -> None:
    full = mknod(tmp_path / "full", stat.S_IFCHR, 1, 7)
    with open(full, "wb") as stdout:
        proc = subprocess.run([sys.executable, "-m", "fastpcap", "info", str(capture)], stdout=stdout,
                              stderr=subprocess.PIPE, env=cli_env(backend), timeout=60)
    assert one_error_line(proc) == "fastpcap: error: <stdout>: cannot write: No space left on device"


def test_block_device_is_refused(cli, capture: Path, tmp_path: Path) -> None:
    disk = mknod(tmp_path / "disk", stat.S_IFBLK, 7, 250)  # a loop device slot, never opened
    line = one_error_line(cli("bucketize", capture, "-o", disk))
    assert line.startswith(f"fastpcap: error: {disk}: cannot write: is a block device")
    assert stat.S_ISBLK(disk.stat().st_mode)


def test_directory_is_refused(cli, capture: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    assert one_error_line(cli("bucketize", capture, "-o", folder)) == \
        f"fastpcap: error: {folder}: cannot write: Is a directory"
    assert folder.is_dir() and list(folder.iterdir()) == []


@pytest.mark.parametrize("append", [[], ["--append"]], ids=["replace", "append"])
def test_read_only_output_is_refused(backend: str, capture: Path, tmp_path: Path, append: list[str]) -> None:
    """A 0444 OUT is refused where the shell's ``>`` would refuse it.  Root may write any
    file (so may its shell), so as root the run drops CAP_DAC_OVERRIDE with setpriv, the way
    an ordinary user runs."""
    out = tmp_path / "ro.jsonl"
    out.write_bytes(b"kept\n")
    out.chmod(0o444)
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
        shell = subprocess.run([*prefix, "sh", "-c", f"echo x > '{out}'"], capture_output=True)
        assert shell.returncode != 0, "the shell could write the read-only file: the check proves nothing"
    proc = subprocess.run([*prefix, sys.executable, "-m", "fastpcap", "bucketize", capture, "-o", out, *append],
                          capture_output=True, env=cli_env(backend), timeout=120)
    assert one_error_line(proc) == f"fastpcap: error: {out}: cannot write: Permission denied"
    assert out.read_bytes() == b"kept\n" and stat.S_IMODE(out.stat().st_mode) == 0o444
    assert leftovers(tmp_path) == []


@contextlib.contextmanager
def draining(open_reader) -> Iterator[list[bytes]]:  # type: ignore[no-untyped-def]
    """Read everything from what ``open_reader()`` returns, in a thread."""
    got: list[bytes] = []

    def drain() -> None:
        with open_reader() as reader:
            while chunk := reader.read(65536):
                got.append(chunk)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        thread.join(timeout=60)
        assert not thread.is_alive()


@pytest.mark.parametrize("append", [[], ["--append"]], ids=["replace", "append"])
def test_fifo_is_written_through_to_its_reader(cli, capture: Path, tmp_path: Path, append: list[str]) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    with draining(lambda: open(fifo, "rb")) as got:
        proc = cli("bucketize", capture, "-o", fifo, *append)
    assert proc.returncode == 0, proc.stderr
    assert b"".join(got) == rows_of(capture)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["c.pcap", "rows.fifo"]


def test_unix_socket_is_written_through(cli, capture: Path, tmp_path: Path) -> None:
    path = tmp_path / "rows.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def accept():  # type: ignore[no-untyped-def]
        conn, _ = server.accept()
        with conn:  # the file keeps the connection open until it is closed itself
            return conn.makefile("rb")

    with draining(accept) as got:
        proc = cli("bucketize", capture, "-o", path)
    server.close()
    assert proc.returncode == 0, proc.stderr
    assert b"".join(got) == rows_of(capture)
    assert stat.S_ISSOCK(path.stat().st_mode)


def test_dev_stdout_is_the_standard_output(backend: str, capture: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "fastpcap", "bucketize", str(capture), "-o", "/dev/stdout"]
    proc = subprocess.run(cmd, capture_output=True, env=cli_env(backend), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == rows_of(capture)
    target = tmp_path / "redirected.jsonl"  # `fastpcap ... -o /dev/stdout >> file`
    target.write_bytes(b"before\n")
    with open(target, "ab") as stdout:
        subprocess.run(cmd, stdout=stdout, env=cli_env(backend), timeout=60, check=True)
    assert target.read_bytes() == b"before\n" + rows_of(capture)


# -- symlinks to regular files --------------------------------------------------------


@pytest.mark.parametrize("append", [False, True], ids=["replace", "append"])
def test_symlink_kept_and_its_target_gets_the_rows(cli, capture: Path, tmp_path: Path, append: bool) -> None:
    target = tmp_path / "real" / "rows.jsonl"
    target.parent.mkdir()
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    middle = tmp_path / "middle.jsonl"
    middle.symlink_to(target)
    link = tmp_path / "link.jsonl"
    link.symlink_to(middle)  # a chain of two links
    cli("bucketize", capture, "-o", link, *(["--append"] if append else []), check=True)
    assert link.is_symlink() and middle.is_symlink()
    assert os.readlink(link) == str(middle) and os.readlink(middle) == str(target)
    assert target.read_bytes() == (b"old\n" if append else b"") + rows_of(capture)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == [] and leftovers(target.parent) == []


def test_dangling_symlink_creates_its_target(cli, capture: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    target = tmp_path / "new" / "rows.jsonl"
    link.symlink_to(target)
    cli("bucketize", capture, "-o", link, check=True)
    assert link.is_symlink() and target.read_bytes() == rows_of(capture)


# -- a full disk -----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: room for a little, not for the rows of a large capture."""
    require_root("mounting a small tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def big_capture(tmp_path: Path) -> Path:
    path = tmp_path / "big.pcap"
    path.write_bytes(episode(4000))  # about 300 rows, ~130 KB of JSONL
    return path


def test_append_on_a_full_disk_truncates_back(cli, tmp_path: Path, small_disk: Path) -> None:
    out = small_disk / "rows.jsonl"
    out.write_bytes(b"kept\n" * 5000)  # 25 KB: the disk fills part-way through the rows
    line = one_error_line(cli("bucketize", big_capture(tmp_path), "-o", out, "--append"))
    assert line == f"fastpcap: error: {out}: cannot write: No space left on device"
    assert out.read_bytes() == b"kept\n" * 5000


def test_replace_on_a_full_disk_keeps_the_old_file(cli, tmp_path: Path, small_disk: Path) -> None:
    out = small_disk / "rows.jsonl"
    out.write_bytes(b"kept\n")
    line = one_error_line(cli("bucketize", big_capture(tmp_path), "-o", out))
    assert line == f"fastpcap: error: {out}: cannot write: No space left on device"  # OUT, not a temporary
    assert out.read_bytes() == b"kept\n"
    assert sorted(os.listdir(small_disk)) == ["rows.jsonl"]


def test_dropin_append_on_a_full_disk_truncates_back(tmp_path: Path, small_disk: Path) -> None:
    out = small_disk / "netflow.jsonl"
    out.write_bytes(b"kept\n" * 5000)
    with pytest.raises(OSError, match="No space left on device"):
        fastpcap.bucketize(big_capture(tmp_path), out)
    assert out.read_bytes() == b"kept\n" * 5000


def test_append_that_fails_after_the_last_write_truncates_back(capture: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure in the final flush to disk (what ENOSPC on NFS looks like) rolls back too."""
    out = tmp_path / "rows.jsonl"
    out.write_bytes(b"kept\n")

    def fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left on device") as info:
        fastpcap.write_jsonl(capture, out, append=True)
    assert info.value.filename == str(out)
    assert out.read_bytes() == b"kept\n"



@pytest.mark.once
@pytest.mark.parametrize("append", [False, True], ids=["replace", "append"])
@pytest.mark.parametrize("kind", ["gzip", "zstd", "xz", "bzip2", "lz4"])
def test_a_failed_compressed_output_writes_nothing_after_it(tmp_path: Path, kind: str, append: bool) -> None:
    """A run that fails while it writes a compressed output (a corrupt capture in a batch)
    closes its compressor at once, writing nothing: closed later (when it is collected), it
    wrote its end to a descriptor number by then another file's -- in a batch, the next
    capture's output, which then began with the failed capture's rows ("Not a gzipped file")."""
    from fastpcap._output import SUFFIX_OF, open_output

    out = tmp_path / f"rows.jsonl{SUFFIX_OF[kind]}"
    if append:
        out.write_bytes(b"kept")
    probe = os.open(os.devnull, os.O_RDONLY)  # the number the output's descriptor will get
    os.close(probe)
    try:
        with open_output(out, append=append) as writer:
            writer.write(b'{"bucket": 1, "pkts_in": 3}\n' * 10_000)
            raise RuntimeError("the capture is corrupt")
    except RuntimeError:
        pass
    assert (out.read_bytes() == b"kept") if append else not out.exists()
    assert leftovers(tmp_path) == []
    following = tmp_path / "next.jsonl"
    fd = os.open(following, os.O_WRONLY | os.O_CREAT, 0o600)  # the next output, say
    try:
        assert fd == probe
        del writer  # the last reference to the compressor
        gc.collect()
    finally:
        os.close(fd)
    assert following.read_bytes() == b""


# -- closed standard streams, signals ---------------------------------------------------


def run_with_closed(backend: str, fd: int, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with descriptor ``fd`` (1 or 2) closed, as `>&-` or `2>&-` would."""
    other = subprocess.PIPE
    return subprocess.run([sys.executable, "-m", "fastpcap", *map(str, args)],
                          stdout=None if fd == 1 else other, stderr=None if fd == 2 else other,
                          pass_fds=(), close_fds=True, env=cli_env(backend), timeout=60,
                          preexec_fn=lambda: os.close(fd))


def test_closed_stdout(backend: str, capture: Path, tmp_path: Path) -> None:
    proc = run_with_closed(backend, 1, "bucketize", capture)
    assert one_error_line(proc) == "fastpcap: error: <stdout>: cannot write: stdout is closed"
    out = tmp_path / "rows.jsonl"  # with a file output, a closed stdout does not matter
    proc = run_with_closed(backend, 1, "bucketize", capture, "-o", out)
    assert proc.returncode == 0 and proc.stderr == b""
    assert out.read_bytes() == rows_of(capture)


def test_closed_stderr(backend: str, capture: Path, tmp_path: Path) -> None:
    proc = run_with_closed(backend, 2, "bucketize", capture)
    assert proc.returncode == 0 and proc.stdout == rows_of(capture)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    out = tmp_path / "rows.jsonl"
    assert run_with_closed(backend, 2, "bucketize", bad, "-o", out).returncode == 2
    assert not out.exists() and leftovers(tmp_path) == []


def test_ctrl_c_at_any_moment_of_start_up(backend: str, capture: Path, tmp_path: Path) -> None:
    """From the moment the command line's main() runs (before it, the interpreter is starting
    up and Python's own handling applies), Ctrl-C exits 130 with one line, or the run
    completes: while numpy and the core load, and while the capture is read."""
    out = tmp_path / "rows.jsonl"
    for delay in (0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3):
        out.write_bytes(b"previous\n")
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "fastpcap", "bucketize", str(capture),
                                 "-o", str(out)], stderr=subprocess.PIPE, env=cli_env(backend))
        assert proc.stderr is not None
        for line in proc.stderr:  # -X importtime reports each import as it ends
            if line.rstrip().endswith(b"| fastpcap.options"):  # main() is running
                break
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        err = b"".join(line for line in proc.stderr if not line.startswith(b"import time:"))
        proc.wait(timeout=60)
        proc.stderr.close()
        assert b"Traceback" not in err, (delay, err.decode())
        if out.read_bytes() == rows_of(capture):  # it finished first; a signal that arrives
            assert proc.returncode in (0, -signal.SIGINT)  # as Python exits ends it quietly
            continue
        assert proc.returncode == 130, (delay, proc.returncode, err)
        assert err.decode().startswith("fastpcap: error: interrupted") and err.count(b"\n") == 1, err
        assert out.read_bytes() == b"previous\n"
        assert leftovers(tmp_path) == []


_INTERRUPTED_INSIDE = """\
import sys, weakref
from fastpcap import cli

def build_parser():
    if sys.argv[1] == "exec":  # Ctrl-C while a dataclass builds its methods with exec()
        exec("raise KeyboardInterrupt")
    class Locked:  # Ctrl-C inside a weakref callback (the import system's module locks)
        pass
    def callback(ref):
        raise KeyboardInterrupt
    lock = Locked()
    ref = weakref.ref(lock, callback)
    del lock
    return real()

real, cli.build_parser = cli.build_parser, build_parser
raise SystemExit(cli.main(sys.argv[2:]))
"""


@pytest.mark.once
@pytest.mark.parametrize("where", ["exec", "callback"])
def test_ctrl_c_inside_exec_or_a_callback(where: str, capture: Path, tmp_path: Path) -> None:
    """The two places a Ctrl-C at a random moment of start-up can land that Python treats
    specially, made deterministic: inside code run by exec() (CPython then kills the process
    with SIGINT at exit, whatever status we return, under `python -m`) and inside a weakref
    callback (where Python prints "Exception ignored ... Traceback" and goes on)."""
    (tmp_path / "interrupted_inside.py").write_text(_INTERRUPTED_INSIDE)
    out = tmp_path / "rows.jsonl"
    done = subprocess.run([sys.executable, "-m", "interrupted_inside", where, "bucketize", str(capture),
                           "-o", str(out)], capture_output=True, cwd=tmp_path, env=cli_env("cython"))
    if where == "exec":
        assert (done.returncode, done.stderr) == (130, b"fastpcap: error: interrupted\n")
        assert not out.exists()
    else:  # the interrupt cannot be raised there: the run completes, quietly
        assert (done.returncode, done.stderr) == (0, b"")
        assert out.read_bytes() == rows_of(capture)
