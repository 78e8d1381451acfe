"""--on-corrupt error|stop|resync (docs/data-model.md, "Corrupt records"), on both backends.

The three cases of issue 7 give exactly the stated rows: a captured length overwritten with
garbage (``stop``: the rows of the records before it; ``resync``: the rows of the capture
without it), 2,000 random bytes between two records (``resync``: the clean capture's rows),
an EPB whose leading length is wrong (``resync``: the rows of the pcapng without it).  Then
the policy through the command line, compressed input, ``--jobs``, ``info`` and the batch
runner; and Hypothesis: random corruptions resync to the same offsets on both backends and
give the rows and regions of the oracle, which resyncs naively from the doc's rule.
"""

from __future__ import annotations

import io
import json
import random
import struct
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpcap
from fastpcap import _backend, parallel
from fastpcap.info import capture_info
from fastpcap.jsonl import format_rows
from fastpcap.reader import concatenate

from conftest import MS, T0, episode, one_error_line, read_all
from oracle import OracleError, oracle
from pcapgen import (
    ACK,
    SYN,
    Rec,
    compress,
    epb,
    eth,
    idb,
    ipv4,
    isb,
    pcap,
    pcapng,
    record_offsets,
    shb,
    spb,
    tcp,
    udp,
)
from strategies import captures, compressed, corrupted, pcapng_captures, sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from traffic import write_capture  # noqa: E402

COMPILED = _backend.IMPLEMENTATIONS.get("cython")
PURE = _backend.IMPLEMENTATIONS["python"]
BOTH = pytest.mark.skipif(COMPILED is None, reason="the compiled core is not built")


def rows(source, **kw) -> tuple[bytes, list[fastpcap.CorruptWarning]]:
    """The JSONL of ``source`` and the CorruptWarnings of the run."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = format_rows(fastpcap.bucket_rows(source, **kw))
    return out, [w.message for w in caught if isinstance(w.message, fastpcap.CorruptWarning)]


def regions(warned: list[fastpcap.CorruptWarning]) -> list[tuple[int | None, int]]:
    return [(w.offset, w.skipped_bytes) for w in warned if w.kind == "region"]


def traffic(n: int = 60, *, start: int = T0) -> list[Rec]:
    """Packets 13 ms apart: DNS queries to the bridge and SYN/ACKs from it, varied enough
    that every record shows in the rows."""
    recs = []
    for i in range(n):
        if i % 3 == 0:
            frame = eth(ipv4(udp(40000 + i, 53), src="10.200.0.2", dst="10.200.0.1", proto=17))
        else:
            frame = eth(ipv4(tcp(8080, 40000 + i, flags=SYN | ACK), src="10.200.0.1", dst=f"10.0.{i}.{i % 7}"))
        recs.append(Rec(start + i * 13 * MS, frame))
    return recs


# -- the three cases of issue 7 ----------------------------------------------------------


@pytest.mark.parametrize("byteorder,nsec", [("little", False), ("big", True)])
@pytest.mark.parametrize("k", [0, 17, 59])
def test_garbage_captured_length(byteorder: str, nsec: bool, k: int) -> None:
    recs = traffic()
    data = pcap(recs, byteorder=byteorder, nsec=nsec)
    at, size = record_offsets(data)[k]
    garbage = random.Random(k).randrange(262145, 1 << 32)
    bad = bytearray(data)
    bad[at + 8:at + 12] = garbage.to_bytes(4, byteorder)  # type: ignore[arg-type]

    with pytest.raises(fastpcap.CaptureError) as error:
        rows(bad)
    assert error.value.offset == at and f"record {k + 1} claims {garbage} captured bytes" in str(error.value)

    stopped, warned = rows(bad, on_corrupt="stop")
    assert stopped == rows(pcap(recs[:k], byteorder=byteorder, nsec=nsec))[0]
    assert [(w.kind, w.offset) for w in warned] == [("stop", at)]
    assert f"byte offset {at}: record {k + 1} claims" in str(warned[0]) and f"after {k} packet(s)" in str(warned[0])

    resynced, warned = rows(bad, on_corrupt="resync")
    assert resynced == rows(pcap(recs[:k] + recs[k + 1:], byteorder=byteorder, nsec=nsec))[0]
    assert regions(warned) == [(at, size)]
    assert [(w.kind, w.regions, w.skipped_bytes) for w in warned][-1] == ("summary", 1, size)
    assert resynced == oracle(bytes(bad), on_corrupt="resync").jsonl


@pytest.mark.parametrize("k,seed", [(1, 1), (30, 2), (59, 3), (30, 4), (0, 5)])
def test_random_bytes_between_records(k: int, seed: int) -> None:
    data = pcap(traffic())
    at = record_offsets(data)[k][0]
    junk = random.Random(seed).randbytes(2000)
    spoilt = data[:at] + junk + data[at:]
    clean, _ = rows(data)
    resynced, warned = rows(spoilt, on_corrupt="resync")
    assert resynced == clean
    assert regions(warned) == [(at, 2000)]
    stopped, _ = rows(spoilt, on_corrupt="stop")
    assert stopped == rows(data[:at])[0]


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("wrong", ["+4", "-4", "+8", "small", "unaligned", "huge", "past_the_end", "zero"])
def test_epb_with_a_wrong_leading_length(byteorder: str, wrong: str) -> None:
    t0 = T0 // 1000  # µs units
    blocks = [shb(byteorder=byteorder), idb(1, byteorder=byteorder), idb(113, byteorder=byteorder)]
    for i, rec in enumerate(traffic(40)):
        frame = rec.frame if i % 5 else b"\x00" * 16 + rec.frame[14:]  # (SLL-sized header on interface 1)
        blocks.append(epb(0 if i % 5 else 1, t0 + i * 13_000, frame, byteorder=byteorder))
        if i == 20:
            blocks.append(isb(0, byteorder=byteorder))
    k = 3 + 30 + 1  # an EPB near the end (the one after the statistics block)
    data = pcapng(blocks)
    at = sum(len(b) for b in blocks[:k])
    length = len(blocks[k])
    value = {"+4": length + 4, "-4": length - 4, "+8": length + 8, "small": 28, "unaligned": length + 2,
             "huge": 0xFFFFFFF0, "past_the_end": len(data) - at + 400, "zero": 0}[wrong]
    bad = bytearray(data)
    bad[at + 4:at + 8] = value.to_bytes(4, byteorder)  # type: ignore[arg-type]
    resynced, warned = rows(bad, on_corrupt="resync")
    assert resynced == rows(pcapng(blocks[:k] + blocks[k + 1:]))[0]
    assert regions(warned) == [(at, length)]
    assert resynced == oracle(bytes(bad), on_corrupt="resync").jsonl
    stopped, warned = rows(bad, on_corrupt="stop")
    assert stopped == rows(pcapng(blocks[:k]))[0] and warned[0].offset == at
    if wrong == "past_the_end":  # the default reads it as a capture still being written
        assert rows(bad) == (stopped, [])
    else:
        with pytest.raises(fastpcap.CaptureError) as error:
            rows(bad)
        assert error.value.offset == at


# -- more of the rule ----------------------------------------------------------------------


def test_a_partial_last_record_stays_a_tail() -> None:
    recs = traffic(20)
    data = pcap(recs)
    cut = data[:-7]  # the last record's data cut short: a capture still being written
    for policy in ("error", "stop", "resync"):
        got, warned = rows(cut, on_corrupt=policy)
        assert (got, warned) == (rows(pcap(recs[:-1]))[0], [])
    last, size = record_offsets(data)[-1]
    with fastpcap.open_capture(io.BytesIO(cut), on_corrupt="resync") as reader:
        list(reader)
    assert (reader.end_offset, reader.tail_bytes, reader.skipped) == (last, size - 7, [])


def test_a_length_that_runs_past_the_end_hides_good_records() -> None:
    # incl_len within the link type's maximum but past the end of the file: a tail for the
    # default; a corrupt record for stop and resync, since plausible records start inside it.
    recs = traffic(30)
    data = pcap(recs)
    at, size = record_offsets(data)[25]
    bad = bytearray(data)
    bad[at + 8:at + 12] = (100_000).to_bytes(4, "little")
    assert rows(bad) == (rows(pcap(recs[:25]))[0], [])
    stopped, warned = rows(bad, on_corrupt="stop")
    assert stopped == rows(pcap(recs[:25]))[0] and [(w.kind, w.offset) for w in warned] == [("stop", at)]
    assert "claims 100000 captured bytes, but the capture ends" in str(warned[0])
    resynced, warned = rows(bad, on_corrupt="resync")
    assert resynced == rows(pcap(recs[:25] + recs[26:]))[0] and regions(warned) == [(at, size)]


def test_nothing_plausible_after_it_skips_to_the_end() -> None:
    recs = traffic(10)
    data = pcap(recs) + random.Random(9).randbytes(3000)
    end = len(pcap(recs))
    with fastpcap.open_capture(io.BytesIO(data), on_corrupt="resync") as reader:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            packets = concatenate(list(reader), reader.dtype)
        assert len(packets) == 10 and reader.skipped == [(end, 3000)] and reader.skipped_bytes == 3000
        assert (reader.end_offset, reader.tail_bytes) == (len(data), 0)
    assert "to the end of the capture (no plausible record after it)" in str(caught[0].message)


def test_a_time_far_from_the_last_packet_is_not_plausible() -> None:
    # After the corrupt record, a well-formed record two days later: not where the capture
    # goes on (its time is not near the last packet's); the one after it, an hour on, is.
    recs = traffic(12)
    far = Rec(T0 + 2 * 86_400 * 10**9, recs[0].frame)
    hour = Rec(T0 + 3600 * 10**9, recs[1].frame)
    good = pcap(recs[:6])
    bad_record = struct.pack("<IIII", 1, 2, 999_999, 999_999) + bytes(40)
    tail = pcap([far, hour] + recs[6:])[24:]
    data = good + bad_record + tail
    resynced, warned = rows(data, on_corrupt="resync")
    skipped = len(bad_record) + 16 + len(far.frame)
    assert regions(warned) == [(len(good), skipped)]
    assert resynced == rows(pcap(recs[:6] + [hour] + recs[6:]))[0]
    assert resynced == oracle(data, on_corrupt="resync").jsonl


def test_pcapng_corrupt_section_header_and_lost_interface() -> None:
    # The second section's header is corrupt (an unknown major version): a resync cannot use
    # its interfaces, so it skips to the third section; its packets count.
    sec = [shb(), idb(1)] + [epb(0, T0 // 1000 + i * 1000, r.frame) for i, r in enumerate(traffic(5))]
    second = [shb(version=(2, 0)), idb(1)]
    second += [epb(0, T0 // 1000 + 10_000 + i, r.frame) for i, r in enumerate(traffic(3))]
    third = [shb(byteorder="big"), idb(1, byteorder="big"), spb(traffic(1)[0].frame, byteorder="big")]
    data = pcapng(sec + second + third)
    got, warned = rows(data, on_corrupt="resync", max_gap_s=None)
    assert got == rows(pcapng(sec + third), max_gap_s=None)[0]
    assert regions(warned) == [(len(pcapng(sec)), len(pcapng(second)))]
    assert got == oracle(data, on_corrupt="resync", max_gap_s=None).jsonl


def test_resync_memory_stays_bounded(tmp_path: Path) -> None:
    # Garbage between two records: the scan steps through it, never holding it, so what it
    # takes does not grow with the garbage (4 MiB or 24 MiB of it).
    recs = traffic(20)
    peaks = []
    for mib in (4, 24):
        path = tmp_path / f"junk{mib}.pcap"
        with open(path, "wb") as f:
            f.write(pcap(recs[:10]))
            rng = np.random.default_rng(mib)
            for _ in range(mib):
                f.write(rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
            f.write(pcap(recs[10:])[24:])
        tracemalloc.start()
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                with fastpcap.open_capture(path, block_size=1 << 16, on_corrupt="resync") as reader:
                    count = sum(len(chunk) for chunk in reader)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert count == 20 and reader.skipped == [(len(pcap(recs[:10])), mib << 20)]
    assert peaks[1] < peaks[0] + (256 << 10) and peaks[1] < 4 << 20, peaks


def test_the_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="on_corrupt must be one of error, stop, resync"):
        fastpcap.open_capture(io.BytesIO(pcap([])), on_corrupt="skip")
    with pytest.raises(ValueError, match="on_corrupt"):
        fastpcap.bucket_rows(io.BytesIO(pcap([])), on_corrupt="ignore")
    assert fastpcap.BucketSpec(on_corrupt="resync").to_dict()["on_corrupt"] == "resync"


# -- through the command line, compression, --jobs, info and the batch runner --------------


def _spoilt(tmp_path: Path) -> tuple[Path, bytes, int]:
    """A capture with 2,000 random bytes before record 31, and the clean capture's rows."""
    data = episode(60)
    at = record_offsets(data)[30][0]
    path = tmp_path / "spoilt.pcap"
    path.write_bytes(data[:at] + random.Random(7).randbytes(2000) + data[at:])
    return path, rows(data)[0], at


def test_command_line(cli, tmp_path: Path) -> None:
    path, clean, at = _spoilt(tmp_path)
    out = tmp_path / "rows.jsonl"
    line = one_error_line(cli("bucketize", path, "-o", out))
    assert f"{path}: byte offset {at}: record 31 claims" in line and not out.exists()

    proc = cli("bucketize", path, "-o", out, "--on-corrupt", "resync")
    assert proc.returncode == 0 and out.read_bytes() == clean
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 2 and all(x.startswith("fastpcap: warning: ") for x in lines)
    assert f"byte offset {at}: record 31 claims" in lines[0] and "skipped 2000 byte(s)" in lines[0]
    assert lines[1].endswith("skipped 1 corrupt region(s), 2000 byte(s) in all (--on-corrupt resync)")

    proc = cli("bucketize", path, "--on-corrupt", "stop")
    assert proc.returncode == 0 and proc.stdout == rows(path.read_bytes()[:at])[0]
    assert f"byte offset {at}" in proc.stderr.decode() and "stopped reading there" in proc.stderr.decode()

    proc = cli("bucketize", path, "--on-corrupt", "skip")
    assert proc.returncode == 2 and "invalid choice: 'skip'" in proc.stderr.decode()


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressed_input(tmp_path: Path, kind: str) -> None:
    path, clean, at = _spoilt(tmp_path)
    packed = tmp_path / f"spoilt.pcap.{kind}"
    packed.write_bytes(compress(path.read_bytes(), kind))
    got, warned = rows(packed, on_corrupt="resync")
    assert got == clean and regions(warned) == [(at, 2000)]
    assert f"byte offset {at} of the decompressed capture" in str(warned[0])
    assert rows(packed, on_corrupt="stop")[0] == rows(path, on_corrupt="stop")[0]


def test_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Damage in the middle of a range, across a range boundary and near the end; with the
    # ranges made small, the rows and warnings of 4 processes are those of one.
    path = tmp_path / "traffic.pcap"
    write_capture(str(path), 8000, seed=11)
    data = bytearray(path.read_bytes())
    offsets = record_offsets(bytes(data))
    at = offsets[6000][0]
    data[at + 8:at + 12] = (0xDEAD0000).to_bytes(4, "little")
    for k, junk in ((7900, 333), (4000, 2000), (1500, 900)):  # from the end: offsets stay valid
        at = offsets[k][0]
        data[at:at] = random.Random(k).randbytes(junk)
    path.write_bytes(bytes(data))
    monkeypatch.setattr(parallel, "MIN_RANGE_BYTES", len(data) // 5)
    for policy in ("stop", "resync"):
        one = rows(path, on_corrupt=policy, jobs=1)
        four = rows(path, on_corrupt=policy, jobs=4)
        assert four[0] == one[0] and [str(w) for w in four[1]] == [str(w) for w in one[1]]
        assert one[0] == oracle(bytes(data), on_corrupt=policy).jsonl
    assert len(regions(one[1])) == 4


@settings(max_examples=sweep(40), suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=corrupted(captures(max_records=60)), policy=st.sampled_from(["stop", "resync"]),
       jobs=st.integers(2, 5), size=st.integers(40, 400))
def test_jobs_on_random_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case, policy: str, jobs: int,
                               size: int) -> None:
    data, kw = case
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    monkeypatch.setattr(parallel, "MIN_RANGE_BYTES", size)

    def run(n: int):
        try:
            got, warned = rows(path, on_corrupt=policy, jobs=n, **kw)
        except fastpcap.CaptureError as exc:
            return str(exc)
        return got, [str(w) for w in warned]

    assert run(jobs) == run(1)


def test_info(cli, tmp_path: Path) -> None:
    path, _, at = _spoilt(tmp_path)
    with pytest.warns(fastpcap.CorruptWarning):
        info = capture_info(path, on_corrupt="resync")
    assert (info["packets"], info["skipped_regions"], info["skipped_bytes"], info["skipped"]) == (
        60, 1, 2000, [[at, 2000]])
    assert info["error"] is None and info["stopped"] is None
    with pytest.warns(fastpcap.CorruptWarning, match="stopped reading there"):
        info = capture_info(path, on_corrupt="stop")
    assert info["packets"] == 30 and info["skipped"] == [] and f"byte offset {at}" in info["stopped"]
    assert capture_info(path)["error"] is not None

    proc = cli("info", "--on-corrupt", "resync", path)
    assert proc.returncode == 0
    assert f"Skipped:        2,000 corrupt bytes in 1 region(s): 2,000 at byte offset {at:,}" in proc.stdout.decode()
    proc = cli("info", "--json", "--on-corrupt", "resync", path)
    assert json.loads(proc.stdout)["skipped"] == [[at, 2000]]
    proc = cli("info", "--on-corrupt", "stop", path)
    assert proc.returncode == 0 and "Stopped:" in proc.stdout.decode()
    assert cli("info", path).returncode == 2


def test_batch(tmp_path: Path) -> None:
    path, clean, _ = _spoilt(tmp_path)
    (tmp_path / "in").mkdir()
    path.rename(tmp_path / "in" / "spoilt.pcap")
    (tmp_path / "in" / "good.pcap").write_bytes(episode(10))
    result = fastpcap.bucketize_many(tmp_path / "in", tmp_path / "out", jobs=1, progress=False,
                                     on_corrupt="resync")
    assert (result.written, result.failed, result.skipped_bytes) == (2, 0, 2000)
    assert "2,000 corrupt bytes skipped in 1 capture" in result.summary()
    assert (tmp_path / "out" / "spoilt.jsonl").read_bytes() == clean
    manifest = [json.loads(x) for x in (tmp_path / "out" / "_fastpcap_manifest.jsonl").read_text().splitlines()]
    assert {m["relative"]: m["skipped_bytes"] for m in manifest} == {"spoilt.pcap": 2000, "good.pcap": 0}
    assert all(m["options"]["on_corrupt"] == "resync" for m in manifest)
    # another policy is another output: not up to date
    again = fastpcap.bucketize_many(tmp_path / "in", tmp_path / "out", jobs=1, progress=False, on_corrupt="stop")
    assert again.written == 2 and again.skipped == 0


# -- Hypothesis: random damage --------------------------------------------------------------


DAMAGED = corrupted(captures(max_records=30)) | corrupted(pcapng_captures(max_records=30))


@pytest.mark.once
@BOTH
@settings(max_examples=sweep(300), suppress_health_check=[HealthCheck.too_slow])
@given(case=compressed(DAMAGED, truncate=False), policy=st.sampled_from(["stop", "resync"]),
       chunk=st.integers(1, 40), block=st.sampled_from([16, 23, 256, 1000, 1 << 20]))
def test_both_backends_resync_to_the_same_offsets(case, policy: str, chunk: int, block: int) -> None:
    data = case[0]
    compiled = read_all(COMPILED, data, chunk, block, policy)
    assert compiled == read_all(PURE, data, chunk, block, policy)
    # (and how the reading was cut changes nothing)
    assert compiled == read_all(COMPILED, data, 1 << 14, 1 << 22, policy)


@settings(max_examples=sweep(200), suppress_health_check=[HealthCheck.too_slow])
@given(case=DAMAGED, policy=st.sampled_from(["stop", "resync"]), block=st.sampled_from([16, 64, 1 << 20]))
def test_resync_equals_the_oracle(case, policy: str, block: int) -> None:
    data, kw = case
    try:
        expected = oracle(data, on_corrupt=policy, **kw)
    except OracleError as exc:
        with pytest.raises(fastpcap.CaptureError) as err:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fastpcap.CorruptWarning)
                reader = fastpcap.open_capture(io.BytesIO(data), block_size=block, on_corrupt=policy)
                bucketer = fastpcap.Bucketer(**kw)
                for packets in reader:
                    list(bucketer.feed(packets))
        assert err.value.offset == exc.offset
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastpcap.CorruptWarning)
        reader = fastpcap.open_capture(io.BytesIO(data), block_size=block, on_corrupt=policy)
        bucketer = fastpcap.Bucketer(**kw)
        blocks = []
        for packets in reader:
            blocks.extend(bucketer.feed(packets))
        blocks.extend(bucketer.finish())
    assert b"".join(format_rows(b) for b in blocks) == expected.jsonl
    assert reader.skipped == expected.skipped
    assert (reader.stopped and reader.stopped.offset) == expected.stopped_at
    assert reader.packets == expected.packets
