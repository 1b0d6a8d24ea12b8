"""Slimming lab captures: each flow's first packets whole, later packets cut after their headers.

Every feature that reads payload bytes reads them from a flow's first packets (handshakes, first payloads,
the early packet heads); later packets only count by size, timing and direction, which the wire length
keeps. Cutting them, as a capture with a snap length would, keeps the dataset small (encrypted bytes do not
compress) while leaving every feature's value unchanged.
"""

from __future__ import annotations

import numpy as np

from features.decode import decode
from features.flowtable import FlowTable
from features.readers import iter_batches
from features.readers.writer import PcapWriter

KEEP_PACKETS = 40   # whole packets per flow: more than any feature reads bytes from (32)
KEEP_PAYLOAD = 32   # payload bytes kept in later packets: opcode-style statistics read the first few


def slim_capture(source, destination, keep_packets=KEEP_PACKETS, keep_payload=KEEP_PAYLOAD) -> tuple[int, int]:
    """Write `source` to `destination` (pcap) with later packets cut; returns (packets, packets cut)."""
    table = FlowTable()
    packets = cut_count = 0
    with open(destination, "wb") as out:
        writer = PcapWriter(out)
        for batch in iter_batches(source):
            decoded = decode(batch)
            slot, _, ordinal = table.add(batch.ts_ns, decoded, batch.wirelen)
            table.take_expired()
            keep = decoded.payload_offset - batch.offset + keep_payload
            cut = (slot >= 0) & (ordinal >= keep_packets) & (batch.caplen > keep)
            writer.write(batch, caplen=np.where(cut, keep, batch.caplen), path=source)
            packets += len(batch)
            cut_count += int(cut.sum())
    return packets, cut_count
