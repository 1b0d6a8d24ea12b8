"""Bidirectional flow table: numpy state, a compiled per-batch kernel, bounded memory."""

from __future__ import annotations

import numpy as np

from features import flowstate as k
from features import native
from features.decode import Decoded

FRAGMENT_SLOTS = 4096


class FlowTable:
    """Assembles packets into bidirectional flows and hands back the flows that ended.

    Parameters
    ----------
    idle_timeout, active_timeout : float
        Seconds without a packet, and seconds since the first packet, after which a flow ends.
    max_flows : int
        Open flows kept at most; past it the least recently active one is ended with `evicted`.
    closed_grace : float
        Seconds a TCP flow that ended with FIN from both sides or RST keeps absorbing stray packets.
    max_packets : int or None
        Count only a flow's first packets: flows come out as if they had ended there (to study early verdicts).
    """

    def __init__(self, idle_timeout=120.0, active_timeout=1800.0, max_flows=500_000, closed_grace=5.0,
                 max_packets=None, initial_capacity=16384):
        self.idle_ns = int(idle_timeout * 1e9)
        self.active_ns = int(active_timeout * 1e9)
        self.grace_ns = int(closed_grace * 1e9)
        self.max_flows = int(max_flows)
        self.max_packets = int(max_packets) if max_packets else np.iinfo(np.int64).max
        self._initial_capacity = initial_capacity
        self.reset()

    def reset(self):
        capacity = self._initial_capacity
        self.state = np.zeros((capacity, k.N_COLUMNS), np.int64)
        self.free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
        self.expired = np.zeros(capacity, np.int64)
        self.index = np.full(_index_size(capacity), -1, np.int64)
        self.meta = np.zeros(k.N_META, np.int64)
        self.meta[[k.OPEN_HEAD, k.OPEN_TAIL, k.CLOSED_HEAD, k.CLOSED_TAIL]] = -1
        self.meta[k.NOW] = np.iinfo(np.int64).min
        self.meta[k.FREE_TOP] = capacity
        self.frag = np.zeros((FRAGMENT_SLOTS, 3), np.int64)

    @property
    def live(self) -> int:
        return int(self.meta[k.LIVE])

    def _reserve(self, n: int):
        """Make sure n new flows fit without reusing a row in this batch."""
        if self.meta[k.FREE_TOP] >= n:
            return
        capacity = len(self.state)
        target = min(max(2 * capacity, self.live + 2 * n), self.max_flows + n)
        target = max(target, capacity + n - int(self.meta[k.FREE_TOP]))
        self.state = np.concatenate([self.state, np.zeros((target - capacity, k.N_COLUMNS), np.int64)])
        top = int(self.meta[k.FREE_TOP])
        new_rows = np.arange(target - 1, capacity - 1, -1, dtype=np.int64)
        self.free = np.concatenate([self.free[:top], new_rows, np.zeros(capacity - top, np.int64)])
        self.meta[k.FREE_TOP] = top + len(new_rows)
        self.expired = np.zeros(target, np.int64)
        self.index = np.full(_index_size(target), -1, np.int64)
        native.rebuild_index(self)

    def add(self, ts_ns: np.ndarray, decoded: Decoded, wirelen: np.ndarray):
        """Assign packets to flows; returns (slot, direction, ordinal) per packet (slot -1: not IP)."""
        n = len(ts_ns)
        self._reserve(n)
        slot = np.empty(n, np.int64)
        direction = np.empty(n, np.int64)
        ordinal = np.empty(n, np.int64)
        d = decoded
        packets = (ts_ns, d.valid.view(np.uint8), d.src_hi, d.src_lo, d.dst_hi, d.dst_lo, d.sport, d.dport, d.protocol,
                   d.vlan, d.tcp_flags, wirelen, d.frag_offset, d.more_fragments, d.frag_id)
        native.process(packets, self, slot, direction, ordinal)
        return slot, direction, ordinal

    def expire_idle(self, now_ns: int):
        """End flows idle at wall-clock time now_ns (live capture, where no packet may come)."""
        if now_ns > self.meta[k.NOW]:
            self.meta[k.NOW] = now_ns
        native.expire_idle(self, int(self.meta[k.NOW]))

    def expire_all(self):
        native.expire_all(self, k.END_OF_CAPTURE)

    def take_expired(self) -> np.ndarray:
        """Rows of the flows that ended since the last call (their state rows), and free those rows."""
        n = int(self.meta[k.N_EXPIRED])
        slots = self.expired[:n].copy()
        self.meta[k.N_EXPIRED] = 0
        top = int(self.meta[k.FREE_TOP])
        self.free[top:top + n] = slots
        self.meta[k.FREE_TOP] = top + n
        return slots


def _index_size(capacity: int) -> int:
    return 1 << int(2 * capacity - 1).bit_length()


def partition_hash(decoded: Decoded) -> np.ndarray:
    """A symmetric hash of addresses, protocol and VLAN: splitting packets by it across processes keeps
    every flow, IP fragments included (they carry no ports), whole in one process."""
    lo = np.minimum(decoded.src_lo, decoded.dst_lo) ^ np.maximum(decoded.src_hi, decoded.dst_hi)
    hi = np.maximum(decoded.src_lo, decoded.dst_lo) ^ np.minimum(decoded.src_hi, decoded.dst_hi)
    x = (lo.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ hi.astype(np.uint64)
    x ^= (decoded.protocol.astype(np.uint64) << np.uint64(8)) | (decoded.vlan.astype(np.uint64) << np.uint64(20))
    x = (x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(29))
