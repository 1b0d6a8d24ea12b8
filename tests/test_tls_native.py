"""The compiled ClientHello framing (native/tls.c) against parse_client_hello: the same hellos found and
refused, the same columns, on whole, cut and damaged hellos, and one fingerprint per key."""

from __future__ import annotations

import numpy as np
import pytest

from features import native, tls

pytest.importorskip("scapy")

from test_features import client_hello  # noqa: E402


def _expected(stream: bytes) -> dict:
    """The TLS columns of one client stream, computed by parse_client_hello alone."""
    ch = None
    if len(stream) >= 6 and stream[0] == 22 and stream[1] == 3 and stream[5] == 1:
        ch = tls.parse_client_hello(stream)
    if ch is None:
        return {"tls_client_hello": 0, "tls_sni": "", "tls_alpn": "", "ja3": "", "ja4": ""}
    version, ja3_hash, ja4_text, n_ciphers, n_extensions = tls.fingerprints(ch)
    return {"tls_client_hello": 1, "tls_version": version, "tls_cipher_count": n_ciphers,
            "tls_extension_count": n_extensions, "tls_client_hello_bytes": ch.length,
            "tls_sni_present": int(bool(ch.sni)), "tls_sni_is_ip": int(bool(ch.sni) and tls.is_ip_literal(ch.sni)),
            "tls_alpn_present": int(bool(ch.alpn)), "tls_sni": ch.sni, "tls_alpn": ",".join(ch.alpn),
            "ja3": ja3_hash, "ja4": ja4_text}


def _variants(base: bytes, count: int, seed: int = 7) -> list[bytes]:
    """Cuts, byte changes (many in the length fields near the front) and spliced extensions of a hello."""
    rng = np.random.default_rng(seed)
    out = [base]
    for _ in range(count):
        data = bytearray(base)
        kind = rng.integers(4)
        if kind == 0:
            data = data[:rng.integers(1, len(data))]
        elif kind == 1:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(0, min(len(data), 60))] = rng.integers(256)
        elif kind == 2:
            for _ in range(rng.integers(1, 6)):
                data[rng.integers(0, len(data))] = rng.integers(256)
        else:
            at = rng.integers(40, len(data))
            data = data[:at] + bytes(rng.integers(0, 256, rng.integers(1, 40)).astype(np.uint8)) + data[at:]
            data[3:5] = (len(data) - 5).to_bytes(2, "big")
        out.append(bytes(data))
    return out


def _columns(streams, width):
    data = np.zeros((len(streams), width), np.uint8)
    lengths = np.array([min(len(s), width) for s in streams], np.int64)
    for i, s in enumerate(streams):
        data[i, :lengths[i]] = np.frombuffer(s[:width], np.uint8)
    tls._FINGERPRINTS.clear()
    got = tls.columns(data, lengths, np.zeros((len(streams), 8), np.uint8), np.zeros(len(streams), np.int64))
    found = 0
    for i, s in enumerate(streams):
        expected = _expected(s[:width])
        found += expected["tls_client_hello"]
        for name, value in expected.items():
            assert got[name][i] == value, (i, name, s.hex())
    return found


def test_compiled_framing_matches_parse_client_hello():
    streams = _variants(client_hello(), 3000)
    assert 100 < _columns(streams, 2048) < len(streams)      # the variants hold both hellos and refusals


def test_hellos_past_the_compiled_key_go_through_python():
    # 1100 empty extensions (more than tls.c keeps types of), and a non-ASCII server name.
    base = client_hello()
    extensions = b"\x00\x00\x00\x06\x00\x04\x00\x00\x01\xff" + b"\x00\x17\x00\x00" * 1100
    handshake_len = int.from_bytes(base[6:9], "big")
    body = base[9:9 + handshake_len]
    at = 34 + 1 + body[34]
    at += 2 + int.from_bytes(body[at:at + 2], "big")
    at += 1 + body[at]
    body = body[:at] + len(extensions).to_bytes(2, "big") + extensions
    hello = b"\x01" + len(body).to_bytes(3, "big") + body
    stream = b"\x16\x03\x01" + len(hello).to_bytes(2, "big") + hello
    data = np.frombuffer(stream, np.uint8)[None, :]
    status = native.client_hellos(data, np.array([len(stream)]), np.array([0]))["status"]
    assert list(status) == [native.KEY_TOO_LONG]
    assert _columns([stream, base], 8192) == 2


def test_certificate_names_split_across_records():
    def common_name(value):
        return b"\x06\x03\x55\x04\x03\x0c" + bytes([len(value)]) + value
    certificate = b"\x30\x82\x01\x00" + common_name(b"Issuer CA") + b"\x30\x10" + common_name(b"example.com")
    messages = b"\x02\x00\x00\x02\x03\x03" + b"\x0b" + len(certificate).to_bytes(3, "big") + certificate
    server = [b"".join(b"\x16\x03\x03" + len(part).to_bytes(2, "big") + part for part in (messages[:at], messages[at:]))
              for at in (len(messages), 20, 30)]
    server.append(server[1][:len(server[1]) - 3])                  # the subject cut short
    client = np.frombuffer(client_hello(), np.uint8)
    got = tls.columns(np.tile(client, (len(server), 1)), np.full(len(server), len(client)),
                      np.array([np.frombuffer(s.ljust(256, b"\0"), np.uint8) for s in server]),
                      np.array([len(s) for s in server]))
    assert list(got["tls_cert_subject_cn"]) == ["example.com"] * 3 + [""]
    assert list(got["tls_cert_issuer_cn"]) == ["Issuer CA"] * 3 + [""]
    assert list(got["tls_cert_self_signed"]) == [0, 0, 0, -1]
