"""Build a large benchmark capture from real ones: replicas with rewritten addresses and shifted timestamps.

Every replica keeps the packets of the source captures byte for byte, except that IPv4 addresses get a
replica number written into their second and third octets (so that replicas are separate flows) and
timestamps are shifted. Each replica starts when the one before is half way through: many flows are open at
once, as on a real link, and as many in a long capture as in a short one (a steady state, so that memory
can be compared across sizes).
Checksums are left as they are: none of the tools compared verifies them.

    python bench/make_capture.py --packets 1000000 -o /tmp/bench.pcap [SOURCES...]
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.decode import decode  # noqa: E402
from features.decode.link import decode_link  # noqa: E402
from features.readers import expand_paths, iter_batches  # noqa: E402

ETHERNET = 1


def load_ethernet_ipv4_packets(paths):
    """Ethernet frames of the sources with the offsets of their IPv4 addresses (-1 where not IPv4)."""
    frames, times, address_at = [], [], []
    for path in expand_paths(paths):
        try:
            for batch in iter_batches(path):
                if not np.all(batch.linktype == ETHERNET):
                    break
                decoded = decode(batch)
                for i in range(len(batch)):
                    start = batch.offset[i]
                    frames.append(batch.data[start:start + batch.caplen[i]].tobytes())
                times.append(batch.ts_ns - batch.ts_ns[0])
                is_v4 = decoded.valid & (decoded.version == 4)
                address_at.append(np.where(is_v4, _ipv4_src_offset(batch, decoded), -1))
        except Exception as exc:  # a damaged source only shortens the pool
            print(f"skipping {path}: {exc}", file=sys.stderr)
    return frames, np.concatenate(times), np.concatenate(address_at)


def _ipv4_src_offset(batch, decoded):
    # The IPv4 source address sits 12 bytes into the network header.
    net, _, _ = decode_link(batch.data, batch.offset, batch.caplen, batch.linktype)
    return net - batch.offset + 12


def build(sources, packets: int, output: Path):
    frames, rel_ns, src_at = load_ethernet_ipv4_packets(sources)
    spacing_ns = max(int(rel_ns.max()) // 2, 1)
    if not frames:
        raise SystemExit("no Ethernet captures among the sources")
    per_replica = len(frames)
    replicas = -(-packets // per_replica)
    order_ts = np.concatenate([rel_ns + r * spacing_ns for r in range(replicas)])
    order = np.argsort(order_ts, kind="stable")[:packets]
    base_ts = 1_700_000_000 * 10**9
    with open(output, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, ETHERNET))
        for chunk in np.array_split(order, max(1, len(order) // 50_000)):
            parts = []
            for index in chunk:
                replica, i = divmod(int(index), per_replica)
                frame = bytearray(frames[i])
                at = src_at[i]
                if at >= 0:
                    tag = replica + 1
                    for address in (at, at + 4):
                        frame[address + 1] = (frame[address + 1] + (tag >> 8)) & 0xFF
                        frame[address + 2] = (frame[address + 2] + tag) & 0xFF
                ts = base_ts + int(order_ts[index])
                parts.append(struct.pack("<IIII", ts // 10**9, (ts % 10**9) // 1000, len(frame), len(frame)))
                parts.append(bytes(frame))
            out.write(b"".join(parts))
    return len(order), output.stat().st_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=["pcaps/lab"])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("-o", "--output", type=Path, default=Path("/tmp/vpndetect-bench.pcap"))
    args = parser.parse_args()
    n, size = build(args.sources, args.packets, args.output)
    print(f"{args.output}: {n} packets, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
