"""Vectorised decoding of a PacketBatch: link layer, IPv4/IPv6, transport, for all packets at once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from features.batch import PacketBatch
from features.decode import ipv4, ipv6, transport
from features.decode.link import ETH_IPV4, ETH_IPV6, decode_link


@dataclass
class Decoded:
    """Per-packet header fields of a batch; every array has the batch's length.

    Addresses are 128-bit, as two 64-bit words (IPv4 mapped to ::ffff:a.b.c.d). Ports are 0 where the
    protocol has none and -1 where they are still unknown (IP fragments after the first).
    """

    valid: np.ndarray            # bool: an IP packet we could read
    version: np.ndarray          # 4 or 6
    vlan: np.ndarray             # outermost 802.1Q VLAN id, 0 if untagged
    protocol: np.ndarray         # IP protocol number after extension headers
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    icmp_type: np.ndarray
    l4_offset: np.ndarray        # position in batch.data of the transport header
    l4_length: np.ndarray        # bytes after the IP header(s), on the wire
    frag_offset: np.ndarray      # bytes
    more_fragments: np.ndarray
    frag_id: np.ndarray
    payload_offset: np.ndarray   # position in batch.data of the transport payload
    payload_length: np.ndarray   # transport payload bytes on the wire
    payload_captured: np.ndarray  # of which captured

    @classmethod
    def empty(cls, n: int) -> "Decoded":
        arrays = {f.name: np.zeros(n, np.int64) for f in dataclasses.fields(cls)}
        arrays["valid"] = np.zeros(n, bool)
        return cls(**arrays)


_MIN_BUFFER = 128  # longest single read (16-byte address) plus the deepest fixed offset, with room to spare


def decode(batch: PacketBatch) -> Decoded:
    data = batch.data
    if len(data) < _MIN_BUFFER:
        # Reads are clamped into the buffer rather than bounds-checked per packet; a tiny buffer needs padding.
        data = np.concatenate([data, np.zeros(_MIN_BUFFER - len(data), np.uint8)])
    frame_end = batch.offset + batch.caplen
    wire_end = batch.offset + batch.wirelen
    net, ethertype, vlan = decode_link(data, batch.offset, batch.caplen, batch.linktype)
    out = Decoded.empty(len(batch))
    out.vlan[:] = vlan
    available = frame_end - net
    wire_available = wire_end - net
    for ethertype_value, module in ((ETH_IPV4, ipv4), (ETH_IPV6, ipv6)):
        rows = np.flatnonzero(ethertype == ethertype_value)
        if len(rows):
            module.decode(data, net, available, wire_available, out, rows)
    unported = out.valid & (out.frag_offset > 0) & np.isin(out.protocol, transport.PORTED)
    transport.decode(data, frame_end, out)
    out.sport[unported] = -1
    out.dport[unported] = -1
    return out
