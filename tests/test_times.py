"""Every timestamp a container can express either works or is a one-line error at its offset.

pcapng timestamps are 64-bit counts of any unit (decimal or binary resolution) plus a signed
64-bit offset in seconds: far more than int64 nanoseconds hold.  Rows are int64 too, so the
buckets' span and ``t_mono_ns`` have limits.  Each case: both backends agree with the oracle
(same rows, or an error at the same byte offset), and the command line says it in one line.
"""

from __future__ import annotations

import io
import warnings

import pytest

import fastpcap

from conftest import one_error_line
from oracle import OracleError, oracle
from pcapgen import Rec, epb, eth, idb, ipv4, pcap, pcapng, shb, tcp

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
FRAME = eth(ipv4(tcp()))
EPB = len(epb(0, 0, FRAME))  # every packet block here has this length


def at(data: bytes, packet: int, of: int) -> tuple[str, int]:
    """An error at the byte offset of the ``packet``-th of the ``of`` packet blocks that end
    ``data``."""
    return "error", len(data) - (of - packet + 1) * EPB


def ns_capture(*times: int, tsresol: int = 9, tsoffset: int = 0) -> bytes:
    return pcapng([shb(), idb(1, tsresol=tsresol, tsoffset=tsoffset), *(epb(0, t, FRAME) for t in times)])


def outcome(data: bytes, **options: object) -> tuple[str, object]:
    """("rows", JSONL) or ("error", offset): what fastpcap gives for ``data``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastpcap.GapWarning)
            rows = fastpcap.bucket_rows(io.BytesIO(data), **options)  # type: ignore[arg-type]
    except fastpcap.CaptureError as exc:
        assert str(exc).startswith(f"<stream>: byte offset {exc.offset}: ") and "\n" not in str(exc)
        return "error", exc.offset
    return "rows", fastpcap.format_rows(rows)


def expected(data: bytes, **options: object) -> tuple[str, object]:
    try:
        return "rows", oracle(data, **options).jsonl  # type: ignore[arg-type]
    except OracleError as exc:
        return "error", exc.offset


#: INT64_MIN + 0.1 s on interface 0, then INT64_MAX on interface 1.
FAR_APART = pcapng([shb(), idb(1, tsresol=9, tsoffset=-9_223_372_037), idb(1, tsresol=9),
                    epb(0, 245_224_192, FRAME), epb(1, INT64_MAX, FRAME)])

CASES = {
    # (capture, options, what must happen)
    "int64_max_works": (ns_capture(INT64_MAX), {}, "rows"),
    "largest_tsoffset_works": (ns_capture(0, tsoffset=INT64_MAX // 10**9), {}, "rows"),
    # 2**63 units and more: an unsigned count that int64 ns cannot hold, read as signed
    "top_bit_reads_as_int64_min": (ns_capture(1 << 63), {}, 1),  # -2**63 ns: its bucket cannot start
    "top_bit_reads_as_minus_1_ns": (ns_capture((1 << 64) - 1), {}, "rows"),
    "negative_relative_time": (ns_capture((1 << 64) - 505_425_287, tsresol=6, tsoffset=1_422_527_998), {}, "rows"),
    "unsigned_reading_first": (ns_capture(1 << 63, tsoffset=-9_223_372_036), {}, "rows"),
    "neither_reading_fits": (ns_capture(1 << 63, tsresol=0), {}, 1),  # +-2**63 s
    "binary_seconds_overflow": (ns_capture(1 << 40, tsresol=128), {}, 1),
    "decimal_seconds_overflow": (ns_capture(10**10, tsresol=0), {}, 1),
    "tsoffset_below_int64": (ns_capture(0, tsoffset=-(1 << 63)), {}, 1),
    "second_packet_out_of_range": (ns_capture(1_700_000_000 * 10**6, 9_300_000_000 * 10**6, tsresol=6), {}, 2),
    # exactly -2**63 ns: representable, but its bucket would start before it
    "first_at_int64_min": (ns_capture(145_224_192, tsoffset=-9_223_372_037), {}, 1),
    "just_above_int64_min": (ns_capture(145_224_192 + 10**8, tsoffset=-9_223_372_037), {}, "rows"),
    # two packets more than 2**63 ns apart (two interfaces: one 64-bit count cannot span it)
    "span_overflow": (FAR_APART, {}, 2),
    "span_just_fits": (ns_capture(854_775_808, (1 << 63) - 1, tsoffset=-9_223_372_036),
                       {"max_gap_s": 1}, "rows"),
    "t_mono_negative_works": (ns_capture(10**18), {"t_mono_origin_ns": INT64_MAX}, "rows"),
    "t_mono_overflow_first": (ns_capture(10**18), {"t_mono_origin_ns": INT64_MIN}, 1),
    "t_mono_overflow_later": (ns_capture(0, 10**18), {"t_mono_origin_ns": -(1 << 62) * 2 + 10**17,
                                                      "max_gap_s": 1}, 2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_times_at_the_limits(case: str) -> None:
    data, options, want = CASES[case]
    got = outcome(data, **options)
    assert got == expected(data, **options)
    packets = data.count(FRAME)
    assert got[0] == "rows" if want == "rows" else got == at(data, want, packets)  # type: ignore[arg-type]


def test_classic_pcap_cannot_overflow() -> None:
    """Classic pcap's largest time, (2**32 - 1) s + (2**32 - 1) us, fits: it works."""
    last = (1 << 32) - 1
    data = pcap([Rec(0, FRAME), Rec(0, FRAME, ts_sec=last, ts_frac=last)])
    assert outcome(data, max_gap_s=1) == expected(data, max_gap_s=1)
    assert outcome(data, max_gap_s=1)[0] == "rows"


def test_errors_name_the_packet_on_the_command_line(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "far.pcapng"
    path.write_bytes(FAR_APART)
    line = one_error_line(cli("bucketize", path))
    assert line == (f"fastpcap: error: {path}: byte offset {len(FAR_APART) - EPB}: packet 2: "
                    f"its timestamp, {INT64_MAX} ns since the epoch, is more than 2**63 ns (about 292 years) after "
                    "the start of the capture's first bucket (-9223372036800000000 ns)")
    path.write_bytes(ns_capture(10**10, tsresol=0))
    line = one_error_line(cli("bucketize", path))
    assert line == (f"fastpcap: error: {path}: byte offset {path.stat().st_size - EPB}: enhanced packet block "
                    f"on interface 0 has a timestamp of {10**19} ns since the epoch, outside what a signed 64-bit "
                    "count of nanoseconds holds (years 1677 to 2262)")
    proc = cli("bucketize", path, "--t-mono-origin-ns", str(1 << 63))  # checked before reading
    assert proc.returncode == 2 and b"usage:" in proc.stderr and b"Traceback" not in proc.stderr


def test_api_checks_t_mono_origin_ns() -> None:
    for bad in (1 << 63, INT64_MIN - 1):
        with pytest.raises(ValueError, match="t_mono_origin_ns must be a 64-bit signed integer"):
            fastpcap.bucket_rows(io.BytesIO(ns_capture(0)), t_mono_origin_ns=bad)


def test_negative_relative_times_read_signed() -> None:
    """The corpus's pcapng-example stores -505.425287 s relative to if_tsoffset on one of its
    interfaces: read as signed, those packets are at the offset minus 505 s."""
    data = ns_capture(5_000_000, (1 << 64) - 505_425_287, tsresol=6, tsoffset=1_422_527_998)
    t = fastpcap.read_packets(io.BytesIO(data))["t_ns"].tolist()
    assert t == [1_422_527_998 * 10**9 + 5 * 10**9, 1_422_527_998 * 10**9 - 505_425_287_000]
