"""The per-packet kernel (native/features.c) against the formulas it stands for, where it takes shortcuts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from captures import pcap_bytes

pytest.importorskip("scapy")

from features.extract.plugin import FeaturePlugin  # noqa: E402
from features.reader import FlowReader  # noqa: E402


class _KeepRows(FeaturePlugin):
    """Keeps the gathered state of the flows it drains."""

    def compute(self, taken):
        self.hists = taken.iat_hist.copy()
        return {}


def test_inter_arrival_bins_are_libm_log2_bins_at_every_edge(write):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    # Gaps whose us + 1 lies on, just below and just above each bin edge 2 ** (k / 2), to the nanosecond.
    gaps = sorted({max(0, round((2 ** (k / 2) - 1) * 1000) + delta) for k in range(50) for delta in (-2, -1, 0, 1, 2)})
    ts_ns = 1_000_000_000 + np.concatenate([[0], np.cumsum(gaps)])
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000) / b"x")
    frames = [(int(t) // 10**9 + (int(t) % 10**9) / 1e9, frame) for t in ts_ns]
    stored = [sec * 10**9 + round((ts - sec) * 1e9) for ts, _ in frames for sec in [int(ts)]]
    plugin = _KeepRows(hold_limit=1)
    list(FlowReader(write("edges.pcap", pcap_bytes(frames, nanosecond=True)), plugins=[plugin], on_error="raise",
                    idle_timeout=1e6, active_timeout=1e7))
    bins = [min(47, max(0, int(math.log2((b - a) / 1000.0 + 1.0) * 2.0))) for a, b in zip(stored, stored[1:])]
    expected = np.bincount(bins, minlength=48)
    assert np.array_equal(plugin.hists[0, 0], expected) and np.array_equal(plugin.hists[0, 2], expected)
