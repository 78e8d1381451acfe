"""Differential tests: compiled core vs pure-Python twin vs the oracle, bytes and all.

Hypothesis generates whole captures (both byte orders, µs and ns, out-of-order clocks, gaps,
every awkward frame, partial tails, corrupt files).  For each one:

* the record walk of *both* implementations gives byte-identical packet arrays and the same
  stop position and status (whatever backend the fixture selected, so these tests and the
  kernels' twin checks are marked ``once``);
* the active backend's rows, streamed in arbitrary chunk and block sizes, give exactly the
  oracle's JSONL, gap statistics and errors (byte offsets included).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fastpcap
from fastpcap import _backend
from fastpcap._format import DECODED_LINKTYPES, max_caplen
from fastpcap.buckets import Bucketer
from fastpcap.jsonl import format_rows
from fastpcap.pcap import PcapReader

from conftest import read_all
from oracle import OracleError, decode_packet, oracle
from pcapgen import SYN, Rec, eth, ipv4, ipv6, pcap, tcp, udp
from strategies import captures, compressed, extended_linktype_frames, pcapng_captures, sweep, tunnel_frames
from strategies import frames as frames_strategy

COMPILED = _backend.IMPLEMENTATIONS.get("cython")
PURE = _backend.IMPLEMENTATIONS["python"]
BOTH = pytest.mark.skipif(COMPILED is None, reason="the compiled core is not built")


@pytest.mark.once
@BOTH
@settings(max_examples=sweep(300), suppress_health_check=[HealthCheck.too_slow])
@given(case=captures(errors=True), chunk=st.integers(1, 40), block=st.sampled_from([16, 17, 64, 1000, 1 << 20]))
def test_compiled_and_twin_walk_identically(case, chunk: int, block: int) -> None:
    data, _ = case
    assert read_all(COMPILED, data, chunk, block) == read_all(PURE, data, chunk, block)


@settings(max_examples=sweep(300), suppress_health_check=[HealthCheck.too_slow])
@given(case=captures(errors=True), chunk=st.integers(1, 50), block=st.sampled_from([16, 23, 256, 1 << 20]))
@example(case=(pcap([(10**18, eth(ipv4(tcp(flags=SYN))))]), {}), chunk=1, block=16)
def test_rows_equal_the_oracle(case, chunk: int, block: int) -> None:
    data, kw = case
    try:
        expected = oracle(data, **kw)
    except OracleError as exc:
        with pytest.raises(fastpcap.CaptureError) as err:
            reader = PcapReader(io.BytesIO(data), chunk_packets=chunk, block_size=block)
            bucketer = Bucketer(**kw)
            for packets in reader:
                list(bucketer.feed(packets))
        assert err.value.offset == exc.offset
        return
    reader = PcapReader(io.BytesIO(data), chunk_packets=chunk, block_size=block)
    bucketer = Bucketer(**kw)
    blocks = []
    for packets in reader:
        blocks.extend(bucketer.feed(packets))
    blocks.extend(bucketer.finish())
    got = b"".join(format_rows(b) for b in blocks)
    assert got == expected.jsonl
    assert reader.packets == bucketer.packets == expected.packets
    assert bucketer.rows == len(expected.rows)
    gaps = bucketer.gaps
    assert (gaps.gaps_cut, gaps.rows_cut, gaps.first_packet, gaps.first_offset) == (
        expected.gaps_cut, expected.rows_cut, expected.first_cut_packet, expected.first_cut_offset)
    # (the oracle calls only a cut record a truncated tail, not a cut global header)
    assert (reader.header is not None and reader.tail_bytes > 0) == expected.truncated_tail
    linktype = None if reader.header is None else reader.header.linktype
    assert (linktype if linktype not in DECODED_LINKTYPES else None) == expected.undecoded_linktype


@settings(max_examples=sweep(200))
@given(case=captures())
def test_public_api_equals_the_oracle(case, tmp_path_factory) -> None:
    data, kw = case
    path = tmp_path_factory.mktemp("cap") / "c.pcap"
    path.write_bytes(data)
    expected = oracle(data, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = fastpcap.bucket_rows(path, **kw)
    assert format_rows(rows) == expected.jsonl
    gap_warnings = [w for w in caught if issubclass(w.category, fastpcap.GapWarning)]
    assert len(gap_warnings) == (1 if expected.gaps_cut else 0)
    assert [w for w in caught if not issubclass(w.category, fastpcap.FastpcapWarning)] == []


# -- the walk itself, on arbitrary bytes (what a fuzzer would feed it) --------------------

@pytest.mark.once
@BOTH
@settings(max_examples=sweep(500))
@given(
    buf=st.binary(max_size=600),
    start=st.integers(0, 600), length=st.integers(0, 600), cap=st.integers(0, 9),
    base=st.integers(0, 2**40), swapped=st.booleans(), nsec=st.booleans(),
    linktype=st.sampled_from([1, 1, 1, 0, 12, 14, 101, 108, 113, 228, 229, 276, 0x1FF]),
    max_len=st.sampled_from([0, 14, 60, 262144]),
)
def test_walk_on_arbitrary_bytes(buf: bytes, start: int, length: int, cap: int, base: int,
                                 swapped: bool, nsec: bool, linktype: int, max_len: int) -> None:
    start = min(start, len(buf))
    end = min(start + length, len(buf))
    outs = []
    for impl in (COMPILED, PURE):
        out = np.zeros(cap, dtype=impl.PACKET_DTYPE)
        result = impl.walk(bytearray(buf), start, end, out, base, swapped, nsec, linktype, max_len)
        outs.append((result, out.tobytes()))
    assert outs[0] == outs[1]
    (pos, n, status), _ = outs[0]
    assert start <= pos <= end and 0 <= n <= cap and status in (0, 1)


@pytest.mark.once
@BOTH
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=30), st.booleans(), st.booleans())
def test_walk_of_well_formed_records_consumes_them_all(frames: list[bytes], swapped: bool, nsec: bool) -> None:
    data = pcap([Rec(10**18 + i * 1000, f) for i, f in enumerate(frames)],
                byteorder="big" if swapped else "little", nsec=nsec)
    for impl in (COMPILED, PURE):
        out = np.zeros(len(frames) + 1, dtype=impl.PACKET_DTYPE)
        pos, n, status = impl.walk(data, 24, len(data), out, 0, swapped, nsec, 1, max_caplen(1))
        assert (pos, n, status) == (len(data), len(frames), impl.WALK_OK)
        assert list(out["caplen"][:n]) == [len(f) for f in frames]


# -- distinct counting kernel --------------------------------------------------------------

@pytest.mark.once
@BOTH
@settings(max_examples=sweep(300))
@given(calls=st.lists(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**32 - 1) | st.integers(0, 9),
                                         st.booleans()), max_size=60), max_size=6),
       wide=st.booleans())
def test_distinct_counter_twins(calls, wide: bool) -> None:
    # Several calls in a row (chunks), buckets non-decreasing across them, values repeating
    # within and across calls: both kernels mark exactly the same first packets.
    kernels = (COMPILED.DistinctCounter(), PURE.DistinctCounter())
    seen: set[tuple[int, int]] = set()  # the plain model: (bucket, value) pairs seen so far
    bucket = 0
    for call in calls:
        buckets = np.array([bucket := bucket + step for step, _, _ in call], dtype=np.int64)
        dtype = np.uint32 if wide else np.uint16
        values = np.array([v & (0xFFFFFFFF if wide else 0xFFFF) for _, v, _ in call], dtype=dtype)
        valid = np.array([ok for _, _, ok in call], dtype=np.uint8)
        marks = []
        for kernel in kernels:
            out = np.full(len(call), 7, dtype=np.uint8)
            kernel.first_in_bucket(values, buckets, valid, out)
            marks.append(out.tobytes())
        assert marks[0] == marks[1]
        expected = []
        for b, v, ok in zip(buckets.tolist(), values.tolist(), valid.tolist()):
            expected.append(int(ok and (b, v) not in seen))
            if ok:
                seen.add((b, v))
        assert list(marks[0]) == expected


@pytest.mark.once
@BOTH
def test_distinct_counter_many_values_and_eviction() -> None:
    # Far more distinct values than the compiled table's first size, in one bucket and then
    # spread over many buckets (old buckets' entries are evicted as the table grows).
    rng = np.random.default_rng(1)
    kernels = (COMPILED.DistinctCounter(), PURE.DistinctCounter())
    for buckets in (np.zeros(50_000, dtype=np.int64), np.repeat(np.arange(1, 101), 500)):
        values = rng.integers(0, 30_000, len(buckets)).astype(np.uint32)
        valid = (rng.random(len(buckets)) < 0.9).astype(np.uint8)
        outs = []
        for kernel in kernels:
            out = np.empty(len(buckets), dtype=np.uint8)
            kernel.first_in_bucket(values, buckets, valid, out)
            outs.append(out)
        assert (outs[0] == outs[1]).all()
        for b in np.unique(buckets):
            sel = (buckets == b) & (valid == 1)
            assert outs[0][buckets == b].sum() == len(np.unique(values[sel]))


@pytest.mark.once
@BOTH
@pytest.mark.parametrize("impl", ["cython", "python"])
def test_distinct_counter_takes_negative_buckets(impl: str) -> None:
    # A byte range's first packets can precede the capture's first one: negative buckets.
    kernel = _backend.IMPLEMENTATIONS[impl].DistinctCounter()
    out = np.empty(4, dtype=np.uint8)
    kernel.first_in_bucket(np.array([7, 7, 7, 8], dtype=np.uint32), np.array([-5, -5, -1, -1]),
                           np.ones(4, dtype=np.uint8), out)
    assert list(out) == [1, 0, 1, 1]


@pytest.mark.once
@BOTH
@pytest.mark.parametrize("impl", ["cython", "python"])
def test_distinct_counter_rejects_decreasing_buckets(impl: str) -> None:
    kernel = _backend.IMPLEMENTATIONS[impl].DistinctCounter()
    one = np.ones(2, dtype=np.uint8)
    out = np.empty(2, dtype=np.uint8)
    with pytest.raises(ValueError, match="must not decrease"):
        kernel.first_in_bucket(np.arange(2, dtype=np.uint32), np.array([5, 4]), one, out)
    kernel.first_in_bucket(np.arange(2, dtype=np.uint32), np.array([5, 6]), one, out)
    with pytest.raises(ValueError, match="must not decrease"):
        kernel.first_in_bucket(np.arange(2, dtype=np.uint32), np.array([5, 7]), one, out)
    with pytest.raises(ValueError, match="same length"):
        kernel.first_in_bucket(np.arange(3, dtype=np.uint32), np.array([7, 7]), one, out)


@pytest.mark.once
@BOTH
@pytest.mark.parametrize("impl", ["cython", "python"])
def test_distinct_counter_values_in_and_width(impl: str) -> None:
    kernel = _backend.IMPLEMENTATIONS[impl].DistinctCounter()
    assert list(kernel.values_in(0)) == []
    out = np.empty(5, dtype=np.uint8)
    kernel.first_in_bucket(np.array([9, 3, 9, 4, 3], dtype=np.uint16), np.array([1, 1, 2, 2, 2]),
                           np.array([1, 1, 1, 1, 0], dtype=np.uint8), out)
    assert list(kernel.values_in(2)) == [4, 9] and kernel.values_in(2).dtype == np.uint32
    assert list(kernel.values_in(1)) == []  # only the newest bucket's values are known
    with pytest.raises(ValueError, match="16-bit values, not 32-bit"):
        kernel.first_in_bucket(np.array([1], dtype=np.uint32), np.array([3]), np.ones(1, np.uint8), out[:1])


def _link_header(linktype: int, ethertype: int, swap: bool) -> bytes:
    if linktype == 1:
        return bytes(12) + ethertype.to_bytes(2, "big")
    if linktype == 113:
        return bytes(14) + ethertype.to_bytes(2, "big")
    if linktype == 276:
        return ethertype.to_bytes(2, "big") + bytes(18)
    if linktype in (0, 108):
        family = {0x0800: 2, 0x86DD: 28}.get(ethertype, ethertype & 0xFF)
        return family.to_bytes(4, "little" if (swap and linktype == 0) else "big")
    return b""  # RAW, IPV4, IPV6: no header


@pytest.mark.once
@BOTH
@settings(max_examples=sweep(300))
@given(
    frames=st.lists(st.tuples(frames_strategy(), st.sampled_from([0x0800, 0x0800, 0x86DD, 0x0806]),
                              st.booleans(), st.integers(0, 30)), min_size=1, max_size=25),
    linktype=st.sampled_from([0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]),
)
def test_every_link_type_decodes_identically(frames, linktype: int) -> None:
    # Network-layer bytes (from the Ethernet frames strategy) under each link type's header,
    # sometimes cut short: both implementations decode them identically.
    records = []
    for i, (frame, ethertype, swap, cut) in enumerate(frames):
        body = _link_header(linktype, ethertype, swap) + frame[14:]
        records.append(Rec(10**18 + i * 1000, body[: max(0, len(body) - cut)] if cut > 20 else body))
    data = pcap(records, linktype=linktype)
    outs = []
    for impl in (COMPILED, PURE):
        out = np.zeros(len(records), dtype=impl.PACKET_DTYPE)
        result = impl.walk(data, 24, len(data), out, 0, False, False, linktype, max_caplen(linktype))
        outs.append((result, out.tobytes()))
    assert outs[0] == outs[1]
    decoded = np.frombuffer(outs[0][1], dtype=COMPILED.PACKET_DTYPE)["decoded"]
    header = {1: 14, 113: 16, 276: 20, 0: 4, 108: 4, 101: 1, 12: 1, 14: 1}.get(linktype, 0)
    long_enough = np.array([len(r.frame) >= header for r in records])
    if linktype != 147:  # a known link type: its header is decoded exactly when it is there
        assert list((decoded & COMPILED.DEC_LINK) != 0) == list(long_enough)


@pytest.mark.once
@BOTH
@settings(max_examples=sweep(300), suppress_health_check=[HealthCheck.too_slow])
@given(case=compressed(pcapng_captures(errors=True)), chunk=st.integers(1, 40),
       block=st.sampled_from([16, 64, 1000, 1 << 20]))
def test_compiled_and_twin_read_pcapng_identically(case, chunk: int, block: int) -> None:
    data = case[0] if isinstance(case, tuple) else case
    assert read_all(COMPILED, data, chunk, block) == read_all(PURE, data, chunk, block)


# -- the extended decode's encapsulations and link types on arbitrary bytes ----------------

# Byte strings that steer the decode into its paths: protocol types of every encapsulation,
# PPP protocol fields (both widths), MPLS entries with and without the bottom-of-stack bit,
# version nibbles, LLC/SNAP headers and NFLOG TLV headers (both byte orders, payload or not).
_STEERING = [
    b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x88\xa8", b"\x91\x00", b"\x88\x64", b"\x88\x47", b"\x88\x48",
    b"\x88\xe7", b"\x89\x26", b"\x00\x21", b"\x21", b"\x57", b"\x00\x57", b"\x02\x81", b"\x02\x83", b"\xc0\x21",
    b"\x00\x01\x01\x40", b"\x00\x01\x00\x40", b"\x45", b"\x60", b"\x46", b"\xff\x03", b"\x0f\x00", b"\x8f\x00",
    b"\xaa\xaa\x03\x00\x00\x00", b"\xaa\xaa\x03\x00\x00\xf8", b"\x08\x00\x01\x00", b"\x00\x08\x00\x01",
    b"\x18\x00\x09\x00", b"\x00\x18\x00\x09", b"\x03\x00\x09\x00", b"\x02\x00\x00\x00", b"\x0a\x00\x00\x00",
]
_PACKETS = [ipv4(tcp(1, 2, flags=SYN)), ipv4(udp(3, 53), proto=17), ipv6(udp(4, 53), next_header=17),
            ipv6(tcp(5, 6), next_header=6)]
_LINK_PREFIXES = {
    1: [bytes(12)], 113: [bytes(14)], 276: [b""], 104: [b"\x0f\x00", b""], 9: [b"\xff\x03", b""],
    50: [b"\xff\x03", b"\x8f\x00", b""], 10: [b"\x50" + bytes(12), b"\x57" + bytes(12), b""],
    239: [b"\x02\x00\x00\x00", b"\x0a\x00\x00\x00", b""],
}


@st.composite
def steered_frames(draw, linktype: int) -> bytes:
    """Arbitrary bytes near the decode's paths: either steering strings after a link header,
    or a well-formed frame of ``extended_linktype_frames`` with some of its bytes overwritten
    by steering strings or random bytes."""
    if draw(st.integers(0, 2)) == 0:
        parts = [draw(st.sampled_from(_LINK_PREFIXES[linktype]))]
        if linktype == 276:
            parts = [draw(st.sampled_from(_STEERING[:10])), bytes(18)]
        for _ in range(draw(st.integers(0, 10))):
            parts.append(draw(st.sampled_from(_STEERING)) if draw(st.integers(0, 2)) else draw(st.binary(max_size=24)))
        if draw(st.integers(0, 2)):  # an IP packet at the end, for the walk to find
            parts.append(draw(st.sampled_from(_PACKETS))[: draw(st.integers(0, 80))])
        return b"".join(parts)
    frame = bytearray(draw(extended_linktype_frames(linktype)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(frame)))
        chunk = draw(st.sampled_from(_STEERING)) if draw(st.booleans()) else draw(st.binary(min_size=1, max_size=4))
        frame[at : at + len(chunk)] = chunk
    return bytes(frame)


@pytest.mark.once
@BOTH
@settings(max_examples=sweep(600), suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), linktype=st.sampled_from(sorted(_LINK_PREFIXES)))
def test_extended_decode_of_steered_arbitrary_bytes(data, linktype: int) -> None:
    # Both backends decode identically, in both modes, and the rows are the oracle's; the
    # reference decode leaves the new link types undecoded.
    frames = data.draw(st.lists(steered_frames(linktype), min_size=1, max_size=12))
    capture = pcap([Rec(10**18 + i * 1000, f) for i, f in enumerate(frames)], linktype=linktype)
    for dtype in ("PACKET_DTYPE", "PACKET6_DTYPE"):
        outs = []
        for impl in (COMPILED, PURE):
            out = np.zeros(len(frames), dtype=getattr(impl, dtype))
            result = impl.walk(capture, 24, len(capture), out, 0, False, False, linktype, max_caplen(linktype))
            outs.append((result, out.tobytes()))
        assert outs[0] == outs[1]
        if dtype == "PACKET_DTYPE" and linktype not in DECODED_LINKTYPES:
            assert not any(np.frombuffer(outs[0][1], dtype=COMPILED.PACKET_DTYPE)["decoded"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastpcap.FastpcapWarning)
        rows = format_rows(fastpcap.bucket_rows(io.BytesIO(capture), decode="extended"))
    assert rows == oracle(capture, decode="extended").jsonl


# -- tunnels="inner" on arbitrary bytes near the tunnel paths -------------------------------

# GRE flag words (C, R, K, S, version 1 with A) and protocol types (Aruba's too), the UDP
# tunnel ports, ERSPAN and GTP-U first bytes, GENEVE option lengths, IP protocols 4/41/47/17,
# 802.11 frame control words (data, QoS data, protected) and LLC/SNAP, TZSP's port and headers.
_TUNNEL_STEERING = [
    b"\x00\x00\x08\x00", b"\x00\x00\x86\xdd", b"\x20\x00\x65\x58", b"\x10\x00\x88\xbe", b"\x00\x00\x88\xbe",
    b"\x10\x00\x22\xeb", b"\x30\x81\x88\x0b", b"\x20\x01\x88\x0b", b"\x40\x00\x08\x00", b"\x00\x00\x88\x47",
    b"\x12\xb5", b"\x17\xc1", b"\x08\x68", b"\x10\x00", b"\x20\x00", b"\x20\x01", b"\x30\xff", b"\x34\xff",
    b"\x32\xff", b"\x01", b"\x02", b"\x3f", b"\x04", b"\x29", b"\x2f", b"\x11", b"\x45", b"\x60", b"\x00",
    b"\x08\x00\x00\x00", b"\x00\x00\x82\x00", b"\x00\x00\x83\x70", b"\x08\x01", b"\x88\x02", b"\x08\x41",
    b"\xaa\xaa\x03\x00\x00\x00", b"\x90\x90", b"\x01\x00\x00\x01", b"\x01\x01\x00\x12",
]


@pytest.mark.once
@BOTH
@settings(max_examples=sweep(400), suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_tunnels_of_steered_arbitrary_bytes(data) -> None:
    # tunnels="inner": both backends decode identically, and the rows are the oracle's;
    # without the flag the packets are the extended decode's; each packet's encap bits are
    # the oracle's, with and without the flag
    frames = []
    for _ in range(data.draw(st.integers(1, 10))):
        frame = bytearray(data.draw(tunnel_frames()))
        for _ in range(data.draw(st.integers(0, 3))):
            at = data.draw(st.integers(0, len(frame)))
            chunk = (data.draw(st.sampled_from(_TUNNEL_STEERING)) if data.draw(st.booleans())
                     else data.draw(st.binary(min_size=1, max_size=4)))
            frame[at : at + len(chunk)] = chunk
        frames.append(bytes(frame))
    capture = pcap([Rec(10**18 + i * 1000, f) for i, f in enumerate(frames)])
    outs = []
    for impl in (COMPILED, PURE):
        for tunnels in (False, True):
            out = np.zeros(len(frames), dtype=impl.PACKET6_DTYPE)
            result = impl.walk(capture, 24, len(capture), out, 0, False, False, 1, max_caplen(1), tunnels)
            outs.append((result, out.tobytes()))
    assert outs[0] == outs[2] and outs[1] == outs[3]
    for (_, packed), tunnels in zip(outs[:2], (False, True)):
        got = np.frombuffer(packed, dtype=COMPILED.PACKET6_DTYPE)["encap"].tolist()
        assert got == [decode_packet(f, 1, True, tunnels)["encap"] for f in frames]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastpcap.FastpcapWarning)
        rows = format_rows(fastpcap.bucket_rows(io.BytesIO(capture), decode="extended", tunnels="inner"))
    assert rows == oracle(capture, decode="extended", tunnels="inner").jsonl
