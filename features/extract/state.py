"""Per-flow feature state: numpy rows updated by the compiled kernel (native/features.c), read when flows end.

Memory per open flow with the defaults: 6,768 bytes (`FeatureState.bytes_per_row()`), plus 8 bytes per
flow-table row. That is 56 counters, 10 running sums, 5 log histograms of 48 bins, records of the first
32 packets, the first 32 payload packets with 64-byte heads of the first 16, a 2048-byte client stream
prefix (enough for a ClientHello, an HTTP request line, a DNS query) and a 1024-byte server prefix
(ServerHello and, for TLS 1.2, the start of the certificate).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from features import native
from features.extract import _kernel as k


@dataclass
class StateLayout:
    """Sizes of the per-flow buffers."""

    records: int = 32          # first packets (all) kept as size/direction/time/flags
    sequence: int = 32         # first payload packets kept as size/direction/time
    heads: int = 16            # of which the first bytes of this many are kept
    head_bytes: int = 64
    client_prefix: int = 2048
    server_prefix: int = 1024


@dataclass
class FlowRows:
    """The state of the flows that ended, one entry per flow (arrays indexed like `slots`)."""

    I: np.ndarray
    F: np.ndarray
    size_hist: np.ndarray
    iat_hist: np.ndarray
    rec_ts: np.ndarray
    rec_payload: np.ndarray
    rec_wire: np.ndarray
    rec_dir: np.ndarray
    rec_flags: np.ndarray
    seq_len: np.ndarray
    seq_dir: np.ndarray
    seq_ts: np.ndarray
    seq_cap: np.ndarray
    heads: np.ndarray
    prefix0: np.ndarray
    prefix1: np.ndarray
    opcodes: np.ndarray

    def __len__(self):
        return len(self.I)

    @property
    def proto(self):
        return self.I[:, k.PROTO]

    @property
    def n_sequence(self):
        """Payload packets recorded per flow."""
        return np.minimum(self.I[:, k.PL_PKTS] + self.I[:, k.PL_PKTS + 1], self.seq_len.shape[1])

    def sequence_mask(self):
        return np.arange(self.seq_len.shape[1]) < self.n_sequence[:, None]

    def head_lengths(self):
        """Bytes held in each head (m, heads); 0 where there is no such packet."""
        n = self.heads.shape[1]
        cap = np.minimum(self.seq_cap[:, :n], self.heads.shape[2])
        return np.where(self.sequence_mask()[:, :n], cap, 0)

    def prefix(self, direction: int):
        """(bytes, lengths) of a direction's stream prefix."""
        return (self.prefix0 if direction == 0 else self.prefix1), self.I[:, k.PREFIX_LEN + direction]


_FLOW_ROW_FIELDS = tuple(f.name for f in fields(FlowRows))


class RowsSubset(FlowRows):
    """Some of the flows of a FlowRows, each array gathered on first use (signatures read few of them)."""

    def __init__(self, parent: FlowRows, index: np.ndarray):
        self.__dict__["_parent"] = parent
        self.__dict__["_index"] = index

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._parent, name)[self._index]
        self.__dict__[name] = value
        return value

    def __len__(self):
        return len(self._index)

    # The columns of `I` that signatures read, gathered alone: all of `I` is 450 bytes a flow.
    @property
    def proto(self):
        return self._parent.proto[self._index]

    def prefix(self, direction: int):
        return (self.prefix0 if direction == 0 else self.prefix1), self._parent.prefix(direction)[1][self._index]


class HeldRows(FlowRows):
    """The flows taken by `FeatureState.take_held`, whose feature rows stay taken until `free_held`.

    Each array is gathered from the state rows on first use, so that the copying happens in the thread that
    computes the columns (no later packet changes these rows). The read-out reads its own (`IN_PLACE`) in the
    state rows through `state_rows` and never asks for them here. The others go into `buffers`, reused from
    take to take: of the stream prefixes and packet heads, only the bytes held are copied, and the first 64 of
    each prefix (read under length masks); past them a row holds what the buffer held, as the state rows hold
    an earlier flow's bytes past a prefix's length. Most of those buffers is never filled."""

    IN_PLACE = ("F", "size_hist", "iat_hist", "rec_ts", "rec_payload", "rec_wire", "rec_dir", "rec_flags", "seq_ts")
    GATHERED = tuple(sorted(set(_FLOW_ROW_FIELDS) - set(IN_PLACE), key=_FLOW_ROW_FIELDS.index))

    def __init__(self, state: "FeatureState", state_rows: np.ndarray, buffers: dict):
        self.__dict__.update(state=state, state_rows=state_rows, buffers=buffers)

    def __len__(self):
        return len(self.state_rows)

    def __getattr__(self, name):
        if name not in _FLOW_ROW_FIELDS:
            raise AttributeError(name)
        source, n = getattr(self.state, name), len(self.state_rows)
        if name in self.IN_PLACE:
            value = native.gather_rows(source, self.state_rows)
        else:
            value = native.gather_rows(source, self.state_rows, self.buffers[name][:n], self._used(name))
        self.__dict__[name] = value
        return value

    def _used(self, name):
        """Bytes of each row worth copying, for the byte buffers."""
        if name.startswith("prefix"):
            return np.maximum(self.I[:, k.PREFIX_LEN + int(name[-1])], 64)
        if name == "heads":
            n_heads, head_bytes = self.state.heads.shape[1:]
            return np.minimum(self.I[:, k.PL_PKTS] + self.I[:, k.PL_PKTS + 1], n_heads) * head_bytes
        return None


class FeatureState:
    """Arrays with one row per open flow, and the map from flow-table rows to them.

    The flow table keeps a batch's worth of spare rows, so sizing these arrays like the table would cost
    gigabytes; instead a feature row is taken when a flow starts and given back once the flow's columns are
    computed.

    The arrays start with room for `initial_rows` flows (110 MB with the defaults), but only in address space:
    they are zero pages until a row is written, and rows are handed out lowest first, so resident memory
    follows the flows actually open. Growing copies every array into fresh pages (18 ms per 1M-packet
    capture when they started at 4,096 rows).
    """

    def __init__(self, layout: StateLayout | None = None, initial_rows: int = 16384):
        self.layout = layout or StateLayout()
        self.capacity = 0
        self._shapes = self._row_shapes()
        for name in self._shapes:
            setattr(self, name, None)
        self.row_of = np.full(0, -1, np.int64)
        self.free = np.zeros(0, np.int64)
        self.free_top = np.zeros(1, np.int64)
        self._held: list[np.ndarray] = []       # feature rows of ended flows whose columns are not computed yet
        self.held = 0
        self._spare: list[dict] = []            # buffers that take_held gathers into, given back by free_held
        self._grow(initial_rows)

    def _row_shapes(self):
        L = self.layout
        return {
            "I": ((k.N_INT,), np.int64), "F": ((k.N_FLOAT,), np.float64),
            "size_hist": ((2, k.SIZE_BINS), np.int32), "iat_hist": ((3, k.IAT_BINS), np.int32),
            "rec_ts": ((L.records,), np.int64), "rec_payload": ((L.records,), np.int32),
            "rec_wire": ((L.records,), np.int32), "rec_dir": ((L.records,), np.int8),
            "rec_flags": ((L.records,), np.uint8),
            "seq_len": ((L.sequence,), np.int32), "seq_dir": ((L.sequence,), np.int8),
            "seq_ts": ((L.sequence,), np.int64), "seq_cap": ((L.sequence,), np.int32),
            "heads": ((L.heads, L.head_bytes), np.uint8),
            "prefix0": ((L.client_prefix,), np.uint8), "prefix1": ((L.server_prefix,), np.uint8),
            "opcodes": ((32,), np.int16),
        }

    def bytes_per_row(self) -> int:
        return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in self._shapes.values())

    def table_capacity(self, capacity: int):
        """The flow table now has `capacity` rows."""
        if capacity > len(self.row_of):
            self.row_of = np.concatenate([self.row_of, np.full(capacity - len(self.row_of), -1, np.int64)])

    def _grow(self, capacity: int):
        old_capacity = self.capacity
        for name, (shape, dtype) in self._shapes.items():
            new = np.zeros((capacity,) + shape, dtype)
            old = getattr(self, name)
            if old is not None:
                new[:len(old)] = old
            setattr(self, name, new)
        top = int(self.free_top[0])
        added = np.arange(capacity - 1, old_capacity - 1, -1, dtype=np.int64)
        free = np.zeros(capacity, np.int64)
        free[:top] = self.free[:top]
        free[top:top + len(added)] = added
        self.free = free
        self.free_top[0] = top + len(added)
        self.capacity = capacity

    def update(self, batch, decoded, slot, direction, ordinal):
        starting = int(np.count_nonzero((ordinal == 0) & (slot >= 0)))
        if starting > self.free_top[0]:
            self._grow(max(2 * self.capacity, self.capacity - int(self.free_top[0]) + starting))
        d = decoded
        native.feature_update(self, slot, direction, ordinal, batch.ts_ns, d.protocol, d.sport, d.dport, d.tcp_flags,
                              d.payload_offset, d.payload_length, d.payload_captured, d.l4_offset, batch.wirelen,
                              batch.data)

    def snapshot(self, slots: np.ndarray) -> FlowRows:
        """A copy of the state of open flows in these table rows (live early verdicts); nothing is released."""
        return self._gather(self.row_of[slots])

    def release(self, slots: np.ndarray) -> FlowRows:
        """The state of the flows in these table rows, which ended; their feature rows become free."""
        gathered = self.snapshot(slots)
        self._free(self.row_of[slots])
        self.row_of[slots] = -1
        return gathered

    def hold(self, slots: np.ndarray) -> None:
        """These table rows ended and go back to the table; their feature rows stay taken until `take_held`."""
        self._held.append(self.row_of[slots])
        self.held += len(slots)
        self.row_of[slots] = -1

    def take_held(self, count: int | None = None) -> "HeldRows":
        """The first `count` flows held (all by default), in the order held; see HeldRows."""
        held = self._held[0] if len(self._held) == 1 else np.concatenate(self._held or [np.zeros(0, np.int64)])
        rows, rest = held[:count], held[len(held) if count is None else count:]
        self._held, self.held = ([rest] if len(rest) else []), len(rest)
        # Fresh arrays of this size would be fresh pages every time, which the kernel must zero first: buffers
        # are reused, and made with room to spare (drains vary in size; rows never touched cost no memory).
        buffers = self._spare.pop() if self._spare else {}
        if len(rows) > len(buffers.get("I", ())):
            size = 2 * max(len(rows), len(buffers.get("I", ())))
            buffers = {name: np.empty((size,) + shape, dtype) for name, (shape, dtype) in self._shapes.items()
                       if name in HeldRows.GATHERED}
        return HeldRows(self, rows, buffers)

    def free_held(self, held: "HeldRows") -> None:
        """The feature rows of flows taken by `take_held` become free, and the buffers they were gathered into."""
        self._free(held.state_rows)
        self._spare.append(held.buffers)

    def _gather(self, rows: np.ndarray) -> FlowRows:
        return FlowRows(**{f.name: native.gather_rows(getattr(self, f.name), rows) for f in fields(FlowRows)})

    def _free(self, rows: np.ndarray):
        top = int(self.free_top[0])
        self.free[top:top + len(rows)] = rows
        self.free_top[0] = top + len(rows)
