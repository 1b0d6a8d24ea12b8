"""Proxies behind a WebSocket upgrade (V2Ray/Xray ws transport carrying VMess, VLESS or Shadowsocks;
simple-obfs http mode): the client's HTTP upgrade is answered by 101 Switching Protocols, and what follows
is random bytes: a binary frame whose payload, once unmasked, has near-maximal entropy, or (obfs) no
WebSocket framing at all. Chat and API WebSockets send text frames, compressed frames or structured data."""

from __future__ import annotations

import math

import numpy as np

from features import native
from features.signatures.base import Detection, Signature, SignatureView, evidence_at, on_candidates, startswith

MIN_BYTES = 48
# The least entropy that looks random for a payload of each size (up to 256: more bytes allow no more), 80% of the
# most that many bytes can have.
RANDOM_ENTROPY = np.array([0.0] + [0.8 * math.log2(n) for n in range(1, 257)])


def _entropies(counts: np.ndarray, lengths: np.ndarray) -> list:
    """Entropy (bits/byte) of each payload, from its byte counts. One numpy pass computes the terms of every
    payload's sum (the shares of its bytes, native.byte_shares), and each payload's terms are summed as numpy sums
    them alone (native.segment_sums): the values are those of one payload at a time, for a few calls in all
    instead of eight a payload."""
    p, distinct = native.byte_shares(counts, lengths)
    return -native.segment_sums(p * np.log2(p), distinct)


def _detect(view: SignatureView) -> Detection:
    upgraded = np.flatnonzero(startswith(*view.prefix_start(0), b"GET ")
                              & startswith(*view.prefix_start(1), b"HTTP/1.1 101"))
    # What follows the upgrade request (kind 1) or its first frame's payload, binary and unmasked (kind 2), read
    # in the whole client prefixes in place.
    (client, clen), at = view.prefix_in_place(0)
    kind, size, counts = native.websocket_payloads(client, clen, at[upgraded])
    # Random-looking: at least MIN_BYTES, with an entropy within 80% of the most their length allows.
    tested = (kind > 0) & (size >= MIN_BYTES)
    rows, n, entropy = upgraded[tested], size[tested], _entropies(counts[tested], size[tested])
    random = ~(entropy < RANDOM_ENTROPY[np.minimum(n, 256)])
    score = np.zeros(view.m)
    score[rows[random]] = 0.8
    return Detection(score, evidence_at(rows[random], _evidence, n[random], kind[tested][random] == 1, entropy[random]))


def _evidence(n, unframed, entropy) -> str:
    if unframed:
        return (f"websocket tunnel: upgrade answered by 101, then {n} random bytes "
                f"({entropy:.2f} bits/byte) instead of WebSocket frames (obfs)")
    return (f"websocket tunnel: upgrade answered by 101, first client frame binary "
            f"{n} B with {entropy:.2f} bits/byte once unmasked")


def detect(view: SignatureView) -> Detection:
    return on_candidates(view, view.http_answered(), _detect, shared="http")


SIGNATURE = Signature(
    name="ws_tunnel", title="WebSocket tunnel", kind="proxy", detect=detect, ports=(),
    summary="WebSocket upgrade followed by random binary frames or unframed random bytes",
)
