"""STUN (recognised, not a VPN by itself): RFC 5389 messages, as WebRTC's ICE checks and TURN allocations send
them. The first payload of the flow starts with two zero bits, its length field plus the 20-byte header is
the payload size, and the magic cookie 0x2112A442 follows; an answer of the same form from the other side
makes it certain. TURN relays carry media after such messages; nothing here is a tunnel signature."""

from __future__ import annotations

from features import native
from features.signatures.base import Detection, Signature, SignatureView


def detect(view: SignatureView) -> Detection:
    # Magic cookie, consistent length, both ways: udp_handshakes.c, one pass over the flows' packets.
    packets, at = view.packets()
    return Detection(native.stun_handshakes(packets, at, view.proto))


SIGNATURE = Signature(name="stun", title="STUN", kind="protocol", detect=detect, ports=(("udp", 3478),),
                      summary="STUN messages with the magic cookie and a consistent length, answered")
