"""Structure-of-arrays packet batches: the unit every stage of the core works on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PacketBatch:
    """Raw packets of one capture, as read: frames stay in `data`, located by `offset` and `caplen`.

    Attributes
    ----------
    data : uint8 array holding the frames (shared by every packet of the batch)
    offset : int64 array of shape (n,), start of each frame in `data`
    caplen : int64 array of shape (n,), bytes captured
    wirelen : int64 array of shape (n,), bytes on the wire
    ts_ns : int64 array of shape (n,), epoch time in nanoseconds
    linktype : int64 array of shape (n,), pcap LINKTYPE_* of each frame
    """

    data: np.ndarray
    offset: np.ndarray
    caplen: np.ndarray
    wirelen: np.ndarray
    ts_ns: np.ndarray
    linktype: np.ndarray

    def __len__(self) -> int:
        return len(self.offset)
