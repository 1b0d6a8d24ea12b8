"""Arrays reused once nothing but the pool refers to them.

Large arrays made afresh are fresh pages, which the kernel must zero first (capture chunks, column blocks:
tens of milliseconds per 1M packets). Whatever is handed out from here may live on in what refers to it (a
packet batch, an Arrow array): an array is handed out again only when its reference count shows that nothing
but the pool holds it.
"""

from __future__ import annotations

import sys
import threading

import numpy as np


class SparePool:
    """The last `keep` arrays made, reused for requests of the same dtype and leading dimensions whose last
    dimension they cover. Safe to share between threads."""

    def __init__(self, keep: int):
        self.keep = keep
        self._lock = threading.Lock()
        self._arrays: list[np.ndarray] = []

    def take(self, shape: tuple, dtype) -> np.ndarray:
        """An array of `shape` (a view of the first shape[-1] entries of each last-axis row of a pooled array,
        whose rows may lie apart) with whatever the pooled array held."""
        dtype = np.dtype(dtype)
        with self._lock:
            for i in range(len(self._arrays)):
                # Referred to by the list, `array` and getrefcount's argument alone: nothing else holds it.
                array = self._arrays[i]
                if array.dtype == dtype and array.shape[:-1] == tuple(shape[:-1]) and array.shape[-1] >= shape[-1] \
                        and sys.getrefcount(self._arrays[i]) == 3:
                    return array[..., :shape[-1]]
            array = np.empty(tuple(shape[:-1]) + (max(shape[-1], 1),), dtype)
            self._arrays = (self._arrays + [array])[-self.keep:]
            return array[..., :shape[-1]]
