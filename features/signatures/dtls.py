"""DTLS (recognised, not a VPN by itself): a ClientHello record with a DTLS version answered by DTLS records.
AnyConnect's DTLS channel has its own signature."""

from __future__ import annotations

from features import native
from features.signatures.base import Detection, Signature, SignatureView


def detect(view: SignatureView) -> Detection:
    # DTLS ClientHello record answered by DTLS records: udp_handshakes.c, one pass over the flows' packets.
    packets, at = view.packets()
    return Detection(native.dtls_handshakes(packets, at, view.proto))


SIGNATURE = Signature(name="dtls", title="DTLS", kind="protocol", detect=detect, ports=(),
                      summary="DTLS ClientHello answered by DTLS records")
