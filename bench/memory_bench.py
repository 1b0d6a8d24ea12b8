"""Peak memory of `vpndetect flows` on captures of growing size: it must not grow with the file.

    python bench/memory_bench.py --gigabytes 1 2          # builds both captures from pcaps/lab
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flows_bench import run_tool  # noqa: E402
from bench.make_capture import build, load_ethernet_ipv4_packets  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--sources", nargs="*", default=["pcaps/lab"])
    parser.add_argument("--tools", nargs="*", default=["vpndetect"])
    parser.add_argument("--keep", action="store_true", help="keep the built captures in /tmp")
    args = parser.parse_args()

    frames, _, _ = load_ethernet_ipv4_packets(args.sources)
    mean_record = 16 + sum(len(f) for f in frames) / len(frames)
    for gigabytes in args.gigabytes:
        capture = Path(f"/tmp/vpndetect-memory-{gigabytes:g}GB.pcap")
        packets, size = build(args.sources, int(gigabytes * 1e9 / mean_record) + 1, capture)
        for tool in args.tools:
            r = run_tool(tool, capture)
            print(f"{size / 1e9:5.2f} GB, {packets:>10,} packets  {tool:10s} peak RSS {r['peak_rss_mb']:7.1f} MB"
                  f"  {packets / r['seconds']:12,.0f} packets/s")
        if not args.keep:
            capture.unlink()


if __name__ == "__main__":
    main()
