"""Smoke test of an installed wheel, for where the test suite cannot run: Windows, whose Python
lacks the pty, termios and fcntl that tests/conftest.py imports (cibuildwheel's test command
there).  Checks that the compiled core loads and that both backends turn the sample capture into
the same 26 rows.  ``python tests/wheel_smoke.py``; exits non-zero on failure.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

import fastpcap
from fastpcap import _backend
from fastpcap.errors import HostAddressWarning

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample.pcap"


def main() -> int:
    if fastpcap.BACKEND != "cython":
        print(f"fastpcap {fastpcap.__version__}: the compiled core did not load (backend {fastpcap.BACKEND})")
        return 1
    warnings.simplefilter("ignore", HostAddressWarning)  # the sample's addresses are its own
    rows = {}
    for name in ("cython", "python"):
        _backend.use(name)
        rows[name] = fastpcap.bucket_rows(str(SAMPLE))
    if len(rows["cython"]) != 26 or not np.array_equal(rows["cython"], rows["python"]):
        print(f"the backends disagree on {SAMPLE.name}: {len(rows['cython'])} and {len(rows['python'])} rows")
        return 1
    print(f"fastpcap {fastpcap.__version__} on {sys.platform}: compiled core loaded, "
          f"{len(rows['cython'])} identical rows from both backends")
    return 0


if __name__ == "__main__":
    sys.exit(main())
