"""Flow plugins: per-flow state in numpy arrays, updated once per batch, read out when flows end.

Lifecycle, all hooks vectorised (never one Python call per packet):
- `on_capacity(capacity)`: the flow table now has `capacity` rows; (re)allocate per-row arrays, keeping content.
- `on_packets(batch, decoded, slot, direction, ordinal)`: a batch was assigned to flows. `slot` is the row of
  each packet's flow (-1 for non-IP), `direction` 0 for initiator to responder, `ordinal` the packet's
  position in its flow (0 for the first).
- `on_expire(slots)`: these rows ended; return a dict of output columns (arrays of len(slots)) and clear the
  rows for their next flow.
- `hold(slots)`, used instead of `on_expire` when every plugin has a `hold_limit`: the rows ended and are given
  back to the table at once, but the plugin keeps what their columns need. The reader drains the held flows
  once `hold_limit` are held, across captures, and at the end: the fixed cost of computing columns (numpy
  calls, Arrow arrays) is then paid per few thousand flows rather than per expiry, which ends a few hundred.
- A drain is `take(count)` (the first `count` flows held, in the order held; all if None), `compute(taken)`
  (their columns) and `release(taken)`. Every hook but `compute` runs in the order called, in one thread (the
  reader's, or a worker beside it: see `FlowReader(threads=)`); `compute` may run while later hooks do, so it
  reads only what `take` returned (and state that no later hook changes) and changes nothing.
A row names one flow for a whole batch (the table does not reuse a row within a batch), so scattering by
`slot` is safe.
"""

from __future__ import annotations

import numpy as np


class FlowPlugin:
    hold_limit = 0          # flows this plugin can hold ended before a drain (0: it cannot, use on_expire)

    def on_capacity(self, capacity: int) -> None:
        pass

    def on_packets(self, batch, decoded, slot, direction, ordinal) -> None:
        pass

    def on_expire(self, slots: np.ndarray) -> dict:
        return {}

    def hold(self, slots: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no hold_limit, call on_expire")

    def take(self, count: int | None = None):
        raise NotImplementedError(f"{type(self).__name__} has no hold_limit, call on_expire")

    def compute(self, taken) -> dict:
        raise NotImplementedError(f"{type(self).__name__} has no hold_limit, call on_expire")

    def release(self, taken) -> None:
        pass


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
