"""L2TP: a control message (T, L and S bits set, version 2 or 3) whose length field equals the payload and
whose first AVP is the message type: SCCRQ (1) from the initiator answered by SCCRP (2) in the responder's
first or second message. Over UDP, and for
L2TPv3 also as IP protocol 115 behind a zero session id."""

from __future__ import annotations

import numpy as np

from features.signatures.base import UDP, Detection, Signature, SignatureView, on_candidates, one_of, u16, u32, u8

L2TP_IP = 115
SCCRQ, SCCRP = 1, 2


def _control(head, size, held, offset, message):
    flags, version = u8(head, offset), u8(head, offset + 1) & 0x0F
    ok = (held >= offset + 20) & ((flags & 0xC8) == 0xC8) & one_of(version, (2, 3))
    ok &= u16(head, offset + 2) == size - offset
    # First AVP: mandatory, vendor 0, attribute 0 (Message Type), 8 bytes long.
    avp = offset + 12
    ok &= ((u16(head, avp) & 0x03FF) == 8) & (u16(head, avp + 2) == 0) & (u16(head, avp + 4) == 0)
    ok &= u16(head, avp + 6) == message
    return ok, version


def _detect(view: SignatureView) -> Detection:
    i0 = view.index(0)
    hi = view.head(i0)
    # The SCCRP may come second, after a ZLB that acknowledges a retransmitted SCCRQ on a lossy link.
    replies = (view.index(1), view.index(1, 1))
    score = np.zeros(view.m)
    evidence = {}
    for proto, offset in ((UDP, 0), (L2TP_IP, 4)):
        on = view.proto == proto
        if offset:
            on &= u32(hi, 0) == 0
        request, version = _control(hi, view.size(i0), view.held(i0), offset, SCCRQ)
        request &= on & (i0 == 0)
        reply = np.zeros(view.m, bool)
        reply_size = np.zeros(view.m, np.int64)
        for r0 in replies:
            found = ~reply & _control(view.head(r0), view.size(r0), view.held(r0), offset, SCCRP)[0]
            reply_size = np.where(found, view.size(r0), reply_size)
            reply |= found
        both = request & reply
        score = np.maximum(score, np.where(both, 1.0, np.where(request, 0.3, 0.0)))
        for r in np.flatnonzero(both):
            evidence[r] = (f"l2tp: v{version[r]} SCCRQ {view.size(i0)[r]} B / SCCRP {reply_size[r]} B"
                           f"{' over IP protocol 115' if offset else ''}")
    return Detection(score, evidence)


def detect(view: SignatureView) -> Detection:
    i0 = view.index(0)
    h0, size = view.head(i0), view.size(i0)
    # Control bits and a length field that equals the payload: few datagrams of other protocols have both.
    candidates = ((view.proto == UDP) & ((h0[:, 0] & 0xC8) == 0xC8) & (u16(h0, 2) == size)) \
        | ((view.proto == L2TP_IP) & ((h0[:, 4] & 0xC8) == 0xC8) & (u16(h0, 6) == size - 4))
    return on_candidates(view, candidates, _detect)


SIGNATURE = Signature(
    name="l2tp", title="L2TP", kind="vpn", detect=detect, ports=(("udp", 1701),),
    summary="control header with matching length, Message Type AVP SCCRQ answered by SCCRP",
)
