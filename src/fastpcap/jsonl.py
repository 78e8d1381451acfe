"""The JSONL row format (spec section 5): the one place that knows it.

Each line is what ``json.dumps(row)`` gives for the row dict, keys in the order of
:data:`~fastpcap.buckets.ROW_FIELDS` with ``source`` and ``available_in_deployment`` after
``t_wall_ns``.  Every value is an integer or a constant, so one ``%``-template per row gives
the same bytes as ``json.dumps`` at a fraction of its cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np

from .buckets import ROW_DTYPE, ROW_FIELDS

SOURCE = "bridge_pcap"
AVAILABLE_IN_DEPLOYMENT = True

KEYS = ROW_FIELDS[:2] + ("source", "available_in_deployment") + ROW_FIELDS[2:]
CONSTANTS = {"source": SOURCE, "available_in_deployment": AVAILABLE_IN_DEPLOYMENT}


def _template() -> str:
    # Constant values and keys are spelled by json.dumps itself; the integers by "%d", which
    # prints a Python int exactly as json.dumps does.  A test checks lines against json.dumps.
    fields = [
        f"{json.dumps(key)}: " + (json.dumps(CONSTANTS[key]) if key in CONSTANTS else "%d")
        for key in KEYS
    ]
    return "{" + ", ".join(fields) + "}\n"


_LINE = _template()


def format_rows(rows: np.ndarray) -> bytes:
    """The JSONL lines of ``rows`` (``ROW_DTYPE``), as bytes."""
    if rows.dtype != ROW_DTYPE:
        raise ValueError(f"rows must have ROW_DTYPE, not {rows.dtype}")
    line = _LINE
    return "".join([line % row for row in rows.tolist()]).encode("ascii")


def row_dict(row: np.void) -> dict[str, object]:
    """One row as the dict ``json.dumps`` would write (keys in JSONL order)."""
    values: dict[str, object] = dict(zip(ROW_FIELDS, (int(v) for v in row.tolist())))
    values.update(CONSTANTS)
    return {key: values[key] for key in KEYS}


def write_rows(blocks: Iterable[np.ndarray], out: BinaryIO) -> int:
    """Write blocks of rows to a binary file as JSONL; returns the number of rows written."""
    count = 0
    for rows in blocks:
        if len(rows):
            out.write(format_rows(rows))
            count += len(rows)
    return count
