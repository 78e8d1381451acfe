"""What the command-line modules share (``cli`` and ``cli_live``): the program's name, the
signals that stop a run, argument types, and the one-line messages on stdout and stderr.

Like ``cli``, it imports only modules the interpreter has loaded before running our code.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from .options import BucketSpec

PROG = "fastpcap"

#: The command-line flag of each bucket option, for error messages.
FLAGS = {"bucket_ms": "--bucket-ms", "bridge_ip": "--bridge-ip", "t_mono_origin_ns": "--t-mono-origin-ns",
         "max_gap_s": "--max-gap", "host_ips": "--host-ip", "size": "--size", "decode": "--decode",
         "on_corrupt": "--on-corrupt", "tunnels": "--tunnels"}
#: What --tunnels's choices do, for the commands' help.
TUNNELS_HELP = (
    "'outer' (the default) counts a tunnelled packet as its outer packet; 'inner' (with "
    "--decode extended) walks through GRE (ERSPAN, PPTP, Aruba), VXLAN, GENEVE, GTP-U, TZSP, IP-in-IP "
    "and 6in4 and counts the innermost IP packet: its addresses, protocol, ports and flags "
    "(docs/data-model.md, \"Tunnels\")")
#: What --on-corrupt's choices do, for the commands' help.
ON_CORRUPT_HELP = (
    "what a corrupt record does: 'error' (the default) fails the run; 'stop' keeps everything "
    "before it and ends there, with a warning naming its offset; 'resync' skips to the next "
    "plausible record and reads on, with a warning per skipped region (its offset and size) "
    "and their total at the end (docs/data-model.md)")


def add_bucket_arguments(parser: argparse.ArgumentParser, title: str | None = None) -> None:
    """The bucket options (all but --on-corrupt): --bucket-ms, --bridge-ip | --host-ip,
    --t-mono-origin-ns, --max-gap, --decode, --tunnels, --size; in a group ``title``, if given."""
    from .options import DECODES, SIZES, TUNNELS, BucketSpec

    defaults = BucketSpec()
    group: Any = parser.add_argument_group(title) if title else parser
    group.add_argument(
        "--bucket-ms", type=integer, default=defaults.bucket_ms, metavar="N",
        help=f"bucket width in milliseconds (default: {defaults.bucket_ms})",
    )
    hosts = group.add_mutually_exclusive_group()
    hosts.add_argument(
        "--bridge-ip", default=defaults.bridge_ip, metavar="IP",
        help="IPv4 address of the host side of the bridge: packets from it count as 'out', "
             f"everything else as 'in' (default: {defaults.bridge_ip})",
    )
    hosts.add_argument(
        "--host-ip", action="append", dest="host_ips", metavar="IP",
        help="an address (IPv4, or IPv6 with --decode extended) whose packets count as 'out', "
             "instead of --bridge-ip; repeat it for several",
    )
    group.add_argument(
        "--t-mono-origin-ns", type=integer, default=defaults.t_mono_origin_ns, metavar="N",
        help=f"subtracted from each bucket's start to give t_mono_ns (default: {defaults.t_mono_origin_ns})",
    )
    group.add_argument(
        "--max-gap", default=str(defaults.max_gap_s), metavar="SECONDS|none",
        help="the gap cap: a run of empty buckets longer than this many seconds between two "
             "packets is not written (one warning says how many were cut); 'none' writes "
             f"every empty bucket, as the reference does (default: {defaults.max_gap_s})",
    )
    group.add_argument(
        "--decode", choices=DECODES, default=defaults.decode,
        help="'reference' (the default) decodes exactly what the reference collector does; "
             "'extended' also strips VLAN/QinQ tags, decodes IPv6 and its extension headers, "
             "gives non-first fragments no ports, and checks the IPv4 version: it changes rows "
             "of captures the reference reads (docs/data-model.md)",
    )
    group.add_argument("--tunnels", choices=TUNNELS, default=defaults.tunnels, help=TUNNELS_HELP)
    group.add_argument(
        "--size", choices=SIZES, default=defaults.size,
        help="count bytes as captured (the default, as the reference) or as on the wire "
             "(the records' original lengths)",
    )


def bucket_spec(args: argparse.Namespace, parser: argparse.ArgumentParser) -> BucketSpec:
    """The bucket options of the command line, or a usage error (exit 2) naming the flag
    (--on-corrupt: its default where the command has no such flag)."""
    from .options import BucketSpec

    options: dict[str, Any] = {name: getattr(args, name if name != "max_gap_s" else "max_gap", None)
                               for name in FLAGS}
    if options["on_corrupt"] is None:
        del options["on_corrupt"]
    try:
        return BucketSpec(**options)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for name, flag in FLAGS.items():
            if message.startswith(name):
                message = flag + message[len(name):]
                break
        parser.error(message)

#: Signals that end a run like Ctrl-C: outputs cleaned up, a status of 128 + the signal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGPIPE") if hasattr(signal, name))


class Stopped(BaseException):
    """A signal that ends the run (SIGTERM, SIGHUP, SIGPIPE), raised so that outputs are
    cleaned up as on Ctrl-C; ``status`` is the exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.status = 128 + signum
        self.name = signal.Signals(signum).name


def integer(text: str) -> int:
    import argparse

    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def at_least(low: int) -> Callable[[str], int]:
    """An argument type: an integer no smaller than ``low``."""

    def check(text: str) -> int:
        import argparse

        value = integer(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return check


positive_int = at_least(1)
non_negative_int = at_least(0)


def print_line(text: str) -> None:
    if sys.stdout is None:
        raise OSError(9, "stdout is closed", "<stdout>")
    print(text, flush=True)


def load(module: str) -> Any:
    """Import a heavy module (numpy and the core) with the stopping signals held back until it
    is loaded: numpy turns a KeyboardInterrupt inside its import into an ImportError."""
    import importlib

    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks to hold them with
        return importlib.import_module(module, __package__)
    held = {signal.SIGINT, *STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        return importlib.import_module(module, __package__)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a held signal is raised now


def is_batch(args: argparse.Namespace) -> bool:
    """Whether the command line names many captures (more than one input, a folder, a glob)
    or asks for a combined table."""
    import glob

    if len(args.inputs) > 1 or args.combine is not None:
        return True
    (one,) = args.inputs
    return one != "-" and (os.path.isdir(one) or (glob.has_magic(one) and not os.path.exists(one)))


def error(message: str) -> None:
    stderr(f"{PROG}: error: {message}")


def stderr(line: str) -> None:
    if sys.stderr is None:  # started with stderr closed (`2>&-`): the status says it
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # a terminal that went away (hang-up), a closed pipe
        pass
