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

from ._cli_common import (
    ON_CORRUPT_HELP,
    PROG,
    STOP_SIGNALS,
    TUNNELS_HELP,
    Stopped,
    add_bucket_arguments,
    bucket_spec,
    is_batch,
)
from ._cli_common import error as _error
from ._cli_common import load as _load
from ._cli_common import positive_int as _positive_int
from ._cli_common import print_line as _print
from ._cli_common import stderr as _stderr

#: What an interrupted run leaves (every output is written whole, atomically, or not at all).
_LEFT = "every output is complete or as it was"
#: --compress's choices and the compressions they name.
COMPRESS_FLAGS = {"gz": "gzip", "zst": "zstd", "xz": "xz", "bz2": "bzip2", "lz4": "lz4"}



def version_line() -> str:
    """What a bug report needs: fastpcap's version, the backend, numpy's and Python's versions."""
    import platform

    import numpy

    from . import _backend
    from ._version import __version__

    return (f"{PROG} {__version__} (backend {_backend.name()}; numpy {numpy.__version__}; "
            f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
            f"{platform.machine()})")


def _version_action() -> type:
    import argparse

    class Version(argparse.Action):
        def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

        def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
            _print(version_line())
            parser.exit()

    return Version


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from .options import ON_CORRUPT, TUNNELS, BucketSpec

    defaults = BucketSpec()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Turn packet captures into time-bucketed traffic features.",
    )
    parser.add_argument("--version", action=_version_action(),
                        help="show the version, the backend and numpy's and Python's versions, and exit")
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
            "be written (one line on stderr names the file, the byte offset and the problem), "
            "or for a usage error; a batch: 1 if some captures failed (each reported in one "
            "line; the others are written); 128 + the signal if interrupted (130 for Ctrl-C). "
            "A failed run leaves an existing OUT untouched."
        ),
    )
    bucketize.set_defaults(parser=bucketize)
    bucketize.add_argument(
        "inputs", metavar="INPUT", nargs="+",
        help="a capture file ('-' reads one from stdin), a folder (searched recursively: its "
             "captures are recognised by their first bytes) or a quoted glob "
             "('archive/**/*.pcap*'). More than one, a folder or a glob make a batch: see -o")
    bucketize.add_argument(
        "-o", "--output", metavar="OUT", default=None,
        help="one capture: the file to write the rows to; '-' (the default) is stdout. It is "
             "written to a temporary file and renamed over OUT at the end, so OUT is never "
             "half-written; a device, FIFO or socket is written through; the input itself is "
             "refused; a name ending .gz, .zst, .xz, .bz2 or .lz4 is compressed. A batch: the "
             "folder (created if missing) that gets one output per capture, named after it "
             "(D/a/ep1.pcap.gz -> OUT/a/ep1.jsonl), and the manifest that lets a rerun skip "
             "what is done")
    bucketize.add_argument(
        "--format", choices=("jsonl", "parquet"), default="jsonl",
        help="the outputs' format: JSON lines (the default) or Parquet (the same columns in the "
             "same order, zstd-compressed; needs pip install 'fastpcap[parquet]')")
    bucketize.add_argument(
        "--compress", choices=tuple(COMPRESS_FLAGS), default=None,
        help="a batch: compress every JSONL output (OUT/a/ep1.jsonl.gz)")
    bucketize.add_argument(
        "--combine", metavar="FILE.parquet", default=None,
        help="also write every capture's rows into one Parquet table whose first column, "
             "'capture', is the capture's path (relative to the folder it was found in); "
             "with it, -o is optional")
    bucketize.add_argument(
        "--force", action="store_true",
        help="a batch: redo every capture, even those the manifest says are up to date")
    bucketize.add_argument(
        "--engine", choices=("local", "dask"), default="local",
        help="a batch: process captures here (the default: --jobs processes) or on a "
             "dask.distributed cluster whose workers see the same paths (pip install "
             "'fastpcap[dask]')")
    bucketize.add_argument(
        "--scheduler", metavar="ADDRESS", default=None,
        help="the Dask scheduler (default: $DASK_SCHEDULER_ADDRESS; none: a local cluster of "
             "--jobs worker processes)")
    add_bucket_arguments(bucketize)
    bucketize.add_argument(
        "--on-corrupt", choices=ON_CORRUPT, default=defaults.on_corrupt, help=ON_CORRUPT_HELP)
    bucketize.add_argument(
        "--append", action="store_true",
        help="append to OUT instead of replacing it (what the drop-in bucketize() does); a "
             "failed run truncates OUT back to its previous length",
    )
    bucketize.add_argument(
        "--jobs", type=_positive_int, default=None, metavar="N",
        help="processes (default: the number of CPUs; 1 means this one). A batch: captures "
             "processed at once, largest first. One capture: processes that share it, each "
             "bucketizing a byte range (captures under 64 MiB, pcapng, compressed captures and "
             "stdin use one). The rows are the same whatever N",
    )
    bucketize.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bar (it is shown on stderr only when stderr is a terminal); a batch "
             "still ends with its summary line",
    )
    live = _live()
    live.add_follow_arguments(bucketize)
    info = commands.add_parser(
        "info",
        help="what captures hold, like capinfos",
        description=(
            "For each capture: container and byte order, compression, link types, snap length, "
            "packets, bytes, first and last timestamp, duration, packet rate, out-of-order "
            "packets, protocol mix, and a partial tail, corrupt record or skipped regions if "
            "there are any."
        ),
        epilog="Exit status: 0, or 2 if any file could not be read to its end (a corrupt record "
               "is not an error with --on-corrupt stop or resync).",
    )
    info.add_argument("inputs", metavar="FILE", nargs="+", help="captures to describe; '-' reads stdin")
    info.add_argument("--json", action="store_true",
                      help="one JSON object per line per file, for machines")
    info.add_argument("--tunnels", choices=TUNNELS, default=defaults.tunnels,
                      help=TUNNELS_HELP.replace(" (with --decode extended)", "") + "; the protocol mix is then "
                      "the inner packets'")
    info.add_argument("--on-corrupt", choices=ON_CORRUPT, default=defaults.on_corrupt,
                      help=ON_CORRUPT_HELP.replace("fails the run", "reports it as an error (exit 2)")
                      + "; the summary lists the regions skipped")
    live.add_capture_parser(commands)
    return parser


def _live() -> Any:
    """The live commands (``bucketize --follow``, ``capture``): fastpcap.cli_live."""
    from . import cli_live

    return cli_live



def _info(args: argparse.Namespace) -> int:
    from .errors import CaptureError

    info = _load(".info")
    capture_info, to_json, to_text = info.capture_info, info.to_json, info.to_text

    status = 0
    for i, path in enumerate(args.inputs):
        try:
            summary = capture_info(sys.stdin.buffer if path == "-" else path, on_corrupt=args.on_corrupt,
                                   tunnels=args.tunnels)
        except CaptureError as exc:
            _error(str(exc))
            status = 2
            continue
        if summary["error"]:
            status = 2
        _print(to_json(summary) if args.json else ("\n" if i else "") + to_text(summary))
    return status


def _progress_bar(path: str, quiet: bool, stack: ExitStack) -> Callable[[int], object] | None:
    if quiet or path == "-" or not _on_terminal():
        return None
    try:
        total = os.path.getsize(path)
    except OSError:
        return None
    from .progress import capture_bar

    return stack.enter_context(capture_bar(path, total)).update  # type: ignore[no-any-return]


def _bucketize(args: argparse.Namespace, spec: BucketSpec) -> int:
    from contextlib import ExitStack

    if args.follow or args.pid is not None or args.idle_close is not None:
        return _live().follow_command(args, spec)
    if is_batch(args):
        return _batch(args, spec)
    if args.compress is not None:
        args.parser.error("--compress is for many captures; for one, end the output's name with "
                          f".{args.compress} (rows.jsonl.{args.compress})")
    api = _load(".api")
    (path,) = args.inputs
    with ExitStack() as stack:
        progress = _progress_bar(path, args.quiet, stack)
        if path == "-":
            if sys.stdin is None:
                raise OSError(9, "stdin is closed", "<stdin>")
            source: Any = sys.stdin.buffer
        else:
            source = path
        write = api.write_parquet if args.format == "parquet" else api.write_jsonl
        write(source, args.output, append=args.append, spec=spec, jobs=args.jobs, progress=progress)
    return 0


def _batch(args: argparse.Namespace, spec: BucketSpec) -> int:
    """Many captures: the archive runner, its failures one line each, a summary line."""
    batch = _load(".batch")
    from .archive import UsageError

    if args.output is None and args.combine is None:
        args.parser.error("many captures need an output folder: -o OUTDIR (or --combine FILE.parquet)")
    if args.output == "-":
        args.parser.error("many captures need an output folder, not stdout")
    if args.append:
        args.parser.error("--append is for one capture; a batch writes one output per capture")
    from .progress import batch_reporter

    def lines(e: Any) -> list[str]:
        if e.kind != "capture" or e.outcome is None:
            return []
        said = [f"{PROG}: warning: {w}" for w in e.outcome.warnings]
        if e.outcome.status == "failed":
            said.append(f"{PROG}: error: {e.outcome.error}")
        return said

    event = batch_reporter(lines, quiet=args.quiet)
    try:
        result = batch.bucketize_many(
            args.inputs, args.output, jobs=args.jobs, engine=args.engine, scheduler=args.scheduler,
            format=args.format, compress=COMPRESS_FLAGS.get(args.compress), combine=args.combine,
            force=args.force, progress=event, spec=spec)
    except UsageError as exc:
        _error(str(exc))
        return 2
    if not result.results:
        _stderr(f"{PROG}: warning: no captures found in {', '.join(args.inputs)}")
    _stderr(f"{PROG}: {result.summary()}")
    return result.status


def _on_terminal() -> bool:
    from .progress import on_terminal

    return on_terminal()


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


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
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_stops(previous_hook)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # during start-up, before an output existed
        _ending()
        _error("interrupted")
        return 130
    except Stopped as stop:
        _ending()
        _error(f"stopped by {stop.name}")
        return stop.status
    finally:
        sys.unraisablehook = previous_hook
        _forget_handled_interrupt()


def _quiet_stops(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """An unraisable-exception hook that drops a Ctrl-C (or stop) raised where Python cannot
    raise it: inside a weakref callback or a finaliser (the import system's module locks have
    one). The interpreter would print it as "Exception ignored ... Traceback" and carry on; the
    run then simply completes, every output whole."""

    def hook(unraisable: Any) -> object:
        if isinstance(unraisable.exc_value, (KeyboardInterrupt, Stopped)):
            return None
        return previous(unraisable)

    return hook


def _forget_handled_interrupt() -> None:
    """CPython remembers a KeyboardInterrupt that left code run by ``exec``/``eval`` of a string
    (dataclasses and namedtuples build their methods that way while modules load) even after
    we caught it, and at exit kills the process with SIGINT instead of returning our status
    (`python -m` only). Running a string of no code clears that memory: the interrupt was
    handled, and the status we return is the one the shell sees."""
    exec("")  # noqa: S102 - resets the interpreter's unhandled-interrupt flag; runs nothing


def _ending() -> None:
    """The run is ending on a signal, already handled: a further Ctrl-C (or a SIGINT still
    pending from the same stop) must not turn into a second KeyboardInterrupt on the way out,
    which the interpreter would report by dying of SIGINT instead of the status we return."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (main() called from a thread): nothing to do
        pass


def _main(argv: Sequence[str] | None) -> int:
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        for signum in STOP_SIGNALS:
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

    caught: list[warnings.WarningMessage] = []
    try:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", FastpcapWarning)
                if args.command == "capture":
                    status = _live().capture_command(args)
                else:
                    status = _info(args) if spec is None else _bucketize(args, spec)
        finally:
            # (outside the recording block: there, showing a warning would record it again)
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
        _error(f"interrupted; {_LEFT}")
        return 130
    except Stopped as stop:
        if stop.name != "SIGPIPE":
            _error(f"stopped by {stop.name}; {_LEFT}")
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
