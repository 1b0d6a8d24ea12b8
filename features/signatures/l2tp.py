"""L2TP: a control message (T, L and S bits set, version 2 or 3) whose length field equals the payload and
whose first AVP is the message type: SCCRQ (1) from the initiator answered by SCCRP (2) in the responder's
first or second message. Over UDP, and for
L2TPv3 also as IP protocol 115 behind a zero session id."""

from __future__ import annotations

from features import native
from features.signatures.base import Detection, Signature, SignatureView, evidence_texts


def detect(view: SignatureView) -> Detection:
    # Control header with matching length, Message Type AVP SCCRQ answered by SCCRP in the responder's first or
    # second message: l2tp_pptp.c, one pass over the flows' packets.
    packets, at = view.packets()
    score, answered, version, reply_size = native.l2tp_handshakes(packets, at, view.proto)
    evidence = evidence_texts(answered == 1, lambda transport, v, size, reply: (
        f"l2tp: v{v} SCCRQ {size} B / SCCRP {reply} B{' over IP protocol 115' if transport != 17 else ''}"),
        view.proto, version, view.size(view.index(0)), reply_size)
    return Detection(score, evidence)


SIGNATURE = Signature(
    name="l2tp", title="L2TP", kind="vpn", detect=detect, ports=(("udp", 1701),),
    summary="control header with matching length, Message Type AVP SCCRQ answered by SCCRP",
)
