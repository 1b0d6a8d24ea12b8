"""Proxies behind a WebSocket upgrade (V2Ray/Xray ws transport carrying VMess, VLESS or Shadowsocks;
simple-obfs http mode): the client's HTTP upgrade is answered by 101 Switching Protocols, and what follows
is random bytes: a binary frame whose payload, once unmasked, has near-maximal entropy, or (obfs) no
WebSocket framing at all. Chat and API WebSockets send text frames, compressed frames or structured data."""

from __future__ import annotations

import math

import numpy as np

from features.signatures.base import Detection, Signature, SignatureView, on_candidates, startswith

MIN_BYTES = 48
BINARY = 0x2


def _entropy(data: bytes) -> float:
    counts = np.bincount(np.frombuffer(data, np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum())


def _randomness(data: bytes):
    """The entropy of data that looks random (at least MIN_BYTES, within 80% of the most its length allows),
    else None."""
    if len(data) < MIN_BYTES:
        return None
    entropy = _entropy(data)
    return entropy if entropy >= 0.8 * math.log2(min(len(data), 256)) else None


def _frame(data: bytes):
    """(opcode, RSV bits, unmasked payload) of a client WebSocket frame, or None if it is not one."""
    if len(data) < 6 or not data[1] & 0x80:                 # client frames are always masked
        return None
    length, pos = data[1] & 0x7F, 2
    if length == 126:
        length, pos = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        length, pos = int.from_bytes(data[2:10], "big"), 10
    mask, pos = data[pos:pos + 4], pos + 4
    opcode, fin = data[0] & 0x0F, data[0] & 0x80
    # A first frame carries data (text or binary); a control frame would be final and at most 125 bytes.
    plausible = opcode in (1, 2) or (opcode in (8, 9, 10) and fin and length <= 125)
    if not plausible or len(mask) < 4:
        return None
    masked = data[pos:pos + length]
    # XOR with the 4-byte mask repeated, as one integer operation over the whole payload.
    key = (mask * (len(masked) // 4 + 1))[:len(masked)]
    body = (int.from_bytes(masked, "little") ^ int.from_bytes(key, "little")).to_bytes(len(masked), "little")
    return opcode, data[0] & 0x70, body


def _detect(view: SignatureView) -> Detection:
    client, clen = view.prefix(0)
    server, slen = view.prefix(1)
    evidence = {}
    score = np.zeros(view.m)
    upgraded = startswith(client, clen, b"GET ") & startswith(server, slen, b"HTTP/1.1 101")
    for r in np.flatnonzero(upgraded):
        data = client[r, :clen[r]].tobytes()
        end = data.find(b"\r\n\r\n")
        if end < 0 or b"websocket" not in data[:end].lower():
            continue
        rest = data[end + 4:]
        frame = _frame(rest)
        if frame is None:
            entropy = _randomness(rest)
            if entropy is not None:
                score[r] = 0.8
                evidence[r] = (f"websocket tunnel: upgrade answered by 101, then {len(rest)} random bytes "
                               f"({entropy:.2f} bits/byte) instead of WebSocket frames (obfs)")
        elif frame[0] == BINARY and not frame[1]:
            entropy = _randomness(frame[2])
            if entropy is not None:
                score[r] = 0.8
                evidence[r] = (f"websocket tunnel: upgrade answered by 101, first client frame binary "
                               f"{len(frame[2])} B with {entropy:.2f} bits/byte once unmasked")
    return Detection(score, evidence)


def detect(view: SignatureView) -> Detection:
    return on_candidates(view, view.http_answered(), _detect, shared="http")


SIGNATURE = Signature(
    name="ws_tunnel", title="WebSocket tunnel", kind="proxy", detect=detect, ports=(),
    summary="WebSocket upgrade followed by random binary frames or unframed random bytes",
)
