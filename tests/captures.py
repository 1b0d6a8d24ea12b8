"""Writers of small captures for tests: pcap and pcapng with every variation the readers must handle."""

from __future__ import annotations

import struct

# Explicit addresses: an Ether() without them makes scapy resolve (ARP) the destination.
MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def pcap_bytes(frames, linktype=1, big_endian=False, nanosecond=False, snaplen=262144):
    """frames: iterable of (ts_seconds, bytes) or (ts_seconds, bytes, wirelen)."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for frame in frames:
        ts, data = frame[0], frame[1]
        wirelen = frame[2] if len(frame) > 2 else len(data)
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanosecond else 1e6))
        out.append(struct.pack(e + "IIII", sec, frac, len(data), wirelen) + data)
    return b"".join(out)


def _block(block_type, body, e="<"):
    body = body + b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(e + "II", block_type, length) + body + struct.pack(e + "I", length)


def pcapng_section(interfaces, packets, big_endian=False, extra_blocks=()):
    """interfaces: list of (linktype, tsresol or None); packets: list of (interface, ts_seconds, bytes).

    extra_blocks (block_type, body) are written after the interfaces, to check unknown blocks are skipped.
    """
    e = ">" if big_endian else "<"
    out = [_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)]
    for linktype, tsresol in interfaces:
        options = b""
        if tsresol is not None:
            options = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
        out.append(_block(1, struct.pack(e + "HHI", linktype, 0, 0) + options, e))
    for block_type, body in extra_blocks:
        out.append(_block(block_type, body, e))
    for iface, ts, data in packets:
        resol = interfaces[iface][1]
        units_per_s = 10 ** 6 if resol is None else (2 ** (resol & 0x7F) if resol & 0x80 else 10 ** resol)
        units = round(ts * units_per_s)
        body = struct.pack(e + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), len(data)) + data
        out.append(_block(6, body, e))
    return b"".join(out)


def tcp_session(client="10.0.0.1", server="10.0.0.2", cport=40000, sport=443, start=1_700_000_000.0,
                payloads=((0, 100), (1, 200)), close="fin", ether=True):
    """Frames of a TCP session: handshake, payloads (direction 0 = client), and a close ("fin", "rst", None)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    def frame(direction, flags, size=0):
        src, dst, sp, dp = (client, server, cport, sport) if direction == 0 else (server, client, sport, cport)
        pkt = IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags) / (b"x" * size)
        return bytes(Ether(src=MAC_A, dst=MAC_B) / pkt) if ether else bytes(pkt)

    frames = [frame(0, "S"), frame(1, "SA"), frame(0, "A")]
    frames += [frame(d, "PA", size) for d, size in payloads]
    if close == "fin":
        frames += [frame(0, "FA"), frame(1, "FA"), frame(0, "A")]
    elif close == "rst":
        frames += [frame(1, "R")]
    return [(start + i * 0.01, f) for i, f in enumerate(frames)]
