"""Rewriting every TCP and UDP port of a capture, to check that no verdict depends on a port number."""

from __future__ import annotations

import numpy as np

from features.decode import decode
from features.decode.transport import PORTED
from features.readers import iter_batches
from features.readers.writer import PcapWriter


def remap(ports: np.ndarray, seed: int = 1) -> np.ndarray:
    """A bijection of 1..65535 that moves (almost) every port: multiply by a unit modulo 65535, then shift."""
    ports = np.asarray(ports, np.int64)
    multiplier = 40009  # coprime with 65535 = 3 * 5 * 17 * 257, so the map is one-to-one
    moved = ((ports - 1) * multiplier + 7919 * seed) % 65535 + 1
    return np.where(ports == 0, 0, moved)


def rewrite_ports(source, destination, seed: int = 1) -> int:
    """Write `source` to `destination` (pcap, nanosecond) with every TCP/UDP port remapped; returns packets."""
    packets = 0
    with open(destination, "wb") as out:
        writer = PcapWriter(out)
        for batch in iter_batches(source):
            decoded = decode(batch)
            data = batch.data.copy()
            rows = np.flatnonzero(decoded.valid & (decoded.frag_offset == 0) & np.isin(decoded.protocol, PORTED)
                                  & (batch.offset + batch.caplen - decoded.l4_offset >= 4))
            for field, shift in ((decoded.sport, 0), (decoded.dport, 2)):
                new = remap(field[rows], seed)
                at = decoded.l4_offset[rows] + shift
                data[at] = new >> 8
                data[at + 1] = new & 0xFF
            writer.write(batch, data, path=source)
            packets += len(batch)
    return packets
