"""IPv6 (RFC 8200): extension header chain walked for the whole batch, fragment header read."""

from __future__ import annotations

import numpy as np

from features.decode.fields import Header, read_u16, read_u32, read_u8, read_uint

HEADER = Header("ipv6", [
    ("ver_class_flow", "I"), ("payload_length", "H"), ("next_header", "B"), ("hop_limit", "B"),
    ("src", "16s"), ("dst", "16s"),
])
_SKIPPABLE = (0, 43, 60, 135, 139, 140, 253, 254)  # hop-by-hop, routing, destination, mobility, HIP, shim6, tests
FRAGMENT = 44
_MAX_EXTENSIONS = 8


def decode(data, net, available, wire_available, out, rows):
    """Fill `out` (a Decoded) for the rows that hold IPv6 headers."""
    base = net[rows]
    ok = ((read_u8(data, base) >> 4) == 6) & (available[rows] >= 40)
    rows, base = rows[ok], base[ok]
    payload_length = HEADER.read(data, base, "payload_length")
    payload_length = np.where(payload_length == 0, wire_available[rows] - 40, payload_length)
    next_header = HEADER.read(data, base, "next_header")
    pos = base + 40
    end = base + 40 + payload_length
    frag_offset = np.zeros(len(rows), np.int64)
    more = np.zeros(len(rows), np.int64)
    frag_id = np.zeros(len(rows), np.int64)
    for _ in range(_MAX_EXTENSIONS):
        skippable = np.isin(next_header, _SKIPPABLE)
        fragment = next_header == FRAGMENT
        walking = skippable | fragment
        if not walking.any():
            break
        length = np.where(fragment, 8, (read_u8(data, pos + 1) + 1) * 8)
        if fragment.any():
            field = read_u16(data, pos[fragment] + 2)
            frag_offset[fragment] = (field >> 3) * 8
            more[fragment] = field & 1
            frag_id[fragment] = read_u32(data, pos[fragment] + 4)
        next_header = np.where(walking, read_u8(data, pos), next_header)
        pos = np.where(walking, pos + length, pos)
    out.valid[rows] = True
    out.version[rows] = 6
    out.protocol[rows] = next_header
    out.src_hi[rows] = read_uint(data, base + 8, 8)
    out.src_lo[rows] = read_uint(data, base + 16, 8)
    out.dst_hi[rows] = read_uint(data, base + 24, 8)
    out.dst_lo[rows] = read_uint(data, base + 32, 8)
    out.l4_offset[rows] = pos
    out.l4_length[rows] = np.maximum(end - pos, 0)
    out.frag_offset[rows] = frag_offset
    out.more_fragments[rows] = more
    out.frag_id[rows] = frag_id
