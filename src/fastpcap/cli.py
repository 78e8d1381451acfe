"""The command line: ``fastpcap bucketize INPUT -o OUT`` (also ``python -m fastpcap``).

Exit status: 0 on success; 2 for a capture that cannot be read, an output that cannot be
written, or a usage error, with one line on stderr and no traceback; 130 when interrupted
(143 on SIGTERM).  A failed or interrupted run leaves an existing output file untouched.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack

from . import __version__
from .api import write_jsonl
from .buckets import MAX_BUCKET_MS, gap_cap_ns, parse_ipv4
from .errors import CaptureError, FastpcapWarning

PROG = "fastpcap"


class _Terminated(BaseException):
    """SIGTERM, raised so that outputs are cleaned up like on Ctrl-C."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _bucket_ms(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_BUCKET_MS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BUCKET_MS}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _max_gap(text: str) -> str | None:
    try:
        gap_cap_ns(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds or 'none', not {text!r}") from None
    return None if text.strip().lower() == "none" else text


def _host_ip(text: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 or IPv6 address: {text!r}") from None
    return text


def _ipv4(text: str) -> str:
    try:
        parse_ipv4(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Turn packet captures into time-bucketed traffic features.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bucketize = commands.add_parser(
        "bucketize",
        help="write one JSONL row per time bucket of a capture",
        description=(
            "Read a capture (classic pcap or pcapng, plain or compressed with gzip, zstd, xz, "
            "bzip2 or lz4) and write one JSON row per bucket: packets and bytes in and out, "
            "SYN/FIN/RST, TCP/UDP, DNS queries, distinct destination IPs and ports, new TCP "
            "flows. On the captures the reference collector reads, the rows are "
            "byte-identical to its rows."
        ),
        epilog=(
            "Exit status: 0 on success; 2 if the capture cannot be read or the output cannot "
            "be written (one line on stderr names the file, the byte offset and the problem); "
            "130 if interrupted. A failed run leaves an existing OUT untouched."
        ),
    )
    bucketize.add_argument("input", metavar="INPUT",
                           help="the capture to read; '-' reads it from stdin")
    bucketize.add_argument(
        "-o", "--output", metavar="OUT", default="-",
        help="where to write the rows; '-' (the default) is stdout. Written to a temporary "
             "file and renamed over OUT at the end, so OUT is never half-written",
    )
    bucketize.add_argument(
        "--bucket-ms", type=_bucket_ms, default=100, metavar="N",
        help="bucket width in milliseconds (default: 100)",
    )
    bucketize.add_argument(
        "--bridge-ip", type=_ipv4, default="10.200.0.1", metavar="IP",
        help="IPv4 address of the host side of the bridge: packets from it count as 'out', "
             "everything else as 'in' (default: 10.200.0.1)",
    )
    bucketize.add_argument(
        "--t-mono-origin-ns", type=_integer, default=0, metavar="N",
        help="subtracted from each bucket's start to give t_mono_ns (default: 0)",
    )
    bucketize.add_argument(
        "--max-gap", type=_max_gap, default="3600", metavar="SECONDS|none",
        help="the gap cap: a run of empty buckets longer than this many seconds between two "
             "packets is not written (one warning says how many were cut); 'none' writes "
             "every empty bucket, as the reference does (default: 3600)",
    )
    bucketize.add_argument(
        "--decode", choices=("reference", "extended"), default="reference",
        help="'reference' (the default) decodes exactly what the reference collector does; "
             "'extended' also strips VLAN/QinQ tags, decodes IPv6 and its extension headers, "
             "gives non-first fragments no ports, and checks the IPv4 version: it changes rows "
             "of captures the reference reads (docs/data-model.md)",
    )
    bucketize.add_argument(
        "--host-ip", type=_host_ip, action="append", dest="host_ips", metavar="IP",
        help="an address (IPv4, or IPv6 with --decode extended) whose packets count as 'out'; "
             "repeat it for several (default: --bridge-ip)",
    )
    bucketize.add_argument(
        "--size", choices=("captured", "wire"), default="captured",
        help="count bytes as captured (the default, as the reference) or as on the wire "
             "(the records' original lengths)",
    )
    bucketize.add_argument(
        "--append", action="store_true",
        help="append to OUT instead of replacing it (what the drop-in bucketize() does); a "
             "failed run truncates OUT back to its previous length",
    )
    bucketize.add_argument(
        "--jobs", type=_positive_int, default=None, metavar="N",
        help="processes that share a large capture, each bucketizing a byte range of it "
             "(default: the number of CPUs; 1 means one process). The rows are the same "
             "whatever N; captures under 64 MiB, pcapng, compressed captures and stdin use one "
             "process",
    )
    bucketize.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bar (it is shown on stderr only when stderr is a terminal)",
    )
    info = commands.add_parser(
        "info",
        help="what captures hold, like capinfos",
        description=(
            "For each capture: container and byte order, compression, link types, snap length, "
            "packets, bytes, first and last timestamp, duration, packet rate, out-of-order "
            "packets, protocol mix, and a partial tail or corrupt record if there is one."
        ),
        epilog="Exit status: 0, or 2 if any file could not be read to its end.",
    )
    info.add_argument("inputs", metavar="FILE", nargs="+", help="captures to describe")
    info.add_argument("--json", action="store_true",
                      help="one JSON object per line per file, for machines")
    return parser


def _info(args: argparse.Namespace) -> int:
    from .info import capture_info, to_json, to_text

    status = 0
    for i, path in enumerate(args.inputs):
        try:
            summary = capture_info(path)
        except CaptureError as exc:
            _error(str(exc))
            status = 2
            continue
        if summary["error"]:
            status = 2
        if args.json:
            print(to_json(summary), flush=True)
        else:
            print(("\n" if i else "") + to_text(summary), flush=True)
    return status


def _progress_bar(path: str, quiet: bool, stack: ExitStack) -> Callable[[int], object] | None:
    if quiet or path == "-" or not sys.stderr.isatty():
        return None
    try:
        total = os.path.getsize(path)
    except OSError:
        return None
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: worker processes are forked later
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        size = os.terminal_size((0, 0))
    # A terminal that reports no size (a serial console, a bare pty) would get no bar at all.
    shape = {} if size.columns and size.lines else {"ncols": 80, "nrows": 24}
    bar = stack.enter_context(tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                   desc=os.path.basename(path), file=sys.stderr, leave=False,
                                   **shape))
    return bar.update


def _bucketize(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        progress = _progress_bar(args.input, args.quiet, stack)
        source = sys.stdin.buffer if args.input == "-" else args.input
        write_jsonl(
            source, args.output, append=args.append, bucket_ms=args.bucket_ms,
            bridge_ip=args.bridge_ip, t_mono_origin_ns=args.t_mono_origin_ns,
            max_gap_s=args.max_gap, jobs=args.jobs, progress=progress, decode=args.decode,
            host_ips=args.host_ips, size=args.size,
        )
    return 0


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FastpcapWarning)
            try:
                status = _info(args) if args.command == "info" else _bucketize(args)
            finally:
                for w in caught:
                    if issubclass(w.category, FastpcapWarning):
                        print(f"{PROG}: warning: {w.message}", file=sys.stderr)
                    else:
                        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return status
    except CaptureError as exc:
        _error(str(exc))
        return 2
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            # The reader of stdout went away (`| head`): not an error worth a traceback.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1
        target = exc.filename if exc.filename else args.output
        _error(f"{target}: cannot write: {exc.strerror or exc}")
        return 2
    except KeyboardInterrupt:
        _error("interrupted; the output was left as it was")
        return 130
    except _Terminated:
        _error("terminated; the output was left as it was")
        return 143
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
