"""Progress on a terminal: a bar for one capture (bytes read) or for a whole batch.

Bars appear only when stderr is a terminal (tqdm, whose monitor thread is off: worker
processes are forked while a bar is up).  A terminal that reports no size (a bare pty, a
serial console) gets an 80-column bar rather than none.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import BatchEvent


def on_terminal() -> bool:
    """Whether stderr is a terminal a bar can be drawn on."""
    return sys.stderr is not None and sys.stderr.isatty()


def _bar(**kw: Any) -> Any:
    from tqdm import tqdm

    tqdm.monitor_interval = 0
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        size = os.terminal_size((0, 0))
    shape = {} if size.columns and size.lines else {"ncols": 80, "nrows": 24}
    return tqdm(file=sys.stderr, leave=False, dynamic_ncols=not shape, **shape, **kw)


#: The bars count bytes in decimal units (kB, MB, GB: powers of 1000), as the summary lines do.
_BYTES: dict[str, Any] = {"unit": "B", "unit_scale": True, "unit_divisor": 1000}


def capture_bar(path: str, total: int) -> Any:
    """A bar over the bytes of one capture file."""
    return _bar(total=total, **_BYTES, desc=os.path.basename(path))


class BatchBar:
    """One bar over a batch, by bytes: files done/total, packets/s, MB/s, ETA, failures."""

    def __init__(self, total_bytes: int, total_files: int) -> None:
        self.files = total_files
        self.done = 0
        self.failed = 0
        self.packets = 0
        self._bar = _bar(total=total_bytes, **_BYTES,
                         bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]{postfix}")
        self._describe()

    def _describe(self) -> None:
        self._bar.set_description_str(f"{self.done}/{self.files} captures", refresh=False)
        elapsed = max(self._bar.format_dict.get("elapsed", 0.0), 1e-9)
        failed = f", {self.failed} failed" if self.failed else ""
        self._bar.set_postfix_str(f"{self.packets / elapsed / 1e3:,.0f} k packets/s{failed}", refresh=False)

    def event(self, event: BatchEvent) -> None:
        if event.kind == "bytes":
            self._bar.update(event.amount)
        elif event.kind == "capture":
            assert event.outcome is not None
            self.done += 1
            self.failed += event.outcome.status == "failed"
            self.packets += event.outcome.packets if event.outcome.status == "written" else 0
            if event.amount:  # an up-to-date capture: its bytes count as done
                self._bar.update(event.amount)
            self._describe()
            self._bar.refresh()

    def write(self, line: str) -> None:
        """Print a line above the bar."""
        self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


def batch_reporter(lines: Callable[[BatchEvent], list[str]] | None = None,
                   quiet: bool = False) -> Callable[[BatchEvent], None]:
    """A progress function for :func:`~fastpcap.bucketize_many`: a :class:`BatchBar` when
    stderr is a terminal (and not ``quiet``), and the ``lines`` each event asks for printed
    on stderr (above the bar)."""
    bar: BatchBar | None = None

    def report(event: BatchEvent) -> None:
        nonlocal bar
        if event.kind == "plan" and not quiet and on_terminal():
            bar = BatchBar(event.amount, event.files)
        elif bar is not None:
            bar.event(event)
        for line in lines(event) if lines is not None else ():
            if bar is not None:
                bar.write(line)
            elif sys.stderr is not None:
                try:
                    print(line, file=sys.stderr, flush=True)
                except (OSError, ValueError):
                    pass
        if event.kind == "end" and bar is not None:
            bar.close()
            bar = None

    return report
