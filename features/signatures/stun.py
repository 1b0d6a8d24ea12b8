"""STUN (recognised, not a VPN by itself): RFC 5389 messages, as WebRTC's ICE checks and TURN allocations send
them. The first payload of the flow starts with two zero bits, its length field plus the 20-byte header is
the payload size, and the magic cookie 0x2112A442 follows; an answer of the same form from the other side
makes it certain. TURN relays carry media after such messages; nothing here is a tunnel signature."""

from __future__ import annotations

import numpy as np

from features.signatures.base import UDP, Detection, Signature, SignatureView, on_candidates, u16, u32, u8

MAGIC_COOKIE = 0x2112A442
HEADER = 20


def _message(view: SignatureView, idx):
    head = view.head(idx)
    length = u16(head, 2)
    return ((u8(head, 0) & 0xC0) == 0) & (u32(head, 4) == MAGIC_COOKIE) & (length % 4 == 0) \
        & (length + HEADER == view.size(idx)) & (view.held(idx) >= 8)


def _detect(view: SignatureView) -> Detection:
    i0, r0 = view.index(0), view.index(1)
    request = (view.proto == UDP) & (i0 == 0) & _message(view, i0)
    answer = (r0 > 0) & _message(view, r0)
    fires = request & answer
    return Detection(np.where(fires, 1.0, np.where(request, 0.7, 0.0)))


def detect(view: SignatureView) -> Detection:
    h0 = view.head(view.index(0))
    return on_candidates(view, (view.proto == UDP) & ((h0[:, 0] & 0xC0) == 0) & (u32(h0, 4) == MAGIC_COOKIE), _detect)


SIGNATURE = Signature(name="stun", title="STUN", kind="protocol", detect=detect, ports=(("udp", 3478),),
                      summary="STUN messages with the magic cookie and a consistent length, answered")
