"""Classic pcap: microsecond and nanosecond, both byte orders, and the modified (Kuznetzov) variant."""

from __future__ import annotations

import numpy as np

from features.batch import PacketBatch
from features.decode import linktypes
from features.errors import CaptureError
from features import native
from features.native import BAD_LENGTH
from features.readers.source import PCAP_MAGICS, ChunkReader

FILE_HEADER_LEN = 24
MAX_CAPLEN = 256 * 1024


def read_pcap(path, stream, batch_size: int, chunk_size: int):
    """Yield PacketBatch objects; raise CaptureError (after yielding every good record) on damage."""
    head = stream.read(FILE_HEADER_LEN)
    if len(head) < FILE_HEADER_LEN:
        raise CaptureError(path, "truncated pcap file header", offset=len(head))
    big_endian, nanosecond, record_header_len = PCAP_MAGICS[int.from_bytes(head[:4], "little")]
    order = "big" if big_endian else "little"
    snaplen = int.from_bytes(head[16:20], order)
    linktype = int.from_bytes(head[20:24], order) & 0xFFFF
    if linktype not in linktypes.SUPPORTED:
        raise CaptureError(path, f"unsupported link type {linktypes.describe(linktype)}")
    # Writers that record no snap length (0) or a huge one get the 256 KiB limit that libpcap itself uses.
    max_caplen = snaplen if 0 < snaplen < MAX_CAPLEN else MAX_CAPLEN
    frac_ns = 1 if nanosecond else 1000

    chunks = ChunkReader(stream, chunk_size)
    chunks.base = FILE_HEADER_LEN
    chunks.refill(0)
    pos = 0
    while True:
        offset, caplen, wirelen, ts = (np.empty(batch_size, np.int64) for _ in range(4))
        n, pos, status = native.scan_pcap(chunks.buf, pos, chunks.end, big_endian, record_header_len, frac_ns,
                                         max_caplen, offset, caplen, wirelen, ts)
        if n:
            yield PacketBatch(chunks.buf, offset[:n], caplen[:n], wirelen[:n], ts[:n], np.full(n, linktype, np.int64))
        if status == BAD_LENGTH:
            bad = int.from_bytes(chunks.buf[pos + 8:pos + 12].tobytes(), order)
            limit = f"the snap length {snaplen}" if max_caplen == snaplen else "256 KiB"
            raise CaptureError(path, f"record length {bad} exceeds {limit} (corrupt or not a capture)",
                               offset=chunks.base + pos)
        if n == batch_size:
            continue
        if not chunks.refill(pos):
            if chunks.end > 0:
                raise CaptureError(path, f"truncated record ({chunks.end} bytes left at end of file)", offset=chunks.base)
            return
        pos = 0
