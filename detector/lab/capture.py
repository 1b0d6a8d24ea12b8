"""Client-side capture with tcpdump, and compression of finished captures."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

from detector.lab.netns import LabError, LabNet, Process


class Capture:
    def __init__(self, net: LabNet, path: Path):
        self.net = net
        self.path = Path(path)
        self.proc: Process | None = None

    def start(self) -> None:
        # -U --immediate-mode: without them tcpdump loses what is still in its ring buffer when stopped.
        self.proc = self.net.client(
            ["tcpdump", "-i", self.net.client_if, "-s", "0", "-U", "--immediate-mode", "-n", "-w", str(self.path)],
            name="tcpdump",
        )
        self.proc.wait_output("listening on", timeout=10)

    def stop(self, pause: float = 0.6) -> None:
        if self.proc is None:
            return
        time.sleep(pause)  # lets the last packets in flight land in the file
        self.net.stop(self.proc)
        if not self.path.exists():
            raise LabError(f"tcpdump wrote no capture: {self.proc.output()[-400:]}")


def store(src: Path, dst: Path) -> None:
    """Slim a finished capture (see slim.py: later packets cut after their headers) and gzip it to dst."""
    from detector.lab.slim import slim_capture

    dst.parent.mkdir(parents=True, exist_ok=True)
    slim = src.with_suffix(".slim.pcap")
    slim_capture(src, slim)
    with open(slim, "rb") as fin, gzip.GzipFile(dst, "wb", compresslevel=9, mtime=0) as fout:
        shutil.copyfileobj(fin, fout)
    slim.unlink()
