"""Bidirectional flows of a capture, and their match against the labels rows (the lab's own ground-truth check)."""

from __future__ import annotations

import gzip
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dpkt

TRANSPORTS = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah", 132: "sctp"}


@dataclass
class Flow:
    transport: str
    a_ip: str
    a_port: int
    b_ip: str
    b_port: int
    packets: int = 0
    bytes: int = 0

    def describe(self) -> str:
        return f"{self.transport} {self.a_ip}:{self.a_port} <-> {self.b_ip}:{self.b_port} ({self.packets} pkts)"


def _open(path: Path):
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_flows(path: Path) -> tuple[list[Flow], int]:
    """Flows keyed by the sorted endpoint pair, plus the count of non-IP frames (ARP) that belong to no flow."""
    flows: dict[tuple, Flow] = {}
    non_ip = 0
    with _open(path) as f:
        for _ts, frame in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(frame)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                non_ip += 1
                continue
            transport = TRANSPORTS.get(ip.p, f"ip{ip.p}")
            sport = dport = 0
            # Only first fragments carry the ports; later ones count toward the flow of the same IP pair.
            if transport in ("tcp", "udp") and ip.offset == 0 and hasattr(ip.data, "sport"):
                sport, dport = ip.data.sport, ip.data.dport
            a = (socket.inet_ntoa(ip.src), sport)
            b = (socket.inet_ntoa(ip.dst), dport)
            lo, hi = sorted((a, b))
            key = (transport, lo, hi)
            flow = flows.get(key)
            if flow is None:
                flow = flows[key] = Flow(transport, lo[0], lo[1], hi[0], hi[1])
            flow.packets += 1
            flow.bytes += len(frame)
    return list(flows.values()), non_ip


def row_matches(row: dict, flow: Flow) -> bool:
    if row["transport"] != flow.transport:
        return False
    port = str(row["server_port"])
    for ip, p in ((flow.a_ip, flow.a_port), (flow.b_ip, flow.b_port)):
        if ip == row["server_ip"] and (port == "*" or port == str(p)):
            return True
    return False


def match_flows(rows: list[dict], flows: list[Flow]) -> tuple[list[tuple[Flow, dict]], list[Flow], list[Flow]]:
    """Pair each flow with its one row. An exact port beats a `*` row (a DTLS or ESP wildcard must not swallow a
    DNS flow to the same host). Returns (matched, unmatched, ambiguous)."""
    matched, unmatched, ambiguous = [], [], []
    for flow in flows:
        hits = [r for r in rows if row_matches(r, flow)]
        exact = [r for r in hits if str(r["server_port"]) != "*"]
        best = exact or hits
        if len(best) == 1:
            matched.append((flow, best[0]))
        elif not best:
            unmatched.append(flow)
        else:
            ambiguous.append(flow)
    return matched, unmatched, ambiguous


def count_packets(path: Path) -> int:
    with _open(path) as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def flows_per_row(rows: list[dict], flows: list[Flow]) -> Counter:
    matched, _, _ = match_flows(rows, flows)
    return Counter((r["server_ip"], str(r["server_port"]), r["transport"]) for _, r in matched)
