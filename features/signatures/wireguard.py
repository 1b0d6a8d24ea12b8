"""WireGuard: handshake initiation (type 1, 148 B) answered by a response (type 2, 92 B) whose receiver
index is the initiator's sender index; or, mid-flow, transport data (type 4) both ways with one receiver
index per direction and a counter that counts."""

from __future__ import annotations

import numpy as np

from features.signatures.base import (UDP, Detection, Signature, SignatureView, equal, on_candidates, one_of,
                                      same_bytes, u32le)

INITIATION, RESPONSE, COOKIE, TRANSPORT = 1, 2, 3, 4
SIZES = {INITIATION: 148, RESPONSE: 92, COOKIE: 64}


def _message(head, kind):
    return equal(head, 0, bytes([kind, 0, 0, 0]))


def _transport_run(view: SignatureView, direction: int, packets: int = 3):
    """The first `packets` payload packets of a direction are transport data with one receiver index and
    increasing counters."""
    ok = np.ones(view.m, bool)
    first = None
    last_counter = np.full(view.m, -1)
    for j in range(packets):
        idx = view.index(direction, j)
        h = view.head(idx)
        size = view.size(idx)
        ok &= (idx >= 0) & (view.held(idx) >= 16) & _message(h, TRANSPORT) & (size >= 32) & (size % 16 == 0)
        if first is None:
            first = h
        else:
            ok &= same_bytes(h, 4, first, 4, 4)
        counter = u32le(h, 8) + (u32le(h, 12) << 32)
        ok &= counter > last_counter
        last_counter = counter
    return ok


def _detect(view: SignatureView) -> Detection:
    udp = view.proto == UDP
    i0, r0 = view.index(0), view.index(1)
    h0, hr = view.head(i0), view.head(r0)
    initiation = udp & (i0 == 0) & _message(h0, INITIATION) & (view.size(i0) == SIZES[INITIATION])
    response = _message(hr, RESPONSE) & (view.size(r0) == SIZES[RESPONSE]) & (view.held(r0) >= 12)
    linked = initiation & response & same_bytes(hr, 8, h0, 4, 4)
    data_both = udp & _transport_run(view, 0) & _transport_run(view, 1)
    score = np.where(linked, 1.0, np.where(data_both, 0.8, np.where(initiation, 0.3, 0.0)))
    evidence = {}
    for r in np.flatnonzero(linked):
        evidence[r] = (f"wireguard: handshake initiation {view.size(i0)[r]} B / response {view.size(r0)[r]} B, "
                       "receiver index linked")
    for r in np.flatnonzero(data_both & ~linked):
        evidence[r] = "wireguard: transport data both ways, one receiver index per direction, counters increasing"
    return Detection(score, evidence, {"wg_handshake_linked": linked.astype(np.int8)})


def detect(view: SignatureView) -> Detection:
    h0 = view.head(view.index(0))
    candidates = (view.proto == UDP) & one_of(h0[:, 0], (1, 2, 3, 4)) & (h0[:, 1:4] == 0).all(1)
    return on_candidates(view, candidates, _detect, wg_handshake_linked=0)


SIGNATURE = Signature(
    name="wireguard", title="WireGuard", kind="vpn", detect=detect, ports=(("udp", 51820),),
    summary="message types with 3 zero bytes, 148/92 B handshake, receiver index linked across directions",
    features=(("wg_handshake_linked", "int8", "flag", "initiation and response with the receiver index linked"),),
)
