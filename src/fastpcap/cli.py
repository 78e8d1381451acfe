"""The command line: ``fastpcap bucketize INPUT -o OUT`` and ``fastpcap info`` (also
``python -m fastpcap``).

Exit status: 0 on success; 2 for a capture that cannot be read, an output that cannot be
written, or a usage error, with one line on stderr and no traceback; 128 + the signal when
interrupted (130 Ctrl-C, 129 hang-up, 141 broken pipe, 143 SIGTERM), with every output as
it was.  The heavy modules (numpy and the core) are imported only once the arguments are
checked, inside the handlers, so that Ctrl-C at any moment exits quietly.
"""

from __future__ import annotations

# Only modules the interpreter has loaded before running any code of ours, so that Ctrl-C
# lands inside main()'s handlers as soon as fastpcap's own code runs; the rest is imported
# there.
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from contextlib import ExitStack

    from .options import BucketSpec

PROG = "fastpcap"

#: The command-line flag of each bucket option, for error messages.
FLAGS = {"bucket_ms": "--bucket-ms", "bridge_ip": "--bridge-ip", "t_mono_origin_ns": "--t-mono-origin-ns",
         "max_gap_s": "--max-gap", "host_ips": "--host-ip", "size": "--size", "decode": "--decode"}


class Stopped(BaseException):
    """A signal that ends the run (SIGTERM, SIGHUP, SIGPIPE), raised so that outputs are
    cleaned up as on Ctrl-C; ``status`` is the exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.status = 128 + signum
        self.name = signal.Signals(signum).name


def _integer(text: str) -> int:
    import argparse

    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _positive_int(text: str) -> int:
    import argparse

    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from ._version import __version__
    from .options import DECODES, SIZES, BucketSpec

    defaults = BucketSpec()
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
            "128 + the signal if interrupted (130 for Ctrl-C). A failed run leaves an existing "
            "OUT untouched."
        ),
    )
    bucketize.set_defaults(parser=bucketize)
    bucketize.add_argument("input", metavar="INPUT",
                           help="the capture to read; '-' reads it from stdin")
    bucketize.add_argument(
        "-o", "--output", metavar="OUT", default="-",
        help="where to write the rows; '-' (the default) is stdout. A file is written to a "
             "temporary file and renamed over OUT at the end, so OUT is never half-written; a "
             "device, FIFO or socket is written through; the input itself is refused",
    )
    bucketize.add_argument(
        "--bucket-ms", type=_integer, default=defaults.bucket_ms, metavar="N",
        help=f"bucket width in milliseconds (default: {defaults.bucket_ms})",
    )
    hosts = bucketize.add_mutually_exclusive_group()
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
    bucketize.add_argument(
        "--t-mono-origin-ns", type=_integer, default=defaults.t_mono_origin_ns, metavar="N",
        help=f"subtracted from each bucket's start to give t_mono_ns (default: {defaults.t_mono_origin_ns})",
    )
    bucketize.add_argument(
        "--max-gap", default=str(defaults.max_gap_s), metavar="SECONDS|none",
        help="the gap cap: a run of empty buckets longer than this many seconds between two "
             "packets is not written (one warning says how many were cut); 'none' writes "
             f"every empty bucket, as the reference does (default: {defaults.max_gap_s})",
    )
    bucketize.add_argument(
        "--decode", choices=DECODES, default=defaults.decode,
        help="'reference' (the default) decodes exactly what the reference collector does; "
             "'extended' also strips VLAN/QinQ tags, decodes IPv6 and its extension headers, "
             "gives non-first fragments no ports, and checks the IPv4 version: it changes rows "
             "of captures the reference reads (docs/data-model.md)",
    )
    bucketize.add_argument(
        "--size", choices=SIZES, default=defaults.size,
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
    info.add_argument("inputs", metavar="FILE", nargs="+", help="captures to describe; '-' reads stdin")
    info.add_argument("--json", action="store_true",
                      help="one JSON object per line per file, for machines")
    return parser


def bucket_spec(args: argparse.Namespace, parser: argparse.ArgumentParser) -> BucketSpec:
    """The bucket options of the command line, or a usage error (exit 2) naming the flag."""
    from .options import BucketSpec

    options = {name: getattr(args, name if name != "max_gap_s" else "max_gap") for name in FLAGS}
    try:
        return BucketSpec(**options)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for name, flag in FLAGS.items():
            if message.startswith(name):
                message = flag + message[len(name):]
                break
        parser.error(message)


def _info(args: argparse.Namespace) -> int:
    from .errors import CaptureError

    info = _load(".info")
    capture_info, to_json, to_text = info.capture_info, info.to_json, info.to_text

    status = 0
    for i, path in enumerate(args.inputs):
        try:
            summary = capture_info(sys.stdin.buffer if path == "-" else path)
        except CaptureError as exc:
            _error(str(exc))
            status = 2
            continue
        if summary["error"]:
            status = 2
        _print(to_json(summary) if args.json else ("\n" if i else "") + to_text(summary))
    return status


def _print(text: str) -> None:
    if sys.stdout is None:
        raise OSError(9, "stdout is closed", "<stdout>")
    print(text, flush=True)


def _progress_bar(path: str, quiet: bool, stack: ExitStack) -> Callable[[int], object] | None:
    if quiet or path == "-" or sys.stderr is None or not sys.stderr.isatty():
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


def _load(module: str) -> Any:
    """Import a heavy module (numpy and the core) with the stopping signals held back until it
    is loaded: numpy turns a KeyboardInterrupt inside its import into an ImportError."""
    import importlib

    held = {signal.SIGINT, *_STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        return importlib.import_module(module, __package__)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a held signal is raised now


def _bucketize(args: argparse.Namespace, spec: BucketSpec) -> int:
    from contextlib import ExitStack

    write_jsonl = _load(".api").write_jsonl

    with ExitStack() as stack:
        progress = _progress_bar(args.input, args.quiet, stack)
        if args.input == "-":
            if sys.stdin is None:
                raise OSError(9, "stdin is closed", "<stdin>")
            source: Any = sys.stdin.buffer
        else:
            source = args.input
        write_jsonl(source, args.output, append=args.append, spec=spec, jobs=args.jobs, progress=progress)
    return 0


def _error(message: str) -> None:
    _stderr(f"{PROG}: error: {message}")


def _stderr(line: str) -> None:
    if sys.stderr is None:  # started with stderr closed (`2>&-`): the status says it
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # a terminal that went away (hang-up), a closed pipe
        pass


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


#: Signals that end a run like Ctrl-C: outputs cleaned up, a status of 128 + the signal.
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGPIPE") if hasattr(signal, name))


def _reserve_standard_fds() -> None:
    """Give closed stdin/stdout/stderr descriptors a placeholder, so that no file this run
    opens lands on them (where a stray write meant for a terminal would corrupt it)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            placeholder = os.open(os.devnull, os.O_RDWR)
            if placeholder != fd:  # a lower descriptor was free too: it gets one of its own
                os.dup2(placeholder, fd)
                os.close(placeholder)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # during start-up, before an output existed
        _error("interrupted")
        return 130
    except Stopped as stop:
        _error(f"stopped by {stop.name}")
        return stop.status


def _main(argv: Sequence[str] | None) -> int:
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        for signum in _STOP_SIGNALS:
            previous[signum] = signal.signal(signum, _raise_stopped)
    try:
        _reserve_standard_fds()
        parser = build_parser()
        args = parser.parse_args(argv)
        spec = bucket_spec(args, args.parser) if args.command == "bucketize" else None
        return _run(args, spec)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(args: argparse.Namespace, spec: BucketSpec | None) -> int:
    import warnings

    from .errors import CaptureError, FastpcapWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FastpcapWarning)
            try:
                status = _info(args) if spec is None else _bucketize(args, spec)
            finally:
                for w in caught:
                    if issubclass(w.category, FastpcapWarning):
                        _stderr(f"{PROG}: warning: {w.message}")
                    elif sys.stderr is not None:
                        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return status
    except CaptureError as exc:
        _error(str(exc))
        return 2
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): stop quietly, as a killed `cat` would.
        _silence_stdout()
        return 128 + signal.SIGPIPE if hasattr(signal, "SIGPIPE") else 1
    except OSError as exc:
        target = exc.filename or getattr(args, "output", None) or "<stdout>"
        _error(f"{target}: cannot write: {exc.strerror or exc}")
        return 2
    except KeyboardInterrupt:
        _error("interrupted; the output was left as it was")
        return 130
    except Stopped as stop:
        if stop.name != "SIGPIPE":
            _error(f"stopped by {stop.name}; the output was left as it was")
        _silence_stdout()
        return stop.status


def _silence_stdout() -> None:
    """Point stdout at nothing, so that the interpreter's last flush cannot fail too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
