"""Writing packets back out as classic pcap (nanosecond): for tools that rewrite or trim captures."""

from __future__ import annotations

import struct

import numpy as np

PCAP_NS_MAGIC = 0xA1B23C4D
MAX_SNAPLEN = 262144


class PcapWriter:
    """Appends batches to a nanosecond pcap file with one link type."""

    def __init__(self, handle):
        self.handle = handle
        self.linktype = None

    def write(self, batch, data: np.ndarray | None = None, caplen: np.ndarray | None = None, path="capture"):
        """Write a batch, optionally from modified frame bytes `data` and with shorter `caplen` per packet."""
        types = np.unique(batch.linktype)
        if self.linktype is None and len(types):
            self.linktype = int(types[0])
            self.handle.write(struct.pack("<IHHiIII", PCAP_NS_MAGIC, 2, 4, 0, 0, MAX_SNAPLEN, self.linktype))
        if len(types) > 1 or (len(types) and int(types[0]) != self.linktype):
            raise ValueError(f"{path}: several link types, cannot write one pcap")
        data = batch.data if data is None else data
        caplen = batch.caplen if caplen is None else caplen
        parts = []
        for i in range(len(batch)):
            start, length, ts = int(batch.offset[i]), int(caplen[i]), int(batch.ts_ns[i])
            parts.append(struct.pack("<IIII", ts // 10**9, ts % 10**9, length, int(batch.wirelen[i])))
            parts.append(data[start:start + length].tobytes())
        self.handle.write(b"".join(parts))
