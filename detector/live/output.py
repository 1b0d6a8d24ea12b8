"""Where live verdict events go: JSON lines for machines, a table for people (a live-updating rich table on a
terminal, plain lines otherwise)."""

from __future__ import annotations

import json
import sys
import time
from collections import OrderedDict

from detector.output import Sink, json_value

_STYLE = {"vpn": "bold red", "proxy": "bold yellow", "normal": "green"}
ALERT_LABELS = ("vpn", "proxy")




class JsonlEvents:
    """One JSON object per line and per verdict (`event`: early or final), flushed as it is written; a last
    `summary` object at shutdown."""

    def __init__(self, path=None):
        self.out = Sink(path, line_buffered=True)

    def write(self, events) -> None:
        if len(events):
            # pandas' encoder (C): NaN and None become null, numpy scalars plain numbers.
            text = events.to_json(orient="records", lines=True, double_precision=15)
            self.out.handle.write(text if text.endswith("\n") else text + "\n")
            self.out.handle.flush()

    def status(self, stats: dict) -> None:
        pass

    def summary(self, stats: dict) -> None:
        self.out.handle.write(json.dumps({"event": "summary", **{k: json_value(v) for k, v in stats.items()}},
                                         separators=(",", ":")) + "\n")
        self.out.handle.flush()

    def close(self) -> None:
        self.out.close()


_LINE = [("time", 12), ("event", 5), ("label", 6), ("protocol", 14), ("score", 6), ("src", 21), ("dst", 21),
         ("proto", 5), ("packets", 7), ("latency_ms", 10)]


def _endpoint(ip, port, transport) -> str:
    if transport not in ("tcp", "udp", "sctp", "udplite") and not port:
        return str(ip)
    return f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"


def _cells(row) -> dict:
    return {
        "time": time.strftime("%H:%M:%S", time.localtime(row.time)) + f".{int(row.time * 1000) % 1000:03d}",
        "event": row.event, "label": row.label, "protocol": str(row.protocol), "score": f"{row.score:.3f}",
        "src": _endpoint(row.src_ip, row.src_port, row.transport),
        "dst": _endpoint(row.dst_ip, row.dst_port, row.transport), "proto": row.transport,
        "packets": str(row.packets_at_verdict), "latency_ms": f"{row.latency_ms:.1f}",
    }


class LineEvents:
    """Fixed-width text, one line per verdict (table format to a file or a pipe)."""

    def __init__(self, path=None):
        self.out = Sink(path, line_buffered=True)
        self.out.handle.write("  ".join(name.ljust(w) for name, w in _LINE).rstrip() + "\n")
        self.out.handle.flush()

    def write(self, events) -> None:
        lines = []
        for row in events.itertuples(index=False):
            cells = _cells(row)
            lines.append("  ".join(cells[name].ljust(w) for name, w in _LINE).rstrip())
        if lines:
            self.out.handle.write("\n".join(lines) + "\n")
            self.out.handle.flush()

    def status(self, stats: dict) -> None:
        pass

    def summary(self, stats: dict) -> None:
        pass

    def close(self) -> None:
        self.out.close()


class LiveTable:
    """A rich Live table on the terminal: counters on top, then the latest verdict of the most recent flows
    (suspicious ones kept in view first)."""

    def __init__(self, rows: int = 25):
        from rich.console import Console
        from rich.live import Live
        self.console = Console()
        self.rows = rows
        self.flows: OrderedDict = OrderedDict()
        self.stats: dict = {}
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def write(self, events) -> None:
        for row in events.itertuples(index=False):
            key = (row.flow_id, row.src_ip, row.src_port, row.dst_ip, row.dst_port, row.transport)
            self.flows.pop(key, None)
            self.flows[key] = row
        while len(self.flows) > 500:
            self.flows.popitem(last=False)
        self.live.update(self._render())

    def status(self, stats: dict) -> None:
        self.stats = stats
        self.live.update(self._render())

    def _render(self):
        from rich.table import Table
        s = self.stats
        title = (f"vpndetect sniff {s.get('interface', '')}: {s.get('packets', 0)} packets, "
                 f"{s.get('open_flows', 0)} open flows, {s.get('flows_ended', 0)} ended, "
                 f"alerts {s.get('alerts', 0)}, kernel drops {s.get('kernel_dropped', 0)}")
        table = Table(title=title, title_justify="left", expand=False)
        for name in ("time", "event", "label", "protocol", "score", "src", "dst", "proto", "packets", "latency_ms"):
            table.add_column(name, overflow="fold", justify="right" if name in ("score", "packets", "latency_ms") else "left")
        recent = list(reversed(self.flows.values()))
        suspicious = [r for r in recent if r.label in ALERT_LABELS]
        normal = [r for r in recent if r.label not in ALERT_LABELS]
        for row in (suspicious + normal)[:self.rows]:
            cells = _cells(row)
            cells["label"] = f"[{_STYLE.get(row.label, '')}]{row.label}[/]"
            table.add_row(*(cells[name] for name in ("time", "event", "label", "protocol", "score", "src", "dst",
                                                     "proto", "packets", "latency_ms")))
        return table

    def summary(self, stats: dict) -> None:
        pass

    def close(self) -> None:
        self.live.update(self._render())
        self.live.stop()


def make_output(fmt: str, path=None):
    if fmt == "jsonl":
        return JsonlEvents(path)
    if path in (None, "-") and sys.stdout.isatty():
        return LiveTable()
    return LineEvents(path)


def alerts(events):
    """Only the vpn and proxy verdicts."""
    return events[events["label"].isin(ALERT_LABELS)]


def summary_text(stats: dict) -> str:
    labels = stats.get("final_labels", {})
    dropped = stats.get("kernel_dropped")
    drops = "unknown (portable backend)" if dropped is None else str(dropped)
    return (f"vpndetect sniff: {stats['interface']}: {stats['packets']} packets ({stats['bytes']} bytes) in "
            f"{stats['seconds']:.1f} s; {stats['flows_ended']} flows; verdicts: {stats['early_verdicts']} early, "
            f"{stats['final_verdicts']} final ({labels.get('vpn', 0)} vpn, {labels.get('proxy', 0)} proxy, "
            f"{labels.get('normal', 0)} normal); kernel: {stats.get('kernel_received')} received, {drops} dropped")
