"""Picks the implementation of the core once, at import: the compiled extension or its twin.

``FASTPCAP_NO_EXTENSIONS=1`` (any value but empty or ``0``) forces the pure-Python twin; so
does a Python implementation other than CPython, and an install built without the extension.
An extension that is present but fails to load is not skipped silently: it warns.  The
twin is imported only when it is used (it costs ~15 ms of start-up: numpy dtypes and
constants built at import).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING

NO_EXTENSIONS = os.environ.get("FASTPCAP_NO_EXTENSIONS", "") not in ("", "0")
if sys.implementation.name != "cpython":
    NO_EXTENSIONS = True

_compiled: ModuleType | None = None
if not NO_EXTENSIONS:
    try:
        _compiled = importlib.import_module("._fastpcap", __package__)
    except ImportError as exc:
        if importlib.util.find_spec("fastpcap._fastpcap") is not None:
            warnings.warn(
                f"fastpcap: the compiled core is installed but failed to load ({exc}); "
                "using the pure-Python twin, which is much slower",
                RuntimeWarning,
                stacklevel=2,
            )


class _Implementations(Mapping[str, ModuleType]):
    """The backends by name: ``"cython"`` when the compiled core loaded, and ``"python"``,
    the twin, imported on first use."""

    def __init__(self, compiled: ModuleType | None) -> None:
        self._names = ("cython", "python") if compiled is not None else ("python",)
        self._compiled = compiled

    def __getitem__(self, key: str) -> ModuleType:
        if key == "cython" and self._compiled is not None:
            return self._compiled
        if key == "python":
            from . import _pure

            return _pure
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


IMPLEMENTATIONS: Mapping[str, ModuleType] = _Implementations(_compiled)

if TYPE_CHECKING:
    # The twin's signatures stand for both backends (as yarl and multidict type theirs):
    # mypy checks every call of the core against them, and tests/test_backend.py checks
    # that the compiled core has exactly the twin's names and parameters.
    from . import _pure as impl
else:
    impl = _compiled if _compiled is not None else IMPLEMENTATIONS["python"]


def name() -> str:
    """The active backend: ``"cython"`` or ``"python"``."""
    return "cython" if impl is _compiled else "python"


def use(backend: str) -> str:
    """Switch the active backend (tests run everything on both); returns the previous one."""
    previous = name()
    try:
        globals()["impl"] = IMPLEMENTATIONS[backend]
    except KeyError:
        raise ValueError(f"backend {backend!r} is not available; have {sorted(IMPLEMENTATIONS)}") from None
    return previous
