"""The reference collector's capture lifecycle: tcpdump started for an episode, stopped with SIGINT.

:func:`run_capture` starts ``tcpdump -i BRIDGE -U -s SNAPLEN -w FILE [BPF]`` (``-U``: every
packet is written as it comes, so the file can be read while it grows) and returns a
:class:`CaptureHandle`; :func:`stop_capture` sends SIGINT (tcpdump writes what it holds and
exits 0), waits, kills after a timeout and returns the exit status.  Both keep the
reference's signatures, arguments and behaviour (docs/data-model.md, "The capture
lifecycle"), with two additions: :func:`run_capture` returns only once tcpdump is listening
(the reference returned at once, so the first packets of an episode could be missed), and a
tcpdump that cannot start raises a one-line :class:`~fastpcap.errors.CaptureStartError`
carrying tcpdump's own words, instead of leaving an exit status for :func:`stop_capture`.
This module imports nothing heavy.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from .errors import (
    CapturePermissionError,
    CaptureStartError,
    InterfaceNotFoundError,
    PrivilegeDropError,
    TcpdumpNotFoundError,
)

log = logging.getLogger("fastpcap.lifecycle")

PathLike = Union[str, "os.PathLike[str]"]
#: The program run (looked up on ``PATH``, as the reference does).
TCPDUMP = "tcpdump"
#: What tcpdump writes on stderr once the interface is open and the file created.
_LISTENING = b"listening on "


@dataclass
class CaptureHandle:
    """A running capture: stop it with :func:`stop_capture`, or use it as a context manager
    (``with run_capture(...) as handle:`` stops it on leaving).

    ``proc`` is tcpdump's ``subprocess.Popen`` (its stderr a pipe, as the reference's, for
    the caller to read and close);
    ``started_mono_ns`` the ``time.monotonic_ns()`` right after it was started;
    ``startup_message`` what tcpdump wrote on stderr while starting (its "listening on"
    line), read before :func:`run_capture` returned; the rest stays in ``proc.stderr``.
    """

    proc: subprocess.Popen[bytes]
    pcap_path: Path
    bridge: str
    started_mono_ns: int
    startup_message: str = field(default="", compare=False)

    def __enter__(self) -> CaptureHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_capture(self)


def tcpdump_args(bridge: str, pcap_path: PathLike, *, snaplen: int = 262144, bpf: str | None = None,
                 immediate: bool = False) -> list[str]:
    """The command :func:`run_capture` runs: the reference's, plus ``--immediate-mode`` when
    asked (packets handed to tcpdump as they arrive instead of a kernel buffer block at a time,
    about a second apart: what live rows want)."""
    args = [TCPDUMP, "-i", bridge, "-U", "-s", str(snaplen), "-w", str(pcap_path)]
    if immediate:
        args.append("--immediate-mode")
    if bpf:
        args.append(bpf)
    return args


def run_capture(bridge: str, pcap_path: PathLike, *, snaplen: int = 262144, bpf: str | None = None,
                immediate: bool = False, start_timeout_s: float = 10.0) -> CaptureHandle:
    """Start a tcpdump capture on ``bridge`` into ``pcap_path`` (its parent folders are
    created); returns a handle the caller stops with :func:`stop_capture`.

    Returns once tcpdump says it is listening.  Raises :class:`~fastpcap.errors.CaptureStartError`
    (one line, with tcpdump's own message) if it cannot start: ``TcpdumpNotFoundError`` (also a
    ``FileNotFoundError``) without tcpdump, ``InterfaceNotFoundError``, ``CapturePermissionError``
    (not root and no ``CAP_NET_RAW``, or the file cannot be created), ``PrivilegeDropError``
    (tcpdump run as root switches to its own user before creating the file, and that user may
    not write the folder), or the base class for anything else (a bad filter, a timeout).
    ``immediate``: see :func:`tcpdump_args`.  Privileges are not raised here.
    """
    pcap_path = Path(pcap_path)
    pcap_path.parent.mkdir(parents=True, exist_ok=True)
    args = tcpdump_args(bridge, pcap_path, snaplen=snaplen, bpf=bpf, immediate=immediate)
    log.info("starting pcap: %s", " ".join(args))
    try:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise TcpdumpNotFoundError(
            f"{TCPDUMP} not found on PATH; install it (apt-get install tcpdump) to capture on {bridge}",
            interface=bridge, pcap_path=str(pcap_path)) from None
    except PermissionError as exc:
        raise CaptureStartError(f"cannot run {TCPDUMP}: {exc.strerror or exc}", interface=bridge,
                                pcap_path=str(pcap_path)) from None
    handle = CaptureHandle(proc=proc, pcap_path=pcap_path, bridge=bridge, started_mono_ns=time.monotonic_ns())
    try:
        handle.startup_message = _wait_until_listening(handle, start_timeout_s)
    except BaseException:
        stop_capture(handle, timeout_s=2.0)  # never leave a tcpdump behind (Ctrl-C included)
        if proc.stderr is not None:
            proc.stderr.close()
        raise
    return handle


def stop_capture(handle: CaptureHandle, *, timeout_s: float = 5.0) -> int:
    """SIGINT tcpdump (it writes what it holds and exits 0), wait up to ``timeout_s``, kill it
    if it is still running; returns its exit status (negative: the signal that ended it)."""
    proc = handle.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
    return proc.returncode


def _wait_until_listening(handle: CaptureHandle, timeout_s: float) -> str:
    """Read tcpdump's stderr until it says it is listening (returns what it said), or raise
    the error its exit means."""
    proc = handle.proc
    assert proc.stderr is not None
    fd = proc.stderr.fileno()  # read directly: proc.stderr keeps what comes after, unbuffered
    said = b""
    deadline = time.monotonic() + timeout_s
    while True:
        line_end = said.find(b"\n", said.find(_LISTENING))
        if _LISTENING in said and line_end >= 0:
            return said.decode(errors="replace")
        remaining = deadline - time.monotonic()
        ready = select.select([fd], [], [], max(remaining, 0))[0] if remaining > 0 else []
        if not ready:
            raise CaptureStartError(
                f"{TCPDUMP} did not start listening on {handle.bridge} within {timeout_s:g} s"
                + (f"; tcpdump said: {one_line(said)}" if said.strip() else ""),
                interface=handle.bridge, pcap_path=str(handle.pcap_path), tcpdump_message=one_line(said))
        chunk = os.read(fd, 4096)
        if not chunk:  # tcpdump is exiting: it failed
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
            raise start_error(handle.bridge, handle.pcap_path, said.decode(errors="replace"), proc.returncode)
        said += chunk


def one_line(text: str | bytes) -> str:
    """tcpdump's stderr as one line (its lines joined by spaces)."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def start_error(bridge: str, pcap_path: PathLike, stderr: str, returncode: int | None) -> CaptureStartError:
    """The error for a tcpdump that exited while starting, from what it wrote on stderr."""
    said = one_line(stderr)
    path = os.fspath(pcap_path)
    tail = f"; tcpdump said: {said}" if said else f"; tcpdump exited {returncode} without a word"

    def error(kind: type[CaptureStartError], message: str) -> CaptureStartError:
        return kind(message + tail, interface=bridge, pcap_path=path, tcpdump_message=said, returncode=returncode)

    if f"{path}: " in said:  # libpcap's "FILE: strerror" when the file cannot be created
        if "Permission denied" in said and _is_root():
            folder = os.path.dirname(os.path.abspath(path))
            return error(PrivilegeDropError, (
                f"tcpdump cannot create {path}: started as root, it switches to its own user (its -Z default, "
                f"usually 'tcpdump') before creating the file, and that user may not write to {folder}; make the "
                f"folder writable for it (chown tcpdump {folder}) or capture into another folder"))
        if "Permission denied" in said:
            return error(CapturePermissionError, f"tcpdump cannot create {path}: permission denied")
        return error(CaptureStartError, f"tcpdump cannot create {path}")
    if "No such device" in said or "no such device" in said:
        return error(InterfaceNotFoundError, f"interface {bridge} not found")
    if "permission" in said.lower() or "Operation not permitted" in said:
        return error(CapturePermissionError, (
            f"no permission to capture on {bridge}: run as root, or give tcpdump the CAP_NET_RAW capability"))
    return error(CaptureStartError, f"tcpdump exited {returncode} before capturing on {bridge}")


def _is_root() -> bool:
    return hasattr(os, "geteuid") and (os.geteuid() == 0 or os.getuid() == 0)
