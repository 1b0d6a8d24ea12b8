"""FeaturePlugin: the flow plugin that computes every column of the feature schema in the reader's pass."""

from __future__ import annotations

import numpy as np

from features.extract import bytestats, timing, traffic
from features.extract import _kernel as k
from features.extract.state import FeatureState, StateLayout
from features.plugin import FlowPlugin
from features.schema import COMPUTED_COLUMNS, FEATURES_BY_NAME

DEFAULT_EARLY_PACKETS = 10
_NUMPY_DTYPES = {"float32": np.float32, "int32": np.int32, "int8": np.int8}


class FeaturePlugin(FlowPlugin):
    """Per-flow features for FlowReader.

    Parameters
    ----------
    early_packets : int
        The `early_` columns are computed over this many first packets of each flow (1 to 32).
    layout : StateLayout
        Sizes of the per-flow buffers (the defaults keep about 6.5 KB per open flow).
    """

    def __init__(self, early_packets: int = DEFAULT_EARLY_PACKETS, layout: StateLayout | None = None):
        layout = layout or StateLayout()
        if not 1 <= early_packets <= layout.records:
            raise ValueError(f"early_packets must be between 1 and {layout.records}")
        self.early_packets = early_packets
        self.state = FeatureState(layout)

    def on_capacity(self, capacity: int) -> None:
        self.state.ensure(capacity)

    def on_packets(self, batch, decoded, slot, direction, ordinal) -> None:
        self.state.update(batch, decoded, slot, direction, ordinal)

    def on_expire(self, slots: np.ndarray) -> dict:
        return compute_columns(self.state.gather(slots), self.early_packets)


def compute_columns(rows, early_packets: int = DEFAULT_EARLY_PACKETS) -> dict:
    """Every computed schema column for the gathered rows of ended flows, in schema order and dtype."""
    from features import tls
    from features.signatures import run_signatures

    rtt_ms, rtt_source = timing.round_trip(rows)
    columns = {"rtt_ms": rtt_ms, "rtt_source": rtt_source}
    columns.update(traffic.whole_flow(rows, rtt_ms))
    columns.update(traffic.early(rows, early_packets, rtt_ms))
    columns.update(timing.sequence(rows, rtt_ms))
    columns.update(bytestats.columns(rows))
    client, client_len = rows.prefix(0)
    server, server_len = rows.prefix(1)
    columns.update(tls.columns(client, client_len, server, server_len))
    columns.update(run_signatures(rows, columns, rows.I[:, k.RESPONDER_PORT]))
    return {name: _typed(columns[name], FEATURES_BY_NAME[name].dtype) for name in COMPUTED_COLUMNS}


def _typed(values, dtype: str):
    if dtype == "string":
        return np.asarray(values, object)
    kind = _NUMPY_DTYPES[dtype]
    values = np.asarray(values)
    if np.issubdtype(kind, np.integer):
        values = np.nan_to_num(values.astype(np.float64), nan=0) if values.dtype.kind == "f" else values
    return values.astype(kind)
