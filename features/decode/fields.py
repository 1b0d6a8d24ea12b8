"""Headers declared as data, read for a whole batch at once.

A Header lists its fields like dpkt does (name, struct code); reading a field gathers it from every packet
of a batch in one numpy operation. Positions past the end of the buffer are clamped, so callers mask with
their own length checks rather than paying for bounds checks per packet.
"""

from __future__ import annotations

import numpy as np

_SIZES = {"B": 1, "H": 2, "I": 4, "Q": 8}


class Header:
    def __init__(self, name: str, fields):
        self.name = name
        self.fields = {}
        offset = 0
        for field, code in fields:
            size = int(code[:-1]) if code.endswith("s") else _SIZES[code]
            self.fields[field] = (offset, code, size)
            offset += size
        self.length = offset

    def read(self, data: np.ndarray, base: np.ndarray, field: str) -> np.ndarray:
        offset, code, size = self.fields[field]
        if code.endswith("s"):
            return gather_bytes(data, base + offset, size)
        return read_uint(data, base + offset, size)


def _clamp(data: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    return np.clip(pos, 0, max(len(data) - size, 0))


def read_uint(data: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    """Big-endian unsigned integers of `size` bytes at each position, as int64."""
    pos = _clamp(data, pos, size)
    value = data[pos].astype(np.int64)
    for i in range(1, size):
        value = (value << 8) | data[pos + i]
    return value


def read_u8(data, pos):
    return read_uint(data, pos, 1)


def read_u16(data, pos):
    return read_uint(data, pos, 2)


def read_u32(data, pos):
    return read_uint(data, pos, 4)


def gather_bytes(data: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    """The `size` bytes at each position, as an array of shape (n, size)."""
    pos = _clamp(data, pos, size)
    return data[pos[:, None] + np.arange(size)]
