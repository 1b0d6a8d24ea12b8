"""FlowReader: the public face of the packet core. Captures in, bidirectional flows out, in bounded memory."""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import nullcontext

import numpy as np
import pyarrow as pa

from features.decode import decode
from features.errors import CaptureError
from features.ended import Ended, PluginWorker
from features.flows import FLOW_SCHEMA
from features.flowtable import FlowTable
from features.readers import BATCH_SIZE, expand_paths, iter_batches


class FlowReader:
    """Read captures and yield their flows as they end.

    Parameters
    ----------
    source : path or list of paths
        pcap/pcapng files (optionally gzip, bzip2, xz or zstd compressed) and directories (walked recursively).
    idle_timeout, active_timeout : float
        Seconds; a flow ends after `idle_timeout` without packets or `active_timeout` after its first packet
        (the rest continues as a new flow marked `continuation`).
    max_flows : int
        Open flows kept at most per capture; the least recently active is evicted past it.
    plugins : list of FlowPlugin
        Extra per-flow columns computed in the same pass.
    max_packets : int or None
        Count only the first packets of each flow, as if flows ended there (early-detection studies).
    on_error : {"warn", "raise", "collect"}
        What to do with a damaged capture once its readable part was processed: warn, raise CaptureError at
        the end, or only record it in `errors`.
    progress : bool
        Show a progress bar on stderr (only when stderr is a terminal).
    threads : int or None
        1: one thread does everything. 2: the plugins' work (features) runs in a worker thread beside the one
        that assembles flows (the same batches in the same order). None (the default): 2 when the process may
        run on more than one core and every plugin holds ended flows, else 1.

    Iterating yields pyarrow RecordBatches of ended flows; `to_pandas`, `to_arrow`, `to_parquet` and `to_csv`
    collect or write them.
    """

    def __init__(self, source, idle_timeout=120.0, active_timeout=1800.0, max_flows=500_000, plugins=(),
                 on_error="warn", progress=False, batch_size=BATCH_SIZE, max_packets=None, threads=None):
        if idle_timeout <= 0 or active_timeout <= 0:
            raise ValueError("idle_timeout and active_timeout must be positive numbers of seconds")
        if int(max_flows) < 1:
            raise ValueError("max_flows must be at least 1")
        if on_error not in ("warn", "raise", "collect"):
            raise ValueError("on_error must be one of 'warn', 'raise', 'collect'")
        if threads not in (None, 1, 2):
            raise ValueError("threads must be 1, 2 or None")
        self.source = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        self.idle_timeout = idle_timeout
        self.active_timeout = active_timeout
        self.max_flows = int(max_flows)
        self.plugins = list(plugins)
        self.on_error = on_error
        self.progress = progress
        self.batch_size = batch_size
        self.max_packets = max_packets
        self.threads = threads if threads is not None else (2 if _usable_cores() > 1 else 1)
        self.errors: list[CaptureError] = []
        self.notices: list[str] = []
        self.packets_read = 0
        self.bytes_read = 0

    # -- iteration ---------------------------------------------------------------------------------------

    def __iter__(self):
        self.errors, self.notices = [], []
        self.packets_read = self.bytes_read = 0
        try:
            paths = expand_paths(self.source)
        except CaptureError as exc:
            self._failed(exc)
            return
        table = FlowTable(self.idle_timeout, self.active_timeout, self.max_flows, max_packets=self.max_packets)
        holding = self.plugins and all(p.hold_limit for p in self.plugins)
        with _Progress(paths, self.progress) as progress, \
                (PluginWorker() if self.threads > 1 and holding else nullcontext()) as worker:
            ended = Ended(self.plugins, worker)
            try:
                for path in paths:
                    yield from self._read_capture(path, table, ended, progress)
                yield from ended.take(table, final=True)
            finally:
                ended.close()
        if self.errors and self.on_error == "raise":
            raise self.errors[0]

    def _read_capture(self, path, table: FlowTable, ended: Ended, progress):
        table.reset()
        capacity = len(table.state)
        ended.call("on_capacity", capacity)
        ended.capture = str(path)
        try:
            for batch in iter_batches(path, self.batch_size, notices=self.notices, on_stream=progress.track):
                decoded = decode(batch)
                slot, direction, ordinal = table.add(batch.ts_ns, decoded, batch.wirelen)
                if len(table.state) != capacity:
                    capacity = len(table.state)
                    ended.call("on_capacity", capacity)
                ended.call("on_packets", batch, decoded, slot, direction, ordinal)
                self.packets_read += len(batch)
                self.bytes_read += int(batch.caplen.sum())
                progress.advance()
                yield from ended.take(table)
        except CaptureError as exc:
            self._failed(exc)
        table.expire_all()
        yield from ended.take(table, drain=False)     # drained with the next capture's flows, or at the end

    def _failed(self, exc: CaptureError):
        self.errors.append(exc)
        if self.on_error == "warn":
            warnings.warn(str(exc), stacklevel=3)

    # -- collectors --------------------------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        batches = list(self)
        if not batches:
            return FLOW_SCHEMA.empty_table()
        return pa.Table.from_batches(batches)

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    def to_parquet(self, path) -> int:
        from detector.output import write_flows
        return write_flows(self, "parquet", path)

    def to_csv(self, path) -> int:
        from detector.output import write_flows
        return write_flows(self, "csv", path)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Progress:
    """A rich progress bar over the bytes of all files, shown only on a terminal."""

    def __init__(self, paths, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.paths = paths
        self.stream = None
        self.done = 0

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
            from rich.console import Console
            self.bar = Progress("reading", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            self.total = sum(os.path.getsize(p) for p in self.paths)
            self.task = self.bar.add_task("read", total=self.total)
            self.bar.start()
        return self

    def track(self, stream):
        if self.stream is not None:
            self.done += _position(self.stream, final=True)
        self.stream = stream

    def advance(self):
        if self.enabled and self.stream is not None:
            self.bar.update(self.task, completed=self.done + _position(self.stream))

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


def _position(stream, final=False) -> int:
    raw = getattr(stream, "fileobj", None) or getattr(stream, "_fp", None) or stream
    try:
        return os.fstat(raw.fileno()).st_size if final else raw.tell()
    except (OSError, ValueError, AttributeError):
        return 0
