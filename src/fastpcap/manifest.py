"""The archive runner's record of its work: ``OUTDIR/_fastpcap_manifest.jsonl``.

One JSON object per line, per capture and run, appended as each capture finishes: the input
(as found, as given, and relative to the folder it was found in), the output (relative to
OUTDIR), the input's size and modification time, the options that change rows, the version,
the status (``written``, ``skipped`` — up to date from an earlier run —, or ``failed``), rows,
packets, the output's size, the error, the corrupt bytes a resync skipped, and the seconds
it took.

A rerun skips a capture whose latest ``written``/``failed`` line is ``written``, with the same
input size, modification time and options, and whose output still has the recorded size.
Every line is one ``write`` to a file opened for appending; a line cut short by a killed run
is ignored when the manifest is read, and the next line starts on a line of its own.  The
manifest is locked (``flock``) while a run writes it: two runs on one OUTDIR would race on its
outputs, so the second is refused; and, holding the lock, a run may remove the temporary
files a killed run left behind.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
from collections.abc import Iterator
from typing import Any

from .archive import MANIFEST_NAME, UsageError

#: A temporary output that a killed run left behind (see fastpcap._output).
_PART = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")


class Manifest:
    """An open, locked manifest in ``folder`` (created if missing)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, MANIFEST_NAME)
        try:
            os.makedirs(folder, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, self.path) from None
        try:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(f"{folder}: another fastpcap run is writing to this folder") from None
            raise
        except ImportError:  # pragma: no cover - no flock (Windows): no lock
            pass
        #: The latest decisive (written or failed) entry of each output, from earlier runs.
        self.latest: dict[str, dict[str, Any]] = {}
        self._ends_with_newline = True
        for entry in self._read():
            if entry.get("status") in ("written", "failed") and isinstance(entry.get("output"), str):
                self.latest[entry["output"]] = entry

    def _read(self) -> Iterator[dict[str, Any]]:
        with open(self.path, "rb") as f:
            data = f.read()
        self._ends_with_newline = not data or data.endswith(b"\n")
        for line in data.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a line a killed run left unfinished
                continue
            if isinstance(entry, dict):
                yield entry

    def up_to_date(self, output: str, size: int, mtime_ns: int, options: dict[str, Any]) -> dict[str, Any] | None:
        """The entry that makes ``output`` (relative to the folder) up to date, if any."""
        entry = self.latest.get(output)
        if (entry is None or entry.get("status") != "written" or entry.get("size") != size
                or entry.get("mtime_ns") != mtime_ns or not _same_options(entry.get("options"), options)):
            return None
        try:
            if os.stat(os.path.join(self.folder, output)).st_size != entry.get("output_size"):
                return None
        except OSError:
            return None
        return entry

    def append(self, entry: dict[str, Any]) -> None:
        """Add one line (one ``write``: a killed run leaves at most one unfinished line)."""
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        if not self._ends_with_newline:
            line = "\n" + line
        data = line.encode()
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk: write the rest, and fail if that fails
            os.write(self._fd, data[written:])
        self._ends_with_newline = True

    def remove_leftovers(self) -> int:
        """Remove the temporary outputs killed runs left in the folder (the lock says no
        other run is writing here); returns how many."""
        removed = 0
        for root, _dirs, files in os.walk(self.folder):
            for name in files:
                if _PART.match(name):
                    try:
                        os.unlink(os.path.join(root, name))
                        removed += 1
                    except FileNotFoundError:
                        pass
        return removed

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        os.close(self._fd)  # (releases the lock)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _same_options(recorded: object, options: dict[str, Any]) -> bool:
    """Whether options recorded by a run match ``options``; an option missing from the record
    (written by a version before the option existed) had its default value."""
    if not isinstance(recorded, dict):
        return False
    return {**_defaults(), **recorded} == options


@functools.cache
def _defaults() -> dict[str, Any]:
    """The default options, as a manifest records them."""
    from .options import BucketSpec

    return BucketSpec().to_dict()
