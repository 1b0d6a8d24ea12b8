"""Network conditions without netem: a userspace bridge in the router namespace.

The host kernel has no sch_netem, so the router namespace bridges the two veth ends itself: every frame read
from one end (AF_PACKET) is written to the other after a one-way delay with jitter, or dropped with the
profile's loss probability. Frames of one direction keep their order (jitter never reorders a single path).
Lab traffic is small (well under 10k frames per second), which a Python loop handles.
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import socket
import time
from dataclasses import dataclass

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


@dataclass(frozen=True)
class Condition:
    name: str
    one_way_ms: float
    jitter_ms: float
    loss: float  # per frame, in each direction

    @property
    def needs_router(self) -> bool:
        return self.one_way_ms > 0 or self.loss > 0

    def describe(self) -> str:
        if not self.needs_router:
            return "veth, no added delay"
        return f"RTT {2 * self.one_way_ms:.0f} ms, jitter ±{self.jitter_ms:.0f} ms each way, loss {self.loss:.0%} each way"


CONDITIONS = {
    c.name: c
    for c in (
        Condition("lan", 0, 0, 0),
        Condition("wan30", 15, 2, 0),
        Condition("wan150loss1", 75, 8, 0.01),
    )
}


def bridge(if_a: str, if_b: str, cond: Condition, seed: int) -> None:
    rng = random.Random(seed)
    socks = {}
    for name in (if_a, if_b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        socks[name] = s
    peer = {if_a: socks[if_b], if_b: socks[if_a]}
    by_fd = {s.fileno(): name for name, s in socks.items()}
    queue: list[tuple[float, int, socket.socket, bytes]] = []
    last_release = {if_a: 0.0, if_b: 0.0}
    seq = 0
    print(f"bridging {if_a} <-> {if_b}: {cond.describe()}", flush=True)
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError:
                pass
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        ready, _, _ = select.select(list(socks.values()), [], [], timeout)
        for s in ready:
            name = by_fd[s.fileno()]
            while True:
                try:
                    frame, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:  # our own sends, seen again on the way out
                    continue
                if cond.loss and rng.random() < cond.loss:
                    continue
                delay = max(0.0, cond.one_way_ms + rng.uniform(-cond.jitter_ms, cond.jitter_ms)) / 1000.0
                release = max(time.monotonic() + delay, last_release[name])
                last_release[name] = release
                seq += 1
                heapq.heappush(queue, (release, seq, peer[name], frame))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("if_a")
    ap.add_argument("if_b")
    ap.add_argument("condition", choices=sorted(CONDITIONS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    bridge(args.if_a, args.if_b, CONDITIONS[args.condition], args.seed)


if __name__ == "__main__":
    main()
