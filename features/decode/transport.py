"""Transport headers: TCP, UDP, SCTP ports; TCP flags; ICMP type; ESP/AH/GRE keyed without ports."""

from __future__ import annotations

import numpy as np

from features.decode.fields import Header, read_u16, read_u8

TCP, UDP, SCTP, ICMP, ICMPV6, ESP, AH, GRE = 6, 17, 132, 1, 58, 50, 51, 47
PORTED = (TCP, UDP, SCTP)

TCP_HEADER = Header("tcp", [
    ("sport", "H"), ("dport", "H"), ("seq", "I"), ("ack", "I"), ("offset_reserved", "B"), ("flags", "B"),
    ("window", "H"), ("checksum", "H"), ("urgent", "H"),
])
UDP_HEADER = Header("udp", [("sport", "H"), ("dport", "H"), ("length", "H"), ("checksum", "H")])
ICMP_HEADER = Header("icmp", [("type", "B"), ("code", "B"), ("checksum", "H")])

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def decode(data, frame_end, out):
    """Fill ports, TCP flags and payload bounds of `out` (a Decoded) from its network-layer fields."""
    first = out.valid & (out.frag_offset == 0)
    l4 = out.l4_offset
    captured = frame_end - l4
    # Non-first fragments carry only payload; their ports come from the first fragment (flow table).
    out.payload_offset[:] = l4
    out.payload_length[:] = out.l4_length

    ported = first & np.isin(out.protocol, PORTED) & (captured >= 4)
    if ported.any():
        out.sport[ported] = read_u16(data, l4[ported])
        out.dport[ported] = read_u16(data, l4[ported] + 2)

    tcp = first & (out.protocol == TCP) & (captured >= 14)
    if tcp.any():
        header_len = (read_u8(data, l4[tcp] + 12) >> 4) * 4
        header_len = np.maximum(header_len, 20)
        out.tcp_flags[tcp] = read_u8(data, l4[tcp] + 13)
        out.payload_offset[tcp] = l4[tcp] + header_len
        out.payload_length[tcp] = np.maximum(out.l4_length[tcp] - header_len, 0)

    udp = first & (out.protocol == UDP)
    if udp.any():
        out.payload_offset[udp] = l4[udp] + 8
        out.payload_length[udp] = np.maximum(out.l4_length[udp] - 8, 0)

    icmp = first & np.isin(out.protocol, (ICMP, ICMPV6)) & (captured >= 2)
    if icmp.any():
        out.icmp_type[icmp] = read_u8(data, l4[icmp])

    out.payload_captured[:] = np.clip(frame_end - out.payload_offset, 0, out.payload_length)


TRANSPORT_NAMES = {TCP: "tcp", UDP: "udp", SCTP: "sctp", ICMP: "icmp", ICMPV6: "icmpv6", ESP: "esp", AH: "ah", GRE: "gre",
                   4: "ipip", 41: "ipv6", 115: "l2tp", 132: "sctp", 112: "vrrp", 89: "ospf", 2: "igmp", 103: "pim"}


def transport_name(protocol: int) -> str:
    return TRANSPORT_NAMES.get(int(protocol), f"ip{int(protocol)}")
