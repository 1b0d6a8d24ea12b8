"""IPv4 (RFC 791): options skipped by the header length, fragments described for joining to their flow."""

from __future__ import annotations

import numpy as np

from features.decode.fields import Header, read_u32

HEADER = Header("ipv4", [
    ("ver_ihl", "B"), ("tos", "B"), ("total_length", "H"), ("ident", "H"), ("flags_fragment", "H"),
    ("ttl", "B"), ("protocol", "B"), ("checksum", "H"), ("src", "I"), ("dst", "I"),
])
V4_MAPPED = np.int64(0xFFFF) << 32  # ::ffff:a.b.c.d keeps one address width for both versions


def decode(data, net, available, wire_available, out, rows):
    """Fill `out` (a Decoded) for the rows that hold IPv4 headers."""
    base = net[rows]
    ver_ihl = HEADER.read(data, base, "ver_ihl")
    header_len = (ver_ihl & 0x0F) * 4
    ok = ((ver_ihl >> 4) == 4) & (header_len >= 20) & (available[rows] >= 20)
    rows, base, header_len = rows[ok], base[ok], header_len[ok]
    total = HEADER.read(data, base, "total_length")
    # A zero total length comes from segmentation offload on the capturing host: trust the frame instead.
    total = np.where(total == 0, wire_available[rows], total)
    flags_fragment = HEADER.read(data, base, "flags_fragment")
    out.valid[rows] = True
    out.version[rows] = 4
    out.protocol[rows] = HEADER.read(data, base, "protocol")
    out.src_hi[rows] = 0
    out.dst_hi[rows] = 0
    out.src_lo[rows] = V4_MAPPED | HEADER.read(data, base, "src")
    out.dst_lo[rows] = V4_MAPPED | HEADER.read(data, base, "dst")
    out.l4_offset[rows] = base + header_len
    out.l4_length[rows] = np.maximum(total - header_len, 0)
    out.frag_offset[rows] = (flags_fragment & 0x1FFF) * 8
    out.more_fragments[rows] = (flags_fragment >> 13) & 1
    out.frag_id[rows] = HEADER.read(data, base, "ident")


def address_words(data, pos):
    """IPv4 addresses at `pos` as the low 64-bit word of a v4-mapped IPv6 address."""
    return V4_MAPPED | read_u32(data, pos)
