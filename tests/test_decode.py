"""Decoding, with packets crafted by scapy: every link type, VLANs, IPv6 extension headers, fragments."""

import struct

import pytest
from captures import MAC_A, MAC_B, pcap_bytes, pcapng_section
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.ipsec import AH, ESP
from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from features import read_flows

T0 = 1_700_000_000.0


def flows_of(write, frames, linktype=1, **kw):
    data = pcap_bytes([(T0 + i * 0.001, bytes(f)) for i, f in enumerate(frames)], linktype=linktype, **kw)
    return read_flows(write("x.pcap", data), on_error="raise")


def udp_exchange(ip_layer=IP, src="192.0.2.1", dst="192.0.2.2"):
    return [ip_layer(src=src, dst=dst) / UDP(sport=5000, dport=53) / Raw(b"q" * 20),
            ip_layer(src=dst, dst=src) / UDP(sport=53, dport=5000) / Raw(b"r" * 40)]


def _check_udp(df, src="192.0.2.1", dst="192.0.2.2"):
    assert len(df) == 1
    flow = df.iloc[0]
    assert (flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port, flow.transport) == (src, 5000, dst, 53, "udp")
    assert (flow.src2dst_packets, flow.dst2src_packets) == (1, 1)


SLL2_HEADER = struct.pack(">HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\x02" * 6 + b"\0\0")


@pytest.mark.parametrize("name,linktype,wrap", [
    ("ethernet", 1, lambda p: Ether(src=MAC_A, dst=MAC_B) / p),
    ("vlan", 1, lambda p: Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=42) / p),
    ("qinq", 1, lambda p: Ether(src=MAC_A, dst=MAC_B) / Dot1AD(vlan=42) / Dot1Q(vlan=7) / p),
    ("sll", 113, lambda p: CookedLinux(proto=0x0800) / p),
    ("sll2", 276, lambda p: SLL2_HEADER + bytes(p)),
    ("raw", 101, lambda p: p),
    ("ipv4", 228, lambda p: p),
    ("null_le", 0, lambda p: struct.pack("<I", 2) + bytes(p)),
    ("null_be", 0, lambda p: struct.pack(">I", 2) + bytes(p)),
    ("loop", 108, lambda p: struct.pack(">I", 2) + bytes(p)),
    ("ppp", 9, lambda p: b"\xff\x03\x00\x21" + bytes(p)),
])
def test_link_types(write, name, linktype, wrap):
    df = flows_of(write, [bytes(wrap(p)) for p in udp_exchange()], linktype=linktype)
    _check_udp(df)
    assert df.iloc[0].vlan == (42 if name in ("vlan", "qinq") else 0)


def test_vlans_separate_flows(write):
    frames = [Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=v) / p for v in (10, 20) for p in udp_exchange()]
    df = flows_of(write, frames)
    assert sorted(df.vlan) == [10, 20] and list(df.packets) == [2, 2]


def test_ipv6_and_raw_link_type_229(write):
    df = flows_of(write, udp_exchange(IPv6, "2001:db8::1", "2001:db8::2"), linktype=229)
    _check_udp(df, "2001:db8::1", "2001:db8::2")


def test_ipv6_extension_headers(write):
    frames = [Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() /
              IPv6ExtHdrRouting(addresses=["2001:db8::9"]) / IPv6ExtHdrDestOpt() / UDP(sport=5000, dport=53) / Raw(b"q" * 20),
              Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8::2", dst="2001:db8::1") / IPv6ExtHdrDestOpt() / UDP(sport=53, dport=5000)]
    _check_udp(flows_of(write, frames), "2001:db8::1", "2001:db8::2")


def test_ipv4_fragments_join_their_flow(write):
    big = IP(src="192.0.2.1", dst="192.0.2.2", id=777) / UDP(sport=5000, dport=53) / Raw(b"z" * 3000)
    frames = [Ether(src=MAC_A, dst=MAC_B) / f for f in fragment(big, fragsize=1000)] + [Ether(src=MAC_A, dst=MAC_B) / udp_exchange()[1]]
    df = flows_of(write, frames)
    _check_udp(df.assign(src2dst_packets=1))
    assert df.iloc[0].src2dst_packets == 4


def test_ipv6_fragments_join_their_flow(write):
    payload = UDP(sport=5000, dport=53) / Raw(b"z" * 2000)
    body = bytes(payload)
    # Fragment by hand: scapy's fragment6 needs a full IPv6 packet and offsets in 8-byte units.
    parts = [body[:1200], body[1200:]]
    frames = []
    for i, part in enumerate(parts):
        frames.append(Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8::1", dst="2001:db8::2") /
                      IPv6ExtHdrFragment(nh=17, id=99, offset=(0 if i == 0 else 150), m=int(i == 0)) / Raw(part))
    frames.append(Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=53, dport=5000))
    df = flows_of(write, frames)
    assert len(df) == 1 and df.iloc[0].src2dst_packets == 2 and df.iloc[0].src_port == 5000


@pytest.mark.parametrize("layer,transport", [(lambda: ESP(spi=1, seq=1) / Raw(b"e" * 40), "esp"),
                                              (lambda: AH(spi=1, seq=1, nh=59) / Raw(b"e" * 40), "ah"),
                                              (lambda: GRE() / Raw(b"g" * 40), "gre")])
def test_portless_protocols_keyed_by_address_pair(write, layer, transport):
    frames = [Ether(src=MAC_A, dst=MAC_B) / IP(src="192.0.2.1", dst="192.0.2.2") / layer(),
              Ether(src=MAC_A, dst=MAC_B) / IP(src="192.0.2.2", dst="192.0.2.1") / layer(),
              Ether(src=MAC_A, dst=MAC_B) / IP(src="192.0.2.1", dst="192.0.2.2") / layer()]
    df = flows_of(write, frames)
    assert len(df) == 1 and df.iloc[0].transport == transport and df.iloc[0].packets == 3
    assert df.iloc[0].src_port == 0 and df.iloc[0].dst_port == 0


def test_icmp(write):
    df = flows_of(write, [Ether(src=MAC_A, dst=MAC_B) / IP(src="192.0.2.1", dst="192.0.2.2") / ICMP(),
                          Ether(src=MAC_A, dst=MAC_B) / IP(src="192.0.2.2", dst="192.0.2.1") / ICMP(type=0)])
    assert df.iloc[0].transport == "icmp" and df.iloc[0].packets == 2


def test_snaplen_cut_packets_count_wire_bytes(write):
    frames = [Ether(src=MAC_A, dst=MAC_B) / p / Raw(b"x" * 1000) for p in (IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1, dport=2, flags="S"),
                                                       IP(src="192.0.2.2", dst="192.0.2.1") / TCP(sport=2, dport=1, flags="SA"))]
    full = [bytes(f) for f in frames]
    data = pcap_bytes([(T0 + i, f[:64], len(f)) for i, f in enumerate(full)], snaplen=64)
    df = read_flows(write("cut.pcap", data), on_error="raise")
    assert len(df) == 1 and df.iloc[0].bytes == sum(len(f) for f in full)
    assert df.iloc[0].src_port == 1


def test_frames_cut_inside_the_ip_header_are_skipped(write):
    frames = [bytes(Ether(src=MAC_A, dst=MAC_B) / p) for p in udp_exchange()]
    data = pcap_bytes([(T0, frames[0][:20], len(frames[0])), (T0 + 1, frames[1])])
    df = read_flows(write("cut.pcap", data), on_error="raise")
    assert df.packets.sum() == 1


def test_pcapng_mixed_link_types(write):
    eth = bytes(Ether(src=MAC_A, dst=MAC_B) / udp_exchange()[0])
    raw = bytes(udp_exchange()[1])
    df = read_flows(write("m.pcapng", pcapng_section([(1, None), (101, None)], [(0, 1.0, eth), (1, 1.1, raw)])),
                    on_error="raise")
    _check_udp(df)
