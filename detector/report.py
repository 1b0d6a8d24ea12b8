"""The people-facing verdict table: suspicious flows first, then a summary per capture."""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.table import Table

_STYLE = {"vpn": "bold red", "proxy": "bold yellow", "normal": "green"}
_ORDER = {"vpn": 0, "proxy": 1, "normal": 2}


def print_verdict_table(batches, output=None, normal_rows=50):
    frames = [b.to_pandas() for b in batches]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["capture", "label", "protocol", "score", "evidence"])
    handle = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        console = Console(file=handle, width=200 if not handle.isatty() else None)
        if frame.empty:
            console.print("no flows")
            return
        frame = frame.assign(_order=frame["label"].map(_ORDER)).sort_values(["_order", "score"],
                                                                           ascending=[True, False])
        suspicious = frame[frame["label"] != "normal"]
        shown = pd.concat([suspicious, frame[frame["label"] == "normal"].head(normal_rows)])
        table = Table(title="flows, suspicious first", show_lines=False)
        for column in ("label", "protocol", "score", "src", "dst", "proto", "packets", "bytes", "evidence"):
            table.add_column(column, overflow="fold")
        for row in shown.itertuples():
            table.add_row(f"[{_STYLE[row.label]}]{row.label}[/]", str(row.protocol), f"{row.score:.3f}",
                          f"{row.src_ip}:{row.src_port}", f"{row.dst_ip}:{row.dst_port}", row.transport,
                          str(row.packets), str(row.bytes), str(row.evidence)[:160])
        console.print(table)
        hidden = len(frame) - len(shown)
        if hidden:
            console.print(f"({hidden} more normal flows not shown; use --format csv or jsonl for all)")
        summary = Table(title="per capture")
        for column in ("capture", "flows", "vpn", "proxy", "normal"):
            summary.add_column(column)
        for capture, group in frame.groupby("capture", sort=True):
            counts = group["label"].value_counts()
            summary.add_row(str(capture), str(len(group)), *(str(counts.get(k, 0)) for k in ("vpn", "proxy", "normal")))
        console.print(summary)
    finally:
        if output:
            handle.close()
