"""Flow plugins: per-flow state in numpy arrays, updated once per batch, read out when flows end.

Lifecycle, all hooks vectorised (never one Python call per packet):
- `on_capacity(capacity)`: the flow table now has `capacity` rows; (re)allocate per-row arrays, keeping content.
- `on_packets(batch, decoded, slot, direction, ordinal)`: a batch was assigned to flows. `slot` is the row of
  each packet's flow (-1 for non-IP), `direction` 0 for initiator to responder, `ordinal` the packet's
  position in its flow (0 for the first).
- `on_expire(slots)`: these rows ended; return a dict of output columns (arrays of len(slots)) and clear the
  rows for their next flow.
A row names one flow for a whole batch (the table does not reuse a row within a batch), so scattering by
`slot` is safe.
"""

from __future__ import annotations

import numpy as np


class FlowPlugin:
    def on_capacity(self, capacity: int) -> None:
        pass

    def on_packets(self, batch, decoded, slot, direction, ordinal) -> None:
        pass

    def on_expire(self, slots: np.ndarray) -> dict:
        return {}


def grow(array: np.ndarray, capacity: int, fill=0) -> np.ndarray:
    """Array with `capacity` rows: the old rows kept, the new ones set to `fill`."""
    if array is not None and len(array) >= capacity:
        return array
    shape = (capacity,) + (array.shape[1:] if array is not None else ())
    dtype = array.dtype if array is not None else np.int64
    new = np.full(shape, fill, dtype)
    if array is not None:
        new[:len(array)] = array
    return new
