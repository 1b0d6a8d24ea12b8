"""QUIC (recognised, not a VPN): a long-header Initial of at least 1200 bytes with a known version, answered
by a long-header packet (or version negotiation) or short-header packets."""

from __future__ import annotations

import numpy as np

from features.signatures.base import UDP, Detection, Signature, SignatureView, on_candidates, one_of, u32, u8

VERSIONS = (0x00000001, 0x6B3343CF)


def _detect(view: SignatureView) -> Detection:
    i0, r0 = view.index(0), view.index(1)
    hi, hr = view.head(i0), view.head(r0)
    version = u32(hi, 1)
    known = one_of(version, VERSIONS) | ((version >> 8) == 0xFF0000)
    initial = (view.proto == UDP) & (i0 == 0) & ((u8(hi, 0) & 0xC0) == 0xC0) & known & (u8(hi, 5) <= 20) \
        & (view.size(i0) >= 1200)
    answer = (r0 > 0) & (((u8(hr, 0) & 0x80) != 0) & one_of(u32(hr, 1), (0,) + VERSIONS) | ((u8(hr, 0) & 0xC0) == 0x40))
    fires = initial & answer
    return Detection(np.where(fires, 1.0, np.where(initial, 0.4, 0.0)))


def detect(view: SignatureView) -> Detection:
    i0 = view.index(0)
    h0 = view.head(i0)
    return on_candidates(view, (view.proto == UDP) & ((h0[:, 0] & 0xC0) == 0xC0) & (view.size(i0) >= 1200), _detect)


SIGNATURE = Signature(name="quic", title="QUIC", kind="protocol", detect=detect, ports=(("udp", 443),),
                      summary="long-header Initial >= 1200 B with a known version, answered")
