"""The two backends are twins: same names, same dtype, same constants; the compiled one is the default."""

from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import fastpcap
from fastpcap import _backend, _format, _pure

COMPILED = _backend.IMPLEMENTATIONS.get("cython")
BOTH = pytest.mark.skipif(COMPILED is None, reason="the compiled core is not built")
# An install built with FASTPCAP_NO_EXTENSIONS=1 has no compiled core to prefer; the root
# conftest runs the suite on one only with FASTPCAP_ALLOW_PURE_INSTALL, and so do these guards.
INSTALLED = importlib.util.find_spec("fastpcap._fastpcap") is not None
NEEDS_INSTALLED = pytest.mark.skipif(not INSTALLED and bool(os.environ.get("FASTPCAP_ALLOW_PURE_INSTALL")),
                                     reason="a pure-Python install (FASTPCAP_ALLOW_PURE_INSTALL)")


def _fresh_backend(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "FASTPCAP_NO_EXTENSIONS"}
    clean.update(env)
    out = subprocess.run([sys.executable, "-c", "import fastpcap; print(fastpcap.BACKEND)"],
                         capture_output=True, text=True, env=clean, check=True)
    return out.stdout.strip()


@pytest.mark.once
@NEEDS_INSTALLED
def test_compiled_core_is_preferred_by_default() -> None:
    # A normal install must not silently run the slow path.
    assert _fresh_backend() == "cython"


@pytest.mark.once
@pytest.mark.parametrize("value", ["1", "yes"])
def test_no_extensions_forces_the_twin(value: str) -> None:
    assert _fresh_backend(FASTPCAP_NO_EXTENSIONS=value) == "python"


@pytest.mark.once
@NEEDS_INSTALLED
def test_no_extensions_zero_means_unset() -> None:
    assert _fresh_backend(FASTPCAP_NO_EXTENSIONS="0") == "cython"


def test_backend_attribute_follows_the_fixture(backend: str) -> None:
    assert fastpcap.BACKEND == backend
    assert _backend.impl is _backend.IMPLEMENTATIONS[backend]


@pytest.mark.once
@BOTH
def test_twin_dtype_equals_the_struct_derived_dtype() -> None:
    assert COMPILED.PACKET_DTYPE == _pure.PACKET_DTYPE
    assert COMPILED.PACKET_DTYPE.itemsize == _pure.PACKET_DTYPE.itemsize == 48
    assert COMPILED.PACKET_DTYPE.fields == _pure.PACKET_DTYPE.fields
    assert COMPILED.PACKET6_DTYPE == _pure.PACKET6_DTYPE
    assert COMPILED.PACKET6_DTYPE.itemsize == _pure.PACKET6_DTYPE.itemsize == 80
    assert COMPILED.PACKET6_DTYPE.fields == _pure.PACKET6_DTYPE.fields


@pytest.mark.once
@BOTH
def test_twins_export_the_same_names_and_values() -> None:
    """The twin's ``__all__`` is the compiled core's public names; constants are equal, and
    equal to the one home of the container facts (fastpcap._format); functions take the same
    parameters.  (``_backend.impl`` is typed as the twin, so mypy checks calls against it.)"""
    compiled = COMPILED
    assert {n for n in dir(compiled) if not n.startswith("_") and n != "np"} == set(_pure.__all__)
    for name in _pure.__all__:
        ours, twin = getattr(compiled, name), getattr(_pure, name)
        if callable(twin) and not isinstance(twin, type):
            params = list(inspect.signature(twin).parameters)
            assert list(inspect.signature(ours).parameters) == params, name
        elif not isinstance(twin, (type, np.dtype)):
            assert ours == twin, name
            if hasattr(_format, name):
                assert twin == getattr(_format, name), name


def test_walk_rejects_a_bad_range(backend: str) -> None:
    out = np.zeros(4, dtype=fastpcap.PACKET_DTYPE)
    for start, end in ((-1, 10), (0, 99), (9, 3)):
        with pytest.raises(ValueError):
            _backend.impl.walk(bytearray(32), start, end, out, 0, False, False, 1, 262144)


@pytest.mark.once
def test_use_rejects_unknown_backend() -> None:
    with pytest.raises(ValueError, match="not available"):
        _backend.use("rust")


def test_package_exports_and_stays_light() -> None:
    """Every name in ``__all__`` resolves; ``import fastpcap`` alone loads neither numpy nor
    the core (the command line checks its arguments, and handles Ctrl-C, before they load)."""
    code = ("import sys, fastpcap; heavy = sorted(m for m in ('numpy', 'fastpcap._fastpcap', 'fastpcap.api') "
            "if m in sys.modules); print(heavy); [getattr(fastpcap, n) for n in fastpcap.__all__]; "
            "print(fastpcap.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]"
    from importlib.metadata import version

    assert out[1] == fastpcap.__version__ == version("fastpcap")


@BOTH
def test_the_twin_is_imported_only_when_used(tmp_path) -> None:
    """With the compiled core, a whole run never imports the twin (its import costs start-up)."""
    path = tmp_path / "c.pcap"
    path.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    code = (f"import sys, fastpcap; fastpcap.bucket_rows({str(path)!r}, decode='extended'); "
            "print(fastpcap.BACKEND, 'fastpcap._pure' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "FASTPCAP_NO_EXTENSIONS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert run.stdout.split() == ["cython", "False"]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "FASTPCAP_NO_EXTENSIONS": "1"})
    assert run.stdout.split() == ["python", "True"]
    assert _backend.IMPLEMENTATIONS["python"] is _pure and list(_backend.IMPLEMENTATIONS) == ["cython", "python"]
    assert "python" in _backend.IMPLEMENTATIONS and "rust" not in _backend.IMPLEMENTATIONS
