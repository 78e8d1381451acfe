"""Rows as Arrow tables and Parquet files: the JSONL's keys, in its order, with its values.

Every integer field is an int64 column, ``source`` a string and ``available_in_deployment`` a
bool, in the order of :data:`fastpcap.rows.KEYS`; a combined table of many captures has a
first column ``capture``.  Files are written a block of rows at a time (one row group each),
zstd-compressed, with key/value metadata saying where the rows came from and how they were
made.  pyarrow is an optional dependency (``pip install 'fastpcap[parquet]'``), imported only
when one of these is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ._version import __version__
from .options import BucketSpec
from .rows import CONSTANTS, KEYS

if TYPE_CHECKING:
    import pyarrow as pa

#: Parquet's column compression (zstd: small and fast to read back).
COMPRESSION = "zstd"


def require(module: str = "pyarrow", extra: str = "parquet") -> Any:
    """Import an optional dependency, or fail with the install command that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is needed for this (it is optional): pip install 'fastpcap[{extra}]'") from None


def schema(*, capture: bool = False) -> pa.Schema:
    """The Arrow schema of rows (with a first ``capture`` column for a combined table)."""
    pa = require()
    fields = [pa.field("capture", pa.string(), nullable=False)] if capture else []
    for key in KEYS:
        kind = pa.string() if key == "source" else pa.bool_() if key == "available_in_deployment" else pa.int64()
        fields.append(pa.field(key, kind, nullable=False))
    return pa.schema(fields)


def record_batch(rows: np.ndarray, *, capture: str | None = None) -> pa.RecordBatch:
    """A block of rows (``ROW_DTYPE``) as an Arrow record batch of :func:`schema`."""
    pa = require()
    n = len(rows)
    columns = [pa.repeat(capture, n)] if capture is not None else []
    for key in KEYS:
        columns.append(pa.repeat(CONSTANTS[key], n) if key in CONSTANTS else pa.array(rows[key], pa.int64()))
    return pa.record_batch(columns, schema=schema(capture=capture is not None))


def metadata(spec: BucketSpec, source: str | None) -> dict[str, str]:
    """Key/value metadata of a Parquet file: where its rows came from, how they were made."""
    hosts = list(spec.host_ips) if spec.host_ips is not None else [spec.bridge_ip]
    return {
        "fastpcap.version": __version__,
        "fastpcap.source_capture": "" if source is None else source,
        "fastpcap.bucket_ms": str(spec.bucket_ms),
        "fastpcap.bridge_ip": spec.bridge_ip,
        "fastpcap.host_ips": json.dumps(hosts),
        "fastpcap.options": json.dumps(spec.to_dict()),
    }


class ParquetSink:
    """Streams blocks of rows into one Parquet file: a row group per block, never the whole
    table in memory.  ``out`` is a binary file (the atomic outputs of :mod:`._output`)."""

    def __init__(self, out: BinaryIO, meta: dict[str, str], *, capture: bool = False) -> None:
        pa = require()
        pq = require("pyarrow.parquet")
        self._schema = schema(capture=capture).with_metadata(meta)
        self._writer = pq.ParquetWriter(pa.PythonFile(out, mode="w"), self._schema, compression=COMPRESSION)
        self.rows = 0

    def write(self, rows: np.ndarray, *, capture: str | None = None) -> None:
        if len(rows):
            self._writer.write_batch(record_batch(rows, capture=capture).replace_schema_metadata(
                self._schema.metadata))
            self.rows += len(rows)

    def close(self) -> None:
        """Write the footer (a file with no rows still has its schema)."""
        self._writer.close()


def write_parquet(blocks: Iterable[np.ndarray], out: BinaryIO, meta: dict[str, str]) -> int:
    """Write blocks of rows to ``out`` as one Parquet file; returns the number of rows."""
    sink = ParquetSink(out, meta)
    try:
        for rows in blocks:
            sink.write(rows)
    finally:
        sink.close()
    return sink.rows


def table(blocks: Iterable[np.ndarray], meta: dict[str, str] | None = None) -> pa.Table:
    """Blocks of rows as one Arrow table of :func:`schema`."""
    pa = require()
    batches = [record_batch(rows) for rows in blocks if len(rows)]
    result = pa.Table.from_batches(batches, schema=schema())
    return result.replace_schema_metadata(meta) if meta else result
