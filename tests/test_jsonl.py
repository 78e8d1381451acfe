"""The JSONL writer gives exactly json.dumps's bytes for every row.

The writer uses neither backend (plain Python and numpy), so these run under one only (``once``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastpcap import ROW_DTYPE, ROW_FIELDS, format_rows
from fastpcap.rows import CONSTANTS, KEYS

pytestmark = pytest.mark.once

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _reference_line(values: tuple[int, ...]) -> bytes:
    # The reference builds a dict in this key order and json.dumps it.
    row = dict(zip(ROW_FIELDS, values))
    ordered = {
        "t_mono_ns": row["t_mono_ns"], "t_wall_ns": row["t_wall_ns"], "source": "bridge_pcap",
        "available_in_deployment": True, "bucket_ms": row["bucket_ms"],
        **{k: row[k] for k in ROW_FIELDS[3:]},
    }
    return (json.dumps(ordered) + "\n").encode()


@given(st.lists(st.tuples(*[INT64] * len(ROW_FIELDS)), max_size=20))
def test_lines_equal_json_dumps(values: list[tuple[int, ...]]) -> None:
    rows = np.array(values, dtype=ROW_DTYPE)
    assert format_rows(rows) == b"".join(_reference_line(v) for v in values)


def test_key_order_is_the_specs() -> None:
    assert KEYS == (
        "t_mono_ns", "t_wall_ns", "source", "available_in_deployment", "bucket_ms",
        "pkts_in", "pkts_out", "bytes_in", "bytes_out", "syn_count", "fin_count", "rst_count",
        "udp_count", "tcp_count", "dns_query_count", "unique_dst_ips", "unique_dst_ports",
        "tcp_new_flows",
    )


def test_lines_round_trip() -> None:
    rows = np.array([tuple(range(len(ROW_FIELDS)))], dtype=ROW_DTYPE)
    line = json.loads(format_rows(rows))
    assert list(line) == list(KEYS)
    assert line == {**dict(zip(ROW_FIELDS, range(len(ROW_FIELDS)))), **CONSTANTS}


def test_rejects_other_dtypes() -> None:
    with pytest.raises(ValueError, match="ROW_DTYPE"):
        format_rows(np.zeros(3, dtype=np.int64))
