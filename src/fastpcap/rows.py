"""What a row is: its keys in order, its constant values, its table (docs/data-model.md).

The one home of the row schema: the bucket rule fills :data:`ROW_DTYPE`, and each output
format (JSONL, Parquet) writes :data:`KEYS` in this order with :data:`CONSTANTS` filled in.
"""

from __future__ import annotations

import numpy as np

#: The keys of a row, in the order of the JSONL objects and the Parquet columns.
KEYS = (
    "t_mono_ns", "t_wall_ns", "source", "available_in_deployment", "bucket_ms",
    "pkts_in", "pkts_out", "bytes_in", "bytes_out",
    "syn_count", "fin_count", "rst_count", "udp_count", "tcp_count", "dns_query_count",
    "unique_dst_ips", "unique_dst_ports", "tcp_new_flows",
)
#: The keys whose value is the same in every row (the reference collector's constants).
CONSTANTS: dict[str, object] = {"source": "bridge_pcap", "available_in_deployment": True}
#: The other keys: the fields of :data:`ROW_DTYPE`, in order.
ROW_FIELDS = tuple(key for key in KEYS if key not in CONSTANTS)
#: One row per bucket: every field a little-endian int64.
ROW_DTYPE = np.dtype([(name, "<i8") for name in ROW_FIELDS])
