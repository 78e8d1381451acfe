"""The JSONL row format (docs/data-model.md, "JSONL"): the one place that knows it.

Each line is what ``json.dumps(row)`` gives for the row dict, keys in the order of
:data:`fastpcap.rows.KEYS`.  Every value is an integer or a constant, so one ``%``-template
per row gives the same bytes as ``json.dumps`` at a fraction of its cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np

from .rows import CONSTANTS, KEYS, ROW_DTYPE


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


def write_rows(blocks: Iterable[np.ndarray], out: BinaryIO) -> int:
    """Write blocks of rows to a binary file as JSONL; returns the number of rows written."""
    count = 0
    for rows in blocks:
        if len(rows):
            out.write(format_rows(rows))
            count += len(rows)
    return count
