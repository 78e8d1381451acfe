"""The fuzzer's regression corpus (fuzz/corpus/), replayed through both backends.

Each file is one input of ``fuzz/fuzz_fastpcap.py``: a 4-byte header choosing link type,
decode, compression, chunking and bucket options, then capture bytes (fuzz/harness.py).
``harness.check`` runs it on the compiled core and the pure-Python twin, each through the
public path and the reader with the chosen chunking, and fails on any disagreement (packets,
rows, warnings, errors with their offsets), on any exception but ``CaptureError`` and on
any warning but fastpcap's own.  The same check the fuzzer ran, without atheris: .ci/run
replays the corpus with the debug build (bounds checks) too.
"""

from __future__ import annotations

import struct
import sys
import warnings

import numpy as np
import pytest

from fastpcap import _backend, _pure

from conftest import REPO

sys.path.insert(0, str(REPO / "fuzz"))
import harness  # noqa: E402

CORPUS = REPO / "fuzz" / "corpus"
INPUTS = sorted(p.name for p in CORPUS.iterdir()) if CORPUS.is_dir() else []
BOTH = pytest.mark.skipif("cython" not in _backend.IMPLEMENTATIONS, reason="the compiled core is not built")
pytestmark = pytest.mark.once  # each test compares both backends itself

MAX_LEN = 4096  # the fuzzer's -max_len
DECODED = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276)


@pytest.mark.parametrize("name", INPUTS)
def test_corpus_input_replays_the_same_on_both_backends(name: str) -> None:
    harness.check((CORPUS / name).read_bytes())


def test_the_corpus_is_small_and_spans_containers_link_types_and_decodes() -> None:
    # What the merged corpus must keep for the replay to mean something: small files, and
    # inputs for classic pcap and pcapng, every decoded link type, both decodes, compression.
    assert len(INPUTS) >= 100, f"fuzz/corpus holds {len(INPUTS)} inputs"
    sizes = [(CORPUS / name).stat().st_size for name in INPUTS]
    assert max(sizes) <= MAX_LEN and sum(sizes) < 1 << 20
    containers, linktypes, decodes, compressions = set(), set(), set(), set()
    for name in INPUTS:
        raw = (CORPUS / name).read_bytes()
        case = harness.decode_input(raw)
        body = raw[harness.HEADER_SIZE:]
        if case.linktype is not None:
            body = harness.patch_linktype(body, case.linktype)
        container, found = header_linktypes(body)
        containers.add(container)
        linktypes.update(found)
        decodes.add(case.spec.decode)
        compressions.add(case.compression)
    assert {"pcap", "pcapng"} <= containers
    assert set(DECODED) <= linktypes, f"no input of link type(s) {sorted(set(DECODED) - linktypes)}"
    assert linktypes - set(DECODED), "no input of an undecoded link type"
    assert decodes == {"reference", "extended"}
    assert {None, "gzip"} <= compressions


def header_linktypes(body: bytes) -> tuple[str | None, set[int]]:
    """The container of ``body`` and the link types its header (classic) or its interface
    description blocks (pcapng, as far as well-formed blocks go) name."""
    container, fields = harness.linktype_fields(body)
    return container, {struct.unpack_from(fmt, body, offset)[0] & 0x03FFFFFF for offset, fmt in fields}


# -- the check itself catches what it is there to catch ------------------------------------

def a_capture_with_rows() -> bytes:
    """An input of the corpus whose capture gives packets and rows on both backends."""
    for name in INPUTS:
        raw = (CORPUS / name).read_bytes()
        outcome = harness.check(raw)
        if outcome["public"].count and outcome["public"].error is None and not outcome["public"].truncated:
            return raw
    raise AssertionError("no input of the corpus gives rows")


@BOTH
def test_the_check_fails_when_the_twin_decodes_a_packet_differently(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = a_capture_with_rows()
    walks = {"walk": _pure.walk, "walk_pcapng": _pure.walk_pcapng}

    def shifted(real):  # the twin's walker, one nanosecond off on the first packet it writes
        def walk(*args):
            pos, n, status = real(*args)
            if n:
                args[3]["t_ns"][0] += 1
            return pos, n, status
        return walk

    for name, real in walks.items():
        monkeypatch.setattr(_pure, name, shifted(real))
    with pytest.raises(harness.Mismatch, match="cython and python disagree"):
        harness.check(raw)


@BOTH
def test_the_check_fails_when_a_walk_raises_anything_but_a_capture_error(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = a_capture_with_rows()

    def broken(*args):
        raise IndexError("index 4096 is out of bounds")

    monkeypatch.setattr(_pure, "walk", broken)
    monkeypatch.setattr(_pure, "walk_pcapng", broken)
    with pytest.raises(IndexError):
        harness.check(raw)


@BOTH
def test_the_check_fails_on_a_warning_that_is_not_fastpcaps(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = a_capture_with_rows()

    def noisy(real):  # the twin's walker, warning as numpy does on an overflow
        def walk(*args):
            warnings.warn("overflow encountered in scalar add", RuntimeWarning, stacklevel=1)
            return real(*args)
        return walk

    monkeypatch.setattr(_pure, "walk", noisy(_pure.walk))
    monkeypatch.setattr(_pure, "walk_pcapng", noisy(_pure.walk_pcapng))
    with pytest.raises(harness.UnexpectedWarning, match="RuntimeWarning"):
        harness.check(raw)


def test_the_input_header_round_trips() -> None:
    data = b"\xd4\xc3\xb2\xa1" + bytes(20)
    raw = harness.encode_input(data, linktype=276, extended=True, wire=True, compression="zstd", info=True,
                               chunking=4, bucket_ms=1, gap=3, origin=1, hosts=1)
    case = harness.decode_input(raw)
    assert (case.linktype, case.compression, case.info, case.chunk_packets, case.block_size) == (
        276, "zstd", True, 7, 61)
    assert (case.spec.decode, case.spec.size, case.spec.bucket_ms, case.spec.max_gap_s,
            case.spec.t_mono_origin_ns) == ("extended", "wire", 1, None, -(1 << 63))
    assert case.spec.host_ips == ("10.200.0.2", "fd00::1", "::ffff:a00:1")  # as ipaddress spells them
    assert header_linktypes(harness.patch_linktype(data, 276)) == ("pcap", {276})
    assert np.frombuffer(harness.compress(data, "zstd"), dtype=np.uint8)[:4].tobytes() == b"\x28\xb5\x2f\xfd"
