"""Flow assembly and detection speed: vpndetect against NFStream and a dpkt loop, same capture, same run.

Each tool runs in its own process (vpndetect pinned to one core with taskset); wall time, packets/s, MB/s and
peak RSS are printed side by side with the ratios. These machines are noisy: compare ratios.

Tools: `vpndetect` (`vpndetect flows`), `nfstream` (flows only, no dissection), `dpkt` (a dict of 5-tuples);
for the whole detection job, `analyze` (`vpndetect analyze` with the shipped model: read, features, verdicts)
against `nfstream-ndpi` (NFStream with nDPI's protocol dissection and its statistical features).

    python bench/flows_bench.py --packets 1000000                 # builds the capture from pcaps/lab
    python bench/flows_bench.py --capture /tmp/big.pcap --tools vpndetect
    python bench/flows_bench.py --capture /tmp/vpndetect-bench.pcap --tools analyze nfstream-ndpi
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NFSTREAM = """
import sys
from nfstream import NFStreamer
flows = sum(1 for _ in NFStreamer(source=sys.argv[1], n_dissections=0, statistical_analysis=False, n_meters=1))
print(flows)
"""

OURS = ("vpndetect", "analyze")

NFSTREAM_NDPI = """
import sys
from nfstream import NFStreamer
flows = sum(1 for _ in NFStreamer(source=sys.argv[1], statistical_analysis=True, n_meters=1))
print(flows)
"""

DPKT = """
import socket, sys, dpkt
flows = {}
with open(sys.argv[1], 'rb') as f:
    for ts, buf in dpkt.pcap.Reader(f):
        try:
            ip = dpkt.ethernet.Ethernet(buf).data
        except dpkt.UnpackError:
            continue
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            continue
        l4 = ip.data
        sport, dport = (l4.sport, l4.dport) if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)) else (0, 0)
        a, b = (ip.src, sport), (ip.dst, dport)
        key = (ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt,) + ((a, b) if a <= b else (b, a))
        entry = flows.get(key)
        if entry is None:
            flows[key] = [ts, ts, 1, len(buf)]
        else:
            entry[1] = ts; entry[2] += 1; entry[3] += len(buf)
print(len(flows))
"""


def count_packets(path: Path) -> int:
    from features import FlowReader
    reader = FlowReader(path, on_error="raise")
    for _ in reader:
        pass
    return reader.packets_read


def run_tool(name: str, capture: Path) -> dict:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    if name in OURS:
        command = "flows" if name == "vpndetect" else "analyze"
        cmd = pin + [sys.executable, "-m", "detector.cli", command, str(capture), "--format", "csv", "-o", os.devnull]
    elif name == "nfstream":
        cmd = [sys.executable, "-c", NFSTREAM, str(capture)]
    elif name == "nfstream-ndpi":
        cmd = [sys.executable, "-c", NFSTREAM_NDPI, str(capture)]
    elif name == "dpkt":
        cmd = [sys.executable, "-c", DPKT, str(capture)]
    else:
        raise ValueError(name)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        peak = _peak_rss(proc)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{name} failed: {err.read().decode().strip()[-500:]}")
    return {"tool": name, "seconds": seconds, "peak_rss_mb": peak / 2**20}


def _peak_rss(proc) -> int:
    """Largest sum of resident memory over the process and its children, sampled until it exits.

    Sampled rather than taken from wait4: on Linux a child inherits its parent's high-water mark through
    fork and exec, which would charge this script's own memory to the tool.
    """
    import psutil
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [watched] + watched.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.01)
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, help="an existing capture (else one is built)")
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--sources", nargs="*", default=["pcaps/lab"])
    parser.add_argument("--tools", nargs="*", default=["vpndetect", "nfstream", "dpkt"])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool; the fastest counts")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    capture = args.capture
    if capture is None:
        from bench.make_capture import build
        capture = Path("/tmp/vpndetect-bench.pcap")
        build(args.sources, args.packets, capture)
    packets = count_packets(capture)  # also warms the compiled-kernel cache before any timing
    size_mb = capture.stat().st_size / 1e6
    print(f"capture {capture}: {packets} packets, {size_mb:.1f} MB")

    results = []
    for tool in args.tools:
        # The fastest of --repeat runs: noise on a shared machine only ever slows a run down.
        r = min((run_tool(tool, capture) for _ in range(args.repeat)), key=lambda run: run["seconds"])
        r["packets_per_s"] = packets / r["seconds"]
        r["mb_per_s"] = size_mb / r["seconds"]
        results.append(r)
        print(f"{tool:13s} {r['seconds']:8.2f} s  {r['packets_per_s']:12,.0f} packets/s  {r['mb_per_s']:8.1f} MB/s"
              f"  peak RSS {r['peak_rss_mb']:7.1f} MB")
    for ours in (r for r in results if r["tool"] in OURS):
        for r in results:
            if r["tool"] not in OURS:
                print(f"{ours['tool']} / {r['tool']}: {ours['packets_per_s'] / r['packets_per_s']:.2f}x packets/s")
    if args.json:
        args.json.write_text(json.dumps({"capture": str(capture), "packets": packets, "mb": size_mb,
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
