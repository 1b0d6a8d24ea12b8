"""PPTP: a Start-Control-Connection-Request (length, message type 1, magic cookie 0x1A2B3C4D, control type 1)
answered by a Start-Control-Connection-Reply (control type 2); and enhanced GRE (version 1) carrying PPP."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import Detection, Signature, SignatureView


def detect(view: SignatureView) -> Detection:
    # Control messages with the magic cookie 0x1A2B3C4D, enhanced GRE carrying PPP (0x880B): l2tp_pptp.c, one
    # pass over the flows' packets.
    packets, at = view.packets()
    score, kind = native.pptp_handshakes(packets, at, view.proto)
    evidence = {}
    sizes = view.size(view.index(0)), view.size(view.index(1))
    for r in np.flatnonzero(kind == 1):
        evidence[r] = (f"pptp: Start-Control-Connection-Request {sizes[0][r]} B / Reply {sizes[1][r]} B, "
                       "magic cookie 0x1A2B3C4D")
    for r in np.flatnonzero(kind == 2):
        evidence[r] = "pptp: enhanced GRE (version 1, key present) carrying PPP (0x880B)"
    return Detection(score, evidence)


SIGNATURE = Signature(
    name="pptp", title="PPTP", kind="vpn", detect=detect, ports=(("tcp", 1723),),
    summary="control-message magic cookie with request/reply types; enhanced GRE v1 carrying PPP",
)
