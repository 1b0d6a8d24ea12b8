"""PPTP: a Start-Control-Connection-Request (length, message type 1, magic cookie 0x1A2B3C4D, control type 1)
answered by a Start-Control-Connection-Reply (control type 2); and enhanced GRE (version 1) carrying PPP."""

from __future__ import annotations

import numpy as np

from features.signatures.base import TCP, Detection, Signature, SignatureView, on_candidates, u16, u32, u8

MAGIC = 0x1A2B3C4D
GRE = 47
PPP = 0x880B


def _control(head, size, held, control_type):
    return ((held >= 10) & (u16(head, 0) == size) & (u16(head, 2) == 1) & (u32(head, 4) == MAGIC)
            & (u16(head, 8) == control_type))


def _detect(view: SignatureView) -> Detection:
    i0, r0 = view.index(0), view.index(1)
    hi, hr = view.head(i0), view.head(r0)
    request = (view.proto == TCP) & (i0 == 0) & _control(hi, view.size(i0), view.held(i0), 1)
    reply = _control(hr, view.size(r0), view.held(r0), 2)
    control = request & reply
    gre = (view.proto == GRE) & (view.held(i0) >= 8) & ((u8(hi, 1) & 0x07) == 1) & ((u8(hi, 0) & 0x20) != 0) \
        & (u16(hi, 2) == PPP)
    score = np.where(control | gre, 1.0, np.where(request, 0.3, 0.0))
    evidence = {}
    for r in np.flatnonzero(control):
        evidence[r] = (f"pptp: Start-Control-Connection-Request {view.size(i0)[r]} B / Reply {view.size(r0)[r]} B, "
                       "magic cookie 0x1A2B3C4D")
    for r in np.flatnonzero(gre):
        evidence[r] = "pptp: enhanced GRE (version 1, key present) carrying PPP (0x880B)"
    return Detection(score, evidence)


def detect(view: SignatureView) -> Detection:
    h0 = view.head(view.index(0))
    candidates = ((view.proto == TCP) & (u32(h0, 4) == MAGIC)) | (view.proto == GRE)
    return on_candidates(view, candidates, _detect)


SIGNATURE = Signature(
    name="pptp", title="PPTP", kind="vpn", detect=detect, ports=(("tcp", 1723),),
    summary="control-message magic cookie with request/reply types; enhanced GRE v1 carrying PPP",
)
