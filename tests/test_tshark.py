"""Flow, packet and byte counts agree with tshark's conversation statistics on the captures in pcaps/."""

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from features import read_flows

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted(p for p in (ROOT / "pcaps").rglob("*") if p.is_file() and ".pcap" in p.name)
# Every capture of the dataset would take minutes of tshark: a fixed, spread-out sample keeps CI short.
SAMPLE = CAPTURES[:: max(1, len(CAPTURES) // 24)]

_ROW = re.compile(r"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+)\s+([\d,]+ \w+)\s+(\d+)\s+([\d,]+ \w+)\s+(\d+)\s+([\d,]+ \w+)")
_UNITS = {"bytes": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def _amount(text):
    number, unit = text.replace(",", "").split()
    return int(number) * _UNITS[unit], _UNITS[unit]


def tshark_conversations(path):
    # vpndetect keys flows on the outer headers; tshark would also count the TCP and UDP inside L2TP and PPTP.
    out = subprocess.run(["tshark", "-n", "-r", str(path), "--disable-protocol", "l2tp", "--disable-protocol", "gre",
                          "-q", "-z", "conv,tcp", "-z", "conv,udp"],
                         capture_output=True, text=True, check=True).stdout
    conversations, transport = {}, None
    for line in out.splitlines():
        if line.startswith(("TCP Conversations", "UDP Conversations")):
            transport = line[:3].lower()
        match = _ROW.match(line)
        if match:
            a, ap, b, bp = match.group(1), int(match.group(2)), match.group(3), int(match.group(4))
            # tshark's "<-" column counts frames towards A, "->" frames from A.
            to_a, from_a = int(match.group(5)), int(match.group(7))
            bytes_to_a, bytes_from_a = _amount(match.group(6)), _amount(match.group(8))
            conversations[(transport, frozenset([(a, ap), (b, bp)]))] = {
                (a, ap): (from_a, bytes_from_a), (b, bp): (to_a, bytes_to_a)}
    return conversations


def our_conversations(path):
    df = read_flows(path, on_error="raise")
    # (transport, endpoints) -> sender -> [packets, bytes]
    table = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in df.itertuples():
        if row.transport not in ("tcp", "udp"):
            continue
        key = (row.transport, frozenset([(row.src_ip, row.src_port), (row.dst_ip, row.dst_port)]))
        table[key][(row.src_ip, row.src_port)][0] += row.src2dst_packets
        table[key][(row.src_ip, row.src_port)][1] += row.src2dst_bytes
        table[key][(row.dst_ip, row.dst_port)][0] += row.dst2src_packets
        table[key][(row.dst_ip, row.dst_port)][1] += row.dst2src_bytes
    return table


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("path", SAMPLE, ids=[p.name for p in SAMPLE])
def test_counts_agree_with_tshark(path):
    theirs = tshark_conversations(path)
    ours = our_conversations(path)
    assert set(ours) == set(theirs)
    for key, endpoints in theirs.items():
        for endpoint, (frames, (amount, unit)) in endpoints.items():
            packets, byte_count = ours[key][endpoint]
            assert packets == frames, (key, endpoint)
            # tshark rounds byte counts past 10 kB to its unit.
            assert abs(byte_count - amount) < unit, (key, endpoint, byte_count, amount)


def test_there_are_captures_to_compare():
    assert len(SAMPLE) >= 1
