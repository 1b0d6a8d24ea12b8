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


def _entropies(payloads: list) -> list:
    """Entropy (bits/byte) of each payload. One numpy pass computes the terms of every payload's sum, each summed
    on its own slice in the same order as alone: the values are those of one payload at a time, for a call
    per payload instead of eight."""
    lengths = np.array([len(data) for data in payloads])
    which = np.repeat(np.arange(len(payloads)), lengths)
    counts = np.bincount(which * 256 + np.frombuffer(b"".join(payloads), np.uint8),
                         minlength=256 * len(payloads)).reshape(-1, 256)
    seen = counts > 0
    distinct = seen.sum(1)
    p = counts[seen] / np.repeat(lengths, distinct)
    terms = p * np.log2(p)
    ends = np.cumsum(distinct)
    return [float(-terms[a:b].sum()) for a, b in zip((ends - distinct).tolist(), ends.tolist())]


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
    upgraded = startswith(client, clen, b"GET ") & startswith(server, slen, b"HTTP/1.1 101")
    tested = []                # (row, what follows the upgrade request or its first frame's payload, unframed)
    for r in np.flatnonzero(upgraded).tolist():
        data = client[r, :clen[r]].tobytes()
        end = data.find(b"\r\n\r\n")
        if end < 0 or b"websocket" not in data[:end].lower():
            continue
        rest = data[end + 4:]
        frame = _frame(rest)
        if frame is None:
            tested.append((r, rest, True))
        elif frame[0] == BINARY and not frame[1]:
            tested.append((r, frame[2], False))
    # Random-looking: at least MIN_BYTES, with an entropy within 80% of the most their length allows.
    tested = [t for t in tested if len(t[1]) >= MIN_BYTES]
    evidence = {}
    score = np.zeros(view.m)
    for (r, data, unframed), entropy in zip(tested, _entropies([t[1] for t in tested]) if tested else ()):
        if entropy < 0.8 * math.log2(min(len(data), 256)):
            continue
        score[r] = 0.8
        if unframed:
            evidence[r] = (f"websocket tunnel: upgrade answered by 101, then {len(data)} random bytes "
                           f"({entropy:.2f} bits/byte) instead of WebSocket frames (obfs)")
        else:
            evidence[r] = (f"websocket tunnel: upgrade answered by 101, first client frame binary "
                           f"{len(data)} B with {entropy:.2f} bits/byte once unmasked")
    return Detection(score, evidence)


def detect(view: SignatureView) -> Detection:
    return on_candidates(view, view.http_answered(), _detect, shared="http")


SIGNATURE = Signature(
    name="ws_tunnel", title="WebSocket tunnel", kind="proxy", detect=detect, ports=(),
    summary="WebSocket upgrade followed by random binary frames or unframed random bytes",
)
