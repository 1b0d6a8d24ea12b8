"""The live loop: poll the capture ring and a signal pipe, feed batches to the flows, tick the wall clock,
write verdicts; on SIGINT/SIGTERM (or after --duration) flush every open flow and report."""

from __future__ import annotations

import gc
import os
import select
import signal
import threading
import time


from detector.live.output import ALERT_LABELS, alerts


class Sniffer:
    """
    Parameters
    ----------
    source : a capture source (detector.live.capture): fileno(), read(), more_ready(), stats(), close()
    flows : detector.live.engine.LiveFlows
    output : an event writer (detector.live.output)
    alerts_only : write only vpn/proxy verdicts
    duration : seconds to capture, None for until a signal
    pcap : a PcapWriter that receives every captured packet, or None
    tick : seconds between wall-clock expiry passes
    """

    def __init__(self, source, flows, output, alerts_only=False, duration=None, pcap=None, tick=0.1,
                 status_every=1.0, name=None, min_batch_interval=0.04):
        self.source = source
        self.flows = flows
        self.output = output
        self.alerts_only = alerts_only
        self.duration = duration
        self.pcap = pcap
        self.tick_seconds = tick
        # On a busy link blocks are ready every few milliseconds; taking them at most this often makes
        # batches big enough that the per-batch cost (feature read-out, model call) stays small per packet.
        # A quiet link hands over a block only every retire_ms anyway.
        self.min_batch_interval = min_batch_interval
        self.status_every = status_every
        self.name = name or getattr(source, "iface", "")
        self.stopping = False
        self.stop_signal = None
        self.error = None
        # VPNDETECT_LIVE_TRACE=FILE: one line per batch (time, packets, milliseconds, kernel drops so far).
        trace = os.environ.get("VPNDETECT_LIVE_TRACE")
        self._trace = open(trace, "w", buffering=1) if trace else None
        self.alerts = 0
        self.started = None

    # -- signals ----------------------------------------------------------------------------------------

    def _install_signals(self):
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._old_handlers = {}
        self._old_wakeup = None
        if threading.current_thread() is not threading.main_thread():
            return  # signals belong to the main thread; stop() still works from anywhere
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w)

        def handler(signum, frame):
            self.stopping = True
            self.stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, handler)

    def _restore_signals(self):
        if self._old_wakeup is not None:
            signal.set_wakeup_fd(self._old_wakeup)
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _sleep(self, seconds):
        wake = select.poll()
        wake.register(self._wake_r, select.POLLIN)
        wake.poll(max(1, int(seconds * 1000)))

    def stop(self):
        """Ask the loop to stop (from another thread or a signal handler)."""
        self.stopping = True
        try:
            os.write(self._wake_w, b"\0")
        except (OSError, AttributeError):
            pass

    # -- loop -------------------------------------------------------------------------------------------

    def _emit(self, frames):
        for events in frames:
            if not len(events):
                continue
            self.alerts += int(events["label"].isin(ALERT_LABELS).sum())
            if self.alerts_only:
                events = alerts(events)
                if not len(events):
                    continue
            self.output.write(events)

    def run(self) -> dict:
        # Everything loaded so far (pandas, pyarrow, the model) is long-lived: out of the cyclic collector's
        # sight, a collection no longer walks it (a full pass over it stalls the loop for tens of ms).
        gc.collect()
        gc.freeze()
        self._install_signals()
        poller = select.poll()
        poller.register(self.source.fileno(), select.POLLIN | select.POLLERR)
        poller.register(self._wake_r, select.POLLIN)
        self.started = time.monotonic()
        deadline = self.started + self.duration if self.duration else None
        next_tick = self.started + self.tick_seconds
        next_status = self.started + self.status_every
        last_batch = 0.0
        try:
            while not self.stopping:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                pause = last_batch + self.min_batch_interval - now
                if pause > 0 and not self.source.more_ready():
                    # Only the signal pipe is watched meanwhile: data waits in the ring.
                    self._sleep(pause)
                    continue
                if not self.source.more_ready():
                    wait = next_tick - now
                    if deadline is not None:
                        wait = min(wait, deadline - now)
                    ready = poller.poll(max(0, int(wait * 1000) + 1))
                    try:
                        os.read(self._wake_r, 512)
                    except BlockingIOError:
                        pass
                    if any(fd == self.source.fileno() and event & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
                           for fd, event in ready):
                        self.error = self.source.error()
                        if self.error:
                            break
                batch = self.source.read()
                if batch is not None:
                    last_batch = time.monotonic()
                    if self.pcap is not None:
                        self.source.write_pending(self.pcap, batch)
                    self._emit(self.flows.add(batch))
                    if self._trace is not None:
                        self._trace.write(f"{last_batch:.4f} {len(batch)} {1e3 * (time.monotonic() - last_batch):.2f} "
                                          f"{self.source.stats().get('kernel_dropped')}\n")
                now = time.monotonic()
                if now >= next_tick:
                    self._emit(self.flows.tick())
                    next_tick = now + self.tick_seconds
                if now >= next_status:
                    self.output.status(self.stats())
                    next_status = now + self.status_every
            # Whatever the kernel still holds (its current block comes out when its retire timer fires),
            # then every open flow.
            deadline = time.monotonic() + getattr(self.source, "flush_wait", 0.0)
            while True:
                batch = self.source.read()
                if batch is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    poller.poll(max(1, int(remaining * 1000)))
                    try:
                        os.read(self._wake_r, 512)
                    except BlockingIOError:
                        pass
                    continue
                if self.pcap is not None:
                    self.source.write_pending(self.pcap, batch)
                self._emit(self.flows.add(batch))
            self._emit(self.flows.flush())
        finally:
            self._restore_signals()
            gc.unfreeze()
            if self._trace is not None:
                self._trace.close()
        stats = self.stats()
        self.output.status(stats)
        return stats

    def stats(self) -> dict:
        f = self.flows
        kernel = self.source.stats()
        seconds = time.monotonic() - self.started if self.started else 0.0
        return {
            "interface": self.name, "backend": getattr(self.source, "backend", ""),
            "detector": getattr(f.detector, "name", type(f.detector).__name__),
            "seconds": round(seconds, 3), "packets": f.packets, "bytes": f.bytes,
            "flows_ended": f.flows_ended, "open_flows": f.open_flows,
            "early_verdicts": f.verdicts["early"], "final_verdicts": f.verdicts["final"],
            "early_labels": dict(f.labels["early"]), "final_labels": dict(f.labels["final"]), "alerts": self.alerts,
            "early_latency_ms_median": f.latency.quantile(0.5), "early_latency_ms_p90": f.latency.quantile(0.9),
            **kernel,
            "signal": signal.Signals(self.stop_signal).name if self.stop_signal else None,
            "error": self.error,
        }
