"""An archive's captures: which files to read, and where each one's rows go.

Each input is a capture file, a directory (searched recursively) or a glob
(``'archive/**/*.pcap*'``, ``**`` matching any depth).  Inside directories and globs, a file
is a capture when its first bytes say so (:func:`fastpcap.capture.sniff`: any container and
compression fastpcap reads), whatever its name; other files are ignored (and counted).  A file
named directly is always taken: if it is not a capture, its run fails and says why.

Output names mirror the inputs: a file found under a directory (or a glob's fixed leading
folder) ``D`` goes to ``OUTDIR/<its path relative to D>``, a file named directly to
``OUTDIR/<its name>``; a trailing compression suffix and then a capture suffix are dropped and
the format's is added (``D/a/b/ep1.pcap.gz`` → ``OUTDIR/a/b/ep1.jsonl``).  Two captures that
would land on the same output are a usage error, found before anything runs.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ._output import COMPRESSION_SUFFIXES, SUFFIX_OF
from .capture import sniff
from .errors import unreadable

#: Suffixes dropped from a capture's name (after a compression suffix) to name its output.
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
#: The extension of each output format.
FORMAT_SUFFIXES = {"jsonl": ".jsonl", "parquet": ".parquet"}
#: The archive runner's own file in an output folder.
MANIFEST_NAME = "_fastpcap_manifest.jsonl"


class UsageError(ValueError):
    """Inputs and outputs that cannot make a run (the command line's exit status 2)."""


@dataclass(frozen=True)
class Capture:
    """One capture of an archive and where its rows go."""

    path: str  # the file to read
    given: str  # the input it was found through, as the user gave it
    relative: str  # its path relative to that input's folder (its name, if named directly)
    output: str | None  # its output file (None: no per-capture output, --combine only)
    size: int
    mtime_ns: int


@dataclass
class Plan:
    """What a run will do: the captures, the files ignored, the inputs that failed already."""

    captures: list[Capture] = field(default_factory=list)
    ignored: int = 0  # files in folders and globs that are not captures
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, error line) found while planning


def is_glob(text: str) -> bool:
    return glob.has_magic(text)


def output_name(relative: str, fmt: str, compression: str | None = None) -> str:
    """``a/b/ep1.pcap.gz`` → ``a/b/ep1.jsonl`` (``.jsonl.gz`` with gzip output compression)."""
    folder, name = os.path.split(relative)
    stem, ext = os.path.splitext(name)
    if ext.lower() in COMPRESSION_SUFFIXES and stem:
        name = stem
        stem, ext = os.path.splitext(name)
    if ext.lower() in CAPTURE_SUFFIXES and stem:
        name = stem
    name += FORMAT_SUFFIXES[fmt] + (SUFFIX_OF[compression] if compression else "")
    return os.path.join(folder, name)


def plan(inputs: Sequence[str], out_dir: str | None, *, fmt: str = "jsonl",
         compression: str | None = None) -> Plan:
    """Find the captures of ``inputs`` and name their outputs under ``out_dir`` (``None``: no
    per-capture outputs).  Raises :class:`UsageError` for outputs that would collide."""
    result = Plan()
    skip = {os.path.realpath(out_dir)} if out_dir is not None else set()
    for given in inputs:
        if given == "-":
            raise UsageError("stdin ('-') can only be read alone, not as one of many inputs")
        for path, relative, named in _expand(given, skip):
            try:
                st = os.stat(path)
            except OSError as exc:
                result.failed.append((given, str(unreadable(path, exc))))
                continue
            if not named:
                if not stat.S_ISREG(st.st_mode) or not sniff(path):
                    result.ignored += 1
                    continue
            output = None if out_dir is None else os.path.join(out_dir, output_name(relative, fmt, compression))
            result.captures.append(Capture(path, given, relative, output, st.st_size, st.st_mtime_ns))
    _refuse_collisions(result.captures)
    return result


def _expand(given: str, skip: set[str]) -> Iterator[tuple[str, str, bool]]:
    """``(path, relative path, named directly)`` of the files an input stands for."""
    if os.path.isdir(given):
        yield from ((path, os.path.relpath(path, given), False) for path in _walk(given, skip))
    elif os.path.exists(given) or not is_glob(given):
        yield given, os.path.basename(given), True
    else:
        base = _glob_base(given)
        matches = sorted(p for p in glob.glob(given, recursive=True) if os.path.isfile(p))
        if not matches:
            yield given, os.path.basename(given), True  # reported as a missing file
        for path in matches:
            if not _under(path, skip):
                yield path, os.path.relpath(path, base), False


def _walk(folder: str, skip: set[str]) -> Iterator[str]:
    """Every file under ``folder``, sorted, not following links to folders (no loops), and
    not entering an output folder that lies inside it."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) not in skip)
        for name in sorted(files):
            if name != MANIFEST_NAME:
                yield os.path.join(root, name)


def _under(path: str, folders: set[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == f or real.startswith(f + os.sep) for f in folders)


def _glob_base(pattern: str) -> str:
    """The fixed folder a glob starts from: its leading components without wildcards."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if is_glob(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or ("/" if pattern.startswith(os.sep) else ".")


def _refuse_collisions(captures: list[Capture]) -> None:
    seen: dict[str, Capture] = {}
    for capture in captures:
        if capture.output is None:
            continue
        key = os.path.normcase(os.path.normpath(capture.output))
        if key in seen:
            first = seen[key]
            raise UsageError(f"{first.path} and {capture.path} would both be written to {capture.output}; "
                             "rename one, or process them in separate runs")
        seen[key] = capture
