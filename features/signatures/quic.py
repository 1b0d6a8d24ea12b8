"""QUIC (recognised, not a VPN): a long-header Initial of at least 1200 bytes with a known version, answered
by a long-header packet (or version negotiation) or short-header packets."""

from __future__ import annotations

from features import native
from features.signatures.base import Detection, Signature, SignatureView


def detect(view: SignatureView) -> Detection:
    # Long-header Initial, known version, answer: udp_handshakes.c, one pass over the flows' packets.
    packets, at = view.packets()
    return Detection(native.quic_handshakes(packets, at, view.proto))


SIGNATURE = Signature(name="quic", title="QUIC", kind="protocol", detect=detect, ports=(("udp", 443),),
                      summary="long-header Initial >= 1200 B with a known version, answered")
