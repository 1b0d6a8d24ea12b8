"""WireGuard: handshake initiation (type 1, 148 B) answered by a response (type 2, 92 B) whose receiver
index is the initiator's sender index; or, mid-flow, transport data (type 4) both ways with one receiver
index per direction and a counter that counts."""

from __future__ import annotations

import numpy as np

from features import native
from features.signatures.base import Detection, Signature, SignatureView


def detect(view: SignatureView) -> Detection:
    # Message types with three zero bytes, handshake sizes, receiver index linkage, transport counters:
    # wireguard.c, one pass over the flows' packets.
    packets, at = view.packets()
    score, kind = native.wireguard_handshakes(packets, at, view.proto)
    linked = kind == 1
    evidence = {}
    sizes = view.size(view.index(0)), view.size(view.index(1))
    for r in np.flatnonzero(linked):
        evidence[r] = (f"wireguard: handshake initiation {sizes[0][r]} B / response {sizes[1][r]} B, "
                       "receiver index linked")
    for r in np.flatnonzero(kind == 2):
        evidence[r] = "wireguard: transport data both ways, one receiver index per direction, counters increasing"
    return Detection(score, evidence, {"wg_handshake_linked": linked.astype(np.int8)})


SIGNATURE = Signature(
    name="wireguard", title="WireGuard", kind="vpn", detect=detect, ports=(("udp", 51820),),
    summary="message types with 3 zero bytes, 148/92 B handshake, receiver index linked across directions",
    features=(("wg_handshake_linked", "int8", "flag", "initiation and response with the receiver index linked"),),
)
