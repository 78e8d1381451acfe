"""Every test runs on both backends: one session-scoped fixture, parametrised over them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastpcap import _backend

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session", params=["cython", "python"], autouse=True)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test; every test runs once with each."""
    name = request.param
    if name not in _backend.IMPLEMENTATIONS:
        if _backend.NO_EXTENSIONS or os.environ.get("FASTPCAP_ALLOW_PURE_INSTALL"):
            pytest.skip("the compiled core is not built (FASTPCAP_NO_EXTENSIONS)")
        pytest.fail("the compiled core is not importable: run `pip install .` to build it")
    previous = _backend.use(name)
    yield name
    _backend.use(previous)


@pytest.fixture
def cli(backend: str):
    """Run ``python -m fastpcap ARGS...`` in a fresh interpreter on the backend under test."""

    def run(*args: str | os.PathLike[str], input: bytes | None = None,
            check: bool = False) -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ)
        env.pop("FASTPCAP_NO_EXTENSIONS", None)
        if backend == "python":
            env["FASTPCAP_NO_EXTENSIONS"] = "1"
        proc = subprocess.run([sys.executable, "-m", "fastpcap", *map(str, args)], input=input,
                              capture_output=True, env=env, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"fastpcap {args} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    return run
