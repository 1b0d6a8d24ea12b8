"""Writing flow tables as they stream out: table, csv, jsonl, parquet; to a file or stdout."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("table", "csv", "jsonl", "parquet")

_TABLE_COLUMNS = [
    # column, header, width
    ("src_ip", "src_ip", 39), ("src_port", "sport", 5), ("dst_ip", "dst_ip", 39), ("dst_port", "dport", 5),
    ("transport", "proto", 6), ("vlan", "vlan", 4), ("packets", "packets", 8), ("bytes", "bytes", 11),
    ("duration", "seconds", 9), ("end_reason", "end", 14),
]


class Sink:
    """An output file, or stdout for None or "-"; closing leaves stdout open. Live events ask for line buffering."""

    def __init__(self, path, binary: bool = False, line_buffered: bool = False):
        self.path = path
        if path in (None, "-"):
            self.handle = sys.stdout.buffer if binary else sys.stdout
            self.owned = False
        else:
            self.handle = open(path, "wb" if binary else "w", encoding=None if binary else "utf-8",
                               buffering=1 if line_buffered and not binary else -1)
            self.owned = True

    def close(self):
        if self.owned:
            self.handle.close()
        else:
            self.handle.flush()


class CsvWriter:
    def __init__(self, path):
        self.sink = Sink(path, binary=True)
        self.writer = None

    def write(self, batch: pa.RecordBatch):
        if self.writer is None:
            self.writer = pacsv.CSVWriter(self.sink.handle, batch.schema)
        self.writer.write_batch(batch)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.sink.close()


class JsonlWriter:
    def __init__(self, path):
        self.sink = Sink(path, binary=False)

    def write(self, batch: pa.RecordBatch):
        lines = []
        for row in batch.to_pylist():
            lines.append(json.dumps({k: json_value(v) for k, v in row.items()}, separators=(",", ":")))
        self.sink.handle.write("\n".join(lines) + "\n")

    def close(self):
        self.sink.close()


def json_value(value):
    """A value JSON can carry: numpy scalars as Python ones, NaN and infinities as null."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class ParquetWriter:
    def __init__(self, path):
        if path in (None, "-"):
            raise ValueError("parquet output needs a file: use -o FILE")
        self.path = path
        self.writer = None
        self.schema = None

    def write(self, batch: pa.RecordBatch):
        if self.writer is None:
            self.schema = batch.schema
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_batch(batch.cast(self.schema) if batch.schema != self.schema else batch)

    def close(self):
        if self.writer is not None:
            self.writer.close()


class TableWriter:
    """Fixed-width text for people; streams, so a capture of any size prints without holding its flows."""

    def __init__(self, path):
        self.sink = Sink(path, binary=False)
        self.header_done = False

    def write(self, batch: pa.RecordBatch):
        out = self.sink.handle
        if not self.header_done:
            out.write("  ".join(h.rjust(w) if w < 10 else h.ljust(w) for _, h, w in _TABLE_COLUMNS).rstrip() + "\n")
            self.header_done = True
        for row in batch.to_pylist():
            row["duration"] = f"{row['last_seen'] - row['first_seen']:.3f}"
            cells = [str(row[c]).rjust(w) if w < 10 else str(row[c]).ljust(w) for c, _, w in _TABLE_COLUMNS]
            out.write("  ".join(cells).rstrip() + "\n")

    def close(self):
        self.sink.close()


WRITERS = {"table": TableWriter, "csv": CsvWriter, "jsonl": JsonlWriter, "parquet": ParquetWriter}


def write_flows(batches, fmt: str, path=None) -> int:
    """Write every record batch of an iterable; returns the number of rows written."""
    writer = WRITERS[fmt](path)
    rows = 0
    try:
        for batch in batches:
            if batch.num_rows:
                writer.write(batch)
                rows += batch.num_rows
    finally:
        writer.close()
    return rows
