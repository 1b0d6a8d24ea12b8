"""The flows that end, and the plugins' work on them, for FlowReader: in the reader's thread, or beside it.

`Ended` calls the plugins' hooks in order and turns ended flows into record batches: one per expiry or, when
every plugin can hold ended flows (`FlowPlugin.hold_limit`), one per `hold_limit` flows, across captures (a
directory of small captures would otherwise pay the fixed cost of computing columns once per capture), and the
rest at the end.

With a `PluginWorker`, all of the plugins' work runs in that one thread while the reader's thread goes on
assembling flows: the hooks first, in the order called (they change the plugins' state), and the columns of held
flows whenever no hook waits (`compute` reads only what `take` gave it). Batches come out once computed, in
order. At the end, the flows still held are shared out between the worker and the reader's thread.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from functools import partial

import numpy as np
import pyarrow as pa

from features.flows import flow_record_batch
from features.flowtable import FlowTable


class PluginWorker:
    """One thread running jobs: hooks (in the order submitted) before columns (in the order submitted).

    A context manager; leaving it waits for the jobs left and ends the thread."""

    def __init__(self):
        self._queues = {"hooks": deque(), "columns": deque()}
        self._ready = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="vpndetect-plugins", daemon=True)
        self._thread.start()

    def submit(self, queue: str, job, *args) -> Future:
        future = Future()
        with self._ready:
            self._queues[queue].append((future, partial(job, *args)))
            self._ready.notify()
        return future

    def _run(self):
        while True:
            with self._ready:
                while not (self._queues["hooks"] or self._queues["columns"] or self._closing):
                    self._ready.wait()
                queue = self._queues["hooks"] or self._queues["columns"]
                if not queue:
                    return
                future, job = queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001  (handed to whoever waits on the future)
                future.set_exception(exc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join()
        return False


class Ended:
    """The ended flows of a FlowReader's pass and its plugins' hooks (see the module's docstring)."""

    QUEUED = 4              # hooks queued at most (each may hold a packet batch): bounded memory
    IN_FLIGHT = 2           # drains computed or waiting at most
    WINDOW = 4              # chunks taken at once at the end

    def __init__(self, plugins, worker: PluginWorker | None = None):
        self.plugins = plugins
        self.worker = worker
        self.capture = ""                       # the capture being read
        self.limit = min((p.hold_limit for p in plugins), default=0)
        self.rows: list[np.ndarray] = []        # table rows of the held flows, copied: the table reuses them
        self.captures: list[str] = []           # the capture of each entry of rows
        self.held = 0
        self.queued: deque = deque()            # futures of hooks not yet seen done
        self.pending: deque = deque()           # (future of a record batch, future of what the plugins took)

    # -- hooks ------------------------------------------------------------------------------------------------

    def call(self, hook: str, *args):
        """A future of each plugin's `hook(*args)`, run after every hook called before."""
        return self._in_order(partial(self._each, hook, args))

    def _each(self, hook, args):
        return [getattr(plugin, hook)(*args) for plugin in self.plugins]

    def _release(self, taken):
        for plugin, part in zip(self.plugins, taken):
            plugin.release(part)

    def _in_order(self, job):
        if self.worker is None:
            return _Done(job())
        future = self.worker.submit("hooks", job)
        self.queued.append(future)
        while self.queued and (len(self.queued) > self.QUEUED or self.queued[0].done()):
            self.queued.popleft().result()
        return future

    def settle(self) -> None:
        """Wait until every hook called has run."""
        while self.queued:
            self.queued.popleft().result()

    # -- batches ----------------------------------------------------------------------------------------------

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
            self.call("hold", slots)
            self.held += len(slots)
        if final:
            # In chunks, with a worker or without: the batches (and so whatever reads them batch by batch)
            # must not depend on the number of threads. Each chunk's state is given back before the next ones
            # are taken, so that a capture ending with many open flows needs no buffers for all of them.
            out = []
            while self.held:
                if self.worker is None:
                    self._drain(min(self.chunk, self.held))
                else:
                    self._finish()
                out += self.done(wait=True)
            return out + self.done(wait=True)
        if self.held and drain and self.held >= self.limit:
            self._drain(self.held)
        return self.done()

    @property
    def chunk(self) -> int:
        """Flows per batch at the end: two of a drain's size keep both threads busy, and each batch costs a
        fixed few milliseconds."""
        return self.limit

    def _drain(self, count: int):
        rows, captures, count = self._take(count)
        taken = self.call("take", count)
        if self.worker is None:
            self.pending.append((_Done(self._compute(rows, captures, taken)), taken))
        else:
            self.pending.append((self.worker.submit("columns", self._compute, rows, captures, taken), taken))

    def done(self, wait: bool = False) -> list:
        """The batches computed, in order; with `wait`, all of them. Each gives the plugins' state back."""
        out = []
        while self.pending and (wait or len(self.pending) > self.IN_FLIGHT or self.pending[0][0].done()):
            batch, taken = self.pending.popleft()
            try:
                out.append(batch.result())
            finally:
                self._in_order(partial(self._release, taken.result()))
        return out

    def close(self) -> None:
        """Wait for everything in flight (a consumer that stopped early drops its batches)."""
        try:
            self.done(wait=True)
        finally:
            self.settle()

    def _take(self, count: int):
        """The table rows and captures of the first `count` held flows, and their count."""
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
        return np.concatenate(rows), names, count

    def _compute(self, rows, captures, taken) -> pa.RecordBatch:
        """The record batch of taken flows (`taken`: a future of each plugin's part; a columns job runs only
        when no hook waits, so its take has run)."""
        extra = {}
        for plugin, part in zip(self.plugins, taken.result()):
            extra.update(plugin.compute(part))
        return flow_record_batch(rows, captures, extra)

    def _finish(self):
        """Up to WINDOW chunks of the flows still held at the end, queued for the worker once every hook has run;
        this thread takes chunks from the back of the queue while the worker has not started them, so both stay
        busy."""
        self.settle()
        chunks, batches = [], []
        while self.held and len(chunks) < self.WINDOW:
            rows, captures, count = self._take(min(self.chunk, self.held))
            chunks.append((rows, captures, _Done(self._each("take", (count,)))))
            batches.append(self.worker.submit("columns", self._compute, *chunks[-1]))
        for i in reversed(range(len(chunks))):
            if not batches[i].cancel():
                break
            batches[i] = _Done(self._compute(*chunks[i]))
        self.pending.extend((batch, taken) for batch, (_, _, taken) in zip(batches, chunks))


class _Done:
    """A result computed in the reader's thread, with a future's `done()` and `result()`."""

    def __init__(self, value):
        self.value = value

    def done(self):
        return True

    def result(self):
        return self.value
