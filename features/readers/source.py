"""Opening captures: compression, format sniffing, directories, and chunked reading into numpy buffers."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import numpy as np

from features.errors import CaptureError
from features.spare import SparePool

PCAP_MAGICS = {
    # magic as read little-endian: (big_endian, nanosecond, record header length)
    0xA1B2C3D4: (False, False, 16), 0xD4C3B2A1: (True, False, 16),
    0xA1B23C4D: (False, True, 16), 0x4D3CB2A1: (True, True, 16),
    0xA1B2CD34: (False, False, 24), 0x34CDB2A1: (True, False, 24),  # Kuznetzov's modified pcap
}
PCAPNG_MAGIC = 0x0A0D0D0A

_COMPRESSION = [
    (b"\x1f\x8b", "gzip", gzip.open),
    (b"BZh", "bzip2", bz2.open),
    (b"\xfd7zXZ\x00", "xz", lzma.open),
    (b"\x28\xb5\x2f\xfd", "zstd", None),
]


def _open_zstd(path):
    try:
        import zstandard
    except ImportError:
        raise CaptureError(path, "zstd-compressed: install the 'zstandard' package to read it") from None
    return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)


def open_capture(path):
    """Open a capture for reading, decompressing transparently; returns (binary file object, raw file object)."""
    raw = open(path, "rb")
    head = raw.read(6)
    raw.seek(0)
    for magic, name, opener in _COMPRESSION:
        if head.startswith(magic):
            raw.close()
            stream = _open_zstd(path) if opener is None else opener(path, "rb")
            return stream, name
    return raw, None


def sniff_format(head: bytes):
    """'pcap', 'pcapng' or None from the first four (decompressed) bytes."""
    if len(head) < 4:
        return None
    magic = int.from_bytes(head[:4], "little")
    if magic in PCAP_MAGICS:
        return "pcap"
    if magic == PCAPNG_MAGIC:
        return "pcapng"
    return None


def _looks_like_capture(path: Path) -> bool:
    try:
        stream, _ = open_capture(path)
        with stream:
            return sniff_format(stream.read(4)) is not None
    except (OSError, EOFError, CaptureError, lzma.LZMAError):
        return False


def expand_paths(paths):
    """Files to read, in order: files as given, directories walked recursively (only files that are captures)."""
    found = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and _looks_like_capture(p))
            if not inside:
                raise CaptureError(path, "no capture files found in this directory")
            found.extend(inside)
        elif path.exists():
            found.append(path)
        else:
            raise CaptureError(path, "no such file or directory")
    return found


class ChunkReader:
    """Reads a stream in large chunks into numpy buffers, carrying an unfinished record over to the next chunk.

    Batches refer to the chunk they were read from, so a chunk's buffer is reused only once nothing refers to
    it any more (a consumer that keeps batches keeps their buffers; see features.spare).
    """

    def __init__(self, stream, chunk_size: int):
        self.stream = stream
        self.chunk_size = chunk_size
        self.buf = np.empty(0, np.uint8)
        self.end = 0        # valid bytes in buf
        self.base = 0       # offset in the (decompressed) stream of buf[0]
        self.eof = False
        self._buffers = SparePool(keep=3)       # the chunk in use and two before it

    def refill(self, keep_from: int, need: int = 0) -> bool:
        """Keep buf[keep_from:end], read more after it; returns False when nothing more could be read."""
        tail = self.end - keep_from
        size = max(self.chunk_size, tail + need, 2 * tail)
        new = self._buffers.take((size,), np.uint8)
        new[:tail] = self.buf[keep_from:self.end]
        filled = tail
        view = memoryview(new)
        while filled < size and not self.eof:
            got = self.stream.readinto(view[filled:])
            if not got:
                self.eof = True
                break
            filled += got
        self.base += keep_from
        self.buf, self.end = new, filled
        return filled > tail
