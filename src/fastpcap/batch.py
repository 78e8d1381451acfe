"""The archive runner: many captures, every core (or a Dask cluster), resumable.

:func:`bucketize_many` plans the run (:mod:`.archive`), skips what an earlier run already
wrote (:mod:`.manifest`), and hands each remaining capture to an engine, largest first:

* ``local`` with one job: one after the other in this process (no process start per file);
* ``local`` with several: a pool of long-lived worker processes, one per job;
* ``dask``: the same per-capture task on a dask.distributed cluster whose workers see the
  same paths (an address, a ``Client``, or a ``LocalCluster`` started here).

Each capture's output is written by whoever processes it, atomically, byte-identical to
``fastpcap bucketize FILE -o OUT`` on that file alone; the manifest is written here, a line
as each capture finishes.  A capture that fails is reported and the batch goes on.  With
``combine``, every capture's rows also go, in the plan's order, into one Parquet table whose
first column names the capture, streamed a block at a time.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import _backend, prefetch
from ._version import __version__
from .archive import Capture, Plan, UsageError, plan
from .errors import CaptureError, CorruptWarning, FastpcapWarning
from .options import BucketSpec

if TYPE_CHECKING:
    from .options import BucketOptions, Unpack

FORMATS = ("jsonl", "parquet")
ENGINES = ("local", "dask")


@dataclass(frozen=True)
class Job:
    """One capture to bucketize, as a worker (a process, a cluster node) receives it."""

    path: str
    output: str | None
    fmt: str
    compression: str | None
    spec: BucketSpec
    part: str | None = None  # where to stream the rows for a combined table (Arrow IPC)
    backend: str = "cython"  # the core to run it with (the runner's: a cluster's workers may differ)
    # A compressed capture decompressed in a thread of its own: only when it is the only
    # capture processed at a time (the other CPUs are idle then; with every CPU busy the
    # thread only adds its hand-over cost).
    prefetch: bool = True


@dataclass
class Outcome:
    """What became of one capture."""

    status: str  # "written", "skipped" (up to date), or "failed"
    rows: int = 0
    packets: int = 0
    output_size: int | None = None
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    skipped_bytes: int = 0  # corrupt bytes a resync skipped (on_corrupt="resync")


@dataclass
class CaptureResult:
    capture: Capture
    outcome: Outcome


@dataclass
class BatchResult:
    """A run's captures and totals.  ``status`` is the command line's exit status: 0 when
    every capture was written (or up to date), 1 when some failed."""

    results: list[CaptureResult] = field(default_factory=list)
    ignored: int = 0  # files in folders and globs that are not captures
    seconds: float = 0.0
    combined: str | None = None  # the combined table, if one was written

    def count(self, status: str) -> int:
        return sum(r.outcome.status == status for r in self.results)

    @property
    def written(self) -> int:
        return self.count("written")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def packets(self) -> int:
        return sum(r.outcome.packets for r in self.results if r.outcome.status == "written")

    @property
    def bytes(self) -> int:
        return sum(r.capture.size for r in self.results if r.outcome.status == "written")

    @property
    def skipped_bytes(self) -> int:
        """Corrupt bytes skipped by resyncs in the captures written this run."""
        return sum(r.outcome.skipped_bytes for r in self.results if r.outcome.status == "written")

    @property
    def status(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        """One line: captures written / up to date / failed, packets, bytes, time, rates, and
        the corrupt bytes skipped if any."""
        seconds = max(self.seconds, 1e-9)
        ignored = f"; {self.ignored} other file{'s' * (self.ignored != 1)} ignored" if self.ignored else ""
        resynced = [r for r in self.results if r.outcome.status == "written" and r.outcome.skipped_bytes]
        corrupt = (f"; {self.skipped_bytes:,} corrupt bytes skipped in {len(resynced)} "
                   f"capture{'s' * (len(resynced) != 1)}" if resynced else "")
        return (f"{len(self.results)} capture{'s' * (len(self.results) != 1)}: {self.written} written, "
                f"{self.skipped} up to date, {self.failed} failed{ignored}; {self.packets:,} packets, "
                f"{_size(self.bytes)} in {self.seconds:.2f} s ({_rate(self.packets / seconds)} packets/s, "
                f"{_size(self.bytes / seconds)}/s){corrupt}")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _rate(n: float) -> str:
    return f"{n / 1e6:,.2f} M" if n >= 1e6 else f"{n / 1e3:,.1f} k" if n >= 1e3 else f"{n:,.0f}"


def process(job: Job, progress: Callable[[int], object] | None = None) -> Outcome:
    """Bucketize one capture into its output (and its part of a combined table): what every
    engine runs for each capture.  Never raises for a capture that cannot be read."""
    from .api import iter_rows

    if job.backend != _backend.name() and job.backend in _backend.IMPLEMENTATIONS:
        _backend.use(job.backend)
    start = time.perf_counter()
    outcome = Outcome("written")
    with warnings.catch_warnings(record=True) as caught, prefetch.allowed(job.prefetch):
        warnings.simplefilter("always", FastpcapWarning)
        try:
            rows = iter_rows(job.path, spec=job.spec, jobs=1, progress=progress)
            try:
                outcome.rows, outcome.packets = _write(job, rows)
            finally:
                rows.close()
            if job.output is not None:
                outcome.output_size = os.stat(job.output).st_size
        except (CaptureError, OSError) as exc:
            outcome = Outcome("failed", error=_error_line(exc, job))
    outcome.warnings = [str(w.message) for w in caught if issubclass(w.category, FastpcapWarning)]
    outcome.skipped_bytes = sum(w.message.skipped_bytes for w in caught
                                if isinstance(w.message, CorruptWarning) and w.message.kind == "summary")
    outcome.seconds = time.perf_counter() - start
    return outcome


def _error_line(exc: BaseException, job: Job) -> str:
    if isinstance(exc, CaptureError):
        return str(exc)
    assert isinstance(exc, OSError)
    target = exc.filename or job.output or job.path
    return f"{target}: cannot write: {exc.strerror or exc}"


def _write(job: Job, rows: Iterator[Any]) -> tuple[int, int]:
    """Stream the rows into the output and the combined table's part; (rows, packets)."""
    from contextlib import ExitStack

    from ._output import open_output
    from .jsonl import format_rows

    count = packets = 0
    with ExitStack() as stack:
        sinks: list[Callable[[Any], object]] = []
        if job.output is not None:
            if job.fmt == "parquet":
                from .parquet import ParquetSink, metadata

                out = stack.enter_context(open_output(job.output, inputs=[job.path], compression=None))
                sink = ParquetSink(out, metadata(job.spec, job.path))
                stack.callback(sink.close)  # (runs before the output is renamed into place)
                sinks.append(sink.write)
            else:
                out = stack.enter_context(open_output(job.output, inputs=[job.path], compression=job.compression))
                sinks.append(lambda block: out.write(format_rows(block)))
        if job.part is not None:
            sinks.append(stack.enter_context(_part_writer(job.part)))
        for block in rows:
            if len(block):
                count += len(block)
                packets += int(block["pkts_in"].sum()) + int(block["pkts_out"].sum())
                for write in sinks:
                    write(block)
    return count, packets


class _part_writer:
    """Rows for a combined table, streamed to an Arrow IPC file (removed by the runner)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> Callable[[Any], object]:
        from .parquet import record_batch, require, schema

        pa = require()
        self._sink = pa.OSFile(self.path, "wb")
        self._writer = pa.ipc.new_stream(self._sink, schema())
        return lambda rows: self._writer.write_batch(record_batch(rows))

    def __exit__(self, *exc: object) -> None:
        self._writer.close()
        self._sink.close()


# -- engines ------------------------------------------------------------------------------


Engine = Callable[[list[tuple[Capture, Job]], Callable[[int], object]], Iterator[tuple[Capture, Outcome]]]


def _in_process(todo: list[tuple[Capture, Job]],
                progress: Callable[[int], object]) -> Iterator[tuple[Capture, Outcome]]:
    for capture, job in todo:
        yield capture, process(job, progress)


def _worker_start(counter: Any, inherited: tuple[int, ...]) -> None:
    """Set up a pool worker: Ctrl-C is the parent's to handle; the worker dies with the
    parent (a killed run's workers must not write on into a folder the next run owns); and
    it lets go of the parent's descriptors that are not its business (the manifest's, whose
    lock would otherwise outlive a killed parent)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in inherited:
        try:
            os.close(fd)
        except OSError:
            pass
    _die_with_parent()
    global _COUNTER
    _COUNTER = counter


def _die_with_parent() -> None:
    """Linux: ask for SIGKILL when the parent process dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(1)


_COUNTER: Any = None


def _count_bytes(n: int) -> None:
    with _COUNTER.get_lock():
        _COUNTER.value += n


def _pooled(job: Job) -> Outcome:
    return process(job, _count_bytes)


def _pool(jobs: int, inherited: tuple[int, ...] = ()) -> Engine:
    def run(todo: list[tuple[Capture, Job]], progress: Callable[[int], object]) -> Iterator[tuple[Capture, Outcome]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        # fork: the workers start with everything loaded, and die with this process (a
        # forkserver's workers would outlive it, holding the server alive in turn).
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        counter = context.Value("q", 0)
        tries: dict[int, int] = {}
        pending_work = list(enumerate(todo))
        reported = 0
        while pending_work:
            executor = ProcessPoolExecutor(max_workers=min(jobs, len(pending_work)), mp_context=context,
                                           initializer=_worker_start, initargs=(counter, inherited))
            broken: list[tuple[int, tuple[Capture, Job]]] = []
            try:
                futures = {executor.submit(_pooled, job): (i, (capture, job)) for i, (capture, job) in pending_work}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    value = counter.value
                    if value > reported:
                        progress(value - reported)
                        reported = value
                    for future in done:
                        i, item = futures[future]
                        try:
                            outcome = future.result()
                        except BrokenProcessPool:
                            broken.append((i, item))
                            continue
                        yield item[0], outcome
            finally:
                executor.shutdown(wait=True, cancel_futures=True)
            pending_work = []
            for i, (capture, job) in broken:
                tries[i] = tries.get(i, 0) + 1
                if tries[i] < 2:
                    pending_work.append((i, (capture, job)))
                else:  # it brought down a worker twice: its own fault, most likely
                    yield capture, Outcome("failed", error=f"{capture.path}: the worker process died reading it")

    return run


def _dask(client: Any, address: str | None, jobs: int) -> Engine:
    def run(todo: list[tuple[Capture, Job]], progress: Callable[[int], object]) -> Iterator[tuple[Capture, Outcome]]:
        from contextlib import ExitStack

        from .parquet import require

        distributed = require("distributed", "dask")
        with ExitStack() as stack:
            active = client
            if active is None:
                if address is None:  # a cluster of worker processes on this machine, loopback only
                    cluster = stack.enter_context(distributed.LocalCluster(
                        n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0"))
                    active = stack.enter_context(distributed.Client(cluster))
                else:
                    active = stack.enter_context(distributed.Client(address))
            futures = {active.submit(process, job, pure=False, key=f"fastpcap-{i}-{os.urandom(4).hex()}"):
                       (capture, job) for i, (capture, job) in enumerate(todo)}
            try:
                for future in distributed.as_completed(futures):
                    capture, job = futures[future]
                    try:
                        outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - a worker lost, a task killed
                        outcome = Outcome("failed", error=f"{capture.path}: the cluster could not run it: {exc}")
                    progress(capture.size)
                    yield capture, outcome
            finally:
                active.cancel(list(futures))

    return run


# -- the run ------------------------------------------------------------------------------


def bucketize_many(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    jobs: int | None = None,
    engine: str = "local",
    client: Any = None,
    scheduler: str | None = None,
    format: str = "jsonl",
    compress: str | None = None,
    combine: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool | Callable[[BatchEvent], object] = True,
    spec: BucketSpec | None = None,
    **options: Unpack[BucketOptions],
) -> BatchResult:
    """Bucketize every capture of ``inputs`` (files, folders searched recursively, globs) into
    ``out_dir``, one output per capture; see :mod:`fastpcap.archive` for how captures are
    found and outputs named, and the README's "Processing an archive".

    ``jobs``: processes (default: one per CPU) or, with ``engine="dask"``, workers of the
    ``LocalCluster`` started when neither ``client`` (a ``distributed.Client``) nor
    ``scheduler`` (an address; default: the ``DASK_SCHEDULER_ADDRESS`` environment variable)
    is given.  ``format``: ``"jsonl"`` or ``"parquet"``; ``compress``: ``"gzip"``,
    ``"zstd"``, ``"xz"``, ``"bzip2"`` or ``"lz4"`` for JSONL outputs.  ``combine``: a Parquet
    file that gets every capture's rows, with a first column ``capture`` (``out_dir`` is then
    optional).  ``force``: redo captures the manifest says are up to date.  ``progress``:
    a bar on stderr when it is a terminal (``True``), none (``False``), or a function called
    with each :class:`BatchEvent`.  The bucket options as in :func:`~fastpcap.iter_rows`.

    Raises :class:`~fastpcap.archive.UsageError` (a ``ValueError``) for inputs and outputs
    that cannot make a run; a capture that cannot be read is a failed result, not an error.
    """
    spec = BucketSpec.make(spec, **options)
    started = time.perf_counter()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    names = [os.fspath(i) for i in inputs]
    folder = None if out_dir is None else os.fspath(out_dir)
    combined = None if combine is None else os.fspath(combine)
    _check(names, folder, combined, format, compress, engine)
    if jobs is not None and jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    from .parallel import usable_jobs

    workers = usable_jobs(jobs)
    the_plan = plan(names, folder, fmt=format, compression=compress)
    result = BatchResult(ignored=the_plan.ignored)
    report = _reporter(progress)
    report(BatchEvent("plan", sum(c.size for c in the_plan.captures),
                      files=len(the_plan.captures) + len(the_plan.failed)))
    from .manifest import Manifest

    manifest = Manifest(folder) if folder is not None else None
    parts_dir = None
    try:
        if manifest is not None:
            manifest.remove_leftovers()
        options_dict = spec.to_dict()
        todo: list[tuple[Capture, Job]] = []
        for given, line in the_plan.failed:
            capture = Capture(given, given, os.path.basename(given), None, 0, 0)
            _finish(result, manifest, capture, Outcome("failed", error=line), options_dict, folder, report)
        if combined is not None:
            parts_dir = _parts_folder(combined)
        for i, capture in enumerate(the_plan.captures):
            part = None if parts_dir is None else os.path.join(parts_dir, f"{i}.arrow")
            rel = None if capture.output is None or folder is None else os.path.relpath(capture.output, folder)
            entry = None
            if manifest is not None and rel is not None and not force:
                entry = manifest.up_to_date(rel, capture.size, capture.mtime_ns, options_dict)
            if entry is not None:
                outcome = Outcome("skipped", rows=entry.get("rows", 0), packets=entry.get("packets", 0),
                                  output_size=entry.get("output_size"))
                _finish(result, manifest, capture, outcome, options_dict, folder, report)
                continue
            todo.append((capture, Job(capture.path, capture.output, format, compress, spec, part, _backend.name())))
        todo.sort(key=lambda item: -item[0].size)  # largest first: the last to start are short
        if engine == "dask" or (workers > 1 and len(todo) > 1):  # several at a time: no decompression threads
            todo = [(capture, replace(job, prefetch=False)) for capture, job in todo]
        if engine == "dask":
            address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
            run = _dask(client, address, workers)
        elif workers > 1 and len(todo) > 1:
            run = _pool(workers, () if manifest is None else (manifest.fileno(),))
        else:
            run = _in_process
        for capture, outcome in run(todo, lambda n: report(BatchEvent("bytes", n))):
            _finish(result, manifest, capture, outcome, options_dict, folder, report)
        if combined is not None and parts_dir is not None:
            _combine(the_plan, result, parts_dir, combined, spec)
            result.combined = combined
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
        if manifest is not None:
            manifest.close()
        result.seconds = time.perf_counter() - started
        report(BatchEvent("end", 0, result=result))
    return result


def _check(inputs: list[str], folder: str | None, combined: str | None, fmt: str, compress: str | None,
           engine: str) -> None:
    from ._output import SUFFIX_OF

    if not inputs:
        raise UsageError("no inputs")
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if compress is not None and compress not in SUFFIX_OF:
        raise UsageError(f"compress must be one of {', '.join(SUFFIX_OF)}, not {compress!r}")
    if compress is not None and fmt == "parquet":
        raise UsageError("Parquet files compress their columns themselves (zstd): compress is for JSONL")
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if folder is None and combined is None:
        raise UsageError("an output folder is needed (or a combined table)")
    if folder is not None and os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{folder}: not a folder (many captures need an output folder)")


def _parts_folder(combined: str) -> str:
    """A private folder beside the combined table for the captures' rows on their way in."""
    base = os.path.dirname(os.path.abspath(combined))
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, f".{os.path.basename(combined)}.{os.urandom(6).hex()}.parts")
    os.mkdir(path, 0o700)
    return path


def _finish(result: BatchResult, manifest: Any, capture: Capture, outcome: Outcome, options: dict[str, Any],
            folder: str | None, report: Callable[[BatchEvent], object]) -> None:
    result.results.append(CaptureResult(capture, outcome))
    if manifest is not None and folder is not None:
        manifest.append({
            "input": capture.path, "given": capture.given, "relative": capture.relative,
            "output": None if capture.output is None else os.path.relpath(capture.output, folder),
            "size": capture.size, "mtime_ns": capture.mtime_ns, "options": options, "version": __version__,
            "status": outcome.status, "rows": outcome.rows, "packets": outcome.packets,
            "output_size": outcome.output_size, "error": outcome.error, "skipped_bytes": outcome.skipped_bytes,
            "seconds": round(outcome.seconds, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
    report(BatchEvent("capture", capture.size if outcome.status == "skipped" else 0, capture=capture,
                      outcome=outcome))


def _combine(the_plan: Plan, result: BatchResult, parts_dir: str, combined: str, spec: BucketSpec) -> None:
    """Stream every capture's rows, in the plan's order, into one Parquet table."""
    from ._output import open_output
    from .parquet import ParquetSink, metadata, require

    pa = require()
    outcomes = {id(r.capture): r.outcome for r in result.results}
    meta = metadata(spec, None)
    with open_output(combined, compression=None) as out:
        sink = ParquetSink(out, meta, capture=True)
        try:
            for i, capture in enumerate(the_plan.captures):
                outcome = outcomes.get(id(capture))
                if outcome is None or outcome.status == "failed":
                    continue
                name = capture.relative
                if outcome.status == "skipped":
                    assert capture.output is not None
                    blocks: Iterable[Any] = read_rows(capture.output)
                else:
                    blocks = _part_blocks(pa, os.path.join(parts_dir, f"{i}.arrow"))
                for rows in blocks:
                    sink.write(rows, capture=name)
        finally:
            sink.close()


def _part_blocks(pa: Any, path: str) -> Iterator[Any]:
    import numpy as np

    from .rows import ROW_DTYPE, ROW_FIELDS

    with pa.OSFile(path, "rb") as source:
        for batch in pa.ipc.open_stream(source):
            rows = np.zeros(batch.num_rows, dtype=ROW_DTYPE)
            for name in ROW_FIELDS:
                rows[name] = batch.column(name).to_numpy()
            yield rows


def read_rows(path: str) -> Iterator[Any]:
    """Blocks of rows (``ROW_DTYPE``) back from an output of fastpcap's: Parquet, or JSONL
    (compressed as its name says)."""
    import json

    import numpy as np

    from .rows import ROW_DTYPE, ROW_FIELDS

    if path.endswith(".parquet"):
        from .parquet import require

        pq = require("pyarrow.parquet")
        for batch in pq.ParquetFile(path).iter_batches(columns=list(ROW_FIELDS)):
            rows = np.zeros(batch.num_rows, dtype=ROW_DTYPE)
            for name in ROW_FIELDS:
                rows[name] = batch.column(name).to_numpy()
            yield rows
        return
    from .capture import open_capture  # noqa: F401 - (the decompressors' module is loaded with it)
    from .compression import detect, open_decompressed

    with open(path, "rb") as raw:
        kind = detect(raw.read(8))
        raw.seek(0)
        stream = open_decompressed(raw, kind) if kind else raw  # type: ignore[arg-type]
        import io

        text = io.TextIOWrapper(stream, encoding="ascii")  # type: ignore[arg-type]
        block: list[tuple[int, ...]] = []
        for line in text:
            row = json.loads(line)
            block.append(tuple(row[name] for name in ROW_FIELDS))
            if len(block) == 65536:
                yield np.array(block, dtype=ROW_DTYPE)
                block = []
        if block:
            yield np.array(block, dtype=ROW_DTYPE)


# -- progress -----------------------------------------------------------------------------


@dataclass
class BatchEvent:
    """What a progress function is told: the ``"plan"`` (``amount``: the bytes of all the
    captures, ``files``: how many), ``"bytes"`` read (``amount``), a ``"capture"`` finished
    (``capture``, ``outcome``; ``amount``: its size if it was up to date), or the ``"end"``
    (``result``)."""

    kind: str
    amount: int
    files: int = 0
    capture: Capture | None = None
    outcome: Outcome | None = None
    result: BatchResult | None = None


def _reporter(progress: bool | Callable[[BatchEvent], object]) -> Callable[[BatchEvent], object]:
    if callable(progress):
        return progress
    if not progress:
        return lambda event: None
    from .progress import batch_reporter

    return batch_reporter()
