"""Capture readers: every format yields PacketBatch objects from one stream."""

from __future__ import annotations

from features.errors import CaptureError
from features.readers.pcap import read_pcap
from features.readers.pcapng import read_pcapng
from features.readers.source import ChunkReader, expand_paths, open_capture, sniff_format

CHUNK_SIZE = 8 * 1024 * 1024
BATCH_SIZE = 65536


class _PeekedStream:
    """A stream whose first bytes were read to sniff the format, replayed to the format reader."""

    def __init__(self, stream, head: bytes):
        self._stream, self._head = stream, head

    def read(self, size=-1):
        if not self._head:
            return self._stream.read(size)
        if size < 0:
            data, self._head = self._head + self._stream.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data + (self._stream.read(size - len(data)) if len(data) < size else b"")

    def readinto(self, view):
        if not self._head:
            return self._stream.readinto(view)
        n = min(len(view), len(self._head))
        view[:n] = self._head[:n]
        self._head = self._head[n:]
        return n

    @property
    def fileobj(self):
        return self._stream

    def close(self):
        self._stream.close()


def iter_batches(path, batch_size: int = BATCH_SIZE, chunk_size: int = CHUNK_SIZE, notices=None, on_stream=None):
    """Yield the PacketBatch objects of one capture file.

    Raises CaptureError once the damage is reached, after every packet before it was yielded.
    """
    try:
        stream, _compression = open_capture(path)
    except OSError as exc:
        raise CaptureError(path, exc.strerror or str(exc)) from None
    with stream:
        try:
            head = stream.read(4)
        except (OSError, EOFError) as exc:
            raise CaptureError(path, f"cannot decompress: {exc}") from None
        if not head:
            raise CaptureError(path, "empty file")
        kind = sniff_format(head)
        if kind is None:
            raise CaptureError(path, f"not a pcap or pcapng file (magic 0x{head.hex()})", offset=0)
        peeked = _PeekedStream(stream, head)
        if on_stream is not None:
            on_stream(stream)
        reader = read_pcap(path, peeked, batch_size, chunk_size) if kind == "pcap" else \
            read_pcapng(path, peeked, batch_size, chunk_size, notices)
        try:
            yield from reader
        except (OSError, EOFError) as exc:
            # Compressed streams that end early or carry a bad checksum land here.
            raise CaptureError(path, f"damaged compressed stream: {exc}") from None


__all__ = ["CaptureError", "ChunkReader", "expand_paths", "iter_batches", "open_capture"]
