"""FeaturePlugin: the flow plugin that computes every column of the feature schema in the reader's pass."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

from features.extract import bytestats, traffic
from features.extract import _kernel as k
from features.extract.state import FeatureState, StateLayout
from features.plugin import FlowPlugin
from features.schema import COMPUTED_COLUMNS, FEATURES_BY_NAME
from features.spare import SparePool

DEFAULT_EARLY_PACKETS = 10
# Ended flows held before their columns are computed together: past a few thousand the per-call cost of the
# numpy and Arrow work is amortised, and the held rows cost at most ~28 MB of feature state.
HOLD_FLOWS = 4096
_NUMPY_DTYPES = {"float32": np.float32, "int32": np.int32, "int8": np.int8}
_ARROW_TYPES = {"float32": pa.float32(), "int32": pa.int32(), "int8": pa.int8()}
_NAMES_BY_DTYPE = {dtype: [n for n in COMPUTED_COLUMNS if FEATURES_BY_NAME[n].dtype == dtype]
                   for dtype in ("float32", "int32", "int8", "string")}


class FeaturePlugin(FlowPlugin):
    """Per-flow features for FlowReader.

    Parameters
    ----------
    early_packets : int
        The `early_` columns are computed over this many first packets of each flow (1 to 32).
    layout : StateLayout
        Sizes of the per-flow buffers (the defaults keep about 6.5 KB per open flow).
    hold_limit : int
        Ended flows held before their columns are computed in one go (see `FlowPlugin.hold`).
    """

    def __init__(self, early_packets: int = DEFAULT_EARLY_PACKETS, layout: StateLayout | None = None,
                 hold_limit: int = HOLD_FLOWS):
        layout = layout or StateLayout()
        if not 1 <= early_packets <= layout.records:
            raise ValueError(f"early_packets must be between 1 and {layout.records}")
        self.early_packets = early_packets
        self.hold_limit = int(hold_limit)
        self.state = FeatureState(layout)
        # Column blocks, reused once no Arrow array holds them: two drains' worth, since whoever reads the batches
        # usually still holds the last one while the next is computed (`for batch in reader`).
        self.blocks = SparePool(keep=2 * len(_NUMPY_DTYPES))

    def on_capacity(self, capacity: int) -> None:
        self.state.table_capacity(capacity)

    def on_packets(self, batch, decoded, slot, direction, ordinal) -> None:
        self.state.update(batch, decoded, slot, direction, ordinal)

    def on_expire(self, slots: np.ndarray) -> dict:
        return compute_columns(self.state.release(slots), self.early_packets)

    def hold(self, slots: np.ndarray) -> None:
        self.state.hold(slots)

    def take(self, count: int | None = None):
        return self.state.take_held(count)

    def compute(self, taken) -> dict:
        return compute_columns(taken, self.early_packets, self.blocks)

    def release(self, taken) -> None:
        self.state.free_held(taken)


def compute_columns(rows, early_packets: int = DEFAULT_EARLY_PACKETS, pool: SparePool | None = None) -> dict:
    """Every computed schema column for the gathered rows of ended flows: name -> Arrow array of the
    schema's type, in schema order (in blocks from `pool`, else fresh ones)."""
    from features import tls
    from features.signatures import run_signatures

    m = len(rows)
    pool = pool or SparePool(keep=len(_NUMPY_DTYPES))
    blocks = {dtype: _block(pool, len(names), m, _NUMPY_DTYPES[dtype]) for dtype, names in _NAMES_BY_DTYPE.items()
              if dtype != "string"}
    read_later = np.empty((len(READ_LATER), m))
    targets, readout_names = _readout_targets()
    traffic.readout(rows, early_packets, [(blocks[dtype] if dtype else read_later, block_rows, values)
                                          for dtype, block_rows, values in targets])
    columns = dict(zip(READ_LATER, read_later))
    columns.update(bytestats.columns(rows))
    client, client_len = rows.prefix(0)
    server, server_len = rows.prefix(1)
    columns.update(tls.columns(client, client_len, server, server_len))
    columns.update(run_signatures(rows, columns, rows.I[:, k.RESPONDER_PORT]))
    return _arrow_columns(columns, blocks, readout_names)


def _block(pool: SparePool, columns: int, m: int, dtype) -> np.ndarray:
    """A (columns, m) block from `pool` whose rows lie an odd number of cache lines apart. The read-out writes a
    flow's ~300 values down the rows: rows a power of two apart (m = 4096, a full drain at the end) share a few
    cache sets, and the read-out of such a drain took twice as long."""
    line = 64 // np.dtype(dtype).itemsize
    return pool.take((columns, ((m + line - 1) // line | 1) * line), dtype)[:, :m]


# Read-out columns that the signatures read. The read-out writes every column straight into its typed block,
# and these also as float64: a signature must see them as they were computed, not rounded to float32. A
# signature reading another read-out column finds it missing (KeyError): add it here.
READ_LATER = ("src2dst_payload_packets", "dst2src_payload_packets", "src2dst_payload_max", "src2dst_payload_p50",
              "src2dst_payload_p75", "dst2src_payload_p50")


@lru_cache(maxsize=1)
def _readout_targets():
    """(dtype of a block, its rows, the read-out column each receives) for every block the read-out writes, and
    (None, indices in READ_LATER, read-out columns) for those also kept as float64; and the set of read-out
    column names."""
    names = traffic.readout_columns()
    targets = []
    for dtype, block in _NAMES_BY_DTYPE.items():
        rows = [i for i, name in enumerate(block) if name in names]
        if rows:
            targets.append((dtype, np.array(rows), np.array([names.index(block[i]) for i in rows])))
    targets.append((None, np.arange(len(READ_LATER)), np.array([names.index(name) for name in READ_LATER])))
    return targets, frozenset(names)


def _arrow_columns(columns: dict, blocks: dict, filled: frozenset) -> dict:
    """The schema's columns, in order, as Arrow arrays of their schema type.

    Each dtype's columns are in one block (`blocks`, in which the columns named in `filled` are written
    already), wrapped column by column without copying: pa.array() on a numpy float column costs about 9 us,
    and ~380 columns per drain add up. The read-out writes its 300 columns there itself: through a float64
    block they cost as much again in memory traffic. Values pass through float64 on their way, as they always
    have: an int64 rounds to float32 once via float64, not straight (the two can differ past 2**24)."""
    out = {}
    for dtype, names in _NAMES_BY_DTYPE.items():
        if dtype == "string":
            for name in names:
                out[name] = _string_array(np.asarray(columns[name], object))
            continue
        block = blocks[dtype]
        for i, name in enumerate(names):
            if name in filled:
                continue
            values = np.asarray(columns[name])
            if values.dtype.kind != "f":    # integers or flags: no NaN nor infinity for nan_to_num to replace
                block[i] = values.astype(np.float64)
                continue
            values = values if values.dtype == np.float64 else values.astype(np.float64)
            block[i] = values if dtype == "float32" else np.nan_to_num(values, nan=0).astype(block.dtype)
        # Rows of a block may lie apart (a pooled block is wider than m): each column is its row's first m values,
        # a slice of one array over the whole block (a slice costs a third of an array made from buffers).
        whole = block.base if block.base is not None else block
        whole = pa.Array.from_buffers(_ARROW_TYPES[dtype], whole.size, [None, pa.py_buffer(whole)])
        m, row = block.shape[1], block.strides[0] // block.itemsize
        for i, name in enumerate(names):
            out[name] = whole.slice(i * row, m)
    return {name: out[name] for name in COMPUTED_COLUMNS}


def _string_array(values: np.ndarray) -> pa.Array:
    """pa.array(values, pa.string()) for an object array of str, at a cost that follows the strings that are not
    empty: pyarrow converts ~30 ns a value whatever it holds, and most values are "" (no hello, no signature).
    Past half of them filled, the conversion of all costs less."""
    filled = np.flatnonzero(values != "")
    if 2 * len(filled) > len(values):
        return pa.array(values, pa.string())
    held = pa.array(values[filled], pa.string())
    if held.null_count:
        return pa.array(values, pa.string())
    lengths = np.zeros(len(values) + 1, np.int32)
    lengths[filled + 1] = np.diff(np.frombuffer(held.buffers()[1], np.int32, len(held) + 1, held.offset * 4))
    offsets = pa.py_buffer(np.cumsum(lengths, dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), len(values), [None, offsets, held.buffers()[2] or pa.py_buffer(b"")])
