"""Flows of a live capture: the file path's core (decode, FlowTable, FeaturePlugin), with early verdicts and a
wall-clock expiry.

Per batch, in FlowReader's order: decode, `FlowTable.add`, plugins' `on_capacity` / `on_packets`, then
`take_expired()` (which frees the rows) and the ended flows' feature rows (given back as the plugin's
`on_expire` does), `compute_columns`, `flow_record_batch`: final verdicts. Early and final snapshots of a
batch share one `compute_columns` call, one frame and one model call per kind.

Early verdicts must see exactly a flow's first N packets, as the model was trained on flows cut there
(`max_packets`), whatever else arrived in the same batch. A second table with `max_packets=N` and its own
FeaturePlugin runs beside the main one: it keeps every flow open as the main table does, but counts and
features stop at N packets. When a packet there has ordinal N-1, the flow's row in that table is its
N-packet snapshot: flow columns from the table row, features from `compute_columns` over the plugin's
gathered rows (a copy; nothing ends). Its expired rows are taken and dropped each batch. Packets past N
cost that table one hash look-up each and its plugin nothing.

`tick(now_ns)` ends idle flows by the wall clock (`FlowTable.expire_idle`), so flows end on time even when
no packet arrives at all.
"""

from __future__ import annotations

import time
from dataclasses import fields

import numpy as np
import pandas as pd

from features.decode import decode
from features.extract.plugin import FeaturePlugin, compute_columns
from features.extract.state import FlowRows
from features.flows import FLOW_COLUMNS, flow_record_batch
from features.flowtable import FlowTable
from features import flowstate as fk
from detector.live.verdicts import classify_flows

INITIAL_ROWS = 1 << 17
FLOW_NAMES = [name for name, _, _ in FLOW_COLUMNS]
EVENT_COLUMNS = ["event", "time"] + FLOW_NAMES + ["label", "protocol", "score", "evidence",
                                                  "packets_at_verdict", "latency_ms"]


class LiveFlows:
    """Packet batches in, verdict events out (pandas DataFrames with EVENT_COLUMNS, one row per verdict).

    Parameters
    ----------
    detector : object with `classify(frame) -> frame` (see detector.live.verdicts)
    early_packets : N, the packet count at which a flow gets its early verdict (1 to 32)
    idle_timeout, active_timeout, max_flows : as for FlowReader
    capture : the name written in the `capture` column (the interface)
    keep_features : also return every feature column in the events
    explain : which verdicts carry the model's per-feature explanation (its costliest step): "final"
        (default: early verdicts come fast, final ones explain themselves), "all" or "none"
    """

    def __init__(self, detector, early_packets: int = 10, idle_timeout: float = 120.0,
                 active_timeout: float = 1800.0, max_flows: int = 500_000, capture: str = "live",
                 keep_features: bool = False, clock=time.time_ns, explain: str = "final"):
        self.detector = detector
        self.early_packets = int(early_packets)
        self.idle_ns = int(idle_timeout * 1e9)
        self.active_ns = int(active_timeout * 1e9)
        # Sized up front for the largest batches a ring read can hand over: growing a table mid-capture copies
        # it and rebuilds its index while the ring fills.
        rows = min(int(max_flows), INITIAL_ROWS)
        self.table = FlowTable(idle_timeout, active_timeout, max_flows, initial_capacity=rows)
        self.plugin = FeaturePlugin(self.early_packets)
        self.plugin.on_capacity(len(self.table.state))
        self.early_table = FlowTable(idle_timeout, active_timeout, max_flows, max_packets=self.early_packets,
                                     initial_capacity=rows)
        self.early_plugin = FeaturePlugin(self.early_packets)
        self.early_plugin.on_capacity(len(self.early_table.state))
        self.capture = capture
        self.keep_features = keep_features
        if explain not in ("final", "all", "none"):
            raise ValueError("explain must be 'final', 'all' or 'none'")
        self.explain = explain
        self.clock = clock
        self.packets = 0
        self.bytes = 0
        self.flows_ended = 0
        self.verdicts = {"early": 0, "final": 0}
        self.labels = {"early": {}, "final": {}}
        self.latency = LatencyHistogram()

    @property
    def open_flows(self) -> int:
        return self.table.live

    # -- the three entry points ------------------------------------------------------------------------

    def add(self, batch) -> list[pd.DataFrame]:
        """A batch of packets; returns the verdict events it caused (early ones first, then final ones)."""
        if not len(batch):
            return []
        decoded = decode(batch)
        _assign(self.table, self.plugin, batch, decoded)
        slot, _, ordinal = _assign(self.early_table, self.early_plugin, batch, decoded)
        self.packets += len(batch)
        self.bytes += int(batch.wirelen.sum())
        parts = []
        nth = np.flatnonzero((ordinal == self.early_packets - 1) & (slot >= 0))
        if len(nth):
            # A slot names one flow for the whole batch and a flow has one Nth packet, so slots are unique.
            slots = slot[nth]
            parts.append(("early", snapshot_rows(self.early_plugin.state, slots), self.early_table.state[slots],
                          batch.ts_ns[nth]))
        self._drop_early_expired()
        parts.append(self._ended())
        return self._verdicts(parts)

    def tick(self, now_ns: int | None = None) -> list[pd.DataFrame]:
        """Wall-clock expiry: end the flows idle at `now_ns` (default: now)."""
        now_ns = self.clock() if now_ns is None else now_ns
        self.table.expire_idle(now_ns)
        self.early_table.expire_idle(now_ns)
        self._drop_early_expired()
        return self._verdicts([self._ended()])

    def flush(self) -> list[pd.DataFrame]:
        """End every open flow (shutdown)."""
        self.table.expire_all()
        self.early_table.expire_all()
        self._drop_early_expired()
        return self._verdicts([self._ended()])

    # -- snapshots -------------------------------------------------------------------------------------

    def _drop_early_expired(self):
        slots = self.early_table.take_expired()
        if len(slots):
            release_rows(self.early_plugin.state, slots)

    def _ended(self):
        """The flows that ended: their table rows and feature rows (given back, as the plugin's on_expire
        does, whose compute_columns call is made once per batch for early and final rows together)."""
        slots = self.table.take_expired()
        if not len(slots):
            return None
        rows = self.table.state[slots]
        features = take_rows(self.plugin.state, slots)
        self.flows_ended += len(slots)
        # When the flow ended: its last packet, or the moment a timeout cut it.
        reason = rows[:, fk.END_REASON]
        ended = np.where(reason == fk.IDLE_TIMEOUT, rows[:, fk.LAST_TS] + self.idle_ns,
                         np.where(reason == fk.ACTIVE_TIMEOUT, rows[:, fk.FIRST_TS] + self.active_ns,
                                  rows[:, fk.LAST_TS]))
        return ("final", features, rows, ended)

    def _verdicts(self, parts) -> list[pd.DataFrame]:
        """One feature computation, one frame and one classify call for every snapshot of the batch."""
        parts = [p for p in parts if p is not None]
        if not parts:
            return []
        if len(parts) == 1:
            features = parts[0][1]
        else:
            features = FlowRows(**{f.name: np.concatenate([getattr(p[1], f.name) for p in parts])
                                   for f in fields(FlowRows)})
        rows = np.concatenate([p[2] for p in parts])
        reference_ns = np.concatenate([np.asarray(p[3], np.int64) for p in parts])
        kind = np.concatenate([np.full(len(p[2]), p[0], object) for p in parts])
        with np.errstate(invalid="ignore", divide="ignore"):
            extra = compute_columns(features, self.early_packets)
        frame = flow_record_batch(rows, self.capture, extra).to_pandas()
        early = kind == "early"
        if early.any():
            frame["end_reason"] = np.where(early, None, frame["end_reason"].to_numpy(object))  # still open
        out = self._classify(frame, early)
        now = self.clock()
        latency = np.maximum(now - reference_ns, 0) / 1e6
        events = pd.DataFrame({"event": kind, "time": now / 1e9}, index=out.index)
        events = pd.concat([events, out[FLOW_NAMES + ["label", "protocol", "score", "evidence"]]], axis=1)
        events["packets_at_verdict"] = out["packets"].to_numpy()
        events["latency_ms"] = np.round(latency, 3)
        if self.keep_features:
            rest = [c for c in out.columns if c not in events.columns]
            events = pd.concat([events, out[rest]], axis=1)
        labels = events["label"].to_numpy(object)
        for name in ("early", "final"):
            mask = kind == name
            self.verdicts[name] += int(mask.sum())
            counts = self.labels[name]
            for label, count in zip(*np.unique(labels[mask].astype(str), return_counts=True)):
                counts[label] = counts.get(label, 0) + int(count)
        self.latency.add(latency[early])
        return [events.reset_index(drop=True)]

    def _classify(self, frame: pd.DataFrame, early: np.ndarray) -> pd.DataFrame:
        if self.explain != "final" or not early.any() or early.all():
            explain = self.explain == "all" or (self.explain == "final" and not early.any())
            return classify_flows(self.detector, frame, explain=explain)
        # Rows are early ones first, then final ones.
        k = int(early.sum())
        return pd.concat([classify_flows(self.detector, frame.iloc[:k], explain=False),
                          classify_flows(self.detector, frame.iloc[k:], explain=True)])

    def warm_up(self) -> None:
        """Run one synthetic flow through a scratch copy of the pipeline, so that compiled kernels and the
        model are loaded before the first real packet (the first early verdict is then not late)."""
        from features.batch import PacketBatch
        scratch = LiveFlows(self.detector, self.early_packets, capture="warm-up", clock=self.clock,
                            explain=self.explain)
        frames = [_udp_frame(i % 2, 100 + i) for i in range(max(self.early_packets, 2))]
        data = np.frombuffer(b"".join(frames), np.uint8).copy()
        caplen = np.array([len(f) for f in frames], np.int64)
        offset = np.concatenate([[0], np.cumsum(caplen)[:-1]]).astype(np.int64)
        ts = self.clock() + np.arange(len(frames), dtype=np.int64) * 1000
        scratch.add(PacketBatch(data, offset, caplen, caplen.copy(), ts, np.ones(len(frames), np.int64)))
        scratch.flush()


class LatencyHistogram:
    """Early-verdict latencies in 0.1 ms bins up to 10 s (the last bin holds everything above): the median and
    p90 of a capture of any length in 800 KB."""

    BIN_MS, BINS = 0.1, 100_001

    def __init__(self):
        self.counts = np.zeros(self.BINS, np.int64)

    def add(self, latencies_ms: np.ndarray) -> None:
        if len(latencies_ms):
            bins = np.minimum((np.asarray(latencies_ms) / self.BIN_MS).astype(np.int64), self.BINS - 1)
            np.add.at(self.counts, bins, 1)

    def __len__(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float | None:
        total = len(self)
        if not total:
            return None
        at = int(np.searchsorted(np.cumsum(self.counts), q * total, side="left"))
        return round((at + 0.5) * self.BIN_MS, 3)


def snapshot_rows(state, slots: np.ndarray) -> FlowRows:
    """The feature state of open flows in these table rows, copied; nothing is released or reset."""
    own = getattr(state, "snapshot", None)
    if own is not None:
        return own(slots)
    # Feature rows are either the table's rows themselves or mapped from them (`row_of`).
    rows = state.row_of[slots] if hasattr(state, "row_of") else slots
    return FlowRows(**{f.name: getattr(state, f.name)[rows] for f in fields(FlowRows)})


def take_rows(state, slots: np.ndarray) -> FlowRows:
    """The feature state of ended flows in these table rows; their feature rows are given back."""
    if hasattr(state, "release"):
        return state.release(slots)
    return snapshot_rows(state, slots)


def release_rows(state, slots: np.ndarray) -> None:
    """Give back the feature rows of ended flows without computing their features (early table)."""
    if hasattr(state, "release"):
        state.release(slots)


def _assign(table, plugin, batch, decoded):
    """FlowTable.add then the plugin's hooks, as FlowReader calls them."""
    capacity = len(table.state)
    slot, direction, ordinal = table.add(batch.ts_ns, decoded, batch.wirelen)
    if len(table.state) != capacity:
        plugin.on_capacity(len(table.state))
    plugin.on_packets(batch, decoded, slot, direction, ordinal)
    return slot, direction, ordinal


def _udp_frame(reverse: int, size: int) -> bytes:
    import struct
    a, b = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    src, dst = (b, a) if reverse else (a, b)
    sport, dport = (5353, 40000) if reverse else (40000, 5353)
    payload = bytes(size)
    udp = struct.pack("!HHHH", sport, dport, 8 + size, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst) + udp
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
