"""The command line's live part: ``fastpcap bucketize --follow`` and ``fastpcap capture``.

Apart from cli.py, which only adds these arguments and dispatches here.  Nothing heavy is
imported at the top: the follow machinery (numpy and the core) loads once the arguments are
checked, as in cli.py.

A stopping signal (SIGINT, SIGTERM, SIGHUP) is the normal end of a live run, not a failure:
the first one ends the capture or the follow, the file is read to its end, the last bucket
is written and the status is 0.  The handlers are then the command line's again, so a second
signal stops at once (128 + the signal; the rows written so far stay).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from . import _cli_common as common
from ._cli_common import non_negative_int as _non_negative_int
from ._cli_common import positive_int as _positive_int

if TYPE_CHECKING:
    import argparse

    from ._cli_common import Stopped
    from .options import BucketSpec

#: The signals that end a live run normally.
_END_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


_IDLE_CLOSE_HELP = (
    "also write the open bucket's row once the wall clock is MS milliseconds past the bucket's end "
    "without a packet of a later bucket. A packet that comes after that with an older time goes into "
    "the next row (one warning counts them); with times in order, as on a live interface, the rows are "
    "unchanged (docs/data-model.md, 'Following a capture')")


def add_follow_arguments(bucketize: argparse.ArgumentParser) -> None:
    """``bucketize --follow [--pid PID] [--idle-close MS]``."""
    group = bucketize.add_argument_group("following a capture while it is written")
    group.add_argument(
        "--follow", action="store_true",
        help="INPUT is a classic pcap or pcapng still being written (tcpdump -U -w INPUT, dumpcap -w INPUT), "
             "which may not exist "
             "yet: write each bucket's row to OUT as soon as a packet of a later bucket arrives, as whole "
             "lines appended and flushed. Ends when process PID exits or on SIGINT/SIGTERM; then the file "
             "is read to its end and the last row written (status 0). Without --idle-close the finished "
             "OUT is byte-identical to what bucketize writes for the finished file. OUT is emptied first "
             "(unless --append), never replaced; a device or FIFO is written through")
    group.add_argument("--pid", type=_positive_int, metavar="PID",
                       help="with --follow: stop following when this process (the capturing tcpdump) exits")
    group.add_argument("--idle-close", type=_non_negative_int, metavar="MS",
                       help=f"with --follow: {_IDLE_CLOSE_HELP}")


def add_capture_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``fastpcap capture -i IFACE -w OUT.pcap ...``."""
    capture = commands.add_parser(
        "capture",
        help="record an interface with tcpdump, with rows as the traffic happens",
        description=(
            "Record an interface with tcpdump (-U, --immediate-mode) into OUT.pcap until the duration "
            "ends or SIGINT/SIGTERM, and with --netflow write each bucket's row as it closes; at the end "
            "the rows are those bucketize writes for OUT.pcap. Needs tcpdump and the right to capture "
            "(root, or CAP_NET_RAW)."),
        epilog=(
            "Exit status: 0 when the capture ran and ended (by its duration or a signal); 2 when tcpdump "
            "is missing, the interface does not exist, capturing or writing is not permitted, or tcpdump "
            "failed (one line on stderr, with tcpdump's own words), or for a usage error."))
    capture.set_defaults(parser=capture)
    capture.add_argument("-i", "--interface", required=True, metavar="IFACE", help="the interface to record")
    capture.add_argument("-w", "--write", required=True, metavar="OUT.pcap",
                         help="the capture file (classic pcap; parent folders are created)")
    capture.add_argument("--duration", type=_seconds, default=None, metavar="S",
                         help="stop after S seconds (default: at SIGINT or SIGTERM)")
    capture.add_argument("--snaplen", type=_positive_int, default=262144, metavar="N",
                         help="bytes kept of each frame (tcpdump -s; default: 262144)")
    capture.add_argument("--bpf", default=None, metavar="EXPR",
                         help="a capture filter (tcpdump's syntax, one argument: --bpf 'tcp or udp')")
    capture.add_argument("--netflow", default=None, metavar="OUT.jsonl",
                         help="also write the rows here as they close, as bucketize --follow does, with the "
                              "bucket options below (default: 100 ms buckets, bridge 10.200.0.1); '-' is stdout")
    capture.add_argument("--idle-close", type=_non_negative_int, default=None, metavar="MS",
                         help=f"with --netflow: {_IDLE_CLOSE_HELP}")
    capture.add_argument("-q", "--quiet", action="store_true",
                         help="say nothing unless something fails (by default: a line when the capture "
                              "starts, tcpdump's counts and the rows written at the end)")
    common.add_bucket_arguments(capture, "the rows of --netflow (as in bucketize)")


@contextlib.contextmanager
def _ended_by_signals(end: Callable[[], object]) -> Iterator[None]:
    """While inside, the first SIGINT/SIGTERM/SIGHUP calls ``end`` and puts the previous
    handlers back (a second signal then does what it always does)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}

    def handler(signum: int, frame: object) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        end()

    for signum in _END_SIGNALS:
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)  # type: ignore[arg-type]


def follow_command(args: argparse.Namespace, spec: BucketSpec) -> int:
    """``bucketize --follow``: the arguments checked, then the follow until it ends."""

    parser = args.parser
    if not args.follow:
        parser.error("--pid and --idle-close go with --follow")
    if common.is_batch(args) or args.inputs == ["-"]:
        parser.error("--follow reads one capture file as it grows (not stdin, a folder or a glob)")
    for given, flag in ((args.format != "jsonl", "--format parquet"), (args.jobs is not None, "--jobs"),
                        (args.compress is not None, "--compress")):
        if given:
            parser.error(f"{flag} does not go with --follow (it writes JSONL lines, in one process)")
    from ._output import compression_of

    if compression_of(args.output) is not None:
        parser.error("--follow writes plain JSONL lines as they are made: OUT cannot be compressed")
    if spec.on_corrupt != "error":
        parser.error("--on-corrupt does not go with --follow (a record that is corrupt, not just still being "
                     "written, ends the follow)")
    follow = common.load(".follow")
    (path,) = args.inputs
    stop = threading.Event()
    try:
        with _ended_by_signals(stop.set):
            follow.follow_jsonl(path, args.output, append=args.append, pid=args.pid,
                                idle_close_ms=args.idle_close, stop=stop, spec=spec)
    except (KeyboardInterrupt, common.Stopped) as exc:
        return _stopped_twice(exc, args.output)
    return 0


def _stopped_twice(exc: KeyboardInterrupt | Stopped, output: str | None) -> int:
    """A second signal: stopped at once, without the last rows."""

    if isinstance(exc, KeyboardInterrupt):
        what, status = "interrupted", 130
    else:
        what, status = f"stopped by {exc.name}", exc.status
    if what != "stopped by SIGPIPE":
        common.error(f"{what} again; {'<stdout>' if output in (None, '-') else output} holds the rows written so far")
    return status


def capture_command(args: argparse.Namespace) -> int:
    """``fastpcap capture``: tcpdump started, followed if asked, stopped; its status reported."""
    from ._output import compression_of
    from .errors import CaptureStartError
    from .lifecycle import one_line, run_capture, stop_capture
    from .options import BucketSpec

    parser = args.parser
    spec = common.bucket_spec(args, parser)
    if args.idle_close is not None and args.netflow is None:
        parser.error("--idle-close goes with --netflow")
    if spec != BucketSpec() and args.netflow is None:
        parser.error("the bucket options (--bucket-ms, --host-ip, --decode, ...) go with --netflow")
    if args.netflow is not None:
        if compression_of(args.netflow) is not None:
            parser.error("--netflow writes plain JSONL lines as they are made: it cannot be compressed")
        if args.netflow != "-" and os.path.realpath(args.netflow) == os.path.realpath(args.write):
            parser.error("--netflow and -w name the same file")
    try:
        handle = run_capture(args.interface, args.write, snaplen=args.snaplen, bpf=args.bpf, immediate=True)
    except CaptureStartError as exc:
        common.error(str(exc))
        return 2
    proc = handle.proc
    ending = threading.Event()

    def end_capture() -> None:
        """Stop tcpdump (SIGINT; killed if it has not exited 5 s later) without waiting here:
        the follow ends when it has exited, having read all it wrote."""
        if not ending.is_set():
            ending.set()
            threading.Thread(target=stop_capture, args=(handle,), daemon=True).start()

    rows = None
    timer = threading.Timer(args.duration, end_capture) if args.duration is not None else None
    try:
        with _ended_by_signals(end_capture):
            if not args.quiet:
                also = f" and its rows into {args.netflow}" if args.netflow is not None else ""
                common.stderr(f"{common.PROG}: capturing on {args.interface} into {args.write}{also}; "
                            + (f"stopping after {args.duration:g} s" if timer else "Ctrl-C stops"))
            if timer is not None:
                timer.daemon = True
                timer.start()
            if args.netflow is not None:
                follow = common.load(".follow")
                # pid: woken at once when tcpdump exits; poll(): where pidfds do not exist, a
                # child that has exited stays "alive" to signal 0 until it is reaped.
                rows = follow.follow_jsonl(args.write, args.netflow, pid=proc.pid,
                                           stop=lambda: proc.poll() is not None,
                                           idle_close_ms=args.idle_close, spec=spec)
            else:
                proc.wait()
    except (KeyboardInterrupt, common.Stopped) as exc:
        return _stopped_twice(exc, args.netflow)
    finally:
        if timer is not None:
            timer.cancel()
        status = stop_capture(handle)
    assert proc.stderr is not None
    said = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if status != 0:
        common.error(f"tcpdump exited {status} while capturing on {args.interface}"
                   + (f"; tcpdump said: {one_line(said)}" if said.strip() else ""))
        return 2
    if not args.quiet:
        counts = ", ".join(line.strip() for line in said.splitlines() if line.strip())
        common.stderr(f"{common.PROG}: tcpdump: {counts or 'ended'}")
        if rows is not None:
            common.stderr(f"{common.PROG}: wrote {rows} row(s) to {args.netflow}")
    return 0
