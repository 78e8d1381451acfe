#!/usr/bin/env python3
"""Coverage-guided fuzzing of fastpcap with atheris: both backends on every input.

    python fuzz/fuzz_fastpcap.py [libFuzzer flags] CORPUS_DIR [SEED_DIR...]

Each input is a 4-byte header choosing container patches, link type, decode, compression,
chunking and bucket options, then capture bytes (see ``fuzz/harness.py``); the compiled core
and the pure-Python twin must give the same packets, rows, warnings and errors.  A
disagreement raises ``harness.Mismatch`` and any exception other than ``CaptureError``
escapes: both make libFuzzer stop and write the input as ``crash-*``.

fastpcap's Python modules (the twin, the readers, the bucketer, the decompressors) are
instrumented by atheris for coverage; the compiled core adds its own edges when it was built
with ``-fsanitize=fuzzer-no-link`` (see fuzz/README.md).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["fastpcap"]):
    import fastpcap._pure  # noqa: F401 - imported for instrumentation
    import fastpcap.api  # noqa: F401
    import fastpcap.buckets  # noqa: F401
    import fastpcap.capture  # noqa: F401
    import fastpcap.compression  # noqa: F401
    import fastpcap.info  # noqa: F401
    import fastpcap.pcap  # noqa: F401
    import fastpcap.pcapng  # noqa: F401
    import fastpcap.reader  # noqa: F401

from fastpcap import _backend  # noqa: E402

import harness  # noqa: E402 - after the instrumented imports


def test_one_input(data: bytes) -> None:
    harness.check(data)


def main() -> None:
    if "cython" not in _backend.IMPLEMENTATIONS:
        sys.exit("fuzz_fastpcap: the compiled core is not built: there is nothing to compare the twin with")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
