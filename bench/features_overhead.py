"""What the features cost: flow assembly alone against flow assembly with every feature, same capture, same run.

Both modes run in this process, alternating, after a warm-up that compiles the kernels; the best of
`--repeat` runs of each is reported (these machines are noisy). The figure is the throughput lost to the
features: 1 - (features packets/s) / (flows packets/s); the target is at most 30 %.

    python bench/features_overhead.py --packets 1000000                  # builds the capture from pcaps/lab
    python bench/features_overhead.py --capture /tmp/big.pcap
    python bench/features_overhead.py --packets 1000000 SOURCES...       # build from these captures instead
    python bench/features_overhead.py --capture /tmp/big.pcap --threads 2   # also with the worker thread
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.make_capture import build  # noqa: E402
from features import FlowReader  # noqa: E402
from features.extract.api import feature_reader  # noqa: E402


def run(make_reader, path):
    """(seconds, packets, flows) of one full pass."""
    reader = make_reader(path)
    start = time.perf_counter()
    flows = sum(batch.num_rows for batch in reader)
    return time.perf_counter() - start, reader.packets_read, flows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=["pcaps/lab"])
    parser.add_argument("--capture", type=Path, help="use this capture instead of building one")
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1,
                        help="2: also time features computed in a worker thread beside flow assembly (needs 2 cores)")
    args = parser.parse_args(argv)
    path = args.capture
    if path is None:
        path = Path("/tmp/vpndetect-features-bench.pcap")
        n, size = build(args.sources, args.packets, path)
        print(f"built {path}: {n} packets, {size / 1e6:.1f} MB")
    modes = {"flows": lambda p: FlowReader(p, on_error="collect"),
             "flows+features": lambda p: feature_reader(p, on_error="collect", threads=1)}
    if args.threads == 2:
        modes["features 2 threads"] = lambda p: feature_reader(p, on_error="collect", threads=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for make in modes.values():                 # warm-up: compile and load everything once
            run(make, path)
        best = {name: None for name in modes}
        for _ in range(args.repeat):
            for name, make in modes.items():
                result = run(make, path)
                if best[name] is None or result[0] < best[name][0]:
                    best[name] = result
    print(f"{'mode':16} {'seconds':>8} {'packets':>10} {'flows':>8} {'packets/s':>12}")
    for name, (seconds, packets, flows) in best.items():
        print(f"{name:16} {seconds:8.2f} {packets:10d} {flows:8d} {packets / seconds:12,.0f}")
    base = best["flows"]
    for name, (seconds, *_) in best.items():
        if name != "flows":
            print(f"{name}: throughput lost to features {1 - base[0] / seconds:.1%} (target <= 30%); "
                  f"time ratio {seconds / base[0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
