"""Signatures on crafted handshakes: each fires on its own protocol and stays silent on every other."""

from __future__ import annotations

import struct

import pytest

from captures import pcap_bytes

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

from features import extract_features  # noqa: E402
from features.signatures import REGISTRY  # noqa: E402

CLIENT, SERVER = "10.1.0.1", "10.2.0.2"
START = 1_700_000_000.0


def udp_exchange(messages, cport=40001, sport=40002):
    """Frames of a UDP conversation: messages are (direction, payload), direction 0 from the client."""
    frames = []
    for i, (direction, payload) in enumerate(messages):
        src, dst, sp, dp = (CLIENT, SERVER, cport, sport) if direction == 0 else (SERVER, CLIENT, sport, cport)
        frames.append((START + i * 0.02, bytes(Ether() / IP(src=src, dst=dst) / UDP(sport=sp, dport=dp) / payload)))
    return frames


def tcp_exchange(messages, cport=40001, sport=40002):
    """Frames of a TCP connection with correct sequence numbers: handshake, messages, FIN both ways."""
    seq = [1000, 5000]
    frames = []
    t = START

    def add(direction, flags, payload=b""):
        nonlocal t
        src, dst, sp, dp = (CLIENT, SERVER, cport, sport) if direction == 0 else (SERVER, CLIENT, sport, cport)
        pkt = IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq[direction], ack=seq[1 - direction])
        frames.append((t, bytes(Ether() / pkt / payload)))
        seq[direction] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        t += 0.02

    add(0, "S")
    add(1, "SA")
    add(0, "A")
    for direction, payload in messages:
        add(direction, "PA", payload)
    add(0, "FA")
    add(1, "FA")
    add(0, "A")
    return frames


def ip_packets(proto, payloads):
    """Raw IP packets of another protocol (ESP, GRE, ...): payloads are (direction, bytes)."""
    frames = []
    for i, (direction, payload) in enumerate(payloads):
        src, dst = (CLIENT, SERVER) if direction == 0 else (SERVER, CLIENT)
        frames.append((START + i * 0.02, bytes(Ether() / IP(src=src, dst=dst, proto=proto) / payload)))
    return frames


def wireguard():
    sender, receiver = b"\x11\x22\x33\x44", b"\x55\x66\x77\x88"
    init = b"\x01\x00\x00\x00" + sender + bytes(range(140))
    response = b"\x02\x00\x00\x00" + receiver + sender + bytes(range(80))
    data = [(0, b"\x04\x00\x00\x00" + receiver + struct.pack("<Q", n) + bytes(48)) for n in range(3)]
    return udp_exchange([(0, init), (1, response)] + data, sport=51820)


def openvpn_udp():
    sid_c, sid_s = bytes(range(1, 9)), bytes(range(21, 29))
    client_reset = b"\x38" + sid_c + b"\x00" + b"\x00\x00\x00\x00"
    server_reset = b"\x40" + sid_s + b"\x01" + b"\x00\x00\x00\x00" + sid_c + b"\x00\x00\x00\x00"
    client_ack = b"\x28" + sid_c + b"\x01" + b"\x00\x00\x00\x00" + sid_s
    client_hello = b"\x20" + sid_c + b"\x00" + b"\x00\x00\x00\x01" + b"\x16\x03\x01" + bytes(100)
    return udp_exchange([(0, client_reset), (1, server_reset), (0, client_ack), (0, client_hello)], sport=1194)


def openvpn_tcp():
    sid_c, sid_s = bytes(range(1, 9)), bytes(range(21, 29))

    def framed(body):
        return struct.pack("!H", len(body)) + body
    client_reset = framed(b"\x38" + sid_c + b"\x00" + b"\x00\x00\x00\x00")
    server_reset = framed(b"\x40" + sid_s + b"\x01" + b"\x00\x00\x00\x00" + sid_c + b"\x00\x00\x00\x00")
    client_ack = framed(b"\x28" + sid_c + b"\x01" + b"\x00\x00\x00\x00" + sid_s)
    return tcp_exchange([(0, client_reset), (1, server_reset), (0, client_ack)], sport=1194)


def ikev2():
    spi_i, spi_r = bytes(range(1, 9)), bytes(range(9, 17))

    def message(spi_r_bytes, flags, body_len):
        length = 28 + body_len
        return spi_i + spi_r_bytes + bytes([33, 0x20, 34, flags]) + b"\x00\x00\x00\x00" + struct.pack("!I", length) \
            + bytes(body_len)
    return udp_exchange([(0, message(bytes(8), 0x08, 300)), (1, message(spi_r, 0x20, 280))], cport=500, sport=500)


def esp_in_udp():
    up = [(0, struct.pack("!II", 0xC0DE0001, n + 1) + bytes(64)) for n in range(3)]
    down = [(1, struct.pack("!II", 0xC0DE0002, n + 1) + bytes(64)) for n in range(3)]
    return udp_exchange([m for pair in zip(up, down) for m in pair], cport=4500, sport=4500)


def esp_protocol():
    return ip_packets(50, [(0, struct.pack("!II", 0xABCD0001, n + 1) + bytes(48)) for n in range(3)])


def l2tp():
    def control(message, ns):
        avp = struct.pack("!HHHH", 0x8008, 0, 0, message) + struct.pack("!HHH", 0x8008, 0, 2) + b"\x01\x00"
        body = struct.pack("!HHHH", 0, 0, ns, 0) + avp
        return struct.pack("!BBH", 0xC8, 0x02, len(body) + 4) + body
    return udp_exchange([(0, control(1, 0)), (1, control(2, 0))], cport=1701, sport=1701)


def pptp():
    def control(ctype, size):
        return struct.pack("!HHIHH", size, 1, 0x1A2B3C4D, ctype, 0) + bytes(size - 12)
    return tcp_exchange([(0, control(1, 156)), (1, control(2, 156))], sport=1723)


def socks5():
    return tcp_exchange([(0, b"\x05\x01\x00"), (1, b"\x05\x00"),
                         (0, b"\x05\x01\x00\x03\x0bexample.com\x00\x50"), (1, b"\x05\x00\x00\x01" + bytes(6)),
                         (0, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")], sport=1080)


def socks5_reverse():
    # The proxy connects out to its client and sends a preamble of its own; the client then greets over it.
    return tcp_exchange([(0, b"\x4e\x5a\x8d\x08\x87\x4e"), (1, b"\x05\x01\x00"),
                         (1, b"\x05\x01\x00\x01\x4a\x7d\x83\x67\x00\x50"), (0, b"\x05\x00"),
                         (0, b"\x05\x00\x00\x01" + bytes(6)), (1, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")],
                        sport=8855)


def socks4():
    return tcp_exchange([(0, b"\x04\x01\x00\x50\x0a\x00\x00\x01user\x00"), (1, b"\x00\x5a" + bytes(6))], sport=1080)


def http_connect():
    return tcp_exchange([(0, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
                         (1, b"HTTP/1.1 200 Connection established\r\n\r\n")], sport=3128)


def http_plain():
    return tcp_exchange([(0, b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                         (1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")], sport=80)


def http_absolute():
    return tcp_exchange([(0, b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                         (1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], sport=3128)


def random_bytes(n, seed):
    import random
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(n))


def fully_encrypted():
    return tcp_exchange([(0, random_bytes(300, 1)), (1, random_bytes(200, 2)), (0, random_bytes(500, 3))], sport=8388)


def facebook_zero():
    # QUIC's crypto handshake over TCP: preamble, version, then a CHLO whose nonce and keys look random.
    hello = b"1QTV0" + bytes([0xC6, 0, 0, 0]) + b"CHLO" + random_bytes(300, 4)
    return tcp_exchange([(0, hello), (1, b"1QTV00" + bytes(3) + b"SNOM" + random_bytes(150, 5)),
                         (0, random_bytes(500, 6))], sport=443)


def dns_query(name: bytes, qtype: int, response: bool, qid=0x1234):
    labels = b"".join(bytes([len(p)]) + p for p in name.split(b".")) + b"\x00"
    flags = 0x8180 if response else 0x0100
    header = struct.pack("!HHHHHH", qid, flags, 1, 1 if response else 0, 0, 0)
    return header + labels + struct.pack("!HH", qtype, 1) + (bytes(16) if response else b"")


def dns_tunnel():
    name = b"aGVsbG8gd29ybGQgdGhpcyBpcyBhIHR1bm5lbA0xyzQWERTYmnbv.t.example.com"
    return udp_exchange([(0, dns_query(name, 10, False)), (1, dns_query(name, 10, True))], sport=53)


def dns_normal():
    return udp_exchange([(0, dns_query(b"www.example.com", 1, False)), (1, dns_query(b"www.example.com", 1, True))],
                        sport=53)


def websocket(frame_opcode, payload):
    upgrade = (b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    mask = b"\x11\x22\x33\x44"
    frame = bytes([0x80 | frame_opcode, 0x80 | 126]) + struct.pack("!H", len(payload)) + mask \
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    accepted = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    return tcp_exchange([(0, upgrade), (1, accepted), (0, frame), (1, b"\x82\x10" + random_bytes(16, 9))], sport=80)


def ws_tunnel():
    return websocket(0x2, random_bytes(300, 7))


def ws_chat():
    return websocket(0x1, b'{"type": "message", "text": "hello there, how are you doing today?"}' * 4)


def tls_resumption(finished_bytes):
    from scapy.layers.tls.handshake import TLSClientHello
    from scapy.layers.tls.record import TLS
    hello = bytes(TLS(msg=[TLSClientHello(ciphers=[0xC02F])]))
    server_hello = b"\x02\x00\x00\x46\x03\x03" + bytes(32) + b"\x20" + bytes(32) + b"\xc0\x2f\x00"
    flight = (b"\x16\x03\x03" + struct.pack("!H", len(server_hello)) + server_hello + b"\x14\x03\x03\x00\x01\x01"
              + b"\x16\x03\x03" + struct.pack("!H", finished_bytes) + random_bytes(finished_bytes, 11))
    return tcp_exchange([(0, hello), (1, flight), (0, b"\x14\x03\x03\x00\x01\x01\x16\x03\x03\x00\x28" + bytes(40))],
                        sport=443)


def ssh_interactive():
    return tcp_exchange([(0, b"SSH-2.0-OpenSSH_9.6\r\n"), (1, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
                         (0, random_bytes(1000, 4)), (1, random_bytes(1000, 5))], sport=22)


CASES = {
    "wireguard": (wireguard, {"wireguard"}),
    "openvpn_udp": (openvpn_udp, {"openvpn"}),
    "openvpn_tcp": (openvpn_tcp, {"openvpn"}),
    "ikev2": (ikev2, {"ipsec"}),
    "esp_in_udp": (esp_in_udp, {"ipsec"}),
    "esp_protocol": (esp_protocol, {"ipsec"}),
    "l2tp": (l2tp, {"l2tp"}),
    "pptp": (pptp, {"pptp"}),
    "socks5": (socks5, {"socks"}),
    "socks5_reverse": (socks5_reverse, {"socks"}),
    "socks4": (socks4, {"socks"}),
    "http_connect": (http_connect, {"http_connect"}),
    "http_absolute": (http_absolute, {"http_proxy"}),
    "fully_encrypted": (fully_encrypted, {"fully_encrypted"}),
    "dns_tunnel": (dns_tunnel, {"dns_tunnel"}),
    "ws_tunnel": (ws_tunnel, {"ws_tunnel"}),
    "fake_tls": (lambda: tls_resumption(700), {"fake_tls"}),
    # Normal traffic: no VPN/proxy signature may fire.
    "dns_normal": (dns_normal, set()),
    "http_plain": (http_plain, set()),
    "ssh_interactive": (ssh_interactive, set()),
    "ws_chat": (ws_chat, set()),
    "tls_resumption": (lambda: tls_resumption(40), set()),
    "facebook_zero": (facebook_zero, set()),
}


def features_of(write, name, frames):
    return extract_features(write(f"{name}.pcap", pcap_bytes(frames)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_signature_fires_on_its_protocol_only(write, case):
    build, expected = CASES[case]
    frame = features_of(write, case, build())
    assert len(frame) == 1
    fired = {name for name in frame["signatures"][0].split(",") if name}
    assert fired == expected, frame["evidence"][0]
    for name in expected:
        assert frame[f"sig_{name}"][0] >= 0.5


def test_wireguard_evidence_names_the_linked_handshake(write):
    frame = features_of(write, "wg", wireguard())
    assert frame["evidence"][0] == "wireguard: handshake initiation 148 B / response 92 B, receiver index linked"
    assert frame["wg_handshake_linked"][0] == 1


def test_one_sided_handshake_does_not_fire(write):
    # A lone WireGuard initiation (no response) and a lone OpenVPN reset: minimum evidence is an exchange.
    lone_wg = [wireguard()[0]]
    lone_ovpn = [openvpn_udp()[0]]
    for name, frames in (("lone_wg", lone_wg), ("lone_ovpn", lone_ovpn)):
        frame = features_of(write, name, frames)
        assert frame["signatures"][0] == ""


def test_lone_ike_request_fires_for_less(write):
    frame = features_of(write, "lone_ike", [ikev2()[0]])
    assert frame["signatures"][0] == "ipsec"
    assert 0.5 <= frame["sig_ipsec"][0] < 0.9   # fires, but does not decide alone
    assert frame["evidence"][0].endswith("no response seen")


def test_openvpn_modes_in_evidence(write):
    frame = features_of(write, "ovpn", openvpn_udp())
    assert "no tls-auth" in frame["evidence"][0]
    assert frame["sig_openvpn"][0] == 1.0


def test_protocols_are_recognised_not_flagged(write):
    frame = features_of(write, "dns", dns_normal())
    assert frame["protocols"][0] == "dns"
    assert frame["signatures"][0] == ""
    frame = features_of(write, "ssh", ssh_interactive())
    assert frame["protocols"][0] == "ssh"


def quic():
    initial = b"\xc3" + struct.pack("!I", 1) + b"\x08" + bytes(range(8)) + b"\x00" + random_bytes(1186, 12)
    handshake = b"\xc1" + struct.pack("!I", 1) + b"\x00\x08" + bytes(range(8)) + random_bytes(1000, 13)
    return udp_exchange([(0, initial), (1, handshake), (0, b"\x41" + random_bytes(60, 14))], sport=443)


def dtls():
    hello = b"\x16\xfe\xfd" + bytes(8) + struct.pack("!H", 100) + b"\x01" + bytes(99)
    server = b"\x16\xfe\xfd" + bytes(8) + struct.pack("!H", 80) + b"\x02" + bytes(79)
    return udp_exchange([(0, hello), (1, server)], sport=5684)


def stun():
    # An ICE connectivity check: Binding request with USERNAME, answered by a success with XOR-MAPPED-ADDRESS.
    username = struct.pack("!HH", 0x0006, 9) + b"abcd:efgh" + bytes(3)
    request = struct.pack("!HHI", 0x0001, len(username), 0x2112A442) + bytes(range(12)) + username
    mapped = struct.pack("!HHBBH", 0x0020, 8, 0, 1, 0x1234) + bytes(4)
    success = struct.pack("!HHI", 0x0101, len(mapped), 0x2112A442) + bytes(range(12)) + mapped
    return udp_exchange([(0, request), (1, success)] * 3, sport=50000)


@pytest.mark.parametrize("build, protocol", [(quic, "quic"), (dtls, "dtls"), (dns_normal, "dns"), (http_plain, "http"),
                                             (ssh_interactive, "ssh"), (stun, "stun"), (facebook_zero, "fbzero")])
def test_protocols_recognised_for_what_they_are(write, build, protocol):
    frame = features_of(write, protocol, build())
    assert frame["protocols"][0] == protocol and frame["signatures"][0] == ""


def test_registry_is_consistent():
    names = [s.name for s in REGISTRY]
    assert len(names) == len(set(names))
    assert {"openvpn", "wireguard", "ipsec", "l2tp", "pptp", "sstp", "anyconnect", "softether", "tor",
            "fully_encrypted", "tls_in_tls", "socks", "http_connect", "http_proxy", "ssh_tunnel", "dns_tunnel",
            "quic", "dtls", "tls_tunnel", "ws_tunnel", "fake_tls"} <= set(names)
