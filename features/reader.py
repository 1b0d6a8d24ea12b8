"""FlowReader: the public face of the packet core. Captures in, bidirectional flows out, in bounded memory."""

from __future__ import annotations

import os
import sys
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
import pyarrow as pa

from features.decode import decode
from features.errors import CaptureError
from features.flows import FLOW_SCHEMA, flow_record_batch
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
        1: one thread does everything. 2: plugins that hold ended flows compute their columns in a second thread
        while packets are read on (the same batches in the same order). None (the default): 2 when the process
        may run on more than one core, else 1 (on one core the two threads would only take turns).

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
                ThreadPoolExecutor(1, "vpndetect-columns") if self.threads > 1 and holding else nullcontext() as worker:
            ended = _Ended(self.plugins, worker)
            try:
                for path in paths:
                    yield from self._read_capture(path, table, ended, progress)
                yield from ended.take(table, final=True)
            finally:
                ended.done(wait=True)   # a consumer that stopped early: the batches in flight are dropped
        if self.errors and self.on_error == "raise":
            raise self.errors[0]

    def _read_capture(self, path, table: FlowTable, ended: "_Ended", progress):
        table.reset()
        capacity = 0
        for plugin in self.plugins:
            plugin.on_capacity(len(table.state))
        ended.capture = str(path)
        try:
            for batch in iter_batches(path, self.batch_size, notices=self.notices, on_stream=progress.track):
                decoded = decode(batch)
                slot, direction, ordinal = table.add(batch.ts_ns, decoded, batch.wirelen)
                if len(table.state) != capacity:
                    capacity = len(table.state)
                    for plugin in self.plugins:
                        plugin.on_capacity(capacity)
                for plugin in self.plugins:
                    plugin.on_packets(batch, decoded, slot, direction, ordinal)
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


class _Ended:
    """Record batches of the flows that end: one per expiry or, when every plugin can hold ended flows
    (`FlowPlugin.hold_limit`), one per `hold_limit` flows, across captures (a directory of small captures
    would otherwise pay the fixed cost of computing columns once per capture), and one at the end.

    With a `worker` (a one-thread executor), the columns of held flows are computed there while the reader
    goes on with the next packets, and their batch comes out once it is done, in order. At the end, the flows
    still held are split between the worker and this thread."""

    IN_FLIGHT = 2           # drains computed or waiting at most; the reader waits past it (bounded memory)

    def __init__(self, plugins, worker=None):
        self.plugins = plugins
        self.worker = worker
        self.capture = ""                       # the capture being read
        self.limit = min((p.hold_limit for p in plugins), default=0)
        self.rows: list[np.ndarray] = []        # table rows of the held flows, copied: the table reuses them
        self.captures: list[str] = []           # the capture of each entry of rows
        self.held = 0
        self.pending: deque = deque()           # (future of a record batch, what the plugins took), in order

    def take(self, table: FlowTable, final: bool = False, drain: bool = True) -> list:
        """Record batches of the flows that ended since the last call, as they come due (`final`: all of
        them; without `drain`, the flows held are not drained yet)."""
        slots = table.take_expired()
        if not self.limit:
            if not len(slots):
                return []
            extra = {}
            for plugin in self.plugins:
                extra.update(plugin.on_expire(slots))
            return [flow_record_batch(table.state[slots], self.capture, extra)]
        if len(slots):
            self.rows.append(table.state[slots])
            self.captures.append(self.capture)
            for plugin in self.plugins:
                plugin.hold(slots)
            self.held += len(slots)
        if self.held and (final or (drain and self.held >= self.limit)):
            if self.worker is None:
                self._compute_here(self.held)
            elif final:
                self._submit(self.held // 2)
                self._compute_here(self.held)
            else:
                self._submit(self.held)
        return self.done(wait=final)

    def done(self, wait: bool = False) -> list:
        """The batches computed, in order; with `wait`, all of them. Each gives the plugins' state back."""
        out = []
        while self.pending and (wait or len(self.pending) > self.IN_FLIGHT or self.pending[0][0].done()):
            future, taken = self.pending.popleft()
            try:
                out.append(future.result())
            finally:
                for plugin, part in zip(self.plugins, taken):
                    plugin.release(part)
        return out

    def _take(self, count: int):
        """The first `count` held flows: their table rows, captures, and each plugin's part."""
        rows, captures, left = [], [], count
        while left:
            entry, capture = self.rows[0], self.captures[0]
            if len(entry) > left:
                entry, self.rows[0] = entry[:left], entry[left:]
            else:
                del self.rows[0], self.captures[0]
            rows.append(entry)
            captures.append(capture)
            left -= len(entry)
        self.held -= count
        names = captures[0] if len(set(captures)) == 1 else \
            np.repeat(np.array(captures, object), [len(r) for r in rows])
        return np.concatenate(rows), names, [plugin.take(count) for plugin in self.plugins]

    def _submit(self, count: int):
        if count:
            rows, captures, taken = self._take(count)
            self.pending.append((self.worker.submit(self._batch, rows, captures, taken), taken))

    def _compute_here(self, count: int):
        rows, captures, taken = self._take(count)
        self.pending.append((_Done(self._batch(rows, captures, taken)), taken))

    def _batch(self, rows, captures, taken) -> pa.RecordBatch:
        extra = {}
        for plugin, part in zip(self.plugins, taken):
            extra.update(plugin.compute(part))
        return flow_record_batch(rows, captures, extra)


class _Done:
    """A batch computed in the reader's thread, with a future's `done()` and `result()`."""

    def __init__(self, value):
        self.value = value

    def done(self):
        return True

    def result(self):
        return self.value


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
