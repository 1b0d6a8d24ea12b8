"""Flow table semantics: direction, timeouts, TCP endings, eviction, and the partitioning hash."""

import numpy as np
import pytest
from captures import MAC_A, MAC_B, pcap_bytes, tcp_session
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from features import read_flows
from features.decode import decode
from features.flowtable import partition_hash
from features.readers import iter_batches


def _flows(write, frames, **options):
    return read_flows(write("f.pcap", pcap_bytes(frames)), on_error="raise", **options).sort_values("first_seen")


def _udp(ts, src, sport, dst, dport, size=10):
    return ts, bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / (b"u" * size))


def test_direction_from_syn_even_when_server_speaks_first_in_file(write):
    session = tcp_session()
    # The SYN-ACK is written first (the SYN was lost): its receiver is the initiator.
    df = _flows(write, session[1:])
    flow = df.iloc[0]
    assert (flow.src_ip, flow.src_port, flow.dst_port) == ("10.0.0.1", 40000, 443)


def test_direction_from_first_packet_without_syn(write):
    df = _flows(write, [_udp(1.0, "10.0.0.9", 53, "10.0.0.1", 3333), _udp(1.1, "10.0.0.1", 3333, "10.0.0.9", 53)])
    assert (df.iloc[0].src_ip, df.iloc[0].src_port) == ("10.0.0.9", 53)


def test_fin_from_both_sides_ends_flow_and_trailing_ack_stays(write):
    df = _flows(write, tcp_session(close="fin"))
    assert len(df) == 1 and df.iloc[0].end_reason == "fin" and df.iloc[0].packets == len(tcp_session(close="fin"))


def test_first_fin_does_not_end_flow(write):
    session = tcp_session(close=None)
    fin = tcp_session(close="fin")[len(session)]          # client FIN only
    later = tcp_session(payloads=((1, 50),), start=1_700_000_100.0)[3]  # server data after the FIN
    df = _flows(write, session + [fin, later])
    assert len(df) == 1 and df.iloc[0].end_reason == "end_of_capture"


def test_rst_ends_flow_and_new_syn_starts_another(write):
    first = tcp_session(close="rst")
    second = tcp_session(start=1_700_000_001.0)
    df = _flows(write, first + second)
    assert list(df.end_reason) == ["rst", "fin"]
    assert list(df.packets) == [len(first), len(second)]


def test_idle_timeout(write):
    frames = [_udp(0.0, "10.0.0.1", 1, "10.0.0.2", 2), _udp(10.0, "10.0.0.2", 2, "10.0.0.1", 1),
              _udp(200.0, "10.0.0.1", 1, "10.0.0.2", 2)]
    df = _flows(write, frames, idle_timeout=120)
    assert list(df.end_reason) == ["idle_timeout", "end_of_capture"] and list(df.packets) == [2, 1]


def test_idle_flows_expire_as_time_passes_in_other_flows(write):
    frames = [_udp(0.0, "10.0.0.1", 1, "10.0.0.2", 2)] + [_udp(t, "10.0.0.3", 3, "10.0.0.4", 4) for t in (50, 100, 150)]
    reader_batches = []
    from features import FlowReader
    for batch in FlowReader(write("i.pcap", pcap_bytes(frames)), idle_timeout=60, on_error="raise"):
        reader_batches.append(batch.to_pandas())
    first = reader_batches[0]
    assert list(first.end_reason) == ["idle_timeout"] and first.iloc[0].src_port == 1


def test_active_timeout_cuts_into_continuations_keeping_direction(write):
    frames = [_udp(t, "10.0.0.1", 1000, "10.0.0.2", 53) if i % 2 == 0 else _udp(t, "10.0.0.2", 53, "10.0.0.1", 1000)
              for i, t in enumerate(np.arange(0, 250, 10.0))]
    df = _flows(write, frames, idle_timeout=60, active_timeout=100)
    assert list(df.end_reason) == ["active_timeout", "active_timeout", "end_of_capture"]
    assert list(df.continuation) == [False, True, True]
    assert set(df.src_port) == {1000}
    assert df.packets.sum() == len(frames)


def test_max_flows_evicts_least_recently_active(write):
    frames = [_udp(float(i), "10.0.0.1", 1000 + i, "10.0.0.2", 53) for i in range(5)]
    df = _flows(write, frames, max_flows=2)
    assert list(df.end_reason) == ["evicted"] * 3 + ["end_of_capture"] * 2
    assert list(df.src_port[:3]) == [1000, 1001, 1002]


def test_flood_of_flows_stays_within_max_flows(write):
    frames = [_udp(i * 0.001, "10.0.0.1", 1 + i % 60000, "10.0.1.%d" % (i // 60000 + 1), 53) for i in range(3000)]
    from features import FlowReader
    reader = FlowReader(write("flood.pcap", pcap_bytes(frames)), max_flows=100, on_error="raise")
    df = reader.to_pandas()
    assert len(df) == 3000 and (df.end_reason == "evicted").sum() == 2900


def test_partition_hash_is_symmetric(write):
    frames = tcp_session()
    batch = next(iter_batches(write("p.pcap", pcap_bytes(frames))))
    h = partition_hash(decode(batch))
    assert len(set(h.tolist())) == 1


@pytest.mark.parametrize("parts", [2, 3])
def test_partitioned_runs_give_the_same_flows(write, parts):
    frames = [_udp(i * 0.01, "10.0.%d.1" % (i % 7), 1000 + i % 13, "10.1.0.%d" % (i % 5), 53) for i in range(400)]
    whole = read_flows(write("w.pcap", pcap_bytes(frames)), on_error="raise")
    batch = next(iter_batches(write("w2.pcap", pcap_bytes(frames))))
    shard = partition_hash(decode(batch)) % np.uint64(parts)
    pieces = []
    for p in range(parts):
        chosen = [f for f, s in zip(frames, shard) if s == p]
        pieces.append(read_flows(write(f"s{p}.pcap", pcap_bytes(chosen)), on_error="raise"))
    cols = ["src_ip", "src_port", "dst_ip", "dst_port", "packets", "bytes", "first_seen"]
    import pandas as pd
    merged = pd.concat(pieces)[cols].sort_values(cols).reset_index(drop=True)
    assert merged.equals(whole[cols].sort_values(cols).reset_index(drop=True))


def test_max_packets_counts_only_the_first_packets_but_keeps_the_flow_open(write):
    session = tcp_session(payloads=((0, 100), (1, 200), (0, 50), (1, 60)))
    df = _flows(write, session, max_packets=4)
    assert len(df) == 1
    flow = df.iloc[0]
    assert flow.packets == 4 and flow.end_reason == "fin"
    assert flow.bytes == sum(len(f) for _, f in session[:4])
    assert flow.last_seen == pytest.approx(session[3][0], abs=1e-6)
