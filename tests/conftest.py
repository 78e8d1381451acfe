"""Test helpers; the `backend` fixture that runs everything on both twins is in ../conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


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
