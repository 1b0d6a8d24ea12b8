"""pcapng: several sections and interfaces, per-interface link types and timestamp resolutions."""

from __future__ import annotations

import numpy as np

from features.batch import PacketBatch
from features.decode import linktypes
from features.errors import CaptureError
from features import native
from features.native import BAD_INTERFACE, BAD_LENGTH, OK
from features.readers.source import ChunkReader

SECTION_HEADER = 0x0A0D0D0A
INTERFACE_DESCRIPTION = 1
BYTE_ORDER_MAGIC = 0x1A2B3C4D
MAX_BLOCK = 32 * 1024 * 1024
OPT_TSRESOL, OPT_TSOFFSET = 9, 14


class _Interfaces:
    """Per-interface parameters of the current section, as arrays the compiled walker indexes."""

    def __init__(self):
        self.linktype, self.snaplen, self.ts_mul, self.ts_div, self.ts_shift, self.ts_offset = ([] for _ in range(6))
        self.arrays = self._as_arrays()

    def add(self, linktype, snaplen, tsresol, tsoffset_s):
        if tsresol & 0x80:
            mul, div, shift = 1, 1, tsresol & 0x7F
        else:
            exp = tsresol
            mul, div, shift = (10 ** (9 - exp), 1, 0) if exp <= 9 else (1, 10 ** (exp - 9), 0)
        for field, value in zip((self.linktype, self.snaplen, self.ts_mul, self.ts_div, self.ts_shift, self.ts_offset),
                                (linktype, snaplen, mul, div, shift, tsoffset_s * 1_000_000_000)):
            field.append(value)
        self.arrays = self._as_arrays()

    def _as_arrays(self):
        return tuple(np.array(f, np.int64) for f in
                     (self.linktype, self.snaplen, self.ts_mul, self.ts_div, self.ts_shift, self.ts_offset))


def _parse_idb(block: bytes, order: str, path, offset: int, notices):
    linktype = int.from_bytes(block[8:10], order)
    snaplen = int.from_bytes(block[12:16], order)
    tsresol, tsoffset = 6, 0
    pos, end = 16, len(block) - 4
    while pos + 4 <= end:
        code = int.from_bytes(block[pos:pos + 2], order)
        length = int.from_bytes(block[pos + 2:pos + 4], order)
        value = block[pos + 4:pos + 4 + length]
        if code == 0:
            break
        if code == OPT_TSRESOL and length >= 1:
            tsresol = value[0]
        elif code == OPT_TSOFFSET and length >= 8:
            tsoffset = int.from_bytes(value[:8], order, signed=True)
        pos += 4 + length + (-length % 4)
    if tsresol & 0x7F > 63 or (not tsresol & 0x80 and tsresol > 18):
        raise CaptureError(path, f"interface timestamp resolution {tsresol} is invalid", offset=offset)
    if linktype not in linktypes.SUPPORTED and notices is not None:
        notices.append(f"{path}: interface with unsupported link type {linktypes.describe(linktype)}; its packets are skipped")
    return linktype, snaplen, tsresol, tsoffset


def read_pcapng(path, stream, batch_size: int, chunk_size: int, notices=None):
    """Yield PacketBatch objects; raise CaptureError (after yielding every good record) on damage."""
    chunks = ChunkReader(stream, chunk_size)
    chunks.refill(0)
    pos = 0
    big_endian = False
    interfaces = None
    while True:
        if interfaces is not None:
            offset, caplen, wirelen, ts, linktype = (np.empty(batch_size, np.int64) for _ in range(5))
            n, pos, status = native.scan_pcapng(chunks.buf, pos, chunks.end, big_endian, MAX_BLOCK,
                                               *interfaces.arrays, len(interfaces.linktype),
                                               offset, caplen, wirelen, ts, linktype)
            if n:
                yield PacketBatch(chunks.buf, offset[:n], caplen[:n], wirelen[:n], ts[:n], linktype[:n])
            if status == BAD_LENGTH:
                raise CaptureError(path, "block with an impossible length (corrupt or not a capture)", offset=chunks.base + pos)
            if status == BAD_INTERFACE:
                raise CaptureError(path, "packet block refers to an undescribed interface", offset=chunks.base + pos)
            if n == batch_size:
                continue
            if status == OK:
                if not chunks.refill(pos):
                    if chunks.end > 0:
                        raise CaptureError(path, f"truncated block ({chunks.end} bytes left at end of file)", offset=chunks.base)
                    return
                pos = 0
                continue
        # A section or interface block, handled here: they are few.
        if chunks.end - pos < 12:
            more = chunks.refill(pos)
            pos = 0
            if chunks.end < 12:
                if chunks.end == 0 and not more and interfaces is not None:
                    return
                raise CaptureError(path, "truncated block header", offset=chunks.base)
        block = chunks.buf[pos:pos + 12].tobytes()
        # The section header's type reads the same in both byte orders; others follow the section's.
        block_type = int.from_bytes(block[:4], "big" if big_endian else "little")
        if block_type == SECTION_HEADER:
            magic = int.from_bytes(block[8:12], "little")
            if magic == BYTE_ORDER_MAGIC:
                big_endian = False
            elif magic == int.from_bytes(BYTE_ORDER_MAGIC.to_bytes(4, "big"), "little"):
                big_endian = True
            else:
                raise CaptureError(path, "section header with a bad byte-order magic", offset=chunks.base + pos)
            interfaces = _Interfaces()
        elif interfaces is None:
            raise CaptureError(path, "pcapng file does not start with a section header block", offset=chunks.base + pos)
        order = "big" if big_endian else "little"
        block_len = int.from_bytes(block[4:8], order)
        if block_len < 12 or block_len % 4 or block_len > MAX_BLOCK:
            raise CaptureError(path, f"block length {block_len} is impossible", offset=chunks.base + pos)
        if chunks.end - pos < block_len:
            chunks.refill(pos, need=block_len)
            pos = 0
            if chunks.end < block_len:
                raise CaptureError(path, "truncated block", offset=chunks.base)
        if block_type == INTERFACE_DESCRIPTION:
            if block_len < 20:
                raise CaptureError(path, "interface description block too short", offset=chunks.base + pos)
            interfaces.add(*_parse_idb(chunks.buf[pos:pos + block_len].tobytes(), order, path, chunks.base + pos, notices))
        pos += block_len
