"""Real captures from public projects (../shared/corpus), on both backends, against the oracle.

These files live outside the repository; a fresh clone without ../shared skips them with a
reason, and CI (FASTPCAP_REQUIRE_CORPUS=1) fails instead of skipping.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import pytest

import fastpcap

from conftest import CORPUS
from oracle import OracleError, oracle

pytestmark = pytest.mark.corpus

if not (CORPUS / "MANIFEST.tsv").exists():
    if os.environ.get("FASTPCAP_REQUIRE_CORPUS"):
        raise RuntimeError(f"FASTPCAP_REQUIRE_CORPUS is set but {CORPUS}/MANIFEST.tsv is missing")
    pytest.skip(f"the shared capture corpus is not here ({CORPUS}): a clone without ../shared",
                allow_module_level=True)

with open(CORPUS / "MANIFEST.tsv", newline="") as f:
    MANIFEST = {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}

CLASSIC = sorted(name for name, row in MANIFEST.items() if row["format"].startswith("pcap-"))
ETHERNET = sorted(name for name in CLASSIC if MANIFEST[name]["linktype"] == "EN10MB(1)")
EVERYTHING = sorted(MANIFEST)


@pytest.mark.once
def test_the_corpus_is_what_these_tests_expect() -> None:
    assert len(ETHERNET) >= 45 and len(CLASSIC) >= 80 and len(EVERYTHING) >= 110


def rows_or_error(path: Path, **kw) -> tuple[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastpcap.FastpcapWarning)
        try:
            return "rows", fastpcap.format_rows(fastpcap.bucket_rows(path, **kw))
        except fastpcap.CaptureError as exc:
            return "error", exc.offset


def oracle_or_error(data: bytes, **kw) -> tuple[str, object]:
    try:
        return "rows", oracle(data, **kw).jsonl
    except OracleError as exc:
        return "error", exc.offset


@pytest.mark.parametrize("name", EVERYTHING)
def test_every_corpus_file_matches_the_oracle(name: str) -> None:
    # Ethernet classic pcaps are the reference's inputs; every other file must still give
    # the oracle's answer: size-only rows for other link types, a clean error (at the same
    # byte offset) for what is not a classic pcap or is corrupt.
    path = CORPUS / name
    assert rows_or_error(path) == oracle_or_error(path.read_bytes())


@pytest.mark.parametrize("name", ETHERNET)
def test_ethernet_pcaps_packet_counts_match_capinfos(name: str) -> None:
    expected = MANIFEST[name]["packets"]
    path = CORPUS / name
    if not expected.isdigit():
        # The damaged ones capinfos reads only in part: we must stop with an error too.
        assert expected.startswith("error:")
        kind, _ = rows_or_error(path)
        if "cut short in the middle of a packet" in expected:
            assert kind == "rows"  # a partial last record is not an error
            assert len(fastpcap.read_packets(path)) == int(expected.split("(read ")[1].split()[0])
        else:
            assert kind == "error"
        return
    assert len(fastpcap.read_packets(path)) == int(expected)


def test_fuzzed_caplen_is_reported_where_it_is() -> None:
    name = "pcapplusplus__clusterfuzz-testcase-minimized-FuzzTarget-5204104585674752"
    with pytest.raises(fastpcap.CaptureError) as err:
        fastpcap.read_packets(CORPUS / name)
    assert err.value.offset == 84
    assert "claims 1862299503 captured bytes" in str(err.value)


@pytest.mark.parametrize(("name", "days"), [("nfstream__coap_mqtt.pcap", 1411),
                                            ("tcpdump__kday3.pcap", 23),
                                            ("nfstream__dns_fragmented.pcap", 22)])
def test_captures_spanning_days(name: str, days: int) -> None:
    # coap_mqtt spans ~1,400 days: 1.2 billion rows at 100 ms without the gap cap.
    path = CORPUS / name
    data = path.read_bytes()
    with pytest.warns(fastpcap.GapWarning, match="the gap cap of 3600 s cut"):
        capped = fastpcap.bucket_rows(path)
    assert fastpcap.format_rows(capped) == oracle(data).jsonl
    assert len(capped) < 100_000
    # The cap off, with one-day buckets so the reference behaviour stays small enough to check.
    daily = fastpcap.bucket_rows(path, max_gap_s=None, bucket_ms=86_400_000)
    assert fastpcap.format_rows(daily) == oracle(data, max_gap_s=None, bucket_ms=86_400_000).jsonl
    assert len(daily) == days + 1


@pytest.mark.parametrize("name", sorted(n for n in CLASSIC if MANIFEST[n]["format"].startswith("pcap-be")
                                         and MANIFEST[n]["packets"].isdigit()))
def test_big_endian_files(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastpcap.LinkTypeWarning)
        rows = fastpcap.bucket_rows(CORPUS / name)
    assert len(rows) and rows["pkts_in"].sum() + rows["pkts_out"].sum() == int(MANIFEST[name]["packets"])


@pytest.mark.parametrize("name", EVERYTHING)
def test_every_corpus_file_matches_the_oracle_extended(name: str) -> None:
    # The extended decode, with hosts of both families and wire sizes; the oracle's extended
    # decode is itself checked against tshark (test_tshark_extended.py).
    path = CORPUS / name
    kw = dict(decode="extended", host_ips=["10.0.0.1", "192.168.1.1", "2001:db8::1"], size="wire")
    assert rows_or_error(path, **kw) == oracle_or_error(path.read_bytes(), **kw)
