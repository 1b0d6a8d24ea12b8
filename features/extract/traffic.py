"""Size, timing, flag, burst and sequence columns of ended flows, named after the schema.

The numbers come from the compiled read-out (`native/readout.c`), which writes them in the order of
`readout_columns()`: round-trip estimate, whole-flow block, early block (first `early_packets` packets),
payload-packet sequence.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from features import native
from features.schema import SEQUENCE_PACKETS, _sequence_block, _timing_reference, _traffic_block


@lru_cache(maxsize=1)
def readout_columns() -> tuple:
    blocks = (_timing_reference() + _traffic_block("", "") + _traffic_block("early_", "")
              + [f for f in _sequence_block() if not f.name.endswith("_entropy")])
    return tuple(f.name for f in blocks if f.source == "features")


def readout(rows, early_packets: int, targets) -> None:
    """Write the read-out's columns to rows of blocks: see native.readout for `targets`."""
    names = readout_columns()
    written = native.readout(rows, early_packets, min(SEQUENCE_PACKETS, rows.seq_len.shape[1]), len(names), targets)
    if len(rows) and written != len(names):
        raise AssertionError(f"read-out wrote {written} columns, the schema names {len(names)}")


def columns(rows, early_packets: int) -> dict:
    """Every read-out column, as float64."""
    names = readout_columns()
    out = np.empty((len(names), len(rows)))
    readout(rows, early_packets, [(out, np.arange(len(names)), np.arange(len(names)))])
    return dict(zip(names, out))
