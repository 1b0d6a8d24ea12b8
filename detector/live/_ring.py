"""ctypes declarations of the TPACKET_V3 ring kernels (features/native/tpacket.c), like features.native does."""

from __future__ import annotations

import numpy as np

from features import native

_P, _I = native.POINTER, native.INT

_tp_mmap = native.declare("tp_mmap", _I, _I, restype=_P)
_tp_munmap = native.declare("tp_munmap", _P, _I, restype=_I)
_tp_drain = native.declare("tp_drain", _P, _I, _I, _P, _P, _I, _I, _I, _P, _P, _P, _P, _P, restype=_I)

_ptr = native._ptr


def mmap_ring(fd: int, size: int) -> int:
    """Map the socket's ring; returns its address (0 on failure, errno in ctypes.get_errno is not kept)."""
    return _tp_mmap(fd, size) or 0


def munmap_ring(address: int, size: int) -> None:
    if address:
        _tp_munmap(address, size)


def drain(address, block_size, n_blocks, cursor, out, limit, reinsert_vlan, offset, caplen, wirelen, ts, info):
    """Copy the frames of every ready block into `out` (pcap records); returns the number of frames.

    `cursor` (int64[1]) is the next block to look at and is advanced; `info` (int64[3]) receives bytes used,
    blocks drained and whether it stopped for lack of room."""
    return _tp_drain(address, block_size, n_blocks, _ptr(cursor), _ptr(out, np.uint8), len(out), limit,
                     int(reinsert_vlan), _ptr(offset), _ptr(caplen), _ptr(wirelen), _ptr(ts), _ptr(info))
